/**
 * The iomem resource tree (kernel/resource.c): what /proc/iomem prints.
 *
 * Resources are few (hundreds at most), so they are plain objects linked as the kernel links them:
 * parent, first child, next sibling, children sorted by start and never overlapping.
 * Ends are inclusive, as in `struct resource`.
 */
import { EBUSY, EINVAL, type Errno } from "./errno.ts";

export const IORESOURCE_MEM = 0x00000200;
export const IORESOURCE_MUXED = 0x00400000;
export const IORESOURCE_SYSRAM = 0x01000000;
export const IORESOURCE_SYSRAM_DRIVER_MANAGED = 0x02000000;
export const IORESOURCE_SYSRAM_MERGEABLE = 0x04000000;
export const IORESOURCE_BUSY = 0x80000000;
export const IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM;

export const IORES_DESC_NONE = 0;
export const IORES_DESC_ACPI_TABLES = 2;
export const IORES_DESC_ACPI_NV_STORAGE = 3;
export const IORES_DESC_PERSISTENT_MEMORY = 4;
export const IORES_DESC_PERSISTENT_MEMORY_LEGACY = 5;
export const IORES_DESC_DEVICE_PRIVATE_MEMORY = 6;
export const IORES_DESC_RESERVED = 7;
export const IORES_DESC_SOFT_RESERVED = 8;

export const REGION_INTERSECTS = 0;
export const REGION_DISJOINT = 1;
export const REGION_MIXED = 2;

export interface Resource {
  name: string;
  start: number;
  /** Inclusive. */
  end: number;
  flags: number;
  desc: number;
  parent: Resource | null;
  sibling: Resource | null;
  child: Resource | null;
}

export function newResource(name: string, start: number, end: number, flags: number, desc = IORES_DESC_NONE): Resource {
  return { name, start, end, flags, desc, parent: null, sibling: null, child: null };
}

/** Flags are bit sets above 2^31; JS bitwise ops are signed 32-bit, so test bits through unsigned math. */
export function hasFlags(flags: number, want: number): boolean {
  return ((flags & want) >>> 0) === want >>> 0;
}

/** The iomem root: [0, 2^64-1] in the kernel; here [0, 2^MAX_PHYSMEM_BITS... ] is not used, -1 means "all". */
export function iomemRoot(): Resource {
  return newResource("PCI mem", 0, Number.MAX_SAFE_INTEGER, IORESOURCE_MEM);
}

// ref: kernel/resource.c __request_resource
function requestResourceConflict(root: Resource, res: Resource): Resource | null {
  const { start, end } = res;
  if (end < start || start < root.start || end > root.end) return root;
  let prev: Resource | null = null;
  let tmp = root.child;
  for (;;) {
    if (tmp === null || tmp.start > end) {
      res.sibling = tmp;
      if (prev === null) root.child = res;
      else prev.sibling = res;
      res.parent = root;
      return null;
    }
    if (tmp.end < start) {
      prev = tmp;
      tmp = tmp.sibling;
      continue;
    }
    return tmp;
  }
}

// ref: kernel/resource.c request_resource
export function requestResource(root: Resource, res: Resource): Errno {
  return requestResourceConflict(root, res) ? -EBUSY : 0;
}

// ref: kernel/resource.c __insert_resource
function insertResourceConflict(parentIn: Resource, res: Resource): Resource | null {
  let parent = parentIn;
  let first: Resource | null;
  for (;; parent = first) {
    first = requestResourceConflict(parent, res);
    if (first === null) return null;
    if (first === parent) return first;
    if (first === res) return first; // duplicated insertion (WARN_ON in the kernel)
    if (first.start > res.start || first.end < res.end) break;
    if (first.start === res.start && first.end === res.end) break;
  }
  let next: Resource = first;
  for (;;) {
    // A partial overlap is bad and unfixable.
    if (next.start < res.start || next.end > res.end) return next;
    if (next.sibling === null || next.sibling.start > res.end) break;
    next = next.sibling;
  }
  res.parent = parent;
  res.sibling = next.sibling;
  res.child = first;
  next.sibling = null;
  for (let c: Resource | null = first; c; c = c.sibling) c.parent = res;
  if (parent.child === first) {
    parent.child = res;
  } else {
    let p = parent.child!;
    while (p.sibling !== first) p = p.sibling!;
    p.sibling = res;
  }
  return null;
}

// ref: kernel/resource.c insert_resource
export function insertResource(parent: Resource, res: Resource): Errno {
  return insertResourceConflict(parent, res) ? -EBUSY : 0;
}

// ref: kernel/resource.c insert_resource_expand_to_fit
export function insertResourceExpandToFit(root: Resource, res: Resource): void {
  if (res.parent) return;
  for (;;) {
    const conflict = insertResourceConflict(root, res);
    if (!conflict || conflict === root) break;
    // Grow to cover the conflict, then try again.
    if (conflict.start < res.start) res.start = conflict.start;
    if (conflict.end > res.end) res.end = conflict.end;
  }
}

