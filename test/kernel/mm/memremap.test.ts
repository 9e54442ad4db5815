/**
 * ZONE_DEVICE on the oracle guest (qemu-q35-3g-pmem1g, booted without nd_pmem so the legacy pmem at
 * [4 GiB, 5 GiB) is free for the tests; nothing at all lives in [0x940000000, 0xfd00000000)), checked against
 * mm/memremap.c (memremap_pages, pagemap_range, memunmap_pages, pageunmap_range, get_dev_pagemap,
 * free_zone_device_page, zone_device_page_init, __put_devmap_managed_page_refs), mm/mm_init.c
 * (memmap_init_zone_device, __init_zone_device_page, memmap_init_compound), mm/page_alloc.c memmap_init_range,
 * mm/memory_hotplug.c (__add_pages, check_pfn_span, mhp_range_allowed, move_pfn_range_to_zone,
 * remove_pfn_range_from_zone, pfn_to_online_page), mm/sparse.c (section_activate, fill_subsection_map,
 * section_deactivate) and arch/x86/mm/init_64.c (add_pages, arch_add_memory).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { EEXIST, EINVAL, ENOMEM, ENXIO } from "../../../src/kernel/errno.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { type DevPagemap, type DevPagemapSpec, MemoryType } from "../../../src/kernel/mm/dev_pagemap.ts";
import { PageState, PG_head, PG_reserved, testFlag } from "../../../src/kernel/mm/memmap.ts";
import { addMemory, pfnToOnlinePage } from "../../../src/kernel/mm/memory_hotplug.ts";
import {
  getDevPagemap,
  getPage,
  isDevicePrivatePage,
  isPciP2pdmaPage,
  isZoneDevicePage,
  memremapPages,
  memunmapPages,
  newDevPagemap,
  pfnFirst,
  pfnLen,
  pgmapPfnValid,
  putDevPagemap,
  putPage,
  zoneDevicePageInit,
} from "../../../src/kernel/mm/memremap.ts";
import { pageRead } from "../../../src/kernel/mm/page_access.ts";
import { SECTION_HAS_MEM_MAP, SECTION_MARKED_PRESENT, SECTION_TAINT_ZONE_DEVICE } from "../../../src/kernel/mm/sparse.ts";
import { newAltmap } from "../../../src/kernel/mm/vmem_altmap.ts";
import { Hang, type KernelPath, runToEnd, type Yield } from "../../../src/kernel/path.ts";
import { type KernelVariant, VARIANTS } from "../../../src/kernel/variant.ts";
import { MACHINE_PRESETS } from "../../../src/machine/presets.ts";
import { type MachineFile, resolveMachine } from "../../../src/machine/spec.ts";

const KiB = 2 ** 10;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const PAGE = 4 * KiB;
const SECTION = 128 * MiB;
const PPS = SECTION / PAGE; // pages per section
const PMEM = 4 * GiB; // legacy pmem [4 GiB, 5 GiB): not System RAM
const HIGH = 0x940000000; // above the 64-bit PCI window: nothing there
const BOOT_MAX_PFN = 0x7ffdf;

const ORACLE = "qemu-q35-3g-pmem1g";
const pfnOf = (addr: number) => addr / PAGE;
const range = (start: number, size: number) => ({ start, end: start + size - 1 });

/** The oracle guest's machine file, without nd_pmem (so [4 GiB, 5 GiB) is not claimed at boot). */
function machine(over: Partial<MachineFile> = {}) {
  const file = MACHINE_PRESETS[ORACLE]!.file;
  return resolveMachine({ ...file, name: ORACLE, modules: [], ...over }, "test");
}

function boot(over: Partial<MachineFile> = {}, variant: KernelVariant = VARIANTS["6.1"]!): Kernel {
  return bootKernel(machine(over), variant);
}

/** As the oracle, but boot RAM ends on a 2 MiB boundary inside section 15: [0x7fe00000, 0x80000000) is e820 reserved. */
function bootSharedSection(variant: KernelVariant = VARIANTS["6.1"]!): Kernel {
  const e820 = MACHINE_PRESETS[ORACLE]!.file.e820!.map((e) =>
    e.start === 0x100000 ? { ...e, end: 0x7fdfffff } : e.start === 0x7ffdf000 ? { ...e, start: 0x7fe00000 } : e,
  );
  return boot({ e820 }, variant);
}

function remap(k: Kernel, spec: DevPagemapSpec, nid = -1): { pgmap: DevPagemap; rc: number } {
  const pgmap = newDevPagemap(k, spec);
  return { pgmap, rc: runToEnd(memremapPages(k, pgmap, nid)) };
}

function live(k: Kernel, spec: DevPagemapSpec): DevPagemap {
  const { pgmap, rc } = remap(k, spec);
  assert.equal(rc, 0, `memremap_pages(${spec.device})`);
  return pgmap;
}

/** Drive a path until it blocks on something that does not hold yet; the path stays suspended there. */
function runUntilBlocked<T>(path: KernelPath<T>): Extract<Yield, { kind: "block" }> {
  for (;;) {
    const r = path.next();
    if (r.done) assert.fail("path finished without blocking");
    if (r.value.kind === "block" && !r.value.until()) return r.value;
  }
}

/** Drive a path to the end, recording every yield point and a probe taken at it. */
function trace<T, P>(path: KernelPath<T>, probe: () => P): Array<{ at: string; kind: Yield["kind"]; probe: P }> {
  const out: Array<{ at: string; kind: Yield["kind"]; probe: P }> = [];
  for (;;) {
    const r = path.next();
    if (r.done) return out;
    if (r.value.kind === "block" && !r.value.until()) assert.fail(`blocked at ${r.value.at}`);
    out.push({ at: r.value.at, kind: r.value.kind, probe: probe() });
  }
}

function warned(k: Kernel, text: string): boolean {
  return k.sanitizer.violations.some((v) => v.kind === "warning" && v.detail.includes(text));
}

function warnings(k: Kernel): string[] {
  return k.sanitizer.violations.filter((v) => v.kind === "warning").map((v) => v.detail);
}

/** Everything a failed memremap_pages must leave as it found it. */
function state(k: Kernel) {
  const node = k.nodeData(0);
  return {
    array: k.pgmaps.array.all().map((e) => ({ ...e })),
    sections: [...k.sections.presentSections()].map((nr) => [nr, k.sections.flags(nr), k.sections.subsectionBits(nr).map(Number).join("")]),
    zones: node.zones.map((z) => [z.name, z.zoneStartPfn, z.spannedPages, z.presentPages, z.managedPages]),
    node: [node.nodeStartPfn, node.nodeSpannedPages, node.nodePresentPages],
    maxPfn: k.maxPfn,
    vmemmap: { ram: k.vmemmap.ramBytes, altmap: k.vmemmap.altmapPfns, pt: k.vmemmap.pageTableBytes, chunks: k.vmemmap.chunks.size },
    devmapManagedKey: k.pgmaps.devmapManagedKey,
    zoneDeviceSubsections: [...k.zoneDeviceSubsections],
  };
}

function device(k: Kernel) {
  return k.zone(0, "Device")!;
}

