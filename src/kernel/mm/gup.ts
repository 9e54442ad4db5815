/**
 * get_user_pages / pin_user_pages on device memory (mm/gup.c, 6.1): the slow path (follow_page_mask with a
 * per-call pgmap reference, faults and retries), the lockless fast path (gup_pgd_range with devmap PTE/PMD/PUD
 * handling and undo_dev_pagemap) and the release side (gup_put_folio, unpin_user_pages).
 *
 * Pages are returned as pfns. A FOLL_GET reference adds 1 to the folio's refcount; FOLL_PIN adds
 * GUP_PIN_COUNTING_BIAS (1024) to a small folio, or 1 plus compound_pincount on a large one.
 */
import { EEXIST, EFAULT, EHWPOISON, EINVAL, ENOMEM, EOPNOTSUPP, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step, type Yield } from "../path.ts";
import type { DevPagemap } from "./dev_pagemap.ts";
import { MemoryType } from "./dev_pagemap.ts";
import { PG_referenced } from "./memmap.ts";
import { entryAccessPermitted, entryDevmap, entryNone, entryPfn, entryPresent, entrySpecial, entryWrite, handleMmFault } from "./memory.ts";
import { getDevPagemap, putDevPagemap, putPage } from "./memremap.ts";
import { type MmStruct, type Task, VM_FAULT_ERROR, VM_FAULT_HWPOISON, VM_FAULT_OOM, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma, vmaIsFsdax, vmaLookup } from "./mm_types.ts";
import { pageField, pageWrite } from "./page_access.ts";
import type { PtTable } from "./pgtable.ts";

// ref: include/linux/mm.h FOLL_*
export const FOLL_WRITE = 0x01;
export const FOLL_TOUCH = 0x02;
export const FOLL_GET = 0x04;
export const FOLL_FORCE = 0x10;
export const FOLL_HWPOISON = 0x100;
export const FOLL_LONGTERM = 0x10000;
export const FOLL_PIN = 0x40000;
export const FOLL_FAST_ONLY = 0x80000;

/** ref: include/linux/mm.h GUP_PIN_COUNTING_BIAS */
export const GUP_PIN_COUNTING_BIAS = 1024;

const FOLL_NAMES: ReadonlyArray<readonly [number, string]> = [
  [FOLL_WRITE, "FOLL_WRITE"],
  [FOLL_GET, "FOLL_GET"],
  [FOLL_LONGTERM, "FOLL_LONGTERM"],
  [FOLL_PIN, "FOLL_PIN"],
  [FOLL_FAST_ONLY, "FOLL_FAST_ONLY"],
];

export function follString(flags: number): string {
  return FOLL_NAMES.filter(([b]) => flags & b)
    .map(([, n]) => n)
    .join("|");
}

/** Who holds the transient pgmap references GUP takes (named so a hang can say who). */
function gupHolder(mm: MmStruct): string {
  return `gup(mm ${mm.id})`;
}

function headOf(k: Kernel, pfn: number, at: string): number {
  const h = pageField(k, pfn, "compoundHead", at);
  return h >= 0 ? h : pfn;
}

function isLarge(k: Kernel, head: number, at: string): boolean {
  return pageField(k, head, "order", at) > 0;
}

// ref: mm/gup.c is_longterm_pinnable_page (include/linux/mm.h)
function isLongtermPinnablePage(k: Kernel, pfn: number): boolean {
  const pg = pageField(k, pfn, "pgmap", "is_longterm_pinnable_page");
  if (pg && k.pgmaps.byId.get(pg)?.type === MemoryType.COHERENT) return false;
  return k.zoneNames[pageField(k, pfn, "zone", "is_longterm_pinnable_page")] !== "Movable";
}

