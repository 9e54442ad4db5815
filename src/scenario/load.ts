/**
 * Loading a scenario: YAML → checked steps and a resolved machine, before anything runs. Every bad input is a
 * UsageError `file:line: field: reason` (the line of the field at fault, from yaml's LineCounter, as machine
 * specs do); nothing is printed and nothing boots until the whole scenario is known to be well-formed.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isMap, isScalar, } from "yaml";
import type { z } from "zod";
import { archProfile } from "../arch/profiles.ts";
import { UsageError } from "../errors.ts";
import type { MachineSpec } from "../kernel/boot.ts";
import type { Errno } from "../kernel/errno.ts";
import type { ViolationKind } from "../kernel/sanitizer.ts";
import { type KernelVariant, kernelVariant } from "../kernel/variant.ts";
import { machinePreset } from "../machine/presets.ts";
import { loadMachineFile, machineFileSchema, machineFromDmesg, resolveMachine } from "../machine/spec.ts";
import { readYamlFile } from "../machine/yaml_file.ts";
import { BadArguments, type CommandRegistry, type ScenarioCommand } from "./commands.ts";
import { ERRNO_BY_NAME } from "./errno_text.ts";
import {
  dmesgMachineSchema,
  type expectSchema,
  exploreSchema,
  fileMachineSchema,
  presetMachineSchema,
  type ShowPart,
  scenarioSchema,
  stepObjectSchema,
  threadStepSchema,
} from "./schema.ts";
import { type Invocation, StepSyntaxError, tokenize } from "./tokenize.ts";

export interface Expect {
  /** An exit status, or an errno (negative) with its name. */
  rc?: number | { errno: Errno; name: string };
  stdout?: string | { contains: string };
  violation?: "none" | ViolationKind;
}

export interface ScenarioStep {
  /** 0-based position in the step list. */
  readonly index: number;
  /** Where the step is written: `file:line` or `--step N`. */
  readonly where: string;
  readonly command: string;
  readonly invocation: Invocation;
  readonly cmd: ScenarioCommand;
  readonly expect: Expect | null;
  readonly show: readonly ShowPart[];
}

export interface ScenarioThread {
  readonly name: string;
  /** Where the thread's list is written. */
  readonly where: string;
  readonly steps: readonly ScenarioStep[];
}

export interface ExploreExpect {
  readonly expect: "none" | "hang" | ViolationKind;
  readonly absent: readonly ("hang" | ViolationKind)[];
  readonly schedules: number | null;
  readonly states: number | null;
  readonly depth: number | null;
  readonly where: string;
}

export interface Scenario {
  readonly name: string;
  readonly description: string | null;
  /** The scenario file, or null for `--step` one-offs. */
  readonly file: string | null;
  readonly machine: MachineSpec;
  /** Where the machine is given (`file:line`, or the machine flags), for errors while booting it. */
  readonly machineWhere: string;
  /** The variant that overrides the machine's, if the scenario names one. */
  readonly variant: KernelVariant | null;
  readonly steps: readonly ScenarioStep[];
  /** Step lists run concurrently after the steps (empty: none). */
  readonly threads: readonly ScenarioThread[];
  readonly explore: ExploreExpect | null;
}

type Path = ReadonlyArray<PropertyKey>;

/** `steps[2].expect.rc`, as machine specs name fields. */
export function fieldName(path: Path): string {
  return path
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .replace(/^\./, "");
}

/** A zod issue as `file:line: field: reason`, pointing at an unknown key itself rather than its object. */
function issueError(issue: z.core.$ZodIssue, base: Path, lineOf: (p: Path) => string): UsageError {
  let path: Path = [...base, ...issue.path];
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    path = [...path, issue.keys[0]!];
    message = issue.keys.length === 1 ? "unknown field" : `unknown fields ${issue.keys.join(", ")}`;
  }
  return new UsageError(`${lineOf(path)}: ${fieldName(path)}`, message);
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, base: Path, lineOf: (p: Path) => string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw issueError(r.error.issues[0]!, base, lineOf);
  return r.data;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Split and check one step's command line; `where` (`file:line: steps[2]`) prefixes its errors. */
export function parseStepCommand(text: string, where: string, registry: CommandRegistry): { invocation: Invocation; cmd: ScenarioCommand } {
  let invocation: Invocation;
  try {
    invocation = tokenize(text);
  } catch (e) {
    if (e instanceof StepSyntaxError) throw new UsageError(where, e.message);
    throw e;
  }
  const name = invocation.argv[0]!;
  const cmd = registry.get(name);
  if (!cmd) throw new UsageError(where, `unknown command '${name}' (known: ${registry.names().join(", ")})`);
  try {
    cmd.check(invocation);
  } catch (e) {
    if (e instanceof BadArguments) throw new UsageError(where, `${name}: ${e.message} (usage: ${cmd.usage})`);
    throw e;
  }
  return { invocation, cmd };
}

