/**
 * Reverse mapping of anonymous pages (mm/rmap.c) — the part the audit's HMM functions use — and the anonymous
 * page-table entries they work on: try_to_unmap_one() with TTU_MIGRATION (6.1: try_to_migrate_one), which turns
 * the entry mapping a page into a migration entry; page_add_anon_rmap / page_remove_rmap; the rmap walk.
 *
 * Minimum state, stated: the model's page tables (mm/pgtable.ts) hold what device-dax and DAX files install.
 * Anonymous memory — a RAM page a process touched, the device-private swap entry that replaces it when a driver
 * migrates it into device memory, the migration entry in between — is kept here as one table per address space,
 * with a split PTE lock per page-table page (pte_offset_map_lock). Every path that touches these entries is in
 * this file, mm/migrate.ts or mm/migrate_device.ts, so the lock is complete: two holders never interleave.
 * Anonymous VMAs and anon_vma chains are not modelled: page->mapping carries PAGE_MAPPING_ANON and the mm's id,
 * page->index the address's page number (an anonymous VMA's vm_pgoff is its start >> PAGE_SHIFT), which is what
 * the rmap walk reads to find the one place a page is mapped.
 */
import type { Kernel } from "../kernel.ts";
import { sideTable } from "../lib/rewind.ts";
import { type KernelPath, step } from "../path.ts";
import { MemoryType } from "./dev_pagemap.ts";
import type { MmStruct } from "./mm_types.ts";
import { userland } from "./mmap.ts";
import { pageField, pageWrite } from "./page_access.ts";
import { isZoneDevicePage, PAGE_MAPPING_ANON, pageAnon, pagePgmap, putPage } from "./swap.ts";

/** An anonymous page-table entry: a present RAM page, or a swap entry of one of the two special kinds. */
export type AnonPte =
  | { kind: "present"; pfn: number; write: boolean }
  /** SWP_DEVICE_WRITE / SWP_DEVICE_READ: the page lives in device-private memory. */
  | { kind: "device-private"; pfn: number; write: boolean }
  /** SWP_MIGRATION_WRITE / SWP_MIGRATION_READ: the page at pfn is being migrated; faults wait. */
  | { kind: "migration"; pfn: number; write: boolean };

interface AnonSpace {
  ptes: Map<number, AnonPte>;
  /** Split PTE locks, by PMD-sized range: who holds each. */
  ptl: Map<number, string>;
}

const SPACES = sideTable<MmStruct, AnonSpace>();

function space(mm: MmStruct): AnonSpace {
  let s = SPACES.get(mm);
  if (!s) {
    s = { ptes: new Map(), ptl: new Map() };
    SPACES.set(mm, s);
  }
  return s;
}

/** The anonymous entry mapping addr (a page-table read: recorded on the footprint). */
export function anonPte(k: Kernel, mm: MmStruct, addr: number): AnonPte | null {
  k.sanitizer.read(`anonpte:${mm.id}:${addr}`);
  return space(mm).ptes.get(addr) ?? null;
}

/** set_pte_at / pte_clear on an anonymous entry. */
export function setAnonPte(k: Kernel, mm: MmStruct, addr: number, pte: AnonPte | null): void {
  k.sanitizer.write(`anonpte:${mm.id}:${addr}`);
  if (pte) space(mm).ptes.set(addr, pte);
  else space(mm).ptes.delete(addr);
}

/** Every anonymous entry of an address space, for reports and tests (nothing recorded). */
export function anonPtes(mm: MmStruct): ReadonlyMap<number, AnonPte> {
  return space(mm).ptes;
}

function ptlKey(k: Kernel, addr: number): number {
  return Math.floor(addr / 2 ** k.arch.pmdShift);
}

/** pte_offset_map_lock: take the PTE table's spinlock (another holder makes us wait). */
// ref: include/linux/mm.h pte_offset_map_lock
export function* pteOffsetMapLock(k: Kernel, mm: MmStruct, addr: number, who: string): KernelPath<void> {
  const s = space(mm);
  const key = ptlKey(k, addr);
  yield {
    kind: "block",
    at: `${who}: pte_offset_map_lock`,
    until: () => !s.ptl.has(key),
    holder: () => `the PTE lock of 0x${addr.toString(16)} held by ${s.ptl.get(key) ?? "nobody"}`,
  };
  k.sanitizer.write(`ptl:${mm.id}:${key}`);
  s.ptl.set(key, who);
}

/** pte_unmap_unlock (a release: whoever waits for the lock runs at its next step). */
// ref: include/linux/mm.h pte_unmap_unlock
export function pteUnmapUnlock(k: Kernel, mm: MmStruct, addr: number): void {
  const key = ptlKey(k, addr);
  k.sanitizer.write(`ptl:${mm.id}:${key}`);
  space(mm).ptl.delete(key);
}

