/**
 * FS-DAX (issue 5): a DAX filesystem on the oracle's fsdax namespace (pmem0, map=dev), checked against 6.1's
 * fs/dax.c (DAX entries, grab_mapping_entry, dax_iomap_pte/pmd_fault, dax_associate/disassociate_entry,
 * dax_layout_busy_page_range, dax_delete_mapping_entry), fs/ext4 and fs/xfs (mount, fault handlers, break
 * layouts, truncate, evict, xfs_dax_notify_failure), drivers/dax/super.c (fs_dax_get_by_bdev, kill_dax) and
 * drivers/nvdimm/pmem.c (pmem_release_disk).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeFlags } from "../../../src/arch/pte.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { killDax } from "../../../src/kernel/drivers/dax/super.ts";
import { unbindStore } from "../../../src/kernel/drivers/nvdimm/device_core.ts";
import { EBUSY, EEXIST, EINVAL, EIO, ENOSPC, EOPNOTSUPP } from "../../../src/kernel/errno.ts";
import {
  DAX_LOCKED,
  DAX_PMD,
  DAX_SHIFT,
  daxEntries,
  daxEntryAt,
  daxIsEmptyEntry,
  daxIsPmdEntry,
  daxMakeEntry,
  daxToPfn,
} from "../../../src/kernel/fs/dax.ts";
import {
  closeFile,
  createFile,
  type DaxFile,
  type DaxFs,
  type DaxFsKind,
  iputMaybeEvict,
  type MountOptions,
  mountDaxFs,
  openFile,
  truncateFile,
  umountDaxFs,
  unlinkFile,
} from "../../../src/kernel/fs/dax_fs.ts";
import { getSuper } from "../../../src/kernel/fs/super.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, GUP_PIN_COUNTING_BIAS, getUserPages, getUserPagesFast, unpinUserPages } from "../../../src/kernel/mm/gup.ts";
import { flagBit, PG_hwpoison } from "../../../src/kernel/mm/memmap.ts";
import { handleMmFault } from "../../../src/kernel/mm/memory.ts";
import { prctlMceKill } from "../../../src/kernel/mm/memory_failure.ts";
import { type Task, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS, vmaLookup } from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap, doMunmap } from "../../../src/kernel/mm/mmap.ts";
import { Hang, type KernelPath, runToEnd, type Yield } from "../../../src/kernel/path.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";

const MiB = 2 ** 20;
const PAGE = 4096;
/** pmem0's data starts at 4 GiB + 18 MiB (map=dev: 16 MiB of memmap + info block, 2 MiB aligned). */
const DATA_PFN = (2 ** 32 + 18 * MiB) / PAGE;

interface Env {
  k: Kernel;
  fs: DaxFs;
  f: DaxFile;
  t: Task;
  addr: number;
}

function boot(mode = "fsdax"): Kernel {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  const args = ["create-namespace", "-f", "-e", "namespace0.0", `--mode=${mode}`];
  if (mode === "fsdax") args.push("--map=dev");
  assert.equal(runNdctl(k, args).rc, 0);
  return k;
}

function mount(k: Kernel, kind: DaxFsKind, opts: MountOptions = {}): DaxFs {
  const fs = runToEnd(mountDaxFs(k, kind, "pmem0", "/mnt/pmem", opts));
  assert.ok(typeof fs !== "number", `mount: ${fs}`);
  return fs;
}

function open(k: Kernel, fs: DaxFs, name: string): DaxFile {
  const f = openFile(k, fs, name);
  assert.ok(typeof f !== "number", `open: ${f}`);
  return f;
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

/** Mount, create a 64 MiB file, open it and mmap it shared in a process. */
function setup(kind: DaxFsKind, opts: MountOptions = {}, len = 64 * MiB): Env {
  const k = boot();
  const fs = mount(k, kind, opts);
  assert.ok(typeof createFile(k, fs, "data", 64 * MiB) !== "number");
  const f = open(k, fs, "data");
  const t = proc(k, "app");
  return { k, fs, f, t, addr: map(k, t, f, len) };
}

function fault(k: Kernel, t: Task, addr: number, write: boolean) {
  return runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, write));
}

