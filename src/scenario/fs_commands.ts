/**
 * Scenario steps for DAX filesystems on pmem (issue 5), spelled as users type them and printing what the tools
 * print (xfsprogs 6.1, e2fsprogs 1.47, util-linux 2.38, coreutils 9.1, procps 4: Debian 12's, the oracle's):
 *
 *   mkfs.xfs -q [-f] [-m rmapbt=0|1] /dev/pmem0     mkfs.ext4 -q [-F] /dev/pmem0
 *   mount [-t xfs|ext4] -o dax /dev/pmem0 /mnt/pmem  umount /mnt/pmem
 *   xfs_io -f -c 'pwrite -q 0 64M' /mnt/pmem/data    # create and write: every block allocated and written
 *   truncate -s 0 /mnt/pmem/data                     # breaks DAX layouts first: waits for pinned pages
 *   rm /mnt/pmem/data
 *   sysctl -w vm.memory_failure_early_kill=1         # whom memory_failure (and unbind under XFS) signals
 *   signals app                                      # model-only: the signals a process was sent
 *
 * A file on a mounted DAX filesystem is mapped with the user steps' `mmap PROC /mnt/pmem/data SIZE`: the
 * resolver registered here opens it, maps it and closes the descriptor, so the mapping alone holds the file.
 *
 * Only files directly under a DAX mount point exist (no directories, no other filesystems), and only files
 * whose blocks are written (no holes, no unwritten extents: reading those faults in the zero page, which the
 * model does not have — hence xfs_io pwrite rather than fallocate). Tools whose normal output carries timings
 * or random UUIDs (mkfs, xfs_io pwrite) must be run quiet (-q), which is exact.
 */

import { EBUSY, EINVAL, EIO, ENOENT, EOPNOTSUPP, type Errno } from "../kernel/errno.ts";
import {
  closeFile,
  createFile,
  type DaxFile,
  type DaxFs,
  type DaxFsKind,
  daxFsAt,
  daxFsOpenPath,
  diskFreeForMkfs,
  mkfsDaxFs,
  mountDisk,
  onDiskFs,
  openFile,
  truncateFile,
  umountDaxFs,
  unlinkFile,
  writeFile,
} from "../kernel/fs/dax_fs.ts";
import { lookupMount, mountedSupers } from "../kernel/fs/super.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { sideTable } from "../kernel/lib/rewind.ts";
import { setMemoryFailureEarlyKill } from "../kernel/mm/memory_failure.ts";
import { userland } from "../kernel/mm/mmap.ts";
import { BadArguments, defineCommand, definePathCommand, noRedirect, type ScenarioCommand, type StepOutput } from "./commands.ts";
import { EISDIR, strerror as strerrorBase } from "./errno_text.ts";
import type { Invocation } from "./tokenize.ts";
import { registerFileResolver } from "./user_commands.ts";

/** util-linux's MNT_EX_FAIL: mount(2) / umount(2) failed. */
const MNT_EX_FAIL = 32;

/** glibc's strerror for the errnos these tools meet that the shared table lacks. */
function strerror(err: Errno): string {
  if (Math.abs(err) === EIO) return "Input/output error";
  return strerrorBase(err);
}

/** The step state beside the kernel: the sysctl's value as the steps set it. */
const EARLY_KILL = sideTable<Kernel, boolean>();

// ---------------------------------------------------------------------------------------------------------
// Argument helpers

/** An absolute path as open(2) gets it: repeated and trailing slashes dropped; '.' and '..' refused. */
function absPath(what: string, p: string): string {
  if (!p.startsWith("/")) throw new BadArguments(`${what}: '${p}' must be an absolute path (steps have no working directory)`);
  const norm = p.replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
  if (norm.split("/").some((c) => c === "." || c === "..")) throw new BadArguments(`${what}: '${p}': '.' and '..' are not resolved; give the path itself`);
  return norm;
}

/** /dev/pmemN (or a BTT's /dev/pmemNs): the disk name. */
function pmemDevice(what: string, p: string): string {
  const m = /^\/dev\/(pmem[\w.]+)$/.exec(p);
  if (!m) throw new BadArguments(`${what}: '${p}' is not a pmem block device (only /dev/pmem* disks are modelled)`);
  return m[1]!;
}

