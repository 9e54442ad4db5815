/**
 * Exploring the interleavings of a few threads (docs/explore.md).
 *
 * Stateless and replay-based: an execution cannot be copied (kernel paths are generators), so every branch of
 * the schedule tree re-builds the kernel from the scenario's setup and replays the schedule prefix. Two modes:
 *
 * - exhaustive: depth-first over all schedules, with sleep sets (Godefroid) pruning reorderings of
 *   independent transitions — two transitions are independent when neither writes what the other reads or
 *   writes (the sanitizer's footprint); a transition that recorded nothing, or resumed from a wait, is
 *   dependent on everything. An optional preemption bound limits schedules to at most D preemptions
 *   (switching away from a thread that could have gone on).
 * - random: PCT (Burckhardt et al., ASPLOS 2010): random thread priorities and D−1 random priority change
 *   points per run; finds a bug of depth D with probability ≥ 1/(n·k^(D−1)). Seeded, so reproducible.
 *
 * Every transition is checked (sanitizer + invariants); an execution ends when all threads finish or none
 * can advance (a hang).
 */
import type { Kernel } from "../kernel/kernel.ts";
import type { Violation } from "../kernel/sanitizer.ts";
import { Execution, type Footprint, independent, type StateCheck, type ThreadProgram, type Transition, type Waiter } from "./execution.ts";

export interface ExploreTarget<R> {
  /**
   * The kernel with the scenario's setup done: every schedule starts here. It may be the kernel an earlier
   * build() returned, rewound (scenarioTarget does that), so an execution's kernel is only good until the next
   * build().
   */
  build(): Kernel;
  readonly programs: readonly ThreadProgram<R>[];
  readonly check: StateCheck | null;
  /** A stable text for a step's result, to tell end states apart. */
  describe(r: R): string;
}

export interface ExploreOptions {
  mode: "exhaustive" | "random";
  /** Sleep-set reduction (exhaustive). Default true. */
  reduction?: boolean;
  /** At most this many preemptions per schedule (exhaustive), or the PCT depth (random). */
  depth?: number | null;
  /** Random mode: number of runs and the seed. */
  runs?: number;
  seed?: number;
  /** Stop at the first violation or hang (default), or explore everything and collect them all. */
  stopAtFirst?: boolean;
  /**
   * With stopAtFirst: stop at the first finding this accepts rather than at any (e.g. the kind a scenario
   * expects). Executions then go on past the violations it does not accept, unless endAtViolation.
   */
  stopWhen?: (f: Finding) => boolean;
  /** End an execution at its first violation (default: as stopAtFirst without stopWhen); shrinking sets it alone. */
  endAtViolation?: boolean;
  /** Exhaustive: give up after this many executions (the result says it is incomplete). */
  maxSchedules?: number;
  /** Called now and then with the counts so far (for a progress bar). */
  onProgress?: (p: Progress) => void;
  /** Measure where the time goes (the result's `stats`); off by default, so results stay deterministic. */
  stats?: boolean;
}

/** Where an exploration's time went (with `stats: true`); the counts are exact, the times wall-clock ms. */
export interface ExploreStats {
  /** Executions started: each re-builds the kernel (boot + setup) and checks its initial state. */
  builds: number;
  /** Time in those re-builds (target.build and the Execution's initial invariant check). */
  buildMs: number;
  /** Transitions executed (as `steps`), of which replays of a prefix to a backtrack point. */
  steps: number;
  replaySteps: number;
  /** Time inside Execution.step (the kernel path, the sanitizer, the invariants), replays included. */
  stepMs: number;
}

export interface Progress {
  schedules: number;
  steps: number;
}

/** What an execution ended in. */
export interface Outcome {
  kind: "violation" | "hang" | "ok";
  /** A text that tells end states apart: every step's result, the violations' kinds and places, a hang. */
  signature: string;
}

/** A violation (kind and place) or a hang, and the shortest schedule seen that reaches it. */
export interface Finding {
  kind: "violation" | "hang";
  violation?: Violation;
  /** Who waits on whom, for a hang. */
  waiters?: Waiter[];
  /** The schedule up to and including the transition where it first appeared (the whole of it, for a hang). */
  schedule: number[];
  preemptions: number;
}

export interface ExploreResult {
  mode: "exhaustive" | "random";
  /** Executions that ran to an end (all threads done, a hang, or — ending at violations — a violation). */
  schedules: number;
  /** Executions cut short because every enabled thread was asleep (sleep sets) or over the preemption bound. */
  pruned: number;
  /** Transitions executed, replays included. */
  steps: number;
  /** Distinct end states among the completed executions. */
  states: number;
  /** Distinct end states by outcome kind. */
  outcomes: { ok: number; violation: number; hang: number };
  /** One per violation kind and place, and per hang, with the shortest schedule that reaches it. */
  findings: Finding[];
  /** Exhaustive: every schedule (within the bound) was explored. */
  complete: boolean;
  /** Only with `stats: true`. */
  stats?: ExploreStats;
}

