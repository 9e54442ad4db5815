/**
 * An exploration and a trace as text a kernel developer reads, or as JSON for tools. Pure functions.
 */
import type { Violation } from "../kernel/sanitizer.ts";
import type { Finding } from "../sched/explore.ts";
import type { Exploration, Trace, TraceLine } from "./explore.ts";

function violationText(v: Violation): string {
  return `${v.kind} in ${v.at}: ${v.detail}`;
}

function findingText(f: Finding): string {
  if (f.kind === "hang") {
    return `hang: ${f.waiters!.map((w) => `${w.name} waits in ${w.at}${w.holder ? ` for ${w.holder}` : ""}`).join("; ")}`;
  }
  return violationText(f.violation!);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Distinct lines, repeats counted (a teardown touching 512 freed struct pages is one line). */
function grouped(vs: readonly Violation[]): string[] {
  const m = new Map<string, { v: Violation; n: number }>();
  for (const v of vs) {
    const key = `${v.kind}|${v.at}`;
    const g = m.get(key);
    if (g) g.n++;
    else m.set(key, { v, n: 1 });
  }
  return [...m.values()].map(({ v, n }) => `${violationText(v)}${n > 1 ? ` (×${n}, first shown)` : ""}`);
}

function lineText(l: TraceLine, width: number): string {
  const head = `#${String(l.index).padStart(3)} ${l.letter} ${l.thread.padEnd(width)} `;
  const pad = " ".repeat(head.length);
  const what = l.at === "" ? (l.result ? "returns" : "") : `→ ${l.at}`;
  const out = [`${head}${l.preempted ? "(preempts) " : ""}${l.from === "" ? `$ ${l.command}  ` : ""}${what}`];
  if (l.writes.length) out.push(`${pad}  writes ${l.writes.slice(0, 4).join(", ")}${l.writes.length > 4 ? ` +${l.writes.length - 4} more` : ""}`);
  for (const line of l.log) out.push(`${pad}  log: ${line}`);
  for (const v of grouped(l.violations)) out.push(`${pad}  !! ${v}`);
  if (l.result) {
    const text = l.result.stdout.trimEnd();
    const rc = l.result.rc !== 0 ? ` [rc=${l.result.rc}${l.result.errno ? ` ${l.result.errno}` : ""}]` : "";
    if (text || rc) out.push(`${pad}  = ${text.split("\n").join(`\n${pad}    `)}${rc}`);
  }
  return out.join("\n");
}

export function renderTrace(t: Trace, file: string | null): string {
  const width = Math.max(...t.lines.map((l) => l.thread.length), 1);
  const lines = [`schedule ${t.token} (${plural(t.lines.length, "transition")}, ${plural(t.preemptions, "preemption")})`];
  if (file) lines.push(`replay: zonedev replay ${file} --schedule ${t.token}`);
  for (const l of t.lines) lines.push(lineText(l, width));
  const end = t.findings.length ? t.findings.map((f) => `  ${findingText(f)}`).join("\n") : "  none";
  lines.push(`end state: ${t.outcome.kind}`, `findings:\n${end}`);
  return `${lines.join("\n")}\n`;
}

export function renderExploration(e: Exploration, elapsedMs: number | null): string {
  const r = e.result;
  const lines = [
    `# explore: ${e.scenario}`,
    `# machine ${e.machine}; variant ${e.variant}; threads ${e.threads.map((t, i) => `${String.fromCharCode(97 + i)}=${t}`).join(" ")}`,
  ];
  const how =
    r.mode === "exhaustive"
      ? `exhaustive${!e.request.reduction ? ", no reduction" : e.request.depth === null ? ", sleep sets + DPOR" : ", sleep sets"}${e.request.depth !== null ? `, ≤ ${plural(e.request.depth, "preemption")}` : ""}`
      : `random (PCT depth ${e.request.depth}, seed ${e.request.seed}, ${plural(e.request.runs, "run")})`;
  lines.push(`${how}: ${plural(r.schedules, "schedule")} run to an end, ${r.pruned} pruned, ${plural(r.steps, "step")}, ${plural(r.states, "distinct end state")} (${r.outcomes.ok} clean, ${r.outcomes.violation} violating, ${r.outcomes.hang} hung)${r.mode === "exhaustive" ? (r.complete ? "; complete" : "; stopped early") : ""}${elapsedMs !== null ? ` in ${(elapsedMs / 1000).toFixed(2)} s` : ""}`);
  if (r.findings.length === 0) lines.push("found: nothing — no schedule breaks an invariant, trips the sanitizer or hangs");
  else {
    lines.push(`found ${plural(r.findings.length, "problem")}:`);
    for (const f of r.findings) lines.push(`  ${findingText(f)}`);
  }
  const c = e.counterexample;
  if (c) {
    lines.push("", `counterexample: ${findingText(c.finding)}`);
    lines.push(`shrunk from ${plural(c.before.transitions, "transition")}, ${plural(c.before.preemptions, "preemption")} to ${plural(c.finding.schedule.length, "transition")}, ${plural(c.finding.preemptions, "preemption")} (${c.shrinkSchedules} schedules searched)`);
    lines.push(renderTrace(c.trace, e.file).trimEnd());
  }
  if (e.verdict) {
    lines.push("");
    if (e.verdict.ok) lines.push(`expect: ok (${e.verdict.checked.join(", ")})`);
    else for (const f of e.verdict.failures) lines.push(`expect: FAILED: ${f}`);
  }
  return `${lines.join("\n")}\n`;
}

export function explorationJson(e: Exploration, elapsedMs: number | null): object {
  return { ...e, elapsedMs };
}

export function traceJson(t: Trace): object {
  return t;
}
