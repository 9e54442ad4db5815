/**
 * Seed 002 audit, the functions that hold a pgmap reference: is_pci_p2pdma_page() ("safe, page reference is
 * held" — in fact the p2pmem allocation's pgmap reference) and add_to_kill() ("safe, protected by
 * get_dev_pagemap() and dax_lock_page()"). Teardown waits for them in every era; there is no breaking
 * interleaving, and the tests try the unbind at every point of memory_failure() to show it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isPciP2pdmaPage, pciAllocP2pmem, pciFreeP2pmem } from "../../../src/kernel/drivers/pci/p2pdma.ts";
import { MF_ACTION_REQUIRED, memoryFailure } from "../../../src/kernel/mm/memory_failure.ts";
import { devdax, ERAS, HIGH, kinds, p2p, Thread } from "./audit_env.ts";

for (const era of ERAS) {
  describe(`is_pci_p2pdma_page, ${era}`, () => {
    it("(a) a page of a live p2pmem allocation: true", () => {
      const env = p2p(era);
      const pfn = new Thread("alloc", pciAllocP2pmem(env.k, env.pgmap)).finish();
      assert.equal(pfn, HIGH / 4096);
      assert.equal(new Thread("check", isPciP2pdmaPage(env.k, pfn!)).finish(), true);
      assert.deepEqual(kinds(env.k), []);
    });

    it("(b) teardown waits for the allocation; after pci_free_p2pmem it completes, and a stale check reads a freed page", () => {
      const env = p2p(era);
      const pfn = new Thread("alloc", pciAllocP2pmem(env.k, env.pgmap)).finish()!;
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.match(m.at, /wait_for_completion/);
      assert.equal(new Thread("alloc after kill", pciAllocP2pmem(env.k, env.pgmap)).finish(), null, "percpu_ref_tryget_live fails on a dying pgmap");
      new Thread("free", pciFreeP2pmem(env.k, pfn)).finish();
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
      new Thread("stale check", isPciP2pdmaPage(env.k, pfn)).finish();
      assert.deepEqual(kinds(env.k), ["struct-page-use-after-free"]);
    });

    it("(c) teardown between is_zone_device_page() and page->pgmap->type waits; the check completes", () => {
      const env = p2p(era);
      const pfn = new Thread("alloc", pciAllocP2pmem(env.k, env.pgmap)).finish()!;
      const c = new Thread("check", isPciP2pdmaPage(env.k, pfn)).runTo("is_zone_device_page(page)");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.equal(c.finish(), true);
      new Thread("free", pciFreeP2pmem(env.k, pfn)).finish();
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
    });
  });

  describe(`add_to_kill (memory_failure on a device-dax page), ${era}`, () => {
    it("(a) live: the task that consumed the poison is queued and gets SIGBUS for the 2 MiB mapping (at the compound page's address)", () => {
      const env = devdax(era);
      const rc = new Thread("memory_failure", memoryFailure(env.k, env.head + 3, MF_ACTION_REQUIRED, env.t)).finish();
      assert.equal(rc, 0);
      assert.deepEqual(env.t.signals, [`SIGBUS BUS_MCEERR_AR addr=0x${env.addr.toString(16)} lsb=21`]);
      assert.deepEqual(kinds(env.k), []);
    });

    it("(b) after unbind: memory outside kernel control (-ENXIO), no struct page read", () => {
      const env = devdax(era);
      assert.equal(env.unbind().run(), "done");
      assert.equal(new Thread("memory_failure", memoryFailure(env.k, env.head + 3, MF_ACTION_REQUIRED, env.t)).finish(), -6);
      assert.deepEqual(kinds(env.k), []);
    });

    it("(c) unbind at every point of memory_failure: it waits for get_dev_pagemap's reference, never a freed page", () => {
      const probe = devdax(era);
      const n = Thread.count(() => memoryFailure(probe.k, probe.head + 3, MF_ACTION_REQUIRED, probe.t));
      let waited = 0;
      for (let i = 0; i < n; i++) {
        const env = devdax(era);
        const mf = new Thread("memory_failure", memoryFailure(env.k, env.head + 3, MF_ACTION_REQUIRED, env.t));
        for (let j = 0; j < i; j++) mf.step();
        const u = env.unbind();
        const r = u.run();
        if (r === "blocked" && u.at.includes("wait_for_completion")) {
          waited++;
          assert.match(env.pgmap.ref.describeHolders(), /memory_failure/);
        }
        mf.finish();
        // Blocked in wait_for_completion on memory_failure's pgmap reference, or in the RCU grace period of
        // percpu_ref_kill while memory_failure is inside get_dev_pagemap's rcu_read_lock.
        if (r === "blocked") assert.equal(u.run(), "done");
        assert.deepEqual(kinds(env.k), [], `unbind after memory_failure reached ${mf.at || i}`);
      }
      assert.ok(waited > 0, "some points hold the pgmap reference");
    });
  });
}
