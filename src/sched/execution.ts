/**
 * One execution of concurrent threads on one kernel: the scheduler chooses which thread advances, one
 * transition at a time. A transition resumes a thread's kernel path from the yield where it stopped and runs
 * it to its next yield (or to the end of its step); it records what the step read and wrote (the sanitizer's
 * footprint), the violations it caused, and the log lines it printed.
 *
 * A thread is a list of steps run one after the other; each step is a kernel path. A thread whose path
 * yielded a block is not enabled until the block's condition holds. When no thread can advance and some are
 * not finished, the execution is hung: each waiter, where it waits, and on whom.
 */
import type { Kernel } from "../kernel/kernel.ts";
import type { KernelPath, Yield } from "../kernel/path.ts";
import type { Violation } from "../kernel/sanitizer.ts";

/** One step of a thread: a command run as a kernel path. */
export interface ThreadStep<R> {
  /** The command as written, for traces. */
  readonly label: string;
  /** Where it is written (`file:line`), for reports. */
  readonly where: string;
  start(k: Kernel): KernelPath<R>;
}

export interface ThreadProgram<R> {
  readonly name: string;
  readonly steps: readonly ThreadStep<R>[];
}

/** A read/write footprint, with page keys also reading their section (so memmap teardown conflicts with them). */
export interface Footprint {
  readonly reads: ReadonlySet<string>;
  readonly writes: ReadonlySet<string>;
  /** The step resumed from a wait: treat it as touching everything. */
  readonly opaque: boolean;
}

export interface Transition<R> {
  /** 0-based position in the schedule. */
  readonly index: number;
  readonly thread: number;
  /** The thread's step (command) this transition belongs to. */
  readonly step: number;
  /** Where the thread stopped: the yield's label, or "" when the step returned. */
  readonly at: string;
  /** Where the thread resumed from (the previous yield), "" at the start of a step. */
  readonly from: string;
  readonly footprint: Footprint;
  readonly violations: readonly Violation[];
  readonly log: readonly string[];
  /** The scheduler switched away from a thread that could have gone on. */
  readonly preempted: boolean;
  /** The step's result when this transition finished it. */
  readonly result?: R;
}

export interface Waiter {
  thread: number;
  name: string;
  at: string;
  holder: string;
}

interface ThreadRun<R> {
  readonly program: ThreadProgram<R>;
  stepIdx: number;
  path: KernelPath<R> | null;
  pending: Yield | null;
  done: boolean;
  readonly results: R[];
}

/** Checks run after every transition (src/check): invariants over the whole kernel state. */
export type StateCheck = (k: Kernel) => Violation[];

const EMPTY: ReadonlySet<string> = new Set();
const OPAQUE: Footprint = { reads: EMPTY, writes: EMPTY, opaque: true };

/** `page:PFN` also reads `memmap:SECTION`: tearing a section's memmap down writes that key. */
function widen(k: Kernel, reads: Set<string>, writes: Set<string>): void {
  for (const key of [...reads, ...writes]) {
    if (!key.startsWith("page:")) continue;
    reads.add(`memmap:${k.sections.pfnToSectionNr(Number(key.slice(5)))}`);
  }
}

export class Execution<R> {
  readonly k: Kernel;
  readonly transitions: Transition<R>[] = [];
  /** Violations the kernel had before the threads started (the setup's), not this execution's. */
  readonly violationBase: number;
  private last = -1;
  private readonly threads: ThreadRun<R>[];
  private readonly check: StateCheck | null;
  /** Invariant violations already reported, so a broken state is reported once, where it first appeared. */
  private readonly seen = new Set<string>();
  /** Per transition, the violations its state check reported (a replay of the transition reports them again). */
  private readonly checkedAt: (readonly Violation[])[] = [];

  /** What the state check reported before the threads started, as keys (another execution may start from it). */
  readonly baseline: ReadonlySet<string>;

  /**
   * `baseline`, when given, is what the state check reported on this same starting state before (an earlier
   * execution's `baseline`): every schedule starts from the same kernel, so the explorer checks it once.
   */
  constructor(k: Kernel, programs: readonly ThreadProgram<R>[], check: StateCheck | null = null, baseline?: ReadonlySet<string>) {
    this.k = k;
    this.check = check;
    this.violationBase = k.sanitizer.violations.length;
    // What is already broken before the threads start (the setup's doing) is not this execution's finding.
    if (baseline) for (const key of baseline) this.seen.add(key);
    else if (check) for (const v of check(k)) this.seen.add(`${v.kind}|${v.detail}`);
    this.baseline = baseline ?? new Set(this.seen);
    this.threads = programs.map((program) => ({ program, stepIdx: 0, path: null, pending: null, done: program.steps.length === 0, results: [] }));
  }

  get threadCount(): number {
    return this.threads.length;
  }

  threadName(t: number): string {
    return this.threads[t]!.program.name;
  }

  results(t: number): readonly R[] {
    return this.threads[t]!.results;
  }

  isDone(t: number): boolean {
    return this.threads[t]!.done;
  }

  /** Can thread t take a transition now? */
  canRun(t: number): boolean {
    const th = this.threads[t]!;
    if (th.done) return false;
    const p = th.pending;
    return p === null || p.kind === "step" || p.until();
  }

