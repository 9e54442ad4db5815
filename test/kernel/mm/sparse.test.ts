/**
 * SPARSEMEM sections and sub-sections against include/linux/mmzone.h (pfn_valid, pfn_section_valid,
 * subsection_map_index) and mm/sparse.c (memory_present/sparse_init_nid flags, subsection_map_init,
 * section_activate, section_deactivate).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { archProfile, geometry } from "../../../src/arch/profiles.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { EEXIST, EINVAL } from "../../../src/kernel/errno.ts";
import { PageState } from "../../../src/kernel/mm/memmap.ts";
import { pfnToOnlinePage } from "../../../src/kernel/mm/memory_hotplug.ts";
import {
  SECTION_HAS_MEM_MAP,
  SECTION_IS_EARLY,
  SECTION_IS_ONLINE,
  SECTION_MARKED_PRESENT,
  SectionTable,
} from "../../../src/kernel/mm/sparse.ts";
import { sectionDeactivate, sparseAddSection } from "../../../src/kernel/mm/sparse_hotplug.ts";
import { MHP_RAM } from "../../../src/kernel/mm/sparse_vmemmap.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { resolveMachine } from "../../../src/machine/spec.ts";

const geo = geometry(archProfile("x86_64"));
const PPS = geo.pagesPerSection; // 32768
const PPSS = geo.pagesPerSubsection; // 512
const BOOT = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP | SECTION_IS_ONLINE | SECTION_IS_EARLY;
const HOTADDED = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP;

describe("SectionTable: pfn_valid and the subsection map", () => {
  it("x86_64 geometry: 128 MiB sections, 2 MiB sub-sections, 64 per section", () => {
    assert.equal(PPS, 32768);
    assert.equal(PPSS, 512);
    assert.equal(geo.subsectionsPerSection, 64);
    assert.equal(geo.nrMemSections, 2 ** (46 - 27));
  });

  it("subsection_map_index is the 2 MiB slot inside the section", () => {
    const t = new SectionTable(geo);
    assert.equal(t.subsectionIndex(0), 0);
    assert.equal(t.subsectionIndex(511), 0);
    assert.equal(t.subsectionIndex(512), 1);
    assert.equal(t.subsectionIndex(PPS - 1), 63);
    assert.equal(t.subsectionIndex(5 * PPS + 7 * PPSS + 3), 7);
    assert.equal(t.pfnToSectionNr(5 * PPS + 7), 5);
  });

  it("a hot-added (not early) section is valid only in populated sub-sections", () => {
    const t = new SectionTable(geo);
    const nr = 3;
    const base = nr * PPS;
    assert.equal(t.pfnValid(base), false);
    t.markPresent(nr);
    // Present without a memmap: not valid.
    assert.equal(t.pfnValid(base + 2 * PPSS), false);
    t.setUsage(nr, 1);
    t.setSubsections(nr, 2, 5, true);
    t.setFlags(nr, t.flags(nr) | SECTION_HAS_MEM_MAP);
    assert.equal(t.pfnValid(base + 2 * PPSS - 1), false);
    assert.equal(t.pfnValid(base + 2 * PPSS), true);
    assert.equal(t.pfnValid(base + 6 * PPSS - 1), true);
    assert.equal(t.pfnValid(base + 6 * PPSS), false);
    assert.equal(t.subsectionsAllSet(nr, 2, 5), true);
    assert.equal(t.subsectionsAllSet(nr, 2, 6), false);
    assert.equal(t.subsectionsIntersect(nr, 5, 9), true);
    assert.equal(t.subsectionsIntersect(nr, 6, 63), false);
    // Early: the whole section, whatever the subsection map says.
    t.setFlags(nr, t.flags(nr) | SECTION_IS_EARLY);
    assert.equal(t.pfnValid(base), true);
    assert.equal(t.pfnValid(base + PPS - 1), true);
    // The next section has nothing.
    assert.equal(t.pfnValid(base + PPS), false);
  });

  it("subsection bits above 31 and across words work", () => {
    const t = new SectionTable(geo);
    t.setSubsections(7, 30, 40, true);
    assert.deepEqual(
      t.subsectionBits(7).flatMap((b, i) => (b ? [i] : [])),
      [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40],
    );
    t.setSubsections(7, 31, 32, false);
    assert.equal(t.testSubsection(7, 31), false);
    assert.equal(t.testSubsection(7, 32), false);
    assert.equal(t.testSubsection(7, 33), true);
    assert.equal(t.subsectionMapEmpty(7), false);
    t.setSubsections(7, 0, 63, false);
    assert.equal(t.subsectionMapEmpty(7), true);
  });

  it("subsection_map_init marks the sub-sections a boot range touches, across a section boundary", () => {
    const t = new SectionTable(geo);
    // From the last sub-section of section 0 to the middle of section 1's second sub-section.
    t.subsectionMapInit(PPS - PPSS + 10, PPSS + PPSS + 100);
    assert.deepEqual(t.subsectionBits(0).flatMap((b, i) => (b ? [i] : [])), [63]);
    assert.deepEqual(t.subsectionBits(1).flatMap((b, i) => (b ? [i] : [])), [0, 1]);
  });

  it("pfn_valid rejects pfns beyond MAX_PHYSMEM_BITS and non-pfns", () => {
    const t = new SectionTable(geo);
    assert.equal(t.pfnValid(geo.maxPfn), false);
    assert.equal(t.pfnValid(-1), false);
    assert.equal(t.pfnValid(1.5), false);
  });
});

describe("sections after booting the oracle guest (qemu-q35-3g-pmem1g)", () => {
  const k = bootKernel({ ...machinePreset("qemu-q35-3g-pmem1g"), modules: [] });

  it("sections 0..15 are present, have a memmap, are online and early; 16 and the pmem at 4 GiB are not", () => {
    for (let nr = 0; nr <= 15; nr++) assert.equal(k.sections.flags(nr), BOOT, `section ${nr}`);
    assert.equal(k.sections.flags(16), 0);
    assert.equal(k.sections.flags(32), 0);
    assert.equal(k.sections.highestPresentSectionNr, 15);
    assert.deepEqual([...k.sections.presentSections()], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it("boot memory covers every sub-section of sections 0..15 (RAM ends at 0x7ffdf, in the last one)", () => {
    for (let nr = 0; nr <= 15; nr++) assert.ok(k.sections.subsectionBits(nr).every(Boolean), `section ${nr}`);
    assert.ok(k.sections.usageFromBoot(0));
  });

  it("pfn_valid: early sections in full (holes included), nothing from 2 GiB up", () => {
    assert.equal(k.sections.pfnValid(0x80000), false);
    assert.equal(k.sections.pfnValid(0xa0), true); // the legacy VGA/BIOS hole [0x9f000, 0x100000)
    assert.equal(k.sections.pfnValid(0), true);
    assert.equal(k.sections.pfnValid(0x7ffdf), true); // reserved tail of section 15
    assert.equal(k.sections.pfnValid(0x7ffff), true);
    assert.equal(k.sections.pfnValid(0x100000), false); // legacy pmem at 4 GiB: no memmap
  });

  it("pfn_to_online_page: boot pfns are online, pfns without a section are not", () => {
    assert.equal(pfnToOnlinePage(k, 0x1000), true);
    assert.equal(pfnToOnlinePage(k, 0xa0), true);
    assert.equal(pfnToOnlinePage(k, 0x80000), false);
  });
});

describe("section_activate / section_deactivate (hot-add of sub-sections)", () => {
  it("adds, refuses overlaps with -EEXIST, and tears down sub-section by sub-section", () => {
    const k = bootKernel({ ...machinePreset("qemu-q35-3g-pmem1g"), modules: [] });
    const nr = 64; // 8 GiB
    const base = nr * PPS;
    assert.equal(sparseAddSection(k, 0, base + 4 * PPSS, 2 * PPSS, MHP_RAM), 0);
    assert.equal(k.sections.flags(nr), HOTADDED);
    assert.equal(k.sections.hasUsage(nr), true);
    assert.equal(k.sections.usageFromBoot(nr), false);
    assert.equal(k.sections.pfnValid(base + 4 * PPSS - 1), false);
    assert.equal(k.sections.pfnValid(base + 4 * PPSS), true);
    assert.equal(k.sections.pfnValid(base + 6 * PPSS - 1), true);
    assert.equal(k.sections.pfnValid(base + 6 * PPSS), false);
    assert.equal(k.memmap.state(base + 4 * PPSS), PageState.Uninitialised);
    assert.equal(k.memmap.state(base + 6 * PPSS), PageState.NoMemmap);
    assert.equal(k.vmemmap.ramBytes, 2 * PPSS * k.arch.structPageSize);
    // Hot-added sections are not online until online_pages.
    assert.equal(pfnToOnlinePage(k, base + 4 * PPSS), false);
    assert.equal(k.sections.highestPresentSectionNr, nr);

    assert.equal(sparseAddSection(k, 0, base + 4 * PPSS, 2 * PPSS, MHP_RAM), -EEXIST);
    assert.equal(sparseAddSection(k, 0, base + 5 * PPSS, 2 * PPSS, MHP_RAM), -EEXIST);
    assert.equal(k.sections.testSubsection(nr, 6), false, "a refused add sets no bit");
    assert.equal(sparseAddSection(k, 0, base + 6 * PPSS, PPSS, MHP_RAM), 0);
    assert.equal(k.vmemmap.ramBytes, 3 * PPSS * k.arch.structPageSize);

    sectionDeactivate(k, base + 4 * PPSS, 2 * PPSS, MHP_RAM);
    assert.equal(k.sections.flags(nr), HOTADDED, "still one sub-section left");
    assert.equal(k.sections.pfnValid(base + 4 * PPSS), false);
    assert.equal(k.sections.pfnValid(base + 6 * PPSS), true);
    assert.equal(k.memmap.state(base + 4 * PPSS), PageState.TornDown);
    sectionDeactivate(k, base + 6 * PPSS, PPSS, MHP_RAM);
    assert.equal(k.sections.flags(nr), 0);
    assert.equal(k.sections.hasUsage(nr), false);
    assert.equal(k.sections.pfnValid(base + 6 * PPSS), false);
    assert.equal(k.vmemmap.ramBytes, 0);
    // Deactivating again: WARN "section already deactivated", nothing else.
    const logged = k.log.length;
    sectionDeactivate(k, base + 6 * PPSS, PPSS, MHP_RAM);
    assert.equal(k.log.length, logged + 1);
    assert.match(k.log[logged]!, /section already deactivated/);
    assert.equal(k.sections.flags(nr), 0);
  });

  it("an empty range is -EINVAL and frees the freshly allocated usage", () => {
    const k = bootKernel({ ...machinePreset("qemu-q35-3g-pmem1g"), modules: [] });
    const base = 65 * PPS;
    assert.equal(sparseAddSection(k, 0, base + 3 * PPSS, 0, MHP_RAM), -EINVAL);
    assert.equal(k.sections.hasUsage(65), false);
    assert.equal(k.sections.flags(65), 0);
  });

  it("a partial hot-add into an early section reuses the boot memmap", () => {
    // RAM ends at 0x7f000000: section 15 has boot memory in sub-sections 0..55 only.
    const spec = resolveMachine(
      {
        arch: "x86_64",
        e820: [
          { start: 0x0, end: 0x9fbff, type: "usable" },
          { start: 0xf0000, end: 0xfffff, type: "reserved" },
          { start: 0x100000, end: 0x7effffff, type: "usable" },
        ],
      },
      "test",
    );
    const k = bootKernel(spec);
    const nr = 15;
    const base = nr * PPS;
    assert.deepEqual(
      k.sections.subsectionBits(nr).flatMap((b, i) => (b ? [] : [i])),
      [56, 57, 58, 59, 60, 61, 62, 63],
    );
    // Early: valid in full even where no boot memory is.
    assert.equal(k.sections.pfnValid(base + 60 * PPSS), true);
    const pfn = base + 56 * PPSS;
    assert.equal(sparseAddSection(k, 0, pfn, 8 * PPSS, MHP_RAM), 0);
    assert.equal(k.vmemmap.ramBytes, 0, "no new memmap for an early section");
    assert.equal(k.sections.flags(nr), BOOT);
    assert.ok(k.sections.subsectionBits(nr).every(Boolean));
    assert.equal(sparseAddSection(k, 0, pfn, PPSS, MHP_RAM), -EEXIST);
    sectionDeactivate(k, pfn, 8 * PPSS, MHP_RAM);
    assert.equal(k.sections.flags(nr), BOOT, "early and still partly populated: untouched");
    assert.equal(k.sections.testSubsection(nr, 56), false);
    assert.equal(k.sections.testSubsection(nr, 55), true);
  });
});
