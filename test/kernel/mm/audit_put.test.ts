/**
 * Seed 002 audit, the puts: put_devmap_managed_page() ("safe, page reference is held"), __put_page() ("safe"),
 * release_pages() ("safe"). The caller holds a page reference (here: get_user_pages_fast, FOLL_GET) across the
 * device's unbind.
 *
 * 5.4: memunmap_pages put_page()s every device page and waits for the ones still referenced — the caller's
 * reference holds the device, the audit's "safe" holds. But 5.4's release_pages() does not know how to give the
 * pgmap reference back for a page that is not devmap-managed (device-dax): the page goes to the RAM free path
 * ("BUG: Bad page state" thanks to PG_reserved) and unbind waits forever.
 * 6.1: memunmap_pages drops the FS_DAX/GENERIC references in bulk and does not wait: the same put reads a
 * torn-down struct page. The sub-section map changes nothing here.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { putPage, releasePages } from "../../../src/kernel/mm/swap.ts";
import { devdax, ERAS, type Era, fsdax, gupOne, kinds, Thread, variantOf } from "./audit_env.ts";

/** Eras whose memunmap_pages waits for referenced pages (5.4) and those where it does not (6.1, the proposal). */
const waits = (era: Era): boolean => era === "5.4";

for (const era of ERAS) {
  describe(`put_devmap_managed_page (fsdax page, reference held), ${era}`, () => {
    it("(a) live: the FS_DAX page is devmap-managed; back to refcount 1, waiters woken", () => {
      const env = fsdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      assert.equal(env.k.memmap.get(pfn).refcount, 2);
      const o = new Thread("put", putPage(env.k, pfn)).finish();
      assert.equal(o.refcount, 1);
      assert.ok(o.did.some((d) => d.includes("wake")), o.did.join("; "));
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(b) unbind with the reference held: ${waits(era) ? "unbind waits for the page; the put releases it" : "unbind does not wait; the put reads a freed struct page"}`, () => {
      const env = fsdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const u = env.unbind();
      if (waits(era)) {
        assert.equal(u.run(), "blocked");
        assert.match(u.at, /wait_for_completion/);
        const o = new Thread("put", putPage(env.k, pfn)).finish();
        assert.equal(o.refcount, 0);
        assert.ok(o.did.includes("__put_page: put_dev_pagemap(page->pgmap)"), o.did.join("; "));
        assert.equal(u.run(), "done");
        assert.deepEqual(kinds(env.k), []);
      } else {
        assert.equal(u.run(), "done");
        new Thread("put", putPage(env.k, pfn)).finish();
        assert.ok(kinds(env.k).includes("struct-page-use-after-free"));
      }
    });

    it(`(c) unbind between is_zone_device_page() and page->pgmap->type: ${waits(era) ? "safe" : "use-after-free"}`, () => {
      const env = fsdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const put = new Thread("put", putPage(env.k, pfn)).runTo("put_devmap_managed_page: is_zone_device_page(page)");
      const u = env.unbind();
      if (waits(era)) {
        assert.equal(u.run(), "blocked");
        put.finish();
        assert.equal(u.run(), "done");
        assert.deepEqual(kinds(env.k), []);
      } else {
        assert.equal(u.run(), "done");
        put.finish();
        const v = env.k.sanitizer.violations.find((x) => x.kind === "struct-page-use-after-free");
        assert.ok(v);
        assert.equal(v.at, "put_devmap_managed_page: page->pgmap->type");
      }
    });
  });

  describe(`__put_page (device-dax page, reference held), ${era}`, () => {
    it("(a) live: the caller's put leaves the idle refcount 1; __put_page is not reached", () => {
      const env = devdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const o = new Thread("put", putPage(env.k, pfn)).finish();
      assert.equal(o.refcount, 1);
      assert.deepEqual(o.did, []);
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(b) unbind with the reference held: ${waits(era) ? "the last put reaches __put_page, which gives the pgmap reference back" : "the put reads a freed struct page"}`, () => {
      const env = devdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const u = env.unbind();
      if (waits(era)) {
        assert.equal(u.run(), "blocked");
        const o = new Thread("put", putPage(env.k, pfn)).finish();
        assert.deepEqual(o.did, ["__put_page: put_dev_pagemap(page->pgmap)"]);
        assert.equal(u.run(), "done");
        assert.deepEqual(kinds(env.k), []);
      } else {
        assert.equal(u.run(), "done");
        new Thread("put", putPage(env.k, pfn)).finish();
        assert.deepEqual(kinds(env.k).slice(0, 1), ["struct-page-use-after-free"]);
      }
    });

    it("(c) unbind at every point of the put", () => {
      const probe = devdax(era);
      const n = Thread.count(() => putPage(probe.k, gupOne(probe.k, probe.t, probe.addr)));
      const verdicts: string[][] = [];
      for (let i = 0; i < n; i++) {
        const env = devdax(era);
        const put = new Thread("put", putPage(env.k, gupOne(env.k, env.t, env.addr)));
        for (let j = 0; j < i; j++) put.step();
        const u = env.unbind();
        const r = u.run();
        put.finish();
        if (r === "blocked") assert.equal(u.run(), "done");
        verdicts.push(kinds(env.k));
      }
      // Before the put started the unbind is the whole story; once the count is dropped nothing reads the page.
      assert.deepEqual(verdicts[0], waits(era) ? [] : ["struct-page-use-after-free", "negative-refcount"]);
      assert.deepEqual(verdicts[verdicts.length - 1], []);
    });
  });

  describe(`release_pages (device-dax page, reference held), ${era}`, () => {
    it("(a) live: back to refcount 1", () => {
      const env = devdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const [o] = new Thread("release_pages", releasePages(env.k, [pfn])).finish();
      assert.equal(o!.refcount, 1);
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(b) unbind with the reference held: ${waits(era) ? "unbind waits; release_pages frees the device page as RAM (Bad page state) and never gives the pgmap reference back: unbind hangs" : "release_pages reads a freed struct page"}`, () => {
      const env = devdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const u = env.unbind();
      if (waits(era)) {
        assert.equal(u.run(), "blocked");
        const [o] = new Thread("release_pages", releasePages(env.k, [pfn])).finish();
        assert.equal(o!.refcount, 0);
        assert.ok(o!.did[0]!.includes("page->pgmap overwritten"));
        assert.ok(env.k.log.some((l) => l.startsWith("BUG: Bad page state") && l.endsWith("pfn:101200")));
        assert.equal(u.run(), "blocked", "the pgmap reference the page held is never put");
        assert.match(u.at, /wait_for_completion/);
        assert.deepEqual(kinds(env.k), []);
      } else {
        assert.equal(u.run(), "done");
        new Thread("release_pages", releasePages(env.k, [pfn])).finish();
        assert.ok(kinds(env.k).includes("struct-page-use-after-free"));
      }
    });

    it("(c) unbind right after release_pages' is_zone_device_page()", () => {
      const env = devdax(era);
      const pfn = gupOne(env.k, env.t, env.addr);
      const rel = new Thread("release_pages", releasePages(env.k, [pfn])).runTo("release_pages: is_zone_device_page(page)");
      const u = env.unbind();
      if (waits(era)) {
        assert.equal(u.run(), "blocked");
        rel.finish();
        assert.equal(u.run(), "blocked");
        assert.deepEqual(kinds(env.k), []);
      } else {
        assert.equal(u.run(), "done");
        rel.finish();
        assert.equal(env.k.sanitizer.violations.find((v) => v.kind === "struct-page-use-after-free")?.at, "release_pages: folio_put_testzero");
      }
    });
  });
}

describe("release_pages in 5.4 without PG_reserved on device pages (David Hildenbrand's 2019 series)", () => {
  it("the device page that falls through to the RAM free path enters the page allocator", () => {
    const era: Era = "5.4";
    const base = variantOf(era);
    assert.equal(base.pgReservedOnDevicePages, true);
    const env = devdax(era);
    // Clear PG_reserved on the page, as the series proposed for every ZONE_DEVICE page.
    const f = env.k.memmap.field(env.head, "flags");
    env.k.memmap.set(env.head, "flags", f & ~(1 << 12));
    const pfn = gupOne(env.k, env.t, env.addr);
    const u = env.unbind();
    assert.equal(u.run(), "blocked");
    new Thread("release_pages", releasePages(env.k, [pfn])).finish();
    assert.deepEqual(kinds(env.k), ["device-pfn-in-buddy"]);
  });
});
