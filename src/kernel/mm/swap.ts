/**
 * Dropping references to ZONE_DEVICE pages (mm/swap.c release_pages, __put_page / __folio_put; include/linux/mm.h
 * put_page, put_devmap_managed_page; mm/memremap.c __put_devmap_managed_page, free_zone_device_page) in the two
 * eras of seed 002's audit (mm/memremap.ts's memunmap_pages() uses it for 5.4's per-page put).
 *
 * 5.4 (k.variant.deviceFreeAtRefcountOne): every device page idles at refcount 1. put_page() first offers the
 * page to put_devmap_managed_page(), which takes MEMORY_DEVICE_PRIVATE and FS_DAX pages while devmap_managed_key
 * is on (__put_devmap_managed_page: at refcount 1 the page is free — mem_cgroup_uncharge, ->page_free; at 0,
 * __put_page); every other page goes to put_page_testzero() and, at 0, to __put_page(), which for a device page
 * is put_dev_pagemap(page->pgmap). memunmap_pages() put_page()s every device page once: an idle page drops to 0
 * and with it its pgmap reference, but a page someone still references keeps its pgmap reference until its
 * last put_page() — page references hold the device.
 *
 * 6.1: put_devmap_managed_page() takes FS_DAX pages only (1-based: wake the waiters at 1); every other page goes
 * to folio_put() and, at 0, __folio_put() → free_zone_device_page(): mem_cgroup_uncharge, ->page_free, then
 * put_dev_pagemap() for PRIVATE/COHERENT (the allocation's reference) or set_page_count(1) for the others.
 * memunmap_pages() drops the FS_DAX/GENERIC/P2PDMA pgmap references in bulk: a page reference does not hold
 * those devices.
 *
 * Each path yields where another CPU could run — above all right after the is_zone_device_page() test, before
 * page->pgmap is dereferenced: from there on only the reference the caller holds keeps the struct page, and
 * whether that reference holds the pgmap is the era difference.
 *
 * Simplified: RAM pages (the migration paths' anonymous pages) are freed straight to the buddy allocator
 * (no LRU, no per-cpu lists); compound device pages of 5.4 did not exist (device-dax used base pages until
 * 5.17), the model keeps 6.1's compound layout in both eras and counts a compound page's references on its head.
 */
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step } from "../path.ts";
import { allocatedPageHolder, baseRefHolder, DEVICE_PAGES_BULK, type DevPagemap, MemoryType, putDevPagemap, refcountOneType } from "./dev_pagemap.ts";
import { memCgroupUncharge, memCgroupUnchargeList } from "./memcontrol.ts";
import { flagBit, PG_locked, PG_reserved } from "./memmap.ts";
import { pageField, pageWrite, pgmapUse, warn } from "./page_access.ts";
import { freeKernelPage } from "./pgtable.ts";