/** try_grab_page (slow path and device huge entries): false if the page is free. */
// ref: mm/gup.c try_grab_page
export function tryGrabPage(k: Kernel, pfn: number, flags: number): boolean {
  const head = headOf(k, pfn, "try_grab_page");
  const ref = pageField(k, head, "refcount", "try_grab_page");
  if (ref <= 0) {
    k.sanitizer.report({ kind: "warning", at: "try_grab_page", pfn: head, detail: `WARN_ON_ONCE(folio_ref_count <= 0): pfn 0x${head.toString(16)} refcount ${ref}` });
    return false;
  }
  if (flags & FOLL_GET) {
    pageWrite(k, head, "refcount", ref + 1, "try_grab_page");
  } else if (flags & FOLL_PIN) {
    if (isLarge(k, head, "try_grab_page")) {
      pageWrite(k, head, "refcount", ref + 1, "try_grab_page");
      pageWrite(k, head, "pincount", pageField(k, head, "pincount", "try_grab_page") + 1, "try_grab_page");
    } else {
      pageWrite(k, head, "refcount", ref + GUP_PIN_COUNTING_BIAS, "try_grab_page");
    }
  }
  return true;
}

/**
 * `n` try_grab_page calls on subpages of one compound page, at once: each lands on the head, so the head's
 * refcount (and pincount) grows by n. Same effect and same footprint as the loop; false if the head is free.
 */
function tryGrabPages(k: Kernel, head: number, n: number, flags: number): boolean {
  const ref = pageField(k, head, "refcount", "try_grab_page");
  if (ref <= 0) return tryGrabPage(k, head, flags);
  if (flags & FOLL_GET) {
    pageWrite(k, head, "refcount", ref + n, "try_grab_page");
  } else if (flags & FOLL_PIN) {
    pageWrite(k, head, "refcount", ref + n, "try_grab_page");
    pageWrite(k, head, "pincount", pageField(k, head, "pincount", "try_grab_page") + n, "try_grab_page");
  }
  return true;
}

/** try_grab_folio (fast path): refuses long-term pins of unpinnable pages and free (refcount 0) pages. */
// ref: mm/gup.c try_grab_folio, try_get_folio
export function tryGrabFolio(k: Kernel, pfn: number, refs: number, flags: number): number | null {
  if (flags & FOLL_GET) return tryGetFolio(k, pfn, refs);
  if (flags & FOLL_PIN) {
    if (flags & FOLL_LONGTERM && !isLongtermPinnablePage(k, pfn)) return null;
    const head = tryGetFolio(k, pfn, refs);
    if (head === null) return null;
    if (isLarge(k, head, "try_grab_folio")) {
      pageWrite(k, head, "pincount", pageField(k, head, "pincount", "try_grab_folio") + refs, "try_grab_folio");
    } else {
      pageWrite(k, head, "refcount", pageField(k, head, "refcount", "try_grab_folio") + refs * (GUP_PIN_COUNTING_BIAS - 1), "try_grab_folio");
    }
    return head;
  }
  return null;
}

function tryGetFolio(k: Kernel, pfn: number, refs: number): number | null {
  const head = headOf(k, pfn, "try_get_folio");
  const ref = pageField(k, head, "refcount", "try_get_folio");
  if (ref < 0) k.sanitizer.report({ kind: "warning", at: "try_get_folio", pfn: head, detail: `negative refcount ${ref}` });
  if (ref <= 0) return null; // folio_ref_try_add_rcu: add unless zero
  pageWrite(k, head, "refcount", ref + refs, "try_get_folio");
  return head;
}

/** gup_put_folio: undo one grab (a pin is its bias, or the compound pincount), then put_page semantics. */
// ref: mm/gup.c gup_put_folio
export function* gupPutFolio(k: Kernel, pfn: number, refsIn: number, flags: number): KernelPath<void> {
  let refs = refsIn;
  const head = headOf(k, pfn, "gup_put_folio");
  if (flags & FOLL_PIN) {
    if (isLarge(k, head, "gup_put_folio")) {
      pageWrite(k, head, "pincount", pageField(k, head, "pincount", "gup_put_folio") - refs, "gup_put_folio");
    } else {
      refs *= GUP_PIN_COUNTING_BIAS;
    }
  }
  yield* putPage(k, head, refs);
}

/** unpin_user_pages (or put_page for FOLL_GET references) over the pages GUP returned. */
// ref: mm/gup.c unpin_user_pages, unpin_user_page
export function* unpinUserPages(k: Kernel, pages: readonly number[], flags = FOLL_PIN): KernelPath<void> {
  for (const pfn of pages) yield* gupPutFolio(k, pfn, 1, flags & (FOLL_PIN | FOLL_GET));
}

function setReferenced(k: Kernel, pfn: number, at: string): void {
  const head = headOf(k, pfn, at);
  const f = pageField(k, head, "flags", at);
  if (!(f & (1 << PG_referenced))) pageWrite(k, head, "flags", f | (1 << PG_referenced), at);
}