/**
 * getopt(3) for short options: `flags` take no value, `valued` take one (`-m rmapbt=1` or `-mrmapbt=1`);
 * combined flags (`-qf`), `--` ends the options. Long options are refused unless listed in `long`
 * (name → the short option it stands for; a trailing "=" takes a value).
 */
function getopt(inv: Invocation, flags: string, valued: string, long: Record<string, string> = {}): { opts: Array<[string, string]>; args: string[] } {
  noRedirect(inv);
  const opts: Array<[string, string]> = [];
  const args: string[] = [];
  const rest = inv.argv.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--") {
      args.push(...rest.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a : a.slice(0, eq);
      const short = long[name] ?? long[`${name}=`];
      if (short === undefined) throw new BadArguments(`unknown option '${name}'`);
      if (long[`${name}=`] !== undefined) {
        const v = eq < 0 ? rest[++i] : a.slice(eq + 1);
        if (v === undefined) throw new BadArguments(`${name} needs a value`);
        opts.push([short, v]);
      } else {
        if (eq >= 0) throw new BadArguments(`${name} takes no value`);
        opts.push([short, ""]);
      }
      continue;
    }
    if (!a.startsWith("-") || a === "-") {
      args.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      if (valued.includes(c)) {
        const v = j + 1 < a.length ? a.slice(j + 1) : rest[++i];
        if (v === undefined) throw new BadArguments(`-${c} needs a value`);
        opts.push([c, v]);
        break;
      }
      if (!flags.includes(c)) throw new BadArguments(`unknown option '-${c}'`);
      opts.push([c, ""]);
    }
  }
  return { opts, args };
}

function has(opts: Array<[string, string]>, c: string): boolean {
  return opts.some(([o]) => o === c);
}

