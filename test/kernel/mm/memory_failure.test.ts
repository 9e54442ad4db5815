/**
 * memory_failure on ZONE_DEVICE pfns (mm/memory-failure.c, 6.1): memory_failure_dev_pagemap, pmem's
 * ->memory_failure into the dax_device holder (XFS with rmapbt: mf_dax_kill_procs) or the generic path
 * (mf_generic_kill_procs: ext4, XFS without rmapbt, device-dax), the early-kill rule, add_to_kill with
 * dev_pagemap_mapping_shift, unmap_and_kill, and the errnos.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../../src/errors.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { findDevDax, openDevDax } from "../../../src/kernel/drivers/dax/device.ts";
import { unbindStore } from "../../../src/kernel/drivers/nvdimm/device_core.ts";
import { EBUSY, ENXIO, EUCLEAN } from "../../../src/kernel/errno.ts";
import { createFile, type DaxFile, type DaxFsKind, type MountOptions, mountDaxFs, openFile } from "../../../src/kernel/fs/dax_fs.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { flagBit, PG_hwpoison } from "../../../src/kernel/mm/memmap.ts";
import { handleMmFault } from "../../../src/kernel/mm/memory.ts";
import {
  MF_ACTION_REQUIRED,
  MF_COUNT_INCREASED,
  memoryFailure,
  numPoisonedPages,
  prctlMceKill,
  setMemoryFailureEarlyKill,
} from "../../../src/kernel/mm/memory_failure.ts";
import { getPage } from "../../../src/kernel/mm/memremap.ts";
import { type Task, VM_FAULT_SIGBUS, vmaLookup } from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap } from "../../../src/kernel/mm/mmap.ts";
import { runToEnd } from "../../../src/kernel/path.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";

const MiB = 2 ** 20;
const PAGE = 4096;
/** pmem0's first data pfn (4 GiB + 18 MiB); the 64 MiB file starts 2 MiB (512 blocks) into the disk. */
const DATA_PFN = (2 ** 32 + 18 * MiB) / PAGE;
const FILE_PFN = DATA_PFN + 512;

interface Env {
  k: Kernel;
  f: DaxFile;
  t: Task;
  addr: number;
}

function proc(k: Kernel, comm: string): Task {
  const t = createProcess(k, comm);
  assert.ok(typeof t !== "number");
  return t;
}

function map(k: Kernel, t: Task, f: DaxFile, len: number, offset = 0): number {
  const addr = runToEnd(doMmap(k, t, f, { len, read: true, write: true, shared: true, offset }));
  assert.ok(addr > 0, `mmap: ${addr}`);
  return addr;
}

function setup(kind: DaxFsKind, opts: MountOptions = {}): Env {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=fsdax", "--map=dev"]).rc, 0);
  const fs = runToEnd(mountDaxFs(k, kind, "pmem0", "/mnt/pmem", opts));
  assert.ok(typeof fs !== "number");
  assert.ok(typeof createFile(k, fs, "data", 64 * MiB) !== "number");
  const f = openFile(k, fs, "data");
  assert.ok(typeof f !== "number");
  const t = proc(k, "app");
  return { k, f, t, addr: map(k, t, f, 64 * MiB) };
}

function fault(k: Kernel, t: Task, addr: number, write: boolean) {
  return runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, write));
}

/** The level of the entry mapping addr, or null. */
function level(t: Task, addr: number): string | null {
  const s = t.mm.pgd.lookup(addr);
  if (!s || (s.table.lo[s.idx] === 0 && s.table.hi[s.idx] === 0)) return null;
  return s.level.name;
}

function hwpoison(k: Kernel, pfn: number): boolean {
  return (k.memmap.get(pfn).flags & flagBit(PG_hwpoison)) !== 0;
}

const hex = (n: number) => `0x${n.toString(16)}`;

