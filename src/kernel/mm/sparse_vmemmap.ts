/**
 * vmemmap population: where the struct pages of a hot-added range live and what they cost
 * (mm/sparse-vmemmap.c __populate_section_memmap, vmemmap_populate_compound_pages; the arch vmemmap_populate
 * and vmemmap_free of arch/x86/mm/init_64.c, arch/arm64/mm/mmu.c, arch/powerpc/mm/init_64.c).
 *
 * The memmap of pfn p lives at the vmemmap virtual address &vmemmap[p]. Addresses here are byte offsets from
 * the start of the vmemmap region (x86 vmemmap_base and powerpc's vmemmap are PUD aligned; arm64's vmemmap is
 * VMEMMAP_START - memstart_addr/PAGE_SIZE struct pages, so arm64 offsets count from memstart's struct page).
 *
 * What is modelled of the vmemmap mapping, per kernel (in k.vmemmap):
 * - x86_64 and arm64: the page tables below the PUD entry as vmemmap_populate walks them: PMD tables (one per
 *   PUD entry, when the arch has that level), PMD entries (a huge leaf, or a PTE table), PTEs (one data page
 *   each, reference counted when the compound dedup maps it several times). Only what memory hot-plug
 *   allocated is stored; what boot mapped is derived from the early sections still present (boot populated
 *   every early section's full memmap: with PMD leaves on x86_64 and arm64 4K, with base pages on arm64
 *   16K/64K), so a hot-plug table shared with boot memmap is never counted or freed as hot-plug's. PGD/P4D/PUD
 *   tables are assumed present (they span >= 512 GiB of vmemmap, i.e. >= 32 TiB of memory with 4K pages).
 * - powerpc (radix): the vmemmap_list of mmu_vmemmap_psize (2 MiB) vmemmap pages hot-plug added.
 * Allocations from RAM never fail in the model (the page allocator behind vmemmap_alloc_block is not consulted),
 * so -ENOMEM only comes from an exhausted altmap.
 *
 * Representation (state grows with the irregularity of what was done, not with the memory added):
 * - PMD entries are run-length encoded (PmdRuns): consecutive PMD indexes whose entries are alike share one
 *   record (runs are kept in buckets of 512 PMD indexes, so splitting one costs O(runs in a bucket)). A leaf mapping its whole PMD on a block nothing else refers to is implicit (only its backing is
 *   kept); a leaf used in part, or whose block something else holds, is explicit (PmdLeaf).
 * - A PTE table is compact (a short PtePattern of segments, each a rule for a range of PTEs: one fresh page per
 *   PTE; the compound dedup's "head, tail, then the tail again"; every PTE mapping one given block) or expanded
 *   (one VmemmapBlock per PTE, in ledger.ptes). Population that fills PTEs nobody mapped yet in a regular way
 *   adds a segment; removal of whole segments or whole compounds drops it. Anything else (a PTE read whose
 *   block must be named, a partial compound, a write into a table boot also maps) expands that one table first
 *   and runs the kernel's per-PTE walk on it. The fast paths are exactly what the per-PTE walk would do (the
 *   per-PTE model is kept as a reference in the tests, which compare the two).
 * - The chunk ledger is run-length encoded too (VmemmapChunks): consecutive chunks of equal size and costs,
 *   bucketed by 2^24 pfns. Removal frees collateral struct pages per freed pfn range, not per page.
 * A 64 TiB device-dax of 2 MiB pages is then ~1024 PMD runs and ~2048 chunk runs instead of 268 M PTE entries.
 *
 * Cost accounting (VmemmapChunk, per chunk populated, i.e. per section or part of one):
 * - ramBytes: memmap data pages this chunk's population allocated from RAM (base pages, PMD blocks, powerpc
 *   vmemmap pages), not page tables;
 * - altmapPfns: pfns this chunk took from the altmap (excluding the alignment padding, see altmap.align);
 * - pageTableBytes: page-table pages this chunk's population allocated for the vmemmap mapping: PTE tables
 *   (under base-page mappings) and PMD tables (under a PUD entry), one PAGE_SIZE page each, always from RAM
 *   (vmemmap_alloc_block_zero). powerpc radix maps the vmemmap with 2 MiB leaves only (no PTE tables) and its
 *   upper tables come from fragment caches: 0 there. The vmemmap_list bookkeeping is not counted either.
 * Costs are charged to the chunk whose population allocated them; a page or table reused by a later chunk costs
 * that chunk nothing, and stays allocated until the kernel frees it (see resident()).
 */
import { ENOMEM, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { NO_PAGE, TORN_DOWN_PAGE, UNINITIALISED_PAGE } from "./memmap.ts";
import { warn } from "./page_access.ts";
import { altmapAllocBlockBuf, type VmemAltmap, vmemAltmapFree } from "./vmem_altmap.ts";

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

/** One populated chunk (at most one section) and what populating its memmap allocated. */
export interface VmemmapChunk {
  startPfn: number;
  nrPages: number;
  /** Bytes of memmap data pages allocated from RAM. */
  ramBytes: number;
  /** pfns of memmap taken from the altmap (excluding alignment padding). */
  altmapPfns: number;
  /** Bytes of page-table pages (always RAM) this chunk added to the vmemmap mapping: PTE and PMD tables. */
  pageTableBytes: number;
  /** nrPages * sizeof(struct page): the memmap this chunk describes. */
  memmapBytes: number;
  /** Populated by vmemmap_populate_compound_pages (vmemmap_can_optimize). */
  optimized: boolean;
}

export interface VmemmapCost {
  ramBytes: number;
  altmapPfns: number;
  pageTableBytes: number;
  /** Memmap bytes the compound dedup did not allocate (memmapBytes - ramBytes of optimized chunks). */
  dedupSavedBytes: number;
}

export type VmemmapBacking = "ram" | "altmap" | "foreign";

/**
 * A block of memory backing vmemmap: a base page, a PMD block or a powerpc vmemmap page. "foreign" stands for
 * a page hot-plug did not allocate that a PTE ends up pointing at (see compoundSectionTailPage).
 */
export interface VmemmapBlock {
  readonly backing: VmemmapBacking;
  /** First pfn taken from the altmap (powerpc's vmemmap_free checks it); -1 when not known or not an altmap block. */
  readonly altmapPfn: number;
  readonly bytes: number;
  /** bytes >> PAGE_SHIFT */
  readonly nrPfns: number;
  /** PTEs mapping it (page refcount; the compound dedup takes one per extra PTE with get_page). */
  refs: number;
  freed: boolean;
}

export interface PmdLeaf {
  readonly block: VmemmapBlock;
  /** x86 sub-PMD use: vmemmap ranges not PAGE_UNUSED (vmemmap_use_sub_pmd / vmemmap_pmd_is_unused). */
  used: Array<[number, number]>;
}

/** Where a compact PTE table's PTEs in [lo, hi) (indexes in the table) point. */
export type PteRule =
  /** Each PTE maps a page of its own, allocated for it (refcount 1). */
  | { readonly kind: "unique"; readonly backing: "ram" | "altmap" }
  /**
   * Compound dedup from RAM: from lo, every `compound` PTEs are one compound page's vmemmap: a head page, a
   * tail page, then the tail page again (refcount compound - 1). hi - lo is a multiple of compound.
   */
  | { readonly kind: "dedup"; readonly compound: number }
  /** Every PTE maps `block` (its refs count them). */
  | { readonly kind: "alias"; readonly block: VmemmapBlock };

export interface PteSeg {
  readonly lo: number;
  readonly hi: number;
  readonly rule: PteRule;
}

/** Sorted, disjoint, non-empty segments; PTEs outside them are none. Immutable (shared between tables). */
export type PtePattern = readonly PteSeg[];

/** A PMD entry holding a hot-plug leaf. */
export interface PmdLeafEntry {
  readonly kind: "leaf";
  readonly backing: "ram" | "altmap";
  /** null: the leaf maps its whole PMD in use, on a block only it refers to (implicit, see leafBlock). */
  readonly leaf: PmdLeaf | null;
}

/** A PTE table holding hot-plug PTEs (or allocated by hot-plug). */
export interface PteTableEntry {
  readonly kind: "table";
  /** Allocated by memory hot-plug (else boot allocated it and only its hot-plug entries are tracked). */
  readonly hot: boolean;
  /** Hot-plug PTEs present in it. */
  entries: number;
  /** Compact form, or null when expanded (its PTEs are in ledger.ptes). Compact tables are hot. */
  pattern: PtePattern | null;
}

export type PmdEntry = PmdLeafEntry | PteTableEntry;

/** PMD indexes first .. first + count - 1, each holding an entry like `entry`. */
export interface PmdRun {
  first: number;
  count: number;
  /** Owned by this run; only changed in place while count is 1. */
  entry: PmdEntry;
}

export interface PmdTable {
  /** Allocated by memory hot-plug (else boot allocated it and only its hot-plug entries are tracked). */
  readonly hot: boolean;
  readonly bytes: number;
  /** PMD indexes in it holding a hot-plug leaf or a tracked PTE table. */
  entries: number;
}

const LEAF_RAM: PmdLeafEntry = Object.freeze({ kind: "leaf", backing: "ram", leaf: null });
const LEAF_ALTMAP: PmdLeafEntry = Object.freeze({ kind: "leaf", backing: "altmap", leaf: null });
const EMPTY_PATTERN: PtePattern = Object.freeze([]);

function samePattern(a: PtePattern, b: PtePattern): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let x = 0; x < a.length; x++) {
    const s = a[x]!;
    const t = b[x]!;
    if (s.lo !== t.lo || s.hi !== t.hi || !sameRule(s.rule, t.rule)) return false;
  }
  return true;
}

function sameRule(a: PteRule, b: PteRule): boolean {
  if (a === b) return true;
  switch (a.kind) {
    case "unique":
      return b.kind === "unique" && a.backing === b.backing;
    case "dedup":
      return b.kind === "dedup" && a.compound === b.compound;
    case "alias":
      return b.kind === "alias" && a.block === b.block;
  }
}

/** Can two adjacent PMD indexes share one run? (Explicit leaves and expanded tables are per index.) */
function mergeable(a: PmdEntry, b: PmdEntry): boolean {
  if (a.kind === "leaf") return b.kind === "leaf" && a.leaf === null && b.leaf === null && a.backing === b.backing;
  if (b.kind !== "table") return false;
  return a.hot === b.hot && a.entries === b.entries && a.pattern !== null && b.pattern !== null && samePattern(a.pattern, b.pattern);
}

function cloneEntry(e: PmdEntry): PmdEntry {
  return e.kind === "leaf" ? e : { kind: "table", hot: e.hot, entries: e.entries, pattern: e.pattern };
}

/** Sorted keys of a Map of buckets, cached until a bucket comes or goes. */
class BucketKeys {
  private sorted: number[] | null = null;
  invalidate(): void {
    this.sorted = null;
  }
  of(buckets: Map<number, unknown>): number[] {
    if (!this.sorted) this.sorted = [...buckets.keys()].sort((a, b) => a - b);
    return this.sorted;
  }
}

/** PMD indexes per bucket of PmdRuns: a run never crosses a bucket, so any splice is over one bucket's runs. */
const PMD_BUCKET = 512;

/** PMD entries hot-plug installed (or tracks), keyed by PMD index (address / PMD_SIZE), run-length encoded. */
export class PmdRuns {
  /** Runs by bucket (PMD index / PMD_BUCKET), each sorted by first and disjoint. */
  private readonly buckets = new Map<number, PmdRun[]>();
  private readonly order = new BucketKeys();

