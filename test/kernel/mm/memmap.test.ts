/**
 * The lazy memmap store: extents + materialised sections must behave exactly like one struct page per pfn.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { archProfile, type Geometry, geometry } from "../../../src/arch/profiles.ts";
import { REWIND } from "../../../src/kernel/lib/rewind.ts";
import { Memmap, NO_PAGE, type PageField, PageState, type PageValue, pageValue } from "../../../src/kernel/mm/memmap.ts";

/** A tiny geometry: 16 pages per section, so a few dozen pfns cross several sections. */
const SMALL: Geometry = { ...geometry(archProfile("x86_64")), pagesPerSection: 16 };
const X86 = geometry(archProfile("x86_64"));

function runsOf(m: Memmap, start: number, end: number) {
  return [...m.runs(start, end)];
}

describe("Memmap basics", () => {
  it("starts with no struct pages anywhere", () => {
    const m = new Memmap(X86);
    assert.deepEqual(m.get(12345), { ...NO_PAGE });
    assert.equal(m.state(0), PageState.NoMemmap);
    assert.deepEqual(runsOf(m, 0, 100), [{ start: 0, end: 100, value: { ...NO_PAGE } }]);
  });

  it("setRange writes a uniform range without materialising anything", () => {
    const m = new Memmap(X86);
    const v = pageValue({ zone: 1, node: 0, refcount: 1 });
    m.setRange(0x1000, 0x7ffdf, v);
    assert.equal(m.materialisedSections(), 0);
    assert.deepEqual(m.get(0x1000), v);
    assert.deepEqual(m.get(0x7ffde), v);
    assert.equal(m.state(0xfff), PageState.NoMemmap);
    assert.equal(m.state(0x7ffdf), PageState.NoMemmap);
    // Overwriting the middle splits the extent in three.
    const w = pageValue({ zone: 1, node: 0, refcount: 0 });
    m.setRange(0x2000, 0x3000, w);
    assert.deepEqual(runsOf(m, 0x1800, 0x3800), [
      { start: 0x1800, end: 0x2000, value: v },
      { start: 0x2000, end: 0x3000, value: w },
      { start: 0x3000, end: 0x3800, value: v },
    ]);
    // NoMemmap removes pages.
    m.setRange(0x2800, 0x2900, { ...NO_PAGE });
    assert.equal(m.state(0x2880), PageState.NoMemmap);
    assert.deepEqual(m.get(0x28ff), { ...NO_PAGE });
    assert.deepEqual(m.get(0x2900), w);
  });

  it("get returns a copy: mutating it changes nothing", () => {
    const m = new Memmap(X86);
    m.setRange(0, 10, pageValue({ refcount: 1 }));
    const p = m.get(3);
    p.refcount = 99;
    assert.equal(m.get(3).refcount, 1);
    m.set(4, "refcount", 2);
    const q = m.get(4);
    q.refcount = 99;
    assert.equal(m.get(4).refcount, 2);
  });

  it("set materialises one section; its other pages keep the extent values", () => {
    const m = new Memmap(SMALL);
    const v = pageValue({ zone: 2, node: 1, refcount: 1 });
    m.setRange(0, 64, v);
    m.set(20, "refcount", 3);
    m.setState(21, PageState.TornDown);
    assert.equal(m.materialisedSections(), 1);
    assert.deepEqual(m.get(19), v);
    assert.deepEqual(m.get(20), { ...v, refcount: 3 });
    assert.equal(m.state(21), PageState.TornDown);
    assert.deepEqual(m.get(16), v);
    assert.deepEqual(m.get(31), v);
    // Runs may break at section boundaries (a materialised section is walked on its own).
    assert.deepEqual(runsOf(m, 14, 34), [
      { start: 14, end: 16, value: v },
      { start: 16, end: 20, value: v },
      { start: 20, end: 21, value: { ...v, refcount: 3 } },
      { start: 21, end: 22, value: { ...v, state: PageState.TornDown } },
      { start: 22, end: 32, value: v },
      { start: 32, end: 34, value: v },
    ]);
  });

  it("materialised sections take later setRange values; a fully covered one goes back to extents", () => {
    const m = new Memmap(SMALL);
    m.setRange(0, 64, pageValue({ refcount: 1 }));
    m.set(18, "flags", 4096);
    m.set(40, "flags", 4096);
    assert.equal(m.materialisedSections(), 2);
    const w = pageValue({ refcount: 0, zone: 3 });
    // Partially covers section 1 (pfns 16..31) from 17, fully covers section 2 (32..47).
    m.setRange(17, 48, w);
    assert.deepEqual(m.get(18), w);
    assert.deepEqual(m.get(40), w);
    assert.deepEqual(m.get(16), pageValue({ refcount: 1 }));
    assert.equal(m.materialisedSections(), 1);
    // Torn down by removal: every page of the range reads TornDown.
    m.setRange(16, 32, pageValue({ state: PageState.TornDown }));
    for (let p = 16; p < 32; p++) assert.equal(m.state(p), PageState.TornDown);
  });

  it("compound tails default to no head", () => {
    const m = new Memmap(SMALL);
    m.setRange(0, 16, pageValue({}));
    m.set(5, "order", 2);
    assert.equal(m.get(6).compoundHead, -1);
    assert.equal(m.get(100).compoundHead, -1);
  });
});

type MOp =
  | { kind: "range"; start: number; len: number; value: PageValue }
  | { kind: "set"; pfn: number; field: PageField; value: number }
  | { kind: "state"; pfn: number; state: PageState };

