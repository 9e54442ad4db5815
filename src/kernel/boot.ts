/**
 * Booting a modelled machine: the memory parts of setup_arch / start_kernel / mm_init, per arch.
 */
import type { ArchProfile } from "../arch/profiles.ts";
import { UsageError } from "../errors.ts";
import {
  applyMemmapArgs,
  type E820Entry,
  E820Type,
  e820TypeToResourceName,
  formatE820Table,
  parseMemmapArgs,
  trimBiosRange,
} from "./arch/x86/e820.ts";
import type { QemuNvdimm } from "./drivers/acpi/nfit.ts";
import { memoryDevInit, probeMemoryBlockSize } from "./drivers/base/memory.ts";
import { BOOT_MODULES, type BootModule } from "./drivers/nvdimm/e820_pmem.ts";
import { errnoName } from "./errno.ts";
import { type ConfigView, Kernel, type OnlinePolicy, type OnlineType } from "./kernel.ts";
import type { DevPagemapSpec } from "./mm/dev_pagemap.ts";
import { memblockAdd, memblockSetNode, memblockTrimMemory } from "./mm/memblock.ts";
import { memremapPages, newDevPagemap } from "./mm/memremap.ts";
import type { ZoneName } from "./mm/mmzone.ts";
import { freeAreaInit, maxZonePfns, memblockFreeAll, sparseInit } from "./mm/page_alloc.ts";
import { runToEnd } from "./path.ts";
import {
  IORES_DESC_ACPI_NV_STORAGE,
  IORES_DESC_ACPI_TABLES,
  IORES_DESC_NONE,
  IORES_DESC_PERSISTENT_MEMORY,
  IORES_DESC_PERSISTENT_MEMORY_LEGACY,
  IORES_DESC_RESERVED,
  IORES_DESC_SOFT_RESERVED,
  IORESOURCE_BUSY,
  IORESOURCE_MEM,
  IORESOURCE_SYSTEM_RAM,
  insertResource,
  insertResourceExpandToFit,
  newResource,
  type Resource,
  requestRegion,
  reserveRegionWithSplit,
  walkResources,
} from "./resource.ts";
import { DEFAULT_VARIANT, type KernelVariant } from "./variant.ts";

/** A platform resource the model does not derive (PCI windows, ROMs, APICs): input facts about the machine. */
export interface PlatformResource {
  name: string;
  start: number;
  /** Inclusive. */
  end: number;
  /**
   * insert: insert_resource (a bus driver publishing a window);
   * request: __request_region (a driver claiming a busy region, descending into non-busy containers);
   * nest: child of the deepest resource that contains it (firmware tables the kernel nests by hand).
   */
  op: "insert" | "request" | "nest";
}

export interface NumaMemblk {
  node: number;
  start: number;
  /** Exclusive. */
  end: number;
  hotplug: boolean;
}

/** A machine, fully resolved: everything boot needs and nothing it must guess. */
export interface MachineSpec {
  name: string;
  arch: ArchProfile;
  config: ConfigView;
  /** x86: the firmware's e820 table. */
  e820?: E820Entry[];
  /** Other arches: RAM ranges from the device tree / UEFI memory map ([start, end) in bytes). */
  memory?: Array<{ start: number; end: number }>;
  commandLine: string;
  /** SRAT memory affinity (x86) or DT numa-node-id ranges; empty: a single faked node 0. */
  numa: NumaMemblk[];
  platform: { early: PlatformResource[]; late: PlatformResource[] };
  /** Kernel image sections (Kernel code, rodata, data, bss), inclusive ends, reserved in memblock. */
  kernelImage: Array<{ name: string; start: number; end: number }>;
  /** managed_pages per zone when known (boot reservations are not modelled page by page). */
  managed: Array<{ node: number; zone: ZoneName; pages: number }>;
  hypervisor: boolean;
  memoryBlockSize?: number;
  /** Era or proposal to model (default: 6.1). */
  variant?: KernelVariant;
  /** Drivers loaded at boot, in order (e.g. the oracle guest's nd_pmem). */
  modules?: string[];
  /** Device memory a driver memremaps after boot (prototyping a driver's dev_pagemap). */
  pgmaps?: Array<DevPagemapSpec & { nid: number }>;
  /** QEMU NVDIMMs the firmware describes in its ACPI NFIT (bound by the nfit module). */
  nvdimms?: QemuNvdimm[];
}

