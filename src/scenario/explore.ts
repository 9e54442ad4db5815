/**
 * `zonedev explore` and `zonedev replay` on a scenario: explore its threads' interleavings, shrink the
 * finding to a minimal schedule, and turn a schedule into a trace a kernel developer reads (thread, kernel
 * function, what changed). The result is data; render_explore.ts prints it. Time is measured by the caller.
 */
import { UsageError } from "../errors.ts";
import type { Violation } from "../kernel/sanitizer.ts";
import { DEFAULT_VARIANT } from "../kernel/variant.ts";
import { type ExploreResult, explore, type Finding, findingsOf, type Outcome, outcomeOf, type Progress, runSchedule } from "../sched/explore.ts";
import { decodeSchedule, encodeSchedule, threadLetter } from "../sched/schedule.ts";
import { shrink } from "../sched/shrink.ts";
import type { StepOutput } from "./commands.ts";
import { errnoLabel } from "./errno_text.ts";
import type { Scenario } from "./load.ts";
import { scenarioHash, scenarioTarget } from "./threads.ts";

export interface ExploreRequest {
  mode: "exhaustive" | "random";
  /** Preemption bound (exhaustive) or PCT depth (random); null: the scenario's, else none / 3. */
  depth: number | null;
  runs: number;
  seed: number;
  /** Sleep-set reduction (exhaustive). */
  reduction: boolean;
  /** Explore everything (true), stop at the first finding (false), or decide by the scenario (null: all when it has explore: expectations). */
  all: boolean | null;
  maxSchedules: number;
  onProgress?: (p: Progress) => void;
}

export const DEFAULT_REQUEST: ExploreRequest = { mode: "exhaustive", depth: null, runs: 1000, seed: 1, reduction: true, all: null, maxSchedules: 100_000 };

export interface TraceLine {
  /** 1-based. */
  index: number;
  thread: string;
  letter: string;
  /** The thread's step (1-based) and its command. */
  step: number;
  command: string;
  /** The yield the thread resumed from and the one it stopped at ("" at a step's start / end). */
  from: string;
  at: string;
  preempted: boolean;
  reads: string[];
  writes: string[];
  violations: Violation[];
  log: string[];
  /** The step's result, when this transition finished it. */
  result: { stdout: string; rc: number; errno: string | null } | null;
}

export interface Trace {
  token: string;
  schedule: number[];
  lines: TraceLine[];
  outcome: Outcome;
  findings: Finding[];
  preemptions: number;
}

export interface Counterexample {
  finding: Finding;
  /** The finding as exploration first reached it, before shrinking. */
  before: { transitions: number; preemptions: number };
  shrinkSchedules: number;
  trace: Trace;
}

export interface Verdict {
  ok: boolean;
  checked: string[];
  failures: string[];
}

export interface Exploration {
  scenario: string;
  file: string | null;
  machine: string;
  variant: string;
  threads: string[];
  request: Omit<ExploreRequest, "onProgress">;
  result: ExploreResult;
  counterexample: Counterexample | null;
  verdict: Verdict | null;
}

/** A footprint key as a reader wants it: `page 0x1234`, `pgmap 1`. */
function describeKey(key: string): string {
  const i = key.indexOf(":");
  if (i < 0) return key;
  const kind = key.slice(0, i);
  const rest = key.slice(i + 1);
  const n = Number(rest);
  if (kind === "page" && Number.isInteger(n)) return `page 0x${n.toString(16)}`;
  if (kind === "memmap" && Number.isInteger(n)) return `memmap of section ${n}`;
  if (kind === "pgmap_array" && Number.isInteger(n)) return `pgmap_array @pfn 0x${n.toString(16)}`;
  return `${kind} ${rest}`;
}

function sortedKeys(keys: ReadonlySet<string>): string[] {
  return [...keys].filter((k) => !k.startsWith("memmap:")).sort().map(describeKey);
}

/** Run a schedule (completed without preemption) and read it back as a trace. */
export function traceOf(s: Scenario, schedule: readonly number[]): Trace {
  const target = scenarioTarget(s);
  const { exec, preemptions, fits } = runSchedule(target, schedule);
  if (!fits) throw new UsageError("--schedule", "the schedule does not fit this scenario (a thread it names cannot run at that point)");
  const lines = exec.transitions.map((tr): TraceLine => {
    const th = s.threads[tr.thread]!;
    const step = th.steps[tr.step]!;
    const r: StepOutput | undefined = tr.result;
    return {
      index: tr.index + 1,
      thread: th.name,
      letter: threadLetter(tr.thread),
      step: tr.step + 1,
      command: step.command,
      from: tr.from,
      at: tr.at,
      preempted: tr.preempted,
      reads: tr.footprint.opaque ? [] : sortedKeys(tr.footprint.reads),
      writes: tr.footprint.opaque ? [] : sortedKeys(tr.footprint.writes),
      violations: [...tr.violations],
      log: [...tr.log],
      result: r ? { stdout: r.stdout, rc: r.rc, errno: r.errno !== undefined ? errnoLabel(r.errno) : null } : null,
    };
  });
  return {
    token: encodeSchedule(scenarioHash(s), schedule),
    schedule: [...schedule],
    lines,
    outcome: outcomeOf(exec, target),
    findings: findingsOf(exec),
    preemptions,
  };
}