/** The entry mapping addr: its level, flag names and pfn (null when nothing maps it). */
function mapped(t: Task, addr: number): { level: string; flags: string[]; pfn: number } | null {
  const pt = t.mm.pgd;
  const s = pt.lookup(addr);
  if (!s || (s.table.lo[s.idx] === 0 && s.table.hi[s.idx] === 0)) return null;
  const lo = s.table.lo[s.idx]!;
  const hi = s.table.hi[s.idx]!;
  return { level: s.level.name, flags: decodeFlags(pt.fmt, lo, hi), pfn: pt.fmt.entryPfn(lo, hi) };
}

function page(k: Kernel, pfn: number) {
  return k.memmap.get(pfn);
}

/** Drive a path until it blocks on a condition that does not hold; returns that yield. */
function runUntilStuck<T>(path: KernelPath<T>): Extract<Yield, { kind: "block" }> {
  for (;;) {
    const r = path.next();
    if (r.done) throw new Error(`path finished (${String(r.value)}) without blocking`);
    if (r.value.kind === "block" && !r.value.until()) return r.value;
  }
}

/** Drive a path until it yields the step named `at` (the lock or state change just happened). */
function runUntilStep<T>(path: KernelPath<T>, at: string): void {
  for (;;) {
    const r = path.next();
    if (r.done) throw new Error(`path finished without reaching ${at}`);
    if (r.value.kind === "step" && r.value.at === at) return;
  }
}

function unbindPmem(k: Kernel): void {
  const drv = k.devices?.drivers.find((d) => d.name === "nd_pmem");
  assert.ok(drv);
  assert.equal(unbindStore(k, drv, "pfn0.0"), 0);
}

describe("mount: the dax_device and its holder", () => {
  it("xfs registers itself as the dax_device holder (with notify_failure ops); ext4 takes it without a holder", () => {
    const k = boot();
    const x = mount(k, "xfs");
    assert.equal(x.dax.holder, "xfs(pmem0)");
    assert.ok(x.dax.holderOps);
    assert.deepEqual(k.log.slice(-3), [
      "XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk",
      "XFS (pmem0): Mounting V5 Filesystem",
      "XFS (pmem0): Ending clean mount",
    ]);
    assert.equal(runToEnd(umountDaxFs(k, x)), 0);
    assert.equal(x.dax.holder, null);
    const e = mount(k, "ext4");
    assert.equal(e.dax.holder, null);
    assert.equal(e.dax.holderOps, null);
    assert.equal(k.log.at(-1), "EXT4-fs (pmem0): mounted filesystem with ordered data mode. Quota mode: none.");
    assert.equal(getSuper(k, "pmem0")?.fsType, "ext4");
  });

  it("a BTT disk (pmem0s) has no QUEUE_FLAG_DAX: ext4 -o dax fails with -EINVAL, XFS would turn DAX off (refused: -EOPNOTSUPP)", () => {
    const k = boot("sector");
    assert.equal(runToEnd(mountDaxFs(k, "ext4", "pmem0s", "/mnt/a")), -EINVAL);
    assert.equal(k.log.at(-1), "EXT4-fs (pmem0s): DAX unsupported by block device.");
    assert.equal(runToEnd(mountDaxFs(k, "xfs", "pmem0s", "/mnt/a")), -EOPNOTSUPP);
    assert.equal(k.log.at(-1), "XFS (pmem0s): DAX unsupported by block device. Turning off DAX.");
  });

  it("a block size other than PAGE_SIZE cannot do DAX; a second mount of the disk is -EBUSY", () => {
    const k = boot();
    assert.equal(runToEnd(mountDaxFs(k, "ext4", "pmem0", "/mnt/a", { blockSize: 1024 })), -EINVAL);
    assert.deepEqual(k.log.slice(-2), ["EXT4-fs (pmem0): unsupported blocksize for DAX", "EXT4-fs (pmem0): DAX unsupported by block device."]);
    mount(k, "xfs");
    assert.equal(runToEnd(mountDaxFs(k, "ext4", "pmem0", "/mnt/b")), -EBUSY);
  });

  it("umount is -EBUSY while a file is mapped", () => {
    const { k, fs } = setup("ext4");
    assert.equal(runToEnd(umountDaxFs(k, fs)), -EBUSY);
  });
});

