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
import { localIrqRestore, localIrqSave } from "../rcu.ts";
import type { DevPagemap } from "./dev_pagemap.ts";
import { MemoryType } from "./dev_pagemap.ts";
import { PG_referenced } from "./memmap.ts";
import { entryDevmap, entryNone, entryPfn, entryPresent, entrySpecial, entryWrite, handleMmFault } from "./memory.ts";
import { getDevPagemap, putDevPagemap, putPage } from "./memremap.ts";
import { type MmStruct, type Task, VM_FAULT_ERROR, VM_FAULT_HWPOISON, VM_FAULT_OOM, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma, vmaIsFsdax, vmaLookup } from "./mm_types.ts";
import { pageField, pagesRead, pagesRun, pagesRunAccessed, pageWrite, pgmapUse } from "./page_access.ts";
import type { PageTable, PtTable } from "./pgtable.ts";

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
export function* gupPutFolio(k: Kernel, pfn: number, refs: number, flags: number): KernelPath<void> {
  yield* putFolio(k, headOf(k, pfn, "gup_put_folio"), refs, flags);
}

/** gup_put_folio on a folio already known (its head pfn). */
function* putFolio(k: Kernel, head: number, refsIn: number, flags: number): KernelPath<void> {
  let refs = refsIn;
  if (flags & FOLL_PIN) {
    if (isLarge(k, head, "gup_put_folio")) {
      pageWrite(k, head, "pincount", pageField(k, head, "pincount", "gup_put_folio") - refs, "gup_put_folio");
    } else {
      refs *= GUP_PIN_COUNTING_BIAS;
    }
  }
  yield* putPage(k, head, refs);
}

/**
 * unpin_user_pages (or put_page for FOLL_GET references) over the pages GUP returned: gup_folio_next groups the
 * entries that belong to one folio (page_folio of each is read) and gup_put_folio drops them at once.
 */
// ref: mm/gup.c unpin_user_pages, gup_folio_next, unpin_user_page
export function* unpinUserPages(k: Kernel, pages: readonly number[], flags = FOLL_PIN): KernelPath<void> {
  const f = flags & (FOLL_PIN | FOLL_GET);
  for (let i = 0; i < pages.length; ) {
    const folio = headOf(k, pages[i]!, "unpin_user_pages: page_folio");
    const nr = gupFolioNext(k, pages, i, folio);
    yield* putFolio(k, folio, nr, f);
    i += nr;
  }
}

