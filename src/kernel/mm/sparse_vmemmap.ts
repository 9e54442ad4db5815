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
import { PageState, pageValue } from "./memmap.ts";
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
  /** The altmap it was allocated from, and its first pfn there (-1 unless backing is "altmap"). */
  readonly altmap: VmemAltmap | null;
  readonly altmapPfn: number;
  readonly bytes: number;
  /** bytes >> PAGE_SHIFT */
  readonly nrPfns: number;
  /** Start pfn of the chunk whose population allocated it. */
  readonly owner: number;
  /** PTEs mapping it (page refcount; the compound dedup takes one per extra PTE with get_page). */
  refs: number;
  freed: boolean;
}

export interface PmdLeaf {
  readonly block: VmemmapBlock;
  /** x86 sub-PMD use: vmemmap ranges not PAGE_UNUSED (vmemmap_use_sub_pmd / vmemmap_pmd_is_unused). */
  used: Array<[number, number]>;
}

export interface PgTable {
  /** Allocated by memory hot-plug (else boot allocated it and only its hot-plug entries are tracked). */
  readonly hot: boolean;
  readonly bytes: number;
}

export interface PteTable extends PgTable {
  /** Hot-plug PTEs present in it. */
  entries: number;
}

export interface PmdTable extends PgTable {
  /** PMD indexes in it holding a hot-plug leaf or a tracked PTE table. */
  readonly entries: Set<number>;
}

/** Every populated chunk, keyed by start pfn, and the vmemmap mapping memory hot-plug built. */
export class VmemmapLedger {
  readonly chunks = new Map<number, VmemmapChunk>();
  ramBytes = 0;
  altmapPfns = 0;
  pageTableBytes = 0;
  dedupSavedBytes = 0;

  /** PTEs hot-plug installed, keyed by vmemmap page index (address / PAGE_SIZE). */
  readonly ptes = new Map<number, VmemmapBlock>();
  /** PMD leaves hot-plug installed, keyed by PMD index (address / PMD_SIZE). */
  readonly pmdLeaves = new Map<number, PmdLeaf>();
  /** PTE tables holding hot-plug PTEs (or allocated by hot-plug), keyed by PMD index. */
  readonly pteTables = new Map<number, PteTable>();
  /** PMD tables holding hot-plug entries (or allocated by hot-plug), keyed by PUD index. */
  readonly pmdTables = new Map<number, PmdTable>();
  /** powerpc vmemmap_list entries hot-plug added, keyed by vmemmap page index (address / mmu_vmemmap_psize). */
  readonly vmemmapList = new Map<number, VmemmapBlock>();
  /** arm64 memstart_addr >> PAGE_SHIFT (fixed at the first vmemmap operation). */
  memstartPfn: number | null = null;
  /** WARN_ON_ONCE in __populate_section_memmap fired. */
  warnedMisaligned = false;

  add(c: VmemmapChunk): void {
    this.chunks.set(c.startPfn, c);
    this.ramBytes += c.ramBytes;
    this.altmapPfns += c.altmapPfns;
    this.pageTableBytes += c.pageTableBytes;
    if (c.optimized) this.dedupSavedBytes += c.memmapBytes - c.ramBytes;
  }

  take(startPfn: number): VmemmapChunk | undefined {
    const c = this.chunks.get(startPfn);
    if (!c) return undefined;
    this.chunks.delete(startPfn);
    this.ramBytes -= c.ramBytes;
    this.altmapPfns -= c.altmapPfns;
    this.pageTableBytes -= c.pageTableBytes;
    if (c.optimized) this.dedupSavedBytes -= c.memmapBytes - c.ramBytes;
    return c;
  }

