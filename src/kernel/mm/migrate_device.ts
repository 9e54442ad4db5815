/**
 * Migrating anonymous memory to and from device-private memory (mm/migrate_device.c in 6.1; mm/migrate.c in
 * 5.4): migrate_vma_setup / migrate_vma_pages / migrate_vma_finalize as a driver (test_hmm's dmirror, nouveau)
 * calls them, the CPU fault on a device-private entry (mm/memory.c do_swap_page → ->migrate_to_ram) and the zap
 * of one (mm/memory.c zap_pte_range), with is_device_private_page() — the audit's HMM functions.
 *
 * How HMM keeps struct pages valid without get_dev_pagemap() (the audit's open question), as the model has it:
 * a device-private page is only reachable through a device-private entry in a page table, read under the PTE
 * lock, or through a reference the migration code took (migrate_vma_collect's get_page, the driver's allocation).
 * An entry holds a reference, and for device-private pages a reference holds the pgmap in both eras — 6.1:
 * zone_device_page_init() takes a pgmap reference that free_zone_device_page() gives back as its last step; 5.4:
 * memunmap_pages() drops each page's base reference with put_page(), so a referenced page keeps its pgmap
 * reference until its last put. memunmap_pages() therefore waits (or hangs) until the driver has evicted
 * everything; what is left are the places that use a page after dropping the reference that kept it:
 * 5.4's free at refcount 1 (__put_devmap_managed_page: uncharge, ->page_free after the count says "free") and
 * 5.4's do_swap_page(), which read the entry without the lock and called page->pgmap->ops->migrate_to_ram with no
 * reference (fixed in 6.1 by 16ce101db85d, "mm/memory.c: fix race when faulting a device private page").
 *
 * Simplified (see mm/rmap.ts for the anonymous page tables): one page per migration; the collection takes the
 * slow path (as when trylock_page() fails: migrate_vma_prepare locks the page and migrate_vma_unmap →
 * try_to_unmap → try_to_unmap_one installs the migration entry); the driver's copy is one step; the driver's free
 * list is "the first page of its pgmap whose refcount says free"; mmu notifiers and the device's own page table
 * are not modelled; a VMA is not needed (anonymous entries live in rmap.ts).
 */
import { EBUSY, EFAULT, ENOMEM, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step } from "../path.ts";
import { type DevPagemap, MemoryType } from "./dev_pagemap.ts";
import { memCgroupCharge } from "./memcontrol.ts";
import { flagBit, PG_locked } from "./memmap.ts";
import { zoneDevicePageInit } from "./memremap.ts";
import { MIGRATEPAGE_SUCCESS, migratePage, moveToNewPage, removeMigrationPte } from "./migrate.ts";
import type { Task } from "./mm_types.ts";
import { pageField, pageWrite, pgmapUse } from "./page_access.ts";
import { allocKernelPage } from "./pgtable.ts";
import { anonPte, pageAddAnonRmap, pageRemoveRmap, pteOffsetMapLock, pteUnmapUnlock, setAnonPte, tryToUnmapOne } from "./rmap.ts";
import { isZoneDevicePage, type PutOutcome, pagePgmap, putPage } from "./swap.ts";

/**
 * is_device_private_page(page): CONFIG_DEVICE_PRIVATE && is_zone_device_page(page) && page->pgmap->type ==
 * MEMORY_DEVICE_PRIVATE. Between the zone test and the pgmap dereference only the caller's reference (or PTE
 * lock) keeps the page.
 */
// ref: include/linux/memremap.h is_device_private_page
export function* isDevicePrivatePage(k: Kernel, pfn: number, at = "is_device_private_page"): KernelPath<boolean> {
  if (!k.config.enabled("DEVICE_PRIVATE")) return false;
  if (!isZoneDevicePage(k, pfn, at)) return false;
  yield step(`${at}: is_zone_device_page(page)`);
  return pagePgmap(k, pfn, `${at}: page->pgmap->type`)?.type === MemoryType.PRIVATE;
}

function lockPage(k: Kernel, pfn: number, at: string): void {
  pageWrite(k, pfn, "flags", pageField(k, pfn, "flags", at) | flagBit(PG_locked), `${at}: lock_page`);
}

