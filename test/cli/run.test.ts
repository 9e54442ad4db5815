/**
 * `zonedev run` as a user runs it: real processes, stdout/stderr/exit status.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { expectUsageError, run } from "../support/cli.ts";

const tmp = mkdtempSync(join(tmpdir(), "zonedev-run-"));
function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

const PRESET = "machine: { preset: qemu-q35-3g-pmem1g }\n";

describe("zonedev run scenario.yaml", () => {
  it("runs scenarios/ram-hotplug.yaml: a transcript, all expectations hold, exit 0", () => {
    const r = run("run", "scenarios/ram-hotplug.yaml");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    assert.match(r.out, /^# scenario: RAM hot-plug, online_movable, offline, remove$/m);
    assert.match(r.out, /^\$ echo online > \/sys\/devices\/system\/memory\/memory64\/state\necho: write error: Invalid argument\n\[rc=1\]\nexpect: ok \(rc -EINVAL, stdout\)$/m);
    assert.match(r.out, /^# 11 steps; all 11 expectations hold\n$/m);
  });

  it("a failing expectation: the whole transcript, which one failed, exit 1", () => {
    const f = file("fail.yaml", `${PRESET}steps:\n  - echo hi\n  - run: remove_memory 0x200000000 128M\n    expect: { rc: -EBUSY }\n  - cat /sys/devices/system/memory/memory0/state\n`);
    const r = run("run", f);
    assert.equal(r.code, 1);
    assert.match(r.out, /^expect: FAILED: rc: expected -EBUSY, got no error \(rc 0\)$/m);
    assert.match(r.out, /^\$ cat \/sys\/devices\/system\/memory\/memory0\/state\nonline$/m, "later steps still run");
    assert.equal(r.err, `zonedev: expectation failed: ${f}:4: step 2 \`remove_memory 0x200000000 128M\`: rc: expected -EBUSY, got no error (rc 0)\n`);
  });

  it("--show adds the state after every step", () => {
    const r = run("run", "scenarios/ram-hotplug.yaml", "--show", "blocks,sysfs");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^== \/sys\/devices\/system\/memory ==\nblock_size_bytes=8000000$/m);
    assert.match(r.out, /^\/sys\/devices\/system\/memory\/memory64\/state = online$/m);
  });

  it("--json: one JSON document with every step", () => {
    const r = run("run", "scenarios/fsdax-pgmap-altmap.yaml", "--json");
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as {
      ok: boolean;
      machine: string;
      steps: Array<{ command: string; rc: number; verdict: { ok: boolean }; state: { pgmaps?: Array<{ device: string; ranges: Array<{ firstDevicePfn: number }> }> } }>;
    };
    assert.equal(j.ok, true);
    assert.equal(j.machine, "qemu-q35-3g-pmem1g");
    assert.deepEqual(j.steps.map((s) => s.rc), [0, 0, 0]);
    const pfn = j.steps[1]!.state.pgmaps!.find((p) => p.device === "pfn0.0");
    assert.equal(pfn?.ranges[0]?.firstDevicePfn, 0x101200, "data at 0x101200000, as the real fsdax map=dev namespace");
  });

  it("is deterministic: two runs print the same bytes", () => {
    const a = run("run", "scenarios/device-private-teardown.yaml", "--show", "pgmaps,zoneinfo,iomem,log", "--json");
    const b = run("run", "scenarios/device-private-teardown.yaml", "--show", "pgmaps,zoneinfo,iomem,log", "--json");
    assert.equal(a.code, 0, a.err);
    assert.equal(a.out, b.out);
  });

  it("a hang is a reported outcome, not a crash", () => {
    const r = run("run", "scenarios/device-private-hang.yaml");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^hang: waiting in memunmap_pages: wait_for_completion\(&pgmap->done\) for pgmap 1 \(dmirror0\) references held by allocated page 0xfcf0000\n\[rc=-1 hang\]$/m);
  });
});

describe("zonedev run --step", () => {
  it("one-offs on the default machine", () => {
    const r = run("run", "--step", "cat /sys/devices/system/memory/memory5/state", "--step", "echo offline > /sys/devices/system/memory/memory5/state", "--step", "cat /sys/devices/system/memory/memory5/state");
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      [
        "# scenario: command line",
        "# machine: qemu-q35-3g-pmem1g; variant 6.1",
        "$ cat /sys/devices/system/memory/memory5/state",
        "online",
        "$ echo offline > /sys/devices/system/memory/memory5/state",
        "$ cat /sys/devices/system/memory/memory5/state",
        "offline",
        "# 3 steps, no expectations",
        "",
      ].join("\n"),
    );
  });

  it("takes the machine flags of `zonedev layout`", () => {
    const r = run("run", "--preset", "arm64-virt-4g", "--step", "cat /sys/devices/system/memory/block_size_bytes");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^# machine: arm64-virt-4g; variant 6\.1\n\$ cat \/sys\/devices\/system\/memory\/block_size_bytes\n8000000$/m);
    const m = file("m.yaml", "e820:\n  - { start: 0, size: 2G, type: usable }\n");
    const r2 = run("run", "--machine", m, "--append", "memhp_default_state=online", "--step", "add_memory 0 0x100000000 128M", "--step", "cat /sys/devices/system/memory/memory32/state");
    assert.equal(r2.code, 0, r2.err);
    assert.match(r2.out, /memory32\/state\nonline\n/);
  });

  it("--variant picks the kernel variant", () => {
    const r = run("run", "--variant", "5.18", "--step", "echo x");
    assert.match(r.out, /; variant 5\.18$/m);
  });

  it("a step's errors as the tool prints them, the rc shown", () => {
    const r = run("run", "--step", "echo online > /sys/devices/system/memory/memory3/state", "--step", "cat /sys/devices/system/memory/memory99/online");
    assert.equal(r.code, 0, "no expectations: nothing failed");
    assert.match(r.out, /^echo: write error: Invalid argument\n\[rc=1\]\n/m);
    assert.match(r.out, /^cat: can't open '\/sys\/devices\/system\/memory\/memory99\/online': No such file or directory\n\[rc=1\]\n/m);
  });
});

describe("zonedev run: bad input is one line and exit 2", () => {
  it("bad YAML", () => {
    const f = file("bad.yaml", `${PRESET}steps:\n  - a: b: c\n`);
    expectUsageError(run("run", f), new RegExp(`^zonedev: ${f}:3: malformed YAML: `));
  });

  it("an unknown step command", () => {
    const f = file("unknown.yaml", `${PRESET}steps:\n  - echo x\n  - frobnicate\n`);
    expectUsageError(run("run", f), new RegExp(`^zonedev: ${f}:4: steps\\[1\\]: unknown command 'frobnicate' \\(known: echo, cat, `));
  });

  it("a bad expectation", () => {
    const f = file("expect.yaml", `${PRESET}steps:\n  - run: echo x\n    expect: { rc: EBUSY }\n`);
    expectUsageError(run("run", f), new RegExp(`^zonedev: ${f}:4: steps\\[0\\]\\.expect\\.rc: an exit status \\(integer\\) or an errno name`));
  });

  it("an unknown machine preset", () => {
    const f = file("preset.yaml", "machine: { preset: qemu-nope }\nsteps: [echo x]\n");
    expectUsageError(run("run", f), new RegExp(`^zonedev: ${f}:1: machine\\.preset: unknown preset 'qemu-nope'`));
  });

  it("threads: must be a mapping of step lists", () => {
    const f = file("threads.yaml", `${PRESET}steps: [echo x]\nthreads: []\n`);
    expectUsageError(run("run", f), new RegExp(`^zonedev: ${f}:3: threads: give a mapping of thread names to step lists$`));
  });

  it("a missing scenario file", () => {
    expectUsageError(run("run", join(tmp, "nope.yaml")), /^zonedev: .*nope\.yaml: cannot read: ENOENT$/);
  });

  it("a file and --step, a file and machine flags, neither", () => {
    expectUsageError(run("run", "scenarios/ram-hotplug.yaml", "--step", "echo x"), /^zonedev: --step: give a scenario file or --step commands, not both$/);
    expectUsageError(run("run", "scenarios/ram-hotplug.yaml", "--preset", "x86-64t"), /^zonedev: --preset: a scenario file names its machine/);
    expectUsageError(run("run"), /^zonedev: run: give a scenario file or at least one --step 'COMMAND'$/);
  });

  it("bad --step, --show, --variant, machine flags", () => {
    expectUsageError(run("run", "--step", "echo 1", "--step", "nope"), /^zonedev: --step 2: unknown command 'nope'/);
    expectUsageError(run("run", "--step", "add_memory 0"), /^zonedev: --step 1: add_memory: expected 3 arguments/);
    expectUsageError(run("run", "--step", "echo x", "--show", "iomem,everything"), /^zonedev: --show: unknown part 'everything' \(known: iomem, zoneinfo, sysfs, blocks, pgmaps, log\)$/);
    expectUsageError(run("run", "--step", "echo x", "--variant", "9.9"), /^zonedev: --variant: unknown variant '9\.9'/);
    expectUsageError(run("run", "--step", "echo x", "--preset", "nope"), /^zonedev: --preset: unknown preset 'nope'/);
  });
});
