/**
 * Seed 002 audit, smaps_pmd_entry() ("unsafe"): smaps reads the struct page of a devmap PMD under the PMD lock,
 * with no page or pgmap reference. device-dax: safe in every era — unbind zaps the PMD (under the same lock)
 * before memunmap_pages frees the memmap. fsdax on pmem: unbind zaps nothing, so the PMD outlives the memmap and
 * smaps reads freed struct pages — in every era; the sub-section map changes nothing (smaps starts from a PMD).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type SmapsMiss, type SmapsPmd, smapsPmdEntry } from "../../../src/kernel/fs/proc/task_mmu.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import type { Task } from "../../../src/kernel/mm/mm_types.ts";
import { devdax, ERAS, type Era, fsdax, kinds, MiB, Thread } from "./audit_env.ts";

function smaps(env: { k: Kernel; t: Task; addr: number }): Thread<SmapsPmd | SmapsMiss> {
  return new Thread("smaps", smapsPmdEntry(env.k, env.t, env.addr));
}

/**
 * Unbind run whole at each point of smaps' path: after 0, 1, … transitions of smaps. The sanitizer's verdict for
 * each insertion point, and where smaps stood.
 */
function unbindAtEveryPoint(era: Era, setup: (era: Era) => ReturnType<typeof devdax> | ReturnType<typeof fsdax>): Array<{ at: string; kinds: string[] }> {
  const probe = setup(era);
  const n = Thread.count(() => smapsPmdEntry(probe.k, probe.t, probe.addr));
  const out: Array<{ at: string; kinds: string[] }> = [];
  for (let i = 0; i < n; i++) {
    const env = setup(era);
    const s = smaps(env);
    for (let j = 0; j < i; j++) s.step();
    const at = s.at;
    const from = env.k.sanitizer.violations.length;
    assert.equal(env.unbind().run(), "done");
    s.finish();
    out.push({ at: at || "(start)", kinds: kinds(env.k, from) });
  }
  return out;
}

for (const era of ERAS) {
  describe(`smaps_pmd_entry, ${era}`, () => {
    it("(a) device-dax, live: the 2 MiB devmap PMD is ZONE_DEVICE, Rss 2048 kB, nothing flagged", () => {
      const env = devdax(era);
      const r = smaps(env).finish();
      assert.ok(typeof r !== "string");
      assert.equal(r.pfn, env.head);
      assert.equal(r.zoneDevice, true);
      assert.equal(r.mss.resident, 2 * MiB);
      assert.deepEqual(kinds(env.k), []);
    });

    it("(b) device-dax, after unbind: the PMD was zapped, smaps finds no huge PMD and touches no struct page", () => {
      const env = devdax(era);
      assert.equal(env.unbind().run(), "done");
      assert.equal(env.pgmap.state, "exited");
      assert.equal(smaps(env).finish(), "no-huge-pmd");
      assert.deepEqual(kinds(env.k), []);
    });

    it("(c) device-dax, unbind at every point of smaps: never a freed struct page (the zap takes the PMD lock first)", () => {
      const verdicts = unbindAtEveryPoint(era, devdax);
      assert.ok(verdicts.length >= 3);
      assert.ok(verdicts.some((v) => v.at.includes("pmd_trans_huge_lock")), "unbind was tried right before the PMD lock");
      for (const v of verdicts) assert.deepEqual(v.kinds, [], `unbind after smaps reached ${v.at}`);
    });

    it("(b) fsdax on pmem, after unbind: the PMD is still there over a torn-down memmap — smaps reads freed struct pages", () => {
      const env = fsdax(era);
      assert.equal(env.unbind().run(), "done");
      const from = env.k.sanitizer.violations.length;
      const r = smaps(env).finish();
      assert.ok(typeof r !== "string");
      assert.ok(kinds(env.k, from).includes("struct-page-use-after-free"));
      assert.ok(env.k.sanitizer.violations.slice(from).some((v) => v.pfn === env.pfn && v.at.startsWith("follow_trans_huge_pmd")));
    });

    it("(c) fsdax, unbind at every point of smaps: wherever it lands before smaps' locked section, that section reads freed struct pages", () => {
      const verdicts = unbindAtEveryPoint(era, fsdax);
      assert.ok(verdicts.some((v) => v.at.includes("pmd_trans_huge_lock")), "smaps decided the PMD is huge, unbind freed the memmap, smaps locked and read it");
      for (const v of verdicts) assert.deepEqual(v.kinds, ["struct-page-use-after-free"], `unbind after smaps reached ${v.at}`);
      // Only a whole smaps before the unbind is clean.
      const env = fsdax(era);
      smaps(env).finish();
      assert.equal(env.unbind().run(), "done");
      assert.deepEqual(kinds(env.k), []);
    });
  });
}
