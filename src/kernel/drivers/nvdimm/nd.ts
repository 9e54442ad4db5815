/**
 * libnvdimm objects (drivers/nvdimm/nd.h, nd-core.h, include/linux/nd.h): the bus, regions, the io namespace of
 * legacy pmem, pfn / dax / btt devices, the pmem driver's per-device state, and the persistent media under a
 * region (only the bytes anyone wrote are kept).
 */
import type { DevPagemap } from "../../mm/dev_pagemap.ts";
import type { DaxRegion } from "../dax/bus.ts";
import type { Device, Ida } from "./device_core.ts";
import type { NdMapping } from "./dimm_devs.ts";
import type { NdPfnSb } from "./pfn.ts";

// ref: include/uapi/linux/ndctl.h ND_DEVICE_*
export const ND_DEVICE_DIMM = 1;
export const ND_DEVICE_REGION_PMEM = 2;
export const ND_DEVICE_NAMESPACE_IO = 4;
export const ND_DEVICE_NAMESPACE_PMEM = 5;
export const ND_DEVICE_DAX_PMEM = 7;

/** Namespaces smaller than this cannot be claimed or probed. */
// ref: include/uapi/linux/ndctl.h ND_MIN_NAMESPACE_SIZE
export const ND_MIN_NAMESPACE_SIZE = 4096;
/** nd_namespace_store refuses to attach a namespace below SZ_16M. */
export const SZ_16M = 16 * 2 ** 20;
/** MEMREMAP_COMPAT_ALIGN_MAX: a region's default align. */
export const MEMREMAP_COMPAT_ALIGN_MAX = SZ_16M;

// ref: drivers/nvdimm/nd.h enum nvdimm_claim_class
export type ClaimClass = "none" | "btt" | "btt2" | "pfn" | "dax";

/** The region's persistent media: 4 KiB pages that were written (all others read as zero). */
export class Media {
  private readonly pages = new Map<number, Uint8Array>();

  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let off = 0; off < len; ) {
      const a = addr + off;
      const page = Math.floor(a / 4096) * 4096;
      const n = Math.min(len - off, page + 4096 - a);
      const p = this.pages.get(page);
      if (p) out.set(p.subarray(a - page, a - page + n), off);
      off += n;
    }
    return out;
  }

  write(addr: number, bytes: Uint8Array): void {
    for (let off = 0; off < bytes.byteLength; ) {
      const a = addr + off;
      const page = Math.floor(a / 4096) * 4096;
      const n = Math.min(bytes.byteLength - off, page + 4096 - a);
      let p = this.pages.get(page);
      if (!p) {
        p = new Uint8Array(4096);
        this.pages.set(page, p);
      }
      p.set(bytes.subarray(off, off + n), a - page);
      if (p.every((b) => b === 0)) this.pages.delete(page);
      off += n;
    }
  }
}

/** struct nvdimm_bus */
export interface NvdimmBus extends Device {
  readonly kind: "nvdimm_bus";
  readonly id: number;
  readonly providerName: string;
  /** The platform device that registered the bus (e820_pmem, ACPI0012:00). */
  readonly platform: string;
}

/** struct nd_interleave_set: the cookies labels carry (v1.1 labels cookie1, v1.2 cookie2). */
export interface NdInterleaveSet {
  readonly cookie1: bigint;
  readonly cookie2: bigint;
  readonly altcookie: bigint;
  /** type_guid: the SPA range type (guid byte order), written into v1.2 labels. */
  readonly typeGuid: Uint8Array;
}

/** struct nd_region */
export interface NdRegion extends Device {
  readonly kind: "nd_region";
  readonly id: number;
  readonly nvdimmBus: NvdimmBus;
  readonly ndrStart: number;
  readonly ndrSize: number;
  /** ND_REGION_PAGEMAP: legacy pmem, the raw namespace gets struct pages. */
  readonly pagemap: boolean;
  readonly targetNode: number;
  /** ndr_mappings */
  readonly mappings: number;
  /** mapping[]: the DIMM extents behind the region (none for legacy pmem). */
  readonly ndMappings: readonly NdMapping[];
  /** nd_set (NULL without DIMMs). */
  readonly ndSet: NdInterleaveSet | null;
  /** ND_REGION_PERSIST_CACHE / ND_REGION_PERSIST_MEMCTRL */
  readonly persistDomain: "cpu_cache" | "memory_controller" | null;
  ro: boolean;
  align: number;
  nsSeed: Device | null;
  bttSeed: Device | null;
  pfnSeed: Device | null;
  daxSeed: Device | null;
  readonly nsIda: Ida;
  readonly bttIda: Ida;
  readonly pfnIda: Ida;
  readonly daxIda: Ida;
  /** nd_region_data (drvdata while nd_region is bound): the namespace counts. */
  ndrd: { nsActive: number; nsCount: number } | null;
  readonly media: Media;
}

/** The pmem driver's struct pmem_device (drvdata of a namespace, pfn or btt device bound to nd_pmem). */
export interface PmemDevice {
  physAddr: number;
  size: number;
  dataOffset: number;
  pfnPad: number;
  /** PFN_MAP: struct pages exist (pgmap set), so the block queue has QUEUE_FLAG_DAX. */
  pfnMap: boolean;
  pgmap: DevPagemap | null;
  /** gendisk name ("pmem0", "pmem0s") and capacity in 512-byte sectors. */
  disk: string;
  capacity: number;
  readOnly: boolean;
}

