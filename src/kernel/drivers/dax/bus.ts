/**
 * The dax bus (drivers/dax/bus.c): dax regions, dev_dax devices and their ranges, the dax_region attribute
 * group of the parent device, the dev_dax and mappingN attributes, and the new_id/remove_id driver lists.
 *
 * Static regions (IORESOURCE_DAX_STATIC: dax_pmem) hold one device with a pre-made pgmap; dynamic regions
 * (hmem, cxl) are carved up through size/mapping writes.
 */
import { EBUSY, EINVAL, ENOMEM, ENOSPC, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import type { ByteRange, DevPagemap } from "../../mm/dev_pagemap.ts";
import type { VmemAltmap } from "../../mm/vmem_altmap.ts";
import { type KernelPath, step } from "../../path.ts";
import {
  adjustResource,
  IORESOURCE_MEM,
  newResource,
  type Resource,
  releaseRegion,
  requestRegion,
} from "../../resource.ts";
import { ro, type SysfsAttr } from "../../sysfs.ts";
import {
  type Device,
  type Driver,
  deviceAdd,
  deviceCore,
  deviceUnregister,
  devmAddAction,
  devmAddPlainAction,
  driverAttach,
  EACCES,
  Ida,
  runOp,
} from "../nvdimm/device_core.ts";
import { hex } from "../nvdimm/nd.ts";
import { hasTransparentHugepage, kstrtoul, memremapCompatAlign } from "../nvdimm/pfn_devs.ts";

/** IORESOURCE_DAX_STATIC */
// ref: drivers/dax/bus.h IORESOURCE_DAX_STATIC
export const IORESOURCE_DAX_STATIC = 1 << 0;

/** The char-device major the oracle guest's kernel gave dax (alloc_chrdev_region picks it at boot). */
export const DAX_MAJOR = 252;

/** struct dax_region */
export interface DaxRegion {
  readonly id: number;
  readonly align: number;
  /** The parent device (an nd_dax for dax_pmem) whose drvdata this is. */
  readonly dev: Device;
  readonly targetNode: number;
  /** Not in iomem: the allocation space of the region's devices (children named after them). */
  readonly res: Resource;
  readonly isStatic: boolean;
  readonly ida: Ida;
  seed: DevDax | null;
  youngest: DevDax | null;
}

export interface DevDaxRange {
  pgoff: number;
  range: ByteRange;
  /** mappingN id while the mapping device is registered. */
  mapping: number | null;
}

/** The pgmap a static region hands its device (a copy of the nvdimm pgmap: range, altmap). */
export interface StaticPgmap {
  ranges: ByteRange[];
  altmap: VmemAltmap | null;
}

/** struct dev_dax */
export interface DevDax extends Device {
  readonly kind: "dev_dax";
  readonly region: DaxRegion;
  id: number;
  align: number;
  readonly targetNode: number;
  ranges: DevDaxRange[];
  /** Static devices: the pgmap from dax_pmem. Dynamic: built at probe. */
  staticPgmap: StaticPgmap | null;
  /** The live pgmap while bound to device_dax. */
  pgmap: DevPagemap | null;
  /** dax_device alive (run_dax) / dead (kill_dax). */
  alive: boolean;
  readonly minor: number;
  readonly mappingIda: Ida;
  /** kmem's drvdata: one iomem resource per range it hot-added. */
  kmem: { res: Array<Resource | null> } | null;
}

export function isDevDax(dev: Device | null): dev is DevDax {
  return dev?.kind === "dev_dax";
}

/** The dax subsystem of a kernel: the bus, and the minor numbers of dax devices. */
export interface DaxState {
  readonly minorIda: Ida;
  /** Per driver: the device names added through new_id. */
  readonly ids: Map<string, Set<string>>;
}

export function daxState(k: Kernel): DaxState {
  const core = deviceCore(k);
  if (!core.dax) {
    core.dax = { minorIda: new Ida(), ids: new Map() };
    core.buses.set("dax", {
      name: "dax",
      probe: (dev, drv) => daxBusProbe(dev, drv),
      remove: (dev, drv) => daxBusRemove(dev, drv),
    });
  }
  return core.dax;
}

// ref: drivers/dax/bus.c dev_dax_size
export function devDaxSize(dd: DevDax): number {
  return dd.ranges.reduce((n, r) => n + r.range.end - r.range.start + 1, 0);
}

// ref: drivers/dax/bus.c dax_bus_probe
function* daxBusProbe(dev: Device, drv: Driver): KernelPath<Errno> {
  if (!isDevDax(dev)) return -ENXIO;
  if (devDaxSize(dev) === 0 || dev.id < 0) return -ENXIO;
  const rc = yield* drv.probe(dev);
  if (rc || dev.region.isStatic) return rc;
  if (dev.region.seed === dev) dev.region.seed = null;
  return 0;
}

// ref: drivers/dax/bus.c dax_bus_remove
function* daxBusRemove(dev: Device, drv: Driver): KernelPath<void> {
  if (drv.remove) yield* drv.remove(dev);
}

/** A dax driver: device_dax matches every device, the others only the names written to new_id. */
export interface DaxDriverSpec {
  name: string;
  matchAlways: boolean;
  probe(dd: DevDax): KernelPath<Errno>;
  remove?(dd: DevDax): KernelPath<void>;
}

// ref: drivers/dax/bus.c __dax_driver_register, dax_bus_match, dax_match_id, do_id_store
export function* daxDriverRegister(k: Kernel, spec: DaxDriverSpec): KernelPath<void> {
  const st = daxState(k);
  const ids = new Set<string>();
  st.ids.set(spec.name, ids);
  const drv: Driver = {
    name: spec.name,
    bus: "dax",
    match: (dev) => spec.matchAlways || ids.has(dev.name),
    *probe(dev) {
      if (!isDevDax(dev)) return -ENXIO;
      return yield* spec.probe(dev);
    },
    remove: spec.remove
      ? function* (dev) {
          if (isDevDax(dev)) yield* spec.remove!(dev);
        }
      : undefined,
    attrs: () =>
      new Map<string, SysfsAttr>([
        ["new_id", { show: () => -EACCES, store: (v) => doIdStore(k, drv, ids, v, "add") }],
        ["remove_id", { show: () => -EACCES, store: (v) => doIdStore(k, drv, ids, v, "remove") }],
      ]),
  };
  deviceCore(k).drivers.push(drv);
  yield* driverAttach(k, drv);
}

// ref: drivers/dax/bus.c do_id_store
function doIdStore(k: Kernel, drv: Driver, ids: Set<string>, buf: string, action: "add" | "remove"): Errno {
  const m = /^dax(\d+)\.(\d+)$/.exec(buf.trim());
  if (!m) return -EINVAL;
  const name = `dax${Number(m[1])}.${Number(m[2])}`;
  if (buf.replace(/\n$/, "") !== name) return -EINVAL;
  if (action === "add") {
    ids.add(name);
    runOp(k, driverAttach(k, drv));
  } else {
    ids.delete(name);
  }
  return 0;
}

/** The dax_region attribute group (static regions hide available_size, create, seed, delete). */
// ref: drivers/dax/bus.c dax_region_attributes, dax_region_visible
export function daxRegionAttrs(r: DaxRegion): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>([
    ["size", ro(() => String(r.res.end - r.res.start + 1))],
    ["align", ro(() => String(r.align))],
    ["id", ro(() => String(r.id))],
  ]);
  if (!r.isStatic) {
    attrs.set("available_size", ro(() => String(daxRegionAvailSize(r))));
    attrs.set("seed", ro(() => r.seed?.name ?? ""));
    attrs.set("create", ro(() => r.youngest?.name ?? ""));
  }
  return attrs;
}

