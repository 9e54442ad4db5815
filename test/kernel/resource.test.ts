/**
 * The iomem resource tree against kernel/resource.c (6.1): __request_resource, __insert_resource,
 * insert_resource_expand_to_fit, __release_resource, __request_region_locked, __release_region,
 * release_mem_region_adjustable (+ __adjust_resource), __region_intersects, __reserve_region_with_split.
 * Expected trees are worked out from the C, not from running the model.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EBUSY, EINVAL } from "../../src/kernel/errno.ts";
import {
  IORES_DESC_NONE,
  IORES_DESC_PERSISTENT_MEMORY,
  IORES_DESC_PERSISTENT_MEMORY_LEGACY,
  IORESOURCE_BUSY,
  IORESOURCE_MEM,
  IORESOURCE_SYSRAM,
  IORESOURCE_SYSRAM_DRIVER_MANAGED,
  IORESOURCE_SYSTEM_RAM,
  insertResource,
  insertResourceExpandToFit,
  iomemRoot,
  newResource,
  REGION_DISJOINT,
  REGION_INTERSECTS,
  REGION_MIXED,
  type Resource,
  regionIntersects,
  releaseMemRegionAdjustable,
  releaseRegion,
  releaseResource,
  removeResource,
  requestRegion,
  requestResource,
  reserveRegionWithSplit,
  walkResources,
  walkSystemRamRange,
} from "../../src/kernel/resource.ts";

const MEM = IORESOURCE_MEM;
const MEM_BUSY = (IORESOURCE_MEM | IORESOURCE_BUSY) >>> 0;
const RAM = (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0;
const IORESOURCE_IO = 0x100;

function res(name: string, start: number, end: number, flags: number = MEM, desc = IORES_DESC_NONE): Resource {
  return newResource(name, start, end, flags, desc);
}

/** The tree as /proc/iomem-like lines: two spaces per level, hex range, name. */
function shape(root: Resource): string[] {
  return [...walkResources(root)].map(({ res: r, depth }) => `${"  ".repeat(depth)}${r.start.toString(16)}-${r.end.toString(16)} ${r.name}`);
}

/** Structural invariants of struct resource trees: parent links, sorted non-overlapping children inside the parent. */
function checkTree(root: Resource): void {
  const walk = (p: Resource) => {
    let prevEnd = -1;
    for (let c = p.child; c; c = c.sibling) {
      assert.equal(c.parent, p, `${c.name} has the wrong parent`);
      assert.ok(c.start <= c.end, `${c.name}: start > end`);
      assert.ok(c.start >= p.start && c.end <= p.end, `${c.name} sticks out of ${p.name}`);
      assert.ok(c.start > prevEnd, `${c.name} overlaps or is out of order`);
      prevEnd = c.end;
      walk(c);
    }
  };
  walk(root);
}

describe("request_resource (__request_resource)", () => {
  it("inserts into gaps in address order and refuses any overlap with -EBUSY", () => {
    const root = iomemRoot();
    const a = res("a", 0x1000, 0x1fff);
    assert.equal(requestResource(root, a), 0);
    assert.equal(a.parent, root);
    const overlap = res("overlap", 0x1800, 0x27ff);
    assert.equal(requestResource(root, overlap), -EBUSY);
    assert.equal(overlap.parent, null);
    // Adjacent on either side is fine; the lower one becomes root's first child.
    const c = res("c", 0x2000, 0x2fff);
    const d = res("d", 0x0, 0xfff);
    assert.equal(requestResource(root, c), 0);
    assert.equal(requestResource(root, d), 0);
    assert.equal(root.child, d);
    assert.deepEqual(shape(root), ["0-fff d", "1000-1fff a", "2000-2fff c"]);
    checkTree(root);
  });

  it("does not nest: a range inside an existing resource conflicts with it, unless requested from that parent", () => {
    const root = iomemRoot();
    const a = res("a", 0x1000, 0x1fff);
    requestResource(root, a);
    const inner = res("inner", 0x1100, 0x11ff);
    assert.equal(requestResource(root, inner), -EBUSY);
    assert.equal(requestResource(a, inner), 0);
    assert.equal(inner.parent, a);
    // Outside the parent's range, or end < start: the root itself is the conflict.
    assert.equal(requestResource(a, res("out", 0xf00, 0x10ff)), -EBUSY);
    assert.equal(requestResource(root, res("backwards", 0x5000, 0x4fff)), -EBUSY);
    assert.deepEqual(shape(root), ["1000-1fff a", "  1100-11ff inner"]);
    checkTree(root);
  });
});

