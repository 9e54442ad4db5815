/**
 * nd_e820 (drivers/nvdimm/e820.c): the e820_pmem platform device's driver. It registers bus "ndbus0" with
 * provider "e820" and one ND_REGION_PAGEMAP region per "Persistent Memory (legacy)" resource
 * (memmap=nn!ss, e820 type 12), on the node SRAT gives the range.
 */
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { IORES_DESC_PERSISTENT_MEMORY_LEGACY, walkResources } from "../../resource.ts";
import { nvdimmBusRegister } from "./bus.ts";
import type { NvdimmBus } from "./nd.ts";
import { nvdimmPmemRegionCreate } from "./region_devs.ts";

/** The NUMA facts nd_e820 needs: SRAT memory affinity as the boot used it. */
export interface NumaView {
  /** SRAT ranges ([start, end) bytes) when the SRAT was used; empty when a node was faked. */
  srat: ReadonlyArray<{ node: number; start: number; end: number }>;
}

/**
 * phys_to_target_node: the node of numa_meminfo or numa_reserved_meminfo containing addr. Without an SRAT the
 * faked node 0 covers only [0, max_pfn).
 */
// ref: arch/x86/mm/numa.c phys_to_target_node, dummy_numa_init
export function physToTargetNode(k: Kernel, numa: NumaView, addr: number): number {
  if (numa.srat.length === 0) return addr < k.pfnPhys(k.maxPfn) ? 0 : -1;
  for (const m of numa.srat) if (m.start <= addr && addr < m.end) return m.node;
  return -1;
}

/** numa_map_to_online_node: an offline node maps to the nearest online one (the lowest here). */
// ref: mm/mempolicy.c numa_map_to_online_node
export function numaMapToOnlineNode(k: Kernel, nid: number): number {
  if (nid < 0 || k.nodes.has(nid)) return nid;
  const online = k.sortedNodes();
  return online[0]?.nodeId ?? -1;
}

// ref: drivers/nvdimm/e820.c e820_pmem_probe, e820_register_one
export function* e820PmemProbe(k: Kernel, numa: NumaView): KernelPath<NvdimmBus> {
  const bus = yield* nvdimmBusRegister(k, "e820_pmem", "e820");
  for (const { res } of walkResources(k.iomem)) {
    if (res.desc !== IORES_DESC_PERSISTENT_MEMORY_LEGACY) continue;
    const nid = physToTargetNode(k, numa, res.start);
    nvdimmPmemRegionCreate(k, bus, {
      start: res.start,
      size: res.end - res.start + 1,
      numaNode: numaMapToOnlineNode(k, nid),
      targetNode: nid,
      pagemap: true,
    });
    yield step(`e820_register_one(${res.start.toString(16)})`);
  }
  return bus;
}