// ref: drivers/dax/bus.c dax_region_avail_size
export function daxRegionAvailSize(r: DaxRegion): number {
  let size = r.res.end - r.res.start + 1;
  for (let c = r.res.child; c; c = c.sibling) size -= c.end - c.start + 1;
  return size;
}

/**
 * alloc_dax_region: the region in the parent's drvdata and its dax_region/ group; null when the parent already
 * has drvdata or the range is not aligned to `align` (callers map that to -ENOMEM).
 */
// ref: drivers/dax/bus.c alloc_dax_region, dax_region_unregister
export function allocDaxRegion(
  parent: Device & { daxRegion: DaxRegion | null },
  regionId: number,
  range: ByteRange,
  targetNode: number,
  align: number,
  flags: number,
): DaxRegion | null {
  if (parent.daxRegion) return null;
  const len = range.end - range.start + 1;
  if (range.start % align !== 0 || len % align !== 0) return null;
  const region: DaxRegion = {
    id: regionId,
    align,
    dev: parent,
    targetNode,
    res: newResource(parent.name, range.start, range.end, IORESOURCE_MEM | flags),
    isStatic: (flags & IORESOURCE_DAX_STATIC) !== 0,
    ida: new Ida(),
    seed: null,
    youngest: null,
  };
  parent.daxRegion = region;
  devmAddPlainAction(parent, "dax_region_unregister", () => {
    parent.daxRegion = null;
  });
  return region;
}