describe("insert_resource (__insert_resource)", () => {
  it("makes the new resource the parent of every resource it fully contains", () => {
    const root = iomemRoot();
    const a = res("a", 0x1000, 0x1fff);
    const b = res("b", 0x3000, 0x3fff);
    const z = res("z", 0x8000, 0x8fff);
    for (const r of [a, b, z]) assert.equal(insertResource(root, r), 0);
    const c = res("c", 0x0, 0x4fff);
    assert.equal(insertResource(root, c), 0);
    assert.equal(a.parent, c);
    assert.equal(b.parent, c);
    assert.equal(c.parent, root);
    assert.equal(c.sibling, z);
    assert.equal(b.sibling, null);
    assert.deepEqual(shape(root), ["0-4fff c", "  1000-1fff a", "  3000-3fff b", "8000-8fff z"]);
    checkTree(root);
  });

  it("descends into a containing resource and becomes the parent of an equal-range one", () => {
    const root = iomemRoot();
    const c = res("c", 0x0, 0x4fff);
    const a = res("a", 0x1000, 0x1fff);
    const b = res("b", 0x3000, 0x3fff);
    insertResource(root, c);
    insertResource(root, a);
    insertResource(root, b);
    // a and b went under c (c contains them: __insert_resource walks down).
    assert.equal(a.parent, c);
    const d = res("d", 0x1000, 0x1fff);
    assert.equal(insertResource(root, d), 0);
    assert.equal(d.parent, c);
    assert.equal(a.parent, d);
    assert.equal(d.child, a);
    assert.equal(d.sibling, b);
    assert.deepEqual(shape(root), ["0-4fff c", "  1000-1fff d", "    1000-1fff a", "  3000-3fff b"]);
    checkTree(root);
  });

  it("fails with -EBUSY on a partial overlap and leaves the tree untouched", () => {
    const root = iomemRoot();
    insertResource(root, res("a", 0x1000, 0x1fff));
    insertResource(root, res("b", 0x3000, 0x3fff));
    const before = shape(root);
    // Covers a but only half of b: the walk over siblings finds b sticking out.
    const bad = res("bad", 0x0, 0x37ff);
    assert.equal(insertResource(root, bad), -EBUSY);
    assert.equal(bad.parent, null);
    // Starts inside a.
    assert.equal(insertResource(root, res("bad2", 0x1800, 0x2fff)), -EBUSY);
    assert.deepEqual(shape(root), before);
    checkTree(root);
  });

  it("insert_resource_expand_to_fit grows the new resource over partial conflicts", () => {
    const root = iomemRoot();
    const a = res("a", 0x1000, 0x1fff);
    const b = res("b", 0x3000, 0x3fff);
    insertResource(root, a);
    insertResource(root, b);
    const x = res("x", 0x1800, 0x37ff);
    insertResourceExpandToFit(root, x);
    assert.equal(x.start, 0x1000);
    assert.equal(x.end, 0x3fff);
    assert.deepEqual(shape(root), ["1000-3fff x", "  1000-1fff a", "  3000-3fff b"]);
    // Already inserted: nothing happens.
    insertResourceExpandToFit(root, x);
    assert.deepEqual(shape(root), ["1000-3fff x", "  1000-1fff a", "  3000-3fff b"]);
    checkTree(root);
  });

  it("remove_resource moves the children up, release_resource drops them with the parent", () => {
    const root = iomemRoot();
    const c = res("c", 0x0, 0x4fff);
    const a = res("a", 0x1000, 0x1fff);
    const b = res("b", 0x3000, 0x3fff);
    const z = res("z", 0x8000, 0x8fff);
    for (const r of [c, a, b, z]) insertResource(root, r);
    assert.equal(removeResource(c), 0);
    assert.equal(c.parent, null);
    assert.equal(a.parent, root);
    assert.deepEqual(shape(root), ["1000-1fff a", "3000-3fff b", "8000-8fff z"]);
    checkTree(root);
    const w = res("w", 0x0, 0x4fff);
    insertResource(root, w);
    assert.equal(releaseResource(w), 0);
    assert.deepEqual(shape(root), ["8000-8fff z"]);
  });
});

