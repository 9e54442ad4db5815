import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ARCH_PROFILES, type ArchProfile, archProfile } from "../../src/arch/profiles.ts";
import { UsageError } from "../../src/errors.ts";
import {
  type ConfigValue,
  formatConfig,
  isKconfigSymbol,
  KCONFIG_PRESETS,
  KCONFIG_SYMBOLS,
  kconfigPreset,
  resolveConfig,
  type SymbolName,
  symbolDef,
} from "../../src/kconfig/kconfig.ts";

const x86 = archProfile("x86_64");
const arm64 = archProfile("arm64-4k-48");
const ppc64 = archProfile("ppc64-radix-64k");

/** x86_64 as if the arch did not `select ARCH_HAS_PTE_DEVMAP` (like s390 or riscv in 6.1). */
const noDevmap: ArchProfile = {
  ...x86,
  name: "x86_64-nodevmap",
  selects: { ...x86.selects, ARCH_HAS_PTE_DEVMAP: false },
};

/**
 * A UsageError at `field` whose reason says each of `unmet` ("SYM is v") and none of `met` — the reason
 * must point at the symbol at fault, not just repeat the whole `depends` line.
 */
function usageError(field: string, unmet: readonly string[], met: readonly string[] = []) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.field, field);
    for (const s of unmet) assert.ok(e.reason.includes(s), `reason should say '${s}': ${e.reason}`);
    for (const s of met) assert.ok(!e.reason.includes(s), `reason should not say '${s}': ${e.reason}`);
    return true;
  };
}

describe("the symbol table", () => {
  test("has every symbol the digest and the oracle's list need", () => {
    const wanted = [
      "ZONE_DEVICE",
      "MEMORY_HOTPLUG",
      "MEMORY_HOTREMOVE",
      "MHP_MEMMAP_ON_MEMORY",
      "SPARSEMEM",
      "SPARSEMEM_VMEMMAP",
      "SPARSEMEM_VMEMMAP_ENABLE",
      "SPARSEMEM_EXTREME",
      "MIGRATION",
      "DEVICE_MIGRATION",
      "DEVICE_PRIVATE",
      "HMM_MIRROR",
      "GET_FREE_REGION",
      "ARCH_HAS_PTE_DEVMAP",
      "ARCH_HAS_PTE_SPECIAL",
      "ARCH_ENABLE_MEMORY_HOTPLUG",
      "ARCH_ENABLE_MEMORY_HOTREMOVE",
      "ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE",
      "TRANSPARENT_HUGEPAGE",
      "HAVE_ARCH_TRANSPARENT_HUGEPAGE",
      "HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD",
      "FS_DAX",
      "FS_DAX_PMD",
      "DAX",
      "DEV_DAX",
      "DEV_DAX_PMEM",
      "DEV_DAX_KMEM",
      "DEV_DAX_HMEM",
      "LIBNVDIMM",
      "BLK_DEV_PMEM",
      "NVDIMM_PFN",
      "NVDIMM_DAX",
      "ND_BTT",
      "BTT",
      "X86_PMEM_LEGACY",
      "ACPI_NFIT",
      "PCI_P2PDMA",
      "TEST_HMM",
      "NUMA",
      "ZONE_DMA",
      "ZONE_DMA32",
      "MEMORY_HOTPLUG_DEFAULT_ONLINE",
      "MEMORY_FAILURE",
      "64BIT",
      "MMU",
    ];
    assert.deepEqual(
      wanted.filter((s) => !isKconfigSymbol(s)),
      [],
    );
  });

  test("every ArchProfile select is an arch symbol, and vice versa the profile decides it", () => {
    for (const key of Object.keys(x86.selects)) {
      assert.ok(isKconfigSymbol(key), key);
      assert.equal(symbolDef(key).kind, "arch", key);
    }
  });

  test("types match 6.1: drivers are tristate, core mm options bool", () => {
    const type = (s: SymbolName) => symbolDef(s).type;
    for (const s of ["DAX", "DEV_DAX", "DEV_DAX_PMEM", "LIBNVDIMM", "BLK_DEV_PMEM", "ACPI_NFIT", "TEST_HMM", "ND_BTT"] as const) {
      assert.equal(type(s), "tristate", s);
    }
    for (const s of ["ZONE_DEVICE", "DEVICE_PRIVATE", "FS_DAX", "NVDIMM_PFN", "BTT", "PCI_P2PDMA", "HMM_MIRROR"] as const) {
      assert.equal(type(s), "bool", s);
    }
    assert.equal(symbolDef("FS_DAX_PMD").kind, "hidden");
    assert.equal(symbolDef("DEVICE_MIGRATION").kind, "hidden");
    assert.equal(KCONFIG_SYMBOLS.length, new Set(KCONFIG_SYMBOLS.map((d) => d.name)).size);
  });
});