  /** Sum over the chunks starting inside [startPfn, endPfn). */
  cost(startPfn: number, endPfn: number): VmemmapCost {
    const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0, dedupSavedBytes: 0 };
    for (const c of this.chunks.values()) {
      if (c.startPfn < startPfn || c.startPfn >= endPfn) continue;
      out.ramBytes += c.ramBytes;
      out.altmapPfns += c.altmapPfns;
      out.pageTableBytes += c.pageTableBytes;
      if (c.optimized) out.dedupSavedBytes += c.memmapBytes - c.ramBytes;
    }
    return out;
  }

  /**
   * What hot-plug's vmemmap holds right now, read off the mapping (each block once, however many PTEs map it).
   * It differs from the chunk totals when a page or table outlives the chunk that allocated it (a PTE table
   * shared by the sub-sections of a section, the tail page the dedup shares across the sections of a 1 GiB
   * compound page).
   */
  resident(): { ramBytes: number; altmapPfns: number; pageTableBytes: number } {
    const blocks = new Set<VmemmapBlock>();
    for (const b of this.ptes.values()) blocks.add(b);
    for (const l of this.pmdLeaves.values()) blocks.add(l.block);
    for (const b of this.vmemmapList.values()) blocks.add(b);
    const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 };
    for (const b of blocks) {
      if (b.backing === "ram") out.ramBytes += b.bytes;
      else if (b.backing === "altmap") out.altmapPfns += b.nrPfns;
    }
    for (const t of this.pteTables.values()) if (t.hot) out.pageTableBytes += t.bytes;
    for (const t of this.pmdTables.values()) if (t.hot) out.pageTableBytes += t.bytes;
    return out;
  }
}

/** include/linux/mm.h VMEMMAP_RESERVE_NR: vmemmap pages of a compound page the dedup does not share. */
export const VMEMMAP_RESERVE_NR = 2;

/** The vmemmap geometry of one kernel. */
interface VmemmapGeo {
  readonly pageSize: number;
  readonly pmdSize: number;
  /** Bytes one PMD table maps (PUD_SIZE); null when the PMD level is folded away (arm64 with 2 levels). */
  readonly pudSize: number | null;
  readonly structPageSize: number;
  readonly memstartPfn: number;
  readonly pagesPerSection: number;
  readonly pagesPerSubsection: number;
}

/** One vmemmap operation on one chunk: what it allocated, and what vmemmap ranges it freed. */
interface VmemmapOp {
  readonly k: Kernel;
  readonly s: VmemmapLedger;
  readonly g: VmemmapGeo;
  readonly pfn: number;
  readonly nrPages: number;
  ramBytes: number;
  altmapPfns: number;
  pageTableBytes: number;
  readonly freed: Array<[number, number]>;
}

function vmemmapOp(k: Kernel, pfn: number, nrPages: number): VmemmapOp {
  const g: VmemmapGeo = {
    pageSize: k.geo.pageSize,
    pmdSize: 2 ** k.arch.pmdShift,
    pudSize: k.arch.pgtableLevels >= 3 && k.arch.pudShift !== null ? 2 ** k.arch.pudShift : null,
    structPageSize: k.arch.structPageSize,
    memstartPfn: memstartPfn(k),
    pagesPerSection: k.geo.pagesPerSection,
    pagesPerSubsection: k.geo.pagesPerSubsection,
  };
  return { k, s: k.vmemmap, g, pfn, nrPages, ramBytes: 0, altmapPfns: 0, pageTableBytes: 0, freed: [] };
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

/** pmd_none(*pmd) */
function pmdNone(op: VmemmapOp, i: number): boolean {
  const { s, g } = op;
  return !s.pmdLeaves.has(i) && !s.pteTables.has(i) && !bootMemmapIn(op, i * g.pmdSize, (i + 1) * g.pmdSize);
}

/** pmd_large(*pmd): hot-plug's leaf, or "boot" for one boot mapped. */
function pmdLeafAt(op: VmemmapOp, i: number): PmdLeaf | "boot" | null {
  const { k, s, g } = op;
  const leaf = s.pmdLeaves.get(i);
  if (leaf) return leaf;
  if (s.pteTables.has(i) || !bootUsesPmdLeaves(k)) return null;
  return bootMemmapIn(op, i * g.pmdSize, (i + 1) * g.pmdSize) ? "boot" : null;
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
    t = { hot: false, bytes: g.pageSize, entries: new Set() };
    s.pmdTables.set(j, t);
  }
  t.entries.add(i);
}

function pmdTableRemoveEntry(op: VmemmapOp, i: number): void {
  const { s, g } = op;
  if (g.pudSize === null) return;
  s.pmdTables.get(pudIndex(g, i * g.pmdSize))?.entries.delete(i);
}

