/**
 * vmemmap population and teardown (mm/sparse-vmemmap.c __populate_section_memmap, vmemmap_populate_compound_pages;
 * arch/x86/mm/init_64.c, arch/arm64/mm/mmu.c, arch/powerpc/mm/init_64.c vmemmap_populate / vmemmap_free)
 * against the kernel digest's worked examples 15.1-15.5, driven through __add_pages / __remove_pages.
 *
 * Expected numbers come from the digest's formulas (section 4.2 altmap_alloc_block_buf, 4.3 arch rules, 4.4
 * dedup, section 5 pmem sizing), worked by hand in the comments.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { ENOMEM } from "../../../src/kernel/errno.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { PageState } from "../../../src/kernel/mm/memmap.ts";
import { addPagesGeneric, removePages } from "../../../src/kernel/mm/memory_hotplug.ts";
import {
  compoundNrPages,
  MHP_RAM,
  type MhpParams,
  populateSectionMemmap,
  VMEMMAP_RESERVE_NR,
  vmemmapCanOptimize,
} from "../../../src/kernel/mm/sparse_vmemmap.ts";
import { newAltmap, type VmemAltmap } from "../../../src/kernel/mm/vmem_altmap.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { resolveMachine } from "../../../src/machine/spec.ts";

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const SP = 64; // sizeof(struct page) on every profile

function x86(): Kernel {
  return bootKernel({ ...machinePreset("qemu-q35-3g-pmem1g"), modules: [] });
}

/** QEMU arm64 virt, 4K pages, RAM [1 GiB, 5 GiB). */
function arm64(): Kernel {
  return bootKernel(machinePreset("arm64-virt-4g"));
}

function params(altmap: VmemAltmap | null, vmemmapShift: number | null, rangeStartPfn: number): MhpParams {
  return { altmap, pgmap: vmemmapShift === null ? null : { vmemmapShift, rangeStartPfn } };
}

/** Ledger totals equal the sum of its chunks. */
function assertLedgerConsistent(k: Kernel): void {
  let ram = 0;
  let alt = 0;
  let pt = 0;
  let saved = 0;
  for (const c of k.vmemmap.chunks.values()) {
    ram += c.ramBytes;
    alt += c.altmapPfns;
    pt += c.pageTableBytes;
    if (c.optimized) saved += c.memmapBytes - c.ramBytes;
  }
  assert.equal(k.vmemmap.ramBytes, ram, "ledger ramBytes");
  assert.equal(k.vmemmap.altmapPfns, alt, "ledger altmapPfns");
  assert.equal(k.vmemmap.pageTableBytes, pt, "ledger pageTableBytes");
  assert.equal(k.vmemmap.dedupSavedBytes, saved, "ledger dedupSavedBytes");
}

function assertNothingHeld(k: Kernel): void {
  assert.equal(k.vmemmap.chunks.size, 0);
  assert.deepEqual(k.vmemmap.resident(), { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 });
  assert.equal(k.vmemmap.ptes.size, 0);
  assert.equal(k.vmemmap.pmdLeaves.size, 0);
  assert.equal(k.vmemmap.pteTables.size, 0);
  assert.equal(k.vmemmap.pmdTables.size, 0);
  assert.equal(k.vmemmap.vmemmapList.size, 0);
  assertLedgerConsistent(k);
}

