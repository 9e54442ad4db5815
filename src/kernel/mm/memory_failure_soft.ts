/**
 * soft_offline_page() on device memory (mm/memory-failure.c), from its two entry points: the sysfs store
 * /sys/devices/system/memory/soft_offline_page (drivers/base/memory.c soft_offline_page_store: a physical
 * address from user space, nothing held) and madvise(MADV_SOFT_OFFLINE) (mm/madvise.c madvise_inject_error: a
 * page the caller holds through get_user_pages_fast). The audit's "soft_offline_page(): unsafe".
 *
 * Both eras answer "is this pfn device memory?" before anything else — 5.4 with is_zone_device_page(page) on a
 * page nobody holds, 6.1 with pfn_to_online_page(pfn) — and the answer is only as good as what keeps the device
 * from going away between the answer and the next struct page access:
 *
 * - 5.4 (softOfflineTakesPfn false): the store checks pfn_valid and pfn_to_online_page, which then only asked
 *   whether the *section* was online; a device pfn in a section shared with boot RAM passes, and
 *   soft_offline_page(pfn_to_page(pfn)) reads the struct page to find out it is ZONE_DEVICE. Nothing holds it.
 * - 6.1: pfn_to_online_page checks the sub-section and, in a section tainted SECTION_TAINT_ZONE_DEVICE, asks
 *   get_dev_pagemap(); a dying pgmap (memunmap_pages past percpu_ref_kill) answers "no pgmap", so the device pfn
 *   reads as online until the sub-section is removed, and soft_offline_page goes on to PageHWPoison(page).
 * - zone-device-subsection-map: the per-sub-section ZONE_DEVICE bit answers by pfn, stays set until the memmap is
 *   gone (pageunmap_range clears it with the sub-section), and needs no pgmap reference.
 * - madvise: the page comes from GUP. In 5.4 that reference holds the device (memunmap_pages put_page()s every
 *   page and waits for the rest); in 6.1 it does not, so unbind can free the memmap between GUP and the final
 *   put_ref_page().
 *
 * Simplified: soft-offlining RAM (migration, page_handle_poison) is not modelled — a pfn that really is online
 * RAM is a usage error, as in mm/memory_failure.ts. get_any_page()'s three retries with shake_page() read the
 * same page the same way; they are one pass here. mf_mutex is taken in name only (memory_failure.ts keeps its
 * own, private; no scenario runs both).
 */
import { UsageError } from "../../errors.ts";
import { EBUSY, EIO, ENXIO, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step } from "../path.ts";
import { FOLL_GET, getUserPagesFast } from "./gup.ts";
import { flagBit, PG_hwpoison, PG_lru } from "./memmap.ts";
import { MF_COUNT_INCREASED, MF_SOFT_OFFLINE } from "./memory_failure.ts";
import { getDevPagemap, putDevPagemap } from "./memremap.ts";
import type { Task } from "./mm_types.ts";
import { pageField } from "./page_access.ts";
import { compoundHead, hex, isZoneDevicePage, type PutOutcome, putPage } from "./swap.ts";

/** What a soft offline did: its result, and the kernel log lines it would print. */
export interface SoftOfflineResult {
  rc: Errno;
  /** put_page()s of the caller's reference, if any. */
  puts: PutOutcome[];
}

/** Sections are read locklessly; the footprint key the explorer widens page keys to. */
function readSection(k: Kernel, pfn: number): number {
  const nr = k.sections.pfnToSectionNr(pfn);
  k.sanitizer.read(`memmap:${nr}`);
  return nr;
}

// ref: include/linux/mmzone.h pfn_valid
function pfnValid(k: Kernel, pfn: number): boolean {
  readSection(k, pfn);
  return k.sections.pfnValid(pfn);
}

