/**
 * fs/dax.c (6.1): the page-cache side of DAX files and their page faults.
 *
 * A DAX file's i_pages holds value entries, never struct page pointers: `flags | pfn << DAX_SHIFT`. An entry
 * is locked (DAX_LOCKED) while a fault, truncate or memory-failure works on it; PMD entries (DAX_PMD) are
 * XArray multi-index entries, kept here once at their first index (daxEntryAt finds them from any index they
 * cover). Inserting a real entry associates its pages with the file (page->mapping, page->index); removing it
 * disassociates them. Filesystems call dax_layout_busy_page_range before truncate / hole punch and wait until
 * the busy page's refcount is back to the FS_DAX idle value 1 (put_page wakes them at 1).
 *
 * Faults go through the filesystem's iomap: dax_iomap_pte_fault / dax_iomap_pmd_fault lock the entry, ask the
 * filesystem where the file offset lives, translate it to a pfn through the dax_device (dax_direct_access) and
 * insert a devmap PTE (vmf_insert_mixed[_mkwrite]) or PMD (vmf_insert_pfn_pmd).
 *
 * Not modelled: holes and unwritten extents (the modelled filesystems allocate every block, so a fault never
 * sees IOMAP_HOLE and the zero-page entries are never created), MAP_SYNC, reflink/CoW (PAGE_MAPPING_DAX_COW),
 * copy-on-write faults of private mappings (they return VM_FAULT_SIGBUS here), and writeback tags.
 */
