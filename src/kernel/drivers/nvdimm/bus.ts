/**
 * The nd bus (drivers/nvdimm/bus.c): nvdimm_bus_register, nd_device_register / unregister, matching by device
 * type, nvdimm_bus_probe (which advances the region's seeds), and the attribute groups every nd device has.
 */
import { EOPNOTSUPP, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { ro, type SysfsAttr } from "../../sysfs.ts";
import {
  type Device,
  type Driver,
  deviceAdd,
  deviceCore,
  deviceUnregister,
  driverAttach,
  queueAsync,
} from "./device_core.ts";
import { commandsShow, isNvdimm, nvdimmDriver } from "./dimm_devs.ts";
import {
  isNamespaceIo,
  isNdBtt,
  isNdDax,
  isNdPfn,
  isNdRegion,
  isNvdimmBus,
  ND_DEVICE_DAX_PMEM,
  ND_DEVICE_DIMM,
  ND_DEVICE_NAMESPACE_IO,
  ND_DEVICE_NAMESPACE_PMEM,
  ND_DEVICE_REGION_PMEM,
  type NdRegion,
  type NvdimmBus,
} from "./nd.ts";
import { ndRegionAdvanceSeeds } from "./region_devs.ts";

/** A pmem region hosts label-based namespaces when any of its DIMMs has labels (NDD_LABELING), else an io one. */
// ref: drivers/nvdimm/region_devs.c nd_region_to_nstype
export function ndRegionToNstype(region: NdRegion): number {
  const label = region.ndMappings.filter((m) => m.nvdimm.flags.labeling).length;
  return label ? ND_DEVICE_NAMESPACE_PMEM : ND_DEVICE_NAMESPACE_IO;
}

// ref: drivers/nvdimm/bus.c to_nd_device_type
export function toNdDeviceType(dev: Device): number {
  if (isNvdimm(dev)) return ND_DEVICE_DIMM;
  if (isNdRegion(dev)) return ND_DEVICE_REGION_PMEM;
  if (isNdDax(dev)) return ND_DEVICE_DAX_PMEM;
  if (isNdRegion(dev.parent)) return ndRegionToNstype(dev.parent);
  return 0;
}

/** An nd driver: matched by the device-type bits of its `type` (nvdimm_bus_match). */
export interface NdDriverSpec {
  name: string;
  /** ND_DRIVER_* as a list of ND_DEVICE_* numbers; "bus" for nd_bus. */
  types: number[] | "bus";
  probe(dev: Device): KernelPath<Errno>;
  remove?(dev: Device): KernelPath<void>;
}

// ref: drivers/nvdimm/bus.c nvdimm_bus_match, __nd_driver_register
export function ndDriverRegister(k: Kernel, spec: NdDriverSpec): KernelPath<void> {
  const drv: Driver = {
    name: spec.name,
    bus: "nd",
    match: (dev) => (spec.types === "bus" ? isNvdimmBus(dev) : !isNvdimmBus(dev) && spec.types.includes(toNdDeviceType(dev))),
    probe: spec.probe,
    remove: spec.remove,
  };
  deviceCore(k).drivers.push(drv);
  return driverAttach(k, drv);
}

/** nvdimm_bus_type: probe wraps the driver's probe and advances the parent region's seeds. */
// ref: drivers/nvdimm/bus.c nvdimm_bus_probe, nvdimm_bus_remove
export function ndBusRegister(k: Kernel): void {
  deviceCore(k).buses.set("nd", {
    name: "nd",
    *probe(dev, drv) {
      const rc = yield* drv.probe(dev);
      if ((rc === 0 || rc === -EOPNOTSUPP) && isNdRegion(dev.parent)) ndRegionAdvanceSeeds(k, dev.parent, dev);
      return rc;
    },
  });
}

/** nd_device_register: the device is added (and probed) from the async domain. */
// ref: drivers/nvdimm/bus.c __nd_device_register, nd_device_register, nd_async_device_register
export function ndDeviceRegister(k: Kernel, dev: Device): void {
  queueAsync(k, `nd_async_device_register(${dev.name})`, () => deviceAdd(k, dev));
}

// ref: drivers/nvdimm/bus.c nd_device_unregister (ND_SYNC)
export function* ndDeviceUnregisterSync(k: Kernel, dev: Device): KernelPath<void> {
  yield step(`nd_device_unregister(${dev.name}, ND_SYNC)`);
  yield* deviceUnregister(k, dev);
}

// ref: drivers/nvdimm/bus.c nd_device_unregister (ND_ASYNC), nd_async_device_unregister
export function ndDeviceUnregisterAsync(k: Kernel, dev: Device): void {
  queueAsync(k, `nd_async_device_unregister(${dev.name})`, () => deviceUnregister(k, dev));
}

/** modalias, devtype (nd_device_attribute_group) and numa_node, target_node (nd_numa_attribute_group). */
// ref: drivers/nvdimm/bus.c modalias_show, devtype_show, numa_node_show, target_node_show, nd_numa_attr_visible
export function ndDeviceAttrs(k: Kernel, dev: Device, devtype: string): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>();
  attrs.set("modalias", ro(() => `nd:t${toNdDeviceType(dev)}`));
  attrs.set("devtype", ro(() => devtype));
  if (k.config.enabled("NUMA")) {
    attrs.set("numa_node", ro(() => String(dev.numaNode)));
    const target = nvdimmDevToTargetNode(dev);
    if (target >= 0) attrs.set("target_node", ro(() => String(target)));
  }
  return attrs;
}