function unlockPage(k: Kernel, pfn: number, at: string): void {
  pageWrite(k, pfn, "flags", pageField(k, pfn, "flags", at) & ~flagBit(PG_locked), `${at}: unlock_page`);
}

function getPage(k: Kernel, pfn: number, at: string): void {
  pageWrite(k, pfn, "refcount", pageField(k, pfn, "refcount", `${at}: get_page`) + 1, `${at}: get_page`);
}

/** The memcg a process's anonymous memory is charged to (one per process, named after it). */
export function memcgOf(task: Task): string {
  return `/${task.comm}`;
}

/**
 * do_anonymous_page: a process's first touch of an anonymous address gets a zeroed RAM page, charged to its
 * memcg, mapped writable. The setup the HMM paths start from.
 */
// ref: mm/memory.c do_anonymous_page
export function* doAnonymousPage(k: Kernel, task: Task, addr: number): KernelPath<number | Errno> {
  const mm = task.mm;
  yield* pteOffsetMapLock(k, mm, addr, "do_anonymous_page");
  try {
    if (anonPte(k, mm, addr)) return -EBUSY;
    const pfn = allocKernelPage(k);
    if (pfn < 0) return -ENOMEM;
    memCgroupCharge(k, pfn, memcgOf(task), "do_anonymous_page");
    pageAddAnonRmap(k, pfn, mm, addr, "do_anonymous_page: page_add_new_anon_rmap");
    setAnonPte(k, mm, addr, { kind: "present", pfn, write: true });
    return pfn;
  } finally {
    pteUnmapUnlock(k, mm, addr);
  }
}

/**
 * The driver hands out a free page of its device-private memory, locked and referenced. 6.1:
 * zone_device_page_init (refcount 1 and a pgmap reference). 5.4: get_page + lock_page on a page idle at 1 — no
 * pgmap reference of its own (the page's base reference is one).
 */
// ref: lib/test_hmm.c dmirror_devmem_alloc_page (v6.1: zone_device_page_init); drivers/gpu/drm/nouveau/nouveau_dmem.c nouveau_dmem_page_alloc_locked (v5.4: get_page, lock_page)
export function* devicePrivateAllocPage(k: Kernel, pgmap: DevPagemap): KernelPath<number | null> {
  pgmapUse(k, pgmap, "dmirror_devmem_alloc_page");
  const idle = k.variant.deviceFreeAtRefcountOne ? 1 : 0;
  let pfn = -1;
  for (const r of pgmap.ranges.slice(0, pgmap.nrRange)) {
    for (let p = k.physPfn(r.start); p <= k.physPfn(r.end) && pfn < 0; p++) {
      if (k.memmap.field(p, "refcount") === idle && !(k.memmap.field(p, "flags") & flagBit(PG_locked))) pfn = p;
    }
    if (pfn >= 0) break;
  }
  if (pfn < 0) return null;
  if (k.variant.deviceFreeAtRefcountOne) {
    getPage(k, pfn, "nouveau_dmem_page_alloc_locked");
    lockPage(k, pfn, "nouveau_dmem_page_alloc_locked");
  } else {
    yield* zoneDevicePageInit(k, pfn);
  }
  return pfn;
}

/** struct migrate_vma for one page. */
interface MigrateVma {
  task: Task;
  addr: number;
  /** src[0]: the page collected (null: nothing to migrate), MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE. */
  src: number | null;
  migrate: boolean;
  /** dst[0]: the page the driver allocated. */
  dst: number | null;
  /** 6.1's args->fault_page: the device page do_swap_page holds a reference on. */
  faultPage: number | null;
}

/**
 * migrate_vma_setup for one address: migrate_vma_collect (under the PTE lock, a reference on the page the entry
 * maps: a RAM page when selecting system memory, a device-private page of this driver when selecting device
 * memory), migrate_vma_prepare (lock_page) and migrate_vma_unmap (try_to_unmap → try_to_unmap_one).
 */