describe("vmemmap_can_optimize and compound_nr_pages (include/linux/mm.h, mm/mm_init.c)", () => {
  const k = x86();
  it("x86_64: true iff pgmap, no altmap and (1 << shift) * 64 >> 12 > VMEMMAP_RESERVE_NR (shift >= 8)", () => {
    assert.equal(VMEMMAP_RESERVE_NR, 2);
    assert.equal(vmemmapCanOptimize(k, null, { vmemmapShift: 7 }), false); // 128 * 64 >> 12 = 2
    assert.equal(vmemmapCanOptimize(k, null, { vmemmapShift: 8 }), true); // 4 > 2
    assert.equal(vmemmapCanOptimize(k, null, { vmemmapShift: 9 }), true);
    assert.equal(vmemmapCanOptimize(k, null, { vmemmapShift: 18 }), true);
    assert.equal(vmemmapCanOptimize(k, null, { vmemmapShift: 0 }), false);
    assert.equal(vmemmapCanOptimize(k, null, null), false);
    assert.equal(vmemmapCanOptimize(k, newAltmap(0x200000, 0x23ffff, 2, 1022), { vmemmapShift: 9 }), false);
  });

  it("arm64 and ppc64 do not select ARCH_WANT_HUGETLB_PAGE_OPTIMIZE_VMEMMAP in 6.1", () => {
    assert.equal(vmemmapCanOptimize(arm64(), null, { vmemmapShift: 9 }), false);
    assert.equal(vmemmapCanOptimize(bootKernel(machinePreset("ppc64-powernv-16g")), null, { vmemmapShift: 9 }), false);
  });

  it("compound_nr_pages: 2 * 4096 / 64 = 128 when optimized; the full compound in an early section or with an altmap", () => {
    const pfn = 0x200000; // 8 GiB: not early
    assert.equal(compoundNrPages(k, pfn, null, { vmemmapShift: 9 }), 128);
    assert.equal(compoundNrPages(k, pfn, null, { vmemmapShift: 18 }), 128);
    assert.equal(compoundNrPages(k, pfn, newAltmap(pfn, pfn + 32767, 2, 1022), { vmemmapShift: 9 }), 512);
    assert.equal(compoundNrPages(k, pfn, null, { vmemmapShift: 0 }), 1);
    assert.equal(compoundNrPages(k, 0x1000, null, { vmemmapShift: 9 }), 512, "section 0 is early");
    assert.equal(compoundNrPages(arm64(), 0x200000, null, { vmemmapShift: 9 }), 512);
  });
});

describe("15.1 x86_64: 16 GiB namespace at 4 GiB, map=dev", () => {
  it("128 PMD blocks from the altmap: alloc 65536, align 510 (= free 66046), no RAM; removal returns alloc", () => {
    const k = x86();
    const base = 0x100000;
    const nr = (16 * GiB) / 4096;
    const altmap = newAltmap(base, base + nr - 1, 2, 66046);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    // Each full section: one 2 MiB (512-pfn) block; the first at base + 2 is padded by 510 to 512-alignment.
    assert.equal(altmap.alloc, 128 * 512);
    assert.equal(altmap.align, 510);
    assert.equal(altmap.alloc + altmap.align, altmap.free);
    assert.equal(k.vmemmap.ramBytes, 0);
    assert.equal(k.vmemmap.altmapPfns, 65536);
    // PMD leaves need no PTE table; the PMD table for the first GiB of vmemmap (memmap of 0-64 GiB) holds boot's.
    assert.equal(k.vmemmap.pageTableBytes, 0);
    assert.equal(k.vmemmap.chunks.size, 128);
    assert.equal(k.vmemmap.pmdLeaves.size, 128);
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: 0, altmapPfns: 65536, pageTableBytes: 0 });
    assert.equal(k.memmap.state(base + 12345), PageState.Uninitialised);
    assertLedgerConsistent(k);

    assert.equal(removePages(k, base, nr, p), 0);
    assert.equal(altmap.alloc, 0);
    assert.equal(altmap.align, 510, "padding is never given back");
    assert.equal(k.memmap.state(base + 12345), PageState.TornDown);
    assertNothingHeld(k);
  });
});

