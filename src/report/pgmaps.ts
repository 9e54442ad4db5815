/**
 * Per-pgmap report: type, ranges, altmap accounting, where the memmap lives and what it costs, and who holds
 * references to the pgmap.
 */

import type { Kernel } from "../kernel/kernel.ts";
import { type DevPagemap, MEMORY_TYPE_NAMES, pgmapAltmap } from "../kernel/mm/dev_pagemap.ts";
import { pfnFirst, pfnLen } from "../kernel/mm/memremap.ts";

export interface PgmapJson {
  id: number;
  device: string;
  type: string;
  state: string;
  nid: number;
  vmemmapShift: number;
  ranges: Array<{ start: number; end: number; firstDevicePfn: number; devicePages: number }>;
  altmap: { basePfn: number; reserve: number; free: number; alloc: number; align: number } | null;
  memmap: { ramBytes: number; deviceBytes: number; pageTableBytes: number; structPages: number };
  refs: { count: number; holders: Record<string, number> };
}

export function pgmapJson(k: Kernel, p: DevPagemap): PgmapJson {
  const altmap = pgmapAltmap(p);
  let ramBytes = 0;
  let altmapPfns = 0;
  let pageTableBytes = 0;
  let structPages = 0;
  const ranges = p.ranges.map((r, i) => {
    const startPfn = k.physPfn(r.start);
    const endPfn = k.physPfn(r.end + 1);
    // A pgmap that is gone holds no memmap; whatever backs the range now belongs to its successor.
    const gone = p.state === "exited" || p.state === "failed";
    const c = gone ? { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 } : k.vmemmap.cost(startPfn, endPfn);
    ramBytes += c.ramBytes;
    altmapPfns += c.altmapPfns;
    pageTableBytes += c.pageTableBytes;
    if (!gone) structPages += endPfn - startPfn;
    const live = i < p.nrRange;
    return { start: r.start, end: r.end, firstDevicePfn: live ? pfnFirst(k, p, i) : startPfn, devicePages: live ? pfnLen(k, p, i) : 0 };
  });
  return {
    id: p.id,
    device: p.device,
    type: MEMORY_TYPE_NAMES[p.type] ?? String(p.type),
    state: p.state,
    nid: p.nid,
    vmemmapShift: p.vmemmapShift,
    ranges,
    altmap: altmap ? { basePfn: altmap.basePfn, reserve: altmap.reserve, free: altmap.free, alloc: altmap.alloc, align: altmap.align } : null,
    memmap: { ramBytes, deviceBytes: altmapPfns * k.geo.pageSize, pageTableBytes, structPages },
    refs: { count: p.ref.count, holders: Object.fromEntries(p.ref.holders) },
  };
}

export function pgmapsJson(k: Kernel): PgmapJson[] {
  return k.pgmaps.all().map((p) => pgmapJson(k, p));
}

function kib(n: number): string {
  if (n >= 2 ** 30 && n % 2 ** 20 === 0) return `${n / 2 ** 30} GiB`.replace(/(\.\d{2})\d+/, "$1");
  if (n >= 2 ** 20) return `${Math.round((n / 2 ** 20) * 100) / 100} MiB`;
  return `${Math.round((n / 1024) * 100) / 100} KiB`;
}

export function renderPgmaps(k: Kernel): string {
  const list = pgmapsJson(k);
  if (list.length === 0) return "no dev_pagemaps\n";
  let out = "";
  for (const p of list) {
    out += `pgmap ${p.id} ${p.device}: ${p.type}, ${p.state}, node ${p.nid}${p.vmemmapShift ? `, vmemmap_shift ${p.vmemmapShift} (${2 ** p.vmemmapShift} pages per compound page)` : ""}\n`;
    for (const r of p.ranges) {
      out += `  range [0x${r.start.toString(16)}-0x${r.end.toString(16)}] (${kib(r.end - r.start + 1)}): device pages from pfn 0x${r.firstDevicePfn.toString(16)}, pfn_len ${r.devicePages}\n`;
    }
    if (p.altmap) {
      const a = p.altmap;
      out += `  altmap: base_pfn 0x${a.basePfn.toString(16)} reserve ${a.reserve} free ${a.free} alloc ${a.alloc} align ${a.align} (slack ${a.free - a.alloc - a.align})\n`;
    }
    const m = p.memmap;
    out += `  memmap: ${m.structPages} struct pages (${kib(m.structPages * k.arch.structPageSize)}); in RAM ${kib(m.ramBytes)}, in the device ${kib(m.deviceBytes)}, page tables ${kib(m.pageTableBytes)}\n`;
    const holders = Object.entries(p.refs.holders).map(([h, n]) => (n === 1 ? h : `${h} ×${n}`));
    out += `  references: ${p.refs.count}${holders.length ? ` (${holders.join(", ")})` : ""}\n`;
  }
  return out;
}
