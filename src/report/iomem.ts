/**
 * /proc/iomem, byte for byte (kernel/resource.c r_show): two spaces per nesting level, addresses in at least
 * eight hex digits, inclusive ends.
 */
import type { Kernel } from "../kernel/kernel.ts";
import { walkResources } from "../kernel/resource.ts";

export function renderIomem(k: Kernel): string {
  const width = 8;
  let out = "";
  for (const { res, depth } of walkResources(k.iomem)) {
    const start = res.start.toString(16).padStart(width, "0");
    const end = res.end.toString(16).padStart(width, "0");
    out += `${" ".repeat(depth * 2)}${start}-${end} : ${res.name}\n`;
  }
  return out;
}

export interface IomemEntry {
  name: string;
  start: number;
  end: number;
  depth: number;
  busy: boolean;
}

export function iomemJson(k: Kernel): IomemEntry[] {
  return [...walkResources(k.iomem)].map(({ res, depth }) => ({
    name: res.name,
    start: res.start,
    end: res.end,
    depth,
    busy: (res.flags & 0x80000000) !== 0,
  }));
}