  /** Every run, in PMD index order. */
  *all(): Generator<PmdRun> {
    for (const b of this.order.of(this.buckets)) yield* this.buckets.get(b) ?? [];
  }

  runCount(): number {
    let n = 0;
    for (const runs of this.buckets.values()) n += runs.length;
    return n;
  }

  private bucket(i: number, create: boolean): PmdRun[] | undefined {
    const b = Math.floor(i / PMD_BUCKET);
    let runs = this.buckets.get(b);
    if (!runs && create) {
      runs = [];
      this.buckets.set(b, runs);
      this.order.invalidate();
    }
    return runs;
  }

  private dropIfEmpty(i: number, runs: PmdRun[]): void {
    if (runs.length > 0) return;
    this.buckets.delete(Math.floor(i / PMD_BUCKET));
    this.order.invalidate();
  }

  /** Index in runs of the run holding i, else -(where a run for i would be inserted) - 1. */
  private static find(runs: PmdRun[], i: number): number {
    let hi = runs.length;
    if (hi === 0) return -1;
    // Hot-plug mostly works at the end.
    const last = runs[hi - 1]!;
    if (i >= last.first) return i < last.first + last.count ? hi - 1 : -hi - 1;
    let lo = 0;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = runs[mid]!;
      if (r.first + r.count <= i) lo = mid + 1;
      else hi = mid;
    }
    return lo < runs.length && runs[lo]!.first <= i ? lo : -lo - 1;
  }

  get(i: number): PmdEntry | undefined {
    const runs = this.bucket(i, false);
    if (!runs) return undefined;
    const x = PmdRuns.find(runs, i);
    return x >= 0 ? runs[x]!.entry : undefined;
  }

  /** Install an entry at an index that has none. */
  set(i: number, e: PmdEntry): void {
    const runs = this.bucket(i, true)!;
    const x = -PmdRuns.find(runs, i) - 1;
    if (x < 0) throw new Error(`PMD index ${i} is already present`);
    const prev = runs[x - 1];
    const next = runs[x];
    const joinPrev = prev !== undefined && prev.first + prev.count === i && mergeable(prev.entry, e);
    const joinNext = next !== undefined && next.first === i + 1 && mergeable(next.entry, e);
    if (joinPrev && joinNext) {
      prev.count += 1 + next.count;
      runs.splice(x, 1);
    } else if (joinPrev) {
      prev.count++;
    } else if (joinNext) {
      next.first = i;
      next.count++;
    } else {
      runs.splice(x, 0, { first: i, count: 1, entry: e });
    }
  }

  /**
   * Install a hot-plug PTE table at i (which has no entry) if it just extends the run before it (nothing
   * allocated): the way hot-plug fills a range section after section.
   */
  extendLast(i: number, entries: number, pattern: PtePattern): boolean {
    const runs = this.bucket(i, false);
    const last = runs?.[runs.length - 1];
    if (!last || last.first + last.count !== i) return false;
    const e = last.entry;
    if (e.kind !== "table" || !e.hot || e.entries !== entries || e.pattern === null || !samePattern(e.pattern, pattern)) return false;
    last.count++;
    return true;
  }

  /** The run of i alone (split off its neighbours), so its entry can be changed or replaced. */
  own(i: number): PmdRun {
    const runs = this.bucket(i, false) ?? [];
    const x = PmdRuns.find(runs, i);
    const r = runs[x];
    if (x < 0 || !r) throw new Error(`PMD index ${i} is not present`);
    if (r.count === 1) return r;
    const mine: PmdRun = { first: i, count: 1, entry: cloneEntry(r.entry) };
    if (i === r.first) {
      r.first++;
      r.count--;
      runs.splice(x, 0, mine);
    } else if (i === r.first + r.count - 1) {
      r.count--;
      runs.splice(x + 1, 0, mine);
    } else {
      const after: PmdRun = { first: i + 1, count: r.first + r.count - (i + 1), entry: cloneEntry(r.entry) };
      r.count = i - r.first;
      runs.splice(x + 1, 0, mine, after);
    }
    return mine;
  }

  /** The entry of i was changed (through own): join equal neighbours again. */
  settle(i: number): void {
    const runs = this.bucket(i, false) ?? [];
    const x = PmdRuns.find(runs, i);
    const r = runs[x];
    if (x < 0 || !r) return;
    const next = runs[x + 1];
    if (next && r.first + r.count === next.first && mergeable(r.entry, next.entry)) {
      r.count += next.count;
      runs.splice(x + 1, 1);
    }
    const prev = runs[x - 1];
    if (prev && prev.first + prev.count === r.first && mergeable(prev.entry, r.entry)) {
      prev.count += r.count;
      runs.splice(x, 1);
    }
  }

  delete(i: number): void {
    const runs = this.bucket(i, false);
    if (!runs) return;
    const x = PmdRuns.find(runs, i);
    const r = runs[x];
    if (x < 0 || !r) return;
    if (r.count === 1) {
      runs.splice(x, 1);
      this.dropIfEmpty(i, runs);
    } else if (i === r.first) {
      r.first++;
      r.count--;
    } else if (i === r.first + r.count - 1) {
      r.count--;
    } else {
      const after: PmdRun = { first: i + 1, count: r.first + r.count - (i + 1), entry: cloneEntry(r.entry) };
      r.count = i - r.first;
      runs.splice(x + 1, 0, after);
    }
  }
}

/** Consecutive chunks of one size with equal costs. */
interface ChunkRun {
  start: number;
  count: number;
  readonly nrPages: number;
  readonly ramBytes: number;
  readonly altmapPfns: number;
  readonly pageTableBytes: number;
  readonly memmapBytes: number;
  readonly optimized: boolean;
}

function sameCosts(r: ChunkRun, c: VmemmapChunk): boolean {
  return (
    r.nrPages === c.nrPages &&
    r.ramBytes === c.ramBytes &&
    r.altmapPfns === c.altmapPfns &&
    r.pageTableBytes === c.pageTableBytes &&
    r.memmapBytes === c.memmapBytes &&
    r.optimized === c.optimized
  );
}

function runChunk(r: ChunkRun, t: number): VmemmapChunk {
  return {
    startPfn: r.start + t * r.nrPages,
    nrPages: r.nrPages,
    ramBytes: r.ramBytes,
    altmapPfns: r.altmapPfns,
    pageTableBytes: r.pageTableBytes,
    memmapBytes: r.memmapBytes,
    optimized: r.optimized,
  };
}

function runEnd(r: ChunkRun): number {
  return r.start + r.count * r.nrPages;
}

/**
 * pfns per bucket of VmemmapChunks (by chunk start). A multiple of every section size, so no chunk crosses a
 * bucket, and neither does a run.
 */
const CHUNK_BUCKET = 2 ** 24;

/**
 * The populated chunks, keyed by start pfn: a read-only Map view over runs of consecutive chunks with equal
 * costs (a 64 TiB device is a few runs per 64 GiB bucket). The chunks handed out are copies.
 */
export class VmemmapChunks {
  private readonly buckets = new Map<number, ChunkRun[]>();
  private readonly order = new BucketKeys();
  private n = 0;

  get size(): number {
    return this.n;
  }

  runCount(): number {
    let n = 0;
    for (const runs of this.buckets.values()) n += runs.length;
    return n;
  }

  /** Index in runs of the last run starting at or before pfn, -1 if none. */
  private static before(runs: ChunkRun[], pfn: number): number {
    let hi = runs.length;
    if (hi === 0 || runs[hi - 1]!.start <= pfn) return hi - 1;
    let lo = 0;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (runs[mid]!.start <= pfn) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The runs of the buckets [lo, hi) touches, in order. */
  private *runsIn(lo: number, hi: number): Generator<ChunkRun> {
    const bLo = Math.floor(lo / CHUNK_BUCKET);
    const bHi = Math.floor((hi - 1) / CHUNK_BUCKET);
    if (bHi < bLo) return;
    if (bHi - bLo + 1 <= this.buckets.size) {
      for (let b = bLo; b <= bHi; b++) {
        const runs = this.buckets.get(b);
        if (!runs) continue;
        for (let x = b === bLo ? Math.max(0, VmemmapChunks.before(runs, lo)) : 0; x < runs.length; x++) yield runs[x]!;
      }
      return;
    }
    for (const b of this.order.of(this.buckets)) if (b >= bLo && b <= bHi) yield* this.buckets.get(b) ?? [];
  }

  /** Bucket, run index in it and index in the run of the chunk starting at pfn. */
  private locate(pfn: number): [ChunkRun[], number, number] | null {
    const runs = this.buckets.get(Math.floor(pfn / CHUNK_BUCKET));
    if (!runs) return null;
    const x = VmemmapChunks.before(runs, pfn);
    const r = runs[x];
    if (!r) return null;
    const off = pfn - r.start;
    if (off % r.nrPages !== 0 || off >= r.count * r.nrPages) return null;
    return [runs, x, off / r.nrPages];
  }

  get(pfn: number): VmemmapChunk | undefined {
    const at = this.locate(pfn);
    return at ? runChunk(at[0][at[1]]!, at[2]) : undefined;
  }

  has(pfn: number): boolean {
    return this.locate(pfn) !== null;
  }

  *values(): Generator<VmemmapChunk> {
    for (const b of this.order.of(this.buckets)) {
      for (const r of this.buckets.get(b) ?? []) for (let t = 0; t < r.count; t++) yield runChunk(r, t);
    }
  }

  *keys(): Generator<number> {
    for (const c of this.values()) yield c.startPfn;
  }

  *entries(): Generator<[number, VmemmapChunk]> {
    for (const c of this.values()) yield [c.startPfn, c];
  }

  [Symbol.iterator](): Generator<[number, VmemmapChunk]> {
    return this.entries();
  }

  /** Chunks starting in [lo, hi). */
  startingIn(lo: number, hi: number): VmemmapChunk[] {
    const out: VmemmapChunk[] = [];
    for (const r of this.runsIn(lo, hi)) {
      if (r.start >= hi) break;
      const tLo = Math.max(0, Math.ceil((lo - r.start) / r.nrPages));
      const tHi = Math.min(r.count, Math.ceil((hi - r.start) / r.nrPages));
      for (let t = tLo; t < tHi; t++) out.push(runChunk(r, t));
    }
    return out;
  }

  /** Per run, the part of [lo, hi) its chunks cover. */
  spansIn(lo: number, hi: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const r of this.runsIn(lo, hi)) {
      if (r.start >= hi) break;
      const a = Math.max(lo, r.start);
      const b = Math.min(hi, runEnd(r));
      if (a < b) out.push([a, b]);
    }
    return out;
  }

