/**
 * A DAX file's lifetime and contents (src/kernel/fs/dax_fs.ts): the struct file's references — the
 * descriptor's and the mappings' (MappedFile.release, called by munmap/exit when the last VMA mapping the
 * file goes, as remove_vma's fput) — so a closed but mapped file lives until munmap, as in the kernel; the
 * steps' resolver (open, mmap, close folded into one); write(2) allocating written extents; mkfs's on-disk
 * type and mount(2) checking it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { EBUSY, EINVAL, EIO, ENOENT, ENOSPC, ENXIO } from "../../../src/kernel/errno.ts";
import {
  closeFile,
  createFile,
  type DaxFile,
  type DaxFs,
  type DaxFsKind,
  daxFsLookup,
  daxFsOpenPath,
  mkfsDaxFs,
  mountDaxFs,
  mountDisk,
  onDiskFs,
  openFile,
  unlinkFile,
  writeFile,
} from "../../../src/kernel/fs/dax_fs.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { handleMmFault } from "../../../src/kernel/mm/memory.ts";
import { type Task, VM_FAULT_NOPAGE, vmaLookup } from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap, doMunmap, exitMmap } from "../../../src/kernel/mm/mmap.ts";
import { runToEnd } from "../../../src/kernel/path.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";

const MiB = 2 ** 20;

function boot(): Kernel {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=fsdax", "--map=dev"]).rc, 0);
  return k;
}

function mount(k: Kernel, kind: DaxFsKind = "ext4"): DaxFs {
  const fs = runToEnd(mountDaxFs(k, kind, "pmem0", "/mnt/pmem"));
  assert.ok(typeof fs !== "number");
  return fs;
}

function open(k: Kernel, fs: DaxFs, name: string): DaxFile {
  const f = openFile(k, fs, name);
  assert.ok(typeof f !== "number", `open: ${f}`);
  return f;
}

function proc(k: Kernel, comm = "app"): Task {
  const t = createProcess(k, comm);
  assert.ok(typeof t !== "number");
  return t;
}

function map(k: Kernel, t: Task, f: DaxFile, len: number): number {
  const addr = runToEnd(doMmap(k, t, f, { len, read: true, write: true, shared: true, offset: 0 }));
  assert.ok(addr > 0, `mmap: ${addr}`);
  return addr;
}

function freeBlocks(fs: DaxFs): number {
  return fs.free.reduce((n, [s, e]) => n + e - s, 0);
}

describe("struct file references: the descriptor and the mappings", () => {
  it("open: one reference; the first mmap adds the mappings' one; close then munmap runs __fput", () => {
    const k = boot();
    const fs = mount(k);
    createFile(k, fs, "f", 4 * MiB);
    const f = open(k, fs, "f");
    assert.equal(f.refs, 1);
    assert.equal(f.inode.opens, 1);
    const t = proc(k);
    const a = map(k, t, f, 4 * MiB);
    map(k, t, f, 2 * MiB);
    assert.equal(f.refs, 2, "one reference for all of the file's VMAs");
    runToEnd(closeFile(k, f));
    assert.equal(f.refs, 1);
    assert.equal(f.inode.opens, 1, "closed but mapped: the file lives");
    assert.equal(runToEnd(doMunmap(k, t, a, 4 * MiB)), 0);
    assert.equal(f.refs, 1, "another VMA still maps it");
    runToEnd(exitMmap(k, t));
    assert.equal(f.refs, 0);
    assert.equal(f.inode.opens, 0);
    assert.equal(f.inode.mapping, f.mapping, "a linked inode stays in core");
  });

  it("an unlinked file that is closed but mapped is evicted by the munmap of its last VMA (blocks freed then)", () => {
    const k = boot();
    const fs = mount(k);
    createFile(k, fs, "f", 4 * MiB);
    const free0 = freeBlocks(fs);
    const f = open(k, fs, "f");
    const t = proc(k);
    const a = map(k, t, f, 4 * MiB);
    assert.equal(runToEnd(handleMmFault(k, vmaLookup(t.mm, a), a, true)).ret, VM_FAULT_NOPAGE);
    runToEnd(closeFile(k, f));
    assert.equal(runToEnd(unlinkFile(k, fs, "f")), 0);
    assert.ok(fs.orphans.has(f.inode));
    assert.equal(freeBlocks(fs), free0);
    // A partial munmap splits the VMA: the tail still maps the file.
    runToEnd(doMunmap(k, t, a, 2 * MiB));
    assert.ok(fs.orphans.has(f.inode));
    runToEnd(doMunmap(k, t, a + 2 * MiB, 2 * MiB));
    assert.equal(fs.orphans.size, 0);
    assert.equal(f.inode.mapping, null);
    assert.equal(f.mapping.iPages.size, 0, "evict deleted the DAX entries");
    assert.equal(freeBlocks(fs), free0 + 1024);
    assert.equal(k.sanitizer.violations.length, 0);
  });

  it("two processes map the same struct file: it is released once, after both are gone", () => {
    const k = boot();
    const fs = mount(k, "xfs");
    createFile(k, fs, "f", 2 * MiB);
    const f = open(k, fs, "f");
    const a = proc(k, "a");
    const b = proc(k, "b");
    map(k, a, f, 2 * MiB);
    map(k, b, f, 2 * MiB);
    runToEnd(closeFile(k, f));
    runToEnd(exitMmap(k, a));
    assert.equal(f.refs, 1);
    runToEnd(exitMmap(k, b));
    assert.equal(f.refs, 0);
    assert.equal(f.inode.opens, 0);
  });

  it("the steps' resolver: no reference until mmap succeeds (a failed mmap leaves nothing open); munmap releases it", () => {
    const k = boot();
    const fs = mount(k);
    createFile(k, fs, "f", 2 * MiB);
    const inode = fs.inodes.get("f")!;
    assert.equal(daxFsOpenPath(k, "/mnt/pmem/nope"), null);
    const bad = daxFsOpenPath(k, "/mnt/pmem/f");
    assert.ok(bad);
    const t = proc(k);
    assert.equal(runToEnd(doMmap(k, t, bad, { len: 2 * MiB, read: true, write: true, shared: true, offset: 123 })), -EINVAL);
    assert.equal(inode.opens, 0);
    const f = daxFsOpenPath(k, "/mnt/pmem/f");
    assert.ok(f);
    const a = map(k, t, f, 2 * MiB);
    assert.equal(inode.opens, 1);
    assert.equal(f.refs, 1);
    runToEnd(doMunmap(k, t, a, 2 * MiB));
    assert.equal(inode.opens, 0);
    assert.equal(f.refs, 0);
  });

  it("XFS after a shutdown: open is -EIO, for a missing name too (xfs_lookup)", () => {
    const k = boot();
    const fs = mount(k, "xfs");
    createFile(k, fs, "f", 4096);
    fs.shutdown = true;
    assert.equal(openFile(k, fs, "f"), -EIO);
    assert.equal(openFile(k, fs, "g"), -EIO);
    assert.equal(runToEnd(unlinkFile(k, fs, "g")), -EIO);
    assert.equal(daxFsOpenPath(k, "/mnt/pmem/f"), null);
  });
});

describe("write(2): dax_iomap_rw", () => {
  it("writing past the end allocates written blocks (2 MiB-aligned runs when large) and raises i_size", () => {
    const k = boot();
    const fs = mount(k);
    const inode = createFile(k, fs, "f", 0);
    assert.ok(typeof inode !== "number");
    const f = open(k, fs, "f");
    assert.equal(runToEnd(writeFile(k, f, 0, 4 * MiB)), 4 * MiB);
    assert.equal(inode.size, 4 * MiB);
    assert.deepEqual(inode.extents, [{ fileBlock: 0, diskBlock: 512, len: 1024 }]);
    assert.equal(runToEnd(writeFile(k, f, MiB, 4096)), 4096, "inside the file: nothing to allocate");
    assert.equal(inode.size, 4 * MiB);
    assert.equal(runToEnd(writeFile(k, f, 4 * MiB + 100, 10)), 10);
    assert.equal(inode.size, 4 * MiB + 110);
    assert.equal(inode.extents.reduce((n, x) => n + x.len, 0), 1025);
    assert.equal(runToEnd(writeFile(k, f, 0, 2 ** 31)), -ENOSPC);
    assert.equal(inode.size, 4 * MiB + 110);
  });

  it("-EIO on a shut-down XFS, -ENXIO once the dax_device is dead", () => {
    const k = boot();
    const fs = mount(k, "xfs");
    createFile(k, fs, "f", 0);
    const f = open(k, fs, "f");
    fs.dax.alive = false;
    assert.equal(runToEnd(writeFile(k, f, 0, 4096)), -ENXIO);
    fs.shutdown = true;
    assert.equal(runToEnd(writeFile(k, f, 0, 4096)), -EIO);
    assert.equal(f.inode.size, 0);
  });
});

describe("mkfs and mount(2) of what it wrote", () => {
  it("mount checks the on-disk type: none or another is -EINVAL with the fs's message; a match mounts with its features", () => {
    const k = boot();
    assert.equal(onDiskFs(k, "pmem0"), null);
    assert.equal(runToEnd(mountDisk(k, "pmem0", "/mnt/pmem", null)), -EINVAL);
    assert.equal(runToEnd(mountDisk(k, "pmem0", "/mnt/pmem", "xfs")), -EINVAL);
    assert.equal(k.log.at(-1), "XFS (pmem0): Invalid superblock magic number");
    assert.equal(mkfsDaxFs(k, "pmem0", "xfs", { rmapbt: true }), 0);
    assert.deepEqual(onDiskFs(k, "pmem0"), { kind: "xfs", rmapbt: true });
    assert.equal(runToEnd(mountDisk(k, "pmem0", "/mnt/pmem", "ext4")), -EINVAL);
    assert.equal(k.log.at(-1), "EXT4-fs (pmem0): VFS: Can't find ext4 filesystem");
    const fs = runToEnd(mountDisk(k, "pmem0", "/mnt/pmem", null));
    assert.ok(typeof fs !== "number");
    assert.equal(fs.kind, "xfs");
    assert.equal(fs.rmapbt, true);
    assert.equal(mkfsDaxFs(k, "pmem0", "ext4"), -EBUSY);
    assert.equal(runToEnd(mountDisk(k, "pmem0", "/mnt/other", null)), -EBUSY);
    assert.equal(mkfsDaxFs(k, "pmem9", "ext4"), -ENOENT);
    assert.equal(runToEnd(mountDisk(k, "pmem9", "/mnt/x", "ext4")), -ENOENT);
    assert.ok(daxFsLookup(k, "/mnt/pmem/x") === null);
  });
});
