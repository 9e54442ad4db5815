/**
 * The Kernel object: all state of one modelled machine. No module-level mutable state anywhere in the
 * model, so several kernels (two arches, two eras) live side by side in one process.
 */
import { type ArchProfile, type Geometry, geometry } from "../arch/profiles.ts";
import type { MemoryBlocks } from "../kernel/drivers/base/memory.ts";
import type { E820Entry } from "./arch/x86/e820.ts";
import type { DeviceCore } from "./drivers/nvdimm/device_core.ts";
import { PgmapRegistry } from "./mm/dev_pagemap.ts";
import { type Memblock, NUMA_NO_NODE } from "./mm/memblock.ts";
import { Memmap } from "./mm/memmap.ts";
import { devPagemapLive } from "./mm/memremap.ts";
import type { Userland } from "./mm/mmap.ts";
import { newNode, type PglistData, type Zone, type ZoneName } from "./mm/mmzone.ts";
import { SectionTable } from "./mm/sparse.ts";
import { VmemmapLedger } from "./mm/sparse_vmemmap.ts";
import type { RcuState } from "./rcu.ts";
import { iomemRoot, type Resource } from "./resource.ts";
import { Sanitizer } from "./sanitizer.ts";
import { Sysfs } from "./sysfs.ts";
import { DEFAULT_VARIANT, type KernelVariant } from "./variant.ts";

/** What the model needs to know of the resolved Kconfig. */
export interface ConfigView {
  enabled(symbol: string): boolean;
}

export type OnlineType = "offline" | "online" | "online_kernel" | "online_movable";
export type OnlinePolicy = "contig-zones" | "auto-movable";

export class Kernel {
  readonly arch: ArchProfile;
  readonly geo: Geometry;
  readonly config: ConfigView;
  /** Kernel log lines, without timestamps, in the order the kernel prints them. */
  readonly log: string[] = [];
  readonly iomem: Resource = iomemRoot();
  readonly sections: SectionTable;
  readonly memmap: Memmap;
  readonly zoneNames: readonly ZoneName[];
  readonly nodes = new Map<number, PglistData>();
  readonly memblock: Memblock = { memory: [], reserved: [] };
  /** x86 only: the firmware table and the kernel's working e820_table. */
  e820: { firmware: E820Entry[]; table: E820Entry[] } | null = null;
  maxPfn = 0;
  maxLowPfn = 0;
  /** Physical address just past the direct map of boot memory (high_memory, as a physical address). */
  highMemory = 0;
  commandLine = "";
  /** memhp_default_state / auto_online_blocks. */
  autoOnlineBlocks: OnlineType = "offline";
  onlinePolicy: OnlinePolicy = "contig-zones";
  movableNode = false;
  /** x86: X86_FEATURE_HYPERVISOR, which changes the memory block size rule above 64 GiB. */
  hypervisor = false;
  memoryBlocks!: MemoryBlocks;
  /**
   * get_dev_pagemap(pfn) != NULL: is a live dev_pagemap covering pfn? The ZONE_DEVICE model installs the
   * real lookup; a kernel without it has none.
   */
  devPagemapLive: (pfn: number) => boolean = (pfn) => devPagemapLive(this, pfn);
  /** Variant zone-device-subsection-map only: global sub-section numbers that are ZONE_DEVICE. */
  readonly zoneDeviceSubsections = new Set<number>();
  /** Where the memmap of every hot-added chunk lives and what it cost. */
  readonly vmemmap = new VmemmapLedger();

  readonly variant: KernelVariant;
  readonly sanitizer = new Sanitizer();
  readonly pgmaps = new PgmapRegistry();
  readonly sysfs = new Sysfs();
  /** Devices and drivers of the nd and dax buses (libnvdimm, device-dax), once a module created them. */
  devices: DeviceCore | null = null;
  /** Processes, their address spaces and the files they map, once something created one. */
  userland: Userland | null = null;
  /** RCU readers inside a read-side critical section (rcu.ts), once one entered. */
  rcu: RcuState | null = null;

  constructor(arch: ArchProfile, config: ConfigView, variant: KernelVariant = DEFAULT_VARIANT) {
    this.arch = arch;
    this.variant = variant;
    this.geo = geometry(arch);
    this.config = config;
    this.sections = new SectionTable(this.geo);
    this.memmap = new Memmap(this.geo);
    const names: ZoneName[] = [];
    if (config.enabled("ZONE_DMA")) names.push("DMA");
    if (config.enabled("ZONE_DMA32")) names.push("DMA32");
    names.push("Normal", "Movable");
    if (config.enabled("ZONE_DEVICE")) names.push("Device");
    this.zoneNames = names;
  }

  printk(line: string): void {
    this.log.push(line);
  }

  pfnPhys(pfn: number): number {
    return pfn * this.geo.pageSize;
  }

  physPfn(addr: number): number {
    return Math.floor(addr / this.geo.pageSize);
  }

  /** NODE_DATA(nid), allocating the pgdat on first use (arch_alloc_nodedata / hotadd_init_pgdat). */
  nodeData(nid: number): PglistData {
    let p = this.nodes.get(nid);
    if (!p) {
      p = newNode(nid, this.zoneNames, this.arch.maxOrder);
      this.nodes.set(nid, p);
    }
    return p;
  }

  zone(nid: number, name: ZoneName): Zone | undefined {
    return this.nodes.get(nid)?.zones.find((z) => z.name === name);
  }

  zoneIdx(name: ZoneName): number {
    return this.zoneNames.indexOf(name);
  }

  sortedNodes(): PglistData[] {
    return [...this.nodes.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** memory_block_size_bytes() */
  memoryBlockSizeBytes(): number {
    return this.memoryBlocks.blockSize;
  }

  /** Which node a boot pfn belongs to according to memblock (early_pfn_to_nid). */
  earlyPfnToNid(pfn: number): number {
    const addr = this.pfnPhys(pfn);
    for (const r of this.memblock.memory) if (r.base <= addr && addr < r.base + r.size) return r.nid;
    return NUMA_NO_NODE;
  }
}
