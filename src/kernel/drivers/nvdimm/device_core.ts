/**
 * The slice of the driver core (drivers/base/core.c, dd.c, bus.c, devres.c) that libnvdimm and device-dax need:
 * devices with a parent, a bus and a driver; drivers matched and probed as dd.c does; devm actions released in
 * reverse order when a driver is unbound or its probe fails; bind/unbind/new_id sysfs stores; and the async
 * registration queue of nd_device_register(ND_ASYNC).
 *
 * It lives with libnvdimm because only the nd and dax buses use it. Driver probe and remove, and every devm
 * release, are kernel paths (generators): an unbind runs memunmap_pages step by step and can be explored.
 */
import { EBUSY, ENODEV, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, runToEnd, step } from "../../path.ts";
import type { SysfsAttr, SysfsDir } from "../../sysfs.ts";
import type { DaxState } from "../dax/bus.ts";

/** Reading a write-only attribute (bind, unbind, new_id, ...): open(2) fails with EACCES. */
export const EACCES = 13;

export type BusName = "nd" | "dax";

/** A devm action or resource: released in reverse order on unbind or probe failure. */
export interface Devres {
  readonly what: string;
  release(): KernelPath<void>;
}

/** struct device. Subsystem objects (nd_region, nd_pfn, dev_dax …) extend it, as container_of does. */
export interface Device {
  readonly kind: string;
  readonly name: string;
  readonly bus: BusName | null;
  readonly parent: Device | null;
  /** Absolute sysfs directory. */
  readonly path: string;
  driver: Driver | null;
  /** device_add() done and device_del() not yet. */
  registered: boolean;
  /** dev_to_node() */
  numaNode: number;
  devres: Devres[];
  /** The device's sysfs attributes as they are visible now (is_visible applied). */
  attrs(): Map<string, SysfsAttr>;
  /** Attribute groups with a name and child devices without a bus (dax_region/, mapping0/). */
  subdirs?(): Array<{ name: string; attrs: Map<string, SysfsAttr> }>;
  /** The release callback run by the final put_device() after device_del(). */
  release?(): void;
}

/** struct device_driver (with the bus's own driver structure folded in). */
export interface Driver {
  readonly name: string;
  readonly bus: BusName;
  /** bus->match(dev, drv) */
  match(dev: Device): boolean;
  probe(dev: Device): KernelPath<Errno>;
  remove?(dev: Device): KernelPath<void>;
  /** Bus-specific driver attributes (dax: new_id, remove_id). */
  attrs?(): Map<string, SysfsAttr>;
}

/** struct bus_type: the optional probe/remove wrappers (nvdimm_bus_probe, dax_bus_probe). */
export interface Bus {
  readonly name: BusName;
  probe?(dev: Device, drv: Driver): KernelPath<Errno>;
  remove?(dev: Device, drv: Driver): KernelPath<void>;
}

/** ida: the smallest free id. */
// ref: lib/idr.c ida_alloc, ida_free
export class Ida {
  private readonly used = new Set<number>();
  get(): number {
    let id = 0;
    while (this.used.has(id)) id++;
    this.used.add(id);
    return id;
  }
  remove(id: number): void {
    this.used.delete(id);
  }
}

/** All devices and drivers of the nd and dax buses, and the loaded modules. */
export class DeviceCore {
  /** nd_ida (ndbusN) and memregion ids (regionN). */
  readonly ndBusIda = new Ida();
  readonly memregionIda = new Ida();
  /** dimm_ida (nmemN) */
  readonly dimmIda = new Ida();
  /** uuid_generate() of the ndctl model: a counter, so runs are reproducible. */
  uuidCounter = 0;
  /** The dax bus's state, once the dax core registered it. */
  dax: DaxState | null = null;
  readonly devices: Device[] = [];
  readonly drivers: Driver[] = [];
  readonly buses = new Map<BusName, Bus>();
  readonly modules = new Set<string>();
  /** nd_device_register(dev, ND_ASYNC) work not run yet (flushed at the end of each operation). */
  readonly pending: Array<{ what: string; run: () => KernelPath<void> }> = [];

