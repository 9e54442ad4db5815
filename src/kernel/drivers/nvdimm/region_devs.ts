/**
 * Regions (drivers/nvdimm/region_devs.c, region.c): creation, sysfs attributes, the nd_region driver (which
 * registers the namespaces and the btt/pfn/dax seeds) and the seed bookkeeping after a successful claim.
 */
import { EINVAL, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { ro, rw, type SysfsAttr } from "../../sysfs.ts";
import { ndBttCreate } from "./btt_devs.ts";
import { type NdDriverSpec, ndDeviceAttrs, ndDeviceRegister, ndDeviceUnregisterSync, ndRegionToNstype } from "./bus.ts";
import { ndDaxCreate } from "./dax_devs.ts";
import { type Device, deviceCore, devmAddPlainAction, Ida } from "./device_core.ts";
import { createNamespaceIo } from "./namespace_devs.ts";
import {
  hex,
  isNdBtt,
  isNdDax,
  isNdPfn,
  isNdRegion,
  MEMREMAP_COMPAT_ALIGN_MAX,
  Media,
  ND_DEVICE_NAMESPACE_IO,
  type NdRegion,
  type NvdimmBus,
} from "./nd.ts";
import { ndPfnCreate } from "./pfn_device.ts";
import { kstrtoul } from "./pfn_devs.ts";

export interface NdRegionDesc {
  start: number;
  size: number;
  numaNode: number;
  targetNode: number;
  /** ND_REGION_PAGEMAP */
  pagemap: boolean;
}

// ref: drivers/nvdimm/region_devs.c default_align
function defaultAlign(k: Kernel, size: number, mappings: number): number {
  let align = MEMREMAP_COMPAT_ALIGN_MAX;
  if (size < MEMREMAP_COMPAT_ALIGN_MAX) align = k.geo.pageSize;
  const m = Math.max(1, mappings);
  if (align % m) align *= m;
  return align;
}

// ref: drivers/nvdimm/region_devs.c region_size
function regionSize(region: NdRegion): number {
  return region.ndrSize;
}

/** Region attributes of a pmem region without DIMMs (legacy e820 pmem). */
// ref: drivers/nvdimm/region_devs.c nd_region_attributes, region_visible
function regionAttrs(k: Kernel, region: NdRegion): Map<string, SysfsAttr> {
  const seed = (d: Device | null) => ro(() => (d ? d.name : ""));
  const attrs = new Map<string, SysfsAttr>([
    ["size", ro(() => String(regionSize(region)))],
    ["align", rw(() => hex(region.align), (v) => regionAlignStore(k, region, v))],
    ["nstype", ro(() => String(ndRegionToNstype(region)))],
    ["mappings", ro(() => String(region.mappings))],
    ["btt_seed", seed(region.bttSeed)],
    ["pfn_seed", seed(region.pfnSeed)],
    ["dax_seed", seed(region.daxSeed)],
    ["read_only", rw(() => (region.ro ? "1" : "0"), (v) => regionReadOnlyStore(region, v))],
    ["max_available_extent", ro(() => "0")],
    ["namespace_seed", seed(region.nsSeed)],
    ["init_namespaces", ro(() => (region.ndrd ? `${region.ndrd.nsActive}/${region.ndrd.nsCount}` : -ENXIO))],
    // badblocks_show prints nothing (not even a newline) when there are none.
    ["badblocks", ro(() => (region.driver ? "" : -ENXIO))],
    ["resource", ro(() => hex(region.ndrStart))],
  ]);
  for (const [n, a] of ndDeviceAttrs(k, region, "nd_pmem")) attrs.set(n, a);
  return attrs;
}

// ref: drivers/nvdimm/region_devs.c align_store
function regionAlignStore(k: Kernel, region: NdRegion, buf: string): Errno {
  const r = kstrtoul(buf, 0);
  if (!r.ok) return r.rc;
  if (r.value > BigInt(Number.MAX_SAFE_INTEGER)) return -EINVAL;
  const val = Number(r.value);
  const mappings = Math.max(1, region.mappings);
  const dpa = Math.floor(val / mappings);
  const remainder = val % mappings;
  const pow2 = dpa > 0 && 2 ** Math.round(Math.log2(dpa)) === dpa;
  if (!pow2 || dpa < k.geo.pageSize || val > regionSize(region) || remainder) return -EINVAL;
  region.align = val;
  return 0;
}

// ref: drivers/nvdimm/region_devs.c read_only_store; lib/kstrtox.c kstrtobool
function regionReadOnlyStore(region: NdRegion, buf: string): Errno {
  const v = strtobool(buf);
  if (v === null) return -EINVAL;
  region.ro = v;
  return 0;
}

/** kstrtobool: y/Y/1/on → true, n/N/0/off → false. */
// ref: lib/kstrtox.c kstrtobool
export function strtobool(s: string): boolean | null {
  const c0 = s[0];
  if (c0 === undefined) return null;
  if ("yY1".includes(c0)) return true;
  if ("nN0".includes(c0)) return false;
  if (c0 === "o" || c0 === "O") {
    const c1 = s[1]?.toLowerCase();
    if (c1 === "n") return true;
    if (c1 === "f") return false;
  }
  return null;
}

/** nvdimm_pmem_region_create: the "regionN" device, registered (and probed) asynchronously. */
// ref: drivers/nvdimm/region_devs.c nd_region_create, nvdimm_pmem_region_create
export function nvdimmPmemRegionCreate(k: Kernel, bus: NvdimmBus, desc: NdRegionDesc): NdRegion {
  const core = deviceCore(k);
  const id = core.memregionIda.get();
  const region: NdRegion = {
    kind: "nd_region",
    name: `region${id}`,
    bus: "nd",
    parent: bus,
    path: `${bus.path}/region${id}`,
    driver: null,
    registered: false,
    numaNode: desc.numaNode,
    devres: [],
    id,
    nvdimmBus: bus,
    ndrStart: desc.start,
    ndrSize: desc.size,
    pagemap: desc.pagemap,
    targetNode: desc.targetNode,
    mappings: 0,
    ro: false,
    align: defaultAlign(k, desc.size, 0),
    nsSeed: null,
    bttSeed: null,
    pfnSeed: null,
    daxSeed: null,
    nsIda: new Ida(),
    bttIda: new Ida(),
    pfnIda: new Ida(),
    daxIda: new Ida(),
    ndrd: null,
    media: new Media(),
    attrs: () => regionAttrs(k, region),
    release: () => core.memregionIda.remove(id),
  };
  ndDeviceRegister(k, region);
  return region;
}

// ref: drivers/nvdimm/region.c nd_region_probe, nd_region_activate; namespace_devs.c nd_region_register_namespaces
function* ndRegionProbe(k: Kernel, dev: Device): KernelPath<Errno> {
  if (!isNdRegion(dev)) return -ENXIO;
  const region = dev;
  // nd_region_activate: the region data (no flush hints without DIMMs) lives in drvdata.
  region.ndrd = { nsActive: 0, nsCount: 0 };
  devmAddPlainAction(region, "nd_region_data", () => {
    region.ndrd = null;
  });
  yield step(`nd_region_probe(${region.name})`);
  let registered = 0;
  if (ndRegionToNstype(region) === ND_DEVICE_NAMESPACE_IO) {
    const ns = createNamespaceIo(k, region, 0);
    ndDeviceRegister(k, ns);
    region.nsSeed = ns;
    registered = 1;
  }
  region.ndrd.nsActive = registered;
  region.ndrd.nsCount = registered;
  region.bttSeed = ndBttCreate(k, region);
  region.pfnSeed = ndPfnCreate(k, region);
  region.daxSeed = ndDaxCreate(k, region);
  return 0;
}

// ref: drivers/nvdimm/region.c nd_region_remove, child_unregister
function* ndRegionRemove(k: Kernel, dev: Device): KernelPath<void> {
  if (!isNdRegion(dev)) return;
  for (const child of deviceCore(k).children(dev)) yield* ndDeviceUnregisterSync(k, child);
  dev.nsSeed = null;
  dev.bttSeed = null;
  dev.pfnSeed = null;
  dev.daxSeed = null;
}

export function ndRegionDriver(k: Kernel): NdDriverSpec {
  return {
    name: "nd_region",
    types: [2],
    probe: (dev) => ndRegionProbe(k, dev),
    remove: (dev) => ndRegionRemove(k, dev),
  };
}

/** After a successful probe of a seed (or of a device claiming the namespace seed), create the next one. */
// ref: drivers/nvdimm/region_devs.c nd_region_advance_seeds
export function ndRegionAdvanceSeeds(k: Kernel, region: NdRegion, dev: Device): void {
  if (region.nsSeed === dev) {
    ndRegionCreateNsSeed(region);
  } else if (isNdBtt(dev)) {
    if (region.bttSeed === dev) region.bttSeed = ndBttCreate(k, region);
    if (dev.ndns && region.nsSeed === dev.ndns) ndRegionCreateNsSeed(region);
  } else if (isNdPfn(dev)) {
    if (region.pfnSeed === dev) region.pfnSeed = ndPfnCreate(k, region);
    if (dev.ndns && region.nsSeed === dev.ndns) ndRegionCreateNsSeed(region);
  } else if (isNdDax(dev)) {
    if (region.daxSeed === dev) region.daxSeed = ndDaxCreate(k, region);
    if (dev.ndns && region.nsSeed === dev.ndns) ndRegionCreateNsSeed(region);
  }
}

/** Label-less (io) regions never get a new namespace seed. */
// ref: drivers/nvdimm/namespace_devs.c nd_region_create_ns_seed
function ndRegionCreateNsSeed(region: NdRegion): void {
  if (ndRegionToNstype(region) === ND_DEVICE_NAMESPACE_IO) return;
}