// ref: kernel/resource.c __release_resource
function releaseResourceInner(old: Resource, releaseChild: boolean): Errno {
  const parent = old.parent;
  if (!parent) return -EINVAL;
  let prev: Resource | null = null;
  for (let tmp = parent.child; tmp; prev = tmp, tmp = tmp.sibling) {
    if (tmp !== old) continue;
    let replacement: Resource | null;
    if (releaseChild || !tmp.child) {
      replacement = tmp.sibling;
    } else {
      // Children move up to where the released resource was.
      let chd = tmp.child;
      for (;;) {
        chd.parent = tmp.parent;
        if (!chd.sibling) break;
        chd = chd.sibling;
      }
      chd.sibling = tmp.sibling;
      replacement = tmp.child;
    }
    if (prev) prev.sibling = replacement;
    else parent.child = replacement;
    old.parent = null;
    return 0;
  }
  return -EINVAL;
}

// ref: kernel/resource.c release_resource
export function releaseResource(old: Resource): Errno {
  return releaseResourceInner(old, true);
}

// ref: kernel/resource.c remove_resource
export function removeResource(old: Resource): Errno {
  return releaseResourceInner(old, false);
}

// ref: kernel/resource.c __request_region
export function requestRegion(parentIn: Resource, start: number, n: number, name: string, flags = 0): Resource | null {
  let parent = parentIn;
  const res = newResource(name, start, start + n - 1, 0);
  for (;;) {
    res.flags = (parent.flags & 0x1f00) | (parent.flags & IORESOURCE_SYSRAM) | IORESOURCE_BUSY | flags;
    res.flags >>>= 0;
    res.desc = parent.desc;
    const conflict = requestResourceConflict(parent, res);
    if (!conflict) return res;
    // Descend into a non-busy container (e.g. a "Persistent Memory (legacy)" region).
    if (conflict !== parent && !hasFlags(conflict.flags, IORESOURCE_BUSY)) {
      parent = conflict;
      continue;
    }
    return null;
  }
}

// ref: kernel/resource.c __release_region
export function releaseRegion(parent: Resource, start: number, n: number): boolean {
  const end = start + n - 1;
  let container = parent;
  let prev: Resource | null = null;
  let res = container.child;
  while (res) {
    if (res.start <= start && res.end >= end) {
      if (!hasFlags(res.flags, IORESOURCE_BUSY)) {
        container = res;
        prev = null;
        res = res.child;
        continue;
      }
      if (res.start !== start || res.end !== end) break;
      if (prev) prev.sibling = res.sibling;
      else container.child = res.sibling;
      res.parent = null;
      return true;
    }
    prev = res;
    res = res.sibling;
  }
  return false; // "Trying to free nonexistent resource"
}

// ref: kernel/resource.c __adjust_resource
export function adjustResource(res: Resource, start: number, size: number): Errno {
  const end = start + size - 1;
  const parent = res.parent;
  if (parent) {
    if (start < parent.start || end > parent.end) return -EBUSY;
    if (res.sibling && res.sibling.start <= end) return -EBUSY;
    if (parent.child !== res) {
      let tmp = parent.child!;
      while (tmp.sibling !== res) tmp = tmp.sibling!;
      if (start <= tmp.end) return -EBUSY;
    }
  }
  for (let c = res.child; c; c = c.sibling) if (c.start < start || c.end > end) return -EBUSY;
  res.start = start;
  res.end = end;
  return 0;
}

// ref: kernel/resource.c release_mem_region_adjustable
export function releaseMemRegionAdjustable(root: Resource, start: number, size: number): void {
  const end = start + size - 1;
  let container = root;
  let prev: Resource | null = null;
  let res = container.child;
  while (res) {
    if (res.start >= end) break;
    if (res.start > start || res.end < end) {
      prev = res;
      res = res.sibling;
      continue;
    }
    if (!hasFlags(res.flags, IORESOURCE_MEM)) break;
    if (!hasFlags(res.flags, IORESOURCE_BUSY)) {
      container = res;
      prev = null;
      res = res.child;
      continue;
    }
    // A child that would end up outside the adjusted entry makes __adjust_resource fail (WARN): no change.
    if (res.start === start && res.end === end) {
      if (prev) prev.sibling = res.sibling;
      else container.child = res.sibling;
      res.parent = null;
    } else if (res.start === start) {
      adjustResource(res, end + 1, res.end - end);
    } else if (res.end === end) {
      adjustResource(res, res.start, start - res.start);
    } else {
      // Split in two; children stay with the lower entry.
      const upper = newResource(res.name, end + 1, res.end, res.flags, res.desc);
      upper.parent = res.parent;
      upper.sibling = res.sibling;
      if (adjustResource(res, res.start, start - res.start)) break;
      res.sibling = upper;
    }
    break;
  }
}

