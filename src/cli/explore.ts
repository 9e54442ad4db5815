/**
 * `zonedev explore scenario.yaml [--exhaustive | --random N --seed S] [--depth D] [--all | --first] [--json]`
 * and `zonedev replay scenario.yaml --schedule TOKEN [--json]` (docs/explore.md).
 *
 * Exit status: 0 when the scenario's explore: expectations hold (or, without any, when nothing was found);
 * 1 when an expectation fails or — without expectations — a violation or hang was found; 2 for bad input.
 */
import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import { kernelVariant } from "../kernel/variant.ts";
import { builtinCommands } from "../scenario/commands.ts";
import { DEFAULT_REQUEST, type ExploreRequest, exploreScenario, replayScenario } from "../scenario/explore.ts";
import { loadScenario, type Scenario } from "../scenario/load.ts";
import { explorationJson, renderExploration, renderTrace, traceJson } from "../scenario/render_explore.ts";

interface ExploreOpts {
  exhaustive?: boolean;
  random?: string;
  seed?: string;
  depth?: string;
  all?: boolean;
  first?: boolean;
  reduction: boolean;
  maxSchedules?: string;
  variant?: string;
  json?: boolean;
}

function intOpt(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(flag, `'${v}' is not a non-negative integer`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(flag, `${n} is outside ${min}..${max}`);
  return n;
}

function load(file: string, variant: string | undefined): Scenario {
  const s = loadScenario(file, builtinCommands());
  if (s.threads.length === 0) throw new UsageError(file, "has no threads: to explore (docs/explore.md)");
  return variant === undefined ? s : { ...s, variant: kernelVariant(variant, "--variant") };
}

export function requestFrom(o: ExploreOpts): ExploreRequest {
  if (o.exhaustive && o.random !== undefined) throw new UsageError("--exhaustive/--random", "give one mode");
  if (o.all && o.first) throw new UsageError("--all/--first", "give one");
  const runs = intOpt("--random", o.random, 1, 10_000_000);
  const seed = intOpt("--seed", o.seed, 0, 2 ** 32 - 1);
  if (seed !== undefined && runs === undefined) throw new UsageError("--seed", "only goes with --random N");
  if (runs !== undefined && !o.reduction) throw new UsageError("--no-reduction", "only goes with --exhaustive");
  return {
    ...DEFAULT_REQUEST,
    mode: runs === undefined ? "exhaustive" : "random",
    runs: runs ?? DEFAULT_REQUEST.runs,
    seed: seed ?? DEFAULT_REQUEST.seed,
    depth: intOpt("--depth", o.depth, runs === undefined ? 0 : 1, 64) ?? null,
    reduction: o.reduction,
    all: o.all ? true : o.first ? false : null,
    maxSchedules: intOpt("--max-schedules", o.maxSchedules, 1, 100_000_000) ?? DEFAULT_REQUEST.maxSchedules,
  };
}

/** A one-line progress report on a terminal's stderr; nothing when stderr is not a terminal. */
function progress(json: boolean): { tick?: (p: { schedules: number; steps: number }) => void; done: () => void } {
  if (json || !process.stderr.isTTY) return { done: () => {} };
  return {
    tick: (p) => process.stderr.write(`\rexploring: ${p.schedules} schedules, ${p.steps} steps`),
    done: () => process.stderr.write("\r\x1b[K"),
  };
}

export function registerExplore(program: Command, exit: { status: number }): void {
  program
    .command("explore")
    .description("explore the interleavings of a scenario's threads; report the first (or every) violation, shrunk and replayable")
    .argument("<scenario>", "a scenario file with threads: (docs/explore.md)")
    .option("--exhaustive", "every schedule, with sleep-set reduction (the default)")
    .option("--random <runs>", "PCT: this many randomized runs instead")
    .option("--seed <n>", "the seed for --random (default 1)")
    .option("--depth <d>", "exhaustive: at most D preemptions; random: the PCT depth (default 3)")
    .option("--all", "explore everything and collect every problem (default when the scenario has explore: expectations)")
    .option("--first", "stop at the first problem of the scenario's expected kind (any, if it expects none)")
    .option("--no-reduction", "exhaustive without sleep sets (slower; for checking the reduction)")
    .option("--max-schedules <n>", "give up after this many executions (default 100000)")
    .option("--variant <name>", "the kernel variant, overriding the scenario's")
    .option("--json", "print one JSON document")
    .action((file: string, opts: ExploreOpts) => {
      const req = requestFrom(opts);
      const s = load(file, opts.variant);
      const p = progress(opts.json === true);
      const t0 = performance.now();
      const e = exploreScenario(s, p.tick ? { ...req, onProgress: p.tick } : req);
      const elapsed = performance.now() - t0;
      p.done();
      process.stdout.write(opts.json ? `${JSON.stringify(explorationJson(e, elapsed), null, 2)}\n` : renderExploration(e, elapsed));
      if (e.verdict ? !e.verdict.ok : e.result.findings.length > 0) exit.status = 1;
      if (e.verdict && !e.verdict.ok) for (const f of e.verdict.failures) process.stderr.write(`zonedev: expectation failed: ${e.verdict ? `${file}: explore: ` : ""}${f}\n`);
    });

  program
    .command("replay")
    .description("run one schedule of a scenario's threads (a token from explore) and print its trace")
    .argument("<scenario>", "the scenario file the token was made for")
    .requiredOption("--schedule <token>", "the schedule token explore printed (zd1-…)")
    .option("--variant <name>", "the kernel variant, overriding the scenario's")
    .option("--json", "print one JSON document")
    .action((file: string, opts: { schedule: string; variant?: string; json?: boolean }) => {
      const s = load(file, opts.variant);
      const t = replayScenario(s, opts.schedule);
      process.stdout.write(opts.json ? `${JSON.stringify(traceJson(t), null, 2)}\n` : renderTrace(t, file));
      if (t.findings.length > 0) exit.status = 1;
    });
}
