/**
 * vmemmap population and teardown (mm/sparse-vmemmap.c __populate_section_memmap, vmemmap_populate_compound_pages;
 * arch/x86/mm/init_64.c, arch/arm64/mm/mmu.c, arch/powerpc/mm/init_64.c vmemmap_populate / vmemmap_free)
 * against the kernel digest's worked examples 15.1-15.5, driven through __add_pages / __remove_pages.
 *
 * Expected numbers come from the digest's formulas (section 4.2 altmap_alloc_block_buf, 4.3 arch rules, 4.4
 * dedup, section 5 pmem sizing), worked by hand in the comments.
 *
 * The compact representation (run-length PMD entries, PTE tables as patterns) is checked against the per-PTE
 * model it replaced, kept at the end of this file as a reference: same calls, same ledgers, same mapping page by
 * page, same memmap states, altmaps and log.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { EEXIST, EINVAL, ENOMEM, type Errno } from "../../../src/kernel/errno.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { PageState, pageValue } from "../../../src/kernel/mm/memmap.ts";
import { addPagesGeneric, removePages } from "../../../src/kernel/mm/memory_hotplug.ts";
import { warn } from "../../../src/kernel/mm/page_access.ts";
import { SECTION_HAS_MEM_MAP } from "../../../src/kernel/mm/sparse.ts";
import {
  compoundNrPages,
  depopulateSectionMemmap,
  MHP_RAM,
  type MhpParams,
  type PgmapVmemmapView,
  populateSectionMemmap,
  VMEMMAP_RESERVE_NR,
  vmemmapCanOptimize,
} from "../../../src/kernel/mm/sparse_vmemmap.ts";
import { altmapAllocBlockBuf, newAltmap, type VmemAltmap, vmemAltmapFree } from "../../../src/kernel/mm/vmem_altmap.ts";
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
  assert.equal(k.vmemmap.pteCount(), 0);
  assert.equal(k.vmemmap.ptes.size, 0);
  assert.equal(k.vmemmap.pmdLeafCount(), 0);
  assert.equal(k.vmemmap.pteTableCount(), 0);
  assert.equal(k.vmemmap.pmds.runCount(), 0);
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
    assert.equal(k.vmemmap.pmdLeafCount(), 128);
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
    assert.equal(k.vmemmap.pteCount(), 2 * 512);
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
  const base = k.vmemmap.memstartPfn ?? 0;
  for (const c of k.vmemmap.chunks.values()) {
    const start = (c.startPfn - base) * SP;
    const end = start + c.nrPages * SP;
    for (let a = Math.floor(start / page) * page; a < end; a += page) {
      assert.ok(k.vmemmap.hotMapped(a / page), `memmap of chunk 0x${c.startPfn.toString(16)} unmapped at vmemmap +0x${a.toString(16)}`);
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

describe("the compact representation: state grows with irregularity, not with the memory added", () => {
  it("x86_64 device-dax, 1 TiB of 2 MiB compound pages: a handful of runs, no PTE spelled out", () => {
    const k = x86();
    const base = (64 * GiB) / 4096;
    const nr = (1024 * GiB) / 4096;
    const p = params(null, 9, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    // 8192 sections: 64 compounds of 2 pages each, one PTE table each, one PMD table per 512 sections.
    assert.equal(k.vmemmap.chunks.size, 8192);
    assert.equal(k.vmemmap.ramBytes, 8192 * 128 * 4096);
    assert.equal(k.vmemmap.pageTableBytes, 8192 * 4096 + 16 * 4096);
    assert.equal(k.vmemmap.pteCount(), 8192 * 512);
    assert.equal(k.vmemmap.ptes.size, 0);
    // One run of PTE tables per 512 PMD indexes (runs are kept in buckets of 512), one run of chunks per 64 GiB.
    assert.equal(k.vmemmap.pmds.runCount(), 8192 / 512);
    assert.ok(k.vmemmap.chunks.runCount() <= 2 * 16, `${k.vmemmap.chunks.runCount()} chunk runs`);
    assert.deepEqual(k.vmemmap.resident(), { ramBytes: k.vmemmap.ramBytes, altmapPfns: 0, pageTableBytes: k.vmemmap.pageTableBytes });
    // Taking one section out of the middle splits a run; putting it back joins it again.
    const mid = base + 4000 * 32768;
    assert.equal(removePages(k, mid, 32768, p), 0);
    assert.equal(k.vmemmap.pmds.runCount(), 8192 / 512 + 1);
    assert.equal(k.vmemmap.ptes.size, 0);
    assert.equal(addPagesGeneric(k, 0, mid, 32768, params(null, 9, mid)), 0);
    assert.equal(k.vmemmap.pmds.runCount(), 8192 / 512);
    assert.equal(removePages(k, base, nr, p), 0);
    assertNothingHeld(k);
  });

  it("x86_64 1 GiB compound pages: one named tail page per GiB, nothing expanded", () => {
    const k = x86();
    const base = (64 * GiB) / 4096;
    const nr = (64 * GiB) / 4096;
    const p = params(null, 18, base);
    assert.equal(addPagesGeneric(k, 0, base, nr, p), 0);
    assert.equal(k.vmemmap.ramBytes, 64 * 2 * 4096);
    assert.equal(k.vmemmap.ptes.size, 0);
    assert.ok(k.vmemmap.pmds.runCount() <= 2 * 64 + 1, `${k.vmemmap.pmds.runCount()} runs`);
    assert.equal(removePages(k, base, nr, p), 0);
    assertNothingHeld(k);
  });
});

/** Populate and depopulate of one memmap chunk: the compact implementation, or the per-PTE reference. */
interface VmemmapImpl {
  populate(k: Kernel, pfn: number, nrPages: number, nid: number, params: MhpParams): Errno;
  depopulate(k: Kernel, pfn: number, nrPages: number, altmap: VmemAltmap | null): void;
}

const compact: VmemmapImpl = { populate: populateSectionMemmap, depopulate: depopulateSectionMemmap };

/** section_deactivate (mm/sparse.c) over an implementation. */
function implDeactivate(k: Kernel, impl: VmemmapImpl, pfn: number, nrPages: number, p: MhpParams): void {
  const nr = k.sections.pfnToSectionNr(pfn);
  const first = k.sections.subsectionIndex(pfn);
  const last = k.sections.subsectionIndex(pfn + nrPages - 1);
  if (!k.sections.subsectionsAllSet(nr, first, last)) {
    k.printk(`WARNING: section already deactivated (${pfn.toString(16)} + ${nrPages.toString(16)})`);
    return;
  }
  k.sections.setSubsections(nr, first, last, false);
  const empty = k.sections.subsectionMapEmpty(nr);
  const early = k.sections.early(nr);
  if (empty) {
    k.sections.setFlags(nr, k.sections.flags(nr) & ~SECTION_HAS_MEM_MAP);
    if (!k.sections.usageFromBoot(nr)) k.sections.setUsage(nr, 0);
  }
  if (!early) impl.depopulate(k, pfn, nrPages, p.altmap);
  else if (empty) {
    const start = k.sections.sectionNrToPfn(nr);
    k.memmap.setRange(start, start + k.geo.pagesPerSection, pageValue({ state: PageState.TornDown }));
  }
  if (empty) k.sections.setFlags(nr, 0);
}