  /** Sum over the chunks starting inside [startPfn, endPfn). */
  cost(startPfn: number, endPfn: number): VmemmapCost {
    const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0, dedupSavedBytes: 0 };
    for (const r of this.runsIn(startPfn, endPfn)) {
      const tLo = Math.max(0, Math.ceil((startPfn - r.start) / r.nrPages));
      const tHi = Math.min(r.count, Math.ceil((endPfn - r.start) / r.nrPages));
      if (tHi <= tLo) continue;
      const n = tHi - tLo;
      out.ramBytes += n * r.ramBytes;
      out.altmapPfns += n * r.altmapPfns;
      out.pageTableBytes += n * r.pageTableBytes;
      if (r.optimized) out.dedupSavedBytes += n * (r.memmapBytes - r.ramBytes);
    }
    return out;
  }

  insert(c: VmemmapChunk): void {
    const b = Math.floor(c.startPfn / CHUNK_BUCKET);
    let runs = this.buckets.get(b);
    if (!runs) {
      runs = [];
      this.buckets.set(b, runs);
      this.order.invalidate();
    }
    const x = VmemmapChunks.before(runs, c.startPfn);
    const prev = runs[x];
    const next = runs[x + 1];
    const joinPrev = prev !== undefined && runEnd(prev) === c.startPfn && sameCosts(prev, c);
    const joinNext = next !== undefined && c.startPfn + c.nrPages === next.start && sameCosts(next, c);
    if (joinPrev && joinNext) {
      prev.count += 1 + next.count;
      runs.splice(x + 1, 1);
    } else if (joinPrev) {
      prev.count++;
    } else if (joinNext) {
      next.start = c.startPfn;
      next.count++;
    } else {
      runs.splice(x + 1, 0, {
        start: c.startPfn,
        count: 1,
        nrPages: c.nrPages,
        ramBytes: c.ramBytes,
        altmapPfns: c.altmapPfns,
        pageTableBytes: c.pageTableBytes,
        memmapBytes: c.memmapBytes,
        optimized: c.optimized,
      });
    }
    this.n++;
  }

  remove(pfn: number): VmemmapChunk | undefined {
    const at = this.locate(pfn);
    if (!at) return undefined;
    const [runs, x, t] = at;
    const r = runs[x]!;
    const c = runChunk(r, t);
    if (r.count === 1) {
      runs.splice(x, 1);
      if (runs.length === 0) {
        this.buckets.delete(Math.floor(pfn / CHUNK_BUCKET));
        this.order.invalidate();
      }
    } else if (t === 0) {
      r.start += r.nrPages;
      r.count--;
    } else if (t === r.count - 1) {
      r.count--;
    } else {
      runs.splice(x + 1, 0, { ...r, start: c.startPfn + r.nrPages, count: r.count - t - 1 });
      r.count = t;
    }
    this.n--;
    return c;
  }
}

/** Every populated chunk, keyed by start pfn, and the vmemmap mapping memory hot-plug built. */
export class VmemmapLedger {
  readonly chunks = new VmemmapChunks();
  ramBytes = 0;
  altmapPfns = 0;
  pageTableBytes = 0;
  dedupSavedBytes = 0;

  /** PMD leaves and PTE tables hot-plug installed (or tracks), by PMD index. */
  readonly pmds = new PmdRuns();
  /** PTEs of expanded PTE tables, keyed by vmemmap page index (address / PAGE_SIZE). */
  readonly ptes = new Map<number, VmemmapBlock>();
  /** PMD tables holding hot-plug entries (or allocated by hot-plug), keyed by PUD index. */
  readonly pmdTables = new Map<number, PmdTable>();
  /** powerpc vmemmap_list entries hot-plug added, keyed by vmemmap page index (address / mmu_vmemmap_psize). */
  readonly vmemmapList = new Map<number, VmemmapBlock>();
  /** arm64 memstart_addr >> PAGE_SHIFT (fixed at the first vmemmap operation). */
  memstartPfn: number | null = null;
  /** WARN_ON_ONCE in __populate_section_memmap fired. */
  warnedMisaligned = false;
  /** The kernel's vmemmap geometry (fixed at the first vmemmap operation). */
  geo: VmemmapGeo | null = null;
  /** The last pattern a table was given: tables filled alike share it. */
  lastPattern: PtePattern = EMPTY_PATTERN;

  add(c: VmemmapChunk): void {
    this.chunks.insert(c);
    this.ramBytes += c.ramBytes;
    this.altmapPfns += c.altmapPfns;
    this.pageTableBytes += c.pageTableBytes;
    if (c.optimized) this.dedupSavedBytes += c.memmapBytes - c.ramBytes;
  }

  take(startPfn: number): VmemmapChunk | undefined {
    const c = this.chunks.remove(startPfn);
    if (!c) return undefined;
    this.ramBytes -= c.ramBytes;
    this.altmapPfns -= c.altmapPfns;
    this.pageTableBytes -= c.pageTableBytes;
    if (c.optimized) this.dedupSavedBytes -= c.memmapBytes - c.ramBytes;
    return c;
  }

  /** Sum over the chunks starting inside [startPfn, endPfn). */
  cost(startPfn: number, endPfn: number): VmemmapCost {
    return this.chunks.cost(startPfn, endPfn);
  }

  /**
   * What hot-plug's vmemmap holds right now, read off the mapping (each block once, however many PTEs map it).
   * It differs from the chunk totals when a page or table outlives the chunk that allocated it (a PTE table
   * shared by the sub-sections of a section, the tail page the dedup shares across the sections of a 1 GiB
   * compound page).
   */
  resident(): { ramBytes: number; altmapPfns: number; pageTableBytes: number } {
    const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 };
    const blocks = new Set<VmemmapBlock>();
    const g = this.geo;
    const fresh = (backing: "ram" | "altmap", pages: number) => {
      if (!g) return;
      if (backing === "ram") out.ramBytes += pages * g.pageSize;
      else out.altmapPfns += pages;
    };
    for (const r of this.pmds.all()) {
      const e = r.entry;
      if (e.kind === "leaf") {
        if (e.leaf) blocks.add(e.leaf.block);
        else if (g) fresh(e.backing, (r.count * g.pmdSize) / g.pageSize);
        continue;
      }
      if (e.hot && g) out.pageTableBytes += r.count * g.pageSize;
      for (const seg of e.pattern ?? EMPTY_PATTERN) {
        const rule = seg.rule;
        if (rule.kind === "unique") fresh(rule.backing, r.count * (seg.hi - seg.lo));
        else if (rule.kind === "dedup") fresh("ram", r.count * 2 * ((seg.hi - seg.lo) / rule.compound));
        else blocks.add(rule.block);
      }
    }
    for (const b of this.ptes.values()) blocks.add(b);
    for (const b of this.vmemmapList.values()) blocks.add(b);
    for (const b of blocks) {
      if (b.backing === "ram") out.ramBytes += b.bytes;
      else if (b.backing === "altmap") out.altmapPfns += b.nrPfns;
    }
    for (const t of this.pmdTables.values()) if (t.hot) out.pageTableBytes += t.bytes;
    return out;
  }

  /** Hot-plug PTEs present. */
  pteCount(): number {
    let n = 0;
    for (const r of this.pmds.all()) if (r.entry.kind === "table") n += r.count * r.entry.entries;
    return n;
  }

  /** PTE tables hot-plug allocated or tracks. */
  pteTableCount(): number {
    let n = 0;
    for (const r of this.pmds.all()) if (r.entry.kind === "table") n += r.count;
    return n;
  }

  /** PMD leaves hot-plug installed. */
  pmdLeafCount(): number {
    let n = 0;
    for (const r of this.pmds.all()) if (r.entry.kind === "leaf") n += r.count;
    return n;
  }

  /**
   * What maps vmemmap page p on behalf of hot-plug (x86_64 / arm64): a PTE or a PMD leaf, the block (or, for a
   * block the compact form leaves implicit, a key naming it), its backing and refcount. null when unmapped.
   */
  mappingAt(
    p: number,
  ): { via: "pte" | "leaf"; block: VmemmapBlock | string; backing: VmemmapBacking; refs: number } | null {
    const g = this.geo;
    if (!g) return null;
    const i = Math.floor(p / g.ptrs);
    const e = this.pmds.get(i);
    if (!e) return null;
    if (e.kind === "leaf") {
      if (e.leaf) return { via: "leaf", block: e.leaf.block, backing: e.leaf.block.backing, refs: e.leaf.block.refs };
      return { via: "leaf", block: `leaf:${i}`, backing: e.backing, refs: 1 };
    }
    if (e.pattern === null) {
      const b = this.ptes.get(p);
      return b ? { via: "pte", block: b, backing: b.backing, refs: b.refs } : null;
    }
    const j = p - i * g.ptrs;
    const seg = segAt(e.pattern, j);
    if (!seg) return null;
    const rule = seg.rule;
    if (rule.kind === "unique") return { via: "pte", block: `page:${p}`, backing: rule.backing, refs: 1 };
    if (rule.kind === "alias") return { via: "pte", block: rule.block, backing: rule.block.backing, refs: rule.block.refs };
    const head = j - ((j - seg.lo) % rule.compound);
    if (j === head) return { via: "pte", block: `page:${p}`, backing: "ram", refs: 1 };
    return { via: "pte", block: `page:${p - j + head + 1}`, backing: "ram", refs: rule.compound - 1 };
  }

  /** Is vmemmap page p mapped by a hot-plug PTE or leaf? */
  hotMapped(p: number): boolean {
    return this.mappingAt(p) !== null;
  }

  /** Every PMD index with an entry, with what a leaf uses and what a table holds (for tests and reports). */
  *pmdSlots(): Generator<{
    index: number;
    leaf: { backing: "ram" | "altmap"; used: Array<[number, number]> } | null;
    table: { hot: boolean; entries: number } | null;
  }> {
    const g = this.geo;
    if (!g) return;
    for (const r of this.pmds.all()) {
      for (let i = r.first; i < r.first + r.count; i++) {
        const e = r.entry;
        if (e.kind === "leaf") {
          const used: Array<[number, number]> = e.leaf ? e.leaf.used.map(([a, b]) => [a, b]) : [[i * g.pmdSize, (i + 1) * g.pmdSize]];
          yield { index: i, leaf: { backing: e.backing, used }, table: null };
        } else {
          yield { index: i, leaf: null, table: { hot: e.hot, entries: e.entries } };
        }
      }
    }
  }
}

/** include/linux/mm.h VMEMMAP_RESERVE_NR: vmemmap pages of a compound page the dedup does not share. */
export const VMEMMAP_RESERVE_NR = 2;

/** The vmemmap geometry of one kernel. */
export interface VmemmapGeo {
  readonly pageSize: number;
  readonly pmdSize: number;
  /** Bytes one PMD table maps (PUD_SIZE); null when the PMD level is folded away (arm64 with 2 levels). */
  readonly pudSize: number | null;
  readonly structPageSize: number;
  readonly memstartPfn: number;
  readonly pagesPerSection: number;
  readonly pagesPerSubsection: number;
  /** PTEs in a PTE table: PMD_SIZE / PAGE_SIZE. */
  readonly ptrs: number;
}

/** One vmemmap operation on one chunk: what it allocated, and what it freed that other chunks' memmap was in. */
interface VmemmapOp {
  readonly k: Kernel;
  readonly s: VmemmapLedger;
  readonly g: VmemmapGeo;
  readonly pfn: number;
  readonly nrPages: number;
  ramBytes: number;
  altmapPfns: number;
  pageTableBytes: number;
  /** pfn ranges whose struct pages sat in memory this operation freed, outside [pfn, pfn + nrPages). */
  readonly freed: Array<[number, number]>;
}