  /** Threads that can take a transition, in thread order. */
  enabled(): number[] {
    const out: number[] = [];
    for (let t = 0; t < this.threads.length; t++) if (this.canRun(t)) out.push(t);
    return out;
  }

  allDone(): boolean {
    return this.threads.every((t) => t.done);
  }

  /** Nothing can advance and something has not finished. */
  hung(): boolean {
    return !this.allDone() && this.enabled().length === 0;
  }

  /** Who waits, where and on whom (for a hang report). */
  waiters(): Waiter[] {
    const out: Waiter[] = [];
    this.threads.forEach((th, thread) => {
      const p = th.pending;
      if (!th.done && p?.kind === "block" && !p.until()) out.push({ thread, name: th.program.name, at: p.at, holder: p.holder?.() ?? "" });
    });
    return out;
  }

  /**
   * Go on without preempting — the thread that ran last while it can, else the lowest that can — until
   * nothing can run (all done, or a hang). The schedule explore tries first, and how a replay ends.
   */
  runWithoutPreemption(): void {
    for (;;) {
      const en = this.enabled();
      if (en.length === 0) return;
      this.step(en.includes(this.last) ? this.last : en[0]!);
    }
  }

  /** This execution's violations (not the setup's). */
  violations(): Violation[] {
    return this.k.sanitizer.violations.slice(this.violationBase);
  }

  /** The violations the state check reported after transition i (not the sanitizer's). */
  checked(i: number): readonly Violation[] {
    return this.checkedAt[i]!;
  }

  /** Advance thread t by one transition. */
  step(t: number): Transition<R> {
    return this.advance(t, null);
  }

  /**
   * Advance thread t by the transition an earlier execution of the same schedule prefix took from the same
   * state (the explorer's replay to a backtrack point). The kernel path runs as in step(), but its footprint
   * and the state check's violations are the ones that execution recorded (`footprint`, `checked(i)`) rather
   * than recorded and checked again: the model is deterministic, so the transition is the same one.
   */
  replay(t: number, known: { readonly footprint: Footprint; readonly checked: readonly Violation[] }): Transition<R> {
    return this.advance(t, known);
  }

  private advance(t: number, known: { readonly footprint: Footprint; readonly checked: readonly Violation[] } | null): Transition<R> {
    const th = this.threads[t]!;
    if (!this.canRun(t)) throw new Error(`scheduler: thread ${th.program.name} cannot run`);
    const k = this.k;
    const preempted = this.last >= 0 && this.last !== t && this.canRun(this.last);
    this.last = t;
    const resumedFromWait = th.pending?.kind === "block";
    const from = th.pending?.at ?? "";
    const step = th.stepIdx;
    // A replay does not record: the accessors skip building footprint keys when nobody records.
    const recording = known ? null : { reads: new Set<string>(), writes: new Set<string>() };
    const v0 = k.sanitizer.violations.length;
    const l0 = k.log.length;
    k.sanitizer.footprint = recording;
    let result: { value: R } | null = null;
    try {
      th.path ??= th.program.steps[step]!.start(k);
      const r = th.path.next();
      if (r.done) {
        result = { value: r.value };
        th.results.push(r.value);
        th.path = null;
        th.pending = null;
        th.stepIdx++;
        th.done = th.stepIdx >= th.program.steps.length;
      } else {
        th.pending = r.value;
      }
    } finally {
      k.sanitizer.footprint = null;
    }
    const violations = k.sanitizer.violations.slice(v0);
    const checked: Violation[] = [];
    if (known) {
      // The same keys the check would report now: everything it returns is either seen or reported once.
      for (const v of known.checked) {
        this.seen.add(`${v.kind}|${v.detail}`);
        checked.push(v);
      }
    } else if (this.check) {
      for (const v of this.check(k)) {
        const key = `${v.kind}|${v.detail}`;
        if (this.seen.has(key)) continue;
        this.seen.add(key);
        checked.push(v);
      }
    }
    for (const v of checked) {
      k.sanitizer.report(v);
      violations.push(v);
    }
    this.checkedAt.push(checked);
    let footprint: Footprint;
    if (recording) {
      widen(k, recording.reads, recording.writes);
      // A step that resumed from a wait depends on whatever ended the wait: order it against everything.
      footprint = resumedFromWait ? OPAQUE : { reads: recording.reads, writes: recording.writes, opaque: false };
    } else footprint = known!.footprint;
    const tr: Transition<R> = {
      index: this.transitions.length,
      thread: t,
      step,
      at: result ? "" : (th.pending?.at ?? ""),
      from,
      footprint,
      violations,
      log: k.log.slice(l0),
      preempted,
      ...(result ? { result: result.value } : {}),
    };
    this.transitions.push(tr);
    return tr;
  }
}

/** Do two transitions of different threads commute? (Neither writes what the other reads or writes.) */
export function independent(a: Footprint, b: Footprint): boolean {
  if (a.opaque || b.opaque) return false;
  for (const w of a.writes) if (b.reads.has(w) || b.writes.has(w)) return false;
  for (const w of b.writes) if (a.reads.has(w)) return false;
  return true;
}