export function isError(v: Violation): boolean {
  return v.kind !== "warning";
}

export function findingKey(f: Finding): string {
  return f.kind === "hang" ? `hang|${f.waiters!.map((w) => `${w.name}@${w.at}`).join(",")}` : `${f.violation!.kind}|${f.violation!.at}`;
}

/** The end state of an execution: each thread's step results, the violations, a hang. */
export function outcomeOf<R>(exec: Execution<R>, target: ExploreTarget<R>): Outcome {
  const parts: string[] = [];
  for (let t = 0; t < exec.threadCount; t++) parts.push(`${exec.threadName(t)}: ${exec.results(t).map((r) => target.describe(r)).join(" ; ")}`);
  const errors = exec.violations().filter(isError);
  const kinds = [...new Set(errors.map((v) => `${v.kind}@${v.at}`))].sort();
  if (kinds.length) parts.push(`violations: ${kinds.join(", ")}`);
  const hung = exec.hung();
  if (hung) parts.push(`hang: ${exec.waiters().map((w) => `${w.name} in ${w.at} for ${w.holder}`).join("; ")}`);
  return { kind: errors.length ? "violation" : hung ? "hang" : "ok", signature: parts.join("\n") };
}

/** Every violation kind and place the execution reached (at its first transition), and its hang. */
export function findingsOf<R>(exec: Execution<R>): Finding[] {
  const out = new Map<string, Finding>();
  const schedule: number[] = [];
  let preemptions = 0;
  for (const tr of exec.transitions) {
    schedule.push(tr.thread);
    if (tr.preempted) preemptions++;
    for (const v of tr.violations) {
      if (!isError(v)) continue;
      const f: Finding = { kind: "violation", violation: v, schedule: [...schedule], preemptions };
      const key = findingKey(f);
      if (!out.has(key)) out.set(key, f);
    }
  }
  if (exec.hung()) {
    const f: Finding = { kind: "hang", waiters: exec.waiters(), schedule, preemptions };
    out.set(findingKey(f), f);
  }
  return [...out.values()];
}

/** Preemption accounting: switching away from a thread that could go on costs one. */
function preemptionCost(prev: number, t: number, enabled: readonly number[]): number {
  return prev >= 0 && t !== prev && enabled.includes(prev) ? 1 : 0;
}

/** Run `schedule`, then go on without preempting (the running thread while it can, else the lowest). */
export function runSchedule<R>(target: ExploreTarget<R>, schedule: readonly number[], opts: { complete?: boolean } = {}): { exec: Execution<R>; preemptions: number; fits: boolean } {
  const exec = new Execution(target.build(), target.programs, target.check);
  let prev = -1;
  let preemptions = 0;
  for (const t of schedule) {
    const en = exec.enabled();
    if (!en.includes(t)) return { exec, preemptions, fits: false };
    preemptions += preemptionCost(prev, t, en);
    exec.step(t);
    prev = t;
  }
  if (opts.complete !== false) exec.runWithoutPreemption();
  return { exec, preemptions, fits: true };
}

interface Frame {
  /** Threads enabled at this state. */
  enabled: number[];
  /** Threads this state may branch to (enabled, not asleep, within the bound), in the order tried. */
  candidates: number[];
  /** DPOR: the threads that must be tried here (races found later add to it); null when every candidate is. */
  backtrack: Set<number> | null;
  /** Candidates already tried, in order, with their transition's footprint. */
  tried: Map<number, Footprint>;
  /** The sleep set at this state. */
  sleep: Map<number, Footprint>;
  chosen: number;
  /** What the state check reported after the chosen transition (replays report it again). */
  checked: readonly Violation[];
  prev: number;
  preemptions: number;
}

function wake(sleep: ReadonlyMap<number, Footprint>, fp: Footprint): Map<number, Footprint> {
  const out = new Map<number, Footprint>();
  for (const [t, f] of sleep) if (independent(f, fp)) out.set(t, f);
  return out;
}

class Tally {
  readonly signatures = new Map<string, Outcome["kind"]>();
  readonly findings = new Map<string, Finding>();
  schedules = 0;
  pruned = 0;

  /** Has a finding been recorded (that `accept` accepts, if given)? */
  found(accept: ((f: Finding) => boolean) | undefined): boolean {
    if (!accept) return this.findings.size > 0;
    for (const f of this.findings.values()) if (accept(f)) return true;
    return false;
  }

