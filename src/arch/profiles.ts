/**
 * Architecture profiles: the constants 6.1 compiles in for each arch and page size, and what each arch selects.
 *
 * ref: arch/x86/include/asm/sparsemem.h, arch/arm64/include/asm/sparsemem.h, arch/powerpc/include/asm/sparsemem.h,
 *      arch/powerpc/include/asm/book3s/64/radix.h (R_MAX_PHYSMEM_BITS), arch/arm64/Kconfig (ARCH_FORCE_MAX_ORDER,
 *      ARM64_VA_BITS_*, ARM64_PA_BITS_*), arch/powerpc/Kconfig (ARCH_FORCE_MAX_ORDER), mm/Kconfig (ZONE_DMA*).
 */
import { UsageError } from "../errors.ts";

export type ArchName = "x86_64" | "arm64" | "ppc64";

/** How the arch sizes memory blocks (drivers/base/memory.c memory_block_size_bytes and its overrides). */
export type MemoryBlockRule =
  /** x86_64 probe_memory_block_size(): 128 MiB below 64 GiB of boot memory, else 2 GiB or a divisor. */
  | { kind: "x86-probe" }
  /** The weak default: one section (MIN_MEMORY_BLOCK_SIZE). */
  | { kind: "section" }
  /** A platform value (powerpc ppc_md.memory_block_size: powernv radix reports 1 GiB). */
  | { kind: "fixed"; bytes: number };

/** How the arch places ZONE_DMA / ZONE_DMA32 limits at boot (zone_sizes_init / paging_init). */
export type ZoneLimitRule =
  /** x86_64: MAX_DMA_PFN = 16 MiB, MAX_DMA32_PFN = 4 GiB (arch/x86/mm/init.c zone_sizes_init). */
  | { kind: "x86_64" }
  /** arm64: max_zone_phys(zone_dma_bits) / max_zone_phys(32), expanded when DRAM starts above 4 GiB. */
  | { kind: "arm64" }
  /** ppc64 book3s: no ZONE_DMA, no ZONE_DMA32; everything is Normal. */
  | { kind: "normal-only" };

