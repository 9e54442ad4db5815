/**
 * User page tables with the arch's real level structure (pgd → p4d → pud → pmd → pte, folded levels left
 * out) and entries in the arch's encoding (src/arch/pte.ts). Table pages come from the buddy allocator
 * (pte_alloc_one / pmd_alloc_one: one order-0 page each), so a mapping's page-table cost is real.
 *
 * ref: include/linux/pgtable.h, mm/memory.c __pte_alloc, __pmd_alloc, __pud_alloc, free_pgd_range
 */
import { joinEntry, type PteFlag, type PteFormat, pteFormat, testBit } from "../../arch/pte.ts";
import type { Kernel } from "../kernel.ts";
import { nextStamp } from "../lib/rewind.ts";
import { pageWrite } from "./page_access.ts";

/**
 * Does the arch have pte_devmap (ARCH_HAS_PTE_DEVMAP)? The Kconfig symbol (6.1's ZONE_DEVICE depends on it) and the
 * variant's `archHasPteDevmap` (false for seed 000's arm64, which selected ZONE_DEVICE without it).
 */
// ref: arch/Kconfig ARCH_HAS_PTE_DEVMAP; mm/Kconfig ZONE_DEVICE
export function archHasPteDevmap(k: Kernel): boolean {
  return k.variant.archHasPteDevmap && k.config.enabled("ARCH_HAS_PTE_DEVMAP");
}

/** pfn_t flags PFN_DEV | PFN_MAP (include/linux/pfn_t.h), as pfn_t_devmap tests them. */
const PFN_DEV_MAP = (1 << 1) | (1 << 2);

/**
 * pfn_t_devmap: PFN_DEV and PFN_MAP both set — and false whatever the flags when the arch has no pte_devmap
 * (the !CONFIG_ARCH_HAS_PTE_DEVMAP stub). For insert_pfn, vm_mixed_ok and vmf_insert_pfn_pmd/pud.
 */
// ref: include/linux/pfn_t.h pfn_t_devmap
export function pfnTDevmap(k: Kernel, p: { readonly flags: number }): boolean {
  return archHasPteDevmap(k) && (p.flags & PFN_DEV_MAP) === PFN_DEV_MAP;
}

/** One flag of the encoding as masks on the entry's two 32-bit words (both 0 when the arch has no such bit). */
export interface BitMask {
  readonly lo: number;
  readonly hi: number;
}

function bitMask(fmt: PteFormat, flag: PteFlag): BitMask {
  const n = fmt.bits[flag];
  if (n === undefined || n < 0) return { lo: 0, hi: 0 };
  return n < 32 ? { lo: (2 ** n) | 0, hi: 0 } : { lo: 0, hi: (2 ** (n - 32)) | 0 };
}

export type LevelName = "pgd" | "p4d" | "pud" | "pmd" | "pte";

export interface Level {
  /** The level's role: which entries it holds (pmd = entries that map PMD_SIZE). */
  readonly name: LevelName;
  /** The kernel's name for the top level when levels are folded into it ("pgd"). */
  readonly display: string;
  readonly shift: number;
  /** log2(PTRS_PER_*) */
  readonly indexBits: number;
}

/** The levels of a user address space, top first (arch profile: pgtableLevels, pmdShift, pudShift, vaBits). */
export function pageTableLevels(k: Kernel): Level[] {
  const a = k.arch;
  const shifts: Array<[LevelName, number]> = [["pte", a.pageShift], ["pmd", a.pmdShift]];
  if (a.pgtableLevels >= 3 && a.pudShift !== null) shifts.push(["pud", a.pudShift]);
  // Each level resolves PAGE_SHIFT - 3 bits, except ppc64 radix 64K whose PUD level has 512 entries
  // (RADIX_PUD_INDEX_SIZE 9) and whose PGD takes the rest (13 bits).
  const perLevel = a.arch === "ppc64" ? 9 : a.pageShift - 3;
  let top = shifts[shifts.length - 1]![1];
  if (a.pgtableLevels === 5) {
    top += perLevel;
    shifts.push(["p4d", top]);
  }
  if (a.pgtableLevels >= 4) shifts.push(["pgd", top + perLevel]);
  const out: Level[] = [];
  for (let i = shifts.length - 1; i >= 0; i--) {
    const [name, shift] = shifts[i]!;
    const next = i === shifts.length - 1 ? a.vaBits : shifts[i + 1]![1];
    const display = i === shifts.length - 1 && name !== "pgd" ? `pgd(${name})` : name;
    out.push({ name, display, shift, indexBits: next - shift });
  }
  return out;
}

/** One page-table page. */
export class PtTable {
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  readonly child: Array<PtTable | undefined>;
  /** Entries that are not none. */
  used = 0;
  constructor(
    readonly depth: number,
    readonly phys: number,
    n: number,
    leafLevel: boolean,
  ) {
    this.lo = new Uint32Array(n);
    this.hi = new Uint32Array(n);
    this.child = leafLevel ? [] : new Array<PtTable | undefined>(n);
  }
}