  driversOn(bus: BusName): Driver[] {
    return this.drivers.filter((d) => d.bus === bus);
  }

  devicesOn(bus: BusName): Device[] {
    return this.devices.filter((d) => d.bus === bus);
  }

  find(name: string, bus?: BusName): Device | undefined {
    return this.devices.find((d) => d.name === name && (bus === undefined || d.bus === bus));
  }

  children(parent: Device): Device[] {
    return this.devices.filter((d) => d.parent === parent);
  }
}

/** The kernel's device core, created on first use (the model's kernels without nvdimm/dax have none). */
export function deviceCore(k: Kernel): DeviceCore {
  if (!k.devices) {
    k.devices = new DeviceCore();
    k.sysfs.register(deviceCoreSysfs, null, deviceCoreLookup);
  }
  return k.devices;
}

// ---------------------------------------------------------------------------------------------------------------
// devres

// ref: drivers/base/devres.c devm_add_action
export function devmAddAction(dev: Device, what: string, release: () => KernelPath<void>): void {
  dev.devres.push({ what, release });
}

/** A devm action with a plain (non-blocking) release. */
export function devmAddPlainAction(dev: Device, what: string, release: () => void): void {
  dev.devres.push({
    what,
    *release() {
      yield step(`devres: ${what}`);
      release();
    },
  });
}

/** devm_release_action: run and drop one action early (devm_namespace_disable, devm_memunmap …). */
// ref: drivers/base/devres.c devm_release_action
export function* devmReleaseAction(dev: Device, what: string): KernelPath<boolean> {
  for (let i = dev.devres.length - 1; i >= 0; i--) {
    const r = dev.devres[i]!;
    if (r.what !== what) continue;
    dev.devres.splice(i, 1);
    yield* r.release();
    return true;
  }
  return false;
}

