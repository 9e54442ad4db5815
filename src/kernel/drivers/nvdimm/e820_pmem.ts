/**
 * Legacy persistent memory (memmap=nn!ss, e820 type 12) as nd_e820 + nd_pmem bring it up at boot
 * (drivers/nvdimm/e820.c e820_pmem_probe, drivers/nvdimm/pmem.c pmem_attach_disk).
 *
 * Each "Persistent Memory (legacy)" resource becomes region N with one raw namespace "namespaceN.0". Legacy
 * regions set ND_REGION_PAGEMAP, so even the raw namespace gets struct pages: nd_pmem claims the range and
 * memremaps it as MEMORY_DEVICE_FS_DAX with the memmap in RAM. Namespace modes (fsdax map=dev, devdax,
 * sector) are the libnvdimm model's business.
 */
import type { Kernel } from "../../kernel.ts";
import { type DevPagemap, MemoryType } from "../../mm/dev_pagemap.ts";
import { memremapPages, newDevPagemap } from "../../mm/memremap.ts";
import { runToEnd } from "../../path.ts";
import { IORES_DESC_PERSISTENT_MEMORY_LEGACY, requestRegion, walkResources } from "../../resource.ts";

export interface LegacyNamespace {
  name: string;
  start: number;
  /** Inclusive. */
  end: number;
  pgmap: DevPagemap | null;
  /** 0 or the errno devm_memremap_pages returned. */
  rc: number;
}

// ref: drivers/nvdimm/e820.c e820_pmem_probe, e820_register_one; drivers/nvdimm/pmem.c pmem_attach_disk
export function ndE820PmemProbe(k: Kernel): LegacyNamespace[] {
  const regions = [...walkResources(k.iomem)]
    .map(({ res }) => res)
    .filter((r) => r.desc === IORES_DESC_PERSISTENT_MEMORY_LEGACY);
  const out: LegacyNamespace[] = [];
  regions.forEach((region, id) => {
    const name = `namespace${id}.0`;
    const size = region.end - region.start + 1;
    // devm_request_mem_region: nests under the non-busy legacy resource.
    if (!requestRegion(k.iomem, region.start, size, name)) {
      k.printk(`nd_pmem ${name}: could not reserve region [mem 0x${region.start.toString(16)}-0x${region.end.toString(16)}]`);
      out.push({ name, start: region.start, end: region.end, pgmap: null, rc: -16 });
      return;
    }
    const pgmap = newDevPagemap(k, { device: name, type: MemoryType.FS_DAX, ranges: [{ start: region.start, end: region.end }] });
    // No SRAT entry for an e820 region: dev_to_node() is NUMA_NO_NODE and memremap_pages picks numa_mem_id().
    const rc = runToEnd(memremapPages(k, pgmap, -1));
    k.printk(`nd_pmem ${name}: unable to guarantee persistence of writes`);
    out.push({ name, start: region.start, end: region.end, pgmap: rc ? null : pgmap, rc });
  });
  return out;
}

export const BOOT_MODULES = {
  nd_pmem: ndE820PmemProbe,
} as const;

export type BootModule = keyof typeof BOOT_MODULES;