function vmemmapOp(k: Kernel, pfn: number, nrPages: number): VmemmapOp {
  const s = k.vmemmap;
  let g = s.geo;
  if (!g) {
    g = {
      pageSize: k.geo.pageSize,
      pmdSize: 2 ** k.arch.pmdShift,
      pudSize: k.arch.pgtableLevels >= 3 && k.arch.pudShift !== null ? 2 ** k.arch.pudShift : null,
      structPageSize: k.arch.structPageSize,
      memstartPfn: memstartPfn(k),
      pagesPerSection: k.geo.pagesPerSection,
      pagesPerSubsection: k.geo.pagesPerSubsection,
      ptrs: 2 ** k.arch.pmdShift / k.geo.pageSize,
    };
    s.geo = g;
  }
  return { k, s, g, pfn, nrPages, ramBytes: 0, altmapPfns: 0, pageTableBytes: 0, freed: [] };
}

/**
 * arm64's vmemmap is `(struct page *)VMEMMAP_START - (memstart_addr >> PAGE_SHIFT)`; memstart_addr is the start
 * of DRAM rounded down to ARM64_MEMSTART_ALIGN (KASLR's linear-region randomisation, the linear-region trim and
 * the 52-bit VA fix-up are not modelled). The other arches index their vmemmap from pfn 0.
 */
// ref: arch/arm64/mm/init.c arm64_memblock_init
function memstartPfn(k: Kernel): number {
  const cached = k.vmemmap.memstartPfn;
  if (cached !== null) return cached;
  let pfn = 0;
  if (k.arch.arch === "arm64") {
    // ARM64_MEMSTART_SHIFT: PUD_SHIFT (4K), CONT_PMD_SHIFT = PMD_SHIFT + 5 (16K), PMD_SHIFT (64K); at least
    // SECTION_SIZE_BITS (arch/arm64/include/asm/kernel-pgtable.h).
    const shift =
      k.arch.pageShift === 12 ? (k.arch.pudShift ?? 30) : k.arch.pageShift === 14 ? k.arch.pmdShift + 5 : k.arch.pmdShift;
    const align = 2 ** Math.max(shift, k.arch.sectionSizeBits);
    const dramStart = k.memblock.memory.reduce((m, r) => Math.min(m, r.base), Number.POSITIVE_INFINITY);
    if (Number.isFinite(dramStart)) pfn = (Math.floor(dramStart / align) * align) / k.geo.pageSize;
  }
  k.vmemmap.memstartPfn = pfn;
  return pfn;
}

function isAligned(x: number, a: number): boolean {
  return x % a === 0;
}

function alignDown(x: number, a: number): number {
  return Math.floor(x / a) * a;
}

/** (unsigned long)pfn_to_page(pfn), as an offset into the vmemmap region. */
function pfnToPage(g: VmemmapGeo, pfn: number): number {
  return (pfn - g.memstartPfn) * g.structPageSize;
}

/** page_to_pfn() of the struct page holding vmemmap byte addr. */
function pageToPfn(g: VmemmapGeo, addr: number): number {
  return Math.floor(addr / g.structPageSize) + g.memstartPfn;
}

/** pmd_addr_end(addr, end) */
function pmdAddrEnd(g: VmemmapGeo, addr: number, end: number): number {
  const boundary = (Math.floor(addr / g.pmdSize) + 1) * g.pmdSize;
  return boundary < end ? boundary : end;
}

/** pud_addr_end(addr, end); with the PMD level folded, one PMD table's worth is the whole range. */
function pudAddrEnd(g: VmemmapGeo, addr: number, end: number): number {
  if (g.pudSize === null) return end;
  const boundary = (Math.floor(addr / g.pudSize) + 1) * g.pudSize;
  return boundary < end ? boundary : end;
}

function pmdIndex(g: VmemmapGeo, addr: number): number {
  return Math.floor(addr / g.pmdSize);
}

function pudIndex(g: VmemmapGeo, addr: number): number {
  return g.pudSize === null ? 0 : Math.floor(addr / g.pudSize);
}

/**
 * Does boot's vmemmap map something in [start, end)? sparse_init populated the full memmap of every present
 * (early) section; an early section that was hot-removed since had it freed (free_map_bootmem).
 */
function bootMemmapIn(op: VmemmapOp, start: number, end: number): boolean {
  const { k, g } = op;
  const first = Math.max(0, pageToPfn(g, start));
  const last = Math.min(pageToPfn(g, end - 1), k.geo.maxPfn - 1);
  if (last < first) return false;
  const firstNr = k.sections.pfnToSectionNr(first);
  const lastNr = k.sections.pfnToSectionNr(last);
  if (lastNr - firstNr < 4096) {
    for (let nr = firstNr; nr <= lastNr; nr++) if (k.sections.early(nr)) return true;
    return false;
  }
  for (const nr of k.sections.presentSections()) if (nr >= firstNr && nr <= lastNr && k.sections.early(nr)) return true;
  return false;
}

/** Boot mapped the memmap with PMD leaves (x86_64 hugepages; arm64 ARM64_KERNEL_USES_PMD_MAPS, 4K) or base pages. */
function bootUsesPmdLeaves(k: Kernel): boolean {
  return k.arch.arch === "x86_64" || (k.arch.arch === "arm64" && k.arch.pageShift === 12);
}

function bootMemmapInPmd(op: VmemmapOp, i: number): boolean {
  return bootMemmapIn(op, i * op.g.pmdSize, (i + 1) * op.g.pmdSize);
}

/** pmd_none(*pmd) */
function pmdNone(op: VmemmapOp, i: number): boolean {
  return !op.s.pmds.get(i) && !bootMemmapInPmd(op, i);
}

/** pmd_large(*pmd): "hot" for hot-plug's leaf, "boot" for one boot mapped, else null. */
function pmdLeafKind(op: VmemmapOp, i: number): "hot" | "boot" | null {
  const e = op.s.pmds.get(i);
  if (e) return e.kind === "leaf" ? "hot" : null;
  if (!bootUsesPmdLeaves(op.k)) return null;
  return bootMemmapInPmd(op, i) ? "boot" : null;
}

/** pmd_large(*pmd): hot-plug's leaf (made explicit: its block and use are about to matter), or "boot". */
function pmdLeafAt(op: VmemmapOp, i: number): PmdLeaf | "boot" | null {
  const e = op.s.pmds.get(i);
  if (e) return e.kind === "leaf" ? explicitLeaf(op, i, e) : null;
  if (!bootUsesPmdLeaves(op.k)) return null;
  return bootMemmapInPmd(op, i) ? "boot" : null;
}

/** The leaf at PMD index i as an object of its own, with its block and use spelled out. */
function explicitLeaf(op: VmemmapOp, i: number, e: PmdLeafEntry): PmdLeaf {
  if (e.leaf) return e.leaf;
  const { g } = op;
  const leaf: PmdLeaf = { block: newBlock(op, e.backing, -1, g.pmdSize), used: [[i * g.pmdSize, (i + 1) * g.pmdSize]] };
  op.s.pmds.own(i).entry = { kind: "leaf", backing: e.backing, leaf };
  return leaf;
}

/** The block under a leaf (a fresh one stands for an implicit leaf's: nothing else refers to it). */
function leafBlock(op: VmemmapOp, e: PmdLeafEntry): VmemmapBlock {
  return e.leaf ? e.leaf.block : newBlock(op, e.backing, -1, op.g.pmdSize);
}

/** vmemmap_use_sub_pmd() and friends: [start, end) of the leaf at i is in use (an implicit leaf is, wholly). */
function leafUse(op: VmemmapOp, i: number, start: number, end: number): PmdLeaf | null {
  const e = op.s.pmds.get(i);
  if (e?.kind !== "leaf" || !e.leaf) return null;
  e.leaf.used = intervalsAdd(e.leaf.used, start, end);
  return e.leaf;
}

/** Boot's base-page PTEs in [start, end) (arm64 16K/64K). */
function bootPtesIn(op: VmemmapOp, start: number, end: number): boolean {
  return !bootUsesPmdLeaves(op.k) && bootMemmapIn(op, start, end);
}

/** pud_present(*pud): the PMD table for PUD index j exists. */
function pmdTablePresent(op: VmemmapOp, j: number): boolean {
  const { s, g } = op;
  if (g.pudSize === null) return true;
  return s.pmdTables.has(j) || bootMemmapIn(op, j * g.pudSize, (j + 1) * g.pudSize);
}

/** A PMD entry for index i became present: track it in its PMD table. */
function pmdTableAddEntry(op: VmemmapOp, i: number): void {
  const { s, g } = op;
  if (g.pudSize === null) return;
  const j = pudIndex(g, i * g.pmdSize);
  let t = s.pmdTables.get(j);
  if (!t) {
    t = { hot: false, bytes: g.pageSize, entries: 0 };
    s.pmdTables.set(j, t);
  }
  t.entries++;
}

function pmdTableRemoveEntry(op: VmemmapOp, i: number): void {
  const { s, g } = op;
  if (g.pudSize === null) return;
  const t = s.pmdTables.get(pudIndex(g, i * g.pmdSize));
  if (t) t.entries--;
}

/** The segment of a pattern holding PTE j. */
function segAt(pattern: PtePattern, j: number): PteSeg | undefined {
  for (const seg of pattern) if (j >= seg.lo && j < seg.hi) return seg;
  return undefined;
}

function patternOverlaps(pattern: PtePattern, lo: number, hi: number): boolean {
  for (const seg of pattern) if (seg.lo < hi && lo < seg.hi) return true;
  return false;
}

/** Adjacent segments that read as one. */
function joinable(a: PteSeg, b: PteSeg): boolean {
  return a.hi === b.lo && sameRule(a.rule, b.rule);
}

/** The pattern with segs (disjoint from it, sorted) added. */
function patternAdd(pattern: PtePattern, segs: readonly PteSeg[]): PteSeg[] {
  const all = [...pattern, ...segs].sort((a, b) => a.lo - b.lo);
  const out: PteSeg[] = [];
  for (const seg of all) {
    const prev = out[out.length - 1];
    if (prev && joinable(prev, seg)) out[out.length - 1] = { lo: prev.lo, hi: seg.hi, rule: prev.rule };
    else out.push(seg);
  }
  return out;
}

/** The pattern without PTEs [lo, hi) (a dedup segment is only ever cut at compound boundaries). */
function patternRemove(pattern: PtePattern, lo: number, hi: number): PteSeg[] {
  const out: PteSeg[] = [];
  for (const seg of pattern) {
    if (seg.hi <= lo || seg.lo >= hi) {
      out.push(seg);
      continue;
    }
    if (seg.lo < lo) out.push({ lo: seg.lo, hi: lo, rule: seg.rule });
    if (seg.hi > hi) out.push({ lo: hi, hi: seg.hi, rule: seg.rule });
  }
  return out;
}

/** Tables given the same pattern share one array. */
function internPattern(s: VmemmapLedger, p: PtePattern): PtePattern {
  if (p.length === 0) return EMPTY_PATTERN;
  if (samePattern(s.lastPattern, p)) return s.lastPattern;
  s.lastPattern = p;
  return p;
}

/**
 * Spell out the PTEs of table i, one block per PTE in ledger.ptes, as the per-PTE walk leaves them: what a
 * compact pattern leaves implicit becomes a block of its own.
 */
