/**
 * Running a scenario: boot the machine, run the steps in order, and record for each what it printed, its
 * status, whether its expectation held, the sanitizer violations it caused, the kernel log lines it added
 * and (when asked) the state after it. The result is data; render.ts turns it into text or JSON. Nothing
 * here reads a clock or a random source: the same scenario gives the same result, byte for byte.
 */

import { checkInvariants } from "../check/invariants.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { Violation } from "../kernel/sanitizer.ts";
import { type IomemEntry, iomemJson, renderIomem } from "../report/iomem.ts";
import { type MemoryBlockJson, memoryBlocksJson, renderMemoryBlocks } from "../report/memory_blocks.ts";
import { type PgmapJson, pgmapsJson, renderPgmaps } from "../report/pgmaps.ts";
import { renderZoneinfo, type ZoneJson, zoneinfoJson } from "../report/zoneinfo.ts";
import { Execution } from "../sched/execution.ts";
import type { StepOutput } from "./commands.ts";
import { errnoLabel, strerror } from "./errno_text.ts";
import type { Expect, Scenario } from "./load.ts";
import { SHOW_PARTS, type ShowPart } from "./schema.ts";
import { bootScenario, runStep, threadPrograms } from "./threads.ts";

export interface RunOptions {
  /** State to record after every step (a step's own `show:` adds to it). */
  show?: readonly ShowPart[];
}

/** One part of the state after a step, as text and as JSON. */
export interface StatePart {
  part: ShowPart;
  text: string;
  json: IomemEntry[] | ZoneJson[] | MemoryBlockJson[] | PgmapJson[] | Record<string, string> | string[];
}

export interface Verdict {
  ok: boolean;
  /** What was checked, e.g. ["rc -EBUSY", "violation none"]. */
  checked: string[];
  /** Why it failed, one line per field. */
  failures: string[];
}

export interface StepResult {
  /** 1-based, as printed (within its thread, for a thread's step). */
  step: number;
  /** The thread the step belongs to, or null for the scenario's steps. */
  thread: string | null;
  where: string;
  command: string;
  stdout: string;
  rc: number;
  /** The errno behind a failure ("-EINVAL"), or null. */
  errno: string | null;
  hang: { at: string; holder: string } | null;
  violations: Violation[];
  /** Kernel log lines the step added (WARNs, memremap results, …). */
  log: string[];
  expect: Expect | null;
  verdict: Verdict | null;
  state: StatePart[];
}

export interface RunResult {
  scenario: string;
  description: string | null;
  file: string | null;
  machine: string;
  variant: string;
  steps: StepResult[];
  expectations: { checked: number; failed: number };
  /** Every expectation held. */
  ok: boolean;
}

/** The oracle's sysfs dump: `path = value` (newlines as `|`), read errors as busybox cat prints them. */
function sysfsState(k: Kernel): { text: string; json: Record<string, string> } {
  const json: Record<string, string> = {};
  let text = "";
  const dirs = k.sysfs.dirs(k).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const d of dirs) {
    for (const name of [...d.attrs.keys()].sort()) {
      const v = d.attrs.get(name)!.show();
      const value = typeof v === "number" ? `cat: read error: ${strerror(v)}` : v.replace(/\n/g, "|");
      json[`${d.path}/${name}`] = value;
      text += `${d.path}/${name} = ${value}\n`;
    }
  }
  return { text, json };
}

function statePart(k: Kernel, part: ShowPart, log: string[]): StatePart {
  switch (part) {
    case "iomem":
      return { part, text: renderIomem(k), json: iomemJson(k) };
    case "zoneinfo":
      return { part, text: renderZoneinfo(k), json: zoneinfoJson(k) };
    case "sysfs":
      return { part, ...sysfsState(k) };
    case "blocks":
      return { part, text: renderMemoryBlocks(k), json: memoryBlocksJson(k) };
    case "pgmaps":
      return { part, text: renderPgmaps(k), json: pgmapsJson(k) };
    case "log":
      return { part, text: log.map((l) => `${l}\n`).join(""), json: log };
  }
}

function stripFinalNewline(s: string): string {
  return s.endsWith("\n") ? s.slice(0, -1) : s;
}

function describeViolations(vs: readonly Violation[]): string {
  return vs.length ? vs.map((v) => `${v.kind} in ${v.at}`).join(", ") : "none";
}