const spy = () => {
  const freed: number[] = [];
  return { freed, pageFree: (pfn: number) => void freed.push(pfn) };
};

describe("memremap_pages: every error path (mm/memremap.c memremap_pages, pagemap_range)", () => {
  it("nr_range == 0: WARN 'nr_range must be specified', -EINVAL, nothing initialised", () => {
    const k = boot();
    const before = state(k);
    const { pgmap, rc } = remap(k, { device: "empty", type: MemoryType.GENERIC, ranges: [] });
    assert.equal(rc, -EINVAL);
    assert.ok(warned(k, "nr_range must be specified"), warnings(k).join("; "));
    assert.equal(pgmap.state, "new");
    assert.deepEqual(state(k), before);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("MEMORY_DEVICE_PRIVATE on Debian's config (DEVICE_PRIVATE=n): -EINVAL even with every callback present", () => {
    const k = boot();
    assert.equal(k.config.enabled("DEVICE_PRIVATE"), false);
    const before = state(k);
    const { pgmap, rc } = remap(k, {
      device: "dmirror0",
      type: MemoryType.PRIVATE,
      ranges: [range(HIGH, 2 * MiB)],
      ops: { migrateToRam: true, pageFree: () => {} },
      owner: "dmirror",
    });
    assert.equal(rc, -EINVAL);
    assert.deepEqual(warnings(k), ["Device private memory not supported"]);
    assert.equal(pgmap.state, "new");
    assert.deepEqual(state(k), before);
  });

  describe("MEMORY_DEVICE_PRIVATE requirements, checked in the kernel's order (migrate_to_ram, page_free, owner)", () => {
    const cases: Array<{ name: string; ops: DevPagemapSpec["ops"]; owner: string | null; warn: string }> = [
      { name: "ops == NULL", ops: null, owner: null, warn: "Missing migrate_to_ram method" },
      { name: "no migrate_to_ram (page_free and owner missing too)", ops: {}, owner: null, warn: "Missing migrate_to_ram method" },
      { name: "no page_free (owner missing too)", ops: { migrateToRam: true }, owner: null, warn: "Missing page_free method" },
      { name: "no owner", ops: { migrateToRam: true, pageFree: () => {} }, owner: null, warn: "Missing owner" },
    ];
    for (const c of cases) {
      it(`${c.name}: WARN '${c.warn}', -EINVAL`, () => {
        const k = boot({ kconfig: "hmm" });
        const before = state(k);
        const { pgmap, rc } = remap(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: c.ops, owner: c.owner });
        assert.equal(rc, -EINVAL);
        assert.deepEqual(warnings(k), [c.warn]);
        assert.equal(pgmap.state, "new");
        assert.deepEqual(state(k), before);
        assert.deepEqual(k.sanitizer.errors(), []);
      });
    }
  });

  it("MEMORY_DEVICE_COHERENT with ops == NULL: the kernel dereferences ops->page_free (recorded NULL dereference)", () => {
    const k = boot({ kconfig: "hmm" });
    const before = state(k);
    const { pgmap, rc } = remap(k, { device: "coherent0", type: MemoryType.COHERENT, ranges: [range(HIGH, 2 * MiB)], ops: null, owner: "x" });
    assert.ok(rc < 0);
    const errors = k.sanitizer.errors();
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.kind, "null-pointer-dereference");
    assert.equal(errors[0]!.pgmap, pgmap.id);
    assert.deepEqual(state(k), before);
  });

  it("MEMORY_DEVICE_COHERENT without page_free, then without owner: -EINVAL each (no DEVICE_PRIVATE needed)", () => {
    const k = boot();
    const before = state(k);
    const a = remap(k, { device: "c0", type: MemoryType.COHERENT, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true }, owner: null });
    assert.equal(a.rc, -EINVAL);
    assert.deepEqual(warnings(k), ["Missing page_free method"]);
    const b = remap(k, { device: "c1", type: MemoryType.COHERENT, ranges: [range(HIGH, 2 * MiB)], ops: { pageFree: () => {} }, owner: null });
    assert.equal(b.rc, -EINVAL);
    assert.deepEqual(warnings(k), ["Missing page_free method", "Missing owner"]);
    assert.deepEqual(state(k), before);
    // With both it works on Debian's config: memremap_pages checks no Kconfig symbol for COHERENT.
    const c = remap(k, { device: "c2", type: MemoryType.COHERENT, ranges: [range(HIGH, 2 * MiB)], ops: { pageFree: () => {} }, owner: "c" });
    assert.equal(c.rc, 0);
  });

  describe("a live pgmap at the first or last pfn: WARN 'Conflicting mapping in same section', -ENOMEM", () => {
    const cases = [
      { name: "first pfn inside the live pgmap", existing: range(PMEM, 4 * MiB), attempt: range(PMEM + 2 * MiB, 4 * MiB) },
      { name: "last pfn inside the live pgmap", existing: range(PMEM + 4 * MiB, 4 * MiB), attempt: range(PMEM, 6 * MiB) },
      { name: "same range", existing: range(PMEM, 4 * MiB), attempt: range(PMEM, 4 * MiB) },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const k = boot();
        const a = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [c.existing] });
        const holders = [...a.ref.holders];
        const count = a.ref.count;
        const before = state(k);
        const { pgmap: b, rc } = remap(k, { device: "pfn0.1", type: MemoryType.FS_DAX, ranges: [c.attempt] });
        assert.equal(rc, -ENOMEM);
        assert.deepEqual(warnings(k), ["Conflicting mapping in same section"]);
        // The probe's transient reference was dropped again; the live pgmap is untouched.
        assert.equal(a.ref.count, count);
        assert.deepEqual([...a.ref.holders], holders);
        assert.deepEqual(state(k), before);
        assert.equal(b.state, "failed");
        assert.equal(b.ref.count, 0);
        assert.equal(b.ref.state, "exited");
        const again = runToEnd(getDevPagemap(k, pfnOf(c.existing.start), "t"));
        assert.equal(again, a);
        runToEnd(putDevPagemap(k, again, "t"));
        assert.deepEqual(k.sanitizer.errors(), []);
      });
    }
  });

  it("a dying pgmap is not a conflict: the probes miss it and sparse says -EEXIST; the unwind wipes its pgmap_array entries", () => {
    const k = boot();
    const r = range(PMEM, 4 * MiB);
    const a = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [r] });
    const pin = runToEnd(getDevPagemap(k, pfnOf(r.start), "gup"));
    assert.equal(pin, a);
    const teardown = memunmapPages(k, a);
    const blocked = runUntilBlocked(teardown);
    assert.match(blocked.at, /wait_for_completion/);
    assert.equal(a.ref.dead, true);
    // Still in pgmap_array, but get_dev_pagemap refuses it.
    assert.equal(k.pgmaps.array.get(pfnOf(r.start)), a.id);
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(r.start), "probe")), null);

    const before = state(k);
    const { pgmap: b, rc } = remap(k, { device: "pfn0.1", type: MemoryType.FS_DAX, ranges: [r] });
    assert.equal(rc, -EEXIST);
    assert.ok(!warned(k, "Conflicting mapping"));
    assert.equal(b.state, "failed");
    // pgmap_array_delete(range) of the failed range took the dying pgmap's entries with it.
    assert.deepEqual(k.pgmaps.array.all(), []);
    assert.deepEqual({ ...state(k), array: before.array }, before);

    runToEnd(putDevPagemap(k, pin, "gup"));
    runToEnd(teardown);
    assert.equal(a.state, "exited");
    assert.equal(k.sections.flags(pfnOf(PMEM) / PPS), 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("a range wholly containing a live pgmap: no probe hits, -EEXIST from the sub-section map, and the inner pgmap loses its pgmap_array entries", () => {
    const k = boot();
    const inner = live(k, { device: "inner", type: MemoryType.FS_DAX, ranges: [range(PMEM + 4 * MiB, 2 * MiB)] });
    const before = state(k);
    const { pgmap: outer, rc } = remap(k, { device: "outer", type: MemoryType.FS_DAX, ranges: [range(PMEM, 16 * MiB)] });
    assert.equal(rc, -EEXIST);
    assert.ok(!warned(k, "Conflicting mapping"));
    assert.equal(outer.state, "failed");
    // The kernel quirk (digest 17.2): the inner pgmap is still live and mapped, but nobody can find it.
    assert.equal(inner.state, "live");
    assert.equal(inner.ref.count, 1 + 512);
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(PMEM + 4 * MiB), "t")), null);
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(PMEM + 6 * MiB) - 1, "t")), null);
    assert.deepEqual(k.pgmaps.array.all(), []);
    assert.deepEqual({ ...state(k), array: before.array }, before);
    // Its pages are still its own, and tearing it down still works.
    assert.equal(k.memmap.get(pfnOf(PMEM + 4 * MiB)).pgmap, inner.id);
    runToEnd(memunmapPages(k, inner));
    assert.equal(k.sections.flags(pfnOf(PMEM) / PPS), 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("containment across sections: __add_pages does not roll back the sections it already added (leaked, never initialised)", () => {
    const k = boot();
    const innerStart = PMEM + SECTION + 4 * MiB;
    const inner = live(k, { device: "inner", type: MemoryType.FS_DAX, ranges: [range(innerStart, 2 * MiB)] });
    const span = [device(k).zoneStartPfn, device(k).spannedPages];
    const { rc } = remap(k, { device: "outer", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * SECTION)] });
    assert.equal(rc, -EEXIST);
    const s0 = pfnOf(PMEM) / PPS;
    // Section 32 was populated by sparse_add_section before section 33 failed; pagemap_range's error path does not
    // call arch_remove_memory, so it stays: present, memmap, all 64 sub-sections, no zone, no pgmap.
    assert.equal(k.sections.flags(s0), SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP);
    assert.equal(k.sections.subsectionBits(s0).every(Boolean), true);
    assert.equal(k.sections.pfnValid(pfnOf(PMEM)), true);
    assert.equal(k.memmap.state(pfnOf(PMEM)), PageState.Uninitialised);
    // move_pfn_range_to_zone never ran for the failed range.
    assert.deepEqual([device(k).zoneStartPfn, device(k).spannedPages], span);
    assert.deepEqual(k.pgmaps.array.all(), []);
    assert.equal(inner.state, "live");
  });

  describe("System RAM: WARN 'attempted on ram/mixed region', -ENXIO", () => {
    const cases = [
      { name: "wholly inside RAM", r: range(GiB, 2 * MiB), warn: "attempted on ram region 0x40000000-0x401fffff" },
      { name: "the last sub-section of boot RAM (RAM up to 0x7ffdefff, then e820 reserved): mixed", r: range(0x7fe00000, 2 * MiB), warn: "attempted on mixed region 0x7fe00000-0x7fffffff" },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const k = boot();
        const before = state(k);
        const { pgmap, rc } = remap(k, { device: "x", type: MemoryType.GENERIC, ranges: [c.r] });
        assert.equal(rc, -ENXIO);
        assert.deepEqual(warnings(k), [c.warn]);
        assert.equal(pgmap.state, "failed");
        assert.deepEqual(state(k), before);
        assert.deepEqual(k.sanitizer.errors(), []);
      });
    }
  });

  describe("beyond MAX_PHYSMEM_BITS: mhp_range_allowed (before add_pages' -ERANGE) says -EINVAL", () => {
    for (const [name, start] of [
      ["starting at 2^46", 2 ** 46],
      ["straddling 2^46", 2 ** 46 - 2 * MiB],
    ] as const) {
      for (const type of [MemoryType.GENERIC, MemoryType.PRIVATE]) {
        it(`${name}, ${MemoryType[type]}`, () => {
          const k = boot({ kconfig: "hmm" });
          assert.equal(k.geo.physLimit, 2 ** 46);
          const before = state(k);
          const { rc } = remap(k, { device: "far", type, ranges: [range(start, 4 * MiB)], ops: { migrateToRam: true, pageFree: () => {} }, owner: "o" });
          assert.equal(rc, -EINVAL);
          assert.deepEqual(state(k), before);
          assert.deepEqual(k.sanitizer.errors(), []);
        });
      }
    }
    it("the last 2 MiB below PHYSMEM_END is allowed", () => {
      const k = boot();
      const p = live(k, { device: "top", type: MemoryType.GENERIC, ranges: [range(2 ** 46 - 2 * MiB, 2 * MiB)] });
      assert.equal(isZoneDevicePage(k, pfnOf(2 ** 46) - 1), true);
      runToEnd(memunmapPages(k, p));
      assert.deepEqual(k.sanitizer.errors(), []);
    });
  });

  describe("not 2 MiB aligned: check_pfn_span in __add_pages, WARN 'Misaligned', -EINVAL", () => {
    const cases = [
      { name: "1 MiB long", r: range(PMEM, MiB), log: "Misaligned __add_pages start: 0x100000 end: #1000ff" },
      { name: "starting 1 MiB into a sub-section", r: range(PMEM + MiB, 2 * MiB), log: "Misaligned __add_pages start: 0x100100 end: #1002ff" },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const k = boot();
        const before = state(k);
        const { rc } = remap(k, { device: "x", type: MemoryType.FS_DAX, ranges: [c.r] });
        assert.equal(rc, -EINVAL);
        assert.ok(k.log.some((l) => l.includes(c.log)), k.log.slice(-3).join("\n"));
        assert.deepEqual(state(k), before);
        assert.deepEqual(k.sanitizer.errors(), []);
      });
    }
  });

  it("an altmap with two ranges: range 0 is added, range 1 fails (-EINVAL), range 0 is unwound but the Device span stays", () => {
    const k = boot();
    const before = state(k);
    const start = pfnOf(PMEM);
    const altmap = newAltmap(start, start + PPS - 1, 2, 510 + 512);
    const { pgmap, rc } = remap(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, SECTION), range(PMEM + 2 * SECTION, SECTION)], altmap });
    assert.equal(rc, -EINVAL);
    assert.deepEqual(warnings(k), ["altmap not supported for multiple ranges"]);
    assert.equal(pgmap.state, "failed");
    assert.equal(pgmap.nrRange, 2, "memremap_pages restores nr_range after the unwind");
    assert.equal(pgmap.ref.count, 0);
    assert.equal(altmap.alloc, 0);
    // move_pfn_range_to_zone ran for range 0; remove_pfn_range_from_zone never shrinks ZONE_DEVICE.
    assert.equal(device(k).zoneStartPfn, start);
    assert.equal(device(k).spannedPages, PPS);
    const node = k.nodeData(0);
    assert.equal(node.nodeStartPfn + node.nodeSpannedPages, start + PPS);
    const after = state(k);
    assert.deepEqual({ ...after, zones: before.zones, node: before.node }, before);
    assert.equal(k.pgmaps.devmapManagedKey, 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("two ranges, the second on System RAM: the first is unwound (bulk references returned), -ENXIO", () => {
    const k = boot();
    const before = state(k);
    const { pgmap, rc } = remap(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 4 * MiB), range(GiB, 2 * MiB)] });
    assert.equal(rc, -ENXIO);
    assert.equal(pgmap.ref.count, 0);
    assert.equal(pgmap.ref.state, "exited");
    assert.equal(device(k).zoneStartPfn, pfnOf(HIGH));
    assert.equal(device(k).spannedPages, 1024);
    assert.deepEqual(state(k).array, []);
    assert.deepEqual(state(k).sections, before.sections);
    assert.equal(k.memmap.state(pfnOf(HIGH)), PageState.TornDown);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("CONFIG_ZONE_DEVICE=n: devm_memremap_pages WARNs and returns -ENXIO", () => {
    const k = boot({ config: { ZONE_DEVICE: "n" } });
    assert.equal(k.zoneNames.includes("Device"), false);
    const before = state(k);
    const { pgmap, rc } = remap(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * MiB)] });
    assert.equal(rc, -ENXIO);
    assert.equal(warnings(k).length, 1);
    assert.equal(pgmap.state, "new");
    assert.deepEqual(state(k), before);
  });

  it("an unknown pgmap type only WARNs 'Invalid pgmap type' and carries on (refcount-1 rules)", () => {
    const k = boot();
    const { pgmap, rc } = remap(k, { device: "odd", type: 0 as MemoryType, ranges: [range(HIGH, 2 * MiB)] });
    assert.equal(rc, 0);
    assert.deepEqual(warnings(k), ["Invalid pgmap type 0"]);
    assert.equal(pgmap.state, "live");
    assert.equal(pgmap.ref.count, 1 + 512);
    assert.equal(k.memmap.get(pfnOf(HIGH)).refcount, 1);
    runToEnd(memunmapPages(k, pgmap));
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("the same pgmap is memremapped again after a failed attempt", () => {
    const k = boot();
    const a = live(k, { device: "a", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * MiB)] });
    const b = newDevPagemap(k, { device: "b", type: MemoryType.FS_DAX, ranges: [range(PMEM, 4 * MiB)] });
    assert.equal(runToEnd(memremapPages(k, b, -1)), -ENOMEM);
    assert.equal(k.pgmaps.devmapManagedKey, 1);
    runToEnd(memunmapPages(k, a));
    assert.equal(k.pgmaps.devmapManagedKey, 0);
    assert.equal(runToEnd(memremapPages(k, b, -1)), 0);
    assert.equal(b.state, "live");
    assert.equal(b.ref.count, 1 + 1024);
    assert.equal(k.pgmaps.devmapManagedKey, 1);
    assert.equal(k.memmap.get(pfnOf(PMEM)).pgmap, b.id);
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(PMEM) + 600, "t")), b);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("__add_pages rejects an altmap whose base_pfn is not the start pfn ('invalid altmap', -EINVAL)", () => {
    const k = boot();
    const altmap = newAltmap(pfnOf(PMEM) + 512, pfnOf(PMEM) + PPS - 1, 0, 512);
    const { rc } = remap(k, { device: "x", type: MemoryType.FS_DAX, ranges: [range(PMEM, SECTION)], altmap });
    assert.equal(rc, -EINVAL);
  });
});