describe("__request_region / __release_region", () => {
  function setup() {
    const root = iomemRoot();
    const pmem = res("Persistent Memory (legacy)", 0x100000, 0x1fffff, MEM, IORES_DESC_PERSISTENT_MEMORY_LEGACY);
    const ram = res("System RAM", 0x300000, 0x3fffff, RAM);
    const sysramWindow = res("window", 0x500000, 0x5fffff, IORESOURCE_SYSTEM_RAM);
    const inner = res("inner", 0x540000, 0x57ffff, MEM);
    for (const r of [pmem, ram, sysramWindow]) insertResource(root, r);
    insertResource(root, inner);
    return { root, pmem, ram, sysramWindow, inner };
  }

  it("descends into a non-busy container; the new region takes the parent's type, ext type and desc plus BUSY", () => {
    const { root, pmem } = setup();
    const ns = requestRegion(root, 0x120000, 0x10000, "namespace0.0");
    assert.ok(ns);
    assert.equal(ns.parent, pmem);
    assert.equal(ns.start, 0x120000);
    assert.equal(ns.end, 0x12ffff);
    assert.equal(ns.flags >>> 0, MEM_BUSY);
    assert.equal(ns.desc, IORES_DESC_PERSISTENT_MEMORY_LEGACY);
    // A free range at the top level: the root's type (MEM) | BUSY, desc of the root.
    const top = requestRegion(root, 0x200000, 0x1000, "top");
    assert.ok(top);
    assert.equal(top.parent, root);
    assert.equal(top.flags >>> 0, MEM_BUSY);
    checkTree(root);
  });

  it("descends through several levels and ORs in the caller's flags and the SYSRAM ext type", () => {
    const { root, inner, sysramWindow } = setup();
    const deep = requestRegion(root, 0x550000, 0x1000, "deep", IORESOURCE_SYSRAM_DRIVER_MANAGED);
    assert.ok(deep);
    assert.equal(deep.parent, inner);
    // inner has no SYSRAM bit itself: flags come from the parent the region lands in.
    assert.equal(deep.flags >>> 0, (MEM_BUSY | IORESOURCE_SYSRAM_DRIVER_MANAGED) >>> 0);
    const inWindow = requestRegion(root, 0x500000, 0x1000, "in-window");
    assert.ok(inWindow);
    assert.equal(inWindow.parent, sysramWindow);
    assert.equal(inWindow.flags >>> 0, (MEM_BUSY | IORESOURCE_SYSRAM) >>> 0);
    checkTree(root);
  });

  it("fails on a busy conflict, inside a container or at the top, and on a range straddling a container", () => {
    const { root } = setup();
    assert.ok(requestRegion(root, 0x120000, 0x10000, "first"));
    const before = shape(root);
    assert.equal(requestRegion(root, 0x128000, 0x1000, "clash"), null);
    assert.equal(requestRegion(root, 0x310000, 0x1000, "in RAM"), null);
    assert.equal(requestRegion(root, 0x1f0000, 0x20000, "straddles"), null);
    assert.deepEqual(shape(root), before);
  });

  it("releases exactly a busy region found by descending through non-busy ones", () => {
    const { root, pmem } = setup();
    requestRegion(root, 0x120000, 0x10000, "ns");
    // Not the exact range of the busy region: refused ("Trying to free nonexistent resource").
    assert.equal(releaseRegion(root, 0x120000, 0x8000), false);
    assert.equal(pmem.child?.name, "ns");
    // The non-busy container itself is never released by __release_region.
    assert.equal(releaseRegion(root, 0x100000, 0x100000), false);
    assert.equal(releaseRegion(root, 0x120000, 0x10000), true);
    assert.equal(pmem.child, null);
    assert.equal(releaseRegion(root, 0x120000, 0x10000), false);
    // A busy top-level region.
    assert.equal(releaseRegion(root, 0x300000, 0x100000), true);
    assert.deepEqual(shape(root), ["100000-1fffff Persistent Memory (legacy)", "500000-5fffff window", "  540000-57ffff inner"]);
    checkTree(root);
  });
});

