/**
 * `npm run bench`: boot, ZONE_DEVICE hot-plug, GUP and explorer benchmarks. Each figure is the median of
 * several fresh-process runs (BENCH_RUNS, default 5). `npm run bench -- --json` prints one JSON object per
 * line: {"name", "value", "unit"}; `--only boot|zone-device|gup|explore` runs one group.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { EngineSample } from "./explore_engine.ts";
import type { ExploreSample } from "./explore_one.ts";

const json = process.argv.includes("--json");
const RUNS = Number(process.env["BENCH_RUNS"] ?? 5);
const onlyAt = process.argv.indexOf("--only");
const ONLY = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
const run = (group: string): boolean => ONLY === undefined || ONLY === group;
const ONE = fileURLToPath(new URL("./boot_one.ts", import.meta.url));

interface Sample {
  ms: number;
  peakRssMiB: number;
  baselineRssMiB: number;
  ramBytes: number;
  modelBytes: number;
  blocks: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function emit(name: string, value: number, unit: string): void {
  const v = Math.round(value * 100) / 100;
  if (json) process.stdout.write(`${JSON.stringify({ name, value: v, unit })}\n`);
  else process.stdout.write(`${name.padEnd(44)} ${String(v).padStart(12)} ${unit}\n`);
}

function sample(preset: string): Sample {
  const out = execFileSync(process.execPath, ["--import", "tsx", ONE, preset], { encoding: "utf8" });
  return JSON.parse(out) as Sample;
}

if (!json) {
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
  process.stdout.write(`# machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; median of ${RUNS} runs; load average ${load}\n`);
}

for (const [label, preset] of !run("boot") ? [] : [
  ["boot x86_64 64 TiB RAM (x86-64t)", "x86-64t"],
  ["boot arm64-64K 4 TiB RAM (arm64-64k-4t)", "arm64-64k-4t"],
  ["boot oracle guest (qemu-q35-3g-pmem1g)", "qemu-q35-3g-pmem1g"],
] as const) {
  const samples = Array.from({ length: RUNS }, () => sample(preset));
  emit(`${label}: time`, median(samples.map((s) => s.ms)), "ms");
  emit(`${label}: peak RSS`, median(samples.map((s) => s.peakRssMiB)), "MiB");
  emit(`${label}: model state`, median(samples.map((s) => s.modelBytes)) / 2 ** 20, "MiB");
  emit(`${label}: RAM modelled`, samples[0]!.ramBytes / 2 ** 30, "GiB");
}

interface DeviceSample {
  rc: number;
  ms: number;
  peakRssMiB: number;
  memmapRamBytes: number;
  memmapDeviceBytes: number;
  pageTableBytes: number;
}

const ZD = fileURLToPath(new URL("./zone_device_one.ts", import.meta.url));
for (const [label, which] of !run("zone-device") ? [] : [
  ["memremap 64 TiB devdax, 2 MiB compound pages", "devdax-2m-64t"],
  ["memremap 16 TiB fsdax, 4 KiB pages, altmap", "fsdax-altmap-16t"],
] as const) {
  const samples = Array.from({ length: RUNS }, () => JSON.parse(execFileSync(process.execPath, ["--import", "tsx", ZD, which], { encoding: "utf8" })) as DeviceSample);
  if (samples.some((s) => s.rc !== 0)) throw new Error(`${label}: memremap_pages failed with ${samples[0]!.rc}`);
  emit(`${label}: time`, median(samples.map((s) => s.ms)), "ms");
  emit(`${label}: peak RSS`, median(samples.map((s) => s.peakRssMiB)), "MiB");
  emit(`${label}: kernel memmap in RAM`, samples[0]!.memmapRamBytes / 2 ** 20, "MiB");
  emit(`${label}: kernel memmap in device`, samples[0]!.memmapDeviceBytes / 2 ** 20, "MiB");
  emit(`${label}: kernel vmemmap page tables`, samples[0]!.pageTableBytes / 2 ** 20, "MiB");
}

interface GupSample {
  pages: number;
  fast: number;
  faultMs: number;
  pinMs: number;
  unpinMs: number;
  peakRssMiB: number;
}

const GUP = fileURLToPath(new URL("./gup_one.ts", import.meta.url));
// The kernel's gup_test PIN_FAST_BENCHMARK over 16 GiB (issue 5: ~6 ms for 2 MiB pages on real hardware).
if (run("gup") && !json) {
  process.stdout.write("# pin_user_pages_fast target: >= 10 M pages/s for both sizes; before/after medians in docs/benchmarks.md\n");
}
for (const [label, align, gib] of !run("gup") ? [] : [
  ["pin_user_pages_fast 16 GiB devdax, 2 MiB PMDs", "2M", "16"],
  ["pin_user_pages_fast 16 GiB devdax, 4 KiB PTEs", "4K", "16"],
] as const) {
  const samples = Array.from({ length: RUNS }, () => JSON.parse(execFileSync(process.execPath, ["--import", "tsx", GUP, align, gib], { encoding: "utf8" })) as GupSample);
  const pin = median(samples.map((s) => s.pinMs));
  emit(`${label}: pin time`, pin, "ms");
  emit(`${label}: pages pinned per second`, (samples[0]!.pages / pin) * 1000, "pages/s");
  emit(`${label}: fault-in time`, median(samples.map((s) => s.faultMs)), "ms");
  emit(`${label}: unpin time`, median(samples.map((s) => s.unpinMs)), "ms");
  emit(`${label}: peak RSS`, median(samples.map((s) => s.peakRssMiB)), "MiB");
}

// The explorer (issue 6): steps per second and time to the first violation for seed 000's race (with and
// without pte_devmap), seed 003 on the 2015 RFC, the leaked page reference, and every seed 002 scenario with
// an `explore: expect:` (read from scenarios/ at run time); one that expects none has no violation to time,
// so it gets only the throughput figures.
const EXPLORE_ONE = fileURLToPath(new URL("./explore_one.ts", import.meta.url));
const EXPLORE_ENGINE = fileURLToPath(new URL("./explore_engine.ts", import.meta.url));
const SCENARIOS = fileURLToPath(new URL("../scenarios/", import.meta.url));

function expectOf(file: string): string | null {
  const doc = parse(readFileSync(`${SCENARIOS}${file}`, "utf8")) as { explore?: { expect?: unknown } } | null;
  return typeof doc?.explore?.expect === "string" ? doc.explore.expect : null;
}

const exploreScenarios = !run("explore")
  ? []
  : [
      "seed000-gup-fast-unbind.yaml",
      "seed000-gup-fast-unbind-no-devmap.yaml",
      "seed003-max-pfn-2015.yaml",
      "driver-leaks-page-ref.yaml",
      ...readdirSync(SCENARIOS)
        .filter((f) => /^seed002-.*\.yaml$/.test(f))
        .sort()
        .filter((f) => expectOf(f) !== null),
    ];
if (exploreScenarios.length && !json) {
  process.stdout.write("# explorer targets (issue 6): >= 1 M scheduled steps/s, each violation found in < 10 s; docs/benchmarks.md\n");
}
const exploreAll: ExploreSample[][] = Array.from({ length: RUNS }, () => []);
for (const file of exploreScenarios) {
  const name = `explore ${file.replace(/\.yaml$/, "")}`;
  const samples = Array.from({ length: RUNS }, () => JSON.parse(execFileSync(process.execPath, ["--import", "tsx", EXPLORE_ONE, `${SCENARIOS}${file}`], { encoding: "utf8" })) as ExploreSample);
  for (const [i, x] of samples.entries()) exploreAll[i]!.push(x);
  const s0 = samples[0]!;
  if (!json) {
    process.stdout.write(`# ${name}: expect ${s0.expect}; ${s0.schedules} schedules (+${s0.pruned} pruned), ${s0.states} end states, ${s0.steps} steps of which ${s0.replaySteps} replayed${s0.golden ? "" : " — NOT the scenario's golden counts"}\n`);
    const costliest = [...s0.setupSteps].sort((a, b) => b.ms - a.ms)[0];
    process.stdout.write(
      `# ${name}: a fresh build is boot ${median(samples.map((x) => x.bootMsMedian)).toFixed(2)} ms${costliest ? ` + ${s0.setupSteps.length} setup steps, the costliest \`${costliest.command}\` ${costliest.ms.toFixed(2)} ms` : ""}; the snapshot ${median(samples.map((x) => x.snapshotMsMedian)).toFixed(2)} ms; a rewind ${median(samples.map((x) => x.rewindMsMedian)).toFixed(3)} ms\n`,
    );
    const other = s0.first?.anyFound;
    if (other && other !== s0.expect) process.stdout.write(`# ${name}: --first stops at ${other} first (${median(samples.map((x) => x.first?.anyMs ?? 0)).toFixed(1)} ms); the figures below time the ${s0.expect}\n`);
    const missed = samples.filter((x) => x.first !== null && !(x.first.found && x.random?.found));
    if (missed.length) process.stdout.write(`# ${name}: the expected ${s0.expect} was not found in ${missed.length} of ${samples.length} --first runs\n`);
  }
  emit(`${name}: steps/s`, median(samples.map((x) => x.stepsPerSec)), "steps/s");
  emit(`${name}: stepping steps/s`, median(samples.map((x) => x.steppingStepsPerSec)), "steps/s");
  emit(`${name}: rewind ms`, median(samples.map((x) => x.rewindMsMedian)), "ms");
  emit(`${name}: start share`, median(samples.map((x) => (x.buildMs / x.wallMs) * 100)), "%");
  emit(`${name}: exhaustive time`, median(samples.map((x) => x.wallMs)), "ms");
  emit(`${name}: exhaustive time re-building`, median(samples.map((x) => x.freshWallMs)), "ms");
  emit(`${name}: rewinding speed-up`, median(samples.map((x) => x.freshWallMs / x.wallMs)), "x");
  const firsts = samples.flatMap((x) => (x.first ? [x.first] : []));
  const randoms = samples.flatMap((x) => (x.random ? [x.random] : []));
  if (firsts.length) {
    emit(`${name}: first violation ms`, median(firsts.map((f) => f.ms)), "ms");
    emit(`${name}: first violation + shrink ms`, median(firsts.map((f) => f.ms + f.shrinkMs)), "ms");
  }
  if (randoms.length) emit(`${name}: random first violation ms`, median(randoms.map((f) => f.ms)), "ms");
}
if (exploreScenarios.length) {
  // The engine alone: transitions that do no kernel work (bench/explore_engine.ts).
  const engine = Array.from({ length: RUNS }, () => JSON.parse(execFileSync(process.execPath, ["--import", "tsx", EXPLORE_ENGINE], { encoding: "utf8" })) as EngineSample);
  const e0 = engine[0]!;
  if (!json) process.stdout.write(`# explore engine: ${e0.schedules} schedules, ${e0.steps} transitions of which ${e0.replaySteps} replayed, none doing kernel work\n`);
  emit("explore engine: steps/s", median(engine.map((x) => x.stepsPerSec)), "steps/s");
  // Over all of them, run by run: every exhaustive exploration's steps over their wall time, and the slowest find.
  const sum = (xs: readonly ExploreSample[], f: (x: ExploreSample) => number): number => xs.reduce((a, x) => a + f(x), 0);
  emit("explore all: steps/s", median(exploreAll.map((xs) => (sum(xs, (x) => x.steps) / sum(xs, (x) => x.wallMs)) * 1000)), "steps/s");
  emit("explore all: stepping steps/s", median(exploreAll.map((xs) => (sum(xs, (x) => x.steps) / sum(xs, (x) => x.stepMs)) * 1000)), "steps/s");
  emit("explore all: start share", median(exploreAll.map((xs) => (sum(xs, (x) => x.buildMs) / sum(xs, (x) => x.wallMs)) * 100)), "%");
  emit("explore all: steps/s re-building", median(exploreAll.map((xs) => (sum(xs, (x) => x.steps) / sum(xs, (x) => x.freshWallMs)) * 1000)), "steps/s");
  emit("explore all: rewinding speed-up", median(exploreAll.map((xs) => sum(xs, (x) => x.freshWallMs) / sum(xs, (x) => x.wallMs))), "x");
  emit("explore all: slowest first violation ms", median(exploreAll.map((xs) => Math.max(0, ...xs.map((x) => x.first?.ms ?? 0)))), "ms");
}
