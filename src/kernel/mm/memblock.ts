/**
 * memblock: the boot-time list of memory and reservations (mm/memblock.c), in pfns once trimmed.
 */

export interface MemblockRegion {
  /** Physical base and size in bytes. */
  base: number;
  size: number;
  nid: number;
}

export interface Memblock {
  memory: MemblockRegion[];
  reserved: MemblockRegion[];
}

export const NUMA_NO_NODE = -1;

// ref: mm/memblock.c memblock_add_range (regions kept sorted and merged when adjacent with the same node)
export function memblockAdd(list: MemblockRegion[], base: number, size: number, nid = NUMA_NO_NODE): void {
  if (size <= 0) return;
  let start = base;
  let end = base + size;
  const out: MemblockRegion[] = [];
  for (const r of list) {
    const rEnd = r.base + r.size;
    if (rEnd < start || r.base > end || (r.nid !== nid && (rEnd === start || r.base === end))) {
      out.push(r);
      continue;
    }
    // Overlapping or touching regions of one node merge into one.
    start = Math.min(start, r.base);
    end = Math.max(end, rEnd);
  }
  out.push({ base: start, size: end - start, nid });
  out.sort((a, b) => a.base - b.base);
  list.splice(0, list.length, ...out);
}

// ref: mm/memblock.c memblock_remove_range
export function memblockRemove(list: MemblockRegion[], base: number, size: number): void {
  const end = base + size;
  const out: MemblockRegion[] = [];
  for (const r of list) {
    const rEnd = r.base + r.size;
    if (rEnd <= base || r.base >= end) {
      out.push(r);
      continue;
    }
    if (r.base < base) out.push({ base: r.base, size: base - r.base, nid: r.nid });
    if (rEnd > end) out.push({ base: end, size: rEnd - end, nid: r.nid });
  }
  list.splice(0, list.length, ...out);
}

// ref: mm/memblock.c memblock_trim_memory
export function memblockTrimMemory(list: MemblockRegion[], align: number): void {
  const out: MemblockRegion[] = [];
  for (const r of list) {
    const start = Math.ceil(r.base / align) * align;
    const end = Math.floor((r.base + r.size) / align) * align;
    if (start >= end) continue;
    out.push({ base: start, size: end - start, nid: r.nid });
  }
  list.splice(0, list.length, ...out);
}

// ref: mm/memblock.c memblock_set_node (splits regions at the range edges, then labels them)
export function memblockSetNode(list: MemblockRegion[], base: number, size: number, nid: number): void {
  const end = base + size;
  const out: MemblockRegion[] = [];
  for (const r of list) {
    const rEnd = r.base + r.size;
    if (rEnd <= base || r.base >= end) {
      out.push(r);
      continue;
    }
    if (r.base < base) out.push({ base: r.base, size: base - r.base, nid: r.nid });
    const lo = Math.max(r.base, base);
    const hi = Math.min(rEnd, end);
    out.push({ base: lo, size: hi - lo, nid });
    if (rEnd > end) out.push({ base: end, size: rEnd - end, nid: r.nid });
  }
  list.splice(0, list.length, ...out);
}

/** for_each_mem_pfn_range: [startPfn, endPfn) per region, optionally for one node. */
export function memPfnRanges(
  list: readonly MemblockRegion[],
  pageSize: number,
  nid?: number,
): Array<{ startPfn: number; endPfn: number; nid: number }> {
  const out: Array<{ startPfn: number; endPfn: number; nid: number }> = [];
  for (const r of list) {
    if (nid !== undefined && r.nid !== nid) continue;
    const startPfn = Math.ceil(r.base / pageSize);
    const endPfn = Math.floor((r.base + r.size) / pageSize);
    if (startPfn >= endPfn) continue;
    out.push({ startPfn, endPfn, nid: r.nid });
  }
  return out;
}