// ref: drivers/dax/bus.c alloc_is_aligned
export function allocIsAligned(k: Kernel, dd: DevDax, size: number): boolean {
  return size % Math.max(dd.align, memremapCompatAlign(k.arch)) === 0;
}

/** mappingN attributes (all 0400: root reads them). */
// ref: drivers/dax/bus.c start_show, end_show, pgoff_show
function mappingAttrs(r: DevDaxRange): Map<string, SysfsAttr> {
  return new Map<string, SysfsAttr>([
    ["start", ro(() => hex(r.range.start))],
    ["end", ro(() => hex(r.range.end))],
    ["page_offset", ro(() => hex(r.pgoff))],
  ]);
}

// ref: drivers/dax/dax-private.h dax_align_valid
export function daxAlignValid(k: Kernel, align: number): boolean {
  const g = k.geo;
  if (hasTransparentHugepage(k.arch)) {
    if (align === 2 ** k.arch.pmdShift) return true;
    if (k.arch.selects.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD && k.arch.pudShift !== null && align === 2 ** k.arch.pudShift) return true;
  }
  return align === g.pageSize;
}

/** dev_dax attributes; static devices show align and size read-only and have no mapping store. */
// ref: drivers/dax/bus.c dev_dax_attributes, dev_dax_visible, resource_show, modalias_show, numa_node_show
function devDaxAttrs(k: Kernel, dd: DevDax): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>([
    ["modalias", ro(() => "dax:t0")],
    ["size", dd.region.isStatic ? ro(() => String(devDaxSize(dd))) : { show: () => String(devDaxSize(dd)), store: (v) => devDaxSizeStore(k, dd, v) }],
    ["align", dd.region.isStatic ? ro(() => String(dd.align)) : { show: () => String(dd.align), store: (v) => devDaxAlignStore(k, dd, v) }],
    ["resource", ro(() => hex(dd.ranges.length < 1 ? dd.region.res.start : dd.ranges[0]!.range.start))],
    ["dev", ro(() => `${DAX_MAJOR}:${dd.minor}`)],
  ]);
  if (dd.targetNode >= 0) attrs.set("target_node", ro(() => String(dd.targetNode)));
  if (k.config.enabled("NUMA")) attrs.set("numa_node", ro(() => String(dd.numaNode)));
  if (!dd.region.isStatic) attrs.set("mapping", { show: () => -EACCES, store: (v) => devDaxMappingStore(k, dd, v) });
  return attrs;
}

// ref: drivers/dax/bus.c align_store, dev_dax_validate_align
function devDaxAlignStore(k: Kernel, dd: DevDax, buf: string): Errno {
  const r = kstrtoul(buf, 0);
  if (!r.ok) return -ENXIO;
  const val = Number(r.value);
  if (!daxAlignValid(k, val)) return -EINVAL;
  if (!dd.region.dev.driver) return -ENXIO;
  if (dd.driver) return -EBUSY;
  const save = dd.align;
  dd.align = val;
  for (const r of dd.ranges) {
    if (!allocIsAligned(k, dd, r.range.end - r.range.start + 1)) {
      dd.align = save;
      return -EINVAL;
    }
  }
  return 0;
}

