/**
 * /proc/PID/smaps' accounting (fs/proc/task_mmu.c smap_gather_stats → smaps_pte_range → smaps_pmd_entry /
 * smaps_pte_entry → smaps_account): smapGatherStats, the whole-VMA walk behind the `smaps` report, and
 * smapsPmdEntry, one huge PMD as a step-wise path — the audit's "smaps_pmd_entry(): unsafe".
 *
 * What 6.1 counts for device memory: a devmap PMD is followed (follow_trans_huge_pmd returns its page), so a
 * device-dax 2 MiB mapping is 2048 kB of Rss/Pss (a compound page) and an fsdax PMD 4 kB (pmem's pages are not
 * compound: compound_nr() is 1); a devmap or special PTE is skipped (vm_normal_page is NULL); a devmap PUD is
 * split — cleared — by the page walk itself and counts nothing. Device pages are not rmapped (mapcount 0) and
 * idle at refcount 1, so what is counted is Private_*, dirty by the entry's dirty bit.
 *
 * smaps reaches a device page through a devmap PMD, under the PMD lock (pmd_trans_huge_lock), and reads its
 * struct page — PageAnon, PageSwapBacked, is_zone_device_page, page_count, PageDirty — without a page or a
 * pgmap reference. The only thing that keeps the memmap there is the lock: device-dax's unbind zaps every
 * mapping (kill_dev_dax → unmap_mapping_range → zap_huge_pmd, under the same PMD lock) before its devm action
 * runs memunmap_pages(). pmem's unbind zaps nothing: an fsdax PMD outlives the memmap it points into.
 *
 * The PMD lock is a spinlock and the zap takes it too. The model has no lock object shared with the zap in
 * mm/huge_memory.ts, so the critical section is one step (no yield inside): a zap, and everything ordered after
 * it, runs wholly before or wholly after it. A CPU that does not take this lock (memunmap_pages on pmem unbind)
 * could run inside the section on a real machine; the model does not show that interleaving, but the
 * after-unbind run reads the same torn-down page.
 *
 * v5.4 differs in the page walk only: follow_trans_huge_pmd() took no reference (`if (flags & FOLL_GET)
 * get_page(page)`, FOLL_DUMP has none) where 6.1's try_grab_page() reads the folio's refcount, and a PMD that is
 * neither anon, shmem nor ZONE_DEVICE was VM_BUG_ON_PAGE where 6.1 counts it as FilePmdMapped. The
 * subsection-map variant changes nothing here: smaps starts from a page-table entry, not from a pfn it must
 * classify, and reads the struct page either way.
 */
import { testBit } from "../../../arch/pte.ts";
import type { Kernel } from "../../kernel.ts";
import { splitHugeEntry } from "../../mm/huge_memory.ts";
import { flagBit, PG_dirty, PG_head, PG_referenced } from "../../mm/memmap.ts";
import { entryDevmap, entryNone, entryPfn, entryPresent, entrySpecial } from "../../mm/memory.ts";
import { type Task, type Vma, vmaLookup } from "../../mm/mm_types.ts";
import { pageField, warn } from "../../mm/page_access.ts";
import type { PageTable, PtTable } from "../../mm/pgtable.ts";
import { compoundHead, isZoneDevicePage, pageAnon } from "../../mm/swap.ts";
import { type KernelPath, runToEnd, step } from "../../path.ts";

/** PSS_SHIFT: the pss fields are fixed-point with 12 fractional bits (a page mapped N times adds PAGE_SIZE / N). */
export const PSS_SHIFT = 12n;

/**
 * struct mem_size_stats, in bytes; the pss fields in bytes << PSS_SHIFT (u64 in the kernel: bigint here).
 * Swap, SwapPss and the hugetlb counters stay 0: the model has no swap entries in its page tables and no
 * hugetlbfs VMAs.
 */
export interface MemSizeStats {
  resident: number;
  sharedClean: number;
  sharedDirty: number;
  privateClean: number;
  privateDirty: number;
  referenced: number;
  anonymous: number;
  lazyfree: number;
  anonymousThp: number;
  shmemThp: number;
  fileThp: number;
  swap: number;
  sharedHugetlb: number;
  privateHugetlb: number;
  pss: bigint;
  pssAnon: bigint;
  pssFile: bigint;
  pssShmem: bigint;
  pssDirty: bigint;
  pssLocked: bigint;
  swapPss: bigint;
}

/** What smaps_pmd_entry saw at one PMD. */
export interface SmapsPmd {
  pfn: number;
  zoneDevice: boolean;
  mss: MemSizeStats;
}

/** Why nothing was accounted: no VMA, no huge PMD (a PTE table: smaps_pte_entry's vm_normal_page skips devmap PTEs). */
export type SmapsMiss = "no-vma" | "no-huge-pmd";