/** __add_pages, sparse_add_section and section_activate (mm/memory_hotplug.c, mm/sparse.c) over an implementation. */
function implAdd(k: Kernel, impl: VmemmapImpl, pfn: number, nrPages: number, p: MhpParams): Errno {
  const altmap = p.altmap;
  if (altmap) {
    if (altmap.basePfn !== pfn || altmap.reserve + altmap.free > nrPages) return -EINVAL;
    altmap.alloc = 0;
  }
  const sub = k.geo.pagesPerSubsection;
  if (pfn % sub !== 0 || nrPages % sub !== 0) return -EINVAL;
  const end = pfn + nrPages;
  for (let cur = pfn; cur < end; ) {
    const nr = k.sections.pfnToSectionNr(cur);
    const n = Math.min(end, (nr + 1) * k.geo.pagesPerSection) - cur;
    let usageFresh = false;
    if (!k.sections.hasUsage(nr)) {
      k.sections.setUsage(nr, 1);
      usageFresh = true;
    }
    const first = k.sections.subsectionIndex(cur);
    const last = k.sections.subsectionIndex(cur + n - 1);
    if (k.sections.subsectionsIntersect(nr, first, last)) {
      if (usageFresh) k.sections.setUsage(nr, 0);
      return -EEXIST;
    }
    k.sections.setSubsections(nr, first, last, true);
    if (!(n < k.geo.pagesPerSection && k.sections.early(nr))) {
      const err = impl.populate(k, cur, n, 0, p);
      if (err) {
        implDeactivate(k, impl, cur, n, p);
        return err;
      }
    }
    if (!k.sections.present(nr)) k.sections.setNid(nr, 0);
    k.sections.markPresent(nr);
    k.sections.setFlags(nr, k.sections.flags(nr) | SECTION_HAS_MEM_MAP);
    cur += n;
  }
  return 0;
}

/** __remove_pages over an implementation. */
function implRemove(k: Kernel, impl: VmemmapImpl, pfn: number, nrPages: number, p: MhpParams): void {
  const end = pfn + nrPages;
  for (let cur = pfn; cur < end; ) {
    const n = Math.min(end, (k.sections.pfnToSectionNr(cur) + 1) * k.geo.pagesPerSection) - cur;
    implDeactivate(k, impl, cur, n, p);
    cur += n;
  }
}

type Mapping = { via: "pte" | "leaf"; block: object | string; backing: string; refs: number } | null;

/** One line per mapped vmemmap page in [lo, hi); blocks named by the first page (in the range) that maps them. */
function mappingLines(lo: number, hi: number, at: (p: number) => Mapping): string[] {
  const names = new Map<object | string, number>();
  const out: string[] = [];
  for (let p = lo; p < hi; p++) {
    const m = at(p);
    if (!m) continue;
    let name = names.get(m.block);
    if (name === undefined) {
      name = p;
      names.set(m.block, p);
    }
    out.push(`${p.toString(16)} ${m.via} ${m.backing} block@${name.toString(16)} refs=${m.refs}`);
  }
  return out;
}

function memmapStates(k: Kernel, lo: number, hi: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (const r of k.memmap.runs(lo, hi)) {
    const prev = out[out.length - 1];
    if (prev && prev[1] === r.start && prev[2] === r.value.state) prev[1] = r.end;
    else out.push([r.start, r.end, r.value.state]);
  }
  return out;
}

/** Kernel a ran the compact implementation, b the reference, on the same calls: all that shows is the same. */
function assertEquivalent(a: Kernel, b: Kernel, loPfn: number, hiPfn: number, what: string): void {
  const s = a.vmemmap;
  const r = reference.ledger(b);
  const totals = (l: { ramBytes: number; altmapPfns: number; pageTableBytes: number; dedupSavedBytes: number }) => [
    l.ramBytes,
    l.altmapPfns,
    l.pageTableBytes,
    l.dedupSavedBytes,
  ];
  assert.deepEqual(totals(s), totals(r), `${what}: ledger totals`);
  const byStart = <T extends { startPfn: number }>(xs: Iterable<T>) => [...xs].sort((x, y) => x.startPfn - y.startPfn);
  assert.deepEqual(byStart(s.chunks.values()), byStart(r.chunks.values()), `${what}: chunks`);
  assert.equal(s.chunks.size, r.chunks.size);
  assert.deepEqual(s.resident(), r.resident(), `${what}: resident`);
  assert.deepEqual(a.log, b.log, `${what}: log`);
  assert.deepEqual(memmapStates(a, loPfn, hiPfn), memmapStates(b, loPfn, hiPfn), `${what}: memmap states`);
  assert.equal(s.memstartPfn, r.memstartPfn);
  const g = s.geo;
  if (!g) return;
  assert.deepEqual(
    [...s.pmdTables].map(([j, t]) => [j, t.hot, t.entries]),
    [...r.pmdTables].map(([j, t]) => [j, t.hot, t.entries.size]),
    `${what}: PMD tables`,
  );
  assert.deepEqual(
    [...s.vmemmapList].map(([i, x]) => [i, x.backing, x.altmapPfn, x.bytes]).sort((x, y) => Number(x[0]) - Number(y[0])),
    [...r.vmemmapList].map(([i, x]) => [i, x.backing, x.altmapPfn, x.bytes]).sort((x, y) => Number(x[0]) - Number(y[0])),
    `${what}: vmemmap_list`,
  );
  const slots = [...s.pmdSlots()].map((x) =>
    x.leaf ? `${x.index} leaf ${x.leaf.backing} ${JSON.stringify(x.leaf.used)}` : `${x.index} table hot=${x.table?.hot} ${x.table?.entries}`,
  );
  const refSlots = [
    ...[...r.pmdLeaves].map(([i, l]) => [i, `${i} leaf ${l.block.backing} ${JSON.stringify(l.used)}`] as const),
    ...[...r.pteTables].map(([i, t]) => [i, `${i} table hot=${t.hot} ${t.entries}`] as const),
  ]
    .sort((x, y) => x[0] - y[0])
    .map((x) => x[1]);
  assert.deepEqual(slots, refSlots, `${what}: PMD entries`);
  // Page by page over the range's vmemmap and a PTE table either side.
  const memstart = s.memstartPfn ?? 0;
  const lo = Math.max(0, Math.floor(((loPfn - memstart) * g.structPageSize) / g.pageSize) - g.ptrs);
  const hi = Math.ceil(((hiPfn - memstart) * g.structPageSize) / g.pageSize) + g.ptrs;
  const pmd = g.pmdSize;
  const refAt = (p: number): Mapping => {
    const b = r.ptes.get(p);
    if (b) return { via: "pte", block: b, backing: b.backing, refs: b.refs };
    const leaf = r.pmdLeaves.get(Math.floor((p * g.pageSize) / pmd));
    return leaf ? { via: "leaf", block: leaf.block, backing: leaf.block.backing, refs: leaf.block.refs } : null;
  };
  assert.deepEqual(mappingLines(lo, hi, (p) => s.mappingAt(p)), mappingLines(lo, hi, refAt), `${what}: mapping`);
}

/** Runs the same adds and removes on two kernels, compact and reference, comparing them after each. */
class SideBySide {
  readonly a: Kernel;
  readonly b: Kernel;
  readonly live: Array<{ pfn: number; nr: number; pa: MhpParams; pb: MhpParams }> = [];
  constructor(
    boot: () => Kernel,
    readonly lo: number,
    readonly hi: number,
  ) {
    this.a = boot();
    this.b = boot();
  }