/** set_pte_at(): PTE for vmemmap page p maps block. */
function setPte(op: VmemmapOp, p: number, block: VmemmapBlock): void {
  const { s, g } = op;
  const i = pmdIndex(g, p * g.pageSize);
  let t = s.pteTables.get(i);
  if (!t) {
    // The first hot-plug PTE in a table boot allocated.
    t = { hot: false, bytes: g.pageSize, entries: 0 };
    s.pteTables.set(i, t);
    pmdTableAddEntry(op, i);
  }
  t.entries++;
  s.ptes.set(p, block);
}

/** pte_clear() */
function pteClear(op: VmemmapOp, p: number): void {
  const { s, g } = op;
  s.ptes.delete(p);
  const t = s.pteTables.get(pmdIndex(g, p * g.pageSize));
  if (t) t.entries--;
}

/** set_pmd() / pmd_set_huge(): a leaf mapping [start, end) of its PMD in use. */
function setPmdLeaf(op: VmemmapOp, i: number, block: VmemmapBlock, start: number, end: number): void {
  op.s.pmdLeaves.set(i, { block, used: [[start, end]] });
  pmdTableAddEntry(op, i);
}

/** pmd_clear() of a leaf */
function pmdClearLeaf(op: VmemmapOp, i: number): void {
  op.s.pmdLeaves.delete(i);
  pmdTableRemoveEntry(op, i);
}

function newBlock(op: VmemmapOp, backing: VmemmapBacking, altmap: VmemAltmap | null, altmapPfn: number, bytes: number): VmemmapBlock {
  return { backing, altmap, altmapPfn, bytes, nrPfns: bytes / op.g.pageSize, owner: op.pfn, refs: 1, freed: false };
}

/** A page hot-plug never allocated that a PTE is made to point at (boot's, or whatever a stray read yields). */
function foreignBlock(op: VmemmapOp): VmemmapBlock {
  return newBlock(op, "foreign", null, -1, op.g.pageSize);
}

