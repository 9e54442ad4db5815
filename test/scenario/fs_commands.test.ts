/**
 * The DAX filesystem steps (src/scenario/fs_commands.ts): what mkfs, mount, umount, xfs_io, truncate, rm and
 * sysctl print and return on the oracle's fsdax namespace, the arguments refused when a scenario is loaded,
 * the file resolver that lets `mmap` map a file, and truncate's hang as a path another step can wake.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import { daxFsLookup } from "../../src/kernel/fs/dax_fs.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import type { KernelPath } from "../../src/kernel/path.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { BadArguments, builtinCommands, type StepOutput } from "../../src/scenario/commands.ts";
import { tokenize } from "../../src/scenario/tokenize.ts";

const registry = builtinCommands();
const MiB = 2 ** 20;

function cmdOf(text: string) {
  const inv = tokenize(text);
  const cmd = registry.get(inv.argv[0]!);
  assert.ok(cmd, `command ${inv.argv[0]}`);
  return { cmd, inv };
}

function run(k: Kernel, text: string): StepOutput {
  const { cmd, inv } = cmdOf(text);
  cmd.check(inv);
  return cmd.run(k, inv, { where: "test" });
}

function check(text: string): void {
  const { cmd, inv } = cmdOf(text);
  cmd.check(inv);
}

function ok(k: Kernel, text: string): string {
  const out = run(k, text);
  assert.equal(out.rc, 0, `${text}: ${out.stdout}`);
  return out.stdout;
}

/** The oracle guest with namespace0.0 as fsdax map=dev (/dev/pmem0). */
function fsdax(): Kernel {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  ok(k, "ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev");
  return k;
}

/** fsdax with a filesystem of `kind` mounted at /mnt/pmem. */
function mounted(kind: "xfs" | "ext4", mkfsOpts = ""): Kernel {
  const k = fsdax();
  ok(k, `mkfs.${kind} -q ${mkfsOpts} /dev/pmem0`);
  ok(k, "mount -o dax /dev/pmem0 /mnt/pmem");
  return k;
}

const MOUNT_HINT = "       dmesg(1) may have more information after failed mount system call.\n";

describe("mkfs.xfs / mkfs.ext4", () => {
  it("-q prints nothing; mkfs.xfs refuses to overwrite a filesystem without -f, mkfs.ext4 (no tty) does not ask", () => {
    const k = fsdax();
    assert.deepEqual(run(k, "mkfs.ext4 -q /dev/pmem0"), { stdout: "", rc: 0 });
    assert.deepEqual(run(k, "mkfs.xfs -q /dev/pmem0"), {
      stdout: "mkfs.xfs: /dev/pmem0 appears to contain an existing filesystem (ext4).\nmkfs.xfs: Use the -f option to force overwrite.\n",
      rc: 1,
    });
    assert.deepEqual(run(k, "mkfs.xfs -qf -m rmapbt=1,reflink=1 /dev/pmem0"), { stdout: "", rc: 0 });
    assert.deepEqual(run(k, "mkfs.ext4 -q -F /dev/pmem0"), { stdout: "", rc: 0 });
  });

  it("a mounted disk: mke2fs's refusal; mkfs.xfs's, followed by its usage", () => {
    const k = mounted("xfs");
    assert.deepEqual(run(k, "mkfs.ext4 -q /dev/pmem0"), { stdout: "/dev/pmem0 is mounted; will not make a filesystem here!\n", rc: 1, errno: -16 });
    const x = run(k, "mkfs.xfs -q -f /dev/pmem0");
    assert.equal(x.rc, 1);
    const lines = x.stdout.split("\n");
    assert.equal(lines[0], "mkfs.xfs: /dev/pmem0 contains a mounted filesystem");
    assert.equal(lines[1], "Usage: mkfs.xfs");
    assert.equal(lines[2], "/* blocksize */\t\t[-b size=num]");
    assert.equal(lines.at(-2), "<value> is xxx (512 byte blocks).");
  });

  it("a disk that does not exist", () => {
    const k = fsdax();
    assert.deepEqual(run(k, "mkfs.ext4 -q /dev/pmem1"), { stdout: "The file /dev/pmem1 does not exist and no size was specified.\n", rc: 1, errno: -2 });
    assert.match(run(k, "mkfs.xfs -q /dev/pmem1").stdout, /^\/dev\/pmem1: No such file or directory\nUsage: mkfs\.xfs\n/);
  });

  it("arguments: -q is required (the geometry report is not modelled), one pmem device, -m suboptions", () => {
    assert.throws(() => check("mkfs.xfs /dev/pmem0"), /-q: the model prints no geometry/);
    assert.throws(() => check("mkfs.ext4 /dev/pmem0"), /-q:/);
    assert.throws(() => check("mkfs.xfs -q /dev/sda"), /not a pmem block device/);
    assert.throws(() => check("mkfs.xfs -q -m crc=0 /dev/pmem0"), /-m: 'crc=0' is not modelled/);
    assert.throws(() => check("mkfs.xfs -q -x /dev/pmem0"), /unknown option '-x'/);
    assert.throws(() => check("mkfs.ext4 -q"), BadArguments);
    check("mkfs.xfs -q -f -K -mrmapbt=1 /dev/pmem0s");
  });
});