export function emptyStats(): MemSizeStats {
  return {
    resident: 0,
    sharedClean: 0,
    sharedDirty: 0,
    privateClean: 0,
    privateDirty: 0,
    referenced: 0,
    anonymous: 0,
    lazyfree: 0,
    anonymousThp: 0,
    shmemThp: 0,
    fileThp: 0,
    swap: 0,
    sharedHugetlb: 0,
    privateHugetlb: 0,
    pss: 0n,
    pssAnon: 0n,
    pssFile: 0n,
    pssShmem: 0n,
    pssDirty: 0n,
    pssLocked: 0n,
    swapPss: 0n,
  };
}

/** The folio-level fields smaps reads (PageAnon, PageSwapBacked, PageDirty and PageReferenced are PF_HEAD/folio). */
interface FolioFlags {
  anon: boolean;
  /** PageSwapBacked: shmem/anon folios only, never a page the model maps (no such flag in the model). */
  swapBacked: boolean;
  dirty: boolean;
  referenced: boolean;
}

// ref: fs/proc/task_mmu.c smaps_page_accumulate
function smapsPageAccumulate(mss: MemSizeStats, f: FolioFlags, size: number, pss: bigint, dirty: boolean, locked: boolean, priv: boolean): void {
  mss.pss += pss;
  if (f.anon) mss.pssAnon += pss;
  else if (f.swapBacked) mss.pssShmem += pss;
  else mss.pssFile += pss;
  if (locked) mss.pssLocked += pss;
  if (dirty || f.dirty) {
    mss.pssDirty += pss;
    if (priv) mss.privateDirty += size;
    else mss.sharedDirty += size;
  } else if (priv) mss.privateClean += size;
  else mss.sharedClean += size;
}

/**
 * smaps_account(mss, page, compound, young, dirty, locked, migration): `compound` (a PMD) counts
 * compound_nr(page) pages — 1 unless the page is a compound head: a device-dax 2 MiB page (vmemmap_shift 9) is 512,
 * an fsdax page under a PMD (pmem's pgmap has no vmemmap_shift) is 1, so only 4 KiB of that PMD reaches Rss. Then
 * private/shared by page_count(page) == 1 or, failing that, each subpage's page_mapcount() (0 for device pages:
 * the DAX fault paths insert pfns and take no rmap). `head` is page_folio(page), which the caller has read; the
 * folio's fields are read once: nothing else runs while the caller holds the page-table lock in the model.
 */
// ref: fs/proc/task_mmu.c smaps_account; include/linux/mm.h compound_nr, page_mapcount
function smapsAccount(k: Kernel, mss: MemSizeStats, page: number, head: number, compound: boolean, young: boolean, dirty: boolean, locked: boolean): void {
  const at = "smaps_account";
  const ps = k.geo.pageSize;
  const pageFlags = pageField(k, page, "flags", `${at}: PageHead(page)`);
  const nr = compound && pageFlags & flagBit(PG_head) ? 2 ** pageField(k, page, "order", `${at}: compound_nr(page)`) : 1;
  const size = nr * ps;
  const flags = head === page ? pageFlags : pageField(k, head, "flags", `${at}: PageDirty; PageReferenced`);
  const f: FolioFlags = {
    anon: pageAnon(pageField(k, head, "mapping", `${at}: PageAnon(page)`)),
    swapBacked: false,
    dirty: (flags & flagBit(PG_dirty)) !== 0,
    referenced: (flags & flagBit(PG_referenced)) !== 0,
  };
  if (f.anon) {
    mss.anonymous += size;
    if (!f.swapBacked && !dirty && !f.dirty) mss.lazyfree += size;
  }
  mss.resident += size;
  // page_is_young (the PAGE_IDLE_FLAG young bit) is not modelled: never set.
  if (young || f.referenced) mss.referenced += size;
  // page_count(page) == 1 (or a migration entry, which the model's page tables never hold): mapped exactly once.
  if (pageField(k, head, "refcount", `${at}: page_count(page)`) === 1) {
    smapsPageAccumulate(mss, f, size, BigInt(size) << PSS_SHIFT, dirty, locked, true);
    return;
  }
  for (let i = 0; i < nr; i++) {
    // page_mapcount: _mapcount + 1 (a compound page adds its compound mapcount only when anon or hugetlb, which
    // the model's page tables never map).
    const mapcount = pageField(k, page + i, "mapcount", `${at}: page_mapcount(page)`);
    let pss = BigInt(ps) << PSS_SHIFT;
    if (mapcount >= 2) pss /= BigInt(mapcount);
    smapsPageAccumulate(mss, f, ps, pss, dirty, locked, mapcount < 2);
  }
}