describe("debian-6.1-amd64 reproduces the oracle kernel", () => {
  const oracle = new Map<string, string>();
  for (const line of readFileSync(new URL("../fixtures/kconfig-values.txt", import.meta.url), "utf8").split("\n")) {
    const m = /^(\w+): (.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) oracle.set(m[1], m[2]);
  }
  const cfg = kconfigPreset("debian-6.1-amd64", x86);
  const lines = formatConfig(cfg);
  const shared = [...oracle.keys()].filter(isKconfigSymbol);

  test("the oracle file was read and most of it is modelled", () => {
    assert.ok(oracle.size >= 50, `${oracle.size} oracle lines`);
    assert.ok(shared.length >= 40, `${shared.length} symbols in common`);
  });

  test("every symbol both know has the oracle's value", () => {
    for (const sym of shared) {
      const text = oracle.get(sym) ?? "";
      const want = /^CONFIG_\w+=([ym])$/.exec(text)?.[1] ?? "n";
      assert.equal(cfg.value(sym), want, `${sym}: oracle says ${text}`);
    }
  });

  test("formatConfig gives the oracle's .config line, and no line where the oracle has none", () => {
    for (const sym of shared) {
      const text = oracle.get(sym) ?? "";
      const line = lines.find((l) => l === `CONFIG_${sym}=${cfg.value(sym)}` || l === `# CONFIG_${sym} is not set`);
      assert.equal(line ?? "<absent>", text, sym);
    }
  });

  test("derived values come out right, not only the preset's own", () => {
    // None of these is set by the preset: selects, def_bools and defaults produce them.
    for (const [sym, want] of [
      ["FS_DAX_PMD", "y"],
      ["DEVICE_MIGRATION", "y"],
      ["MHP_MEMMAP_ON_MEMORY", "y"],
      ["DEV_DAX_HMEM_DEVICES", "y"],
      ["ND_BTT", "m"],
      ["X86_PMEM_LEGACY_DEVICE", "y"],
      ["HAVE_BOOTMEM_INFO_NODE", "y"],
    ] as const) {
      assert.ok(!(sym in (KCONFIG_PRESETS["debian-6.1-amd64"]?.values(x86) ?? {})), sym);
      assert.equal(cfg.value(sym), want, sym);
    }
    assert.deepEqual(cfg.warnings, []);
  });

  test("is only for x86_64", () => {
    assert.throws(() => kconfigPreset("debian-6.1-amd64", arm64), usageError("config", ["x86_64", "arm64-4k-48"]));
  });
});

