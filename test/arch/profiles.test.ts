/**
 * Arch profiles against the 6.1 constants (digest section 2.1 table, arch sparsemem.h, Kconfig).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ARCH_PROFILES, archProfile, geometry } from "../../src/arch/profiles.ts";
import { UsageError } from "../../src/errors.ts";

describe("arch profiles", () => {
  const table: Array<[string, number, number, number, number, number]> = [
    // name, SECTION_SIZE_BITS, PAGES_PER_SECTION, PAGES_PER_SUBSECTION, SUBSECTIONS_PER_SECTION, MAX_PHYSMEM_BITS
    ["x86_64", 27, 32768, 512, 64, 46],
    ["x86_64-la57", 27, 32768, 512, 64, 52],
    ["arm64-4k-48", 27, 32768, 512, 64, 48],
    ["arm64-16k-48", 27, 8192, 128, 64, 48],
    ["arm64-64k-48", 29, 8192, 32, 256, 48],
    ["arm64-64k-52", 29, 8192, 32, 256, 52],
    ["ppc64-radix-64k", 24, 256, 32, 8, 51],
  ];
  for (const [name, ssb, pps, ppss, sps, mpb] of table) {
    it(`${name} has the kernel's sparsemem geometry`, () => {
      const p = archProfile(name);
      const g = geometry(p);
      assert.deepEqual(
        [p.sectionSizeBits, g.pagesPerSection, g.pagesPerSubsection, g.subsectionsPerSection, p.maxPhysmemBits],
        [ssb, pps, ppss, sps, mpb],
      );
    });
  }

  it("MAX_ORDER - 1 + PAGE_SHIFT never exceeds SECTION_SIZE_BITS (the kernel's build check)", () => {
    for (const p of ARCH_PROFILES) assert.ok(p.maxOrder - 1 + p.pageShift <= p.sectionSizeBits, p.name);
  });

  it("PMD sizes: 2 MiB on 4K pages, 32 MiB on 16K, 512 MiB on 64K arm64; PUD THP only on x86", () => {
    assert.equal(2 ** archProfile("arm64-4k-48").pmdShift, 2 * 2 ** 20);
    assert.equal(2 ** archProfile("arm64-16k-48").pmdShift, 32 * 2 ** 20);
    assert.equal(2 ** archProfile("arm64-64k-48").pmdShift, 512 * 2 ** 20);
    assert.equal(archProfile("x86_64").selects.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD, true);
    assert.equal(archProfile("arm64-4k-48").selects.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD, false);
    assert.equal(archProfile("ppc64-radix-64k").selects.ZONE_DMA, false);
  });

  it("pageblock_order is min(HUGETLB_PAGE_ORDER, MAX_ORDER - 1)", () => {
    assert.equal(archProfile("x86_64").pageblockOrder, 9);
    assert.equal(archProfile("arm64-16k-48").pageblockOrder, 11);
    assert.equal(archProfile("arm64-64k-48").pageblockOrder, 13);
  });

  it("refuses what 6.1 cannot build, naming the reason", () => {
    assert.throws(() => archProfile("arm64-4k-52"), (e: unknown) => e instanceof UsageError && /64 KiB pages/.test(e.reason));
    assert.throws(() => archProfile("riscv64"), (e: unknown) => e instanceof UsageError && e.field === "arch" && /unknown arch 'riscv64'/.test(e.reason));
  });
});
