/**
 * memory_failure for ZONE_DEVICE pages (mm/memory-failure.c, 6.1): a poisoned device pfn is handed to its
 * pgmap's ->memory_failure (pmem: the filesystem holding the dax_device, via dax_holder_notify_failure) or, if
 * that is missing or says -EOPNOTSUPP, to mf_generic_kill_procs (page->mapping rmap walk). Either way the
 * processes to signal are collected, the mapping is zapped at the size the victims map it with (PUD, PMD or
 * PTE: dev_pagemap_mapping_shift), and each victim gets SIGBUS with that size as si_addr_lsb.
 *
 * Which processes are collected is the kernel's early-kill rule: the task that hit the poison (`current`, for
 * action-required errors) always; any other task only if it asked for early kill (prctl PR_MCE_KILL_EARLY) or
 * vm.memory_failure_early_kill is set. With nobody collected nothing is unmapped either.
 *
 * Online RAM pages (LRU, buddy, slab, hugetlb) are not modelled.
 */
import { UsageError } from "../../errors.ts";
import { EBUSY, ENXIO, EOPNOTSUPP, type Errno } from "../errno.ts";
import { DAX_COOKIE_FAILED, daxLockMappingEntry, daxLockPage, daxUnlockMappingEntry, daxUnlockPage } from "../fs/dax.ts";
import type { Kernel } from "../kernel.ts";
import { sideTable } from "../lib/rewind.ts";
import { type KernelPath, step } from "../path.ts";
import { type DevPagemap, MemoryType } from "./dev_pagemap.ts";
import { flagBit, PG_hwpoison } from "./memmap.ts";
import { entryDevmap, entryNone, entryPresent, unmapMappingRange } from "./memory.ts";
import { pfnToOnlinePage } from "./memory_hotplug.ts";
import { getDevPagemap, pgmapPfnValid, putDevPagemap, putPage } from "./memremap.ts";
import type { AddressSpace, Task, Vma } from "./mm_types.ts";
import { userland } from "./mmap.ts";
import { pageField, pageWrite } from "./page_access.ts";

// ref: include/linux/mm.h enum mf_flags
export const MF_COUNT_INCREASED = 1 << 0;
export const MF_ACTION_REQUIRED = 1 << 1;
export const MF_MUST_KILL = 1 << 2;
export const MF_SOFT_OFFLINE = 1 << 3;
export const MF_UNPOISON = 1 << 4;
export const MF_SW_SIMULATED = 1 << 5;
export const MF_NO_RETRY = 1 << 6;

/** The holder memory_failure takes its pgmap reference as. */
const MF_HOLDER = "memory_failure";

/**
 * dev_pagemap_ops->memory_failure(pgmap, pfn, nr_pages, mf_flags); `current` is the task the error is handled
 * on behalf of (C's implicit current).
 */
export type PgmapMemoryFailure = (pfn: number, nrPages: number, mfFlags: number, current: Task | null) => KernelPath<Errno>;

/** The driver's ->memory_failure, registered beside its pgmap (DevPagemapOps only says whether one exists). */
const PGMAP_OPS = sideTable<DevPagemap, PgmapMemoryFailure>();

export function setPgmapMemoryFailure(pgmap: DevPagemap, op: PgmapMemoryFailure): void {
  PGMAP_OPS.set(pgmap, op);
}

/** prctl(PR_MCE_KILL): PF_MCE_PROCESS with PF_MCE_EARLY ("early") or without ("late"); "default" clears both. */
export type MceKillPolicy = "early" | "late" | "default";

interface MfState {
  /** mf_mutex: who holds it. */
  mutex: string | null;
  /** vm.memory_failure_early_kill */
  earlyKill: boolean;
  /** Per task PR_MCE_KILL policy. */
  policy: Map<Task, "early" | "late">;
  /** num_poisoned_pages */
  poisoned: number;
}