describe("requests that cannot hold are UsageErrors naming the unmet dependency", () => {
  test("ZONE_DEVICE=y on an arch that does not select ARCH_HAS_PTE_DEVMAP", () => {
    assert.throws(
      () => kconfigPreset("defconfig", noDevmap, { ZONE_DEVICE: "y" }),
      usageError("config.ZONE_DEVICE", ["cannot be y", "ARCH_HAS_PTE_DEVMAP is n", "x86_64-nodevmap"], ["MEMORY_HOTPLUG is"]),
    );
  });

  test("ZONE_DEVICE=y with SPARSEMEM_VMEMMAP=n", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { ZONE_DEVICE: "y", SPARSEMEM_VMEMMAP: "n" }),
      usageError("config.ZONE_DEVICE", ["SPARSEMEM_VMEMMAP is n"], ["MEMORY_HOTREMOVE is", "ARCH_HAS_PTE_DEVMAP is"]),
    );
  });

  test("ZONE_DEVICE=y with MEMORY_HOTREMOVE=n", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { ZONE_DEVICE: "y", MEMORY_HOTREMOVE: "n" }),
      usageError("config.ZONE_DEVICE", ["MEMORY_HOTREMOVE is n"], ["SPARSEMEM_VMEMMAP is"]),
    );
  });

  test("ZONE_DEVICE=y from bare defaults: Kconfig does not switch dependencies on", () => {
    assert.throws(
      () => resolveConfig(x86, { ZONE_DEVICE: "y" }),
      usageError("config.ZONE_DEVICE", ["MEMORY_HOTPLUG is n", "MEMORY_HOTREMOVE is n"], ["SPARSEMEM_VMEMMAP is"]),
    );
  });

  test("DEVICE_PRIVATE=y with ZONE_DEVICE=n", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { DEVICE_PRIVATE: "y", ZONE_DEVICE: "n" }),
      usageError("config.DEVICE_PRIVATE", ["ZONE_DEVICE is n"]),
    );
  });

  test("PCI_P2PDMA=y with ZONE_DEVICE=n", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { PCI_P2PDMA: "y", ZONE_DEVICE: "n" }),
      usageError("config.PCI_P2PDMA", ["ZONE_DEVICE is n"], ["PCI is"]),
    );
  });

  test("TEST_HMM=m without DEVICE_PRIVATE", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { TEST_HMM: "m" }),
      usageError("config.TEST_HMM", ["DEVICE_PRIVATE is n"], ["TRANSPARENT_HUGEPAGE is"]),
    );
  });

  test("a tristate under an m dependency cannot be y", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { DEV_DAX_PMEM: "y", DEV_DAX: "y" }),
      usageError("config.DEV_DAX_PMEM", ["LIBNVDIMM is m"], ["DEV_DAX is"]),
    );
  });

  test("a selected symbol cannot be turned off or down", () => {
    assert.throws(() => kconfigPreset("defconfig", x86, { DAX: "m" }), usageError("config.DAX", ["selected by FS_DAX"]));
    assert.throws(
      () => kconfigPreset("defconfig", x86, { LIBNVDIMM: "n" }),
      usageError("config.LIBNVDIMM", ["ACPI_NFIT", "X86_PMEM_LEGACY"]),
    );
    // arm64's ARCH_SPARSEMEM_ENABLE selects SPARSEMEM_VMEMMAP; x86 leaves it to the user.
    assert.throws(
      () => kconfigPreset("defconfig", arm64, { SPARSEMEM_VMEMMAP: "n" }),
      usageError("config.SPARSEMEM_VMEMMAP", ["selected by ARCH_SPARSEMEM_ENABLE"]),
    );
  });

  test("hidden and arch symbols follow their rules, not the request", () => {
    assert.throws(
      () => kconfigPreset("defconfig", x86, { FS_DAX_PMD: "n" }),
      usageError("config.FS_DAX_PMD", ["no prompt", "FS_DAX"]),
    );
    assert.throws(
      () => kconfigPreset("defconfig", x86, { DEVICE_MIGRATION: "y", ZONE_DEVICE: "n" }),
      usageError("config.DEVICE_MIGRATION", ["ZONE_DEVICE is n"]),
    );
    assert.throws(
      () => kconfigPreset("defconfig", ppc64, { ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: "y" }),
      usageError("config.ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE", ["ppc64-radix-64k does not select"]),
    );
    // A request that matches what the rules give is fine.
    assert.equal(kconfigPreset("defconfig", x86, { FS_DAX_PMD: "y", ARCH_HAS_PTE_DEVMAP: "y" }).value("FS_DAX_PMD"), "y");
  });

  test("unknown symbol", () => {
    assert.throws(() => resolveConfig(x86, { FOO: "y" }), usageError("config.FOO", ["unknown symbol"]));
    assert.throws(
      () => resolveConfig(x86, { CONFIG_ZONE_DEVICE: "y" }),
      usageError("config.CONFIG_ZONE_DEVICE", ["unknown symbol", "ZONE_DEVICE"]),
    );
  });

  test("bad value", () => {
    assert.throws(
      () => resolveConfig(x86, { NUMA: "maybe" as unknown as ConfigValue }),
      usageError("config.NUMA", ["maybe", "y, m or n"]),
    );
  });

  test("m for a bool symbol", () => {
    assert.throws(() => kconfigPreset("defconfig", x86, { ZONE_DEVICE: "m" }), usageError("config.ZONE_DEVICE", ["bool", "not m"]));
  });

  test("base values are validated too", () => {
    assert.throws(() => resolveConfig(x86, {}, { base: { NOPE: "y" } }), usageError("config.NOPE", ["unknown symbol"]));
  });

  test("unknown preset", () => {
    assert.throws(() => kconfigPreset("allyesconfig", x86), usageError("config", ["unknown preset", "allyesconfig"]));
    assert.throws(() => kconfigPreset("toString", x86), usageError("config", ["unknown preset"]));
  });
});

