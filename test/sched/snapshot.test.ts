/**
 * Rewinding a kernel in place (src/sched/snapshot.ts): a rewound kernel is the kernel a fresh boot + setup
 * builds, object for object, after any schedule; and explorations that rewind find what explorations that
 * re-build find, schedule for schedule — on every scenario with threads.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import { sideTable } from "../../src/kernel/lib/rewind.ts";
import { type KernelPath, step } from "../../src/kernel/path.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { builtinCommands } from "../../src/scenario/commands.ts";
import { loadScenario } from "../../src/scenario/load.ts";
import { scenarioTarget } from "../../src/scenario/threads.ts";
import { explore, runSchedule } from "../../src/sched/explore.ts";
import { Snapshot } from "../../src/sched/snapshot.ts";
import { kernelGraph } from "../support/kernel_graph.ts";

const DIR = "scenarios";
const registry = builtinCommands();
const withThreads = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => loadScenario(join(DIR, f), registry))
  .filter((s) => s.threads.length > 0);

describe("snapshot: restore puts back what the objects held", () => {
  it("properties, elements, entries, typed arrays and side-table entries, into the same objects", () => {
    const table = sideTable<object, { n: number }>();
    const inner = { n: 1, list: [1, 2, 3] };
    const root = { inner, map: new Map([["a", inner]]), set: new Set([1]), bytes: new Uint8Array([1, 2]), keyed: {} };
    table.set(root.keyed, { n: 7 });
    const snap = new Snapshot(root);
    inner.n = 2;
    inner.list.push(4);
    (inner as { extra?: number }).extra = 1;
    root.map.set("b", { n: 3, list: [] });
    root.set.delete(1);
    root.bytes[0] = 9;
    table.get(root.keyed)!.n = 8;
    table.set(root.inner, { n: 0 });
    snap.restore();
    assert.equal(root.inner, inner);
    assert.deepEqual(inner, { n: 1, list: [1, 2, 3] });
    assert.deepEqual([...root.map.keys()], ["a"]);
    assert.deepEqual([...root.set], [1]);
    assert.deepEqual([...root.bytes], [1, 2]);
    assert.equal(table.get(root.keyed)!.n, 7);
    assert.equal(table.has(root.inner), false);
  });

  it("refuses a kernel path that is still running", () => {
    function* path(): KernelPath<number> {
      yield step("half way");
      return 0;
    }
    const running = path();
    running.next();
    assert.throws(() => new Snapshot({ running }), /still running/);
  });

  it("refuses a WeakMap it cannot walk", () => {
    assert.throws(() => new Snapshot({ w: new WeakMap() }), /WeakMap.*side table/);
  });

  it("a booted kernel rewinds to itself after a re-boot's worth of changes", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    const before = kernelGraph(k);
    const snap = new Snapshot(k);
    k.log.push("changed");
    k.memmap.set(0x1000, "refcount", 5);
    snap.restore();
    assert.equal(kernelGraph(k), before);
  });
});

describe("snapshot: a rewound scenario kernel is the freshly built one", () => {
  for (const s of withThreads) {
    it(`${s.name}: after the non-preemptive schedule, then after the last thread first`, () => {
      const rewinding = scenarioTarget(s);
      const fresh = kernelGraph(scenarioTarget(s, { rewind: false }).build());
      const first = runSchedule(rewinding, []);
      assert.ok(first.exec.transitions.length > 0);
      const k = rewinding.build();
      assert.equal(k, first.exec.k, "the same kernel object, rewound");
      assert.equal(kernelGraph(k), fresh);
      const last = s.threads.length - 1;
      const second = runSchedule(rewinding, [last]);
      assert.ok(second.fits);
      assert.equal(kernelGraph(rewinding.build()), fresh);
    });
  }
});

describe("snapshot: explorations that rewind agree with explorations that re-build", () => {
  for (const s of withThreads) {
    it(`${s.name}: the same schedules, steps, end states and findings`, () => {
      const opts = { mode: "exhaustive" as const, depth: s.explore?.depth ?? null, stopAtFirst: false, maxSchedules: 150 };
      const rewound = explore(scenarioTarget(s), opts);
      const rebuilt = explore(scenarioTarget(s, { rewind: false }), opts);
      assert.ok(rewound.schedules > 0);
      assert.deepEqual(rewound, rebuilt);
    });
  }
});
