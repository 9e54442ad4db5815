/**
 * The memmap: `struct page` state for every pfn that has one, stored lazily.
 *
 * Two layers, so memory grows with pages touched rather than pages present:
 * - extents: sorted, non-overlapping pfn ranges whose pages are all in one uniform state (what memmap init
 *   leaves behind: "zone DMA32, node 0, refcount 0, free"), described once per range;
 * - per-section typed arrays, created when a page in that section is first written, filled from the extents.
 *
 * Every page is in one lifecycle state: no memmap (never populated, or depopulated), allocated but
 * uninitialised (vmemmap backed but not yet initialised, e.g. the altmap reserve), initialised, or torn down
 * (poisoned by removal). The sanitizer (later issues) reads these states through the accessors here.
 */
import type { Geometry } from "../../arch/profiles.ts";
import { nextStamp, REWIND, type Rewindable } from "../lib/rewind.ts";

// Page flag bits in 6.1 x86_64 (include/linux/page-flags.h enum pageflags).
export const PG_locked = 0;
export const PG_referenced = 1;
export const PG_uptodate = 2;
export const PG_dirty = 3;
export const PG_lru = 4;
export const PG_reserved = 12;
export const PG_head = 16;
export const PG_hwpoison = 23;

export const PAGE_FLAG_NAMES: Record<number, string> = {
  [PG_locked]: "locked",
  [PG_referenced]: "referenced",
  [PG_uptodate]: "uptodate",
  [PG_dirty]: "dirty",
  [PG_lru]: "lru",
  [PG_reserved]: "reserved",
  [PG_head]: "head",
  [PG_hwpoison]: "hwpoison",
};

export enum PageState {
  /** No struct page backs this pfn (section or sub-section not populated). */
  NoMemmap = 0,
  /** vmemmap is populated but the struct page was never initialised. */
  Uninitialised = 1,
  Initialised = 2,
  /** Removed by memory hot-remove / memunmap_pages; any access is a use-after-free. */
  TornDown = 3,
}

/** One struct page, as read out of the store (a snapshot, not a live object). */
export interface PageValue {
  state: PageState;
  flags: number;
  zone: number;
  node: number;
  refcount: number;
  /** _mapcount + 1, i.e. the number of mappings (the kernel stores -1 for "unmapped"). */
  mapcount: number;
  /** dev_pagemap id, 0 for none. */
  pgmap: number;
  /** pfn of the compound head, -1 when not a tail page. */
  compoundHead: number;
  /** compound order on the head page (0 otherwise). */
  order: number;
  /** compound_pincount on the head (FOLL_PIN on large folios). */
  pincount: number;
  /** page->mapping: the address_space id (0 = NULL). */
  mapping: number;
  /** page->index: the file page offset while mapping is set. */
  index: number;
}

export const NO_PAGE: Readonly<PageValue> = Object.freeze({
  state: PageState.NoMemmap,
  flags: 0,
  zone: 0,
  node: 0,
  refcount: 0,
  mapcount: 0,
  pgmap: 0,
  compoundHead: -1,
  order: 0,
  pincount: 0,
  mapping: 0,
  index: 0,
});

/** Shared frozen values for the states whole ranges are set to (identity makes coalescing cheap). */
export const UNINITIALISED_PAGE: Readonly<PageValue> = Object.freeze({ ...NO_PAGE, state: PageState.Uninitialised });
export const TORN_DOWN_PAGE: Readonly<PageValue> = Object.freeze({ ...NO_PAGE, state: PageState.TornDown });

export function pageValue(over: Partial<PageValue>): PageValue {
  return { ...NO_PAGE, state: PageState.Initialised, ...over };
}

/** Compound pages laid out from `base`: every 2^order pages a head (the extent's value), then tails. */
export interface CompoundLayout {
  readonly order: number;
  readonly base: number;
  /** A tail page's value; its compoundHead is filled in per page. */
  readonly tail: Readonly<PageValue>;
}

interface Extent {
  start: number;
  /** Exclusive. */
  end: number;
  value: Readonly<PageValue>;
  compound?: CompoundLayout;
}

function extentPage(e: Extent, pfn: number): PageValue {
  if (!e.compound) return { ...e.value };
  const off = (pfn - e.compound.base) % 2 ** e.compound.order;
  if (off === 0) return { ...e.value };
  return { ...e.compound.tail, compoundHead: pfn - off };
}