/** Depth-first walk in /proc/iomem order. */
export function* walkResources(root: Resource): Generator<{ res: Resource; depth: number }> {
  function* walk(r: Resource | null, depth: number): Generator<{ res: Resource; depth: number }> {
    for (let c = r; c; c = c.sibling) {
      yield { res: c, depth };
      yield* walk(c.child, depth + 1);
    }
  }
  yield* walk(root.child, 0);
}

function isTypeMatch(p: Resource, flags: number, desc: number): boolean {
  return hasFlags(p.flags, flags) && (desc === IORES_DESC_NONE || desc === p.desc);
}

// ref: kernel/resource.c __region_intersects
export function regionIntersects(root: Resource, start: number, size: number, flags: number, desc: number): number {
  const end = start + size - 1;
  let type = 0;
  let other = 0;
  for (let p = root.child; p; p = p.sibling) {
    if (p.end < start || p.start > end) continue;
    if (isTypeMatch(p, flags, desc)) {
      type++;
      continue;
    }
    // Descendants that match count as covering part of p.
    let oStart = Math.max(p.start, start);
    const oEnd = Math.min(p.end, end);
    let covered = false;
    for (const { res: dp } of walkResources(p)) {
      if (dp.end < start || dp.start > end) continue;
      if (isTypeMatch(dp, flags, desc)) {
        type++;
        if (dp.start > oStart) break;
        if (dp.end >= oEnd) {
          covered = true;
          break;
        }
        oStart = Math.max(oStart, dp.end + 1);
      }
    }
    if (!covered) other++;
  }
  if (type === 0) return REGION_DISJOINT;
  if (other === 0) return REGION_INTERSECTS;
  return REGION_MIXED;
}

// ref: kernel/resource.c next_resource, next_resource_skip_children (the for_each_resource step)
function nextResource(p: Resource, skipChildren: boolean): Resource | null {
  if (!skipChildren && p.child) return p.child;
  let q = p;
  while (!q.sibling && q.parent) q = q.parent;
  return q.sibling;
}

// ref: kernel/resource.c find_next_iomem_res
function findNextIomemRes(root: Resource, start: number, end: number, flags: number, desc: number): { start: number; end: number } | null {
  if (start >= end) return null;
  // Skip children until a top-level range overlaps, then look at descendants too.
  let skipChildren = true;
  let p = root.child;
  for (; p; p = nextResource(p, skipChildren)) {
    if (p.start > end) return null;
    if (p.end < start) continue;
    skipChildren = false;
    if (isTypeMatch(p, flags, desc)) break;
  }
  return p ? { start: Math.max(start, p.start), end: Math.min(end, p.end) } : null;
}

/** Calls fn(pfn, nrPages) for each busy System RAM part of [startPfn, startPfn+nrPages); -EINVAL if none, else fn's last result. */
// ref: kernel/resource.c walk_system_ram_range
export function walkSystemRamRange(
  root: Resource,
  startPfn: number,
  nrPages: number,
  pageSize: number,
  fn: (pfn: number, nrPages: number) => number,
): number {
  let start = startPfn * pageSize;
  const end = (startPfn + nrPages) * pageSize - 1;
  const flags = (IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY) >>> 0;
  let ret: number = -EINVAL;
  while (start < end) {
    const res = findNextIomemRes(root, start, end, flags, IORES_DESC_NONE);
    if (!res) break;
    const pfn = Math.ceil(res.start / pageSize);
    const endPfn = Math.floor((res.end + 1) / pageSize);
    if (endPfn > pfn) ret = fn(pfn, endPfn - pfn);
    if (ret) break;
    start = res.end + 1;
  }
  return ret;
}

/** Find a resource by exact range and name anywhere in the tree. */
export function findResource(root: Resource, pred: (r: Resource) => boolean): Resource | null {
  for (const { res } of walkResources(root)) if (pred(res)) return res;
  return null;
}

// ref: kernel/resource.c __reserve_region_with_split
export function reserveRegionWithSplit(root: Resource, start: number, end: number, name: string): void {
  const type = root.flags & 0x1f00;
  let res: Resource = newResource(name, start, end, (type | IORESOURCE_BUSY) >>> 0);
  let next: Resource | null = null;
  for (;;) {
    const conflict = requestResourceConflict(root, res);
    if (!conflict) {
      if (!next) break;
      res = next;
      next = null;
      continue;
    }
    // The conflict covers the whole area: nothing to reserve.
    if (conflict.start <= res.start && conflict.end >= res.end) break;
    // Split around the conflict and try again.
    if (conflict.start > res.start) {
      const oldEnd = res.end;
      res.end = conflict.start - 1;
      if (conflict.end < oldEnd) next = newResource(name, conflict.end + 1, oldEnd, (type | IORESOURCE_BUSY) >>> 0);
    } else {
      res.start = conflict.end + 1;
    }
  }
}