/**
 * struct nd_namespace_io: a namespace without labels covering the whole region (legacy pmem, label-less DIMMs),
 * and the nsio every struct nd_namespace_pmem embeds (kind "nd_namespace_pmem", see NdNamespacePmem).
 */
export interface NdNamespaceIo extends Device {
  readonly kind: "nd_namespace_io" | "nd_namespace_pmem";
  readonly region: NdRegion;
  /** nsio->res; a pmem namespace's moves with its DPA allocation (nd_namespace_pmem_set_resource). */
  resStart: number;
  /** Inclusive (resStart - 1 when the namespace has no capacity). */
  resEnd: number;
  claim: Device | null;
  claimClass: ClaimClass;
  forceRaw: boolean;
  /** devm_nsio_enable: the requested info-block window and its resource. */
  nsioSize: number;
  pmem: PmemDevice | null;
}

/** struct nd_namespace_pmem: a label-based namespace on a region whose DIMMs carry namespace labels. */
export interface NdNamespacePmem extends NdNamespaceIo {
  readonly kind: "nd_namespace_pmem";
  /** nspm->id (the N of namespaceR.N), -1 until registered. */
  id: number;
  /** nspm->uuid, null until set. */
  uuid: string | null;
  /** nspm->alt_name (NSLABEL_NAME_LEN bytes at most), null until set. */
  altName: string | null;
  /** nspm->lbasize: 0 (default, 512), 512 or 4096. */
  lbasize: number;
}

/** struct nd_pfn (also the nd_pfn inside struct nd_dax). */
export interface NdPfn extends Device {
  readonly kind: "nd_pfn" | "nd_dax";
  readonly region: NdRegion;
  readonly id: number;
  uuid: string | null;
  mode: number;
  align: number;
  ndns: NdNamespaceIo | null;
  pfnSb: NdPfnSb | null;
  /** nd_pfn bound to nd_pmem. */
  pmem: PmemDevice | null;
  /** nd_dax bound to dax_pmem: the dax_region in its drvdata. */
  daxRegion: DaxRegion | null;
}

/** struct nd_btt */
export interface NdBtt extends Device {
  readonly kind: "nd_btt";
  readonly region: NdRegion;
  readonly id: number;
  uuid: string | null;
  lbasize: number;
  ndns: NdNamespaceIo | null;
  /** btt->nlba * sector_size once attached. */
  size: number;
  initialOffset: number;
  pmem: PmemDevice | null;
}

export function isNvdimmBus(dev: Device | null): dev is NvdimmBus {
  return dev?.kind === "nvdimm_bus";
}
export function isNdRegion(dev: Device | null): dev is NdRegion {
  return dev?.kind === "nd_region";
}
/**
 * A namespace device (to_ndns): an io namespace or a pmem namespace, both reached through the nd_namespace_io
 * they embed. The kernel's own is_namespace_io() is `dev.kind === "nd_namespace_io"`.
 */
export function isNamespaceIo(dev: Device | null): dev is NdNamespaceIo {
  return dev?.kind === "nd_namespace_io" || dev?.kind === "nd_namespace_pmem";
}
// ref: drivers/nvdimm/namespace_devs.c is_namespace_pmem
export function isNamespacePmem(dev: Device | null): dev is NdNamespacePmem {
  return dev?.kind === "nd_namespace_pmem";
}
export function isNdPfn(dev: Device | null): dev is NdPfn {
  return dev?.kind === "nd_pfn";
}
export function isNdDax(dev: Device | null): dev is NdPfn {
  return dev?.kind === "nd_dax";
}
/** to_nd_pfn_safe: a pfn device or the pfn inside a dax device. */
export function isPfnOrDax(dev: Device | null): dev is NdPfn {
  return isNdPfn(dev) || isNdDax(dev);
}
export function isNdBtt(dev: Device | null): dev is NdBtt {
  return dev?.kind === "nd_btt";
}

/** The io namespace's struct resource as a [start, end] range. */
export function nsioSize(ns: NdNamespaceIo): number {
  return ns.resEnd - ns.resStart + 1;
}

/** nvdimm_namespace_capacity */
// ref: drivers/nvdimm/namespace_devs.c __nvdimm_namespace_capacity
export function nvdimmNamespaceCapacity(ns: NdNamespaceIo): number {
  return nsioSize(ns);
}

/** "0x%llx" */
export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** %#010llx */
function hex010(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/** %pR of an IORESOURCE_MEM resource: "[mem 0x00100000-0x13fffffff]". */
// ref: lib/vsprintf.c resource_string (decode)
export function fmtResourceR(start: number, end: number): string {
  return start === end ? `[mem ${hex010(start)}]` : `[mem ${hex010(start)}-${hex010(end)}]`;
}

/** %pr of an IORESOURCE_MEM resource: "[mem 0x100000000-0x13fffffff flags 0x200]". */
// ref: lib/vsprintf.c resource_string (raw)
export function fmtResourceRaw(start: number, end: number, flags: number): string {
  const range = start === end ? hex010(start) : `${hex010(start)}-${hex010(end)}`;
  return `[mem ${range} flags 0x${(flags >>> 0).toString(16)}]`;
}
