/**
 * Memory block devices: /sys/devices/system/memory (drivers/base/memory.c).
 */
import type { Kernel, OnlineType } from "../../kernel.ts";
import { NUMA_NO_NODE } from "../../mm/memblock.ts";
import { blockPfns, memoryBlockStateStore, zoneForPfnRange } from "../../mm/memory_hotplug.ts";
import { populatedZone, type Zone, zoneIntersects } from "../../mm/mmzone.ts";
import { ro, rw, type SysfsDir, type SysfsProvider } from "../../sysfs.ts";

export type MemoryBlockState = "online" | "offline" | "going-offline";

export interface MemoryBlock {
  readonly id: number;
  readonly startSectionNr: number;
  state: MemoryBlockState;
  nid: number;
  /** The single zone the block's pages are in when online; null when it spans several (then "none"). */
  zone: Zone | null;
  /** Pages of the block that hold its own memmap (memmap_on_memory). */
  nrVmemmapPages: number;
  /** Added at boot (early) or by hot-plug. */
  readonly early: boolean;
}

export class MemoryBlocks {
  readonly blockSize: number;
  readonly sectionsPerBlock: number;
  private readonly blocks = new Map<number, MemoryBlock>();

  constructor(blockSize: number, sectionBytes: number) {
    this.blockSize = blockSize;
    this.sectionsPerBlock = blockSize / sectionBytes;
  }

  /** memory_block_id() */
  idForSection(sectionNr: number): number {
    return Math.floor(sectionNr / this.sectionsPerBlock);
  }

  get(id: number): MemoryBlock | undefined {
    return this.blocks.get(id);
  }

  add(block: MemoryBlock): void {
    this.blocks.set(block.id, block);
  }

  remove(id: number): void {
    this.blocks.delete(id);
  }

  all(): MemoryBlock[] {
    return [...this.blocks.values()].sort((a, b) => a.id - b.id);
  }

  count(): number {
    return this.blocks.size;
  }
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** memory_block_size_bytes() for the arch, computed once at boot. */
// ref: arch/x86/mm/init_64.c probe_memory_block_size; drivers/base/memory.c memory_block_size_bytes
export function probeMemoryBlockSize(k: Kernel, override: number | undefined): number {
  const minBlock = k.geo.sectionBytes;
  let bz: number;
  const rule = k.arch.memoryBlock;
  if (override !== undefined) bz = override;
  else if (rule.kind === "section") bz = minBlock;
  else if (rule.kind === "fixed") bz = rule.bytes;
  else {
    const MAX_BLOCK_SIZE = 2 * GiB;
    const bootMemEnd = k.pfnPhys(k.maxPfn);
    if (bootMemEnd < 64 * GiB) bz = minBlock;
    else if (!k.hypervisor) bz = MAX_BLOCK_SIZE;
    else {
      // The largest allowed size that divides the end of boot memory.
      for (bz = MAX_BLOCK_SIZE; bz > minBlock; bz /= 2) if (bootMemEnd % bz === 0) break;
    }
  }
  if (k.arch.arch === "x86_64") k.printk(`x86/mm: Memory block size: ${bz / MiB}MB`);
  return bz;
}

// ref: drivers/base/memory.c memory_dev_init, add_boot_memory_block; drivers/base/node.c register_mem_block_under_node_early
export function memoryDevInit(k: Kernel, blockSize: number): void {
  k.memoryBlocks = new MemoryBlocks(blockSize, k.geo.sectionBytes);
  k.sysfs.register(memorySysfsProvider(), "/sys/devices/system/memory");
  const spb = k.memoryBlocks.sectionsPerBlock;
  for (let nr = 0; nr <= k.sections.highestPresentSectionNr; nr += spb) {
    let present = false;
    for (let s = nr; s < nr + spb; s++) if (k.sections.present(s)) present = true;
    if (!present) continue;
    k.memoryBlocks.add({
      id: k.memoryBlocks.idForSection(nr),
      startSectionNr: nr,
      state: "online",
      nid: NUMA_NO_NODE,
      zone: null,
      nrVmemmapPages: 0,
      early: true,
    });
  }
  // Register each block under every node whose boot memory falls into it (memory_block_add_nid, early).
  for (const pgdat of k.sortedNodes()) {
    for (const mem of k.memoryBlocks.all()) {
      const start = k.sections.sectionNrToPfn(mem.startSectionNr);
      const end = start + blockSize / k.geo.pageSize;
      const hasNode = k.memblock.memory.some((r) => {
        if (r.nid !== pgdat.nodeId) return false;
        const rs = k.physPfn(r.base);
        const re = k.physPfn(r.base + r.size);
        return rs < end && re > start;
      });
      if (!hasNode) continue;
      if (mem.nid !== pgdat.nodeId) {
        mem.zone = mem.nid === NUMA_NO_NODE ? earlyNodeZoneForMemoryBlock(k, mem, pgdat.nodeId) : null;
      }
      mem.nid = pgdat.nodeId;
    }
  }
}

// ref: drivers/base/memory.c early_node_zone_for_memory_block
function earlyNodeZoneForMemoryBlock(k: Kernel, mem: MemoryBlock, nid: number): Zone | null {
  const start = k.sections.sectionNrToPfn(mem.startSectionNr);
  const nr = k.memoryBlocks.blockSize / k.geo.pageSize;
  let matching: Zone | null = null;
  for (const zone of k.nodeData(nid).zones) {
    if (!populatedZone(zone) || !zoneIntersects(zone, start, nr)) continue;
    if (matching) return null; // spans several zones
    matching = zone;
  }
  return matching;
}

// ref: drivers/base/memory.c valid_zones_show
export function validZones(k: Kernel, mem: MemoryBlock): string {
  if (mem.state === "online") return mem.zone ? mem.zone.name : "none";
  const { start, nr } = blockPfns(k, mem);
  const def = zoneForPfnRange(k, "online", mem.nid, start, nr);
  let out = def.name;
  for (const type of ["online_kernel", "online_movable"] as const) {
    const z = zoneForPfnRange(k, type, mem.nid, start, nr);
    if (z !== def) out += ` ${z.name}`;
  }
  return out;
}

/** /sys/devices/system/memory and its memoryN directories. */
// ref: drivers/base/memory.c memory_root_attrs, memory_memblk_attrs
export function memorySysfsProvider(): SysfsProvider {
  return (k) => {
    const root = "/sys/devices/system/memory";
    const dirs: SysfsDir[] = [
      {
        path: root,
        driver: "",
        attrs: new Map([
          ["block_size_bytes", ro(() => k.memoryBlocks.blockSize.toString(16))],
          ["auto_online_blocks", ro(() => k.autoOnlineBlocks)],
        ]),
      },
    ];
    for (const mem of k.memoryBlocks.all()) {
      dirs.push({
        path: `${root}/memory${mem.id}`,
        driver: "",
        attrs: new Map([
          ["phys_index", ro(() => mem.startSectionNr.toString(16).padStart(8, "0"))],
          ["state", rw(() => mem.state, (v) => memoryBlockStateStore(k, mem.id, v))],
          ["online", ro(() => (mem.state === "online" ? "1" : "0"))],
          ["valid_zones", ro(() => validZones(k, mem))],
          ["removable", ro(() => "1")],
          ["phys_device", ro(() => "0")],
        ]),
      });
    }
    return dirs;
  };
}

export const ONLINE_TYPES: readonly OnlineType[] = ["offline", "online", "online_kernel", "online_movable"];