/**
 * smaps_pmd_entry() on a present huge PMD, under the PMD lock: follow_trans_huge_pmd(FOLL_DUMP) gives the page
 * (pmd_page plus the offset of `addr` in the PMD; not NULL for a devmap PMD, only the huge zero page — which the
 * model never maps — is refused), try_grab_page(FOLL_DUMP) takes no reference but refuses a folio whose refcount
 * is 0 (6.1), then the THP counters (none for a ZONE_DEVICE page) and smaps_account(compound = true). `accounted`
 * is false when follow_trans_huge_pmd refused the page (mss untouched).
 */
// ref: fs/proc/task_mmu.c smaps_pmd_entry; mm/huge_memory.c follow_trans_huge_pmd; mm/gup.c try_grab_page
export function smapsPmdLocked(k: Kernel, mss: MemSizeStats, pt: PageTable, t: PtTable, idx: number, addr: number, locked: boolean): { pfn: number; zoneDevice: boolean; accounted: boolean } {
  const pmdSize = 2 ** k.arch.pmdShift;
  const pfn = entryPfn(pt, t, idx);
  const lo = t.lo[idx]!;
  const hi = t.hi[idx]!;
  const young = testBit(lo, hi, pt.fmt.bits.accessed);
  const dirty = testBit(lo, hi, pt.fmt.bits.dirty);
  // follow_trans_huge_pmd: page = pmd_page(*pmd); VM_BUG_ON_PAGE(!PageHead(page) && !is_zone_device_page(page))
  const head = compoundHead(k, pfn, "follow_trans_huge_pmd: pmd_page");
  const headFlags = pageField(k, head, "flags", "follow_trans_huge_pmd: PageHead(page)");
  const device = isZoneDevicePage(k, head, "follow_trans_huge_pmd: VM_BUG_ON_PAGE");
  if (!(headFlags & flagBit(PG_head)) && !device) warn(k, "follow_trans_huge_pmd", `VM_BUG_ON_PAGE(!PageHead(page) && !is_zone_device_page(page)): pfn 0x${head.toString(16)}`);
  if (!k.variant.deviceFreeAtRefcountOne) {
    // 6.1: try_grab_page(page, FOLL_DUMP) — neither GET nor PIN, but it checks folio_ref_count(folio) > 0.
    const ref = pageField(k, head, "refcount", "try_grab_page: folio_ref_count");
    if (ref <= 0) {
      warn(k, "try_grab_page", `WARN_ON_ONCE(folio_ref_count(folio) <= 0): pfn 0x${head.toString(16)} refcount ${ref}`);
      return { pfn: head, zoneDevice: device, accounted: false };
    }
  }
  // page += (addr & ~HPAGE_PMD_MASK) >> PAGE_SHIFT: 0 from smaps, whose walk reaches a huge PMD at its start.
  const page = head + Math.floor((addr % pmdSize) / k.geo.pageSize);
  const mapping = pageField(k, head, "mapping", "smaps_pmd_entry: PageAnon(page)");
  const swapBacked = false; // PageSwapBacked: shmem/anon THPs only, never a device page
  const zoneDevice = isZoneDevicePage(k, head, "smaps_pmd_entry");
  if (pageAnon(mapping)) mss.anonymousThp += pmdSize;
  else if (swapBacked) mss.shmemThp += pmdSize;
  else if (zoneDevice) {
    // pass
  } else if (k.variant.deviceFreeAtRefcountOne) warn(k, "smaps_pmd_entry", `VM_BUG_ON_PAGE(1, page): pfn 0x${head.toString(16)}`);
  else mss.fileThp += pmdSize;
  smapsAccount(k, mss, page, head, true, young, dirty, locked);
  return { pfn: head, zoneDevice, accounted: true };
}

/**
 * smaps_pte_entry() on a present PTE: vm_normal_page() is NULL for a special PTE (every arch the model has
 * selects ARCH_HAS_PTE_SPECIAL; pte_mkdevmap sets _PAGE_SPECIAL too, and without pte_devmap insert_pfn makes the
 * PTE special), so a device pfn mapped by a PTE is never accounted. A normal PTE is smaps_account(compound =
 * false): PAGE_SIZE. Swap and migration PTEs are not in the model's page tables (mm/rmap.ts keeps anonymous ones
 * apart, with no VMA).
 */
// ref: fs/proc/task_mmu.c smaps_pte_entry; mm/memory.c vm_normal_page
function smapsPteEntry(k: Kernel, mss: MemSizeStats, pt: PageTable, t: PtTable, idx: number, locked: boolean): void {
  if (!entryPresent(pt, t, idx)) return;
  if (entrySpecial(pt, t, idx)) return; // vm_normal_page: NULL (VM_MIXEDMAP, zero pfn, pte_devmap, or print_bad_pte)
  const lo = t.lo[idx]!;
  const hi = t.hi[idx]!;
  const page = entryPfn(pt, t, idx);
  smapsAccount(k, mss, page, compoundHead(k, page, "smaps_account: page_folio"), false, testBit(lo, hi, pt.fmt.bits.accessed), testBit(lo, hi, pt.fmt.bits.dirty), locked);
}

