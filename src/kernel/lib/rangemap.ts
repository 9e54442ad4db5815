/**
 * A map from disjoint pfn ranges to values, with the overwrite semantics of xa_store_range: storing a range
 * replaces whatever overlapped it, trimming neighbours.
 */
export interface RangeEntry<T> {
  start: number;
  /** Inclusive, as xarray ranges are. */
  last: number;
  value: T;
}

export class RangeMap<T> {
  private entries: RangeEntry<T>[] = [];

  private lowerBound(pfn: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.last < pfn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** xa_load */
  get(pfn: number): T | undefined {
    const e = this.entries[this.lowerBound(pfn)];
    return e && e.start <= pfn ? e.value : undefined;
  }

  /** xa_store_range(start, last, value); value undefined erases. */
  store(start: number, last: number, value: T | undefined): void {
    const i = this.lowerBound(start);
    let j = i;
    const keep: RangeEntry<T>[] = [];
    for (; j < this.entries.length; j++) {
      const e = this.entries[j]!;
      if (e.start > last) break;
      if (e.start < start) keep.push({ start: e.start, last: start - 1, value: e.value });
      if (e.last > last) keep.push({ start: last + 1, last: e.last, value: e.value });
    }
    const before = keep.filter((e) => e.last < start);
    const after = keep.filter((e) => e.start > last);
    const mid = value === undefined ? [] : [{ start, last, value }];
    this.entries.splice(i, j - i, ...before, ...mid, ...after);
  }

  all(): readonly RangeEntry<T>[] {
    return this.entries;
  }
}
