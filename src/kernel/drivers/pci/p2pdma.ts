/**
 * PCI peer-to-peer DMA memory (drivers/pci/p2pdma.c): the minimum the audit's is_pci_p2pdma_page() needs.
 *
 * A provider's BAR is memremapped as MEMORY_DEVICE_PCI_P2PDMA (the `memremap DEV p2pdma …` step stands in for
 * pci_p2pdma_add_resource) and handed out by pci_alloc_p2pmem() from a gen_pool whose owner is the pgmap's
 * percpu_ref: every allocation takes a pgmap reference (percpu_ref_tryget_live — none once the pgmap is dying)
 * and pci_free_p2pmem() gives it back. The consumers (nvme's CMB/P2P requests, the block layer's sg mapping) test
 * sg_page() with is_pci_p2pdma_page() while they hold the allocation, so memunmap_pages() waits for them. Neither
 * 5.4 nor 6.1 maps p2pmem into user space (6.2 added that), so no page reference is involved at all.
 *
 * Simplified: one page per allocation, the lowest free pfn; no gen_pool chunks, no distance checks.
 */
import type { Kernel } from "../../kernel.ts";
import { sideTable } from "../../lib/rewind.ts";
import { type DevPagemap, MemoryType } from "../../mm/dev_pagemap.ts";
import { putDevPagemap } from "../../mm/memremap.ts";
import { pgmapTouch, pgmapUse } from "../../mm/page_access.ts";
import { hex, isZoneDevicePage, pagePgmap } from "../../mm/swap.ts";
import { type KernelPath, step } from "../../path.ts";

const ALLOCS = sideTable<Kernel, Map<number, DevPagemap>>();

function allocs(k: Kernel): Map<number, DevPagemap> {
  let m = ALLOCS.get(k);
  if (!m) {
    m = new Map();
    ALLOCS.set(k, m);
  }
  return m;
}

/** The holder of an allocation's pgmap reference. */
export function p2pmemHolder(pfn: number): string {
  return `p2pmem allocation ${hex(pfn)}`;
}

/** pci_alloc_p2pmem(pdev, PAGE_SIZE): a page of the provider's pool, or null (none free, or the pgmap is dying). */
// ref: drivers/pci/p2pdma.c pci_alloc_p2pmem
export function* pciAllocP2pmem(k: Kernel, pgmap: DevPagemap): KernelPath<number | null> {
  yield step("pci_alloc_p2pmem: rcu_read_lock; gen_pool_alloc_owner");
  const a = allocs(k);
  let pfn = -1;
  for (const r of pgmap.ranges.slice(0, pgmap.nrRange)) {
    for (let p = k.physPfn(r.start); p <= k.physPfn(r.end) && pfn < 0; p++) if (!a.has(p)) pfn = p;
    if (pfn >= 0) break;
  }
  if (pfn < 0) return null;
  // if (unlikely(!percpu_ref_tryget_live_rcu(ref))) { gen_pool_free(...); ret = NULL; }
  pgmapTouch(k, pgmapUse(k, pgmap, "pci_alloc_p2pmem"));
  if (!pgmap.ref.tryGetLive(p2pmemHolder(pfn))) return null;
  a.set(pfn, pgmap);
  return pfn;
}

/** pci_free_p2pmem: back to the pool, and the allocation's pgmap reference with it. */
// ref: drivers/pci/p2pdma.c pci_free_p2pmem
export function* pciFreeP2pmem(k: Kernel, pfn: number): KernelPath<boolean> {
  const pgmap = allocs(k).get(pfn);
  if (!pgmap) return false;
  allocs(k).delete(pfn);
  yield* putDevPagemap(k, pgmap, p2pmemHolder(pfn));
  return true;
}

/** The pfns of live allocations (for reports and tests). */
export function p2pmemAllocations(k: Kernel): number[] {
  return [...allocs(k).keys()];
}

/**
 * is_pci_p2pdma_page(page): CONFIG_PCI_P2PDMA && is_zone_device_page(page) && page->pgmap->type ==
 * MEMORY_DEVICE_PCI_P2PDMA — as a consumer runs it on an sg entry's page.
 */
// ref: include/linux/memremap.h is_pci_p2pdma_page
export function* isPciP2pdmaPage(k: Kernel, pfn: number): KernelPath<boolean> {
  if (!k.config.enabled("PCI_P2PDMA")) return false;
  if (!isZoneDevicePage(k, pfn, "is_pci_p2pdma_page")) return false;
  yield step("is_pci_p2pdma_page: is_zone_device_page(page)");
  return pagePgmap(k, pfn, "is_pci_p2pdma_page: page->pgmap->type")?.type === MemoryType.PCI_P2PDMA;
}