/**
 * pfn_to_online_page(pfn): true when the pfn is online memory with an initialised struct page.
 * 6.1: online section, valid sub-section, and — in a section where ZONE_DEVICE and online memory meet — no live
 * pgmap (get_dev_pagemap, dropped at once); zone-device-subsection-map: the sub-section's ZONE_DEVICE bit instead.
 * 5.4: online section (pfn_valid_within is a no-op without HOLES_IN_ZONE).
 */
// ref: mm/memory_hotplug.c pfn_to_online_page (v6.1); include/linux/memory_hotplug.h pfn_to_online_page (v5.4 macro)
export function* pfnToOnlinePage(k: Kernel, pfn: number): KernelPath<boolean> {
  const nr = readSection(k, pfn);
  if (nr >= k.geo.nrMemSections) return false;
  if (!k.sections.online(nr)) return false;
  if (!k.variant.pfnToOnlinePageKnowsZoneDevice) return true;
  if (!k.sections.pfnSectionValid(nr, pfn)) return false;
  if (!k.sections.onlineDevice(nr)) return true;
  if (k.variant.subsectionZoneDeviceMap) {
    // Seed 002: the per-sub-section ZONE_DEVICE bitmap, beside subsection_map in mem_section_usage.
    return !k.zoneDeviceSubsections.has(Math.floor(pfn / k.geo.pagesPerSubsection));
  }
  // Slow path: only get_dev_pagemap() knows whether this sub-section is ZONE_DEVICE.
  const pgmap = yield* getDevPagemap(k, pfn, "pfn_to_online_page");
  yield* putDevPagemap(k, pgmap, "pfn_to_online_page");
  return pgmap === null;
}

/**
 * get_hwpoison_page(page, MF_SOFT_OFFLINE) for a page that is not RAM: __get_hwpoison_page() finds it neither on
 * the LRU nor free in the buddy (HWPoisonHandlable), so -EBUSY, three times, then "unhandlable page" and -EIO.
 */
// ref: mm/memory-failure.c get_hwpoison_page, get_any_page, __get_hwpoison_page, HWPoisonHandlable
function getHwpoisonPage(k: Kernel, pfn: number): Errno {
  const head = compoundHead(k, pfn, "__get_hwpoison_page");
  const flags = pageField(k, head, "flags", "HWPoisonHandlable: PageLRU(page)");
  if (flags & flagBit(PG_lru)) throw new UsageError("pfn", `soft offline of an LRU page (pfn ${hex(pfn)}) is not modelled; only device pfns are`);
  k.printk(`Memory failure: ${hex(pfn)}: unhandlable page.`);
  return -EIO;
}

/** 6.1: soft_offline_page(pfn, flags). */
// ref: mm/memory-failure.c soft_offline_page, put_ref_page (v6.1)
function* softOfflinePagePfn(k: Kernel, pfn: number, flags: number, out: SoftOfflineResult): KernelPath<Errno> {
  if (!pfnValid(k, pfn)) {
    if (flags & MF_COUNT_INCREASED) k.sanitizer.report({ kind: "warning", at: "soft_offline_page", pfn, detail: "WARN_ON_ONCE(!pfn_valid(pfn) && (flags & MF_COUNT_INCREASED))" });
    return -ENXIO;
  }
  const refPage = flags & MF_COUNT_INCREASED ? pfn : null;
  // Only online pages can be soft-offlined (esp., not ZONE_DEVICE).
  const online = yield* pfnToOnlinePage(k, pfn);
  yield step("soft_offline_page: pfn_to_online_page");
  if (!online) {
    if (refPage !== null) out.puts.push(yield* putPage(k, refPage));
    return -EIO;
  }
  if (pageField(k, pfn, "flags", "soft_offline_page: PageHWPoison(page)") & flagBit(PG_hwpoison)) {
    k.printk(`soft_offline_page: ${hex(pfn)} page already poisoned`);
    if (refPage !== null) out.puts.push(yield* putPage(k, refPage));
    return 0;
  }
  return getHwpoisonPage(k, pfn);
}

