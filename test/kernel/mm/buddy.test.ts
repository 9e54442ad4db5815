/**
 * The buddy allocator against mm/page_alloc.c (__free_one_page, __rmqueue_smallest + expand) and
 * mm/memblock.c __free_pages_memory (free a range in the largest naturally aligned blocks).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Buddy, lowestSetBit } from "../../../src/kernel/mm/buddy.ts";

/** x86_64 4K: MAX_ORDER 11, orders 0..10. */
const MAX_ORDER = 11;

describe("freeRange (__free_pages_memory)", () => {
  it("frees [1, 1024) as one block of each order 0..9", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(1, 1024);
    // 1 (o0), 2 (o1), 4 (o2), ..., 512 (o9): none of them has a free buddy (pfn 0 stays allocated).
    assert.deepEqual(b.buddyinfo(), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert.equal(b.freePages(), 1023);
    assert.equal(b.contains(0), false);
    for (const pfn of [1, 2, 3, 500, 512, 1023]) assert.equal(b.contains(pfn), true, `pfn ${pfn}`);
    assert.equal(b.contains(1024), false);
  });

  it("freeing the missing page merges everything into one MAX_ORDER-1 block", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(1, 1024);
    b.freeOnePage(0, 0);
    assert.deepEqual(b.buddyinfo(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(b.freePages(), 1024);
  });

  it("never builds blocks above MAX_ORDER-1 and splits an unaligned tail", () => {
    const b = new Buddy(MAX_ORDER);
    // 4096 + 100 pages from 0: four order-10 blocks, then 64 + 32 + 4 at the end.
    b.freeRange(0, 4196);
    assert.deepEqual(b.buddyinfo(), [0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 4]);
    assert.equal(b.freePages(), 4196);
  });

  it("lowestSetBit is __ffs beyond 32 bits", () => {
    assert.equal(lowestSetBit(1), 0);
    assert.equal(lowestSetBit(0x200000), 21);
    assert.equal(lowestSetBit(2 ** 40), 40);
    assert.equal(lowestSetBit(2 ** 40 + 2 ** 35), 35);
  });
});

describe("allocPages (__rmqueue_smallest + expand) and freeOnePage (__free_one_page)", () => {
  it("splits the smallest sufficient block, returning the upper halves", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(0, 1024);
    const pfn = b.allocPages(0);
    assert.equal(pfn, 0);
    // expand: order-10 block at 0 leaves 512 (o9), 256 (o8), ..., 1 (o0) free.
    assert.deepEqual(b.buddyinfo(), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert.equal(b.freePages(), 1023);
    assert.equal(b.contains(0), false);
    assert.equal(b.contains(1), true);
    // The next order-3 request takes the free order-3 block (8), no further split.
    assert.equal(b.allocPages(3), 8);
    assert.deepEqual(b.buddyinfo(), [1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0]);
    b.freeOnePage(8, 3);
    b.freeOnePage(0, 0);
    assert.deepEqual(b.buddyinfo(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(b.freePages(), 1024);
  });

  it("returns -1 when no block is large enough", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(1, 1024);
    assert.equal(b.allocPages(10), -1);
    assert.equal(b.allocPages(9), 512);
    assert.equal(b.allocPages(9), -1);
  });

  it("does not merge with a neighbour that is not its buddy", () => {
    const b = new Buddy(MAX_ORDER);
    // 2 and 4 are adjacent order-1 blocks but 2's buddy is 0, 4's is 6.
    b.freeOnePage(2, 1);
    b.freeOnePage(4, 1);
    assert.deepEqual(b.buddyinfo().slice(0, 3), [0, 2, 0]);
    b.freeOnePage(6, 1);
    assert.deepEqual(b.buddyinfo().slice(0, 3), [0, 1, 1]);
  });
});

describe("takeRange (isolate and take free pages for offline)", () => {
  it("takes exactly the free pages inside the range and leaves both outside parts free, maximally merged", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(0, 4096);
    assert.equal(b.takeRange(100, 3000), 2900);
    assert.equal(b.freePages(), 4096 - 2900);
    // [0, 100) = 0 (o6) + 64 (o5) + 96 (o2); [3000, 3072) = 3000 (o3) + 3008 (o6); [3072, 4096) untouched (o10).
    assert.deepEqual(b.buddyinfo(), [0, 0, 1, 1, 0, 1, 2, 0, 0, 0, 1]);
    for (const pfn of [0, 99, 3000, 3071, 3072, 4095]) assert.equal(b.contains(pfn), true, `pfn ${pfn}`);
    for (const pfn of [100, 1024, 2047, 2999]) assert.equal(b.contains(pfn), false, `pfn ${pfn}`);
    // Taking it again takes nothing.
    assert.equal(b.takeRange(100, 3000), 0);
  });

  it("counts only free pages: allocated blocks inside the range are not taken", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(0, 2048);
    const a = b.allocPages(4);
    assert.equal(a, 0);
    assert.equal(b.takeRange(0, 1024), 1024 - 16);
    assert.equal(b.freePages(), 1024);
    assert.deepEqual(b.buddyinfo(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it("takes whole top-order runs", () => {
    const b = new Buddy(MAX_ORDER);
    b.freeRange(0, 1024 * 64);
    assert.equal(b.takeRange(1024 * 8, 1024 * 40), 1024 * 32);
    assert.equal(b.nrFree(10), 32);
    assert.equal(b.contains(1024 * 8 - 1), true);
    assert.equal(b.contains(1024 * 8), false);
    assert.equal(b.contains(1024 * 40 - 1), false);
    assert.equal(b.contains(1024 * 40), true);
  });
});

type Op = { kind: "alloc"; order: number } | { kind: "free"; index: number };

describe("buddy properties", () => {
  it("alloc/free sequences: accounting, no overlap, back to the start after freeing everything", () => {
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant("alloc" as const), order: fc.integer({ min: 0, max: MAX_ORDER - 1 }) }),
      fc.record({ kind: fc.constant("free" as const), index: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 6000 }), fc.array(opArb, { maxLength: 60 }), (start, len, ops) => {
        const end = start + len;
        const b = new Buddy(MAX_ORDER);
        b.freeRange(start, end);
        const initial = b.buddyinfo();
        const initialFree = b.freePages();
        assert.equal(initialFree, len);
        const live: Array<{ pfn: number; order: number }> = [];
        let allocated = 0;
        for (const op of ops) {
          if (op.kind === "alloc") {
            const before = b.freePages();
            const pfn = b.allocPages(op.order);
            if (pfn < 0) {
              assert.equal(b.freePages(), before);
              // Nothing at this order or above is free.
              for (let o = op.order; o < MAX_ORDER; o++) assert.equal(b.nrFree(o), 0);
              continue;
            }
            const size = 2 ** op.order;
            assert.equal(pfn % size, 0, "blocks are naturally aligned");
            assert.ok(pfn >= start && pfn + size <= end, "inside the freed range");
            for (const l of live) {
              const lEnd = l.pfn + 2 ** l.order;
              assert.ok(pfn + size <= l.pfn || pfn >= lEnd, `block ${pfn}/${op.order} overlaps ${l.pfn}/${l.order}`);
            }
            assert.equal(b.contains(pfn), false);
            assert.equal(b.contains(pfn + size - 1), false);
            live.push({ pfn, order: op.order });
            allocated += size;
          } else {
            if (live.length === 0) continue;
            const [blk] = live.splice(op.index % live.length, 1);
            b.freeOnePage(blk!.pfn, blk!.order);
            allocated -= 2 ** blk!.order;
            assert.equal(b.contains(blk!.pfn), true);
          }
          assert.equal(b.freePages(), initialFree - allocated);
        }
        for (const l of live) b.freeOnePage(l.pfn, l.order);
        assert.equal(b.freePages(), initialFree);
        assert.deepEqual(b.buddyinfo(), initial);
      }),
      { numRuns: 100 },
    );
  });
});