describe("files and extents", () => {
  it("a 64 MiB file gets one 2 MiB-aligned extent after the metadata; a small file goes first fit", () => {
    const k = boot();
    const fs = mount(k, "ext4");
    const small = createFile(k, fs, "small", 12 * 1024);
    assert.ok(typeof small !== "number");
    assert.deepEqual(small.extents, [{ fileBlock: 0, diskBlock: 512, len: 3 }]);
    const big = createFile(k, fs, "big", 64 * MiB);
    assert.ok(typeof big !== "number");
    assert.deepEqual(big.extents, [{ fileBlock: 0, diskBlock: 1024, len: 16384 }]);
    assert.equal(createFile(k, fs, "big", 4096), -EEXIST);
    assert.equal(createFile(k, fs, "huge", 2 ** 30), -ENOSPC);
  });

  it("mmap of a file of at least 2 MiB is PMD-aligned (thp_get_unmapped_area); VM_HUGEPAGE and write-notify ops", () => {
    const { t, addr } = setup("xfs");
    assert.equal(addr % (2 * MiB), 0);
    const vma = vmaLookup(t.mm, addr);
    assert.equal(vma?.ops?.name, "xfs_file_vm_ops");
    assert.ok(vma?.ops?.pfnMkwrite && vma.ops.pageMkwrite);
  });
});

describe("faults (dax_iomap_pmd_fault / dax_iomap_pte_fault)", () => {
  for (const kind of ["xfs", "ext4"] as const) {
    it(`${kind}: a read fault installs a read-only devmap PMD and a DAX_PMD entry; the write goes through ->huge_fault and makes it writable`, () => {
      const { k, f, t, addr } = setup(kind);
      const r = fault(k, t, addr + 5 * PAGE, false);
      assert.deepEqual(r, { ret: VM_FAULT_NOPAGE, size: "pmd" });
      const m = mapped(t, addr);
      assert.equal(m?.level, "pmd");
      assert.equal(m.pfn, DATA_PFN + 512);
      assert.ok(m.flags.includes("devmap") && m.flags.includes("huge"));
      assert.ok(!m.flags.includes("write") && !m.flags.includes("special"));
      assert.deepEqual(daxEntries(f.mapping), [{ index: 0, entry: daxMakeEntry(DATA_PFN + 512, DAX_PMD) }]);
      assert.equal(fault(k, t, addr + 5 * PAGE, true).ret, VM_FAULT_NOPAGE);
      const w = mapped(t, addr);
      assert.equal(w?.pfn, DATA_PFN + 512);
      assert.ok(w.flags.includes("write") && w.flags.includes("dirty"));
    });
  }

  it("the PMD entry associates all 512 pages with the file (page->mapping, page->index); FS_DAX pages stay at refcount 1", () => {
    const { k, f, t, addr } = setup("xfs");
    fault(k, t, addr + 2 * MiB, false);
    const head = DATA_PFN + 512 + 512;
    for (const i of [0, 1, 511]) {
      const p = page(k, head + i);
      assert.equal(p.mapping, f.mapping.id);
      assert.equal(p.index, 512 + i);
      assert.equal(p.refcount, 1);
    }
    assert.equal(page(k, head + 512).mapping, 0);
  });

  it("a mapping too small for a PMD takes PTE faults: devmap + special, read-only until pfn_mkwrite", () => {
    const k = boot();
    const fs = mount(k, "ext4");
    createFile(k, fs, "data", 64 * MiB);
    const f = open(k, fs, "data");
    const t = proc(k, "app");
    const addr = map(k, t, f, MiB, 4 * MiB);
    assert.deepEqual(fault(k, t, addr + PAGE, false), { ret: VM_FAULT_NOPAGE, size: "pte" });
    const m = mapped(t, addr + PAGE);
    assert.equal(m?.level, "pte");
    assert.equal(m.pfn, DATA_PFN + 512 + 1024 + 1);
    assert.ok(m.flags.includes("devmap") && m.flags.includes("special"));
    assert.ok(!m.flags.includes("write"));
    const idx = 1024 + 1;
    assert.deepEqual(daxEntryAt(k, f.mapping, idx), { index: idx, entry: daxMakeEntry(m.pfn, 0) });
    assert.equal(page(k, m.pfn).index, idx);
    assert.equal(fault(k, t, addr + PAGE, true).ret, VM_FAULT_NOPAGE);
    assert.ok(mapped(t, addr + PAGE)?.flags.includes("write"));
  });

  it("a PMD fault over PTE entries falls back to PTEs (grab_mapping_entry conflict)", () => {
    const k = boot();
    const fs = mount(k, "xfs");
    createFile(k, fs, "data", 64 * MiB);
    const f = open(k, fs, "data");
    const a = proc(k, "a");
    const small = map(k, a, f, MiB);
    fault(k, a, small, false);
    const b = proc(k, "b");
    const big = map(k, b, f, 64 * MiB);
    assert.deepEqual(fault(k, b, big + 3 * PAGE, false), { ret: VM_FAULT_NOPAGE, size: "pte" });
    assert.equal(mapped(b, big + 3 * PAGE)?.level, "pte");
    assert.ok(daxEntries(f.mapping).every((e) => !daxIsPmdEntry(e.entry)));
    assert.equal(daxEntries(f.mapping).length, 2);
  });

  it("a PTE fault under an existing PMD entry maps the PMD's subpage and stores nothing new", () => {
    const k = boot();
    const fs = mount(k, "xfs");
    createFile(k, fs, "data", 64 * MiB);
    const f = open(k, fs, "data");
    const a = proc(k, "a");
    fault(k, a, map(k, a, f, 64 * MiB), false);
    const b = proc(k, "b");
    const small = map(k, b, f, MiB);
    fault(k, b, small + 7 * PAGE, false);
    assert.equal(mapped(b, small + 7 * PAGE)?.pfn, DATA_PFN + 512 + 7);
    assert.equal(daxEntries(f.mapping).length, 1);
    assert.equal(k.sanitizer.violations.length, 0);
  });

  it("a fault past i_size is SIGBUS; a private write fault (CoW) is not modelled and answers SIGBUS", () => {
    const k = boot();
    const fs = mount(k, "ext4");
    createFile(k, fs, "small", 8 * 1024);
    const f = open(k, fs, "small");
    const t = proc(k, "app");
    const a = map(k, t, f, 16 * 1024);
    assert.equal(fault(k, t, a + PAGE, false).ret, VM_FAULT_NOPAGE);
    assert.equal(fault(k, t, a + 2 * PAGE, false).ret, VM_FAULT_SIGBUS);
    const p = runToEnd(doMmap(k, t, f, { len: 8 * 1024, read: true, write: true, shared: false, offset: 0 }));
    assert.equal(fault(k, t, p, false).ret, VM_FAULT_NOPAGE);
    assert.equal(fault(k, t, p + PAGE, true).ret, VM_FAULT_SIGBUS);
  });
});

