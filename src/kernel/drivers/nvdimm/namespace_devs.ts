/**
 * Namespaces (drivers/nvdimm/namespace_devs.c): the io namespace of a label-less region, its attributes
 * (mode, holder, holder_class, force_raw …), pmem_should_map_pages and nvdimm_namespace_common_probe.
 */
import { EBUSY, EINVAL, ENODEV, ENXIO, EOPNOTSUPP, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { IORES_DESC_NONE, IORESOURCE_MEM, IORESOURCE_SYSTEM_RAM, REGION_MIXED, regionIntersects } from "../../resource.ts";
import { ro, rw, type SysfsAttr } from "../../sysfs.ts";
import { ndDeviceAttrs, ndRegionToNstype } from "./bus.ts";
import { type Device, devPrintk } from "./device_core.ts";
import {
  type ClaimClass,
  fmtResourceRaw,
  hex,
  isNamespaceIo,
  isNdBtt,
  isNdDax,
  isNdPfn,
  isNdRegion,
  isPfnOrDax,
  ND_MIN_NAMESPACE_SIZE,
  type NdNamespaceIo,
  type NdRegion,
  nsioSize,
  nvdimmNamespaceCapacity,
} from "./nd.ts";
import { memremapCompatAlign } from "./pfn_devs.ts";
import { strtobool } from "./region_devs.ts";

// ref: drivers/nvdimm/namespace_devs.c create_namespace_io
export function createNamespaceIo(k: Kernel, region: NdRegion, id: number): NdNamespaceIo {
  const ns: NdNamespaceIo = {
    kind: "nd_namespace_io",
    name: `namespace${region.id}.${id}`,
    bus: "nd",
    parent: region,
    path: `${region.path}/namespace${region.id}.${id}`,
    driver: null,
    registered: false,
    numaNode: -1,
    devres: [],
    region,
    resStart: region.ndrStart,
    resEnd: region.ndrStart + region.ndrSize - 1,
    claim: null,
    claimClass: "none",
    forceRaw: false,
    nsioSize: 0,
    pmem: null,
    attrs: () => namespaceAttrs(k, ns),
  };
  return ns;
}

/**
 * Does the pmem driver give this namespace struct pages (raw mode on a ND_REGION_PAGEMAP region)?
 *
 * Called with an nd_dax device (from nvdimm_namespace_common_probe), the C applies to_ndns() to it: that reads
 * the nd_pfn's uuid pointer as `force_raw`, which is non-zero for any configured dax device, so the answer is
 * always false there. The model returns false for nd_dax directly.
 */
// ref: drivers/nvdimm/namespace_devs.c pmem_should_map_pages
export function pmemShouldMapPages(k: Kernel, dev: Device): boolean {
  if (!k.config.enabled("ZONE_DEVICE")) return false;
  const region = dev.parent;
  if (!isNdRegion(region) || !region.pagemap) return false;
  if (isNdPfn(dev) || isNdBtt(dev) || isNdDax(dev)) return false;
  if (!isNamespaceIo(dev)) return false;
  if (dev.forceRaw) return false;
  const mixed = regionIntersects(k.iomem, dev.resStart, nsioSize(dev), IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE);
  if (mixed === REGION_MIXED) return false;
  // ARCH_MEMREMAP_PMEM == MEMREMAP_WB on every arch the model has.
  return true;
}

// ref: drivers/nvdimm/namespace_devs.c mode_show
function modeShow(k: Kernel, ns: NdNamespaceIo): string {
  const claim = ns.claim;
  if (claim && isNdBtt(claim)) return "safe";
  if (claim && isNdPfn(claim)) return "memory";
  if (claim && isNdDax(claim)) return "dax";
  if (!claim && pmemShouldMapPages(k, ns)) return "memory";
  return "raw";
}

// ref: drivers/nvdimm/namespace_devs.c holder_class_show
function holderClassShow(c: ClaimClass): string {
  if (c === "none") return "";
  if (c === "btt" || c === "btt2") return "btt";
  return c;
}

/** sysfs_streq: equal up to one trailing newline on either side. */
export function sysfsStreq(a: string, b: string): boolean {
  return a.replace(/\n$/, "") === b.replace(/\n$/, "");
}

// ref: drivers/nvdimm/namespace_devs.c __holder_class_store, btt_claim_class
function holderClassStore(ns: NdNamespaceIo, buf: string): Errno {
  if (ns.driver || ns.claim) return -EBUSY;
  // btt_claim_class: a region without DIMMs (or without labels) can only host BTT v1.1.
  if (sysfsStreq(buf, "btt")) ns.claimClass = "btt";
  else if (sysfsStreq(buf, "pfn")) ns.claimClass = "pfn";
  else if (sysfsStreq(buf, "dax")) ns.claimClass = "dax";
  else if (sysfsStreq(buf, "")) ns.claimClass = "none";
  else return -EINVAL;
  return 0;
}

// ref: drivers/nvdimm/namespace_devs.c force_raw_store
function forceRawStore(ns: NdNamespaceIo, buf: string): Errno {
  const v = strtobool(buf);
  if (v === null) return -EINVAL;
  ns.forceRaw = v;
  return 0;
}

/** The attributes an io namespace shows (namespace_visible keeps the base set). */
// ref: drivers/nvdimm/namespace_devs.c nd_namespace_attributes, namespace_visible
function namespaceAttrs(k: Kernel, ns: NdNamespaceIo): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>([
    ["nstype", ro(() => String(ndRegionToNstype(ns.region)))],
    ["size", ro(() => String(nvdimmNamespaceCapacity(ns)))],
    ["mode", ro(() => modeShow(k, ns))],
    ["holder", ro(() => (ns.claim ? ns.claim.name : ""))],
    ["resource", ro(() => (nsioSize(ns) === 0 ? -ENXIO : hex(ns.resStart)))],
    ["force_raw", rw(() => (ns.forceRaw ? "1" : "0"), (v) => forceRawStore(ns, v))],
    ["holder_class", rw(() => holderClassShow(ns.claimClass), (v) => holderClassStore(ns, v))],
  ]);
  for (const [n, a] of ndDeviceAttrs(k, ns, "nd_namespace_io")) attrs.set(n, a);
  return attrs;
}

/** The namespace a probing device (namespace, pfn, dax, btt) works on, or the errno that fails the probe. */
// ref: drivers/nvdimm/namespace_devs.c nvdimm_namespace_common_probe
export function nvdimmNamespaceCommonProbe(k: Kernel, dev: Device): NdNamespaceIo | Errno {
  let ndns: NdNamespaceIo | null;
  if (isPfnOrDax(dev) || isNdBtt(dev)) {
    ndns = dev.ndns;
    if (!ndns) return -ENODEV;
    if (ndns.driver) return -EBUSY; // "is active, can't bind"
    if (ndns.claim !== dev) return -ENXIO;
  } else {
    if (!isNamespaceIo(dev)) return -ENODEV;
    ndns = dev;
    if (ndns.claim) return -ENXIO; // "claimed by %s, failing probe"
  }
  const size = nvdimmNamespaceCapacity(ndns);
  if (size < ND_MIN_NAMESPACE_SIZE) return -ENODEV;
  if (pmemShouldMapPages(k, dev)) {
    const align = memremapCompatAlign(k.arch);
    if (ndns.resStart % align !== 0 || (ndns.resEnd + 1) % align !== 0) {
      devPrintk(k, ndns, `${fmtResourceRaw(ndns.resStart, ndns.resEnd, IORESOURCE_MEM)} misaligned, unable to map`);
      return -EOPNOTSUPP;
    }
  }
  return ndns;
}
