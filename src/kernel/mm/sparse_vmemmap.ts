/**
 * vmemmap population: where the struct pages of a hot-added range live and what they cost
 * (mm/sparse-vmemmap.c __populate_section_memmap, arch vmemmap_populate, vmemmap_free).
 *
 * FIRST CUT: every chunk's memmap comes from RAM, one struct page per pfn. The arch rules, the altmap and the
 * compound dedup replace this (issue 3).
 */
import type { Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { PageState, pageValue } from "./memmap.ts";
import type { VmemAltmap } from "./vmem_altmap.ts";

/** What vmemmap population needs to know of the pgmap being added (NULL for RAM hot-plug). */
export interface PgmapVmemmapView {
  /** log2 of base pages per compound device page (0: base pages). */
  readonly vmemmapShift: number;
  /** First pfn of the range currently being added (reuse_compound_section measures offsets from it). */
  readonly rangeStartPfn: number;
}

/** struct mhp_params, as far as the memmap is concerned. */
export interface MhpParams {
  altmap: VmemAltmap | null;
  pgmap: PgmapVmemmapView | null;
}

export const MHP_RAM: MhpParams = { altmap: null, pgmap: null };

/** One populated chunk (at most one section) and what backs its memmap. */
export interface VmemmapChunk {
  startPfn: number;
  nrPages: number;
  /** Bytes of memmap data pages allocated from RAM. */
  ramBytes: number;
  /** pfns of memmap taken from the altmap (excluding alignment padding). */
  altmapPfns: number;
  /** Bytes of page-table pages (always RAM) this chunk added to the vmemmap mapping. */
  pageTableBytes: number;
}

/** Every populated chunk, keyed by start pfn, so teardown frees exactly what population allocated. */
export class VmemmapLedger {
  readonly chunks = new Map<number, VmemmapChunk>();
  ramBytes = 0;
  altmapPfns = 0;
  pageTableBytes = 0;

  add(c: VmemmapChunk): void {
    this.chunks.set(c.startPfn, c);
    this.ramBytes += c.ramBytes;
    this.altmapPfns += c.altmapPfns;
    this.pageTableBytes += c.pageTableBytes;
  }

  take(startPfn: number): VmemmapChunk | undefined {
    const c = this.chunks.get(startPfn);
    if (!c) return undefined;
    this.chunks.delete(startPfn);
    this.ramBytes -= c.ramBytes;
    this.altmapPfns -= c.altmapPfns;
    this.pageTableBytes -= c.pageTableBytes;
    return c;
  }

  /** Sum over the chunks inside [startPfn, endPfn). */
  cost(startPfn: number, endPfn: number): { ramBytes: number; altmapPfns: number; pageTableBytes: number } {
    const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 };
    for (const c of this.chunks.values()) {
      if (c.startPfn < startPfn || c.startPfn >= endPfn) continue;
      out.ramBytes += c.ramBytes;
      out.altmapPfns += c.altmapPfns;
      out.pageTableBytes += c.pageTableBytes;
    }
    return out;
  }
}

// ref: mm/sparse-vmemmap.c __populate_section_memmap
export function populateSectionMemmap(
  k: Kernel,
  pfn: number,
  nrPages: number,
  _nid: number,
  _params: MhpParams,
): Errno {
  k.memmap.setRange(pfn, pfn + nrPages, pageValue({ state: PageState.Uninitialised }));
  k.vmemmap.add({ startPfn: pfn, nrPages, ramBytes: nrPages * k.arch.structPageSize, altmapPfns: 0, pageTableBytes: 0 });
  return 0;
}

// ref: mm/sparse.c depopulate_section_memmap → mm/sparse-vmemmap.c vmemmap_free
export function depopulateSectionMemmap(k: Kernel, pfn: number, nrPages: number, _altmap: VmemAltmap | null): void {
  k.vmemmap.take(pfn);
  // The vmemmap is freed; the model remembers it existed so a later access is a use-after-free.
  k.memmap.setRange(pfn, pfn + nrPages, pageValue({ state: PageState.TornDown }));
}
