/**
 * DIMM devices (drivers/nvdimm/dimm_devs.c, dimm.c): the "nmemN" devices a bus provider (ACPI NFIT) creates,
 * their sysfs attributes, the nvdimm driver whose probe reads the label area (label.ts) and reserves the DPA
 * of every active label, and DPA accounting: the per-DIMM resource tree of allocations named
 * "pmem-<uuid>", what is still available in a region's mapping, and the largest free extent.
 */
import { EBUSY, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { newResource, type Resource, releaseRegion, requestRegion } from "../../resource.ts";
import { ro, type SysfsAttr } from "../../sysfs.ts";
import { type NdDriverSpec, ndDeviceAttrs, ndDeviceRegister } from "./bus.ts";
import { type Device, deviceCore, EACCES } from "./device_core.ts";
import { ndLabelDataInit, ndLabelNfree, ndLabelReserveDpa } from "./label.ts";
import { releaseFreePmem, reserveFreePmem } from "./namespace_devs.ts";
import { ND_DEVICE_DIMM, type NdRegion, type NvdimmBus } from "./nd.ts";

// ref: include/uapi/asm-generic/errno-base.h ENOTTY
const ENOTTY = 25;

// ref: include/uapi/linux/ndctl.h ND_CMD_*
export const ND_CMD_SMART = 1;
export const ND_CMD_GET_CONFIG_SIZE = 4;
export const ND_CMD_GET_CONFIG_DATA = 5;
export const ND_CMD_SET_CONFIG_DATA = 6;
export const ND_CMD_CALL = 10;

/** nvdimm_cmd_name / nvdimm_bus_cmd_name by command number. */
// ref: include/uapi/linux/ndctl.h nvdimm_cmd_name, nvdimm_bus_cmd_name
const DIMM_CMD_NAMES = ["unknown", "smart", "smart_thresh", "flags", "get_size", "get_data", "set_data", "effect_size", "effect_log", "vendor", "cmd_call"];
const BUS_CMD_NAMES = ["unknown", "ars_cap", "ars_start", "ars_status", "clear_error", "unknown", "unknown", "unknown", "unknown", "unknown", "cmd_call"];

/** "name name " for every set bit of a command mask (the commands attribute). */
// ref: drivers/nvdimm/dimm_devs.c commands_show; bus.c commands_show
export function commandsShow(mask: number, bus: boolean): string {
  let out = "";
  for (let cmd = 0; cmd < 32; cmd++) if ((mask >>> cmd) & 1) out += `${(bus ? BUS_CMD_NAMES : DIMM_CMD_NAMES)[cmd] ?? "unknown"} `;
  return out;
}

/** struct nd_cmd_get_config_size */
export interface NdCmdGetConfigSize {
  status: number;
  configSize: number;
  maxXfer: number;
}

/** What a bus provider answers for one DIMM (nd_desc->ndctl) and the attribute groups it adds. */
export interface NvdimmProvider {
  // ref: drivers/acpi/nfit/core.c acpi_nfit_ctl (ND_CMD_GET_CONFIG_SIZE, _GET_CONFIG_DATA, _SET_CONFIG_DATA)
  getConfigSize(): NdCmdGetConfigSize;
  getConfigData(offset: number, len: number): Uint8Array | Errno;
  setConfigData(offset: number, data: Uint8Array): Errno;
  /** Named attribute groups of the DIMM (acpi_nfit_dimm_attribute_groups: "nfit"). */
  groups(): Array<{ name: string; attrs: Map<string, SysfsAttr> }>;
}

/** struct nvdimm_drvdata: the nvdimm driver's state while bound (label area copy, DPA allocations). */
export interface NvdimmDrvdata {
  readonly dev: Nvdimm;
  nslabelSize: number;
  nsarea: NdCmdGetConfigSize;
  /** The label area as read at probe and updated since (null until nd_label_data_init). */
  data: Uint8Array | null;
  nsCurrent: number;
  nsNext: number;
  /** The DPA resource root [0, -1]; children are allocations named by label id ("pmem-<uuid>"). */
  readonly dpa: Resource;
  kref: number;
}

/** struct nvdimm */
export interface Nvdimm extends Device {
  readonly kind: "nvdimm";
  readonly id: number;
  /** NDD_LABELING, NDD_LOCKED */
  flags: { labeling: boolean; locked: boolean };
  readonly cmdMask: number;
  /** Regions holding the DIMM active (atomic busy). */
  busy: number;
  readonly provider: NvdimmProvider;
  /** drvdata: set while the nvdimm driver is bound. */
  ndd: NvdimmDrvdata | null;
  readonly bus: "nd";
}

/** struct nd_label_ent: a label (offset into ndd->data) a mapping tracks; reap marks it for collection. */
export interface NdLabelEnt {
  reap: boolean;
  label: number | null;
}

/** struct nd_mapping: one DIMM's extent in a region. */
export interface NdMapping {
  readonly nvdimm: Nvdimm;
  /** DPA of the extent. */
  readonly start: number;
  readonly size: number;
  readonly position: number;
  labels: NdLabelEnt[];
  /** The drvdata reference the active region holds (init_active_labels). */
  ndd: NvdimmDrvdata | null;
}

export function isNvdimm(dev: Device | null): dev is Nvdimm {
  return dev?.kind === "nvdimm";
}

/** The nvdimm's bound drvdata (NULL when the nvdimm driver is not bound). */
// ref: drivers/nvdimm/dimm_devs.c to_ndd
export function toNdd(mapping: NdMapping): NvdimmDrvdata | null {
  return mapping.nvdimm.ndd;
}

// ref: drivers/nvdimm/dimm_devs.c get_ndd
export function getNdd(ndd: NvdimmDrvdata): void {
  ndd.kref++;
}

/** The last put frees every DPA allocation and the label copy. */
// ref: drivers/nvdimm/dimm_devs.c put_ndd, nvdimm_drvdata_release
export function putNdd(ndd: NvdimmDrvdata | null): void {
  if (!ndd) return;
  if (--ndd.kref > 0) return;
  while (ndd.dpa.child) nvdimmFreeDpa(ndd, ndd.dpa.child);
  ndd.data = null;
}

// ref: drivers/nvdimm/dimm_devs.c nvdimm_check_config_data
function nvdimmCheckConfigData(nvdimm: Nvdimm): Errno {
  if (!nvdimm.cmdMask || !((nvdimm.cmdMask >>> ND_CMD_GET_CONFIG_DATA) & 1)) return nvdimm.flags.labeling ? -ENXIO : -ENOTTY;
  return 0;
}

// ref: drivers/nvdimm/dimm_devs.c nvdimm_init_nsarea
function nvdimmInitNsarea(ndd: NvdimmDrvdata): Errno {
  const rc = nvdimmCheckConfigData(ndd.dev);
  if (rc) return rc;
  if (ndd.nsarea.configSize) return 0;
  ndd.nsarea = ndd.dev.provider.getConfigSize();
  return 0;
}

/** Read `len` bytes of the label area at `offset` into `buf` at the same offset. */
// ref: drivers/nvdimm/dimm_devs.c nvdimm_get_config_data
export function nvdimmGetConfigData(ndd: NvdimmDrvdata, buf: Uint8Array, offset: number, len: number): Errno {
  const rc = nvdimmCheckConfigData(ndd.dev);
  if (rc) return rc;
  if (offset + len > ndd.nsarea.configSize) return -ENXIO;
  const data = ndd.dev.provider.getConfigData(offset, len);
  if (typeof data === "number") return data;
  buf.set(data, offset);
  return 0;
}

// ref: drivers/nvdimm/dimm_devs.c nvdimm_set_config_data
export function nvdimmSetConfigData(ndd: NvdimmDrvdata, offset: number, data: Uint8Array): Errno {
  const rc = nvdimmCheckConfigData(ndd.dev);
  if (rc) return rc;
  if (offset + data.byteLength > ndd.nsarea.configSize) return -ENXIO;
  return ndd.dev.provider.setConfigData(offset, data);
}

// ref: drivers/nvdimm/dimm.c nvdimm_probe
function* nvdimmProbe(dev: Device): KernelPath<Errno> {
  if (!isNvdimm(dev)) return -ENXIO;
  let rc = nvdimmCheckConfigData(dev);
  if (rc) return rc === -ENOTTY ? 0 : rc;
  dev.flags.locked = false;
  const ndd: NvdimmDrvdata = {
    dev,
    nslabelSize: 0,
    nsarea: { status: 0, configSize: 0, maxXfer: 0 },
    data: null,
    nsCurrent: -1,
    nsNext: -1,
    dpa: newResource(dev.name, 0, Number.MAX_SAFE_INTEGER, 0),
    kref: 1,
  };
  dev.ndd = ndd;
  yield step(`nvdimm_probe(${dev.name})`);
  rc = nvdimmInitNsarea(ndd);
  if (rc === -EACCES) {
    dev.flags.locked = true;
    rc = 0;
  }
  if (!rc) rc = ndLabelDataInit(ndd);
  if (!rc && ndd.nsCurrent >= 0) {
    rc = ndLabelReserveDpa(ndd);
    if (rc === 0) dev.flags.labeling = true;
  }
  if (rc) {
    dev.ndd = null;
    putNdd(ndd);
  }
  return rc;
}

// ref: drivers/nvdimm/dimm.c nvdimm_remove
function* nvdimmRemove(dev: Device): KernelPath<void> {
  if (!isNvdimm(dev)) return;
  const ndd = dev.ndd;
  dev.ndd = null;
  yield step(`nvdimm_remove(${dev.name})`);
  putNdd(ndd);
}

/** The "nvdimm" driver (dimm.c), registered by libnvdimm's init. */
// ref: drivers/nvdimm/dimm.c nvdimm_driver, nvdimm_init
export function nvdimmDriver(): NdDriverSpec {
  return { name: "nvdimm", types: [ND_DEVICE_DIMM], probe: nvdimmProbe, remove: nvdimmRemove };
}

// ref: drivers/nvdimm/dimm_devs.c __available_slots_show
function availableSlotsShow(ndd: NvdimmDrvdata | null): string | Errno {
  if (!ndd) return -ENXIO;
  const nfree = ndLabelNfree(ndd);
  // An index without a free slot would underflow: the kernel WARNs and prints 0.
  return String(nfree === 0 ? 0 : nfree - 1);
}

/** Attributes of an nmem device: nd_device group, nvdimm group (security, frozen hidden) and its char dev. */
// ref: drivers/nvdimm/dimm_devs.c nvdimm_attributes, nvdimm_visible, state_show, flags_show, commands_show
function nvdimmAttrs(k: Kernel, nvdimm: Nvdimm, devt: string): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>([
    ["state", ro(() => (nvdimm.busy ? "active" : "idle"))],
    ["flags", ro(() => `${nvdimm.flags.labeling ? "label " : ""}${nvdimm.flags.locked ? "lock " : ""}`)],
    ["commands", ro(() => commandsShow(nvdimm.cmdMask, false))],
    ["available_slots", ro(() => availableSlotsShow(nvdimm.ndd))],
    ["dev", ro(() => devt)],
  ]);
  for (const [n, a] of ndDeviceAttrs(k, nvdimm, "nvdimm")) if (n === "modalias" || n === "devtype") attrs.set(n, a);
  return attrs;
}