describe("GUP on an fsdax VMA", () => {
  it("FOLL_PIN adds GUP_PIN_COUNTING_BIAS to each FS_DAX page; unpin returns it to the idle 1", () => {
    const { k, t, addr } = setup("xfs");
    fault(k, t, addr, true);
    const g = runToEnd(getUserPagesFast(k, t, addr, 4, FOLL_PIN | FOLL_WRITE));
    assert.equal(g.ret, 4);
    assert.equal(g.fast, 4);
    assert.deepEqual(g.pages, [0, 1, 2, 3].map((i) => DATA_PFN + 512 + i));
    for (const p of g.pages) assert.equal(page(k, p).refcount, 1 + GUP_PIN_COUNTING_BIAS);
    runToEnd(unpinUserPages(k, g.pages));
    for (const p of g.pages) assert.equal(page(k, p).refcount, 1);
  });

  it("FOLL_LONGTERM is refused with -EOPNOTSUPP (vma_is_fsdax), fast and slow", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr, true);
    assert.equal(runToEnd(getUserPagesFast(k, t, addr, 1, FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)).ret, -EOPNOTSUPP);
    assert.equal(runToEnd(getUserPages(k, t, addr, 1, FOLL_PIN | FOLL_LONGTERM)).ret, -EOPNOTSUPP);
    assert.equal(page(k, DATA_PFN + 512).refcount, 1);
  });
});

