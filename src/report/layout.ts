/**
 * The whole boot layout of a machine: what `zonedev layout` prints, as text sections and as JSON.
 */
import type { Kernel } from "../kernel/kernel.ts";
import { iomemJson, renderIomem } from "./iomem.ts";
import { memoryBlocksJson, renderMemoryBlocks } from "./memory_blocks.ts";
import { pgmapsJson, renderPgmaps } from "./pgmaps.ts";
import { renderSections, sectionRuns } from "./sections.ts";
import { renderZoneinfo, zoneinfoJson } from "./zoneinfo.ts";

export const LAYOUT_PARTS = ["summary", "iomem", "zoneinfo", "sections", "blocks", "pgmaps", "log"] as const;
export type LayoutPart = (typeof LAYOUT_PARTS)[number];

function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    u++;
  }
  return `${v} ${units[u]}`;
}

export function renderSummary(k: Kernel, name: string): string {
  const g = k.geo;
  const ram = k.memblock.memory.reduce((n, r) => n + r.size, 0);
  return [
    `machine   ${name}`,
    `arch      ${k.arch.name}: ${k.arch.description}`,
    `pages     ${fmtBytes(g.pageSize)}; section ${fmtBytes(g.sectionBytes)}; sub-section 2 MiB; MAX_PHYSMEM_BITS ${k.arch.maxPhysmemBits}; struct page ${k.arch.structPageSize} B`,
    `RAM       ${fmtBytes(ram)} in ${k.memblock.memory.length} memblock range(s), ${k.nodes.size} node(s)`,
    `max_pfn   0x${k.maxPfn.toString(16)} (${k.maxPfn}); high_memory at 0x${k.highMemory.toString(16)}`,
    `blocks    ${k.memoryBlocks.count()} memory block(s) of ${fmtBytes(k.memoryBlocks.blockSize)}`,
    "",
  ].join("\n");
}

export function renderLayout(k: Kernel, name: string, parts: readonly LayoutPart[]): string {
  const out: string[] = [];
  for (const part of parts) {
    if (part === "summary") out.push(renderSummary(k, name));
    if (part === "iomem") out.push(`== /proc/iomem ==\n${renderIomem(k)}`);
    if (part === "zoneinfo") out.push(`== /proc/zoneinfo (zone lines the model predicts) ==\n${renderZoneinfo(k)}`);
    if (part === "sections") out.push(`== sparsemem sections ==\n${renderSections(k)}`);
    if (part === "blocks") out.push(`== /sys/devices/system/memory ==\n${renderMemoryBlocks(k)}`);
    if (part === "pgmaps") out.push(`== dev_pagemaps ==\n${renderPgmaps(k)}`);
    if (part === "log") out.push(`== boot log (memory lines) ==\n${k.log.join("\n")}\n`);
  }
  return out.join("\n");
}

export function layoutJson(k: Kernel, name: string): object {
  return {
    machine: name,
    arch: k.arch.name,
    pageSize: k.geo.pageSize,
    maxPfn: k.maxPfn,
    highMemory: k.highMemory,
    iomem: iomemJson(k),
    zones: zoneinfoJson(k),
    sections: sectionRuns(k),
    memoryBlockSize: k.memoryBlocks.blockSize,
    memoryBlocks: memoryBlocksJson(k),
    pgmaps: pgmapsJson(k),
    log: k.log,
  };
}