describe("struct pages after memremap_pages (memmap_init_zone_device, __init_zone_device_page)", () => {
  const types = [
    { type: MemoryType.FS_DAX, idle: 1 },
    { type: MemoryType.GENERIC, idle: 1 },
    { type: MemoryType.PCI_P2PDMA, idle: 1 },
    { type: MemoryType.PRIVATE, idle: 0 },
    { type: MemoryType.COHERENT, idle: 0 },
  ];
  for (const { type, idle } of types) {
    it(`${MemoryType[type]}: PG_reserved, ZONE_DEVICE, node 0, its pgmap, refcount ${idle}`, () => {
      const k = boot({ kconfig: "hmm" });
      const p = live(k, { device: "d", type, ranges: [range(HIGH, 4 * MiB)], ops: { migrateToRam: true, pageFree: () => {} }, owner: "o" });
      const first = pfnOf(HIGH);
      for (const pfn of [first, first + 1, first + 511, first + 1023]) {
        const page = k.memmap.get(pfn);
        assert.equal(page.state, PageState.Initialised);
        assert.equal(testFlag(page.flags, PG_reserved), true);
        assert.equal(testFlag(page.flags, PG_head), false);
        assert.equal(page.zone, k.zoneIdx("Device"));
        assert.equal(k.zoneNames[page.zone], "Device");
        assert.equal(page.node, 0);
        assert.equal(page.pgmap, p.id);
        assert.equal(page.refcount, idle);
        assert.equal(page.compoundHead, -1);
      }
      assert.equal(isZoneDevicePage(k, first), true);
      assert.equal(isDevicePrivatePage(k, first), type === MemoryType.PRIVATE);
      assert.equal(isPciP2pdmaPage(k, first), type === MemoryType.PCI_P2PDMA);
      // Nothing past the range.
      assert.equal(k.memmap.get(first + 1024).state, PageState.NoMemmap);
      // ZONE_DEVICE pages are never present, managed or in a buddy allocator.
      assert.equal(device(k).presentPages, 0);
      assert.equal(device(k).managedPages, 0);
      assert.equal(device(k).buddy.freePages(), 0);
      assert.equal(k.memoryBlocks.all().some((b) => b.startSectionNr === first / PPS), false);
      assert.deepEqual(k.sanitizer.errors(), []);
    });
  }

  it("is_pci_p2pdma_page is false without CONFIG_PCI_P2PDMA (Debian's config), whatever the pgmap type", () => {
    const k = boot();
    assert.equal(k.config.enabled("PCI_P2PDMA"), false);
    live(k, { device: "p2p", type: MemoryType.PCI_P2PDMA, ranges: [range(HIGH, 2 * MiB)] });
    assert.equal(isZoneDevicePage(k, pfnOf(HIGH)), true);
    assert.equal(isPciP2pdmaPage(k, pfnOf(HIGH)), false);
  });

  describe("move_pfn_range_to_zone taints the sections a range covers partially (start, and the section of start + nr_pages)", () => {
    const cases = [
      { name: "whole section", r: range(PMEM, SECTION), tainted: [] as number[] },
      { name: "first sub-section", r: range(PMEM, 2 * MiB), tainted: [32] },
      { name: "last sub-section (end on a section boundary)", r: range(PMEM + SECTION - 2 * MiB, 2 * MiB), tainted: [32] },
      { name: "across a boundary", r: range(PMEM + SECTION - 2 * MiB, 4 * MiB), tainted: [32, 33] },
      { name: "a section and a bit", r: range(PMEM, SECTION + 2 * MiB), tainted: [33] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const k = boot();
        live(k, { device: "x", type: MemoryType.FS_DAX, ranges: [c.r] });
        const got = [32, 33, 34].filter((nr) => (k.sections.flags(nr) & SECTION_TAINT_ZONE_DEVICE) !== 0);
        assert.deepEqual(got, c.tainted);
      });
    }
  });

  it("compound (vmemmap_shift 9): heads carry PG_head and order 9, tails refcount 0 and point at their head", () => {
    const k = boot();
    const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 4 * MiB)], vmemmapShift: 9 });
    const first = pfnOf(HIGH);
    for (const head of [first, first + 512]) {
      const h = k.memmap.get(head);
      assert.equal(testFlag(h.flags, PG_head), true);
      assert.equal(testFlag(h.flags, PG_reserved), true);
      assert.equal(h.order, 9);
      assert.equal(h.refcount, 1);
      assert.equal(h.compoundHead, -1);
      assert.equal(h.pgmap, p.id);
      for (const tail of [head + 1, head + 2, head + 127, head + 128, head + 511]) {
        const t = k.memmap.get(tail);
        assert.equal(testFlag(t.flags, PG_head), false, `tail ${tail - head}`);
        assert.equal(testFlag(t.flags, PG_reserved), true);
        assert.equal(t.refcount, 0);
        assert.equal(t.compoundHead, head);
        assert.equal(t.pgmap, p.id);
        assert.equal(t.zone, k.zoneIdx("Device"));
      }
    }
    // pfn_len counts compound pages: one bulk reference per head.
    assert.equal(pfnLen(k, p, 0), 2);
    assert.equal(p.ref.count, 1 + 2);
    // get_page on a tail lands on the head.
    assert.equal(runToEnd(getPage(k, first + 700)), 2);
    assert.equal(k.memmap.get(first + 512).refcount, 2);
    assert.equal(k.memmap.get(first + 700).refcount, 0);
    runToEnd(putPage(k, first + 700));
    runToEnd(memunmapPages(k, p));
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("altmap (reserve 2, free 512·sections + 510): reserve uninitialised, memmap area ZONE_DEVICE+PG_reserved with no pgmap, device pages from pfn_first", () => {
    const k = boot();
    const boot0 = state(k).vmemmap;
    const sections = 2;
    const base = pfnOf(HIGH);
    const free = 512 * sections + 510;
    const altmap = newAltmap(base, base + sections * PPS - 1, 2, free);
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(HIGH, sections * SECTION)], altmap });
    const first = base + 2 + free;
    assert.equal(pfnFirst(k, p, 0), first);
    assert.equal(first % 512, 0);

    // The reserve is never initialised: reading it is a sanitizer finding.
    for (const pfn of [base, base + 1]) assert.equal(k.memmap.state(pfn), PageState.Uninitialised);
    pageRead(k, base, "test: read the info block's struct page");
    const errs = k.sanitizer.errors();
    assert.equal(errs.length, 1);
    assert.equal(errs[0]!.kind, "uninitialised-struct-page-read");
    assert.equal(errs[0]!.pfn, base);
    k.sanitizer.violations.length = 0;

    // The memmap's own storage: memmap_init_range(MEMINIT_HOTPLUG) over [base + reserve, base + reserve + free).
    for (const pfn of [base + 2, base + 512, first - 1]) {
      const page = k.memmap.get(pfn);
      assert.equal(page.state, PageState.Initialised, `pfn +${pfn - base}`);
      assert.equal(page.zone, k.zoneIdx("Device"));
      assert.equal(testFlag(page.flags, PG_reserved), true);
      assert.equal(page.pgmap, 0);
    }
    const dev = k.memmap.get(first);
    assert.equal(dev.pgmap, p.id);
    assert.equal(dev.refcount, 1);
    assert.equal(k.memmap.get(base + sections * PPS - 1).pgmap, p.id);

    assert.equal(pgmapPfnValid(k, p, base), false);
    assert.equal(pgmapPfnValid(k, p, first - 1), false);
    assert.equal(pgmapPfnValid(k, p, first), true);
    assert.equal(pgmapPfnValid(k, p, base + sections * PPS - 1), true);
    assert.equal(pgmapPfnValid(k, p, base + sections * PPS), false);
    assert.equal(pgmapPfnValid(k, p, base - 1), false);

    assert.equal(pfnLen(k, p, 0), sections * PPS - 2 - free);
    assert.equal(p.ref.count, 1 + sections * PPS - 2 - free);

    runToEnd(memunmapPages(k, p));
    assert.equal(altmap.alloc, 0);
    assert.ok(!warned(k, "failed to free all reserved pages"));
    assert.deepEqual(state(k).vmemmap, boot0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("pgmap references (percpu_ref: bulk per device page, per allocated page, transient lookups)", () => {
  it("FS_DAX / GENERIC hold 1 + Σ pfn_len while live; get_dev_pagemap adds one transient reference per caller", () => {
    const k = boot();
    const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 4 * MiB), range(HIGH + SECTION, 2 * MiB)] });
    assert.equal(pfnLen(k, p, 0), 1024);
    assert.equal(pfnLen(k, p, 1), 512);
    assert.equal(p.ref.count, 1 + 1024 + 512);
    const got = runToEnd(getDevPagemap(k, pfnOf(HIGH + SECTION) + 5, "memory_failure"));
    assert.equal(got, p);
    assert.equal(p.ref.count, 1 + 1536 + 1);
    assert.equal(p.ref.holders.get("memory_failure"), 1);
    runToEnd(putDevPagemap(k, got, "memory_failure"));
    assert.equal(p.ref.count, 1 + 1536);
    assert.equal(p.ref.holders.has("memory_failure"), false);
    // Between the ranges there is nothing.
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(HIGH + 4 * MiB), "t")), null);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("get_dev_pagemap(pfn, cached) trusts the cached pgmap only inside ranges[0] (digest 17.14)", () => {
    const k = boot();
    const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 4 * MiB), range(HIGH + SECTION, 2 * MiB)] });
    const r0 = pfnOf(HIGH) + 3;
    const r1 = pfnOf(HIGH + SECTION) + 3;
    let cached = runToEnd(getDevPagemap(k, r0, "walker"));
    assert.equal(cached, p);
    const live1 = p.ref.count;
    // Live: both return the same pgmap with one reference held, but ranges[1] went through put + lookup.
    assert.equal(runToEnd(getDevPagemap(k, r0 + 1, "walker", cached)), p);
    assert.equal(runToEnd(getDevPagemap(k, r1, "walker", cached)), p);
    assert.equal(p.ref.count, live1);

    // Kill it (memunmap_pages blocks on the walker's reference): now the difference shows.
    const teardown = memunmapPages(k, p);
    const blocked = runUntilBlocked(teardown);
    assert.match(blocked.holder?.() ?? "", /walker/);
    cached = p;
    assert.equal(runToEnd(getDevPagemap(k, r0, "walker", cached)), p, "ranges[0]: returned as-is, no liveness check");
    assert.equal(p.ref.holders.get("walker"), 1);
    assert.equal(runToEnd(getDevPagemap(k, r1, "walker", cached)), null, "ranges[1]: cached reference dropped, lookup fails");
    assert.equal(p.ref.holders.has("walker"), false);
    assert.equal(blocked.until(), true);
    runToEnd(teardown);
    assert.equal(p.state, "exited");
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("PRIVATE holds 1 + allocated pages: zone_device_page_init takes one each, the free at refcount 0 gives it back", () => {
    const k = boot({ kconfig: "hmm" });
    const s = spy();
    const p = live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 4 * MiB)], ops: { migrateToRam: true, pageFree: s.pageFree }, owner: "dmirror" });
    assert.equal(p.ref.count, 1);
    const first = pfnOf(HIGH);
    for (const pfn of [first, first + 1, first + 1023]) runToEnd(zoneDevicePageInit(k, pfn));
    assert.equal(p.ref.count, 1 + 3);
    assert.equal(p.ref.holders.get(`allocated page 0x${first.toString(16)}`), 1);
    assert.equal(k.memmap.get(first).refcount, 1);
    const r = runToEnd(putPage(k, first + 1));
    assert.deepEqual(r, { refcount: 0, woke: false, freed: true });
    assert.deepEqual(s.freed, [first + 1]);
    assert.equal(p.ref.count, 1 + 2);
    assert.equal(k.memmap.get(first + 1).refcount, 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("zone_device_page_init on a dying pgmap: WARN, no reference taken, the page is handed out anyway", () => {
    const k = boot({ kconfig: "hmm" });
    const p = live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true, pageFree: () => {} }, owner: "o" });
    const pin = runToEnd(getDevPagemap(k, pfnOf(HIGH), "hmm_range_fault"));
    const teardown = memunmapPages(k, p);
    runUntilBlocked(teardown);
    const count = p.ref.count;
    runToEnd(zoneDevicePageInit(k, pfnOf(HIGH) + 1));
    assert.equal(warnings(k).length, 1);
    assert.equal(p.ref.count, count);
    assert.equal(k.memmap.get(pfnOf(HIGH) + 1).refcount, 1);
    runToEnd(putDevPagemap(k, pin, "hmm_range_fault"));
    runToEnd(teardown);
  });

  it("get_dev_pagemap fails once memunmap_pages has killed the reference, though pgmap_array still has the entry", () => {
    const k = boot();
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * MiB)] });
    const pin = runToEnd(getDevPagemap(k, pfnOf(PMEM), "gup"));
    const teardown = memunmapPages(k, p);
    runUntilBlocked(teardown);
    assert.equal(k.pgmaps.array.get(pfnOf(PMEM)), p.id);
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(PMEM), "late")), null);
    assert.equal(p.ref.holders.has("late"), false);
    runToEnd(putDevPagemap(k, pin, "gup"));
    runToEnd(teardown);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("memunmap_pages (mm/memremap.c memunmap_pages, pageunmap_range)", () => {
  it("order: kill, bulk put, wait, pageunmap_range (zone, sections, then pgmap_array), exit", () => {
    const k = boot();
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, 4 * MiB)] });
    const first = pfnOf(PMEM);
    const span = [device(k).zoneStartPfn, device(k).spannedPages];
    const steps = trace(memunmapPages(k, p), () => ({
      refState: p.ref.state,
      count: p.ref.count,
      lookup: (() => {
        const before = k.sanitizer.violations.length;
        const g = p.state === "exited" ? null : runToEnd(getDevPagemap(k, first, "probe"));
        if (g) runToEnd(putDevPagemap(k, g, "probe"));
        k.sanitizer.violations.length = before;
        return g !== null;
      })(),
      array: k.pgmaps.array.get(first),
      pfnValid: k.sections.pfnValid(first),
      page: k.memmap.state(first),
      state: p.state,
    }));
    const idx = (re: RegExp) => {
      const i = steps.findIndex((s) => re.test(s.at));
      assert.ok(i >= 0, `no step ${re}`);
      return i;
    };
    const kill = idx(/percpu_ref_kill/);
    const put = idx(/percpu_ref_put_many/);
    const wait = idx(/wait_for_completion/);
    const begin = idx(/pageunmap_range: mem_hotplug_begin/);
    const done = idx(/pageunmap_range: mem_hotplug_done/);
    const del = idx(/pgmap_array_delete/);
    const exit = idx(/percpu_ref_exit/);
    assert.ok(kill < put && put < wait && wait < begin && begin < done && done < del && del < exit, steps.map((s) => s.at).join(" → "));
    // After the kill: dying, the initial reference gone, lookups fail, still mapped.
    assert.deepEqual(steps[kill]!.probe, { refState: "dying", count: 1024, lookup: false, array: p.id, pfnValid: true, page: PageState.Initialised, state: "dying" });
    // After the bulk put: drained.
    assert.equal(steps[put]!.probe.count, 0);
    assert.equal(steps[put]!.probe.refState, "released");
    // Struct pages and sections go before the pgmap_array entry.
    assert.deepEqual([steps[done]!.probe.pfnValid, steps[done]!.probe.page, steps[done]!.probe.array], [false, PageState.TornDown, p.id]);
    assert.equal(steps[del]!.probe.array, undefined);
    assert.equal(p.state, "exited");
    assert.equal(p.ref.state, "exited");
    // ZONE_DEVICE spans never shrink.
    assert.deepEqual([device(k).zoneStartPfn, device(k).spannedPages], span);
    assert.equal(k.sections.pfnValid(first + 1023), false);
    assert.equal(k.sections.flags(first / PPS), 0);
    assert.equal(k.pgmaps.devmapManagedKey, 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("PRIVATE: no bulk put step; the wait is for allocated pages", () => {
    const k = boot({ kconfig: "hmm" });
    const p = live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true, pageFree: () => {} }, owner: "o" });
    const steps = trace(memunmapPages(k, p), () => p.ref.count);
    assert.equal(steps.some((s) => /percpu_ref_put_many/.test(s.at)), false);
    assert.equal(steps[0]!.probe, 0);
    assert.equal(p.state, "exited");
  });

  it("an outstanding get_dev_pagemap reference: Hang naming the holder; releasing it lets the teardown finish", () => {
    const k = boot();
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * MiB)] });
    const pin = runToEnd(getDevPagemap(k, pfnOf(PMEM) + 7, "follow_devmap_pmd"));
    const teardown = memunmapPages(k, p);
    assert.throws(
      () => runToEnd(teardown),
      (e: unknown) => e instanceof Hang && /wait_for_completion/.test(e.at) && e.holder.includes("follow_devmap_pmd") && e.message.includes("follow_devmap_pmd"),
    );
    assert.equal(p.state, "dying");
    runToEnd(putDevPagemap(k, pin, "follow_devmap_pmd"));
    runToEnd(teardown);
    assert.equal(p.state, "exited");
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("PRIVATE with an allocated page: Hang naming 'allocated page 0x…'; freeing it lets the teardown finish", () => {
    const k = boot({ kconfig: "hmm" });
    const s = spy();
    const p = live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true, pageFree: s.pageFree }, owner: "o" });
    const pfn = pfnOf(HIGH) + 0x42;
    runToEnd(zoneDevicePageInit(k, pfn));
    const teardown = memunmapPages(k, p);
    assert.throws(() => runToEnd(teardown), (e: unknown) => e instanceof Hang && e.message.includes(`allocated page 0x${pfn.toString(16)}`));
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 0, woke: false, freed: true });
    assert.deepEqual(s.freed, [pfn]);
    runToEnd(teardown);
    assert.equal(p.state, "exited");
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("FS_DAX pages with raised refcounts do not hold the pgmap (digest 17.5): teardown completes, the page is freed memory", () => {
    const k = boot();
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * MiB)] });
    const pfn = pfnOf(PMEM) + 9;
    assert.equal(runToEnd(getPage(k, pfn)), 2);
    assert.equal(runToEnd(getPage(k, pfn)), 3);
    runToEnd(memunmapPages(k, p));
    assert.equal(p.state, "exited");
    assert.deepEqual(k.sanitizer.errors(), []);
    pageRead(k, pfn, "unpin_user_page");
    const errs = k.sanitizer.errors();
    assert.equal(errs.length, 1);
    assert.equal(errs[0]!.kind, "struct-page-use-after-free");
    assert.equal(errs[0]!.pfn, pfn);
  });

  it("after teardown: pfn_valid false, Device span unchanged, pgmap exited; using it is a dead-pgmap-use", () => {
    const k = boot();
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM + 6 * MiB, 2 * MiB)] });
    const span = [device(k).zoneStartPfn, device(k).spannedPages];
    assert.deepEqual(span, [pfnOf(PMEM + 6 * MiB), 512]);
    runToEnd(memunmapPages(k, p));
    assert.deepEqual([device(k).zoneStartPfn, device(k).spannedPages], span);
    assert.equal(k.sections.pfnValid(pfnOf(PMEM + 6 * MiB)), false);
    assert.equal(p.state, "exited");
    assert.equal(runToEnd(getDevPagemap(k, pfnOf(PMEM + 6 * MiB), "t")), null);
    assert.deepEqual(k.sanitizer.errors(), []);
    runToEnd(putDevPagemap(k, p, "stale"));
    const errs = k.sanitizer.errors();
    assert.equal(errs.length, 1);
    assert.equal(errs[0]!.kind, "dead-pgmap-use");
    assert.equal(errs[0]!.pgmap, p.id);
  });
});