/** One field of extentPage(e, pfn), without building the page. */
function extentField(e: Extent, pfn: number, f: PageField): number {
  const c = e.compound;
  if (!c) return e.value[f];
  const off = (pfn - c.base) % 2 ** c.order;
  if (off === 0) return e.value[f];
  return f === "compoundHead" ? pfn - off : c.tail[f];
}

const SECTION_FIELDS = ["state", "flags", "zone", "node", "refcount", "mapcount", "pgmap", "compoundHead", "order", "pincount", "mapping", "index"] as const;

/** One section's struct pages, one typed array per field. Reached through mm/page_access.ts only. */
export class SectionPages implements Rewindable {
  /** Indices [dirtyLo, dirtyHi) take in every write since the last snapshot or rewind (Memmap marks them). */
  private dirtyLo = Number.POSITIVE_INFINITY;
  private dirtyHi = 0;
  /** The snapshot that last synced these arrays: another one's rewind copies them back whole. */
  private syncedBy: object | null = null;
  readonly state: Uint8Array;
  readonly flags: Uint32Array;
  readonly zone: Uint8Array;
  readonly node: Uint16Array;
  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly pgmap: Uint32Array;
  readonly compoundHead: Float64Array;
  readonly order: Uint8Array;
  readonly pincount: Int32Array;
  readonly mapping: Uint32Array;
  readonly index: Float64Array;

  constructor(n: number) {
    this.state = new Uint8Array(n);
    this.flags = new Uint32Array(n);
    this.zone = new Uint8Array(n);
    this.node = new Uint16Array(n);
    this.refcount = new Int32Array(n);
    this.mapcount = new Int32Array(n);
    this.pgmap = new Uint32Array(n);
    this.compoundHead = new Float64Array(n).fill(-1);
    this.order = new Uint8Array(n);
    this.pincount = new Int32Array(n);
    this.mapping = new Uint32Array(n);
    this.index = new Float64Array(n);
  }

  static readonly BYTES_PER_PAGE = 1 + 4 + 1 + 2 + 4 + 4 + 4 + 8 + 1 + 4 + 4 + 8;

  /** Indices [lo, hi) are about to be written, or were handed out for writing. */
  touch(lo: number, hi: number): void {
    if (lo < this.dirtyLo) this.dirtyLo = lo;
    if (hi > this.dirtyHi) this.dirtyHi = hi;
  }

  /** A copy of the arrays; putting it back copies only what was written since it was taken or last put back. */
  [REWIND](): () => void {
    const copies = SECTION_FIELDS.map((f) => this[f].slice());
    const token = {};
    this.syncedBy = token;
    this.dirtyLo = Number.POSITIVE_INFINITY;
    this.dirtyHi = 0;
    return () => {
      const whole = this.syncedBy !== token;
      const lo = whole ? 0 : this.dirtyLo;
      const hi = whole ? this.state.length : this.dirtyHi;
      if (lo < hi) {
        SECTION_FIELDS.forEach((f, i) => {
          (this[f] as Uint8Array).set((copies[i] as Uint8Array).subarray(lo, hi), lo);
        });
      }
      this.syncedBy = token;
      this.dirtyLo = Number.POSITIVE_INFINITY;
      this.dirtyHi = 0;
    };
  }

  fill(lo: number, hi: number, v: Readonly<PageValue>): void {
    this.state.fill(v.state, lo, hi);
    this.flags.fill(v.flags, lo, hi);
    this.zone.fill(v.zone, lo, hi);
    this.node.fill(v.node, lo, hi);
    this.refcount.fill(v.refcount, lo, hi);
    this.mapcount.fill(v.mapcount, lo, hi);
    this.pgmap.fill(v.pgmap, lo, hi);
    this.compoundHead.fill(v.compoundHead, lo, hi);
    this.order.fill(v.order, lo, hi);
    this.pincount.fill(v.pincount, lo, hi);
    this.mapping.fill(v.mapping, lo, hi);
    this.index.fill(v.index, lo, hi);
  }

  put(i: number, v: Readonly<PageValue>): void {
    this.fill(i, i + 1, v);
  }

