/**
 * Memory hot-plug of RAM: add, online, offline, remove (mm/memory_hotplug.c, drivers/base/memory.c,
 * arch add_pages / arch_add_memory).
 */

import type { MemoryBlock } from "../drivers/base/memory.ts";
import { E2BIG, EBUSY, EEXIST, EINVAL, ERANGE, type Errno } from "../errno.ts";
import type { Kernel, OnlineType } from "../kernel.ts";
import {
  IORESOURCE_BUSY,
  IORESOURCE_SYSRAM_DRIVER_MANAGED,
  IORESOURCE_SYSTEM_RAM,
  type Resource,
  releaseMemRegionAdjustable,
  requestRegion,
  walkSystemRamRange,
} from "../resource.ts";
import { flagBit, PageState, PG_reserved, pageValue } from "./memmap.ts";
import { nodeEndPfn, type PglistData, type Zone, zoneEndPfn, zoneIntersects, zoneIsEmpty } from "./mmzone.ts";
import { SECTION_IS_ONLINE } from "./sparse.ts";
import { noteMemmapWrite, sectionDeactivate, sparseAddSection } from "./sparse_hotplug.ts";
import { MHP_RAM, type MhpParams } from "./sparse_vmemmap.ts";
import { vmemAltmapOffset } from "./vmem_altmap.ts";

/**
 * The footprint key of the memory layout (mem_hotplug_lock and what it protects: sections, zone spans,
 * max_pfn, the iomem tree): hot-plug paths write it, so the explorer orders them against each other.
 */
export const HOTPLUG_KEY = "mem_hotplug";

// ref: mm/memory_hotplug.c pfn_to_online_page (v6.1); include/linux/memory_hotplug.h pfn_to_online_page (v5.4 macro)
export function pfnToOnlinePage(k: Kernel, pfn: number): boolean {
  const nr = k.sections.pfnToSectionNr(pfn);
  if (nr >= k.geo.nrMemSections) return false;
  if (!k.sections.online(nr)) return false;
  // 5.4's macro stopped here: every pfn of an online section, device pfns sharing it with boot RAM included.
  if (!k.variant.pfnToOnlinePageKnowsZoneDevice) return true;
  if (!k.sections.pfnSectionValid(nr, pfn)) return false;
  // Only sections where ZONE_DEVICE and online memory meet take the slow path through get_dev_pagemap().
  if (!k.sections.onlineDevice(nr)) return true;
  // Seed 002's alternative: answer from a per-sub-section bitmap, touching neither struct page nor pgmap.
  if (k.variant.subsectionZoneDeviceMap) return !k.zoneDeviceSubsections.has(Math.floor(pfn / k.geo.pagesPerSubsection));
  return !k.devPagemapLive(pfn);
}

// ref: mm/memory_hotplug.c check_pfn_span
export function checkPfnSpan(k: Kernel, pfn: number, nrPages: number): Errno {
  // SPARSEMEM_VMEMMAP: sub-section granularity, else whole sections.
  const minAlign = k.config.enabled("SPARSEMEM_VMEMMAP") ? k.geo.pagesPerSubsection : k.geo.pagesPerSection;
  if (pfn % minAlign !== 0 || nrPages % minAlign !== 0) return -EINVAL;
  return 0;
}

/** PHYSMEM_END: the last physical address the arch can hot-plug. */
export function physmemEnd(k: Kernel): number {
  return k.geo.physLimit - 1;
}

// ref: mm/memory_hotplug.c mhp_range_allowed
export function mhpRangeAllowed(k: Kernel, start: number, size: number): boolean {
  const end = start + size;
  if (start < end && start >= 0 && end - 1 <= physmemEnd(k)) return true;
  // %#llx prints 0 without the 0x prefix.
  const x = (n: number) => (n === 0 ? "0" : `0x${n.toString(16)}`);
  k.printk(`Hotplug memory [${x(start)}-${x(end)}] exceeds maximum addressable range [${x(0)}-${x(physmemEnd(k))}]`);
  return false;
}

