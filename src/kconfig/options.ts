/**
 * The Kconfig symbols of Linux 6.1 that decide what ZONE_DEVICE can do, transcribed from the Kconfig files.
 *
 * Expressions use Kconfig syntax (`&&`, `||`, `!`, parentheses, `SYM=y`); `selects` entries are `TARGET` or
 * `TARGET if COND`; `default` is `EXPR` or `EXPR if COND`. An `if FOO` block around an entry is folded into its
 * `depends`. Terms that always hold on the modelled arches (x86_64, arm64, ppc64 book3s) are left out and
 * named in a comment. Selects of symbols outside this table (SRCU, FS_IOMAP, GENERIC_ALLOCATOR...) are left out.
 */
import type { ArchProfile } from "../arch/profiles.ts";

export type KconfigType = "bool" | "tristate";

/**
 * user: has a prompt, so a .config (or an override) can set it;
 * hidden: no prompt, its value comes only from `default` and from selects;
 * arch: fixed by the architecture (`select` lines in arch/<arch>/Kconfig), read from the ArchProfile.
 */
export type SymbolKind = "user" | "hidden" | "arch";

export interface SymbolDef<N extends string = string> {
  readonly name: N;
  readonly type: KconfigType;
  readonly kind: SymbolKind;
  readonly depends?: string;
  readonly selects?: readonly string[];
  readonly default?: string;
  /** arch symbols: whether the profile's architecture selects it (further limited by `depends`). */
  readonly arch?: (p: ArchProfile) => boolean;
  /**
   * Hidden symbols that drivers outside this table select. Asking for y stands for such a driver being
   * configured; the text names those drivers.
   */
  readonly selectedOutside?: string;
}

type Spec = Omit<SymbolDef, "name" | "type" | "kind" | "arch">;

const bool = <const N extends string>(name: N, spec: Spec = {}): SymbolDef<N> => ({ name, type: "bool", kind: "user", ...spec });
const tristate = <const N extends string>(name: N, spec: Spec = {}): SymbolDef<N> => ({
  name,
  type: "tristate",
  kind: "user",
  ...spec,
});
const hidden = <const N extends string>(name: N, spec: Spec & { type?: KconfigType } = {}): SymbolDef<N> => ({
  type: "bool",
  ...spec,
  name,
  kind: "hidden",
});
/** An arch-selected symbol whose value the ArchProfile records. */
const fromProfile = <const N extends keyof ArchProfile["selects"]>(name: N, spec: Spec = {}): SymbolDef<N> => ({
  name,
  type: "bool",
  kind: "arch",
  arch: (p) => p.selects[name],
  ...spec,
});
/** An arch-level symbol that follows from the architecture itself. */
const fromArch = <const N extends string>(name: N, arch: (p: ArchProfile) => boolean, spec: Spec = {}): SymbolDef<N> => ({
  name,
  type: "bool",
  kind: "arch",
  arch,
  ...spec,
});

const isX86 = (p: ArchProfile) => p.arch === "x86_64";
const always = () => true;