function expandTable(op: VmemmapOp, i: number): void {
  const { s, g } = op;
  const run = s.pmds.own(i);
  const t = run.entry;
  if (t.kind !== "table" || t.pattern === null) return;
  const base = i * g.ptrs;
  for (const seg of t.pattern) {
    const rule = seg.rule;
    if (rule.kind === "unique") {
      for (let j = seg.lo; j < seg.hi; j++) s.ptes.set(base + j, newBlock(op, rule.backing, -1, g.pageSize));
    } else if (rule.kind === "alias") {
      for (let j = seg.lo; j < seg.hi; j++) s.ptes.set(base + j, rule.block);
    } else {
      for (let c = seg.lo; c < seg.hi; c += rule.compound) {
        s.ptes.set(base + c, newBlock(op, "ram", -1, g.pageSize));
        const tail = newBlock(op, "ram", -1, g.pageSize);
        tail.refs = rule.compound - 1;
        for (let j = c + 1; j < c + rule.compound; j++) s.ptes.set(base + j, tail);
      }
    }
  }
  t.pattern = null;
}

/** The block the PTE for vmemmap page p maps (pte_present), or undefined. Expands a compact table it is in. */
function pteGet(op: VmemmapOp, p: number): VmemmapBlock | undefined {
  const { s, g } = op;
  const i = Math.floor(p / g.ptrs);
  const e = s.pmds.get(i);
  if (e?.kind !== "table") return undefined;
  if (e.pattern !== null) {
    if (!segAt(e.pattern, p - i * g.ptrs)) return undefined;
    expandTable(op, i);
  }
  return s.ptes.get(p);
}

/** Is the PTE for vmemmap page p present (read only)? */
function ptePresent(op: VmemmapOp, p: number): boolean {
  const { s, g } = op;
  const i = Math.floor(p / g.ptrs);
  const e = s.pmds.get(i);
  if (e?.kind !== "table") return false;
  if (e.pattern !== null) return segAt(e.pattern, p - i * g.ptrs) !== undefined;
  return s.ptes.has(p);
}

/** The table at i as a run of its own, expanded. */
function ownExpanded(op: VmemmapOp, i: number): PteTableEntry {
  expandTable(op, i);
  const e = op.s.pmds.own(i).entry;
  if (e.kind !== "table") throw new Error(`PMD index ${i} holds no PTE table`);
  return e;
}

/** set_pte_at(): PTE for vmemmap page p maps block. */
function setPte(op: VmemmapOp, p: number, block: VmemmapBlock): void {
  const { s, g } = op;
  const i = Math.floor(p / g.ptrs);
  if (!s.pmds.get(i)) {
    // The first hot-plug PTE in a table boot allocated.
    s.pmds.set(i, { kind: "table", hot: false, entries: 0, pattern: null });
    pmdTableAddEntry(op, i);
  }
  ownExpanded(op, i).entries++;
  s.ptes.set(p, block);
}

/** pte_clear() */
function pteClear(op: VmemmapOp, p: number): void {
  const { s, g } = op;
  s.ptes.delete(p);
  ownExpanded(op, Math.floor(p / g.ptrs)).entries--;
}

/** set_pmd() / pmd_set_huge(): a leaf mapping [start, end) of its PMD in use, on the block allocated at `at`. */
function setPmdLeaf(op: VmemmapOp, i: number, at: number, start: number, end: number): void {
  const { g } = op;
  const backing = at === ALLOC_RAM ? "ram" : "altmap";
  const whole = start === i * g.pmdSize && end === (i + 1) * g.pmdSize;
  const e: PmdLeafEntry = whole
    ? backing === "ram"
      ? LEAF_RAM
      : LEAF_ALTMAP
    : { kind: "leaf", backing, leaf: { block: newBlock(op, backing, at, g.pmdSize), used: [[start, end]] } };
  op.s.pmds.set(i, e);
  pmdTableAddEntry(op, i);
}

/** pmd_clear() of a leaf */
function pmdClearLeaf(op: VmemmapOp, i: number): void {
  op.s.pmds.delete(i);
  pmdTableRemoveEntry(op, i);
}

function newBlock(op: VmemmapOp, backing: VmemmapBacking, altmapPfn: number, bytes: number): VmemmapBlock {
  return { backing, altmapPfn, bytes, nrPfns: bytes / op.g.pageSize, refs: 1, freed: false };
}

/** A page hot-plug never allocated that a PTE is made to point at (boot's, or whatever a stray read yields). */
function foreignBlock(op: VmemmapOp): VmemmapBlock {
  return newBlock(op, "foreign", -1, op.g.pageSize);
}

/** vmemmap [start, end) is gone: other chunks' struct pages there are torn down (see tearDownCollateral). */
function noteFreed(op: VmemmapOp, start: number, end: number): void {
  const lo = pageToPfn(op.g, start);
  const hi = pageToPfn(op.g, end - 1) + 1;
  // This removal's own struct pages go anyway.
  if (lo >= op.pfn && hi <= op.pfn + op.nrPages) return;
  const last = op.freed[op.freed.length - 1];
  if (last && last[1] === lo) last[1] = hi;
  else op.freed.push([lo, hi]);
}

/** The block backing vmemmap [start, end) is gone: unmapped and returned (or lost). */
function releaseBlock(op: VmemmapOp, block: VmemmapBlock, start: number, end: number): void {
  if (block.backing === "foreign" || block.freed) return;
  block.freed = true;
  noteFreed(op, start, end);
}

function intervalsAdd(list: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  const all = [...list, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of all) {
    const prev = out[out.length - 1];
    if (prev && a <= prev[1]) prev[1] = Math.max(prev[1], b);
    else out.push([a, b]);
  }
  return out;
}

function intervalsRemove(list: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a, b] of list) {
    if (b <= start || a >= end) out.push([a, b]);
    else {
      if (a < start) out.push([a, start]);
      if (b > end) out.push([end, b]);
    }
  }
  return out;
}

/** vmemmapAllocBlockBuf() results other than an altmap pfn. */
const ALLOC_RAM = -1;
const ALLOC_FAILED = -2;

/** Where the block came from: the first altmap pfn, ALLOC_RAM, or ALLOC_FAILED (NULL). */
// ref: mm/sparse-vmemmap.c vmemmap_alloc_block_buf
function vmemmapAllocBlockBuf(op: VmemmapOp, size: number, altmap: VmemAltmap | null): number {
  if (altmap) {
    const pfn = altmapAllocBlockBuf(altmap, size, op.g.pageSize);
    if (pfn < 0) return ALLOC_FAILED;
    op.altmapPfns += size / op.g.pageSize;
    return pfn;
  }
  // sparse_buffer_alloc() only serves boot; vmemmap_alloc_block() is alloc_pages_node(), which the model grants.
  op.ramBytes += size;
  return ALLOC_RAM;
}

function allocatedBlock(op: VmemmapOp, at: number, size: number): VmemmapBlock | null {
  if (at === ALLOC_FAILED) return null;
  return newBlock(op, at === ALLOC_RAM ? "ram" : "altmap", at, size);
}

/**
 * How many single pages altmap_alloc_block_buf() grants in a row: a one-pfn block needs no alignment padding,
 * so each succeeds while vmem_altmap_nr_free() is not 0.
 */
function altmapPagesFree(altmap: VmemAltmap): number {
  return Math.max(0, altmap.free - (altmap.alloc + altmap.align));
}

/** A page-table page: always RAM, never the altmap. */
// ref: mm/sparse-vmemmap.c vmemmap_alloc_block_zero
function vmemmapAllocBlockZero(op: VmemmapOp, size: number): number {
  op.pageTableBytes += size;
  return size;
}

/** The PMD table under the PUD entry for addr (PGD/P4D/PUD tables are taken as present). */
// ref: mm/sparse-vmemmap.c vmemmap_pud_populate
function vmemmapPudPopulate(op: VmemmapOp, addr: number): void {
  const { s, g } = op;
  if (g.pudSize === null) return;
  const j = pudIndex(g, addr);
  if (pmdTablePresent(op, j)) return;
  s.pmdTables.set(j, { hot: true, bytes: vmemmapAllocBlockZero(op, g.pageSize), entries: 0 });
}

// ref: mm/sparse-vmemmap.c vmemmap_pmd_populate
function vmemmapPmdPopulate(op: VmemmapOp, addr: number): void {
  const { g } = op;
  const i = pmdIndex(g, addr);
  if (!pmdNone(op, i)) return;
  vmemmapAllocBlockZero(op, g.pageSize);
  op.s.pmds.set(i, { kind: "table", hot: true, entries: 0, pattern: EMPTY_PATTERN });
  pmdTableAddEntry(op, i);
}

// ref: mm/sparse-vmemmap.c vmemmap_pte_populate
function vmemmapPtePopulate(
  op: VmemmapOp,
  addr: number,
  altmap: VmemAltmap | null,
  reuse: VmemmapBlock | null,
): VmemmapBlock | null {
  const { g } = op;
  const p = Math.floor(addr / g.pageSize);
  const leaf = pmdLeafAt(op, pmdIndex(g, addr));
  if (leaf) {
    // vmemmap_pmd_populate() only asks pmd_none(): under a leaf, pte_offset_kernel() reads the leaf's own data
    // (struct pages) as if it were a PTE table. The model takes that entry as present: nothing is allocated,
    // the memmap at addr is the leaf's, and the struct pages about to be initialised there are in use.
    if (leaf === "boot") return foreignBlock(op);
    leaf.used = intervalsAdd(leaf.used, p * g.pageSize, (p + 1) * g.pageSize);
    return leaf.block;
  }
  const cur = pteGet(op, p);
  if (cur) return cur;
  if (bootPtesIn(op, p * g.pageSize, (p + 1) * g.pageSize)) return foreignBlock(op);
  let block: VmemmapBlock | null;
  if (!reuse) {
    block = allocatedBlock(op, vmemmapAllocBlockBuf(op, g.pageSize, altmap), g.pageSize);
    if (!block) return null;
  } else {
    // get_page(reuse): paired with the put_page_testzero() of free_pages() on the freeing path.
    reuse.refs++;
    block = reuse;
  }
  setPte(op, p, block);
  return block;
}

/** Returns the block the PTE for addr maps (pte_page(*pte)), or null for -ENOMEM. */
// ref: mm/sparse-vmemmap.c vmemmap_populate_address
function vmemmapPopulateAddress(
  op: VmemmapOp,
  addr: number,
  altmap: VmemAltmap | null,
  reuse: VmemmapBlock | null,
): VmemmapBlock | null {
  // vmemmap_pgd_populate / vmemmap_p4d_populate: those tables are present.
  vmemmapPudPopulate(op, addr);
  vmemmapPmdPopulate(op, addr);
  // vmemmap_verify()'s "potential offnode page_structs" warning is not modelled.
  return vmemmapPtePopulate(op, addr, altmap, reuse);
}

/** How a run of PTEs nobody mapped yet gets filled in one go (see fillPtes). */
type PteFill =
  | { readonly kind: "pages"; readonly altmap: VmemAltmap | null }
  | { readonly kind: "reuse"; readonly block: VmemmapBlock }
  | { readonly kind: "compounds"; readonly compound: number }
  | { readonly kind: "compound-part" };

/**
 * The per-PTE walk over page-aligned [start, end), inside one PMD, done as one segment: what
 * vmemmap_populate_address() page by page would do when none of those PTEs is present (a fresh PMD, or a
 * compact table whose segments lie elsewhere; such a table was allocated by hot-plug where boot mapped
 * nothing, so no boot PTE is met either):
 * - "pages": one new page per PTE (vmemmap_populate_basepages); from an altmap, pages are taken until it runs
 *   out, then -ENOMEM with what was mapped left mapped;
 * - "reuse": every PTE maps block, one reference each (vmemmap_populate_range with a reuse page);
 * - "compounds": whole compound pages of `compound` PTEs: head page, tail page, the tail page again;
 * - "compound-part": one compound page that goes on past end: head, tail, then the tail (named, for the next
 *   section's reuse_compound_section).
 * null when the walk would meet something else (the caller walks PTE by PTE); nothing is changed then.
 */
