/**
 * Legacy pmem whose size or placement is odd (memmap=513M!0x108000000, 1G!0x100100000, …): ndctl's own refusal
 * of a size that is no multiple of the region's 16 MiB alignment (an err(): counted, prefixed with the command
 * name, and no "failed to reconfigure" summary after it), and a BTT's first attach ("No existing arenas").
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel, type MachineSpec } from "../../../../src/kernel/boot.ts";
import { createNamespace, destroyNamespace } from "../../../../src/kernel/drivers/nvdimm/ndctl.ts";
import { EINVAL } from "../../../../src/kernel/errno.ts";
import type { Kernel } from "../../../../src/kernel/kernel.ts";
import { machinePreset } from "../../../../src/machine/presets.ts";
import { q35Numa4g } from "../../../support/q35.ts";

function withMemmap(memmap: string): MachineSpec {
  const base = machinePreset("qemu-q35-3g-pmem1g-numa");
  return { ...base, commandLine: base.commandLine.replace(/memmap=\S+/, `memmap=${memmap}`) };
}

const ndLog = (k: Kernel) => k.log.filter((l) => /^nd_pmem[: ]/.test(l));

describe("ndctl err(): counted errors silence the summary line", () => {
  it("a 513 MiB region: every reconfiguration refused by ndctl itself, nothing written to sysfs", () => {
    const k = bootKernel(withMemmap("513M!0x108000000"));
    for (const mode of ["fsdax", "devdax", "raw"] as const) {
      const r = createNamespace(k, { namespace: "namespace0.0", mode, force: true });
      assert.equal(r.rc, -EINVAL, mode);
      assert.deepEqual(r.stderr, ["  Error: create namespace: region0: align setting is 0x1000000 size 0x20100000 is misaligned"], mode);
      assert.equal(r.trace.filter((t) => t.startsWith("write")).length, 0, `${mode}: refused before any write`);
    }
  });

  it("the refusal after a failed enable still prints the summary (error(), not err())", () => {
    const k = bootKernel(q35Numa4g("1G!0x100100000"));
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "fsdax", map: "dev", force: true });
    assert.equal(r.rc < 0, true);
    assert.equal(r.stderr.at(-1), "failed to reconfigure namespace: No such device or address");
  });

  it("destroy-namespace's errors name their command", () => {
    const k = bootKernel(withMemmap("1G!4G"));
    const r = destroyNamespace(k, { namespace: "namespace0.0" });
    assert.equal(r.stderr.some((l) => l.startsWith("  Error: create namespace")), false);
  });
});

describe("sector mode: btt_init finds no arena and lays one out", () => {
  it("logs 'No existing arenas' against the btt device once per attach", () => {
    const k = bootKernel(withMemmap("1G!4G"));
    const before = ndLog(k).length;
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "sector", force: true });
    assert.equal(r.rc, 0, r.stderr.join("\n"));
    assert.deepEqual(
      ndLog(k)
        .slice(before)
        .filter((l) => l.includes("arenas")),
      ["nd_pmem btt0.0: No existing arenas"],
    );
  });

  it("works on a namespace whose start is not 2 MiB aligned (no pages, no alignment rule)", () => {
    const k = bootKernel(q35Numa4g("1G!0x100100000"));
    assert.ok(ndLog(k).includes("nd_pmem namespace0.0: [mem 0x100100000-0x1400fffff flags 0x200] misaligned, unable to map"));
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "sector", force: true });
    assert.equal(r.rc, 0, r.stderr.join("\n"));
    assert.equal(r.out?.mode, "sector");
  });
});