const hex18 = (x: number) => "0x" + x.toString(16).padStart(16, "0");

export function bootKernel(spec: MachineSpec, variant: KernelVariant = spec.variant ?? DEFAULT_VARIANT): Kernel {
  const k = new Kernel(spec.arch, spec.config, variant);
  k.commandLine = spec.commandLine;
  k.hypervisor = spec.hypervisor;
  parseHotplugParams(k, spec.commandLine);
  if (spec.arch.arch === "x86_64") setupArchX86(k, spec);
  else setupArchGeneric(k, spec);
  sparseInit(k);
  freeAreaInit(k, maxZonePfns(k));
  memblockFreeAll(k);
  for (const m of spec.managed) {
    const zone = k.zone(m.node, m.zone);
    if (!zone) throw new UsageError(`managed.${m.node}.${m.zone}`, `node ${m.node} has no zone ${m.zone}`);
    zone.managedPages = m.pages;
    zone.managedFromSpec = true;
  }
  memoryDevInit(k, probeMemoryBlockSize(k, spec.memoryBlockSize));
  for (const m of spec.modules ?? []) BOOT_MODULES[m as BootModule](k, spec);
  for (const p of spec.pgmaps ?? []) {
    const pgmap = newDevPagemap(k, p);
    const rc = runToEnd(memremapPages(k, pgmap, p.nid));
    k.printk(`memremap_pages(${p.device}) = ${errnoName(rc)}`);
  }
  return k;
}

/** Command-line knobs of memory hot-plug (mm/memory_hotplug.c module params, setup_memhp_default_state). */
function parseHotplugParams(k: Kernel, cmdline: string): void {
  for (const word of cmdline.split(/\s+/)) {
    const [key, value] = word.split("=", 2) as [string, string | undefined];
    if (key === "memhp_default_state" && value !== undefined) {
      const types: OnlineType[] = ["offline", "online", "online_kernel", "online_movable"];
      if (!types.includes(value as OnlineType)) throw new UsageError("append", `memhp_default_state=${value}: expected one of ${types.join(", ")}`);
      k.autoOnlineBlocks = value as OnlineType;
    } else if (key === "memory_hotplug.online_policy" && value !== undefined) {
      if (value !== "contig-zones" && value !== "auto-movable") throw new UsageError("append", `memory_hotplug.online_policy=${value}: expected contig-zones or auto-movable`);
      k.onlinePolicy = value as OnlinePolicy;
    } else if (key === "movable_node") {
      k.movableNode = true;
    }
  }
}

// ref: arch/x86/kernel/e820.c e820_type_to_iomem_type, e820_type_to_iores_desc, do_mark_busy
function e820Resource(entry: E820Entry): { res: Resource; busy: boolean } {
  const t = entry.type;
  const flags = t === E820Type.RAM || t === E820Type.RESERVED_KERN ? IORESOURCE_SYSTEM_RAM : IORESOURCE_MEM;
  const desc =
    t === E820Type.ACPI
      ? IORES_DESC_ACPI_TABLES
      : t === E820Type.NVS
        ? IORES_DESC_ACPI_NV_STORAGE
        : t === E820Type.PMEM
          ? IORES_DESC_PERSISTENT_MEMORY
          : t === E820Type.PRAM
            ? IORES_DESC_PERSISTENT_MEMORY_LEGACY
            : t === E820Type.RESERVED
              ? IORES_DESC_RESERVED
              : t === E820Type.SOFT_RESERVED
                ? IORES_DESC_SOFT_RESERVED
                : IORES_DESC_NONE;
  const res = newResource(e820TypeToResourceName(t), entry.addr, entry.addr + entry.size - 1, flags, desc);
  // The legacy ROM/MMIO area below 1 MiB is always busy; reserved and persistent ranges wait for drivers.
  const deviceLike = t === E820Type.RESERVED || t === E820Type.SOFT_RESERVED || t === E820Type.PRAM || t === E820Type.PMEM;
  const busy = entry.addr < 2 ** 20 || !deviceLike;
  if (busy) res.flags = (res.flags | IORESOURCE_BUSY) >>> 0;
  return { res, busy };
}

