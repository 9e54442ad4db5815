/**
 * Running scenarios: per-step results, expectation verdicts, state after a step, determinism.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.ts";
import type { Violation } from "../../src/kernel/sanitizer.ts";
import { builtinCommands } from "../../src/scenario/commands.ts";
import { loadScenario } from "../../src/scenario/load.ts";
import { renderRunJson, renderRunText } from "../../src/scenario/render.ts";
import { checkExpect, runScenario } from "../../src/scenario/runner.ts";

const registry = builtinCommands();
const PRESET = "machine: { preset: qemu-q35-3g-pmem1g }\n";
const run = (text: string, show: Parameters<typeof runScenario>[1] = {}) => runScenario(loadScenario("s.yaml", registry, text), show);

const HOTPLUG = `${PRESET}steps:
  - add_memory 0 0x200000000 256M
  - run: echo online_movable > /sys/devices/system/memory/memory64/state
    expect: { rc: 0, violation: none }
  - run: echo online > /sys/devices/system/memory/memory64/state
    expect: { rc: -EINVAL, stdout: "echo: write error: Invalid argument" }
  - run: remove_memory 0x200000000 256M
    expect: { rc: -EBUSY }
`;

describe("runScenario", () => {
  it("records each step's command, output, rc and errno, and the verdicts", () => {
    const r = run(HOTPLUG);
    assert.equal(r.ok, true);
    assert.deepEqual(r.expectations, { checked: 3, failed: 0 });
    assert.equal(r.machine, "qemu-q35-3g-pmem1g");
    assert.equal(r.variant, "6.1");
    assert.deepEqual(
      r.steps.map((s) => [s.step, s.where, s.rc, s.errno, s.verdict?.ok ?? null]),
      [
        [1, "s.yaml:3", 0, null, null],
        [2, "s.yaml:4", 0, null, true],
        [3, "s.yaml:6", 1, "-EINVAL", true],
        [4, "s.yaml:8", -16, "-EBUSY", true],
      ],
    );
    assert.deepEqual(r.steps[2]!.verdict, { ok: true, checked: ["rc -EINVAL", "stdout"], failures: [] });
  });

  it("a failed expectation says what was expected and what came", () => {
    const r = run(`${PRESET}steps:
  - run: remove_memory 0x200000000 256M
    expect: { rc: -EBUSY }
  - run: cat /sys/devices/system/memory/memory5/state
    expect: { rc: 1, stdout: offline }
  - run: cat /sys/devices/system/memory/memory5/state
    expect: { stdout: { contains: off } }
`);
    assert.equal(r.ok, false);
    assert.deepEqual(r.expectations, { checked: 3, failed: 3 });
    assert.deepEqual(r.steps[0]!.verdict?.failures, ["rc: expected -EBUSY, got no error (rc 0)"]);
    assert.deepEqual(r.steps[1]!.verdict?.failures, ["rc: expected 1, got 0", 'stdout: expected "offline", got "online"']);
    assert.deepEqual(r.steps[2]!.verdict?.failures, ['stdout: expected it to contain "off", got "online"']);
    const text = renderRunText(r);
    assert.match(text, /^expect: FAILED: rc: expected -EBUSY, got no error \(rc 0\)$/m);
    assert.match(text, /^# 3 steps; 3 of 3 expectations FAILED:\n# {3}s\.yaml:3: step 1 `remove_memory 0x200000000 256M`: rc: expected -EBUSY/m);
  });

  it("violation: none ignores kernel WARNs; a kind needs one of that kind", () => {
    const warn: Violation = { kind: "warning", at: "f", detail: "d" };
    const uaf: Violation = { kind: "struct-page-use-after-free", at: "g", detail: "d", pfn: 1 };
    const out = { stdout: "", rc: 0 };
    assert.equal(checkExpect({ violation: "none" }, out, [warn]).ok, true);
    assert.deepEqual(checkExpect({ violation: "none" }, out, [warn, uaf]).failures, ["violation: expected none, got struct-page-use-after-free in g"]);
    assert.equal(checkExpect({ violation: "warning" }, out, [warn]).ok, true);
    assert.equal(checkExpect({ violation: "struct-page-use-after-free" }, out, [uaf]).ok, true);
    assert.deepEqual(checkExpect({ violation: "dead-pgmap-use" }, out, []).failures, ["violation: expected dead-pgmap-use, got none"]);
  });

  it("an errno expectation does not match a hang's rc -1 (which is -EPERM's value)", () => {
    const v = checkExpect({ rc: { errno: -1, name: "-EPERM" } }, { stdout: "", rc: -1, hang: { at: "a", holder: "b" } }, []);
    assert.deepEqual(v.failures, ["rc: expected -EPERM, got a hang (rc -1)"]);
    assert.equal(checkExpect({ rc: -1 }, { stdout: "", rc: -1, hang: { at: "a", holder: "b" } }, []).ok, true);
  });

  it("violations and kernel log lines a step caused are recorded on that step", () => {
    const r = run(`${PRESET}steps:\n  - memremap x fsdax 0x0 1G\n  - get_page 0x99999999\n`);
    assert.equal(r.steps[0]!.rc, -6);
    assert.deepEqual(r.steps[0]!.log, ["WARNING: pagemap_range: attempted on mixed region 0x0-0x3fffffff"]);
    assert.deepEqual(r.steps[0]!.violations.map((v) => v.kind), ["warning"]);
    assert.ok(r.steps[1]!.violations.some((v) => v.kind === "no-memmap-access"));
    assert.match(renderRunText(r), /^WARNING: pagemap_range: attempted on mixed region 0x0-0x3fffffff\n\$ get_page/m);
  });

  it("state after a step: --show for every step, a step's show: for that step", () => {
    const r = run(`${PRESET}steps:\n  - add_memory 0 0x200000000 128M\n  - run: echo online > /sys/devices/system/memory/memory64/state\n    show: [iomem]\n`, { show: ["blocks"] });
    assert.deepEqual(r.steps.map((s) => s.state.map((p) => p.part)), [["blocks"], ["iomem", "blocks"]]);
    assert.match(r.steps[0]!.state[0]!.text, /^memory64 phys_index=00000040 state=offline /m);
    assert.match(r.steps[1]!.state[0]!.text, /^ {2}200000000-207ffffff : System RAM$/m);
  });

  it("sysfs state: `path = value` with the kernel's absolute paths", () => {
    const r = run(`${PRESET}steps:\n  - add_memory 0 0x200000000 128M\n`, { show: ["sysfs"] });
    const text = r.steps[0]!.state[0]!.text;
    assert.match(text, /^\/sys\/devices\/system\/memory\/block_size_bytes = 8000000$/m);
    assert.match(text, /^\/sys\/devices\/system\/memory\/memory64\/state = offline$/m);
    assert.equal((r.steps[0]!.state[0]!.json as Record<string, string>)["/sys/devices/system/memory/memory64/valid_zones"], "Normal Movable");
  });

  it("the scenario's variant overrides the machine's", () => {
    assert.equal(run(`${PRESET}variant: "5.18"\nsteps: [echo x]\n`).variant, "5.18");
  });

  it("a machine that fails to boot is a UsageError naming the scenario's machine", () => {
    assert.throws(
      () => run("machine: { preset: qemu-q35-3g-pmem1g, append: memhp_default_state=bogus }\nsteps: [echo x]\n"),
      (e: unknown) => e instanceof UsageError && e.message === "s.yaml:1: machine: append: memhp_default_state=bogus: expected one of offline, online, online_kernel, online_movable",
    );
  });

  it("is deterministic: the same scenario twice gives byte-identical text and JSON", () => {
    const text = `${HOTPLUG}  - run: memunmap namespace0.0\n    show: [pgmaps, log, sysfs, zoneinfo, iomem, blocks]\n`;
    const a = run(text, { show: ["pgmaps"] });
    const b = run(text, { show: ["pgmaps"] });
    assert.equal(renderRunText(a), renderRunText(b));
    assert.equal(renderRunJson(a), renderRunJson(b));
  });
});

describe("rendering", () => {
  it("text: header, `$ command`, output, [rc=…], verdicts, summary", () => {
    const text = renderRunText(run(HOTPLUG));
    assert.equal(
      text,
      [
        "# scenario: s.yaml",
        "# machine: qemu-q35-3g-pmem1g; variant 6.1",
        "$ add_memory 0 0x200000000 256M",
        "$ echo online_movable > /sys/devices/system/memory/memory64/state",
        "expect: ok (rc 0, violation none)",
        "$ echo online > /sys/devices/system/memory/memory64/state",
        "echo: write error: Invalid argument",
        "[rc=1]",
        "expect: ok (rc -EINVAL, stdout)",
        "$ remove_memory 0x200000000 256M",
        "[rc=-16 -EBUSY]",
        "expect: ok (rc -EBUSY)",
        "# 4 steps; all 3 expectations hold",
        "",
      ].join("\n"),
    );
  });

  it("JSON: one document, every step, state parts as JSON", () => {
    const j = JSON.parse(renderRunJson(run(HOTPLUG, { show: ["zoneinfo"] }))) as {
      ok: boolean;
      expectations: { checked: number; failed: number };
      steps: Array<{ step: number; command: string; stdout: string; rc: number; errno: string | null; hang: unknown; violations: unknown[]; verdict: unknown; state: { zoneinfo?: Array<{ zone: string; spanned: number }> } }>;
    };
    assert.equal(j.ok, true);
    assert.deepEqual(j.expectations, { checked: 3, failed: 0 });
    assert.equal(j.steps.length, 4);
    assert.deepEqual(Object.keys(j.steps[0]!), ["step", "thread", "where", "command", "stdout", "rc", "errno", "hang", "violations", "log", "expect", "verdict", "state"]);
    assert.equal(j.steps[2]!.stdout, "echo: write error: Invalid argument\n");
    assert.equal(j.steps[2]!.errno, "-EINVAL");
    const movable = j.steps[1]!.state.zoneinfo!.find((z) => z.zone === "Movable");
    assert.equal(movable?.spanned, 32768);
  });
});
