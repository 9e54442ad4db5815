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
}

export const VARIANTS: Readonly<Record<string, KernelVariant>> = {
  "6.1": {
    name: "6.1",
    description: "Linux 6.1.192 (Debian 12), the baseline",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: false,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
  },
  "6.1.0": {
    name: "6.1.0",
    description: "upstream v6.1.0: x86 add_pages still raises max_pfn for device memory",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
  },
  "5.18": {
    name: "5.18",
    description: "before the refcount rework: every ZONE_DEVICE page idles at refcount 1, page_free at 1",
    deviceFreeAtRefcountOne: true,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
  },
  "2015-rfc": {
    name: "2015-rfc",
    description: "the 2015 ZONE_DEVICE RFC's question (seed 003): device memory raises max_pfn",
    deviceFreeAtRefcountOne: true,
    x86MaxPfnRaisedByDevice: true,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
  },
  "zone-device-subsection-map": {
    name: "zone-device-subsection-map",
    description: "6.1 plus seed 002's per-sub-section ZONE_DEVICE bitmap in mem_section_usage",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: false,
    subsectionZoneDeviceMap: true,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: true,
  },
  "arm64-no-pte-devmap": {
    name: "arm64-no-pte-devmap",
    description:
      "seed 000 (April 2019, v5.1-rc): arm64 selecting ARCH_HAS_ZONE_DEVICE (if ARM64_4K_PAGES) before it had pte_devmap " +
      "(arm64's PTE_DEVMAP, bit 57, and ARCH_HAS_PTE_DEVMAP came in 5.3): pfn_t_devmap() is false, so insert_pfn makes " +
      "special PTEs and vmf_insert_pfn_pmd plain block PMDs; pte/pmd_devmap() are 0, so GUP-fast refuses a special PTE " +
      "and takes a device PMD like a THP, a plain page reference without get_dev_pagemap; everything else as 6.1 " +
      "(pgmap and page lifetimes included)",
    deviceFreeAtRefcountOne: false,
    x86MaxPfnRaisedByDevice: false,
    subsectionZoneDeviceMap: false,
    pgReservedOnDevicePages: true,
    archHasPteDevmap: false,
  },
};

export const DEFAULT_VARIANT = VARIANTS["6.1"]!;

export function kernelVariant(name: string, field = "variant"): KernelVariant {
  const v = Object.hasOwn(VARIANTS, name) ? VARIANTS[name] : undefined;
  if (!v) throw new UsageError(field, `unknown variant '${name}' (known: ${Object.keys(VARIANTS).join(", ")})`);
  return v;
}