describe("release_mem_region_adjustable", () => {
  const GiB = 2 ** 30;
  const M128 = 2 ** 27;

  it("adjusts the start, the end, splits in the middle and frees an exact match", () => {
    const root = iomemRoot();
    const ram = res("System RAM", 0, GiB - 1, RAM);
    insertResource(root, ram);
    releaseMemRegionAdjustable(root, 0, M128);
    assert.deepEqual(shape(root), ["8000000-3fffffff System RAM"]);
    releaseMemRegionAdjustable(root, GiB - M128, M128);
    assert.deepEqual(shape(root), ["8000000-37ffffff System RAM"]);
    releaseMemRegionAdjustable(root, 2 * M128, M128);
    assert.deepEqual(shape(root), ["8000000-fffffff System RAM", "18000000-37ffffff System RAM"]);
    const upper = ram.sibling;
    assert.ok(upper);
    assert.equal(upper.parent, root);
    assert.equal(upper.flags >>> 0, RAM);
    assert.equal(upper.desc, ram.desc);
    checkTree(root);
    releaseMemRegionAdjustable(root, M128, M128);
    assert.deepEqual(shape(root), ["18000000-37ffffff System RAM"]);
  });

  it("descends into non-busy MEM containers but stops at a non-MEM resource", () => {
    const root = iomemRoot();
    const win = res("PCI Bus 0000:00", 0x140000000, 0x93fffffff, MEM);
    insertResource(root, win);
    const hot = requestRegion(root, 0x200000000, 2 * M128, "System RAM", RAM);
    assert.ok(hot);
    assert.equal(hot.parent, win);
    releaseMemRegionAdjustable(root, 0x200000000, M128);
    assert.deepEqual(shape(root), ["140000000-93fffffff PCI Bus 0000:00", "  208000000-20fffffff System RAM"]);
    releaseMemRegionAdjustable(root, 0x208000000, M128);
    assert.deepEqual(shape(root), ["140000000-93fffffff PCI Bus 0000:00"]);

    const io = iomemRoot();
    const port = res("io window", 0x0, 0xffff, IORESOURCE_IO);
    insertResource(io, port);
    insertResource(port, res("busy", 0x1000, 0x1fff, (IORESOURCE_IO | IORESOURCE_BUSY) >>> 0));
    releaseMemRegionAdjustable(io, 0x1000, 0x1000);
    assert.deepEqual(shape(io), ["0-ffff io window", "  1000-1fff busy"]);
  });

  it("leaves the resource alone when a child would end up outside it (__adjust_resource fails, WARN)", () => {
    const root = iomemRoot();
    const ram = res("System RAM", 0, GiB - 1, RAM);
    insertResource(root, ram);
    insertResource(root, res("Kernel code", 0x1000000, 0x1ffffff, RAM));
    insertResource(root, res("crash", 0x3c000000, 0x3cffffff, RAM));
    const before = shape(root);
    // Cutting off the start would orphan "Kernel code".
    releaseMemRegionAdjustable(root, 0, M128);
    assert.deepEqual(shape(root), before);
    // Cutting off the end would orphan "crash".
    releaseMemRegionAdjustable(root, GiB - 2 * M128, 2 * M128);
    assert.deepEqual(shape(root), before);
    // Splitting keeps children in the lower entry, so a child above the hole makes the split fail.
    releaseMemRegionAdjustable(root, 2 * M128, M128);
    assert.deepEqual(shape(root), before);
    checkTree(root);
    // A split with every child below the hole is fine.
    const root2 = iomemRoot();
    insertResource(root2, res("System RAM", 0, GiB - 1, RAM));
    insertResource(root2, res("Kernel code", 0x1000000, 0x1ffffff, RAM));
    releaseMemRegionAdjustable(root2, 2 * M128, M128);
    assert.deepEqual(shape(root2), ["0-fffffff System RAM", "  1000000-1ffffff Kernel code", "18000000-3fffffff System RAM"]);
    checkTree(root2);
  });
});