/** Where the rmap walk finds an anonymous page mapped: page->mapping's anon_vma (here: the mm) and page->index. */
export interface RmapHit {
  mm: MmStruct;
  addr: number;
}

/** rmap_walk_anon for one page: page_anon_vma(page) and vma_address(page, vma) read page->mapping and page->index. */
// ref: mm/rmap.c rmap_walk_anon, page_anon_vma, vma_address
export function rmapWalkAnon(k: Kernel, pfn: number, at: string): RmapHit | null {
  const mapping = pageField(k, pfn, "mapping", `${at}: rmap_walk_anon: page_anon_vma(page)`);
  if (!pageAnon(mapping)) return null;
  const index = pageField(k, pfn, "index", `${at}: rmap_walk_anon: vma_address(page, vma)`);
  const mmId = mapping - PAGE_MAPPING_ANON;
  for (const t of userland(k).tasks.values()) if (t.mm.id === mmId) return { mm: t.mm, addr: index * k.geo.pageSize };
  return null;
}

/** page_add_new_anon_rmap / page_add_anon_rmap: the page is mapped at addr in mm. */
// ref: mm/rmap.c page_add_new_anon_rmap, page_add_anon_rmap, __page_set_anon_rmap
export function pageAddAnonRmap(k: Kernel, pfn: number, mm: MmStruct, addr: number, at: string): void {
  pageWrite(k, pfn, "mapcount", pageField(k, pfn, "mapcount", `${at}: page_add_anon_rmap`) + 1, `${at}: page_add_anon_rmap`);
  pageWrite(k, pfn, "mapping", PAGE_MAPPING_ANON + mm.id, `${at}: __page_set_anon_rmap: page->mapping = anon_vma`);
  pageWrite(k, pfn, "index", addr / k.geo.pageSize, `${at}: __page_set_anon_rmap: page->index`);
}

// ref: mm/rmap.c page_remove_rmap
export function pageRemoveRmap(k: Kernel, pfn: number, at: string): void {
  pageWrite(k, pfn, "mapcount", pageField(k, pfn, "mapcount", `${at}: page_remove_rmap`) - 1, `${at}: page_remove_rmap`);
}

/** TTU_MIGRATION */
export const TTU_MIGRATION = 0x1;

/**
 * try_to_unmap(page, TTU_MIGRATION) → try_to_unmap_one(page, vma, address) — 6.1: try_to_migrate →
 * try_to_migrate_one — for the one place the rmap walk finds the page: replace the entry that maps it (present,
 * or device-private) by a migration entry, drop the mapping's rmap and its reference. True when the page is no
 * longer mapped (try_to_unmap's `!page_mapcount(page)`). The caller (migrate_vma_unmap, migrate_pages) holds the
 * page locked and referenced.
 *
 * 5.4 first lets a ZONE_DEVICE page through only if it is device-private (`is_zone_device_page(page) &&
 * !is_device_private_page(page)` → nothing to do) and, under the PTL, turns it into a *read-only* migration
 * entry (make_migration_entry(page, 0)). 6.1 does the same test in try_to_migrate() and keeps the device-private
 * entry's write permission.
 */
// ref: mm/rmap.c try_to_unmap, try_to_unmap_one (v5.4); try_to_migrate, try_to_migrate_one (v6.1)
export function* tryToUnmapOne(k: Kernel, pfn: number): KernelPath<boolean> {
  const fn = k.variant.deviceFreeAtRefcountOne ? "try_to_unmap_one" : "try_to_migrate_one";
  const device = isZoneDevicePage(k, pfn, fn);
  let walk = true;
  if (device) {
    yield step(`${fn}: is_zone_device_page(page)`);
    if (pagePgmap(k, pfn, `${fn}: is_device_private_page(page)`)?.type !== MemoryType.PRIVATE) walk = false;
  }
  const hit = walk ? rmapWalkAnon(k, pfn, fn) : null;
  if (hit) {
    yield* pteOffsetMapLock(k, hit.mm, hit.addr, `${fn}: page_vma_mapped_walk`);
    const pte = anonPte(k, hit.mm, hit.addr);
    if (pte && pte.pfn === pfn && pte.kind !== "migration") {
      // ptep_get_and_clear, then the migration entry that do_swap_page() waits on.
      const write = device && k.variant.deviceFreeAtRefcountOne ? false : pte.write;
      setAnonPte(k, hit.mm, hit.addr, { kind: "migration", pfn, write });
      pageRemoveRmap(k, pfn, fn);
      // discard: put_page(page) — the mapping's reference; the caller's keeps the page.
      yield* putPage(k, pfn);
    }
    pteUnmapUnlock(k, hit.mm, hit.addr);
  }
  // try_to_unmap(): return !page_mapcount(page);
  return pageField(k, pfn, "mapcount", "try_to_unmap: page_mapcount(page)") === 0;
}
