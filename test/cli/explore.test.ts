/**
 * `zonedev explore` and `zonedev replay` as a user runs them: real processes, stdout/stderr/exit status.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { expectUsageError, ROOT, run } from "../support/cli.ts";

const LEAK = "scenarios/driver-leaks-page-ref.yaml";

const tmp = mkdtempSync(join(tmpdir(), "zonedev-explore-"));

describe("zonedev explore", () => {
  it("finds the hang, shrinks it, prints a replay token; the expectation holds, exit 0", () => {
    const r = run("explore", LEAK);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /complete in [\d.]+ s/);
    assert.match(r.out, /hang: teardown waits in memunmap_pages: wait_for_completion\(&pgmap->done\) for pgmap 1 \(dmirror0\) references held by allocated page 0xfcf0000/);
    assert.match(r.out, /replay: zonedev replay scenarios\/driver-leaks-page-ref\.yaml --schedule zd1-[0-9a-f]{6}-[a-z0-9]+/);
    assert.match(r.out, /expect: ok \(found hang, schedules 5, states 3\)/);
  });

  it("--first stops at the scenario's expected kind, past the dangling PTE every schedule meets first", () => {
    const r = run("explore", "scenarios/seed000-gup-fast-unbind-no-devmap.yaml", "--first");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /stopped early in [\d.]+ s/);
    assert.match(r.out, /counterexample: struct-page-use-after-free in try_get_folio/);
    assert.match(r.out, /expect: ok \(found struct-page-use-after-free, absent hang\)/);
  });

  it("replays the token byte for byte, twice the same", () => {
    const token = /--schedule (zd1-\S+)/.exec(run("explore", LEAK).out)![1]!;
    const a = run("replay", LEAK, "--schedule", token);
    const b = run("replay", LEAK, "--schedule", token);
    assert.equal(a.code, 1, "a replay that hangs exits 1");
    assert.equal(a.out, b.out);
    assert.match(a.out, /end state: hang/);
    const j = JSON.parse(run("replay", LEAK, "--schedule", token, "--json").out) as { token: string; lines: unknown[] };
    assert.equal(j.token, token);
    assert.ok(j.lines.length > 0);
  });

  it("--json is one document with the counts and the counterexample", () => {
    const r = run("explore", LEAK, "--json");
    const j = JSON.parse(r.out) as { result: { schedules: number; complete: boolean }; counterexample: { trace: { token: string } }; verdict: { ok: boolean } };
    assert.equal(j.result.complete, true);
    assert.ok(j.result.schedules > 0);
    assert.match(j.counterexample.trace.token, /^zd1-/);
    assert.equal(j.verdict.ok, true);
  });

  it("random mode is seeded", () => {
    const a = run("explore", LEAK, "--random", "20", "--seed", "3", "--json");
    const b = run("explore", LEAK, "--random", "20", "--seed", "3", "--json");
    const strip = (s: string) => s.replace(/"elapsedMs": [\d.]+/, "");
    assert.equal(strip(a.out), strip(b.out));
  });

  it("without expectations, finding something exits 1", () => {
    const f = join(tmp, "noexpect.yaml");
    writeFileSync(f, readFileSync(join(ROOT, LEAK), "utf8").replace(/explore:[\s\S]*$/, ""));
    const r = run("explore", f, "--first");
    assert.equal(r.code, 1);
    assert.match(r.out, /found \d+ problem/);
  });

  it("bad input is one line and exit 2", () => {
    expectUsageError(run("explore", LEAK, "--seed", "3"), /^zonedev: --seed: only goes with --random N$/);
    expectUsageError(run("explore", LEAK, "--random", "x"), /^zonedev: --random: 'x' is not a non-negative integer$/);
    expectUsageError(run("explore", "scenarios/ram-hotplug.yaml"), /has no threads: to explore/);
    expectUsageError(run("replay", LEAK, "--schedule", "zd1-000000-ab"), /^zonedev: --schedule: the token was made for a different scenario/);
    expectUsageError(run("replay", LEAK, "--schedule", "nonsense"), /^zonedev: --schedule: 'nonsense' is not a schedule token/);
  });
});