/** What one put did. */
export interface PutOutcome {
  /** The page's refcount after the put (as the put computed it). */
  refcount: number;
  /** What the put did, named by the functions that did it ("__put_page: put_dev_pagemap(page->pgmap)", …). */
  did: string[];
  /** FS_DAX: the page went back to refcount 1 and truncate/hole-punch waiters were woken. */
  woke?: boolean;
  /** The page reached its free state and ->page_free ran. */
  freed?: boolean;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** page->mapping values of anonymous pages carry PAGE_MAPPING_ANON; the model sets bit 31 (file mappings are ids). */
export const PAGE_MAPPING_ANON = 2 ** 31;

// ref: include/linux/page-flags.h PageAnon
export function pageAnon(mapping: number): boolean {
  return mapping >= PAGE_MAPPING_ANON;
}

// ref: include/linux/page-flags.h compound_head
export function compoundHead(k: Kernel, pfn: number, at: string): number {
  const h = pageField(k, pfn, "compoundHead", `${at}: compound_head`);
  return h >= 0 ? h : pfn;
}

// ref: include/linux/mmzone.h is_zone_device_page
export function isZoneDevicePage(k: Kernel, pfn: number, at: string): boolean {
  return k.zoneNames[pageField(k, pfn, "zone", `${at}: is_zone_device_page`)] === "Device";
}

/** page->pgmap, dereferenced: null for a device page without one (the altmap's own storage). */
export function pagePgmap(k: Kernel, pfn: number, at: string): DevPagemap | null {
  const id = pageField(k, pfn, "pgmap", at);
  const pgmap = id ? k.pgmaps.byId.get(id) : undefined;
  return pgmap ? pgmapUse(k, pgmap, at) : null;
}

/**
 * devmap_managed_key. 6.1: on while an FS_DAX pgmap lives (CONFIG_FS_DAX). 5.4: devmap_managed_enable_get() ran
 * for MEMORY_DEVICE_PRIVATE and FS_DAX pgmaps alike; the key goes off only at the end of memunmap_pages().
 */
// ref: mm/memremap.c devmap_managed_enable_get, devmap_managed_enable_put
export function devmapManagedKey(k: Kernel): boolean {
  if (!k.variant.deviceFreeAtRefcountOne) return k.config.enabled("FS_DAX") && k.pgmaps.devmapManagedKey > 0;
  return k.pgmaps
    .all()
    .some((p) => (p.type === MemoryType.PRIVATE || p.type === MemoryType.FS_DAX) && p.state !== "new" && p.state !== "failed" && p.state !== "exited");
}

/** Who holds the pgmap reference that belongs to this page: 5.4's leftover base reference, an allocation's, or the bulk. */
function pageRefHolder(pgmap: DevPagemap, pfn: number): string | null {
  for (const h of [baseRefHolder(pfn), allocatedPageHolder(pfn), DEVICE_PAGES_BULK]) if (pgmap.ref.holders.has(h)) return h;
  return null;
}

/** page_ref_sub_return / put_page_testzero / folio_put_testzero: the new count. */
function refSub(k: Kernel, pfn: number, refs: number, at: string): number {
  const count = pageField(k, pfn, "refcount", at) - refs;
  pageWrite(k, pfn, "refcount", count, at);
  return count;
}

/**
 * put_devmap_managed_page (put_devmap_managed_page_refs in 6.1): true when the page was a devmap-managed page
 * and has been put here. The window between is_zone_device_page() and page->pgmap->type is the audit's "safe,
 * page reference is held".
 */
// ref: include/linux/mm.h put_devmap_managed_page, put_devmap_managed_page_refs; mm/memremap.c __put_devmap_managed_page_refs (v6.1), __put_devmap_managed_page (v5.4)
function* putDevmapManagedPage(k: Kernel, pfn: number, refs: number, out: PutOutcome): KernelPath<boolean> {
  if (!devmapManagedKey(k)) return false;
  if (!isZoneDevicePage(k, pfn, "put_devmap_managed_page")) return false;
  yield step("put_devmap_managed_page: is_zone_device_page(page)");
  const pgmap = pagePgmap(k, pfn, "put_devmap_managed_page: page->pgmap->type");
  if (!pgmap) return false;
  if (k.variant.deviceFreeAtRefcountOne) {
    // 5.4: switch (page->pgmap->type) { case MEMORY_DEVICE_PRIVATE: case MEMORY_DEVICE_FS_DAX: ... }
    if (pgmap.type !== MemoryType.PRIVATE && pgmap.type !== MemoryType.FS_DAX) return false;
    yield* putDevmapManagedPageV54(k, pfn, refs, out);
    return true;
  }
  if (pgmap.type !== MemoryType.FS_DAX) return false;
  // fsdax page refcounts are 1-based: at 1 the page is free and its waiters are woken.
  out.refcount = refSub(k, pfn, refs, "__put_devmap_managed_page_refs: page_ref_sub_return");
  out.did.push(`put_devmap_managed_page: FS_DAX page, refcount ${out.refcount}${out.refcount === 1 ? ": wake_up_var(&page->_refcount)" : ""}`);
  out.woke = out.refcount === 1;
  return true;
}

/** 5.4's __put_devmap_managed_page: free at refcount 1 (uncharge, ->page_free), __put_page at 0. */
// ref: mm/memremap.c __put_devmap_managed_page (v5.4)
function* putDevmapManagedPageV54(k: Kernel, pfn: number, refs: number, out: PutOutcome): KernelPath<void> {
  const count = refSub(k, pfn, refs, "__put_devmap_managed_page: page_ref_dec_return");
  out.refcount = count;
  yield step("__put_devmap_managed_page: page_ref_dec_return");
  if (count === 1) {
    // "If refcount is 1 then page is freed and refcount is stable as nobody holds a reference on the page."
    const flags = pageField(k, pfn, "flags", "__put_devmap_managed_page: __ClearPageActive");
    pageWrite(k, pfn, "flags", flags, "__put_devmap_managed_page: __ClearPageActive; __ClearPageWaiters");
    if (memCgroupUncharge(k, pfn, "__put_devmap_managed_page")) out.did.push("mem_cgroup_uncharge: uncharge_page");
    const pgmap = pagePgmap(k, pfn, "__put_devmap_managed_page: is_device_private_page(page)");
    if (pgmap?.type === MemoryType.PRIVATE) pageWrite(k, pfn, "mapping", 0, "__put_devmap_managed_page: page->mapping = NULL");
    const ops = pagePgmap(k, pfn, "__put_devmap_managed_page: page->pgmap->ops->page_free");
    if (ops?.type === MemoryType.FS_DAX) {
      // pmem's page_free in 5.4 (pmem_pagemap_page_free) wakes the truncate/hole-punch waiters.
      out.did.push("__put_devmap_managed_page: refcount 1: ->page_free (pmem: wake_up_var)");
      out.woke = true;
    } else if (ops?.ops?.pageFree) {
      ops.ops.pageFree(pfn);
      out.did.push("__put_devmap_managed_page: refcount 1: ->page_free");
      out.freed = true;
    } else if (ops) {
      k.sanitizer.report({ kind: "null-pointer-dereference", at: "__put_devmap_managed_page", pfn, detail: `page->pgmap->ops->page_free of pfn ${hex(pfn)} is NULL` });
    }
  } else if (count === 0) {
    yield* putPageFinalV54(k, pfn, out);
  }
}

/** 5.4's __put_page: a device page gives its pgmap reference back (it is never returned to the page allocator). */
// ref: mm/swap.c __put_page (v5.4)
function* putPageFinalV54(k: Kernel, pfn: number, out: PutOutcome): KernelPath<void> {
  if (!isZoneDevicePage(k, pfn, "__put_page")) {
    freeKernelPage(k, pfn);
    out.did.push("__put_page: __put_single_page (buddy)");
    return;
  }
  const pgmap = pagePgmap(k, pfn, "__put_page: put_dev_pagemap(page->pgmap)");
  out.did.push("__put_page: put_dev_pagemap(page->pgmap)");
  if (!pgmap) return;
  const holder = pageRefHolder(pgmap, pfn);
  if (holder) yield* putDevPagemap(k, pgmap, holder);
}

/** 6.1's __folio_put: a ZONE_DEVICE folio goes to free_zone_device_page. */
// ref: mm/swap.c __folio_put
function* folioPutFinal(k: Kernel, pfn: number, out: PutOutcome): KernelPath<void> {
  if (!isZoneDevicePage(k, pfn, "__folio_put: folio_is_zone_device")) {
    freeKernelPage(k, pfn);
    out.did.push("__folio_put: free_unref_page (buddy)");
    return;
  }
  yield* freeZoneDevicePage(k, pfn, out);
}

/**
 * free_zone_device_page: WARN and leave the page at 0 if the pgmap has no ->page_free (device-dax, p2pdma);
 * else uncharge, clear page->mapping, ->page_free, and give back the allocation's pgmap reference
 * (PRIVATE/COHERENT) or reset the count to 1 (the others).
 */
// ref: mm/memremap.c free_zone_device_page
function* freeZoneDevicePage(k: Kernel, pfn: number, out: PutOutcome): KernelPath<void> {
  const pgmap = pagePgmap(k, pfn, "free_zone_device_page: page->pgmap->ops");
  if (!pgmap?.ops?.pageFree) {
    warn(k, "free_zone_device_page", `WARN_ON_ONCE(!page->pgmap->ops || !page->pgmap->ops->page_free): pfn ${hex(pfn)}${pgmap ? ` of ${pgmap.device}` : ""} reached refcount 0`);
    out.did.push("free_zone_device_page: WARN (no ->page_free), left at refcount 0");
    return;
  }
  if (memCgroupUncharge(k, pfn, "free_zone_device_page")) out.did.push("mem_cgroup_uncharge: uncharge_folio");
  pageWrite(k, pfn, "mapping", 0, "free_zone_device_page: page->mapping = NULL");
  pgmap.ops.pageFree(pfn);
  out.did.push("free_zone_device_page: ->page_free");
  out.freed = true;
  const p = pagePgmap(k, pfn, "free_zone_device_page: page->pgmap->type");
  if (!p) return;
  if (refcountOneType(p.type)) {
    pageWrite(k, pfn, "refcount", 1, "free_zone_device_page: set_page_count(page, 1)");
    out.refcount = 1;
  } else {
    yield* putDevPagemap(k, p, allocatedPageHolder(pfn));
    out.did.push("free_zone_device_page: put_dev_pagemap(page->pgmap)");
  }
}

/**
 * put_page(page): drop one reference the caller holds. 5.4: put_devmap_managed_page, else put_page_testzero
 * and __put_page at 0. 6.1: put_devmap_managed_page, else folio_put → __folio_put at 0.
 */
// ref: include/linux/mm.h put_page, folio_put; v5.4 put_page_testzero, __put_page
export function* putPage(k: Kernel, pfn: number, refs = 1): KernelPath<PutOutcome> {
  const out: PutOutcome = { refcount: 0, did: [] };
  const head = compoundHead(k, pfn, "put_page");
  if (yield* putDevmapManagedPage(k, head, refs, out)) return out;
  out.refcount = refSub(k, head, refs, k.variant.deviceFreeAtRefcountOne ? "put_page_testzero" : "folio_put_testzero");
  yield step(k.variant.deviceFreeAtRefcountOne ? "put_page: put_page_testzero" : "folio_put: folio_put_testzero");
  if (out.refcount === 0) yield* k.variant.deviceFreeAtRefcountOne ? putPageFinalV54(k, head, out) : folioPutFinal(k, head, out);
  return out;
}

/** PAGE_FLAGS_CHECK_AT_FREE's bits the model keeps (PG_locked, PG_reserved, …): free_pages_prepare's bad_page(). */
const FLAGS_CHECK_AT_FREE = flagBit(PG_locked) | flagBit(PG_reserved);

/**
 * release_pages(pages, nr): put one reference on each page, in one pass with the LRU lock batched.
 *
 * 6.1: a ZONE_DEVICE folio goes to put_devmap_managed_page (FS_DAX), else folio_put_testzero and, at 0,
 * free_zone_device_page.
 *
 * 5.4: a ZONE_DEVICE page goes to put_devmap_managed_page (PRIVATE, FS_DAX); every other one falls through to
 * the code for RAM pages: at 0 it is put on pages_to_free through page->lru (which overlays page->pgmap),
 * uncharged and handed to free_unref_page_list(). Its pgmap reference is never given back (the fix is v5.11's
 * "mm: handle zone device pages in release_pages()"). free_pages_prepare() refuses it when PG_reserved is set
 * ("BUG: Bad page state", the page leaks); without PG_reserved it would enter the buddy allocator.
 */
// ref: mm/swap.c release_pages
export function* releasePages(k: Kernel, pages: readonly number[]): KernelPath<PutOutcome[]> {
  const outs: PutOutcome[] = [];
  const toFree: number[] = [];
  const v54 = k.variant.deviceFreeAtRefcountOne;
  for (const p of pages) {
    const out: PutOutcome = { refcount: 0, did: [] };
    outs.push(out);
    // 6.1 tests the folio (the head); 5.4 tests the page itself, then takes compound_head.
    const first = v54 ? p : compoundHead(k, p, "release_pages: page_folio");
    if (isZoneDevicePage(k, first, v54 ? "release_pages" : "release_pages: folio_is_zone_device")) {
      yield step("release_pages: is_zone_device_page(page)");
      if (yield* putDevmapManagedPage(k, v54 ? compoundHead(k, p, "release_pages") : first, 1, out)) continue;
      if (!v54) {
        out.refcount = refSub(k, first, 1, "release_pages: folio_put_testzero");
        if (out.refcount === 0) yield* freeZoneDevicePage(k, first, out);
        continue;
      }
    }
    const head = v54 ? compoundHead(k, p, "release_pages") : first;
    out.refcount = refSub(k, head, 1, "release_pages: put_page_testzero");
    if (out.refcount !== 0) continue;
    // The RAM path: off the LRU (device pages never are on it), then list_add(&page->lru, &pages_to_free).
    if (v54 && isZoneDevicePage(k, head, "release_pages: list_add(&page->lru)")) {
      pageWrite(k, head, "pgmap", 0, "release_pages: list_add(&page->lru, &pages_to_free) (page->lru overlays page->pgmap)");
      out.did.push("release_pages: refcount 0 on a non-devmap-managed device page: page->lru = pages_to_free (page->pgmap overwritten)");
    }
    toFree.push(head);
  }
  if (toFree.length === 0) return outs;
  memCgroupUnchargeList(k, toFree, "release_pages");
  // free_unref_page_list → free_unref_page_prepare → free_pages_prepare → free_pages_check
  for (const pfn of toFree) {
    const flags = pageField(k, pfn, "flags", "free_unref_page_list: free_pages_check");
    const zone = pageField(k, pfn, "zone", "free_unref_page_list: page_zone");
    if (k.zoneNames[zone] !== "Device") {
      freeKernelPage(k, pfn);
      continue;
    }
    if (flags & FLAGS_CHECK_AT_FREE) {
      k.printk(`BUG: Bad page state in process zonedev  pfn:${pfn.toString(16).padStart(5, "0")}`);
      warn(k, "free_pages_check", `bad_page: PAGE_FLAGS_CHECK_AT_FREE flag(s) set on device pfn ${hex(pfn)} (PG_reserved); the page is leaked`);
    } else {
      k.sanitizer.report({ kind: "device-pfn-in-buddy", at: "free_unref_page_list", pfn, detail: `device pfn ${hex(pfn)} freed to the page allocator by release_pages` });
    }
  }
  return outs;
}
