/**
 * The only way model code reads or writes struct pages and pgmaps: every access is checked by the
 * sanitizer and noted on the current step's footprint.
 *
 * The footprint is null unless the explorer records (it sets one around each step), so the accessors test it
 * before building a key: a path that is not being recorded pays no string per page.
 */
import type { Kernel } from "../kernel.ts";
import type { DevPagemap } from "./dev_pagemap.ts";
import { type PageField, PageState, type PageValue, type SectionPages } from "./memmap.ts";

function checkPage(k: Kernel, pfn: number, at: string, state: PageState): void {
  if (state === PageState.Initialised) return;
  const kind =
    state === PageState.TornDown
      ? "struct-page-use-after-free"
      : state === PageState.Uninitialised
        ? "uninitialised-struct-page-read"
        : "no-memmap-access";
  const what =
    state === PageState.TornDown
      ? "its memmap was torn down"
      : state === PageState.Uninitialised
        ? "it was never initialised"
        : "no memmap covers it";
  k.sanitizer.report({ kind, at, pfn, detail: `struct page of pfn 0x${pfn.toString(16)} accessed, but ${what}` });
}

function noteRead(k: Kernel, pfn: number): void {
  const fp = k.sanitizer.footprint;
  if (fp !== null) fp.reads.add(`page:${pfn}`);
}

function noteWrite(k: Kernel, pfn: number): void {
  const fp = k.sanitizer.footprint;
  if (fp !== null) fp.writes.add(`page:${pfn}`);
}

/** Read a struct page (pfn_to_page + field loads). */
export function pageRead(k: Kernel, pfn: number, at: string): PageValue {
  noteRead(k, pfn);
  const v = k.memmap.get(pfn);
  checkPage(k, pfn, at, v.state);
  return v;
}

/** Write one field of a struct page. */
export function pageWrite(k: Kernel, pfn: number, field: PageField, value: number, at: string): void {
  noteWrite(k, pfn);
  const state = k.memmap.state(pfn);
  if (state !== PageState.Initialised) checkPage(k, pfn, at, state);
  if (field === "refcount" && value < 0) {
    k.sanitizer.report({ kind: "negative-refcount", at, pfn, detail: `page refcount of pfn 0x${pfn.toString(16)} went to ${value}` });
  }
  k.memmap.set(pfn, field, value);
}

/** Use a pgmap (dereference it): after percpu_ref_exit it is freed memory. */
export function pgmapUse(k: Kernel, pgmap: DevPagemap, at: string): DevPagemap {
  const fp = k.sanitizer.footprint;
  if (fp !== null) fp.reads.add(`pgmap:${pgmap.id}`);
  if (pgmap.state === "exited") {
    k.sanitizer.report({ kind: "dead-pgmap-use", at, pgmap: pgmap.id, detail: `pgmap ${pgmap.id} (${pgmap.device}) used after memunmap_pages freed it` });
  }
  return pgmap;
}

/** Note a write of pgmap state (its reference count). */
export function pgmapTouch(k: Kernel, pgmap: DevPagemap): void {
  const fp = k.sanitizer.footprint;
  if (fp !== null) fp.writes.add(`pgmap:${pgmap.id}`);
}

export function warn(k: Kernel, at: string, detail: string): void {
  k.sanitizer.report({ kind: "warning", at, detail });
  k.printk(`WARNING: ${at}: ${detail}`);
}

/** Read one field of a struct page without copying it (hot GUP paths); checked like pageRead. */
export function pageField(k: Kernel, pfn: number, field: PageField, at: string): number {
  noteRead(k, pfn);
  const state = k.memmap.state(pfn);
  if (state !== PageState.Initialised) checkPage(k, pfn, at, state);
  return k.memmap.field(pfn, field);
}

// ---------------------------------------------------------------------------------------------------------
// Batched accessors, for loops that touch hundreds of struct pages with nothing in between (GUP-fast, unpin)

/**
 * Loads from each of the n struct pages [pfn, pfn + n) (compound_head of every subpage of a huge entry): each is
 * checked and noted as pageField would, in one pass over the run instead of one lookup per page.
 */
export function pagesRead(k: Kernel, pfn: number, n: number, at: string): void {
  const fp = k.sanitizer.footprint;
  if (fp !== null) for (let i = 0; i < n; i++) fp.reads.add(`page:${pfn + i}`);
  if (k.memmap.runInitialised(pfn, n)) return;
  for (let i = 0; i < n; i++) {
    const state = k.memmap.state(pfn + i);
    if (state !== PageState.Initialised) checkPage(k, pfn + i, at, state);
  }
}

/** Struct pages [pfn, pfn + n) of one section as typed arrays; `arrays.X[off + i]` is page pfn + i's field X. */
export interface PageRun {
  readonly pfn: number;
  readonly n: number;
  readonly arrays: SectionPages;
  readonly off: number;
}

/**
 * Direct access to a run of struct pages inside one section for a hot loop: null unless all n pages are
 * initialised (so no access to them can be a lifetime violation) — the caller then goes page by page through
 * pageField/pageWrite, which report each violation where it happens. `write` materialises the section.
 * The caller reads and writes only pages of the run, never makes a refcount negative through it (it falls back
 * to pageWrite for that), and reports what it touched with pagesRunAccessed before its next yield.
 */
export function pagesRun(k: Kernel, pfn: number, n: number, write: boolean): PageRun | null {
  const arrays = k.memmap.runArrays(pfn, n, write);
  if (!arrays) return null;
  return { pfn, n, arrays, off: pfn % k.geo.pagesPerSection };
}

/** The first `count` pages of `run` were read (and written, when `written`): note them on the footprint. */
export function pagesRunAccessed(k: Kernel, run: PageRun, count: number, written: boolean): void {
  const fp = k.sanitizer.footprint;
  if (fp === null) return;
  for (let i = 0; i < count; i++) {
    const key = `page:${run.pfn + i}`;
    fp.reads.add(key);
    if (written) fp.writes.add(key);
  }
}
