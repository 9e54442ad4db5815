/**
 * Regions (drivers/nvdimm/region_devs.c, region.c): creation with their DIMM mappings and interleave set,
 * sysfs attributes, capacity accounting (available_size, max_available_extent), the nd_region driver (which
 * registers the namespaces and the btt/pfn/dax seeds) and the seed bookkeeping after a successful probe.
 */
import { EINVAL, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { ro, rw, type SysfsAttr } from "../../sysfs.ts";
import { ndBttCreate } from "./btt_devs.ts";
import { type NdDriverSpec, ndDeviceAttrs, ndDeviceRegister, ndDeviceUnregisterSync, ndRegionToNstype } from "./bus.ts";
import { ndDaxCreate } from "./dax_devs.ts";
import { type Device, deviceCore, devmAddPlainAction, Ida } from "./device_core.ts";
import { type NdMapping, type Nvdimm, ndPmemAvailableDpa, ndPmemMaxContiguousDpa, toNdd } from "./dimm_devs.ts";
import { ndRegionInterleaveSetCookie, toNamespaceIndex } from "./label.ts";
import { ndRegionCreateNsSeed, ndRegionRegisterNamespaces } from "./namespace_devs.ts";
import {
  hex,
  isNdBtt,
  isNdDax,
  isNdPfn,
  isNdRegion,
  MEMREMAP_COMPAT_ALIGN_MAX,
  Media,
  ND_DEVICE_NAMESPACE_PMEM,
  type NdInterleaveSet,
  type NdRegion,
  type NvdimmBus,
} from "./nd.ts";
import { ndPfnCreate } from "./pfn_device.ts";
import { kstrtoul } from "./pfn_devs.ts";

/** struct nd_mapping_desc */
export interface NdMappingDesc {
  nvdimm: Nvdimm;
  start: number;
  size: number;
  position: number;
}

/** struct nd_region_desc, as far as the model's providers fill it. */
export interface NdRegionDesc {
  start: number;
  size: number;
  numaNode: number;
  targetNode: number;
  /** ND_REGION_PAGEMAP */
  pagemap: boolean;
  mappings?: NdMappingDesc[];
  ndSet?: NdInterleaveSet;
  persistDomain?: "cpu_cache" | "memory_controller";
  /** The provider's named attribute groups (acpi_nfit_region_attribute_groups: "nfit"). */
  attrGroups?: (region: NdRegion) => Array<{ name: string; attrs: Map<string, SysfsAttr> }>;
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

/** No flush hints: 0 with DIMMs (platform persistence, ADR), -ENXIO without (capability unknown). */
// ref: drivers/nvdimm/region_devs.c nvdimm_has_flush
export function nvdimmHasFlush(region: NdRegion): number {
  if (region.mappings === 0) return -ENXIO;
  return 0;
}

/** The sum of every DIMM's unallocated capacity (0 if a DIMM is disabled). */
// ref: drivers/nvdimm/region_devs.c nd_region_available_dpa
export function ndRegionAvailableDpa(region: NdRegion): number {
  let available = 0;
  for (const mapping of region.ndMappings) {
    if (!toNdd(mapping)) return 0;
    available += ndPmemAvailableDpa(region, mapping);
  }
  return available;
}

/** The largest allocation a namespace can get: the smallest max contiguous extent, times the ways. */
// ref: drivers/nvdimm/region_devs.c nd_region_allocatable_dpa
export function ndRegionAllocatableDpa(region: NdRegion): number {
  let avail = 0;
  for (const mapping of region.ndMappings) {
    // min_not_zero
    const m = ndPmemMaxContiguousDpa(region, mapping);
    avail = avail === 0 ? m : m === 0 ? avail : Math.min(avail, m);
  }
  return avail * region.mappings;
}

/** The cookie labels must carry: per the first DIMM's index version, cookie1 with no DIMM driver bound. */
// ref: drivers/nvdimm/region_devs.c set_cookie_show
function setCookieShow(region: NdRegion): string | Errno {
  if (!region.ndSet) return -ENXIO;
  if (region.mappings) {
    const ndd = toNdd(region.ndMappings[0]!);
    if (ndd) return hex0x(ndRegionInterleaveSetCookie(region, ndd, toNamespaceIndex(ndd, ndd.nsCurrent)));
  }
  return hex0x(region.ndSet.cookie1);
}

/** "%#llx" of a u64 */
function hex0x(v: bigint): string {
  return v === 0n ? "0" : `0x${v.toString(16)}`;
}

// ref: drivers/nvdimm/region_devs.c mappingN
function mappingShow(region: NdRegion, n: number): string | Errno {
  const m = region.ndMappings[n];
  if (!m) return -ENXIO;
  return `${m.nvdimm.name},${m.start},${m.size},${m.position}`;
}

/** Region attributes, with region_visible applied. */
// ref: drivers/nvdimm/region_devs.c nd_region_attributes, region_visible, mapping_visible
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
  ]);
  // deep_flush: writable with flush hints, read-only without, hidden when the capability is unknown.
  if (nvdimmHasFlush(region) === 0) attrs.set("deep_flush", ro(() => String(nvdimmHasFlush(region))));
  attrs.set("read_only", rw(() => (region.ro ? "1" : "0"), (v) => regionReadOnlyStore(region, v)));
  if (region.ndSet) attrs.set("set_cookie", ro(() => setCookieShow(region)));
  if (ndRegionToNstype(region) === ND_DEVICE_NAMESPACE_PMEM || region.ndSet) {
    attrs.set("available_size", ro(() => String(ndRegionAvailableDpa(region))));
  }
  attrs.set("max_available_extent", ro(() => String(ndRegionAllocatableDpa(region))));
  attrs.set("namespace_seed", seed(region.nsSeed));
  attrs.set("init_namespaces", ro(() => (region.ndrd ? `${region.ndrd.nsActive}/${region.ndrd.nsCount}` : -ENXIO)));
  // badblocks_show prints nothing (not even a newline) when there are none.
  attrs.set("badblocks", ro(() => (region.driver ? "" : -ENXIO)));
  attrs.set("resource", ro(() => hex(region.ndrStart)));
  if (region.persistDomain) attrs.set("persistence_domain", ro(() => region.persistDomain ?? ""));
  for (let n = 0; n < region.mappings; n++) attrs.set(`mapping${n}`, ro(() => mappingShow(region, n)));
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
// ref: drivers/nvdimm/region_devs.c nd_region_create, nvdimm_pmem_region_create, nd_region_release
export function nvdimmPmemRegionCreate(k: Kernel, bus: NvdimmBus, desc: NdRegionDesc): NdRegion {
  const core = deviceCore(k);
  const id = core.memregionIda.get();
  const ndMappings: NdMapping[] = (desc.mappings ?? []).map((m) => ({ nvdimm: m.nvdimm, start: m.start, size: m.size, position: m.position, labels: [], ndd: null }));
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
    mappings: ndMappings.length,
    ndMappings,
    ndSet: desc.ndSet ?? null,
    persistDomain: desc.persistDomain ?? null,
    ro: false,
    align: defaultAlign(k, desc.size, ndMappings.length),
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
    subdirs: () => desc.attrGroups?.(region) ?? [],
    release: () => core.memregionIda.remove(id),
  };
  ndDeviceRegister(k, region);
  return region;
}