describe("mount / umount", () => {
  it("mount -o dax prints nothing; the fs type comes from the disk; the kernel log says what the fs said", () => {
    const k = fsdax();
    ok(k, "mkfs.xfs -q /dev/pmem0");
    assert.deepEqual(run(k, "mount -o dax /dev/pmem0 /mnt/pmem/"), { stdout: "", rc: 0 });
    assert.equal(k.log.at(-3), "XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk");
    assert.equal(daxFsLookup(k, "/mnt/pmem/x"), null);
    assert.deepEqual(run(k, "umount /mnt/pmem"), { stdout: "", rc: 0 });
    assert.equal(k.log.at(-1), "XFS (pmem0): Unmounting Filesystem");
  });

  it("-t that is not what the disk holds, or an unformatted disk: 'wrong fs type…', exit 32", () => {
    const k = fsdax();
    const wrong = `mount: /mnt/pmem: wrong fs type, bad option, bad superblock on /dev/pmem0, missing codepage or helper program, or other error.\n${MOUNT_HINT}`;
    assert.deepEqual(run(k, "mount -o dax /dev/pmem0 /mnt/pmem"), { stdout: wrong, rc: 32, errno: -22 });
    assert.deepEqual(run(k, "mount -t xfs -o dax /dev/pmem0 /mnt/pmem"), { stdout: wrong, rc: 32, errno: -22 });
    assert.equal(k.log.at(-1), "XFS (pmem0): Invalid superblock magic number");
    ok(k, "mkfs.xfs -q /dev/pmem0");
    assert.equal(run(k, "mount -t ext4 -o dax /dev/pmem0 /mnt/pmem").rc, 32);
    assert.equal(k.log.at(-1), "EXT4-fs (pmem0): VFS: Can't find ext4 filesystem");
    assert.equal(run(k, "mount --types=xfs --options=dax=always /dev/pmem0 /mnt/pmem").rc, 0);
  });

  it("a missing disk; a disk already mounted; a BTT disk without DAX", () => {
    const k = mounted("ext4");
    assert.deepEqual(run(k, "mount -o dax /dev/pmem1 /mnt/b"), { stdout: `mount: /mnt/b: special device /dev/pmem1 does not exist.\n${MOUNT_HINT}`, rc: 32, errno: -2 });
    assert.deepEqual(run(k, "mount -o dax /dev/pmem0 /mnt/b"), { stdout: `mount: /mnt/b: /dev/pmem0 already mounted on /mnt/pmem.\n${MOUNT_HINT}`, rc: 32, errno: -16 });
    const s = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    ok(s, "ndctl create-namespace -f -e namespace0.0 --mode=sector");
    ok(s, "mkfs.ext4 -q /dev/pmem0s");
    assert.equal(run(s, "mount -o dax /dev/pmem0s /mnt/a").rc, 32);
    assert.equal(s.log.at(-1), "EXT4-fs (pmem0s): DAX unsupported by block device.");
    ok(s, "mkfs.xfs -q -f /dev/pmem0s");
    assert.match(run(s, "mount -o dax /dev/pmem0s /mnt/a").stdout, /zonedev: XFS turned DAX off for \/dev\/pmem0s/);
  });

  it("umount: by mount point or device; busy while a file is mapped; not mounted", () => {
    const k = mounted("ext4");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4M' /mnt/pmem/f");
    ok(k, "process app");
    ok(k, "mmap app /mnt/pmem/f 4M");
    assert.deepEqual(run(k, "umount /dev/pmem0"), { stdout: "umount: /mnt/pmem: target is busy.\n", rc: 32, errno: -16 });
    ok(k, "exit app");
    assert.deepEqual(run(k, "umount /dev/pmem0"), { stdout: "", rc: 0 });
    assert.deepEqual(run(k, "umount /mnt/pmem"), { stdout: "umount: /mnt/pmem: not mounted.\n", rc: 32, errno: -22 });
  });

  it("arguments: -o dax is required, two paths, known types", () => {
    assert.throws(() => check("mount /dev/pmem0 /mnt"), /-o dax: the model mounts only with DAX/);
    assert.throws(() => check("mount -o dax=never /dev/pmem0 /mnt"), /'dax=never' is not modelled/);
    assert.throws(() => check("mount -t btrfs -o dax /dev/pmem0 /mnt"), /'btrfs' is not modelled/);
    assert.throws(() => check("mount -o dax /dev/pmem0"), /expected a device and a mount point/);
    assert.throws(() => check("mount -o dax /dev/pmem0 mnt"), /must be an absolute path/);
    assert.throws(() => check("umount"), /expected one mount point or device/);
  });
});