describe("fsdax, generic path (ext4: no holder, so pmem's ->memory_failure is -EOPNOTSUPP)", () => {
  it("a PTE-mapped page consumed by the task: SIGBUS BUS_MCEERR_AR lsb=12 at the page, the PTE zapped, PG_hwpoison", () => {
    const { k, f, t } = setup("ext4");
    const addr = map(k, t, f, MiB, 8 * MiB);
    fault(k, t, addr + 3 * PAGE, true);
    const pfn = FILE_PFN + 2048 + 3;
    assert.equal(runToEnd(memoryFailure(k, pfn, MF_ACTION_REQUIRED, t)), 0);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AR addr=${hex(addr + 3 * PAGE)} lsb=12`]);
    assert.equal(level(t, addr + 3 * PAGE), null);
    assert.ok(hwpoison(k, pfn));
    assert.ok(!hwpoison(k, pfn + 1));
    assert.deepEqual(k.log.slice(-2), [
      `Memory failure: ${hex(pfn)}: Sending SIGBUS to app:${t.pid} due to hardware memory corruption`,
      `Memory failure: ${hex(pfn)}: recovery action for dax page: Recovered`,
    ]);
    assert.equal(numPoisonedPages(k), 1);
  });

  it("a PMD-mapped page: lsb=21, the address of the failed page itself, and the whole PMD unmapped", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr + 2 * MiB, false);
    const pfn = FILE_PFN + 512 + 7;
    assert.equal(runToEnd(memoryFailure(k, pfn, MF_ACTION_REQUIRED, t)), 0);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AR addr=${hex(addr + 2 * MiB + 7 * PAGE)} lsb=21`]);
    assert.equal(level(t, addr + 2 * MiB), null);
    assert.ok(hwpoison(k, pfn));
  });

  it("another process mapping the page is signalled (BUS_MCEERR_AO) only if it asked for early kill", () => {
    const { k, f, t, addr } = setup("ext4");
    const late = proc(k, "late");
    const early = proc(k, "early");
    const la = map(k, late, f, 64 * MiB);
    const ea = map(k, early, f, 64 * MiB);
    for (const [p, a] of [
      [t, addr],
      [late, la],
      [early, ea],
    ] as const)
      fault(k, p, a, false);
    prctlMceKill(k, early, "early");
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN + 1, MF_ACTION_REQUIRED, t)), 0);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AR addr=${hex(addr + PAGE)} lsb=21`]);
    assert.deepEqual(early.signals, [`SIGBUS BUS_MCEERR_AO addr=${hex(ea + PAGE)} lsb=21`]);
    assert.deepEqual(late.signals, []);
    // unmap_mapping_range zaps the file range in every VMA, signalled or not.
    assert.equal(level(late, la), null);
  });

  it("reported on no task's behalf (a scrubber): nobody is collected, so nothing is unmapped or signalled, yet 'Recovered'", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr, false);
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN, 0, null)), 0);
    assert.deepEqual(t.signals, []);
    assert.equal(level(t, addr), "pmd");
    assert.ok(hwpoison(k, FILE_PFN));
    assert.equal(k.log.at(-1), `Memory failure: ${hex(FILE_PFN)}: recovery action for dax page: Recovered`);
  });

  it("vm.memory_failure_early_kill=1 makes every mapping process an early-kill one", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr, false);
    setMemoryFailureEarlyKill(k, true);
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN, 0, null)), 0);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AO addr=${hex(addr)} lsb=21`]);
    prctlMceKill(k, t, "late");
    fault(k, t, addr + 2 * MiB, false);
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN + 512, 0, null)), 0);
    assert.equal(t.signals.length, 1, "PR_MCE_KILL_LATE overrides the sysctl");
  });

  it("a page that was never mapped has no page->mapping: dax_lock_page fails, -EBUSY, 'Failed'", () => {
    const { k } = setup("ext4");
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN + 100, MF_ACTION_REQUIRED, null)), -EBUSY);
    assert.equal(k.log.at(-1), `Memory failure: ${hex(FILE_PFN + 100)}: recovery action for dax page: Failed`);
    assert.ok(!hwpoison(k, FILE_PFN + 100));
  });

  it("MF_COUNT_INCREASED (madvise injection) drops the caller's page reference first", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr, false);
    runToEnd(getPage(k, FILE_PFN));
    assert.equal(k.memmap.get(FILE_PFN).refcount, 2);
    runToEnd(memoryFailure(k, FILE_PFN, MF_COUNT_INCREASED | MF_ACTION_REQUIRED, t));
    assert.equal(k.memmap.get(FILE_PFN).refcount, 1);
  });
});