function clearReferenced(k: Kernel, pfn: number, at: string): void {
  const head = headOf(k, pfn, at);
  const f = pageField(k, head, "flags", at);
  if (f & (1 << PG_referenced)) pageWrite(k, head, "flags", f & ~(1 << PG_referenced), at);
}

// ---------------------------------------------------------------------------------------------------------
// Slow path

// ref: mm/gup.c check_vma_flags
function checkVmaFlags(k: Kernel, vma: Vma, flags: number): Errno {
  if (vma.flags & (VM_IO | VM_PFNMAP)) return -EFAULT;
  if (flags & FOLL_LONGTERM && vmaIsFsdax(vma, k.config.enabled("FS_DAX"))) return -EOPNOTSUPP;
  if (flags & FOLL_WRITE) {
    if (!(vma.flags & VM_WRITE) && !(flags & FOLL_FORCE)) return -EFAULT;
  } else if (!(vma.flags & VM_READ) && !(flags & FOLL_FORCE)) {
    return -EFAULT;
  }
  return 0;
}

/** follow_page_mask's answer: a page (pfn), nothing there yet (null), or an error pointer. */
type Follow = { page: number } | null | { err: Errno };

interface FollowCtx {
  pgmap: DevPagemap | null;
}

// ref: mm/gup.c follow_page_mask, follow_pud_mask, follow_pmd_mask, follow_page_pte; mm/huge_memory.c follow_devmap_pmd, follow_devmap_pud
function* followPageMask(k: Kernel, vma: Vma, addr: number, flags: number, ctx: FollowCtx): KernelPath<Follow> {
  const pt = vma.mm.pgd;
  const slot = pt.lookup(addr);
  yield STEP_FOLLOW;
  if (!slot) return null;
  const { table: t, idx } = slot;
  if (entryNone(t, idx)) return null;
  const level = slot.level.name;
  const mm = vma.mm;
  if (level !== "pte") {
    // A huge leaf (the walk stops at leaves).
    if (!entryDevmap(k, pt, t, idx)) return null;
    yield STEP_HUGE_LOCK;
    if (flags & FOLL_WRITE && !entryWrite(pt, t, idx)) return null;
    if (!entryPresent(pt, t, idx)) return null;
    if (!(flags & (FOLL_GET | FOLL_PIN))) return { err: -EEXIST };
    const shift = slot.level.shift;
    const pfn = entryPfn(pt, t, idx) + Math.floor((addr % 2 ** shift) / k.geo.pageSize);
    ctx.pgmap = yield* getDevPagemap(k, pfn, gupHolder(mm), ctx.pgmap);
    if (!ctx.pgmap) return { err: -EFAULT };
    if (!tryGrabPage(k, pfn, flags)) return { err: -ENOMEM };
    return { page: pfn };
  }
  yield STEP_PTL;
  if (!entryPresent(pt, t, idx)) return null;
  if (flags & FOLL_WRITE && !entryWrite(pt, t, idx)) return null;
  const pfn = entryPfn(pt, t, idx);
  // vm_normal_page is NULL for special and devmap PTEs.
  if (entryDevmap(k, pt, t, idx) && flags & (FOLL_GET | FOLL_PIN)) {
    ctx.pgmap = yield* getDevPagemap(k, pfn, gupHolder(mm), ctx.pgmap);
    if (!ctx.pgmap) return null; // no_page: the caller faults and retries
  } else if (entrySpecial(pt, t, idx)) {
    return { err: -EEXIST }; // follow_pfn_pte: a proper PTE exists but no struct page
  }
  if (!tryGrabPage(k, pfn, flags)) return { err: -ENOMEM };
  if (flags & FOLL_TOUCH) setReferenced(k, pfn, "follow_page_pte: mark_page_accessed");
  return { page: pfn };
}

const STEP_FOLLOW: Yield = step("follow_page_mask: walk");
const STEP_PTL: Yield = step("follow_page_pte: pte_offset_map_lock");
const STEP_HUGE_LOCK: Yield = step("follow_devmap_pmd: pmd_lock");