describe("truncate and break layouts", () => {
  for (const kind of ["xfs", "ext4"] as const) {
    it(`${kind}: truncate while a page is pinned waits forever for refcount 1 (a hang naming the pin)`, () => {
      const { k, fs, t, addr } = setup(kind);
      fault(k, t, addr, true);
      runToEnd(getUserPagesFast(k, t, addr + PAGE, 1, FOLL_PIN | FOLL_WRITE));
      const path = truncateFile(k, fs, "data", 0);
      assert.throws(
        () => runToEnd(path),
        (e: unknown) =>
          e instanceof Hang &&
          e.at === `${kind === "xfs" ? "xfs_break_dax_layouts" : "ext4_break_layouts"}: wait_var_event(&page->_refcount, refcount == 1)` &&
          e.holder.startsWith(`pfn 0x${(DATA_PFN + 513).toString(16)} of /mnt/pmem/data (index 1): refcount 1025, 1 FOLL_PIN pin(s)`),
      );
      // dax_layout_busy_page_range unmapped first.
      assert.equal(mapped(t, addr), null);
      path.return(0);
    });
  }

  it("the sleeping truncate drops the invalidate lock (a fault gets in), and the unpin wakes it; then the entries are gone", () => {
    const { k, fs, f, t, addr } = setup("xfs");
    fault(k, t, addr, true);
    fault(k, t, addr + 4 * MiB, true);
    const pins = runToEnd(getUserPagesFast(k, t, addr + 4 * MiB, 1, FOLL_PIN | FOLL_WRITE)).pages;
    const path = truncateFile(k, fs, "data", 2 * MiB);
    const stuck = runUntilStuck(path);
    assert.equal(f.inode.invalidateLock.writer, null);
    assert.equal(fault(k, t, addr, false).ret, VM_FAULT_NOPAGE);
    runToEnd(unpinUserPages(k, pins));
    assert.ok(stuck.until());
    assert.equal(runToEnd(path), 0);
    assert.equal(f.inode.size, 2 * MiB);
    assert.deepEqual(
      daxEntries(f.mapping).map((e) => e.index),
      [0],
    );
    assert.equal(mapped(t, addr), null, "break layouts unmapped the whole file");
    assert.equal(page(k, DATA_PFN + 512 + 1024).mapping, 0);
    assert.deepEqual(f.inode.extents, [{ fileBlock: 0, diskBlock: 512, len: 512 }]);
    assert.equal(fault(k, t, addr + 4 * MiB, false).ret, VM_FAULT_SIGBUS);
    assert.equal(k.sanitizer.violations.length, 0);
  });

  it("a fault waits for the invalidate lock a truncate holds (down_read behind down_write)", () => {
    const { k, fs, t, addr } = setup("ext4");
    const path = truncateFile(k, fs, "data", 0);
    runUntilStep(path, "ext4_setattr: down_write");
    assert.throws(
      () => fault(k, t, addr, false),
      (e: unknown) => e instanceof Hang && e.at === "ext4_dax_huge_fault: down_read" && e.holder === "held for writing by truncate(/mnt/pmem/data)",
    );
    path.return(0);
  });

  it("truncate with nothing pinned: unmaps, deletes the entries past the end, frees the blocks", () => {
    const { k, fs, f, t, addr } = setup("ext4");
    fault(k, t, addr, true);
    fault(k, t, addr + 8 * MiB, true);
    assert.equal(runToEnd(truncateFile(k, fs, "data", 4 * MiB + 1)), 0);
    assert.deepEqual(
      daxEntries(f.mapping).map((e) => e.index),
      [0],
    );
    assert.equal(mapped(t, addr + 8 * MiB), null);
    assert.deepEqual(f.inode.extents, [{ fileBlock: 0, diskBlock: 512, len: 1025 }]);
    assert.equal(fs.free[0]?.[0], 512 + 1025);
  });

  it("a pin that outlives munmap is not waited for (mapping_mapped is false): truncate WARNs in dax_disassociate_entry", () => {
    const { k, fs, t, addr } = setup("xfs");
    fault(k, t, addr, true);
    const pins = runToEnd(getUserPagesFast(k, t, addr, 1, FOLL_PIN | FOLL_WRITE)).pages;
    assert.equal(runToEnd(doMunmap(k, t, addr, 64 * MiB)), 0);
    assert.equal(runToEnd(truncateFile(k, fs, "data", 0)), 0);
    const w = k.sanitizer.violations.find((v) => v.at === "dax_disassociate_entry");
    assert.equal(w?.kind, "warning");
    assert.match(w.detail, /WARN_ON_ONCE\(trunc && page_ref_count\(page\) > 1\): pfn 0x101400 refcount 1025/);
    assert.equal(page(k, pins[0]!).mapping, 0);
  });

  it("xfs after a shutdown: truncate, create and unlink are -EIO", () => {
    const { k, fs } = setup("xfs", { rmapbt: true });
    unbindPmem(k);
    assert.ok(fs.shutdown);
    assert.equal(runToEnd(truncateFile(k, fs, "data", 0)), -EIO);
    assert.equal(createFile(k, fs, "new", 4096), -EIO);
    assert.equal(runToEnd(unlinkFile(k, fs, "data")), -EIO);
  });
});

