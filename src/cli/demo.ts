/**
 * `zonedev demo`: what the model shows on the oracle's machine today. Later work extends the story
 * (namespaces, pgmaps, races); each step here is computed, nothing is canned.
 */
import { bootKernel } from "../kernel/boot.ts";
import { errnoName } from "../kernel/errno.ts";
import { addMemory, memoryBlockStateStore } from "../kernel/mm/memory_hotplug.ts";
import { DEFAULT_PRESET, machinePreset } from "../machine/presets.ts";
import { renderIomem } from "../report/iomem.ts";
import { renderSummary } from "../report/layout.ts";
import { renderMemoryBlocks } from "../report/memory_blocks.ts";
import { renderSections } from "../report/sections.ts";
import { renderZoneinfo } from "../report/zoneinfo.ts";

export function runDemo(): string {
  const spec = machinePreset(DEFAULT_PRESET);
  const k = bootKernel(spec);
  const out: string[] = [];
  out.push("zonedev demo: the oracle's QEMU guest, modelled (Linux 6.1, x86_64)\n");
  out.push(renderSummary(k, spec.name));
  out.push("1. The kernel command line says memmap=1G!4G, so the e820 RAM at 4 GiB becomes legacy pmem:");
  out.push(k.log.filter((l) => l.startsWith("user: [mem 0x0000000100000000") || l.startsWith("last_pfn")).map((l) => `   ${l}`).join("\n"));
  out.push("\n   /proc/iomem (the pmem range waits for the nd_e820 driver):");
  out.push(renderIomem(k).split("\n").filter((l) => /System RAM|Persistent|^1|^fd/.test(l)).map((l) => `   ${l}`).join("\n"));
  out.push("\n2. Zones as free_area_init computed them (start_pfn/spanned/present match the real 6.1 guest):");
  out.push(renderZoneinfo(k).trimEnd().split("\n").map((l) => `   ${l}`).join("\n"));
  out.push("\n3. Sparsemem: 16 early sections cover boot RAM; the pmem range has no memmap yet:");
  out.push(renderSections(k).trimEnd().split("\n").map((l) => `   ${l}`).join("\n"));
  const start = 8 * 2 ** 30;
  const rc = addMemory(k, 0, start, 256 * 2 ** 20);
  const first = k.memoryBlocks.idForSection(k.sections.pfnToSectionNr(k.physPfn(start)));
  const rc2 = memoryBlockStateStore(k, first, "online_movable");
  const rc3 = memoryBlockStateStore(k, first, "online_movable");
  out.push(`\n4. RAM hot-plug: add_memory(nid 0, 8 GiB, 256 MiB) = ${errnoName(rc)}; echo online_movable > memory${first}/state = ${errnoName(rc2)}; again = ${errnoName(rc3)}`);
  out.push(renderMemoryBlocks(k).trimEnd().split("\n").slice(-2).map((l) => `   ${l}`).join("\n"));
  out.push(`   max_pfn is now 0x${k.maxPfn.toString(16)} (x86 add_pages raises it for RAM, never for ZONE_DEVICE in 6.1.192)`);
  out.push(renderZoneinfo(k).split("Node 0, zone  Movable")[1]!.split("Node")[0]!.trimEnd().split("\n").map((l) => `   ${l}`).join("\n").replace(/^ {3}/, "   Node 0, zone  Movable"));
  out.push("\nNext: `zonedev layout --preset qemu-q35-3g-pmem1g`, `--dmesg your-dmesg.txt`, `zonedev presets`.");
  return out.join("\n");
}