describe("region_intersects (__region_intersects)", () => {
  function setup(): Resource {
    const root = iomemRoot();
    insertResource(root, res("System RAM", 0x0, 0xfffff, RAM));
    insertResource(root, res("Reserved", 0x100000, 0x1fffff, MEM_BUSY));
    insertResource(root, res("System RAM", 0x300000, 0x37ffff, RAM));
    const cxl = res("CXL Window 0", 0x400000, 0x7fffff, MEM);
    insertResource(root, cxl);
    insertResource(cxl, res("System RAM", 0x400000, 0x5fffff, RAM));
    const late = res("window", 0x800000, 0xbfffff, MEM);
    insertResource(root, late);
    insertResource(late, res("System RAM", 0x900000, 0x9fffff, RAM));
    const two = res("window2", 0xc00000, 0xffffff, MEM);
    insertResource(root, two);
    insertResource(two, res("System RAM", 0xc00000, 0xcfffff, RAM));
    insertResource(two, res("System RAM", 0xd00000, 0xdfffff, RAM));
    insertResource(root, res("pmem", 0x1000000, 0x1ffffff, MEM, IORES_DESC_PERSISTENT_MEMORY));
    return root;
  }
  const SR = IORESOURCE_SYSTEM_RAM;
  const N = IORES_DESC_NONE;

  it("INTERSECTS inside RAM, also when the rest of the range is a hole", () => {
    const root = setup();
    assert.equal(regionIntersects(root, 0x0, 0x100000, SR, N), REGION_INTERSECTS);
    assert.equal(regionIntersects(root, 0x1000, 0x1000, SR, N), REGION_INTERSECTS);
    // [0x280000, 0x380000): a hole then RAM; holes are not "other".
    assert.equal(regionIntersects(root, 0x280000, 0x100000, SR, N), REGION_INTERSECTS);
  });

  it("MIXED over RAM and another resource, DISJOINT without RAM", () => {
    const root = setup();
    assert.equal(regionIntersects(root, 0x80000, 0x100000, SR, N), REGION_MIXED);
    assert.equal(regionIntersects(root, 0x100000, 0x100000, SR, N), REGION_DISJOINT);
    assert.equal(regionIntersects(root, 0x200000, 0x100000, SR, N), REGION_DISJOINT);
  });

  it("a matching descendant that covers the overlap counts as covering its non-matching ancestor", () => {
    const root = setup();
    assert.equal(regionIntersects(root, 0x400000, 0x200000, SR, N), REGION_INTERSECTS);
    assert.equal(regionIntersects(root, 0x480000, 0x10000, SR, N), REGION_INTERSECTS);
    // Partly covered by the child: MIXED.
    assert.equal(regionIntersects(root, 0x500000, 0x200000, SR, N), REGION_MIXED);
    // The window alone, its RAM child outside the range: DISJOINT.
    assert.equal(regionIntersects(root, 0x600000, 0x100000, SR, N), REGION_DISJOINT);
    // The matching child starts above the start of the overlap: the gap is "other".
    assert.equal(regionIntersects(root, 0x800000, 0x200000, SR, N), REGION_MIXED);
    assert.equal(regionIntersects(root, 0x900000, 0x100000, SR, N), REGION_INTERSECTS);
    // Two consecutive matching children cover the overlap between them.
    assert.equal(regionIntersects(root, 0xc00000, 0x200000, SR, N), REGION_INTERSECTS);
    assert.equal(regionIntersects(root, 0xc00000, 0x300000, SR, N), REGION_MIXED);
  });

  it("matches desc when one is asked for", () => {
    const root = setup();
    assert.equal(regionIntersects(root, 0x1000000, 0x1000, MEM, IORES_DESC_PERSISTENT_MEMORY), REGION_INTERSECTS);
    assert.equal(regionIntersects(root, 0x1000000, 0x1000, MEM, IORES_DESC_PERSISTENT_MEMORY_LEGACY), REGION_DISJOINT);
    assert.equal(regionIntersects(root, 0x1000000, 0x1000, SR, N), REGION_DISJOINT);
    assert.equal(regionIntersects(root, 0xfff000, 0x2000, MEM, IORES_DESC_PERSISTENT_MEMORY), REGION_MIXED);
  });
});