// ref: drivers/nvdimm/region.c nd_region_probe; region_devs.c nd_region_activate
function* ndRegionProbe(k: Kernel, dev: Device): KernelPath<Errno> {
  if (!isNdRegion(dev)) return -ENXIO;
  const region = dev;
  // nd_region_activate: the region data (no flush hints) lives in drvdata.
  region.ndrd = { nsActive: 0, nsCount: 0 };
  devmAddPlainAction(region, "nd_region_data", () => {
    region.ndrd = null;
  });
  yield step(`nd_region_probe(${region.name})`);
  const rc = ndRegionRegisterNamespaces(k, region);
  if (rc < 0) return rc;
  region.ndrd.nsActive = rc;
  region.ndrd.nsCount = rc;
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
    ndRegionCreateNsSeed(k, region);
  } else if (isNdBtt(dev)) {
    if (region.bttSeed === dev) region.bttSeed = ndBttCreate(k, region);
    if (dev.ndns && region.nsSeed === dev.ndns) ndRegionCreateNsSeed(k, region);
  } else if (isNdPfn(dev)) {
    if (region.pfnSeed === dev) region.pfnSeed = ndPfnCreate(k, region);
    if (dev.ndns && region.nsSeed === dev.ndns) ndRegionCreateNsSeed(k, region);
  } else if (isNdDax(dev)) {
    if (region.daxSeed === dev) region.daxSeed = ndDaxCreate(k, region);
    if (dev.ndns && region.nsSeed === dev.ndns) ndRegionCreateNsSeed(k, region);
  }
}