function fillPtes(op: VmemmapOp, start: number, end: number, fill: PteFill): Errno | null {
  const { s, g } = op;
  const i = pmdIndex(g, start);
  const base = i * g.ptrs;
  const ja = start / g.pageSize - base;
  const jb = Math.ceil(end / g.pageSize) - base;
  const e = s.pmds.get(i);
  if (e) {
    if (e.kind !== "table" || e.pattern === null || patternOverlaps(e.pattern, ja, jb)) return null;
  } else if (bootMemmapInPmd(op, i)) {
    return null;
  }
  const want = jb - ja;
  if (fill.kind === "compound-part" && want < 2) return null;
  vmemmapPudPopulate(op, start);
  if (!e) vmemmapAllocBlockZero(op, g.pageSize);
  let n = want;
  let segs: PteSeg[];
  switch (fill.kind) {
    case "pages": {
      const altmap = fill.altmap;
      if (altmap) {
        n = Math.min(n, altmapPagesFree(altmap));
        altmap.alloc += n;
        op.altmapPfns += n;
      } else {
        op.ramBytes += n * g.pageSize;
      }
      segs = n > 0 ? [{ lo: ja, hi: ja + n, rule: { kind: "unique", backing: altmap ? "altmap" : "ram" } }] : [];
      break;
    }
    case "reuse":
      fill.block.refs += n;
      segs = [{ lo: ja, hi: jb, rule: { kind: "alias", block: fill.block } }];
      break;
    case "compounds":
      op.ramBytes += 2 * (n / fill.compound) * g.pageSize;
      segs = [{ lo: ja, hi: jb, rule: { kind: "dedup", compound: fill.compound } }];
      break;
    case "compound-part": {
      op.ramBytes += 2 * g.pageSize;
      const tail = newBlock(op, "ram", -1, g.pageSize);
      tail.refs = n - 1;
      segs = [
        { lo: ja, hi: ja + 1, rule: { kind: "unique", backing: "ram" } },
        { lo: ja + 1, hi: jb, rule: { kind: "alias", block: tail } },
      ];
      break;
    }
  }
  if (!e) {
    const pattern = internPattern(s, segs);
    if (!s.pmds.extendLast(i, n, pattern)) s.pmds.set(i, { kind: "table", hot: true, entries: n, pattern });
    pmdTableAddEntry(op, i);
  } else {
    const t = s.pmds.own(i).entry as PteTableEntry;
    t.entries += n;
    t.pattern = internPattern(s, patternAdd(t.pattern ?? EMPTY_PATTERN, segs));
    s.pmds.settle(i);
  }
  return n < want ? -ENOMEM : 0;
}

// ref: mm/sparse-vmemmap.c vmemmap_populate_range
function vmemmapPopulateRange(
  op: VmemmapOp,
  start: number,
  end: number,
  altmap: VmemAltmap | null,
  reuse: VmemmapBlock | null,
): Errno {
  const { g } = op;
  // addr steps by PAGE_SIZE from start itself: a start that is not page aligned (sub-section memmap on 16K/64K
  // pages) can leave the page holding the end of [start, end) unpopulated.
  if (!isAligned(start, g.pageSize)) return vmemmapPopulatePtes(op, start, end, altmap, reuse);
  const fill: PteFill = reuse ? { kind: "reuse", block: reuse } : { kind: "pages", altmap };
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    const r = fillPtes(op, addr, next, fill) ?? vmemmapPopulatePtes(op, addr, next, altmap, reuse);
    if (r) return r;
  }
  return 0;
}

/** vmemmap_populate_range's loop, one PTE at a time. */
function vmemmapPopulatePtes(
  op: VmemmapOp,
  start: number,
  end: number,
  altmap: VmemAltmap | null,
  reuse: VmemmapBlock | null,
): Errno {
  for (let addr = start; addr < end; addr += op.g.pageSize) {
    if (!vmemmapPopulateAddress(op, addr, altmap, reuse)) return -ENOMEM;
  }
  return 0;
}

// ref: mm/sparse-vmemmap.c vmemmap_populate_basepages
function vmemmapPopulateBasepages(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
  return vmemmapPopulateRange(op, start, end, altmap, null);
}

/** pgmap_vmemmap_nr(pgmap) */
function pgmapVmemmapNr(pgmap: { readonly vmemmapShift: number }): number {
  const shift = pgmap.vmemmapShift;
  return shift < 31 ? 1 << shift : 2 ** shift;
}

/**
 * For compound pages bigger than a section (x86 1 GiB pages, 2 MiB sub-sections), a section that does not start
 * a compound page is all tail pages.
 */
// ref: mm/sparse-vmemmap.c reuse_compound_section
function reuseCompoundSection(op: VmemmapOp, startPfn: number, pgmap: PgmapVmemmapView): boolean {
  const nrPages = pgmapVmemmapNr(pgmap);
  const offset = startPfn - pgmap.rangeStartPfn;
  return !isAligned(offset, nrPages) && nrPages > op.g.pagesPerSubsection;
}

/**
 * The page the PTE just below addr maps: assuming sections are populated sequentially, the previous section's
 * last tail page. A PTE hot-plug did not install there (none, or under boot's leaf) yields a page hot-plug
 * never allocated.
 */
// ref: mm/sparse-vmemmap.c compound_section_tail_page
function compoundSectionTailPage(op: VmemmapOp, addr: number): VmemmapBlock {
  const { s, g } = op;
  const p = Math.floor((addr - g.pageSize) / g.pageSize);
  const i = Math.floor(p / g.ptrs);
  const e = s.pmds.get(i);
  if (e?.kind === "table" && e.pattern !== null) {
    // A named block needs no expansion.
    const rule = segAt(e.pattern, p - i * g.ptrs)?.rule;
    if (rule?.kind === "alias") return rule.block;
  }
  return pteGet(op, p) ?? foreignBlock(op);
}

// ref: mm/sparse-vmemmap.c vmemmap_populate_compound_pages
function vmemmapPopulateCompoundPages(
  op: VmemmapOp,
  startPfn: number,
  start: number,
  end: number,
  pgmap: PgmapVmemmapView,
): Errno {
  const { g } = op;
  if (reuseCompoundSection(op, startPfn, pgmap)) {
    const tail = compoundSectionTailPage(op, start);
    // Reuse the page that was populated in the prior iteration with just tail struct pages.
    return vmemmapPopulateRange(op, start, end, null, tail);
  }
  const compoundBytes = pgmapVmemmapNr(pgmap) * g.structPageSize;
  const size = Math.min(end - start, compoundBytes);
  // The whole chunk in one PMD, ending on a compound boundary (else the last compound's PTEs run past end):
  // one segment.
  if (isAligned(start, g.pageSize) && isAligned(end - start, size) && pmdIndex(g, start) === pmdIndex(g, end - 1)) {
    const fill: PteFill =
      size === compoundBytes ? { kind: "compounds", compound: compoundBytes / g.pageSize } : { kind: "compound-part" };
    const r = fillPtes(op, start, end, fill);
    if (r !== null) return r;
  }
  for (let addr = start; addr < end; addr += size) {
    const last = addr + size;
    // Populate the head page vmemmap page.
    if (!vmemmapPopulateAddress(op, addr, null, null)) return -ENOMEM;
    // Populate the tail pages vmemmap page.
    let next = addr + g.pageSize;
    const tail = vmemmapPopulateAddress(op, next, null, null);
    if (!tail) return -ENOMEM;
    // Reuse the previous page for the rest of tail pages (Documentation/mm/vmemmap_dedup.rst).
    next += g.pageSize;
    if (vmemmapPopulateRange(op, next, last, null, tail)) return -ENOMEM;
  }
  return 0;
}

// ref: arch/x86/mm/init_64.c vmemmap_populate_hugepages
function vmemmapPopulateHugepages(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    vmemmapPudPopulate(op, addr);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) {
      const at = vmemmapAllocBlockBuf(op, g.pmdSize, altmap);
      if (at !== ALLOC_FAILED) {
        // set_pmd(PAGE_KERNEL_LARGE); for a sub-PMD [addr, next), vmemmap_use_new_sub_pmd() marks the rest of
        // the PMD PAGE_UNUSED.
        setPmdLeaf(op, i, at, addr, next);
        continue;
      }
      if (altmap) return -ENOMEM; // no fallback
    } else if (pmdLeafKind(op, i)) {
      // vmemmap_use_sub_pmd(): the kernel zeroes the first struct page of [addr, next) (or nothing when it
      // continues the previous range) and memmap init writes the rest; the model marks [addr, next) in use.
      leafUse(op, i, addr, next);
      continue;
    }
    if (vmemmapPopulateBasepages(op, addr, next, null)) return -ENOMEM;
  }
  return 0;
}

// ref: arch/x86/mm/init_64.c vmemmap_populate
function vmemmapPopulateX86(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
  const { g } = op;
  // Less than a section's memmap (a sub-section hot-add): base pages from RAM, the altmap is not used.
  if (end - start < g.pagesPerSection * g.structPageSize) return vmemmapPopulateBasepages(op, start, end, null);
  // boot_cpu_has(X86_FEATURE_PSE): every x86_64 CPU has it (the "no cpu support for altmap allocations" branch
  // is unreachable).
  return vmemmapPopulateHugepages(op, start, end, altmap);
}

// ref: arch/arm64/mm/mmu.c vmemmap_populate
function vmemmapPopulateArm64(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
  const { k, g } = op;
  // ARM64_KERNEL_USES_PMD_MAPS is 4K pages only.
  if (k.arch.pageShift !== 12 || end - start < g.pagesPerSection * g.structPageSize) {
    return vmemmapPopulateBasepages(op, start, end, altmap);
  }
  for (let addr = start, next = start; addr !== end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    vmemmapPudPopulate(op, addr);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) {
      const at = vmemmapAllocBlockBuf(op, g.pmdSize, altmap);
      if (at === ALLOC_FAILED) {
        // Fall back to base pages, from the same altmap.
        if (vmemmapPopulateBasepages(op, addr, next, altmap)) return -ENOMEM;
        continue;
      }
      setPmdLeaf(op, i, at, addr, next);
    }
    // else vmemmap_verify(): a present PMD, leaf or table, is taken as populated.
  }
  return 0;
}

/** mmu_psize_defs[mmu_vmemmap_psize].shift: radix maps the vmemmap with 2 MiB pages (radix__early_init_mmu). */
function vmemmapPsize(): number {
  return 2 ** 21;
}

/**
 * Is any sub-section whose memmap lies in [vmemmapAddr, +size) pfn_valid? (During population the chunk's own
 * sub-section bits are already set, but its section is not valid until sparse_add_section marks it.)
 */
// ref: arch/powerpc/mm/init_64.c vmemmap_populated
function vmemmapPopulated(op: VmemmapOp, vmemmapAddr: number, size: number): boolean {
  const { k, g } = op;
  const end = vmemmapAddr + size;
  // vmemmap_subsection_start()
  for (let pfn = alignDown(pageToPfn(g, vmemmapAddr), g.pagesPerSubsection); pfnToPage(g, pfn) < end; pfn += g.pagesPerSubsection) {
    const nr = k.sections.pfnToSectionNr(pfn);
    if (!k.sections.valid(nr)) {
      // No pfn of an invalid section is pfn_valid: go on with the next section.
      pfn = k.sections.sectionNrToPfn(nr + 1) - g.pagesPerSubsection;
      continue;
    }
    if (k.sections.pfnValid(pfn)) return true;
  }
  return false;
}

