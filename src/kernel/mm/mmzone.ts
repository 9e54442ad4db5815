/**
 * Nodes and zones (include/linux/mmzone.h struct pglist_data, struct zone).
 */
import { Buddy } from "./buddy.ts";

export type ZoneName = "DMA" | "DMA32" | "Normal" | "Movable" | "Device";

export interface Zone {
  readonly name: ZoneName;
  /** zone_idx(): position in the node's zone array, which depends on the config (no DMA on ppc64). */
  readonly idx: number;
  readonly nid: number;
  zoneStartPfn: number;
  spannedPages: number;
  presentPages: number;
  /** Pages present since boot (present_early_pages). */
  presentEarlyPages: number;
  /** managed_pages: pages handed to the buddy allocator. */
  managedPages: number;
  /** The spec gave managed explicitly (the kernel's boot reservations are not modelled page by page). */
  managedFromSpec: boolean;
  readonly buddy: Buddy;
}

export interface PglistData {
  readonly nodeId: number;
  nodeStartPfn: number;
  nodeSpannedPages: number;
  nodePresentPages: number;
  readonly zones: Zone[];
  /** node_online / N_MEMORY */
  online: boolean;
}

export function zoneEndPfn(z: Zone): number {
  return z.zoneStartPfn + z.spannedPages;
}

// ref: include/linux/mmzone.h zone_is_empty
export function zoneIsEmpty(z: Zone): boolean {
  return z.spannedPages === 0;
}

// ref: include/linux/mmzone.h populated_zone
export function populatedZone(z: Zone): boolean {
  return z.presentPages !== 0;
}

// ref: include/linux/mmzone.h zone_intersects
export function zoneIntersects(z: Zone, startPfn: number, nrPages: number): boolean {
  if (zoneIsEmpty(z)) return false;
  if (startPfn >= zoneEndPfn(z) || startPfn + nrPages <= z.zoneStartPfn) return false;
  return true;
}

export function zoneSpansPfn(z: Zone, pfn: number): boolean {
  return z.zoneStartPfn <= pfn && pfn < zoneEndPfn(z);
}

export function newNode(nid: number, zoneNames: readonly ZoneName[], maxOrder: number): PglistData {
  return {
    nodeId: nid,
    nodeStartPfn: 0,
    nodeSpannedPages: 0,
    nodePresentPages: 0,
    online: false,
    zones: zoneNames.map((name, idx) => ({
      name,
      idx,
      nid,
      zoneStartPfn: 0,
      spannedPages: 0,
      presentPages: 0,
      presentEarlyPages: 0,
      managedPages: 0,
      managedFromSpec: false,
      buddy: new Buddy(maxOrder),
    })),
  };
}

export function nodeEndPfn(p: PglistData): number {
  return p.nodeStartPfn + p.nodeSpannedPages;
}