  record<R>(exec: Execution<R>, target: ExploreTarget<R>): void {
    this.schedules++;
    const o = outcomeOf(exec, target);
    this.signatures.set(o.signature, o.kind);
    for (const f of findingsOf(exec)) {
      const key = findingKey(f);
      const prev = this.findings.get(key);
      if (!prev || f.preemptions < prev.preemptions || (f.preemptions === prev.preemptions && f.schedule.length < prev.schedule.length)) this.findings.set(key, f);
    }
  }

  result<R>(mode: ExploreResult["mode"], steps: number, complete: boolean, meter: Meter<R>): ExploreResult {
    const outcomes = { ok: 0, violation: 0, hang: 0 };
    for (const k of this.signatures.values()) outcomes[k]++;
    const stats = meter.stats(steps);
    return {
      mode,
      schedules: this.schedules,
      pruned: this.pruned,
      steps,
      states: this.signatures.size,
      outcomes,
      findings: [...this.findings.values()],
      complete,
      ...(stats ? { stats } : {}),
    };
  }
}

/** Starts executions and takes transitions; with stats on, also counts and times them. */
class Meter<R> {
  builds = 0;
  buildMs = 0;
  replaySteps = 0;
  stepMs = 0;

  constructor(
    private readonly target: ExploreTarget<R>,
    private readonly timed: boolean,
  ) {}

  /** The initial state check's result, from the first execution (every one starts from the same state). */
  private baseline: ReadonlySet<string> | undefined = undefined;

  /** A fresh execution: the kernel re-built (or rewound) to its state after the setup. */
  start(): Execution<R> {
    this.builds++;
    const t0 = this.timed ? performance.now() : 0;
    const t = this.target;
    const exec = new Execution(t.build(), t.programs, t.check, this.baseline);
    this.baseline ??= exec.baseline;
    if (this.timed) this.buildMs += performance.now() - t0;
    return exec;
  }

  step(exec: Execution<R>, thread: number): Transition<R> {
    if (!this.timed) return exec.step(thread);
    const t0 = performance.now();
    const tr = exec.step(thread);
    this.stepMs += performance.now() - t0;
    return tr;
  }

  replay(exec: Execution<R>, thread: number, known: { footprint: Footprint; checked: readonly Violation[] }): void {
    if (!this.timed) {
      exec.replay(thread, known);
      return;
    }
    const t0 = performance.now();
    exec.replay(thread, known);
    this.stepMs += performance.now() - t0;
  }

  stats(steps: number): ExploreStats | undefined {
    if (!this.timed) return undefined;
    return { builds: this.builds, buildMs: this.buildMs, steps, replaySteps: this.replaySteps, stepMs: this.stepMs };
  }
}

const PROGRESS_EVERY = 64;

