/**
 * One zone's buddy allocator (mm/page_alloc.c free_area[], __free_one_page, __rmqueue_smallest, expand).
 *
 * Orders below MAX_ORDER-1 keep their free blocks in a Set of head pfns. The top order, where almost all
 * free memory of a freshly booted machine sits, keeps sorted runs of consecutive top-order blocks, so a
 * 64 TiB zone is a handful of runs rather than millions of list entries.
 */

interface Run {
  start: number;
  /** Number of top-order blocks. */
  count: number;
}

export class Buddy {
  readonly maxOrder: number;
  private readonly topOrder: number;
  private readonly topSize: number;
  private readonly sets: Set<number>[] = [];
  private runs: Run[] = [];
  private topFree = 0;

  constructor(maxOrder: number) {
    this.maxOrder = maxOrder;
    this.topOrder = maxOrder - 1;
    this.topSize = 2 ** this.topOrder;
    for (let o = 0; o < this.topOrder; o++) this.sets.push(new Set());
  }

  /** free_area[order].nr_free */
  nrFree(order: number): number {
    return order === this.topOrder ? this.topFree : this.sets[order]!.size;
  }

  /** Free pages in the zone (NR_FREE_PAGES). */
  freePages(): number {
    let n = this.topFree * this.topSize;
    for (let o = 0; o < this.topOrder; o++) n += this.sets[o]!.size * 2 ** o;
    return n;
  }