// ref: mm/memory_hotplug.c __add_pages
export function addPagesGeneric(k: Kernel, nid: number, pfn: number, nrPages: number, params: MhpParams): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  const altmap = params.altmap;
  if (altmap) {
    // The altmap must start where the range starts and its reserve + free must fit inside it.
    if (altmap.basePfn !== pfn || vmemAltmapOffset(altmap) > nrPages) {
      k.printk("memory add fail, invalid altmap");
      return -EINVAL;
    }
    altmap.alloc = 0;
  }
  if (checkPfnSpan(k, pfn, nrPages)) {
    k.printk(`WARNING: Misaligned __add_pages start: 0x${pfn.toString(16)} end: #${(pfn + nrPages - 1).toString(16)}`);
    return -EINVAL;
  }
  const end = pfn + nrPages;
  let err: Errno = 0;
  for (let cur = pfn; cur < end; ) {
    // Up to the next section boundary; already-added chunks are not rolled back on error.
    const sectionEnd = (k.sections.pfnToSectionNr(cur) + 1) * k.geo.pagesPerSection;
    const n = Math.min(end, sectionEnd) - cur;
    err = sparseAddSection(k, nid, cur, n, params);
    if (err) break;
    cur += n;
  }
  return err;
}

// ref: arch/x86/mm/init_64.c update_end_of_memory_vars
function updateEndOfMemoryVars(k: Kernel, start: number, size: number): void {
  const endPfn = Math.ceil((start + size) / k.geo.pageSize);
  if (endPfn > k.maxPfn) {
    k.maxPfn = endPfn;
    k.maxLowPfn = endPfn;
    k.highMemory = k.pfnPhys(endPfn);
  }
}

/**
 * The arch's add_pages: x86 checks PHYSMEM_END, only WARNs when __add_pages fails, and raises max_pfn unless
 * a pgmap is being added (6.1.192; v6.1.0 and older raised it for device memory too); powerpc raises it on
 * success; arm64 has no add_pages of its own.
 */
// ref: arch/x86/mm/init_64.c add_pages, arch/powerpc/mm/mem.c add_pages, mm/memory_hotplug.c __add_pages
export function addPages(k: Kernel, nid: number, pfn: number, nrPages: number, params: MhpParams, hasPgmap: boolean): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  const start = k.pfnPhys(pfn);
  const size = k.pfnPhys(nrPages);
  if (k.arch.arch === "x86_64") {
    if (start + size - 1 > physmemEnd(k)) return -ERANGE;
    const err = addPagesGeneric(k, nid, pfn, nrPages, params);
    if (!hasPgmap || k.variant.x86MaxPfnRaisedByDevice) updateEndOfMemoryVars(k, start, size);
    return err;
  }
  const err = addPagesGeneric(k, nid, pfn, nrPages, params);
  if (!err && k.arch.arch === "ppc64") updateEndOfMemoryVars(k, start, size);
  return err;
}

/** arch_add_memory: the direct map (not modelled) plus add_pages; arm64 raises max_pfn itself on success. */
// ref: arch/x86/mm/init_64.c arch_add_memory, arch/arm64/mm/mmu.c arch_add_memory, arch/powerpc/mm/mem.c arch_add_memory
export function archAddMemory(
  k: Kernel,
  nid: number,
  start: number,
  size: number,
  params: MhpParams = MHP_RAM,
  hasPgmap = false,
): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  const pfn = k.physPfn(start);
  const nr = size / k.geo.pageSize;
  const err = addPages(k, nid, pfn, nr, params, hasPgmap);
  if (!err && k.arch.arch === "arm64") {
    const end = Math.ceil((start + size) / k.geo.pageSize);
    if (end > k.maxPfn) {
      k.maxPfn = end;
      k.highMemory = k.pfnPhys(end);
    }
    k.maxLowPfn = k.maxPfn;
  }
  return err;
}

// ref: mm/memory_hotplug.c __remove_pages
export function removePages(k: Kernel, pfn: number, nrPages: number, params: MhpParams = MHP_RAM): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  if (checkPfnSpan(k, pfn, nrPages)) return -EINVAL;
  const end = pfn + nrPages;
  for (let cur = pfn; cur < end; ) {
    const sectionEnd = (k.sections.pfnToSectionNr(cur) + 1) * k.geo.pagesPerSection;
    const n = Math.min(end, sectionEnd) - cur;
    sectionDeactivate(k, cur, n, params);
    cur += n;
  }
  return 0;
}