// ref: drivers/base/devres.c devres_release_all
export function* devresReleaseAll(dev: Device): KernelPath<void> {
  while (dev.devres.length > 0) {
    const r = dev.devres.pop()!;
    yield* r.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// dd.c

// ref: drivers/base/dd.c call_driver_probe
function* callDriverProbe(k: Kernel, dev: Device, drv: Driver): KernelPath<Errno> {
  const bus = dev.bus ? deviceCore(k).buses.get(dev.bus) : undefined;
  const ret = bus?.probe ? yield* bus.probe(dev, drv) : yield* drv.probe(dev);
  if (ret !== 0 && ret !== -ENODEV && ret !== -ENXIO) k.printk(`${drv.name}: probe of ${dev.name} failed with error ${ret}`);
  return ret;
}

/** 0 when bound, a positive errno when the probe failed (as really_probe returns it). */
// ref: drivers/base/dd.c really_probe, device_unbind_cleanup
function* reallyProbe(k: Kernel, dev: Device, drv: Driver): KernelPath<number> {
  if (dev.devres.length > 0) return -EBUSY; // "Resources present before probing"
  dev.driver = drv;
  yield step(`really_probe(${dev.name}, ${drv.name})`);
  const ret = yield* callDriverProbe(k, dev, drv);
  if (ret) {
    yield* devresReleaseAll(dev);
    dev.driver = null;
    return -ret;
  }
  return 0;
}

// ref: drivers/base/dd.c __driver_probe_device
function* driverProbeDevice(k: Kernel, drv: Driver, dev: Device): KernelPath<number> {
  if (!dev.registered) return -ENODEV;
  if (dev.driver) return -EBUSY;
  return yield* reallyProbe(k, dev, drv);
}

/** bind_store: probe errors come back as negative errnos. */
// ref: drivers/base/dd.c device_driver_attach
export function* deviceDriverAttach(k: Kernel, drv: Driver, dev: Device): KernelPath<Errno> {
  const ret = yield* driverProbeDevice(k, drv, dev);
  return ret > 0 ? -ret : ret;
}

/** device_attach from device_add: the first matching driver whose probe succeeds. */
// ref: drivers/base/dd.c __device_attach, __device_attach_driver
export function* deviceAttach(k: Kernel, dev: Device): KernelPath<void> {
  if (!dev.bus || dev.driver) return;
  for (const drv of deviceCore(k).driversOn(dev.bus)) {
    if (!drv.match(dev)) continue;
    const ret = yield* driverProbeDevice(k, drv, dev);
    if (ret < 0) return;
    if (ret === 0) return;
  }
}

/** driver_attach: probe every unbound matching device (errors are not reported). */
// ref: drivers/base/dd.c driver_attach, __driver_attach
export function* driverAttach(k: Kernel, drv: Driver): KernelPath<void> {
  for (const dev of [...deviceCore(k).devicesOn(drv.bus)]) {
    if (!dev.registered || dev.driver || !drv.match(dev)) continue;
    yield* driverProbeDevice(k, drv, dev);
  }
}

// ref: drivers/base/dd.c device_release_driver, __device_release_driver, device_remove
export function* deviceReleaseDriver(k: Kernel, dev: Device): KernelPath<void> {
  const drv = dev.driver;
  if (!drv) return;
  yield step(`device_release_driver(${dev.name}, ${drv.name})`);
  const bus = dev.bus ? deviceCore(k).buses.get(dev.bus) : undefined;
  if (bus?.remove) yield* bus.remove(dev, drv);
  else if (drv.remove) yield* drv.remove(dev);
  yield* devresReleaseAll(dev);
  dev.driver = null;
}

// ref: drivers/base/core.c device_add, bus_probe_device
export function* deviceAdd(k: Kernel, dev: Device): KernelPath<void> {
  const core = deviceCore(k);
  if (dev.registered) return;
  if (dev.parent && dev.numaNode < 0) dev.numaNode = dev.parent.numaNode;
  dev.registered = true;
  core.devices.push(dev);
  yield step(`device_add(${dev.name})`);
  yield* deviceAttach(k, dev);
}

// ref: drivers/base/core.c device_del, put_device
export function* deviceUnregister(k: Kernel, dev: Device): KernelPath<void> {
  const core = deviceCore(k);
  if (!dev.registered) return;
  yield* deviceReleaseDriver(k, dev);
  dev.registered = false;
  const i = core.devices.indexOf(dev);
  if (i >= 0) core.devices.splice(i, 1);
  yield step(`device_del(${dev.name})`);
  dev.release?.();
}

/** Queue work the kernel runs from an async domain (nd_device_register / nd_device_unregister with ND_ASYNC). */
export function queueAsync(k: Kernel, what: string, run: () => KernelPath<void>): void {
  deviceCore(k).pending.push({ what, run });
}

/** nvdimm_bus_wait_probe / async_synchronize: run queued registrations until none is left. */
export function* flushAsync(k: Kernel): KernelPath<void> {
  const core = deviceCore(k);
  for (;;) {
    const w = core.pending.shift();
    if (!w) return;
    yield* w.run();
  }
}

/** Run one top-level operation (a sysfs store, a module load) to its end, then the async work it queued. */
export function runOp<T>(k: Kernel, path: KernelPath<T>): T {
  const r = runToEnd(path);
  runToEnd(flushAsync(k));
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Driver sysfs: /sys/bus/<bus>/drivers/<drv>/{bind,unbind}

function writeOnly(store: (v: string) => Errno, storePath?: (v: string) => KernelPath<Errno>): SysfsAttr {
  return storePath ? { show: () => -EACCES, store, storePath } : { show: () => -EACCES, store };
}

// ref: drivers/base/bus.c bind_store
export function bindStore(k: Kernel, drv: Driver, name: string): Errno {
  const dev = deviceCore(k).find(name.trim(), drv.bus);
  if (!dev || !drv.match(dev)) return -ENODEV;
  return runOp(k, deviceDriverAttach(k, drv, dev));
}

// ref: drivers/base/bus.c unbind_store
export function unbindStore(k: Kernel, drv: Driver, name: string): Errno {
  return runToEnd(unbindStorePath(k, drv, name));
}

/** unbind_store as a kernel path: the driver's remove and devm actions interleave with other threads. */
// ref: drivers/base/bus.c unbind_store
export function* unbindStorePath(k: Kernel, drv: Driver, name: string): KernelPath<Errno> {
  const dev = deviceCore(k).find(name.trim(), drv.bus);
  if (!dev || dev.driver !== drv) return -ENODEV;
  yield* deviceReleaseDriver(k, dev);
  yield* flushAsync(k);
  return 0;
}

function driverPath(drv: Driver): string {
  return `/sys/bus/${drv.bus}/drivers/${drv.name}`;
}

function driverDir(k: Kernel, drv: Driver): SysfsDir {
  const attrs = new Map<string, SysfsAttr>([
    ["bind", writeOnly((v) => bindStore(k, drv, v))],
    ["unbind", writeOnly((v) => unbindStore(k, drv, v), (v) => unbindStorePath(k, drv, v))],
  ]);
  for (const [n, a] of drv.attrs?.() ?? []) attrs.set(n, a);
  return { path: driverPath(drv), driver: "", attrs };
}

function driverDirs(k: Kernel, core: DeviceCore): SysfsDir[] {
  return core.drivers.map((drv) => driverDir(k, drv));
}

/** A store is one operation: the async registrations it queued (nd_device_register) run before it returns. */
function withFlush(k: Kernel, attrs: Map<string, SysfsAttr>): Map<string, SysfsAttr> {
  for (const [name, a] of attrs) {
    const store = a.store;
    if (!store) continue;
    const storePath = a.storePath;
    const flushed: SysfsAttr = {
      show: a.show,
      store: (v) => {
        const rc = store(v);
        runToEnd(flushAsync(k));
        return rc;
      },
    };
    if (storePath) {
      flushed.storePath = function* (v) {
        const rc = yield* storePath(v);
        yield* flushAsync(k);
        return rc;
      };
    }
    attrs.set(name, flushed);
  }
  return attrs;
}

function deviceCoreSysfs(k: Kernel): SysfsDir[] {
  const core = k.devices;
  if (!core) return [];
  const out: SysfsDir[] = [];
  for (const dev of core.devices) {
    out.push({ path: dev.path, driver: dev.driver?.name ?? "", attrs: withFlush(k, dev.attrs()) });
    for (const s of dev.subdirs?.() ?? []) out.push({ path: `${dev.path}/${s.name}`, driver: "", attrs: withFlush(k, s.attrs) });
  }
  out.push(...driverDirs(k, core).map((d) => ({ ...d, attrs: withFlush(k, d.attrs) })));
  return out;
}

/** deviceCoreSysfs's first directory at `dir`, in the same order, building only that one's attributes. */
function deviceCoreLookup(k: Kernel, dir: string): SysfsDir | null {
  const core = k.devices;
  if (!core) return null;
  for (const dev of core.devices) {
    if (dev.path === dir) return { path: dir, driver: dev.driver?.name ?? "", attrs: withFlush(k, dev.attrs()) };
    if (!dev.subdirs || !dir.startsWith(`${dev.path}/`)) continue;
    for (const s of dev.subdirs()) if (`${dev.path}/${s.name}` === dir) return { path: dir, driver: "", attrs: withFlush(k, s.attrs) };
  }
  const drv = core.drivers.find((x) => driverPath(x) === dir);
  if (!drv) return null;
  const d = driverDir(k, drv);
  return { ...d, attrs: withFlush(k, d.attrs) };
}

/** The prefix dev_printk uses: the bound driver's name, else the bus name. */
// ref: drivers/base/core.c dev_driver_string
export function devDriverString(dev: Device): string {
  return dev.driver?.name ?? dev.bus ?? "";
}

/** dev_info / dev_warn / dev_err: "<driver> <device>: <message>". */
export function devPrintk(k: Kernel, dev: Device, msg: string): void {
  k.printk(`${devDriverString(dev)} ${dev.name}: ${msg}`);
}
