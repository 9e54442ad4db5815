/**
 * A small DAX filesystem on a pmem disk, in the two flavours 6.1 treats differently: "xfs" and "ext4" mounted
 * with -o dax (dax=always). The on-disk format is only an extent map (every block allocated when a file is
 * created, first fit, 2 MiB-aligned runs for files of 2 MiB or more so PMD faults can work) plus a metadata
 * area at the start of the disk; the point is what the kernel does around fs/dax.c:
 *
 * - mount: fs_dax_get_by_bdev. XFS registers the mount as the dax_device's holder with
 *   xfs_dax_holder_operations (xfs_alloc_buftarg); ext4 passes no holder (ext4_alloc_sbi).
 * - mmap: ->get_unmapped_area = thp_get_unmapped_area (PMD-aligned addresses), VM_HUGEPAGE, the fs vm_ops
 *   (fault, huge_fault, page_mkwrite, pfn_mkwrite), faults under the invalidate lock (XFS_MMAPLOCK_SHARED /
 *   filemap_invalidate_lock_shared) into dax_iomap_fault with the fs's iomap.
 * - truncate: ext4_setattr / xfs_setattr_size: invalidate lock exclusive, break layouts (dax_layout_busy_page
 *   of the whole file, then wait_var_event until the busy page's refcount is 1, dropping the lock while
 *   asleep), truncate_pagecache, free the blocks.
 * - mkfs leaves the filesystem type on the disk (mkfsDaxFs); mount(2) of the disk checks it (mountDisk).
 * - files: a struct file lives while its descriptor is open or a VMA maps it (MappedFile.release on the last
 *   munmap); write(2) allocates written extents.
 * - unlink / last fput / del_gendisk's invalidate_inodes / umount: evict (truncate_inode_pages_final) with no
 *   layout break; an unlinked inode's blocks are freed then.
 * - XFS ->notify_failure (xfs_dax_notify_failure): with rmapbt, the failed range's rmap owners: metadata shuts
 *   the filesystem down, in-core files get mf_dax_kill_procs; without rmapbt -EOPNOTSUPP.
 *
 * Departures (the model has no page cache and no holes): a mount that the kernel would fall back to non-DAX
 * I/O for (XFS "Turning off DAX") is refused with -EOPNOTSUPP; growing a file allocates its new blocks at once.
 */
import { type DaxDevice, type DaxHolderOps, type DaxHostDisk, daxHostByDisk, fsDaxGetByBdev, fsPutDax, U64_MAX } from "../drivers/dax/super.ts";
import { pmemDisk } from "../drivers/nvdimm/pmem.ts";
import { EBUSY, EEXIST, EINVAL, EIO, ENOENT, ENOSPC, ENXIO, EOPNOTSUPP, type Errno, EUCLEAN } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { sideTable } from "../lib/rewind.ts";
import { unmapMappingRange } from "../mm/memory.ts";
import { mfDaxKillProcs } from "../mm/memory_failure.ts";
import { type AddressSpace, type MappedFile, type PageEntrySize, type Task, VM_HUGEPAGE, VM_SHARED, type Vma, type VmFault, type VmOps } from "../mm/mm_types.ts";
import { newAddressSpace } from "../mm/mmap.ts";
import { type KernelPath, step } from "../path.ts";
import { daxDeleteMappingEntry, daxEntries, daxEntryAt, daxIomapFault, daxLayoutBusyPage, type Iomap, type IomapOps } from "./dax.ts";
import { lookupMount, mountedSupers, registerSuper, type SuperBlock, unregisterSuper } from "./super.ts";

export type DaxFsKind = "xfs" | "ext4";

/** An rw_semaphore (the inode's invalidate_lock, i.e. XFS_MMAPLOCK): readers count and the writer's name. */
export interface RwSem {
  readers: number;
  writer: string | null;
}

/** One extent: file blocks [fileBlock, fileBlock + len) at disk blocks [diskBlock, diskBlock + len). */
export interface Extent {
  fileBlock: number;
  diskBlock: number;
  len: number;
}

export interface DaxInode {
  readonly ino: number;
  /** Path under the mount point ("data"). */
  readonly name: string;
  /** i_size in bytes. */
  size: number;
  extents: Extent[];
  nlink: number;
  /** Live struct files of this inode (each held by its descriptor, by the VMAs mapping it, or both). */
  opens: number;
  /** i_mapping while the inode is in core (null once evicted). */
  mapping: AddressSpace | null;
  readonly invalidateLock: RwSem;
}

export interface MountOptions {
  /** mkfs.xfs -m rmapbt=1: required for XFS's notify_failure to do anything (xfsprogs 6.1 default: 0). */
  rmapbt?: boolean;
  /** Filesystem block size; DAX needs it equal to PAGE_SIZE (the default). */
  blockSize?: number;
}

export interface DaxFs {
  readonly kind: DaxFsKind;
  readonly disk: string;
  readonly mountpoint: string;
  readonly blockSize: number;
  /** Blocks on the disk at mount. */
  readonly blocks: number;
  /** Blocks at the start of the disk holding fs metadata (superblock, AG headers / group descriptors, log). */
  readonly metaBlocks: number;
  readonly rmapbt: boolean;
  readonly dax: DaxDevice;
  /** The dax_device holder name (XFS), null for ext4. */
  readonly holder: string | null;
  readonly inodes: Map<string, DaxInode>;
  /** In-core inodes that were unlinked but are still open or mapped. */
  readonly orphans: Set<DaxInode>;
  /** Free disk blocks as sorted [start, end) runs. */
  free: Array<[number, number]>;
  /** XFS_OPSTATE_SHUTDOWN */
  shutdown: boolean;
  /** SB_BORN */
  born: boolean;
  nextIno: number;
  readonly sb: SuperBlock;
}