/** Where a walk stopped: the table and slot holding the entry that maps (or would map) the address. */
export interface Slot {
  table: PtTable;
  idx: number;
  level: Level;
}

export class PageTable {
  readonly fmt: PteFormat;
  readonly levels: Level[];
  readonly root: PtTable;
  /** Page-table pages in use (mm->pgtables_bytes / PAGE_SIZE, the pgd included). */
  pages = 1;
  private readonly k: Kernel;

  /** Per depth: 2^shift and 2^indexBits (index() runs for every entry a walk or GUP visits). */
  private readonly span: Float64Array;
  private readonly entries: Float64Array;
  /** Depth of the PTE level (the last). */
  readonly pteDepth: number;
  /** The flags GUP-fast tests, as masks on (lo, hi). */
  readonly masks: { readonly present: BitMask; readonly user: BitMask; readonly write: BitMask; readonly special: BitMask; readonly devmap: BitMask };

  constructor(k: Kernel, rootPhys: number) {
    this.k = k;
    this.fmt = pteFormat(k.arch, { devmap: archHasPteDevmap(k) });
    this.levels = pageTableLevels(k);
    this.span = Float64Array.from(this.levels, (l) => 2 ** l.shift);
    this.entries = Float64Array.from(this.levels, (l) => 2 ** l.indexBits);
    this.pteDepth = this.levels.length - 1;
    const f = this.fmt;
    this.masks = { present: bitMask(f, "present"), user: bitMask(f, "user"), write: bitMask(f, "write"), special: bitMask(f, "special"), devmap: bitMask(f, "devmap") };
    this.root = new PtTable(0, rootPhys, 2 ** this.levels[0]!.indexBits, this.levels.length === 1);
  }

  /** Names the entries' state: a new stamp (lib/rewind.ts nextStamp) at every entry written. */
  stamp = nextStamp();

  /** Per depth: can an entry there be devmap at all (pte/pmd/pud_devmap are not 0)? Config and variant, cached. */
  private devmapByDepth: boolean[] | null = null;

  // ref: include/linux/mm.h pte_devmap; include/linux/pgtable.h pmd_devmap, pud_devmap fallbacks
  devmapAt(k: Kernel, depth: number): boolean {
    if (!this.devmapByDepth) {
      const arch = archHasPteDevmap(k);
      const thp = k.config.enabled("TRANSPARENT_HUGEPAGE");
      const pud = k.config.enabled("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD");
      this.devmapByDepth = this.levels.map((l) => arch && (l.name === "pte" || (thp && (l.name === "pmd" || (l.name === "pud" && pud)))));
    }
    return this.devmapByDepth[depth] ?? false;
  }

  depthOf(name: LevelName): number {
    return this.levels.findIndex((l) => l.name === name);
  }

  index(addr: number, depth: number): number {
    return Math.floor(addr / this.span[depth]!) % this.entries[depth]!;
  }

  /** Is this entry a leaf (a PTE, or a huge PMD/PUD block)? */
  isLeaf(t: PtTable, idx: number): boolean {
    if (t.depth === this.levels.length - 1) return true;
    const lo = t.lo[idx]!;
    const hi = t.hi[idx]!;
    switch (this.fmt.arch) {
      case "x86_64":
        return testBit(lo, hi, 7);
      case "arm64":
        return (lo & 3) === 1;
      case "ppc64":
        return testBit(lo, hi, 62);
    }
  }

  /**
   * Walk to the slot at level `target` for addr. Returns null where a table is missing (alloc false) or a
   * leaf above the target maps the address (then `leafAbove` gets that slot).
   */
  /** The footprint key of this mm's page tables (the explorer orders steps that read and write them). */
  get footprintKey(): string {
    return `pgtable:${this.root.phys}`;
  }

  /** Note a page-table read on the current step's footprint (only while the explorer records one). */
  noteRead(): void {
    if (this.k.sanitizer.footprint) this.k.sanitizer.read(this.footprintKey);
  }

  walk(addr: number, target: LevelName, alloc: boolean): Slot | { leafAbove: Slot } | null | "enomem" {
    this.noteRead();
    const depth = this.depthOf(target);
    if (depth < 0) return null;
    let t = this.root;
    for (let d = 0; d < depth; d++) {
      const idx = this.index(addr, d);
      let c = t.child[idx];
      if (!c) {
        if (t.lo[idx] !== 0 || t.hi[idx] !== 0) return { leafAbove: { table: t, idx, level: this.levels[d]! } };
        if (!alloc) return null;
        const phys = this.allocTablePage();
        if (phys < 0) return "enomem";
        c = new PtTable(d + 1, phys, 2 ** this.levels[d + 1]!.indexBits, d + 1 === this.levels.length - 1);
        t.child[idx] = c;
        this.set(t, idx, this.fmt.tableEntry(phys, this.levels[d + 1]!.indexBits));
      }
      t = c;
    }
    return { table: t, idx: this.index(addr, depth), level: this.levels[depth]! };
  }