describe("15.2 1 GiB namespace at a 2 MiB offset into a section, map=dev (free 4606, reserve 2)", () => {
  it("x86_64: partial chunks take 504 + 8 RAM base pages; 7 full sections 3584 altmap pfns + 510 padding", () => {
    const k = x86();
    const base = (4 * GiB + 2 * MiB) / 4096; // 0x100200
    const nr = GiB / 4096;
    const altmap = newAltmap(base, base + nr - 1, 2, 4606);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    assert.equal(k.vmemmap.ramBytes, (504 + 8) * 4096);
    assert.equal(altmap.alloc, 3584);
    assert.equal(altmap.align, 510);
    assert.ok(altmap.alloc + altmap.align <= altmap.free);
    // Section 32's memmap is exactly the PMD at vmemmap + 64 MiB (32768 * 64 B = 2 MiB): one PTE table under
    // each partially populated section (32 and 40).
    assert.equal(k.vmemmap.pageTableBytes, 2 * 4096);
    const first = k.vmemmap.chunks.get(base);
    assert.deepEqual(
      first && { nrPages: first.nrPages, ram: first.ramBytes, alt: first.altmapPfns, pt: first.pageTableBytes },
      { nrPages: 32256, ram: 504 * 4096, alt: 0, pt: 4096 },
    );
    const last = k.vmemmap.chunks.get((5 * GiB) / 4096);
    assert.deepEqual(last && { nrPages: last.nrPages, ram: last.ramBytes, pt: last.pageTableBytes }, { nrPages: 512, ram: 8 * 4096, pt: 4096 });
    assert.equal(k.vmemmap.chunks.get(33 * 32768)?.altmapPfns, 512);
    assertLedgerConsistent(k);

    assert.equal(removePages(k, base, nr, p), 0);
    assert.equal(altmap.alloc, 0);
    assert.equal(altmap.align, 510);
    assertNothingHeld(k);
  });

  it("arm64 4K (at 8 GiB + 2 MiB): partial chunks take base pages from the altmap: alloc 4096, align 6, no RAM", () => {
    const k = arm64();
    const base = (8 * GiB + 2 * MiB) / 4096; // 0x200200, 512-aligned
    const nr = GiB / 4096;
    const altmap = newAltmap(base, base + nr - 1, 2, 4606);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    // 504 single pages (no padding) put next at base + 506; the first 2 MiB block pads 6 to reach base + 512.
    assert.equal(altmap.alloc, 504 + 7 * 512 + 8);
    assert.equal(altmap.alloc, 4096);
    assert.equal(altmap.align, 6);
    assert.equal(k.vmemmap.ramBytes, 0);
    // memstart_addr = 1 GiB (ARM64_MEMSTART_ALIGN = PUD_SIZE): section 64's memmap is at vmemmap offset
    // (0x200000 - 0x40000) * 64 = 112 MiB, PMD aligned: one PTE table for each of the two partial sections.
    assert.equal(k.vmemmap.memstartPfn, 0x40000);
    assert.equal(k.vmemmap.pageTableBytes, 2 * 4096);
    assertLedgerConsistent(k);

    assert.equal(removePages(k, base, nr, p), 0);
    assert.equal(altmap.alloc, 0);
    assert.equal(altmap.align, 6);
    assertNothingHeld(k);
  });
});

describe("15.3 x86_64: 130 MiB namespace at 4 GiB (offset 4 MiB: free 1022 = 512 + 510)", () => {
  const base = 0x100000;
  const nr = (130 * MiB) / 4096;

  it("sized as pmem sizes it: one PMD block (512 + 510 padding) and 8 RAM pages for the last 2 MiB", () => {
    const k = x86();
    const altmap = newAltmap(base, base + nr - 1, 2, 1022);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    assert.equal(altmap.alloc, 512);
    assert.equal(altmap.align, 510);
    assert.equal(k.vmemmap.ramBytes, 8 * 4096);
    assert.equal(k.vmemmap.pageTableBytes, 4096);
    assert.equal(removePages(k, base, nr, p), 0);
    assert.equal(altmap.alloc, 0);
    assertNothingHeld(k);
  });

  it("one pfn short: the full section's altmap block fails, -ENOMEM with no fallback, nothing left allocated", () => {
    const k = x86();
    const altmap = newAltmap(base, base + nr - 1, 2, 1021);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), -ENOMEM);
    assert.equal(altmap.alloc, 0);
    assert.equal(altmap.align, 0);
    assertNothingHeld(k);
    assert.equal(k.sections.flags(32), 0);
    assert.equal(k.sections.hasUsage(32), false);
    assert.equal(k.memmap.state(base), PageState.TornDown, "section_deactivate ran vmemmap_free on the chunk");
    // __add_pages stopped at the failing section: the last chunk was never tried.
    assert.equal(k.sections.flags(33), 0);
  });

  it("a later section failing leaves the earlier ones added (no rollback in __add_pages); removing them returns the altmap", () => {
    const k = x86();
    const n2 = 2 * 32768;
    const altmap = newAltmap(base, base + n2 - 1, 2, 2 * 512 + 510 - 1);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, n2, p), -ENOMEM);
    assert.equal(altmap.alloc, 512);
    assert.equal(k.vmemmap.chunks.size, 1);
    assert.equal(k.vmemmap.altmapPfns, 512);
    assert.equal(removePages(k, base, n2, p), 0);
    assert.match(k.log[k.log.length - 1] ?? "", /section already deactivated/);
    assert.equal(altmap.alloc, 0);
    assertNothingHeld(k);
  });
});

