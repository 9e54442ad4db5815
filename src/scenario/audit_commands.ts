/**
 * Scenario steps for seed 002's audit (docs/seed-002-audit.md): each runs one of the functions Dan Williams
 * audited in the context the kernel calls it from, as a kernel path, so a thread of steps can interleave with a
 * device's unbind.
 *
 *   smaps_pmd_entry PROC ADDR          /proc/PID/smaps over the huge PMD mapping ADDR
 *   put_devmap_managed_page PFN        put_page() of a reference the caller holds (e.g. from a preceding gup)
 *   __put_page PFN                     the same put_page(), named for the zero-refcount end of it
 *   release_pages PFN...               release_pages() of references the caller holds
 *   is_device_private_page PFN         the test, as a holder of the page runs it
 *   pci_alloc_p2pmem DEVICE            a p2pmem allocation (holds a pgmap reference); prints its pfn
 *   is_pci_p2pdma_page PFN             the test, as a consumer of an allocation runs it
 *   pci_free_p2pmem PFN
 *   anon_page PROC ADDR                a process touches an anonymous address (do_anonymous_page; HMM setup)
 *   migrate_vma_pages PROC ADDR DEVICE a driver migrates it to DEVICE's device-private memory (remove_migration_pte)
 *   migrate_to_ram PROC ADDR           the CPU faults on the device-private entry (do_swap_page, try_to_unmap_one)
 *   move_to_new_page PROC ADDR DEVICE  __unmap_and_move to a device-private page
 *   uncharge_page PROC ADDR            munmap of the device-private entry: its last put frees and uncharges it
 *   add_to_kill PROC ADDR              PROC consumes poison at ADDR: memory_failure(pfn, MF_ACTION_REQUIRED)
 *   soft_offline_page PFN              echo PHYS > /sys/devices/system/memory/soft_offline_page
 *   madvise_soft_offline PROC ADDR     madvise(ADDR, 4096, MADV_SOFT_OFFLINE)
 *   memunmap_pages DEVICE              memunmap_pages() as the variant's kernel runs it (5.4: put_page() per page)
 *
 * PROC is a process created by `process NAME`. ADDR is hex, or LABEL[+OFFSET] where LABEL is a mapping label the
 * environment knows (AuditEnv.label: the runner's `mmap --as` labels) or else the base name of a file the process
 * maps (mmap's default label, e.g. dax0.0). Registered in builtinCommands() with the default environment.
 */
import { findDevDax } from "../kernel/drivers/dax/device.ts";
import { isPciP2pdmaPage, pciAllocP2pmem, pciFreeP2pmem } from "../kernel/drivers/pci/p2pdma.ts";
import { ENODEV, ENXIO, errnoName } from "../kernel/errno.ts";
import { smapsPmdEntry } from "../kernel/fs/proc/task_mmu.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { DevPagemap } from "../kernel/mm/dev_pagemap.ts";
import { entryNone, entryPfn } from "../kernel/mm/memory.ts";
import { MF_ACTION_REQUIRED, memoryFailure } from "../kernel/mm/memory_failure.ts";
import { madviseSoftOffline, softOfflinePageStore } from "../kernel/mm/memory_failure_soft.ts";
import { memunmapPages } from "../kernel/mm/memremap.ts";
import { doAnonymousPage, doSwapPageDevicePrivate, isDevicePrivatePage, type MigrateResult, migrateToDevice, unmapAndMoveToDevice, zapDevicePrivate } from "../kernel/mm/migrate_device.ts";
import type { Task } from "../kernel/mm/mm_types.ts";
import { hex, type PutOutcome, putPage, releasePages } from "../kernel/mm/swap.ts";
import type { KernelPath } from "../kernel/path.ts";
import { BadArguments, definePathCommand, type ScenarioCommand, type StepOutput, sizeArg, splitOptions } from "./commands.ts";
import type { Invocation } from "./tokenize.ts";