// ref: mm/migrate_device.c migrate_vma_setup, migrate_vma_collect_pmd, migrate_device_unmap (v6.1); mm/migrate.c migrate_vma_collect_pmd, migrate_vma_prepare, migrate_vma_unmap (v5.4)
function* migrateVmaSetup(k: Kernel, m: MigrateVma, select: "system" | "device-private", owner: string | null): KernelPath<void> {
  const mm = m.task.mm;
  mm.mmapLock.readers++;
  k.sanitizer.read(`mmap_lock:${mm.id}`);
  try {
    yield* pteOffsetMapLock(k, mm, m.addr, "migrate_vma_collect_pmd");
    const pte = anonPte(k, mm, m.addr);
    if (pte?.kind === "present" && select === "system") {
      m.src = pte.pfn;
    } else if (pte?.kind === "device-private" && select === "device-private") {
      // 6.1 also checks page->pgmap->owner != migrate->pgmap_owner (under the PTE lock, with the entry's reference).
      const pgmap = k.variant.deviceFreeAtRefcountOne ? null : pagePgmap(k, pte.pfn, "migrate_vma_collect_pmd: page->pgmap->owner");
      if (k.variant.deviceFreeAtRefcountOne || pgmap?.owner === owner) m.src = pte.pfn;
    }
    if (m.src !== null) getPage(k, m.src, "migrate_vma_collect_pmd");
    pteUnmapUnlock(k, mm, m.addr);
    if (m.src === null) return;
    lockPage(k, m.src, "migrate_vma_prepare");
    m.migrate = true;
    if (!(yield* tryToUnmapOne(k, m.src))) m.migrate = false;
  } finally {
    mm.mmapLock.readers--;
  }
}

/**
 * migrate_vma_pages: move the page's state to the new page. A ZONE_DEVICE new page must be device-private (6.1:
 * or coherent) and the page anonymous; then migrate_page (6.1: migrate_folio_extra with the fault's extra
 * reference).
 */
// ref: mm/migrate_device.c migrate_vma_pages, __migrate_device_pages (v6.1); mm/migrate.c migrate_vma_pages (v5.4)
export function* migrateVmaPages(k: Kernel, m: MigrateVma): KernelPath<void> {
  const fn = "migrate_vma_pages";
  if (m.dst === null || m.src === null || !m.migrate) {
    m.migrate = false;
    return;
  }
  const page = m.src;
  const newpage = m.dst;
  const mapping = pageField(k, page, "mapping", `${fn}: page_mapping(page)`);
  const fileBacked = mapping !== 0 && mapping < 2 ** 31;
  if (isZoneDevicePage(k, newpage, fn)) {
    yield step(`${fn}: is_zone_device_page(newpage)`);
    const type = pagePgmap(k, newpage, `${fn}: is_device_private_page(newpage)`)?.type;
    const ok = type === MemoryType.PRIVATE || (!k.variant.deviceFreeAtRefcountOne && type === MemoryType.COHERENT);
    // Only anonymous memory migrates to device memory; other ZONE_DEVICE types are not supported.
    if (!ok || fileBacked) {
      m.migrate = false;
      return;
    }
  }
  const extra = !k.variant.deviceFreeAtRefcountOne && m.faultPage === page ? 1 : 0;
  if (migratePage(k, newpage, page, extra, fn) !== MIGRATEPAGE_SUCCESS) m.migrate = false;
}

/**
 * migrate_vma_finalize: remove_migration_ptes(page, newpage) puts the new page (or, if migration failed, the old
 * one) back in the entry; then each page is unlocked and its reference dropped.
 */
// ref: mm/migrate_device.c migrate_vma_finalize, migrate_device_finalize (v6.1); mm/migrate.c migrate_vma_finalize (v5.4)
function* migrateVmaFinalize(k: Kernel, m: MigrateVma, puts: PutOutcome[]): KernelPath<void> {
  const page = m.src;
  let newpage = m.dst;
  if (page === null) {
    if (newpage !== null) {
      unlockPage(k, newpage, "migrate_vma_finalize");
      puts.push(yield* putPage(k, newpage));
    }
    return;
  }
  if (!m.migrate || newpage === null) {
    if (newpage !== null) {
      unlockPage(k, newpage, "migrate_vma_finalize");
      puts.push(yield* putPage(k, newpage));
    }
    newpage = page;
  }
  yield* removeMigrationPte(k, newpage, page);
  unlockPage(k, page, "migrate_vma_finalize");
  puts.push(yield* putPage(k, page));
  if (newpage !== page) {
    unlockPage(k, newpage, "migrate_vma_finalize");
    puts.push(yield* putPage(k, newpage));
  }
}

