/**
 * Random RAM hot-plug sequences on the oracle guest: add / online (default, kernel, movable) / offline /
 * remove of 128 MiB blocks in [8 GiB, 12 GiB). After every step the zones, node, sections, buddy allocators,
 * memory blocks and iomem must agree with what mm/memory_hotplug.c guarantees; removing everything must give
 * back the boot state.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { EBUSY, EEXIST, EINVAL } from "../../../src/kernel/errno.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { addMemory, memoryBlockStateStore, removeMemory } from "../../../src/kernel/mm/memory_hotplug.ts";
import type { ZoneName } from "../../../src/kernel/mm/mmzone.ts";
import { SECTION_HAS_MEM_MAP, SECTION_IS_ONLINE, SECTION_MARKED_PRESENT } from "../../../src/kernel/mm/sparse.ts";
import { IORES_DESC_NONE, IORESOURCE_SYSTEM_RAM, REGION_DISJOINT, REGION_INTERSECTS, regionIntersects } from "../../../src/kernel/resource.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { renderIomem } from "../../../src/report/iomem.ts";

const BLOCK = 2 ** 27;
const NR = BLOCK / 4096;
const BASE = 8 * 2 ** 30;
const FIRST_ID = BASE / BLOCK; // memory64
const NBLOCKS = 32; // [8 GiB, 12 GiB)
const BOOT_BLOCKS = 16;

// Boot RAM only: no nd_pmem, so [4 GiB, 5 GiB) is legacy pmem nobody has mapped yet.
const spec = { ...machinePreset("qemu-q35-3g-pmem1g"), modules: [] };

type Op =
  | { kind: "add"; i: number; n: 1 | 2 }
  | { kind: "online"; i: number; type: "online" | "online_kernel" | "online_movable" }
  | { kind: "offline"; i: number }
  | { kind: "remove"; i: number };

/** What the generator draws: online/offline/remove mostly aim at an added block (pick among them). */
type Draw =
  | { kind: "add"; i: number; n: 1 | 2 }
  | { kind: "online"; pick: number; hit: boolean; type: "online" | "online_kernel" | "online_movable" }
  | { kind: "offline" | "remove"; pick: number; hit: boolean };

/**
 * Blocks to add: neighbours (zone edges, two-block resources), one in the middle, the last two of the range.
 * A two-block add at a slot also reaches the block after it.
 */
const SLOTS = [0, 1, 2, 3, 16, 17, 30, 31];
const drawArb: fc.Arbitrary<Draw> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("add" as const), i: fc.constantFrom(...SLOTS), n: fc.constantFrom(1 as const, 2 as const) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("online" as const),
      pick: fc.nat(),
      hit: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      type: fc.constantFrom("online" as const, "online_kernel" as const, "online_movable" as const),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom("offline" as const, "offline" as const, "offline" as const, "remove" as const),
      pick: fc.nat(),
      hit: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
);

/**
 * Resolve a draw against the blocks added so far: a hit onlines an offline block, offlines an online one,
 * removes any added one; a miss aims at any slot (mostly the error paths).
 */
function resolve(d: Draw, ref: ReadonlyMap<number, RefBlock>): Op {
  if (d.kind === "add") return d;
  const want = (b: RefBlock) => (d.kind === "online" ? !b.online : d.kind === "offline" ? b.online : true);
  const candidates = [...ref].filter(([, b]) => want(b)).map(([i]) => i);
  candidates.sort((a, b) => a - b);
  const i = d.hit && candidates.length > 0 ? candidates[d.pick % candidates.length]! : SLOTS[d.pick % SLOTS.length]!;
  return d.kind === "online" ? { kind: "online", i, type: d.type } : { kind: d.kind, i };
}

/** The reference: which blocks are added, and the zone each online one is in. */
type RefBlock = { online: false } | { online: true; zone: ZoneName };

interface Snapshot {
  zones: Array<{ name: ZoneName; start: number; spanned: number; present: number; presentEarly: number; managed: number; free: number; buddyinfo: number[] }>;
  node: { start: number; spanned: number; present: number };
  sections: number[];
  blocks: number[];
  iomem: string;
  memmapBytes: number;
}

