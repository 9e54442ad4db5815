/**
 * ndctl's region and DIMM commands as the sysfs and ioctl traffic they make (ndctl/region.c, ndctl/dimm.c,
 * ndctl/lib/libndctl.c, ndctl/lib/dimm.c of ndctl v76): disable-region / enable-region (namespaces disabled
 * first, then the region unbound; or bound), init-labels (read the index blocks through the nmem ioctls,
 * refuse while a region holds the DIMM or labels exist without -f, write two fresh index blocks, re-bind the
 * DIMM so the kernel re-reads its label area), disable-dimm / enable-dimm.
 */
import { EBUSY, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import type { Device } from "./device_core.ts";
import { ND_CMD_GET_CONFIG_DATA, ND_CMD_GET_CONFIG_SIZE, ND_CMD_SET_CONFIG_DATA, type Nvdimm, nvdimmIoctl } from "./dimm_devs.ts";
import { type LabelArea, NSINDEX, NSINDEX_SIGNATURE, ndLabelNextNsindex, ndLabelValidate, nvdimmNumLabelSlots, sizeofNamespaceIndex } from "./label.ts";
import { isNamespaceIo, isNdRegion, type NdRegion } from "./nd.ts";
import { libndctlBuses, libndctlDimms, libndctlOrder, type NdctlResult, namespaceDisableSafe, Sys, utilBind, utilUnbind } from "./ndctl.ts";
import { ndFletcher64 } from "./pfn.ts";

const plural = (n: number, word: string, many = n > 1) => `${n} ${word}${many ? "s" : ""}`;

/** ndctl's idea of "is this device bound": its driver link exists. */
const isEnabled = (s: Sys, dev: Device) => s.driver(dev) !== null;

/** A filter argument: "all", or space-separated device names or numbers. */
// ref: ndctl/filter.c util_bus_filter, util_region_filter, util_dimm_filter
function matchesFilter(ident: string, dev: Device, prefix: string): boolean {
  if (ident === "all") return true;
  const id = dev.name.slice(prefix.length);
  return ident.split(" ").some((name) => {
    if (name === "all" || name === dev.name) return true;
    const num = name.startsWith(prefix) ? name.slice(prefix.length) : name;
    return /^\d+$/.test(num) && String(Number(num)) === id;
  });
}

function regionsOf(k: Kernel, bus: Device): NdRegion[] {
  return libndctlOrder((k.devices?.devicesOn("nd") ?? []).filter((d): d is NdRegion => d.parent === bus && isNdRegion(d)));
}

// ref: ndctl/lib/libndctl.c ndctl_region_enable
export function regionEnable(s: Sys, region: NdRegion): Errno {
  if (isEnabled(s, region)) return 0;
  utilBind(s, region.name);
  if (!isEnabled(s, region)) {
    s.err(`libndctl: ndctl_region_enable: ${region.name}: failed to enable`);
    return -ENXIO;
  }
  return 0;
}

// ref: ndctl/lib/libndctl.c ndctl_region_disable, ndctl_region_disable_invalidate
export function regionDisableInvalidate(s: Sys, region: NdRegion): Errno {
  if (!isEnabled(s, region)) return 0;
  utilUnbind(s, region);
  if (isEnabled(s, region)) {
    s.err(`libndctl: ndctl_region_disable: ${region.name}: failed to disable`);
    return -EBUSY;
  }
  return 0;
}

/** disable: every namespace (disable_safe) first, then the region; enable: bind the region. */
// ref: ndctl/region.c region_action
function regionAction(s: Sys, region: NdRegion, enable: boolean): Errno {
  if (enable) return regionEnable(s, region);
  const namespaces = libndctlOrder((s.k.devices?.devicesOn("nd") ?? []).filter((d) => d.parent === region && isNamespaceIo(d)));
  for (const ns of namespaces) {
    if (!isNamespaceIo(ns)) continue;
    const rc = namespaceDisableSafe(s, ns);
    if (rc) return rc;
  }
  return regionDisableInvalidate(s, region);
}

/** `ndctl disable-region|enable-region REGION|all`: the count is reported, the exit status is 0. */
// ref: ndctl/region.c cmd_disable_region, cmd_enable_region, do_xable_region
export function xableRegion(k: Kernel, o: { region: string; enable: boolean; bus?: string }): NdctlResult<{ count: number }> {
  const s = new Sys(k);
  let success = 0;
  for (const bus of libndctlBuses(k)) {
    if (o.bus !== undefined && !matchesFilter(o.bus, bus, "ndbus") && o.bus !== s.read(`${bus.path}/provider`)) continue;
    for (const region of regionsOf(k, bus)) {
      if (!matchesFilter(o.region, region, "region")) continue;
      if (regionAction(s, region, o.enable) === 0) success++;
    }
  }
  s.err(`${o.enable ? "enabled" : "disabled"} ${plural(success, "region", success !== 1)}`);
  return s.result(0, { count: success });
}

// ref: ndctl/lib/libndctl.c ndctl_dimm_disable
export function dimmDisable(s: Sys, dimm: Nvdimm): Errno {
  if (!isEnabled(s, dimm)) return 0;
  utilUnbind(s, dimm);
  if (isEnabled(s, dimm)) {
    s.err(`libndctl: ndctl_dimm_disable: ${dimm.name}: failed to disable`);
    return -EBUSY;
  }
  return 0;
}

// ref: ndctl/lib/libndctl.c ndctl_dimm_enable
export function dimmEnable(s: Sys, dimm: Nvdimm): Errno {
  if (isEnabled(s, dimm)) return 0;
  utilBind(s, dimm.name);
  if (!isEnabled(s, dimm)) {
    s.err(`libndctl: ndctl_dimm_enable: ${dimm.name}: failed to enable`);
    return -ENXIO;
  }
  return 0;
}

/** A region holds the DIMM ("state" is "active"). */
// ref: ndctl/lib/libndctl.c ndctl_dimm_is_active
export function dimmIsActive(s: Sys, dimm: Nvdimm): boolean {
  return s.read(`${dimm.path}/state`) === "active";
}

/** libndctl's view of a DIMM's label area after reading its index blocks (struct nvdimm_data). */
interface NvdimmData extends LabelArea {
  data: Uint8Array;
}

/**
 * Read the two index blocks (sized for 128-byte labels, the largest index) through the ioctls: null when the
 * DIMM has no label commands or the reads fail.
 */
// ref: ndctl/lib/dimm.c ndctl_dimm_read_label_index, init_ndd
export function readLabelIndex(dimm: Nvdimm): NvdimmData | null {
  const size = nvdimmIoctl(dimm, ND_CMD_GET_CONFIG_SIZE);
  if (size.rc || !size.size || size.size.status) return null;
  const ndd: NvdimmData = { data: new Uint8Array(size.size.configSize), nsarea: { configSize: size.size.configSize }, nslabelSize: 128 };
  const len = Math.min(sizeofNamespaceIndex(ndd) * 2, ndd.data.byteLength);
  const read = nvdimmIoctl(dimm, ND_CMD_GET_CONFIG_DATA, { offset: 0, len });
  if (read.rc || !read.data) return null;
  ndd.data.set(read.data, 0);
  return ndd;
}

/**
 * One index block as libndctl writes it: every slot free (the bitmap filled with 0xff up to a 64-bit boundary),
 * sequence `seq`, written through ND_CMD_SET_CONFIG_DATA.
 */
// ref: ndctl/lib/dimm.c write_label_index, nvdimm_set_config_data
function writeLabelIndex(dimm: Nvdimm, ndd: NvdimmData, version: "1.1" | "1.2", index: number, seq: number): Errno {
  ndd.nslabelSize = version === "1.1" ? 128 : 256;
  const isize = sizeofNamespaceIndex(ndd);
  const nsindex = isize * index;
  const nslot = nvdimmNumLabelSlots(ndd);
  const d = ndd.data;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  d.set(new TextEncoder().encode(NSINDEX_SIGNATURE), nsindex + NSINDEX.sig);
  d.fill(0, nsindex + NSINDEX.flags, nsindex + NSINDEX.flags + 3);
  d[nsindex + NSINDEX.labelsize] = ndd.nslabelSize >> 8;
  v.setUint32(nsindex + NSINDEX.seq, seq, true);
  v.setBigUint64(nsindex + NSINDEX.myoff, BigInt(nsindex), true);
  v.setBigUint64(nsindex + NSINDEX.mysize, BigInt(isize), true);
  v.setBigUint64(nsindex + NSINDEX.otheroff, BigInt(isize * ndLabelNextNsindex(index)), true);
  v.setBigUint64(nsindex + NSINDEX.labeloff, BigInt(2 * isize), true);
  v.setUint32(nsindex + NSINDEX.nslot, nslot, true);
  v.setUint16(nsindex + NSINDEX.major, 1, true);
  v.setUint16(nsindex + NSINDEX.minor, ndd.nslabelSize < 256 ? 1 : 2, true);
  v.setBigUint64(nsindex + NSINDEX.checksum, 0n, true);
  d.fill(0xff, nsindex + NSINDEX.free, nsindex + NSINDEX.free + Math.ceil(nslot / 64) * 8);
  v.setBigUint64(nsindex + NSINDEX.checksum, ndFletcher64(d.subarray(nsindex, nsindex + isize)), true);
  const w = nvdimmIoctl(dimm, ND_CMD_SET_CONFIG_DATA, { offset: nsindex, data: d.slice(nsindex, nsindex + isize) });
  return w.rc < 0 ? -ENXIO : 0;
}

/** Index blocks 0 and 1 with sequence numbers 3 and 2; the slot count. */
// ref: ndctl/lib/dimm.c ndctl_dimm_init_labels
export function dimmInitLabels(dimm: Nvdimm, ndd: NvdimmData, version: "1.1" | "1.2"): number | Errno {
  for (let i = 0; i < 2; i++) {
    const rc = writeLabelIndex(dimm, ndd, version, i, 3 - i);
    if (rc < 0) return rc;
  }
  return nvdimmNumLabelSlots(ndd);
}

// ref: ndctl/dimm.c __action_init (chk_only = 0)
function actionInit(s: Sys, dimm: Nvdimm, version: "1.1" | "1.2", force: boolean): Errno {
  const ndd = readLabelIndex(dimm);
  if (!ndd) return -ENXIO;
  if (dimmIsActive(s, dimm)) {
    s.err(`${dimm.name}: regions active, abort label write`);
    return -EBUSY;
  }
  // ndctl_dimm_validate_labels: a valid index with either label size.
  const valid = ndLabelValidate(ndd) >= 0;
  if (valid && !force) {
    s.err(`${dimm.name}: error: labels already initialized`);
    return -EBUSY;
  }
  let rc = dimmInitLabels(dimm, ndd, version);
  if (rc < 0) return rc;
  // An enabled DIMM holds a copy of the label area: re-bind it so the kernel reads the new index.
  if (!isEnabled(s, dimm)) return 0;
  rc = dimmDisable(s, dimm);
  if (rc) return rc;
  rc = dimmEnable(s, dimm);
  return rc >= 0 ? 0 : rc;
}

// ref: ndctl/dimm.c action_disable, action_enable
function actionXable(s: Sys, dimm: Nvdimm, enable: boolean): Errno {
  if (enable) return dimmEnable(s, dimm);
  if (dimmIsActive(s, dimm)) {
    s.err(`${dimm.name} is active, skipping...`);
    return -EBUSY;
  }
  return dimmDisable(s, dimm);
}

export type DimmAction = { kind: "init-labels"; force?: boolean; labelVersion?: "1.1" | "1.2" } | { kind: "disable-dimm" } | { kind: "enable-dimm" };

/**
 * `ndctl init-labels|disable-dimm|enable-dimm DIMM… | all`: the action on every matching DIMM; the count of
 * successes (the first error when none succeeded).
 */
// ref: ndctl/dimm.c dimm_action, cmd_init_labels, cmd_disable_dimm, cmd_enable_dimm
export function dimmAction(k: Kernel, dimms: readonly string[], action: DimmAction, bus?: string): NdctlResult<{ count: number }> {
  const s = new Sys(k);
  let count = 0;
  let err: Errno = 0;
  const args = dimms.includes("all") ? ["all"] : dimms;
  for (const arg of args) {
    if (!/^nmem\d+/.test(arg) && arg !== "all") continue;
    for (const b of libndctlBuses(k)) {
      if (bus !== undefined && !matchesFilter(bus, b, "ndbus") && bus !== s.read(`${b.path}/provider`)) continue;
      for (const dimm of libndctlDimms(k, b)) {
        if (!matchesFilter(arg, dimm, "nmem")) continue;
        let rc: Errno;
        if (action.kind === "init-labels") rc = actionInit(s, dimm, action.labelVersion ?? "1.1", action.force ?? false);
        else rc = actionXable(s, dimm, action.kind === "enable-dimm");
        if (rc === 0) count++;
        else if (!err) err = rc;
      }
    }
  }
  const done = count > 0 ? count : err;
  const verb = action.kind === "init-labels" ? "initialized" : action.kind === "disable-dimm" ? "disabled" : "enabled";
  s.err(`${verb} ${done >= 0 ? done : 0} nmem${done > 1 ? "s" : ""}`);
  return s.result(done >= 0 ? 0 : done, { count: Math.max(0, done) });
}
