/**
 * struct dev_pagemap and the pgmap registry (include/linux/memremap.h; mm/memremap.c pgmap_array).
 */
import type { Kernel } from "../kernel.ts";
import { PercpuRef } from "../lib/percpu_refcount.ts";
import { RangeMap } from "../lib/rangemap.ts";
import { type KernelPath, step } from "../path.ts";
import { pgmapTouch, pgmapUse } from "./page_access.ts";
import type { VmemAltmap } from "./vmem_altmap.ts";

// ref: include/linux/memremap.h enum memory_type
export enum MemoryType {
  PRIVATE = 1,
  COHERENT = 2,
  FS_DAX = 3,
  GENERIC = 4,
  PCI_P2PDMA = 5,
}

export const MEMORY_TYPE_NAMES: Record<MemoryType, string> = {
  [MemoryType.PRIVATE]: "MEMORY_DEVICE_PRIVATE",
  [MemoryType.COHERENT]: "MEMORY_DEVICE_COHERENT",
  [MemoryType.FS_DAX]: "MEMORY_DEVICE_FS_DAX",
  [MemoryType.GENERIC]: "MEMORY_DEVICE_GENERIC",
  [MemoryType.PCI_P2PDMA]: "MEMORY_DEVICE_PCI_P2PDMA",
};

export const PGMAP_ALTMAP_VALID = 1 << 0;

/** struct dev_pagemap_ops: which callbacks the driver provides, and what page_free does for it. */
export interface DevPagemapOps {
  pageFree?: (pfn: number) => void;
  migrateToRam?: boolean;
  memoryFailure?: boolean;
}

/** A struct range: [start, end] in bytes, end inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

export type PgmapState = "new" | "initialising" | "live" | "dying" | "drained" | "removed" | "exited" | "failed";

export interface DevPagemap {
  /** Model id; struct pages store it in their pgmap field (0 = none). */
  readonly id: number;
  /** The owning device, for reports ("pfn0.0", "dax0.0", "dmirror0"). */
  readonly device: string;
  readonly type: MemoryType;
  readonly ranges: ByteRange[];
  /** Ranges successfully added so far (memremap_pages counts up while it works). */
  nrRange: number;
  readonly vmemmapShift: number;
  readonly flags: number;
  readonly altmap: VmemAltmap | null;
  readonly ops: DevPagemapOps | null;
  readonly owner: string | null;
  ref: PercpuRef;
  /** completion `done`: the ref's release callback ran. */
  done: boolean;
  nid: number;
  state: PgmapState;
}

export interface DevPagemapSpec {
  device: string;
  type: MemoryType;
  ranges: ByteRange[];
  vmemmapShift?: number;
  altmap?: VmemAltmap | null;
  ops?: DevPagemapOps | null;
  owner?: string | null;
}

export class PgmapRegistry {
  private nextId = 1;
  readonly byId = new Map<number, DevPagemap>();
  /** pgmap_array: pfn → pgmap id (multi-index entries per range). */
  readonly array = new RangeMap<number>();
  /** devmap_managed_key: one increment per live FS_DAX pgmap. */
  devmapManagedKey = 0;

  create(spec: DevPagemapSpec): DevPagemap {
    const pgmap: DevPagemap = {
      id: this.nextId++,
      device: spec.device,
      type: spec.type,
      ranges: spec.ranges.map((r) => ({ ...r })),
      nrRange: spec.ranges.length,
      vmemmapShift: spec.vmemmapShift ?? 0,
      flags: spec.altmap ? PGMAP_ALTMAP_VALID : 0,
      altmap: spec.altmap ?? null,
      ops: spec.ops ?? null,
      owner: spec.owner ?? null,
      ref: new PercpuRef(() => {}),
      done: false,
      nid: -1,
      state: "new",
    };
    this.byId.set(pgmap.id, pgmap);
    return pgmap;
  }

  all(): DevPagemap[] {
    return [...this.byId.values()];
  }
}

// ref: include/linux/memremap.h pgmap_altmap
export function pgmapAltmap(pgmap: DevPagemap): VmemAltmap | null {
  return pgmap.flags & PGMAP_ALTMAP_VALID ? pgmap.altmap : null;
}

// ref: include/linux/memremap.h pgmap_vmemmap_nr
export function pgmapVmemmapNr(pgmap: DevPagemap): number {
  return 2 ** pgmap.vmemmapShift;
}

/** Types whose idle device pages hold refcount 1 and whose pgmap references are taken in bulk. */
export function refcountOneType(type: MemoryType): boolean {
  return type !== MemoryType.PRIVATE && type !== MemoryType.COHERENT;
}

/** Who holds a pgmap reference (a name, so a hang can say who). */
export type Holder = string;

/** The pgmap references memremap_pages() takes for the device pages, as one holder. */
export const DEVICE_PAGES_BULK: Holder = "device pages (bulk)";

/** The pgmap reference of an allocated PRIVATE/COHERENT page (zone_device_page_init, 6.1). */
export function allocatedPageHolder(pfn: number): Holder {
  return `allocated page 0x${pfn.toString(16)}`;
}

/** The pgmap reference a 5.4 memunmap_pages() left with a page that was still referenced. */
export function baseRefHolder(pfn: number): Holder {
  return `base reference of page 0x${pfn.toString(16)} (v5.4)`;
}

// ref: include/linux/memremap.h put_dev_pagemap
export function* putDevPagemap(k: Kernel, pgmap: DevPagemap | null, holder: Holder): KernelPath<void> {
  if (!pgmap) return;
  pgmapTouch(k, pgmapUse(k, pgmap, "put_dev_pagemap"));
  pgmap.ref.putMany(1, holder);
  if (pgmap.ref.state === "released") pgmap.done = true;
  yield step("put_dev_pagemap: percpu_ref_put");
}
