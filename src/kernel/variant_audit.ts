/**
 * Era fields seed 002's audit needs beyond KernelVariant (src/kernel/variant.ts), and the "5.4" preset: the
 * kernel of Dan Williams' October 2019 audit of is_zone_device_page() users.
 *
 * They are meant to move into KernelVariant (docs/seed-002-audit.md, "Changes requested"). Until then a variant
 * object may carry them as extra fields; a variant without them gets the value its existing fields imply, so
 * "6.1", "6.1.0", "5.18", "2015-rfc" and "zone-device-subsection-map" need no change:
 *
 * - pageRefsHoldPgmap: memunmap_pages() put_page()s every device page (v4.5 … v5.18) instead of dropping the
 *   pgmap references in bulk (v5.19+). The same commit ("mm: remove the extra ZONE_DEVICE struct page refcount")
 *   ended the refcount-1 convention, so the default is `deviceFreeAtRefcountOne`.
 * - pfnToOnlinePageKnowsZoneDevice: pfn_to_online_page() checks sub-section validity and, in a section tainted
 *   SECTION_TAINT_ZONE_DEVICE, asks get_dev_pagemap() (v5.12+). Before, every pfn of an online section was
 *   "online". Default true (only the 5.4 preset predates it).
 * - softOfflineTakesPfn: soft_offline_page(pfn, flags) checks pfn_valid/pfn_to_online_page itself (v5.6+); in
 *   5.4 it took a struct page and tested is_zone_device_page(page) first. Default true.
 * - devicePrivateFaultTakesRef: do_swap_page() takes the PTL, re-checks the entry and get_page()s a device-private
 *   page before ->migrate_to_ram (v6.1-rc1, "mm/memory.c: fix race when faulting a device private page"). Default
 *   `!deviceFreeAtRefcountOne`.
 *
 * The model reads these only through auditFields(); nothing compares version numbers.
 */
import { type KernelVariant, VARIANTS } from "./variant.ts";

export interface AuditVariantFields {
  readonly pageRefsHoldPgmap: boolean;
  readonly pfnToOnlinePageKnowsZoneDevice: boolean;
  readonly softOfflineTakesPfn: boolean;
  readonly devicePrivateFaultTakesRef: boolean;
}

/** A variant with the audit's fields spelled out (the 5.4 preset, or a test's own). */
export type AuditKernelVariant = KernelVariant & AuditVariantFields;

function flag<K extends keyof AuditVariantFields>(v: KernelVariant, key: K, dflt: boolean): boolean {
  if (!(key in v)) return dflt;
  const x: unknown = Reflect.get(v, key);
  return typeof x === "boolean" ? x : dflt;
}

/** The audit's era fields of a variant: its own if it has them, else what its KernelVariant fields imply. */
export function auditFields(v: KernelVariant): AuditVariantFields {
  return {
    pageRefsHoldPgmap: flag(v, "pageRefsHoldPgmap", v.deviceFreeAtRefcountOne),
    pfnToOnlinePageKnowsZoneDevice: flag(v, "pfnToOnlinePageKnowsZoneDevice", true),
    softOfflineTakesPfn: flag(v, "softOfflineTakesPfn", true),
    devicePrivateFaultTakesRef: flag(v, "devicePrivateFaultTakesRef", !v.deviceFreeAtRefcountOne),
  };
}

/**
 * The 2019 kernel of the audit (v5.4, October 2019): every ZONE_DEVICE page idles at refcount 1 and is "free"
 * when it drops back to 1 (device-private included), PG_reserved on every device page, no per-sub-section
 * ZONE_DEVICE map and no SECTION_TAINT_ZONE_DEVICE, memunmap_pages() put_page()s each device page, soft_offline_page()
 * takes a struct page, do_swap_page() calls ->migrate_to_ram without the PTL or a page reference. x86 add_pages
 * raises max_pfn for device memory (as every kernel before 6.1.y's backport).
 */
export function variantV54(): AuditKernelVariant {
  return {
    ...VARIANTS["5.18"]!,
    name: "5.4",
    description: "Linux 5.4 (October 2019, the audit's kernel): refcount-1 device pages, memunmap_pages put_page()s each page, no ZONE_DEVICE section taint",
    deviceFreeAtRefcountOne: true,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    pageRefsHoldPgmap: true,
    pfnToOnlinePageKnowsZoneDevice: false,
    softOfflineTakesPfn: false,
    devicePrivateFaultTakesRef: false,
  };
}
