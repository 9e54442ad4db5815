/**
 * The explorer's own rate, without the kernel model (issue 6): how many transitions per second the scheduler,
 * the sleep sets + DPOR bookkeeping, the footprints and the replays sustain when a transition does no kernel
 * work — the ceiling a scenario's steps/s could reach. Three threads of two steps, each step a path of three
 * transitions that read and write a few shared keys (so DPOR has races to branch on), on a booted kernel the
 * paths leave alone (so no rewind is needed); no state check. Prints one JSON line (EngineSample).
 */
import { performance } from "node:perf_hooks";
import { bootKernel } from "../src/kernel/boot.ts";
import type { Kernel } from "../src/kernel/kernel.ts";
import { type KernelPath, step } from "../src/kernel/path.ts";
import { machinePreset } from "../src/machine/presets.ts";
import type { ThreadProgram } from "../src/sched/execution.ts";
import { type ExploreTarget, explore } from "../src/sched/explore.ts";

export interface EngineSample {
  schedules: number;
  steps: number;
  replaySteps: number;
  wallMs: number;
  stepsPerSec: number;
}

/** Thread t's step s: transitions that touch key `x` (shared by all), and t's own and its neighbour's. */
function program(t: number, threads: number): ThreadProgram<number> {
  const mine = `own:${t}`;
  const next = `own:${(t + 1) % threads}`;
  const path = function* (k: Kernel): KernelPath<number> {
    k.sanitizer.read("x");
    k.sanitizer.write(mine);
    yield step("a");
    k.sanitizer.read(next);
    yield step("b");
    k.sanitizer.write("x");
    return 0;
  };
  return { name: `t${t}`, steps: [0, 1].map((s) => ({ label: `t${t} step ${s}`, where: "bench", start: path })) };
}

const THREADS = 3;
const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
const target: ExploreTarget<number> = {
  build: () => k,
  programs: Array.from({ length: THREADS }, (_, t) => program(t, THREADS)),
  check: null,
  describe: (r) => String(r),
};
const opts = { mode: "exhaustive", reduction: true, depth: null, stopAtFirst: false, maxSchedules: 1_000_000 } as const;
// Once with stats, for the replay count (and to warm up); then timed without them, as `zonedev explore` runs.
const counted = explore(target, { ...opts, stats: true });
const t0 = performance.now();
const r = explore(target, opts);
const wallMs = performance.now() - t0;
if (r.steps !== counted.steps) throw new Error("explore_engine: the two explorations differ");
const sample: EngineSample = { schedules: r.schedules, steps: r.steps, replaySteps: counted.stats!.replaySteps, wallMs, stepsPerSec: (r.steps / wallMs) * 1000 };
process.stdout.write(`${JSON.stringify(sample)}\n`);
