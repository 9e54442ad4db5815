/**
 * Mounted superblocks by block device and mount point (fs/super.c get_super, fs/namespace.c), and what the
 * block layer does to a mounted filesystem when its disk goes away (block/bdev.c __invalidate_device).
 */
import type { Kernel } from "../kernel.ts";
import { sideTable } from "../lib/rewind.ts";
import { type KernelPath, step } from "../path.ts";

/** What the VFS and block layer need of a mounted filesystem. */
export interface SuperBlock {
  /** s_id: the block device name ("pmem0"). */
  readonly disk: string;
  readonly mountpoint: string;
  readonly fsType: string;
  /** invalidate_inodes(sb, kill_dirty): evict every in-core inode nobody references; true if some were busy. */
  invalidateInodes(killDirty: boolean): KernelPath<boolean>;
}

const MOUNTS = sideTable<Kernel, Map<string, SuperBlock>>();

function mounts(k: Kernel): Map<string, SuperBlock> {
  let m = MOUNTS.get(k);
  if (!m) {
    m = new Map();
    MOUNTS.set(k, m);
  }
  return m;
}

/** Every mounted superblock, by mount point. */
export function mountedSupers(k: Kernel): ReadonlyMap<string, SuperBlock> {
  return mounts(k);
}

export function registerSuper(k: Kernel, sb: SuperBlock): void {
  mounts(k).set(sb.mountpoint, sb);
}

export function unregisterSuper(k: Kernel, sb: SuperBlock): void {
  mounts(k).delete(sb.mountpoint);
}

/** get_super(bdev): the superblock mounted from this disk, if any. */
// ref: fs/super.c get_super
export function getSuper(k: Kernel, disk: string): SuperBlock | null {
  for (const sb of mounts(k).values()) if (sb.disk === disk) return sb;
  return null;
}

/** The superblock whose mount point is the longest prefix of `path`, and the path inside it. */
export function lookupMount(k: Kernel, path: string): { sb: SuperBlock; rel: string } | null {
  let best: SuperBlock | null = null;
  for (const sb of mounts(k).values()) {
    const mp = sb.mountpoint.endsWith("/") ? sb.mountpoint : `${sb.mountpoint}/`;
    if (path.startsWith(mp) && (!best || sb.mountpoint.length > best.mountpoint.length)) best = sb;
  }
  if (!best) return null;
  const mp = best.mountpoint.endsWith("/") ? best.mountpoint : `${best.mountpoint}/`;
  return { sb: best, rel: path.slice(mp.length) };
}

/**
 * __invalidate_device(bdev, kill_dirty) from del_gendisk: a still-mounted filesystem loses its unused dentries
 * and inodes (their DAX entries go with them); inodes something still holds (open files, mappings) stay.
 */
// ref: block/bdev.c __invalidate_device; fs/inode.c invalidate_inodes
export function* invalidateDevice(k: Kernel, disk: string, killDirty: boolean): KernelPath<boolean> {
  const sb = getSuper(k, disk);
  if (!sb) return false;
  yield step(`__invalidate_device(${disk}): shrink_dcache_sb`);
  return yield* sb.invalidateInodes(killDirty);
}