describe("put_page on device pages (digest 1.7)", () => {
  it("FS_DAX: put back to 1 wakes (devmap_managed_key), never frees", () => {
    const k = boot();
    const s = spy();
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(PMEM, 2 * MiB)], ops: { pageFree: s.pageFree } });
    assert.equal(k.pgmaps.devmapManagedKey, 1);
    const pfn = pfnOf(PMEM) + 1;
    runToEnd(getPage(k, pfn));
    runToEnd(getPage(k, pfn));
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 2, woke: false, freed: false });
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 1, woke: true, freed: false });
    assert.deepEqual(s.freed, []);
    assert.equal(k.memmap.get(pfn).refcount, 1);
    assert.equal(p.ref.count, 1 + 512);
    assert.deepEqual(k.sanitizer.violations, []);
  });

  it("GENERIC over-put to 0: free_zone_device_page WARNs (no ops) and returns; the page stays at 0, nothing freed", () => {
    const k = boot();
    const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 2 * MiB)] });
    const pfn = pfnOf(HIGH);
    const r = runToEnd(putPage(k, pfn));
    assert.deepEqual(r, { refcount: 0, woke: false, freed: false });
    assert.equal(k.memmap.get(pfn).refcount, 0);
    assert.equal(warnings(k).length, 1);
    assert.equal(p.ref.count, 1 + 512, "no pgmap reference is dropped for a refcount-1 type");
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("PRIVATE put to 0: page_free once, the pgmap reference dropped, refcount stays 0", () => {
    const k = boot({ kconfig: "hmm" });
    const s = spy();
    const p = live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true, pageFree: s.pageFree }, owner: "o" });
    const pfn = pfnOf(HIGH) + 3;
    runToEnd(zoneDevicePageInit(k, pfn));
    runToEnd(getPage(k, pfn));
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 1, woke: false, freed: false });
    assert.deepEqual(s.freed, []);
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 0, woke: false, freed: true });
    assert.deepEqual(s.freed, [pfn]);
    assert.equal(p.ref.count, 1);
    assert.equal(k.memmap.get(pfn).refcount, 0);
    assert.deepEqual(k.sanitizer.violations, []);
  });

  it("variant 5.18: PRIVATE pages idle at 1 and are freed when they drop back to 1", () => {
    const k = boot({ kconfig: "hmm" }, VARIANTS["5.18"]!);
    assert.equal(k.variant.name, "5.18");
    const s = spy();
    live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true, pageFree: s.pageFree }, owner: "o" });
    const pfn = pfnOf(HIGH) + 3;
    assert.equal(k.memmap.get(pfn).refcount, 1);
    runToEnd(zoneDevicePageInit(k, pfn));
    assert.equal(k.memmap.get(pfn).refcount, 2);
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 1, woke: false, freed: true });
    assert.deepEqual(s.freed, [pfn]);
    assert.equal(k.memmap.get(pfn).refcount, 1);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("variant 5.18: GENERIC pages are not devmap-managed (page_is_devmap_managed: PRIVATE, FS_DAX): get/put back to 1 is a plain put", () => {
    const k = boot({}, VARIANTS["5.18"]!);
    const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 2 * MiB)] });
    const pfn = pfnOf(HIGH) + 3;
    assert.equal(runToEnd(getPage(k, pfn)), 2);
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 1, woke: false, freed: false });
    assert.deepEqual(k.sanitizer.violations, []);
    assert.equal(p.ref.count, 1 + 512);
  });
});