describe("fsdax through the holder (XFS with rmapbt: xfs_dax_notify_failure → mf_dax_kill_procs)", () => {
  it("a PMD entry: its first page is the one marked HWPoison and named, the address and lsb come from the file offset", () => {
    const { k, t, addr } = setup("xfs", { rmapbt: true });
    fault(k, t, addr, false);
    const pfn = FILE_PFN + 9;
    assert.equal(runToEnd(memoryFailure(k, pfn, MF_ACTION_REQUIRED, t)), 0);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AR addr=${hex(addr + 9 * PAGE)} lsb=21`]);
    assert.ok(hwpoison(k, FILE_PFN));
    assert.ok(!hwpoison(k, pfn));
    assert.equal(level(t, addr), null);
    assert.deepEqual(k.log.slice(-2), [
      `Memory failure: ${hex(FILE_PFN)}: Sending SIGBUS to app:${t.pid} due to hardware memory corruption`,
      `Memory failure: ${hex(pfn)}: recovery action for dax page: Recovered`,
    ]);
  });

  it("a file page never faulted in is a hole for mf_dax_kill_procs: 0, 'Recovered' (the generic path would say -EBUSY)", () => {
    const { k, t } = setup("xfs", { rmapbt: true });
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN + 100, MF_ACTION_REQUIRED, t)), 0);
    assert.deepEqual(t.signals, []);
  });

  it("metadata in the failed range shuts XFS down: -EUCLEAN (EFSCORRUPTED), 'Failed', and faults are SIGBUS after", () => {
    const { k, t, addr } = setup("xfs", { rmapbt: true });
    assert.equal(runToEnd(memoryFailure(k, DATA_PFN + 3, MF_ACTION_REQUIRED, t)), -EUCLEAN);
    assert.ok(k.log.includes("XFS (pmem0): Please unmount the filesystem and rectify the problem(s)"));
    assert.equal(k.log.at(-1), `Memory failure: ${hex(DATA_PFN + 3)}: recovery action for dax page: Failed`);
    assert.equal(fault(k, t, addr, false).ret, VM_FAULT_SIGBUS);
  });

  it("free space: nothing owns it, 0; XFS without rmapbt takes the generic path (-EBUSY for an unmapped page)", () => {
    const x = setup("xfs", { rmapbt: true });
    assert.equal(runToEnd(memoryFailure(x.k, FILE_PFN + 20000, 0, null)), 0);
    const n = setup("xfs", { rmapbt: false });
    assert.equal(runToEnd(memoryFailure(n.k, FILE_PFN + 100, 0, null)), -EBUSY);
    fault(n.k, n.t, n.addr, false);
    assert.equal(runToEnd(memoryFailure(n.k, FILE_PFN + 1, MF_ACTION_REQUIRED, n.t)), 0);
    assert.deepEqual(n.t.signals, [`SIGBUS BUS_MCEERR_AR addr=${hex(n.addr + PAGE)} lsb=21`]);
    assert.ok(hwpoison(n.k, FILE_PFN + 1), "the generic path poisons the failed page itself");
  });
});

describe("errnos and other memory", () => {
  it("the pgmap's own metadata area (altmap reserve: info block and memmap) is -ENXIO", () => {
    const { k } = setup("ext4");
    assert.equal(runToEnd(memoryFailure(k, 2 ** 32 / PAGE + 16, 0, null)), -ENXIO);
    assert.equal(k.log.at(-1), `Memory failure: ${hex(2 ** 32 / PAGE + 16)}: recovery action for dax page: Failed`);
  });

  it("a pfn with no memmap and no pgmap is 'memory outside kernel control' (-ENXIO); after unbind the pmem is too", () => {
    const { k, t, addr } = setup("ext4");
    assert.equal(runToEnd(memoryFailure(k, 0x300000, 0, null)), -ENXIO);
    assert.equal(k.log.at(-1), "Memory failure: 0x300000: memory outside kernel control");
    fault(k, t, addr, false);
    const drv = k.devices?.drivers.find((d) => d.name === "nd_pmem");
    assert.ok(drv);
    assert.equal(unbindStore(k, drv, "pfn0.0"), 0);
    assert.equal(runToEnd(memoryFailure(k, FILE_PFN, MF_ACTION_REQUIRED, t)), -ENXIO);
    assert.equal(k.log.at(-1), `Memory failure: ${hex(FILE_PFN)}: memory outside kernel control`);
    assert.deepEqual(t.signals, []);
  });

  it("online System RAM is not modelled: a UsageError, not a kernel result", () => {
    const { k } = setup("ext4");
    assert.throws(() => runToEnd(memoryFailure(k, 0x1000, 0, null)), UsageError);
  });

  it("mf_mutex serialises: a second memory_failure waits while the first is inside", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr, false);
    const first = memoryFailure(k, FILE_PFN, MF_ACTION_REQUIRED, t);
    first.next();
    const inside = first.next();
    assert.equal(inside.done, false);
    const second = memoryFailure(k, FILE_PFN + 1, 0, null);
    const r = second.next();
    assert.ok(!r.done);
    const y = r.value;
    assert.ok(y && y.kind === "block" && !y.until());
    assert.equal(runToEnd(first), 0);
    assert.ok(y.kind === "block" && y.until());
    assert.equal(runToEnd(second), 0);
  });
});

describe("device-dax (mf_generic_kill_procs on compound pages)", () => {
  it("a 2 MiB-aligned devdax page: the head's mapping/index give the PMD start, lsb 21, the whole PMD unmapped", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", "--align=2M"]).rc, 0);
    const dd = findDevDax(k, "dax0.0");
    assert.ok(dd);
    const t = proc(k, "app");
    const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 8 * MiB, read: true, write: true, shared: true, offset: 0 }));
    fault(k, t, addr + 2 * MiB + 5 * PAGE, true);
    const s = t.mm.pgd.lookup(addr + 2 * MiB);
    assert.ok(s);
    const head = t.mm.pgd.fmt.entryPfn(s.table.lo[s.idx]!, s.table.hi[s.idx]!);
    assert.equal(runToEnd(memoryFailure(k, head + 5, MF_ACTION_REQUIRED, t)), 0);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AR addr=${hex(addr + 2 * MiB)} lsb=21`]);
    assert.equal(level(t, addr + 2 * MiB), null);
    assert.ok(hwpoison(k, head));
  });
});