/** The prefix the fs's messages carry. */
function fsMsg(fs: { kind: DaxFsKind; disk: string }, msg: string): string {
  return fs.kind === "xfs" ? `XFS (${fs.disk}): ${msg}` : `EXT4-fs (${fs.disk}): ${msg}`;
}

function* downRead(sem: RwSem, at: string): KernelPath<void> {
  yield { kind: "block", at: `${at}: down_read`, until: () => sem.writer === null, holder: () => `held for writing by ${sem.writer}` };
  sem.readers++;
  yield step(`${at}: down_read`);
}

function upRead(sem: RwSem): void {
  sem.readers--;
}

function* downWrite(sem: RwSem, at: string, who: string): KernelPath<void> {
  yield {
    kind: "block",
    at: `${at}: down_write`,
    until: () => sem.writer === null && sem.readers === 0,
    holder: () => (sem.writer ? `held for writing by ${sem.writer}` : `${sem.readers} reader(s) (faults in progress)`),
  };
  sem.writer = who;
  yield step(`${at}: down_write`);
}

function upWrite(sem: RwSem): void {
  sem.writer = null;
}

// ---------------------------------------------------------------------------------------------------------
// Block allocation

function pmdBlocks(k: Kernel, fs: DaxFs): number {
  return Math.max(1, 2 ** k.arch.pmdShift / fs.blockSize);
}

function takeRun(fs: DaxFs, start: number, len: number): void {
  const out: Array<[number, number]> = [];
  for (const [s, e] of fs.free) {
    if (e <= start || s >= start + len) out.push([s, e]);
    else {
      if (s < start) out.push([s, start]);
      if (e > start + len) out.push([start + len, e]);
    }
  }
  fs.free = out;
}

function giveRun(fs: DaxFs, start: number, len: number): void {
  const runs = [...fs.free, [start, start + len] as [number, number]].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last[1] >= r[0]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  fs.free = out;
}

function freeBlocks(fs: DaxFs): number {
  return fs.free.reduce((n, [s, e]) => n + e - s, 0);
}

/**
 * Allocate `len` blocks for file blocks from `fileBlock` on: one contiguous run first fit (aligned to the PMD
 * size when the request is at least that big), else first-fit pieces.
 */
function allocBlocks(k: Kernel, fs: DaxFs, fileBlock: number, len: number): Extent[] | Errno {
  if (len === 0) return [];
  if (freeBlocks(fs) < len) return -ENOSPC;
  const pmd = pmdBlocks(k, fs);
  const align = len >= pmd ? pmd : 1;
  for (const a of align > 1 ? [align, 1] : [1]) {
    for (const [s, e] of fs.free) {
      const start = Math.ceil(s / a) * a;
      if (start + len <= e) {
        takeRun(fs, start, len);
        return [{ fileBlock, diskBlock: start, len }];
      }
    }
  }
  const out: Extent[] = [];
  let left = len;
  let fb = fileBlock;
  while (left > 0) {
    const [s, e] = fs.free[0]!;
    const n = Math.min(left, e - s);
    takeRun(fs, s, n);
    out.push({ fileBlock: fb, diskBlock: s, len: n });
    fb += n;
    left -= n;
  }
  return out;
}

/** Drop file blocks from `fromBlock` on (ext4_truncate / xfs_itruncate_extents). */
function truncateBlocks(fs: DaxFs, inode: DaxInode, fromBlock: number): void {
  const keep: Extent[] = [];
  for (const x of inode.extents) {
    if (x.fileBlock + x.len <= fromBlock) {
      keep.push(x);
    } else if (x.fileBlock >= fromBlock) {
      giveRun(fs, x.diskBlock, x.len);
    } else {
      const n = fromBlock - x.fileBlock;
      giveRun(fs, x.diskBlock + n, x.len - n);
      keep.push({ ...x, len: n });
    }
  }
  inode.extents = keep;
}