// ref: arch/powerpc/mm/init_64.c altmap_cross_boundary
function altmapCrossBoundary(op: VmemmapOp, altmap: VmemAltmap, start: number, pageSize: number): boolean {
  const nrPfn = pageSize / op.g.structPageSize;
  const startPfn = pageToPfn(op.g, start);
  if (startPfn + nrPfn - 1 > altmap.endPfn) return true;
  if (startPfn < altmap.basePfn) return true;
  return false;
}

// ref: arch/powerpc/mm/init_64.c vmemmap_populate
function vmemmapPopulatePpc64(op: VmemmapOp, startIn: number, end: number, altmap: VmemAltmap | null): Errno {
  const pageSize = vmemmapPsize();
  // Align to the page size of the linear mapping.
  for (let start = alignDown(startIn, pageSize); start < end; start += pageSize) {
    // Backing other sub-sections already: populated.
    if (vmemmapPopulated(op, start, pageSize)) continue;
    let p: VmemmapBlock | null = null;
    // From the altmap first; it may fail (alignment), then system memory.
    if (altmap && !altmapCrossBoundary(op, altmap, start, pageSize)) {
      p = allocatedBlock(op, vmemmapAllocBlockBuf(op, pageSize, altmap), pageSize);
    }
    if (!p) p = allocatedBlock(op, vmemmapAllocBlockBuf(op, pageSize, null), pageSize);
    if (!p) return -ENOMEM;
    // vmemmap_list_populate (its vmemmap_backing page is not counted) and vmemmap_create_mapping (one leaf).
    op.s.vmemmapList.set(start / pageSize, p);
  }
  return 0;
}

/** The arch's vmemmap_populate(start, end, node, altmap). */
// ref: include/linux/mm.h vmemmap_populate
function vmemmapPopulate(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
  switch (op.k.arch.arch) {
    case "x86_64":
      return vmemmapPopulateX86(op, start, end, altmap);
    case "arm64":
      return vmemmapPopulateArm64(op, start, end, altmap);
    case "ppc64":
      return vmemmapPopulatePpc64(op, start, end, altmap);
  }
}

/** CONFIG_ARCH_WANT_HUGETLB_PAGE_OPTIMIZE_VMEMMAP is selected by x86_64 only in 6.1. */
// ref: include/linux/mm.h vmemmap_can_optimize
export function vmemmapCanOptimize(
  k: Kernel,
  altmap: VmemAltmap | null,
  pgmap: { readonly vmemmapShift: number } | null,
): boolean {
  if (k.arch.arch !== "x86_64") return false;
  const sp = k.arch.structPageSize;
  const isPowerOf2 = sp > 0 && (sp & (sp - 1)) === 0;
  return (
    isPowerOf2 &&
    pgmap !== null &&
    altmap === null &&
    Math.floor((pgmapVmemmapNr(pgmap) * sp) / k.geo.pageSize) > VMEMMAP_RESERVE_NR
  );
}

/** How many struct pages of a compound device page at pfn memmap_init_compound() initialises. */
// ref: mm/mm_init.c compound_nr_pages
export function compoundNrPages(
  k: Kernel,
  pfn: number,
  altmap: VmemAltmap | null,
  pgmap: { readonly vmemmapShift: number },
): number {
  // DAX hot-plugged into an unoccupied sub-section of an early section reuses the unoptimized boot memmap.
  if (k.sections.early(k.sections.pfnToSectionNr(pfn)) || !vmemmapCanOptimize(k, altmap, pgmap)) {
    return pgmapVmemmapNr(pgmap);
  }
  return VMEMMAP_RESERVE_NR * (k.geo.pageSize / k.arch.structPageSize);
}

/** Is the vmemmap page holding addr mapped (x86_64 / arm64)? */
function vmemmapMapped(op: VmemmapOp, addr: number): boolean {
  const { g } = op;
  const p = Math.floor(addr / g.pageSize);
  if (pmdLeafKind(op, pmdIndex(g, addr))) return true;
  return ptePresent(op, p) || bootPtesIn(op, p * g.pageSize, (p + 1) * g.pageSize);
}

/**
 * Populate the memmap of [pfn, pfn + nrPages) (one section or part of one). 0 or -ENOMEM; on -ENOMEM nothing is
 * recorded, and whatever got mapped stays until the caller's section_deactivate() frees it (vmemmap_free).
 */
// ref: mm/sparse-vmemmap.c __populate_section_memmap
export function populateSectionMemmap(
  k: Kernel,
  pfn: number,
  nrPages: number,
  _nid: number,
  params: MhpParams,
): Errno {
  const op = vmemmapOp(k, pfn, nrPages);
  const { s, g } = op;
  const start = pfnToPage(g, pfn);
  const end = start + nrPages * g.structPageSize;
  if (!isAligned(pfn, g.pagesPerSubsection) || !isAligned(nrPages, g.pagesPerSubsection)) {
    if (!s.warnedMisaligned) {
      s.warnedMisaligned = true;
      warn(k, "__populate_section_memmap", "WARN_ON_ONCE(!IS_ALIGNED(pfn, PAGES_PER_SUBSECTION) || !IS_ALIGNED(nr_pages, PAGES_PER_SUBSECTION))");
    }
    return -ENOMEM;
  }
  const pgmap = params.pgmap;
  const optimized = vmemmapCanOptimize(k, params.altmap, pgmap);
  const r =
    pgmap && optimized
      ? vmemmapPopulateCompoundPages(op, pfn, start, end, pgmap)
      : vmemmapPopulate(op, start, end, params.altmap);
  if (r < 0) return -ENOMEM;
  s.add({
    startPfn: pfn,
    nrPages,
    ramBytes: op.ramBytes,
    altmapPfns: op.altmapPfns,
    pageTableBytes: op.pageTableBytes,
    memmapBytes: nrPages * g.structPageSize,
    optimized,
  });
  k.memmap.setRange(pfn, pfn + nrPages, UNINITIALISED_PAGE);
  // The last vmemmap page of an unaligned start may have been skipped (vmemmapPopulateRange): no struct pages there.
  if (k.arch.arch !== "ppc64" && !vmemmapMapped(op, end - 1)) {
    const lo = Math.max(pfn, pageToPfn(g, alignDown(end - 1, g.pageSize)));
    k.memmap.setRange(lo, pfn + nrPages, NO_PAGE);
  }
  return 0;
}

// ref: arch/x86/mm/init_64.c free_pagetable
function freePagetable(op: VmemmapOp, block: VmemmapBlock, start: number, end: number): void {
  // free_pages(): put_page_testzero(), so a page the dedup mapped several times goes with its last PTE.
  // (PageReserved bootmem pages go to free_reserved_page; an altmap page never gets here on x86.)
  if (block.backing === "foreign") return;
  block.refs--;
  if (block.refs > 0) return;
  releaseBlock(op, block, start, end);
}

// ref: arch/x86/mm/init_64.c free_hugepage_table
function freeHugepageTable(op: VmemmapOp, block: VmemmapBlock, altmap: VmemAltmap | null, start: number, end: number): void {
  // With an altmap, the leaf's pfns go back to it (whatever the leaf came from); else free_pagetable(order 9).
  if (altmap) vmemAltmapFree(altmap, op.g.pmdSize / op.g.pageSize);
  releaseBlock(op, block, start, end);
}

/**
 * Frees the PTE table of PMD index i if all its entries are none. A table holding boot's PTEs as well as
 * hot-plug's stays in the kernel; the model stops tracking it once hot-plug's are gone, either way.
 */
// ref: arch/x86/mm/init_64.c free_pte_table
function freePteTable(op: VmemmapOp, i: number): void {
  const t = op.s.pmds.get(i);
  if (t?.kind !== "table" || t.entries > 0) return;
  op.s.pmds.delete(i);
  pmdTableRemoveEntry(op, i);
}

/** Likewise for the PMD table of PUD index j (a table hot-plug allocated never holds boot entries). */
// ref: arch/x86/mm/init_64.c free_pmd_table
function freePmdTable(op: VmemmapOp, j: number): void {
  const t = op.s.pmdTables.get(j);
  if (!t || t.entries > 0) return;
  op.s.pmdTables.delete(j);
}

// ref: arch/x86/mm/init_64.c vmemmap_pmd_is_unused
function vmemmapPmdIsUnused(leaf: PmdLeaf, addr: number, end: number): boolean {
  // memset(addr, PAGE_UNUSED, end - addr); then: is the whole PMD PAGE_UNUSED?
  leaf.used = intervalsRemove(leaf.used, addr, end);
  return leaf.used.length === 0;
}

/** Do all of pages [pa, pb) hold struct pages of this operation's range only? */
function pagesInsideOp(op: VmemmapOp, pa: number, pb: number): boolean {
  const { g } = op;
  return pageToPfn(g, pa * g.pageSize) >= op.pfn && pageToPfn(g, pb * g.pageSize - 1) + 1 <= op.pfn + op.nrPages;
}

/**
 * The per-PTE clearing walk over the PTEs of pages [pa, pb) in table i, when that table is compact and the walk
 * removes whole segments or whole compounds of them: what remove_pte_table (x86) or unmap_hotplug_pte_range
 * (arm64, `arm64`) does PTE by PTE, done per segment. false (nothing changed) when it would take the table
 * apart otherwise; the caller expands it and walks.
 */
function clearPtes(op: VmemmapOp, i: number, pa: number, pb: number, altmap: VmemAltmap | null, arm64: boolean): boolean {
  const { s, g } = op;
  const e = s.pmds.get(i);
  if (e?.kind !== "table" || e.pattern === null) return false;
  const base = i * g.ptrs;
  const ja = Math.max(0, pa - base);
  const jb = Math.min(g.ptrs, pb - base);
  for (const seg of e.pattern) {
    const x = Math.max(seg.lo, ja);
    const y = Math.min(seg.hi, jb);
    if (x >= y) continue;
    // arm64 frees per PTE whatever it maps; only x86 (the dedup) maps a page twice.
    if (arm64 && seg.rule.kind !== "unique") return false;
    const rule = seg.rule;
    if (rule.kind === "dedup" && ((x - seg.lo) % rule.compound !== 0 || (y - seg.lo) % rule.compound !== 0)) return false;
  }
  let cleared = 0;
  for (const seg of e.pattern) {
    const x = Math.max(seg.lo, ja);
    const y = Math.min(seg.hi, jb);
    if (x >= y) continue;
    const n = y - x;
    cleared += n;
    const rule = seg.rule;
    if (rule.kind === "unique") {
      // Each page has one reference: it goes with its PTE.
      if (arm64) {
        // free_hotplug_page_range()
        if (altmap) vmemAltmapFree(altmap, n);
        else if (rule.backing === "altmap") for (let q = 0; q < n; q++) warn(op.k, "free_hotplug_page_range", "WARN_ON(PageReserved(page))");
      }
      noteFreed(op, (base + x) * g.pageSize, (base + y) * g.pageSize);
    } else if (rule.kind === "dedup") {
      // The head page goes with its PTE, the tail page with the compound's last PTE.
      if (pagesInsideOp(op, base + x, base + y)) continue;
      for (let c = x; c < y; c += rule.compound) {
        noteFreed(op, (base + c) * g.pageSize, (base + c + 1) * g.pageSize);
        const last = base + c + rule.compound - 1;
        noteFreed(op, last * g.pageSize, (last + 1) * g.pageSize);
      }
    } else if (rule.block.backing !== "foreign") {
      // free_pagetable() per PTE: put_page_testzero() reaches 0 at the PTE that held the last reference.
      const before = rule.block.refs;
      rule.block.refs -= n;
      if (before <= n) {
        const p = base + x + Math.max(before, 1) - 1;
        releaseBlock(op, rule.block, p * g.pageSize, (p + 1) * g.pageSize);
      }
    }
  }
  const t = s.pmds.own(i).entry as PteTableEntry;
  t.entries -= cleared;
  t.pattern = internPattern(s, patternRemove(t.pattern ?? EMPTY_PATTERN, ja, jb));
  s.pmds.settle(i);
  return true;
}