// ref: mm/gup.c vm_fault_to_errno
function vmFaultToErrno(ret: number, flags: number): Errno {
  if (ret & VM_FAULT_OOM) return -ENOMEM;
  if (ret & VM_FAULT_HWPOISON) return flags & FOLL_HWPOISON ? -EHWPOISON : -EFAULT;
  if (ret & VM_FAULT_ERROR) return -EFAULT;
  return 0;
}

export interface GupResult {
  /** Pages done (≥ 0) or a negative errno. */
  ret: number;
  /** The pfns grabbed, in address order. */
  pages: number[];
  /** How many came from the fast path. */
  fast: number;
}

/**
 * __get_user_pages: page by page, follow; a missing page faults and retries. A present PTE whose pgmap is
 * dying can neither be followed nor faulted in: the kernel loops until the driver zaps it (or a fatal
 * signal); the model blocks on exactly that.
 */
// ref: mm/gup.c __get_user_pages, faultin_page
export function* getUserPagesSlow(k: Kernel, task: Task, start: number, nrPages: number, flags: number, pages: number[]): KernelPath<number> {
  const mm = task.mm;
  const ctx: FollowCtx = { pgmap: null };
  let done = 0;
  let ret: number = 0;
  mm.mmapLock.readers++;
  yield step("__get_user_pages: mmap_read_lock");
  try {
    let addr = start;
    while (done < nrPages) {
      const vma = vmaLookup(mm, addr);
      if (!vma) {
        ret = -EFAULT;
        break;
      }
      const err = checkVmaFlags(k, vma, flags);
      if (err) {
        ret = err;
        break;
      }
      let retries = 0;
      let page: Follow = null;
      for (;;) {
        page = yield* followPageMask(k, vma, addr, flags | FOLL_TOUCH, ctx);
        if (page) break;
        const before = entryKey(vma, addr);
        const fault = yield* handleMmFault(k, vma, addr, (flags & FOLL_WRITE) !== 0);
        const e = vmFaultToErrno(fault.ret, flags);
        if (e) {
          page = { err: e };
          break;
        }
        if (++retries > 1 && entryKey(vma, addr) === before) {
          // Nothing changed: the kernel spins in this retry loop (cond_resched) until the PTE changes.
          yield {
            kind: "block",
            at: "__get_user_pages: retry (follow_page_mask finds no page, faultin_page does nothing)",
            until: () => entryKey(vma, addr) !== before,
            holder: () => `pte at 0x${addr.toString(16)} still maps a pfn whose pgmap is dying; only a zap of the mapping (or a fatal signal) ends the loop`,
          };
        }
      }
      if ("err" in page) {
        if (page.err === -EEXIST && pages === null) {
          addr += k.geo.pageSize;
          done++;
          continue;
        }
        ret = page.err;
        break;
      }
      pages.push(page.page);
      done++;
      addr += k.geo.pageSize;
    }
  } finally {
    mm.mmapLock.readers--;
  }
  yield* putDevPagemap(k, ctx.pgmap, gupHolder(mm));
  return done > 0 ? done : ret;
}

function entryKey(vma: Vma, addr: number): string {
  const s = vma.mm.pgd.lookup(addr);
  if (!s) return "";
  return `${s.level.name}:${s.table.lo[s.idx]}:${s.table.hi[s.idx]}`;
}

// ---------------------------------------------------------------------------------------------------------
// Fast path

const STEP_PMD: Yield = step("gup_pmd_range: READ_ONCE(*pmdp)");
const STEP_PTE: Yield = step("gup_pte_range: ptep_get_lockless");
const STEP_RECHECK: Yield = step("__gup_device_huge_pmd: recheck pmd");

interface FastState {
  pages: number[];
  flags: number;
  mm: MmStruct;
}

// ref: mm/gup.c undo_dev_pagemap
function* undoDevPagemap(k: Kernel, st: FastState, nrStart: number): KernelPath<void> {
  while (st.pages.length > nrStart) {
    const pfn = st.pages.pop()!;
    clearReferenced(k, pfn, "undo_dev_pagemap");
    yield* gupPutFolio(k, pfn, 1, st.flags & FOLL_PIN ? FOLL_PIN : FOLL_GET);
  }
}