/** The nvdimm char devices' major (dynamic; the oracle's guest got 245). */
const NVDIMM_MAJOR = 245;

/** __nvdimm_create: "nmemN" under the bus, registered (and probed by the nvdimm driver) asynchronously. */
// ref: drivers/nvdimm/dimm_devs.c __nvdimm_create, nvdimm_release
export function nvdimmCreate(k: Kernel, bus: NvdimmBus, provider: NvdimmProvider, cmdMask: number): Nvdimm {
  const core = deviceCore(k);
  const id = core.dimmIda.get();
  const nvdimm: Nvdimm = {
    kind: "nvdimm",
    name: `nmem${id}`,
    bus: "nd",
    parent: bus,
    path: `${bus.path}/nmem${id}`,
    driver: null,
    registered: false,
    numaNode: -1,
    devres: [],
    id,
    flags: { labeling: false, locked: false },
    cmdMask,
    busy: 0,
    provider,
    ndd: null,
    attrs: () => nvdimmAttrs(k, nvdimm, `${NVDIMM_MAJOR}:${id}`),
    subdirs: () => provider.groups(),
    release: () => core.dimmIda.remove(id),
  };
  ndDeviceRegister(k, nvdimm);
  return nvdimm;
}

// ---------------------------------------------------------------------------------------------------------------
// DPA accounting