  /**
   * Indices [lo, hi) (pfns base + lo …) laid out as compound pages: tails everywhere, then each head's value and
   * each block's compoundHead — a fill per field and per compound page instead of a write per struct page.
   */
  fillCompound(lo: number, hi: number, base: number, head: Readonly<PageValue>, c: CompoundLayout): void {
    this.fill(lo, hi, c.tail);
    const size = 2 ** c.order;
    const first = base + lo;
    for (let h = c.base + Math.floor((first - c.base) / size) * size; h < base + hi; h += size) {
      const i = h - base;
      if (i >= lo) this.put(i, head);
      const from = Math.max(lo, i + 1);
      const to = Math.min(hi, i + size);
      if (to > from) this.compoundHead.fill(h, from, to);
    }
  }

  /** Are all of [lo, hi) initialised? */
  allInitialised(lo: number, hi: number): boolean {
    const st = this.state;
    for (let i = lo; i < hi; i++) if (st[i] !== PageState.Initialised) return false;
    return true;
  }

  get(i: number): PageValue {
    return {
      state: this.state[i]!,
      flags: this.flags[i]!,
      zone: this.zone[i]!,
      node: this.node[i]!,
      refcount: this.refcount[i]!,
      mapcount: this.mapcount[i]!,
      pgmap: this.pgmap[i]!,
      compoundHead: this.compoundHead[i]!,
      order: this.order[i]!,
      pincount: this.pincount[i]!,
      mapping: this.mapping[i]!,
      index: this.index[i]!,
    };
  }
}

export type PageField = Exclude<keyof PageValue, "state">;

/** How many dropped sections a Memmap keeps to fill again rather than allocate (spareSections). */
const SPARE_SECTIONS = 4;

export class Memmap implements Rewindable {
  private readonly pagesPerSection: number;
  private extents: Extent[] = [];
  private readonly sections = new Map<number, SectionPages>();
  /** Names the pages' states (PageState): a new stamp (lib/rewind.ts nextStamp) whenever one may change. */
  stateStamp = nextStamp();
  /** The last section looked up (hot loops stay inside one section for hundreds of pages). */
  private lastNr = -1;
  private lastArr: SectionPages | undefined = undefined;

  /**
   * Sections dropped (a range write covered them, or a rewind to a snapshot made before them): the next
   * materialise fills one of these instead of allocating twelve arrays — a schedule that writes a device page
   * materialises its section again. Not state: no snapshot saves or restores it.
   */
  private readonly spareSections: SectionPages[] = [];

  constructor(geo: Geometry) {
    this.pagesPerSection = geo.pagesPerSection;
  }

  /**
   * Extents (never changed in place, so the array's copy is enough), the section map, and each section's own
   * rewind (only what was written since is copied back).
   */
  [REWIND](): () => void {
    const extents = this.extents.slice();
    const sections = [...this.sections];
    const saved = new Set(sections.map(([, arr]) => arr));
    const rewinds = sections.map(([, arr]) => arr[REWIND]());
    const { stateStamp, lastNr, lastArr } = this;
    return () => {
      // A spare the snapshot holds goes back into its section; the sections made since become spares.
      const spares = this.spareSections.filter((arr) => !saved.has(arr));
      this.spareSections.length = 0;
      for (const arr of spares) this.spare(arr);
      for (const arr of this.sections.values()) if (!saved.has(arr)) this.spare(arr);
      this.extents = extents.slice();
      this.sections.clear();
      for (const [nr, arr] of sections) this.sections.set(nr, arr);
      for (const rewind of rewinds) rewind();
      this.stateStamp = stateStamp;
      this.lastNr = lastNr;
      this.lastArr = lastArr;
    };
  }

  private section(nr: number): SectionPages | undefined {
    if (nr === this.lastNr) return this.lastArr;
    const arr = this.sections.get(nr);
    this.lastNr = nr;
    this.lastArr = arr;
    return arr;
  }

  private dropSection(nr: number): void {
    const arr = this.sections.get(nr);
    this.sections.delete(nr);
    if (nr === this.lastNr) this.lastNr = -1;
    if (arr) this.spare(arr);
  }

  private spare(arr: SectionPages): void {
    if (this.spareSections.length < SPARE_SECTIONS) this.spareSections.push(arr);
  }