describe("15.4 arm64 64K pages: 16 GiB at 4 GiB, map=dev (reserve 1, free 8191)", () => {
  it("base pages from the altmap, 8 per 512 MiB section: 256 for 32 sections, no padding, no RAM", () => {
    const k = bootKernel(resolveMachine({ arch: "arm64-64k-48", memory: [{ start: 0x80000000, size: "1G" }] }, "t"));
    const base = (4 * GiB) / (64 * KiB);
    const nr = (16 * GiB) / (64 * KiB);
    const altmap = newAltmap(base, base + nr - 1, 1, 8191);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    // A 512 MiB section is 8192 pfns: 8192 * 64 B = 512 KiB of memmap = 8 pages of 64 KiB.
    assert.equal(altmap.alloc, 256);
    assert.equal(altmap.align, 0);
    assert.equal(k.vmemmap.ramBytes, 0);
    // memstart_addr = 2 GiB (ARM64_MEMSTART_ALIGN = 512 MiB); one 64K PTE table maps 512 MiB of vmemmap, and the
    // one holding this memmap (offsets 2 MiB .. 18 MiB) already maps boot's (0 .. 1 MiB).
    assert.equal(k.vmemmap.memstartPfn, (2 * GiB) / (64 * KiB));
    assert.equal(k.vmemmap.pageTableBytes, 0);
    assert.equal(removePages(k, base, nr, p), 0);
    assert.equal(altmap.alloc, 0);
    assertNothingHeld(k);
  });
});

describe("15.5 x86_64 device-dax in RAM: the compound vmemmap dedup", () => {
  const base = (8 * GiB) / 4096; // 0x200000

  it("2 MiB pages (shift 9): 2 vmemmap pages per compound, 64 compounds: 128 pages (512 KiB) + one PTE table per section", () => {
    const k = x86();
    const nr = 2 * 32768;
    const p = params(null, 9, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    for (const s of [0, 1]) {
      const c = k.vmemmap.chunks.get(base + s * 32768);
      assert.ok(c);
      assert.equal(c.optimized, true);
      assert.equal(c.ramBytes, 128 * 4096);
      assert.equal(c.pageTableBytes, 4096);
    }
    assert.equal(k.vmemmap.ramBytes, 2 * 512 * KiB);
    assert.equal(k.vmemmap.dedupSavedBytes, 2 * (2 * MiB - 512 * KiB));
    // The other 6 of each compound's 8 vmemmap pages map its tail page.
    assert.equal(k.vmemmap.ptes.size, 2 * 512);
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: 1 * MiB, altmapPfns: 0, pageTableBytes: 2 * 4096 });
    assert.equal(removePages(k, base, nr, p), 0);
    assertNothingHeld(k);
  });

  it("1 GiB pages (shift 18): the first section of each GiB allocates 2 pages, the next 7 reuse its tail page", () => {
    const k = x86();
    const nr = (2 * GiB) / 4096;
    const p = params(null, 18, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    for (let s = 0; s < 16; s++) {
      const c = k.vmemmap.chunks.get(base + s * 32768);
      assert.ok(c);
      assert.equal(c.ramBytes, s % 8 === 0 ? 8 * KiB : 0, `section ${s}`);
      assert.equal(c.pageTableBytes, 4096, `section ${s}: 4K mappings need a PTE table`);
    }
    assert.equal(k.vmemmap.ramBytes, 2 * 8 * KiB);
    assert.equal(k.vmemmap.pageTableBytes, 16 * 4096);
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: 16 * KiB, altmapPfns: 0, pageTableBytes: 16 * 4096 });
    // Removing the first section of a GiB keeps its tail page alive (the other sections' PTEs hold references).
    const first = params(null, 18, base);
    assert.equal(removePages(k, base, 32768, first), 0);
    assert.equal(k.vmemmap.resident().ramBytes, 16 * KiB - 4 * KiB, "head page freed, tail page still mapped");
    assert.equal(removePages(k, base + 32768, nr - 32768, p), 0);
    assertNothingHeld(k);
  });

  it("vmemmap_shift 0: not optimizable, 2 MiB PMD-mapped per section", () => {
    const k = x86();
    const p = params(null, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, 32768, p), 0);
    assert.equal(k.vmemmap.ramBytes, 2 * MiB);
    assert.equal(k.vmemmap.pageTableBytes, 0);
    assert.equal(k.vmemmap.dedupSavedBytes, 0);
    assert.equal(k.vmemmap.chunks.get(base)?.optimized, false);
    assert.equal(removePages(k, base, 32768, p), 0);
    assertNothingHeld(k);
  });

  it("with an altmap there is no dedup: the arch path takes the PMD block from the altmap", () => {
    const k = x86();
    const altmap = newAltmap(base, base + 32767, 2, 1022);
    const p = params(altmap, 9, base);
    assert.equal(addPagesGeneric(k, 0, base, 32768, p), 0);
    assert.equal(k.vmemmap.ramBytes, 0);
    assert.equal(altmap.alloc, 512);
    assert.equal(removePages(k, base, 32768, p), 0);
    assert.equal(altmap.alloc, 0);
  });
});