const STATE = sideTable<Kernel, MfState>();

function mfState(k: Kernel): MfState {
  let s = STATE.get(k);
  if (!s) {
    s = { mutex: null, earlyKill: false, policy: new Map(), poisoned: 0 };
    STATE.set(k, s);
  }
  return s;
}

/** sysctl vm.memory_failure_early_kill (default 0). */
export function setMemoryFailureEarlyKill(k: Kernel, on: boolean): void {
  mfState(k).earlyKill = on;
}

/** prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY / _LATE) or PR_MCE_KILL_CLEAR. */
// ref: kernel/sys.c prctl PR_MCE_KILL
export function prctlMceKill(k: Kernel, task: Task, policy: MceKillPolicy): void {
  const s = mfState(k);
  if (policy === "default") s.policy.delete(task);
  else s.policy.set(task, policy);
}

/** num_poisoned_pages (every action_result counts one). */
export function numPoisonedPages(k: Kernel): number {
  return mfState(k).poisoned;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

// ref: mm/memory-failure.c action_result
function actionResult(k: Kernel, pfn: number, result: "Recovered" | "Failed"): void {
  mfState(k).poisoned++;
  k.printk(`Memory failure: ${hex(pfn)}: recovery action for dax page: ${result}`);
}

// ref: include/linux/page-flags.h SetPageHWPoison
function setPageHWPoison(k: Kernel, pfn: number): void {
  const f = pageField(k, pfn, "flags", "SetPageHWPoison");
  pageWrite(k, pfn, "flags", f | flagBit(PG_hwpoison), "SetPageHWPoison");
}

/** struct to_kill; addr null is -EFAULT (no user address found). */
interface ToKill {
  task: Task;
  addr: number | null;
  sizeShift: number;
}

/** The shift of the devmap entry mapping addr in this VMA: PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT, or 0 if none. */
// ref: mm/memory-failure.c dev_pagemap_mapping_shift
export function devPagemapMappingShift(k: Kernel, vma: Vma, addr: number | null): number {
  if (addr === null) return 0;
  const pt = vma.mm.pgd;
  const s = pt.lookup(addr);
  if (!s || entryNone(s.table, s.idx) || !entryPresent(pt, s.table, s.idx)) return 0;
  const level = s.level.name;
  const devmap = entryDevmap(k, pt, s.table, s.idx);
  if (level === "pud") return devmap ? (k.arch.pudShift ?? 0) : 0;
  if (level === "pmd") return devmap ? k.arch.pmdShift : 0;
  if (level === "pte") return devmap ? k.arch.pageShift : 0;
  return 0;
}

/** vma_pgoff_address(pgoff, 1, vma): the user address of a file page in this VMA, null (-EFAULT) outside it. */
// ref: mm/internal.h vma_pgoff_address
function vmaPgoffAddress(k: Kernel, pgoff: number, vma: Vma): number | null {
  if (pgoff < vma.pgoff) return null;
  const addr = vma.start + (pgoff - vma.pgoff) * k.geo.pageSize;
  return addr < vma.end ? addr : null;
}

/** page_address_in_vma for a file page: its page->index in this VMA, if the VMA maps page->mapping. */
// ref: mm/rmap.c page_address_in_vma
function pageAddressInVma(k: Kernel, pfn: number, vma: Vma): number | null {
  const mapping = pageField(k, pfn, "mapping", "page_address_in_vma");
  if (!vma.file || vma.file.mapping.id !== mapping) return null;
  return vmaPgoffAddress(k, pageField(k, pfn, "index", "page_address_in_vma"), vma);
}

/**
 * add_to_kill: queue a task with the address and mapping size of the poisoned page in this VMA. A VMA that
 * covers the page without mapping it (size 0) is dropped; an address that cannot be found is kept (SIGKILL).
 */
// ref: mm/memory-failure.c add_to_kill
function addToKill(k: Kernel, task: Task, pfn: number, fsdaxPgoff: number | null, vma: Vma, list: ToKill[]): void {
  let addr = pageAddressInVma(k, pfn, vma);
  if (fsdaxPgoff !== null) addr = vmaPgoffAddress(k, fsdaxPgoff, vma);
  const sizeShift = devPagemapMappingShift(k, vma, addr);
  if (addr === null) {
    k.printk(`Memory failure: Unable to find user space address ${pfn.toString(16)} in ${task.comm}`);
  } else if (sizeShift === 0) {
    return;
  }
  list.push({ task, addr, sizeShift });
}

/** task_early_kill: the thread to signal for this process, or null if it does not want early signals. */
// ref: mm/memory-failure.c task_early_kill, find_early_kill_thread
function taskEarlyKill(k: Kernel, task: Task, forceEarly: boolean, current: Task | null): Task | null {
  if (forceEarly && current && task.mm === current.mm) return current;
  const s = mfState(k);
  const policy = s.policy.get(task);
  if (policy !== undefined) return policy === "early" ? task : null;
  return s.earlyKill ? task : null;
}

/** The VMAs of this mapping that cover file page pgoff, in interval-tree order. */
function vmasCovering(k: Kernel, mapping: AddressSpace, pgoff: number): Vma[] {
  const ps = k.geo.pageSize;
  return [...mapping.iMmap]
    .filter((v) => v.pgoff <= pgoff && pgoff < v.pgoff + (v.end - v.start) / ps)
    .sort((a, b) => a.pgoff - b.pgoff || a.start - b.start);
}

/** for_each_process: creation order. */
function processes(k: Kernel): Task[] {
  return [...userland(k).tasks.values()];
}

/** collect_procs → collect_procs_file (DAX pages are never anon): every early-kill task mapping page->index. */
// ref: mm/memory-failure.c collect_procs, collect_procs_file
function* collectProcs(k: Kernel, pfn: number, forceEarly: boolean, current: Task | null): KernelPath<ToKill[]> {
  const list: ToKill[] = [];
  const mapping = userland(k).mappings.get(pageField(k, pfn, "mapping", "collect_procs"));
  if (!mapping) return list;
  yield step("collect_procs_file: i_mmap_lock_read; read_lock(&tasklist_lock)");
  const pgoff = pageField(k, pfn, "index", "collect_procs_file");
  for (const tsk of processes(k)) {
    const t = taskEarlyKill(k, tsk, forceEarly, current);
    if (!t) continue;
    for (const vma of vmasCovering(k, mapping, pgoff)) if (vma.mm === t.mm) addToKill(k, t, pfn, null, vma, list);
  }
  yield step("collect_procs_file: read_unlock; i_mmap_unlock_read");
  return list;
}

/** collect_procs_fsdax: as collect_procs_file, with the address taken from the file offset the fs reported. */
// ref: mm/memory-failure.c collect_procs_fsdax
function* collectProcsFsdax(k: Kernel, pfn: number, mapping: AddressSpace, pgoff: number, current: Task | null): KernelPath<ToKill[]> {
  const list: ToKill[] = [];
  yield step("collect_procs_fsdax: i_mmap_lock_read; read_lock(&tasklist_lock)");
  for (const tsk of processes(k)) {
    const t = taskEarlyKill(k, tsk, true, current);
    if (!t) continue;
    for (const vma of vmasCovering(k, mapping, pgoff)) if (vma.mm === t.mm) addToKill(k, t, pfn, pgoff, vma, list);
  }
  yield step("collect_procs_fsdax: read_unlock; i_mmap_unlock_read");
  return list;
}

/** kill_proc: BUS_MCEERR_AR to the task that consumed the poison (action required), BUS_MCEERR_AO to others. */
// ref: mm/memory-failure.c kill_proc; kernel/signal.c force_sig_mceerr, send_sig_mceerr
function killProc(k: Kernel, tk: ToKill, pfn: number, flags: number, current: Task | null): void {
  const t = tk.task;
  k.printk(`Memory failure: ${hex(pfn)}: Sending SIGBUS to ${t.comm}:${t.pid} due to hardware memory corruption`);
  const code = flags & MF_ACTION_REQUIRED && t === current ? "BUS_MCEERR_AR" : "BUS_MCEERR_AO";
  t.signals.push(`SIGBUS ${code} addr=${hex(tk.addr ?? 0)} lsb=${tk.sizeShift}`);
}

// ref: mm/memory-failure.c kill_procs
function killProcs(k: Kernel, list: ToKill[], forcekill: boolean, fail: boolean, pfn: number, flags: number, current: Task | null): void {
  for (const tk of list) {
    if (!forcekill) continue;
    if (fail || tk.addr === null) {
      k.printk(`Memory failure: ${hex(pfn)}: forcibly killing ${tk.task.comm}:${tk.task.pid} because of failure to unmap corrupted page`);
      tk.task.signals.push("SIGKILL");
    } else {
      killProc(k, tk, pfn, flags, current);
    }
  }
}

/**
 * unmap_and_kill: zap the largest size any victim maps the page with (a devdax huge mapping goes whole rather
 * than being split), then signal. Nobody collected: nothing is unmapped.
 */
// ref: mm/memory-failure.c unmap_and_kill
function* unmapAndKill(k: Kernel, list: ToKill[], pfn: number, mapping: AddressSpace | undefined, index: number, flags: number, current: Task | null): KernelPath<void> {
  let size = 0;
  for (const tk of list) if (tk.sizeShift) size = Math.max(size, 2 ** tk.sizeShift);
  if (size && mapping) {
    const ps = k.geo.pageSize;
    const start = index * ps - ((index * ps) % size);
    yield* unmapMappingRange(k, mapping, start / ps, size / ps);
  }
  killProcs(k, list, (flags & MF_MUST_KILL) !== 0, false, pfn, flags, current);
}

/**
 * mf_generic_kill_procs: lock the page's DAX entry through page->mapping (-EBUSY if it has none: never
 * mapped, or truncated), mark it HWPoison, collect, unmap and SIGBUS everyone mapping it.
 */
// ref: mm/memory-failure.c mf_generic_kill_procs
function* mfGenericKillProcs(k: Kernel, pfn: number, flagsIn: number, pgmap: DevPagemap, current: Task | null): KernelPath<Errno> {
  const h = pageField(k, pfn, "compoundHead", "mf_generic_kill_procs");
  const page = h >= 0 ? h : pfn;
  const cookie = yield* daxLockPage(k, page, `memory_failure(${hex(pfn)})`);
  if (cookie === DAX_COOKIE_FAILED) return -EBUSY;
  let rc: Errno = 0;
  // hwpoison_filter: the injection filters are off unless configured (not modelled).
  if (pgmap.type === MemoryType.PRIVATE || pgmap.type === MemoryType.COHERENT) {
    rc = -ENXIO;
  } else {
    setPageHWPoison(k, page);
    const flags = flagsIn | MF_ACTION_REQUIRED | MF_MUST_KILL;
    const list = yield* collectProcs(k, page, true, current);
    const mapping = userland(k).mappings.get(pageField(k, page, "mapping", "mf_generic_kill_procs"));
    yield* unmapAndKill(k, list, pfn, mapping, pageField(k, page, "index", "mf_generic_kill_procs"), flags, current);
  }
  yield* daxUnlockPage(k, page, cookie);
  return rc;
}

/**
 * mf_dax_kill_procs: the filesystem's answer for a failed file range: for each page index with an entry, mark
 * the entry's page HWPoison, collect the processes mapping that index, unmap and kill. Holes are skipped.
 */
// ref: mm/memory-failure.c mf_dax_kill_procs
export function* mfDaxKillProcs(k: Kernel, mapping: AddressSpace, indexIn: number, count: number, mfFlags: number, current: Task | null): KernelPath<Errno> {
  const flags = mfFlags | MF_ACTION_REQUIRED | MF_MUST_KILL;
  const end = indexIn + count;
  for (let index = indexIn; index < end; index++) {
    const { cookie, page } = yield* daxLockMappingEntry(k, mapping, index, `mf_dax_kill_procs(${mapping.host}[${index}])`);
    if (cookie === DAX_COOKIE_FAILED) return -EBUSY;
    if (page !== null) {
      setPageHWPoison(k, page);
      const list = yield* collectProcsFsdax(k, page, mapping, index, current);
      yield* unmapAndKill(k, list, page, mapping, index, flags, current);
    }
    yield* daxUnlockMappingEntry(k, mapping, index, cookie);
  }
  return 0;
}

/**
 * memory_failure_dev_pagemap: -ENXIO for the pgmap's own metadata area; the driver's ->memory_failure if it
 * has one (falling back only on -EOPNOTSUPP); else the generic handler. Drops the caller's pgmap reference.
 */
// ref: mm/memory-failure.c memory_failure_dev_pagemap
function* memoryFailureDevPagemap(k: Kernel, pfn: number, flags: number, pgmap: DevPagemap, current: Task | null): KernelPath<Errno> {
  let rc: Errno = -ENXIO;
  if (flags & MF_COUNT_INCREASED) yield* putPage(k, pfn);
  if (pgmapPfnValid(k, pgmap, pfn)) {
    const op = pgmap.ops?.memoryFailure ? PGMAP_OPS.get(pgmap) : undefined;
    // A pgmap that declares ->memory_failure without the model knowing its handler behaves as -EOPNOTSUPP.
    rc = op ? yield* op(pfn, 1, flags, current) : -EOPNOTSUPP;
    if (rc === -EOPNOTSUPP) rc = yield* mfGenericKillProcs(k, pfn, flags, pgmap, current);
  }
  yield* putDevPagemap(k, pgmap, MF_HOLDER);
  actionResult(k, pfn, rc ? "Failed" : "Recovered");
  return rc;
}

/**
 * memory_failure(pfn, flags): serialised by mf_mutex. A ZONE_DEVICE pfn (pfn_to_online_page is NULL) with a
 * live pgmap goes to memory_failure_dev_pagemap; anything else that is not online memory is "outside kernel
 * control" (-ENXIO). `current` is the task the error is reported for (the one that consumed the poison for an
 * MCE with MF_ACTION_REQUIRED; null for a scrubber or another process).
 */
// ref: mm/memory-failure.c memory_failure
export function* memoryFailure(k: Kernel, pfn: number, flags: number, current: Task | null = null): KernelPath<Errno> {
  const s = mfState(k);
  const me = `memory_failure(${hex(pfn)})`;
  yield {
    kind: "block",
    at: "memory_failure: mutex_lock(&mf_mutex)",
    until: () => s.mutex === null,
    holder: () => `mf_mutex held by ${s.mutex}`,
  };
  s.mutex = me;
  try {
    if (pfnToOnlinePage(k, pfn)) {
      throw new UsageError("pfn", `memory_failure on online memory (pfn ${hex(pfn)}) is not modelled; only ZONE_DEVICE pfns are`);
    }
    // arch_memory_failure: only x86 SGX EPC pages are handled there; everything else is -ENXIO and goes on.
    if (k.sections.pfnValid(pfn)) {
      const pgmap = yield* getDevPagemap(k, pfn, MF_HOLDER);
      if (pgmap) return yield* memoryFailureDevPagemap(k, pfn, flags, pgmap, current);
    }
    k.printk(`Memory failure: ${hex(pfn)}: memory outside kernel control`);
    return -ENXIO;
  } finally {
    s.mutex = null;
  }
}
