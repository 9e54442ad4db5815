/**
 * /sys/devices/system/memory: block_size_bytes, auto_online_blocks and each memoryN's attributes
 * (drivers/base/memory.c phys_index_show, state_show, valid_zones_show, ...).
 */
import { validZones } from "../kernel/drivers/base/memory.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { blockPfns } from "../kernel/mm/memory_hotplug.ts";

export { validZones };

const SYSFS = "/sys/devices/system/memory";

export interface MemoryBlockJson {
  name: string;
  physIndex: string;
  state: string;
  online: number;
  validZones: string;
  removable: number;
  physDevice: number;
  node: number;
  startPfn: number;
  nrPages: number;
}

export function memoryBlocksJson(k: Kernel): MemoryBlockJson[] {
  return k.memoryBlocks.all().map((mem) => {
    const { start, nr } = blockPfns(k, mem);
    return {
      name: `memory${mem.id}`,
      physIndex: mem.startSectionNr.toString(16).padStart(8, "0"),
      state: mem.state,
      online: mem.state === "online" ? 1 : 0,
      validZones: validZones(k, mem),
      removable: 1,
      physDevice: 0,
      node: Math.max(mem.nid, 0),
      startPfn: start,
      nrPages: nr,
    };
  });
}

/** One line per block, as `zonedev layout` prints them. */
export function renderMemoryBlocks(k: Kernel): string {
  let out = `block_size_bytes=${k.memoryBlocks.blockSize.toString(16)}\nauto_online_blocks=${k.autoOnlineBlocks}\n`;
  for (const b of memoryBlocksJson(k)) {
    out += `${b.name} phys_index=${b.physIndex} state=${b.state} online=${b.online} valid_zones="${b.validZones}" removable=${b.removable} phys_device=${b.physDevice} node=${b.node}\n`;
  }
  return out;
}

/** The same as sysfs `path = value` lines, with the kernel's absolute paths. */
export function memoryBlocksSysfs(k: Kernel): string[] {
  const lines = [
    `${SYSFS}/block_size_bytes = ${k.memoryBlocks.blockSize.toString(16)}`,
    `${SYSFS}/auto_online_blocks = ${k.autoOnlineBlocks}`,
  ];
  for (const b of memoryBlocksJson(k)) {
    const dir = `${SYSFS}/${b.name}`;
    lines.push(`${dir}/phys_index = ${b.physIndex}`, `${dir}/state = ${b.state}`, `${dir}/online = ${b.online}`);
    lines.push(`${dir}/valid_zones = ${b.validZones}`, `${dir}/removable = ${b.removable}`, `${dir}/phys_device = ${b.physDevice}`);
  }
  return lines;
}
