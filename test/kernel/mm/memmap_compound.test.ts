/**
 * Compound layouts in the memmap store (memmap_init_compound's heads and tails described once per range):
 * materialising a section, re-covering a materialised one, field() and the batched-run queries must agree with
 * one struct page per pfn.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { archProfile, type Geometry, geometry } from "../../../src/arch/profiles.ts";
import { type CompoundLayout, Memmap, NO_PAGE, type PageField, PageState, type PageValue, pageValue } from "../../../src/kernel/mm/memmap.ts";

/** 16 pages per section, so compound pages of order 0..3 straddle and fill sections. */
const SMALL: Geometry = { ...geometry(archProfile("x86_64")), pagesPerSection: 16 };
const N = 96;
const FIELDS: PageField[] = ["flags", "zone", "node", "refcount", "mapcount", "pgmap", "compoundHead", "order", "pincount", "mapping", "index"];

/** What memmap_init_compound leaves at pfn for a compound range starting at `base`. */
function compoundPage(head: PageValue, c: CompoundLayout, pfn: number): PageValue {
  const off = (pfn - c.base) % 2 ** c.order;
  return off === 0 ? { ...head } : { ...c.tail, compoundHead: pfn - off };
}

type Op =
  | { kind: "range"; start: number; len: number; state: PageState; order: number }
  | { kind: "set"; pfn: number; field: PageField; value: number }
  | { kind: "state"; pfn: number; state: PageState };

const stateArb = fc.constantFrom(PageState.Uninitialised, PageState.Initialised, PageState.TornDown);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("range" as const),
      start: fc.integer({ min: 0, max: N - 1 }),
      len: fc.integer({ min: 0, max: 48 }),
      state: stateArb,
      order: fc.integer({ min: 0, max: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("set" as const), pfn: fc.integer({ min: 0, max: N - 1 }), field: fc.constantFrom(...FIELDS), value: fc.integer({ min: 0, max: 5 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("state" as const), pfn: fc.integer({ min: 0, max: N - 1 }), state: stateArb }) },
);

describe("Memmap compound layouts", () => {
  it("a materialised compound section holds every head and tail as memmap_init_compound wrote them", () => {
    const m = new Memmap(SMALL);
    const head = pageValue({ refcount: 1, order: 2, pgmap: 7, flags: 1 << 16 });
    const c: CompoundLayout = { order: 2, base: 6, tail: pageValue({ pgmap: 7 }) };
    m.setRange(6, 40, head, c);
    m.set(17, "refcount", 9); // materialises section 1 only
    assert.equal(m.materialisedSections(), 1);
    for (let p = 6; p < 40; p++) {
      const want = p === 17 ? { ...compoundPage(head, c, p), refcount: 9 } : compoundPage(head, c, p);
      assert.deepEqual(m.get(p), want, `pfn ${p}`);
      for (const f of FIELDS) assert.equal(m.field(p, f), want[f], `pfn ${p} ${f}`);
    }
  });

  it("matches a per-pfn reference over random compound ranges, writes and state changes", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        const m = new Memmap(SMALL);
        const ref = new Map<number, PageValue>();
        const refGet = (pfn: number): PageValue => ({ ...(ref.get(pfn) ?? NO_PAGE) });
        for (const op of ops) {
          if (op.kind === "range") {
            const end = Math.min(N, op.start + op.len);
            const head = pageValue({ state: op.state, refcount: 1, order: op.order, pgmap: 3 });
            if (op.order === 0) {
              m.setRange(op.start, end, head);
              for (let p = op.start; p < end; p++) ref.set(p, { ...head });
            } else {
              const c: CompoundLayout = { order: op.order, base: op.start, tail: pageValue({ state: op.state, pgmap: 3 }) };
              m.setRange(op.start, end, head, c);
              for (let p = op.start; p < end; p++) ref.set(p, compoundPage(head, c, p));
            }
          } else if (op.kind === "set") {
            m.set(op.pfn, op.field, op.value);
            ref.set(op.pfn, { ...refGet(op.pfn), [op.field]: op.value });
          } else {
            m.setState(op.pfn, op.state);
            ref.set(op.pfn, { ...refGet(op.pfn), state: op.state });
          }
          for (let p = 0; p < N; p++) {
            const want = refGet(p);
            assert.deepEqual(m.get(p), want, `pfn ${p}`);
            assert.equal(m.state(p), want.state);
            for (const f of FIELDS) assert.equal(m.field(p, f), want[f], `pfn ${p} ${f}`);
          }
          for (const [lo, n] of [
            [0, 16],
            [3, 9],
            [20, 30],
            [40, 1],
          ] as const) {
            let all = true;
            for (let p = lo; p < lo + n; p++) all &&= refGet(p).state === PageState.Initialised;
            assert.equal(m.runInitialised(lo, n), all, `runInitialised(${lo}, ${n})`);
            const arr = m.runArrays(lo, n, false);
            if (arr) {
              assert.ok(all && Math.floor(lo / 16) === Math.floor((lo + n - 1) / 16), "runArrays: one section, all initialised");
              for (let p = lo; p < lo + n; p++) assert.equal(arr.refcount[p % 16], refGet(p).refcount);
            }
          }
          // partitionAbove: the pages a per-pfn field() loop would find above the limit, and the count of the rest.
          for (const [lo, hi, stride] of [
            [0, N, 1],
            [3, 50, 4],
            [17, 18, 1],
            [5, N, 8],
          ] as const) {
            const above: number[] = [];
            const rest = m.partitionAbove(lo, hi, stride, "refcount", 0, above);
            const want: number[] = [];
            for (let p = lo; p < hi; p += stride) if (refGet(p).refcount > 0) want.push(p);
            assert.deepEqual(above, want, `partitionAbove(${lo}, ${hi}, ${stride})`);
            assert.equal(rest, Math.ceil((hi - lo) / stride) - want.length);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