  add(pfn: number, nr: number, altmap: ((k: Kernel) => VmemAltmap) | null, shift: number | null, what = "add"): Errno {
    const pa = params(altmap ? altmap(this.a) : null, shift, pfn);
    const pb = params(altmap ? altmap(this.b) : null, shift, pfn);
    const rc = implAdd(this.a, compact, pfn, nr, pa);
    assert.equal(implAdd(this.b, reference, pfn, nr, pb), rc, `${what}: rc`);
    if (rc === 0) this.live.push({ pfn, nr, pa, pb });
    this.check(`${what} 0x${pfn.toString(16)}+0x${nr.toString(16)} shift ${shift} altmap ${!!altmap}`);
    if (rc !== 0) {
      // The caller unwinds what __add_pages left.
      implRemove(this.a, compact, pfn, nr, pa);
      implRemove(this.b, reference, pfn, nr, pb);
      this.check(`${what}: unwound`);
    }
    return rc;
  }

  remove(pfn: number, nr: number, what = "remove"): void {
    const l = this.live.find((x) => x.pfn <= pfn && pfn + nr <= x.pfn + x.nr);
    const pa = l?.pa ?? MHP_RAM;
    const pb = l?.pb ?? MHP_RAM;
    implRemove(this.a, compact, pfn, nr, pa);
    implRemove(this.b, reference, pfn, nr, pb);
    this.check(`${what} 0x${pfn.toString(16)}+0x${nr.toString(16)}`);
  }

  removeLive(which: number): void {
    const [l] = this.live.splice(which % this.live.length, 1);
    if (l) this.remove(l.pfn, l.nr);
  }

  check(what: string): void {
    for (const l of this.live) {
      assert.deepEqual([l.pa.altmap?.alloc, l.pa.altmap?.align], [l.pb.altmap?.alloc, l.pb.altmap?.align], `${what}: altmap`);
    }
    assertEquivalent(this.a, this.b, this.lo, this.hi, what);
  }
}

/** Ops over the GiB at regionAddr, in sub-sections, with compound shifts that exercise every dedup pattern. */
const equivOpArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("add" as const),
    at: fc.oneof(fc.integer({ min: 0, max: 511 }), fc.constantFrom(0, 64, 128, 256)),
    len: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 300 }), fc.constantFrom(64, 128, 512)),
    altmap: fc.boolean(),
    shift: fc.constantFrom(null, 0, 8, 9, 10, 15, 16, 18),
  }),
  fc.record({ kind: fc.constant("remove" as const), which: fc.nat() }),
  fc.record({ kind: fc.constant("remove" as const), which: fc.nat() }),
);

function runSideBySide(boot: () => Kernel, regionAddr: number, ops: Op[]): void {
  const probe = boot();
  const sub = probe.geo.pagesPerSubsection;
  const region = regionAddr / probe.geo.pageSize;
  const t = new SideBySide(boot, region, region + 512 * sub);
  for (const op of ops) {
    if (op.kind === "add") {
      const len = Math.min(op.len, 512 - op.at);
      const pfn = region + op.at * sub;
      const nr = len * sub;
      if (t.live.some((l) => pfn < l.pfn + l.nr && l.pfn < pfn + nr)) continue;
      t.add(pfn, nr, op.altmap ? (k) => pmemAltmap(k, pfn, nr) : null, op.shift);
    } else if (t.live.length > 0) {
      const l = t.live[op.which % t.live.length]!;
      // Sometimes only a piece of it (a sub-section range inside), which splits chunks and tables.
      if (op.which % 3 === 1 && l.nr > 2 * sub) {
        const from = l.pfn + sub * (1 + (op.which % Math.max(1, l.nr / sub - 2)));
        const n = Math.min(l.pfn + l.nr - from, sub * (1 + (op.which % 7)));
        t.remove(from, n, "remove part");
      } else t.removeLive(op.which);
    }
  }
  for (const l of [...t.live]) t.remove(l.pfn, l.nr, "remove all");
}

