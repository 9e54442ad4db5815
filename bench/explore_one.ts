/**
 * One fresh-process explorer sample (issue 6) for the scenario at argv[2]. In this order:
 *
 * 1. `--first` exhaustive (the scenario's preemption bound, sleep sets + DPOR): the time to the first finding
 *    of the kind the scenario's `explore: expect:` names (stopWhen: executions go on past other violations;
 *    run first, so the process is as cold as a user's); then the time to the first finding of any kind
 *    (what `zonedev explore --first` stops at, which may be another kind), and what shrinking the expected
 *    finding to its counterexample costs.
 * 2. `--first` random: PCT with seed 1, depth 3 (the CLI's defaults), up to 1000 runs, stopping at the first
 *    finding of the expected kind.
 * 3. The whole exhaustive exploration the scenario's golden counts describe (`--all`), on a new target as
 *    `zonedev explore` makes one: schedules, end states, transitions executed (replayed prefixes included),
 *    wall time; with the explorer's stats, how that time splits between starting executions (the first boots
 *    and runs the setup, then takes the snapshot; every later one rewinds the kernel to it —
 *    src/sched/snapshot.ts) and stepping, and the median rewind.
 * 4. The same exploration with every execution re-booted and set up afresh (`rewind: false`, what the explorer
 *    did before it rewound): its wall time, for the ratio; and, timed apart over 10 fresh builds, the median
 *    boot, each setup step and taking the snapshot.
 *
 * A scenario that expects nothing (`expect: none`) gets only 3. Prints one JSON line (ExploreSample).
 */

import { basename } from "node:path";
import { performance } from "node:perf_hooks";
import { builtinCommands, type StepOutput } from "../src/scenario/commands.ts";
import { loadScenario } from "../src/scenario/load.ts";
import { bootScenario, runStep, scenarioTarget } from "../src/scenario/threads.ts";
import { type ExploreOptions, type ExploreResult, type ExploreTarget, explore, type Finding } from "../src/sched/explore.ts";
import { shrink } from "../src/sched/shrink.ts";
import { Snapshot } from "../src/sched/snapshot.ts";

export interface FirstSample {
  /** Wall time until the explorer stopped at the first finding of the expected kind. */
  ms: number;
  /** Executions run (and pruned) and transitions executed until then. */
  schedules: number;
  steps: number;
  /** The expected kind was found. */
  found: boolean;
}

export interface FirstExhaustive extends FirstSample {
  /** `--first` as the CLI runs it: the time to the first finding of any kind, and that kind. */
  anyMs: number;
  anyFound: string | null;
  /** Shrinking the expected finding to its counterexample. */
  shrinkMs: number;
  shrunkTransitions: number;
}