/** What a migration did. */
export interface MigrateResult {
  rc: Errno;
  /** The page now mapped at the address (the new one if the migration went through). */
  pfn: number | null;
  migrated: boolean;
  puts: PutOutcome[];
}

/**
 * A driver migrates the anonymous page at addr into its device-private memory (dmirror's migrate ioctl,
 * dmirror_migrate_to_device): setup selecting system memory, allocate and copy, migrate_vma_pages, finalize.
 */
// ref: lib/test_hmm.c dmirror_migrate_to_device, dmirror_migrate_alloc_and_copy
export function* migrateToDevice(k: Kernel, task: Task, addr: number, pgmap: DevPagemap): KernelPath<MigrateResult> {
  const m: MigrateVma = { task, addr, src: null, migrate: false, dst: null, faultPage: null };
  const puts: PutOutcome[] = [];
  yield* migrateVmaSetup(k, m, "system", pgmap.owner);
  if (m.src !== null && m.migrate) {
    m.dst = yield* devicePrivateAllocPage(k, pgmap);
    // The device copies the data (dmirror: memcpy into its bounce page) before migrate_vma_pages.
  }
  yield* migrateVmaPages(k, m);
  yield* migrateVmaFinalize(k, m, puts);
  if (m.src === null) return { rc: -EFAULT, pfn: null, migrated: false, puts };
  return { rc: m.migrate ? 0 : -EBUSY, pfn: m.migrate ? m.dst : m.src, migrated: m.migrate, puts };
}

/**
 * The driver's ->migrate_to_ram for the device page at addr (dmirror_devmem_fault): setup selecting its
 * device-private memory, allocate a RAM page and copy, migrate_vma_pages, finalize — after which the device page's
 * last reference goes and it is freed.
 */
// ref: lib/test_hmm.c dmirror_devmem_fault, dmirror_devmem_fault_alloc_and_copy
function* migrateToRam(k: Kernel, task: Task, addr: number, pgmap: DevPagemap, faultPage: number | null): KernelPath<MigrateResult> {
  const m: MigrateVma = { task, addr, src: null, migrate: false, dst: null, faultPage };
  const puts: PutOutcome[] = [];
  yield* migrateVmaSetup(k, m, "device-private", pgmap.owner);
  if (m.src !== null && m.migrate) {
    const pfn = allocKernelPage(k);
    if (pfn >= 0) {
      lockPage(k, pfn, "dmirror_devmem_fault_alloc_and_copy: alloc_page_vma");
      m.dst = pfn;
    }
  }
  yield* migrateVmaPages(k, m);
  yield* migrateVmaFinalize(k, m, puts);
  return { rc: m.src === null ? 0 : m.migrate ? 0 : -EBUSY, pfn: m.migrate ? m.dst : m.src, migrated: m.migrate, puts };
}

/**
 * A CPU access to an address whose entry is device-private: do_swap_page() → page->pgmap->ops->migrate_to_ram.
 * 5.4 reads the entry without the PTE lock and calls through page->pgmap with no reference; 6.1 takes the lock,
 * checks the entry is unchanged and get_page()s the page first, and puts it after.
 */
// ref: mm/memory.c handle_pte_fault, do_swap_page (device-private branch)
export function* doSwapPageDevicePrivate(k: Kernel, task: Task, addr: number): KernelPath<MigrateResult> {
  const mm = task.mm;
  const none: MigrateResult = { rc: 0, pfn: null, migrated: false, puts: [] };
  // handle_pte_fault: vmf->orig_pte = *vmf->pte, without the lock.
  const orig = anonPte(k, mm, addr);
  yield step("handle_pte_fault: vmf->orig_pte = *vmf->pte");
  if (orig?.kind !== "device-private") return none;
  const page = orig.pfn;
  const takesRef = k.variant.devicePrivateFaultTakesRef;
  if (takesRef) {
    yield* pteOffsetMapLock(k, mm, addr, "do_swap_page");
    const now = anonPte(k, mm, addr);
    if (now?.kind !== orig.kind || now.pfn !== orig.pfn) {
      pteUnmapUnlock(k, mm, addr);
      return none;
    }
    // "Get a page reference while we know the page can't be freed."
    getPage(k, page, "do_swap_page");
    pteUnmapUnlock(k, mm, addr);
  }
  const pgmap = pagePgmap(k, page, "do_swap_page: vmf->page->pgmap->ops->migrate_to_ram");
  if (!pgmap) return none;
  const r = yield* migrateToRam(k, task, addr, pgmap, takesRef ? page : null);
  if (takesRef) r.puts.push(yield* putPage(k, page));
  return r;
}