describe("compact vs per-PTE reference, side by side", () => {
  const arm16 = () => bootKernel(resolveMachine({ arch: "arm64-16k-48", memory: [{ start: 0x80000000, size: "1G" }] }, "t"));
  const arm64k = () => bootKernel(resolveMachine({ arch: "arm64-64k-48", memory: [{ start: 0x80000000, size: "1G" }] }, "t"));
  const ppc = () => bootKernel(machinePreset("ppc64-powernv-16g"));

  it("x86_64 device-dax, 4 GiB of 2 MiB pages: add, punch holes (a section, sub-sections), refill, remove", () => {
    const sub = 512;
    const base = (64 * GiB) / 4096;
    const t = new SideBySide(x86, base, base + (4 * GiB) / 4096);
    assert.equal(t.add(base, (4 * GiB) / 4096, null, 9), 0);
    t.remove(base + 3 * 32768, 32768);
    t.remove(base + 5 * 32768 + 7 * sub, 9 * sub);
    t.remove(base + 6 * 32768, sub);
    assert.equal(t.add(base + 5 * 32768 + 7 * sub, 9 * sub, null, 9, "refill"), 0);
    assert.equal(t.add(base + 3 * 32768, 32768, null, 9, "refill"), 0);
    for (let s = 0; s < 32; s += 5) t.remove(base + s * 32768, 32768);
    t.remove(base, (4 * GiB) / 4096);
  });

  it("x86_64 device-dax with 1 GiB pages over 4 GiB (tail pages shared across sections), and 4 MiB pages from mid-section", () => {
    const base = (64 * GiB) / 4096;
    const t = new SideBySide(x86, base, base + (6 * GiB) / 4096);
    assert.equal(t.add(base, (4 * GiB) / 4096, null, 18), 0);
    t.remove(base + 32768, 32768);
    t.remove(base + 8 * 32768, 32768);
    t.remove(base + 17 * 32768 + 512, 1024);
    const mid = base + (4 * GiB) / 4096 + 3 * 512;
    assert.equal(t.add(mid, (1 * GiB) / 4096, null, 10), 0);
    t.remove(mid + 40 * 512, 3 * 512);
    t.remove(base, (4 * GiB) / 4096);
    t.remove(mid, GiB / 4096);
  });

  it("x86_64 fsdax with an altmap (PMD leaves), RAM hot-plug and sub-section adds under a leaf", () => {
    const base = (64 * GiB) / 4096;
    const nr = (4 * GiB) / 4096;
    const t = new SideBySide(x86, base, base + 2 * nr);
    assert.equal(t.add(base, nr, (k) => pmemAltmap(k, base, nr), 0), 0);
    assert.equal(t.add(base + nr, nr, null, null), 0);
    t.remove(base + nr + 512, 512);
    assert.equal(t.add(base + nr + 512, 512, null, null, "re-add under the leaf"), 0);
    t.remove(base + nr, nr);
    t.remove(base, nr);
  });

  it("arm64 4K: PMD leaves, the altmap running out mid-section (base-page fallback, then -ENOMEM)", () => {
    const base = (8 * GiB) / 4096;
    const nr = (1 * GiB) / 4096;
    const t = new SideBySide(arm64, base, base + 2 * nr);
    // Room for two leaves (the first padded by 510) and 102 pages: the third section falls back to base pages
    // from the altmap and runs out 102 pages in.
    assert.equal(t.add(base, nr, () => newAltmap(base, base + nr - 1, 2, 3 * 512 + 100), 0), -ENOMEM);
    assert.equal(t.add(base, nr, (k) => pmemAltmap(k, base, nr), 0), 0);
    t.remove(base + 32768 + 512, 512);
    t.remove(base, nr);
    assert.equal(t.add(base + nr, nr, null, 9), 0);
    t.remove(base + nr, nr);
  });

  it("arm64 16K and 64K: base pages, several sections per PTE table, from RAM and from an altmap", () => {
    for (const boot of [arm16, arm64k]) {
      const probe = boot();
      const page = probe.geo.pageSize;
      const base = (8 * GiB) / page;
      const nr = (4 * GiB) / page;
      const t = new SideBySide(boot, base, base + 2 * nr);
      assert.equal(t.add(base, nr, null, null), 0);
      assert.equal(t.add(base + nr, nr, (k) => pmemAltmap(k, base + nr, nr), 0), 0);
      t.remove(base + probe.geo.pagesPerSection, probe.geo.pagesPerSection);
      t.remove(base + 3 * probe.geo.pagesPerSection + probe.geo.pagesPerSubsection, probe.geo.pagesPerSubsection);
      t.remove(base + nr, nr);
      t.remove(base, nr);
    }
  });

  it("random add/remove sequences: x86_64", () => {
    fc.assert(
      fc.property(fc.array(equivOpArb, { minLength: 1, maxLength: 20 }), (ops) => runSideBySide(x86, 8 * GiB, ops)),
      { numRuns: 60 },
    );
  });

  it("random add/remove sequences: arm64 4K, 16K, 64K", () => {
    for (const boot of [arm64, arm16, arm64k]) {
      fc.assert(
        fc.property(fc.array(equivOpArb, { minLength: 1, maxLength: 20 }), (ops) => runSideBySide(boot, 8 * GiB, ops)),
        { numRuns: 25 },
      );
    }
  });

  it("random add/remove sequences: ppc64 radix", () => {
    fc.assert(
      fc.property(fc.array(equivOpArb, { minLength: 1, maxLength: 20 }), (ops) => runSideBySide(ppc, 32 * GiB, ops)),
      { numRuns: 20 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Reference: the per-PTE model this file's implementation replaced (one Map entry per PTE, one object per leaf and
// per table), kept verbatim apart from comments, with a ledger of its own per kernel. The equivalence tests below
// run it side by side with the compact one.
// ---------------------------------------------------------------------------------------------------------------

/** The reference's ledger, as far as the tests read it. */
interface RefLedgerView {
  chunks: Map<number, { startPfn: number; nrPages: number; ramBytes: number; altmapPfns: number; pageTableBytes: number; memmapBytes: number; optimized: boolean }>;
  ramBytes: number;
  altmapPfns: number;
  pageTableBytes: number;
  dedupSavedBytes: number;
  ptes: Map<number, RefBlockView>;
  pmdLeaves: Map<number, { block: RefBlockView; used: Array<[number, number]> }>;
  pteTables: Map<number, { hot: boolean; entries: number }>;
  pmdTables: Map<number, { hot: boolean; entries: Set<number> }>;
  vmemmapList: Map<number, RefBlockView>;
  memstartPfn: number | null;
  resident(): { ramBytes: number; altmapPfns: number; pageTableBytes: number };
}

interface RefBlockView {
  backing: "ram" | "altmap" | "foreign";
  altmapPfn: number;
  bytes: number;
  refs: number;
}

const reference = (() => {
  const ledgers = new WeakMap<Kernel, VmemmapLedger>();
  function ledgerOf(k: Kernel): VmemmapLedger {
    let s = ledgers.get(k);
    if (!s) {
      s = new VmemmapLedger();
      ledgers.set(k, s);
    }
    return s;
  }
  interface VmemmapChunk {
    startPfn: number;
    nrPages: number;
    ramBytes: number;
    altmapPfns: number;
    pageTableBytes: number;
    memmapBytes: number;
    optimized: boolean;
  }
  interface VmemmapCost {
    ramBytes: number;
    altmapPfns: number;
    pageTableBytes: number;
    dedupSavedBytes: number;
  }
  type VmemmapBacking = "ram" | "altmap" | "foreign";
  interface VmemmapBlock {
    readonly backing: VmemmapBacking;
    readonly altmap: VmemAltmap | null;
    readonly altmapPfn: number;
    readonly bytes: number;
    readonly nrPfns: number;
    readonly owner: number;
    refs: number;
    freed: boolean;
  }
  interface PmdLeaf {
    readonly block: VmemmapBlock;
    used: Array<[number, number]>;
  }
  interface PgTable {
    readonly hot: boolean;
    readonly bytes: number;
  }
  interface PteTable extends PgTable {
    entries: number;
  }
  interface PmdTable extends PgTable {
    readonly entries: Set<number>;
  }
  class VmemmapLedger {
    readonly chunks = new Map<number, VmemmapChunk>();
    ramBytes = 0;
    altmapPfns = 0;
    pageTableBytes = 0;
    dedupSavedBytes = 0;
    readonly ptes = new Map<number, VmemmapBlock>();
    readonly pmdLeaves = new Map<number, PmdLeaf>();
    readonly pteTables = new Map<number, PteTable>();
    readonly pmdTables = new Map<number, PmdTable>();
    readonly vmemmapList = new Map<number, VmemmapBlock>();
    memstartPfn: number | null = null;
    warnedMisaligned = false;
    add(c: VmemmapChunk): void {
      this.chunks.set(c.startPfn, c);
      this.ramBytes += c.ramBytes;
      this.altmapPfns += c.altmapPfns;
      this.pageTableBytes += c.pageTableBytes;
      if (c.optimized) this.dedupSavedBytes += c.memmapBytes - c.ramBytes;
    }
    take(startPfn: number): VmemmapChunk | undefined {
      const c = this.chunks.get(startPfn);
      if (!c) return undefined;
      this.chunks.delete(startPfn);
      this.ramBytes -= c.ramBytes;
      this.altmapPfns -= c.altmapPfns;
      this.pageTableBytes -= c.pageTableBytes;
      if (c.optimized) this.dedupSavedBytes -= c.memmapBytes - c.ramBytes;
      return c;
    }
    cost(startPfn: number, endPfn: number): VmemmapCost {
      const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0, dedupSavedBytes: 0 };
      for (const c of this.chunks.values()) {
        if (c.startPfn < startPfn || c.startPfn >= endPfn) continue;
        out.ramBytes += c.ramBytes;
        out.altmapPfns += c.altmapPfns;
        out.pageTableBytes += c.pageTableBytes;
        if (c.optimized) out.dedupSavedBytes += c.memmapBytes - c.ramBytes;
      }
      return out;
    }
    resident(): { ramBytes: number; altmapPfns: number; pageTableBytes: number } {
      const blocks = new Set<VmemmapBlock>();
      for (const b of this.ptes.values()) blocks.add(b);
      for (const l of this.pmdLeaves.values()) blocks.add(l.block);
      for (const b of this.vmemmapList.values()) blocks.add(b);
      const out = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 };
      for (const b of blocks) {
        if (b.backing === "ram") out.ramBytes += b.bytes;
        else if (b.backing === "altmap") out.altmapPfns += b.nrPfns;
      }
      for (const t of this.pteTables.values()) if (t.hot) out.pageTableBytes += t.bytes;
      for (const t of this.pmdTables.values()) if (t.hot) out.pageTableBytes += t.bytes;
      return out;
    }
  }
  const VMEMMAP_RESERVE_NR = 2;
  interface VmemmapGeo {
    readonly pageSize: number;
    readonly pmdSize: number;
    readonly pudSize: number | null;
    readonly structPageSize: number;
    readonly memstartPfn: number;
    readonly pagesPerSection: number;
    readonly pagesPerSubsection: number;
  }
  interface VmemmapOp {
    readonly k: Kernel;
    readonly s: VmemmapLedger;
    readonly g: VmemmapGeo;
    readonly pfn: number;
    readonly nrPages: number;
    ramBytes: number;
    altmapPfns: number;
    pageTableBytes: number;
    readonly freed: Array<[number, number]>;
  }
  function vmemmapOp(k: Kernel, pfn: number, nrPages: number): VmemmapOp {
    const g: VmemmapGeo = {
      pageSize: k.geo.pageSize,
      pmdSize: 2 ** k.arch.pmdShift,
      pudSize: k.arch.pgtableLevels >= 3 && k.arch.pudShift !== null ? 2 ** k.arch.pudShift : null,
      structPageSize: k.arch.structPageSize,
      memstartPfn: memstartPfn(k),
      pagesPerSection: k.geo.pagesPerSection,
      pagesPerSubsection: k.geo.pagesPerSubsection,
    };
    return { k, s: ledgerOf(k), g, pfn, nrPages, ramBytes: 0, altmapPfns: 0, pageTableBytes: 0, freed: [] };
  }
  function memstartPfn(k: Kernel): number {
    const cached = ledgerOf(k).memstartPfn;
    if (cached !== null) return cached;
    let pfn = 0;
    if (k.arch.arch === "arm64") {
      const shift =
        k.arch.pageShift === 12 ? (k.arch.pudShift ?? 30) : k.arch.pageShift === 14 ? k.arch.pmdShift + 5 : k.arch.pmdShift;
      const align = 2 ** Math.max(shift, k.arch.sectionSizeBits);
      const dramStart = k.memblock.memory.reduce((m, r) => Math.min(m, r.base), Number.POSITIVE_INFINITY);
      if (Number.isFinite(dramStart)) pfn = (Math.floor(dramStart / align) * align) / k.geo.pageSize;
    }
    ledgerOf(k).memstartPfn = pfn;
    return pfn;
  }
  function isAligned(x: number, a: number): boolean {
    return x % a === 0;
  }
  function alignDown(x: number, a: number): number {
    return Math.floor(x / a) * a;
  }
  function pfnToPage(g: VmemmapGeo, pfn: number): number {
    return (pfn - g.memstartPfn) * g.structPageSize;
  }
  function pageToPfn(g: VmemmapGeo, addr: number): number {
    return Math.floor(addr / g.structPageSize) + g.memstartPfn;
  }
  function pmdAddrEnd(g: VmemmapGeo, addr: number, end: number): number {
    const boundary = (Math.floor(addr / g.pmdSize) + 1) * g.pmdSize;
    return boundary < end ? boundary : end;
  }
  function pudAddrEnd(g: VmemmapGeo, addr: number, end: number): number {
    if (g.pudSize === null) return end;
    const boundary = (Math.floor(addr / g.pudSize) + 1) * g.pudSize;
    return boundary < end ? boundary : end;
  }
  function pmdIndex(g: VmemmapGeo, addr: number): number {
    return Math.floor(addr / g.pmdSize);
  }
  function pudIndex(g: VmemmapGeo, addr: number): number {
    return g.pudSize === null ? 0 : Math.floor(addr / g.pudSize);
  }
  function bootMemmapIn(op: VmemmapOp, start: number, end: number): boolean {
    const { k, g } = op;
    const first = Math.max(0, pageToPfn(g, start));
    const last = Math.min(pageToPfn(g, end - 1), k.geo.maxPfn - 1);
    if (last < first) return false;
    const firstNr = k.sections.pfnToSectionNr(first);
    const lastNr = k.sections.pfnToSectionNr(last);
    if (lastNr - firstNr < 4096) {
      for (let nr = firstNr; nr <= lastNr; nr++) if (k.sections.early(nr)) return true;
      return false;
    }
    for (const nr of k.sections.presentSections()) if (nr >= firstNr && nr <= lastNr && k.sections.early(nr)) return true;
    return false;
  }
  function bootUsesPmdLeaves(k: Kernel): boolean {
    return k.arch.arch === "x86_64" || (k.arch.arch === "arm64" && k.arch.pageShift === 12);
  }
  function pmdNone(op: VmemmapOp, i: number): boolean {
    const { s, g } = op;
    return !s.pmdLeaves.has(i) && !s.pteTables.has(i) && !bootMemmapIn(op, i * g.pmdSize, (i + 1) * g.pmdSize);
  }
  function pmdLeafAt(op: VmemmapOp, i: number): PmdLeaf | "boot" | null {
    const { k, s, g } = op;
    const leaf = s.pmdLeaves.get(i);
    if (leaf) return leaf;
    if (s.pteTables.has(i) || !bootUsesPmdLeaves(k)) return null;
    return bootMemmapIn(op, i * g.pmdSize, (i + 1) * g.pmdSize) ? "boot" : null;
  }
  function bootPtesIn(op: VmemmapOp, start: number, end: number): boolean {
    return !bootUsesPmdLeaves(op.k) && bootMemmapIn(op, start, end);
  }
  function pmdTablePresent(op: VmemmapOp, j: number): boolean {
    const { s, g } = op;
    if (g.pudSize === null) return true;
    return s.pmdTables.has(j) || bootMemmapIn(op, j * g.pudSize, (j + 1) * g.pudSize);
  }
  function pmdTableAddEntry(op: VmemmapOp, i: number): void {
    const { s, g } = op;
    if (g.pudSize === null) return;
    const j = pudIndex(g, i * g.pmdSize);
    let t = s.pmdTables.get(j);
    if (!t) {
      t = { hot: false, bytes: g.pageSize, entries: new Set() };
      s.pmdTables.set(j, t);
    }
    t.entries.add(i);
  }
  function pmdTableRemoveEntry(op: VmemmapOp, i: number): void {
    const { s, g } = op;
    if (g.pudSize === null) return;
    s.pmdTables.get(pudIndex(g, i * g.pmdSize))?.entries.delete(i);
  }
  function setPte(op: VmemmapOp, p: number, block: VmemmapBlock): void {
    const { s, g } = op;
    const i = pmdIndex(g, p * g.pageSize);
    let t = s.pteTables.get(i);
    if (!t) {
      t = { hot: false, bytes: g.pageSize, entries: 0 };
      s.pteTables.set(i, t);
      pmdTableAddEntry(op, i);
    }
    t.entries++;
    s.ptes.set(p, block);
  }
  function pteClear(op: VmemmapOp, p: number): void {
    const { s, g } = op;
    s.ptes.delete(p);
    const t = s.pteTables.get(pmdIndex(g, p * g.pageSize));
    if (t) t.entries--;
  }
  function setPmdLeaf(op: VmemmapOp, i: number, block: VmemmapBlock, start: number, end: number): void {
    op.s.pmdLeaves.set(i, { block, used: [[start, end]] });
    pmdTableAddEntry(op, i);
  }
  function pmdClearLeaf(op: VmemmapOp, i: number): void {
    op.s.pmdLeaves.delete(i);
    pmdTableRemoveEntry(op, i);
  }
  function newBlock(op: VmemmapOp, backing: VmemmapBacking, altmap: VmemAltmap | null, altmapPfn: number, bytes: number): VmemmapBlock {
    return { backing, altmap, altmapPfn, bytes, nrPfns: bytes / op.g.pageSize, owner: op.pfn, refs: 1, freed: false };
  }
  function foreignBlock(op: VmemmapOp): VmemmapBlock {
    return newBlock(op, "foreign", null, -1, op.g.pageSize);
  }
  function releaseBlock(op: VmemmapOp, block: VmemmapBlock, start: number, end: number): void {
    if (block.backing === "foreign" || block.freed) return;
    block.freed = true;
    op.freed.push([start, end]);
  }
  function intervalsAdd(list: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
    const all = [...list, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
    const out: Array<[number, number]> = [];
    for (const [a, b] of all) {
      const prev = out[out.length - 1];
      if (prev && a <= prev[1]) prev[1] = Math.max(prev[1], b);
      else out.push([a, b]);
    }
    return out;
  }
  function intervalsRemove(list: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [a, b] of list) {
      if (b <= start || a >= end) out.push([a, b]);
      else {
        if (a < start) out.push([a, start]);
        if (b > end) out.push([end, b]);
      }
    }
    return out;
  }
  function vmemmapAllocBlockBuf(op: VmemmapOp, size: number, altmap: VmemAltmap | null): VmemmapBlock | null {
    if (altmap) {
      const pfn = altmapAllocBlockBuf(altmap, size, op.g.pageSize);
      if (pfn < 0) return null;
      op.altmapPfns += size / op.g.pageSize;
      return newBlock(op, "altmap", altmap, pfn, size);
    }
    op.ramBytes += size;
    return newBlock(op, "ram", null, -1, size);
  }
  function vmemmapAllocBlockZero(op: VmemmapOp, size: number): number {
    op.pageTableBytes += size;
    return size;
  }
  function vmemmapPudPopulate(op: VmemmapOp, addr: number): void {
    const { s, g } = op;
    if (g.pudSize === null) return;
    const j = pudIndex(g, addr);
    if (pmdTablePresent(op, j)) return;
    s.pmdTables.set(j, { hot: true, bytes: vmemmapAllocBlockZero(op, g.pageSize), entries: new Set() });
  }
  function vmemmapPmdPopulate(op: VmemmapOp, addr: number): void {
    const { s, g } = op;
    const i = pmdIndex(g, addr);
    if (!pmdNone(op, i)) return;
    s.pteTables.set(i, { hot: true, bytes: vmemmapAllocBlockZero(op, g.pageSize), entries: 0 });
    pmdTableAddEntry(op, i);
  }
  function vmemmapPtePopulate(
    op: VmemmapOp,
    addr: number,
    altmap: VmemAltmap | null,
    reuse: VmemmapBlock | null,
  ): VmemmapBlock | null {
    const { s, g } = op;
    const p = Math.floor(addr / g.pageSize);
    const leaf = pmdLeafAt(op, pmdIndex(g, addr));
    if (leaf) {
      if (leaf === "boot") return foreignBlock(op);
      leaf.used = intervalsAdd(leaf.used, p * g.pageSize, (p + 1) * g.pageSize);
      return leaf.block;
    }
    const cur = s.ptes.get(p);
    if (cur) return cur;
    if (bootPtesIn(op, p * g.pageSize, (p + 1) * g.pageSize)) return foreignBlock(op);
    let block: VmemmapBlock | null;
    if (!reuse) {
      block = vmemmapAllocBlockBuf(op, g.pageSize, altmap);
      if (!block) return null;
    } else {
      reuse.refs++;
      block = reuse;
    }
    setPte(op, p, block);
    return block;
  }
  function vmemmapPopulateAddress(
    op: VmemmapOp,
    addr: number,
    altmap: VmemAltmap | null,
    reuse: VmemmapBlock | null,
  ): VmemmapBlock | null {
    vmemmapPudPopulate(op, addr);
    vmemmapPmdPopulate(op, addr);
    return vmemmapPtePopulate(op, addr, altmap, reuse);
  }
  function vmemmapPopulateRange(
    op: VmemmapOp,
    start: number,
    end: number,
    altmap: VmemAltmap | null,
    reuse: VmemmapBlock | null,
  ): Errno {
    for (let addr = start; addr < end; addr += op.g.pageSize) {
      if (!vmemmapPopulateAddress(op, addr, altmap, reuse)) return -ENOMEM;
    }
    return 0;
  }
  function vmemmapPopulateBasepages(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
    return vmemmapPopulateRange(op, start, end, altmap, null);
  }
  function pgmapVmemmapNr(pgmap: { readonly vmemmapShift: number }): number {
    return 2 ** pgmap.vmemmapShift;
  }
  function reuseCompoundSection(op: VmemmapOp, startPfn: number, pgmap: PgmapVmemmapView): boolean {
    const nrPages = pgmapVmemmapNr(pgmap);
    const offset = startPfn - pgmap.rangeStartPfn;
    return !isAligned(offset, nrPages) && nrPages > op.g.pagesPerSubsection;
  }
  function compoundSectionTailPage(op: VmemmapOp, addr: number): VmemmapBlock {
    const below = addr - op.g.pageSize;
    return op.s.ptes.get(Math.floor(below / op.g.pageSize)) ?? foreignBlock(op);
  }
  function vmemmapPopulateCompoundPages(
    op: VmemmapOp,
    startPfn: number,
    start: number,
    end: number,
    pgmap: PgmapVmemmapView,
  ): Errno {
    const { g } = op;
    if (reuseCompoundSection(op, startPfn, pgmap)) {
      const tail = compoundSectionTailPage(op, start);
      return vmemmapPopulateRange(op, start, end, null, tail);
    }
    const size = Math.min(end - start, pgmapVmemmapNr(pgmap) * g.structPageSize);
    for (let addr = start; addr < end; addr += size) {
      const last = addr + size;
      if (!vmemmapPopulateAddress(op, addr, null, null)) return -ENOMEM;
      let next = addr + g.pageSize;
      const tail = vmemmapPopulateAddress(op, next, null, null);
      if (!tail) return -ENOMEM;
      next += g.pageSize;
      if (vmemmapPopulateRange(op, next, last, null, tail)) return -ENOMEM;
    }
    return 0;
  }
  function vmemmapPopulateHugepages(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pmdAddrEnd(g, addr, end);
      vmemmapPudPopulate(op, addr);
      const i = pmdIndex(g, addr);
      if (pmdNone(op, i)) {
        const p = vmemmapAllocBlockBuf(op, g.pmdSize, altmap);
        if (p) {
          setPmdLeaf(op, i, p, addr, next);
          continue;
        }
        if (altmap) return -ENOMEM;
      } else {
        const leaf = pmdLeafAt(op, i);
        if (leaf) {
          if (leaf !== "boot") leaf.used = intervalsAdd(leaf.used, addr, next);
          continue;
        }
      }
      if (vmemmapPopulateBasepages(op, addr, next, null)) return -ENOMEM;
    }
    return 0;
  }
  function vmemmapPopulateX86(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
    const { g } = op;
    if (end - start < g.pagesPerSection * g.structPageSize) return vmemmapPopulateBasepages(op, start, end, null);
    return vmemmapPopulateHugepages(op, start, end, altmap);
  }
  function vmemmapPopulateArm64(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
    const { k, g } = op;
    if (k.arch.pageShift !== 12 || end - start < g.pagesPerSection * g.structPageSize) {
      return vmemmapPopulateBasepages(op, start, end, altmap);
    }
    for (let addr = start, next = start; addr !== end; addr = next) {
      next = pmdAddrEnd(g, addr, end);
      vmemmapPudPopulate(op, addr);
      const i = pmdIndex(g, addr);
      if (pmdNone(op, i)) {
        const p = vmemmapAllocBlockBuf(op, g.pmdSize, altmap);
        if (!p) {
          if (vmemmapPopulateBasepages(op, addr, next, altmap)) return -ENOMEM;
          continue;
        }
        setPmdLeaf(op, i, p, addr, next);
      }
    }
    return 0;
  }
  function vmemmapPsize(): number {
    return 2 ** 21;
  }
  function vmemmapPopulated(op: VmemmapOp, vmemmapAddr: number, size: number): boolean {
    const { k, g } = op;
    const end = vmemmapAddr + size;
    for (let pfn = alignDown(pageToPfn(g, vmemmapAddr), g.pagesPerSubsection); pfnToPage(g, pfn) < end; pfn += g.pagesPerSubsection) {
      const nr = k.sections.pfnToSectionNr(pfn);
      if (!k.sections.valid(nr)) {
        pfn = k.sections.sectionNrToPfn(nr + 1) - g.pagesPerSubsection;
        continue;
      }
      if (k.sections.pfnValid(pfn)) return true;
    }
    return false;
  }
  function altmapCrossBoundary(op: VmemmapOp, altmap: VmemAltmap, start: number, pageSize: number): boolean {
    const nrPfn = pageSize / op.g.structPageSize;
    const startPfn = pageToPfn(op.g, start);
    if (startPfn + nrPfn - 1 > altmap.endPfn) return true;
    if (startPfn < altmap.basePfn) return true;
    return false;
  }
  function vmemmapPopulatePpc64(op: VmemmapOp, startIn: number, end: number, altmap: VmemAltmap | null): Errno {
    const pageSize = vmemmapPsize();
    for (let start = alignDown(startIn, pageSize); start < end; start += pageSize) {
      if (vmemmapPopulated(op, start, pageSize)) continue;
      let p: VmemmapBlock | null = null;
      if (altmap && !altmapCrossBoundary(op, altmap, start, pageSize)) p = vmemmapAllocBlockBuf(op, pageSize, altmap);
      if (!p) p = vmemmapAllocBlockBuf(op, pageSize, null);
      if (!p) return -ENOMEM;
      op.s.vmemmapList.set(start / pageSize, p);
    }
    return 0;
  }
  function vmemmapPopulate(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): Errno {
    switch (op.k.arch.arch) {
      case "x86_64":
        return vmemmapPopulateX86(op, start, end, altmap);
      case "arm64":
        return vmemmapPopulateArm64(op, start, end, altmap);
      case "ppc64":
        return vmemmapPopulatePpc64(op, start, end, altmap);
    }
  }
  function vmemmapCanOptimize(
    k: Kernel,
    altmap: VmemAltmap | null,
    pgmap: { readonly vmemmapShift: number } | null,
  ): boolean {
    if (k.arch.arch !== "x86_64") return false;
    const sp = k.arch.structPageSize;
    const isPowerOf2 = Number.isInteger(Math.log2(sp));
    return (
      isPowerOf2 &&
      pgmap !== null &&
      altmap === null &&
      Math.floor((pgmapVmemmapNr(pgmap) * sp) / k.geo.pageSize) > VMEMMAP_RESERVE_NR
    );
  }
  function vmemmapMapped(op: VmemmapOp, addr: number): boolean {
    const { s, g } = op;
    const p = Math.floor(addr / g.pageSize);
    if (pmdLeafAt(op, pmdIndex(g, addr))) return true;
    return s.ptes.has(p) || bootPtesIn(op, p * g.pageSize, (p + 1) * g.pageSize);
  }
  function populateSectionMemmap(
    k: Kernel,
    pfn: number,
    nrPages: number,
    _nid: number,
    params: MhpParams,
  ): Errno {
    const op = vmemmapOp(k, pfn, nrPages);
    const { s, g } = op;
    const start = pfnToPage(g, pfn);
    const end = start + nrPages * g.structPageSize;
    if (!isAligned(pfn, g.pagesPerSubsection) || !isAligned(nrPages, g.pagesPerSubsection)) {
      if (!s.warnedMisaligned) {
        s.warnedMisaligned = true;
        warn(k, "__populate_section_memmap", "WARN_ON_ONCE(!IS_ALIGNED(pfn, PAGES_PER_SUBSECTION) || !IS_ALIGNED(nr_pages, PAGES_PER_SUBSECTION))");
      }
      return -ENOMEM;
    }
    const pgmap = params.pgmap;
    const optimized = vmemmapCanOptimize(k, params.altmap, pgmap);
    const r =
      pgmap && optimized
        ? vmemmapPopulateCompoundPages(op, pfn, start, end, pgmap)
        : vmemmapPopulate(op, start, end, params.altmap);
    if (r < 0) return -ENOMEM;
    s.add({
      startPfn: pfn,
      nrPages,
      ramBytes: op.ramBytes,
      altmapPfns: op.altmapPfns,
      pageTableBytes: op.pageTableBytes,
      memmapBytes: nrPages * g.structPageSize,
      optimized,
    });
    k.memmap.setRange(pfn, pfn + nrPages, pageValue({ state: PageState.Uninitialised }));
    if (k.arch.arch !== "ppc64" && !vmemmapMapped(op, end - 1)) {
      const lo = Math.max(pfn, pageToPfn(g, alignDown(end - 1, g.pageSize)));
      k.memmap.setRange(lo, pfn + nrPages, pageValue({ state: PageState.NoMemmap }));
    }
    return 0;
  }
  function freePagetable(op: VmemmapOp, block: VmemmapBlock, start: number, end: number): void {
    if (block.backing === "foreign") return;
    block.refs--;
    if (block.refs > 0) return;
    releaseBlock(op, block, start, end);
  }
  function freeHugepageTable(op: VmemmapOp, leaf: PmdLeaf, altmap: VmemAltmap | null, start: number, end: number): void {
    if (altmap) vmemAltmapFree(altmap, op.g.pmdSize / op.g.pageSize);
    releaseBlock(op, leaf.block, start, end);
  }
  function freePteTable(op: VmemmapOp, i: number): void {
    const t = op.s.pteTables.get(i);
    if (!t || t.entries > 0) return;
    op.s.pteTables.delete(i);
    pmdTableRemoveEntry(op, i);
  }
  function freePmdTable(op: VmemmapOp, j: number): void {
    const t = op.s.pmdTables.get(j);
    if (!t || t.entries.size > 0) return;
    op.s.pmdTables.delete(j);
  }
  function vmemmapPmdIsUnused(leaf: PmdLeaf, addr: number, end: number): boolean {
    leaf.used = intervalsRemove(leaf.used, addr, end);
    return leaf.used.length === 0;
  }
  function removePteTable(op: VmemmapOp, start: number, end: number): void {
    const { s, g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = alignDown(addr + g.pageSize, g.pageSize);
      if (next > end) next = end;
      const p = Math.floor(addr / g.pageSize);
      const block = s.ptes.get(p);
      if (!block) continue;
      freePagetable(op, block, p * g.pageSize, (p + 1) * g.pageSize);
      pteClear(op, p);
    }
  }
  function removePmdTable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pmdAddrEnd(g, addr, end);
      const i = pmdIndex(g, addr);
      if (pmdNone(op, i)) continue;
      const leaf = pmdLeafAt(op, i);
      if (leaf) {
        if (leaf === "boot") continue;
        if (isAligned(addr, g.pmdSize) && isAligned(next, g.pmdSize)) {
          freeHugepageTable(op, leaf, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
          pmdClearLeaf(op, i);
        } else if (vmemmapPmdIsUnused(leaf, addr, next)) {
          freeHugepageTable(op, leaf, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
          pmdClearLeaf(op, i);
        }
        continue;
      }
      removePteTable(op, addr, next);
      freePteTable(op, i);
    }
  }
  function removePudTable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pudAddrEnd(g, addr, end);
      const j = pudIndex(g, addr);
      if (!pmdTablePresent(op, j)) continue;
      removePmdTable(op, addr, next, altmap);
      freePmdTable(op, j);
    }
  }
  function removePagetable(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    removePudTable(op, start, end, altmap);
  }
  function freeHotplugPageRange(
    op: VmemmapOp,
    block: VmemmapBlock,
    size: number,
    altmap: VmemAltmap | null,
    start: number,
    end: number,
  ): void {
    if (block.backing === "foreign") return;
    if (altmap) {
      vmemAltmapFree(altmap, size / op.g.pageSize);
    } else if (block.backing === "altmap") {
      warn(op.k, "free_hotplug_page_range", "WARN_ON(PageReserved(page))");
    }
    releaseBlock(op, block, start, end);
  }
  function unmapHotplugPteRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    const { s, g } = op;
    for (let addr = start; addr < end; addr += g.pageSize) {
      const p = Math.floor(addr / g.pageSize);
      const block = s.ptes.get(p);
      if (!block) continue;
      pteClear(op, p);
      freeHotplugPageRange(op, block, g.pageSize, altmap, p * g.pageSize, (p + 1) * g.pageSize);
    }
  }
  function unmapHotplugPmdRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pmdAddrEnd(g, addr, end);
      const i = pmdIndex(g, addr);
      if (pmdNone(op, i)) continue;
      const leaf = pmdLeafAt(op, i);
      if (leaf) {
        if (leaf === "boot") continue;
        pmdClearLeaf(op, i);
        freeHotplugPageRange(op, leaf.block, g.pmdSize, altmap, i * g.pmdSize, (i + 1) * g.pmdSize);
        continue;
      }
      unmapHotplugPteRange(op, addr, next, altmap);
    }
  }
  function unmapHotplugRange(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pudAddrEnd(g, addr, end);
      if (!pmdTablePresent(op, pudIndex(g, addr))) continue;
      unmapHotplugPmdRange(op, addr, next, altmap);
    }
  }
  function freeEmptyPteTable(op: VmemmapOp, i: number): void {
    freePteTable(op, i);
  }
  function freeEmptyPmdTable(op: VmemmapOp, start: number, end: number): void {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pmdAddrEnd(g, addr, end);
      const i = pmdIndex(g, addr);
      if (pmdNone(op, i)) continue;
      freeEmptyPteTable(op, i);
    }
    if (g.pudSize === null) return;
    freePmdTable(op, pudIndex(g, start));
  }
  function freeEmptyTables(op: VmemmapOp, start: number, end: number): void {
    const { g } = op;
    for (let addr = start, next = start; addr < end; addr = next) {
      next = pudAddrEnd(g, addr, end);
      if (!pmdTablePresent(op, pudIndex(g, addr))) continue;
      freeEmptyPmdTable(op, addr, next);
    }
  }
  function vmemmapFreeArm64(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    unmapHotplugRange(op, start, end, altmap);
    freeEmptyTables(op, start, end);
  }
  function vmemmapListFree(op: VmemmapOp, start: number): VmemmapBlock | undefined {
    const idx = start / vmemmapPsize();
    const block = op.s.vmemmapList.get(idx);
    op.s.vmemmapList.delete(idx);
    return block;
  }
  function vmemmapFreePpc64(op: VmemmapOp, startIn: number, end: number, altmap: VmemAltmap | null): void {
    const pageSize = vmemmapPsize();
    const altStart = altmap ? altmap.basePfn : Number.POSITIVE_INFINITY;
    const altEnd = altmap ? altmap.basePfn + altmap.reserve + altmap.free : Number.POSITIVE_INFINITY;
    for (let start = alignDown(startIn, pageSize); start < end; start += pageSize) {
      if (vmemmapPopulated(op, start, pageSize)) continue;
      const block = vmemmapListFree(op, start);
      if (!block) continue;
      const basePfn = block.altmapPfn;
      if (altmap && block.backing === "altmap" && basePfn >= altStart && basePfn < altEnd) {
        vmemAltmapFree(altmap, block.nrPfns);
      }
      releaseBlock(op, block, start, start + pageSize);
    }
  }
  function vmemmapFree(op: VmemmapOp, start: number, end: number, altmap: VmemAltmap | null): void {
    switch (op.k.arch.arch) {
      case "x86_64":
        removePagetable(op, start, end, altmap);
        return;
      case "arm64":
        vmemmapFreeArm64(op, start, end, altmap);
        return;
      case "ppc64":
        vmemmapFreePpc64(op, start, end, altmap);
        return;
    }
  }
  function vmemmapLedgerTake(op: VmemmapOp): void {
    const { k, s, g, pfn } = op;
    const end = pfn + op.nrPages;
    for (let p = k.sections.sectionNrToPfn(k.sections.pfnToSectionNr(pfn)); p < end; p += g.pagesPerSubsection) {
      const c = s.chunks.get(p);
      if (!c || c.startPfn + c.nrPages <= pfn) continue;
      s.take(p);
      const cEnd = c.startPfn + c.nrPages;
      if (c.startPfn < pfn) {
        const nr = pfn - c.startPfn;
        s.add({ ...c, nrPages: nr, memmapBytes: nr * g.structPageSize, optimized: false });
      }
      if (cEnd > end) {
        const nr = cEnd - end;
        const zero = { ramBytes: 0, altmapPfns: 0, pageTableBytes: 0 };
        s.add({ ...c, ...zero, startPfn: end, nrPages: nr, memmapBytes: nr * g.structPageSize, optimized: false });
      }
    }
  }
  function tearDownCollateral(op: VmemmapOp): void {
    const { k, s, g, pfn } = op;
    const end = pfn + op.nrPages;
    for (const [a, b] of op.freed) {
      const lo = pageToPfn(g, a);
      const hi = pageToPfn(g, b - 1) + 1;
      if (lo >= pfn && hi <= end) continue;
      for (const c of s.chunks.values()) {
        const x = Math.max(lo, c.startPfn);
        const y = Math.min(hi, c.startPfn + c.nrPages);
        if (x < y) k.memmap.setRange(x, y, pageValue({ state: PageState.TornDown }));
      }
    }
  }
  function depopulateSectionMemmap(k: Kernel, pfn: number, nrPages: number, altmap: VmemAltmap | null): void {
    const op = vmemmapOp(k, pfn, nrPages);
    const start = pfnToPage(op.g, pfn);
    const end = start + nrPages * op.g.structPageSize;
    vmemmapFree(op, start, end, altmap);
    vmemmapLedgerTake(op);
    k.memmap.setRange(pfn, pfn + nrPages, pageValue({ state: PageState.TornDown }));
    tearDownCollateral(op);
  }
  return {
    populate: populateSectionMemmap,
    depopulate: depopulateSectionMemmap,
    ledger: (k: Kernel): RefLedgerView => ledgerOf(k),
  };
})();
