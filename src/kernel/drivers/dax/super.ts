/**
 * struct dax_device and its holder (drivers/dax/super.c, 6.1): what a pmem disk hands a DAX filesystem.
 *
 * pmem_attach_disk allocates a dax_device per disk (alloc_dax) and publishes it in dax_hosts keyed by the
 * disk; a filesystem finds it at mount with fs_dax_get_by_bdev, optionally registering itself as the holder
 * with holder ops (XFS does; ext4 passes no holder). dax_holder_notify_failure forwards a media failure (or,
 * from kill_dax on unbind, the whole device as failed) to the holder. kill_dax clears DAXDEV_ALIVE and waits
 * out dax_read_lock readers (synchronize_srcu), after which dax_direct_access fails with -ENXIO.
 */
import { EEXIST, EINVAL, ENXIO, EOPNOTSUPP, ERANGE, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { sideTable } from "../../lib/rewind.ts";
import type { Task } from "../../mm/mm_types.ts";
import { type KernelPath, step } from "../../path.ts";

/** U64_MAX, the length kill_dax reports (offsets and lengths of a failure are u64: bigint here). */
export const U64_MAX = (1n << 64n) - 1n;

/** struct dax_holder_operations */
export interface DaxHolderOps {
  /**
   * ->notify_failure(dax_dev, offset, len, mf_flags). `current` is the task the kernel is running on behalf
   * of (C's implicit `current`: the task that consumed the poison, or null for a kernel thread / another
   * process such as the shell writing to unbind).
   */
  notifyFailure(dax: DaxDevice, offset: bigint, len: bigint, mfFlags: number, current: Task | null): KernelPath<Errno>;
}

/** What a dax_device's driver provides (struct dax_operations, the part DAX faults use). */
export interface DaxOperations {
  /** ->direct_access: pfn of device page `pgoff` and how many pages from there are accessible, or an errno. */
  directAccess(pgoff: number, nrPages: number): { avail: number; pfn: number; pfnFlags: number } | Errno;
}

/** The gendisk a dax_device serves, as fs_dax_get_by_bdev looks at it. */
export interface DaxHostDisk {
  readonly name: string;
  /** QUEUE_FLAG_DAX: set only when the pmem has struct pages (PFN_MAP). */
  queueDax(): boolean;
  /** Capacity in bytes (0 once del_gendisk ran). */
  bytes(): number;
}

/** struct dax_device */
export interface DaxDevice {
  readonly id: number;
  readonly ops: DaxOperations;
  /** The driver's private data, for reports ("pmem0"). */
  readonly name: string;
  /** DAXDEV_ALIVE */
  alive: boolean;
  /** dax_read_lock holders (SRCU readers) right now. */
  readers: number;
  /** holder_data: who holds it (a filesystem, named), and its ops. */
  holder: string | null;
  holderOps: DaxHolderOps | null;
  /** The host disk once dax_add_host ran. */
  host: DaxHostDisk | null;
  /** inode references (igrab at fs_dax_get_by_bdev, put_dax). */
  refs: number;
  /** dax_free_inode: what the driver's allocation gives back when the last reference goes. */
  readonly release: (() => void) | null;
}

interface DaxState {
  nextId: number;
  /** dax_hosts: disk name → dax_device */
  hosts: Map<string, DaxDevice>;
}

const STATE = sideTable<Kernel, DaxState>();

function daxState(k: Kernel): DaxState {
  let s = STATE.get(k);
  if (!s) {
    s = { nextId: 1, hosts: new Map() };
    STATE.set(k, s);
  }
  return s;
}

/** alloc_dax: a live dax_device (6.1 sets DAXDEV_ALIVE at allocation; run_dax is for device-dax). */
// ref: drivers/dax/super.c alloc_dax, dax_dev_get
export function allocDax(k: Kernel, name: string, ops: DaxOperations, release: (() => void) | null = null): DaxDevice {
  const s = daxState(k);
  return { id: s.nextId++, ops, name, alive: true, readers: 0, holder: null, holderOps: null, host: null, refs: 1, release };
}

// ref: drivers/dax/super.c dax_add_host
export function daxAddHost(k: Kernel, dax: DaxDevice, disk: DaxHostDisk): Errno {
  const s = daxState(k);
  if (s.hosts.has(disk.name)) return -EEXIST; // xa_insert
  s.hosts.set(disk.name, dax);
  dax.host = disk;
  return 0;
}

// ref: drivers/dax/super.c dax_remove_host
export function daxRemoveHost(k: Kernel, disk: string): void {
  daxState(k).hosts.delete(disk);
}

/** The disk a dax_device was published for (the block device a mount names), if still published. */
export function daxHostByDisk(k: Kernel, disk: string): DaxDevice | null {
  return daxState(k).hosts.get(disk) ?? null;
}

// ref: drivers/dax/super.c dax_read_lock
export function* daxReadLock(dax: DaxDevice, at: string): KernelPath<void> {
  dax.readers++;
  yield step(`${at}: dax_read_lock`);
}

// ref: drivers/dax/super.c dax_read_unlock
export function daxReadUnlock(dax: DaxDevice): void {
  dax.readers--;
}

/**
 * fs_dax_get_by_bdev: the disk's dax_device, or null when the queue is not DAX-capable, nothing is published,
 * the device is dead, or another holder has it (a holder is registered with cmpxchg).
 */
// ref: drivers/dax/super.c fs_dax_get_by_bdev
export function* fsDaxGetByBdev(k: Kernel, disk: DaxHostDisk, holder: string | null, ops: DaxHolderOps | null): KernelPath<DaxDevice | null> {
  if (!disk.queueDax()) return null;
  const dax = daxState(k).hosts.get(disk.name);
  if (!dax) return null;
  yield* daxReadLock(dax, "fs_dax_get_by_bdev");
  try {
    if (!dax.alive) return null;
    // igrab comes first: when another holder already has the device the C returns NULL without dropping it.
    dax.refs++;
    if (holder) {
      if (dax.holder !== null) return null;
      dax.holder = holder;
      dax.holderOps = ops;
    }
    return dax;
  } finally {
    daxReadUnlock(dax);
  }
}

/** fs_put_dax: drop the holder (if it is still ours) and the reference. */
// ref: drivers/dax/super.c fs_put_dax
export function fsPutDax(dax: DaxDevice | null, holder: string | null): void {
  if (!dax) return;
  if (holder && dax.holder === holder) {
    dax.holder = null;
    dax.holderOps = null;
  }
  putDax(dax);
}

// ref: drivers/dax/super.c put_dax
export function putDax(dax: DaxDevice): void {
  dax.refs--;
  if (dax.refs === 0) dax.release?.();
}

// ref: drivers/dax/super.c dax_holder
export function daxHolder(dax: DaxDevice): string | null {
  return dax.holder;
}

/**
 * dax_holder_notify_failure: -ENXIO once the device is dead, -EOPNOTSUPP without holder ops (ext4, or no
 * filesystem at all), else what the holder's ->notify_failure says.
 */
// ref: drivers/dax/super.c dax_holder_notify_failure
export function* daxHolderNotifyFailure(dax: DaxDevice, offset: bigint, len: bigint, mfFlags: number, current: Task | null): KernelPath<Errno> {
  yield* daxReadLock(dax, "dax_holder_notify_failure");
  try {
    if (!dax.alive) return -ENXIO;
    const ops = dax.holderOps;
    if (!ops) return -EOPNOTSUPP;
    return yield* ops.notifyFailure(dax, offset, len, mfFlags, current);
  } finally {
    daxReadUnlock(dax);
  }
}

/** dax_direct_access: -ENXIO on a dead device, -ERANGE when nothing is accessible, else min(avail, nr). */
// ref: drivers/dax/super.c dax_direct_access
export function daxDirectAccess(dax: DaxDevice | null, pgoff: number, nrPages: number): { avail: number; pfn: number; pfnFlags: number } | Errno {
  if (!dax) return -EOPNOTSUPP;
  if (!dax.alive) return -ENXIO;
  if (nrPages < 0) return -EINVAL;
  const r = dax.ops.directAccess(pgoff, nrPages);
  if (typeof r === "number") return r;
  if (r.avail === 0) return -ERANGE;
  return { ...r, avail: Math.min(r.avail, nrPages) };
}

/**
 * kill_dax: a holder is told the whole device failed (offset 0, U64_MAX, flags 0) while the device is still
 * alive; then DAXDEV_ALIVE is cleared, SRCU readers drain, and the holder is forgotten.
 */
// ref: drivers/dax/super.c kill_dax
export function* killDax(dax: DaxDevice | null, current: Task | null = null): KernelPath<void> {
  if (!dax) return;
  if (dax.holder !== null) yield* daxHolderNotifyFailure(dax, 0n, U64_MAX, 0, current);
  dax.alive = false;
  yield step(`kill_dax(${dax.name}): clear_bit(DAXDEV_ALIVE)`);
  yield {
    kind: "block",
    at: "kill_dax: synchronize_srcu(&dax_srcu)",
    until: () => dax.readers === 0,
    holder: () => `${dax.readers} dax_read_lock reader(s) on ${dax.name}`,
  };
  dax.holderOps = null;
  dax.holder = null;
}