describe("variants whose page references hold the pgmap (5.4, 5.18): memunmap_pages puts every page and waits", () => {
  /** Step a path until it blocks on a condition that does not hold; then `rest` finishes it. */
  function untilBlocked(path: KernelPath<void>): { blockedAt: string | null; rest: () => void } {
    for (;;) {
      const y = path.next();
      if (y.done) return { blockedAt: null, rest: () => {} };
      if (y.value.kind === "block" && !y.value.until()) {
        const at = y.value.at;
        return { blockedAt: at, rest: () => runToEnd(path) };
      }
    }
  }

  for (const name of ["5.4", "5.18"]) {
    it(`${name}: a GENERIC page referenced across memunmap_pages holds the teardown; its last put (__put_page) ends the wait`, () => {
      const k = boot({}, VARIANTS[name]!);
      const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 2 * MiB)] });
      const pfn = pfnOf(HIGH) + 3;
      assert.equal(runToEnd(getPage(k, pfn)), 2);
      const t = untilBlocked(memunmapPages(k, p));
      assert.equal(t.blockedAt, "memunmap_pages: wait_for_completion(&pgmap->done)");
      assert.equal(p.ref.describeHolders(), `base reference of page 0x${pfn.toString(16)} (v5.4)`);
      assert.equal(k.memmap.get(pfn).refcount, 1, "the loop's put_page took it from 2 to 1");
      assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 0, woke: false, freed: false });
      assert.equal(p.done, true);
      t.rest();
      assert.equal(p.state, "exited");
      assert.deepEqual(k.sanitizer.errors(), []);
    });
  }

  it("6.1: the same reference does not hold the teardown; the put after it writes a freed struct page", () => {
    const k = boot();
    const p = live(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [range(HIGH, 2 * MiB)] });
    const pfn = pfnOf(HIGH) + 3;
    runToEnd(getPage(k, pfn));
    assert.equal(untilBlocked(memunmapPages(k, p)).blockedAt, null);
    runToEnd(putPage(k, pfn));
    assert.ok(k.sanitizer.violations.some((v) => v.kind === "struct-page-use-after-free"));
  });

  it("5.4: PRIVATE pages hold the bulk reference from memremap_pages; zone_device_page_init takes none; a free at 1 keeps it", () => {
    const k = boot({ kconfig: "hmm" }, VARIANTS["5.4"]!);
    const s = spy();
    const p = live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH, 2 * MiB)], ops: { migrateToRam: true, pageFree: s.pageFree }, owner: "o" });
    assert.equal(p.ref.describeHolders(), "initial, device pages (bulk)×512");
    const pfn = pfnOf(HIGH) + 3;
    runToEnd(zoneDevicePageInit(k, pfn));
    assert.equal(p.ref.count, 1 + 512);
    assert.deepEqual(runToEnd(putPage(k, pfn)), { refcount: 1, woke: false, freed: true });
    assert.deepEqual(s.freed, [pfn]);
    assert.equal(p.ref.count, 1 + 512);
    runToEnd(memunmapPages(k, p));
    assert.equal(p.state, "exited");
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("pfn_to_online_page where ZONE_DEVICE shares a section with online boot RAM", () => {
  const DEV = 0x7fe00000; // the last sub-section of section 15, e820 reserved on this machine
  const devPfn = pfnOf(DEV);
  const ramPfn = devPfn - 1;
  const s15 = 15;

  it("on the oracle itself that sub-section holds RAM up to 0x7ffdefff, so it is refused (mixed)", () => {
    const k = boot();
    assert.equal(remap(k, { device: "x", type: MemoryType.FS_DAX, ranges: [range(DEV, 2 * MiB)] }).rc, -ENXIO);
  });

  it("6.1: the section is tainted; device pfns are not online pages, RAM pfns are; a dying pgmap's pfns look online (17.15)", () => {
    const k = bootSharedSection();
    assert.equal(pfnToOnlinePage(k, devPfn), false, "sub-section not present before");
    assert.equal(pfnToOnlinePage(k, ramPfn), true);
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(DEV, 2 * MiB)] });
    assert.notEqual(k.sections.flags(s15) & SECTION_TAINT_ZONE_DEVICE, 0);
    const count = p.ref.count;
    for (const pfn of [devPfn, devPfn + 511]) assert.equal(pfnToOnlinePage(k, pfn), false);
    for (const pfn of [ramPfn, s15 * PPS, s15 * PPS + 1000]) assert.equal(pfnToOnlinePage(k, pfn), true);
    assert.equal(p.ref.count, count);
    // Partial hot-add into an early section reuses the boot memmap: no new vmemmap chunk.
    assert.equal(k.vmemmap.chunks.size, 0);

    const pin = runToEnd(getDevPagemap(k, devPfn, "gup"));
    const teardown = memunmapPages(k, p);
    runUntilBlocked(teardown);
    assert.equal(pfnToOnlinePage(k, devPfn), true, "dying pgmap: get_dev_pagemap fails, so the pfn looks online");
    runToEnd(putDevPagemap(k, pin, "gup"));
    runToEnd(teardown);
    assert.equal(pfnToOnlinePage(k, devPfn), false, "sub-section gone");
    assert.equal(pfnToOnlinePage(k, ramPfn), true);
    // The section is not empty (boot RAM), so its flags, taint included, stay.
    assert.notEqual(k.sections.flags(s15) & SECTION_TAINT_ZONE_DEVICE, 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("variant zone-device-subsection-map: answered from the bitmap without a pgmap reference, false while dying too", () => {
    const k = bootSharedSection(VARIANTS["zone-device-subsection-map"]!);
    const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(DEV, 2 * MiB)] });
    const count = p.ref.count;
    const holders = [...p.ref.holders];
    assert.equal(pfnToOnlinePage(k, devPfn), false);
    assert.equal(pfnToOnlinePage(k, devPfn + 511), false);
    assert.equal(pfnToOnlinePage(k, ramPfn), true);
    assert.equal(p.ref.count, count);
    assert.deepEqual([...p.ref.holders], holders);
    const pin = runToEnd(getDevPagemap(k, devPfn, "gup"));
    const teardown = memunmapPages(k, p);
    runUntilBlocked(teardown);
    assert.equal(pfnToOnlinePage(k, devPfn), false, "dying: the bitmap still says ZONE_DEVICE");
    runToEnd(putDevPagemap(k, pin, "gup"));
    runToEnd(teardown);
    assert.equal(pfnToOnlinePage(k, devPfn), false);
    assert.deepEqual([...k.zoneDeviceSubsections], []);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("max_pfn (arch/x86/mm/init_64.c add_pages, update_end_of_memory_vars)", () => {
  it("6.1: memremap_pages leaves max_pfn alone for every type", () => {
    const k = boot({ kconfig: "hmm" });
    assert.equal(k.maxPfn, BOOT_MAX_PFN);
    live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(HIGH, SECTION)] });
    live(k, { device: "dmirror0", type: MemoryType.PRIVATE, ranges: [range(HIGH + 2 * SECTION, SECTION)], ops: { migrateToRam: true, pageFree: () => {} }, owner: "o" });
    assert.equal(k.maxPfn, BOOT_MAX_PFN);
    assert.equal(k.maxLowPfn, BOOT_MAX_PFN);
  });

  for (const name of ["6.1.0", "2015-rfc"]) {
    it(`${name}: device memory raises max_pfn, and memunmap_pages does not lower it`, () => {
      const k = boot({}, VARIANTS[name]!);
      const p = live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(HIGH, SECTION)] });
      const end = pfnOf(HIGH + SECTION);
      assert.equal(k.maxPfn, end);
      assert.equal(k.maxLowPfn, end);
      assert.equal(k.highMemory, HIGH + SECTION);
      runToEnd(memunmapPages(k, p));
      assert.equal(k.maxPfn, end);
    });
  }

  it("RAM hot-plugged above device memory raises max_pfn: device pfns lie below it like RAM (seed 003)", () => {
    const k = boot();
    live(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [range(HIGH, SECTION)] });
    assert.equal(addMemory(k, 0, 0x1000000000, SECTION), 0);
    assert.equal(k.maxPfn, pfnOf(0x1000000000 + SECTION));
    const dev = pfnOf(HIGH) + 5;
    assert.ok(dev < k.maxPfn);
    assert.ok(BOOT_MAX_PFN - 1 < k.maxPfn);
    // Only the section state tells them apart.
    assert.equal(pfnToOnlinePage(k, dev), false);
    assert.equal(k.sections.pfnValid(dev), true);
    assert.equal(isZoneDevicePage(k, dev), true);
  });
});