// ref: mm/gup.c __gup_device_huge, __gup_device_huge_pmd, __gup_device_huge_pud
function* gupDeviceHuge(k: Kernel, st: FastState, t: PtTable, idx: number, shift: number, addr: number, end: number): KernelPath<boolean> {
  const pt = st.mm.pgd;
  const origLo = t.lo[idx]!;
  const origHi = t.hi[idx]!;
  const nrStart = st.pages.length;
  let pfn = entryPfn(pt, t, idx) + Math.floor((addr % 2 ** shift) / k.geo.pageSize);
  let pgmap: DevPagemap | null = null;
  let a = addr;
  const holder = gupHolder(st.mm);
  const ps = k.geo.pageSize;
  for (; a !== end; ) {
    pgmap = yield* getDevPagemap(k, pfn, holder, pgmap);
    if (!pgmap) {
      yield* undoDevPagemap(k, st, nrStart);
      break;
    }
    // Subpages of one compound page under the same cached pgmap (its ranges[0]) are grabbed as one batch:
    // every grab of the loop lands on the head and nothing can fail between them.
    const head = headOf(k, pfn, "__gup_device_huge");
    const order = pageField(k, head, "order", "__gup_device_huge");
    let n = 1;
    if (order > 0) {
      const r0 = pgmap.ranges[0]!;
      const lastInPgmap = k.physPfn(r0.end);
      const lastInCompound = head + 2 ** order - 1;
      n = Math.max(1, Math.min((end - a) / ps, lastInCompound - pfn + 1, lastInPgmap - pfn + 1));
    }
    setReferenced(k, pfn, "__gup_device_huge: SetPageReferenced");
    if (!(n > 1 ? tryGrabPages(k, head, n, st.flags) : tryGrabPage(k, pfn, st.flags))) {
      yield* undoDevPagemap(k, st, nrStart);
      break;
    }
    for (let i = 0; i < n; i++) st.pages.push(pfn + i);
    pfn += n;
    a += n * ps;
  }
  yield* putDevPagemap(k, pgmap, holder);
  if (a !== end) return false;
  yield STEP_RECHECK;
  if (t.lo[idx] !== origLo || t.hi[idx] !== origHi) {
    yield* undoDevPagemap(k, st, nrStart);
    return false;
  }
  return true;
}

// ref: mm/gup.c gup_pte_range
function* gupPteRange(k: Kernel, st: FastState, t: PtTable, addr: number, end: number): KernelPath<boolean> {
  const pt = st.mm.pgd;
  const nrStart = st.pages.length;
  const holder = gupHolder(st.mm);
  const write = (st.flags & FOLL_WRITE) !== 0;
  let pgmap: DevPagemap | null = null;
  let ok = true;
  const ps = k.geo.pageSize;
  for (let a = addr; a !== end; a += ps) {
    const idx = pt.index(a, t.depth);
    yield STEP_PTE;
    const lo = t.lo[idx]!;
    const hi = t.hi[idx]!;
    if (!entryAccessPermitted(pt, t, idx, write)) {
      ok = false;
      break;
    }
    const pfn = entryPfn(pt, t, idx);
    if (entryDevmap(k, pt, t, idx)) {
      if (st.flags & FOLL_LONGTERM) {
        ok = false;
        break;
      }
      pgmap = yield* getDevPagemap(k, pfn, holder, pgmap);
      if (!pgmap) {
        yield* undoDevPagemap(k, st, nrStart);
        ok = false;
        break;
      }
    } else if (entrySpecial(pt, t, idx)) {
      ok = false;
      break;
    }
    const head = tryGrabFolio(k, pfn, 1, st.flags);
    if (head === null) {
      ok = false;
      break;
    }
    if (t.lo[idx] !== lo || t.hi[idx] !== hi) {
      yield* gupPutFolio(k, pfn, 1, st.flags);
      ok = false;
      break;
    }
    setReferenced(k, pfn, "gup_pte_range: folio_set_referenced");
    st.pages.push(pfn);
  }
  yield* putDevPagemap(k, pgmap, holder);
  return ok;
}

