/**
 * Seed 002 audit, soft_offline_page() ("unsafe"), from its two entry points.
 *
 * sysfs (a pfn from user space, nothing held), on a device whose 2 MiB share a section with boot RAM:
 * - 5.4: pfn_to_online_page() only asks whether the section is online, so the device pfn passes and
 *   soft_offline_page() reads its struct page to learn it is ZONE_DEVICE — a use-after-free once the device is
 *   gone, or if it goes in between.
 * - 6.1: the sub-section check and get_dev_pagemap() keep it away from the struct page — except while the pgmap is
 *   dying: get_dev_pagemap() fails, the pfn reads as online, and the teardown can free the memmap before
 *   soft_offline_page() reads it.
 * - zone-device-subsection-map: the pfn's ZONE_DEVICE bit answers, stays set until the memmap is gone, no window.
 * madvise(MADV_SOFT_OFFLINE) (a GUP reference): safe in 5.4 (the reference holds the device), a use-after-free in
 * 6.1 and with the proposal (the reference does not; no pfn check can help).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { madviseSoftOffline, softOfflinePageStore } from "../../../src/kernel/mm/memory_failure_soft.ts";
import type { KernelPath } from "../../../src/kernel/path.ts";
import { devdax, ERAS, type Era, kinds, SHARED_DEV_PFN, sharedSection, Thread } from "./audit_env.ts";

/** Run a path to its end, recording whether it read the struct page of pfn. */
function readsPage<T>(k: Kernel, pfn: number, path: KernelPath<T>): { value: T; read: boolean } {
  const reads = new Set<string>();
  const t = new Thread("probe", path);
  let read = false;
  while (!t.done) {
    k.sanitizer.footprint = { reads, writes: new Set() };
    try {
      t.step();
    } finally {
      k.sanitizer.footprint = null;
    }
    if (reads.has(`page:${pfn}`)) read = true;
  }
  return { value: t.value, read };
}

/** Which eras read the device page to answer (only 5.4, which asks is_zone_device_page). */
const readsToAnswer = (era: Era): boolean => era === "5.4";

for (const era of ERAS) {
  describe(`soft_offline_page via sysfs, device pfn in a section shared with boot RAM, ${era}`, () => {
    it(`(a) live: -EIO; ${readsToAnswer(era) ? "found out by reading the struct page" : "decided by pfn, the struct page untouched"}`, () => {
      const { k } = sharedSection(era);
      const r = readsPage(k, SHARED_DEV_PFN, softOfflinePageStore(k, SHARED_DEV_PFN));
      assert.equal(r.value.rc, -5);
      assert.equal(r.read, readsToAnswer(era));
      assert.deepEqual(kinds(k), []);
    });

    it(`(b) after the device is gone: ${era === "5.4" ? "the online section still says online: a freed struct page is read" : "-EIO, nothing read (the sub-section is gone)"}`, () => {
      const { k, memunmap } = sharedSection(era);
      assert.equal(memunmap().run(), "done");
      const r = softOfflinePageStore(k, SHARED_DEV_PFN);
      assert.equal(new Thread("soft_offline", r).finish().rc, -5);
      assert.deepEqual(kinds(k), era === "5.4" ? ["struct-page-use-after-free"] : []);
    });

    it(`(c) teardown between pfn_to_online_page()'s answer and the next struct page read: ${era === "zone-device-subsection-map" ? "no window" : "use-after-free"}`, () => {
      const { k, memunmap } = sharedSection(era);
      const m = memunmap().runTo("memunmap_pages: percpu_ref_kill");
      const s = new Thread("soft_offline", softOfflinePageStore(k, SHARED_DEV_PFN)).runTo("pfn_to_online_page");
      assert.equal(m.run(), "done");
      assert.equal(s.finish().rc, -5);
      if (era === "zone-device-subsection-map") {
        assert.deepEqual(kinds(k), []);
      } else {
        const v = k.sanitizer.violations.find((x) => x.kind === "struct-page-use-after-free");
        assert.ok(v);
        assert.equal(v.pfn, SHARED_DEV_PFN);
        assert.equal(v.at, era === "5.4" ? "soft_offline_page: is_zone_device_page" : "soft_offline_page: PageHWPoison(page)");
      }
    });
  });

  describe(`soft_offline_page via sysfs, device-dax pfn (a section of its own), ${era}`, () => {
    it("live and after unbind: -EIO then -ENXIO, the struct page never read", () => {
      const env = devdax(era);
      const live = readsPage(env.k, env.head, softOfflinePageStore(env.k, env.head));
      assert.deepEqual([live.value.rc, live.read], [-5, false]);
      assert.equal(env.unbind().run(), "done");
      const gone = readsPage(env.k, env.head, softOfflinePageStore(env.k, env.head));
      assert.deepEqual([gone.value.rc, gone.read], [-6, false]);
      assert.deepEqual(kinds(env.k), []);
    });
  });

  describe(`soft_offline_page via madvise(MADV_SOFT_OFFLINE) on device-dax, ${era}`, () => {
    it("(a) live: -EIO, the GUP reference put back", () => {
      const env = devdax(era);
      const r = new Thread("madvise", madviseSoftOffline(env.k, env.t, env.addr)).finish();
      assert.equal(r.rc, -5);
      assert.equal(r.pfn, env.head);
      assert.equal(env.k.memmap.get(env.head).refcount, 1);
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(c) unbind after get_user_pages_fast returned: ${era === "5.4" ? "waits for the reference; safe" : "the reference does not hold the device: use-after-free"}`, () => {
      const env = devdax(era);
      const mad = new Thread("madvise", madviseSoftOffline(env.k, env.t, env.addr)).runTo("get_user_pages_fast returned");
      const u = env.unbind();
      if (era === "5.4") {
        assert.equal(u.run(), "blocked");
        assert.equal(mad.finish().rc, -5);
        assert.equal(u.run(), "done");
        assert.deepEqual(kinds(env.k), []);
      } else {
        assert.equal(u.run(), "done");
        mad.finish();
        assert.equal(env.k.sanitizer.violations.find((x) => x.kind === "struct-page-use-after-free")?.at, "madvise_inject_error: compound_head");
      }
    });
  });
}