function snapshot(k: Kernel): Snapshot {
  const node = k.nodeData(0);
  return {
    zones: node.zones.map((z) => ({
      name: z.name,
      start: z.zoneStartPfn,
      spanned: z.spannedPages,
      present: z.presentPages,
      presentEarly: z.presentEarlyPages,
      managed: z.managedPages,
      free: z.buddy.freePages(),
      buddyinfo: z.buddy.buddyinfo(),
    })),
    node: { start: node.nodeStartPfn, spanned: node.nodeSpannedPages, present: node.nodePresentPages },
    sections: Array.from({ length: FIRST_ID + NBLOCKS + 2 }, (_, nr) => k.sections.flags(nr)),
    blocks: k.memoryBlocks.all().map((b) => b.id),
    iomem: renderIomem(k),
    memmapBytes: k.vmemmap.ramBytes,
  };
}

function startPfn(i: number): number {
  return (BASE + i * BLOCK) / 4096;
}

/** Apply one op to the kernel and the reference; return [actual, expected] errno. */
function apply(k: Kernel, ref: Map<number, RefBlock>, op: Op): [number, number] {
  const id = FIRST_ID + op.i;
  const cur = ref.get(op.i);
  switch (op.kind) {
    case "add": {
      const n = op.i + op.n <= NBLOCKS ? op.n : 1;
      const taken = [...Array(n).keys()].some((j) => ref.has(op.i + j));
      const rc = addMemory(k, 0, BASE + op.i * BLOCK, n * BLOCK);
      if (!taken) for (let j = 0; j < n; j++) ref.set(op.i + j, { online: false });
      return [rc, taken ? -EEXIST : 0];
    }
    case "online": {
      // zone_for_pfn_range: online_kernel -> Normal (nothing below Normal reaches 8 GiB), online_movable ->
      // Movable, online -> default_zone_for_pfn: the one of Normal/Movable that intersects the block if exactly
      // one does, else Normal (no movable_node).
      const intersects = (name: ZoneName) => {
        const z = k.zone(0, name)!;
        return z.spannedPages > 0 && startPfn(op.i) < z.zoneStartPfn + z.spannedPages && startPfn(op.i) + NR > z.zoneStartPfn;
      };
      const inNormal = intersects("Normal");
      const inMovable = intersects("Movable");
      const want: ZoneName =
        op.type === "online_movable" ? "Movable" : op.type === "online_kernel" ? "Normal" : inNormal !== inMovable && inMovable ? "Movable" : "Normal";
      const rc = memoryBlockStateStore(k, id, op.type);
      if (!cur || cur.online) return [rc, -EINVAL];
      assert.equal(k.memoryBlocks.get(id)?.zone?.name, want, `${op.type} of memory${id}`);
      ref.set(op.i, { online: true, zone: want });
      return [rc, 0];
    }
    case "offline": {
      const rc = memoryBlockStateStore(k, id, "offline");
      if (!cur?.online) return [rc, -EINVAL];
      ref.set(op.i, { online: false });
      return [rc, 0];
    }
    case "remove": {
      // Only blocks that were added: removing never-added memory is a kernel WARN path, not modelled here.
      if (!cur) return [0, 0];
      const rc = removeMemory(k, BASE + op.i * BLOCK, BLOCK);
      if (cur.online) return [rc, -EBUSY];
      ref.delete(op.i);
      return [rc, 0];
    }
  }
}

