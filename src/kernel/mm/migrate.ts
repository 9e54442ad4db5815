/**
 * Page migration (mm/migrate.c) — the parts seed 002's audit names: remove_migration_pte() (which re-creates a
 * device-private entry when the new page is device-private), move_to_new_page() (which skips
 * flush_dcache_page() for a ZONE_DEVICE new page), and migrate_page(), the copy of a page's mapping, flags and
 * memcg charge that migrate_vma_pages() uses.
 *
 * All three work on pages the caller holds locked and referenced: migrate_vma_setup() took a reference on every
 * source page it collected, and the driver allocated every destination page (6.1: zone_device_page_init, which
 * also takes a pgmap reference; 5.4: get_page on a page whose base reference its pgmap still counts). Their
 * is_zone_device_page() / is_device_private_page() tests read struct pages that cannot go away under them.
 *
 * 5.4 vs 6.1: remove_migration_pte tested `is_zone_device_page(new)` and then `is_device_private_page(new)` (6.1:
 * is_device_private_page only); move_to_new_page is move_to_new_folio in 6.1 (`folio_is_zone_device(dst)`);
 * migrate_page is migrate_folio / migrate_folio_extra (the CPU-fault path of 6.1 holds one extra reference).
 */
import { EAGAIN } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step } from "../path.ts";
import { MemoryType } from "./dev_pagemap.ts";
import { memCgroupMigrate } from "./memcontrol.ts";
import { flagBit, PG_dirty, PG_locked, PG_uptodate } from "./memmap.ts";
import { pageField, pageWrite, warn } from "./page_access.ts";
import { anonPte, pageAddAnonRmap, pteOffsetMapLock, pteUnmapUnlock, rmapWalkAnon, setAnonPte } from "./rmap.ts";
import { hex, isZoneDevicePage, pagePgmap } from "./swap.ts";

export const MIGRATEPAGE_SUCCESS = 0;

/**
 * migrate_page(mapping = NULL, newpage, page, MIGRATE_SYNC_NO_COPY): an anonymous page without a mapping moves if
 * nobody but the migration holds it (page_count == 1 + extra), then newpage takes its index, mapping, flags and
 * memcg charge.
 */
// ref: mm/migrate.c migrate_page, migrate_page_move_mapping, migrate_page_states (v5.4); migrate_folio_extra, folio_migrate_mapping, folio_migrate_flags (v6.1)
export function migratePage(k: Kernel, newPfn: number, oldPfn: number, extraCount: number, at: string): number {
  const fn = `${at}: migrate_page_move_mapping`;
  // expected_page_refs(): 1; 5.4 adds one for a device-private page ("ZONE_DEVICE pages have an extra refcount").
  let expected = 1 + extraCount;
  if (k.variant.deviceFreeAtRefcountOne && isZoneDevicePage(k, oldPfn, `${fn}: expected_page_refs: is_device_private_page(page)`)) {
    if (pagePgmap(k, oldPfn, `${fn}: expected_page_refs: is_device_private_page(page)`)?.type === MemoryType.PRIVATE) expected++;
  }
  if (pageField(k, oldPfn, "refcount", `${fn}: page_count(page)`) !== expected) return -EAGAIN;
  pageWrite(k, newPfn, "index", pageField(k, oldPfn, "index", fn), `${fn}: newpage->index = page->index`);
  pageWrite(k, newPfn, "mapping", pageField(k, oldPfn, "mapping", fn), `${fn}: newpage->mapping = page->mapping`);
  const keep = flagBit(PG_dirty) | flagBit(PG_uptodate);
  const oldFlags = pageField(k, oldPfn, "flags", `${at}: migrate_page_states`);
  const newFlags = pageField(k, newPfn, "flags", `${at}: migrate_page_states`);
  pageWrite(k, newPfn, "flags", newFlags | (oldFlags & keep), `${at}: migrate_page_states`);
  memCgroupMigrate(k, oldPfn, newPfn, `${at}: migrate_page_states`);
  return MIGRATEPAGE_SUCCESS;
}

/**
 * remove_migration_pte(new, vma, addr, old): under the PTE lock, replace the migration entry that points at `old`
 * by an entry for `new` — a present PTE, or, when `new` is device-private, a device-private swap entry — with a
 * reference and an rmap for it.
 */
// ref: mm/migrate.c remove_migration_pte
export function* removeMigrationPte(k: Kernel, newPfn: number, oldPfn: number): KernelPath<boolean> {
  const fn = "remove_migration_pte";
  const hit = rmapWalkAnon(k, newPfn, "remove_migration_ptes");
  if (!hit) return false;
  yield* pteOffsetMapLock(k, hit.mm, hit.addr, `${fn}: page_vma_mapped_walk`);
  const pte = anonPte(k, hit.mm, hit.addr);
  let done = false;
  if (pte?.kind === "migration" && pte.pfn === oldPfn) {
    // get_page(new); pte = mk_pte(new, vma->vm_page_prot); write if the migration entry was writable.
    pageWrite(k, newPfn, "refcount", pageField(k, newPfn, "refcount", `${fn}: get_page(new)`) + 1, `${fn}: get_page(new)`);
    let devicePrivate = false;
    if (k.variant.deviceFreeAtRefcountOne) {
      // 5.4: if (unlikely(is_zone_device_page(new))) { if (is_device_private_page(new)) ... }
      if (isZoneDevicePage(k, newPfn, fn)) devicePrivate = pagePgmap(k, newPfn, `${fn}: is_device_private_page(new)`)?.type === MemoryType.PRIVATE;
    } else if (isZoneDevicePage(k, newPfn, `${fn}: is_device_private_page(new)`)) {
      devicePrivate = pagePgmap(k, newPfn, `${fn}: is_device_private_page(new)`)?.type === MemoryType.PRIVATE;
    }
    setAnonPte(k, hit.mm, hit.addr, { kind: devicePrivate ? "device-private" : "present", pfn: newPfn, write: pte.write });
    pageAddAnonRmap(k, newPfn, hit.mm, hit.addr, fn);
    done = true;
  }
  pteUnmapUnlock(k, hit.mm, hit.addr);
  return done;
}

/**
 * move_to_new_page(newpage, page, mode) as __unmap_and_move() calls it for an LRU page: both pages locked,
 * migrate_page() for an anonymous page, then page->mapping cleared for a page cache page and
 * flush_dcache_page(newpage) unless newpage is ZONE_DEVICE. No in-tree caller of 5.4 or 6.1 hands it a
 * ZONE_DEVICE newpage (migrate_vma uses migrate_page directly); the test is on a page the caller allocated.
 */
// ref: mm/migrate.c move_to_new_page (v5.4), move_to_new_folio (v6.1)
export function* moveToNewPage(k: Kernel, newPfn: number, oldPfn: number): KernelPath<number> {
  const fn = k.variant.deviceFreeAtRefcountOne ? "move_to_new_page" : "move_to_new_folio";
  for (const p of [oldPfn, newPfn]) {
    if (!(pageField(k, p, "flags", `${fn}: VM_BUG_ON_PAGE(!PageLocked)`) & flagBit(PG_locked))) warn(k, fn, `VM_BUG_ON_PAGE(!PageLocked(page)): pfn ${hex(p)}`);
  }
  const rc = migratePage(k, newPfn, oldPfn, 0, fn);
  yield step(`${fn}: migrate_page`);
  if (rc !== MIGRATEPAGE_SUCCESS) return rc;
  // if (likely(!is_zone_device_page(newpage))) flush_dcache_page(newpage);
  isZoneDevicePage(k, newPfn, `${fn}: flush_dcache_page`);
  return rc;
}