  /** The deepest entry mapping addr (a leaf, or a none entry where the walk ended); null when no table. */
  lookup(addr: number): Slot | null {
    this.noteRead();
    let t = this.root;
    for (let d = 0; ; d++) {
      const idx = this.index(addr, d);
      const c = t.child[idx];
      if (!c) return { table: t, idx, level: this.levels[d]! };
      t = c;
    }
  }

  /** Every leaf entry that is not none, in address order: its table, slot, level and the address it maps. */
  forEachLeaf(visit: (t: PtTable, idx: number, level: Level, addr: number) => void): void {
    const walk = (t: PtTable, base: number): void => {
      const level = this.levels[t.depth]!;
      const size = 2 ** level.shift;
      for (let i = 0; i < t.lo.length; i++) {
        const c = t.child[i];
        if (c) walk(c, base + i * size);
        else if (t.lo[i] !== 0 || t.hi[i] !== 0) visit(t, i, level, base + i * size);
      }
    };
    walk(this.root, 0);
  }

  entry(s: Slot): bigint {
    return joinEntry(s.table.lo[s.idx]!, s.table.hi[s.idx]!);
  }

  set(t: PtTable, idx: number, e: bigint): void {
    if (this.k.sanitizer.footprint) this.k.sanitizer.write(this.footprintKey);
    this.stamp = nextStamp();
    const wasNone = t.lo[idx] === 0 && t.hi[idx] === 0;
    const lo = Number(BigInt.asUintN(32, e));
    const hi = Number(BigInt.asUintN(32, e >> 32n));
    t.lo[idx] = lo;
    t.hi[idx] = hi;
    const isNone = lo === 0 && hi === 0;
    if (wasNone && !isNone) t.used++;
    else if (!wasNone && isNone) t.used--;
  }

  clear(t: PtTable, idx: number): void {
    this.set(t, idx, 0n);
  }

  /** Free page-table pages left empty under [start, end) (free_pgd_range, for tables with nothing mapped). */
  freeEmptyTables(start: number, end: number): void {
    const sweep = (t: PtTable, base: number): void => {
      const d = t.depth;
      if (d === this.levels.length - 1) return;
      const l = this.levels[d]!;
      const size = 2 ** l.shift;
      const first = Math.max(0, Math.floor((start - base) / size));
      const last = Math.min(2 ** l.indexBits - 1, Math.floor((end - 1 - base) / size));
      for (let i = first; i <= last; i++) {
        const c = t.child[i];
        if (!c) continue;
        sweep(c, base + i * size);
        const cStart = base + i * size;
        if (c.used === 0 && cStart >= start && cStart + size <= end) {
          t.child[i] = undefined;
          this.clear(t, i);
          this.freeTablePage(c.phys);
        }
      }
    };
    sweep(this.root, 0);
  }

  /** Every table page, depth first (for teardown and reports). */
  *tables(t: PtTable = this.root): Generator<PtTable> {
    yield t;
    for (const c of t.child) if (c) yield* this.tables(c);
  }

  // ref: mm/memory.c __pte_alloc → pte_alloc_one (GFP_PGTABLE_USER: one zeroed page)
  private allocTablePage(): number {
    const pfn = allocKernelPage(this.k);
    if (pfn < 0) return -1;
    this.pages++;
    return this.k.pfnPhys(pfn);
  }

  private freeTablePage(phys: number): void {
    freeKernelPage(this.k, this.k.physPfn(phys));
    this.pages--;
  }

  /** Give every table page back (exit_mmap → free_pgtables + pgd_free). */
  destroy(): void {
    for (const t of [...this.tables()]) freeKernelPage(this.k, this.k.physPfn(t.phys));
    this.pages = 0;
  }
}

/** GFP_KERNEL order-0 allocation: Normal first, then DMA32, then DMA, lowest node first. */
// ref: mm/page_alloc.c __alloc_pages (zonelist order for GFP_KERNEL)
export function allocKernelPage(k: Kernel): number {
  for (const node of k.sortedNodes()) {
    for (const name of ["Normal", "DMA32", "DMA"] as const) {
      const z = node.zones.find((x) => x.name === name);
      if (!z || z.managedPages === 0) continue;
      const pfn = z.buddy.allocPages(0);
      if (pfn >= 0) {
        pageWrite(k, pfn, "refcount", 1, "alloc_pages");
        return pfn;
      }
    }
  }
  return -1;
}

export function freeKernelPage(k: Kernel, pfn: number): void {
  for (const node of k.sortedNodes()) {
    for (const z of node.zones) {
      if (z.name === "Device" || pfn < z.zoneStartPfn || pfn >= z.zoneStartPfn + z.spannedPages) continue;
      pageWrite(k, pfn, "refcount", 0, "free_pages");
      z.buddy.freeOnePage(pfn, 0);
      return;
    }
  }
}
