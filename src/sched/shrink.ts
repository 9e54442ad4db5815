/**
 * Shrinking a counterexample: among the schedules that reach the same finding (the same violation kind at the
 * same place, or a hang), find one with the fewest preemptions, and among those the fewest transitions before
 * it appears. Iterative preemption bounding: exhaustive search with bound 0, 1, 2 … stops at the first bound
 * that reproduces the finding; within a bound every execution ends at its first violation and the shortest
 * wins. A search budget keeps it bounded; if the budget runs out the original schedule is kept.
 */
import { type ExploreTarget, explore, type Finding, findingKey } from "./explore.ts";

function sameFinding(a: Finding, b: Finding): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind === "hang" || findingKey(a) === findingKey(b);
}

function better(a: Finding, b: Finding): boolean {
  return a.preemptions < b.preemptions || (a.preemptions === b.preemptions && a.schedule.length < b.schedule.length);
}

export interface Shrunk {
  finding: Finding;
  /** Executions the search ran. */
  schedules: number;
  steps: number;
}

export function shrink<R>(target: ExploreTarget<R>, found: Finding, budget = 20_000): Shrunk {
  let best = found;
  let schedules = 0;
  let steps = 0;
  for (let bound = 0; bound <= found.preemptions; bound++) {
    // Sleep sets stay off: they may hide the one ordering with fewer preemptions.
    const r = explore(target, { mode: "exhaustive", reduction: false, depth: bound, stopAtFirst: false, endAtViolation: true, maxSchedules: budget });
    schedules += r.schedules + r.pruned;
    steps += r.steps;
    for (const f of r.findings) if (sameFinding(f, found) && better(f, best)) best = f;
    if (best !== found || !r.complete) break;
  }
  return { finding: best, schedules, steps };
}