  private addTop(pfn: number): void {
    // Insert keeping runs sorted; join with neighbours.
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.runs[mid]!.start < pfn) lo = mid + 1;
      else hi = mid;
    }
    const prev = this.runs[lo - 1];
    const next = this.runs[lo];
    if (prev && prev.start + prev.count * this.topSize === pfn) {
      prev.count++;
      if (next && next.start === pfn + this.topSize) {
        prev.count += next.count;
        this.runs.splice(lo, 1);
      }
    } else if (next && next.start === pfn + this.topSize) {
      next.start = pfn;
      next.count++;
    } else {
      this.runs.splice(lo, 0, { start: pfn, count: 1 });
    }
    this.topFree++;
  }

  /** Index of the run holding top-order block `pfn`, or -1. */
  private topIndex(pfn: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.runs[mid]!;
      if (r.start + r.count * this.topSize <= pfn) lo = mid + 1;
      else hi = mid;
    }
    const r = this.runs[lo];
    return r && r.start <= pfn ? lo : -1;
  }

  private removeTop(pfn: number): boolean {
    const i = this.topIndex(pfn);
    if (i < 0) return false;
    const r = this.runs[i]!;
    const k = (pfn - r.start) / this.topSize;
    if (!Number.isInteger(k)) return false;
    if (r.count === 1) this.runs.splice(i, 1);
    else if (k === 0) {
      r.start += this.topSize;
      r.count--;
    } else if (k === r.count - 1) r.count--;
    else {
      this.runs.splice(i + 1, 0, { start: pfn + this.topSize, count: r.count - k - 1 });
      r.count = k;
    }
    this.topFree--;
    return true;
  }

  private isFreeBlock(pfn: number, order: number): boolean {
    if (order === this.topOrder) {
      const i = this.topIndex(pfn);
      return i >= 0 && Number.isInteger((pfn - this.runs[i]!.start) / this.topSize);
    }
    return this.sets[order]!.has(pfn);
  }

  private addBlock(pfn: number, order: number): void {
    if (order === this.topOrder) this.addTop(pfn);
    else this.sets[order]!.add(pfn);
  }

  // ref: mm/page_alloc.c __free_one_page
  freeOnePage(pfnIn: number, orderIn: number): void {
    let pfn = pfnIn;
    let order = orderIn;
    while (order < this.topOrder) {
      const size = 2 ** order;
      // __find_buddy_pfn: pfn ^ (1 << order), without 32-bit bitwise operators.
      const buddy = Math.floor(pfn / size) % 2 === 0 ? pfn + size : pfn - size;
      if (!this.sets[order]!.has(buddy)) break;
      this.sets[order]!.delete(buddy);
      pfn = Math.min(pfn, buddy);
      order++;
    }
    this.addBlock(pfn, order);
  }

  /**
   * Free [start, end) in the largest naturally aligned blocks, as memblock_free_all does at boot
   * (ref: mm/memblock.c __free_pages_memory).
   */
  freeRange(start: number, end: number): void {
    let pfn = start;
    while (pfn < end) {
      // Whole top-order blocks go in as one run, so huge ranges cost O(1).
      if (pfn % this.topSize === 0 && end - pfn >= this.topSize) {
        const count = Math.floor((end - pfn) / this.topSize);
        this.addTopRun(pfn, count);
        pfn += count * this.topSize;
        continue;
      }
      let order = Math.min(this.topOrder, lowestSetBit(pfn));
      while (pfn + 2 ** order > end) order--;
      this.freeOnePage(pfn, order);
      pfn += 2 ** order;
    }
  }

  private addTopRun(start: number, count: number): void {
    const last = this.runs[this.runs.length - 1];
    if (!last || last.start + last.count * this.topSize < start) {
      if (!last || last.start < start) {
        this.runs.push({ start, count });
        this.topFree += count;
        return;
      }
    } else if (last.start + last.count * this.topSize === start) {
      last.count += count;
      this.topFree += count;
      return;
    }
    for (let i = 0; i < count; i++) this.addTop(start + i * this.topSize);
  }

  // ref: mm/page_alloc.c __rmqueue_smallest + expand
  allocPages(order: number): number {
    for (let cur = order; cur <= this.topOrder; cur++) {
      let pfn: number;
      if (cur === this.topOrder) {
        const r = this.runs[0];
        if (!r) continue;
        pfn = r.start;
        this.removeTop(pfn);
      } else {
        const first = this.sets[cur]!.values().next();
        if (first.done) continue;
        pfn = first.value;
        this.sets[cur]!.delete(pfn);
      }
      // expand(): hand the upper halves back, largest first.
      for (let high = cur; high > order; high--) this.addBlock(pfn + 2 ** (high - 1), high - 1);
      return pfn;
    }
    return -1;
  }

  /** Is pfn inside any free block? (The "no device pfn in the buddy allocator" invariant asks this.) */
  contains(pfn: number): boolean {
    for (let o = 0; o <= this.topOrder; o++) {
      const size = 2 ** o;
      if (this.isFreeBlock(pfn - (pfn % size), o)) return true;
    }
    return false;
  }

  /**
   * Take every free page in [start, end) out of the allocator (offline_pages after isolation):
   * blocks straddling an edge are split and the outside parts stay free. Returns pages taken.
   */
  takeRange(start: number, end: number): number {
    let taken = 0;
    // Top-order blocks first, by run arithmetic.
    for (const r of [...this.runs]) {
      const rEnd = r.start + r.count * this.topSize;
      const lo = Math.max(r.start, start);
      const hi = Math.min(rEnd, end);
      if (lo >= hi) continue;
      const first = lo - ((lo - r.start) % this.topSize);
      for (let b = first; b < hi; b += this.topSize) {
        this.removeTop(b);
        taken += this.splitAround(b, this.topOrder, start, end);
      }
    }
    for (let o = this.topOrder - 1; o >= 0; o--) {
      const size = 2 ** o;
      for (const pfn of [...this.sets[o]!]) {
        if (pfn + size <= start || pfn >= end) continue;
        this.sets[o]!.delete(pfn);
        taken += this.splitAround(pfn, o, start, end);
      }
    }
    return taken;
  }

  /** A removed block [pfn, pfn+2^order): return its parts outside [start, end) to the allocator. */
  private splitAround(pfn: number, order: number, start: number, end: number): number {
    const size = 2 ** order;
    if (pfn >= start && pfn + size <= end) return size;
    if (pfn + size <= start || pfn >= end) {
      this.addBlock(pfn, order);
      return 0;
    }
    const half = size / 2;
    return this.splitAround(pfn, order - 1, start, end) + this.splitAround(pfn + half, order - 1, start, end);
  }

  /** Free blocks per order, as /proc/buddyinfo prints them. */
  buddyinfo(): number[] {
    const out: number[] = [];
    for (let o = 0; o <= this.topOrder; o++) out.push(this.nrFree(o));
    return out;
  }

  /** Host bytes used (for benchmarks). */
  bytes(): number {
    let n = this.runs.length * 40;
    for (const s of this.sets) n += s.size * 24;
    return n;
  }
}

/** __ffs for pfns beyond 32 bits; __ffs(0) is treated as "any order" by callers. */
export function lowestSetBit(x: number): number {
  if (x === 0) return 64;
  let n = 0;
  let v = x;
  while (v % 2 === 0) {
    v /= 2;
    n++;
  }
  return n;
}
