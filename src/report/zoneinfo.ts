/**
 * /proc/zoneinfo (mm/vmstat.c zoneinfo_show_print), limited to the lines the model predicts: the zone header,
 * spanned, present, managed and, for populated zones, start_pfn. Lines are laid out exactly as the kernel lays
 * them out, so `grep -E 'zone|spanned|present|managed|start_pfn'` of a real machine diffs cleanly against it.
 * Free pages, watermarks and per-cpu statistics depend on what ran on the machine and are left out.
 */
import type { Kernel } from "../kernel/kernel.ts";
import { populatedZone } from "../kernel/mm/mmzone.ts";

export function renderZoneinfo(k: Kernel): string {
  let out = "";
  for (const pgdat of k.sortedNodes()) {
    for (const zone of pgdat.zones) {
      out += `Node ${pgdat.nodeId}, zone ${zone.name.padStart(8)}\n`;
      out += `        spanned  ${zone.spannedPages}\n`;
      out += `        present  ${zone.presentPages}\n`;
      out += `        managed  ${zone.managedPages}\n`;
      if (!populatedZone(zone)) continue;
      out += `  start_pfn:           ${zone.zoneStartPfn}\n`;
    }
  }
  return out;
}

export interface ZoneJson {
  node: number;
  zone: string;
  startPfn: number | null;
  spanned: number;
  present: number;
  managed: number;
  /** "spec" when the machine spec gave it; "model" when it is present pages minus modelled reservations. */
  managedSource: "spec" | "model";
  freePages: number;
}

export function zoneinfoJson(k: Kernel): ZoneJson[] {
  const out: ZoneJson[] = [];
  for (const pgdat of k.sortedNodes()) {
    for (const zone of pgdat.zones) {
      out.push({
        node: pgdat.nodeId,
        zone: zone.name,
        startPfn: populatedZone(zone) ? zone.zoneStartPfn : null,
        spanned: zone.spannedPages,
        present: zone.presentPages,
        managed: zone.managedPages,
        managedSource: zone.managedFromSpec ? "spec" : "model",
        freePages: zone.buddy.freePages(),
      });
    }
  }
  return out;
}