/** The block backing vmemmap [start, end) is gone: unmapped and returned (or lost). */
function releaseBlock(op: VmemmapOp, block: VmemmapBlock, start: number, end: number): void {
  if (block.backing === "foreign" || block.freed) return;
  block.freed = true;
  op.freed.push([start, end]);
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

// ref: mm/sparse-vmemmap.c vmemmap_alloc_block_buf
function vmemmapAllocBlockBuf(op: VmemmapOp, size: number, altmap: VmemAltmap | null): VmemmapBlock | null {
  if (altmap) {
    const pfn = altmapAllocBlockBuf(altmap, size, op.g.pageSize);
    if (pfn < 0) return null;
    op.altmapPfns += size / op.g.pageSize;
    return newBlock(op, "altmap", altmap, pfn, size);
  }
  // sparse_buffer_alloc() only serves boot; vmemmap_alloc_block() is alloc_pages_node(), which the model grants.
  op.ramBytes += size;
  return newBlock(op, "ram", null, -1, size);
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
  s.pmdTables.set(j, { hot: true, bytes: vmemmapAllocBlockZero(op, g.pageSize), entries: new Set() });
}

// ref: mm/sparse-vmemmap.c vmemmap_pmd_populate
function vmemmapPmdPopulate(op: VmemmapOp, addr: number): void {
  const { s, g } = op;
  const i = pmdIndex(g, addr);
  if (!pmdNone(op, i)) return;
  s.pteTables.set(i, { hot: true, bytes: vmemmapAllocBlockZero(op, g.pageSize), entries: 0 });
  pmdTableAddEntry(op, i);
}

// ref: mm/sparse-vmemmap.c vmemmap_pte_populate
function vmemmapPtePopulate(
  op: VmemmapOp,
  addr: number,
  altmap: VmemAltmap | null,
  reuse: VmemmapBlock | null,
): VmemmapBlock | null {
  const { s, g } = op;
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
  const cur = s.ptes.get(p);
  if (cur) return cur;
  if (bootPtesIn(op, p * g.pageSize, (p + 1) * g.pageSize)) return foreignBlock(op);
  let block: VmemmapBlock | null;
  if (!reuse) {
    block = vmemmapAllocBlockBuf(op, g.pageSize, altmap);
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

// ref: mm/sparse-vmemmap.c vmemmap_populate_range
function vmemmapPopulateRange(
  op: VmemmapOp,
  start: number,
  end: number,
  altmap: VmemAltmap | null,
  reuse: VmemmapBlock | null,
): Errno {
  // addr steps by PAGE_SIZE from start itself: a start that is not page aligned (sub-section memmap on 16K/64K
  // pages) can leave the page holding the end of [start, end) unpopulated.
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
  return 2 ** pgmap.vmemmapShift;
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
  const below = addr - op.g.pageSize;
  return op.s.ptes.get(Math.floor(below / op.g.pageSize)) ?? foreignBlock(op);
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
  const size = Math.min(end - start, pgmapVmemmapNr(pgmap) * g.structPageSize);
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
      const p = vmemmapAllocBlockBuf(op, g.pmdSize, altmap);
      if (p) {
        // set_pmd(PAGE_KERNEL_LARGE); for a sub-PMD [addr, next), vmemmap_use_new_sub_pmd() marks the rest of
        // the PMD PAGE_UNUSED.
        setPmdLeaf(op, i, p, addr, next);
        continue;
      }
      if (altmap) return -ENOMEM; // no fallback
    } else {
      const leaf = pmdLeafAt(op, i);
      if (leaf) {
        // vmemmap_use_sub_pmd(): the kernel zeroes the first struct page of [addr, next) (or nothing when it
        // continues the previous range) and memmap init writes the rest; the model marks [addr, next) in use.
        if (leaf !== "boot") leaf.used = intervalsAdd(leaf.used, addr, next);
        continue;
      }
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
      const p = vmemmapAllocBlockBuf(op, g.pmdSize, altmap);
      if (!p) {
        // Fall back to base pages, from the same altmap.
        if (vmemmapPopulateBasepages(op, addr, next, altmap)) return -ENOMEM;
        continue;
      }
      setPmdLeaf(op, i, p, addr, next);
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
    if (altmap && !altmapCrossBoundary(op, altmap, start, pageSize)) p = vmemmapAllocBlockBuf(op, pageSize, altmap);
    if (!p) p = vmemmapAllocBlockBuf(op, pageSize, null);
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
  const isPowerOf2 = Number.isInteger(Math.log2(sp));
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
  const { s, g } = op;
  const p = Math.floor(addr / g.pageSize);
  if (pmdLeafAt(op, pmdIndex(g, addr))) return true;
  return s.ptes.has(p) || bootPtesIn(op, p * g.pageSize, (p + 1) * g.pageSize);
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
  k.memmap.setRange(pfn, pfn + nrPages, pageValue({ state: PageState.Uninitialised }));
  // The last vmemmap page of an unaligned start may have been skipped (vmemmapPopulateRange): no struct pages there.
  if (k.arch.arch !== "ppc64" && !vmemmapMapped(op, end - 1)) {
    const lo = Math.max(pfn, pageToPfn(g, alignDown(end - 1, g.pageSize)));
    k.memmap.setRange(lo, pfn + nrPages, pageValue({ state: PageState.NoMemmap }));
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
function freeHugepageTable(op: VmemmapOp, leaf: PmdLeaf, altmap: VmemAltmap | null, start: number, end: number): void {
  // With an altmap, the leaf's pfns go back to it (whatever the leaf came from); else free_pagetable(order 9).
  if (altmap) vmemAltmapFree(altmap, op.g.pmdSize / op.g.pageSize);
  releaseBlock(op, leaf.block, start, end);
}

/**
 * Frees the PTE table of PMD index i if all its entries are none. A table holding boot's PTEs as well as
 * hot-plug's stays in the kernel; the model stops tracking it once hot-plug's are gone, either way.
 */
// ref: arch/x86/mm/init_64.c free_pte_table
function freePteTable(op: VmemmapOp, i: number): void {
  const t = op.s.pteTables.get(i);
  if (!t || t.entries > 0) return;
  op.s.pteTables.delete(i);
  pmdTableRemoveEntry(op, i);
}

/** Likewise for the PMD table of PUD index j (a table hot-plug allocated never holds boot entries). */
// ref: arch/x86/mm/init_64.c free_pmd_table
function freePmdTable(op: VmemmapOp, j: number): void {
  const t = op.s.pmdTables.get(j);
  if (!t || t.entries.size > 0) return;
  op.s.pmdTables.delete(j);
}

// ref: arch/x86/mm/init_64.c vmemmap_pmd_is_unused
function vmemmapPmdIsUnused(leaf: PmdLeaf, addr: number, end: number): boolean {
  // memset(addr, PAGE_UNUSED, end - addr); then: is the whole PMD PAGE_UNUSED?
  leaf.used = intervalsRemove(leaf.used, addr, end);
  return leaf.used.length === 0;
}

// ref: arch/x86/mm/init_64.c remove_pte_table
function removePteTable(op: VmemmapOp, start: number, end: number): void {
  const { s, g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = alignDown(addr + g.pageSize, g.pageSize);
    if (next > end) next = end;
    const p = Math.floor(addr / g.pageSize);
    const block = s.ptes.get(p);
    // !pte_present (boot's PTEs are only under early sections, which never come here).
    if (!block) continue;
    freePagetable(op, block, p * g.pageSize, (p + 1) * g.pageSize);
    pteClear(op, p);
  }
}

// ref: arch/x86/mm/init_64.c remove_pmd_table
function removePmdTable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) continue;
    const leaf = pmdLeafAt(op, i);
    if (leaf) {
      // Boot's leaves map early sections' memmap, which is freed by free_map_bootmem, not here.
      if (leaf === "boot") continue;
      if (isAligned(addr, g.pmdSize) && isAligned(next, g.pmdSize)) {
        freeHugepageTable(op, leaf, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
        pmdClearLeaf(op, i);
      } else if (vmemmapPmdIsUnused(leaf, addr, next)) {
        freeHugepageTable(op, leaf, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
        pmdClearLeaf(op, i);
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
  const { s, g } = op;
  // do { ... } while (addr += PAGE_SIZE, addr < end): from an unaligned start, the page holding the end of the
  // range can be missed, as in population.
  for (let addr = start; addr < end; addr += g.pageSize) {
    const p = Math.floor(addr / g.pageSize);
    const block = s.ptes.get(p);
    // pte_none (boot's PTEs are only under early sections, which never come here).
    if (!block) continue;
    pteClear(op, p);
    freeHotplugPageRange(op, block, g.pageSize, altmap, p * g.pageSize, (p + 1) * g.pageSize);
  }
}

// ref: arch/arm64/mm/mmu.c unmap_hotplug_pmd_range
function unmapHotplugPmdRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
  const { g } = op;
  for (let addr = start, next = start; addr < end; addr = next) {
    next = pmdAddrEnd(g, addr, end);
    const i = pmdIndex(g, addr);
    if (pmdNone(op, i)) continue;
    const leaf = pmdLeafAt(op, i);
    if (leaf) {
      // A section mapping goes whole, even when [addr, next) is only part of it.
      if (leaf === "boot") continue;
      pmdClearLeaf(op, i);
      freeHotplugPageRange(op, leaf.block, g.pmdSize, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
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
  for (let p = k.sections.sectionNrToPfn(k.sections.pfnToSectionNr(pfn)); p < end; p += g.pagesPerSubsection) {
    const c = s.chunks.get(p);
    if (!c || c.startPfn + c.nrPages <= pfn) continue;
    s.take(p);
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
  const { k, s, g, pfn } = op;
  const end = pfn + op.nrPages;
  for (const [a, b] of op.freed) {
    const lo = pageToPfn(g, a);
    const hi = pageToPfn(g, b - 1) + 1;
    if (lo >= pfn && hi <= end) continue;
    for (const c of s.chunks.values()) {
      const x = Math.max(lo, c.startPfn);
      const y = Math.min(hi, c.startPfn + c.nrPages);
      if (x < y) k.memmap.setRange(x, y, pageValue({ state: PageState.TornDown }));
    }
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
  k.memmap.setRange(pfn, pfn + nrPages, pageValue({ state: PageState.TornDown }));
  tearDownCollateral(op);
}