/** The per-DIMM allocation granule: the region's align spread over its interleave ways (0 when invalid). */
// ref: drivers/nvdimm/dimm_devs.c dpa_align
export function dpaAlign(region: NdRegion): number {
  if (!region.mappings || region.align % region.mappings) return 0;
  return region.align / region.mappings;
}

const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;
const alignDown = (x: number, a: number) => Math.floor(x / a) * a;

/** The largest free, aligned extent of this DIMM within the region (0 when the DIMM is disabled). */
// ref: drivers/nvdimm/dimm_devs.c nd_pmem_max_contiguous_dpa
export function ndPmemMaxContiguousDpa(region: NdRegion, mapping: NdMapping): number {
  const ndd = toNdd(mapping);
  if (!ndd) return 0;
  const align = dpaAlign(region);
  if (!align) return 0;
  if (reserveFreePmem(region, mapping.nvdimm)) return 0;
  let max = 0;
  for (let res = ndd.dpa.child; res; res = res.sibling) {
    if (res.name !== "pmem-reserve") continue;
    const start = alignUp(res.start, align);
    const end = alignDown(res.end + 1, align) - 1;
    if (end < start) continue;
    if (end - start + 1 > max) max = end - start + 1;
  }
  releaseFreePmem(mapping);
  return max;
}