/** What the audit steps need from the runner beyond the kernel: process names and mapping labels. */
export interface AuditEnv {
  /** The task a step's PROC names. */
  task(k: Kernel, name: string): Task | null;
  /** The start address of a mapping label, if the runner keeps labels (user_commands' `mmap --as`). */
  label?(k: Kernel, name: string): number | null;
}

/** Processes by name (their comm), labels by the base name of the file a process maps. */
export const defaultAuditEnv: AuditEnv = {
  task: (k, name) => {
    for (const t of k.userland?.tasks.values() ?? []) if (t.comm === name) return t;
    return null;
  },
};

interface AddrArg {
  label: string | null;
  value: number;
}

function addrArg(what: string, v: string): AddrArg {
  if (/^0x[0-9a-f]+$/i.test(v)) return { label: null, value: Number.parseInt(v, 16) };
  const m = /^([A-Za-z_][\w.-]*)(?:\+(.+))?$/.exec(v);
  if (!m) throw new BadArguments(`${what}: '${v}' is neither a hex address nor LABEL[+OFFSET]`);
  return { label: m[1]!, value: m[2] === undefined ? 0 : sizeArg(what, m[2]) };
}

function args(inv: Invocation, names: readonly string[]): string[] {
  const { args: a } = splitOptions(inv, []);
  if (a.length !== names.length) throw new BadArguments(`expected ${names.length} argument${names.length === 1 ? "" : "s"} (${names.join(", ")}), got ${a.length}`);
  return a;
}

const fail = (stdout: string, rc = 1): StepOutput => ({ stdout, rc });

/** PROC and ADDR resolved, or the output that says which one is unknown. */
function procAddr(env: AuditEnv, k: Kernel, proc: string, a: AddrArg): { t: Task; addr: number } | StepOutput {
  const t = env.task(k, proc);
  if (!t) return fail(`${proc}: no such process (create it with 'process ${proc}')\n`);
  if (a.label === null) return { t, addr: a.value };
  const start = env.label?.(k, a.label) ?? t.mm.vmas.find((v) => v.file?.path.slice(v.file.path.lastIndexOf("/") + 1) === a.label)?.start;
  if (start === undefined || start === null) return fail(`${a.label}: no such mapping label\n`);
  return { t, addr: start + a.value };
}

/** The newest dev_pagemap of a device that is not torn down. */
function pgmapOf(k: Kernel, device: string): DevPagemap | null {
  const list = k.pgmaps.all().filter((p) => p.device === device && p.state !== "exited" && p.state !== "failed" && p.state !== "new");
  return list[list.length - 1] ?? null;
}

/** The pfn the process's page table maps at addr (what the CPU would access), or null. */
function pfnAt(k: Kernel, t: Task, addr: number): number | null {
  const s = t.mm.pgd.lookup(addr);
  if (!s || entryNone(s.table, s.idx)) return null;
  return entryPfn(t.mm.pgd, s.table, s.idx) + Math.floor((addr % 2 ** s.level.shift) / k.geo.pageSize);
}

function putLine(name: string, pfn: number, o: PutOutcome): string {
  return `${name}(${hex(pfn)}): refcount ${o.refcount}${o.did.length ? `; ${o.did.join("; ")}` : ""}\n`;
}

function rcOut(stdout: string, rc: number): StepOutput {
  return rc < 0 ? { stdout, rc, errno: rc } : { stdout, rc };
}

function migrateLine(name: string, r: MigrateResult): string {
  const puts = r.puts.filter((p) => p.did.length > 0).map((p) => p.did.join("; "));
  return `${name}: ${r.migrated ? "migrated" : "not migrated"}${r.pfn !== null ? `, ${hex(r.pfn)} mapped` : ""}${r.rc ? ` (${errnoName(r.rc)})` : ""}${puts.length ? `; ${puts.join("; ")}` : ""}\n`;
}