describe("resolution", () => {
  test("a symbol whose dependencies fail just resolves to n", () => {
    const cfg = kconfigPreset("defconfig", noDevmap);
    for (const s of ["ZONE_DEVICE", "NVDIMM_PFN", "NVDIMM_DAX", "FS_DAX", "FS_DAX_PMD", "DEVICE_MIGRATION", "DEV_DAX_PMEM"] as const) {
      assert.equal(cfg.value(s), "n", s);
    }
    // What does not need ZONE_DEVICE stays.
    assert.equal(cfg.value("LIBNVDIMM"), "m");
    assert.equal(cfg.value("DEV_DAX"), "m");
    assert.equal(cfg.value("MEMORY_HOTPLUG"), "y");
  });

  test("ZONE_DEVICE=n takes its dependents down with it", () => {
    const cfg = kconfigPreset("hmm", x86, { ZONE_DEVICE: "n" });
    for (const s of ["NVDIMM_PFN", "FS_DAX", "FS_DAX_PMD", "DEVICE_PRIVATE", "PCI_P2PDMA", "TEST_HMM", "DEVICE_MIGRATION"] as const) {
      assert.equal(cfg.value(s), "n", s);
    }
    assert.equal(cfg.value("MEMORY_HOTREMOVE"), "y");
    // FS_DAX no longer selects DAX; the .config's DAX=y still holds.
    assert.equal(cfg.value("DAX"), "y");
  });

  test("bare defaults: nothing without a default is switched on", () => {
    const cfg = resolveConfig(x86, {});
    for (const s of ["MEMORY_HOTPLUG", "ZONE_DEVICE", "TRANSPARENT_HUGEPAGE", "LIBNVDIMM", "DAX"] as const) {
      assert.equal(cfg.value(s), "n", s);
    }
    for (const s of ["SPARSEMEM_VMEMMAP", "COMPACTION", "MIGRATION", "ACPI", "ZONE_DMA"] as const) {
      assert.equal(cfg.value(s), "y", s);
    }
    // x86 selects ARCH_ENABLE_MEMORY_HOTREMOVE only if MEMORY_HOTPLUG; arm64 always.
    assert.equal(cfg.value("ARCH_ENABLE_MEMORY_HOTREMOVE"), "n");
    assert.equal(resolveConfig(arm64, {}).value("ARCH_ENABLE_MEMORY_HOTREMOVE"), "y");
  });

  test("DEVICE_PRIVATE=y selects GET_FREE_REGION", () => {
    const base = { MEMORY_HOTPLUG: "y", MEMORY_HOTREMOVE: "y", ZONE_DEVICE: "y" } as const;
    assert.equal(resolveConfig(x86, {}, { base }).value("GET_FREE_REGION"), "n");
    const cfg = resolveConfig(x86, { DEVICE_PRIVATE: "y" }, { base });
    assert.equal(cfg.value("GET_FREE_REGION"), "y");
    assert.ok(cfg.written.has("GET_FREE_REGION"));
  });

  test("TEST_HMM=m selects HMM_MIRROR and MMU_NOTIFIER (a bool selected by an m is y)", () => {
    const base = { MEMORY_HOTPLUG: "y", MEMORY_HOTREMOVE: "y", ZONE_DEVICE: "y", TRANSPARENT_HUGEPAGE: "y", DEVICE_PRIVATE: "y" } as const;
    const before = resolveConfig(x86, {}, { base });
    assert.equal(before.value("HMM_MIRROR"), "n");
    assert.equal(before.value("MMU_NOTIFIER"), "n");
    const cfg = resolveConfig(x86, { TEST_HMM: "m" }, { base });
    assert.equal(cfg.value("TEST_HMM"), "m");
    assert.equal(cfg.value("HMM_MIRROR"), "y");
    assert.equal(cfg.value("MMU_NOTIFIER"), "y");
    assert.ok(cfg.enabled("TEST_HMM"));
  });

  test("selects follow tristate rules: BLK_DEV_PMEM=m makes ND_PFN m, and y makes it y", () => {
    assert.equal(kconfigPreset("defconfig", x86).value("ND_PFN"), "m");
    const builtin = kconfigPreset("defconfig", x86, { LIBNVDIMM: "y", BLK_DEV_PMEM: "y" });
    assert.equal(builtin.value("ND_PFN"), "y");
    assert.equal(builtin.value("ND_BTT"), "y");
    assert.equal(kconfigPreset("defconfig", x86, { BTT: "n" }).value("ND_BTT"), "n");
  });

  test("DEV_DAX_HMEM_DEVICES needs DAX=y, not m", () => {
    assert.equal(kconfigPreset("defconfig", x86).value("DEV_DAX_HMEM_DEVICES"), "y");
    const cfg = kconfigPreset("defconfig", x86, { FS_DAX: "n", DAX: "m" });
    assert.equal(cfg.value("DEV_DAX_HMEM"), "m");
    assert.equal(cfg.value("DEV_DAX_HMEM_DEVICES"), "n");
  });

  test("booleans are accepted as values", () => {
    const cfg = kconfigPreset("defconfig", x86, { DEVICE_PRIVATE: true, PCI_P2PDMA: false });
    assert.equal(cfg.value("DEVICE_PRIVATE"), "y");
    assert.equal(cfg.value("PCI_P2PDMA"), "n");
  });
});