/**
 * smap_gather_stats(vma, mss, 0) → walk_page_vma(vma, &smaps_walk_ops): what `cat /proc/PID/smaps` accounts for
 * one VMA, entry by entry in the model's page tables:
 * - a huge PUD (device-dax with 1 GiB alignment): walk_pud_range has no ->pud_entry for smaps and calls
 *   split_huge_pud() before descending — for a devmap PUD, __split_huge_pud_locked clears it
 *   (pudp_huge_clear_flush_notify). Reading smaps unmaps the PUD (the next access faults it back) and counts
 *   nothing for it. This is a side effect on the page tables, as in 6.1.
 * - a huge PMD: smaps_pte_range → pmd_trans_huge_lock (pmd_trans_huge || pmd_devmap) → smaps_pmd_entry.
 * - a PTE: smaps_pte_entry.
 * Called with the mmap lock held for reading (show_smap via m_start); the model runs it as one step.
 */
// ref: fs/proc/task_mmu.c smap_gather_stats, smaps_pte_range; mm/pagewalk.c walk_pud_range, walk_pmd_range; include/linux/huge_mm.h split_huge_pud
export function smapGatherStats(k: Kernel, vma: Vma): MemSizeStats {
  const mss = emptyStats();
  const pt = vma.mm.pgd;
  const locked = false; // VM_LOCKED: mlock is not modelled
  const leaves: Array<{ t: PtTable; idx: number; name: string; addr: number }> = [];
  pt.forEachLeaf((t, idx, level, addr) => {
    if (addr >= vma.start && addr < vma.end) leaves.push({ t, idx, name: level.name, addr });
  });
  for (const { t, idx, name, addr } of leaves) {
    if (name === "pte") smapsPteEntry(k, mss, pt, t, idx, locked);
    else if (name === "pmd") {
      if (entryPresent(pt, t, idx)) smapsPmdLocked(k, mss, pt, t, idx, addr, locked);
    } else if (name === "pud" && k.config.enabled("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD")) {
      // split_huge_pud: pud_trans_huge || pud_devmap (x86: a PSE PUD is one or the other) → __split_huge_pud;
      // then pud_none → the walk goes on to the next PUD.
      runToEnd(splitHugeEntry(k, vma, t, idx));
    }
  }
  return mss;
}

/**
 * smaps_pte_range() for the PMD that maps `addr` in `task`, when it is a huge (devmap) PMD: take the PMD lock,
 * follow_trans_huge_pmd(FOLL_DUMP), classify and account the page, unlock. Run under mmap_read_lock, as
 * show_smap() → smap_gather_stats() → walk_page_vma() does.
 */
// ref: fs/proc/task_mmu.c smap_gather_stats, smaps_pte_range, smaps_pmd_entry; mm/huge_memory.c follow_trans_huge_pmd; mm/gup.c try_grab_page
export function* smapsPmdEntry(k: Kernel, task: Task, addr: number): KernelPath<SmapsPmd | SmapsMiss> {
  const mm = task.mm;
  mm.mmapLock.readers++;
  k.sanitizer.read(`mmap_lock:${mm.id}`);
  yield step("smap_gather_stats: mmap_read_lock");
  try {
    const vma = vmaLookup(mm, addr);
    if (!vma) return "no-vma";
    const pt = mm.pgd;
    const pmdSize = 2 ** k.arch.pmdShift;
    const haddr = addr - (addr % pmdSize);
    k.sanitizer.read(`pte:${mm.id}:${haddr}`);
    const slot = pt.lookup(haddr);
    // pmd_trans_huge_lock: is_swap_pmd || pmd_trans_huge || pmd_devmap (device memory: the devmap PMDs).
    if (slot?.level.name !== "pmd" || entryNone(slot.table, slot.idx) || !entryDevmap(k, pt, slot.table, slot.idx)) return "no-huge-pmd";
    yield step("smaps_pte_range: pmd_trans_huge_lock");
    // ---- PMD lock held: one step (see the file comment) ----
    // The entry is re-read under the lock: the zap may have cleared it meanwhile (then it is not huge any more).
    if (entryNone(slot.table, slot.idx) || !entryPresent(pt, slot.table, slot.idx)) return "no-huge-pmd";
    const mss = emptyStats();
    const r = smapsPmdLocked(k, mss, pt, slot.table, slot.idx, haddr, false);
    // spin_unlock(ptl); mmap_read_unlock
    return { pfn: r.pfn, zoneDevice: r.zoneDevice, mss };
  } finally {
    mm.mmapLock.readers--;
  }
}

