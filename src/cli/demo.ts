/**
 * `zonedev demo`: what the model shows on the oracle's machine today. Later work extends the story
 * (namespaces, pgmaps, races); each step here is computed, nothing is canned.
 */

import { fileURLToPath } from "node:url";
import { bootKernel } from "../kernel/boot.ts";
import { errnoName } from "../kernel/errno.ts";
import { MemoryType } from "../kernel/mm/dev_pagemap.ts";
import { addMemory, memoryBlockStateStore } from "../kernel/mm/memory_hotplug.ts";
import { getDevPagemap, memremapPages, memunmapPages, newDevPagemap } from "../kernel/mm/memremap.ts";
import { Hang, runToEnd } from "../kernel/path.ts";
import { DEFAULT_PRESET, machinePreset } from "../machine/presets.ts";
import { renderIomem } from "../report/iomem.ts";
import { renderSummary } from "../report/layout.ts";
import { renderMemoryBlocks } from "../report/memory_blocks.ts";
import { pgmapJson, pgmapsJson, renderPgmaps } from "../report/pgmaps.ts";
import { renderSections } from "../report/sections.ts";
import { renderZoneinfo } from "../report/zoneinfo.ts";
import { builtinCommands } from "../scenario/commands.ts";
import { exploreScenario, replayScenario } from "../scenario/explore.ts";
import { loadScenario } from "../scenario/load.ts";
import { renderExploration, renderTrace } from "../scenario/render_explore.ts";
import { tokenize } from "../scenario/tokenize.ts";

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

  // ZONE_DEVICE: what nd_pmem did at boot, then a device-dax-like pgmap and a teardown that cannot finish.
  out.push("\n5. ZONE_DEVICE: at boot nd_pmem memremapped the raw legacy namespace as MEMORY_DEVICE_FS_DAX:");
  out.push(renderPgmaps(k).trimEnd().split("\n").map((l) => `   ${l}`).join("\n"));
  out.push(`   The Device zone spans it (spanned ${k.zone(0, "Device")!.spannedPages}, present 0), as the real kernel's /proc/zoneinfo shows.`);
  const G = 2 ** 30;
  const dax = newDevPagemap(k, { device: "dax1.0", type: MemoryType.GENERIC, ranges: [{ start: 16 * G, end: 20 * G - 1 }], vmemmapShift: 9 });
  const rcDax = runToEnd(memremapPages(k, dax, 0));
  const cost = pgmapJson(k, dax).memmap;
  out.push(`\n6. memremap_pages(4 GiB device-dax at 16 GiB, 2 MiB compound pages) = ${errnoName(rcDax)}: ${cost.structPages} struct pages`);
  out.push(`   would take ${cost.structPages * k.arch.structPageSize / 2 ** 20} MiB; with vmemmap dedup the kernel spends ${cost.ramBytes / 2 ** 20} MiB of RAM + ${cost.pageTableBytes / 1024} KiB of page tables.`);
  const held = runToEnd(getDevPagemap(k, k.physPfn(16 * G), "a GUP walker in the middle of get_user_pages"));
  out.push(`\n7. A GUP walker holds a transient reference (get_dev_pagemap) while the driver unbinds: memunmap_pages`);
  try {
    runToEnd(memunmapPages(k, dax));
    out.push("   finished");
  } catch (e) {
    if (!(e instanceof Hang)) throw e;
    out.push(`   blocks in ${e.at}:\n   ${e.holder}`);
  }
  out.push(`   (new lookups already fail: get_dev_pagemap returns ${runToEnd(getDevPagemap(k, k.physPfn(16 * G), "late lookup")) === null ? "NULL" : "a pgmap"} once percpu_ref_kill ran)`);
  void held;

  // The fsdax story: the namespace takes an info block and moves its memmap into the device.
  const k2 = bootKernel(machinePreset(DEFAULT_PRESET));
  const cmd = "ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev";
  const ndctl = builtinCommands().get("ndctl")!.run(k2, tokenize(cmd), { where: "demo" });
  out.push(`\n8. On a fresh boot of the same machine: $ ${cmd}   (rc ${ndctl.rc})`);
  out.push(ndctl.stdout.trimEnd().split("\n").map((l) => `   ${l}`).join("\n"));
  const live = pgmapsJson(k2).find((p) => p.state === "live")!;
  const head = (live.ranges[0]!.firstDevicePfn - k2.physPfn(live.ranges[0]!.start)) * k2.geo.pageSize;
  out.push("   The pmem driver let go of the raw namespace (its pgmap exited) and pfn0.0 memremapped it with the");
  out.push(`   memmap stored in the device itself (vmem_altmap): ${head / 2 ** 20} MiB of info block + memmap ahead of the data.`);
  const blocks = renderPgmaps(k2).trimEnd().split(/\n(?=pgmap )/);
  out.push(blocks.filter((b) => b.includes(", live,")).join("\n").split("\n").map((l) => `   ${l}`).join("\n"));
  out.push(renderIomem(k2).split("\n").filter((l) => /Persistent|namespace|pfn/.test(l)).map((l) => `   ${l}`).join("\n"));
  out.push(...exploreStory());
  out.push("\nNext: `zonedev layout --preset qemu-q35-3g-pmem1g`, `--dmesg your-dmesg.txt`, `zonedev run scenarios/*.yaml`, `zonedev explore scenarios/seed*.yaml`, `zonedev presets`.");
  return out.join("\n");
}

/** The race explorer on one of the bundled scenarios: find the hang, then replay its token. */
function exploreStory(): string[] {
  const file = fileURLToPath(new URL("../../scenarios/driver-leaks-page-ref.yaml", import.meta.url));
  const s = loadScenario(file, builtinCommands());
  const e = exploreScenario(s);
  const out = [`\n9. Races: ${s.name}. Two threads — a driver allocating a device page, the device's teardown — explored:`];
  out.push(...renderExploration(e, null).trimEnd().split("\n").slice(2, 6).map((l) => `   ${l}`));
  const c = e.counterexample;
  if (c) {
    out.push(`   Replaying the shortest schedule (zonedev replay scenarios/driver-leaks-page-ref.yaml --schedule ${c.trace.token}):`);
    const t = replayScenario(s, c.trace.token);
    out.push(...renderTrace(t, null).trimEnd().split("\n").slice(1).map((l) => `   ${l}`));
  }
  return out;
}
