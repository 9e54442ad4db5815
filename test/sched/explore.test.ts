import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import { type KernelPath, step } from "../../src/kernel/path.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { Execution, type ThreadProgram } from "../../src/sched/execution.ts";
import { type ExploreTarget, explore, runSchedule } from "../../src/sched/explore.ts";
import { decodeSchedule, encodeSchedule, fingerprint } from "../../src/sched/schedule.ts";
import { shrink } from "../../src/sched/shrink.ts";

/** A shared counter on the kernel, reached through the sanitizer's footprint like model state is. */
const counters = new WeakMap<Kernel, { x: number; y: number }>();
const spec = machinePreset("qemu-q35-3g-pmem1g");

function shared(k: Kernel): { x: number; y: number } {
  return counters.get(k)!;
}

/** x++ as load; yield; store — the classic lost update. */
function* incrementX(k: Kernel): KernelPath<number> {
  k.sanitizer.read("x");
  const v = shared(k).x;
  yield step("load x");
  k.sanitizer.write("x");
  if (shared(k).x !== v) k.sanitizer.report({ kind: "negative-refcount", at: "store x", detail: "lost update" });
  shared(k).x = v + 1;
  yield step("store x");
  k.sanitizer.read("x");
  return shared(k).x;
}

/** Touches only y: independent of every x step. */
function* touchY(k: Kernel): KernelPath<number> {
  for (let i = 0; i < 3; i++) {
    k.sanitizer.write("y");
    shared(k).y++;
    yield step(`y ${i}`);
  }
  // Every shared read is recorded: an unrecorded one would let the reduction drop an end state.
  k.sanitizer.read("y");
  return shared(k).y;
}

function target(programs: ThreadProgram<number>[]): ExploreTarget<number> {
  return {
    build: () => {
      const k = bootKernel(spec);
      counters.set(k, { x: 0, y: 0 });
      return k;
    },
    programs,
    check: (k) => (shared(k).x < 0 ? [{ kind: "negative-refcount", at: "check", detail: "x < 0" }] : []),
    describe: (r) => String(r),
  };
}

const inc = (name: string): ThreadProgram<number> => ({ name, steps: [{ label: "x++", where: "test", start: incrementX }] });
const ys = (name: string): ThreadProgram<number> => ({ name, steps: [{ label: "y", where: "test", start: touchY }] });

describe("the scheduler", () => {
  it("runs threads one transition at a time and records footprints", () => {
    const t = target([inc("a"), ys("b")]);
    const exec = new Execution(t.build(), t.programs, t.check);
    assert.deepEqual(exec.enabled(), [0, 1]);
    const tr = exec.step(0);
    assert.equal(tr.at, "load x");
    assert.ok(tr.footprint.reads.has("x"));
    assert.equal(tr.footprint.writes.size, 0);
    exec.step(1);
    assert.equal(exec.transitions[1]!.preempted, true, "switching away from a runnable thread is a preemption");
  });

  it("reports a wait nothing can end as a hang with its holder", () => {
    const blocked: ThreadProgram<number> = {
      name: "waiter",
      steps: [
        {
          label: "wait",
          where: "test",
          *start() {
            yield { kind: "block", at: "wait_for_completion(&done)", until: () => false, holder: () => "nobody" };
            return 0;
          },
        },
      ],
    };
    const r = explore(target([blocked]), { mode: "exhaustive" });
    assert.equal(r.findings.length, 1);
    assert.equal(r.findings[0]!.kind, "hang");
    assert.deepEqual(
      r.findings[0]!.waiters!.map((w) => [w.name, w.at, w.holder]),
      [["waiter", "wait_for_completion(&done)", "nobody"]],
    );
  });
});

describe("exhaustive exploration", () => {
  it("finds the lost update of two racing increments, and its end states", () => {
    const r = explore(target([inc("a"), inc("b")]), { mode: "exhaustive", stopAtFirst: false });
    assert.equal(r.complete, true);
    // x ends at 2 (serial) or 1 (lost update): both results seen, the race found.
    assert.ok(r.states >= 2);
    assert.ok(r.findings.some((f) => f.violation?.detail === "lost update"));
  });

  it("sleep sets and DPOR skip reorderings of independent steps without losing end states", () => {
    const t = target([inc("a"), ys("b"), ys("c")]);
    const full = explore(t, { mode: "exhaustive", reduction: false, stopAtFirst: false });
    const reduced = explore(t, { mode: "exhaustive", reduction: true, stopAtFirst: false });
    assert.equal(full.complete && reduced.complete, true);
    assert.equal(reduced.states, full.states);
    assert.ok(reduced.schedules < full.schedules, `${reduced.schedules} < ${full.schedules}`);
    // y is shared by b and c, so their orders matter; x by nobody else.
    assert.ok(reduced.schedules > 1);
  });

  it("a preemption bound of 0 runs each thread to its end before the next", () => {
    const r = explore(target([inc("a"), inc("b")]), { mode: "exhaustive", depth: 0, stopAtFirst: false });
    assert.equal(r.findings.length, 0, "the lost update needs a preemption");
    // a then b, or b then a: x is 2 either way, but each thread's result differs.
    assert.equal(r.states, 2);
  });

  it("shrinks a counterexample to the fewest preemptions", () => {
    const t = target([inc("a"), inc("b")]);
    const r = explore(t, { mode: "exhaustive", stopAtFirst: true });
    const s = shrink(t, r.findings[0]!);
    assert.equal(s.finding.preemptions, 1);
    const again = runSchedule(t, s.finding.schedule);
    assert.ok(again.exec.violations().some((v) => v.detail === "lost update"));
  });
});

describe("random exploration (PCT)", () => {
  it("is deterministic for a seed", () => {
    const t = target([inc("a"), inc("b"), ys("c")]);
    const a = explore(t, { mode: "random", runs: 40, seed: 7, stopAtFirst: false });
    const b = explore(t, { mode: "random", runs: 40, seed: 7, stopAtFirst: false });
    assert.deepEqual(a, b);
    assert.equal(a.schedules, 40);
  });

  it("finds the depth-2 race within a few runs", () => {
    const r = explore(target([inc("a"), inc("b")]), { mode: "random", runs: 200, seed: 1, depth: 2 });
    assert.equal(r.findings.length, 1);
  });
});

describe("schedule tokens", () => {
  it("round-trip, and refuse another scenario's token", () => {
    const h = fingerprint("scenario text");
    const sched = [0, 0, 0, 1, 0, 0, 2];
    const tok = encodeSchedule(h, sched);
    assert.match(tok, /^zd1-[0-9a-f]{6}-a3ba2c$/);
    assert.deepEqual(decodeSchedule(tok, h, 3), sched);
    assert.match(String(decodeSchedule(tok, fingerprint("other"), 3)), /different scenario/);
    assert.match(String(decodeSchedule(tok, h, 2)), /names thread 'c'/);
    assert.match(String(decodeSchedule("garbage", h, 2)), /not a schedule token/);
  });
});