function checkInvariants(k: Kernel, ref: Map<number, RefBlock>, bootSnap: Snapshot): void {
  const node = k.nodeData(0);
  let totalPresent = 0;
  for (const z of node.zones) {
    const boot = bootSnap.zones.find((b) => b.name === z.name)!;
    const mine = [...ref].filter(([, b]) => b.online && b.zone === z.name).map(([i]) => i);
    // present/managed: boot + online hot-plugged blocks of this zone.
    assert.equal(z.presentPages, boot.present + mine.length * NR, `${z.name} present`);
    assert.equal(z.managedPages, boot.managed + mine.length * NR, `${z.name} managed`);
    assert.equal(z.presentEarlyPages, boot.presentEarly, `${z.name} present_early`);
    totalPresent += z.presentPages;
    // Every online block lies inside its zone's span.
    for (const i of mine) {
      assert.ok(z.zoneStartPfn <= startPfn(i) && startPfn(i) + NR <= z.zoneStartPfn + z.spannedPages, `memory${FIRST_ID + i} outside ${z.name}`);
      for (const pfn of [startPfn(i), startPfn(i) + NR / 2, startPfn(i) + NR - 1]) assert.ok(z.buddy.contains(pfn), `online pfn ${pfn} not free in ${z.name}`);
    }
    // Normal and Movable have no boot memory here: shrink_zone_span keeps their spans tight around online blocks.
    if (z.name === "Normal" || z.name === "Movable") {
      if (mine.length === 0) {
        assert.equal(z.spannedPages, 0, `${z.name} should be empty`);
        assert.equal(z.zoneStartPfn, 0);
      } else {
        assert.equal(z.zoneStartPfn, startPfn(Math.min(...mine)), `${z.name} start`);
        assert.equal(z.zoneStartPfn + z.spannedPages, startPfn(Math.max(...mine)) + NR, `${z.name} end`);
      }
    } else {
      assert.equal(z.zoneStartPfn, boot.start);
      assert.equal(z.spannedPages, boot.spanned);
    }
  }
  assert.equal(node.nodePresentPages, totalPresent);
  // update_pgdat_span / resize_pgdat_range: the node spans exactly its non-empty zones.
  const spanned = node.zones.filter((z) => z.spannedPages > 0);
  assert.equal(node.nodeStartPfn, Math.min(...spanned.map((z) => z.zoneStartPfn)));
  assert.equal(node.nodeStartPfn + node.nodeSpannedPages, Math.max(...spanned.map((z) => z.zoneStartPfn + z.spannedPages)));

  let added = 0;
  for (let i = 0; i < NBLOCKS; i++) {
    const b = ref.get(i);
    const id = FIRST_ID + i;
    const mem = k.memoryBlocks.get(id);
    const start = BASE + i * BLOCK;
    if (b) added++;
    if (!b?.online) {
      for (const z of node.zones) {
        for (const pfn of [startPfn(i), startPfn(i) + NR / 2, startPfn(i) + NR - 1]) assert.equal(z.buddy.contains(pfn), false, `offline pfn ${pfn} in ${z.name}'s buddy`);
      }
    }
    if (!b) {
      assert.equal(mem, undefined);
      assert.equal(k.sections.flags(id), 0, `section ${id} flags`);
      assert.equal(regionIntersects(k.iomem, start, BLOCK, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE), REGION_DISJOINT);
      continue;
    }
    assert.ok(mem);
    assert.equal(mem.state, b.online ? "online" : "offline");
    assert.equal(mem.zone?.name ?? null, b.online ? b.zone : null);
    const flags = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP | (b.online ? SECTION_IS_ONLINE : 0);
    assert.equal(k.sections.flags(id), flags, `section ${id} flags`);
    assert.equal(k.sections.pfnValid(startPfn(i)), true);
    assert.equal(regionIntersects(k.iomem, start, BLOCK, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE), REGION_INTERSECTS);
  }
  assert.equal(k.memoryBlocks.count(), BOOT_BLOCKS + added);
  assert.equal(k.vmemmap.ramBytes, added * NR * k.arch.structPageSize);
}

describe("RAM hot-plug sequences (fast-check)", () => {
  it("keep zones, buddy, sections, blocks and iomem consistent, and removing everything restores boot", () => {
    fc.assert(
      fc.property(fc.array(drawArb, { minLength: 4, maxLength: 30, size: "max" }), (draws) => {
        const k = bootKernel(spec);
        const bootSnap = snapshot(k);
        const ref = new Map<number, RefBlock>();
        for (const draw of draws) {
          const op = resolve(draw, ref);
          const [rc, want] = apply(k, ref, op);
          assert.equal(rc, want, `${JSON.stringify(op)}`);
          checkInvariants(k, ref, bootSnap);
        }
        // Tear down: offline everything online, then remove every added block.
        for (const [i, b] of [...ref]) if (b.online) assert.equal(apply(k, ref, { kind: "offline", i })[0], 0);
        for (const i of [...ref.keys()]) assert.equal(apply(k, ref, { kind: "remove", i })[0], 0);
        checkInvariants(k, ref, bootSnap);
        assert.deepEqual(snapshot(k), bootSnap);
      }),
      { numRuns: 80 },
    );
  });
});