/** 5.4: soft_offline_page(page, flags) — the struct page first, asked whether it is a device page. */
// ref: mm/memory-failure.c soft_offline_page (v5.4)
function* softOfflinePagePage(k: Kernel, pfn: number, flags: number, out: SoftOfflineResult): KernelPath<Errno> {
  if (isZoneDevicePage(k, pfn, "soft_offline_page")) {
    k.printk(`soft_offline: ${hex(pfn)} page is device page`);
    if (flags & MF_COUNT_INCREASED) out.puts.push(yield* putPage(k, pfn));
    return -EIO;
  }
  if (pageField(k, pfn, "flags", "soft_offline_page: PageHWPoison(page)") & flagBit(PG_hwpoison)) {
    k.printk(`soft offline: ${hex(pfn)} page already poisoned`);
    if (flags & MF_COUNT_INCREASED) out.puts.push(yield* putPage(k, pfn));
    return -EBUSY;
  }
  return getHwpoisonPage(k, pfn);
}

/**
 * echo PHYS > /sys/devices/system/memory/soft_offline_page, for the pfn of PHYS: nothing held, a pfn from user
 * space. The store's rc (0 for "count bytes written").
 */
// ref: drivers/base/memory.c soft_offline_page_store (v6.1: soft_offline_page(pfn, 0); v5.4: pfn_valid, pfn_to_online_page, soft_offline_page(pfn_to_page(pfn), 0))
export function* softOfflinePageStore(k: Kernel, pfn: number): KernelPath<SoftOfflineResult> {
  const out: SoftOfflineResult = { rc: 0, puts: [] };
  if (k.variant.softOfflineTakesPfn) {
    out.rc = yield* softOfflinePagePfn(k, pfn, 0, out);
    return out;
  }
  if (!pfnValid(k, pfn)) {
    out.rc = -ENXIO;
    return out;
  }
  const online = yield* pfnToOnlinePage(k, pfn);
  yield step("soft_offline_page_store: pfn_to_online_page");
  if (!online) {
    out.rc = -EIO;
    return out;
  }
  out.rc = yield* softOfflinePagePage(k, pfn, 0, out);
  return out;
}

/**
 * madvise(ADDR, PAGE_SIZE, MADV_SOFT_OFFLINE) by `task`: get_user_pages_fast the page, then soft_offline_page
 * with MF_COUNT_INCREASED, which puts that reference (put_ref_page / put_page). rc as madvise returns it.
 */
// ref: mm/madvise.c madvise_inject_error (MADV_SOFT_OFFLINE)
export function* madviseSoftOffline(k: Kernel, task: Task, addr: number): KernelPath<SoftOfflineResult & { pfn: number | null }> {
  const out: SoftOfflineResult & { pfn: number | null } = { rc: 0, puts: [], pfn: null };
  const start = addr - (addr % k.geo.pageSize);
  const g = yield* getUserPagesFast(k, task, start, 1, FOLL_GET);
  if (g.ret !== 1) {
    out.rc = g.ret < 0 ? g.ret : -EIO;
    return out;
  }
  const pfn = g.pages[0]!;
  out.pfn = pfn;
  yield step("madvise_inject_error: get_user_pages_fast returned");
  // size = page_size(compound_head(page)) (5.4: compound_order(compound_head(page)))
  pageField(k, compoundHead(k, pfn, "madvise_inject_error"), "order", "madvise_inject_error: page_size(compound_head(page))");
  if (!k.variant.softOfflineTakesPfn && pageField(k, pfn, "flags", "madvise_inject_error: PageHWPoison(page)") & flagBit(PG_hwpoison)) {
    out.puts.push(yield* putPage(k, pfn));
    return out;
  }
  k.printk(`Soft offlining pfn ${hex(pfn)} at process virtual address ${hex(start)}`);
  const flags = MF_COUNT_INCREASED | MF_SOFT_OFFLINE;
  out.rc = k.variant.softOfflineTakesPfn ? yield* softOfflinePagePfn(k, pfn, flags, out) : yield* softOfflinePagePage(k, pfn, flags, out);
  return out;
}