describe("reserve_region_with_split (__reserve_region_with_split)", () => {
  it("reserves the pieces around top-level conflicts as busy resources of the root's type", () => {
    const root = iomemRoot();
    insertResource(root, res("a", 0x1000, 0x1fff));
    insertResource(root, res("b", 0x3000, 0x3fff));
    reserveRegionWithSplit(root, 0x0, 0x4fff, "RAM buffer");
    assert.deepEqual(shape(root), ["0-fff RAM buffer", "1000-1fff a", "2000-2fff RAM buffer", "3000-3fff b", "4000-4fff RAM buffer"]);
    for (const { res: r } of walkResources(root)) {
      if (r.name === "RAM buffer") assert.equal(r.flags >>> 0, MEM_BUSY);
    }
    checkTree(root);
  });

  it("trims the start when it lies in a conflict, and reserves nothing inside one", () => {
    const root = iomemRoot();
    insertResource(root, res("a", 0x1000, 0x1fff));
    reserveRegionWithSplit(root, 0x1100, 0x1200, "covered");
    assert.deepEqual(shape(root), ["1000-1fff a"]);
    reserveRegionWithSplit(root, 0x1800, 0x27ff, "tail");
    assert.deepEqual(shape(root), ["1000-1fff a", "2000-27ff tail"]);
    checkTree(root);
  });
});

describe("walk_system_ram_range (find_next_iomem_res)", () => {
  it("reports whole pages of busy System RAM, skipping children of a match and descending into non-matching parents", () => {
    const root = iomemRoot();
    insertResource(root, res("Reserved", 0x0, 0xfff, MEM_BUSY));
    insertResource(root, res("System RAM", 0x1000, 0x9fbff, RAM));
    insertResource(root, res("System RAM", 0x100000, 0x7ffdefff, RAM));
    insertResource(root, res("Kernel code", 0x1000000, 0x1e01d31, RAM));
    const win = res("PCI Bus 0000:00", 0x140000000, 0x93fffffff, MEM);
    insertResource(root, win);
    requestRegion(root, 0x200000000, 0x8000000, "System RAM", RAM);
    insertResource(root, res("not busy", 0x300000000, 0x3000fffff, IORESOURCE_SYSTEM_RAM));
    const walk = (pfn: number, nr: number) => {
      const out: Array<[number, number]> = [];
      const rc = walkSystemRamRange(root, pfn, nr, 4096, (p, n) => {
        out.push([p, n]);
        return 0;
      });
      return { rc, out };
    };
    // [0x1000, 0x9fbff]: PFN_DOWN(0x9fc00) = 0x9f, the partial page at the end is not System RAM.
    assert.deepEqual(walk(0, 0x80000), {
      rc: 0,
      out: [
        [0x1, 0x9e],
        [0x100, 0x7ffdf - 0x100],
      ],
    });
    assert.deepEqual(walk(0x78000, 0x8000), { rc: 0, out: [[0x78000, 0x7ffdf - 0x78000]] });
    assert.deepEqual(walk(0x200000, 0x8000), { rc: 0, out: [[0x200000, 0x8000]] });
    assert.deepEqual(walk(0x200000 - 0x4000, 0x8000), { rc: 0, out: [[0x200000, 0x4000]] });
    // Nothing busy System RAM: -EINVAL, no call.
    assert.deepEqual(walk(0x300000, 0x100), { rc: -EINVAL, out: [] });
    assert.deepEqual(walk(0x80000, 0x1000), { rc: -EINVAL, out: [] });
    // fn's non-zero result stops the walk.
    let calls = 0;
    assert.equal(
      walkSystemRamRange(root, 0, 0x80000, 4096, () => {
        calls++;
        return 1;
      }),
      1,
    );
    assert.equal(calls, 1);
  });
});