// ref: drivers/dax/bus.c alloc_dev_dax_range, devm_register_dax_mapping
function allocDevDaxRange(k: Kernel, dd: DevDax, start: number, size: number): Errno {
  if (!size) return dd.ranges.length ? -EBUSY : 0;
  const alloc = requestRegion(dd.region.res, start, size, dd.name);
  if (!alloc) return -ENOMEM;
  let pgoff = 0;
  for (const r of dd.ranges) pgoff += k.physPfn(r.range.end - r.range.start + 1);
  const range: DevDaxRange = { pgoff, range: { start: alloc.start, end: alloc.end }, mapping: null };
  dd.ranges.push(range);
  if (dd.registered) registerDaxMapping(dd, range);
  return 0;
}

// ref: drivers/dax/bus.c devm_register_dax_mapping, unregister_dax_mapping
function registerDaxMapping(dd: DevDax, range: DevDaxRange): void {
  const id = dd.mappingIda.get();
  range.mapping = id;
  devmAddPlainAction(dd.region.dev, `unregister_dax_mapping(${dd.name}/mapping${id})`, () => {
    range.mapping = null;
    dd.mappingIda.remove(id);
  });
}

// ref: drivers/dax/bus.c trim_dev_dax_range
function trimDevDaxRange(dd: DevDax): void {
  const r = dd.ranges.pop();
  if (!r) return;
  releaseRegion(dd.region.res, r.range.start, r.range.end - r.range.start + 1);
  if (r.mapping !== null) {
    dd.mappingIda.remove(r.mapping);
    r.mapping = null;
  }
}

// ref: drivers/dax/bus.c size_store, dev_dax_resize, dev_dax_shrink, adjust_dev_dax_range
function devDaxSizeStore(k: Kernel, dd: DevDax, buf: string): Errno {
  const r = kstrtoul(buf, 0);
  if (!r.ok) return r.rc;
  const val = Number(r.value);
  if (!allocIsAligned(k, dd, val)) return -EINVAL;
  if (!dd.region.dev.driver) return -ENXIO;
  if (dd.driver) return -EBUSY;
  const region = dd.region;
  const devSize = devDaxSize(dd);
  if (val === devSize) return 0;
  if (val > devSize && val - devSize > daxRegionAvailSize(region)) return -ENOSPC;
  if (val < devSize) {
    let toShrink = devSize - val;
    while (toShrink && dd.ranges.length) {
      const last = dd.ranges[dd.ranges.length - 1]!;
      const len = last.range.end - last.range.start + 1;
      if (toShrink >= len) {
        trimDevDaxRange(dd);
        toShrink -= len;
        continue;
      }
      let res = region.res.child;
      while (res && !(res.name === dd.name && res.start === last.range.start)) res = res.sibling;
      if (!res) return -ENXIO;
      const rc = adjustResource(res, last.range.start, len - toShrink);
      if (rc) return rc;
      last.range = { start: last.range.start, end: last.range.start + len - toShrink - 1 };
      break;
    }
    return 0;
  }
  let toAlloc = val - devSize;
  while (toAlloc) {
    const first = region.res.child;
    if (!first) return allocDevDaxRange(k, dd, region.res.start, toAlloc);
    let rc: Errno = -ENOSPC;
    let alloc = 0;
    for (let res: Resource | null = first; res; res = res.sibling) {
      const next = res.sibling;
      if (res === first && res.start > region.res.start) {
        alloc = Math.min(res.start - region.res.start, toAlloc);
        rc = allocDevDaxRange(k, dd, region.res.start, alloc);
        break;
      }
      alloc = 0;
      if (next && next.start > res.end + 1) alloc = Math.min(next.start - (res.end + 1), toAlloc);
      if (!alloc && !next && res.end < region.res.end) alloc = Math.min(region.res.end - res.end, toAlloc);
      if (!alloc) continue;
      const last = dd.ranges[dd.ranges.length - 1];
      const adjustOk =
        last !== undefined &&
        res.name === dd.name &&
        last.range.start === res.start &&
        last.range.end === res.end &&
        dd.ranges.every((x) => x.pgoff <= last.pgoff);
      if (adjustOk) {
        rc = adjustResource(res, res.start, res.end - res.start + 1 + alloc);
        if (!rc) last.range = { start: res.start, end: res.end };
      } else {
        rc = allocDevDaxRange(k, dd, res.end + 1, alloc);
      }
      break;
    }
    if (rc) return rc;
    toAlloc -= alloc;
  }
  return 0;
}