describe("architectures", () => {
  test("x86_64 has PUD-sized THP, arm64 does not", () => {
    assert.equal(kconfigPreset("defconfig", x86).value("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD"), "y");
    const a = kconfigPreset("defconfig", arm64);
    assert.equal(a.value("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD"), "n");
    assert.ok(!formatConfig(a).some((l) => l.includes("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD")));
    assert.equal(a.value("ZONE_DEVICE"), "y");
    assert.equal(a.value("X86_PMEM_LEGACY"), "n");
    assert.equal(a.value("HAVE_BOOTMEM_INFO_NODE"), "n");
  });

  test("ppc64 book3s: no ZONE_DMA/ZONE_DMA32, no memmap_on_memory, no ACPI, but ZONE_DEVICE", () => {
    const cfg = kconfigPreset("defconfig", ppc64);
    for (const s of ["ZONE_DMA", "ZONE_DMA32", "MHP_MEMMAP_ON_MEMORY", "ACPI", "ACPI_NFIT", "DEV_DAX_HMEM"] as const) {
      assert.equal(cfg.value(s), "n", s);
    }
    for (const s of ["ZONE_DEVICE", "NVDIMM_PFN", "FS_DAX_PMD", "HAVE_BOOTMEM_INFO_NODE", "NUMA"] as const) {
      assert.equal(cfg.value(s), "y", s);
    }
    assert.ok(!formatConfig(cfg).some((l) => /CONFIG_ZONE_DMA/.test(l)));
  });

  test("defconfig and hmm resolve on every profile", () => {
    for (const p of ARCH_PROFILES) {
      const cfg = kconfigPreset("hmm", p);
      assert.equal(cfg.value("ZONE_DEVICE"), "y", p.name);
      assert.equal(cfg.value("DEVICE_PRIVATE"), "y", p.name);
      assert.equal(cfg.value("TEST_HMM"), "m", p.name);
      assert.deepEqual(cfg.warnings, [], p.name);
    }
  });
});

describe("presets and formatting", () => {
  test("hmm differs from debian only in DEVICE_PRIVATE, TEST_HMM and PCI_P2PDMA", () => {
    const debian = formatConfig(kconfigPreset("debian-6.1-amd64", x86));
    const hmm = formatConfig(kconfigPreset("hmm", x86));
    assert.deepEqual(
      hmm.filter((l) => !debian.includes(l)),
      ["CONFIG_DEVICE_PRIVATE=y", "CONFIG_PCI_P2PDMA=y", "CONFIG_TEST_HMM=m"],
    );
    assert.deepEqual(
      debian.filter((l) => !hmm.includes(l)),
      ["# CONFIG_DEVICE_PRIVATE is not set", "# CONFIG_PCI_P2PDMA is not set"],
    );
  });

  test("formatConfig: sorted .config lines; hidden n symbols and invisible prompts have none", () => {
    const lines = formatConfig(kconfigPreset("debian-6.1-amd64", x86));
    const syms = lines.map((l) => /CONFIG_(\w+)/.exec(l)?.[1] ?? "");
    assert.deepEqual(syms, [...syms].sort());
    assert.ok(lines.includes("CONFIG_ZONE_DEVICE=y"));
    assert.ok(lines.includes("CONFIG_DEV_DAX=m"));
    assert.ok(lines.includes("# CONFIG_DEVICE_PRIVATE is not set"));
    assert.ok(lines.every((l) => /^(CONFIG_\w+=[ym]|# CONFIG_\w+ is not set)$/.test(l)), lines.join("\n"));
    // TEST_HMM's prompt is hidden while DEVICE_PRIVATE=n; FS_DAX_LIMITED is hidden and n.
    assert.ok(!syms.includes("TEST_HMM"));
    assert.ok(!syms.includes("FS_DAX_LIMITED"));
  });

  test("enabled() is true for y and m", () => {
    const cfg = kconfigPreset("debian-6.1-amd64", x86);
    assert.ok(cfg.enabled("ZONE_DEVICE"));
    assert.ok(cfg.enabled("DEV_DAX"));
    assert.ok(!cfg.enabled("DEVICE_PRIVATE"));
  });
});