describe("files: xfs_io, truncate, rm", () => {
  it("xfs_io -f pwrite creates a file with written extents; without -f a missing file is open's ENOENT", () => {
    const k = mounted("xfs");
    assert.deepEqual(run(k, "xfs_io -f -c 'pwrite -q 0 3M' -c fsync /mnt/pmem/f"), { stdout: "", rc: 0 });
    const f = daxFsLookup(k, "/mnt/pmem/f");
    assert.equal(f?.inode.size, 3 * MiB);
    assert.deepEqual(f.inode.extents, [{ fileBlock: 0, diskBlock: 512, len: 768 }]);
    assert.equal(f.inode.opens, 0, "xfs_io closed its descriptor");
    ok(k, "xfs_io -c 'pwrite -q 2M 2M' -c 'truncate 5m' /mnt/pmem/f");
    assert.equal(f.inode.size, 5 * MiB);
    assert.deepEqual(run(k, "xfs_io -c 'pwrite -q 0 4k' /mnt/pmem/nope"), { stdout: "/mnt/pmem/nope: No such file or directory\n", rc: 1, errno: -2 });
    assert.deepEqual(run(k, "xfs_io -f -c 'pwrite -q 0 4k' /mnt/elsewhere/f"), { stdout: "/mnt/elsewhere/f: No such file or directory\n", rc: 1, errno: -2 });
    assert.deepEqual(run(k, "xfs_io -c 'pwrite -q 0 2g' /mnt/pmem/f"), { stdout: "pwrite: No space left on device\n", rc: 1, errno: -28 });
  });

  it("xfs_io arguments: pwrite needs -q (its timing line is not modelled); only pwrite, truncate, fsync", () => {
    assert.throws(() => check("xfs_io -f -c 'pwrite 0 4M' /mnt/f"), /give -q/);
    assert.throws(() => check("xfs_io -c 'falloc 0 4M' /mnt/f"), /only the xfs_io commands pwrite, truncate and fsync/);
    assert.throws(() => check("xfs_io /mnt/f"), /give at least one -c/);
    assert.throws(() => check("xfs_io -c 'pwrite -q 0 lots' /mnt/f"), /pwrite length: 'lots' is not a number/);
    check("xfs_io -f -c 'pwrite -q -S 0xab -b 1m 0x1000 64k' -c 'truncate 0' /mnt/f");
  });

  it("truncate -s: shrink, grow, relative sizes, create (and -c not), errors as coreutils prints them", () => {
    const k = mounted("ext4");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4M' /mnt/pmem/f");
    const f = daxFsLookup(k, "/mnt/pmem/f")!.inode;
    assert.deepEqual(run(k, "truncate -s 1M /mnt/pmem/f"), { stdout: "", rc: 0 });
    assert.equal(f.size, MiB);
    ok(k, "truncate -s +1M /mnt/pmem/f");
    assert.equal(f.size, 2 * MiB);
    ok(k, "truncate --size=-3M /mnt/pmem/f");
    assert.equal(f.size, 0);
    ok(k, "truncate -s 8KB /mnt/pmem/g");
    assert.equal(daxFsLookup(k, "/mnt/pmem/g")?.inode.size, 8000);
    ok(k, "truncate -c -s 1M /mnt/pmem/h");
    assert.equal(daxFsLookup(k, "/mnt/pmem/h"), null);
    assert.deepEqual(run(k, "truncate -s 0 /mnt/pmem /mnt/pmem/d/x"), {
      stdout: "truncate: cannot open '/mnt/pmem' for writing: Is a directory\ntruncate: cannot open '/mnt/pmem/d/x' for writing: No such file or directory\n",
      rc: 1,
      errno: -21,
    });
    assert.deepEqual(run(k, "truncate -s 2G /mnt/pmem/f"), { stdout: "truncate: failed to truncate '/mnt/pmem/f' at 2147483648 bytes: No space left on device\n", rc: 1, errno: -28 });
    assert.throws(() => check("truncate /mnt/pmem/f"), /give the size once/);
    assert.throws(() => check("truncate -s 1X /mnt/pmem/f"), /invalid number '1X'/);
  });

  it("rm: unlink; -f ignores a missing file; a directory is refused", () => {
    const k = mounted("xfs");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4k' /mnt/pmem/f");
    assert.deepEqual(run(k, "rm /mnt/pmem/f"), { stdout: "", rc: 0 });
    assert.equal(daxFsLookup(k, "/mnt/pmem/f"), null);
    assert.deepEqual(run(k, "rm /mnt/pmem/f /mnt/pmem"), {
      stdout: "rm: cannot remove '/mnt/pmem/f': No such file or directory\nrm: cannot remove '/mnt/pmem': Is a directory\n",
      rc: 1,
      errno: -2,
    });
    assert.deepEqual(run(k, "rm -f /mnt/pmem/f"), { stdout: "", rc: 0 });
  });

  it("a shut-down XFS answers EIO to open, truncate and rm", () => {
    const k = mounted("xfs", "-m rmapbt=1");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4M' /mnt/pmem/f");
    ok(k, "echo pfn0.0 > /sys/bus/nd/drivers/nd_pmem/unbind");
    assert.deepEqual(run(k, "xfs_io -c 'pwrite -q 0 4k' /mnt/pmem/f"), { stdout: "/mnt/pmem/f: Input/output error\n", rc: 1, errno: -5 });
    assert.equal(run(k, "truncate -s 0 /mnt/pmem/f").stdout, "truncate: cannot open '/mnt/pmem/f' for writing: Input/output error\n");
    assert.equal(run(k, "rm -f /mnt/pmem/g").stdout, "rm: cannot remove '/mnt/pmem/g': Input/output error\n");
  });
});