// ref: mm/memory_hotplug.c resize_zone_range
function resizeZoneRange(zone: Zone, startPfn: number, nrPages: number): void {
  const oldEnd = zoneEndPfn(zone);
  if (zoneIsEmpty(zone) || startPfn < zone.zoneStartPfn) zone.zoneStartPfn = startPfn;
  zone.spannedPages = Math.max(startPfn + nrPages, oldEnd) - zone.zoneStartPfn;
}

// ref: mm/memory_hotplug.c resize_pgdat_range
function resizePgdatRange(pgdat: PglistData, startPfn: number, nrPages: number): void {
  const oldEnd = nodeEndPfn(pgdat);
  if (!pgdat.nodeSpannedPages || startPfn < pgdat.nodeStartPfn) pgdat.nodeStartPfn = startPfn;
  pgdat.nodeSpannedPages = Math.max(startPfn + nrPages, oldEnd) - pgdat.nodeStartPfn;
}

/**
 * Grow the zone and node spans over [startPfn, startPfn+nrPages) and initialise the struct pages there as
 * reserved pages of the zone (MEMINIT_HOTPLUG). ZONE_DEVICE also taints partially covered sections.
 */
// ref: mm/memory_hotplug.c move_pfn_range_to_zone
export function movePfnRangeToZone(k: Kernel, zone: Zone, startPfn: number, nrPages: number, initMemmap = true): void {
  k.sanitizer.write(HOTPLUG_KEY);
  const pgdat = k.nodeData(zone.nid);
  resizeZoneRange(zone, startPfn, nrPages);
  resizePgdatRange(pgdat, startPfn, nrPages);
  if (zone.name === "Device") {
    const ps = k.geo.pagesPerSection;
    if (startPfn % ps !== 0) k.sections.taintZoneDevice(k.sections.pfnToSectionNr(startPfn));
    if ((startPfn + nrPages) % ps !== 0) k.sections.taintZoneDevice(k.sections.pfnToSectionNr(startPfn + nrPages));
  }
  if (initMemmap) {
    k.memmap.setRange(
      startPfn,
      startPfn + nrPages,
      pageValue({ zone: zone.idx, node: zone.nid, refcount: 1, flags: flagBit(PG_reserved) }),
    );
  }
}

function findSmallestSectionPfn(k: Kernel, nid: number, zone: Zone, start: number, end: number): number {
  for (let pfn = start; pfn < end; pfn += k.geo.pagesPerSubsection) {
    if (!pfnToOnlinePage(k, pfn)) continue;
    const page = k.memmap.get(pfn);
    if (page.node !== nid || page.zone !== zone.idx) continue;
    return pfn;
  }
  return 0;
}

function findBiggestSectionPfn(k: Kernel, nid: number, zone: Zone, start: number, end: number): number {
  for (let pfn = end - 1; pfn >= start; pfn -= k.geo.pagesPerSubsection) {
    if (!pfnToOnlinePage(k, pfn)) continue;
    const page = k.memmap.get(pfn);
    if (page.node !== nid || page.zone !== zone.idx) continue;
    return pfn;
  }
  return 0;
}

// ref: mm/memory_hotplug.c shrink_zone_span
function shrinkZoneSpan(k: Kernel, zone: Zone, startPfn: number, endPfn: number): void {
  if (zone.zoneStartPfn === startPfn) {
    const pfn = findSmallestSectionPfn(k, zone.nid, zone, endPfn, zoneEndPfn(zone));
    if (pfn) {
      zone.spannedPages = zoneEndPfn(zone) - pfn;
      zone.zoneStartPfn = pfn;
    } else {
      zone.zoneStartPfn = 0;
      zone.spannedPages = 0;
    }
  } else if (zoneEndPfn(zone) === endPfn) {
    const pfn = findBiggestSectionPfn(k, zone.nid, zone, zone.zoneStartPfn, startPfn);
    if (pfn) zone.spannedPages = pfn - zone.zoneStartPfn + 1;
    else {
      zone.zoneStartPfn = 0;
      zone.spannedPages = 0;
    }
  }
}