function pfnCommand(name: string, summary: string, run: (k: Kernel, pfn: number) => KernelPath<StepOutput>): ScenarioCommand {
  return definePathCommand({
    name,
    usage: `${name} PFN`,
    summary,
    parse: (inv) => sizeArg("PFN", args(inv, ["PFN"])[0]!),
    path: (k, pfn) => run(k, pfn),
  });
}

function procAddrCommand(
  env: AuditEnv,
  name: string,
  summary: string,
  run: (k: Kernel, t: Task, addr: number) => KernelPath<StepOutput>,
): ScenarioCommand {
  return definePathCommand({
    name,
    usage: `${name} PROC ADDR`,
    summary,
    parse(inv) {
      const [proc, addr] = args(inv, ["PROC", "ADDR"]);
      return { proc: proc!, addr: addrArg("ADDR", addr!) };
    },
    *path(k, a) {
      const at = procAddr(env, k, a.proc, a.addr);
      if ("rc" in at) return at;
      return yield* run(k, at.t, at.addr);
    },
  });
}

function procAddrDeviceCommand(
  env: AuditEnv,
  name: string,
  summary: string,
  run: (k: Kernel, t: Task, addr: number, pgmap: DevPagemap) => KernelPath<StepOutput>,
): ScenarioCommand {
  return definePathCommand({
    name,
    usage: `${name} PROC ADDR DEVICE`,
    summary,
    parse(inv) {
      const [proc, addr, device] = args(inv, ["PROC", "ADDR", "DEVICE"]);
      return { proc: proc!, addr: addrArg("ADDR", addr!), device: device! };
    },
    *path(k, a) {
      const at = procAddr(env, k, a.proc, a.addr);
      if ("rc" in at) return at;
      const pgmap = pgmapOf(k, a.device);
      if (!pgmap) return { stdout: `${a.device}: no dev_pagemap\n`, rc: -ENODEV, errno: -ENODEV };
      return yield* run(k, at.t, at.addr, pgmap);
    },
  });
}