describe("mapping files: the resolver, and truncate against a pin", () => {
  it("mmap maps a file of a DAX mount; the mapping alone holds it (the descriptor is closed after mmap)", () => {
    const k = mounted("ext4");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4M' /mnt/pmem/f");
    ok(k, "process app");
    assert.equal(ok(k, "mmap app /mnt/pmem/f 4M --as buf"), "0x7ffff7a00000\n");
    const f = daxFsLookup(k, "/mnt/pmem/f")!;
    assert.equal(f.inode.opens, 1);
    assert.equal(ok(k, "access app buf --write"), "fault 0x7ffff7a00000 write: pmd VM_FAULT_NOPAGE\n");
    ok(k, "rm /mnt/pmem/f");
    assert.ok(f.fs.orphans.has(f.inode), "unlinked, still mapped");
    ok(k, "munmap app buf 2M");
    assert.ok(f.inode.mapping, "half still mapped");
    ok(k, "munmap app buf+2M 2M");
    assert.equal(f.inode.opens, 0);
    assert.equal(f.inode.mapping, null, "evicted at the last munmap");
    assert.equal(f.fs.orphans.size, 0);
    assert.deepEqual(run(k, "mmap app /mnt/pmem/f 4M"), { stdout: "/mnt/pmem/f: No such file or directory\n", rc: -2, errno: -2 });
  });

  it("truncate while a page is pinned hangs; run as a path, the unpin step wakes it and it finishes", () => {
    const k = mounted("xfs");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4M' /mnt/pmem/f");
    ok(k, "process app");
    ok(k, "mmap app /mnt/pmem/f 4M --as buf");
    ok(k, "access app buf --write");
    assert.match(ok(k, "gup app buf 1 --pin --write --as dma"), /= 1 \(1 by the fast path\), held as dma/);
    const hung = run(k, "truncate -s 0 /mnt/pmem/f");
    assert.equal(hung.rc, -1);
    assert.equal(hung.hang?.at, "xfs_break_dax_layouts: wait_var_event(&page->_refcount, refcount == 1)");
    assert.match(hung.hang.holder, /^pfn 0x101400 of \/mnt\/pmem\/f \(index 0\): refcount 1025, 1 FOLL_PIN pin\(s\)/);

    const { cmd, inv } = cmdOf("truncate -s 0 /mnt/pmem/f");
    const path: KernelPath<StepOutput> = cmd.path(k, inv, { where: "test" });
    let blocked = false;
    for (;;) {
      const r = path.next();
      assert.ok(!r.done, "blocks before finishing");
      if (r.value.kind === "block" && !r.value.until()) {
        blocked = true;
        break;
      }
    }
    assert.ok(blocked);
    assert.equal(ok(k, "unpin dma"), "unpin_user_pages: 1 pages\n");
    let r = path.next();
    while (!r.done) r = path.next();
    assert.deepEqual(r.value, { stdout: "", rc: 0 });
    assert.equal(daxFsLookup(k, "/mnt/pmem/f")?.inode.size, 0);
  });
});

