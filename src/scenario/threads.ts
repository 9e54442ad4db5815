/**
 * A scenario's threads as the scheduler sees them: programs of kernel paths, a target that re-builds the
 * kernel with the setup steps done (every schedule starts there), and the fingerprint replay tokens carry.
 */

import { checkInvariants } from "../check/invariants.ts";
import { UsageError } from "../errors.ts";
import { bootKernel } from "../kernel/boot.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { ThreadProgram } from "../sched/execution.ts";
import type { ExploreTarget } from "../sched/explore.ts";
import { fingerprint } from "../sched/schedule.ts";
import { Snapshot } from "../sched/snapshot.ts";
import type { StepOutput } from "./commands.ts";
import type { Scenario, ScenarioStep } from "./load.ts";

export function bootScenario(s: Scenario): Kernel {
  try {
    return s.variant ? bootKernel(s.machine, s.variant) : bootKernel(s.machine);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(s.machineWhere, e.message);
    throw e;
  }
}

export function runStep(k: Kernel, step: ScenarioStep): StepOutput {
  try {
    return step.cmd.run(k, step.invocation, { where: step.where });
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${step.where}: step ${step.index + 1}`, e.message);
    throw e;
  }
}

export function threadPrograms(s: Scenario): ThreadProgram<StepOutput>[] {
  return s.threads.map((th) => ({
    name: th.name,
    steps: th.steps.map((st) => ({
      label: st.command,
      where: st.where,
      start: (k: Kernel) => st.cmd.path(k, st.invocation, { where: st.where }),
    })),
  }));
}

/** A step's result as one line, to tell end states apart. */
export function describeOutput(o: StepOutput): string {
  const text = o.stdout.trim().replace(/\s*\n\s*/g, " | ");
  return `rc ${o.rc}${o.hang ? " hang" : ""}${text ? `: ${text}` : ""}`;
}

/**
 * The scheduler's view of a scenario: boot + setup steps, then its threads. The first build() boots and runs
 * the setup; later ones rewind that kernel to its post-setup snapshot (src/sched/snapshot.ts), so a kernel
 * from an earlier build() is the next one's — unless `rewind` is false, when every build() is a fresh boot.
 */
export function scenarioTarget(s: Scenario, opts: { rewind?: boolean } = {}): ExploreTarget<StepOutput> {
  if (s.threads.length === 0) throw new UsageError(s.file ?? "scenario", "has no threads: to explore (docs/explore.md)");
  const fresh = (): Kernel => {
    const k = bootScenario(s);
    for (const step of s.steps) runStep(k, step);
    return k;
  };
  let saved: { k: Kernel; snapshot: Snapshot } | null = null;
  return {
    build: () => {
      if (opts.rewind === false) return fresh();
      if (saved) {
        saved.snapshot.restore();
        return saved.k;
      }
      const k = fresh();
      saved = { k, snapshot: new Snapshot(k) };
      return k;
    },
    programs: threadPrograms(s),
    check: checkInvariants,
    describe: describeOutput,
  };
}

/** What a schedule's meaning depends on: machine, variant, setup and thread steps. */
export function scenarioHash(s: Scenario): string {
  const machine = JSON.stringify(s.machine);
  const threads = s.threads.map((t) => `${t.name}:${t.steps.map((st) => st.command).join("\n")}`).join("\n\n");
  return fingerprint([machine, s.variant?.name ?? "", s.steps.map((st) => st.command).join("\n"), threads].join("\n---\n"));
}
