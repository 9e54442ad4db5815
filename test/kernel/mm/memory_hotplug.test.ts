/**
 * RAM hot-plug on the oracle guest (qemu-q35-3g-pmem1g: RAM [4K, 0x9f000) + [1M, 0x7ffdf000), legacy pmem at
 * [4G, 5G), 64-bit PCI window 0x140000000-0x93fffffff, 128 MiB blocks), checked against mm/memory_hotplug.c
 * (__add_memory, register_memory_resource, add_memory_resource, online_pages, offline_pages, zone_for_pfn_range,
 * shrink_zone_span, try_remove_memory), drivers/base/memory.c (state_store, valid_zones_show) and
 * arch/x86/mm/init_64.c (add_pages, update_end_of_memory_vars).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { E2BIG, EBUSY, EEXIST, EINVAL } from "../../../src/kernel/errno.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { PageState } from "../../../src/kernel/mm/memmap.ts";
import {
  addMemory,
  archAddMemory,
  checkHotplugMemoryRange,
  memoryBlockStateStore,
  pfnToOnlinePage,
  removeMemory,
} from "../../../src/kernel/mm/memory_hotplug.ts";
import type { Zone, ZoneName } from "../../../src/kernel/mm/mmzone.ts";
import { SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_IS_ONLINE, SECTION_MARKED_PRESENT } from "../../../src/kernel/mm/sparse.ts";
import {
  IORES_DESC_NONE,
  IORES_DESC_PERSISTENT_MEMORY_LEGACY,
  IORESOURCE_BUSY,
  IORESOURCE_SYSRAM_DRIVER_MANAGED,
  IORESOURCE_SYSTEM_RAM,
  REGION_DISJOINT,
  REGION_INTERSECTS,
  type Resource,
  regionIntersects,
  walkResources,
} from "../../../src/kernel/resource.ts";
import { MACHINE_PRESETS, machinePreset } from "../../../src/machine/presets.ts";
import { resolveMachine } from "../../../src/machine/spec.ts";
import { renderIomem } from "../../../src/report/iomem.ts";
import { validZones } from "../../../src/report/memory_blocks.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const BLOCK = 128 * MiB;
const NR = BLOCK / 4096; // 32768 pages per block / section
const G8 = 8 * GiB;
const PFN_8G = G8 / 4096; // 0x200000
const RAM_BUSY = (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0;
const HOTADDED = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP;
const BOOT = HOTADDED | SECTION_IS_ONLINE | SECTION_IS_EARLY;

const ORACLE = "qemu-q35-3g-pmem1g";
// Boot RAM only: no nd_pmem, so [4 GiB, 5 GiB) is legacy pmem nobody has mapped yet.
const boot = (): Kernel => bootKernel({ ...machinePreset(ORACLE), modules: [] });

function withAppend(extra: string) {
  const file = MACHINE_PRESETS[ORACLE]!.file;
  return resolveMachine({ ...file, name: ORACLE, append: `${file.append ?? ""} ${extra}` }, "test");
}

function zone(k: Kernel, name: ZoneName): Zone {
  const z = k.zone(0, name);
  assert.ok(z, `no zone ${name}`);
  return z;
}

function block(k: Kernel, id: number) {
  const mem = k.memoryBlocks.get(id);
  assert.ok(mem, `no memory${id}`);
  return mem;
}

function findRam(k: Kernel, start: number): { res: Resource; depth: number } | undefined {
  for (const e of walkResources(k.iomem)) if (e.res.start === start && e.res.name.startsWith("System RAM")) return e;
  return undefined;
}

describe("boot memory blocks of the oracle guest", () => {
  it("16 blocks, online; memory0 spans DMA and DMA32 (valid_zones none), the others are DMA32", () => {
    const k = boot();
    assert.equal(k.memoryBlocks.count(), 16);
    assert.equal(k.memoryBlockSizeBytes(), BLOCK);
    assert.equal(validZones(k, block(k, 0)), "none");
    for (let id = 1; id < 16; id++) {
      assert.equal(block(k, id).state, "online");
      assert.equal(validZones(k, block(k, id)), "DMA32");
    }
    assert.equal(k.memoryBlocks.get(16), undefined);
    assert.equal(k.autoOnlineBlocks, "offline", "Debian: MEMORY_HOTPLUG_DEFAULT_ONLINE is not set");
  });

  it("offline of a boot block: present and present_early drop (adjust_present_page_count), the span stays", () => {
    const k = boot();
    const dma32 = zone(k, "DMA32");
    const before = { ...dma32 };
    const nodePresent = k.nodeData(0).nodePresentPages;
    assert.equal(memoryBlockStateStore(k, 5, "offline"), 0);
    assert.equal(dma32.presentPages, before.presentPages - NR);
    assert.equal(dma32.presentEarlyPages, before.presentEarlyPages - NR);
    assert.equal(dma32.managedPages, before.managedPages - NR);
    assert.equal(k.nodeData(0).nodePresentPages, nodePresent - NR);
    assert.equal(dma32.zoneStartPfn, before.zoneStartPfn);
    assert.equal(dma32.spannedPages, before.spannedPages);
    assert.equal(k.sections.flags(5), BOOT & ~SECTION_IS_ONLINE);
    assert.equal(pfnToOnlinePage(k, 5 * NR + 100), false);
    assert.equal(dma32.buddy.contains(5 * NR), false);
    assert.equal(dma32.buddy.contains(6 * NR - 1), false);
    // Offline, inside DMA32 and outside Movable: default DMA32, online_movable adds Movable.
    assert.equal(validZones(k, block(k, 5)), "DMA32 Movable");
    assert.equal(memoryBlockStateStore(k, 5, "online"), 0);
    assert.equal(block(k, 5).zone, dma32);
    assert.equal(dma32.presentPages, before.presentPages);
    assert.equal(dma32.presentEarlyPages, before.presentEarlyPages);
    assert.equal(dma32.managedPages, before.managedPages);
    assert.equal(k.sections.flags(5), BOOT);
  });

  it("offline of a block with a hole is -EINVAL (offline_pages: memory holes); of a multi-zone block too", () => {
    const k = boot();
    const dma32 = zone(k, "DMA32");
    const present = dma32.presentPages;
    // memory15 = [0x78000000, 0x80000000): System RAM ends at 0x7ffdf000.
    assert.equal(memoryBlockStateStore(k, 15, "offline"), -EINVAL);
    assert.equal(block(k, 15).state, "online");
    assert.equal(dma32.presentPages, present);
    assert.equal(k.sections.flags(15), BOOT);
    // memory0: mem->zone == NULL.
    assert.equal(memoryBlockStateStore(k, 0, "offline"), -EINVAL);
    assert.equal(block(k, 0).state, "online");
  });
});

describe("add_memory at 8 GiB (inside the non-busy 64-bit PCI window)", () => {
  it("adds offline blocks, a nested busy System RAM resource, hot-added sections, and raises max_pfn", () => {
    const k = boot();
    const iomemBefore = renderIomem(k);
    const movable = { ...zone(k, "Movable") };
    assert.equal(k.maxPfn, 0x7ffdf);
    assert.equal(addMemory(k, 0, G8, 2 * BLOCK), 0);

    assert.equal(k.memoryBlocks.count(), 18);
    for (const id of [64, 65]) {
      const mem = block(k, id);
      assert.equal(mem.state, "offline");
      assert.equal(mem.nid, 0);
      assert.equal(mem.zone, null);
      assert.equal(mem.startSectionNr, id);
      // Above every zone: default = Normal (default_kernel_zone_for_pfn), online_kernel = Normal (not printed
      // again), online_movable = Movable.
      assert.equal(validZones(k, mem), "Normal Movable");
      assert.equal(k.sections.flags(id), HOTADDED);
    }
    // __request_region descends into "PCI Bus 0000:00" (not busy): the RAM nests under it.
    const ram = findRam(k, G8);
    assert.ok(ram);
    assert.equal(ram.depth, 1);
    assert.equal(ram.res.parent?.name, "PCI Bus 0000:00");
    assert.equal(ram.res.end, G8 + 2 * BLOCK - 1);
    assert.equal(ram.res.name, "System RAM");
    assert.equal(ram.res.flags >>> 0, RAM_BUSY);
    assert.equal(ram.res.desc, IORES_DESC_NONE);
    assert.equal(regionIntersects(k.iomem, G8, 2 * BLOCK, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE), REGION_INTERSECTS);
    assert.ok(renderIomem(k).includes("140000000-93fffffff : PCI Bus 0000:00\n  200000000-20fffffff : System RAM\n"));
    assert.notEqual(renderIomem(k), iomemBefore);

    assert.equal(k.sections.pfnValid(PFN_8G), true);
    assert.equal(k.sections.pfnValid(PFN_8G + 2 * NR), false);
    assert.equal(pfnToOnlinePage(k, PFN_8G), false);
    // x86 add_pages -> update_end_of_memory_vars.
    assert.equal(k.maxPfn, PFN_8G + 2 * NR);
    assert.equal(k.maxLowPfn, PFN_8G + 2 * NR);
    assert.equal(k.highMemory, G8 + 2 * BLOCK);
    // Adding does not touch zones.
    assert.deepEqual({ ...zone(k, "Movable") }, movable);
  });

  it("online_movable, offline, remove: zone span, present, managed, buddy, sections and iomem follow", () => {
    const k = boot();
    const iomemBoot = renderIomem(k);
    const node = k.nodeData(0);
    const nodeBoot = { start: node.nodeStartPfn, spanned: node.nodeSpannedPages, present: node.nodePresentPages };
    assert.equal(addMemory(k, 0, G8, 2 * BLOCK), 0);
    const mov = zone(k, "Movable");
    assert.equal(memoryBlockStateStore(k, 64, "online_movable"), 0);
    assert.equal(block(k, 64).state, "online");
    assert.equal(block(k, 64).zone, mov);
    assert.equal(mov.zoneStartPfn, PFN_8G);
    assert.equal(mov.spannedPages, NR);
    assert.equal(mov.presentPages, NR);
    assert.equal(mov.managedPages, NR);
    assert.equal(mov.buddy.freePages(), NR);
    assert.equal(mov.buddy.nrFree(10), NR / 1024, "online_pages_range frees MAX_ORDER-1 chunks");
    assert.equal(mov.buddy.contains(PFN_8G), true);
    assert.equal(mov.buddy.contains(PFN_8G + NR - 1), true);
    assert.equal(mov.buddy.contains(PFN_8G + NR), false);
    assert.equal(k.sections.flags(64), HOTADDED | SECTION_IS_ONLINE);
    assert.equal(k.sections.flags(65), HOTADDED);
    assert.equal(pfnToOnlinePage(k, PFN_8G), true);
    const page = k.memmap.get(PFN_8G + 5);
    assert.equal(page.state, PageState.Initialised);
    assert.equal(page.zone, mov.idx);
    assert.equal(page.refcount, 0);
    assert.equal(node.nodePresentPages, nodeBoot.present + NR);
    assert.equal(node.nodeStartPfn, nodeBoot.start);
    assert.equal(node.nodeStartPfn + node.nodeSpannedPages, PFN_8G + NR);
    assert.equal(validZones(k, block(k, 64)), "Movable");
    // The neighbour above does not intersect Movable ([8G, 8G+128M)): still "Normal Movable".
    assert.equal(validZones(k, block(k, 65)), "Normal Movable");

    // Already online: device_online returns 1, state_store turns it into -EINVAL.
    assert.equal(memoryBlockStateStore(k, 64, "online"), -EINVAL);
    assert.equal(memoryBlockStateStore(k, 64, "online_kernel"), -EINVAL);
    assert.equal(memoryBlockStateStore(k, 64, "bogus"), -EINVAL);
    // try_remove_memory: a block in the range is online.
    assert.equal(removeMemory(k, G8, 2 * BLOCK), -EBUSY);
    assert.equal(removeMemory(k, G8, BLOCK), -EBUSY);
    assert.equal(k.memoryBlocks.count(), 18);

    assert.equal(memoryBlockStateStore(k, 64, "offline"), 0);
    assert.equal(block(k, 64).state, "offline");
    assert.equal(block(k, 64).zone, null);
    // shrink_zone_span: nothing of Movable is left online, so the span goes to 0/0.
    assert.equal(mov.zoneStartPfn, 0);
    assert.equal(mov.spannedPages, 0);
    assert.equal(mov.presentPages, 0);
    assert.equal(mov.managedPages, 0);
    assert.equal(mov.buddy.freePages(), 0);
    assert.equal(mov.buddy.contains(PFN_8G), false);
    assert.equal(k.sections.flags(64), HOTADDED);
    assert.equal(pfnToOnlinePage(k, PFN_8G), false);
    assert.equal(k.memmap.state(PFN_8G), PageState.TornDown, "remove_pfn_range_from_zone poisons the memmap");
    assert.deepEqual({ start: node.nodeStartPfn, spanned: node.nodeSpannedPages, present: node.nodePresentPages }, nodeBoot);
    assert.equal(memoryBlockStateStore(k, 64, "offline"), -EINVAL);

    assert.equal(removeMemory(k, G8, 2 * BLOCK), 0);
    assert.equal(k.memoryBlocks.count(), 16);
    assert.equal(k.memoryBlocks.get(64), undefined);
    assert.equal(k.sections.flags(64), 0);
    assert.equal(k.sections.flags(65), 0);
    assert.equal(k.sections.hasUsage(64), false);
    assert.equal(k.sections.pfnValid(PFN_8G), false);
    assert.equal(k.vmemmap.ramBytes, 0);
    assert.equal(findRam(k, G8), undefined);
    assert.equal(renderIomem(k), iomemBoot);
    assert.equal(regionIntersects(k.iomem, G8, 2 * BLOCK, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE), REGION_DISJOINT);
    // max_pfn never goes down.
    assert.equal(k.maxPfn, PFN_8G + 2 * NR);
  });

  it("removing part of an added range shrinks the resource (release_mem_region_adjustable)", () => {
    const k = boot();
    assert.equal(addMemory(k, 0, G8, 3 * BLOCK), 0);
    assert.equal(removeMemory(k, G8, BLOCK), 0);
    let ram = findRam(k, G8 + BLOCK);
    assert.ok(ram);
    assert.equal(ram.res.end, G8 + 3 * BLOCK - 1);
    assert.equal(k.memoryBlocks.count(), 18);
    assert.equal(removeMemory(k, G8 + 2 * BLOCK, BLOCK), 0);
    ram = findRam(k, G8 + BLOCK);
    assert.ok(ram);
    assert.equal(ram.res.end, G8 + 2 * BLOCK - 1);
    // The freed part can be added again.
    assert.equal(addMemory(k, 0, G8, BLOCK), 0);
    assert.equal(k.memoryBlocks.count(), 18);
  });

  it("default online above all zones goes to Normal; a block between two Movable blocks defaults to Movable", () => {
    const k = boot();
    assert.equal(addMemory(k, 0, G8, 4 * BLOCK), 0);
    assert.equal(memoryBlockStateStore(k, 64, "online"), 0);
    const normal = zone(k, "Normal");
    assert.equal(block(k, 64).zone, normal);
    assert.equal(normal.zoneStartPfn, PFN_8G);
    assert.equal(normal.spannedPages, NR);
    assert.equal(normal.presentPages, NR);
    assert.equal(zone(k, "Movable").spannedPages, 0);
    assert.equal(validZones(k, block(k, 64)), "Normal");

    assert.equal(memoryBlockStateStore(k, 65, "online_movable"), 0);
    assert.equal(memoryBlockStateStore(k, 67, "online_movable"), 0);
    const mov = zone(k, "Movable");
    assert.equal(mov.zoneStartPfn, PFN_8G + NR);
    assert.equal(mov.spannedPages, 3 * NR);
    assert.equal(mov.presentPages, 2 * NR);
    // memory66 lies inside the Movable span only: default Movable, online_kernel gives Normal.
    assert.equal(validZones(k, block(k, 66)), "Movable Normal");
    assert.equal(memoryBlockStateStore(k, 66, "online"), 0);
    assert.equal(block(k, 66).zone, mov);
    // Offlining the middle of Movable does not shrink it; offlining its first block moves the start.
    assert.equal(memoryBlockStateStore(k, 66, "offline"), 0);
    assert.equal(mov.spannedPages, 3 * NR);
    assert.equal(memoryBlockStateStore(k, 65, "offline"), 0);
    assert.equal(mov.zoneStartPfn, PFN_8G + 3 * NR);
    assert.equal(mov.spannedPages, NR);
    assert.equal(memoryBlockStateStore(k, 66, "online_kernel"), 0);
    assert.equal(block(k, 66).zone, normal);
    // Normal grows over the offline hole at memory65.
    assert.equal(normal.zoneStartPfn, PFN_8G);
    assert.equal(normal.spannedPages, 3 * NR);
    assert.equal(normal.presentPages, 2 * NR);
    // Offlining Normal's last block: shrink_zone_span finds the biggest online Normal pfn below it.
    assert.equal(memoryBlockStateStore(k, 66, "offline"), 0);
    assert.equal(normal.zoneStartPfn, PFN_8G);
    assert.equal(normal.spannedPages, NR);
  });

  it("errors: block alignment, size 0, twice, overlap, beyond MAX_PHYSMEM_BITS, resource names", () => {
    const k = boot();
    const iomemBoot = renderIomem(k);
    assert.equal(checkHotplugMemoryRange(k, G8, 0), -EINVAL);
    assert.equal(checkHotplugMemoryRange(k, G8 + 64 * MiB, BLOCK), -EINVAL);
    assert.equal(checkHotplugMemoryRange(k, G8, 64 * MiB), -EINVAL);
    assert.equal(checkHotplugMemoryRange(k, G8, BLOCK), 0);
    // __add_memory registers the resource first: size 0 fails mhp_range_allowed (start < start + size).
    assert.equal(addMemory(k, 0, G8, 0), -E2BIG);
    // Misaligned: the resource is requested, then check_hotplug_memory_range fails and it is released.
    assert.equal(addMemory(k, 0, G8 + 64 * MiB, BLOCK), -EINVAL);
    assert.equal(addMemory(k, 0, G8, 64 * MiB), -EINVAL);
    assert.equal(renderIomem(k), iomemBoot);
    assert.equal(k.memoryBlocks.count(), 16);
    assert.equal(k.maxPfn, 0x7ffdf);
    // Beyond PHYSMEM_END (46 bits).
    assert.equal(addMemory(k, 0, 2 ** 46, BLOCK), -E2BIG);
    assert.equal(addMemory(k, 0, 2 ** 46 - BLOCK, 2 * BLOCK), -E2BIG);
    // Twice, and overlapping: __request_region conflicts with the busy RAM.
    assert.equal(addMemory(k, 0, G8, 2 * BLOCK), 0);
    assert.equal(addMemory(k, 0, G8, 2 * BLOCK), -EEXIST);
    assert.equal(addMemory(k, 0, G8 + BLOCK, 2 * BLOCK), -EEXIST);
    assert.equal(addMemory(k, 0, G8 - BLOCK, 2 * BLOCK), -EEXIST);
    assert.equal(k.memoryBlocks.count(), 18);
    // Over boot RAM: busy System RAM at the top level.
    assert.equal(addMemory(k, 0, 0x10000000, BLOCK), -EEXIST);
    // add_memory_driver_managed wants "System RAM (...)".
    assert.equal(addMemory(k, 0, 9 * GiB, BLOCK, "kmem"), -EINVAL);
    assert.equal(addMemory(k, 0, 9 * GiB, BLOCK, "System RAM (kmem)"), 0);
    const dm = findRam(k, 9 * GiB);
    assert.ok(dm);
    assert.equal(dm.res.flags >>> 0, (RAM_BUSY | IORESOURCE_SYSRAM_DRIVER_MANAGED) >>> 0);
  });

  it("RAM at 4 GiB nests under the non-busy legacy pmem resource and inherits its desc", () => {
    const k = boot();
    assert.equal(addMemory(k, 0, 4 * GiB, BLOCK), 0);
    const ram = findRam(k, 4 * GiB);
    assert.ok(ram);
    assert.equal(ram.depth, 1);
    assert.equal(ram.res.parent?.name, "Persistent Memory (legacy)");
    // __request_region_locked: res->desc = parent->desc.
    assert.equal(ram.res.desc, IORES_DESC_PERSISTENT_MEMORY_LEGACY);
    assert.equal(block(k, 32).state, "offline");
    assert.equal(k.maxPfn, (4 * GiB + BLOCK) / 4096);
    assert.equal(removeMemory(k, 4 * GiB, BLOCK), 0);
    assert.equal(findRam(k, 4 * GiB), undefined);
    assert.ok(renderIomem(k).includes("100000000-13fffffff : Persistent Memory (legacy)\n140000000"));
  });
});

describe("memhp_default_state (add_memory_resource auto-online)", () => {
  it("online_movable onlines every new block into ZONE_MOVABLE", () => {
    const k = bootKernel(withAppend("memhp_default_state=online_movable"));
    assert.equal(k.autoOnlineBlocks, "online_movable");
    assert.equal(addMemory(k, 0, G8, 2 * BLOCK), 0);
    const mov = zone(k, "Movable");
    for (const id of [64, 65]) {
      assert.equal(block(k, id).state, "online");
      assert.equal(block(k, id).zone, mov);
      assert.equal(validZones(k, block(k, id)), "Movable");
      assert.equal(k.sections.flags(id), HOTADDED | SECTION_IS_ONLINE);
    }
    assert.equal(mov.zoneStartPfn, PFN_8G);
    assert.equal(mov.spannedPages, 2 * NR);
    assert.equal(mov.presentPages, 2 * NR);
    assert.equal(mov.managedPages, 2 * NR);
    assert.equal(zone(k, "Normal").spannedPages, 0);
    assert.equal(removeMemory(k, G8, 2 * BLOCK), -EBUSY);
  });

  it("online onlines into Normal (contig-zones: nothing intersects, no movable_node)", () => {
    const k = bootKernel(withAppend("memhp_default_state=online"));
    assert.equal(addMemory(k, 0, G8, 2 * BLOCK), 0);
    const normal = zone(k, "Normal");
    assert.equal(block(k, 64).zone, normal);
    assert.equal(block(k, 65).zone, normal);
    assert.equal(normal.spannedPages, 2 * NR);
    assert.equal(zone(k, "Movable").spannedPages, 0);
  });

  it("movable_node makes the default Movable for memory outside every zone", () => {
    const k = bootKernel(withAppend("movable_node"));
    assert.equal(addMemory(k, 0, G8, BLOCK), 0);
    assert.equal(validZones(k, block(k, 64)), "Movable Normal");
    assert.equal(memoryBlockStateStore(k, 64, "online"), 0);
    assert.equal(block(k, 64).zone, zone(k, "Movable"));
  });
});

describe("arch_add_memory and max_pfn", () => {
  it("x86 add_pages raises max_pfn even when __add_pages fails (it only WARNs)", () => {
    const k = boot();
    assert.equal(archAddMemory(k, 0, G8, BLOCK), 0);
    assert.equal(k.maxPfn, PFN_8G + NR);
    // The first section exists already: sparse_add_section -> -EEXIST, yet update_end_of_memory_vars runs.
    assert.equal(archAddMemory(k, 0, G8, 2 * BLOCK), -EEXIST);
    assert.equal(k.maxPfn, PFN_8G + 2 * NR);
  });

  it("arm64 raises max_pfn only on success and nests nothing (no PCI window in the model)", () => {
    const k = bootKernel(machinePreset("arm64-virt-4g"));
    assert.equal(k.maxPfn, (5 * GiB) / 4096);
    assert.equal(k.memoryBlockSizeBytes(), BLOCK);
    assert.equal(addMemory(k, 0, G8, BLOCK), 0);
    assert.equal(k.maxPfn, PFN_8G + NR);
    assert.equal(findRam(k, G8)?.depth, 0);
    assert.equal(archAddMemory(k, 0, G8, 2 * BLOCK), -EEXIST);
    assert.equal(k.maxPfn, PFN_8G + NR);
  });
});