/** Depth-first over the schedule tree, with sleep sets and an optional preemption bound. */
function exhaustive<R>(target: ExploreTarget<R>, opts: ExploreOptions): ExploreResult {
  const reduction = opts.reduction ?? true;
  const bound = opts.depth ?? null;
  const stopAtFirst = opts.stopAtFirst ?? true;
  const endAtViolation = opts.endAtViolation ?? (stopAtFirst && opts.stopWhen === undefined);
  const max = opts.maxSchedules ?? 100_000;
  const tally = new Tally();
  const meter = new Meter(target, opts.stats === true);
  const frames: Frame[] = [];
  let steps = 0;
  let exec = meter.start();
  let sleep = new Map<number, Footprint>();

  // DPOR (Flanagan & Godefroid, POPL 2005) on top of sleep sets, when there is no preemption bound: a state
  // branches only to threads whose transition races with a later one. The race is found against the last
  // earlier transition of another thread that is dependent on the new one.
  const dpor = reduction && bound === null;

  const addRace = (i: number, c: number, fp: Footprint): void => {
    for (let j = i - 1; j >= 0; j--) {
      const g = frames[j]!;
      if (g.chosen === c || independent(g.tried.get(g.chosen)!, fp)) continue;
      if (g.enabled.includes(c)) g.backtrack!.add(c);
      else for (const t of g.enabled) g.backtrack!.add(t);
      return;
    }
  };

  /** Take transition c from the state of frame f (the top); true when the execution ends here. */
  const take = (f: Frame, c: number): boolean => {
    const tr = meter.step(exec, c);
    steps++;
    f.tried.set(c, tr.footprint);
    f.checked = exec.checked(tr.index);
    if (dpor) addRace(frames.length - 1, c, tr.footprint);
    if (reduction) {
      // Siblings tried before c sleep in c's subtree until something dependent on them runs.
      const base = new Map(f.sleep);
      for (const [t, fp] of f.tried) if (t !== c) base.set(t, fp);
      sleep = wake(base, tr.footprint);
    }
    return endAtViolation && tr.violations.some(isError);
  };

  let ended = false;
  for (;;) {
    // Forward: extend the current execution to its end (or until every enabled thread sleeps).
    let cut = false;
    while (!ended) {
      const en = exec.enabled();
      if (en.length === 0) break;
      const top = frames[frames.length - 1];
      const prev = top ? top.chosen : -1;
      const p0 = top ? top.preemptions : 0;
      const cands = en.filter((t) => !sleep.has(t) && (bound === null || p0 + preemptionCost(prev, t, en) <= bound));
      if (cands.length === 0) {
        cut = true;
        break;
      }
      // The running thread first: the non-preemptive schedule is the first one explored.
      cands.sort((a, b) => (a === prev ? -1 : b === prev ? 1 : a - b));
      const c = cands[0]!;
      const f: Frame = { enabled: en, candidates: cands, backtrack: dpor ? new Set([c]) : null, tried: new Map(), sleep, chosen: c, checked: [], prev, preemptions: p0 + preemptionCost(prev, c, en) };
      frames.push(f);
      ended = take(f, c);
    }
    if (cut) tally.pruned++;
    else {
      tally.record(exec, target);
      if (stopAtFirst && tally.found(opts.stopWhen)) return tally.result("exhaustive", steps, false, meter);
    }
    const done = tally.schedules + tally.pruned;
    if (done % PROGRESS_EVERY === 0) opts.onProgress?.({ schedules: tally.schedules, steps });
    if (done >= max) return tally.result("exhaustive", steps, false, meter);
    // Backtrack to the deepest state with an untried candidate, rebuild and replay the prefix to it.
    let f: Frame | undefined;
    for (;;) {
      f = frames.pop();
      if (!f) return tally.result("exhaustive", steps, true, meter);
      const g = f;
      if (g.candidates.some((t) => !g.tried.has(t) && (g.backtrack === null || g.backtrack.has(t)))) break;
    }
    const g = f;
    const c = g.candidates.find((t) => !g.tried.has(t) && (g.backtrack === null || g.backtrack.has(t)))!;
    exec = meter.start();
    // The prefix is the one these frames took: replay it without recording footprints or re-checking.
    for (const h of frames) meter.replay(exec, h.chosen, { footprint: h.tried.get(h.chosen)!, checked: h.checked });
    steps += frames.length;
    meter.replaySteps += frames.length;
    const p0 = frames.length ? frames[frames.length - 1]!.preemptions : 0;
    g.chosen = c;
    g.preemptions = p0 + preemptionCost(g.prev, c, exec.enabled());
    frames.push(g);
    ended = take(g, c);
  }
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** PCT: N seeded runs, each with random priorities and depth−1 priority change points. */
function random<R>(target: ExploreTarget<R>, opts: ExploreOptions): ExploreResult {
  const runs = opts.runs ?? 1000;
  const depth = Math.max(1, opts.depth ?? 3);
  const stopAtFirst = opts.stopAtFirst ?? true;
  const endAtViolation = stopAtFirst && opts.stopWhen === undefined;
  const next = rng(opts.seed ?? 1);
  const tally = new Tally();
  const meter = new Meter(target, opts.stats === true);
  let steps = 0;
  let k = 1; // the longest execution seen: change points are drawn from [1, k]
  const n = target.programs.length;
  for (let run = 0; run < runs; run++) {
    const exec = meter.start();
    // Initial priorities depth..depth+n-1 in random order (higher runs first); change point i lowers to depth-i.
    const prio = Array.from({ length: n }, (_, i) => depth + i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [prio[i], prio[j]] = [prio[j]!, prio[i]!];
    }
    const change = new Map<number, number>();
    for (let i = 1; i < depth; i++) change.set(1 + Math.floor(next() * k), depth - i);
    const schedule: number[] = [];
    let stopped = false;
    for (;;) {
      const en = exec.enabled();
      if (en.length === 0) break;
      let t = en[0]!;
      for (const c of en) if (prio[c]! > prio[t]!) t = c;
      const tr = meter.step(exec, t);
      steps++;
      schedule.push(t);
      const lowered = change.get(schedule.length);
      if (lowered !== undefined) prio[t] = lowered;
      if (endAtViolation && tr.violations.some(isError)) {
        stopped = true;
        break;
      }
    }
    k = Math.max(k, schedule.length);
    tally.record(exec, target);
    if (run % PROGRESS_EVERY === 0) opts.onProgress?.({ schedules: tally.schedules, steps });
    if (stopAtFirst && (stopped || tally.found(opts.stopWhen))) break;
  }
  return tally.result("random", steps, false, meter);
}

export function explore<R>(target: ExploreTarget<R>, opts: ExploreOptions): ExploreResult {
  return opts.mode === "random" ? random(target, opts) : exhaustive(target, opts);
}