/** The audit's steps, resolving processes and labels through `env`. */
export function auditCommands(env: AuditEnv = defaultAuditEnv): ScenarioCommand[] {
  const smaps = procAddrCommand(env, "smaps_pmd_entry", "smaps' accounting of the huge PMD mapping ADDR (smaps_pte_range → smaps_pmd_entry), under the PMD lock", function* (k, t, addr) {
    const r = yield* smapsPmdEntry(k, t, addr);
    if (typeof r === "string") return { stdout: `smaps_pmd_entry(${hex(addr)}): ${r === "no-vma" ? "no VMA" : "no huge PMD (smaps_pte_entry: vm_normal_page skips devmap PTEs)"}\n`, rc: 0 };
    const kb = (n: number) => `${n / 1024} kB`;
    const m = r.mss;
    return {
      stdout: `smaps_pmd_entry(${hex(addr)}): pfn ${hex(r.pfn)}${r.zoneDevice ? " ZONE_DEVICE" : ""}; Rss ${kb(m.resident)}, Referenced ${kb(m.referenced)}, Private_Clean ${kb(m.privateClean)}, Private_Dirty ${kb(m.privateDirty)}, Shared_Clean ${kb(m.sharedClean)}, Shared_Dirty ${kb(m.sharedDirty)}, AnonHugePages ${kb(m.anonymousThp)}, FilePmdMapped ${kb(m.fileThp)}\n`,
      rc: 0,
    };
  });

  const putDevmap = pfnCommand("put_devmap_managed_page", "put_page() of one reference the caller holds on PFN: put_devmap_managed_page takes FS_DAX (5.4: and DEVICE_PRIVATE) pages", function* (k, pfn) {
    return { stdout: putLine("put_page", pfn, yield* putPage(k, pfn)), rc: 0 };
  });

  const putPageFinal = pfnCommand("__put_page", "put_page() of one reference the caller holds on PFN; at 0, __put_page (5.4: put_dev_pagemap) / __folio_put (6.1: free_zone_device_page)", function* (k, pfn) {
    return { stdout: putLine("put_page", pfn, yield* putPage(k, pfn)), rc: 0 };
  });

  const release = definePathCommand({
    name: "release_pages",
    usage: "release_pages PFN...",
    summary: "release_pages() of one reference the caller holds on each PFN (e.g. pages a gup step took)",
    parse(inv) {
      const { args: a } = splitOptions(inv, []);
      if (a.length === 0) throw new BadArguments("give at least one PFN");
      return a.flatMap((s) => s.split(",")).map((s) => sizeArg("PFN", s));
    },
    *path(k, pfns) {
      const outs = yield* releasePages(k, pfns);
      return { stdout: outs.map((o, i) => putLine("release_pages", pfns[i]!, o)).join(""), rc: 0 };
    },
  });

  const isPrivate = pfnCommand("is_device_private_page", "is_device_private_page(pfn_to_page(PFN)), as a holder of the page runs it", function* (k, pfn) {
    return { stdout: `is_device_private_page(${hex(pfn)}) = ${yield* isDevicePrivatePage(k, pfn)}\n`, rc: 0 };
  });

  const isP2p = pfnCommand("is_pci_p2pdma_page", "is_pci_p2pdma_page(pfn_to_page(PFN)), as a consumer of a p2pmem allocation runs it", function* (k, pfn) {
    return { stdout: `is_pci_p2pdma_page(${hex(pfn)}) = ${yield* isPciP2pdmaPage(k, pfn)}\n`, rc: 0 };
  });

  const p2pAlloc = definePathCommand({
    name: "pci_alloc_p2pmem",
    usage: "pci_alloc_p2pmem DEVICE",
    summary: "pci_alloc_p2pmem() of a page of DEVICE's p2pdma pgmap (the allocation holds a pgmap reference); prints its pfn",
    parse: (inv) => args(inv, ["DEVICE"])[0]!,
    *path(k, device) {
      const pgmap = pgmapOf(k, device);
      if (!pgmap) return { stdout: `${device}: no dev_pagemap\n`, rc: -ENODEV, errno: -ENODEV };
      const pfn = yield* pciAllocP2pmem(k, pgmap);
      return pfn === null ? fail("pci_alloc_p2pmem: NULL\n") : { stdout: `pci_alloc_p2pmem(${device}) = pfn ${hex(pfn)}\n`, rc: 0 };
    },
  });

  const p2pFree = pfnCommand("pci_free_p2pmem", "pci_free_p2pmem() of the allocation at PFN (its pgmap reference goes)", function* (k, pfn) {
    return (yield* pciFreeP2pmem(k, pfn)) ? { stdout: "", rc: 0 } : fail(`pci_free_p2pmem: ${hex(pfn)} is not allocated\n`);
  });

  const anon = procAddrCommand(env, "anon_page", "the process touches an anonymous address: do_anonymous_page maps a new RAM page there, charged to its memcg", function* (k, t, addr) {
    const r = yield* doAnonymousPage(k, t, addr);
    return r < 0 ? rcOut(`do_anonymous_page: ${errnoName(r)}\n`, r) : { stdout: `do_anonymous_page(${hex(addr)}): pfn ${hex(r)}\n`, rc: 0 };
  });

  const migrateVma = procAddrDeviceCommand(env, "migrate_vma_pages", "a driver migrates the anonymous page at ADDR into DEVICE's device-private memory (migrate_vma_setup/pages/finalize)", function* (k, t, addr, pgmap) {
    const r = yield* migrateToDevice(k, t, addr, pgmap);
    return rcOut(migrateLine("migrate_vma_pages", r), r.rc);
  });

  const toRam = procAddrCommand(env, "migrate_to_ram", "a CPU access to the device-private entry at ADDR: do_swap_page → ->migrate_to_ram (try_to_unmap_one, migrate_vma_pages, remove_migration_pte)", function* (k, t, addr) {
    const r = yield* doSwapPageDevicePrivate(k, t, addr);
    return rcOut(migrateLine("migrate_to_ram", r), r.rc);
  });

  const moveToNew = procAddrDeviceCommand(env, "move_to_new_page", "__unmap_and_move of the anonymous page at ADDR to a page of DEVICE's device-private memory (move_to_new_page)", function* (k, t, addr, pgmap) {
    const r = yield* unmapAndMoveToDevice(k, t, addr, pgmap);
    return rcOut(migrateLine("move_to_new_page", r), r.rc);
  });

  const uncharge = procAddrCommand(env, "uncharge_page", "munmap of the device-private entry at ADDR: zap_pte_range drops its reference; a page nothing else holds is freed and uncharged", function* (k, t, addr) {
    const o = yield* zapDevicePrivate(k, t, addr);
    return { stdout: o ? `zap_pte_range(${hex(addr)}): refcount ${o.refcount}${o.did.length ? `; ${o.did.join("; ")}` : ""}\n` : `zap_pte_range(${hex(addr)}): no device-private entry\n`, rc: 0 };
  });

  const addToKill = procAddrCommand(env, "add_to_kill", "PROC consumes poison at ADDR: memory_failure(pfn, MF_ACTION_REQUIRED), which queues PROC with add_to_kill under get_dev_pagemap and dax_lock_page", function* (k, t, addr) {
    const pfn = pfnAt(k, t, addr);
    if (pfn === null) return fail(`add_to_kill: nothing mapped at ${hex(addr)}\n`);
    const before = t.signals.length;
    const rc = yield* memoryFailure(k, pfn, MF_ACTION_REQUIRED, t);
    const sigs = t.signals.slice(before).map((s) => `${t.comm}: ${s}\n`);
    return rcOut(`memory_failure(${hex(pfn)}, MF_ACTION_REQUIRED) = ${rc ? errnoName(rc) : 0}\n${sigs.join("")}`, rc);
  });

  const softOffline = pfnCommand("soft_offline_page", "echo PHYS > /sys/devices/system/memory/soft_offline_page for PFN (nothing held: a pfn from user space)", function* (k, pfn) {
    const r = yield* softOfflinePageStore(k, pfn);
    return rcOut(`soft_offline_page(${hex(pfn)}) = ${r.rc ? errnoName(r.rc) : 0}\n`, r.rc);
  });

  const madvise = procAddrCommand(env, "madvise_soft_offline", "madvise(ADDR, 4096, MADV_SOFT_OFFLINE): get_user_pages_fast, then soft_offline_page with MF_COUNT_INCREASED", function* (k, t, addr) {
    const r = yield* madviseSoftOffline(k, t, addr);
    const puts = r.puts.map((p) => `put_page: refcount ${p.refcount}${p.did.length ? `; ${p.did.join("; ")}` : ""}`);
    return rcOut(`madvise(${hex(addr)}, MADV_SOFT_OFFLINE)${r.pfn !== null ? ` pfn ${hex(r.pfn)}` : ""} = ${r.rc ? errnoName(r.rc) : 0}${puts.length ? `; ${puts.join("; ")}` : ""}\n`, r.rc);
  });

  const memunmap = definePathCommand({
    name: "memunmap_pages",
    usage: "memunmap_pages DEVICE",
    summary: "memunmap_pages() of DEVICE's dev_pagemap, as the variant's kernel runs it (5.4: put_page() on every device page, then wait)",
    parse: (inv) => args(inv, ["DEVICE"])[0]!,
    *path(k, device) {
      const pgmap = pgmapOf(k, device) ?? (findDevDax(k, device)?.pgmap ?? null);
      if (!pgmap) return { stdout: `memunmap_pages: ${device}: no dev_pagemap to tear down\n`, rc: -ENXIO, errno: -ENXIO };
      yield* memunmapPages(k, pgmap);
      return { stdout: "", rc: 0 };
    },
  });

  return [smaps, putDevmap, putPageFinal, release, isPrivate, p2pAlloc, isP2p, p2pFree, anon, migrateVma, toRam, moveToNew, uncharge, addToKill, softOffline, madvise, memunmap];
}