/** gup_pgd_range over [start, end): stops at the first entry it cannot take. */
// ref: mm/gup.c gup_pgd_range, gup_p4d_range, gup_pud_range, gup_pmd_range, gup_huge_pmd, gup_huge_pud
function* gupPgdRange(k: Kernel, st: FastState, start: number, end: number): KernelPath<void> {
  const pt = st.mm.pgd;
  const write = (st.flags & FOLL_WRITE) !== 0;
  let addr = start;
  while (addr < end) {
    // Walk the tables down to a leaf or a PTE table.
    let t = pt.root;
    for (;;) {
      const idx = pt.index(addr, t.depth);
      const c = t.child[idx];
      if (!c) break;
      t = c;
    }
    const idx = pt.index(addr, t.depth);
    const level = pt.levels[t.depth]!;
    const size = 2 ** level.shift;
    const next = Math.min(end, addr - (addr % size) + size);
    if (level.name === "pte") {
      // t is a PTE table; cover up to the end of its PMD.
      const pmdSize = 2 ** k.arch.pmdShift;
      const pmdNext = Math.min(end, addr - (addr % pmdSize) + pmdSize);
      if (!(yield* gupPteRange(k, st, t, addr, pmdNext))) return;
      addr = pmdNext;
      continue;
    }
    yield STEP_PMD;
    if (entryNone(t, idx) || !entryPresent(pt, t, idx)) return;
    // A huge leaf at this level (a non-leaf would have a child table).
    if (!entryAccessPermitted(pt, t, idx, write)) return;
    if (!entryDevmap(k, pt, t, idx)) return; // THP/hugetlb leaves: not device memory (not modelled here)
    if (st.flags & FOLL_LONGTERM) return;
    if (!(yield* gupDeviceHuge(k, st, t, idx, level.shift, addr, next))) return;
    addr = next;
  }
}

/**
 * get_user_pages_fast / pin_user_pages_fast: the lockless walk first, then the slow path for the rest
 * (unless FOLL_FAST_ONLY).
 */
// ref: mm/gup.c internal_get_user_pages_fast, lockless_pages_from_mm, __gup_longterm_unlocked
export function* getUserPagesFast(k: Kernel, task: Task, start: number, nrPages: number, flags: number): KernelPath<GupResult> {
  if (flags & ~(FOLL_WRITE | FOLL_LONGTERM | FOLL_FORCE | FOLL_PIN | FOLL_GET | FOLL_FAST_ONLY)) return { ret: -EINVAL, pages: [], fast: 0 };
  const ps = k.geo.pageSize;
  const end = start + nrPages * ps;
  if (end > task.mm.taskSize) return { ret: -EFAULT, pages: [], fast: 0 };
  const st: FastState = { pages: [], flags, mm: task.mm };
  if (k.arch.selects.HAVE_FAST_GUP) {
    yield step("lockless_pages_from_mm: local_irq_save");
    yield* gupPgdRange(k, st, start, end);
    yield step("lockless_pages_from_mm: local_irq_restore");
  }
  const fast = st.pages.length;
  if (fast === nrPages || flags & FOLL_FAST_ONLY) return { ret: fast, pages: st.pages, fast };
  const rest: number[] = [];
  const r = yield* gupLongtermLocked(k, task, start + fast * ps, nrPages - fast, flags, rest);
  st.pages.push(...rest);
  if (r < 0) return { ret: fast ? fast : r, pages: st.pages, fast };
  return { ret: r + fast, pages: st.pages, fast };
}

/** get_user_pages / pin_user_pages (slow path only), with FOLL_LONGTERM's checks. */
// ref: mm/gup.c __gup_longterm_locked, is_valid_gup_flags, pin_user_pages
export function* getUserPages(k: Kernel, task: Task, start: number, nrPages: number, flags: number): KernelPath<GupResult> {
  const pages: number[] = [];
  const ret = yield* gupLongtermLocked(k, task, start, nrPages, flags, pages);
  return { ret, pages, fast: 0 };
}

function* gupLongtermLocked(k: Kernel, task: Task, start: number, nrPages: number, flags: number, pages: number[]): KernelPath<number> {
  if (flags & FOLL_LONGTERM && !(flags & FOLL_PIN)) {
    k.sanitizer.report({ kind: "warning", at: "__gup_longterm_locked", detail: "FOLL_LONGTERM without FOLL_PIN" });
    return -EINVAL;
  }
  // check_and_migrate_movable_pages: device-dax / fsdax pages are long-term pinnable (not ZONE_MOVABLE);
  // DEVICE_COHERENT migration is not modelled here.
  return yield* getUserPagesSlow(k, task, start, nrPages, flags, pages);
}