export const KCONFIG_SYMBOLS = [
  // ref: arch/x86/Kconfig, arch/arm64/Kconfig, arch/powerpc/Kconfig (+ platforms/Kconfig.cputype, book3s_64)
  fromArch("64BIT", always),
  fromArch("MMU", always),
  fromArch("X86", isX86),
  fromArch("X86_64", isX86),
  fromArch("ARM64", (p) => p.arch === "arm64"),
  fromArch("PPC64", (p) => p.arch === "ppc64"),
  // arm64's ARCH_SPARSEMEM_ENABLE also selects SPARSEMEM_VMEMMAP: it cannot be turned off there.
  fromArch("ARCH_SPARSEMEM_ENABLE", always, { selects: ["SPARSEMEM_VMEMMAP if ARM64"] }),
  // arm64 selects it from EFI; the model assumes EFI=y there.
  fromArch("ARCH_SUPPORTS_ACPI", (p) => p.arch !== "ppc64"),
  fromArch("ARCH_SUPPORTS_MEMORY_FAILURE", always),
  fromArch("ARCH_HAS_PMEM_API", always),
  // x86 and powerpc book3s64 select it in 6.1; arm64 does not (it came with 6.x later).
  fromArch("HAVE_ARCH_SOFT_DIRTY", (p) => p.arch !== "arm64"),
  fromProfile("ARCH_HAS_PTE_DEVMAP"),
  fromProfile("ARCH_HAS_PTE_SPECIAL"),
  fromProfile("ARCH_ENABLE_MEMORY_HOTPLUG"),
  // x86: `select ARCH_ENABLE_MEMORY_HOTREMOVE if MEMORY_HOTPLUG`.
  fromProfile("ARCH_ENABLE_MEMORY_HOTREMOVE", { depends: "MEMORY_HOTPLUG || !X86" }),
  fromProfile("ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE"),
  fromProfile("ARCH_HAS_ADD_PAGES", { depends: "ARCH_ENABLE_MEMORY_HOTPLUG" }),
  fromProfile("SPARSEMEM_VMEMMAP_ENABLE"),
  fromProfile("HAVE_ARCH_TRANSPARENT_HUGEPAGE"),
  fromProfile("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD"),
  fromProfile("HAVE_FAST_GUP", { depends: "MMU" }),
  // mm/Kconfig: `default y if ARM64 || X86` (a prompt only with EXPERT); x86_64 selects ZONE_DMA32.
  fromProfile("ZONE_DMA"),
  fromProfile("ZONE_DMA32"),
  // x86 `depends on SMP && X86_64`, arm64 no default, powerpc `default y if PPC_PSERIES || PPC_POWERNV`.
  bool("NUMA", { depends: "64BIT", default: "y if PPC64", selects: ["ACPI_NUMA if ACPI && ARM64"] }),
  hidden("X86_PMEM_LEGACY_DEVICE", { depends: "X86" }),
  tristate("X86_PMEM_LEGACY", {
    depends: "X86 && 64BIT && BLK_DEV",
    selects: ["X86_PMEM_LEGACY_DEVICE", "NUMA_KEEP_MEMINFO if NUMA", "LIBNVDIMM"],
  }),
  bool("X86_64_ACPI_NUMA", { depends: "X86_64 && NUMA && ACPI && PCI", default: "y", selects: ["ACPI_NUMA"] }),

  // ref: mm/Kconfig
  // SPARSEMEM: the memory-model choice is forced (x86_64, arm64) or defaults (ppc64 book3s) to sparse.
  hidden("SPARSEMEM", { depends: "ARCH_SPARSEMEM_ENABLE", default: "y" }),
  // && !SPARSEMEM_STATIC, which only X86_32 selects.
  hidden("SPARSEMEM_EXTREME", { depends: "SPARSEMEM", default: "y" }),
  bool("SPARSEMEM_VMEMMAP", { depends: "SPARSEMEM && SPARSEMEM_VMEMMAP_ENABLE", default: "y" }),
  hidden("NUMA_KEEP_MEMINFO"),
  hidden("MEMORY_ISOLATION"),
  hidden("HAVE_BOOTMEM_INFO_NODE"),
  bool("MEMORY_HOTPLUG", {
    depends: "SPARSEMEM && ARCH_ENABLE_MEMORY_HOTPLUG && 64BIT",
    selects: ["MEMORY_ISOLATION", "NUMA_KEEP_MEMINFO if NUMA"],
  }),
  bool("MEMORY_HOTPLUG_DEFAULT_ONLINE", { depends: "MEMORY_HOTPLUG" }),
  bool("MEMORY_HOTREMOVE", {
    depends: "MEMORY_HOTPLUG && ARCH_ENABLE_MEMORY_HOTREMOVE && MIGRATION",
    selects: ["HAVE_BOOTMEM_INFO_NODE if X86_64 || PPC64"],
  }),
  hidden("MHP_MEMMAP_ON_MEMORY", {
    depends: "MEMORY_HOTPLUG && SPARSEMEM_VMEMMAP && ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE",
    default: "y",
  }),
  bool("COMPACTION", { depends: "MMU", default: "y", selects: ["MIGRATION"] }),
  bool("CMA", { depends: "MMU", selects: ["MIGRATION", "MEMORY_ISOLATION"] }),
  bool("MIGRATION", { depends: "(NUMA || ARCH_ENABLE_MEMORY_HOTREMOVE || COMPACTION || CMA) && MMU", default: "y" }),
  hidden("DEVICE_MIGRATION", { default: "MIGRATION && ZONE_DEVICE" }),
  // ref: mm/Kconfig MEM_SOFT_DIRTY (`depends on CHECKPOINT_RESTORE && HAVE_ARCH_SOFT_DIRTY && PROC_FS`; the first
  // and last are taken as set, as on every distro kernel).
  bool("MEM_SOFT_DIRTY", { depends: "HAVE_ARCH_SOFT_DIRTY", default: "y" }),
  bool("MEMORY_FAILURE", { depends: "MMU && ARCH_SUPPORTS_MEMORY_FAILURE", selects: ["MEMORY_ISOLATION"] }),
  // && !PREEMPT_RT: the model has no RT kernels.
  bool("TRANSPARENT_HUGEPAGE", { depends: "HAVE_ARCH_TRANSPARENT_HUGEPAGE", selects: ["COMPACTION"] }),
  hidden("MMU_NOTIFIER", { selectedOutside: "KVM, GPU and RDMA drivers" }),
  bool("ZONE_DEVICE", { depends: "MEMORY_HOTPLUG && MEMORY_HOTREMOVE && SPARSEMEM_VMEMMAP && ARCH_HAS_PTE_DEVMAP" }),
  hidden("HMM_MIRROR", {
    depends: "MMU",
    selectedOutside: "DRM_AMDGPU_USERPTR, HSA_AMD, INFINIBAND_ON_DEMAND_PAGING, DRM_NOUVEAU_SVM",
  }),
  hidden("GET_FREE_REGION", { depends: "SPARSEMEM", selectedOutside: "CXL_REGION (drivers/cxl)" }),
  bool("DEVICE_PRIVATE", { depends: "ZONE_DEVICE", selects: ["GET_FREE_REGION"] }),

  // ref: fs/Kconfig (FS_DAX also `depends on !(ARM || MIPS || SPARC)`)
  hidden("FS_DAX_LIMITED"),
  bool("FS_DAX", { depends: "MMU && (ZONE_DEVICE || FS_DAX_LIMITED)", selects: ["DAX"] }),
  hidden("FS_DAX_PMD", { depends: "FS_DAX && ZONE_DEVICE && TRANSPARENT_HUGEPAGE", default: "FS_DAX" }),

  // ref: drivers/acpi/Kconfig, drivers/acpi/numa/Kconfig, drivers/acpi/nfit/Kconfig, drivers/firmware/efi/Kconfig
  bool("ACPI", { depends: "ARCH_SUPPORTS_ACPI", default: "y if X86" }),
  bool("ACPI_NUMA", { depends: "ACPI && NUMA && (X86 || ARM64)", default: "y if ARM64" }),
  bool("ACPI_HMAT", { depends: "ACPI && ACPI_NUMA" }),
  // && EFI && EFI_STUB, assumed on where ACPI is.
  bool("EFI_SOFT_RESERVE", { depends: "ACPI_HMAT", default: "ACPI_HMAT" }),
  // && PHYS_ADDR_T_64BIT (= 64BIT here)
  tristate("ACPI_NFIT", { depends: "ACPI && 64BIT && BLK_DEV && ARCH_HAS_PMEM_API", selects: ["LIBNVDIMM"] }),

  // ref: drivers/block/Kconfig, drivers/pci/Kconfig, lib/Kconfig.debug
  bool("BLK_DEV", { default: "y" }),
  bool("PCI"),
  bool("PCI_P2PDMA", { depends: "PCI && ZONE_DEVICE && 64BIT" }),
  bool("RUNTIME_TESTING_MENU", { default: "y" }),
  tristate("TEST_HMM", {
    depends: "RUNTIME_TESTING_MENU && TRANSPARENT_HUGEPAGE && DEVICE_PRIVATE",
    selects: ["HMM_MIRROR", "MMU_NOTIFIER"],
  }),

  // ref: drivers/nvdimm/Kconfig (LIBNVDIMM: PHYS_ADDR_T_64BIT = 64BIT, HAS_IOMEM always)
  tristate("LIBNVDIMM", { depends: "64BIT && BLK_DEV" }),
  tristate("BLK_DEV_PMEM", {
    depends: "LIBNVDIMM",
    default: "LIBNVDIMM",
    selects: ["DAX", "ND_BTT if BTT", "ND_PFN if NVDIMM_PFN"],
  }),
  hidden("ND_CLAIM", { depends: "LIBNVDIMM" }),
  hidden("ND_BTT", { type: "tristate", depends: "LIBNVDIMM" }),
  hidden("ND_PFN", { type: "tristate", depends: "LIBNVDIMM" }),
  bool("BTT", { depends: "LIBNVDIMM", default: "y if LIBNVDIMM", selects: ["ND_CLAIM"] }),
  bool("NVDIMM_PFN", { depends: "LIBNVDIMM && ZONE_DEVICE", default: "LIBNVDIMM", selects: ["ND_CLAIM"] }),
  bool("NVDIMM_DAX", { depends: "LIBNVDIMM && NVDIMM_PFN", default: "LIBNVDIMM" }),

  // ref: drivers/dax/Kconfig (everything after DAX sits in `if DAX`)
  tristate("DAX", { default: "m if NVDIMM_DAX" }),
  tristate("DEV_DAX", { depends: "DAX && TRANSPARENT_HUGEPAGE" }),
  tristate("DEV_DAX_PMEM", { depends: "DAX && LIBNVDIMM && NVDIMM_DAX && DEV_DAX", default: "DEV_DAX" }),
  tristate("DEV_DAX_HMEM", {
    depends: "DAX && EFI_SOFT_RESERVE",
    default: "DEV_DAX",
    selects: ["NUMA_KEEP_MEMINFO if NUMA && X86"],
  }),
  hidden("DEV_DAX_HMEM_DEVICES", { depends: "DAX && DEV_DAX_HMEM && DAX=y", default: "y" }),
  tristate("DEV_DAX_KMEM", { depends: "DAX && DEV_DAX && MEMORY_HOTPLUG", default: "DEV_DAX" }),
] as const;

export type SymbolName = (typeof KCONFIG_SYMBOLS)[number]["name"];

const BY_NAME: ReadonlyMap<string, SymbolDef> = new Map(KCONFIG_SYMBOLS.map((d) => [d.name, d]));

export function isKconfigSymbol(name: string): name is SymbolName {
  return BY_NAME.has(name);
}

export function symbolDef(name: SymbolName): SymbolDef {
  return BY_NAME.get(name)!;
}
