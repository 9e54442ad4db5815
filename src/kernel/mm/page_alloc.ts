/**
 * Boot-time zone setup and the hand-over of boot memory to the buddy allocator
 * (mm/page_alloc.c free_area_init, calculate_node_totalpages, memmap_init; mm/memblock.c memblock_free_all;
 * arch zone_sizes_init).
 */
import type { Kernel } from "../kernel.ts";
import { memPfnRanges } from "./memblock.ts";
import { flagBit, PG_reserved, pageValue } from "./memmap.ts";
import { populatedZone, type Zone, type ZoneName, zoneEndPfn } from "./mmzone.ts";
import { SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_IS_ONLINE } from "./sparse.ts";

const hex18 = (x: number) => "0x" + x.toString(16).padStart(16, "0");

/** The max_zone_pfns[] each arch hands to free_area_init. */
// ref: arch/x86/mm/init.c zone_sizes_init, arch/arm64/mm/init.c zone_sizes_init, arch/powerpc/mm/mem.c paging_init
export function maxZonePfns(k: Kernel): Map<ZoneName, number> {
  const out = new Map<ZoneName, number>();
  const pageShift = k.arch.pageShift;
  const rule = k.arch.zoneLimits;
  if (rule.kind === "x86_64") {
    const MAX_DMA_PFN = (16 * 2 ** 20) / 2 ** pageShift;
    const MAX_DMA32_PFN = 2 ** (32 - pageShift);
    if (k.zoneNames.includes("DMA")) out.set("DMA", Math.min(MAX_DMA_PFN, k.maxLowPfn));
    if (k.zoneNames.includes("DMA32")) out.set("DMA32", Math.min(MAX_DMA32_PFN, k.maxLowPfn));
    out.set("Normal", k.maxLowPfn);
  } else if (rule.kind === "arm64") {
    // No DT dma-ranges and no IORT limit: zone_dma_bits = min3(32, 64, 64) = 32.
    const dma32Limit = maxZonePhys(k, 32);
    if (k.zoneNames.includes("DMA")) out.set("DMA", Math.floor(dma32Limit / 2 ** pageShift));
    if (k.zoneNames.includes("DMA32")) out.set("DMA32", Math.floor(dma32Limit / 2 ** pageShift));
    out.set("Normal", k.maxPfn);
  } else {
    out.set("Normal", k.maxLowPfn);
  }
  return out;
}

// ref: arch/arm64/mm/init.c max_zone_phys
function maxZonePhys(k: Kernel, zoneBits: number): number {
  const U32_MAX = 2 ** 32 - 1;
  let zoneMask = 2 ** zoneBits - 1;
  const physStart = k.memblock.memory[0]?.base ?? 0;
  const last = k.memblock.memory[k.memblock.memory.length - 1];
  const dramEnd = last ? last.base + last.size : 0;
  if (physStart > U32_MAX) zoneMask = Number.MAX_SAFE_INTEGER;
  else if (physStart > zoneMask) zoneMask = U32_MAX;
  return Math.min(zoneMask, dramEnd - 1) + 1;
}

// ref: mm/page_alloc.c free_area_init
export function freeAreaInit(k: Kernel, maxZonePfn: Map<ZoneName, number>): void {
  const lowest = new Map<ZoneName, number>();
  const highest = new Map<ZoneName, number>();
  let startPfn = k.physPfn(k.memblock.memory[0]?.base ?? 0);
  for (const name of k.zoneNames) {
    if (name === "Movable") continue;
    const endPfn = Math.max(maxZonePfn.get(name) ?? 0, startPfn);
    lowest.set(name, startPfn);
    highest.set(name, endPfn);
    startPfn = endPfn;
  }
  // find_zone_movable_pfns_for_nodes: kernelcore=/movablecore= are not modelled, so ZONE_MOVABLE starts empty.

  k.printk("Zone ranges:");
  for (const name of k.zoneNames) {
    if (name === "Movable") continue;
    const lo = lowest.get(name)!;
    const hi = highest.get(name)!;
    const label = `  ${name.padEnd(8)} `;
    if (lo === hi) k.printk(`${label}empty`);
    else k.printk(`${label}[mem ${hex18(k.pfnPhys(lo))}-${hex18(k.pfnPhys(hi) - 1)}]`);
  }
  k.printk("Movable zone start for each node");
  k.printk("Early memory node ranges");
  const ranges = memPfnRanges(k.memblock.memory, k.geo.pageSize);
  for (const r of ranges) {
    k.printk(`  node ${String(r.nid).padStart(3)}: [mem ${hex18(k.pfnPhys(r.startPfn))}-${hex18(k.pfnPhys(r.endPfn) - 1)}]`);
    k.sections.subsectionMapInit(r.startPfn, r.endPfn - r.startPfn);
  }

  for (const nid of [...new Set(ranges.map((r) => r.nid))].sort((a, b) => a - b)) {
    freeAreaInitNode(k, nid, lowest, highest);
  }
  memmapInit(k);
}