/** Check a step's result against its expectation. */
export function checkExpect(e: Expect, out: StepOutput, violations: readonly Violation[]): Verdict {
  const checked: string[] = [];
  const failures: string[] = [];
  if (e.rc !== undefined) {
    if (typeof e.rc === "number") {
      checked.push(`rc ${e.rc}`);
      if (out.rc !== e.rc) failures.push(`rc: expected ${e.rc}, got ${out.rc}`);
    } else {
      checked.push(`rc ${e.rc.name}`);
      if (out.errno !== e.rc.errno) {
        const got = out.errno !== undefined ? errnoLabel(out.errno) : out.hang ? "a hang" : "no error";
        failures.push(`rc: expected ${e.rc.name}, got ${got} (rc ${out.rc})`);
      }
    }
  }
  if (e.stdout !== undefined) {
    if (typeof e.stdout === "string") {
      checked.push("stdout");
      if (stripFinalNewline(out.stdout) !== stripFinalNewline(e.stdout)) {
        failures.push(`stdout: expected ${JSON.stringify(stripFinalNewline(e.stdout))}, got ${JSON.stringify(stripFinalNewline(out.stdout))}`);
      }
    } else {
      checked.push("stdout contains");
      if (!out.stdout.includes(e.stdout.contains)) {
        failures.push(`stdout: expected it to contain ${JSON.stringify(e.stdout.contains)}, got ${JSON.stringify(stripFinalNewline(out.stdout))}`);
      }
    }
  }
  if (e.violation !== undefined) {
    checked.push(`violation ${e.violation}`);
    if (e.violation === "none") {
      const errors = violations.filter((v) => v.kind !== "warning");
      if (errors.length) failures.push(`violation: expected none, got ${describeViolations(errors)}`);
    } else if (!violations.some((v) => v.kind === e.violation)) {
      failures.push(`violation: expected ${e.violation}, got ${describeViolations(violations)}`);
    }
  }
  return { ok: failures.length === 0, checked, failures };
}

/** Boot the scenario's machine and run its steps. */
export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const k = bootScenario(s);
  const always = opts.show ?? [];
  const steps: StepResult[] = [];
  let checked = 0;
  let failed = 0;
  const seen = new Set<string>();
  /** Invariants after a step: a broken one is reported once, at the step where it first shows. */
  const invariants = (): Violation[] => {
    const out: Violation[] = [];
    for (const v of checkInvariants(k)) {
      const key = `${v.kind}|${v.detail}`;
      if (seen.has(key)) continue;
      seen.add(key);
      k.sanitizer.report(v);
      out.push(v);
    }
    return out;
  };
  for (const step of s.steps) {
    const v0 = k.sanitizer.violations.length;
    const l0 = k.log.length;
    const out = runStep(k, step);
    invariants();
    const violations = k.sanitizer.violations.slice(v0);
    const log = k.log.slice(l0);
    const verdict = step.expect ? checkExpect(step.expect, out, violations) : null;
    if (verdict) {
      checked++;
      if (!verdict.ok) failed++;
    }
    const parts = SHOW_PARTS.filter((p) => always.includes(p) || step.show.includes(p));
    steps.push({
      step: step.index + 1,
      thread: null,
      where: step.where,
      command: step.command,
      stdout: out.stdout,
      rc: out.rc,
      errno: out.errno !== undefined ? errnoLabel(out.errno) : null,
      hang: out.hang ?? null,
      violations,
      log,
      expect: step.expect,
      verdict,
      state: parts.map((p) => statePart(k, p, log)),
    });
  }
  if (s.threads.length) steps.push(...runThreadsInOrder(k, s, always));
  return {
    scenario: s.name,
    description: s.description,
    file: s.file,
    machine: s.machine.name,
    variant: (s.variant ?? k.variant).name,
    steps,
    expectations: { checked, failed },
    ok: failed === 0,
  };
}

/**
 * The threads without interleaving: each runs until it finishes or waits, then the next one that can go on
 * (the schedule `zonedev explore` tries first). A thread left waiting when nothing can run is a hang.
 */
function runThreadsInOrder(k: Kernel, s: Scenario, always: readonly ShowPart[]): StepResult[] {
  const exec = new Execution(k, threadPrograms(s), checkInvariants);
  exec.runWithoutPreemption();
  const waiting = new Map(exec.waiters().map((w) => [w.thread, w]));
  const out: StepResult[] = [];
  s.threads.forEach((th, t) => {
    th.steps.forEach((step, i) => {
      const trs = exec.transitions.filter((tr) => tr.thread === t && tr.step === i);
      if (trs.length === 0) return;
      const done = trs.find((tr) => tr.result !== undefined)?.result;
      const w = waiting.get(t);
      const o: StepOutput = done ?? (w ? { stdout: `hang: waiting in ${w.at}${w.holder ? ` for ${w.holder}` : ""}\n`, rc: -1, hang: { at: w.at, holder: w.holder } } : { stdout: "", rc: -1 });
      const log = trs.flatMap((tr) => tr.log);
      out.push({
        step: i + 1,
        thread: th.name,
        where: step.where,
        command: step.command,
        stdout: o.stdout,
        rc: o.rc,
        errno: o.errno !== undefined ? errnoLabel(o.errno) : null,
        hang: o.hang ?? null,
        violations: trs.flatMap((tr) => tr.violations),
        log,
        expect: null,
        verdict: null,
        state: SHOW_PARTS.filter((p) => always.includes(p)).map((p) => statePart(k, p, log)),
      });
    });
  });
  return out;
}