export interface ExploreSample {
  scenario: string;
  expect: string;
  schedules: number;
  pruned: number;
  states: number;
  /** The golden schedules/states in the scenario's explore: block hold. */
  golden: boolean;
  /** Transitions executed across all executions, replayed prefixes included. */
  steps: number;
  replaySteps: number;
  wallMs: number;
  stepsPerSec: number;
  /** Executions started (the first boots, sets up and snapshots; the rest rewind), and the time that took in all. */
  builds: number;
  buildMs: number;
  /** Time inside Execution.step and .replay; steps / stepMs is the pure stepping rate. */
  stepMs: number;
  steppingStepsPerSec: number;
  /** The explorer's own bookkeeping: wall − build − step. */
  otherMs: number;
  /** Median rewind of the kernel to its post-setup snapshot (target.build after the first). */
  rewindMsMedian: number;
  /** The same exploration with a fresh boot + setup per execution (rewind: false). */
  freshWallMs: number;
  /** Over 10 fresh builds: the median boot, each setup step's, and taking the snapshot. */
  bootMsMedian: number;
  setupSteps: { command: string; ms: number }[];
  snapshotMsMedian: number;
  first: FirstExhaustive | null;
  random: FirstSample | null;
  peakRssMiB: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const file = process.argv[2];
if (!file) throw new Error("usage: explore_one.ts SCENARIO.yaml");
const s = loadScenario(file, builtinCommands());
const e = s.explore;
if (!e) throw new Error(`${file}: no explore: block`);
const buildTimes: number[] = [];
let timing = false;
/** A scenario target whose builds (a rewind, or the first boot + setup + snapshot) are timed while `timing`. */
function timedTarget(opts: { rewind?: boolean } = {}): ExploreTarget<StepOutput> {
  const base = scenarioTarget(s, opts);
  return {
    ...base,
    build: () => {
      if (!timing) return base.build();
      const t0 = performance.now();
      const k = base.build();
      buildTimes.push(performance.now() - t0);
      return k;
    },
  };
}
const target = timedTarget();

const kindOf = (f: Finding): string => (f.kind === "hang" ? "hang" : f.violation!.kind);
const expected = (f: Finding): boolean => kindOf(f) === e.expect;

function timed(opts: ExploreOptions): { r: ExploreResult; ms: number; sample: FirstSample } {
  const t0 = performance.now();
  const r = explore(target, opts);
  const ms = performance.now() - t0;
  return { r, ms, sample: { ms, schedules: r.schedules + r.pruned, steps: r.steps, found: r.findings.some(expected) } };
}

let first: ExploreSample["first"] = null;
let random: ExploreSample["random"] = null;
if (e.expect !== "none") {
  const exhaustiveFirst = { mode: "exhaustive", reduction: true, depth: e.depth, stopAtFirst: true } as const;
  const hit = timed({ ...exhaustiveFirst, stopWhen: expected });
  const any = timed(exhaustiveFirst);
  const chosen = hit.r.findings.find(expected);
  const t0 = performance.now();
  const shrunk = chosen ? shrink(target, chosen) : null;
  const shrinkMs = performance.now() - t0;
  const anyFound = any.r.findings[0];
  first = {
    ...hit.sample,
    anyMs: any.ms,
    anyFound: anyFound ? kindOf(anyFound) : null,
    shrinkMs,
    shrunkTransitions: shrunk ? shrunk.finding.schedule.length : 0,
  };
  random = timed({ mode: "random", runs: 1000, seed: 1, depth: 3, stopAtFirst: true, stopWhen: expected }).sample;
}

const exhaustive = { mode: "exhaustive", reduction: true, depth: e.depth, stopAtFirst: false, stats: true } as const;
timing = true;
const t0 = performance.now();
const r = explore(timedTarget(), exhaustive);
const wallMs = performance.now() - t0;
timing = false;
const st = r.stats!;
if (!r.complete) throw new Error(`${file}: exhaustive exploration incomplete after ${r.schedules} schedules`);
// The first build of that target booted and ran the setup; the rest were rewinds.
const rewinds = buildTimes.slice(1);
const t1 = performance.now();
const fresh = explore(scenarioTarget(s, { rewind: false }), exhaustive);
const freshWallMs = performance.now() - t1;
if (fresh.schedules !== r.schedules || fresh.steps !== r.steps || fresh.states !== r.states) throw new Error(`${file}: re-building and rewinding explorations differ`);
// What a fresh build costs, timed apart: the boot, then each setup step, then taking the snapshot.
const boots: number[] = [];
const snapshots: number[] = [];
const stepTimes: number[][] = s.steps.map(() => []);
for (let i = 0; i < 10; i++) {
  let t = performance.now();
  const k = bootScenario(s);
  boots.push(performance.now() - t);
  for (const [j, step] of s.steps.entries()) {
    t = performance.now();
    runStep(k, step);
    stepTimes[j]!.push(performance.now() - t);
  }
  t = performance.now();
  new Snapshot(k);
  snapshots.push(performance.now() - t);
}

const sample: ExploreSample = {
  scenario: basename(file, ".yaml"),
  expect: e.expect,
  schedules: r.schedules,
  pruned: r.pruned,
  states: r.states,
  golden: (e.schedules === null || e.schedules === r.schedules) && (e.states === null || e.states === r.states),
  steps: r.steps,
  replaySteps: st.replaySteps,
  wallMs,
  stepsPerSec: (r.steps / wallMs) * 1000,
  builds: st.builds,
  buildMs: st.buildMs,
  stepMs: st.stepMs,
  steppingStepsPerSec: (st.steps / st.stepMs) * 1000,
  otherMs: wallMs - st.buildMs - st.stepMs,
  rewindMsMedian: median(rewinds),
  freshWallMs,
  bootMsMedian: median(boots),
  snapshotMsMedian: median(snapshots),
  setupSteps: s.steps.map((st, j) => ({ command: st.command, ms: median(stepTimes[j]!) })),
  first,
  random,
  peakRssMiB: process.resourceUsage().maxRSS / 1024,
};
process.stdout.write(`${JSON.stringify(sample)}\n`);
