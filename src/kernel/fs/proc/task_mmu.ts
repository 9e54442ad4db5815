/**
 * /proc/PID/smaps' accounting of a huge PMD (fs/proc/task_mmu.c smaps_pte_range → smaps_pmd_entry →
 * follow_trans_huge_pmd, smaps_account): the audit's "smaps_pmd_entry(): unsafe".
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
import { flagBit, PG_dirty, PG_head, PG_referenced } from "../../mm/memmap.ts";
import { entryDevmap, entryNone, entryPfn, entryPresent } from "../../mm/memory.ts";
import { type Task, vmaLookup } from "../../mm/mm_types.ts";
import { pageField, warn } from "../../mm/page_access.ts";
import { compoundHead, isZoneDevicePage, pageAnon } from "../../mm/swap.ts";
import { type KernelPath, step } from "../../path.ts";

/** struct mem_size_stats, the fields a huge PMD adds to (bytes). */
export interface MemSizeStats {
  resident: number;
  anonymousThp: number;
  shmemThp: number;
  fileThp: number;
  referenced: number;
  privateClean: number;
  privateDirty: number;
  sharedClean: number;
  sharedDirty: number;
}

/** What smaps_pmd_entry saw at one PMD. */
export interface SmapsPmd {
  pfn: number;
  zoneDevice: boolean;
  mss: MemSizeStats;
}

/** Why nothing was accounted: no VMA, no huge PMD (a PTE table: smaps_pte_entry's vm_normal_page skips devmap PTEs). */
export type SmapsMiss = "no-vma" | "no-huge-pmd";

function emptyStats(): MemSizeStats {
  return { resident: 0, anonymousThp: 0, shmemThp: 0, fileThp: 0, referenced: 0, privateClean: 0, privateDirty: 0, sharedClean: 0, sharedDirty: 0 };
}

/**
 * smaps_account(mss, page, compound = true, young, dirty, locked, migration = false): Rss, referenced, and
 * private/shared by page_count(page) == 1 or, failing that, each subpage's mapcount.
 */
// ref: fs/proc/task_mmu.c smaps_account, smaps_page_accumulate
function smapsAccount(k: Kernel, mss: MemSizeStats, pfn: number, young: boolean, dirty: boolean): void {
  const at = "smaps_account";
  const order = pageField(k, pfn, "order", `${at}: compound_nr(page)`);
  const nr = 2 ** order;
  const size = nr * k.geo.pageSize;
  const flags = pageField(k, pfn, "flags", `${at}: PageAnon; page_is_young; PageReferenced`);
  // PageAnon(page) picks the Anonymous/LazyFree counters (a device page mapped by a devmap PMD is never anon).
  pageField(k, pfn, "mapping", `${at}: PageAnon(page)`);
  mss.resident += size;
  if (young || flags & flagBit(PG_referenced)) mss.referenced += size;
  if (pageField(k, pfn, "refcount", `${at}: page_count(page)`) === 1) {
    if (dirty || flags & flagBit(PG_dirty)) mss.privateDirty += size;
    else mss.privateClean += size;
    return;
  }
  for (let i = 0; i < nr; i++) {
    const mapcount = pageField(k, pfn + i, "mapcount", `${at}: page_mapcount(page)`);
    const d = dirty || (flags & flagBit(PG_dirty)) !== 0;
    if (mapcount >= 2) {
      if (d) mss.sharedDirty += k.geo.pageSize;
      else mss.sharedClean += k.geo.pageSize;
    } else if (d) mss.privateDirty += k.geo.pageSize;
    else mss.privateClean += k.geo.pageSize;
  }
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
    const pfn = entryPfn(pt, slot.table, slot.idx);
    const lo = slot.table.lo[slot.idx]!;
    const hi = slot.table.hi[slot.idx]!;
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
        return { pfn: head, zoneDevice: device, mss: emptyStats() };
      }
    }
    const mss = emptyStats();
    const mapping = pageField(k, head, "mapping", "smaps_pmd_entry: PageAnon(page)");
    const swapBacked = false; // PageSwapBacked: shmem/anon THPs only, never a device page
    const zoneDevice = isZoneDevicePage(k, head, "smaps_pmd_entry");
    if (pageAnon(mapping)) mss.anonymousThp += pmdSize;
    else if (swapBacked) mss.shmemThp += pmdSize;
    else if (zoneDevice) {
      // pass
    } else if (k.variant.deviceFreeAtRefcountOne) warn(k, "smaps_pmd_entry", `VM_BUG_ON_PAGE(1, page): pfn 0x${head.toString(16)}`);
    else mss.fileThp += pmdSize;
    smapsAccount(k, mss, head, young, dirty);
    // spin_unlock(ptl); mmap_read_unlock
    return { pfn: head, zoneDevice, mss };
  } finally {
    mm.mmapLock.readers--;
  }
}

