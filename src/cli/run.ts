/**
 * `zonedev run scenario.yaml [--show parts] [--json]`, and one-offs: `zonedev run [machine flags] --step '…'`.
 * The whole output is built before anything is printed: bad input is one line on stderr and exit status 2,
 * a failed expectation prints the full run and exits 1.
 */
import { type Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import type { MachineSpec } from "../kernel/boot.ts";
import { kernelVariant } from "../kernel/variant.ts";
import { builtinCommands } from "../scenario/commands.ts";
import { loadScenario, type Scenario, stepsFromCommands } from "../scenario/load.ts";
import { failureLines, renderRunJson, renderRunText } from "../scenario/render.ts";
import { runScenario } from "../scenario/runner.ts";
import { SHOW_PARTS, type ShowPart } from "../scenario/schema.ts";

interface RunOpts {
  preset?: string;
  machine?: string;
  dmesg?: string;
  append?: string;
  arch?: string;
  step: string[];
  show?: string;
  json?: boolean;
  variant?: string;
}

function parseShow(value: string | undefined): ShowPart[] {
  if (value === undefined) return [];
  const parts = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const p of parts) {
    if (!(SHOW_PARTS as readonly string[]).includes(p)) throw new UsageError("--show", `unknown part '${p}' (known: ${SHOW_PARTS.join(", ")})`);
  }
  return parts as ShowPart[];
}

function variantOpt(name: string | undefined) {
  return name === undefined ? null : kernelVariant(name, "--variant");
}

/** Build the scenario the command line describes: a file, or machine flags plus --step commands. */
function scenarioFromArgs(file: string | undefined, opts: RunOpts, resolveMachine: (o: RunOpts) => MachineSpec): Scenario {
  const registry = builtinCommands();
  const machineFlags = (["preset", "machine", "dmesg", "append", "arch"] as const).filter((f) => opts[f] !== undefined);
  if (file !== undefined) {
    if (opts.step.length) throw new UsageError("--step", "give a scenario file or --step commands, not both");
    if (machineFlags.length) throw new UsageError(`--${machineFlags[0]}`, "a scenario file names its machine (machine:); drop the machine flags");
    const s = loadScenario(file, registry);
    const variant = variantOpt(opts.variant);
    return variant ? { ...s, variant } : s;
  }
  if (opts.step.length === 0) throw new UsageError("run", "give a scenario file or at least one --step 'COMMAND'");
  const steps = stepsFromCommands(opts.step, registry);
  const variant = variantOpt(opts.variant);
  const machine = resolveMachine(opts);
  return {
    name: "command line",
    description: null,
    file: null,
    machine,
    machineWhere: machineFlags.length ? machineFlags.map((f) => `--${f}`).join("/") : "--preset",
    variant,
    steps,
    threads: [],
    explore: null,
  };
}

/** Register `run` on a command that already carries the machine options of `zonedev layout`. */
export function registerRun(cmd: Command, resolveMachine: (o: RunOpts) => MachineSpec, exit: { status: number }): void {
  cmd
    .description("run a scenario (docs/scenarios.md): boot its machine, run its steps, check its expectations")
    .argument("[scenario]", "a scenario file (YAML); or give machine flags and --step commands")
    .option("--step <command>", "a step, as a user types it (repeatable; instead of a scenario file)", (v: string, prev: string[]) => [...prev, v], [])
    .addOption(new Option("--show <parts>", `state to print after every step, comma-separated: ${SHOW_PARTS.join(",")}`))
    .option("--variant <name>", "the kernel variant (era or proposal), overriding the scenario's")
    .option("--json", "print one JSON document with every step")
    .action((file: string | undefined, opts: RunOpts) => {
      const show = parseShow(opts.show);
      const scenario = scenarioFromArgs(file, opts, resolveMachine);
      const result = runScenario(scenario, { show });
      const out = opts.json ? renderRunJson(result) : renderRunText(result);
      process.stdout.write(out);
      if (!result.ok) {
        for (const line of failureLines(result)) process.stderr.write(`zonedev: expectation failed: ${line}\n`);
        exit.status = 1;
      }
    });
}
