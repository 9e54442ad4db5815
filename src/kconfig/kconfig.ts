/**
 * Kernel configurations for the model: the Kconfig symbols that decide what ZONE_DEVICE can do (options.ts),
 * their resolution for an arch (resolve.ts), and named presets.
 *
 * Presets hold what a .config says for symbols with a prompt, plus the hidden symbols that drivers outside the
 * model select (HMM_MIRROR, GET_FREE_REGION, MMU_NOTIFIER). Everything else (arch selects, def_bools, selects)
 * is derived, so `debian-6.1-amd64` reproducing the oracle's values checks the derivation too.
 *
 * ref: Debian linux 6.1 config.amd64_none_amd64 (the oracle kernel), shared/oracle/kconfig-values.txt.
 */
import type { ArchName, ArchProfile } from "../arch/profiles.ts";
import { UsageError } from "../errors.ts";
import { type ConfigRequest, type KernelConfig, resolveConfig } from "./resolve.ts";

export { isKconfigSymbol, KCONFIG_SYMBOLS, type SymbolDef, type SymbolKind, type SymbolName, symbolDef } from "./options.ts";
export {
  type ConfigRequest,
  type ConfigValue,
  formatConfig,
  type KernelConfig,
  type ResolveOptions,
  resolveConfig,
  type Tristate,
} from "./resolve.ts";

export interface KconfigPreset {
  readonly description: string;
  /** The architectures the preset exists for; every one when absent. */
  readonly arches?: readonly ArchName[];
  /** Starting .config values, applied like `make olddefconfig` would. */
  values(arch: ArchProfile): ConfigRequest;
}

/** What distro kernels (Debian, Fedora, Ubuntu) set for these symbols on 64-bit arches in the 6.1 era. */
const DISTRO: ConfigRequest = {
  BLK_DEV: "y",
  PCI: "y",
  NUMA: "y",
  SPARSEMEM_VMEMMAP: "y",
  MEMORY_HOTPLUG: "y",
  MEMORY_HOTPLUG_DEFAULT_ONLINE: "n",
  MEMORY_HOTREMOVE: "y",
  COMPACTION: "y",
  CMA: "n",
  MIGRATION: "y",
  MEMORY_FAILURE: "y",
  TRANSPARENT_HUGEPAGE: "y",
  ZONE_DEVICE: "y",
  DEVICE_PRIVATE: "n",
  FS_DAX: "y",
  DAX: "y",
  DEV_DAX: "m",
  DEV_DAX_PMEM: "m",
  DEV_DAX_KMEM: "m",
  DEV_DAX_HMEM: "m",
  LIBNVDIMM: "m",
  BLK_DEV_PMEM: "m",
  BTT: "y",
  NVDIMM_PFN: "y",
  NVDIMM_DAX: "y",
  PCI_P2PDMA: "n",
  RUNTIME_TESTING_MENU: "y",
  TEST_HMM: "n",
  // Selected by drivers outside the model: amdgpu / RDMA ODP, CXL_REGION, KVM.
  HMM_MIRROR: "y",
  GET_FREE_REGION: "y",
  MMU_NOTIFIER: "y",
};

const ACPI_PLATFORM: ConfigRequest = {
  ACPI: "y",
  ACPI_NUMA: "y",
  ACPI_HMAT: "y",
  EFI_SOFT_RESERVE: "y",
  ACPI_NFIT: "m",
};

const X86_PLATFORM: ConfigRequest = { X86_64_ACPI_NUMA: "y", X86_PMEM_LEGACY: "m" };

function distro(arch: ArchProfile): ConfigRequest {
  return {
    ...DISTRO,
    ...(arch.arch === "ppc64" ? {} : ACPI_PLATFORM),
    ...(arch.arch === "x86_64" ? X86_PLATFORM : {}),
  };
}

export const KCONFIG_PRESETS: Readonly<Record<string, KconfigPreset>> = {
  "debian-6.1-amd64": {
    description: "Debian bookworm's 6.1 amd64 kernel (the oracle's kernel)",
    arches: ["x86_64"],
    values: distro,
  },
  defconfig: {
    description: "a distro-style 6.1 kernel for the arch: ZONE_DEVICE, FS_DAX, device DAX, NVDIMM (not arch/*/configs)",
    values: distro,
  },
  hmm: {
    description: "defconfig plus DEVICE_PRIVATE=y, TEST_HMM=m and PCI_P2PDMA=y (the oracle's custom HMM kernel)",
    values: (arch) => ({ ...distro(arch), DEVICE_PRIVATE: "y", TEST_HMM: "m", PCI_P2PDMA: "y" }),
  },
};

/** Resolve a named preset for `arch`, with `overrides` as requirements on top. */
export function kconfigPreset(name: string, arch: ArchProfile, overrides: ConfigRequest = {}): KernelConfig {
  const preset = Object.hasOwn(KCONFIG_PRESETS, name) ? KCONFIG_PRESETS[name] : undefined;
  if (!preset) {
    throw new UsageError("config", `unknown preset '${name}' (known: ${Object.keys(KCONFIG_PRESETS).join(", ")})`);
  }
  if (preset.arches && !preset.arches.includes(arch.arch)) {
    throw new UsageError("config", `preset '${name}' is for ${preset.arches.join(", ")}, not ${arch.name}`);
  }
  return resolveConfig(arch, overrides, { base: preset.values(arch) });
}