describe("sysctl and signals", () => {
  it("sysctl reads and writes vm.memory_failure_early_kill as procps prints it", () => {
    const k = fsdax();
    assert.deepEqual(run(k, "sysctl vm.memory_failure_early_kill"), { stdout: "vm.memory_failure_early_kill = 0\n", rc: 0 });
    assert.deepEqual(run(k, "sysctl -w vm.memory_failure_early_kill=1"), { stdout: "vm.memory_failure_early_kill = 1\n", rc: 0 });
    assert.deepEqual(run(k, "sysctl vm.memory_failure_early_kill"), { stdout: "vm.memory_failure_early_kill = 1\n", rc: 0 });
    assert.throws(() => check("sysctl vm.swappiness"), /only vm\.memory_failure_early_kill is modelled/);
    assert.throws(() => check("sysctl -w vm.memory_failure_early_kill=2"), /outside 0\.\.1/);
    assert.throws(() => check("sysctl -w vm.memory_failure_early_kill"), /-w: give/);
  });

  it("signals lists what a process was sent; an unknown process is an error", () => {
    const k = mounted("xfs", "-m rmapbt=1");
    ok(k, "xfs_io -f -c 'pwrite -q 0 4M' /mnt/pmem/f");
    ok(k, "process app");
    ok(k, "mmap app /mnt/pmem/f 4M --as buf");
    ok(k, "access app buf+2M --write");
    ok(k, "sysctl -w vm.memory_failure_early_kill=1");
    assert.equal(ok(k, "signals app"), "");
    ok(k, "echo pfn0.0 > /sys/bus/nd/drivers/nd_pmem/unbind");
    assert.equal(ok(k, "signals app"), "SIGBUS BUS_MCEERR_AO addr=0x7ffff7c00000 lsb=21\n");
    assert.deepEqual(run(k, "signals nobody"), { stdout: "nobody: no such process\n", rc: 1 });
  });
});
