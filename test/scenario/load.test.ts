/**
 * Loading scenarios: the machine forms, steps and expectations, and every kind of bad input reported as one
 * UsageError `file:line: field: reason` before anything boots.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../src/errors.ts";
import { builtinCommands } from "../../src/scenario/commands.ts";
import { loadScenario, stepsFromCommands } from "../../src/scenario/load.ts";
import { loadCapture } from "../support/capture.ts";

const registry = builtinCommands();
const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "zonedev-scenario-"));

const load = (text: string, file = "s.yaml") => loadScenario(file, registry, text);

function loadError(text: string): string {
  try {
    load(text);
  } catch (e) {
    assert.ok(e instanceof UsageError, `a UsageError, got ${String(e)}`);
    return e.message;
  }
  assert.fail("expected a UsageError");
}

const PRESET = "machine: { preset: qemu-q35-3g-pmem1g }\n";

describe("loading a scenario", () => {
  it("steps as strings and as { run, expect, show }, with their lines", () => {
    const s = load(`${PRESET}steps:\n  - add_memory 0 0x200000000 128M\n  - run: remove_memory 0x200000000 128M\n    expect: { rc: -EBUSY, stdout: { contains: x }, violation: none }\n    show: [pgmaps]\n`);
    assert.equal(s.name, "s.yaml");
    assert.equal(s.machine.name, "qemu-q35-3g-pmem1g");
    assert.equal(s.variant, null);
    assert.equal(s.steps.length, 2);
    assert.deepEqual(
      s.steps.map((x) => [x.where, x.command, x.cmd.name]),
      [
        ["s.yaml:3", "add_memory 0 0x200000000 128M", "add_memory"],
        ["s.yaml:4", "remove_memory 0x200000000 128M", "remove_memory"],
      ],
    );
    assert.equal(s.steps[0]!.expect, null);
    assert.deepEqual(s.steps[1]!.expect, { rc: { errno: -16, name: "-EBUSY" }, stdout: { contains: "x" }, violation: "none" });
    assert.deepEqual(s.steps[1]!.show, ["pgmaps"]);
  });

  it("name, description and variant", () => {
    const s = load(`name: n\ndescription: d\nvariant: "5.18"\n${PRESET}steps: [cat /sys/devices/system/memory/block_size_bytes]\n`);
    assert.equal(s.name, "n");
    assert.equal(s.description, "d");
    assert.equal(s.variant?.name, "5.18");
  });

  it("machine: preset with append", () => {
    const s = load("machine: { preset: qemu-q35-3g-pmem1g, append: memhp_default_state=online }\nsteps: [echo x]\n");
    assert.equal(s.machine.commandLine, "memhp_default_state=online");
  });

  it("machine: file, relative to the scenario file, with append", () => {
    const s = loadScenario(join(FIXTURES, "uses-small-x86.yaml"), registry);
    assert.equal(s.machine.name, "small-x86");
    assert.equal(s.machine.commandLine, "memhp_default_state=online_movable");
  });

  it("machine: dmesg, relative to the scenario file", () => {
    const dmesg = loadCapture("e820-raw").sections.get("final:dmesg-full")!.join("\n");
    writeFileSync(join(tmp, "boot.log"), dmesg);
    const file = join(tmp, "d.yaml");
    writeFileSync(file, "machine: { dmesg: boot.log, append: 'memmap=512M!4G' }\nsteps: [echo x]\n");
    const s = loadScenario(file, registry);
    assert.equal(s.machine.commandLine, "memmap=512M!4G");
    assert.equal(s.machine.e820?.length, 10);
  });

  it("machine: an inline machine spec", () => {
    const s = load("machine:\n  name: tiny\n  e820:\n    - { start: 0, size: 1G, type: usable }\nsteps: [echo x]\n");
    assert.equal(s.machine.name, "tiny");
  });

  it("--step commands", () => {
    const steps = stepsFromCommands(["echo 1", "cat /proc/iomem"], registry);
    assert.deepEqual(steps.map((s) => s.where), ["--step 1", "--step 2"]);
    assert.throws(() => stepsFromCommands(["echo 1", "nope"], registry), /^UsageError: --step 2: unknown command 'nope'/);
    assert.throws(() => stepsFromCommands([""], registry), /--step 1: empty command/);
  });
});

describe("bad scenarios: one line, file:line: field: reason", () => {
  it("malformed YAML", () => {
    assert.match(loadError(`${PRESET}steps:\n  - a: b: c\n`), /^s\.yaml:3: malformed YAML: /);
    assert.match(loadError(`${PRESET}steps:\n  - [oops\n`), /^s\.yaml:\d+: malformed YAML: /);
  });

  it("not a mapping, missing machine or steps, empty steps", () => {
    assert.equal(loadError("- a\n"), "s.yaml:1: a scenario is a mapping with machine: and steps: (docs/scenarios.md)");
    assert.equal(loadError("steps: [echo x]\n"), "s.yaml:1: machine: required");
    assert.equal(loadError(PRESET), "s.yaml:1: steps: required (or threads:)");
    assert.equal(loadError(`${PRESET}steps: []\n`), "s.yaml:2: steps: give a list of at least one step");
  });

  it("an unknown top-level field, on its own line", () => {
    assert.equal(loadError(`${PRESET}steps: [echo x]\ncolour: red\n`), "s.yaml:3: colour: unknown field");
  });

  it("threads: a mapping of names to step lists; explore: needs threads", () => {
    assert.equal(loadError(`${PRESET}steps: [echo x]\nthreads:\n  - steps: [echo y]\n`), "s.yaml:3: threads: give a mapping of thread names to step lists");
    assert.equal(loadError(`${PRESET}threads:\n  a: []\n`), "s.yaml:3: threads.a: give a list of at least one step");
    assert.match(loadError(`${PRESET}threads:\n  a: [frobnicate]\n`), /^s\.yaml:3: threads\.a\[0\]: unknown command 'frobnicate'/);
    assert.match(loadError(`${PRESET}threads:\n  a: [{ run: echo x, expect: { rc: 0 } }]\n`), /^s\.yaml:3: threads\.a\[0\]\.expect: unknown field/);
    assert.equal(loadError(`${PRESET}steps: [echo x]\nexplore: { expect: hang }\n`), "s.yaml:3: explore: needs threads: to explore");
    assert.match(loadError(`${PRESET}threads:\n  a: [echo x]\nexplore: { expect: sometimes }\n`), /^s\.yaml:4: explore\.expect: /);
  });

  it("an unknown step command names the step", () => {
    assert.equal(
      loadError(`${PRESET}steps:\n  - echo x\n  - frobnicate 1 2\n`),
      "s.yaml:4: steps[1]: unknown command 'frobnicate' (known: echo, cat, add_memory, remove_memory, memremap, memunmap, zone_device_page_init, get_page, put_page, ndctl, daxctl, process, mmap, access, gup, unpin, odirect_read, munmap, pagetable, smaps, exit, mkfs.xfs, mkfs.ext4, mount, umount, xfs_io, truncate, rm, sysctl, signals, smaps_pmd_entry, put_devmap_managed_page, __put_page, release_pages, is_device_private_page, pci_alloc_p2pmem, is_pci_p2pdma_page, pci_free_p2pmem, anon_page, migrate_vma_pages, migrate_to_ram, move_to_new_page, uncharge_page, add_to_kill, soft_offline_page, madvise_soft_offline, memunmap_pages)",
    );
    assert.match(loadError(`${PRESET}steps:\n  - echo x\n  - run: frobnicate\n    expect: { rc: 0 }\n`), /^s\.yaml:4: steps\[1\]\.run: unknown command 'frobnicate'/);
  });

  it("bad arguments and shell syntax name the step and the command's usage", () => {
    assert.equal(
      loadError(`${PRESET}steps:\n  - add_memory 0 0x200000000\n`),
      "s.yaml:3: steps[0]: add_memory: expected 3 arguments (NID, START, SIZE), got 2 (usage: add_memory NID START SIZE)",
    );
    assert.match(loadError(`${PRESET}steps:\n  - cat /sys/a | head\n`), /^s\.yaml:3: steps\[0\]: '\|': steps are single commands/);
    assert.equal(loadError(`${PRESET}steps:\n  - 42\n`), "s.yaml:3: steps[0]: a step is a command string or { run: COMMAND, expect: {...} }");
    assert.equal(loadError(`${PRESET}steps:\n  - "  "\n`), "s.yaml:3: steps[0]: empty command");
  });

  it("bad expectations: unknown errno, unknown field, wrong type, unknown violation kind, empty", () => {
    assert.match(loadError(`${PRESET}steps:\n  - run: echo x\n    expect:\n      rc: -EWHAT\n`), /^s\.yaml:5: steps\[0\]\.expect\.rc: an exit status \(integer\) or an errno name \(-EPERM, /);
    assert.equal(loadError(`${PRESET}steps:\n  - run: echo x\n    expect: { rc: 0, stdot: x }\n`), "s.yaml:4: steps[0].expect.stdot: unknown field");
    assert.equal(
      loadError(`${PRESET}steps:\n  - run: echo x\n    expect:\n      stdout: [a]\n`),
      "s.yaml:5: steps[0].expect.stdout: a string (the exact output) or { contains: TEXT }",
    );
    assert.match(loadError(`${PRESET}steps:\n  - run: echo x\n    expect:\n      violation: oops\n`), /^s\.yaml:5: steps\[0\]\.expect\.violation: Invalid option: expected one of "none"\|/);
    assert.equal(loadError(`${PRESET}steps:\n  - run: echo x\n    expect: {}\n`), "s.yaml:4: steps[0].expect: give at least one of rc, stdout, violation");
    assert.match(loadError(`${PRESET}steps:\n  - run: echo x\n    show: [everything]\n`), /^s\.yaml:4: steps\[0\]\.show\[0\]: Invalid option/);
    assert.equal(loadError(`${PRESET}steps:\n  - run: echo x\n    expct: { rc: 0 }\n`), "s.yaml:4: steps[0].expct: unknown field");
  });

  it("an unknown machine preset, arch or variant", () => {
    assert.match(loadError("machine:\n  preset: nosuch\nsteps: [echo x]\n"), /^s\.yaml:2: machine\.preset: unknown preset 'nosuch' \(known: qemu-q35-3g-pmem1g, /);
    assert.match(loadError("machine: { dmesg: x.log, arch: vax }\nsteps: [echo x]\n"), /^s\.yaml:1: machine\.arch: unknown arch 'vax'/);
    assert.match(loadError(`${PRESET}variant: "9.9"\nsteps: [echo x]\n`), /^s\.yaml:2: variant: unknown variant '9\.9' \(known: 6\.1, /);
  });

  it("machine sources: more than one, unreadable files, unknown fields, not a mapping", () => {
    assert.equal(loadError("machine: { preset: a, file: b }\nsteps: [echo x]\n"), "s.yaml:1: machine: give one machine source, not preset and file");
    assert.match(loadError("machine: { file: nope.yaml }\nsteps: [echo x]\n"), /^s\.yaml:1: machine\.file: cannot read nope\.yaml: ENOENT$/);
    assert.match(loadError("machine: { dmesg: nope.log }\nsteps: [echo x]\n"), /^s\.yaml:1: machine\.dmesg: cannot read nope\.log: ENOENT$/);
    assert.equal(loadError("machine: { preset: qemu-q35-3g-pmem1g, arch: arm64 }\nsteps: [echo x]\n"), "s.yaml:1: machine.arch: unknown field");
    assert.match(loadError("machine: qemu\nsteps: [echo x]\n"), /^s\.yaml:1: machine: give \{ preset: NAME \}/);
  });

  it("an inline machine's errors name machine.<field> at its line", () => {
    assert.match(
      loadError("machine:\n  e820:\n    - { start: 0, size: 1G, type: usable }\n    - { start: 0x40000000, size: 1G, type: bogus }\nsteps: [echo x]\n"),
      /^s\.yaml:4: machine\.e820\[1\]\.type: unknown e820 type 'bogus'/,
    );
    assert.equal(loadError("machine:\n  arch: arm64-4k-48\nsteps: [echo x]\n"), "s.yaml:1: machine.memory: an arm64 machine needs memory ranges");
    assert.equal(loadError("machine:\n  e820: []\n  colour: red\nsteps: [echo x]\n"), "s.yaml:3: machine.colour: unknown field");
  });

  it("errors inside a machine spec file name that file and line", () => {
    writeFileSync(join(tmp, "bad-machine.yaml"), "e820:\n  - { start: 0, size: 1G, type: nonsense }\n");
    const file = join(tmp, "uses-bad.yaml");
    writeFileSync(file, "machine: { file: bad-machine.yaml }\nsteps: [echo x]\n");
    assert.throws(() => loadScenario(file, registry), (e: unknown) => e instanceof UsageError && e.message.startsWith(`${join(tmp, "bad-machine.yaml")}:2: e820[0].type: unknown e820 type`));
  });

  it("an unreadable scenario file", () => {
    assert.throws(() => loadScenario(join(tmp, "missing.yaml"), registry), /missing\.yaml: cannot read: ENOENT/);
  });
});