/** coreutils' quoteaf (shell-escape-always): '/mnt/pmem/data'. */
function quoteaf(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** A size as xfs_io's cvtnum reads it: decimal or 0x hex, with an optional k/m/g/t/p suffix (binary units). */
function cvtnum(what: string, v: string): number {
  const m = /^(0x[0-9a-f]+|\d+)([kmgtp]?)$/i.exec(v);
  if (!m) throw new BadArguments(`${what}: '${v}' is not a number (xfs_io takes 4096, 0x1000, 64k, 4m, 1g)`);
  const unit = 1024 ** " kmgtp".indexOf((m[2] || " ").toLowerCase());
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new BadArguments(`${what}: '${v}' is too large`);
  return n;
}

/** truncate -s SIZE (coreutils): [+|-]N with K M G T P E (×1024; KiB too) or KB MB … (×1000). */
function truncateSize(v: string): { rel: "" | "+" | "-"; bytes: number } {
  const m = /^([+-]?)(\d+)(?:([kKmMgGtTPE])(B|iB)?)?$/.exec(v);
  if (!m) throw new BadArguments(`-s: invalid number '${v}' (give e.g. 0, 4096, 4M, +2M, -1M)`);
  const exp = m[3] ? " KMGTPE".indexOf(m[3].toUpperCase()) : 0;
  const bytes = Number(m[2]) * (m[4] === "B" ? 1000 : 1024) ** exp;
  if (!Number.isSafeInteger(bytes)) throw new BadArguments(`-s: '${v}' is too large`);
  return { rel: m[1] as "" | "+" | "-", bytes };
}

// ---------------------------------------------------------------------------------------------------------
// Paths on the mounted DAX filesystems

type Lookup = { kind: "file"; fs: DaxFs; name: string } | { kind: "dir" } | { kind: "missing" };

/** What a path names: a file name on a mounted DAX filesystem (existing or not), its mount point, or nothing. */
function lookupPath(k: Kernel, path: string): Lookup {
  if (mountedSupers(k).has(path)) return { kind: "dir" };
  const m = lookupMount(k, path);
  const fs = m ? daxFsAt(k, m.sb.mountpoint) : null;
  // No directories below a mount point in the model: a deeper path has no parent directory.
  if (!m || !fs || m.rel === "" || m.rel.includes("/")) return { kind: "missing" };
  return { kind: "file", fs, name: m.rel };
}

/** The mounted DAX filesystem at a mount point or from a device, if any. */
function mountOf(k: Kernel, target: string): DaxFs | null {
  const at = daxFsAt(k, target);
  if (at) return at;
  const m = /^\/dev\/(.+)$/.exec(target);
  if (!m) return null;
  for (const mp of mountedSupers(k).keys()) {
    const fs = daxFsAt(k, mp);
    if (fs?.disk === m[1]) return fs;
  }
  return null;
}

/** open(2) with O_CREAT as the tools do it: an existing file, or a new empty one. */
function openOrCreate(k: Kernel, fs: DaxFs, name: string, create: boolean): DaxFile | Errno {
  if (!fs.inodes.has(name)) {
    if (!create) return -ENOENT;
    const inode = createFile(k, fs, name, 0);
    if (typeof inode === "number") return inode;
  }
  return openFile(k, fs, name);
}

// ---------------------------------------------------------------------------------------------------------
// mkfs

/** xfsprogs 6.1's mkfs/xfs_mkfs.c usage(), printed after a device it cannot open. */
const MKFS_XFS_USAGE = [
  "Usage: mkfs.xfs",
  "/* blocksize */\t\t[-b size=num]",
  "/* config file */\t[-c options=xxx]",
  "/* metadata */\t\t[-m crc=0|1,finobt=0|1,uuid=xxx,rmapbt=0|1,reflink=0|1,",
  "\t\t\t    inobtcount=0|1,bigtime=0|1]",
  "/* data subvol */\t[-d agcount=n,agsize=n,file,name=xxx,size=num,",
  "\t\t\t    (sunit=value,swidth=value|su=num,sw=num|noalign),",
  "\t\t\t    sectsize=num",
  "/* force overwrite */\t[-f]",
  "/* inode size */\t[-i perblock=n|size=num,maxpct=n,attr=0|1|2,",
  "\t\t\t    projid32bit=0|1,sparse=0|1,nrext64=0|1]",
  "/* no discard */\t[-K]",
  "/* log subvol */\t[-l agnum=n,internal,size=num,logdev=xxx,version=n",
  "\t\t\t    sunit=value|su=num,sectsize=num,lazy-count=0|1]",
  "/* label */\t\t[-L label (maximum 12 characters)]",
  "/* naming */\t\t[-n size=num,version=2|ci,ftype=0|1]",
  "/* no-op info only */\t[-N]",
  "/* prototype file */\t[-p fname]",
  "/* quiet */\t\t[-q]",
  "/* realtime subvol */\t[-r extsize=num,size=num,rtdev=xxx]",
  "/* sectorsize */\t[-s size=num]",
  "/* version */\t\t[-V]",
  "\t\t\tdevicename",
  "<devicename> is required unless -d name=xxx is given.",
  "<num> is xxx (bytes), xxxs (sectors), xxxb (fs blocks), xxxk (xxx KiB),",
  "      xxxm (xxx MiB), xxxg (xxx GiB), xxxt (xxx TiB) or xxxp (xxx PiB).",
  "<value> is xxx (512 byte blocks).",
  "",
].join("\n");

const QUIET_WHY = "the model prints no geometry (its numbers and UUID are not modelled); give -q, which prints nothing, as the tool does";

function mkfsXfsCommand(): ScenarioCommand {
  return defineCommand({
    name: "mkfs.xfs",
    usage: "mkfs.xfs -q [-f] [-m rmapbt=0|1[,reflink=0|1]] /dev/pmemX",
    summary: "mkfs.xfs: a new XFS on the pmem disk (-m rmapbt=1: XFS then handles memory failures and unbind); quiet, as -q prints nothing",
    parse(inv) {
      const { opts, args } = getopt(inv, "qfK", "m");
      if (args.length !== 1) throw new BadArguments(`expected one device, got ${args.length}`);
      if (!has(opts, "q")) throw new BadArguments(`-q: ${QUIET_WHY}`);
      let rmapbt = false;
      for (const [o, v] of opts) {
        if (o !== "m") continue;
        for (const sub of v.split(",")) {
          const m = /^(rmapbt|reflink)=([01])$/.exec(sub);
          if (!m) throw new BadArguments(`-m: '${sub}' is not modelled (only rmapbt=0|1 and reflink=0|1)`);
          if (m[1] === "rmapbt") rmapbt = m[2] === "1";
        }
      }
      return { dev: args[0]!, disk: pmemDevice("device", args[0]!), force: has(opts, "f"), rmapbt };
    },
    run(k, a) {
      const existing = onDiskFs(k, a.disk);
      const rc = diskFreeForMkfs(k, a.disk);
      // libxfs_init's check_open: stat() of the device, then /proc/mounts; either failure prints usage().
      if (rc === -ENOENT) return { stdout: `${a.dev}: No such file or directory\n${MKFS_XFS_USAGE}`, rc: 1, errno: rc };
      if (rc === -EBUSY) return { stdout: `mkfs.xfs: ${a.dev} contains a mounted filesystem\n${MKFS_XFS_USAGE}`, rc: 1, errno: rc };
      // validate_overwrite: blkid finds a filesystem signature.
      if (existing && !a.force) {
        return { stdout: `mkfs.xfs: ${a.dev} appears to contain an existing filesystem (${existing.kind}).\nmkfs.xfs: Use the -f option to force overwrite.\n`, rc: 1 };
      }
      mkfsDaxFs(k, a.disk, "xfs", { rmapbt: a.rmapbt });
      return { stdout: "", rc: 0 };
    },
  });
}

function mkfsExt4Command(): ScenarioCommand {
  return defineCommand({
    name: "mkfs.ext4",
    usage: "mkfs.ext4 -q [-F] /dev/pmemX",
    summary: "mkfs.ext4: a new ext4 on the pmem disk; quiet, as -q prints nothing (no tty: an existing filesystem is overwritten without asking, as mke2fs does in scripts)",
    parse(inv) {
      const { opts, args } = getopt(inv, "qF", "");
      if (args.length !== 1) throw new BadArguments(`expected one device, got ${args.length}`);
      if (!has(opts, "q")) throw new BadArguments(`-q: ${QUIET_WHY}`);
      return { dev: args[0]!, disk: pmemDevice("device", args[0]!) };
    },
    run(k, a) {
      const rc = mkfsDaxFs(k, a.disk, "ext4");
      // ref (e2fsprogs 1.47.0): misc/util.c check_mount; misc/mke2fs.c PRS (ext2fs_get_device_size2 → ENOENT)
      if (rc === -EBUSY) return { stdout: `${a.dev} is mounted; will not make a filesystem here!\n`, rc: 1, errno: rc };
      if (rc === -ENOENT) return { stdout: `The file ${a.dev} does not exist and no size was specified.\n`, rc: 1, errno: rc };
      return { stdout: "", rc: 0 };
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// mount / umount

function mountCommand(): ScenarioCommand {
  return definePathCommand({
    name: "mount",
    usage: "mount [-t xfs|ext4] -o dax[=always] /dev/pmemX DIR",
    summary: "mount(8) -o dax of a pmem disk mkfs formatted (the type from -t, else from the disk); errors as util-linux prints them, exit status 32",
    parse(inv) {
      const { opts, args } = getopt(inv, "", "to", { "--types=": "t", "--options=": "o" });
      if (args.length !== 2) throw new BadArguments(`expected a device and a mount point, got ${args.length} argument(s) (mount without arguments, listing mounts, is not modelled)`);
      let type: DaxFsKind | null = null;
      let dax = false;
      for (const [o, v] of opts) {
        if (o === "t") {
          if (v !== "xfs" && v !== "ext4") throw new BadArguments(`-t: '${v}' is not modelled (xfs, ext4)`);
          type = v;
        } else {
          for (const opt of v.split(",")) {
            if (opt === "dax" || opt === "dax=always") dax = true;
            else throw new BadArguments(`-o: '${opt}' is not modelled (only dax, dax=always)`);
          }
        }
      }
      if (!dax) throw new BadArguments("-o dax: the model mounts only with DAX (dax=always); page-cache mounts are not modelled");
      return { dev: args[0]!, disk: pmemDevice("device", args[0]!), dir: absPath("mount point", args[1]!), type };
    },
    *path(k, a) {
      const r = yield* mountDisk(k, a.disk, a.dir, a.type);
      if (typeof r !== "number") return { stdout: "", rc: 0 };
      const fail = (msg: string): StepOutput => ({
        stdout: `mount: ${a.dir}: ${msg}.\n       dmesg(1) may have more information after failed mount system call.\n`,
        rc: MNT_EX_FAIL,
        errno: r,
      });
      // ref (util-linux 2.38.1): libmount/src/context_mount.c mnt_context_get_mount_excode; sys-utils/mount.c mk_exit_code
      switch (r) {
        case -ENOENT:
          return fail(`special device ${a.dev} does not exist`);
        case -EBUSY: {
          const other = mountOf(k, a.dev);
          return fail(other ? `${a.dev} already mounted on ${other.mountpoint}` : `${a.dev} already mounted or mount point busy`);
        }
        case -EINVAL:
          return fail(`wrong fs type, bad option, bad superblock on ${a.dev}, missing codepage or helper program, or other error`);
        case -EOPNOTSUPP:
          // XFS would mount without DAX ("Turning off DAX" in the log); the model has no page-cache mounts.
          return { stdout: `mount: ${a.dir}: zonedev: XFS turned DAX off for ${a.dev} and would mount without it; non-DAX mounts are not modelled.\n`, rc: MNT_EX_FAIL, errno: r };
        default:
          return fail(`mount(2) system call failed: ${strerror(r)}`);
      }
    },
  });
}

function umountCommand(): ScenarioCommand {
  return definePathCommand({
    name: "umount",
    usage: "umount DIR|/dev/pmemX",
    summary: "umount(8): evicts every inode (no layout break); 'target is busy.' (exit 32) while a file is open or mapped",
    parse(inv) {
      const { args } = getopt(inv, "", "");
      if (args.length !== 1) throw new BadArguments(`expected one mount point or device, got ${args.length}`);
      return absPath("target", args[0]!);
    },
    *path(k, target) {
      const fs = mountOf(k, target);
      // ref (util-linux 2.38.1): libmount/src/context_umount.c mnt_context_get_umount_excode
      if (!fs) return { stdout: `umount: ${target}: not mounted.\n`, rc: MNT_EX_FAIL, errno: -EINVAL };
      const rc = yield* umountDaxFs(k, fs);
      if (rc === -EBUSY) return { stdout: `umount: ${fs.mountpoint}: target is busy.\n`, rc: MNT_EX_FAIL, errno: rc };
      if (rc < 0) return { stdout: `umount: ${fs.mountpoint}: umount(2) system call failed: ${strerror(rc)}.\n`, rc: MNT_EX_FAIL, errno: rc };
      return { stdout: "", rc: 0 };
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Files: xfs_io, truncate, rm

type XfsIoCmd = { cmd: "pwrite"; offset: number; len: number } | { cmd: "truncate"; size: number } | { cmd: "fsync" };

function parseXfsIoCmd(text: string): XfsIoCmd {
  const words = text.trim().split(/\s+/);
  const [name, ...rest] = words;
  switch (name) {
    case "pwrite": {
      const args: string[] = [];
      let quiet = false;
      for (let i = 0; i < rest.length; i++) {
        const w = rest[i]!;
        if (w === "-q") quiet = true;
        else if (w === "-W" || w === "-w") continue;
        else if (w === "-S" || w === "-b") {
          if (rest[++i] === undefined) throw new BadArguments(`-c 'pwrite': ${w} needs a value`);
        } else if (w.startsWith("-")) throw new BadArguments(`-c 'pwrite': option ${w} is not modelled (-q, -S SEED, -b BSIZE, -w, -W)`);
        else args.push(w);
      }
      if (args.length !== 2) throw new BadArguments("-c 'pwrite': expected OFFSET LENGTH");
      if (!quiet) throw new BadArguments("-c 'pwrite': give -q (pwrite -q OFF LEN): without it xfs_io prints the write's timing, which the model cannot");
      return { cmd: "pwrite", offset: cvtnum("pwrite offset", args[0]!), len: cvtnum("pwrite length", args[1]!) };
    }
    case "truncate":
      if (rest.length !== 1) throw new BadArguments("-c 'truncate': expected one SIZE");
      return { cmd: "truncate", size: cvtnum("truncate size", rest[0]!) };
    case "fsync":
      if (rest.length !== 0) throw new BadArguments("-c 'fsync' takes no arguments");
      return { cmd: "fsync" };
    default:
      throw new BadArguments(`-c '${text}': only the xfs_io commands pwrite, truncate and fsync are modelled`);
  }
}

function xfsIoCommand(): ScenarioCommand {
  return definePathCommand({
    name: "xfs_io",
    usage: "xfs_io [-f] -c 'pwrite -q OFF LEN' [-c 'truncate SIZE'] [-c fsync] FILE",
    summary: "xfs_io on a file of a DAX mount (-f creates it): pwrite allocates and writes its blocks (dax_iomap_rw), truncate is ftruncate; exit status 1 if a command failed",
    parse(inv) {
      const { opts, args } = getopt(inv, "f", "c");
      if (args.length !== 1) throw new BadArguments(`expected one FILE, got ${args.length}`);
      const cmds = opts.filter(([o]) => o === "c").map(([, v]) => parseXfsIoCmd(v));
      if (cmds.length === 0) throw new BadArguments("give at least one -c COMMAND (interactive xfs_io is not modelled)");
      return { path: absPath("FILE", args[0]!), create: has(opts, "f"), cmds };
    },
    *path(k, a) {
      const where = lookupPath(k, a.path);
      // io/open.c openfile: perror(path), exit 1.
      if (where.kind === "dir") return { stdout: `xfs_io: zonedev: ${a.path} is a directory; only regular files are modelled\n`, rc: 1, errno: -EISDIR };
      if (where.kind === "missing") return { stdout: `${a.path}: ${strerror(-ENOENT)}\n`, rc: 1, errno: -ENOENT };
      const file = openOrCreate(k, where.fs, where.name, a.create);
      if (typeof file === "number") return { stdout: `${a.path}: ${strerror(file)}\n`, rc: 1, errno: file };
      let out = "";
      let rc = 0;
      let errno: Errno | undefined;
      for (const c of a.cmds) {
        let err: Errno = 0;
        let what = "";
        if (c.cmd === "pwrite") {
          const n = yield* writeFile(k, file, c.offset, c.len);
          if (n < 0) [err, what] = [n, "pwrite"];
        } else if (c.cmd === "truncate") {
          const r = yield* truncateFile(k, where.fs, where.name, c.size);
          if (r < 0) [err, what] = [r, "ftruncate"];
        }
        if (err) {
          out += `${what}: ${strerror(err)}\n`;
          rc = 1;
          errno ??= err;
        }
      }
      yield* closeFile(k, file);
      return errno === undefined ? { stdout: out, rc } : { stdout: out, rc, errno };
    },
  });
}

function truncateCommand(): ScenarioCommand {
  return definePathCommand({
    name: "truncate",
    usage: "truncate [-c] -s [+|-]SIZE FILE...",
    summary: "truncate(1) of files on a DAX mount: ext4_setattr / xfs_setattr_size break DAX layouts first (waiting while a page is pinned), then cut; growing allocates the blocks (no holes in the model)",
    parse(inv) {
      const { opts, args } = getopt(inv, "c", "s", { "--size=": "s", "--no-create": "c" });
      const sizes = opts.filter(([o]) => o === "s");
      if (sizes.length !== 1) throw new BadArguments("give the size once: -s SIZE (--reference is not modelled)");
      if (args.length === 0) throw new BadArguments("give at least one FILE");
      return { size: truncateSize(sizes[0]![1]), noCreate: has(opts, "c"), paths: args.map((p) => absPath("FILE", p)) };
    },
    *path(k, a) {
      let out = "";
      let errno: Errno | undefined;
      // ref (coreutils 9.1): src/truncate.c main, do_ftruncate
      for (const path of a.paths) {
        const where = lookupPath(k, path);
        let file: DaxFile | Errno;
        if (where.kind === "file") file = openOrCreate(k, where.fs, where.name, !a.noCreate);
        else file = where.kind === "dir" ? -EISDIR : -ENOENT;
        if (file === -ENOENT && a.noCreate) continue;
        if (typeof file === "number") {
          out += `truncate: cannot open ${quoteaf(path)} for writing: ${strerror(file)}\n`;
          errno ??= file;
          continue;
        }
        const cur = file.inode.size;
        const size = a.size.rel === "+" ? cur + a.size.bytes : a.size.rel === "-" ? Math.max(0, cur - a.size.bytes) : a.size.bytes;
        const rc = yield* truncateFile(k, file.fs, file.inode.name, size);
        if (rc < 0) {
          out += `truncate: failed to truncate ${quoteaf(path)} at ${size} bytes: ${strerror(rc)}\n`;
          errno ??= rc;
        }
        yield* closeFile(k, file);
      }
      return errno === undefined ? { stdout: out, rc: 0 } : { stdout: out, rc: 1, errno };
    },
  });
}

function rmCommand(): ScenarioCommand {
  return definePathCommand({
    name: "rm",
    usage: "rm [-f] FILE...",
    summary: "rm(1): unlink; the inode and its blocks go when nothing holds it (an open or mapped file stays until its last close or munmap)",
    parse(inv) {
      const { opts, args } = getopt(inv, "f", "", { "--force": "f" });
      if (args.length === 0) throw new BadArguments("give at least one FILE");
      return { force: has(opts, "f"), paths: args.map((p) => absPath("FILE", p)) };
    },
    *path(k, a) {
      let out = "";
      let errno: Errno | undefined;
      for (const path of a.paths) {
        const where = lookupPath(k, path);
        let rc: Errno;
        if (where.kind === "file") rc = yield* unlinkFile(k, where.fs, where.name);
        else rc = where.kind === "dir" ? -EISDIR : -ENOENT;
        if (rc === -ENOENT && a.force) continue;
        if (rc < 0) {
          out += `rm: cannot remove ${quoteaf(path)}: ${strerror(rc)}\n`;
          errno ??= rc;
        }
      }
      return errno === undefined ? { stdout: out, rc: 0 } : { stdout: out, rc: 1, errno };
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Memory-failure policy and its signals

const EARLY_KILL_KEY = "vm.memory_failure_early_kill";

function sysctlCommand(): ScenarioCommand {
  return defineCommand({
    name: "sysctl",
    usage: `sysctl [-w] ${EARLY_KILL_KEY}[=0|1]`,
    summary: `sysctl(8) of ${EARLY_KILL_KEY}: whether memory_failure (and kill_dax under XFS) also signals processes that did not touch the poison (BUS_MCEERR_AO); prints 'key = value'`,
    parse(inv) {
      const { opts, args } = getopt(inv, "w", "");
      if (args.length !== 1) throw new BadArguments(`expected one ${EARLY_KILL_KEY}[=VALUE], got ${args.length}`);
      const m = /^([\w.]+)(?:=(.*))?$/.exec(args[0]!);
      if (!m || m[1] !== EARLY_KILL_KEY) throw new BadArguments(`'${args[0]}': only ${EARLY_KILL_KEY} is modelled`);
      if (has(opts, "w") && m[2] === undefined) throw new BadArguments(`-w: give ${EARLY_KILL_KEY}=0|1`);
      if (m[2] !== undefined && m[2] !== "0" && m[2] !== "1") throw new BadArguments(`${EARLY_KILL_KEY}: '${m[2]}' is outside 0..1`);
      return m[2] === undefined ? null : m[2] === "1";
    },
    run(k, set) {
      // ref: mm/memory-failure.c sysctl_memory_failure_early_kill (proc_dointvec_minmax, 0..1)
      if (set !== null) {
        setMemoryFailureEarlyKill(k, set);
        EARLY_KILL.set(k, set);
      }
      return { stdout: `${EARLY_KILL_KEY} = ${(EARLY_KILL.get(k) ?? false) ? 1 : 0}\n`, rc: 0 };
    },
  });
}

function signalsCommand(): ScenarioCommand {
  return defineCommand({
    name: "signals",
    usage: "signals PROC",
    summary: "model-only: the signals PROC was sent, in order, as its siginfo would tell them (SIGBUS BUS_MCEERR_AO addr=… lsb=21)",
    parse(inv) {
      const { args } = getopt(inv, "", "");
      if (args.length !== 1) throw new BadArguments("expected one PROC");
      return args[0]!;
    },
    run(k, name) {
      const t = [...userland(k).tasks.values()].find((x) => x.comm === name);
      if (!t) return { stdout: `${name}: no such process\n`, rc: 1 };
      return { stdout: t.signals.map((s) => `${s}\n`).join(""), rc: 0 };
    },
  });
}

/** The DAX filesystem commands (built on call: commands.ts and this module import each other). */
export function fsCommands(): ScenarioCommand[] {
  registerFileResolver(daxFsOpenPath);
  return [mkfsXfsCommand(), mkfsExt4Command(), mountCommand(), umountCommand(), xfsIoCommand(), truncateCommand(), rmCommand(), sysctlCommand(), signalsCommand()];
}