/** `zonedev replay --schedule TOKEN`. */
export function replayScenario(s: Scenario, token: string): Trace {
  if (s.threads.length === 0) throw new UsageError(s.file ?? "scenario", "has no threads: to replay (docs/explore.md)");
  const schedule = decodeSchedule(token, scenarioHash(s), s.threads.length);
  if (typeof schedule === "string") throw new UsageError("--schedule", schedule);
  return traceOf(s, schedule);
}

function matches(f: Finding, expect: string): boolean {
  return expect === "hang" ? f.kind === "hang" : f.kind === "violation" && f.violation!.kind === expect;
}

function checkVerdict(s: Scenario, req: ExploreRequest, all: boolean, r: ExploreResult): Verdict | null {
  const e = s.explore;
  if (!e) return null;
  const checked = [`found ${e.expect}`];
  const failures: string[] = [];
  const found = r.findings.map((f) => (f.kind === "hang" ? "hang" : f.violation!.kind));
  if (e.expect === "none") {
    if (found.length) failures.push(`found: expected none, got ${[...new Set(found)].join(", ")}`);
    else if (!r.complete && r.mode === "exhaustive") failures.push(`found: expected none, but exploration stopped after ${r.schedules} schedules (incomplete)`);
  } else if (!r.findings.some((f) => matches(f, e.expect))) {
    failures.push(`found: expected ${e.expect}, got ${found.length ? [...new Set(found)].join(", ") : "none"}${r.complete ? "" : " (exploration incomplete)"}`);
  }
  for (const a of e.absent) {
    checked.push(`absent ${a}`);
    if (r.findings.some((f) => matches(f, a))) failures.push(`absent: expected no ${a}, but a schedule reaches it`);
  }
  // Golden counts only mean something for the full exhaustive search the scenario describes.
  const canonical = req.mode === "exhaustive" && req.reduction && all && (req.depth ?? e.depth) === e.depth;
  if (canonical && e.schedules !== null) {
    checked.push(`schedules ${e.schedules}`);
    if (r.schedules !== e.schedules) failures.push(`schedules: expected ${e.schedules}, got ${r.schedules}`);
  }
  if (canonical && e.states !== null) {
    checked.push(`states ${e.states}`);
    if (r.states !== e.states) failures.push(`states: expected ${e.states}, got ${r.states}`);
  }
  return { ok: failures.length === 0, checked, failures };
}

/** Pick the finding to show: the expected kind if the scenario names one, else violations before hangs. */
function pick(s: Scenario, findings: readonly Finding[]): Finding | null {
  const e = s.explore?.expect;
  const pool = e && e !== "none" ? findings.filter((f) => matches(f, e)) : [];
  const list = pool.length ? pool : [...findings];
  list.sort((a, b) => (a.kind === b.kind ? a.preemptions - b.preemptions || a.schedule.length - b.schedule.length : a.kind === "violation" ? -1 : 1));
  return list[0] ?? null;
}

export function exploreScenario(s: Scenario, req: ExploreRequest = DEFAULT_REQUEST): Exploration {
  const target = scenarioTarget(s);
  const all = req.all ?? s.explore !== null;
  const depth = req.depth ?? (req.mode === "exhaustive" ? (s.explore?.depth ?? null) : 3);
  // Stopping early looks for what the scenario expects: a dangling PTE met on the way to a use-after-free
  // does not end the search (nor the execution) when the use-after-free is the verdict.
  const expect = s.explore?.expect;
  const wanted = !all && expect !== undefined && expect !== "none" ? (f: Finding) => matches(f, expect) : undefined;
  const result = explore(target, {
    mode: req.mode,
    reduction: req.reduction,
    depth,
    runs: req.runs,
    seed: req.seed,
    stopAtFirst: !all,
    maxSchedules: req.maxSchedules,
    ...(wanted ? { stopWhen: wanted } : {}),
    ...(req.onProgress ? { onProgress: req.onProgress } : {}),
  });
  let counterexample: Counterexample | null = null;
  const chosen = pick(s, result.findings);
  if (chosen) {
    const shrunk = shrink(target, chosen);
    const f = shrunk.finding;
    counterexample = {
      finding: f,
      before: { transitions: chosen.schedule.length, preemptions: chosen.preemptions },
      shrinkSchedules: shrunk.schedules,
      trace: traceOf(s, f.schedule),
    };
  }
  const { onProgress: _, ...request } = { ...req, depth };
  return {
    scenario: s.name,
    file: s.file,
    machine: s.machine.name,
    variant: (s.variant ?? s.machine.variant ?? DEFAULT_VARIANT).name,
    threads: s.threads.map((t) => t.name),
    request,
    result,
    counterexample,
    verdict: checkVerdict(s, req, all, result),
  };
}
