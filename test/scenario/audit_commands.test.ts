/**
 * The seed 002 audit steps (src/scenario/audit_commands.ts): they parse, run in a scenario beside the built-in
 * steps, print what the kernel did, and — as kernel paths — interleave with another thread's steps (here stepped
 * by hand: release_pages against `echo … > unbind`).
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import { VARIANTS } from "../../src/kernel/variant.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { auditCommands } from "../../src/scenario/audit_commands.ts";
import { BadArguments, builtinCommands, type CommandRegistry, type StepOutput } from "../../src/scenario/commands.ts";
import { loadScenario } from "../../src/scenario/load.ts";
import { failureLines } from "../../src/scenario/render.ts";
import { runScenario } from "../../src/scenario/runner.ts";
import { tokenize } from "../../src/scenario/tokenize.ts";
import { kinds, p2p, SHARED_DEV_PFN, sharedSection, Thread } from "../kernel/mm/audit_env.ts";

/** The built-ins include the audit commands (commands.ts registers auditCommands()). */
function registry(): CommandRegistry {
  return builtinCommands();
}

const ctx = { where: "test" };

/** Run one step on a kernel, as a scenario would. */
function sh(k: Kernel, reg: CommandRegistry, text: string): StepOutput {
  const inv = tokenize(text);
  const cmd = reg.get(inv.argv[0]!);
  assert.ok(cmd, inv.argv[0]);
  cmd.check(inv);
  return cmd.run(k, inv, ctx);
}

/** A step as a kernel path, for a hand-stepped thread. */
function thread(k: Kernel, reg: CommandRegistry, text: string): Thread<StepOutput> {
  const inv = tokenize(text);
  return new Thread(text, reg.get(inv.argv[0]!)!.path(k, inv, ctx));
}

function devdaxKernel(era: "5.4" | "6.1"): { k: Kernel; reg: CommandRegistry } {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"), VARIANTS[era === "5.4" ? "5.4" : "6.1"]!);
  const reg = registry();
  for (const s of ["ndctl create-namespace -f -e namespace0.0 --mode=devdax --align=2M", "process app", "mmap app /dev/dax0.0 64M", "access app dax0.0 --write"]) {
    assert.ok(sh(k, reg, s).rc === 0, s);
  }
  return { k, reg };
}

describe("audit steps: registry and arguments", () => {
  it("register beside the built-ins without a clash", () => {
    const names = auditCommands().map((c) => c.name);
    const reg = registry();
    for (const n of names) assert.ok(reg.get(n), n);
    assert.deepEqual(
      names,
      [
        "smaps_pmd_entry",
        "put_devmap_managed_page",
        "__put_page",
        "release_pages",
        "is_device_private_page",
        "pci_alloc_p2pmem",
        "is_pci_p2pdma_page",
        "pci_free_p2pmem",
        "anon_page",
        "migrate_vma_pages",
        "migrate_to_ram",
        "move_to_new_page",
        "uncharge_page",
        "add_to_kill",
        "soft_offline_page",
        "madvise_soft_offline",
        "memunmap_pages",
      ],
    );
  });

  it("refuse wrong arguments when the scenario is loaded", () => {
    const reg = registry();
    for (const bad of ["smaps_pmd_entry app", "soft_offline_page pfn", "release_pages", "migrate_vma_pages app 0x1000", "add_to_kill app 12:34", "uncharge_page app buf extra"]) {
      const inv = tokenize(bad);
      assert.throws(() => reg.get(inv.argv[0]!)!.check(inv), BadArguments, bad);
    }
  });
});

describe("audit steps on device-dax, in a scenario (6.1)", () => {
  it("smaps, gup + release_pages, add_to_kill, soft offline by sysfs and madvise; after unbind smaps finds nothing", () => {
    const file = join(tmpdir(), `seed002-audit-steps-${process.pid}.yaml`);
    const yaml = `machine: { preset: qemu-q35-3g-pmem1g }
variant: "6.1"
steps:
  - ndctl create-namespace -f -e namespace0.0 --mode=devdax --align=2M
  - process app
  - mmap app /dev/dax0.0 64M
  - access app dax0.0 --write
  - run: smaps_pmd_entry app dax0.0
    expect: { rc: 0, stdout: { contains: "pfn 0x101200 ZONE_DEVICE; Rss 2048 kB" }, violation: none }
  - gup app dax0.0 1
  - run: release_pages 0x101200
    expect: { stdout: "release_pages(0x101200): refcount 1", violation: none }
  - run: add_to_kill app dax0.0+4K
    expect: { rc: 0, stdout: { contains: "app: SIGBUS BUS_MCEERR_AR addr=0x7ffff3e00000 lsb=21" } }
  - run: soft_offline_page 0x101300
    expect: { rc: -5, violation: none }
  - run: echo dax0.0 > /sys/bus/dax/drivers/device_dax/unbind
    expect: { rc: 0, violation: none }
  - run: smaps_pmd_entry app dax0.0
    expect: { stdout: { contains: "no huge PMD" }, violation: none }
  - run: soft_offline_page 0x101300
    expect: { rc: -ENXIO, violation: none }
`;
    writeFileSync(file, yaml);
    try {
      const r = runScenario(loadScenario(file, registry()));
      assert.deepEqual(failureLines(r), []);
      assert.equal(r.ok, true);
    } finally {
      rmSync(file);
    }
  });

  it("madvise_soft_offline: -EIO, the GUP reference put back", () => {
    const { k, reg } = devdaxKernel("6.1");
    const r = sh(k, reg, "madvise_soft_offline app dax0.0");
    assert.equal(r.rc, -5);
    assert.match(r.stdout, /^madvise\(0x7ffff3e00000, MADV_SOFT_OFFLINE\) pfn 0x101200 = -EIO; put_page: refcount 1/);
  });
});