/**
 * munmap of an anonymous address whose entry is device-private: zap_pte_range clears it, drops its rmap and its
 * reference (under the PTE lock). For a page nothing else holds, that put frees it — 5.4: at refcount 1 in
 * __put_devmap_managed_page, 6.1: at 0 in free_zone_device_page — and the free path uncharges it (uncharge_page).
 */
// ref: mm/memory.c zap_pte_range (device-private entries)
export function* zapDevicePrivate(k: Kernel, task: Task, addr: number): KernelPath<PutOutcome | null> {
  const mm = task.mm;
  yield* pteOffsetMapLock(k, mm, addr, "zap_pte_range");
  let out: PutOutcome | null = null;
  const pte = anonPte(k, mm, addr);
  if (pte?.kind === "device-private") {
    setAnonPte(k, mm, addr, null);
    // rss[mm_counter(page)]--; page_remove_rmap(page); put_page(page)
    pageRemoveRmap(k, pte.pfn, "zap_pte_range");
    out = yield* putPage(k, pte.pfn);
  }
  pteUnmapUnlock(k, mm, addr);
  return out;
}

/** The device pfn an address maps through a device-private entry (for reports; nothing recorded). */
export function devicePrivatePfnAt(k: Kernel, task: Task, addr: number): number | null {
  const pte = anonPte(k, task.mm, addr);
  return pte?.kind === "device-private" ? pte.pfn : null;
}

/**
 * __unmap_and_move() for the anonymous page at addr with a get_new_page callback that returns a page of this
 * device-private memory: isolate (reference and lock), try_to_unmap, move_to_new_page, remove_migration_ptes,
 * unlock and put both. No in-tree caller of 5.4 or 6.1 passes ZONE_DEVICE new pages to migrate_pages(); this is
 * the context in which move_to_new_page()'s is_zone_device_page(newpage) would run.
 */
// ref: mm/migrate.c __unmap_and_move, unmap_and_move (v5.4); migrate_folio_unmap, migrate_folio_move (later)
export function* unmapAndMoveToDevice(k: Kernel, task: Task, addr: number, pgmap: DevPagemap): KernelPath<MigrateResult> {
  const puts: PutOutcome[] = [];
  const mm = task.mm;
  yield* pteOffsetMapLock(k, mm, addr, "isolate_lru_page");
  const pte = anonPte(k, mm, addr);
  const page = pte?.kind === "present" ? pte.pfn : null;
  if (page !== null) getPage(k, page, "isolate_lru_page");
  pteUnmapUnlock(k, mm, addr);
  if (page === null) return { rc: -EFAULT, pfn: null, migrated: false, puts };
  const newpage = yield* devicePrivateAllocPage(k, pgmap);
  if (newpage === null) {
    puts.push(yield* putPage(k, page));
    return { rc: -ENOMEM, pfn: page, migrated: false, puts };
  }
  lockPage(k, page, "__unmap_and_move");
  let rc: Errno = -EBUSY;
  if (yield* tryToUnmapOne(k, page)) rc = yield* moveToNewPage(k, newpage, page);
  const mapped = rc === MIGRATEPAGE_SUCCESS ? newpage : page;
  yield* removeMigrationPte(k, mapped, page);
  unlockPage(k, page, "__unmap_and_move");
  puts.push(yield* putPage(k, page));
  unlockPage(k, newpage, "__unmap_and_move");
  puts.push(yield* putPage(k, newpage));
  return { rc, pfn: mapped, migrated: rc === MIGRATEPAGE_SUCCESS, puts };
}
