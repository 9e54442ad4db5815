/**
 * The explorer's optional stats (what bench/explore_one.ts reports), replaying a transition from what an
 * earlier execution recorded, and stopping at the first finding of a given kind. Counts only: nothing here
 * is timed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import { type KernelPath, step } from "../../src/kernel/path.ts";
import type { Violation } from "../../src/kernel/sanitizer.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { Execution, type ThreadProgram } from "../../src/sched/execution.ts";
import { type ExploreResult, type ExploreTarget, explore, type Finding } from "../../src/sched/explore.ts";

const spec = machinePreset("qemu-q35-3g-pmem1g");
const shared = new WeakMap<Kernel, { x: number; y: number }>();
const x = (k: Kernel): { x: number; y: number } => shared.get(k)!;

/** x = 1; yield; then a second look at x: 2 means b got in between (dead-pgmap-use, as a stand-in kind). */
function* setThenLook(k: Kernel): KernelPath<number> {
  k.sanitizer.write("x");
  x(k).x = 1;
  yield step("x = 1");
  k.sanitizer.read("x");
  if (x(k).x === 2) k.sanitizer.report({ kind: "dead-pgmap-use", at: "look", detail: "x changed under a" });
  return x(k).x;
}

/** Sees a's x = 1 (negative-refcount, the stand-in for the violation found first), then x = 2. */
function* overwrite(k: Kernel): KernelPath<number> {
  k.sanitizer.read("x");
  k.sanitizer.write("x");
  if (x(k).x === 1) k.sanitizer.report({ kind: "negative-refcount", at: "overwrite", detail: "x was 1" });
  x(k).x = 2;
  yield step("x = 2");
  k.sanitizer.write("y");
  x(k).y++;
  return x(k).x;
}

/** The state check: y > 0 is an invariant violation once reported (so replays must report it again). */
function check(k: Kernel): Violation[] {
  return x(k).y > 0 ? [{ kind: "zone-span", at: "invariant: y", detail: "y is set" }] : [];
}

const target: ExploreTarget<number> = {
  build: () => {
    const k = bootKernel(spec);
    shared.set(k, { x: 0, y: 0 });
    return k;
  },
  programs: [
    { name: "a", steps: [{ label: "a", where: "test", start: setThenLook }] },
    { name: "b", steps: [{ label: "b", where: "test", start: overwrite }] },
  ] satisfies ThreadProgram<number>[],
  check,
  describe: (r) => String(r),
};

const kinds = (r: ExploreResult): string[] => r.findings.map((f) => f.violation?.kind ?? f.kind).sort();
const without = (r: ExploreResult): Omit<ExploreResult, "stats"> => {
  const { stats: _, ...rest } = r;
  return rest;
};

describe("explorer stats", () => {
  it("are absent unless asked for, and asking changes nothing else", () => {
    for (const opts of [
      { mode: "exhaustive", stopAtFirst: false },
      { mode: "exhaustive", stopAtFirst: false, reduction: false },
      { mode: "exhaustive", stopAtFirst: true },
      { mode: "random", runs: 20, seed: 3, stopAtFirst: false },
    ] as const) {
      const plain = explore(target, opts);
      assert.equal(plain.stats, undefined);
      const withStats = explore(target, { ...opts, stats: true });
      assert.deepEqual(without(withStats), plain, JSON.stringify(opts));
    }
  });

  it("count one build per execution and every transition, replays apart", () => {
    const r = explore(target, { mode: "exhaustive", stopAtFirst: false, reduction: false, stats: true });
    const s = r.stats!;
    assert.equal(r.complete, true);
    assert.equal(s.builds, r.schedules + r.pruned);
    assert.equal(s.steps, r.steps);
    // Each backtrack replays the prefix to the state it branches from.
    assert.ok(s.replaySteps > 0 && s.replaySteps < s.steps, `${s.replaySteps} of ${s.steps}`);
    assert.ok(s.buildMs >= 0 && s.stepMs >= 0);
    const rr = explore(target, { mode: "random", runs: 5, seed: 1, stopAtFirst: false, stats: true });
    assert.equal(rr.stats!.builds, 5);
    assert.equal(rr.stats!.replaySteps, 0);
  });
});

describe("Execution.replay", () => {
  it("gives the transitions step() gives, from the footprints and check results recorded", () => {
    const prefix = [0, 1, 1];
    const first = new Execution(target.build(), target.programs, target.check);
    for (const t of prefix) first.step(t);
    const again = new Execution(target.build(), target.programs, target.check);
    for (const [i, t] of prefix.entries()) again.replay(t, { footprint: first.transitions[i]!.footprint, checked: first.checked(i) });
    assert.deepEqual(again.transitions, first.transitions);
    assert.deepEqual(again.violations(), first.violations());
    assert.deepEqual(
      first.violations().map((v) => v.kind),
      ["negative-refcount", "zone-span"],
    );
    // After the replay, stepping on is as after the original: the check's zone-span, still true, is not reported again.
    const last = first.step(0);
    assert.deepEqual(again.step(0), last);
    assert.deepEqual(
      last.violations.map((v) => v.kind),
      ["dead-pgmap-use"],
    );
  });
});

describe("stopWhen", () => {
  const dead = (f: Finding): boolean => f.violation?.kind === "dead-pgmap-use";

  it("without it, --first stops at the first finding of any kind", () => {
    const r = explore(target, { mode: "exhaustive" });
    assert.deepEqual(kinds(r), ["negative-refcount"]);
  });

  it("goes on past other violations to the kind asked for", () => {
    const r = explore(target, { mode: "exhaustive", stopWhen: dead });
    assert.ok(r.findings.some(dead), kinds(r).join(", "));
    assert.equal(r.complete, false);
    const pct = explore(target, { mode: "random", runs: 200, seed: 1, depth: 2, stopWhen: dead });
    assert.ok(pct.findings.some(dead), kinds(pct).join(", "));
  });
});