describe("unlink and eviction", () => {
  it("an unlinked file lives while mapped; the last reference evicts it (entries deleted, blocks freed)", () => {
    const { k, fs, f, t, addr } = setup("ext4");
    fault(k, t, addr, true);
    const freeBefore = fs.free.reduce((n, [s, e]) => n + e - s, 0);
    assert.equal(runToEnd(unlinkFile(k, fs, "data")), 0);
    assert.equal(daxEntries(f.mapping).length, 1);
    assert.equal(fault(k, t, addr + 2 * MiB, false).ret, VM_FAULT_NOPAGE);
    runToEnd(doMunmap(k, t, addr, 64 * MiB));
    runToEnd(closeFile(k, f));
    assert.equal(f.inode.mapping, null);
    assert.equal(f.mapping.iPages.size, 0);
    assert.equal(page(k, DATA_PFN + 512).mapping, 0);
    assert.equal(
      fs.free.reduce((n, [s, e]) => n + e - s, 0),
      freeBefore + 16384,
    );
  });

  it("iputMaybeEvict keeps a linked inode in core", () => {
    const { k, fs, f, t, addr } = setup("xfs");
    fault(k, t, addr, false);
    runToEnd(doMunmap(k, t, addr, 64 * MiB));
    runToEnd(closeFile(k, f));
    runToEnd(iputMaybeEvict(k, fs, f.inode));
    assert.equal(f.inode.mapping, f.mapping);
    assert.equal(daxEntries(f.mapping).length, 1);
  });
});

