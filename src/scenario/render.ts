/**
 * A run's result as a terminal transcript or as one JSON document. Pure functions of the result.
 */
import { errnoName } from "../kernel/errno.ts";
import type { Violation } from "../kernel/sanitizer.ts";
import type { RunResult, StatePart, StepResult } from "./runner.ts";

const HEADERS: Record<StatePart["part"], string> = {
  iomem: "/proc/iomem",
  zoneinfo: "/proc/zoneinfo (zone lines the model predicts)",
  sysfs: "sysfs",
  blocks: "/sys/devices/system/memory",
  pgmaps: "dev_pagemaps",
  log: "kernel log (lines this step added)",
};

function withNewline(s: string): string {
  return s === "" || s.endsWith("\n") ? s : `${s}\n`;
}

function violationLine(v: Violation): string {
  return v.kind === "warning" ? `WARNING: ${v.at}: ${v.detail}` : `sanitizer: ${v.kind} in ${v.at}: ${v.detail}`;
}

/** One line per kind and place; repeats (a teardown touching 1024 freed struct pages) are counted, the first shown. */
function violationLines(vs: readonly Violation[]): string[] {
  const groups = new Map<string, { first: Violation; n: number }>();
  for (const v of vs) {
    const key = `${v.kind}\u0000${v.at}`;
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { first: v, n: 1 });
  }
  return [...groups.values()].map(({ first, n }) => `${violationLine(first)}${n > 1 ? ` (×${n}, first shown)` : ""}`);
}

/** `[rc=-16 -EBUSY]` for a kernel step's errno, `[rc=1]` for a tool, `[rc=-1 hang]`. */
function rcLine(s: StepResult): string {
  if (s.hang) return `[rc=${s.rc} hang]`;
  const named = s.rc < 0 && s.errno !== null && errnoName(s.rc) === s.errno;
  return `[rc=${s.rc}${named ? ` ${s.errno}` : ""}]`;
}

function renderStep(s: StepResult): string {
  let out = `$ ${s.thread ? `[${s.thread}] ` : ""}${s.command}\n${withNewline(s.stdout)}`;
  if (s.rc !== 0) out += `${rcLine(s)}\n`;
  for (const line of violationLines(s.violations)) out += `${line}\n`;
  if (s.verdict) {
    out += s.verdict.ok
      ? `expect: ok (${s.verdict.checked.join(", ")})\n`
      : s.verdict.failures.map((f) => `expect: FAILED: ${f}\n`).join("");
  }
  for (const p of s.state) out += `\n== ${HEADERS[p.part]} ==\n${withNewline(p.text) || "(nothing)\n"}`;
  return s.state.length ? `${out}\n` : out;
}

/** The failed expectations, one line each: `file:line: step N \`cmd\`: rc: expected …`. */
export function failureLines(r: RunResult): string[] {
  const lines: string[] = [];
  for (const s of r.steps) {
    if (!s.verdict || s.verdict.ok) continue;
    for (const f of s.verdict.failures) lines.push(`${s.where}: step ${s.step} \`${s.command}\`: ${f}`);
  }
  return lines;
}

export function renderRunText(r: RunResult): string {
  let out = `# scenario: ${r.scenario}\n`;
  if (r.description) out += `# ${r.description.trim().replace(/\n/g, "\n# ")}\n`;
  out += `# machine: ${r.machine}; variant ${r.variant}\n`;
  for (const s of r.steps) out += renderStep(s);
  const { checked, failed } = r.expectations;
  const steps = `${r.steps.length} step${r.steps.length === 1 ? "" : "s"}`;
  if (checked === 0) out += `# ${steps}, no expectations\n`;
  else if (failed === 0) out += `# ${steps}; all ${checked} expectation${checked === 1 ? "" : "s"} hold\n`;
  else {
    out += `# ${steps}; ${failed} of ${checked} expectation${checked === 1 ? "" : "s"} FAILED:\n`;
    for (const l of failureLines(r)) out += `#   ${l}\n`;
  }
  return out;
}

/** One JSON document: the run and every step, state parts as JSON. */
export function runJson(r: RunResult): object {
  return {
    scenario: r.scenario,
    description: r.description,
    file: r.file,
    machine: r.machine,
    variant: r.variant,
    ok: r.ok,
    expectations: r.expectations,
    steps: r.steps.map((s) => ({
      step: s.step,
      thread: s.thread,
      where: s.where,
      command: s.command,
      stdout: s.stdout,
      rc: s.rc,
      errno: s.errno,
      hang: s.hang,
      violations: s.violations,
      log: s.log,
      expect: s.expect,
      verdict: s.verdict,
      state: Object.fromEntries(s.state.map((p) => [p.part, p.json])),
    })),
  };
}

export function renderRunJson(r: RunResult): string {
  return `${JSON.stringify(runJson(r), null, 2)}\n`;
}