describe("early sections and sub-section adds", () => {
  it("a partial add into an early section reuses the boot memmap: the ledger shows nothing", () => {
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
    const pfn = 15 * 32768 + 56 * 512;
    const altmap = newAltmap(pfn, pfn + 8 * 512 - 1, 2, 510);
    const p = params(altmap, 9, pfn);
    assert.equal(addPagesGeneric(k, 0, pfn, 8 * 512, p), 0);
    assert.equal(altmap.alloc, 0);
    assertNothingHeld(k);
    assert.equal(compoundNrPages(k, pfn, null, { vmemmapShift: 9 }), 512, "early: the unoptimized boot memmap");
    assert.equal(removePages(k, pfn, 8 * 512, p), 0);
    assertNothingHeld(k);
  });

  it("x86_64: sub-sections of a fresh section are base pages from RAM and share one PTE table", () => {
    const k = x86();
    const s = 64 * 32768;
    assert.equal(addPagesGeneric(k, 0, s, 512, MHP_RAM), 0);
    assert.equal(addPagesGeneric(k, 0, s + 512, 512, MHP_RAM), 0);
    assert.equal(k.vmemmap.chunks.get(s)?.pageTableBytes, 4096);
    assert.equal(k.vmemmap.chunks.get(s + 512)?.pageTableBytes, 0, "the PTE table is already there");
    assert.equal(k.vmemmap.ramBytes, 2 * 512 * SP);
    // The table outlives the chunk that allocated it.
    assert.equal(removePages(k, s, 512, MHP_RAM), 0);
    assert.equal(k.vmemmap.pageTableBytes, 0);
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: 512 * SP, altmapPfns: 0, pageTableBytes: 4096 });
    assert.equal(removePages(k, s + 512, 512, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("x86_64: a sub-section re-added into a section still PMD-mapped costs nothing; the leaf goes with its last user", () => {
    const k = x86();
    const s = 64 * 32768;
    assert.equal(addPagesGeneric(k, 0, s, 32768, MHP_RAM), 0);
    assert.equal(removePages(k, s, 512, MHP_RAM), 0);
    // vmemmap_pmd_is_unused(): the rest of the PMD is in use, the leaf stays.
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: 2 * MiB, altmapPfns: 0, pageTableBytes: 0 });
    assert.equal(addPagesGeneric(k, 0, s, 512, MHP_RAM), 0);
    assert.equal(k.vmemmap.chunks.get(s)?.ramBytes, 0);
    assert.equal(k.vmemmap.chunks.get(s)?.pageTableBytes, 0);
    assert.equal(removePages(k, s, 32768, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("arm64 4K: removing part of a PMD-mapped section frees the whole leaf (6.1): the rest of the memmap is gone", () => {
    const k = arm64();
    const s = (8 * GiB) / 4096;
    assert.equal(addPagesGeneric(k, 0, s, 32768, MHP_RAM), 0);
    assert.equal(removePages(k, s, 512, MHP_RAM), 0);
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 });
    assert.equal(k.memmap.state(s + 512), PageState.TornDown);
    assert.equal(k.memmap.state(s + 32767), PageState.TornDown);
    assert.equal(removePages(k, s + 512, 32768 - 512, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("arm64 16K: two sub-sections share a vmemmap page; removing either frees it under the other (6.1)", () => {
    const k = bootKernel(resolveMachine({ arch: "arm64-16k-48", memory: [{ start: 0x80000000, size: "1G" }] }, "t"));
    const page = 16 * KiB;
    const s = (8 * GiB) / page; // a fresh 128 MiB section
    const sub = k.geo.pagesPerSubsection; // 128 pfns: 8 KiB of memmap, half a page
    assert.equal(addPagesGeneric(k, 0, s, sub, MHP_RAM), 0);
    assert.equal(addPagesGeneric(k, 0, s + sub, sub, MHP_RAM), 0);
    assert.equal(k.vmemmap.chunks.get(s)?.ramBytes, page);
    assert.equal(k.vmemmap.chunks.get(s + sub)?.ramBytes, 0, "pte present: reused");
    assert.equal(removePages(k, s, sub, MHP_RAM), 0);
    assert.equal(k.memmap.state(s + sub), PageState.TornDown, "the other sub-section's struct pages were in that page");
    assert.equal(k.vmemmap.resident().ramBytes, 0);
    assert.equal(removePages(k, s + sub, sub, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("arm64 64K: a sub-section add whose memmap starts mid-page and crosses a page boundary leaves the second page unpopulated", () => {
    // vmemmap_populate_range() steps addr by PAGE_SIZE from the unaligned start: [X + 62K, X + 66K) touches
    // only the page at X. memstart = 2 GiB, so the section at 8 GiB has its memmap at offset 6 MiB (page aligned).
    const k = bootKernel(resolveMachine({ arch: "arm64-64k-48", memory: [{ start: 0x80000000, size: "1G" }] }, "t"));
    const s = (8 * GiB) / (64 * KiB);
    const sub = k.geo.pagesPerSubsection; // 32 pfns: 2 KiB of memmap
    const p = s + 31 * sub;
    assert.equal(addPagesGeneric(k, 0, p, 2 * sub, MHP_RAM), 0);
    assert.equal(k.vmemmap.ramBytes, 64 * KiB, "one page, not two");
    assert.equal(k.memmap.state(p), PageState.Uninitialised);
    assert.equal(k.memmap.state(p + sub), PageState.NoMemmap, "no struct pages behind sub-section 32");
    // The next add populates that page; removing the first frees only the page its start lies in.
    assert.equal(addPagesGeneric(k, 0, s + 33 * sub, 31 * sub, MHP_RAM), 0);
    assert.equal(k.vmemmap.chunks.get(s + 33 * sub)?.ramBytes, 64 * KiB);
    assert.equal(removePages(k, p, 2 * sub, MHP_RAM), 0);
    assert.equal(k.vmemmap.resident().ramBytes, 64 * KiB);
    assert.equal(k.memmap.state(s + 40 * sub), PageState.Uninitialised);
    assert.equal(removePages(k, s + 33 * sub, 31 * sub, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("a misaligned request WARNs once and fails", () => {
    const k = x86();
    const before = k.log.length;
    assert.equal(populateSectionMemmap(k, 64 * 32768 + 1, 512, 0, MHP_RAM), -ENOMEM);
    assert.equal(populateSectionMemmap(k, 64 * 32768, 511, 0, MHP_RAM), -ENOMEM);
    assert.equal(k.log.length, before + 1);
    assert.match(k.log[before] ?? "", /WARNING: __populate_section_memmap/);
    assertNothingHeld(k);
  });
});

describe("ppc64 radix: 2 MiB vmemmap pages shared by 128 sections (2 GiB of 64K pages)", () => {
  it("the first section in a vmemmap page allocates it, later ones reuse it; it goes with the last valid sub-section", () => {
    const k = bootKernel(machinePreset("ppc64-powernv-16g"));
    const s = (16 * GiB) / (64 * KiB); // right after boot RAM
    const pps = k.geo.pagesPerSection; // 256
    assert.equal(addPagesGeneric(k, 0, s, pps, MHP_RAM), 0);
    assert.equal(addPagesGeneric(k, 0, s + pps, pps, MHP_RAM), 0);
    assert.equal(k.vmemmap.chunks.get(s)?.ramBytes, 2 * MiB);
    assert.equal(k.vmemmap.chunks.get(s + pps)?.ramBytes, 0);
    assert.equal(k.vmemmap.pageTableBytes, 0);
    assert.equal(removePages(k, s, pps, MHP_RAM), 0);
    assert.equal(k.vmemmap.resident().ramBytes, 2 * MiB, "section s + 256 is still valid");
    assert.equal(removePages(k, s + pps, pps, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("a vmemmap page that also holds boot memory's memmap is populated already: a hot-add there allocates nothing", () => {
    // RAM [0, 17 GiB): the vmemmap page for [16, 18) GiB was populated at boot for 16..17 GiB.
    const k = bootKernel(resolveMachine({ arch: "ppc64-radix-64k", memory: [{ start: 0, size: "17G" }] }, "t"));
    const s = (17 * GiB) / (64 * KiB);
    assert.equal(addPagesGeneric(k, 0, s, 256, MHP_RAM), 0);
    assert.equal(k.vmemmap.chunks.get(s)?.ramBytes, 0);
    assert.equal(removePages(k, s, 256, MHP_RAM), 0);
    assertNothingHeld(k);
  });

  it("altmap: used only when the 2 GiB the page describes lies inside [base_pfn, end_pfn]", () => {
    const k = bootKernel(machinePreset("ppc64-powernv-16g"));
    const pfnOf = (a: number) => a / (64 * KiB);
    // 2 GiB namespace at 18 GiB: the page for [18, 20) GiB comes from the altmap, 32 pfns aligned to 32.
    const base = pfnOf(18 * GiB);
    const nr = pfnOf(2 * GiB);
    const altmap = newAltmap(base, base + nr - 1, 1, 511);
    const p = params(altmap, 0, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    assert.equal(altmap.alloc, 32);
    assert.equal(altmap.align, 31);
    assert.equal(k.vmemmap.ramBytes, 0);
    // 1 GiB namespace at 20 GiB: its page would cross end_pfn: RAM.
    const b2 = pfnOf(20 * GiB);
    const alt2 = newAltmap(b2, b2 + pfnOf(GiB) - 1, 1, 511);
    const p2 = params(alt2, 0, b2);
    assert.equal(addPagesGeneric(k, 0, b2, pfnOf(GiB), p2), 0);
    assert.equal(alt2.alloc, 0);
    assert.equal(k.vmemmap.ramBytes, 2 * MiB);
    assert.equal(removePages(k, base, nr, p), 0);
    assert.equal(altmap.alloc, 0);
    assert.equal(removePages(k, b2, pfnOf(GiB), p2), 0);
    assertNothingHeld(k);
  });
});

/** pmem's sizing (digest section 5): offset = ALIGN(8 KiB + 64 * npfns0, 2 MiB), free = offset / PAGE - reserve. */
function pmemAltmap(k: Kernel, pfn: number, nr: number): VmemAltmap {
  const page = k.geo.pageSize;
  const size = nr * page;
  const reserve = Math.ceil((8 * KiB) / page);
  const npfns0 = Math.floor((size - 8 * KiB) / page);
  const offset = Math.ceil((8 * KiB + SP * npfns0) / (2 * MiB)) * 2 * MiB;
  return newAltmap(pfn, pfn + nr - 1, reserve, offset / page - reserve);
}

interface Live {
  pfn: number;
  nr: number;
  p: MhpParams;
}

type Op = { kind: "add"; at: number; len: number; altmap: boolean; shift: number | null } | { kind: "remove"; which: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("add" as const),
    at: fc.integer({ min: 0, max: 511 }),
    len: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 200 })),
    altmap: fc.boolean(),
    shift: fc.constantFrom(null, 0, 9, 18),
  }),
  fc.record({ kind: fc.constant("remove" as const), which: fc.nat() }),
);

/** Every vmemmap page of a live chunk's memmap is mapped (x86_64 / arm64), by a hot-plug PTE or leaf. */
function assertBacked(k: Kernel): void {
  const page = k.geo.pageSize;
  const pmd = 2 ** k.arch.pmdShift;
  const base = k.vmemmap.memstartPfn ?? 0;
  for (const c of k.vmemmap.chunks.values()) {
    const start = (c.startPfn - base) * SP;
    const end = start + c.nrPages * SP;
    for (let a = Math.floor(start / page) * page; a < end; a += page) {
      const ok = k.vmemmap.pmdLeaves.has(Math.floor(a / pmd)) || k.vmemmap.ptes.has(a / page);
      assert.ok(ok, `memmap of chunk 0x${c.startPfn.toString(16)} unmapped at vmemmap +0x${a.toString(16)}`);
    }
  }
}

/** Sub-section-aligned ranges within the GiB at regionAddr (free on every machine used). */
function runSequence(boot: () => Kernel, regionAddr: number, exact: boolean, ops: Op[]): void {
  const k = boot();
  const sub = k.geo.pagesPerSubsection;
  const region = regionAddr / k.geo.pageSize;
  const live: Live[] = [];
  const altmaps: VmemAltmap[] = [];
  const check = () => {
    assertLedgerConsistent(k);
    if (!exact) return;
    // No vmemmap page or block is allocated twice: what the mapping holds is exactly what the live chunks paid.
    const r = k.vmemmap.resident();
    assert.equal(r.ramBytes, k.vmemmap.ramBytes, "resident RAM == ledger RAM");
    assert.equal(r.altmapPfns, k.vmemmap.altmapPfns, "resident altmap == ledger altmap");
    assert.equal(
      live.reduce((n, l) => n + (l.p.altmap?.alloc ?? 0), 0),
      k.vmemmap.altmapPfns,
      "altmap alloc == ledger altmap",
    );
    assertBacked(k);
  };
  for (const op of ops) {
    if (op.kind === "add") {
      const len = Math.min(op.len, 512 - op.at);
      const pfn = region + op.at * sub;
      const nr = len * sub;
      if (live.some((l) => pfn < l.pfn + l.nr && l.pfn < pfn + nr)) continue;
      const altmap = op.altmap ? pmemAltmap(k, pfn, nr) : null;
      if (altmap) altmaps.push(altmap);
      const p = params(altmap, op.shift, pfn);
      const rc = addPagesGeneric(k, 0, pfn, nr, p);
      if (rc === 0) live.push({ pfn, nr, p });
      else {
        assert.equal(rc, -ENOMEM);
        assert.ok(altmap, "only an altmap runs out");
        // A caller unwinding: sections added before the failure are removed (the rest only WARN).
        assert.equal(removePages(k, pfn, nr, p), 0);
        assert.equal(altmap.alloc, 0);
      }
    } else if (live.length > 0) {
      const [l] = live.splice(op.which % live.length, 1);
      if (!l) continue;
      assert.equal(removePages(k, l.pfn, l.nr, l.p), 0);
      if (l.p.altmap) assert.equal(l.p.altmap.alloc, 0, "altmap alloc back to 0 once its range is removed");
    }
    check();
  }
  for (const l of live) assert.equal(removePages(k, l.pfn, l.nr, l.p), 0);
  for (const a of altmaps) assert.equal(a.alloc, 0);
  assertNothingHeld(k);
}

describe("add/remove sequences (fast-check)", () => {
  it("x86_64: ledger == live chunks == what the mapping holds; altmaps return to 0; nothing left at the end", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 24 }), (ops) => runSequence(x86, 8 * GiB, true, ops)),
      { numRuns: 60 },
    );
  });

  it("arm64 4K: the same", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 24 }), (ops) => runSequence(arm64, 8 * GiB, true, ops)),
      { numRuns: 40 },
    );
  });

  it("ppc64 radix (vmemmap pages outlive the chunk that allocated them): consistent ledger, nothing left at the end", () => {
    const ppc = () => bootKernel(machinePreset("ppc64-powernv-16g"));
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 24 }), (ops) => runSequence(ppc, 32 * GiB, false, ops)),
      { numRuns: 30 },
    );
  });
});