function toExpect(e: z.output<typeof expectSchema>): Expect {
  const out: Expect = {};
  if (typeof e.rc === "number") out.rc = e.rc;
  else if (e.rc !== undefined) out.rc = { errno: ERRNO_BY_NAME.get(e.rc)!, name: e.rc };
  if (e.stdout !== undefined) out.stdout = e.stdout;
  if (e.violation !== undefined) out.violation = e.violation;
  return out;
}

/** Steps given on the command line (`zonedev run --step '…'`). */
export function stepsFromCommands(commands: readonly string[], registry: CommandRegistry): ScenarioStep[] {
  return commands.map((text, index) => {
    const where = `--step ${index + 1}`;
    if (text.trim() === "") throw new UsageError(where, "empty command");
    const { invocation, cmd } = parseStepCommand(text, where, registry);
    return { index, where, command: text, invocation, cmd, expect: null, show: [] };
  });
}

/** Rewrite a UsageError from the machine layer so it names the scenario's machine field. */
function machineError(e: UsageError, where: string, field: string): UsageError {
  return new UsageError(`${where}: ${field}`, e.message);
}

function readRelative(scenarioFile: string, rel: string, where: string, field: string): { path: string; text: string } {
  const path = join(dirname(scenarioFile), rel);
  try {
    return { path, text: readFileSync(path, "utf8") };
  } catch (e) {
    throw new UsageError(`${where}: ${field}`, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function resolveScenarioMachine(raw: unknown, file: string, lineOf: (p: Path) => string): MachineSpec {
  const at = (...p: PropertyKey[]) => lineOf(["machine", ...p]);
  if (!isRecord(raw)) throw new UsageError(`${at()}: machine`, "give { preset: NAME }, { file: SPEC.yaml }, { dmesg: LOG }, or an inline machine spec");
  const sources = ["preset", "file", "dmesg"].filter((key) => key in raw);
  if (sources.length > 1) throw new UsageError(`${at()}: machine`, `give one machine source, not ${sources.join(" and ")}`);
  if ("preset" in raw) {
    const m = parseWith(presetMachineSchema, raw, ["machine"], lineOf);
    try {
      return machinePreset(m.preset, m.append);
    } catch (e) {
      if (e instanceof UsageError && e.field === "--preset") throw new UsageError(`${at("preset")}: machine.preset`, e.reason);
      if (e instanceof UsageError) throw machineError(e, at(), "machine");
      throw e;
    }
  }
  if ("file" in raw) {
    const m = parseWith(fileMachineSchema, raw, ["machine"], lineOf);
    const { path, text } = readRelative(file, m.file, at("file"), "machine.file");
    // Errors inside the spec file carry that file's own name and line.
    const spec = loadMachineFile(path, text);
    return m.append !== undefined ? { ...spec, commandLine: m.append } : spec;
  }
  if ("dmesg" in raw) {
    const m = parseWith(dmesgMachineSchema, raw, ["machine"], lineOf);
    if (m.arch !== undefined) {
      try {
        archProfile(m.arch);
      } catch (e) {
        if (e instanceof UsageError) throw new UsageError(`${at("arch")}: machine.arch`, e.reason);
        throw e;
      }
    }
    const { path, text } = readRelative(file, m.dmesg, at("dmesg"), "machine.dmesg");
    return machineFromDmesg(path, m.append, m.arch, text);
  }
  // An inline machine spec: the machine-spec schema, with fields named from the scenario's root.
  parseWith(machineFileSchema, raw, ["machine"], lineOf);
  try {
    return resolveMachine(raw, file, (p) => lineOf(["machine", ...p]));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    // resolveMachine names fields relative to the spec: "file:line: e820[0].type" → "… machine.e820[0].type".
    const m = /^(.*?:\d+|[^:]*)(?:: (.*))?$/.exec(e.field);
    const loc = m?.[1] !== undefined && /:\d+$/.test(m[1]) ? m[1] : at();
    const rel = m?.[2];
    throw new UsageError(`${loc}: ${rel ? `machine.${rel}` : "machine"}`, e.reason);
  }
}

/** Load a scenario file (or its text, for tests); `registry` decides which commands exist. */
export function loadScenario(file: string, registry: CommandRegistry, text?: string): Scenario {
  const { doc, lineCounter } = readYamlFile(file, text);
  const lineOf = (path: Path): string => {
    // A mapping key: the line of the key itself (its value may start on the next line).
    const last = path[path.length - 1];
    if (typeof last === "string") {
      const parent = doc.getIn(path.slice(0, -1) as unknown[], true);
      if (isMap(parent)) {
        for (const item of parent.items) {
          if (isScalar(item.key) && item.key.value === last && item.key.range) return `${file}:${lineCounter.linePos(item.key.range[0]).line}`;
        }
      }
    }
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) return `${file}:${lineCounter.linePos(node.range[0]).line}`;
    }
    return `${file}:1`;
  };
  const raw: unknown = doc.toJS();
  if (!isRecord(raw)) throw new UsageError(`${file}:1`, "a scenario is a mapping with machine: and steps: (docs/scenarios.md)");
  if (!("machine" in raw)) throw new UsageError(`${file}:1: machine`, "required");
  if (!("steps" in raw) && !("threads" in raw)) throw new UsageError(`${file}:1: steps`, "required (or threads:)");
  // The top level first (unknown keys, name/variant types), then the machine and each step on their own, so
  // an error names the field rather than "none of the alternatives matched".
  const top = parseWith(scenarioSchema.pick({ name: true, description: true, variant: true }).strict(), {
    ...Object.fromEntries(Object.entries(raw).filter(([k]) => k !== "machine" && k !== "steps" && k !== "threads" && k !== "explore")),
  }, [], lineOf);
  const rawSteps = raw["steps"] ?? [];
  if (!Array.isArray(rawSteps) || ("steps" in raw && rawSteps.length === 0)) throw new UsageError(`${lineOf(["steps"])}: steps`, "give a list of at least one step");
  let variant: KernelVariant | null = null;
  if (top.variant !== undefined) {
    try {
      variant = kernelVariant(top.variant);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${lineOf(["variant"])}: variant`, e.reason);
      throw e;
    }
  }
  const steps = rawSteps.map((s: unknown, index): ScenarioStep => {
    const base = ["steps", index] as const;
    const where = lineOf(base);
    if (typeof s === "string") {
      if (s.trim() === "") throw new UsageError(`${where}: ${fieldName(base)}`, "empty command");
      const { invocation, cmd } = parseStepCommand(s, `${where}: ${fieldName(base)}`, registry);
      return { index, where, command: s, invocation, cmd, expect: null, show: [] };
    }
    if (!isRecord(s)) throw new UsageError(`${where}: ${fieldName(base)}`, "a step is a command string or { run: COMMAND, expect: {...} }");
    const step = parseWith(stepObjectSchema, s, base, lineOf);
    const runWhere = `${lineOf([...base, "run"])}: ${fieldName([...base, "run"])}`;
    if (step.run.trim() === "") throw new UsageError(runWhere, "empty command");
    const { invocation, cmd } = parseStepCommand(step.run, runWhere, registry);
    return {
      index,
      where,
      command: step.run,
      invocation,
      cmd,
      expect: step.expect ? toExpect(step.expect) : null,
      show: step.show ?? [],
    };
  });
  const threads = loadThreads(raw["threads"], registry, lineOf);
  let explore: ExploreExpect | null = null;
  if ("explore" in raw) {
    if (threads.length === 0) throw new UsageError(`${lineOf(["explore"])}: explore`, "needs threads: to explore");
    const e = parseWith(exploreSchema, raw["explore"], ["explore"], lineOf);
    explore = { expect: e.expect, absent: (e.absent ?? []) as ("hang" | ViolationKind)[], schedules: e.schedules ?? null, states: e.states ?? null, depth: e.depth ?? null, where: lineOf(["explore"]) };
  }
  const machine = resolveScenarioMachine(raw["machine"], file, lineOf);
  return {
    name: top.name ?? file,
    description: top.description ?? null,
    file,
    machine,
    machineWhere: `${lineOf(["machine"])}: machine`,
    variant,
    steps,
    threads,
    explore,
  };
}

/** The most threads a scenario may have: schedule tokens name them a–z. */
export const MAX_THREADS = 26;

function loadThreads(raw: unknown, registry: CommandRegistry, lineOf: (p: Path) => string): ScenarioThread[] {
  if (raw === undefined) return [];
  if (!isRecord(raw) || Object.keys(raw).length === 0) throw new UsageError(`${lineOf(["threads"])}: threads`, "give a mapping of thread names to step lists");
  const names = Object.keys(raw);
  if (names.length > MAX_THREADS) throw new UsageError(`${lineOf(["threads"])}: threads`, `at most ${MAX_THREADS} threads, got ${names.length}`);
  return names.map((name) => {
    const base = ["threads", name] as const;
    if (!/^[A-Za-z_][\w-]*$/.test(name)) throw new UsageError(`${lineOf(base)}: ${fieldName(base)}`, "a thread name is letters, digits, _ and - (starting with a letter or _)");
    const list = raw[name];
    if (!Array.isArray(list) || list.length === 0) throw new UsageError(`${lineOf(base)}: ${fieldName(base)}`, "give a list of at least one step");
    const steps = list.map((s: unknown, index): ScenarioStep => {
      const at = [...base, index] as const;
      const where = lineOf(at);
      parseWith(threadStepSchema, s, at, lineOf);
      const text = typeof s === "string" ? s : String((s as { run: string }).run);
      const runAt = typeof s === "string" ? at : ([...at, "run"] as const);
      const runWhere = `${lineOf(runAt)}: ${fieldName(runAt)}`;
      if (text.trim() === "") throw new UsageError(runWhere, "empty command");
      const { invocation, cmd } = parseStepCommand(text, runWhere, registry);
      return { index, where, command: text, invocation, cmd, expect: null, show: [] };
    });
    return { name, where: lineOf(base), steps };
  });
}
