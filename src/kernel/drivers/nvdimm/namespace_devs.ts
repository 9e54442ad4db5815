/**
 * Namespaces (drivers/nvdimm/namespace_devs.c): the io namespace of a label-less region, the label-based pmem
 * namespaces of a region whose DIMMs carry labels (scan_labels at region probe, the zero-size seed, size/uuid/
 * alt_name/sector_size stores that allocate DPA and write labels), their attributes (mode, holder,
 * holder_class, force_raw …), pmem_should_map_pages and nvdimm_namespace_common_probe.
 *
 * DPA allocation follows the C step by step: scan_allocate walks the DIMM's allocations looking for aligned
 * free space before, between and after them; available and max-extent queries reserve the free space as
 * "pmem-reserve" allocations and release them again.
 */
import { EAGAIN, EBUSY, EINVAL, ENODEV, ENOMEM, ENOSPC, ENXIO, EOPNOTSUPP, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { adjustResource, IORES_DESC_NONE, IORESOURCE_MEM, IORESOURCE_SYSTEM_RAM, REGION_MIXED, type Resource, regionIntersects } from "../../resource.ts";
import { ro, rw, type SysfsAttr } from "../../sysfs.ts";
import { ndDeviceAttrs, ndDeviceRegister, ndDeviceUnregisterAsync, ndRegionToNstype } from "./bus.ts";
import { type Device, deviceCore, devmAddPlainAction, devPrintk } from "./device_core.ts";
import {
  getNdd,
  type NdMapping,
  type Nvdimm,
  ndPmemAvailableDpa,
  nvdimmAllocateDpa,
  nvdimmAllocatedDpa,
  nvdimmFreeDpa,
  putNdd,
  toNdd,
} from "./dimm_devs.ts";
import {
  currentIndexVersion,
  NSLABEL_NAME_LEN,
  ndLabelActive,
  ndLabelActiveCount,
  ndLabelGenId,
  ndPmemNamespaceLabelUpdate,
  ndRegionInterleaveSetCookie,
  nslGet,
  nslGetClaimClass,
  nslValidateTypeGuid,
  toNamespaceIndex,
} from "./label.ts";
import {
  type ClaimClass,
  fmtResourceRaw,
  hex,
  isNamespaceIo,
  isNamespacePmem,
  isNdBtt,
  isNdDax,
  isNdPfn,
  isNdRegion,
  isPfnOrDax,
  ND_DEVICE_NAMESPACE_IO,
  ND_DEVICE_NAMESPACE_PMEM,
  ND_MIN_NAMESPACE_SIZE,
  type NdNamespaceIo,
  type NdNamespacePmem,
  type NdRegion,
  nsioSize,
  nvdimmNamespaceCapacity,
} from "./nd.ts";
import { ndUuidStore } from "./pfn_device.ts";
import { kstrtoul, memremapCompatAlign, ndSizeSelectShow } from "./pfn_devs.ts";
import { ndRegionAllocatableDpa, strtobool } from "./region_devs.ts";

// ref: include/uapi/asm-generic/errno-base.h EACCES
const EACCES = 13;

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

/** The fields a pmem namespace gets from its labels (or none, for a seed) before it has an id. */
interface NsPmemProto {
  uuid: string | null;
  altName: string | null;
  lbasize: number;
  claimClass: ClaimClass;
  resStart: number;
  resEnd: number;
}

/** A struct nd_namespace_pmem named namespaceR.ID (the id from the region's ns_ida, freed on release). */
// ref: drivers/nvdimm/namespace_devs.c nd_namespace_pmem_create, namespace_pmem_release
function newNamespacePmem(k: Kernel, region: NdRegion, id: number, proto: NsPmemProto): NdNamespacePmem {
  const name = `namespace${region.id}.${id}`;
  const ns: NdNamespacePmem = {
    kind: "nd_namespace_pmem",
    name,
    bus: "nd",
    parent: region,
    path: `${region.path}/${name}`,
    driver: null,
    registered: false,
    numaNode: -1,
    devres: [],
    region,
    resStart: proto.resStart,
    resEnd: proto.resEnd,
    claim: null,
    claimClass: proto.claimClass,
    forceRaw: false,
    nsioSize: 0,
    pmem: null,
    id,
    uuid: proto.uuid,
    altName: proto.altName,
    lbasize: proto.lbasize,
    attrs: () => namespaceAttrs(k, ns),
    release: () => {
      if (ns.id >= 0) region.nsIda.remove(ns.id);
    },
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

/** The logical block size of a pmem namespace's disk (its label's lbasize), 512 for io namespaces. */
// ref: drivers/nvdimm/namespace_devs.c pmem_sector_size
export function pmemSectorSize(ndns: NdNamespaceIo): number {
  if (isNamespacePmem(ndns) && ndns.lbasize === 4096) return 4096;
  return 512;
}

/** The gendisk name: "pmemR" for namespace id 0 (and io namespaces), "pmemR.ID" otherwise; "s" for a BTT. */
// ref: drivers/nvdimm/namespace_devs.c nvdimm_namespace_disk_name
export function nvdimmNamespaceDiskName(ndns: NdNamespaceIo): string {
  const suffix = ndns.claim && isNdBtt(ndns.claim) ? "s" : "";
  const nsidx = isNamespacePmem(ndns) ? ndns.id : 0;
  return nsidx ? `pmem${ndns.region.id}.${nsidx}${suffix}` : `pmem${ndns.region.id}${suffix}`;
}

/** nd_dev_to_uuid: a pmem namespace's uuid, the null uuid for anything else. */
// ref: drivers/nvdimm/namespace_devs.c nd_dev_to_uuid
export function ndDevToUuid(dev: Device | null): string {
  return dev && isNamespacePmem(dev) && dev.uuid ? dev.uuid : "00000000-0000-0000-0000-000000000000";
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

/**
 * BTT v1.1 (btt) or v2.0 (btt2): what the DIMMs' label index versions call for. A region without DIMMs or with
 * a DIMM whose driver is not bound can only host v1.1; DIMMs that disagree make it -ENXIO.
 */
// ref: drivers/nvdimm/namespace_devs.c btt_claim_class
function bttClaimClass(region: NdRegion): ClaimClass | Errno {
  let loopBitmask = 0;
  for (const mapping of region.ndMappings) {
    const ndd = toNdd(mapping);
    if (!ndd) {
      loopBitmask = 0;
      break;
    }
    const v = currentIndexVersion(ndd);
    if (v === null) loopBitmask |= 1;
    else if (v.major === 1 && v.minor === 1) loopBitmask |= 2;
    else loopBitmask |= 4;
  }
  if (loopBitmask === 0 || loopBitmask === 2) return "btt";
  if (loopBitmask === 1 || loopBitmask === 4) return "btt2";
  return -ENXIO;
}

// ref: drivers/nvdimm/namespace_devs.c __holder_class_store
function holderClassStoreInner(ns: NdNamespaceIo, buf: string): Errno {
  if (ns.driver || ns.claim) return -EBUSY;
  if (sysfsStreq(buf, "btt")) {
    const c = bttClaimClass(ns.region);
    if (typeof c === "number") return c;
    ns.claimClass = c;
  } else if (sysfsStreq(buf, "pfn")) ns.claimClass = "pfn";
  else if (sysfsStreq(buf, "dax")) ns.claimClass = "dax";
  else if (sysfsStreq(buf, "")) ns.claimClass = "none";
  else return -EINVAL;
  return 0;
}

/**
 * Rewrite the namespace's labels after an attribute change: labels for a namespace with capacity, deletion of
 * an allocation whose size went to 0; nothing for an unconfigured (uuid-less) pmem namespace or while it is
 * bound or claimed. io namespaces have no labels: -ENXIO (the stores report it, the change itself stays).
 */
// ref: drivers/nvdimm/namespace_devs.c nd_namespace_label_update
function ndNamespaceLabelUpdate(region: NdRegion, ns: NdNamespaceIo): Errno {
  if (ns.driver || ns.claim) return 0;
  if (!isNamespacePmem(ns)) return -ENXIO;
  const size = nsioSize(ns);
  if (size === 0 && ns.uuid) {
    // delete allocation
  } else if (!ns.uuid) return 0;
  return ndPmemNamespaceLabelUpdate(region, ns, size);
}

// ref: drivers/nvdimm/namespace_devs.c holder_class_store
function holderClassStore(ns: NdNamespaceIo, buf: string): Errno {
  const rc = holderClassStoreInner(ns, buf);
  if (rc < 0) return rc;
  return ndNamespaceLabelUpdate(ns.region, ns);
}

// ref: drivers/nvdimm/namespace_devs.c force_raw_store
function forceRawStore(ns: NdNamespaceIo, buf: string): Errno {
  const v = strtobool(buf);
  if (v === null) return -EINVAL;
  ns.forceRaw = v;
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// uuid, alt_name, sector_size

/** No namespace, btt or pfn on the bus already uses this uuid (dax devices are not checked, as in the C). */
// ref: drivers/nvdimm/namespace_devs.c nd_is_uuid_unique, is_namespace_uuid_busy, is_uuid_busy
function ndIsUuidUnique(k: Kernel, dev: Device, uuid: string): boolean {
  const core = deviceCore(k);
  let bus: Device | null = dev;
  while (bus && bus.kind !== "nvdimm_bus") bus = bus.parent;
  if (!bus) return false;
  for (const region of core.children(bus)) {
    if (!isNdRegion(region)) continue;
    for (const child of core.children(region)) {
      let other: string | null = null;
      if (isNamespacePmem(child)) other = child.uuid;
      else if (isNdBtt(child) || isNdPfn(child)) other = child.uuid;
      if (other === uuid) return false;
    }
  }
  return true;
}

/** Check uniqueness; renaming a namespace that has labels renames its DPA and marks the old labels for reaping. */
// ref: drivers/nvdimm/namespace_devs.c namespace_update_uuid
function namespaceUpdateUuid(k: Kernel, region: NdRegion, ns: NdNamespacePmem, newUuid: string): Errno {
  if (!ndIsUuidUnique(k, ns, newUuid)) return -EINVAL;
  const old = ns.uuid;
  if (old !== null) {
    for (const mapping of region.ndMappings) if (mapping.labels.length === 0) return -EBUSY;
    const oldId = ndLabelGenId(old);
    const newId = ndLabelGenId(newUuid);
    for (const mapping of region.ndMappings) {
      const ndd = toNdd(mapping);
      if (!ndd) continue;
      for (let res = ndd.dpa.child; res; res = res.sibling) if (res.name === oldId) res.name = newId;
      for (const ent of mapping.labels) {
        if (ent.label === null) continue;
        if (ndLabelGenId(nslGet(ndd, ent.label).uuid) === oldId) ent.reap = true;
      }
    }
  }
  ns.uuid = newUuid;
  return 0;
}

// ref: drivers/nvdimm/namespace_devs.c uuid_store
function uuidStore(k: Kernel, ns: NdNamespaceIo, buf: string): Errno {
  if (!isNamespacePmem(ns)) return -ENXIO;
  let rc: Errno = ns.claim ? -EBUSY : 0;
  let uuid: string | null = null;
  if (rc >= 0) {
    const r = ndUuidStore(ns, buf);
    if (typeof r === "number") rc = r;
    else uuid = r;
  }
  if (rc >= 0 && uuid) rc = namespaceUpdateUuid(k, ns.region, ns, uuid);
  if (rc >= 0) rc = ndNamespaceLabelUpdate(ns.region, ns);
  return rc < 0 ? rc : 0;
}

// ref: drivers/nvdimm/namespace_devs.c __alt_name_store, alt_name_store
function altNameStore(ns: NdNamespaceIo, buf: string): Errno {
  if (!isNamespacePmem(ns)) return -ENXIO;
  if (ns.driver || ns.claim) return -EBUSY;
  const pos = buf.trim();
  if (new TextEncoder().encode(pos).byteLength + 1 > NSLABEL_NAME_LEN) return -EINVAL;
  ns.altName = pos;
  const rc = ndNamespaceLabelUpdate(ns.region, ns);
  return rc < 0 ? rc : 0;
}

// ref: drivers/nvdimm/namespace_devs.c pmem_lbasize_supported
const PMEM_LBASIZE_SUPPORTED = [512n, 4096n] as const;

// ref: drivers/nvdimm/namespace_devs.c sector_size_store; drivers/nvdimm/core.c nd_size_select_store
function sectorSizeStore(ns: NdNamespaceIo, buf: string): Errno {
  if (!isNamespacePmem(ns)) return -ENXIO;
  let rc: Errno = ns.claim ? -EBUSY : 0;
  if (rc >= 0) {
    if (ns.driver) rc = -EBUSY;
    else {
      const r = kstrtoul(buf, 0);
      if (!r.ok) rc = r.rc;
      else if (!(PMEM_LBASIZE_SUPPORTED as readonly bigint[]).includes(r.value)) rc = -EINVAL;
      else ns.lbasize = Number(r.value);
    }
  }
  if (rc >= 0) rc = ndNamespaceLabelUpdate(ns.region, ns);
  return rc;
}

// ref: drivers/nvdimm/namespace_devs.c dpa_extents_show
function dpaExtentsShow(ns: NdNamespaceIo): string {
  if (!isNamespacePmem(ns) || !ns.uuid) return "0";
  const id = ndLabelGenId(ns.uuid);
  let count = 0;
  for (const mapping of ns.region.ndMappings) {
    const ndd = toNdd(mapping);
    if (!ndd) continue;
    for (let res = ndd.dpa.child; res; res = res.sibling) if (res.name === id) count++;
  }
  return String(count);
}

// ---------------------------------------------------------------------------------------------------------------
// DPA allocation

const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;
const alignDown = (x: number, a: number) => Math.floor(x / a) * a;
const resSize = (r: { start: number; end: number }) => Math.max(0, r.end - r.start + 1);

/** Free up to `n` bytes of the label id's allocations on this DIMM, last allocation first. */
// ref: drivers/nvdimm/namespace_devs.c scan_free
function scanFree(mapping: NdMapping, labelId: string, n0: number): Errno {
  const ndd = toNdd(mapping)!;
  let n = n0;
  while (n) {
    let last: Resource | null = null;
    for (let res = ndd.dpa.child; res; res = res.sibling) if (res.name === labelId) last = res;
    if (!last) return 0;
    if (n >= resSize(last)) {
      n -= resSize(last);
      nvdimmFreeDpa(ndd, last);
      continue;
    }
    return adjustResource(last, last.start, resSize(last) - n);
  }
  return 0;
}

// ref: drivers/nvdimm/namespace_devs.c shrink_dpa_allocation
function shrinkDpaAllocation(region: NdRegion, labelId: string, n: number): Errno {
  for (const mapping of region.ndMappings) {
    const rc = scanFree(mapping, labelId, n);
    if (rc) return rc;
  }
  return 0;
}

// ref: drivers/nvdimm/namespace_devs.c init_dpa_allocation
function initDpaAllocation(labelId: string, mapping: NdMapping, n: number): number {
  const ndd = toNdd(mapping)!;
  const res = nvdimmAllocateDpa(ndd, labelId, mapping.start, n);
  return res ? 0 : n;
}

/**
 * Trim free space to the region's per-DIMM alignment; for a namespace (not "pmem-reserve") it must hold all
 * `n` bytes and, if the namespace already has an allocation, be adjacent to it. Invalid space has size 0.
 */
// ref: drivers/nvdimm/namespace_devs.c space_valid
function spaceValid(region: NdRegion, labelId: string, exist: Resource | null, n: number, valid: { start: number; end: number }): void {
  const isReserve = labelId === "pmem-reserve";
  const align = region.align / region.mappings;
  valid.start = alignUp(valid.start, align);
  valid.end = alignDown(valid.end + 1, align) - 1;
  let ok: boolean;
  if (valid.start >= valid.end) ok = false;
  else if (isReserve) ok = true;
  // allocation needs to be contiguous, so this is all or nothing
  else if (resSize(valid) < n) ok = false;
  else if (!exist) ok = true;
  // allocation needs to be contiguous with the existing namespace
  else ok = valid.start === exist.end + 1 || valid.end === exist.start - 1;
  // invalid: truncate @valid size to 0
  if (!ok) valid.end = valid.start - 1;
}

/** Allocate `n` bytes of DPA for the label id on one DIMM; what could not be allocated. */
// ref: drivers/nvdimm/namespace_devs.c scan_allocate
function scanAllocate(region: NdRegion, mapping: NdMapping, labelId: string, n0: number): number {
  const mappingEnd = mapping.start + mapping.size - 1;
  const ndd = toNdd(mapping)!;
  const toAllocate = n0;
  let n = n0;
  let exist: Resource | null = null;
  for (let res = ndd.dpa.child; res; res = res.sibling) if (res.name === labelId) exist = res;
  const valid = { start: mapping.start, end: mappingEnd };
  retry: for (;;) {
    let first = 0;
    for (let res = ndd.dpa.child; res; res = res.sibling) {
      const next = res.sibling;
      let newRes: Resource | null = null;
      let available = 0;
      let loc: "before" | "mid" | "after" | null = null;
      if (res.start > mappingEnd) continue;
      if (res.end < mapping.start) continue;
      if (!first++ && res.start > mapping.start) {
        valid.start = mapping.start;
        valid.end = res.start - 1;
        spaceValid(region, labelId, exist, toAllocate, valid);
        available = resSize(valid);
        if (available) loc = "before";
      }
      if (!loc && next) {
        valid.start = res.start + resSize(res);
        valid.end = Math.min(mappingEnd, next.start - 1);
        spaceValid(region, labelId, exist, toAllocate, valid);
        available = resSize(valid);
        if (available) loc = "mid";
      }
      if (!loc && !next) {
        valid.start = res.start + resSize(res);
        valid.end = mappingEnd;
        spaceValid(region, labelId, exist, toAllocate, valid);
        available = resSize(valid);
        if (available) loc = "after";
      }
      if (!loc || !available) continue;
      const allocate = Math.min(available, n);
      let action: "allocate" | "grow down" | "grown" = "allocate";
      let rc: Errno = 0;
      if (loc === "before") {
        if (res.name === labelId) {
          rc = adjustResource(res, res.start - allocate, resSize(res) + allocate);
          action = "grown";
        }
      } else if (loc === "mid") {
        if (next!.name === labelId) {
          rc = adjustResource(next!, next!.start - allocate, resSize(next!) + allocate);
          newRes = next;
          action = "grown";
        } else if (res.name === labelId) action = "grow down";
      } else if (res.name === labelId) action = "grow down";
      if (action === "allocate") {
        newRes = nvdimmAllocateDpa(ndd, labelId, valid.start, allocate);
        if (!newRes) rc = -EBUSY;
      } else if (action === "grow down") {
        rc = adjustResource(res, res.start, resSize(res) + allocate);
      }
      if (rc) return n;
      n -= allocate;
      if (n) continue retry;
      return 0;
    }
    break;
  }
  if (n === toAllocate) return initDpaAllocation(labelId, mapping, n);
  return n;
}

/**
 * Reserve every free, aligned extent of this DIMM in the region as "pmem-reserve" (for the max-extent query);
 * -ENXIO if it could not all be reserved.
 */
// ref: drivers/nvdimm/namespace_devs.c __reserve_free_pmem
export function reserveFreePmem(region: NdRegion, nvdimm: Nvdimm): Errno {
  if (region.mappings === 0) return 0;
  for (const mapping of region.ndMappings) {
    if (mapping.nvdimm !== nvdimm) continue;
    const n = ndPmemAvailableDpa(region, mapping);
    if (n === 0) return 0;
    const rem = scanAllocate(region, mapping, "pmem-reserve", n);
    return rem ? -ENXIO : 0;
  }
  return 0;
}

// ref: drivers/nvdimm/namespace_devs.c release_free_pmem
export function releaseFreePmem(mapping: NdMapping): void {
  const ndd = toNdd(mapping)!;
  for (let res = ndd.dpa.child; res; ) {
    const next = res.sibling;
    if (res.name === "pmem-reserve") nvdimmFreeDpa(ndd, res);
    res = next;
  }
}

// ref: drivers/nvdimm/namespace_devs.c grow_dpa_allocation (merge_dpa is a no-op for pmem label ids)
function growDpaAllocation(region: NdRegion, labelId: string, n: number): Errno {
  for (const mapping of region.ndMappings) {
    const rem = scanAllocate(region, mapping, labelId, n);
    if (rem) return -ENXIO; // "allocation underrun"
  }
  return 0;
}

/** The namespace's SPA window from its first DPA allocation on the first DIMM (empty without one). */
// ref: drivers/nvdimm/namespace_devs.c nd_namespace_pmem_set_resource
function ndNamespacePmemSetResource(region: NdRegion, ns: { uuid: string | null; resStart: number; resEnd: number }, size0: number): void {
  let size = size0;
  let offset = 0;
  if (size && !ns.uuid) size = 0;
  if (size && ns.uuid) {
    const mapping = region.ndMappings[0]!;
    const ndd = toNdd(mapping);
    if (!ndd) size = 0;
    else {
      const id = ndLabelGenId(ns.uuid);
      let found = false;
      for (let res = ndd.dpa.child; res; res = res.sibling) {
        if (res.name === id) {
          offset = (res.start - mapping.start) * region.mappings;
          found = true;
          break;
        }
      }
      if (!found) size = 0;
    }
  }
  ns.resStart = region.ndrStart + offset;
  ns.resEnd = ns.resStart + size - 1;
}

/** Resize a pmem namespace (0 deletes its allocation; a non-seed, non-0th namespace then goes away). */
// ref: drivers/nvdimm/namespace_devs.c __size_store
function sizeStoreInner(k: Kernel, ns: NdNamespaceIo, val0: number): Errno {
  const region = ns.region;
  if (ns.driver || ns.claim) return -EBUSY;
  if (!isNamespacePmem(ns) || !ns.uuid) return -ENXIO;
  if (region.mappings === 0) return -ENXIO;
  if (val0 % region.align) return -EINVAL;
  const labelId = ndLabelGenId(ns.uuid);
  let allocated = 0;
  for (const mapping of region.ndMappings) {
    const ndd = toNdd(mapping);
    if (!ndd) return -ENXIO;
    allocated += nvdimmAllocatedDpa(ndd, labelId);
  }
  const available = ndRegionAllocatableDpa(region);
  if (val0 > available + allocated) return -ENOSPC;
  if (val0 === allocated) return 0;
  const val = Math.floor(val0 / region.mappings);
  allocated = Math.floor(allocated / region.mappings);
  const rc = val < allocated ? shrinkDpaAllocation(region, labelId, allocated - val) : growDpaAllocation(region, labelId, val - allocated);
  if (rc) return rc;
  ndNamespacePmemSetResource(region, ns, val * region.mappings);
  if (val === 0 && ns.id !== 0 && region.nsSeed !== ns && !ns.claim) ndDeviceUnregisterAsync(k, ns);
  return rc;
}

// ref: drivers/nvdimm/namespace_devs.c size_store
function sizeStore(k: Kernel, ns: NdNamespaceIo, buf: string): Errno {
  const r = kstrtoul(buf, 0);
  if (!r.ok) return r.rc;
  if (r.value > BigInt(Number.MAX_SAFE_INTEGER)) return -ENOSPC;
  const val = Number(r.value);
  let rc = sizeStoreInner(k, ns, val);
  if (rc >= 0) rc = ndNamespaceLabelUpdate(ns.region, ns);
  if (rc === 0 && val === 0 && isNamespacePmem(ns)) ns.uuid = null;
  return rc < 0 ? rc : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// sysfs

/** Both namespace types share the attribute group; namespace_visible keeps the base set for io namespaces. */
// ref: drivers/nvdimm/namespace_devs.c nd_namespace_attributes, namespace_visible, resource_show, uuid_show, alt_name_show, sector_size_show
function namespaceAttrs(k: Kernel, ns: NdNamespaceIo): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>([
    ["nstype", ro(() => String(ndRegionToNstype(ns.region)))],
    ["size", isNamespacePmem(ns) ? rw(() => String(nvdimmNamespaceCapacity(ns)), (v) => sizeStore(k, ns, v)) : ro(() => String(nvdimmNamespaceCapacity(ns)))],
    ["mode", ro(() => modeShow(k, ns))],
    ["holder", ro(() => (ns.claim ? ns.claim.name : ""))],
    ["resource", ro(() => (nsioSize(ns) === 0 ? -ENXIO : hex(ns.resStart)))],
    ["force_raw", rw(() => (ns.forceRaw ? "1" : "0"), (v) => forceRawStore(ns, v))],
    ["holder_class", rw(() => holderClassShow(ns.claimClass), (v) => holderClassStore(ns, v))],
  ]);
  if (isNamespacePmem(ns)) {
    attrs.set("uuid", rw(() => ns.uuid ?? "", (v) => uuidStore(k, ns, v)));
    attrs.set("alt_name", rw(() => ns.altName ?? "", (v) => altNameStore(ns, v)));
    attrs.set("sector_size", rw(() => ndSizeSelectShow(ns.lbasize, PMEM_LBASIZE_SUPPORTED.map(Number)).replace(/\n$/, ""), (v) => sectorSizeStore(ns, v)));
    attrs.set("dpa_extents", ro(() => dpaExtentsShow(ns)));
  }
  for (const [n, a] of ndDeviceAttrs(k, ns, ns.kind)) attrs.set(n, a);
  return attrs;
}

// ---------------------------------------------------------------------------------------------------------------
// Probe helpers

/** A DIMM of the namespace's region is locked (NDD_LOCKED). */
// ref: drivers/nvdimm/namespace_devs.c nvdimm_namespace_locked
function nvdimmNamespaceLocked(ns: NdNamespaceIo): boolean {
  return ns.region.ndMappings.some((m) => m.nvdimm.flags.locked);
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
  if (nvdimmNamespaceLocked(ndns)) return -EACCES;
  const size = nvdimmNamespaceCapacity(ndns);
  if (size < ND_MIN_NAMESPACE_SIZE) return -ENODEV;
  if (pmemShouldMapPages(k, dev)) {
    const align = memremapCompatAlign(k.arch);
    if (ndns.resStart % align !== 0 || (ndns.resEnd + 1) % align !== 0) {
      devPrintk(k, ndns, `${fmtResourceRaw(ndns.resStart, ndns.resEnd, IORESOURCE_MEM)} misaligned, unable to map`);
      return -EOPNOTSUPP;
    }
  }
  if (isNamespacePmem(ndns) && !ndns.uuid) return -ENODEV; // "uuid not set"
  return ndns;
}

// ---------------------------------------------------------------------------------------------------------------
// Region probe: labels → namespaces

/**
 * Take a drvdata reference and a busy count on every DIMM and track its active labels; a DIMM without its
 * driver fails the region if it is locked or labelled.
 */
// ref: drivers/nvdimm/namespace_devs.c init_active_labels, deactivate_labels
function initActiveLabels(k: Kernel, region: NdRegion): Errno {
  const deactivate = () => {
    for (const mapping of region.ndMappings) {
      const ndd = mapping.ndd;
      mapping.labels = [];
      putNdd(ndd);
      mapping.ndd = null;
      if (ndd) mapping.nvdimm.busy--;
    }
  };
  for (const mapping of region.ndMappings) {
    const ndd = toNdd(mapping);
    const nvdimm = mapping.nvdimm;
    if (!ndd) {
      if (!nvdimm.flags.locked && !nvdimm.flags.labeling) continue;
      devPrintk(k, region, `${nvdimm.name}: is ${nvdimm.flags.locked ? "locked" : "disabled"}, failing probe`);
      deactivate();
      return -ENXIO;
    }
    mapping.ndd = ndd;
    nvdimm.busy++;
    getNdd(ndd);
    const count = ndLabelActiveCount(ndd);
    for (let j = 0; j < count; j++) mapping.labels.push({ reap: false, label: ndLabelActive(ndd, j) });
  }
  devmAddPlainAction(region, "deactivate_labels", deactivate);
  return 0;
}

/** A label for `uuid` at interleave position `pos` with this cookie, exactly once per DIMM. */
// ref: drivers/nvdimm/namespace_devs.c has_uuid_at_pos
function hasUuidAtPos(region: NdRegion, uuid: string, cookie: bigint, pos: number): boolean {
  for (const mapping of region.ndMappings) {
    const ndd = toNdd(mapping)!;
    let foundUuid = false;
    for (const ent of mapping.labels) {
      if (ent.label === null) continue;
      const l = nslGet(ndd, ent.label);
      if (l.isetcookie !== cookie) continue;
      if (l.uuid !== uuid) continue;
      if (!nslValidateTypeGuid(ndd, ent.label, region.ndSet?.typeGuid ?? null)) continue;
      if (foundUuid) return false; // "duplicate entry for uuid"
      foundUuid = true;
      if (l.nlabel !== region.mappings) continue;
      if (l.position !== pos) continue;
      return true;
    }
  }
  return false;
}

/** Check each DIMM's label for the namespace lies inside the mapping and move it to the front of the list. */
// ref: drivers/nvdimm/namespace_devs.c select_pmem_id
function selectPmemId(region: NdRegion, uuid: string): Errno {
  for (const mapping of region.ndMappings) {
    const ndd = toNdd(mapping)!;
    const i = mapping.labels.findIndex((e) => e.label !== null && nslGet(ndd, e.label).uuid === uuid);
    if (i < 0) return -EINVAL;
    const l = nslGet(ndd, mapping.labels[i]!.label!);
    const hwStart = mapping.start;
    const hwEnd = hwStart + mapping.size;
    const pmemStart = l.dpa;
    const pmemEnd = pmemStart + l.rawsize;
    if (!(pmemStart >= hwStart && pmemStart < hwEnd && pmemEnd <= hwEnd && pmemEnd > hwStart)) return -EINVAL;
    const [ent] = mapping.labels.splice(i, 1);
    mapping.labels.unshift(ent!);
  }
  return 0;
}

/** A namespace from a label found on the first DIMM (-EAGAIN: a label of another interleave set). */
// ref: drivers/nvdimm/namespace_devs.c create_namespace_pmem
function createNamespacePmem(k: Kernel, region: NdRegion, mapping: NdMapping, label: number): NsPmemProto | Errno {
  const ndd = toNdd(mapping)!;
  const cookie = ndRegionInterleaveSetCookie(region, ndd, toNamespaceIndex(ndd, ndd.nsCurrent));
  const altcookie = region.ndSet?.altcookie ?? 0n;
  if (cookie === 0n) return -ENXIO;
  const l = nslGet(ndd, label);
  // "invalid cookie in label": skip it unless it carries the compat (wrong sort order) cookie.
  if (l.isetcookie !== cookie && l.isetcookie !== altcookie) return -EAGAIN;
  for (let i = 0; i < region.mappings; i++) {
    if (hasUuidAtPos(region, l.uuid, cookie, i)) continue;
    if (hasUuidAtPos(region, l.uuid, altcookie, i)) continue;
    devPrintk(k, region, `${region.ndMappings[i]!.nvdimm.name} missing label for ${l.uuid}`);
    return -EINVAL;
  }
  const rc = selectPmemId(region, l.uuid);
  if (rc) return rc;
  const proto: NsPmemProto = { uuid: null, altName: null, lbasize: 0, claimClass: "none", resStart: 0, resEnd: -1 };
  let size = 0;
  for (const m of region.ndMappings) {
    const label0 = m.labels[0]?.label ?? null;
    if (label0 === null) continue;
    const mndd = toNdd(m)!;
    const l0 = nslGet(mndd, label0);
    size += l0.rawsize;
    if (l0.position !== 0) continue;
    proto.altName = l0.name;
    proto.uuid = l0.uuid;
    proto.lbasize = l0.lbasize;
    proto.claimClass = nslGetClaimClass(mndd, label0);
  }
  if (proto.altName === null || proto.uuid === null) return -ENOMEM;
  ndNamespacePmemSetResource(region, proto, size);
  return proto;
}


/**
 * One namespace per distinct label uuid on the first DIMM, sorted by address; without any, a zero-size
 * namespace for userspace to configure. null when the labels are inconsistent (the region fails to probe).
 */
// ref: drivers/nvdimm/namespace_devs.c scan_labels, add_namespace_resource, cmp_dpa
function scanLabels(k: Kernel, region: NdRegion): NsPmemProto[] | null {
  const mapping = region.ndMappings[0]!;
  const ndd = toNdd(mapping)!;
  const mapEnd = mapping.start + mapping.size - 1;
  const devs: NsPmemProto[] = [];
  for (const ent of [...mapping.labels]) {
    if (ent.label === null) continue;
    const l = nslGet(ndd, ent.label);
    if (l.dpa < mapping.start || l.dpa > mapEnd) continue;
    if (devs.some((d) => d.uuid === l.uuid)) {
      devPrintk(k, region, `error: conflicting extents for uuid: ${l.uuid}`);
      return null;
    }
    const dev = createNamespacePmem(k, region, mapping, ent.label);
    if (typeof dev === "number") {
      if (dev === -EAGAIN || dev === -ENODEV) continue;
      return null;
    }
    devs.push(dev);
  }
  if (devs.length === 0) {
    mapping.labels = [];
    const seed: NsPmemProto = { uuid: null, altName: null, lbasize: 0, claimClass: "none", resStart: 0, resEnd: -1 };
    ndNamespacePmemSetResource(region, seed, 0);
    devs.push(seed);
  } else {
    // Keep the selected labels (moved to the front by select_pmem_id), drop the rest.
    for (const m of region.ndMappings) m.labels = m.labels.slice(0, devs.length);
  }
  if (devs.length > 1) devs.sort((a, b) => a.resStart - b.resStart);
  return devs;
}

/**
 * Register the region's namespaces: the io namespace of a label-less region, or the label-based ones (their
 * ids from ns_ida); the first becomes the namespace seed. The count registered, or a negative errno.
 */
// ref: drivers/nvdimm/namespace_devs.c nd_region_register_namespaces, create_namespaces
export function ndRegionRegisterNamespaces(k: Kernel, region: NdRegion): number | Errno {
  const rc = initActiveLabels(k, region);
  if (rc) return rc;
  const type = ndRegionToNstype(region);
  let devs: NdNamespaceIo[] | null = null;
  if (type === ND_DEVICE_NAMESPACE_IO) devs = [createNamespaceIo(k, region, 0)];
  else if (type === ND_DEVICE_NAMESPACE_PMEM && region.mappings > 0) {
    const protos = scanLabels(k, region);
    devs = protos ? protos.map((p) => newNamespacePmem(k, region, region.nsIda.get(), p)) : null;
  }
  if (!devs) return -ENODEV;
  for (const dev of devs) ndDeviceRegister(k, dev);
  if (devs.length) region.nsSeed = devs[0]!;
  return devs.length;
}

/** A new zero-size namespace seed (label-less regions never get one). */
// ref: drivers/nvdimm/namespace_devs.c nd_region_create_ns_seed, nd_namespace_pmem_create
export function ndRegionCreateNsSeed(k: Kernel, region: NdRegion): void {
  if (ndRegionToNstype(region) === ND_DEVICE_NAMESPACE_IO) return;
  const proto: NsPmemProto = { uuid: null, altName: null, lbasize: 0, claimClass: "none", resStart: 0, resEnd: -1 };
  ndNamespacePmemSetResource(region, proto, 0);
  const ns = newNamespacePmem(k, region, region.nsIda.get(), proto);
  region.nsSeed = ns;
  ndDeviceRegister(k, ns);
}
