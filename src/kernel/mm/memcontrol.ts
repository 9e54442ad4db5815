/**
 * Memory cgroup charges of pages (mm/memcontrol.c): the minimum seed 002's uncharge_page() needs. A page is
 * charged to a memcg when it is mapped into a process (here: when migrate_vma_pages() inserts a device-private
 * page, and the anonymous RAM pages of mm/migrate_device.ts) and uncharged when it is freed (5.4:
 * __put_devmap_managed_page at refcount 1, release_pages' list; 6.1: free_zone_device_page).
 *
 * Simplified: a memcg is a name; there are no counters, limits, css references or per-cpu batches. The charge
 * (page->mem_cgroup in 5.4, folio->memcg_data in 6.1) is kept beside the memmap in a table by pfn, but every
 * read or write of it goes through the struct page accessors, so the sanitizer sees a read of a torn-down page.
 * CONFIG_MEMCG is taken as enabled (Debian's 6.1 config; the model's Kconfig has no MEMCG symbol).
 */
import type { Kernel } from "../kernel.ts";
import { sideTable } from "../lib/rewind.ts";
import { flagBit, PG_hwpoison, PG_lru } from "./memmap.ts";
import { pageField, pageWrite, warn } from "./page_access.ts";

const CHARGES = sideTable<Kernel, Map<number, string>>();

function charges(k: Kernel): Map<number, string> {
  let m = CHARGES.get(k);
  if (!m) {
    m = new Map();
    CHARGES.set(k, m);
  }
  return m;
}

/** Which memcg a page is charged to, for reports and tests (no struct page access is recorded). */
export function chargedMemcg(k: Kernel, pfn: number): string | null {
  return charges(k).get(pfn) ?? null;
}

/** Load page->mem_cgroup (5.4) / folio->memcg_data (6.1): a struct page read. */
function readMemcg(k: Kernel, pfn: number, at: string): string | null {
  pageField(k, pfn, "flags", at);
  return charges(k).get(pfn) ?? null;
}

/** Store page->mem_cgroup: a struct page write. */
function writeMemcg(k: Kernel, pfn: number, memcg: string | null, at: string): void {
  pageWrite(k, pfn, "flags", pageField(k, pfn, "flags", at), at);
  if (memcg === null) charges(k).delete(pfn);
  else charges(k).set(pfn, memcg);
}

/** Charge a page that is being mapped into a process of `memcg`. */
// ref: mm/memcontrol.c mem_cgroup_charge (v6.1); v5.4: mem_cgroup_try_charge + mem_cgroup_commit_charge
export function memCgroupCharge(k: Kernel, pfn: number, memcg: string, at: string): void {
  k.sanitizer.read(`memcg:${memcg}`);
  writeMemcg(k, pfn, memcg, `${at}: mem_cgroup_charge`);
}

/**
 * Migration: the new page is charged to the old page's memcg. 6.1 transfers the charge (the old folio's
 * memcg_data is cleared); 5.4 force-charges the new page and leaves the old one charged until it is freed.
 */
// ref: mm/memcontrol.c mem_cgroup_migrate
export function memCgroupMigrate(k: Kernel, oldPfn: number, newPfn: number, at: string): void {
  const memcg = readMemcg(k, oldPfn, `${at}: mem_cgroup_migrate`);
  if (memcg === null) return;
  if (readMemcg(k, newPfn, `${at}: mem_cgroup_migrate`) !== null) return;
  writeMemcg(k, newPfn, memcg, `${at}: mem_cgroup_migrate: commit_charge`);
  if (!k.variant.deviceFreeAtRefcountOne) writeMemcg(k, oldPfn, null, `${at}: mem_cgroup_migrate: old->memcg_data = 0`);
}

interface UnchargeGather {
  memcg: string | null;
  nrPages: number;
}

/**
 * One page into the gather, its charge cleared. 5.4's version starts with CONFIG_DEBUG_VM checks that read the
 * page's LRU flag, refcount and zone: `VM_BUG_ON_PAGE(page_count(page) && !is_zone_device_page(page) &&
 * !PageHWPoison(page))` — the is_zone_device_page() of Dan's audit, there because device-private pages are
 * uncharged at refcount 1. 6.1's uncharge_folio has no ZONE_DEVICE test (device pages are freed at 0).
 */
// ref: mm/memcontrol.c uncharge_page (v5.4); uncharge_folio (v6.1)
function unchargePage(k: Kernel, pfn: number, ug: UnchargeGather, at: string): void {
  const fn = k.variant.deviceFreeAtRefcountOne ? "uncharge_page" : "uncharge_folio";
  const flags = pageField(k, pfn, "flags", `${at}: ${fn}: VM_BUG_ON_PAGE(PageLRU(page))`);
  if (flags & flagBit(PG_lru)) warn(k, fn, `VM_BUG_ON_PAGE(PageLRU(page)): pfn 0x${pfn.toString(16)}`);
  if (k.variant.deviceFreeAtRefcountOne) {
    const count = pageField(k, pfn, "refcount", `${at}: uncharge_page: page_count(page)`);
    const zone = pageField(k, pfn, "zone", `${at}: uncharge_page: is_zone_device_page(page)`);
    if (count !== 0 && k.zoneNames[zone] !== "Device" && !(flags & flagBit(PG_hwpoison))) {
      warn(k, "uncharge_page", `VM_BUG_ON_PAGE(page_count(page) && !is_zone_device_page(page)): pfn 0x${pfn.toString(16)} refcount ${count}`);
    }
  }
  const memcg = readMemcg(k, pfn, `${at}: ${fn}: page->mem_cgroup`);
  if (memcg === null) return;
  if (ug.memcg !== memcg) ug.memcg = memcg;
  // PageTransHuge / PageAnon / PageSwapBacked choose the statistics to decrement.
  pageField(k, pfn, "mapping", `${at}: ${fn}: PageAnon(page)`);
  ug.nrPages++;
  writeMemcg(k, pfn, null, `${at}: ${fn}: page->mem_cgroup = NULL`);
}

/** uncharge_batch: the memcg's counters go down (an IRQ-disabled section and a css_put). */
// ref: mm/memcontrol.c uncharge_batch
function unchargeBatch(k: Kernel, ug: UnchargeGather): void {
  if (ug.memcg === null) return;
  k.sanitizer.write(`memcg:${ug.memcg}`);
}

/** mem_cgroup_uncharge(page): true when the page was charged and now is not. */
// ref: include/linux/memcontrol.h mem_cgroup_uncharge; mm/memcontrol.c __mem_cgroup_uncharge (v6.1), mem_cgroup_uncharge (v5.4)
export function memCgroupUncharge(k: Kernel, pfn: number, at: string): boolean {
  // "Don't touch page->lru of any random page, pre-check": if (!page->mem_cgroup) return.
  if (readMemcg(k, pfn, `${at}: mem_cgroup_uncharge: page->mem_cgroup`) === null) return false;
  const ug: UnchargeGather = { memcg: null, nrPages: 0 };
  unchargePage(k, pfn, ug, at);
  unchargeBatch(k, ug);
  return ug.nrPages > 0;
}

/** mem_cgroup_uncharge_list: release_pages' pages_to_free. */
// ref: mm/memcontrol.c mem_cgroup_uncharge_list, uncharge_list
export function memCgroupUnchargeList(k: Kernel, pfns: readonly number[], at: string): number {
  const ug: UnchargeGather = { memcg: null, nrPages: 0 };
  for (const pfn of pfns) unchargePage(k, pfn, ug, at);
  unchargeBatch(k, ug);
  return ug.nrPages;
}