// ref: mm/memory_hotplug.c update_pgdat_span
function updatePgdatSpan(pgdat: PglistData): void {
  let start = 0;
  let end = 0;
  for (const zone of pgdat.zones) {
    if (!zone.spannedPages) continue;
    const zEnd = zoneEndPfn(zone);
    if (!end) {
      start = zone.zoneStartPfn;
      end = zEnd;
      continue;
    }
    if (zEnd > end) end = zEnd;
    if (zone.zoneStartPfn < start) start = zone.zoneStartPfn;
  }
  pgdat.nodeStartPfn = start;
  pgdat.nodeSpannedPages = end - start;
}

// ref: mm/memory_hotplug.c remove_pfn_range_from_zone
export function removePfnRangeFromZone(k: Kernel, zone: Zone, startPfn: number, nrPages: number): void {
  k.sanitizer.write(HOTPLUG_KEY);
  // The struct pages are poisoned: anything that still reads them reads garbage.
  k.memmap.setRange(startPfn, startPfn + nrPages, pageValue({ state: PageState.TornDown }));
  noteMemmapWrite(k, startPfn, nrPages);
  // ZONE_DEVICE spans never shrink.
  if (zone.name === "Device") return;
  shrinkZoneSpan(k, zone, startPfn, startPfn + nrPages);
  updatePgdatSpan(k.nodeData(zone.nid));
}

// ref: mm/memory_hotplug.c default_kernel_zone_for_pfn
function defaultKernelZoneForPfn(k: Kernel, nid: number, startPfn: number, nrPages: number): Zone {
  const pgdat = k.nodeData(nid);
  const normal = pgdat.zones.find((z) => z.name === "Normal")!;
  for (const zone of pgdat.zones) {
    if (zone.idx >= normal.idx) break;
    if (zoneIntersects(zone, startPfn, nrPages)) return zone;
  }
  return normal;
}

// ref: mm/memory_hotplug.c default_zone_for_pfn
function defaultZoneForPfn(k: Kernel, nid: number, startPfn: number, nrPages: number): Zone {
  const kernelZone = defaultKernelZoneForPfn(k, nid, startPfn, nrPages);
  const movable = k.zone(nid, "Movable")!;
  const inKernel = zoneIntersects(kernelZone, startPfn, nrPages);
  const inMovable = zoneIntersects(movable, startPfn, nrPages);
  if (inKernel !== inMovable) return inKernel ? kernelZone : movable;
  return k.movableNode ? movable : kernelZone;
}

/**
 * zone_for_pfn_range. The auto-movable policy is modelled without memory groups: it onlines Movable while
 * the MOVABLE:KERNEL_EARLY ratio (auto_movable_ratio, default 301%) allows it.
 */
// ref: mm/memory_hotplug.c zone_for_pfn_range, auto_movable_zone_for_pfn
export function zoneForPfnRange(k: Kernel, onlineType: OnlineType, nid: number, startPfn: number, nrPages: number): Zone {
  if (onlineType === "online_kernel") return defaultKernelZoneForPfn(k, nid, startPfn, nrPages);
  if (onlineType === "online_movable") return k.zone(nid, "Movable")!;
  if (k.onlinePolicy === "auto-movable") {
    let kernelEarly = 0;
    let movable = 0;
    for (const p of k.nodes.values()) {
      for (const z of p.zones) {
        if (z.name === "Movable") movable += z.presentPages;
        else if (z.name !== "Device") kernelEarly += z.presentEarlyPages;
      }
    }
    if ((movable + nrPages) * 100 <= kernelEarly * 301) return k.zone(nid, "Movable")!;
    return defaultKernelZoneForPfn(k, nid, startPfn, nrPages);
  }
  return defaultZoneForPfn(k, nid, startPfn, nrPages);
}

