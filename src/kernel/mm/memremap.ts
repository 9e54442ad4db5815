/**
 * ZONE_DEVICE: memremap_pages, memunmap_pages, get_dev_pagemap and the device page free path
 * (mm/memremap.c, mm/mm_init.c memmap_init_zone_device), written as step-wise kernel paths.
 */
import { EFAULT, EINVAL, ENOMEM, ENXIO, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { PercpuRef } from "../lib/percpu_refcount.ts";
import { type KernelPath, step } from "../path.ts";
import { rcuReadLock, rcuReadUnlock, synchronizeRcu } from "../rcu.ts";
import { IORES_DESC_NONE, IORESOURCE_SYSTEM_RAM, REGION_DISJOINT, REGION_MIXED, regionIntersects } from "../resource.ts";
import {
  allocatedPageHolder,
  baseRefHolder,
  DEVICE_PAGES_BULK,
  type DevPagemap,
  type DevPagemapSpec,
  type Holder,
  MemoryType,
  pgmapAltmap,
  pgmapVmemmapNr,
  putDevPagemap,
  refcountOneType,
} from "./dev_pagemap.ts";
import { flagBit, type PageState, PG_head, PG_locked, PG_reserved, pageValue } from "./memmap.ts";
import { addPages, archAddMemory, HOTPLUG_KEY, mhpRangeAllowed, movePfnRangeToZone, removePages, removePfnRangeFromZone } from "./memory_hotplug.ts";
import { pageRead, pageWrite, pgmapTouch, pgmapUse, warn } from "./page_access.ts";
import { noteMemmapWrite } from "./sparse_hotplug.ts";
import type { MhpParams } from "./sparse_vmemmap.ts";
import { putPage as putPageEra } from "./swap.ts";
import { vmemAltmapOffset } from "./vmem_altmap.ts";

export { type Holder, putDevPagemap } from "./dev_pagemap.ts";

// ref: mm/memremap.c pfn_first
export function pfnFirst(k: Kernel, pgmap: DevPagemap, rangeId: number): number {
  const pfn = k.physPfn(pgmap.ranges[rangeId]!.start);
  return rangeId ? pfn : pfn + vmemAltmapOffset(pgmapAltmap(pgmap));
}

// ref: mm/memremap.c pfn_end
export function pfnEnd(k: Kernel, pgmap: DevPagemap, rangeId: number): number {
  const r = pgmap.ranges[rangeId]!;
  return k.physPfn(r.end + 1);
}

// ref: mm/memremap.c pfn_len
export function pfnLen(k: Kernel, pgmap: DevPagemap, rangeId: number): number {
  return Math.floor((pfnEnd(k, pgmap, rangeId) - pfnFirst(k, pgmap, rangeId)) / 2 ** pgmap.vmemmapShift);
}

// ref: mm/memremap.c pgmap_pfn_valid
export function pgmapPfnValid(k: Kernel, pgmap: DevPagemap, pfn: number): boolean {
  for (let i = 0; i < pgmap.nrRange; i++) {
    const r = pgmap.ranges[i]!;
    if (pfn >= k.physPfn(r.start) && pfn <= k.physPfn(r.end)) return pfn >= pfnFirst(k, pgmap, i);
  }
  return false;
}

/** A new, unregistered dev_pagemap, as a driver fills one in before calling memremap_pages. */
export function newDevPagemap(k: Kernel, spec: DevPagemapSpec): DevPagemap {
  return k.pgmaps.create(spec);
}

/** A transient reference holder name for get_dev_pagemap callers. */

/**
 * get_dev_pagemap(pfn, cached): the pgmap covering pfn with a new live reference, or null (none, or dying).
 * With `cached`: returned as-is if pfn is inside its ranges[0] only; otherwise its reference is dropped first.
 */
// ref: mm/memremap.c get_dev_pagemap
export function* getDevPagemap(k: Kernel, pfn: number, holder: Holder, cached: DevPagemap | null = null): KernelPath<DevPagemap | null> {
  if (cached) {
    const r = pgmapUse(k, cached, "get_dev_pagemap").ranges[0]!;
    const phys = k.pfnPhys(pfn);
    if (phys >= r.start && phys <= r.end) return cached;
    yield* putDevPagemap(k, cached, holder);
  }
  const reader = rcuReadLock(k, "get_dev_pagemap");
  yield step("get_dev_pagemap: rcu_read_lock; xa_load(&pgmap_array)");
  k.sanitizer.read("pgmap_array");
  const id = k.pgmaps.array.get(pfn);
  if (id === undefined) {
    rcuReadUnlock(k, reader);
    return null;
  }
  const pgmap = pgmapUse(k, k.pgmaps.byId.get(id)!, "get_dev_pagemap");
  pgmapTouch(k, pgmap);
  const live = pgmap.ref.tryGetLive(holder);
  rcuReadUnlock(k, reader);
  if (!live) return null;
  yield step("get_dev_pagemap: rcu_read_unlock");
  return pgmap;
}


/** Is a live pgmap covering pfn? The probe pfn_to_online_page's slow path makes (and drops at once). */
export function devPagemapLive(k: Kernel, pfn: number): boolean {
  const id = k.pgmaps.array.get(pfn);
  if (id === undefined) return false;
  return !k.pgmaps.byId.get(id)!.ref.dead;
}

// ref: mm/mm_init.c memmap_init_zone_device, __init_zone_device_page, memmap_init_compound
function memmapInitZoneDevice(k: Kernel, zoneIdx: number, startPfnIn: number, nrPagesIn: number, pgmap: DevPagemap, nid: number): void {
  const altmap = pgmapAltmap(pgmap);
  let startPfn = startPfnIn;
  const endPfn = startPfnIn + nrPagesIn;
  if (altmap) startPfn = altmap.basePfn + vmemAltmapOffset(altmap);
  const idleRefcount = refcountOneType(pgmap.type) || k.variant.deviceFreeAtRefcountOne ? 1 : 0;
  const flags = k.variant.pgReservedOnDevicePages ? flagBit(PG_reserved) : 0;
  const base = { zone: zoneIdx, node: nid, pgmap: pgmap.id, mapcount: 0, flags };
  const nrCompound = pgmapVmemmapNr(pgmap);
  if (nrCompound === 1) {
    k.memmap.setRange(startPfn, endPfn, pageValue({ ...base, refcount: idleRefcount }));
    return;
  }
  // Compound pages: a head with PG_head and the order, tails pointing at it with refcount 0. With vmemmap
  // dedup only the first 128 struct pages of each compound are written; the rest alias identical tails.
  const head = pageValue({ ...base, flags: flags + flagBit(PG_head), refcount: idleRefcount, order: pgmap.vmemmapShift });
  const tail = pageValue({ ...base, refcount: 0 });
  k.memmap.setRange(startPfn, endPfn, head, { order: pgmap.vmemmapShift, base: startPfn, tail });
}

/** memmap_init_range for ZONE_DEVICE: only the struct pages holding the memmap itself (the altmap's `free`). */
// ref: mm/page_alloc.c memmap_init_range (zone == ZONE_DEVICE)
function memmapInitAltmapArea(k: Kernel, zoneIdx: number, pgmap: DevPagemap, nid: number, startPfn: number): void {
  const altmap = pgmapAltmap(pgmap);
  if (!altmap || startPfn !== altmap.basePfn) return;
  const from = altmap.basePfn + altmap.reserve;
  // ZONE_DEVICE + PG_reserved, but no pgmap: these pages are the memmap's own storage.
  k.memmap.setRange(from, from + altmap.free, pageValue({ zone: zoneIdx, node: nid, refcount: 1, flags: flagBit(PG_reserved) }));
}

// ref: mm/memremap.c pagemap_range
function* pagemapRange(k: Kernel, pgmap: DevPagemap, rangeId: number, nidIn: number): KernelPath<Errno> {
  const range = pgmap.ranges[rangeId]!;
  const isPrivate = pgmap.type === MemoryType.PRIVATE;
  const altmap = pgmapAltmap(pgmap);
  const startPfn = k.physPfn(range.start);
  const lastPfn = k.physPfn(range.end);
  const len = range.end - range.start + 1;
  if (altmap && rangeId > 0) {
    warn(k, "pagemap_range", "altmap not supported for multiple ranges");
    return -EINVAL;
  }
  // Conflicts are probed only at the first and last pfn, and only live pgmaps are seen.
  for (const probe of [startPfn, lastPfn]) {
    const conflict = yield* getDevPagemap(k, probe, `memremap_pages(${pgmap.device})`);
    if (conflict) {
      yield* putDevPagemap(k, conflict, `memremap_pages(${pgmap.device})`);
      warn(k, "pagemap_range", "Conflicting mapping in same section");
      return -ENOMEM;
    }
  }
  const isRam = regionIntersects(k.iomem, range.start, len, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE);
  if (isRam !== REGION_DISJOINT) {
    warn(k, "pagemap_range", `attempted on ${isRam === REGION_MIXED ? "mixed" : "ram"} region ${rangeString(range)}`);
    return -ENXIO;
  }
  k.pgmaps.array.store(startPfn, lastPfn, pgmap.id);
  k.sanitizer.write("pgmap_array");
  yield step("pagemap_range: xa_store_range(&pgmap_array)");
  const nid = nidIn < 0 ? 0 : nidIn;
  // track_pfn_remap (x86 PAT memtype) is not modelled: no memtype conflicts arise in the model.
  if (!mhpRangeAllowed(k, range.start, len)) {
    k.pgmaps.array.store(startPfn, lastPfn, undefined);
    return -EINVAL;
  }
  yield step("pagemap_range: mem_hotplug_begin");
  k.sanitizer.write(HOTPLUG_KEY);
  const params: MhpParams = { altmap, pgmap: { vmemmapShift: pgmap.vmemmapShift, rangeStartPfn: startPfn } };
  const nrPages = lastPfn - startPfn + 1;
  // Device-private memory has no direct map: only struct pages (add_pages); the rest go through arch_add_memory.
  const error = isPrivate ? addPages(k, nid, startPfn, nrPages, params, true) : archAddMemory(k, nid, range.start, len, params, true);
  if (!error) {
    const zone = k.nodeData(nid).zones.find((z) => z.name === "Device")!;
    movePfnRangeToZone(k, zone, startPfn, nrPages, false);
    memmapInitAltmapArea(k, zone.idx, pgmap, nid, startPfn);
    markZoneDeviceSubsections(k, startPfn, nrPages, true);
  }
  yield step("pagemap_range: mem_hotplug_done");
  if (error) {
    k.pgmaps.array.store(startPfn, lastPfn, undefined);
    return error;
  }
  const zone = k.nodeData(nid).zones.find((z) => z.name === "Device")!;
  memmapInitZoneDevice(k, zone.idx, startPfn, nrPages, pgmap, nid);
  yield step("pagemap_range: memmap_init_zone_device");
  // One pgmap reference per (compound) page: all of them for FS_DAX/GENERIC/P2PDMA; before v5.19 every type's.
  if (refcountOneType(pgmap.type) || k.variant.pageRefsHoldPgmap) {
    pgmap.ref.getMany(pfnLen(k, pgmap, rangeId), DEVICE_PAGES_BULK);
    pgmapTouch(k, pgmap);
  }
  return 0;
}

/** Seed 002's proposal: a per-sub-section ZONE_DEVICE bitmap next to subsection_map (variant only). */
function markZoneDeviceSubsections(k: Kernel, startPfn: number, nrPages: number, on: boolean): void {
  if (!k.variant.subsectionZoneDeviceMap) return;
  const pps = k.geo.pagesPerSubsection;
  for (let p = startPfn; p < startPfn + nrPages; p += pps) {
    if (on) k.zoneDeviceSubsections.add(Math.floor(p / pps));
    else k.zoneDeviceSubsections.delete(Math.floor(p / pps));
  }
}

/** The "%#llx-%#llx" of pagemap_range's WARN. */
function rangeString(r: { start: number; end: number }): string {
  return `0x${r.start.toString(16)}-0x${r.end.toString(16)}`;
}

/** memremap_pages: 0 on success (the kernel returns the direct-map address), or a negative errno. */
// ref: mm/memremap.c memremap_pages
export function* memremapPages(k: Kernel, pgmap: DevPagemap, nid: number): KernelPath<Errno> {
  const nrRange = pgmap.ranges.length;
  if (!k.config.enabled("ZONE_DEVICE")) {
    warn(k, "devm_memremap_pages", "CONFIG_ZONE_DEVICE is not set");
    return -ENXIO;
  }
  if (nrRange < 1) {
    warn(k, "memremap_pages", "nr_range must be specified");
    return -EINVAL;
  }
  switch (pgmap.type) {
    case MemoryType.PRIVATE:
      if (!k.config.enabled("DEVICE_PRIVATE")) {
        warn(k, "memremap_pages", "Device private memory not supported");
        return -EINVAL;
      }
      if (!pgmap.ops?.migrateToRam) {
        warn(k, "memremap_pages", "Missing migrate_to_ram method");
        return -EINVAL;
      }
      if (!pgmap.ops.pageFree) {
        warn(k, "memremap_pages", "Missing page_free method");
        return -EINVAL;
      }
      if (!pgmap.owner) {
        warn(k, "memremap_pages", "Missing owner");
        return -EINVAL;
      }
      break;
    case MemoryType.COHERENT:
      if (!pgmap.ops) {
        // The kernel dereferences ops without a NULL check.
        k.sanitizer.report({ kind: "null-pointer-dereference", at: "memremap_pages", pgmap: pgmap.id, detail: "MEMORY_DEVICE_COHERENT pgmap with ops == NULL: pgmap->ops->page_free oopses" });
        return -EFAULT;
      }
      if (!pgmap.ops.pageFree) {
        warn(k, "memremap_pages", "Missing page_free method");
        return -EINVAL;
      }
      if (!pgmap.owner) {
        warn(k, "memremap_pages", "Missing owner");
        return -EINVAL;
      }
      break;
    case MemoryType.FS_DAX:
    case MemoryType.GENERIC:
    case MemoryType.PCI_P2PDMA:
      break;
    default:
      warn(k, "memremap_pages", `Invalid pgmap type ${String(pgmap.type)}`);
  }
  pgmap.ref = new PercpuRef(() => {
    pgmap.done = true;
  });
  pgmap.done = false;
  pgmap.state = "initialising";
  pgmap.nid = nid < 0 ? 0 : nid;
  if (pgmap.type === MemoryType.FS_DAX) k.pgmaps.devmapManagedKey++;
  yield step("memremap_pages: percpu_ref_init");
  pgmap.nrRange = 0;
  let error: Errno = 0;
  for (let i = 0; i < nrRange; i++) {
    error = yield* pagemapRange(k, pgmap, i, nid);
    if (error) break;
    pgmap.nrRange++;
  }
  if (error) {
    // Unwind only the ranges that made it; the pgmap can be reused afterwards.
    yield* memunmapPages(k, pgmap);
    pgmap.nrRange = nrRange;
    pgmap.state = "failed";
    return error;
  }
  pgmap.state = "live";
  return 0;
}

// ref: mm/memremap.c pageunmap_range
function* pageunmapRange(k: Kernel, pgmap: DevPagemap, rangeId: number): KernelPath<void> {
  const range = pgmap.ranges[rangeId]!;
  const startPfn = k.physPfn(range.start);
  const nrPages = k.physPfn(range.end + 1) - startPfn;
  // first_page: a struct page known to be initialised, to find the zone.
  const first = pageRead(k, pfnFirst(k, pgmap, rangeId), "pageunmap_range");
  const zone = k.nodeData(first.node).zones[first.zone]!;
  yield step("pageunmap_range: mem_hotplug_begin");
  k.sanitizer.write(HOTPLUG_KEY);
  removePfnRangeFromZone(k, zone, startPfn, nrPages);
  removePages(k, startPfn, nrPages, { altmap: pgmap.type === MemoryType.PRIVATE ? null : pgmapAltmap(pgmap), pgmap: null });
  markZoneDeviceSubsections(k, startPfn, nrPages, false);
  yield step("pageunmap_range: mem_hotplug_done");
  k.pgmaps.array.store(startPfn, k.physPfn(range.end), undefined);
  k.sanitizer.write("pgmap_array");
  yield step("pageunmap_range: pgmap_array_delete");
  yield* synchronizeRcu(k, "pgmap_array_delete: synchronize_rcu");
}

/**
 * Before v5.19 memunmap_pages() put_page()s every device page once (for_each_device_pfn). An idle page drops
 * from 1 to 0 and __put_page() gives its pgmap reference back; a page someone still references keeps its
 * reference until its last put_page(): page references hold the device, and the wait below waits for them.
 *
 * The idle pages' references go back as one put of the bulk holder (their refcounts are left at 1: the memmap
 * goes soon after, and nothing in the model looks at an idle page in between). Each page still referenced gets
 * its own holder first, so a hang names it, and goes through the era's put_page() (mm/swap.ts), at its own
 * step. The loop reads the memmap directly and, for the explorer, writes the pgmap's whole memmap (`memmap:NR`
 * of each section, as the kernel's loop writes every page): one key per section, not one per page.
 */
// ref: mm/memremap.c memunmap_pages (v5.18: for_each_device_pfn(pfn, pgmap, i) put_page(pfn_to_page(pfn)))
function* putEachDevicePage(k: Kernel, pgmap: DevPagemap): KernelPath<void> {
  const busy: number[] = [];
  let idle = 0;
  const nr = pgmapVmemmapNr(pgmap);
  for (let i = 0; i < pgmap.nrRange; i++) {
    const end = pfnEnd(k, pgmap, i);
    idle += k.memmap.partitionAbove(pfnFirst(k, pgmap, i), end, nr, "refcount", 1, busy);
  }
  for (let i = 0; i < pgmap.nrRange; i++) noteMemmapWrite(k, pfnFirst(k, pgmap, i), pfnEnd(k, pgmap, i) - pfnFirst(k, pgmap, i));
  pgmapTouch(k, pgmap);
  for (const pfn of busy) {
    pgmap.ref.getMany(1, baseRefHolder(pfn));
    pgmap.ref.putMany(1, DEVICE_PAGES_BULK);
  }
  if (idle > 0) pgmap.ref.putMany(idle, DEVICE_PAGES_BULK);
  if (pgmap.ref.state === "released") pgmap.done = true;
  yield step(`memunmap_pages: put_page() on ${idle} idle device page${idle === 1 ? "" : "s"}`);
  for (const pfn of busy) yield* putPageEra(k, pfn);
}

// ref: mm/memremap.c memunmap_pages
export function* memunmapPages(k: Kernel, pgmap: DevPagemap): KernelPath<void> {
  pgmapTouch(k, pgmapUse(k, pgmap, "memunmap_pages"));
  pgmap.ref.kill();
  if (pgmap.ref.state === "released") pgmap.done = true;
  if (pgmap.state === "live") pgmap.state = "dying";
  yield step("memunmap_pages: percpu_ref_kill");
  // The kill switches the ref to atomic mode from an RCU callback: the count cannot reach zero (and `done`
  // cannot complete) before a grace period, so readers already inside one — GUP-fast with interrupts off —
  // finish before anything below runs.
  yield* synchronizeRcu(k, "memunmap_pages: percpu_ref_kill (RCU grace period before atomic mode)");
  if (k.variant.pageRefsHoldPgmap) {
    yield* putEachDevicePage(k, pgmap);
  } else if (refcountOneType(pgmap.type)) {
    pgmapTouch(k, pgmap);
    for (let i = 0; i < pgmap.nrRange; i++) pgmap.ref.putMany(pfnLen(k, pgmap, i), DEVICE_PAGES_BULK);
    if (pgmap.ref.state === "released") pgmap.done = true;
    yield step("memunmap_pages: percpu_ref_put_many(pfn_len)");
  }
  yield {
    kind: "block",
    at: "memunmap_pages: wait_for_completion(&pgmap->done)",
    until: () => pgmap.done,
    holder: () => `pgmap ${pgmap.id} (${pgmap.device}) references held by ${pgmap.ref.describeHolders()}`,
  };
  if (pgmap.state === "dying") pgmap.state = "drained";
  for (let i = 0; i < pgmap.nrRange; i++) yield* pageunmapRange(k, pgmap, i);
  if (pgmap.state === "drained") pgmap.state = "removed";
  pgmapTouch(k, pgmap);
  pgmap.ref.exit();
  const altmap = pgmapAltmap(pgmap);
  if (altmap && altmap.alloc !== 0) warn(k, "memunmap_pages", "failed to free all reserved pages");
  if (pgmap.type === MemoryType.FS_DAX) k.pgmaps.devmapManagedKey--;
  if (pgmap.state !== "initialising") pgmap.state = "exited";
  yield step("memunmap_pages: percpu_ref_exit");
}

// ref: include/linux/mmzone.h is_zone_device_page
export function isZoneDevicePage(k: Kernel, pfn: number, at = "is_zone_device_page"): boolean {
  const page = pageRead(k, pfn, at);
  return k.zoneNames[page.zone] === "Device";
}

function pgmapOfPage(k: Kernel, pfn: number, at: string): DevPagemap | null {
  const page = pageRead(k, pfn, at);
  if (k.zoneNames[page.zone] !== "Device" || page.pgmap === 0) return null;
  return pgmapUse(k, k.pgmaps.byId.get(page.pgmap)!, at);
}

// ref: include/linux/memremap.h is_device_private_page
export function isDevicePrivatePage(k: Kernel, pfn: number): boolean {
  if (!k.config.enabled("DEVICE_PRIVATE")) return false;
  return pgmapOfPage(k, pfn, "is_device_private_page")?.type === MemoryType.PRIVATE;
}

// ref: include/linux/memremap.h is_device_coherent_page
export function isDeviceCoherentPage(k: Kernel, pfn: number): boolean {
  return pgmapOfPage(k, pfn, "is_device_coherent_page")?.type === MemoryType.COHERENT;
}

// ref: include/linux/memremap.h is_pci_p2pdma_page
export function isPciP2pdmaPage(k: Kernel, pfn: number): boolean {
  if (!k.config.enabled("PCI_P2PDMA")) return false;
  return pgmapOfPage(k, pfn, "is_pci_p2pdma_page")?.type === MemoryType.PCI_P2PDMA;
}

/** What a put did, for callers and traces. */
export interface PutResult {
  refcount: number;
  /** FS_DAX: the page went back to refcount 1 and truncate/hole-punch waiters were woken. */
  woke: boolean;
  /** The page reached its free state and page_free ran. */
  freed: boolean;
}

// ref: mm/memremap.c zone_device_page_init
export function* zoneDevicePageInit(k: Kernel, pfn: number): KernelPath<void> {
  const pgmap = pgmapOfPage(k, pfn, "zone_device_page_init");
  if (!pgmap) return;
  // WARN_ON_ONCE if the pgmap is already dying, but it proceeds. Before v5.19 the page's reference from
  // memremap_pages() was all it needed (and the driver's get_page() was all there was to this).
  if (!k.variant.pageRefsHoldPgmap) {
    if (!pgmap.ref.tryGetLive(allocatedPageHolder(pfn))) {
      warn(k, "zone_device_page_init", "percpu_ref_tryget_live failed: pgmap is dying");
    }
    pgmapTouch(k, pgmap);
  }
  const page = pageRead(k, pfn, "zone_device_page_init");
  pageWrite(k, pfn, "refcount", k.variant.deviceFreeAtRefcountOne ? page.refcount + 1 : 1, "zone_device_page_init");
  pageWrite(k, pfn, "flags", page.flags | flagBit(PG_locked), "zone_device_page_init: lock_page");
  yield step("zone_device_page_init");
}

// ref: include/linux/mm.h get_page
export function* getPage(k: Kernel, pfn: number): KernelPath<number> {
  const head = compoundHeadPfn(k, pfn, "get_page");
  const page = pageRead(k, head, "get_page");
  if (page.refcount <= 0) {
    k.sanitizer.report({ kind: "idle-page-touched", at: "get_page", pfn: head, detail: `get_page on pfn 0x${head.toString(16)} with refcount ${page.refcount}` });
  }
  pageWrite(k, head, "refcount", page.refcount + 1, "get_page");
  yield step("get_page: atomic_inc(&page->_refcount)");
  return page.refcount + 1;
}

function compoundHeadPfn(k: Kernel, pfn: number, at: string): number {
  const page = pageRead(k, pfn, at);
  return page.compoundHead >= 0 ? page.compoundHead : pfn;
}

/**
 * put_page on a ZONE_DEVICE page: FS_DAX pages are intercepted while devmap_managed_key is on (decrement,
 * wake at 1); everything else drops to zero and frees (free_zone_device_page). Variants whose page references
 * hold the pgmap (5.4, 5.18: PRIVATE/COHERENT pages devmap-managed too and free at 1, __put_page at 0) take the
 * era's put_page in mm/swap.ts.
 */
// ref: include/linux/mm.h put_page, put_devmap_managed_page_refs; mm/memremap.c __put_devmap_managed_page_refs
export function* putPage(k: Kernel, pfn: number, refs = 1): KernelPath<PutResult> {
  if (k.variant.pageRefsHoldPgmap) {
    // The era's put_page(), whose __put_page() gives a device page's pgmap reference back at 0.
    const out = yield* putPageEra(k, pfn, refs);
    return { refcount: out.refcount, woke: out.woke === true, freed: out.freed === true };
  }
  const head = compoundHeadPfn(k, pfn, "put_page");
  const page = pageRead(k, head, "put_page");
  const pgmap = k.zoneNames[page.zone] === "Device" && page.pgmap ? pgmapUse(k, k.pgmaps.byId.get(page.pgmap)!, "put_page") : null;
  const count = page.refcount - refs;
  pageWrite(k, head, "refcount", count, "put_page");
  yield step("put_page: page_ref_sub_return");
  if (pgmap && pgmap.type === MemoryType.FS_DAX && k.pgmaps.devmapManagedKey > 0 && k.config.enabled("FS_DAX")) {
    return { refcount: count, woke: count === 1, freed: false };
  }
  if (count === 0 && pgmap) {
    const freed = yield* freeZoneDevicePage(k, head, pgmap);
    return { refcount: pageRead(k, head, "put_page").refcount, woke: false, freed };
  }
  return { refcount: count, woke: false, freed: false };
}

/** free_zone_device_page; true when ops->page_free ran (false: the WARN_ON_ONCE early return). */
// ref: mm/memremap.c free_zone_device_page
function* freeZoneDevicePage(k: Kernel, pfn: number, pgmap: DevPagemap): KernelPath<boolean> {
  if (!pgmap.ops?.pageFree) {
    warn(k, "free_zone_device_page", `page 0x${pfn.toString(16)} of ${pgmap.device} reached refcount 0 but its pgmap has no page_free`);
    return false;
  }
  const flags = pageRead(k, pfn, "free_zone_device_page").flags;
  pageWrite(k, pfn, "flags", flags - (flags % 2), "free_zone_device_page: page->mapping = NULL");
  pgmap.ops.pageFree(pfn);
  yield step("free_zone_device_page: ops->page_free");
  if (refcountOneType(pgmap.type)) {
    pageWrite(k, pfn, "refcount", 1, "free_zone_device_page: set_page_count(page, 1)");
  } else {
    yield* putDevPagemap(k, pgmap, allocatedPageHolder(pfn));
  }
  return true;
}


/** The page's lifecycle state as the sanitizer sees it (no check recorded). */
export function pageStateOf(k: Kernel, pfn: number): PageState {
  return k.memmap.state(pfn);
}