/** Unallocated DPA of this mapping, allocations rounded out to the alignment (0 if one straddles the end). */
// ref: drivers/nvdimm/dimm_devs.c nd_pmem_available_dpa
export function ndPmemAvailableDpa(region: NdRegion, mapping: NdMapping): number {
  const ndd = toNdd(mapping);
  if (!ndd) return 0;
  const align = dpaAlign(region);
  if (!align) return 0;
  const mapStart = mapping.start;
  const mapEnd = mapStart + mapping.size - 1;
  let busy = 0;
  for (let res = ndd.dpa.child; res; res = res.sibling) {
    const start = alignDown(res.start, align);
    const end = alignUp(res.end + 1, align) - 1;
    if (start >= mapStart && start < mapEnd) {
      if (end > mapEnd) return 0; // "misaligned to iset"
      busy += end - start + 1;
    } else if (end >= mapStart && end <= mapEnd) {
      busy += end - start + 1;
    } else if (mapStart > start && mapStart < end) {
      busy += mapping.size;
    }
  }
  if (busy < mapping.size) return alignDown(mapping.size - busy, align);
  return 0;
}

// ref: drivers/nvdimm/dimm_devs.c nvdimm_free_dpa
export function nvdimmFreeDpa(ndd: NvdimmDrvdata, res: Resource): void {
  releaseRegion(ndd.dpa, res.start, res.end - res.start + 1);
}

/** A named DPA allocation, or null when it collides with another. */
// ref: drivers/nvdimm/dimm_devs.c nvdimm_allocate_dpa
export function nvdimmAllocateDpa(ndd: NvdimmDrvdata, labelId: string, start: number, n: number): Resource | null {
  return requestRegion(ndd.dpa, start, n, labelId);
}

// ref: drivers/nvdimm/dimm_devs.c nvdimm_allocated_dpa
export function nvdimmAllocatedDpa(ndd: NvdimmDrvdata, labelId: string): number {
  let allocated = 0;
  for (let res = ndd.dpa.child; res; res = res.sibling) if (res.name === labelId) allocated += res.end - res.start + 1;
  return allocated;
}

/** -EBUSY: a label write while a region holds the DIMM (nd_cmd_clear_to_send). */
// ref: drivers/nvdimm/bus.c nd_cmd_clear_to_send
export function ndCmdClearToSend(nvdimm: Nvdimm, cmd: number): Errno {
  if (cmd !== ND_CMD_SET_CONFIG_DATA) return 0;
  return nvdimm.busy ? -EBUSY : 0;
}

/** What an ND_CMD_* ioctl on an nmem device returns. */
export interface NdIoctlResult {
  rc: Errno;
  size?: NdCmdGetConfigSize;
  data?: Uint8Array;
}

/**
 * The nmem character device's ioctls for the label area (ND_IOCTL_GET_CONFIG_SIZE, _GET_CONFIG_DATA,
 * _SET_CONFIG_DATA): -ENOTTY for a command the DIMM does not support, -EBUSY for a label write while a
 * region holds the DIMM; otherwise the bus provider's answer. Writes go to the DIMM only: the nvdimm driver's
 * copy (ndd->data) is stale until the driver is re-bound.
 */
// ref: drivers/nvdimm/bus.c nvdimm_ioctl, __nd_ioctl, nd_cmd_clear_to_send
export function nvdimmIoctl(nvdimm: Nvdimm, cmd: number, arg: { offset?: number; len?: number; data?: Uint8Array } = {}): NdIoctlResult {
  if (!((nvdimm.cmdMask >>> cmd) & 1)) return { rc: -ENOTTY };
  const rc = ndCmdClearToSend(nvdimm, cmd);
  if (rc) return { rc };
  const p = nvdimm.provider;
  if (cmd === ND_CMD_GET_CONFIG_SIZE) return { rc: 0, size: p.getConfigSize() };
  if (cmd === ND_CMD_GET_CONFIG_DATA) {
    const data = p.getConfigData(arg.offset ?? 0, arg.len ?? 0);
    return typeof data === "number" ? { rc: data } : { rc: 0, data };
  }
  if (cmd === ND_CMD_SET_CONFIG_DATA) return { rc: p.setConfigData(arg.offset ?? 0, arg.data ?? new Uint8Array(0)) };
  return { rc: -ENOTTY };
}