// ref: arch/x86/kernel/e820.c ram_alignment
function ramAlignment(pos: number): number {
  const mb = Math.floor(pos / 2 ** 20);
  if (!mb) return 64 * 1024;
  if (mb < 16) return 2 ** 20;
  return 64 * 2 ** 20;
}

// ref: arch/x86/kernel/setup.c setup_arch (memory parts), arch/x86/kernel/e820.c, arch/x86/mm/numa.c
function setupArchX86(k: Kernel, spec: MachineSpec): void {
  if (!spec.e820) throw new UsageError("e820", "an x86_64 machine needs an e820 table");
  k.printk(`Command line: ${spec.commandLine}`);
  k.printk("BIOS-provided physical RAM map:");
  for (const line of formatE820Table(spec.e820, "BIOS-e820")) k.printk(line);
  const early = applyMemmapArgs(spec.e820, parseMemmapArgs(spec.commandLine));
  for (const line of early.log) k.printk(line);
  const trimmed = trimBiosRange(early.table);
  for (const line of trimmed.log) k.printk(line);
  k.e820 = { firmware: spec.e820, table: trimmed.table };

  // ref: arch/x86/kernel/e820.c e820__end_of_ram_pfn
  const maxArchPfn = k.geo.maxPfn;
  const endOfRamPfn = (limit: number) => {
    let last = 0;
    for (const e of trimmed.table) {
      if (e.type !== E820Type.RAM) continue;
      const s = Math.floor(e.addr / 4096);
      let end = Math.floor((e.addr + e.size) / 4096);
      if (s >= limit) continue;
      if (end > limit) end = limit;
      if (end > last) last = end;
    }
    if (last > maxArchPfn) last = maxArchPfn;
    k.printk(`last_pfn = 0x${last.toString(16)} max_arch_pfn = 0x${maxArchPfn.toString(16)}`);
    return last;
  };
  k.maxPfn = endOfRamPfn(maxArchPfn);
  if (k.maxPfn > 2 ** 20) endOfRamPfn(2 ** 20);
  // init_mem_mapping: on 64-bit max_low_pfn ends up equal to max_pfn.
  k.maxLowPfn = k.maxPfn;
  k.highMemory = k.pfnPhys(k.maxPfn);

  // ref: arch/x86/kernel/e820.c e820__memblock_setup
  for (const e of trimmed.table) {
    if (e.type === E820Type.RAM || e.type === E820Type.RESERVED_KERN) memblockAdd(k.memblock.memory, e.addr, e.size);
  }
  memblockTrimMemory(k.memblock.memory, k.geo.pageSize);
  for (const img of spec.kernelImage) memblockAdd(k.memblock.reserved, img.start, img.end - img.start + 1);
  numaInitX86(k, spec.numa);

  // Resources: e820 (busy ones now), the kernel image, platform devices, then the late e820 pass.
  const pending: Resource[] = [];
  for (const e of trimmed.table) {
    const { res, busy } = e820Resource(e);
    if (busy) insertResource(k.iomem, res);
    else pending.push(res);
  }
  for (const img of spec.kernelImage) insertResource(k.iomem, newResource(img.name, img.start, img.end, (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0));
  placePlatform(k, spec.platform.early);
  // ref: arch/x86/kernel/e820.c e820__reserve_resources_late
  for (const res of pending) if (!res.parent && res.end) insertResourceExpandToFit(k.iomem, res);
  for (const e of trimmed.table) {
    if (e.type !== E820Type.RAM) continue;
    const start = e.addr + e.size;
    const end = Math.ceil(start / ramAlignment(start)) * ramAlignment(start) - 1;
    if (start >= end) continue;
    k.printk(`e820: reserve RAM buffer [mem 0x${start.toString(16).padStart(8, "0")}-0x${end.toString(16).padStart(8, "0")}]`);
    reserveRegionWithSplit(k.iomem, start, end, "RAM buffer");
  }
  placePlatform(k, spec.platform.late);
}

function placePlatform(k: Kernel, list: readonly PlatformResource[]): void {
  for (const p of list) {
    if (p.op === "insert") insertResource(k.iomem, newResource(p.name, p.start, p.end, IORESOURCE_MEM));
    else if (p.op === "request") requestRegion(k.iomem, p.start, p.end - p.start + 1, p.name);
    else {
      let parent = k.iomem;
      for (const { res } of walkResources(k.iomem)) if (res.start <= p.start && res.end >= p.end) parent = res;
      insertResource(parent, newResource(p.name, p.start, p.end, IORESOURCE_MEM));
    }
  }
}

// ref: arch/x86/mm/numa.c numa_init, dummy_numa_init, numa_cleanup_meminfo, numa_meminfo_cover_memory
function numaInitX86(k: Kernel, numa: readonly NumaMemblk[]): void {
  const ram = k.memblock.memory.reduce((n, r) => n + r.size, 0);
  if (numa.length > 0) {
    let covered = 0;
    for (const r of k.memblock.memory) {
      for (const m of numa) covered += Math.max(0, Math.min(r.base + r.size, m.end) - Math.max(r.base, m.start));
    }
    // More than 1 MiB of RAM outside every node: the SRAT is not used.
    if (ram - covered <= 2 ** 20) {
      for (const m of numa) memblockSetNode(k.memblock.memory, m.start, m.end - m.start, m.node);
      for (const r of k.memblock.memory) if (r.nid < 0) r.nid = 0;
      return;
    }
    k.printk(`NUMA: nodes only cover ${Math.floor(covered / 2 ** 20)}MB of your ${Math.floor(ram / 2 ** 20)}MB e820 RAM. Not used.`);
  }
  k.printk("No NUMA configuration found");
  k.printk(`Faking a node at [mem ${hex18(0)}-${hex18(k.pfnPhys(k.maxPfn) - 1)}]`);
  for (const r of k.memblock.memory) r.nid = 0;
}

// Generic boot for arm64 and ppc64: RAM comes from the device tree / UEFI memory map.
// ref: arch/arm64/mm/init.c bootmem_init, arch/arm64/kernel/setup.c request_standard_resources
function setupArchGeneric(k: Kernel, spec: MachineSpec): void {
  if (!spec.memory || spec.memory.length === 0) throw new UsageError("memory", `an ${spec.arch.arch} machine needs memory ranges`);
  k.printk(`Kernel command line: ${spec.commandLine}`);
  for (const m of spec.memory) memblockAdd(k.memblock.memory, m.start, m.end - m.start);
  memblockTrimMemory(k.memblock.memory, k.geo.pageSize);
  for (const img of spec.kernelImage) memblockAdd(k.memblock.reserved, img.start, img.end - img.start + 1);
  if (spec.numa.length > 0) {
    for (const m of spec.numa) memblockSetNode(k.memblock.memory, m.start, m.end - m.start, m.node);
  }
  for (const r of k.memblock.memory) if (r.nid < 0) r.nid = 0;
  const last = k.memblock.memory[k.memblock.memory.length - 1]!;
  k.maxPfn = k.physPfn(last.base + last.size);
  k.maxLowPfn = k.maxPfn;
  k.highMemory = k.pfnPhys(k.maxPfn);
  for (const r of k.memblock.memory) {
    const res = newResource("System RAM", r.base, r.base + r.size - 1, (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0);
    insertResource(k.iomem, res);
  }
  for (const img of spec.kernelImage) insertResource(k.iomem, newResource(img.name, img.start, img.end, (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0));
  placePlatform(k, spec.platform.early);
  placePlatform(k, spec.platform.late);
}
