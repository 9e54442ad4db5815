/**
 * struct vmem_altmap: memmap stored in the device itself (include/linux/memremap.h, mm/sparse-vmemmap.c).
 * All counts are pfns.
 */

export interface VmemAltmap {
  /** First pfn of the mapping (must equal the hot-added start pfn). */
  readonly basePfn: number;
  /** Last usable pfn (only powerpc's vmemmap_populate consults it). */
  readonly endPfn: number;
  /** pfns at the start kept for the driver (info block); never memmap. */
  readonly reserve: number;
  /** pfns after `reserve` set aside for the memmap. */
  readonly free: number;
  /** pfns skipped so far to satisfy alignment (grows only). */
  align: number;
  /** pfns currently used by memmap allocations. */
  alloc: number;
}

export function newAltmap(basePfn: number, endPfn: number, reserve: number, free: number): VmemAltmap {
  return { basePfn, endPfn, reserve, free, align: 0, alloc: 0 };
}

// ref: include/linux/memremap.h vmem_altmap_offset
export function vmemAltmapOffset(altmap: VmemAltmap | null): number {
  return altmap ? altmap.reserve + altmap.free : 0;
}

// ref: mm/sparse-vmemmap.c vmem_altmap_next_pfn
function vmemAltmapNextPfn(altmap: VmemAltmap): number {
  return altmap.basePfn + altmap.reserve + altmap.alloc + altmap.align;
}

// ref: mm/sparse-vmemmap.c vmem_altmap_nr_free
function vmemAltmapNrFree(altmap: VmemAltmap): number {
  const allocated = altmap.alloc + altmap.align;
  return altmap.free > allocated ? altmap.free - allocated : 0;
}

/**
 * Allocate `size` bytes of memmap from the altmap, naturally aligned to the largest power of two dividing its
 * pfn count. Returns the first pfn used, or -1 when it does not fit (the caller sees NULL).
 */
// ref: mm/sparse-vmemmap.c altmap_alloc_block_buf
export function altmapAllocBlockBuf(altmap: VmemAltmap, size: number, pageSize: number): number {
  if (size % pageSize !== 0) return -1;
  const nrPfns = size / pageSize;
  const next = vmemAltmapNextPfn(altmap);
  let unit = 1;
  while ((nrPfns / unit) % 2 === 0) unit *= 2;
  const pad = Math.ceil(next / unit) * unit - next;
  if (nrPfns + pad > vmemAltmapNrFree(altmap)) return -1;
  altmap.alloc += nrPfns;
  altmap.align += pad;
  return next + pad;
}

// ref: mm/sparse-vmemmap.c vmem_altmap_free
export function vmemAltmapFree(altmap: VmemAltmap, nrPfns: number): void {
  altmap.alloc -= nrPfns;
}
