/**
 * Seed 002 audit, the HMM functions: is_device_private_page() ("safe? gpu driver manages private page lifetime"),
 * uncharge_page() and the migration paths — migrate_vma_pages(), remove_migration_pte(), try_to_unmap_one(),
 * move_to_new_page() ("unsafe? HMM") — on test_hmm's dmirror0 (device-private memory), torn down by
 * memunmap_pages() while a process's anonymous page lives in it.
 *
 * Every one of them works on a page it holds (a device-private entry under the PTE lock, or a reference the
 * migration took), and in both eras a device-private page reference holds the pgmap: memunmap_pages() waits —
 * hangs, if the driver never evicts. What breaks is a use after the reference is gone: 5.4's free at refcount 1
 * uncharges the page after memunmap_pages' put_page() may already have freed it (uncharge_page), and 5.4's
 * do_swap_page() reads the entry without the PTE lock and calls ->migrate_to_ram through a page nobody holds.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chargedMemcg } from "../../../src/kernel/mm/memcontrol.ts";
import { PageState } from "../../../src/kernel/mm/memmap.ts";
import {
  doAnonymousPage,
  doSwapPageDevicePrivate,
  isDevicePrivatePage,
  migrateToDevice,
  unmapAndMoveToDevice,
  zapDevicePrivate,
} from "../../../src/kernel/mm/migrate_device.ts";
import { anonPte } from "../../../src/kernel/mm/rmap.ts";
import { runToEnd } from "../../../src/kernel/path.ts";
import { ERAS, hmm, kinds, Thread } from "./audit_env.ts";

const PAGE = 4096;

for (const era of ERAS) {
  const v54 = era === "5.4";

  describe(`is_device_private_page, ${era}`, () => {
    it("(a) a page mapped through a device-private entry: true; a RAM page: false", () => {
      const env = hmm(era);
      assert.equal(new Thread("check", isDevicePrivatePage(env.k, env.dpfn)).finish(), true);
      assert.equal(new Thread("check", isDevicePrivatePage(env.k, 0x1000)).finish(), false);
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(b) teardown waits while the page is mapped${v54 ? " (and its put_page() frees the mapped page to the driver)" : ""}; once gone, a stale check reads a freed page`, () => {
      const env = hmm(era);
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.match(m.at, /wait_for_completion/);
      // 5.4: memunmap_pages' put_page() took the mapped page from 2 to 1, which is "free": ->page_free ran.
      assert.deepEqual(env.frees, v54 ? [env.dpfn] : []);
      // The CPU touches it. 6.1: ->migrate_to_ram brings it back and its last reference goes. 5.4: the count is
      // one short, migrate_page's refcount check fails, the page stays in device memory.
      assert.equal(new Thread("fault", doSwapPageDevicePrivate(env.k, env.t, env.addr)).finish().migrated, !v54);
      if (v54) {
        assert.equal(m.run(), "blocked");
        new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).finish();
      }
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
      new Thread("stale check", isDevicePrivatePage(env.k, env.dpfn)).finish();
      assert.deepEqual(kinds(env.k), ["struct-page-use-after-free"]);
    });

    it("(c) teardown between is_zone_device_page() and page->pgmap->type: it waits, the check completes", () => {
      const env = hmm(era);
      const c = new Thread("check", isDevicePrivatePage(env.k, env.dpfn)).runTo("is_zone_device_page(page)");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.equal(c.finish(), true);
      assert.deepEqual(kinds(env.k), []);
    });
  });

  describe(`uncharge_page (munmap of the device-private entry frees and uncharges the page), ${era}`, () => {
    it(`(a) live: ${v54 ? "freed at refcount 1 (__put_devmap_managed_page)" : "freed at 0 (free_zone_device_page)"}, uncharged`, () => {
      const env = hmm(era);
      assert.equal(chargedMemcg(env.k, env.dpfn), "/app");
      const o = new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).finish();
      assert.ok(o);
      assert.equal(o.refcount, v54 ? 1 : 0);
      assert.ok(o.did.includes(v54 ? "mem_cgroup_uncharge: uncharge_page" : "mem_cgroup_uncharge: uncharge_folio"), o.did.join("; "));
      assert.equal(chargedMemcg(env.k, env.dpfn), null);
      assert.deepEqual(kinds(env.k), []);
    });

    it("(b) teardown while mapped waits; the munmap frees the page and teardown completes", () => {
      const env = hmm(era);
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).finish();
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(c) teardown right after the put that frees the page: ${v54 ? "memunmap_pages' own put_page drops the page's last pgmap reference; uncharge_page reads a freed page" : "the pgmap reference is given back last; teardown waits"}`, () => {
      const env = hmm(era);
      const z = new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).runTo(v54 ? "__put_devmap_managed_page: page_ref_dec_return" : "folio_put: folio_put_testzero");
      const m = env.memunmap();
      if (v54) {
        assert.equal(m.run(), "done");
        z.finish();
        const v = env.k.sanitizer.violations.find((x) => x.kind === "struct-page-use-after-free");
        assert.ok(v);
        assert.equal(v.at, "__put_devmap_managed_page: __ClearPageActive");
        assert.ok(env.k.sanitizer.violations.some((x) => x.at.startsWith("__put_devmap_managed_page: mem_cgroup_uncharge")));
      } else {
        assert.equal(m.run(), "blocked");
        z.finish();
        assert.equal(m.run(), "done");
        assert.deepEqual(kinds(env.k), []);
      }
    });
  });

  describe(`migration paths, ${era}`, () => {
    it("(a) to device and back: device-private entry, then a present RAM entry; the device page freed", () => {
      const env = hmm(era);
      assert.deepEqual(anonPte(env.k, env.t.mm, env.addr), { kind: "device-private", pfn: env.dpfn, write: true });
      const r = new Thread("fault", doSwapPageDevicePrivate(env.k, env.t, env.addr)).finish();
      assert.equal(r.migrated, true);
      assert.equal(anonPte(env.k, env.t.mm, env.addr)?.kind, "present");
      assert.equal(env.k.memmap.get(env.dpfn).refcount, v54 ? 1 : 0);
      // 5.4: every device page holds a pgmap reference from memremap_pages on; 6.1: only while allocated.
      assert.equal(env.pgmap.ref.describeHolders(), v54 ? "initial, device pages (bulk)×65536" : "initial");
      assert.deepEqual(kinds(env.k), []);
    });

    it("(c) migrate_vma_pages: teardown between is_zone_device_page(newpage) and is_device_private_page(newpage) waits", () => {
      const env = hmm(era);
      const addr = env.addr + PAGE;
      assert.ok(runToEnd(doAnonymousPage(env.k, env.t, addr)) > 0);
      const mig = new Thread("migrate", migrateToDevice(env.k, env.t, addr, env.pgmap)).runTo("migrate_vma_pages: is_zone_device_page(newpage)");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.equal(mig.finish().migrated, true);
      assert.equal(m.run(), "blocked", "both pages are mapped in device memory now");
      new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).finish();
      new Thread("munmap", zapDevicePrivate(env.k, env.t, addr)).finish();
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
    });

    it("(c) remove_migration_pte: teardown before it takes the PTE lock to install the device-private entry waits", () => {
      const env = hmm(era);
      const addr = env.addr + PAGE;
      assert.ok(runToEnd(doAnonymousPage(env.k, env.t, addr)) > 0);
      const mig = new Thread("migrate", migrateToDevice(env.k, env.t, addr, env.pgmap)).runTo("remove_migration_pte: page_vma_mapped_walk: pte_offset_map_lock");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      const r = mig.finish();
      assert.equal(anonPte(env.k, env.t.mm, addr)?.kind, "device-private");
      assert.equal(r.migrated, true);
      assert.deepEqual(kinds(env.k), []);
    });

    it(`(c) try_to_unmap_one on the device-private page (->migrate_to_ram): teardown at its is_zone_device_page() waits${v54 ? "; its put_page() makes the page 'free' mid-migration and leaves a migration entry to a torn-down page" : ", then finishes"}`, () => {
      const env = hmm(era);
      const f = new Thread("fault", doSwapPageDevicePrivate(env.k, env.t, env.addr)).runTo("_one: is_zone_device_page(page)");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.equal(f.finish().migrated, !v54);
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
      if (v54) {
        // try_to_unmap_one's put took the count to 1: ->page_free ran and cleared page->mapping, so
        // remove_migration_ptes() could not find the entry again; the last put released the pgmap.
        assert.ok(env.frees.includes(env.dpfn), "->page_free on a page being migrated");
        assert.deepEqual(anonPte(env.k, env.t.mm, env.addr), { kind: "migration", pfn: env.dpfn, write: false });
        assert.equal(env.k.memmap.state(env.dpfn), PageState.TornDown);
      } else {
        assert.equal(anonPte(env.k, env.t.mm, env.addr)?.kind, "present");
      }
    });

    it("(c) move_to_new_page with a device-private newpage: teardown before its is_zone_device_page(newpage) waits", () => {
      const env = hmm(era);
      const addr = env.addr + PAGE;
      assert.ok(runToEnd(doAnonymousPage(env.k, env.t, addr)) > 0);
      const mv = new Thread("migrate_pages", unmapAndMoveToDevice(env.k, env.t, addr, env.pgmap)).runTo("move_to_new_");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.equal(mv.finish().migrated, true);
      assert.deepEqual(kinds(env.k), []);
    });
  });

  describe(`do_swap_page on a device-private entry (not in the audit's list: the HMM race it asked about), ${era}`, () => {
    it(`munmap and teardown between the lockless read of the entry and ->migrate_to_ram: ${v54 ? "page->pgmap read from a freed page" : "the PTL re-check sees the entry gone"}`, () => {
      const env = hmm(era);
      const f = new Thread("fault", doSwapPageDevicePrivate(env.k, env.t, env.addr)).runTo("handle_pte_fault: vmf->orig_pte");
      new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).finish();
      assert.equal(env.memunmap().run(), "done");
      const r = f.finish();
      if (v54) {
        assert.equal(env.k.sanitizer.violations.find((x) => x.kind === "struct-page-use-after-free")?.at, "do_swap_page: vmf->page->pgmap->ops->migrate_to_ram");
      } else {
        assert.equal(r.migrated, false);
        assert.deepEqual(kinds(env.k), []);
      }
    });

    it(`teardown while the fault is in ->migrate_to_ram waits${v54 ? " (the migration fails on 5.4's refcount; munmap ends the wait)" : ""}`, () => {
      const env = hmm(era);
      const f = new Thread("fault", doSwapPageDevicePrivate(env.k, env.t, env.addr)).runTo("migrate_vma_collect_pmd: pte_offset_map_lock");
      const m = env.memunmap();
      assert.equal(m.run(), "blocked");
      assert.equal(f.finish().migrated, !v54);
      if (v54) {
        assert.equal(m.run(), "blocked");
        new Thread("munmap", zapDevicePrivate(env.k, env.t, env.addr)).finish();
      }
      assert.equal(m.run(), "done");
      assert.deepEqual(kinds(env.k), []);
    });
  });
}