// ref: mm/memory_hotplug.c online_pages
export function onlinePages(k: Kernel, pfn: number, nrPages: number, zone: Zone): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  const pb = k.geo.pagesPerPageblock;
  if (!nrPages || pfn % pb !== 0 || (pfn + nrPages) % k.geo.pagesPerSection !== 0) return -EINVAL;
  movePfnRangeToZone(k, zone, pfn, nrPages);
  // online_pages_range: hand everything to the buddy allocator (generic_online_page).
  k.memmap.setRange(pfn, pfn + nrPages, pageValue({ zone: zone.idx, node: zone.nid, refcount: 0 }));
  zone.buddy.freeRange(pfn, pfn + nrPages);
  zone.managedPages += nrPages;
  // online_mem_sections
  for (let p = pfn; p < pfn + nrPages; p += k.geo.pagesPerSection) {
    const nr = k.sections.pfnToSectionNr(p);
    if (k.sections.valid(nr)) k.sections.setFlags(nr, k.sections.flags(nr) | SECTION_IS_ONLINE);
  }
  // adjust_present_page_count
  if (k.sections.early(k.sections.pfnToSectionNr(pfn))) zone.presentEarlyPages += nrPages;
  zone.presentPages += nrPages;
  const pgdat = k.nodeData(zone.nid);
  pgdat.nodePresentPages += nrPages;
  pgdat.online = true;
  return 0;
}

// ref: mm/memory_hotplug.c offline_pages
export function offlinePages(k: Kernel, startPfn: number, nrPages: number, zone: Zone): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  const endPfn = startPfn + nrPages;
  const pb = k.geo.pagesPerPageblock;
  if (!nrPages || startPfn % pb !== 0 || endPfn % k.geo.pagesPerSection !== 0) return -EINVAL;
  // "memory holes": every page must be busy System RAM in iomem.
  let systemRamPages = 0;
  walkSystemRamRange(k.iomem, startPfn, nrPages, k.geo.pageSize, (_pfn, n) => {
    systemRamPages += n;
    return 0;
  });
  if (systemRamPages !== nrPages) return -EINVAL;
  // Every page must be free (the model has no movable allocations to migrate): otherwise "unmovable page".
  let busy = false;
  for (const run of k.memmap.runs(startPfn, endPfn)) {
    if (run.value.state === PageState.Initialised && run.value.refcount !== 0) busy = true;
  }
  if (busy) return -EBUSY;
  const taken = zone.buddy.takeRange(startPfn, endPfn);
  zone.managedPages -= taken;
  // adjust_present_page_count
  if (k.sections.early(k.sections.pfnToSectionNr(startPfn))) zone.presentEarlyPages -= nrPages;
  zone.presentPages -= nrPages;
  const pgdat = k.nodeData(zone.nid);
  pgdat.nodePresentPages -= nrPages;
  // offline_mem_sections
  for (let p = startPfn; p < endPfn; p += k.geo.pagesPerSection) {
    const nr = k.sections.pfnToSectionNr(p);
    k.sections.setFlags(nr, k.sections.flags(nr) & ~SECTION_IS_ONLINE);
  }
  removePfnRangeFromZone(k, zone, startPfn, nrPages);
  return 0;
}

/** A memory block's pfn range. */
export function blockPfns(k: Kernel, mem: MemoryBlock): { start: number; nr: number } {
  return { start: k.sections.sectionNrToPfn(mem.startSectionNr), nr: k.memoryBlocks.blockSize / k.geo.pageSize };
}

// ref: drivers/base/memory.c memory_block_online
export function memoryBlockOnline(k: Kernel, mem: MemoryBlock, onlineType: OnlineType): Errno {
  const { start, nr } = blockPfns(k, mem);
  const zone = zoneForPfnRange(k, onlineType, mem.nid, start, nr);
  const rc = onlinePages(k, start, nr, zone);
  if (rc) return rc;
  mem.zone = zone;
  mem.state = "online";
  return 0;
}

// ref: drivers/base/memory.c memory_block_offline
export function memoryBlockOffline(k: Kernel, mem: MemoryBlock): Errno {
  // A block spanning several zones (mem->zone == NULL) cannot be offlined.
  if (!mem.zone) return -EINVAL;
  const { start, nr } = blockPfns(k, mem);
  const rc = offlinePages(k, start, nr, mem.zone);
  if (rc) return rc;
  mem.zone = null;
  mem.state = "offline";
  return 0;
}