  /** Index of the first extent whose end is > pfn. */
  private lowerBound(pfn: number): number {
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.extents[mid]!.end <= pfn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private extentValue(pfn: number): PageValue {
    const e = this.extents[this.lowerBound(pfn)];
    return e && e.start <= pfn ? extentPage(e, pfn) : { ...NO_PAGE };
  }

  private extentAt(pfn: number): Extent | undefined {
    const e = this.extents[this.lowerBound(pfn)];
    return e && e.start <= pfn ? e : undefined;
  }

  /** Set every page in [start, end) to `value`: the way memmap init and teardown write whole ranges. */
  setRange(start: number, end: number, value: Readonly<PageValue>, compound?: CompoundLayout): void {
    if (end <= start) return;
    this.stateStamp = nextStamp();
    const frozen = Object.isFrozen(value) ? value : Object.freeze({ ...value });
    const layout = compound ? Object.freeze({ ...compound, tail: Object.freeze({ ...compound.tail }) }) : undefined;
    const i = this.lowerBound(start);
    const next = this.extents[i];
    // Already so: a teardown that re-marks torn-down pages section by section costs nothing.
    if (next && next.start <= start && next.end >= end && !next.compound && !layout && this.sections.size === 0 && (next.value === frozen || samePage(next.value, frozen))) return;
    if ((!next || next.start >= end) && frozen.state !== PageState.NoMemmap && this.sections.size === 0) {
      // Fast path: [start, end) falls in a gap (typically just past the last extent, as hot-add goes).
      this.extents.splice(i, 0, layout ? { start, end, value: frozen, compound: layout } : { start, end, value: frozen });
      this.coalesce(Math.max(0, i - 1), Math.min(this.extents.length - 1, i + 1));
      return;
    }
    const out: Extent[] = [];
    let j = i;
    for (; j < this.extents.length; j++) {
      const e = this.extents[j]!;
      if (e.start >= end) break;
      if (e.start < start) out.push({ ...e, end: start });
      if (e.end > end) out.push({ ...e, start: end });
    }
    // Keep the pieces of overlapped extents that stay outside [start, end), then the new extent, in order.
    const before = out.filter((e) => e.end <= start);
    const after = out.filter((e) => e.start >= end);
    const merged: Extent[] = [...before];
    if (frozen.state !== PageState.NoMemmap) merged.push(layout ? { start, end, value: frozen, compound: layout } : { start, end, value: frozen });
    merged.push(...after);
    this.extents.splice(i, j - i, ...merged);
    // Coalesce with equal neighbours so range-by-range fills (a section at a time) keep the list short.
    this.coalesce(Math.max(0, i - 1), Math.min(this.extents.length - 1, i + merged.length));
    // Pages already materialised take the new value too; a fully covered section goes back to extents.
    for (let nr = Math.floor(start / this.pagesPerSection); nr * this.pagesPerSection < end; nr++) {
      const arr = this.sections.get(nr);
      if (!arr) continue;
      const base = nr * this.pagesPerSection;
      const lo = Math.max(start, base) - base;
      const hi = Math.min(end, base + this.pagesPerSection) - base;
      if (lo === 0 && hi === this.pagesPerSection) {
        this.dropSection(nr);
        continue;
      }
      arr.touch(lo, hi);
      if (!layout) arr.fill(lo, hi, frozen);
      else arr.fillCompound(lo, hi, base, frozen, layout);
    }
  }

  private coalesce(from: number, to: number): void {
    for (let x = to; x > from; x--) {
      const a = this.extents[x - 1];
      const b = this.extents[x];
      if (!a || !b || a.end !== b.start || a.compound || b.compound) continue;
      if (a.value !== b.value && !samePage(a.value, b.value)) continue;
      this.extents.splice(x - 1, 2, { start: a.start, end: b.end, value: a.value });
    }
  }

  private materialise(nr: number): SectionPages {
    let arr = this.section(nr);
    if (arr) return arr;
    const spare = this.spareSections.pop();
    if (spare) {
      // Refilled whole; another snapshot may hold it, so all of it counts as written.
      spare.touch(0, this.pagesPerSection);
      spare.fill(0, this.pagesPerSection, NO_PAGE);
    }
    arr = spare ?? new SectionPages(this.pagesPerSection);
    const base = nr * this.pagesPerSection;
    const end = base + this.pagesPerSection;
    for (let i = this.lowerBound(base); i < this.extents.length; i++) {
      const e = this.extents[i]!;
      if (e.start >= end) break;
      const lo = Math.max(e.start, base) - base;
      const hi = Math.min(e.end, end) - base;
      if (!e.compound) arr.fill(lo, hi, e.value);
      else arr.fillCompound(lo, hi, base, e.value, e.compound);
    }
    this.sections.set(nr, arr);
    this.lastNr = nr;
    this.lastArr = arr;
    return arr;
  }

  /** The struct page at pfn (a copy). */
  get(pfn: number): PageValue {
    const nr = Math.floor(pfn / this.pagesPerSection);
    const arr = this.section(nr);
    if (arr) return arr.get(pfn - nr * this.pagesPerSection);
    return this.extentValue(pfn);
  }

  /** One field of the struct page at pfn, without copying the page. */
  field(pfn: number, f: PageField): number {
    const nr = Math.floor(pfn / this.pagesPerSection);
    const arr = this.section(nr);
    if (arr) return arr[f][pfn - nr * this.pagesPerSection]!;
    const e = this.extentAt(pfn);
    return e ? extentField(e, pfn, f) : NO_PAGE[f];
  }

  /**
   * Of the pages start, start + stride, … below end: push those whose `f` is above `limit` to `above`, and
   * return how many are not — field() for each of them, a section's array or an extent at a time.
   */
  partitionAbove(start: number, end: number, stride: number, f: PageField, limit: number, above: number[]): number {
    let notAbove = 0;
    let pfn = start;
    while (pfn < end) {
      const nr = Math.floor(pfn / this.pagesPerSection);
      const base = nr * this.pagesPerSection;
      const to = Math.min(end, base + this.pagesPerSection);
      const arr = this.section(nr);
      if (arr) {
        const a = arr[f];
        for (; pfn < to; pfn += stride) {
          if (a[pfn - base]! > limit) above.push(pfn);
          else notAbove++;
        }
        continue;
      }
      const e = this.extentAt(pfn);
      const stop = e ? Math.min(to, e.end) : Math.min(to, this.extents[this.lowerBound(pfn)]?.start ?? to);
      if (!e?.compound) {
        // One value for the whole run: count its pages, or list them.
        const v = e ? e.value[f] : NO_PAGE[f];
        const n = Math.ceil((stop - pfn) / stride);
        if (v > limit) for (let i = 0; i < n; i++) above.push(pfn + i * stride);
        else notAbove += n;
        pfn += n * stride;
        continue;
      }
      for (; pfn < stop; pfn += stride) {
        if (extentField(e, pfn, f) > limit) above.push(pfn);
        else notAbove++;
      }
    }
    return notAbove;
  }

  state(pfn: number): PageState {
    const nr = Math.floor(pfn / this.pagesPerSection);
    const arr = this.section(nr);
    if (arr) return arr.state[pfn - nr * this.pagesPerSection]! as PageState;
    return this.extentAt(pfn)?.value.state ?? PageState.NoMemmap;
  }

  /** Write one field of one page (materialises its section). */
  set(pfn: number, field: PageField, value: number): void {
    const nr = Math.floor(pfn / this.pagesPerSection);
    const arr = this.materialise(nr);
    const i = pfn - nr * this.pagesPerSection;
    arr.touch(i, i + 1);
    arr[field][i] = value;
  }

  setState(pfn: number, state: PageState): void {
    const nr = Math.floor(pfn / this.pagesPerSection);
    const arr = this.materialise(nr);
    const i = pfn - nr * this.pagesPerSection;
    arr.touch(i, i + 1);
    arr.state[i] = state;
    this.stateStamp = nextStamp();
  }

  /**
   * The section arrays holding [pfn, pfn + n) when that run lies in one section and every page of it is
   * initialised (materialising the section when `materialise`), else null. For mm/page_access.ts's batched
   * accessors.
   */
  runArrays(pfn: number, n: number, materialise: boolean): SectionPages | null {
    const nr = Math.floor(pfn / this.pagesPerSection);
    const off = pfn - nr * this.pagesPerSection;
    if (off + n > this.pagesPerSection) return null;
    let arr = this.section(nr);
    if (!arr) {
      const e = this.extentAt(pfn);
      if (!e || e.end < pfn + n || e.value.state !== PageState.Initialised || (e.compound && e.compound.tail.state !== PageState.Initialised)) return null;
      if (!materialise) return null;
      arr = this.materialise(nr);
    } else if (!arr.allInitialised(off, off + n)) return null;
    // Handed out for writing: counts as written.
    if (materialise) arr.touch(off, off + n);
    return arr;
  }

  /** Is every page of [pfn, pfn + n) initialised? (No materialisation.) */
  runInitialised(pfn: number, n: number): boolean {
    let p = pfn;
    const end = pfn + n;
    while (p < end) {
      const nr = Math.floor(p / this.pagesPerSection);
      const base = nr * this.pagesPerSection;
      const to = Math.min(end, base + this.pagesPerSection);
      const arr = this.section(nr);
      if (arr) {
        if (!arr.allInitialised(p - base, to - base)) return false;
        p = to;
        continue;
      }
      const e = this.extentAt(p);
      if (!e || e.value.state !== PageState.Initialised || (e.compound && e.compound.tail.state !== PageState.Initialised)) return false;
      p = Math.min(to, e.end);
    }
    return true;
  }

  /** Extents overlapping [start, end), clipped, with materialised sections shown as they are. */
  *runs(start: number, end: number): Generator<{ start: number; end: number; value: PageValue }> {
    let pfn = start;
    while (pfn < end) {
      const nr = Math.floor(pfn / this.pagesPerSection);
      const sectionEnd = Math.min(end, (nr + 1) * this.pagesPerSection);
      if (this.sections.has(nr)) {
        // Walk page by page inside a materialised section, coalescing equal neighbours.
        let runStart = pfn;
        let cur = this.get(pfn);
        for (let p = pfn + 1; p <= sectionEnd; p++) {
          const next = p < sectionEnd ? this.get(p) : null;
          if (!next || !samePage(cur, next)) {
            yield { start: runStart, end: p, value: cur };
            if (next) {
              runStart = p;
              cur = next;
            }
          }
        }
        pfn = sectionEnd;
        continue;
      }
      const i = this.lowerBound(pfn);
      const e = this.extents[i];
      if (!e || e.start >= sectionEnd) {
        const stop = e ? Math.min(e.start, end) : end;
        const to = this.nextMaterialised(pfn, stop);
        yield { start: pfn, end: to, value: { ...NO_PAGE } };
        pfn = to;
        continue;
      }
      if (e.start > pfn) {
        yield { start: pfn, end: e.start, value: { ...NO_PAGE } };
        pfn = e.start;
        continue;
      }
      const to = this.nextMaterialised(pfn, Math.min(e.end, end));
      if (e.compound) {
        // Heads and tails alternate: one run per page.
        for (let p = pfn; p < to; p++) yield { start: p, end: p + 1, value: extentPage(e, p) };
      } else {
        yield { start: pfn, end: to, value: { ...e.value } };
      }
      pfn = to;
    }
  }

  /** First section boundary in (pfn, limit] whose section is materialised, else limit. */
  private nextMaterialised(pfn: number, limit: number): number {
    if (this.sections.size === 0) return limit;
    let best = limit;
    for (const nr of this.sections.keys()) {
      const b = nr * this.pagesPerSection;
      if (b > pfn && b < best) best = b;
    }
    return best;
  }

  /** Bytes of host memory this store uses (for benchmarks and the dynamic-memmap comparison). */
  bytes(): number {
    return this.sections.size * this.pagesPerSection * SectionPages.BYTES_PER_PAGE + this.extents.length * 96;
  }

  materialisedSections(): number {
    return this.sections.size;
  }

  extentCount(): number {
    return this.extents.length;
  }
}

function samePage(a: PageValue, b: PageValue): boolean {
  return (
    a.state === b.state &&
    a.flags === b.flags &&
    a.zone === b.zone &&
    a.node === b.node &&
    a.refcount === b.refcount &&
    a.mapcount === b.mapcount &&
    a.pgmap === b.pgmap &&
    a.compoundHead === b.compoundHead &&
    a.order === b.order &&
    a.pincount === b.pincount &&
    a.mapping === b.mapping &&
    a.index === b.index
  );
}

export function flagBit(bit: number): number {
  return 2 ** bit;
}

export function testFlag(flags: number, bit: number): boolean {
  return Math.floor(flags / 2 ** bit) % 2 === 1;
}

export function flagNames(flags: number): string[] {
  const out: string[] = [];
  for (const [bit, name] of Object.entries(PAGE_FLAG_NAMES)) if (testFlag(flags, Number(bit))) out.push(name);
  return out;
}
