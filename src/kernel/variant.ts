/**
 * Kernel variants: where behaviour differs between eras or proposals, the difference is one named field,
 * consulted where it matters. No version-number comparisons elsewhere.
 */
import { UsageError } from "../errors.ts";

export interface KernelVariant {
  readonly name: string;
  readonly description: string;
  /**
   * Before ~5.19 every ZONE_DEVICE page was idle at refcount 1 and "free" when it dropped back to 1
   * (device-private included); since then PRIVATE/COHERENT pages are 0-based and free at 0.
   */
  readonly deviceFreeAtRefcountOne: boolean;
  /** x86 add_pages raises max_pfn for pgmap-backed hot-adds (v6.1.0 and the 2015 RFC's question); 6.1.192 does not. */
  readonly x86MaxPfnRaisedByDevice: boolean;
  /**
   * Seed 002's proposal: a per-sub-section ZONE_DEVICE bitmap in mem_section_usage, so "is this pfn device
   * memory?" is answered from the section without touching the struct page or taking a pgmap reference.
   */
  readonly subsectionZoneDeviceMap: boolean;
  /** PG_reserved set on every ZONE_DEVICE struct page (still true in 6.1; the 2019 series proposed dropping it). */
  readonly pgReservedOnDevicePages: boolean;
  /**
   * The arch has pte_devmap (ARCH_HAS_PTE_DEVMAP, once __HAVE_ARCH_PTE_DEVMAP): a devmap bit in PTEs and PMDs (and
   * PUDs where the arch has PUD THP) that tells GUP-fast a pfn is ZONE_DEVICE memory, so it takes a pgmap reference
   * (get_dev_pagemap) before the page reference. False: pfn_t_devmap() is false, insert_pfn makes special PTEs and
   * vmf_insert_pfn_pmd plain huge PMDs, pte/pmd/pud_devmap() are 0, and GUP-fast treats a device PMD like a THP
   * (a plain page reference with no pgmap reference) — seed 000. Consulted by src/kernel/mm/pgtable.ts
   * (archHasPteDevmap: the entry encoding and pte/pmd/pud_devmap) and, through pfnTDevmap, by insert_pfn.
   */
  readonly archHasPteDevmap: boolean;
  /**
   * A device page reference holds its pgmap (v4.5 … v5.18): memremap_pages() takes a pgmap reference for every
   * device page (device-private included), __put_page() gives it back when the page reaches 0, and
   * memunmap_pages() put_page()s every device page once, then waits for the pages still referenced. Since v5.19
   * ("mm: remove the extra ZONE_DEVICE struct page refcount") FS_DAX/GENERIC/P2PDMA references are dropped in
   * bulk by memunmap_pages() and a PRIVATE/COHERENT page holds one only while allocated (zone_device_page_init):
   * a page reference that outlives unbind no longer holds it up (seed 002).
   */
  readonly pageRefsHoldPgmap: boolean;
  /**
   * pfn_to_online_page() checks the sub-section's validity and, in a section tainted SECTION_TAINT_ZONE_DEVICE,
   * asks get_dev_pagemap() (v5.12+). Before, every pfn of an online section was "online", device pfns sharing a
   * section with boot RAM included (seed 002's pfn question).
   */
  readonly pfnToOnlinePageKnowsZoneDevice: boolean;
  /** soft_offline_page(pfn, flags) checks the pfn itself (v5.6+); in 5.4 it took a struct page and tested is_zone_device_page(page). */
  readonly softOfflineTakesPfn: boolean;
  /**
   * do_swap_page() takes the PTL, re-checks the entry and get_page()s a device-private page before
   * ->migrate_to_ram (v6.1-rc1, "mm/memory.c: fix race when faulting a device private page"); before, it called
   * ->migrate_to_ram with neither.
   */
  readonly devicePrivateFaultTakesRef: boolean;
}

/** 5.18's: page references hold the pgmap (until v5.19), pfn_to_online_page knows ZONE_DEVICE (v5.12+). */
const AS_5_18 = { pageRefsHoldPgmap: true, pfnToOnlinePageKnowsZoneDevice: true, softOfflineTakesPfn: true, devicePrivateFaultTakesRef: false } as const;