/** Writing to /sys/devices/system/memory/memoryN/state. */
// ref: drivers/base/memory.c state_store, memory_subsys_online, memory_subsys_offline
export function memoryBlockStateStore(k: Kernel, id: number, value: string): Errno {
  const mem = k.memoryBlocks.get(id);
  if (!mem) return -EINVAL;
  const onlineType = value.trim() as OnlineType;
  if (!["offline", "online", "online_kernel", "online_movable"].includes(onlineType)) return -EINVAL;
  if (onlineType === "offline") {
    if (mem.state === "offline") return -EINVAL;
    return memoryBlockOffline(k, mem);
  }
  if (mem.state === "online") return -EINVAL;
  return memoryBlockOnline(k, mem, onlineType);
}

// ref: mm/memory_hotplug.c check_hotplug_memory_range
export function checkHotplugMemoryRange(k: Kernel, start: number, size: number): Errno {
  const bs = k.memoryBlocks.blockSize;
  if (!size || start % bs !== 0 || size % bs !== 0) return -EINVAL;
  return 0;
}

// ref: mm/memory_hotplug.c register_memory_resource
export function registerMemoryResource(
  k: Kernel,
  start: number,
  size: number,
  name: string,
): { res: Resource } | { err: Errno } {
  let flags = IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY;
  if (name !== "System RAM") flags |= IORESOURCE_SYSRAM_DRIVER_MANAGED;
  if (!mhpRangeAllowed(k, start, size)) return { err: -E2BIG };
  const res = requestRegion(k.iomem, start, size, name, flags >>> 0);
  if (!res) return { err: -EEXIST };
  return { res };
}

// ref: mm/memory_hotplug.c add_memory_resource
export function addMemoryResource(k: Kernel, nid: number, res: Resource): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  const start = res.start;
  const size = res.end - res.start + 1;
  const rc = checkHotplugMemoryRange(k, start, size);
  if (rc) return rc;
  k.nodeData(nid);
  const err = archAddMemory(k, nid, start, size);
  if (err) return err;
  // create_memory_block_devices: new blocks start offline.
  const bs = k.memoryBlocks.blockSize;
  const newBlocks: MemoryBlock[] = [];
  for (let a = start; a < start + size; a += bs) {
    const sectionNr = k.sections.pfnToSectionNr(k.physPfn(a));
    const id = k.memoryBlocks.idForSection(sectionNr);
    if (k.memoryBlocks.get(id)) {
      removePages(k, k.physPfn(start), size / k.geo.pageSize);
      for (const b of newBlocks) k.memoryBlocks.remove(b.id);
      return -EEXIST;
    }
    const block: MemoryBlock = { id, startSectionNr: sectionNr, state: "offline", nid, zone: null, nrVmemmapPages: 0, early: false };
    k.memoryBlocks.add(block);
    newBlocks.push(block);
  }
  if (k.autoOnlineBlocks !== "offline") {
    for (const b of newBlocks) memoryBlockOnline(k, b, k.autoOnlineBlocks);
  }
  return 0;
}

/** add_memory(nid, start, size, MHP_NONE) / add_memory_driver_managed(...). */
// ref: mm/memory_hotplug.c __add_memory, add_memory_driver_managed
export function addMemory(k: Kernel, nid: number, start: number, size: number, name = "System RAM"): Errno {
  k.sanitizer.write(HOTPLUG_KEY);
  if (name !== "System RAM" && !(name.startsWith("System RAM (") && name.endsWith(")"))) return -EINVAL;
  const r = registerMemoryResource(k, start, size, name);
  if ("err" in r) return r.err;
  const rc = addMemoryResource(k, nid, r.res);
  if (rc) releaseMemRegionAdjustable(k.iomem, start, size);
  return rc;
}

// ref: mm/memory_hotplug.c try_remove_memory
export function removeMemory(k: Kernel, start: number, size: number): Errno {
  const rc = checkHotplugMemoryRange(k, start, size);
  if (rc) return rc;
  const bs = k.memoryBlocks.blockSize;
  const ids: number[] = [];
  for (let a = start; a < start + size; a += bs) {
    const id = k.memoryBlocks.idForSection(k.sections.pfnToSectionNr(k.physPfn(a)));
    const mem = k.memoryBlocks.get(id);
    if (mem && mem.state !== "offline") return -EBUSY;
    if (mem) ids.push(id);
  }
  for (const id of ids) k.memoryBlocks.remove(id);
  removePages(k, k.physPfn(start), size / k.geo.pageSize);
  releaseMemRegionAdjustable(k.iomem, start, size);
  return 0;
}