import type { DaxDevice } from "../drivers/dax/super.ts";
import { daxDirectAccess, daxReadLock, daxReadUnlock } from "../drivers/dax/super.ts";
import { EINVAL, EIO, ENOMEM, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { sideTable } from "../lib/rewind.ts";
import { vmfInsertPfnHuge } from "../mm/huge_memory.ts";
import { entryNone, linearPageIndex, type PfnT, pfnTDevmap, unmapMappingRange, vmfInsertMixed } from "../mm/memory.ts";
import {
  type AddressSpace,
  type PageEntrySize,
  VM_FAULT_FALLBACK,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_SHARED,
  type Vma,
  type VmFault,
} from "../mm/mm_types.ts";
import { userland } from "../mm/mmap.ts";
import { pageField, pageWrite } from "../mm/page_access.ts";
import { type KernelPath, step } from "../path.ts";

// ref: fs/dax.c DAX_SHIFT, DAX_LOCKED, DAX_PMD, DAX_ZERO_PAGE, DAX_EMPTY
export const DAX_SHIFT = 4;
export const DAX_LOCKED = 1 << 0;
export const DAX_PMD = 1 << 1;
export const DAX_ZERO_PAGE = 1 << 2;
export const DAX_EMPTY = 1 << 3;

/** include/linux/mm_types.h VM_FAULT_MAJOR */
export const VM_FAULT_MAJOR = 0x4;

/** dax_entry_t cookies: 0 = could not lock; ~0UL = nothing to unlock (device-dax, or no entry at the index). */
export const DAX_COOKIE_FAILED = 0;
export const DAX_COOKIE_NOLOCK = -1;

/** LLONG_MAX as dax_layout_busy_page_range's `end`: to the end of the file. */
export const LLONG_MAX = Number.MAX_SAFE_INTEGER;

/** XA_CHECK_SCHED: the busy-page scan drops the lock every this many entries. */
const XA_CHECK_SCHED = 4096;

// ref: fs/dax.c dax_make_entry (the pfn part kept as arithmetic: pfns exceed 32 bits)
export function daxMakeEntry(pfn: number, flags: number): number {
  return pfn * 2 ** DAX_SHIFT + flags;
}

// ref: fs/dax.c dax_to_pfn
export function daxToPfn(entry: number): number {
  return Math.floor(entry / 2 ** DAX_SHIFT);
}

function flagsOf(entry: number): number {
  return entry % 2 ** DAX_SHIFT;
}

// ref: fs/dax.c dax_is_locked
export function daxIsLocked(entry: number): boolean {
  return (flagsOf(entry) & DAX_LOCKED) !== 0;
}

// ref: fs/dax.c dax_is_pmd_entry
export function daxIsPmdEntry(entry: number): boolean {
  return (flagsOf(entry) & DAX_PMD) !== 0;
}

// ref: fs/dax.c dax_is_zero_entry
export function daxIsZeroEntry(entry: number): boolean {
  return (flagsOf(entry) & DAX_ZERO_PAGE) !== 0;
}

// ref: fs/dax.c dax_is_empty_entry
export function daxIsEmptyEntry(entry: number): boolean {
  return (flagsOf(entry) & DAX_EMPTY) !== 0;
}

function withLock(entry: number): number {
  return daxIsLocked(entry) ? entry : entry + DAX_LOCKED;
}

/** PG_PMD_NR: pages per PMD (512 with 4 KiB pages). */
export function pgPmdNr(k: Kernel): number {
  return 2 ** (k.arch.pmdShift - k.arch.pageShift);
}

function pmdOrder(k: Kernel): number {
  return k.arch.pmdShift - k.arch.pageShift;
}

// ref: fs/dax.c dax_entry_order
function daxEntryOrder(k: Kernel, entry: number): number {
  return daxIsPmdEntry(entry) ? pmdOrder(k) : 0;
}

/** Bytes of device memory an entry maps: 0 for zero and empty entries. */
// ref: fs/dax.c dax_entry_size
export function daxEntrySize(k: Kernel, entry: number): number {
  if (daxIsZeroEntry(entry) || daxIsEmptyEntry(entry)) return 0;
  if (daxIsPmdEntry(entry)) return 2 ** k.arch.pmdShift;
  return k.geo.pageSize;
}

/** The pfns for_each_mapped_pfn walks. */
function mappedPfns(k: Kernel, entry: number): number[] {
  const first = daxToPfn(entry);
  const n = daxEntrySize(k, entry) / k.geo.pageSize;
  return Array.from({ length: n }, (_, i) => first + i);
}

/** An entry found in i_pages: the index it is stored at (a PMD entry's first index) and its value. */
export interface FoundEntry {
  index: number;
  entry: number;
}

/** xas_load at `index`: the entry covering it, PMD entries included. */
export function daxEntryAt(k: Kernel, mapping: AddressSpace, index: number): FoundEntry | null {
  const e = mapping.iPages.get(index);
  if (e !== undefined) return { index, entry: e };
  const nr = pgPmdNr(k);
  const base = index - (index % nr);
  const p = mapping.iPages.get(base);
  if (p !== undefined && daxIsPmdEntry(p)) return { index: base, entry: p };
  return null;
}

/** Every entry of a mapping, in index order. */
export function daxEntries(mapping: AddressSpace): FoundEntry[] {
  return [...mapping.iPages.entries()].sort((a, b) => a[0] - b[0]).map(([index, entry]) => ({ index, entry }));
}

/** Who locked which entry, so a wait on a locked entry can say on whom. */
const lockOwners = sideTable<AddressSpace, Map<number, string>>();

function noteOwner(mapping: AddressSpace, index: number, who: string | null): void {
  let m = lockOwners.get(mapping);
  if (!m) {
    m = new Map();
    lockOwners.set(mapping, m);
  }
  if (who === null) m.delete(index);
  else m.set(index, who);
}

function ownerOf(mapping: AddressSpace, index: number): string {
  return lockOwners.get(mapping)?.get(index) ?? "an unknown path";
}

/** xas_store: put (or, with null, erase) the entry at index; returns what was there. */
function xaStore(mapping: AddressSpace, index: number, entry: number | null): number | undefined {
  const old = mapping.iPages.get(index);
  if (entry === null) mapping.iPages.delete(index);
  else mapping.iPages.set(index, entry);
  return old;
}

/** WARN_ON_ONCE: printed and recorded once per call site and kernel. */
const warnedOnce = sideTable<Kernel, Set<string>>();

export function warnOnce(k: Kernel, at: string, detail: string): void {
  let s = warnedOnce.get(k);
  if (!s) {
    s = new Set();
    warnedOnce.set(k, s);
  }
  if (s.has(at)) return;
  s.add(at);
  k.sanitizer.report({ kind: "warning", at, detail });
  k.printk(`WARNING: ${at}: ${detail}`);
}

function bug(k: Kernel, at: string, detail: string): void {
  k.sanitizer.report({ kind: "warning", at, detail: `BUG: ${detail}` });
  k.printk(`kernel BUG at ${at}: ${detail}`);
}

/** Marker for get_unlocked_entry's XA_RETRY_ENTRY: a smaller-order entry is in the way. */
const CONFLICT = "conflict" as const;

/** xas_find_conflict: the first entry in the range an entry of `order` at `index` would cover. */
function xasFindConflict(k: Kernel, mapping: AddressSpace, index: number, order: number): FoundEntry | null {
  const found = daxEntryAt(k, mapping, index);
  if (found || order === 0) return found;
  for (let i = index + 1; i < index + 2 ** order; i++) {
    const e = mapping.iPages.get(i);
    if (e !== undefined) return { index: i, entry: e };
  }
  return null;
}

/**
 * get_unlocked_entry: the entry at index, waiting while it is locked; CONFLICT when a smaller entry than
 * `order` is in the way. The caller holds the i_pages lock (modelled as the steps around this).
 */
// ref: fs/dax.c get_unlocked_entry
function* getUnlockedEntry(k: Kernel, mapping: AddressSpace, index: number, order: number): KernelPath<FoundEntry | typeof CONFLICT | null> {
  for (;;) {
    const found = xasFindConflict(k, mapping, index, order);
    if (!found) return null;
    if (daxEntryOrder(k, found.entry) < order) return CONFLICT;
    if (!daxIsLocked(found.entry)) return found;
    const at = found.index;
    yield {
      kind: "block",
      at: "get_unlocked_entry: schedule (DAX entry locked)",
      until: () => {
        const e = mapping.iPages.get(at);
        return e === undefined || !daxIsLocked(e);
      },
      holder: () => `DAX entry ${mapping.host}[${at}] locked by ${ownerOf(mapping, at)}`,
    };
  }
}

/** dax_lock_entry: store the entry locked; returns what was there. */
// ref: fs/dax.c dax_lock_entry
function daxLockEntry(mapping: AddressSpace, index: number, entry: number, who: string): number | undefined {
  noteOwner(mapping, index, who);
  return xaStore(mapping, index, withLock(entry));
}

/** dax_unlock_entry: store the (unlocked) entry back at the entry covering index and wake the next waiter. */
// ref: fs/dax.c dax_unlock_entry
export function* daxUnlockEntry(k: Kernel, mapping: AddressSpace, index: number, entry: number): KernelPath<void> {
  if (daxIsLocked(entry)) bug(k, "dax_unlock_entry", "BUG_ON(dax_is_locked(entry))");
  yield step("dax_unlock_entry: xas_lock_irq");
  const at = daxEntryAt(k, mapping, index)?.index ?? index;
  const old = xaStore(mapping, at, entry);
  noteOwner(mapping, at, null);
  if (old === undefined || !daxIsLocked(old)) bug(k, "dax_unlock_entry", "BUG_ON(!dax_is_locked(old))");
  // dax_wake_entry(WAKE_NEXT): waiters re-check the entry when they next run.
}

/** The result of grab_mapping_entry: a locked entry (its index and unlocked value) or a VM_FAULT code. */
export type Grabbed = { index: number; entry: number } | { fault: number };

/**
 * grab_mapping_entry: lock the entry at index (a PMD-aligned index for order > 0). A missing entry becomes a
 * locked DAX_EMPTY placeholder; a PTE request downgrades a PMD zero/empty entry; a PMD request over PTE entries
 * gets VM_FAULT_FALLBACK.
 */
// ref: fs/dax.c grab_mapping_entry
export function* grabMappingEntry(k: Kernel, mapping: AddressSpace, index: number, order: number, who: string): KernelPath<Grabbed> {
  yield step("grab_mapping_entry: xas_lock_irq");
  let found = yield* getUnlockedEntry(k, mapping, index, order);
  if (found === CONFLICT) return { fault: VM_FAULT_FALLBACK };
  if (found && order === 0 && daxIsPmdEntry(found.entry) && (daxIsZeroEntry(found.entry) || daxIsEmptyEntry(found.entry))) {
    // pmd_downgrade: a PTE fault splits a PMD placeholder (or huge zero page) into PTE entries.
    const f = found;
    daxLockEntry(mapping, f.index, f.entry, who);
    if (daxIsZeroEntry(f.entry)) {
      yield step("grab_mapping_entry: xas_unlock_irq");
      yield* unmapMappingRange(k, mapping, f.index, pgPmdNr(k));
    }
    daxDisassociateEntry(k, f.entry, mapping, false);
    xaStore(mapping, f.index, null);
    noteOwner(mapping, f.index, null);
    found = null;
  }
  if (found) {
    daxLockEntry(mapping, found.index, found.entry, who);
    yield step("grab_mapping_entry: xas_unlock_irq");
    return { index: found.index, entry: found.entry };
  }
  const entry = daxMakeEntry(0, DAX_EMPTY | (order > 0 ? DAX_PMD : 0));
  daxLockEntry(mapping, index, entry, who);
  yield step("grab_mapping_entry: xas_unlock_irq");
  return { index, entry };
}

/**
 * dax_associate_entry: the entry's pages now belong to this file (page->mapping, page->index); a page that
 * already has a mapping is a WARN (two files, or a stale association).
 */
// ref: fs/dax.c dax_associate_entry
export function daxAssociateEntry(k: Kernel, entry: number, mapping: AddressSpace, vma: Vma, address: number): void {
  if (k.config.enabled("FS_DAX_LIMITED")) return;
  const size = daxEntrySize(k, entry);
  if (size === 0) return;
  const index = linearPageIndex(k, vma, address - (address % size));
  let i = 0;
  for (const pfn of mappedPfns(k, entry)) {
    const at = "dax_associate_entry";
    const cur = pageField(k, pfn, "mapping", at);
    if (cur !== 0) warnOnce(k, at, `WARN_ON_ONCE(page->mapping): pfn 0x${pfn.toString(16)} already belongs to mapping ${cur}`);
    pageWrite(k, pfn, "mapping", mapping.id, at);
    pageWrite(k, pfn, "index", index + i++, at);
  }
}

/**
 * dax_disassociate_entry: clear page->mapping/index; on truncate a page still referenced beyond the idle 1 (a
 * pin nobody waited for) is a WARN, and so is a page that belongs to another mapping.
 */
// ref: fs/dax.c dax_disassociate_entry
export function daxDisassociateEntry(k: Kernel, entry: number, mapping: AddressSpace, trunc: boolean): void {
  if (k.config.enabled("FS_DAX_LIMITED")) return;
  const at = "dax_disassociate_entry";
  for (const pfn of mappedPfns(k, entry)) {
    const ref = pageField(k, pfn, "refcount", at);
    if (trunc && ref > 1) warnOnce(k, at, `WARN_ON_ONCE(trunc && page_ref_count(page) > 1): pfn 0x${pfn.toString(16)} refcount ${ref}`);
    const cur = pageField(k, pfn, "mapping", at);
    if (cur !== 0 && cur !== mapping.id) warnOnce(k, `${at}: mapping`, `WARN_ON_ONCE(page->mapping && page->mapping != mapping): pfn 0x${pfn.toString(16)}`);
    pageWrite(k, pfn, "mapping", 0, at);
    pageWrite(k, pfn, "index", 0, at);
  }
}

/** dax_busy_page: the first page of the entry with a reference beyond the FS_DAX idle count of 1. */
// ref: fs/dax.c dax_busy_page
function daxBusyPage(k: Kernel, entry: number): number | null {
  for (const pfn of mappedPfns(k, entry)) {
    if (pageField(k, pfn, "refcount", "dax_busy_page") > 1) return pfn;
  }
  return null;
}

/**
 * dax_layout_busy_page_range: unmap every user mapping of [start, end] first (so GUP-fast either sees the
 * elevated count or falls back to the locked slow path), then return the first page with refcount > 1, or null.
 * Nothing is done for a mapping nobody has mmapped (mapping_mapped false), even if its pages are pinned.
 */
// ref: fs/dax.c dax_layout_busy_page_range
export function* daxLayoutBusyPageRange(k: Kernel, mapping: AddressSpace, start: number, end: number): KernelPath<number | null> {
  if (k.config.enabled("FS_DAX_LIMITED")) return null;
  if (!mapping.dax || mapping.iMmap.size === 0) return null;
  const ps = k.geo.pageSize;
  const startIdx = Math.floor(start / ps);
  const endIdx = end === LLONG_MAX ? Number.MAX_SAFE_INTEGER : Math.floor(end / ps);
  yield* unmapMappingRange(k, mapping, startIdx, end === LLONG_MAX ? 0 : endIdx - startIdx + 1);
  yield step("dax_layout_busy_page_range: xas_lock_irq");
  const first = daxEntryAt(k, mapping, startIdx)?.index ?? startIdx;
  let scanned = 0;
  let page: number | null = null;
  for (const { index } of daxEntries(mapping)) {
    if (index < first || index > endIdx) continue;
    let found: FoundEntry | typeof CONFLICT | null = daxEntryAt(k, mapping, index);
    if (found && daxIsLocked(found.entry)) found = yield* getUnlockedEntry(k, mapping, index, 0);
    if (found && found !== CONFLICT) page = daxBusyPage(k, found.entry);
    if (page !== null) break;
    if (++scanned % XA_CHECK_SCHED) continue;
    yield step("dax_layout_busy_page_range: xas_pause; cond_resched");
  }
  yield step("dax_layout_busy_page_range: xas_unlock_irq");
  return page;
}

// ref: fs/dax.c dax_layout_busy_page
export function* daxLayoutBusyPage(k: Kernel, mapping: AddressSpace): KernelPath<number | null> {
  return yield* daxLayoutBusyPageRange(k, mapping, 0, LLONG_MAX);
}

/**
 * dax_delete_mapping_entry (truncate / hole punch / evict): wait for the entry to be unlocked, disassociate
 * its pages (trunc = true) and erase it. A missing entry is a WARN.
 */
// ref: fs/dax.c dax_delete_mapping_entry, __dax_invalidate_entry
export function* daxDeleteMappingEntry(k: Kernel, mapping: AddressSpace, index: number): KernelPath<number> {
  yield step("__dax_invalidate_entry: xas_lock_irq");
  const found = yield* getUnlockedEntry(k, mapping, index, 0);
  let ret = 0;
  if (found && found !== CONFLICT) {
    daxDisassociateEntry(k, found.entry, mapping, true);
    xaStore(mapping, found.index, null);
    ret = 1;
  }
  yield step("__dax_invalidate_entry: xas_unlock_irq");
  if (!ret) warnOnce(k, "dax_delete_mapping_entry", `WARN_ON_ONCE(!ret): no DAX entry at ${mapping.host}[${index}]`);
  return ret;
}

/**
 * dax_lock_page: lock the entry a page belongs to, via page->mapping and page->index. 0 when the page has no
 * DAX mapping (never mapped, or truncated); ~0 for device-dax (a pgmap reference is enough there).
 */
// ref: fs/dax.c dax_lock_page
export function* daxLockPage(k: Kernel, pfn: number, who = "dax_lock_page"): KernelPath<number> {
  const at = "dax_lock_page";
  for (;;) {
    const mappingId = pageField(k, pfn, "mapping", at);
    const mapping = mappingId ? userland(k).mappings.get(mappingId) : undefined;
    if (!mapping?.dax) return DAX_COOKIE_FAILED;
    if (mapping.charDev) return DAX_COOKIE_NOLOCK;
    yield step("dax_lock_page: xas_lock_irq");
    if (pageField(k, pfn, "mapping", at) !== mappingId) continue;
    const index = pageField(k, pfn, "index", at);
    const found = daxEntryAt(k, mapping, index);
    if (found && daxIsLocked(found.entry)) {
      const idx = found.index;
      yield {
        kind: "block",
        at: "dax_lock_page: wait_entry_unlocked",
        until: () => !daxIsLocked(mapping.iPages.get(idx) ?? 0),
        holder: () => `DAX entry ${mapping.host}[${idx}] locked by ${ownerOf(mapping, idx)}`,
      };
      continue;
    }
    if (!found) {
      // xas_load found nothing although page->mapping is set: the C locks a NULL entry, leaving a bare
      // locked value behind, and returns 0.
      daxLockEntry(mapping, index, 0, who);
      return DAX_COOKIE_FAILED;
    }
    daxLockEntry(mapping, found.index, found.entry, who);
    yield step("dax_lock_page: xas_unlock_irq");
    return found.entry;
  }
}

// ref: fs/dax.c dax_unlock_page
export function* daxUnlockPage(k: Kernel, pfn: number, cookie: number): KernelPath<void> {
  const mapping = userland(k).mappings.get(pageField(k, pfn, "mapping", "dax_unlock_page"));
  if (!mapping || mapping.charDev) return;
  yield* daxUnlockEntry(k, mapping, pageField(k, pfn, "index", "dax_unlock_page"), cookie);
}

/**
 * dax_lock_mapping_entry: lock the entry of (mapping, index). A hole or a zero/empty entry is not an error:
 * ~0 comes back and no page; 0 only when the mapping is not DAX.
 */
// ref: fs/dax.c dax_lock_mapping_entry
export function* daxLockMappingEntry(k: Kernel, mapping: AddressSpace, index: number, who = "dax_lock_mapping_entry"): KernelPath<{ cookie: number; page: number | null }> {
  for (;;) {
    if (!mapping.dax) return { cookie: DAX_COOKIE_FAILED, page: null };
    yield step("dax_lock_mapping_entry: xas_lock_irq");
    const found = daxEntryAt(k, mapping, index);
    if (found && daxIsLocked(found.entry)) {
      const idx = found.index;
      yield {
        kind: "block",
        at: "dax_lock_mapping_entry: wait_entry_unlocked",
        until: () => !daxIsLocked(mapping.iPages.get(idx) ?? 0),
        holder: () => `DAX entry ${mapping.host}[${idx}] locked by ${ownerOf(mapping, idx)}`,
      };
      continue;
    }
    if (!found || daxIsZeroEntry(found.entry) || daxIsEmptyEntry(found.entry)) return { cookie: DAX_COOKIE_NOLOCK, page: null };
    // The page is the entry's first pfn: for a PMD entry the head of the 2 MiB, whatever index was asked.
    daxLockEntry(mapping, found.index, found.entry, who);
    return { cookie: found.entry, page: daxToPfn(found.entry) };
  }
}

// ref: fs/dax.c dax_unlock_mapping_entry
export function* daxUnlockMappingEntry(k: Kernel, mapping: AddressSpace, index: number, cookie: number): KernelPath<void> {
  if (cookie === DAX_COOKIE_NOLOCK) return;
  yield* daxUnlockEntry(k, mapping, index, cookie);
}

// ---------------------------------------------------------------------------------------------------------
// Faults

/** struct iomap, the part DAX faults read. */
export interface Iomap {
  /** IOMAP_MAPPED, IOMAP_HOLE, IOMAP_UNWRITTEN */
  type: "mapped" | "hole" | "unwritten";
  /** File offset (bytes) the mapping starts at. */
  offset: number;
  /** Bytes mapped from `offset`. */
  length: number;
  /** Device byte address of `offset` (for mapped extents). */
  addr: number;
  /** IOMAP_F_NEW: blocks allocated by this call. */
  isNew: boolean;
  dax: DaxDevice | null;
}

/** struct iomap_ops, as DAX faults call it: where does file byte `pos` live (IOMAP_WRITE when write)? */
export interface IomapOps {
  iomapBegin(pos: number, length: number, write: boolean): KernelPath<Iomap | Errno>;
}

// ref: include/linux/mm.h vmf_error
function vmfError(err: Errno): number {
  return err === -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
}

// ref: fs/dax.c dax_fault_return
function daxFaultReturn(err: Errno): number {
  return err === 0 ? VM_FAULT_NOPAGE : vmfError(err);
}

/** iomap_length: what is left of the iomap from pos, at most `len`. */
function iomapLength(iomap: Iomap, pos: number, len: number): number {
  return Math.min(len, iomap.length - (pos - iomap.offset));
}

// ref: fs/dax.c dax_iomap_pgoff
function daxIomapPgoff(k: Kernel, iomap: Iomap, pos: number): number {
  const ps = k.geo.pageSize;
  return Math.floor((iomap.addr + (pos - (pos % ps)) - iomap.offset) / ps);
}

/** dax_iomap_direct_access: the pfn of `size` bytes at pos, which must be contiguous, aligned, and devmap if > 1 page. */
// ref: fs/dax.c dax_iomap_direct_access
function* daxIomapDirectAccess(k: Kernel, iomap: Iomap, pos: number, size: number): KernelPath<PfnT | Errno> {
  const ps = k.geo.pageSize;
  const dax = iomap.dax;
  if (dax) yield* daxReadLock(dax, "dax_iomap_direct_access");
  try {
    const r = daxDirectAccess(dax, daxIomapPgoff(k, iomap, pos), size / ps);
    if (typeof r === "number") return r;
    const pfn: PfnT = { pfn: r.pfn, flags: r.pfnFlags };
    if (r.avail * ps < size) return -EINVAL;
    if (r.pfn % (size / ps) !== 0) return -EINVAL;
    if (r.avail > 1 && !pfnTDevmap(k, pfn)) return -EINVAL;
    return pfn;
  } finally {
    if (dax) daxReadUnlock(dax);
  }
}

/**
 * dax_insert_entry: replace an empty (or zero-page) entry with the real one, associating its pages; an entry
 * that already maps storage stays (a PTE fault under a PMD entry just uses the PMD entry).
 */
// ref: fs/dax.c dax_insert_entry
function* daxInsertEntry(k: Kernel, vmf: VmFault, mapping: AddressSpace, g: { index: number; entry: number }, pfn: PfnT, flags: number): KernelPath<number> {
  const entry = g.entry;
  const newEntry = daxMakeEntry(pfn.pfn, flags);
  // dirty (no MAP_SYNC): __mark_inode_dirty(I_DIRTY_PAGES); writeback tags are not modelled.
  if (daxIsZeroEntry(entry) && !(flags & DAX_ZERO_PAGE)) {
    if (daxIsPmdEntry(entry)) yield* unmapMappingRange(k, mapping, g.index - (g.index % pgPmdNr(k)), pgPmdNr(k));
    else yield* unmapMappingRange(k, mapping, g.index, 1);
  }
  yield step("dax_insert_entry: xas_lock_irq");
  if (daxIsZeroEntry(entry) || daxIsEmptyEntry(entry)) {
    daxDisassociateEntry(k, entry, mapping, false);
    daxAssociateEntry(k, newEntry, mapping, vmf.vma, vmf.address);
    const old = xaStore(mapping, g.index, withLock(newEntry));
    if (old !== withLock(entry)) warnOnce(k, "dax_insert_entry", "WARN_ON_ONCE(old != xa_mk_value(xa_to_value(entry) | DAX_LOCKED))");
    yield step("dax_insert_entry: xas_unlock_irq");
    return newEntry;
  }
  yield step("dax_insert_entry: xas_unlock_irq");
  return entry;
}

/** dax_fault_iter: one iomap's worth of a PTE or PMD fault. Returns the VM_FAULT code and the (new) entry. */
// ref: fs/dax.c dax_fault_iter
function* daxFaultIter(k: Kernel, vmf: VmFault, iomap: Iomap, g: { index: number; entry: number }, pmd: boolean): KernelPath<{ ret: number; entry: number }> {
  const mapping = vmf.vma.file!.mapping;
  const ps = k.geo.pageSize;
  const size = pmd ? 2 ** k.arch.pmdShift : ps;
  const pos = (pmd ? g.index - (g.index % pgPmdNr(k)) : vmf.pgoff) * ps;
  const write = vmf.write;
  if (!write && (iomap.type === "unwritten" || iomap.type === "hole")) {
    // dax_load_hole / dax_pmd_load_hole (zero-page entries) are not modelled: no modelled iomap is a hole.
    warnOnce(k, "dax_fault_iter", "zonedev: a DAX read fault on a hole (zero-page entries are not modelled)");
    return { ret: pmd ? VM_FAULT_FALLBACK : VM_FAULT_SIGBUS, entry: g.entry };
  }
  if (iomap.type !== "mapped") {
    warnOnce(k, "dax_fault_iter", "WARN_ON_ONCE(1): iomap neither mapped nor shared");
    return { ret: pmd ? VM_FAULT_FALLBACK : VM_FAULT_SIGBUS, entry: g.entry };
  }
  const pfn = yield* daxIomapDirectAccess(k, iomap, pos, size);
  if (typeof pfn === "number") return { ret: pmd ? VM_FAULT_FALLBACK : daxFaultReturn(pfn), entry: g.entry };
  const entry = yield* daxInsertEntry(k, vmf, mapping, g, pfn, pmd ? DAX_PMD : 0);
  if (pmd) return { ret: yield* vmfInsertPfnHuge(k, vmf, "pmd", pfn, write), entry };
  const addr = vmf.address - (vmf.address % ps);
  return { ret: yield* vmfInsertMixed(k, vmf.vma, addr, pfn, write), entry };
}

/** Is the PMD covering addr a huge (devmap) leaf rather than none or a PTE table? */
function pmdIsHuge(vma: Vma, addr: number): "none" | "huge" | "table" {
  const pt = vma.mm.pgd;
  const s = pt.lookup(addr);
  if (!s) return "none";
  // The walk stops at the first missing table or leaf: below the PMD level means a PTE table is there.
  if (s.table.depth > pt.depthOf("pmd")) return "table";
  return entryNone(s.table, s.idx) ? "none" : "huge";
}

// ref: fs/dax.c dax_iomap_pte_fault
function* daxIomapPteFault(k: Kernel, vmf: VmFault, ops: IomapOps, who: string): KernelPath<number> {
  const vma = vmf.vma;
  const file = vma.file!;
  const mapping = file.mapping;
  const ps = k.geo.pageSize;
  const pos = vmf.pgoff * ps;
  if (pos >= file.size()) return VM_FAULT_SIGBUS;
  if (vmf.write && !(vma.flags & VM_SHARED)) {
    // do_cow_fault with vmf->cow_page (dax_fault_cow_page): private copy-on-write is not modelled.
    return VM_FAULT_SIGBUS;
  }
  const g = yield* grabMappingEntry(k, mapping, vmf.pgoff, 0, who);
  if ("fault" in g) return g.fault;
  let entry = g.entry;
  let ret = 0;
  if (pmdIsHuge(vma, vmf.address) === "huge") {
    // Raced with a PMD fault over this address: the access is retried.
    ret = VM_FAULT_NOPAGE;
  } else {
    const iomap = yield* ops.iomapBegin(pos, ps, vmf.write);
    if (typeof iomap === "number") {
      ret = daxFaultReturn(iomap);
    } else if (iomapLength(iomap, pos, ps) < ps) {
      warnOnce(k, "dax_iomap_pte_fault", "WARN_ON_ONCE(iomap_length(&iter) < PAGE_SIZE)");
      ret = daxFaultReturn(-EIO);
    } else {
      const r = yield* daxFaultIter(k, vmf, iomap, g, false);
      ret = r.ret;
      entry = r.entry;
      if (ret !== VM_FAULT_SIGBUS && iomap.isNew) ret |= VM_FAULT_MAJOR;
    }
  }
  yield* daxUnlockEntry(k, mapping, g.index, entry);
  return ret;
}

/** dax_fault_check_fallback: reasons a PMD fault cannot be served with a PMD. */
// ref: fs/dax.c dax_fault_check_fallback
function daxFaultCheckFallback(k: Kernel, vmf: VmFault, index: number, maxPgoff: number): boolean {
  const nr = pgPmdNr(k);
  const colour = nr - 1;
  const pmdSize = 2 ** k.arch.pmdShift;
  const pmdAddr = vmf.address - (vmf.address % pmdSize);
  if (vmf.pgoff % nr !== Math.floor(vmf.address / k.geo.pageSize) % nr) return true;
  if (vmf.write && !(vmf.vma.flags & VM_SHARED)) return true;
  if (pmdAddr < vmf.vma.start) return true;
  if (pmdAddr + pmdSize > vmf.vma.end) return true;
  return (index - (index % nr) + colour) >= maxPgoff;
}

// ref: fs/dax.c dax_iomap_pmd_fault
function* daxIomapPmdFault(k: Kernel, vmf: VmFault, ops: IomapOps, who: string): KernelPath<number> {
  if (!k.config.enabled("FS_DAX_PMD")) return VM_FAULT_FALLBACK;
  const vma = vmf.vma;
  const file = vma.file!;
  const mapping = file.mapping;
  const ps = k.geo.pageSize;
  const nr = pgPmdNr(k);
  const pmdSize = 2 ** k.arch.pmdShift;
  const index = vmf.pgoff - (vmf.pgoff % nr);
  const maxPgoff = Math.ceil(file.size() / ps);
  if (index >= maxPgoff) return VM_FAULT_SIGBUS;
  if (daxFaultCheckFallback(k, vmf, index, maxPgoff)) return VM_FAULT_FALLBACK;
  let ret = VM_FAULT_FALLBACK;
  const g = yield* grabMappingEntry(k, mapping, index, pmdOrder(k), who);
  if ("fault" in g) return g.fault;
  let entry = g.entry;
  if (pmdIsHuge(vma, vmf.address) === "table") {
    // Raced with a PTE fault that set up a page table here: retried as a PTE fault.
    ret = 0;
  } else {
    const pos = index * ps;
    const iomap = yield* ops.iomapBegin(pos, pmdSize, vmf.write);
    // An iomap error or a short extent ends the iomap_iter loop with ret still VM_FAULT_FALLBACK.
    if (typeof iomap !== "number" && iomapLength(iomap, pos, pmdSize) >= pmdSize) {
      const r = yield* daxFaultIter(k, vmf, iomap, g, true);
      ret = r.ret;
      entry = r.entry;
    }
  }
  yield* daxUnlockEntry(k, mapping, g.index, entry);
  // ret == VM_FAULT_FALLBACK: split_huge_pmd (nothing to split on a none PMD), count THP_FAULT_FALLBACK.
  return ret;
}

/** dax_iomap_fault: PTE and PMD faults; anything larger falls back. */
// ref: fs/dax.c dax_iomap_fault
export function* daxIomapFault(k: Kernel, vmf: VmFault, size: PageEntrySize, ops: IomapOps, who = "a DAX fault"): KernelPath<number> {
  switch (size) {
    case "pte":
      return yield* daxIomapPteFault(k, vmf, ops, who);
    case "pmd":
      return yield* daxIomapPmdFault(k, vmf, ops, who);
    default:
      return VM_FAULT_FALLBACK;
  }
}