export interface ArchProfile {
  /** Profile name as users type it (`--arch`). */
  readonly name: string;
  readonly arch: ArchName;
  readonly description: string;
  readonly pageShift: number;
  readonly sectionSizeBits: number;
  /** 21 on every architecture (include/linux/mmzone.h). */
  readonly subsectionShift: number;
  readonly maxPhysmemBits: number;
  readonly vaBits: number;
  readonly pgtableLevels: number;
  /** log2 of the size one PMD entry maps. */
  readonly pmdShift: number;
  /** log2 of the size one PUD entry maps; null when the PUD level is folded away. */
  readonly pudShift: number | null;
  /** MAX_ORDER (exclusive upper bound of buddy orders) in 6.1. */
  readonly maxOrder: number;
  /** pageblock_order: min(HUGETLB_PAGE_ORDER, MAX_ORDER - 1). */
  readonly pageblockOrder: number;
  readonly structPageSize: number;
  readonly memoryBlock: MemoryBlockRule;
  readonly zoneLimits: ZoneLimitRule;
  /** What the arch selects in Kconfig. */
  readonly selects: {
    readonly ARCH_HAS_PTE_DEVMAP: boolean;
    readonly ARCH_HAS_PTE_SPECIAL: boolean;
    readonly ARCH_ENABLE_MEMORY_HOTPLUG: boolean;
    readonly ARCH_ENABLE_MEMORY_HOTREMOVE: boolean;
    readonly SPARSEMEM_VMEMMAP_ENABLE: boolean;
    readonly HAVE_ARCH_TRANSPARENT_HUGEPAGE: boolean;
    readonly HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: boolean;
    readonly ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: boolean;
    readonly ARCH_HAS_ADD_PAGES: boolean;
    readonly HAVE_FAST_GUP: boolean;
    /** Whether ZONE_DMA / ZONE_DMA32 exist on this arch at all (mm/Kconfig defaults, powerpc selects). */
    readonly ZONE_DMA: boolean;
    readonly ZONE_DMA32: boolean;
  };
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const X86_SELECTS = {
  ARCH_HAS_PTE_DEVMAP: true,
  ARCH_HAS_PTE_SPECIAL: true,
  ARCH_ENABLE_MEMORY_HOTPLUG: true,
  ARCH_ENABLE_MEMORY_HOTREMOVE: true,
  SPARSEMEM_VMEMMAP_ENABLE: true,
  HAVE_ARCH_TRANSPARENT_HUGEPAGE: true,
  HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: true,
  ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: true,
  ARCH_HAS_ADD_PAGES: true,
  HAVE_FAST_GUP: true,
  ZONE_DMA: true,
  ZONE_DMA32: true,
} as const;

const ARM64_SELECTS = {
  ...X86_SELECTS,
  HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: false,
  ARCH_HAS_ADD_PAGES: false,
} as const;

const PPC64_SELECTS = {
  ...X86_SELECTS,
  HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: false,
  ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: false,
  ZONE_DMA: false,
  ZONE_DMA32: false,
} as const;

function x86(name: string, la57: boolean): ArchProfile {
  return {
    name,
    arch: "x86_64",
    description: la57 ? "x86_64, 4 KiB pages, 5-level paging (LA57)" : "x86_64, 4 KiB pages, 4-level paging",
    pageShift: 12,
    sectionSizeBits: 27,
    subsectionShift: 21,
    maxPhysmemBits: la57 ? 52 : 46,
    vaBits: la57 ? 57 : 48,
    pgtableLevels: la57 ? 5 : 4,
    pmdShift: 21,
    pudShift: 30,
    maxOrder: 11,
    pageblockOrder: 9,
    structPageSize: 64,
    memoryBlock: { kind: "x86-probe" },
    zoneLimits: { kind: "x86_64" },
    selects: X86_SELECTS,
  };
}

/** arm64 in 6.1: 52-bit VA and PA need 64 KiB pages (ARM64_VA_BITS_52 / ARM64_PA_BITS_52 depend on it). */
function arm64(pageKiB: 4 | 16 | 64, vaBits: number): ArchProfile {
  const pageShift = pageKiB === 4 ? 12 : pageKiB === 16 ? 14 : 16;
  const levelsByVa: Record<number, number> =
    pageKiB === 4 ? { 39: 3, 48: 4 } : pageKiB === 16 ? { 36: 2, 47: 3, 48: 4 } : { 42: 2, 48: 3, 52: 3 };
  const levels = levelsByVa[vaBits];
  if (levels === undefined) throw new Error(`no arm64 ${pageKiB}K profile with ${vaBits}-bit VA`);
  // Each level resolves PAGE_SHIFT - 3 bits.
  const pmdShift = pageShift + (pageShift - 3);
  const pudShift = levels >= 3 ? pmdShift + (pageShift - 3) : null;
  const maxOrder = pageKiB === 4 ? 11 : pageKiB === 16 ? 12 : 14;
  return {
    name: `arm64-${pageKiB}k-${vaBits}`,
    arch: "arm64",
    description: `arm64, ${pageKiB} KiB pages, ${vaBits}-bit VA, ${levels}-level page tables`,
    pageShift,
    sectionSizeBits: pageKiB === 64 ? 29 : 27,
    subsectionShift: 21,
    maxPhysmemBits: vaBits === 52 ? 52 : 48,
    vaBits,
    pgtableLevels: levels,
    pmdShift,
    pudShift,
    maxOrder,
    // HUGETLB_PAGE_ORDER = PMD_SHIFT - PAGE_SHIFT, capped at MAX_ORDER - 1.
    pageblockOrder: Math.min(pmdShift - pageShift, maxOrder - 1),
    structPageSize: 64,
    memoryBlock: { kind: "section" },
    zoneLimits: { kind: "arm64" },
    selects: ARM64_SELECTS,
  };
}

const PPC64_RADIX_64K: ArchProfile = {
  name: "ppc64-radix-64k",
  arch: "ppc64",
  description: "ppc64 book3s, radix MMU, 64 KiB pages (powernv)",
  pageShift: 16,
  sectionSizeBits: 24,
  subsectionShift: 21,
  maxPhysmemBits: 51,
  vaBits: 52,
  pgtableLevels: 4,
  pmdShift: 21,
  pudShift: 30,
  maxOrder: 9,
  // HPAGE_SHIFT is 21 on radix (2 MiB), so HUGETLB_PAGE_ORDER = 5.
  pageblockOrder: 5,
  structPageSize: 64,
  memoryBlock: { kind: "fixed", bytes: GiB },
  zoneLimits: { kind: "normal-only" },
  selects: PPC64_SELECTS,
};

export const ARCH_PROFILES: readonly ArchProfile[] = [
  x86("x86_64", false),
  x86("x86_64-la57", true),
  arm64(4, 39),
  arm64(4, 48),
  arm64(16, 47),
  arm64(16, 48),
  arm64(64, 42),
  arm64(64, 48),
  arm64(64, 52),
  PPC64_RADIX_64K,
];

/** Aliases users are likely to type. */
const ALIASES: Record<string, string> = {
  x86: "x86_64",
  "x86_64-4level": "x86_64",
  "x86_64-5level": "x86_64-la57",
  arm64: "arm64-4k-48",
  "arm64-4k": "arm64-4k-48",
  "arm64-16k": "arm64-16k-48",
  "arm64-64k": "arm64-64k-48",
  ppc64: "ppc64-radix-64k",
  ppc64le: "ppc64-radix-64k",
};

export function archProfile(name: string, field = "arch"): ArchProfile {
  const resolved = ALIASES[name] ?? name;
  const found = ARCH_PROFILES.find((p) => p.name === resolved);
  if (found) return found;
  if (/^arm64-(4|16)k-52$/.test(name)) {
    throw new UsageError(field, `${name}: 6.1 has 52-bit VA only with 64 KiB pages (ARM64_VA_BITS_52 depends on ARM64_64K_PAGES)`);
  }
  const names = ARCH_PROFILES.map((p) => p.name).join(", ");
  throw new UsageError(field, `unknown arch '${name}' (known: ${names})`);
}

/** Derived sparsemem geometry for a profile (include/linux/mmzone.h). */
export interface Geometry {
  readonly pageSize: number;
  readonly pfnSectionShift: number;
  readonly pagesPerSection: number;
  readonly pfnSubsectionShift: number;
  readonly pagesPerSubsection: number;
  readonly subsectionsPerSection: number;
  readonly sectionsShift: number;
  readonly nrMemSections: number;
  readonly sectionBytes: number;
  readonly pagesPerPageblock: number;
  /** Highest physical address + 1 (1 << MAX_PHYSMEM_BITS). */
  readonly physLimit: number;
  readonly maxPfn: number;
}

export function geometry(p: ArchProfile): Geometry {
  const pfnSectionShift = p.sectionSizeBits - p.pageShift;
  const pfnSubsectionShift = p.subsectionShift - p.pageShift;
  const sectionsShift = p.maxPhysmemBits - p.sectionSizeBits;
  return {
    pageSize: 2 ** p.pageShift,
    pfnSectionShift,
    pagesPerSection: 2 ** pfnSectionShift,
    pfnSubsectionShift,
    pagesPerSubsection: 2 ** pfnSubsectionShift,
    subsectionsPerSection: 2 ** (p.sectionSizeBits - p.subsectionShift),
    sectionsShift,
    nrMemSections: 2 ** sectionsShift,
    sectionBytes: 2 ** p.sectionSizeBits,
    pagesPerPageblock: 2 ** p.pageblockOrder,
    physLimit: 2 ** p.maxPhysmemBits,
    maxPfn: 2 ** (p.maxPhysmemBits - p.pageShift),
  };
}

export const SIZES = { MiB, GiB };