/** The fields every kernel since the v5.19 refcount rework and 6.1-rc1's device-private fault fix shares. */
const SINCE_6_1 = { pageRefsHoldPgmap: false, pfnToOnlinePageKnowsZoneDevice: true, softOfflineTakesPfn: true, devicePrivateFaultTakesRef: true } as const;

export const VARIANTS: Readonly<Record<string, KernelVariant>> = {
  "6.1": {
    name: "6.1",
    description: "Linux 6.1.192 (Debian 12), the baseline",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: false,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
    ...SINCE_6_1,
  },
  "6.1.0": {
    name: "6.1.0",
    description: "upstream v6.1.0: x86 add_pages still raises max_pfn for device memory",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
    ...SINCE_6_1,
  },
  "5.18": {
    name: "5.18",
    description: "before the refcount rework (v5.19): every ZONE_DEVICE page idles at refcount 1, page_free at 1, and holds a pgmap reference: memunmap_pages put_page()s each page and waits for the referenced ones",
    deviceFreeAtRefcountOne: true,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
    ...AS_5_18,
  },
  "5.4": {
    name: "5.4",
    description:
      "Linux 5.4 (October 2019), the kernel of Dan Williams' audit of is_zone_device_page() users (seed 002): every device page " +
      "idles at refcount 1 and is free at 1 (device-private too) and holds a pgmap reference, memunmap_pages() put_page()s each " +
      "page and waits for the referenced ones, pfn_to_online_page() has no ZONE_DEVICE section taint, soft_offline_page() takes " +
      "a struct page, do_swap_page() calls ->migrate_to_ram without the PTL or a page reference",
    deviceFreeAtRefcountOne: true,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
    pageRefsHoldPgmap: true,
    pfnToOnlinePageKnowsZoneDevice: false,
    softOfflineTakesPfn: false,
    devicePrivateFaultTakesRef: false,
  },
  "2015-rfc": {
    name: "2015-rfc",
    description: "the 2015 ZONE_DEVICE RFC's question (seed 003): device memory raises max_pfn",
    deviceFreeAtRefcountOne: true,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
    // Per-page pgmap references date from v4.5; the pfn_to_online_page and soft-offline fields are as 5.18's so that
    // seed 003's question is the only difference from it.
    ...AS_5_18,
  },
  "zone-device-subsection-map": {
    name: "zone-device-subsection-map",
    description: "6.1 plus seed 002's per-sub-section ZONE_DEVICE bitmap in mem_section_usage",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: false,
    subsectionZoneDeviceMap: true,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
    ...SINCE_6_1,
  },
  "arm64-no-pte-devmap": {
    name: "arm64-no-pte-devmap",
    description:
      "seed 000 (April 2019, v5.1-rc): arm64 selecting ARCH_HAS_ZONE_DEVICE (if ARM64_4K_PAGES) before it had pte_devmap " +
      "(arm64's PTE_DEVMAP, bit 57, and ARCH_HAS_PTE_DEVMAP came in 5.3): pfn_t_devmap() is false, so insert_pfn makes " +
      "special PTEs and vmf_insert_pfn_pmd plain block PMDs; pte/pmd_devmap() are 0, so GUP-fast refuses a special PTE " +
      "and takes a device PMD like a THP, a plain page reference without get_dev_pagemap; everything else as 6.1 " +
      "(pgmap and page lifetimes included). vmf_insert_pfn_pmd and fs/dax.c still build plain device PMDs, as a VM_MIXEDMAP " +
      "mapping would (6.1's fs/dax.c refuses a PMD without pfn_t_devmap; see scenarios/seed000-gup-fast-unbind-no-devmap.yaml); " +
      "PTE faults without VM_MIXEDMAP hit vm_mixed_ok's BUG_ON",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: false,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: false,
    ...SINCE_6_1,
  },
};

export const DEFAULT_VARIANT = VARIANTS["6.1"]!;

export function kernelVariant(name: string, field = "variant"): KernelVariant {
  const v = Object.hasOwn(VARIANTS, name) ? VARIANTS[name] : undefined;
  if (!v) throw new UsageError(field, `unknown variant '${name}' (known: ${Object.keys(VARIANTS).join(", ")})`);
  return v;
}
