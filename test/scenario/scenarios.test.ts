/**
 * Every scenario in scenarios/ loads, runs, and all its expectations hold.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { builtinCommands } from "../../src/scenario/commands.ts";
import { exploreScenario } from "../../src/scenario/explore.ts";
import { loadScenario } from "../../src/scenario/load.ts";
import { failureLines } from "../../src/scenario/render.ts";
import { runScenario } from "../../src/scenario/runner.ts";

const DIR = fileURLToPath(new URL("../../scenarios/", import.meta.url));
const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).sort();

describe("scenarios/", () => {
  it("has the example scenarios", () => {
    for (const f of ["ram-hotplug.yaml", "device-private-teardown.yaml", "fsdax-pgmap-altmap.yaml"]) assert.ok(files.includes(f), f);
  });

  for (const f of files) {
    it(`${f}: every expectation holds`, () => {
      const s = loadScenario(join(DIR, f), builtinCommands());
      const r = runScenario(s);
      assert.deepEqual(failureLines(r), []);
      assert.equal(r.ok, true);
      if (s.explore) {
        // The explorer's verdict and golden counts (docs/explore.md): exhaustive, sleep sets + DPOR.
        const e = exploreScenario(s);
        assert.deepEqual(e.verdict?.failures, [], `${f}: ${e.verdict?.failures.join("; ")}`);
        assert.equal(e.result.complete, true);
      } else {
        assert.ok(r.expectations.checked > 0, "a scenario in scenarios/ checks something");
      }
    });
  }

  it("test fixture scenarios hold too", () => {
    const r = runScenario(loadScenario(join(FIXTURES, "uses-small-x86.yaml"), builtinCommands()));
    assert.deepEqual(failureLines(r), []);
  });
});
