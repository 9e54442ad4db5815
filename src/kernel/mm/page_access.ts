/**
 * The only way model code reads or writes struct pages and pgmaps: every access is checked by the
 * sanitizer and noted on the current step's footprint.
 */
import type { Kernel } from "../kernel.ts";
import type { DevPagemap } from "./dev_pagemap.ts";
import { type PageField, PageState, type PageValue } from "./memmap.ts";

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

/** Read a struct page (pfn_to_page + field loads). */
export function pageRead(k: Kernel, pfn: number, at: string): PageValue {
  k.sanitizer.read(`page:${pfn}`);
  const v = k.memmap.get(pfn);
  checkPage(k, pfn, at, v.state);
  return v;
}

/** Write one field of a struct page. */
export function pageWrite(k: Kernel, pfn: number, field: PageField, value: number, at: string): void {
  k.sanitizer.write(`page:${pfn}`);
  checkPage(k, pfn, at, k.memmap.state(pfn));
  if (field === "refcount" && value < 0) {
    k.sanitizer.report({ kind: "negative-refcount", at, pfn, detail: `page refcount of pfn 0x${pfn.toString(16)} went to ${value}` });
  }
  k.memmap.set(pfn, field, value);
}

/** Use a pgmap (dereference it): after percpu_ref_exit it is freed memory. */
export function pgmapUse(k: Kernel, pgmap: DevPagemap, at: string): DevPagemap {
  k.sanitizer.read(`pgmap:${pgmap.id}`);
  if (pgmap.state === "exited") {
    k.sanitizer.report({ kind: "dead-pgmap-use", at, pgmap: pgmap.id, detail: `pgmap ${pgmap.id} (${pgmap.device}) used after memunmap_pages freed it` });
  }
  return pgmap;
}

/** Note a write of pgmap state (its reference count). */
export function pgmapTouch(k: Kernel, pgmap: DevPagemap): void {
  k.sanitizer.write(`pgmap:${pgmap.id}`);
}

export function warn(k: Kernel, at: string, detail: string): void {
  k.sanitizer.report({ kind: "warning", at, detail });
  k.printk(`WARNING: ${at}: ${detail}`);
}

/** Read one field of a struct page without copying it (hot GUP paths); checked like pageRead. */
export function pageField(k: Kernel, pfn: number, field: PageField, at: string): number {
  k.sanitizer.read(`page:${pfn}`);
  const state = k.memmap.state(pfn);
  if (state !== PageState.Initialised) checkPage(k, pfn, at, state);
  return k.memmap.field(pfn, field);
}