// ref: drivers/nvdimm/bus.c nvdimm_dev_to_target_node
function nvdimmDevToTargetNode(dev: Device): number {
  if (isNdRegion(dev)) return dev.targetNode;
  if (isNdRegion(dev.parent)) return dev.parent.targetNode;
  return -1;
}

/** The nd_bus driver binds the nvdimm_bus device itself (nd_bus_probe creates the ndctl char device). */
// ref: drivers/nvdimm/bus.c nd_bus_probe, nd_bus_remove
function ndBusDriver(k: Kernel): NdDriverSpec {
  return {
    name: "nd_bus",
    types: "bus",
    *probe(dev) {
      yield step(`nd_bus_probe(${dev.name})`);
      return 0;
    },
    *remove(dev) {
      // nd_bus_remove: unregister every child (regions, and through them everything else).
      const core = deviceCore(k);
      for (const child of core.children(dev)) yield* deviceUnregister(k, child);
    },
  };
}

/** What nvdimm_bus_register takes from the provider's nvdimm_bus_descriptor besides its name. */
export interface NvdimmBusDesc {
  /** The parent device's sysfs directory (default: the platform device /sys/devices/platform/<platform>). */
  parentPath?: string;
  /** nd_desc->cmd_mask: the bus commands (ND_CMD_CALL, ARS …). */
  cmdMask?: number;
}

/** nvdimm_bus_register: the "ndbusN" device under its platform (or ACPI) device. */
// ref: drivers/nvdimm/bus.c nvdimm_bus_register
export function* nvdimmBusRegister(k: Kernel, platform: string, providerName: string, desc: NvdimmBusDesc = {}): KernelPath<NvdimmBus> {
  const core = deviceCore(k);
  const id = core.ndBusIda.get();
  const bus: NvdimmBus = {
    kind: "nvdimm_bus",
    name: `ndbus${id}`,
    bus: "nd",
    parent: null,
    path: `${desc.parentPath ?? `/sys/devices/platform/${platform}`}/ndbus${id}`,
    driver: null,
    registered: false,
    numaNode: -1,
    devres: [],
    id,
    providerName,
    platform,
    attrs: () =>
      new Map<string, SysfsAttr>([
        ["commands", ro(() => commandsShow(desc.cmdMask ?? 0, true))],
        ["provider", ro(() => providerName)],
        ["wait_probe", ro(() => "1")],
      ]),
    release: () => core.ndBusIda.remove(id),
  };
  yield* deviceAdd(k, bus);
  return bus;
}

/** libnvdimm module init: the nd bus and its built-in drivers (nd_bus, nvdimm, nd_region). */
// ref: drivers/nvdimm/core.c libnvdimm_init; bus.c nvdimm_bus_init; dimm.c nvdimm_init; region.c nd_region_init
export function* libnvdimmInit(k: Kernel, regionDriver: NdDriverSpec): KernelPath<void> {
  ndBusRegister(k);
  yield* ndDriverRegister(k, ndBusDriver(k));
  yield* ndDriverRegister(k, nvdimmDriver());
  yield* ndDriverRegister(k, regionDriver);
}

/** Is dev a namespace, pfn, dax or btt device (a child of a region)? */
export function isRegionChild(dev: Device): boolean {
  return isNamespaceIo(dev) || isNdPfn(dev) || isNdDax(dev) || isNdBtt(dev);
}