// ref: mm/page_alloc.c free_area_init_node
function freeAreaInitNode(k: Kernel, nid: number, lowest: Map<ZoneName, number>, highest: Map<ZoneName, number>): void {
  const pgdat = k.nodeData(nid);
  const mine = memPfnRanges(k.memblock.memory, k.geo.pageSize, nid);
  const startPfn = Math.min(...mine.map((r) => r.startPfn));
  const endPfn = Math.max(...mine.map((r) => r.endPfn));
  pgdat.nodeStartPfn = startPfn;
  pgdat.online = true;
  k.printk(`Initmem setup node ${nid} [mem ${hex18(k.pfnPhys(startPfn))}-${hex18(endPfn ? k.pfnPhys(endPfn) - 1 : 0)}]`);

  // ref: mm/page_alloc.c calculate_node_totalpages
  let total = 0;
  let realTotal = 0;
  for (const zone of pgdat.zones) {
    const lo = lowest.get(zone.name) ?? 0;
    const hi = highest.get(zone.name) ?? 0;
    // zone_spanned_pages_in_node
    let zs = clamp(startPfn, lo, hi);
    let ze = clamp(endPfn, lo, hi);
    let spanned = 0;
    if (!(ze < startPfn || zs > endPfn)) {
      ze = Math.min(ze, endPfn);
      zs = Math.max(zs, startPfn);
      spanned = ze - zs;
    }
    // zone_absent_pages_in_node
    let absent = ze - zs;
    if (spanned > 0) {
      for (const r of mine) absent -= clamp(r.endPfn, zs, ze) - clamp(r.startPfn, zs, ze);
    } else {
      absent = 0;
    }
    zone.zoneStartPfn = spanned ? zs : 0;
    zone.spannedPages = spanned;
    zone.presentPages = spanned - absent;
    zone.presentEarlyPages = zone.presentPages;
    total += spanned;
    realTotal += spanned - absent;
  }
  pgdat.nodeSpannedPages = total;
  pgdat.nodePresentPages = realTotal;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

// ref: mm/page_alloc.c memmap_init, memmap_init_zone_range, init_unavailable_range
function memmapInit(k: Kernel): void {
  let holePfn = 0;
  let lastZone: Zone | null = null;
  let lastEnd = 0;
  for (const r of memPfnRanges(k.memblock.memory, k.geo.pageSize)) {
    const pgdat = k.nodeData(r.nid);
    for (const zone of pgdat.zones) {
      if (!populatedZone(zone)) continue;
      const start = clamp(r.startPfn, zone.zoneStartPfn, zoneEndPfn(zone));
      const end = clamp(r.endPfn, zone.zoneStartPfn, zoneEndPfn(zone));
      lastZone = zone;
      if (start >= end) continue;
      // memmap_init_range(MEMINIT_EARLY): __init_single_page leaves refcount 1.
      k.memmap.setRange(start, end, pageValue({ zone: zone.idx, node: zone.nid, refcount: 1, mapcount: 0 }));
      if (holePfn < start) initUnavailableRange(k, holePfn, start, zone);
      holePfn = end;
    }
    lastEnd = r.endPfn;
  }
  const end = Math.ceil(lastEnd / k.geo.pagesPerSection) * k.geo.pagesPerSection;
  if (lastZone && holePfn < end) initUnavailableRange(k, holePfn, end, lastZone);
}

function initUnavailableRange(k: Kernel, spfn: number, epfn: number, zone: Zone): void {
  const block = k.geo.pagesPerPageblock;
  let count = 0;
  for (let pfn = spfn; pfn < epfn; ) {
    const blockStart = pfn - (pfn % block);
    const blockEnd = Math.min(blockStart + block, epfn);
    // Only pageblocks whose first pfn has a memmap get initialised.
    if (k.sections.pfnValid(blockStart)) {
      k.memmap.setRange(
        pfn,
        blockEnd,
        pageValue({ zone: zone.idx, node: zone.nid, refcount: 1, flags: flagBit(PG_reserved) }),
      );
      count += blockEnd - pfn;
    }
    pfn = blockEnd;
  }
  if (count) k.printk(`On node ${zone.nid}, zone ${zone.name}: ${count} pages in unavailable ranges`);
}

/** memblocks_present + sparse_init: every section with boot memory gets an early, online memmap. */
// ref: mm/sparse.c memblocks_present, memory_present, sparse_init_nid
export function sparseInit(k: Kernel): void {
  for (const r of memPfnRanges(k.memblock.memory, k.geo.pageSize)) {
    const first = k.sections.pfnToSectionNr(r.startPfn);
    const last = k.sections.pfnToSectionNr(r.endPfn - 1);
    for (let nr = first; nr <= last; nr++) {
      if (!k.sections.present(nr)) k.sections.setNid(nr, r.nid);
      k.sections.markPresent(nr);
      k.sections.setFlags(nr, k.sections.flags(nr) | SECTION_IS_ONLINE);
    }
  }
  for (const nr of [...k.sections.presentSections()]) {
    k.sections.setUsage(nr, 2);
    k.sections.setFlags(nr, k.sections.flags(nr) | SECTION_IS_EARLY | SECTION_HAS_MEM_MAP);
  }
}

/**
 * memblock_free_all: reserved ranges keep PG_reserved and refcount 1, everything else is freed into its
 * zone's buddy allocator and counted as managed.
 */
// ref: mm/memblock.c memblock_free_all, free_low_memory_core_early, __free_pages_memory; mm/page_alloc.c __free_pages_core
export function memblockFreeAll(k: Kernel): void {
  // A reservation covers every page it touches.
  const reserved = k.memblock.reserved.map((r) => ({
    start: k.physPfn(r.base),
    end: Math.ceil((r.base + r.size) / k.geo.pageSize),
  }));
  for (const r of memPfnRanges(k.memblock.memory, k.geo.pageSize)) {
    const free = subtractRanges({ start: r.startPfn, end: r.endPfn }, reserved);
    for (const zone of k.nodeData(r.nid).zones) {
      if (!populatedZone(zone)) continue;
      for (const f of free) {
        const lo = clamp(f.start, zone.zoneStartPfn, zoneEndPfn(zone));
        const hi = clamp(f.end, zone.zoneStartPfn, zoneEndPfn(zone));
        if (lo >= hi) continue;
        k.memmap.setRange(lo, hi, pageValue({ zone: zone.idx, node: zone.nid, refcount: 0 }));
        zone.buddy.freeRange(lo, hi);
        zone.managedPages += hi - lo;
      }
      for (const res of reserved) {
        const lo = clamp(Math.max(res.start, r.startPfn), zone.zoneStartPfn, zoneEndPfn(zone));
        const hi = clamp(Math.min(res.end, r.endPfn), zone.zoneStartPfn, zoneEndPfn(zone));
        if (lo >= hi) continue;
        k.memmap.setRange(lo, hi, pageValue({ zone: zone.idx, node: zone.nid, refcount: 1, flags: flagBit(PG_reserved) }));
      }
    }
  }
}

export function subtractRanges(
  base: { start: number; end: number },
  minus: ReadonlyArray<{ start: number; end: number }>,
): Array<{ start: number; end: number }> {
  let pieces = [base];
  for (const m of minus) {
    const next: Array<{ start: number; end: number }> = [];
    for (const p of pieces) {
      if (m.end <= p.start || m.start >= p.end) {
        next.push(p);
        continue;
      }
      if (p.start < m.start) next.push({ start: p.start, end: m.start });
      if (m.end < p.end) next.push({ start: m.end, end: p.end });
    }
    pieces = next;
  }
  return pieces;
}