describe("audit steps interleave with the teardown", () => {
  it("6.1: release_pages stopped after is_zone_device_page(), `echo dax0.0 > unbind` run whole: use-after-free", () => {
    const { k, reg } = devdaxKernel("6.1");
    assert.equal(sh(k, reg, "gup app dax0.0 1").rc, 0);
    const rel = thread(k, reg, "release_pages 0x101200").runTo("release_pages: is_zone_device_page(page)");
    assert.equal(thread(k, reg, "echo dax0.0 > /sys/bus/dax/drivers/device_dax/unbind").run(), "done");
    rel.finish();
    assert.deepEqual(kinds(k).slice(0, 1), ["struct-page-use-after-free"]);
  });

  it("5.4: the same against memunmap_pages (put_page per page): it waits; release_pages leaks the pgmap reference, so it waits for ever", () => {
    const { k, reg } = devdaxKernel("5.4");
    assert.equal(sh(k, reg, "gup app dax0.0 1").rc, 0);
    const rel = thread(k, reg, "release_pages 0x101200").runTo("release_pages: is_zone_device_page(page)");
    const m = thread(k, reg, "memunmap_pages dax0.0");
    assert.equal(m.run(), "blocked");
    assert.match(rel.finish().stdout, /page->pgmap overwritten/);
    assert.equal(m.run(), "blocked");
    assert.ok(k.log.some((l) => l.startsWith("BUG: Bad page state")));
    assert.deepEqual(kinds(k), []);
  });
});

describe("audit steps for HMM, p2pdma and a shared section", () => {
  it("device-private: anon_page, migrate_vma_pages, is_device_private_page, migrate_to_ram, back, uncharge_page, memunmap_pages", () => {
    for (const era of ["5.4", "6.1"] as const) {
      const { k } = p2p(era); // an HMM-kconfig kernel; its p2p0 pgmap is not used here
      const reg = registry();
      const out = (s: string): StepOutput => sh(k, reg, s);
      assert.equal(out("memremap dmirror0 private 0x950000000 256M").rc, 0);
      assert.equal(out("process app").rc, 0);
      assert.match(out("anon_page app 0x7f0000000000").stdout, /^do_anonymous_page\(0x7f0000000000\): pfn 0x/);
      assert.match(out("migrate_vma_pages app 0x7f0000000000 dmirror0").stdout, /^migrate_vma_pages: migrated, 0x950000 mapped/);
      assert.equal(out("is_device_private_page 0x950000").stdout, "is_device_private_page(0x950000) = true\n");
      assert.match(out("migrate_to_ram app 0x7f0000000000").stdout, /^migrate_to_ram: migrated/);
      assert.match(out("migrate_vma_pages app 0x7f0000000000 dmirror0").stdout, /migrated, 0x950000 mapped/);
      assert.match(out("uncharge_page app 0x7f0000000000").stdout, era === "5.4" ? /uncharge_page; __put_devmap_managed_page: refcount 1: ->page_free/ : /uncharge_folio; free_zone_device_page: ->page_free/);
      assert.equal(out("memunmap_pages dmirror0").rc, 0);
      assert.deepEqual(kinds(k), [], era);
    }
  });

  it("p2pdma: pci_alloc_p2pmem, is_pci_p2pdma_page, pci_free_p2pmem", () => {
    const { k } = p2p("6.1");
    const reg = registry();
    assert.equal(sh(k, reg, "pci_alloc_p2pmem p2p0").stdout, "pci_alloc_p2pmem(p2p0) = pfn 0x940000\n");
    assert.equal(sh(k, reg, "is_pci_p2pdma_page 0x940000").stdout, "is_pci_p2pdma_page(0x940000) = true\n");
    assert.equal(sh(k, reg, "pci_free_p2pmem 0x940000").rc, 0);
    assert.equal(sh(k, reg, "pci_free_p2pmem 0x940000").rc, 1);
  });

  it("soft_offline_page on a device pfn inside an online section: -EIO in every era; 5.4 after teardown reads a freed page", () => {
    for (const era of ["5.4", "6.1", "zone-device-subsection-map"] as const) {
      const { k } = sharedSection(era);
      const reg = registry();
      const pfn = `0x${SHARED_DEV_PFN.toString(16)}`;
      assert.equal(sh(k, reg, `soft_offline_page ${pfn}`).rc, -5);
      assert.equal(sh(k, reg, "memunmap_pages dev0").rc, 0);
      assert.equal(sh(k, reg, `soft_offline_page ${pfn}`).rc, -5);
      assert.deepEqual(kinds(k), era === "5.4" ? ["struct-page-use-after-free"] : [], era);
    }
  });
});