// ref: drivers/dax/bus.c mapping_store, range_parse
function devDaxMappingStore(k: Kernel, dd: DevDax, buf: string): Errno {
  const m = /^([0-9a-fA-F]+)-([0-9a-fA-F]+)\n?$/.exec(buf);
  if (!m) return -EINVAL;
  const start = Number.parseInt(m[1]!, 16);
  const end = Number.parseInt(m[2]!, 16);
  if (!dd.region.dev.driver) return -ENXIO;
  const len = end - start + 1;
  if (!allocIsAligned(k, dd, len)) return -ENXIO;
  return allocDevDaxRange(k, dd, start, len);
}

export interface DevDaxData {
  region: DaxRegion;
  /** Static regions: the id (namespaceX.Y's Y); dynamic: -1 for the next free. */
  id: number;
  pgmap: StaticPgmap | null;
  size: number;
}

/**
 * devm_create_dev_dax: the device, dead until a driver binds, its first range, registered on the dax bus (and so
 * probed by device_dax right away), with unregister_dev_dax as a devm action of the region's device.
 */
// ref: drivers/dax/bus.c devm_create_dev_dax, unregister_dev_dax, kill_dev_dax, free_dev_dax_ranges, dev_dax_release
export function* devmCreateDevDax(k: Kernel, data: DevDaxData): KernelPath<DevDax | Errno> {
  const st = daxState(k);
  const region = data.region;
  if (region.isStatic && data.id < 0) return -EINVAL;
  if (!region.isStatic && data.id >= 0) return -EINVAL;
  const id = region.isStatic ? data.id : region.ida.get();
  const name = `dax${region.id}.${id}`;
  const minor = st.minorIda.get();
  const dd: DevDax = {
    kind: "dev_dax",
    name,
    bus: "dax",
    parent: region.dev,
    path: `${region.dev.path}/${name}`,
    driver: null,
    registered: false,
    numaNode: -1,
    devres: [],
    region,
    id,
    align: region.align,
    targetNode: region.targetNode,
    ranges: [],
    staticPgmap: data.pgmap ? { ranges: data.pgmap.ranges.map((r) => ({ ...r })), altmap: data.pgmap.altmap } : null,
    pgmap: null,
    alive: false,
    minor,
    mappingIda: new Ida(),
    kmem: null,
    attrs: () => devDaxAttrs(k, dd),
    subdirs: () =>
      dd.ranges.filter((r) => r.mapping !== null).map((r) => ({ name: `mapping${r.mapping}`, attrs: mappingAttrs(r) })),
    release: () => {
      st.minorIda.remove(minor);
      if (!region.isStatic && dd.id >= 0) region.ida.remove(dd.id);
    },
  };
  const rc = allocDevDaxRange(k, dd, region.res.start, data.size);
  if (rc) {
    dd.release?.();
    return rc;
  }
  yield* deviceAdd(k, dd);
  devmAddAction(region.dev, `unregister_dev_dax(${name})`, function* () {
    killDevDax(dd);
    yield* deviceUnregister(k, dd);
    while (dd.ranges.length) trimDevDaxRange(dd);
  });
  if (dd.ranges.length && devDaxSize(dd)) registerDaxMapping(dd, dd.ranges[0]!);
  yield step(`devm_create_dev_dax(${name})`);
  return dd;
}

// ref: drivers/dax/bus.c kill_dev_dax
export function killDevDax(dd: DevDax): void {
  dd.alive = false;
  if (!dd.region.isStatic) dd.pgmap = null;
}

/** The dev_dax devices of a region. */
export function regionDevDaxes(k: Kernel, region: DaxRegion): DevDax[] {
  return deviceCore(k).devices.filter((d): d is DevDax => isDevDax(d) && d.region === region);
}