/** The extent holding file block fb. */
function extentAt(inode: DaxInode, fb: number): Extent | null {
  for (const x of inode.extents) if (x.fileBlock <= fb && fb < x.fileBlock + x.len) return x;
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Mount table and lookups

const FILESYSTEMS = sideTable<SuperBlock, DaxFs>();

/** The DAX filesystem mounted at `mountpoint`, if any. */
export function daxFsAt(k: Kernel, mountpoint: string): DaxFs | null {
  const sb = mountedSupers(k).get(mountpoint);
  return sb ? (FILESYSTEMS.get(sb) ?? null) : null;
}

/** A file by absolute path ("/mnt/pmem0/data"): the filesystem and the inode, if both exist. */
export function daxFsLookup(k: Kernel, path: string): { fs: DaxFs; inode: DaxInode } | null {
  const m = lookupMount(k, path);
  const fs = m ? FILESYSTEMS.get(m.sb) : undefined;
  const inode = m && fs ? fs.inodes.get(m.rel) : undefined;
  return fs && inode ? { fs, inode } : null;
}

// ---------------------------------------------------------------------------------------------------------
// Mount / umount

/** mkfs's metadata area: the model keeps the first PMD-sized run of the disk for it. */
function metadataBlocks(k: Kernel, blockSize: number, blocks: number): number {
  return Math.min(blocks, Math.max(1, 2 ** k.arch.pmdShift / blockSize));
}

/**
 * lookup_bdev: a pmem disk by name. pmem disks publish a dax_device (dax_hosts); a BTT disk (pmem0s) does not,
 * and its queue has no QUEUE_FLAG_DAX.
 */
function findBlockDevice(k: Kernel, disk: string): DaxHostDisk | null {
  const dax = daxHostByDisk(k, disk);
  if (dax?.host && dax.host.bytes() > 0) return dax.host;
  for (const dev of k.devices?.devices ?? []) {
    const p = pmemDisk(dev);
    if (p && p.disk === disk && p.capacity > 0) return { name: disk, queueDax: () => false, bytes: () => p.capacity * 512 };
  }
  return null;
}

/**
 * mount -t xfs|ext4 -o dax /dev/<disk> <mountpoint>. XFS registers itself as the dax_device's holder; ext4
 * takes the dax_device without a holder. A disk without QUEUE_FLAG_DAX (no struct pages) or a block size other
 * than PAGE_SIZE: ext4 fails the mount (-EINVAL), XFS would mount without DAX, which the model refuses.
 */
// ref: fs/xfs/xfs_super.c xfs_fs_fill_super, xfs_setup_dax_always; fs/xfs/xfs_buf.c xfs_alloc_buftarg; fs/ext4/super.c ext4_alloc_sbi, __ext4_fill_super
export function* mountDaxFs(k: Kernel, kind: DaxFsKind, disk: string, mountpoint: string, opts: MountOptions = {}): KernelPath<DaxFs | Errno> {
  const host = findBlockDevice(k, disk);
  if (!host) return -ENOENT;
  if (mountedSupers(k).has(mountpoint)) return -EBUSY;
  for (const fs of allFilesystems(k)) if (fs.disk === disk) return -EBUSY;
  const ps = k.geo.pageSize;
  const blockSize = opts.blockSize ?? ps;
  const msg = (m: string) => k.printk(fsMsg({ kind, disk }, m));
  const holder = kind === "xfs" ? `xfs(${disk})` : null;
  // xfs_alloc_buftarg passes holder ops only with CONFIG_FS_DAX && CONFIG_MEMORY_FAILURE.
  let fsRef: DaxFs | null = null;
  const ops: DaxHolderOps | null =
    kind === "xfs" && k.config.enabled("MEMORY_FAILURE")
      ? { notifyFailure: (d, off, len, flags, current) => (fsRef ? xfsDaxNotifyFailure(k, fsRef, d, off, len, flags, current) : notReady(k, kind, disk)) }
      : null;
  const dax = yield* fsDaxGetByBdev(k, host, holder, ops);
  if (kind === "ext4") {
    // The C format ends in "\n" too, so dmesg shows an empty line after it.
    if (dax && blockSize !== ps) msg("unsupported blocksize for DAX");
    if (!dax || blockSize !== ps) {
      msg("DAX unsupported by block device.");
      fsPutDax(dax, null);
      return -EINVAL;
    }
  } else {
    if (!dax || blockSize !== ps) {
      msg(!dax ? "DAX unsupported by block device. Turning off DAX." : "DAX not supported for blocksize. Turning off DAX.");
      fsPutDax(dax, holder);
      return -EOPNOTSUPP;
    }
    msg("DAX enabled. Warning: EXPERIMENTAL, use at your own risk");
  }
  const blocks = Math.floor(host.bytes() / blockSize);
  const metaBlocks = metadataBlocks(k, blockSize, blocks);
  const sb: SuperBlock = {
    disk,
    mountpoint,
    fsType: kind,
    invalidateInodes: (killDirty) => invalidateInodes(k, fs, killDirty),
  };
  const fs: DaxFs = {
    kind,
    disk,
    mountpoint,
    blockSize,
    blocks,
    metaBlocks,
    rmapbt: kind === "xfs" && (opts.rmapbt ?? false),
    dax,
    holder,
    inodes: new Map(),
    orphans: new Set(),
    free: blocks > metaBlocks ? [[metaBlocks, blocks]] : [],
    shutdown: false,
    born: false,
    nextIno: kind === "xfs" ? 131 : 12,
    sb,
  };
  fsRef = fs;
  if (kind === "xfs") {
    msg("Mounting V5 Filesystem");
    msg("Ending clean mount");
  } else {
    msg("mounted filesystem with ordered data mode. Quota mode: none.");
  }
  FILESYSTEMS.set(sb, fs);
  registerSuper(k, sb);
  fs.born = true;
  yield step(`mount(${disk} on ${mountpoint})`);
  return fs;
}

function* notReady(k: Kernel, kind: DaxFsKind, disk: string): KernelPath<Errno> {
  k.printk(fsMsg({ kind, disk }, "filesystem is not ready for notify_failure()!"));
  yield step("xfs_dax_notify_failure");
  return -EIO;
}

/** Every mounted DAX filesystem. */
export function allFilesystems(k: Kernel): DaxFs[] {
  const out: DaxFs[] = [];
  for (const sb of mountedSupers(k).values()) {
    const fs = FILESYSTEMS.get(sb);
    if (fs) out.push(fs);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// What mkfs leaves on a disk, and mount(2) of it

/** The superblock mkfs wrote, as far as mount cares: which filesystem, and whether XFS has the rmap btree. */
export interface OnDiskFs {
  readonly kind: DaxFsKind;
  readonly rmapbt: boolean;
}

const ON_DISK = sideTable<Kernel, Map<string, OnDiskFs>>();

function onDisk(k: Kernel): Map<string, OnDiskFs> {
  let m = ON_DISK.get(k);
  if (!m) {
    m = new Map();
    ON_DISK.set(k, m);
  }
  return m;
}

/** The filesystem mkfs last wrote to a disk (what blkid reports as its TYPE), if any. */
export function onDiskFs(k: Kernel, disk: string): OnDiskFs | null {
  return onDisk(k).get(disk) ?? null;
}

/**
 * mkfs.xfs / mkfs.ext4 writing a new, empty filesystem to a disk: -ENOENT when the disk does not exist, -EBUSY
 * while a filesystem on it is mounted (both tools look in /proc/mounts and refuse). The model keeps only the
 * type and rmapbt, by disk name (so a namespace reconfigured under the same disk name keeps it).
 */
export function mkfsDaxFs(k: Kernel, disk: string, kind: DaxFsKind, opts: { rmapbt?: boolean } = {}): Errno {
  const rc = diskFreeForMkfs(k, disk);
  if (rc) return rc;
  onDisk(k).set(disk, { kind, rmapbt: kind === "xfs" && (opts.rmapbt ?? false) });
  return 0;
}

/** What mkfs finds before it writes: -ENOENT (no such disk), -EBUSY (a filesystem on it is mounted), or 0. */
export function diskFreeForMkfs(k: Kernel, disk: string): Errno {
  if (!findBlockDevice(k, disk)) return -ENOENT;
  if (allFilesystems(k).some((fs) => fs.disk === disk)) return -EBUSY;
  return 0;
}

/**
 * mount(2) -o dax of a disk mkfsDaxFs formatted. A type given (-t) that is not what the disk holds fails in the
 * fs's superblock check with -EINVAL (XFS: "Invalid superblock magic number"; ext4: "VFS: Can't find ext4
 * filesystem"); without a type the on-disk one is used (libmount's blkid probe) and an unformatted disk is
 * -EINVAL. A disk that does not exist is -ENOENT; the rest is mountDaxFs.
 */
// ref: fs/super.c get_tree_bdev; fs/xfs/xfs_mount.c xfs_readsb; fs/ext4/super.c ext4_load_super
export function* mountDisk(k: Kernel, disk: string, mountpoint: string, type: DaxFsKind | null): KernelPath<DaxFs | Errno> {
  if (!findBlockDevice(k, disk)) return -ENOENT;
  if (mountedSupers(k).has(mountpoint) || allFilesystems(k).some((fs) => fs.disk === disk)) return -EBUSY;
  const sb = onDiskFs(k, disk);
  const kind = type ?? sb?.kind ?? null;
  if (kind === null) return -EINVAL;
  if (!sb || sb.kind !== kind) {
    yield step(`${kind === "xfs" ? "xfs_readsb" : "ext4_load_super"}(${disk})`);
    k.printk(fsMsg({ kind, disk }, kind === "xfs" ? "Invalid superblock magic number" : "VFS: Can't find ext4 filesystem"));
    return -EINVAL;
  }
  return yield* mountDaxFs(k, kind, disk, mountpoint, { rmapbt: sb.rmapbt });
}

/** umount: -EBUSY while a file is open or mapped; else evict every inode and give the dax_device back. */
// ref: fs/super.c generic_shutdown_super (evict_inodes); fs/xfs/xfs_super.c xfs_fs_put_super, xfs_free_buftarg; fs/ext4/super.c ext4_put_super
export function* umountDaxFs(k: Kernel, fs: DaxFs): KernelPath<Errno> {
  for (const inode of [...fs.inodes.values(), ...fs.orphans]) {
    if (inode.opens > 0 || (inode.mapping?.iMmap.size ?? 0) > 0) return -EBUSY;
  }
  for (const inode of [...fs.inodes.values(), ...fs.orphans]) if (inode.mapping) yield* evictInode(k, fs, inode);
  k.printk(fsMsg(fs, fs.kind === "xfs" ? "Unmounting Filesystem" : "unmounting filesystem."));
  fsPutDax(fs.dax, fs.holder);
  unregisterSuper(k, fs.sb);
  FILESYSTEMS.delete(fs.sb);
  yield step(`umount(${fs.mountpoint})`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Files

function instantiate(k: Kernel, fs: DaxFs, inode: DaxInode): AddressSpace {
  inode.mapping ??= newAddressSpace(k, `${fs.mountpoint.replace(/\/$/, "")}/${inode.name}`, { charDev: false, dax: true });
  return inode.mapping;
}

/**
 * Create a file of `size` bytes with all its blocks allocated and written (as `dd` or `fallocate` + write
 * would leave it). -EEXIST, -ENOSPC; -EIO on a shut-down XFS.
 */
// ref: fs/xfs/xfs_iops.c xfs_vn_create; fs/ext4/namei.c ext4_create (with the blocks then allocated by writes)
export function createFile(k: Kernel, fs: DaxFs, name: string, size: number): DaxInode | Errno {
  if (fs.kind === "xfs" && fs.shutdown) return -EIO;
  if (fs.inodes.has(name)) return -EEXIST;
  if (size < 0 || !Number.isInteger(size)) return -EINVAL;
  const ext = allocBlocks(k, fs, 0, Math.ceil(size / fs.blockSize));
  if (typeof ext === "number") return ext;
  const inode: DaxInode = {
    ino: fs.nextIno++,
    name,
    size,
    extents: ext,
    nlink: 1,
    opens: 0,
    mapping: null,
    invalidateLock: { readers: 0, writer: null },
  };
  instantiate(k, fs, inode);
  fs.inodes.set(name, inode);
  return inode;
}

/**
 * An open DAX file (struct file): what mmap sees, plus the inode behind it. Its f_count is one reference for
 * the descriptor (until close) and one for the VMAs mapping it (taken by the first mmap, dropped through
 * release() when munmap or exit removes the last of them, as remove_vma's fput does); __fput runs when both
 * are gone, so a file that is closed but still mapped lives until munmap.
 */
export interface DaxFile extends MappedFile {
  readonly fs: DaxFs;
  readonly inode: DaxInode;
  /** The descriptor was closed (close(2)), or there never was one (daxFsOpenPath). */
  closed: boolean;
  /** f_count: the descriptor's reference plus the mappings' one; 0 once __fput ran (or before the first mmap). */
  refs: number;
}

/** get_file: the first reference brings the struct file to life (the inode counts it). */
function fget(file: DaxFile): void {
  if (file.refs++ === 0) file.inode.opens++;
}

/** fput: the last reference runs __fput: the inode loses the file, and an unlinked inode nothing holds is evicted. */
// ref: fs/file_table.c fput, __fput; fs/inode.c iput_final
function* fput(k: Kernel, file: DaxFile): KernelPath<void> {
  if (file.refs === 0) return;
  if (--file.refs > 0) return;
  file.inode.opens--;
  yield step(`__fput(${file.path})`);
  yield* iputMaybeEvict(k, file.fs, file.inode);
}

/** Does a VMA (of any process) map this very struct file? */
function fileMapped(file: DaxFile): boolean {
  for (const v of file.mapping.iMmap) if (v.file === file) return true;
  return false;
}

/** A struct file of the inode, with no reference yet. */
function newFile(k: Kernel, fs: DaxFs, inode: DaxInode): DaxFile {
  const mapping = instantiate(k, fs, inode);
  const file: DaxFile = {
    path: mapping.host,
    fs,
    inode,
    closed: true,
    refs: 0,
    mapping,
    size: () => inode.size,
    mmap: (vma) => {
      const rc = daxFsMmap(k, fs, inode, vma);
      // mmap_region: vma->vm_file = get_file(file); the model keeps one reference for all of the file's VMAs.
      if (rc === 0 && !fileMapped(file)) fget(file);
      return rc;
    },
    release: () => fput(k, file),
    unmappedAreaAlign: (len, pgoff) => thpUnmappedAreaAlign(k, len, pgoff),
  };
  return file;
}

/** open(2): -ENOENT; -EIO on a shut-down XFS; the inode is brought back in core if it was evicted. */
// ref: fs/open.c do_dentry_open; fs/xfs/xfs_iops.c xfs_vn_lookup; fs/xfs/xfs_file.c xfs_file_open; fs/ext4/file.c ext4_file_open
export function openFile(k: Kernel, fs: DaxFs, name: string): DaxFile | Errno {
  // xfs_lookup and xfs_file_open both answer -EIO once the filesystem is shut down.
  if (fs.kind === "xfs" && fs.shutdown) return -EIO;
  const inode = fs.inodes.get(name);
  if (!inode) return -ENOENT;
  const file = newFile(k, fs, inode);
  file.closed = false;
  fget(file);
  return file;
}

/** close(2): drops the descriptor's reference; the last reference evicts an unlinked inode (and frees its blocks). */
// ref: fs/open.c filp_close; fs/file_table.c fput
export function* closeFile(k: Kernel, file: DaxFile): KernelPath<void> {
  if (file.closed) return;
  file.closed = true;
  yield* fput(k, file);
}

/**
 * write(2) of len bytes at pos into an open DAX file (dax_iomap_rw through the fs's write iomap): blocks past
 * the allocated end are allocated as written extents and i_size grows; returns the bytes written. -EIO on a
 * shut-down XFS; -ENXIO once the dax_device is dead (dax_direct_access fails; the kernel has allocated by
 * then, the model checks first and changes nothing); -ENOSPC. Departure: a write starting past the end
 * allocates the gap too (no holes in the model).
 */
// ref: fs/xfs/xfs_file.c xfs_file_write_iter, xfs_file_dax_write; fs/ext4/file.c ext4_dax_write_iter; fs/dax.c dax_iomap_rw
export function* writeFile(k: Kernel, file: DaxFile, pos: number, len: number): KernelPath<number> {
  const { fs, inode } = file;
  if (pos < 0 || len < 0 || !Number.isInteger(pos) || !Number.isInteger(len)) return -EINVAL;
  if (fs.kind === "xfs" && fs.shutdown) return -EIO;
  if (len === 0) return 0;
  yield step(fs.kind === "xfs" ? "xfs_file_dax_write: xfs_ilock(XFS_IOLOCK_EXCL)" : "ext4_dax_write_iter: inode_lock");
  if (!fs.dax.alive) return -ENXIO;
  const bs = fs.blockSize;
  const have = inode.extents.reduce((n, x) => Math.max(n, x.fileBlock + x.len), 0);
  const need = Math.ceil((pos + len) / bs);
  if (need > have) {
    const ext = allocBlocks(k, fs, have, need - have);
    if (typeof ext === "number") return ext;
    inode.extents.push(...ext);
  }
  yield step("dax_iomap_rw: dax_copy_from_iter");
  inode.size = Math.max(inode.size, pos + len);
  return len;
}

/**
 * The last reference to an inode went (close, or the last mapping's fput after munmap): an unlinked inode
 * is evicted. Exported for callers that drop a file's last mapping.
 */
// ref: fs/inode.c iput_final
export function* iputMaybeEvict(k: Kernel, fs: DaxFs, inode: DaxInode): KernelPath<void> {
  if (inode.nlink > 0 || inode.opens > 0 || (inode.mapping?.iMmap.size ?? 0) > 0) return;
  yield* evictInode(k, fs, inode);
}

/**
 * evict: truncate_inode_pages_final (every DAX entry deleted, with no layout break: a page still pinned is
 * the WARN in dax_disassociate_entry), and for an unlinked inode its blocks freed.
 */
// ref: fs/inode.c evict; fs/ext4/inode.c ext4_evict_inode; fs/xfs/xfs_super.c xfs_fs_evict_inode, xfs_inactive
function* evictInode(k: Kernel, fs: DaxFs, inode: DaxInode): KernelPath<void> {
  if (inode.mapping) yield* truncateInodePages(k, inode.mapping, 0);
  inode.mapping = null;
  if (inode.nlink === 0) {
    truncateBlocks(fs, inode, 0);
    fs.orphans.delete(inode);
  }
  yield step(`evict(ino ${inode.ino})`);
}

/** invalidate_inodes: evict every in-core inode that is neither open nor mapped. */
// ref: fs/inode.c invalidate_inodes
function* invalidateInodes(k: Kernel, fs: DaxFs, _killDirty: boolean): KernelPath<boolean> {
  let busy = false;
  for (const inode of [...fs.inodes.values(), ...fs.orphans]) {
    if (!inode.mapping) continue;
    if (inode.opens > 0 || inode.mapping.iMmap.size > 0) {
      busy = true;
      continue;
    }
    yield* evictInode(k, fs, inode);
  }
  return busy;
}

/** unlink(2): the name goes now; the inode and its blocks when nothing holds it any more. */
// ref: fs/namei.c vfs_unlink; fs/ext4/namei.c ext4_unlink; fs/xfs/xfs_inode.c xfs_remove
export function* unlinkFile(k: Kernel, fs: DaxFs, name: string): KernelPath<Errno> {
  if (fs.kind === "xfs" && fs.shutdown) return -EIO;
  const inode = fs.inodes.get(name);
  if (!inode) return -ENOENT;
  fs.inodes.delete(name);
  inode.nlink = 0;
  fs.orphans.add(inode);
  yield step(`vfs_unlink(${name})`);
  yield* iputMaybeEvict(k, fs, inode);
  return 0;
}

/** truncate_inode_pages_range(mapping, lstart, end of file) for a DAX mapping: delete every entry from lstart's page on. */
// ref: mm/truncate.c truncate_inode_pages_range, truncate_folio_batch_exceptionals
export function* truncateInodePages(k: Kernel, mapping: AddressSpace, lstart: number): KernelPath<void> {
  const start = Math.ceil(lstart / k.geo.pageSize);
  const covering = daxEntryAt(k, mapping, start);
  for (const { index } of daxEntries(mapping)) {
    if (index < start && index !== covering?.index) continue;
    yield* daxDeleteMappingEntry(k, mapping, Math.max(index, start));
  }
}

/** truncate_pagecache: unmap from the new end, delete the entries, unmap again. */
// ref: mm/truncate.c truncate_pagecache
export function* truncatePagecache(k: Kernel, mapping: AddressSpace, newsize: number): KernelPath<void> {
  const ps = k.geo.pageSize;
  const holebegin = Math.ceil(newsize / ps);
  yield* unmapMappingRange(k, mapping, holebegin, 0);
  yield* truncateInodePages(k, mapping, newsize);
  yield* unmapMappingRange(k, mapping, holebegin, 0);
}

/** Describe who holds a busy FS_DAX page above its idle count (pins count GUP_PIN_COUNTING_BIAS each). */
function busyHolder(k: Kernel, mapping: AddressSpace, pfn: number): string {
  const ref = k.memmap.field(pfn, "refcount");
  const extra = ref - 1;
  const pins = Math.floor(extra / 1024);
  const gets = extra % 1024;
  const what = [pins ? `${pins} FOLL_PIN pin(s)` : "", gets ? `${gets} page reference(s)` : ""].filter(Boolean).join(" and ");
  return `pfn 0x${pfn.toString(16)} of ${mapping.host} (index ${k.memmap.field(pfn, "index")}): refcount ${ref}, ${what || "nothing"} beyond the idle 1; only unpin_user_pages / put_page by the holder wakes this`;
}

/**
 * ext4_break_layouts / xfs_break_dax_layouts: while any page of the file is busy, sleep (invalidate lock
 * dropped) until its refcount is back to 1, then look again. A pin that is never released hangs here.
 */
// ref: fs/ext4/inode.c ext4_break_layouts, ext4_wait_dax_page; fs/xfs/xfs_file.c xfs_break_dax_layouts, xfs_break_layouts, xfs_wait_dax_page
export function* breakLayouts(k: Kernel, fs: DaxFs, inode: DaxInode, who: string): KernelPath<Errno> {
  const fn = fs.kind === "xfs" ? "xfs_break_dax_layouts" : "ext4_break_layouts";
  const mapping = inode.mapping;
  if (!mapping) return 0;
  for (;;) {
    const page = yield* daxLayoutBusyPage(k, mapping);
    if (page === null) return 0;
    // ___wait_var_event(&page->_refcount, refcount == 1, TASK_INTERRUPTIBLE, ..., unlock; schedule(); lock)
    while (k.memmap.field(page, "refcount") !== 1) {
      upWrite(inode.invalidateLock);
      yield {
        kind: "block",
        at: `${fn}: wait_var_event(&page->_refcount, refcount == 1)`,
        until: () => k.memmap.field(page, "refcount") === 1,
        holder: () => busyHolder(k, mapping, page),
      };
      yield* downWrite(inode.invalidateLock, fn, who);
    }
  }
}

/**
 * truncate(2) / ftruncate: invalidate lock exclusive, break layouts, set i_size, truncate_pagecache (all user
 * mappings of the truncated range zapped, their entries deleted), free the blocks past the end.
 */
// ref: fs/ext4/inode.c ext4_setattr; fs/xfs/xfs_iops.c xfs_vn_setattr_size, xfs_setattr_size; mm/truncate.c truncate_setsize
export function* truncateFile(k: Kernel, fs: DaxFs, name: string, newSize: number): KernelPath<Errno> {
  if (fs.kind === "xfs" && fs.shutdown) return -EIO;
  const inode = fs.inodes.get(name);
  if (!inode) return -ENOENT;
  if (newSize < 0 || !Number.isInteger(newSize)) return -EINVAL;
  const who = `truncate(${fs.mountpoint.replace(/\/$/, "")}/${name})`;
  const fn = fs.kind === "xfs" ? "xfs_vn_setattr_size" : "ext4_setattr";
  yield* downWrite(inode.invalidateLock, fn, who);
  try {
    const rc = yield* breakLayouts(k, fs, inode, who);
    if (rc) return rc;
    if (newSize === inode.size) return 0;
    const bs = fs.blockSize;
    if (newSize < inode.size) {
      inode.size = newSize;
      if (inode.mapping) yield* truncatePagecache(k, inode.mapping, newSize);
      truncateBlocks(fs, inode, Math.ceil(newSize / bs));
    } else {
      // No holes in the model: the new blocks are allocated (and zeroed) at once.
      const have = inode.extents.reduce((n, x) => Math.max(n, x.fileBlock + x.len), 0);
      const ext = allocBlocks(k, fs, have, Math.ceil(newSize / bs) - have);
      if (typeof ext === "number") return ext;
      inode.extents.push(...ext);
      inode.size = newSize;
    }
    yield step(`${fn}: i_size ${newSize}`);
    return 0;
  } finally {
    upWrite(inode.invalidateLock);
  }
}

// ---------------------------------------------------------------------------------------------------------
// mmap and faults

/** thp_get_unmapped_area: PMD alignment when the mapping covers at least one whole aligned PMD of the file. */
// ref: mm/huge_memory.c thp_get_unmapped_area, __thp_get_unmapped_area
function thpUnmappedAreaAlign(k: Kernel, len: number, pgoff: number): number {
  const size = 2 ** k.arch.pmdShift;
  const off = pgoff * k.geo.pageSize;
  const offEnd = off + len;
  const offAlign = Math.ceil(off / size) * size;
  if (offEnd <= offAlign || offEnd - offAlign < size) return 0;
  return size;
}

// ref: fs/ext4/file.c ext4_file_mmap; fs/xfs/xfs_file.c xfs_file_mmap
function daxFsMmap(k: Kernel, fs: DaxFs, inode: DaxInode, vma: Vma): Errno {
  // daxdev_mapping_supported: only MAP_SYNC needs a synchronous dax_device, and MAP_SYNC is not modelled.
  vma.ops = daxFsVmOps(k, fs, inode);
  vma.flags |= VM_HUGEPAGE;
  return 0;
}

function daxFsVmOps(k: Kernel, fs: DaxFs, inode: DaxInode): VmOps {
  return {
    name: fs.kind === "xfs" ? "xfs_file_vm_ops" : "ext4_dax_vm_ops",
    fault: (vmf) => daxFsFault(k, fs, inode, vmf, "pte"),
    hugeFault: (vmf, size) => daxFsFault(k, fs, inode, vmf, size),
    pageMkwrite: true,
    pfnMkwrite: true,
  };
}

/**
 * The fs fault handler: a shared write fault starts a page fault (sb_start_pagefault, file_update_time; ext4 a
 * journal handle), then dax_iomap_fault under the invalidate lock held shared.
 */
// ref: fs/ext4/file.c ext4_dax_huge_fault, ext4_dax_fault; fs/xfs/xfs_file.c __xfs_filemap_fault, xfs_filemap_fault, xfs_filemap_huge_fault, xfs_filemap_pfn_mkwrite
function* daxFsFault(k: Kernel, fs: DaxFs, inode: DaxInode, vmf: VmFault, size: PageEntrySize): KernelPath<number> {
  const fn = fs.kind === "xfs" ? "__xfs_filemap_fault" : "ext4_dax_huge_fault";
  const write = vmf.write && (vmf.vma.flags & VM_SHARED) !== 0;
  if (write) yield step(`${fn}: sb_start_pagefault; file_update_time`);
  yield* downRead(inode.invalidateLock, fn);
  try {
    return yield* daxIomapFault(k, vmf, size, iomapOps(fs, inode), `${fn}(${vmf.vma.file?.path}, pgoff ${vmf.pgoff}, mm ${vmf.vma.mm.id})`);
  } finally {
    upRead(inode.invalidateLock);
  }
}

/**
 * The fs's iomap_begin for DAX: the extent holding pos, as device bytes. XFS after a shutdown answers -EIO.
 * Every file block is allocated, so a write never allocates (no IOMAP_F_NEW).
 */
// ref: fs/ext4/inode.c ext4_iomap_begin, ext4_set_iomap; fs/xfs/xfs_iomap.c xfs_read_iomap_begin, xfs_direct_write_iomap_begin, xfs_bmbt_to_iomap
function iomapOps(fs: DaxFs, inode: DaxInode): IomapOps {
  return {
    *iomapBegin(pos: number, length: number, _write: boolean): KernelPath<Iomap | Errno> {
      yield step(fs.kind === "xfs" ? "xfs_iomap_begin: xfs_ilock(XFS_ILOCK_SHARED)" : "ext4_iomap_begin: ext4_map_blocks");
      if (fs.kind === "xfs" && fs.shutdown) return -EIO;
      const bs = fs.blockSize;
      const fb = Math.floor(pos / bs);
      const x = extentAt(inode, fb);
      const dax = fs.dax;
      if (!x) {
        let next = Number.MAX_SAFE_INTEGER;
        for (const e of inode.extents) if (e.fileBlock > fb) next = Math.min(next, e.fileBlock);
        const len = Math.min(length, (next - fb) * bs);
        return { type: "hole", offset: fb * bs, length: len, addr: 0, isNew: false, dax };
      }
      return { type: "mapped", offset: x.fileBlock * bs, length: x.len * bs, addr: x.diskBlock * bs, isNew: false, dax };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// XFS ->notify_failure

/** An rmap record as the query returns it. */
interface RmapRec {
  start: number;
  len: number;
  /** null: a non-inode owner (fs metadata, log, AG headers). */
  inode: DaxInode | null;
  /** File block of `start` (rm_offset). */
  offset: number;
}

function rmapRecords(fs: DaxFs): RmapRec[] {
  const recs: RmapRec[] = [{ start: 0, len: fs.metaBlocks, inode: null, offset: 0 }];
  for (const inode of [...fs.inodes.values(), ...fs.orphans]) {
    for (const x of inode.extents) recs.push({ start: x.diskBlock, len: x.len, inode, offset: x.fileBlock });
  }
  return recs.sort((a, b) => a.start - b.start);
}

/** SHUTDOWN_CORRUPT_ONDISK */
const SHUTDOWN_CORRUPT_ONDISK = 1 << 4;

/** xfs_force_shutdown: mark the filesystem shut down (once) and say so. */
// ref: fs/xfs/xfs_fsops.c xfs_do_force_shutdown
export function xfsForceShutdown(k: Kernel, fs: DaxFs, flags: number, at: string): void {
  if (fs.shutdown) return;
  fs.shutdown = true;
  const why = flags & SHUTDOWN_CORRUPT_ONDISK ? "Corruption of on-disk metadata" : "Metadata I/O Error";
  k.printk(fsMsg(fs, `${why} (0x${flags.toString(16)}) detected at ${at}.  Shutting down filesystem.`));
  k.printk(fsMsg(fs, "Please unmount the filesystem and rectify the problem(s)"));
}

/** BTOBB: bytes to 512-byte basic blocks, rounded up. */
function btobb(bytes: bigint): number {
  return Number((bytes + 511n) >> 9n);
}

/**
 * xfs_dax_notify_ddev_failure: walk the rmap over the failed blocks. Metadata owners ask for a shutdown;
 * in-core files get mf_dax_kill_procs over the failed part of the extent (files not in core are skipped).
 */
// ref: fs/xfs/xfs_notify_failure.c xfs_dax_notify_ddev_failure, xfs_dax_failure_fn, xfs_failure_pgoff, xfs_failure_pgcnt
function* xfsDaxNotifyDdevFailure(k: Kernel, fs: DaxFs, daddr: number, bblen: number, mfFlags: number, current: Task | null): KernelPath<Errno> {
  const bs = fs.blockSize;
  const ps = k.geo.pageSize;
  const fsbno = Math.floor((daddr * 512) / bs);
  const endFsbno = Math.floor(((daddr + bblen - 1) * 512) / bs);
  const rangeEnd = Math.min(fs.blocks - 1, endFsbno);
  const notifyStart = fsbno;
  const notifyEnd = rangeEnd + 1;
  let wantShutdown = false;
  let error: Errno = 0;
  yield step("xfs_dax_notify_ddev_failure: xfs_rmap_query_range");
  for (const rec of rmapRecords(fs)) {
    if (rec.start + rec.len <= notifyStart || rec.start >= notifyEnd) continue;
    if (!rec.inode) {
      wantShutdown = true;
      continue;
    }
    // xfs_iget(XFS_IGET_INCORE): an inode that is not in core is skipped (-ENODATA).
    const mapping = rec.inode.mapping;
    if (!mapping) continue;
    const startCross = Math.max(rec.start, notifyStart);
    const endCross = Math.min(rec.start + rec.len, notifyEnd);
    const pos = rec.offset * bs + (notifyStart > rec.start ? (notifyStart - rec.start) * bs : 0);
    error = yield* mfDaxKillProcs(k, mapping, Math.floor(pos / ps), Math.floor(((endCross - startCross) * bs) / ps), mfFlags, current);
    if (error) break;
  }
  if (error || wantShutdown) {
    xfsForceShutdown(k, fs, SHUTDOWN_CORRUPT_ONDISK, "xfs_dax_notify_ddev_failure (fs/xfs/xfs_notify_failure.c:169)");
    if (!error) error = -EUCLEAN;
  }
  return error;
}

/**
 * xfs_dax_notify_failure (the holder op): needs a born superblock and rmapbt; clips [offset, offset + len) to
 * the data device (kill_dax's U64_MAX becomes the whole device) and walks it.
 */
// ref: fs/xfs/xfs_notify_failure.c xfs_dax_notify_failure
export function* xfsDaxNotifyFailure(k: Kernel, fs: DaxFs, _dax: DaxDevice, offsetIn: bigint, lenIn: bigint, mfFlags: number, current: Task | null): KernelPath<Errno> {
  yield step("xfs_dax_notify_failure");
  if (!fs.born) {
    k.printk(fsMsg(fs, "filesystem is not ready for notify_failure()!"));
    return -EIO;
  }
  // xfs_debug (not printed at the default log level).
  if (!fs.rmapbt) return -EOPNOTSUPP;
  const ddevStart = 0n;
  const ddevEnd = BigInt(fs.blocks * fs.blockSize) - 1n;
  let offset = offsetIn;
  let len = lenIn;
  if (((offset + len - 1n) & U64_MAX) < ddevStart) return -ENXIO;
  if (offset > ddevEnd) return -ENXIO;
  if (offset > ddevStart) {
    offset -= ddevStart;
  } else {
    len -= ddevStart - offset;
    offset = 0n;
  }
  if (((offset + len - 1n) & U64_MAX) > ddevEnd) len = ddevEnd - offset + 1n;
  return yield* xfsDaxNotifyDdevFailure(k, fs, btobb(offset), btobb(len), mfFlags, current);
}

/**
 * A resolver for scenario steps that map a file: `fd = open(path); mmap(fd); close(fd)` folded into one struct
 * file with no descriptor, which comes to life with its first mapping and goes with its last (release). A
 * failed mmap leaves nothing open. null when nothing is at the path, or when XFS is shut down (open's -EIO).
 */
export function daxFsOpenPath(k: Kernel, path: string): DaxFile | null {
  const hit = daxFsLookup(k, path);
  if (!hit) return null;
  if (hit.fs.kind === "xfs" && hit.fs.shutdown) return null;
  return newFile(k, hit.fs, hit.inode);
}