/** gup_folio_next: how many entries from i on belong to `folio` (each next entry's compound_head is read). */
// ref: mm/gup.c gup_folio_next
function gupFolioNext(k: Kernel, list: readonly number[], i: number, folio: number): number {
  const pps = k.geo.pagesPerSection;
  let nr = i + 1;
  // Consecutive pfns in one section are read from the section's arrays at once, in chunks that double while
  // the entries stay in the folio (a small folio costs one look at the next entry, as in the kernel).
  for (let chunk = 1; nr < list.length; chunk *= 2) {
    const pfn = list[nr]!;
    const lim = Math.min(list.length - nr, pps - (pfn % pps), chunk);
    let len = 1;
    while (len < lim && list[nr + len] === pfn + len) len++;
    const run = len > 1 ? pagesRun(k, pfn, len, false) : null;
    if (!run) {
      if (headOf(k, pfn, "unpin_user_pages: page_folio") !== folio) break;
      nr++;
      continue;
    }
    const ch = run.arrays.compoundHead;
    let j = 0;
    for (let off = run.off; j < len; j++, off++) {
      const h = ch[off]!;
      if ((h >= 0 ? h : pfn + j) !== folio) break;
    }
    // Entries up to the first of another folio were read (that one too).
    pagesRunAccessed(k, run, Math.min(len, j + 1), false);
    nr += j;
    if (j < len) break;
  }
  return nr - i;
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
    if (!entryDevmap(k, pt, t, idx)) {
      if (level === "pmd") return yield* followTransHugePmd(k, pt, t, idx, addr, flags);
      return null; // follow_pud_mask: pud_bad() on a huge PUD that is not devmap → no_page_table
    }
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

/**
 * follow_pmd_mask on a huge PMD that is not devmap: pmd_trans_huge, so follow_trans_huge_pmd under the pmd lock
 * takes a plain reference on pmd_page (the folio's head) — a THP, or a device PMD on an arch without pmd_devmap
 * (seed 000), where no pgmap reference is taken. The pmd lock keeps a zap out until the reference is held.
 */
// ref: mm/gup.c follow_pmd_mask; mm/huge_memory.c follow_trans_huge_pmd
function* followTransHugePmd(k: Kernel, pt: PageTable, t: PtTable, idx: number, addr: number, flags: number): KernelPath<Follow> {
  yield STEP_THP_LOCK;
  if (entryNone(t, idx) || !entryPresent(pt, t, idx)) return null;
  if (flags & FOLL_WRITE && !entryWrite(pt, t, idx)) return null; // can_follow_write_pmd
  const page = entryPfn(pt, t, idx);
  if (!tryGrabPage(k, page, flags)) return { err: -ENOMEM };
  // FOLL_TOUCH's touch_pmd (accessed/dirty bits) is not modelled.
  return { page: page + Math.floor((addr % 2 ** k.arch.pmdShift) / k.geo.pageSize) };
}

const STEP_FOLLOW: Yield = step("follow_page_mask: walk");
const STEP_THP_LOCK: Yield = step("follow_pmd_mask: pmd_lock");
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
//
// gup_pgd_range runs with interrupts off: the CPU is not preempted, but other CPUs go on. The model yields once
// per huge entry (after reading it, before taking its reference) and once per PTE table, besides the yields of
// get_dev_pagemap / put_dev_pagemap; the entries of one table are taken without a yield in between.

const STEP_PMD: Yield = step("gup_pmd_range: READ_ONCE(*pmdp)");
const STEP_PUD: Yield = step("gup_pud_range: READ_ONCE(*pudp)");
const STEP_PTE: Yield = step("gup_pte_range: pte_offset_map");

interface FastState {
  /** pages[0, nr): what the walk took (the array is allocated up front, so filling it is plain stores). */
  pages: number[];
  nr: number;
  flags: number;
  mm: MmStruct;
}

// ref: mm/gup.c undo_dev_pagemap
function* undoDevPagemap(k: Kernel, st: FastState, nrStart: number): KernelPath<void> {
  while (st.nr > nrStart) {
    const pfn = st.pages[--st.nr]!;
    clearReferenced(k, pfn, "undo_dev_pagemap");
    yield* gupPutFolio(k, pfn, 1, st.flags & FOLL_PIN ? FOLL_PIN : FOLL_GET);
  }
}

/** record_subpages: pages[] gets the n subpages from pfn. */
// ref: mm/gup.c record_subpages
function recordSubpages(st: FastState, pfn: number, n: number): void {
  const pages = st.pages;
  let nr = st.nr;
  for (let i = 0; i < n; i++) pages[nr++] = pfn + i;
  st.nr = nr;
}

/**
 * try_grab_folio(page, 1) and folio_set_referenced on up to n consecutive small pages from pfn (one section, no
 * yield in between): what the per-page loop does, on the section's arrays. Stops before the first page the loop
 * would treat differently — one that is not initialised, a tail or a large folio, a free page (refcount 0) — and
 * returns how many pages it took (0: go page by page).
 */
function grabSmallRun(k: Kernel, st: FastState, pfn: number, n: number): number {
  const flags = st.flags;
  // FOLL_LONGTERM never gets here (devmap entries bail on it first); without GET or PIN nothing is grabbed.
  if (!(flags & (FOLL_GET | FOLL_PIN)) || flags & FOLL_LONGTERM) return 0;
  const run = pagesRun(k, pfn, n, true);
  if (!run) return 0;
  // FOLL_PIN on a small folio: try_get_folio's 1, then refs * (GUP_PIN_COUNTING_BIAS - 1).
  const add = flags & FOLL_GET ? 1 : GUP_PIN_COUNTING_BIAS;
  const { compoundHead, order, refcount, flags: pflags } = run.arrays;
  const pages = st.pages;
  let nr = st.nr;
  let j = 0;
  for (let off = run.off; j < n; j++, off++) {
    const ref = refcount[off]!;
    if (compoundHead[off] !== -1 || order[off] !== 0 || ref <= 0) break;
    refcount[off] = ref + add;
    pflags[off] = pflags[off]! | (1 << PG_referenced);
    pages[nr++] = pfn + j;
  }
  st.nr = nr;
  pagesRunAccessed(k, run, j, true);
  return j;
}

/**
 * __gup_device_huge for [addr, end) of a devmap PMD/PUD read as (origLo, origHi): page by page, a pgmap reference
 * (cached), SetPageReferenced and try_grab_page; then put_dev_pagemap, and only then the re-check of the entry
 * (undo_dev_pagemap if it changed).
 *
 * Subpages of one compound page under the same cached pgmap (its ranges[0]) are grabbed as one batch: every grab
 * of the loop lands on the head and nothing can fail between them; each subpage's compound_head is still read.
 */
// ref: mm/gup.c __gup_device_huge, __gup_device_huge_pmd, __gup_device_huge_pud
function* gupDeviceHuge(k: Kernel, st: FastState, t: PtTable, idx: number, origLo: number, origHi: number, shift: number, addr: number, end: number): KernelPath<boolean> {
  const pt = st.mm.pgd;
  const nrStart = st.nr;
  const ps = k.geo.pageSize;
  let pfn = pt.fmt.entryPfn(origLo, origHi) + Math.floor((addr % 2 ** shift) / ps);
  let pgmap: DevPagemap | null = null;
  let a = addr;
  const holder = gupHolder(st.mm);
  for (; a !== end; ) {
    pgmap = yield* getDevPagemap(k, pfn, holder, pgmap);
    if (!pgmap) {
      yield* undoDevPagemap(k, st, nrStart);
      break;
    }
    const lastInPgmap = k.physPfn(pgmap.ranges[0]!.end);
    const left = Math.min((end - a) / ps, lastInPgmap - pfn + 1);
    const head = headOf(k, pfn, "__gup_device_huge");
    const order = pageField(k, head, "order", "__gup_device_huge");
    let n = 1;
    if (order > 0) {
      n = Math.max(1, Math.min(left, head + 2 ** order - pfn));
      if (n > 1) pagesRead(k, pfn + 1, n - 1, "__gup_device_huge: try_grab_page");
      setReferenced(k, pfn, "__gup_device_huge: SetPageReferenced");
      if (!(n > 1 ? tryGrabPages(k, head, n, st.flags) : tryGrabPage(k, pfn, st.flags))) {
        yield* undoDevPagemap(k, st, nrStart);
        break;
      }
      recordSubpages(st, pfn, n);
    } else {
      // Small pages (a pgmap without vmemmap_shift, e.g. fsdax): a run inside one section at once.
      const room = k.geo.pagesPerSection - (pfn % k.geo.pagesPerSection);
      n = grabSmallRun(k, st, pfn, Math.min(left, room));
      if (n === 0) {
        n = 1;
        setReferenced(k, pfn, "__gup_device_huge: SetPageReferenced");
        if (!tryGrabPage(k, pfn, st.flags)) {
          yield* undoDevPagemap(k, st, nrStart);
          break;
        }
        st.pages[st.nr++] = pfn;
      }
    }
    pfn += n;
    a += n * ps;
  }
  yield* putDevPagemap(k, pgmap, holder);
  if (a !== end) return false;
  if (t.lo[idx] !== origLo || t.hi[idx] !== origHi) {
    yield* undoDevPagemap(k, st, nrStart);
    return false;
  }
  return true;
}

/**
 * gup_huge_pmd / gup_huge_pud on an entry that is not devmap (a THP or hugetlb page — or, on an arch without
 * pmd_devmap, a device PMD): record_subpages, one try_grab_folio of all refs on the folio, re-check the entry.
 * No pgmap reference is taken: nothing holds the device's memmap between reading the entry and the grab.
 */
// ref: mm/gup.c gup_huge_pmd, gup_huge_pud, record_subpages
function* gupHugeLeaf(k: Kernel, st: FastState, t: PtTable, idx: number, origLo: number, origHi: number, shift: number, addr: number, end: number): KernelPath<boolean> {
  const pt = st.mm.pgd;
  const ps = k.geo.pageSize;
  const page = pt.fmt.entryPfn(origLo, origHi) + Math.floor((addr % 2 ** shift) / ps);
  const refs = (end - addr) / ps;
  const folio = tryGrabFolio(k, page, refs, st.flags);
  if (folio === null) return false;
  if (t.lo[idx] !== origLo || t.hi[idx] !== origHi) {
    yield* putFolio(k, folio, refs, st.flags);
    return false;
  }
  recordSubpages(st, page, refs);
  setReferenced(k, folio, "gup_huge_pmd: folio_set_referenced");
  return true;
}

/**
 * How many PTEs from idx on (at most lim, at least 1) are permitted devmap entries mapping consecutive pfns — the
 * entries gup_pte_range would take one after the other under one cached pgmap.
 */
function devmapRun(pt: PageTable, t: PtTable, idx: number, lim: number, needLo: number, needHi: number, devLo: number, devHi: number): number {
  const lo = t.lo;
  const hi = t.hi;
  const eLo = lo[idx]!;
  const eHi = hi[idx]!;
  const pfn = pt.fmt.entryPfn(eLo, eHi);
  const ps = 2 ** pt.fmt.pageShift;
  let cnt = 1;
  for (; cnt < lim; cnt++) {
    const x = lo[idx + cnt]!;
    const y = hi[idx + cnt]!;
    // Same bits as the first entry, cnt pages further on (the pfn field starts at PAGE_SHIFT in every modelled
    // encoding): nothing to decode. Otherwise test it like the first.
    if (x === (eLo + cnt * ps) >>> 0 && y === eHi) continue;
    if ((x & needLo) !== needLo || (y & needHi) !== needHi || ((x & devLo) === 0 && (y & devHi) === 0)) break;
    if (pt.fmt.entryPfn(x, y) !== pfn + cnt) break;
  }
  return cnt;
}

// ref: mm/gup.c gup_pte_range
function* gupPteRange(k: Kernel, st: FastState, t: PtTable, addr: number, end: number): KernelPath<boolean> {
  const pt = st.mm.pgd;
  const nrStart = st.nr;
  const holder = gupHolder(st.mm);
  const flags = st.flags;
  const m = pt.masks;
  // pte_access_permitted: present and user, and writable when FOLL_WRITE.
  const write = (flags & FOLL_WRITE) !== 0;
  const needLo = m.present.lo | m.user.lo | (write ? m.write.lo : 0);
  const needHi = m.present.hi | m.user.hi | (write ? m.write.hi : 0);
  const devmapAt = pt.devmapAt(k, t.depth);
  const devLo = devmapAt ? m.devmap.lo : 0;
  const devHi = devmapAt ? m.devmap.hi : 0;
  const ps = k.geo.pageSize;
  const pps = k.geo.pagesPerSection;
  const n = (end - addr) / ps;
  const first = pt.index(addr, t.depth);
  const lo = t.lo;
  const hi = t.hi;
  let pgmap: DevPagemap | null = null;
  let pgmapLast = -1;
  let ok = true;
  yield STEP_PTE;
  for (let i = 0; i < n; ) {
    const idx = first + i;
    const eLo = lo[idx]!; // ptep_get_lockless
    const eHi = hi[idx]!;
    if ((eLo & needLo) !== needLo || (eHi & needHi) !== needHi) {
      ok = false;
      break;
    }
    const pfn = pt.fmt.entryPfn(eLo, eHi);
    if ((eLo & devLo) !== 0 || (eHi & devHi) !== 0) {
      if (flags & FOLL_LONGTERM) {
        ok = false;
        break;
      }
      if (pgmap && pfn >= k.physPfn(pgmap.ranges[0]!.start) && pfn <= pgmapLast) {
        // get_dev_pagemap keeps the cached pgmap: the following devmap entries mapping the next pfns under it
        // are taken as one run.
        pgmapUse(k, pgmap, "get_dev_pagemap");
        const lim = Math.min(n - i, pgmapLast - pfn + 1, pps - (pfn % pps));
        const cnt = devmapRun(pt, t, idx, lim, needLo, needHi, devLo, devHi);
        const done = grabSmallRun(k, st, pfn, cnt);
        if (done > 0) {
          i += done;
          continue;
        }
      } else {
        pgmap = yield* getDevPagemap(k, pfn, holder, pgmap);
        if (!pgmap) {
          yield* undoDevPagemap(k, st, nrStart);
          ok = false;
          break;
        }
        pgmapLast = k.physPfn(pgmap.ranges[0]!.end);
      }
    } else if ((eLo & m.special.lo) !== 0 || (eHi & m.special.hi) !== 0) {
      ok = false;
      break;
    }
    // VM_BUG_ON(!pfn_valid); without devmap a device pfn gets a plain reference here, with no pgmap held.
    const folio = tryGrabFolio(k, pfn, 1, flags);
    if (folio === null) {
      ok = false;
      break;
    }
    if (lo[idx] !== eLo || hi[idx] !== eHi) {
      yield* putFolio(k, folio, 1, flags);
      ok = false;
      break;
    }
    setReferenced(k, pfn, "gup_pte_range: folio_set_referenced");
    st.pages[st.nr++] = pfn;
    i++;
  }
  yield* putDevPagemap(k, pgmap, holder);
  return ok;
}

/** gup_pgd_range over [start, end): stops at the first entry it cannot take. */
// ref: mm/gup.c gup_pgd_range, gup_p4d_range, gup_pud_range, gup_pmd_range
function* gupPgdRange(k: Kernel, st: FastState, start: number, end: number): KernelPath<void> {
  const pt = st.mm.pgd;
  const m = pt.masks;
  const write = (st.flags & FOLL_WRITE) !== 0;
  const needLo = m.present.lo | m.user.lo | (write ? m.write.lo : 0);
  const needHi = m.present.hi | m.user.hi | (write ? m.write.hi : 0);
  const pmdSize = 2 ** k.arch.pmdShift;
  let addr = start;
  while (addr < end) {
    // Walk the tables down to a leaf or a PTE table.
    let t = pt.root;
    for (;;) {
      const c = t.child[pt.index(addr, t.depth)];
      if (!c) break;
      t = c;
    }
    if (t.depth === pt.pteDepth) {
      // t is a PTE table; cover up to the end of its PMD.
      const pmdNext = Math.min(end, addr - (addr % pmdSize) + pmdSize);
      if (!(yield* gupPteRange(k, st, t, addr, pmdNext))) return;
      addr = pmdNext;
      continue;
    }
    const idx = pt.index(addr, t.depth);
    const level = pt.levels[t.depth]!;
    const size = 2 ** level.shift;
    const next = Math.min(end, addr - (addr % size) + size);
    // pmd = READ_ONCE(*pmdp): the entry as this CPU saw it; another CPU may change it from here on.
    const lo = t.lo[idx]!;
    const hi = t.hi[idx]!;
    yield level.name === "pud" ? STEP_PUD : STEP_PMD;
    if ((lo === 0 && hi === 0) || ((lo & m.present.lo) === 0 && (hi & m.present.hi) === 0)) return;
    // A huge leaf at this level (a non-leaf would have a child table): gup_huge_pmd / gup_huge_pud.
    if ((lo & needLo) !== needLo || (hi & needHi) !== needHi) return; // pmd_access_permitted
    const devmap = pt.devmapAt(k, t.depth) && ((lo & m.devmap.lo) !== 0 || (hi & m.devmap.hi) !== 0);
    if (devmap) {
      if (st.flags & FOLL_LONGTERM) return;
      if (!(yield* gupDeviceHuge(k, st, t, idx, lo, hi, level.shift, addr, next))) return;
    } else if (!(yield* gupHugeLeaf(k, st, t, idx, lo, hi, level.shift, addr, next))) {
      return;
    }
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
  // The caller's pages[] array: room for every page (past 2^24 it grows as it fills).
  const st: FastState = { pages: new Array<number>(Math.max(0, Math.min(Math.floor(nrPages), 2 ** 24))), nr: 0, flags, mm: task.mm };
  if (k.arch.selects.HAVE_FAST_GUP) {
    // Interrupts off: an RCU read-side critical section, so a grace period (memunmap_pages' percpu_ref_kill,
    // synchronize_rcu) cannot end while the lockless walk holds pointers into page tables and struct pages.
    const irq = localIrqSave(k, "gup_fast");
    yield step("lockless_pages_from_mm: local_irq_save");
    yield* gupPgdRange(k, st, start, end);
    localIrqRestore(k, irq);
    yield step("lockless_pages_from_mm: local_irq_restore");
  }
  const fast = st.nr;
  const pages = st.pages;
  pages.length = fast;
  if (fast === nrPages || flags & FOLL_FAST_ONLY) return { ret: fast, pages, fast };
  const r = yield* gupLongtermLocked(k, task, start + fast * ps, nrPages - fast, flags, pages);
  if (r < 0) return { ret: fast ? fast : r, pages, fast };
  return { ret: r + fast, pages, fast };
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