describe("pmem unbind under a mounted, mapped filesystem (6.1)", () => {
  it("ext4 registers no holder: unbind leaves the user PMD in place over a torn-down memmap; new faults are SIGBUS (-ENXIO from dax_direct_access)", () => {
    const { k, f, t, addr } = setup("ext4");
    fault(k, t, addr, true);
    unbindPmem(k);
    const m = mapped(t, addr);
    assert.equal(m?.level, "pmd");
    assert.equal(m.pfn, DATA_PFN + 512);
    assert.deepEqual(t.signals, []);
    assert.equal(fault(k, t, addr + 2 * MiB, false).ret, VM_FAULT_SIGBUS);
    // The real entry outlives the device; the failed fault leaves its DAX_EMPTY placeholder behind (as 6.1 does).
    assert.deepEqual(
      daxEntries(f.mapping).map((e) => [e.index, daxIsEmptyEntry(e.entry)]),
      [
        [0, false],
        [512, true],
      ],
    );
    assert.equal(k.sanitizer.errors().length, 0);
  });

  it("ext4: evicting the inode after unbind (munmap, close, umount) disassociates torn-down struct pages: use-after-free", () => {
    const { k, fs, f, t, addr } = setup("ext4");
    fault(k, t, addr, true);
    unbindPmem(k);
    runToEnd(doMunmap(k, t, addr, 64 * MiB));
    runToEnd(closeFile(k, f));
    assert.equal(runToEnd(umountDaxFs(k, fs)), 0);
    const uaf = k.sanitizer.errors()[0];
    assert.equal(uaf?.kind, "struct-page-use-after-free");
    assert.equal(uaf.at, "dax_disassociate_entry");
    assert.equal(uaf.pfn, DATA_PFN + 512);
  });

  it("del_gendisk evicts inodes nobody holds before the memmap goes: a closed, unmapped file leaves nothing behind", () => {
    const { k, fs, f, t, addr } = setup("ext4");
    fault(k, t, addr, true);
    runToEnd(doMunmap(k, t, addr, 64 * MiB));
    runToEnd(closeFile(k, f));
    unbindPmem(k);
    assert.equal(f.inode.mapping, null);
    assert.equal(runToEnd(umountDaxFs(k, fs)), 0);
    assert.equal(k.sanitizer.errors().length, 0);
  });

  it("xfs+rmapbt: kill_dax notifies XFS of the whole device: metadata shuts it down, mapped pages get PG_hwpoison, but without early kill nobody is unmapped or signalled", () => {
    const { k, fs, t, addr } = setup("xfs", { rmapbt: true });
    fault(k, t, addr, true);
    unbindPmem(k);
    assert.ok(fs.shutdown);
    assert.ok(k.log.includes("XFS (pmem0): Corruption of on-disk metadata (0x10) detected at xfs_dax_notify_ddev_failure (fs/xfs/xfs_notify_failure.c:169).  Shutting down filesystem."));
    assert.equal(mapped(t, addr)?.level, "pmd");
    assert.deepEqual(t.signals, []);
    assert.equal(fs.dax.holder, null, "kill_dax forgets the holder");
    assert.equal(fault(k, t, addr + 2 * MiB, false).ret, VM_FAULT_SIGBUS);
  });

  it("xfs+rmapbt with PR_MCE_KILL_EARLY: each mapped entry is zapped and signalled BUS_MCEERR_AO (lsb 21 for the PMD, 12 for a PTE)", () => {
    const { k, fs, f, t, addr } = setup("xfs", { rmapbt: true });
    const t2 = proc(k, "small");
    const small = map(k, t2, f, MiB, 8 * MiB);
    fault(k, t, addr, true);
    fault(k, t2, small + 3 * PAGE, false);
    prctlMceKill(k, t, "early");
    prctlMceKill(k, t2, "early");
    unbindPmem(k);
    assert.deepEqual(t.signals, [`SIGBUS BUS_MCEERR_AO addr=0x${addr.toString(16)} lsb=21`]);
    assert.deepEqual(t2.signals, [`SIGBUS BUS_MCEERR_AO addr=0x${(small + 3 * PAGE).toString(16)} lsb=12`]);
    assert.equal(mapped(t, addr), null);
    assert.equal(mapped(t2, small + 3 * PAGE), null);
    assert.ok(fs.shutdown);
  });

  it("xfs+rmapbt, kill_dax alone: every mapped entry's first page is marked PG_hwpoison; the device is dead after", () => {
    const { k, fs, t, addr } = setup("xfs", { rmapbt: true });
    fault(k, t, addr, true);
    fault(k, t, addr + 6 * MiB, false);
    runToEnd(killDax(fs.dax));
    for (const pfn of [DATA_PFN + 512, DATA_PFN + 512 + 1536]) assert.ok(k.memmap.get(pfn).flags & flagBit(PG_hwpoison));
    assert.equal(k.memmap.get(DATA_PFN + 513).flags & flagBit(PG_hwpoison), 0);
    assert.equal(k.memmap.get(DATA_PFN + 512 + 512).flags & flagBit(PG_hwpoison), 0);
    assert.equal(fs.dax.alive, false);
    assert.equal(mapped(t, addr)?.level, "pmd");
  });

  it("xfs without rmapbt: notify_failure is -EOPNOTSUPP, so unbind neither shuts it down nor touches the mapping", () => {
    const { k, fs, t, addr } = setup("xfs", { rmapbt: false });
    fault(k, t, addr, true);
    unbindPmem(k);
    assert.equal(fs.shutdown, false);
    assert.equal(mapped(t, addr)?.level, "pmd");
  });
});

describe("DAX entry encoding", () => {
  it("pfn << DAX_SHIFT | flags, with LOCKED and PMD bits", () => {
    const e = daxMakeEntry(0x101400, DAX_PMD | DAX_LOCKED);
    assert.equal(e, 0x101400 * 2 ** DAX_SHIFT + 3);
    assert.equal(daxToPfn(e), 0x101400);
    assert.ok(daxIsPmdEntry(e));
  });
});