const N = 80;
const FIELDS: PageField[] = ["flags", "zone", "node", "refcount", "mapcount", "pgmap", "compoundHead", "order", "pincount"];

const valueArb: fc.Arbitrary<PageValue> = fc.oneof(
  fc.constant({ ...NO_PAGE }),
  fc
    .record({
      state: fc.constantFrom(PageState.Uninitialised, PageState.Initialised, PageState.TornDown),
      flags: fc.constantFrom(0, 4096, 65536),
      zone: fc.integer({ min: 0, max: 4 }),
      node: fc.integer({ min: 0, max: 3 }),
      refcount: fc.integer({ min: 0, max: 3 }),
      mapcount: fc.integer({ min: 0, max: 2 }),
      pgmap: fc.integer({ min: 0, max: 2 }),
      compoundHead: fc.integer({ min: -1, max: 40 }),
      order: fc.integer({ min: 0, max: 3 }),
      pincount: fc.integer({ min: 0, max: 2 }),
    })
    .map((v) => pageValue(v)),
);

const opArb: fc.Arbitrary<MOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("range" as const), start: fc.integer({ min: 0, max: N - 1 }), len: fc.integer({ min: 0, max: 40 }), value: valueArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      pfn: fc.integer({ min: 0, max: N - 1 }),
      field: fc.constantFrom(...FIELDS),
      value: fc.integer({ min: 0, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("state" as const),
      pfn: fc.integer({ min: 0, max: N - 1 }),
      state: fc.constantFrom(PageState.NoMemmap, PageState.Uninitialised, PageState.Initialised, PageState.TornDown),
    }),
  },
);

/** Apply op to the memmap and to the per-pfn reference (pfn → page; absent means NO_PAGE). */
function apply(m: Memmap, ref: Map<number, PageValue>, op: MOp): void {
  const get = (pfn: number): PageValue => ({ ...(ref.get(pfn) ?? NO_PAGE) });
  if (op.kind === "range") {
    const end = Math.min(N + 8, op.start + op.len);
    m.setRange(op.start, end, op.value);
    for (let p = op.start; p < end; p++) ref.set(p, { ...op.value });
  } else if (op.kind === "set") {
    m.set(op.pfn, op.field, op.value);
    ref.set(op.pfn, { ...get(op.pfn), [op.field]: op.value });
  } else {
    m.setState(op.pfn, op.state);
    ref.set(op.pfn, { ...get(op.pfn), state: op.state });
  }
}

describe("Memmap property", () => {
  it("matches a per-pfn reference model over random setRange/set/setState", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
        const m = new Memmap(SMALL);
        const ref = new Map<number, PageValue>();
        const refGet = (pfn: number): PageValue => ({ ...(ref.get(pfn) ?? NO_PAGE) });
        for (const op of ops) {
          apply(m, ref, op);
          for (let p = 0; p < N + 8; p++) {
            assert.deepEqual(m.get(p), refGet(p), `pfn ${p}`);
            assert.equal(m.state(p), refGet(p).state);
          }
          // runs(): contiguous, covering [lo, hi), every page of a run equal to the run's value.
          for (const [lo, hi] of [
            [0, N + 8],
            [5, 37],
            [16, 32],
          ] as const) {
            let at: number = lo;
            for (const r of m.runs(lo, hi)) {
              assert.equal(r.start, at, "runs are contiguous");
              assert.ok(r.end > r.start, "runs are non-empty");
              for (let p = r.start; p < r.end; p++) assert.deepEqual(r.value, refGet(p), `run [${r.start}, ${r.end}) at pfn ${p}`);
              at = r.end;
            }
            assert.equal(at, hi, "runs cover the range");
          }
          // partitionAbove: what a per-pfn loop finds, over materialised sections, extents and gaps alike.
          for (const [lo, hi, stride, f] of [
            [0, N + 8, 1, "refcount"],
            [5, 37, 3, "refcount"],
            [2, N + 8, 5, "mapcount"],
          ] as const) {
            const above: number[] = [];
            const rest = m.partitionAbove(lo, hi, stride, f, 1, above);
            const want: number[] = [];
            for (let p = lo; p < hi; p += stride) if (refGet(p)[f] > 1) want.push(p);
            assert.deepEqual(above, want, `partitionAbove(${lo}, ${hi}, ${stride}, ${f})`);
            assert.equal(rest, Math.ceil((hi - lo) / stride) - want.length);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("rewinds to what it held at [REWIND](), again and again, through dropped and re-used sections", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 15 }), fc.array(fc.array(opArb, { maxLength: 15 }), { minLength: 1, maxLength: 4 }), (before, rounds) => {
        const m = new Memmap(SMALL);
        const saved = new Map<number, PageValue>();
        for (const op of before) apply(m, saved, op);
        const want = Array.from({ length: N + 8 }, (_, p) => m.get(p));
        const rewind = m[REWIND]();
        for (const ops of rounds) {
          // Whole-section writes drop sections (they become spares), and later writes re-use them: every page
          // reads as the reference says all along, not only after the rewind.
          const ref = new Map(saved);
          for (const op of ops) {
            apply(m, ref, op);
            for (let p = 0; p < N + 8; p++) assert.deepEqual(m.get(p), { ...(ref.get(p) ?? NO_PAGE) }, `pfn ${p}`);
          }
          rewind();
          for (let p = 0; p < N + 8; p++) assert.deepEqual(m.get(p), want[p], `pfn ${p} after a rewind`);
        }
      }),
      { numRuns: 150 },
    );
  });
});