// ref: arch/x86/mm/init_64.c remove_pte_table
function removePteTable(op: VmemmapOp, start: number, end: number): void {
  const { g } = op;
  if (clearPtes(op, pmdIndex(g, start), Math.floor(start / g.pageSize), Math.ceil(end / g.pageSize), null, false)) return;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = alignDown(addr + g.pageSize, g.pageSize);
    if (next > end) next = end;
    const p = Math.floor(addr / g.pageSize);
    const block = pteGet(op, p);
    // !pte_present (boot's PTEs are only under early sections, which never come here).
    if (!block) continue;
    freePagetable(op, block, p * g.pageSize, (p + 1) * g.pageSize);
    pteClear(op, p);
  }
}

// ref: arch/x86/mm/init_64.c remove_pmd_table
function removePmdTable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { s, g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) continue;
    const kind = pmdLeafKind(op, i);
    if (kind) {
      // Boot's leaves map early sections' memmap, which is freed by free_map_bootmem, not here.
      if (kind === "boot") continue;
      const e = s.pmds.get(i) as PmdLeafEntry;
      if (isAligned(addr, g.pmdSize) && isAligned(next, g.pmdSize)) {
        freeHugepageTable(op, leafBlock(op, e), altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
        pmdClearLeaf(op, i);
      } else {
        const leaf = explicitLeaf(op, i, e);
        if (vmemmapPmdIsUnused(leaf, addr, next)) {
          freeHugepageTable(op, leaf.block, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
          pmdClearLeaf(op, i);
        }
      }
      continue;
    }
    removePteTable(op, addr, next);
    freePteTable(op, i);
  }
}

// ref: arch/x86/mm/init_64.c remove_pud_table
function removePudTable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pudAddrEnd(g, addr, end);
    const j = pudIndex(g, addr);
    if (!pmdTablePresent(op, j)) continue;
    removePmdTable(op, addr, next, altmap);
    freePmdTable(op, j);
  }
}

/** vmemmap_free(start, end, altmap) = remove_pagetable(start, end, false, altmap). */
// ref: arch/x86/mm/init_64.c remove_pagetable
function removePagetable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  // PGD/P4D entries stay (free_pud_table runs only with 5-level paging, and PUD tables are not modelled).
  removePudTable(op, start, end, altmap);
}

// ref: arch/arm64/mm/mmu.c free_hotplug_page_range
function freeHotplugPageRange(
  op: VmemmapOp,
  block: VmemmapBlock,
  size: number,
  altmap: VmemAltmap | null,
  start: number,
  end: number,
): void {
  if (block.backing === "foreign") return;
  if (altmap) {
    // Returned to the altmap given, wherever the page came from.
    vmemAltmapFree(altmap, size / op.g.pageSize);
  } else if (block.backing === "altmap") {
    // A device page is PageReserved; free_pages() hands it to the buddy allocator anyway.
    warn(op.k, "free_hotplug_page_range", "WARN_ON(PageReserved(page))");
  }
  releaseBlock(op, block, start, end);
}

// ref: arch/arm64/mm/mmu.c unmap_hotplug_pte_range
function unmapHotplugPteRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { g } = op;
  // do { ... } while (addr += PAGE_SIZE, addr < end): from an unaligned start, the page holding the end of the
  // range can be missed, as in population.
  const first = Math.floor(start / g.pageSize);
  if (clearPtes(op, pmdIndex(g, start), first, first + Math.ceil((end - start) / g.pageSize), altmap, true)) return;
  for (let addr = start; addr < end; addr += g.pageSize) {
    const p = Math.floor(addr / g.pageSize);
    const block = pteGet(op, p);
    // pte_none (boot's PTEs are only under early sections, which never come here).
    if (!block) continue;
    pteClear(op, p);
    freeHotplugPageRange(op, block, g.pageSize, altmap, p * g.pageSize, (p + 1) * g.pageSize);
  }
}

// ref: arch/arm64/mm/mmu.c unmap_hotplug_pmd_range
function unmapHotplugPmdRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { s, g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) continue;
    const kind = pmdLeafKind(op, i);
    if (kind) {
      // A section mapping goes whole, even when [addr, next) is only part of it.
      if (kind === "boot") continue;
      const block = leafBlock(op, s.pmds.get(i) as PmdLeafEntry);
      pmdClearLeaf(op, i);
      freeHotplugPageRange(op, block, g.pmdSize, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
      continue;
    }
    unmapHotplugPteRange(op, addr, next, altmap);
  }
}

// ref: arch/arm64/mm/mmu.c unmap_hotplug_range
function unmapHotplugRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pudAddrEnd(g, addr, end);
    if (!pmdTablePresent(op, pudIndex(g, addr))) continue;
    unmapHotplugPmdRange(op, addr, next, altmap);
  }
}

// ref: arch/arm64/mm/mmu.c free_empty_pte_table
function freeEmptyPteTable(op: VmemmapOp, i: number): void {
  // pgtable_range_aligned() always holds inside [VMEMMAP_START, VMEMMAP_END) at the PMD level.
  freePteTable(op, i);
}

// ref: arch/arm64/mm/mmu.c free_empty_pmd_table
function freeEmptyPmdTable(op: VmemmapOp, start: number, end: number): void {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) continue;
    freeEmptyPteTable(op, i);
  }
  if (g.pudSize === null) return; // CONFIG_PGTABLE_LEVELS <= 2
  // Where a PUD entry spans more than the vmemmap region (64K pages, 3 levels) pgtable_range_aligned() fails;
  // that one PMD table also maps boot's memmap, which is what keeps it present in the model.
  freePmdTable(op, pudIndex(g, start));
}

// ref: arch/arm64/mm/mmu.c free_empty_tables
function freeEmptyTables(op: VmemmapOp, start: number, end: number): void {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pudAddrEnd(g, addr, end);
    if (!pmdTablePresent(op, pudIndex(g, addr))) continue;
    freeEmptyPmdTable(op, addr, next);
  }
}

// ref: arch/arm64/mm/mmu.c vmemmap_free
function vmemmapFreeArm64(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  unmapHotplugRange(op, start, end, altmap);
  freeEmptyTables(op, start, end);
}

// ref: arch/powerpc/mm/init_64.c vmemmap_list_free
function vmemmapListFree(op: VmemmapOp, start: number): VmemmapBlock | undefined {
  const idx = start / vmemmapPsize();
  const block = op.s.vmemmapList.get(idx);
  op.s.vmemmapList.delete(idx);
  return block;
}

// ref: arch/powerpc/mm/init_64.c vmemmap_free
function vmemmapFreePpc64(op: VmemmapOp, startIn: number, end: number, altmap: VmemAltmap | null): void {
  const pageSize = vmemmapPsize();
  const altStart = altmap ? altmap.basePfn : Number.POSITIVE_INFINITY;
  const altEnd = altmap ? altmap.basePfn + altmap.reserve + altmap.free : Number.POSITIVE_INFINITY;
  for (let start = alignDown(startIn, pageSize); start < end; start += pageSize) {
    // The sub-sections being removed are already invalid: keep the page while any other is valid.
    if (vmemmapPopulated(op, start, pageSize)) continue;
    // Boot's vmemmap pages are not in the model's list: freeing them costs hot-plug nothing.
    const block = vmemmapListFree(op, start);
    if (!block) continue;
    const basePfn = block.altmapPfn;
    if (altmap && block.backing === "altmap" && basePfn >= altStart && basePfn < altEnd) {
      vmemAltmapFree(altmap, block.nrPfns);
    }
    // else free_pages() (RAM), or free_reserved_page() on another device's pages: lost to their altmap.
    releaseBlock(op, block, start, start + pageSize);
    // vmemmap_remove_mapping()
  }
}

/** The arch's vmemmap_free(start, end, altmap). */
// ref: include/linux/mm.h vmemmap_free
function vmemmapFree(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  switch (op.k.arch.arch) {
    case "x86_64":
      removePagetable(op, start, end, altmap);
      return;
    case "arm64":
      vmemmapFreeArm64(op, start, end, altmap);
      return;
    case "ppc64":
      vmemmapFreePpc64(op, start, end, altmap);
      return;
  }
}

/**
 * Drop the ledger entries of [pfn, pfn + nrPages). A removal that splits a populated chunk (only __remove_pages
 * of part of an add can) leaves the part before with the costs and the part after with none.
 */
function vmemmapLedgerTake(op: VmemmapOp): void {
  const { k, s, g, pfn } = op;
  const end = pfn + op.nrPages;
  // Chunks start on sub-section boundaries and never cross a section.
  for (const c of s.chunks.startingIn(k.sections.sectionNrToPfn(k.sections.pfnToSectionNr(pfn)), end)) {
    if (c.startPfn + c.nrPages <= pfn) continue;
    s.take(c.startPfn);
    const cEnd = c.startPfn + c.nrPages;
    if (c.startPfn < pfn) {
      const nr = pfn - c.startPfn;
      s.add({ ...c, nrPages: nr, memmapBytes: nr * g.structPageSize, optimized: false });
    }
    if (cEnd > end) {
      const nr = cEnd - end;
      const zero = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 };
      s.add({ ...c, ...zero, startPfn: end, nrPages: nr, memmapBytes: nr * g.structPageSize, optimized: false });
    }
  }
}

/**
 * Struct pages of other live chunks that sat in memory this removal freed are gone too: 6.1 frees a shared
 * vmemmap page (arm64 16K/64K sub-sections) or a whole section mapping (arm64) on a partial removal.
 */
function tearDownCollateral(op: VmemmapOp): void {
  const { k, s } = op;
  for (const [lo, hi] of op.freed) {
    for (const [x, y] of s.chunks.spansIn(lo, hi)) k.memmap.setRange(x, y, TORN_DOWN_PAGE);
  }
}

// ref: mm/sparse.c depopulate_section_memmap
export function depopulateSectionMemmap(k: Kernel, pfn: number, nrPages: number, altmap: VmemAltmap | null): void {
  const op = vmemmapOp(k, pfn, nrPages);
  const start = pfnToPage(op.g, pfn);
  const end = start + nrPages * op.g.structPageSize;
  vmemmapFree(op, start, end, altmap);
  vmemmapLedgerTake(op);
  // The vmemmap is freed; the model remembers it existed so a later access is a use-after-free.
  k.memmap.setRange(pfn, pfn + nrPages, TORN_DOWN_PAGE);
  tearDownCollateral(op);
}
