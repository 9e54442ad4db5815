/**
 * ndctl's namespace commands as the sysfs writes it performs (ndctl/namespace.c, ndctl/lib/libndctl.c,
 * util/sysfs.c of ndctl v76–v81): each operation reads and writes the model's sysfs at the kernel's paths,
 * in ndctl's order, and returns the errno ndctl exits with (negated), the stderr lines of libndctl and of the
 * command, and the namespace as util_namespace_to_json sees it (JSON rendering is the caller's business).
 *
 * uuid_generate() is replaced by a counter in the device core so runs are reproducible.
 */
import { EAGAIN, EBUSY, EINVAL, ENODEV, ENOSPC, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type DaxDevInfo, daxDevInfo } from "../dax/daxctl.ts";
import { type Device, deviceCore } from "./device_core.ts";
import { isNamespaceIo, isNdDax, isNdRegion, type NdNamespaceIo, type NdRegion } from "./nd.ts";
import { modelUuid } from "./pfn_device.ts";
import { pmemDisk } from "./pmem.ts";

export type NdctlMode = "raw" | "sector" | "fsdax" | "devdax";

/** What a command returns: 0 or the negative errno ndctl exits with, its stderr, and the sysfs it touched. */
export interface NdctlResult<T> {
  rc: Errno;
  out: T | null;
  /** Lines ndctl and libndctl print on stderr (the command's own summary line included). */
  stderr: string[];
  /** Every sysfs access: "write PATH = VALUE -> rc" / "read PATH". */
  trace: string[];
}

export interface CreateNamespaceOptions {
  /** -e: reconfigure this namespace (`ndctl create-namespace -e namespace0.0`). */
  namespace?: string;
  /** -r: the region to create in (without -e). */
  region?: string;
  mode?: NdctlMode | "memory" | "dax" | "safe";
  map?: "mem" | "dev";
  /** --align in bytes. */
  align?: number;
  /** --size in bytes. */
  size?: number;
  sectorSize?: number;
  /** -f */
  force?: boolean;
  /** -R (default on): undo the claim when enabling fails. */
  autorecover?: boolean;
  /** -L (default on): try to initialise labels on a label-less region (needs DIMMs). */
  autolabel?: boolean;
}

/** A namespace as util_namespace_to_json reads it. */
export interface NamespaceInfo {
  dev: string;
  mode: NdctlMode | null;
  map?: "none" | "mem" | "dev";
  size?: number;
  uuid?: string;
  sectorSize?: number;
  align?: number;
  blockdev?: string;
  daxRegion?: DaxRegionInfo;
  state?: "disabled";
  numaNode: number;
  /** Present when the namespace shows target_node (a region with a known target node). */
  targetNode?: number;
}

/** A region as util_region_to_json reads it (ndctl list -R -vvv). */
export interface RegionInfo {
  dev: string;
  size: number;
  align: number;
  availableSize: number;
  maxAvailableExtent: number;
  type: "pmem";
  numaNode?: number;
  targetNode?: number;
  capabilities: Array<{ mode: "sector"; sectorSizes: number[] } | { mode: "fsdax" | "devdax"; alignments: number[] }>;
  persistenceDomain: string;
  namespaces: NamespaceInfo[];
  state?: "disabled";
}

export interface BusInfo {
  provider: string;
  dev: string;
  regions: RegionInfo[];
}

export interface DaxRegionInfo {
  id: number;
  size: number;
  align: number;
  /** As daxctl describes them (ndctl prints them without the mappings). */
  devices: DaxDevInfo[];
}

const PAGE_SIZE = 4096;
const SZ_16M = 16 * 2 ** 20;
const SZ_2M = 2 * 2 ** 20;

/** A session of sysfs traffic, as a tool makes it (libndctl / libdaxctl), traced. */
export class Sys {
  readonly trace: string[] = [];
  readonly stderr: string[] = [];
  constructor(readonly k: Kernel) {}

  read(path: string): string | null {
    const v = this.k.sysfs.read(this.k, path);
    this.trace.push(`read ${path}${typeof v === "number" ? ` -> ${v}` : ""}`);
    return typeof v === "number" ? null : v;
  }

  write(path: string, value: string): Errno {
    const rc = this.k.sysfs.write(this.k, path, value);
    this.trace.push(`write ${path} = ${JSON.stringify(value)} -> ${rc}`);
    return rc;
  }

  /** A bound driver's name, or null (readlink DEV/driver). */
  driver(dev: Device): string | null {
    return dev.driver?.name ?? null;
  }

  err(line: string): void {
    this.stderr.push(line);
  }

  result<T>(rc: Errno, out: T | null): NdctlResult<T> {
    return { rc, out, stderr: this.stderr, trace: this.trace };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// libndctl objects (found by walking /sys/bus/nd/devices, which is the device core here)

function ndDevices(k: Kernel): Device[] {
  return k.devices ? k.devices.devicesOn("nd") : [];
}

function findNamespace(k: Kernel, name: string): NdNamespaceIo | null {
  const d = ndDevices(k).find((x) => x.name === name);
  return d && isNamespaceIo(d) ? d : null;
}

function regionChild(k: Kernel, region: NdRegion, name: string | null): Device | null {
  if (!name) return null;
  return ndDevices(k).find((d) => d.parent === region && d.name === name) ?? null;
}

/** The ndctl namespace mode from sysfs `mode`. */
// ref: ndctl/lib/libndctl.c ndctl_namespace_get_mode
function namespaceGetMode(s: Sys, ns: NdNamespaceIo): NdctlMode | null {
  const m = s.read(`${ns.path}/mode`);
  if (m === "memory") return "fsdax";
  if (m === "dax") return "devdax";
  if (m === "raw") return "raw";
  if (m === "safe") return "sector";
  return null;
}

/** The pfn/dax/btt device named by the namespace's `holder`, of the wanted kind. */
// ref: ndctl/lib/libndctl.c ndctl_namespace_get_pfn, _get_dax, _get_btt
function namespaceHolder(s: Sys, ns: NdNamespaceIo, kind: "nd_pfn" | "nd_dax" | "nd_btt"): Device | null {
  const d = regionChild(s.k, ns.region, s.read(`${ns.path}/holder`));
  return d && d.kind === kind ? d : null;
}

function regionSeed(s: Sys, region: NdRegion, attr: "pfn_seed" | "dax_seed" | "btt_seed"): Device | null {
  return regionChild(s.k, region, s.read(`${region.path}/${attr}`));
}

// ref: ndctl/lib/libndctl.c ndctl_namespace_is_active
function namespaceIsActive(s: Sys, ns: NdNamespaceIo): boolean {
  const btt = namespaceHolder(s, ns, "nd_btt");
  const pfn = namespaceHolder(s, ns, "nd_pfn");
  const dax = namespaceHolder(s, ns, "nd_dax");
  if (btt && s.driver(btt)) return true;
  if (pfn && s.driver(pfn)) return true;
  if (dax && s.driver(dax)) return true;
  return !btt && !pfn && !dax && s.driver(ns) !== null;
}

/** util_bind: write the name to every nd driver's bind until one takes it. */
// ref: ndctl util/sysfs.c __util_bind
function utilBind(s: Sys, name: string): Errno {
  const drivers = deviceCore(s.k).driversOn("nd");
  for (const drv of drivers) {
    if (s.write(`/sys/bus/nd/drivers/${drv.name}/bind`, name) === 0) return 0;
  }
  return -ENXIO;
}

// ref: ndctl util/sysfs.c __util_unbind
function utilUnbind(s: Sys, dev: Device): Errno {
  const drv = s.driver(dev);
  if (!drv) return -ENXIO;
  return s.write(`/sys/bus/nd/drivers/${drv}/unbind`, dev.name);
}

// ref: ndctl/lib/libndctl.c ndctl_namespace_enable
function namespaceEnable(s: Sys, ns: NdNamespaceIo): Errno {
  if (s.driver(ns)) return 0;
  const rc = utilBind(s, ns.name);
  if (!s.driver(ns)) {
    for (const kind of ["nd_btt", "nd_pfn", "nd_dax"] as const) {
      const h = namespaceHolder(s, ns, kind);
      if (h && s.driver(h)) return 1;
    }
    s.err(`libndctl: ndctl_namespace_enable: ${ns.name}: failed to enable`);
    return rc ? rc : -ENXIO;
  }
  return 0;
}

// ref: ndctl/lib/libndctl.c ndctl_namespace_disable
function namespaceDisable(s: Sys, ns: NdNamespaceIo): Errno {
  if (!s.driver(ns)) return 0;
  utilUnbind(s, ns);
  if (s.driver(ns)) {
    s.err(`libndctl: ndctl_namespace_disable: ${ns.name}: failed to disable`);
    return -EBUSY;
  }
  return 0;
}

/** ndctl_pfn_delete / ndctl_dax_delete / ndctl_btt_delete: unbind, then detach the namespace. */
// ref: ndctl/lib/libndctl.c ndctl_pfn_delete, ndctl_dax_delete, ndctl_btt_delete
function claimDelete(s: Sys, dev: Device): Errno {
  if (s.driver(dev)) utilUnbind(s, dev);
  return s.write(`${dev.path}/namespace`, "\n");
}

// ref: ndctl/lib/libndctl.c ndctl_namespace_disable_invalidate
function namespaceDisableInvalidate(s: Sys, ns: NdNamespaceIo): Errno {
  let rc: Errno = 0;
  const btt = namespaceHolder(s, ns, "nd_btt");
  const pfn = namespaceHolder(s, ns, "nd_pfn");
  const dax = namespaceHolder(s, ns, "nd_dax");
  if (btt) rc = claimDelete(s, btt);
  if (pfn) rc = claimDelete(s, pfn);
  if (dax) rc = claimDelete(s, dax);
  if (rc) return rc;
  return namespaceDisable(s, ns);
}

/** Does the dax device behind this nd_dax have online memory (kmem)? */
// ref: ndctl/lib/libndctl.c ndctl_dax_has_active_memory; daxctl/lib/libdaxctl.c daxctl_dev_has_online_memory
function daxHasActiveMemory(s: Sys, dax: Device): boolean {
  const core = deviceCore(s.k);
  for (const dd of core.devices) {
    if (dd.kind !== "dev_dax" || dd.parent !== dax || s.driver(dd) !== "kmem") continue;
    const res = s.read(`${dd.path}/resource`);
    const size = s.read(`${dd.path}/size`);
    if (res === null || size === null) continue;
    const start = Number(res);
    const end = start + Number(size) - 1;
    const bs = Number.parseInt(s.read("/sys/devices/system/memory/block_size_bytes") ?? "0", 16);
    for (const mem of s.k.memoryBlocks.all()) {
      const addr = mem.id * bs;
      if (addr < start || addr > end) continue;
      if (s.read(`/sys/devices/system/memory/memory${mem.id}/state`) === "online") return true;
    }
  }
  return false;
}

/** The block device is opened O_EXCL (nothing in the model holds it), then the namespace is invalidated. */
// ref: ndctl/lib/libndctl.c ndctl_namespace_disable_safe
function namespaceDisableSafe(s: Sys, ns: NdNamespaceIo): Errno {
  const dax = namespaceHolder(s, ns, "nd_dax");
  const pfn = namespaceHolder(s, ns, "nd_pfn");
  const btt = namespaceHolder(s, ns, "nd_btt");
  if (!(pfn && s.driver(pfn)) && !(btt && s.driver(btt)) && dax && s.driver(dax) && daxHasActiveMemory(s, dax)) return -EBUSY;
  namespaceDisableInvalidate(s, ns);
  return 0;
}

/** enforce_id_to_name: the holder_class a mode asks for. */
// ref: ndctl/lib/libndctl.c enforce_id_to_name, ndctl_namespace_set_enforce_mode
function setEnforceMode(s: Sys, ns: NdNamespaceIo, mode: NdctlMode): Errno {
  const name = mode === "fsdax" ? "pfn" : mode === "devdax" ? "dax" : mode === "sector" ? "btt" : "";
  return s.write(`${ns.path}/holder_class`, name);
}

/** Zero the first 8 KiB (the info block) through the raw block device, if anything is there. */
// ref: ndctl/namespace.c zero_info_block
function zeroInfoBlock(s: Sys, ns: NdNamespaceIo): number {
  const infoSize = 8192;
  let rc: number;
  s.write(`${ns.path}/force_raw`, "1\n");
  const en = namespaceEnable(s, ns);
  if (en < 0) {
    s.err(`${ns.name} failed to enable for zeroing, continuing`);
    rc = 1;
  } else {
    const disk = pmemDisk(ns);
    if (!disk) {
      s.err(`${ns.name}: failed to open /dev/ to zero info block`);
      rc = -ENXIO;
    } else {
      const cur = ns.region.media.read(ns.resStart, infoSize);
      if (cur.every((b) => b === 0)) rc = 1;
      else {
        ns.region.media.write(ns.resStart, new Uint8Array(infoSize));
        rc = 0;
      }
    }
  }
  s.write(`${ns.path}/force_raw`, "0\n");
  namespaceDisableInvalidate(s, ns);
  return rc;
}

// ref: ndctl/namespace.c namespace_prep_reconfig
function namespacePrepReconfig(s: Sys, region: NdRegion, ns: NdNamespaceIo, force: boolean): number {
  if (s.read(`${region.path}/read_only`) === "1") {
    s.err(`  Error: ${ns.name}: read-only, re-configuration disabled`);
    return -ENXIO;
  }
  if (namespaceIsActive(s, ns) && !force) {
    s.err(`  Error: ${ns.name} is active, specify --force for re-configuration`);
    return -EBUSY;
  }
  const rc = namespaceDisableSafe(s, ns);
  if (rc) return rc;
  setEnforceMode(s, ns, "raw");
  const z = zeroInfoBlock(s, ns);
  if (z < 0) return z;
  // A label-less (io) namespace counts as processed only if something was zeroed.
  return z === 0 ? 0 : 1;
}

interface Params {
  size: number;
  mode: NdctlMode;
  align: number;
  sectorSize: number;
  loc: "none" | "mem" | "dev";
  uuid: string;
}

function supportedList(v: string | null): number[] {
  return (v ?? "")
    .replace(/[[\]]/g, "")
    .split(/\s+/)
    .filter((x) => x)
    .map(Number);
}

function normMode(m: CreateNamespaceOptions["mode"]): NdctlMode | null {
  if (m === "memory") return "fsdax";
  if (m === "dax") return "devdax";
  if (m === "safe") return "sector";
  return m ?? null;
}

function nextUuid(k: Kernel): string {
  const core = deviceCore(k);
  core.uuidCounter++;
  return modelUuid(core.uuidCounter);
}

// ref: ndctl/namespace.c validate_namespace_options, validate_available_capacity
function validateNamespaceOptions(s: Sys, region: NdRegion, ns: NdNamespaceIo | null, o: CreateNamespaceOptions): Params | Errno {
  const name = region.name;
  if (!s.driver(region)) return -EAGAIN;
  const regionSize = Number(s.read(`${region.path}/size`) ?? "0");
  let size: number;
  let defaultSize = false;
  if (o.size !== undefined) size = o.size;
  else if (ns) size = Number(s.read(`${ns.path}/size`) ?? "0");
  else {
    size = 0;
    defaultSize = true;
  }
  // No namespace: the io region's whole size is available.
  if (!ns) {
    if (!regionSize || size > regionSize) return -EAGAIN;
    if (size === 0) size = regionSize;
  }
  if (size !== regionSize) {
    s.err("  Error: Legacy / label-less namespaces do not support sub-dividing a region");
    s.err("  Error: Retry without -s/--size=");
    return -EINVAL;
  }
  const uuid = nextUuid(s.k);
  // Without -e, set_defaults picked mode fsdax (mode_default).
  const modeDefault = !o.namespace && o.mode === undefined;
  let mode: NdctlMode | null = normMode(o.mode) ?? (ns ? namespaceGetMode(s, ns) : modeDefault ? "fsdax" : null);
  if (!mode) mode = "raw";
  let pfn: Device | null = null;
  let dax: Device | null = null;
  if (mode === "fsdax") {
    pfn = regionSeed(s, region, "pfn_seed");
    if (!pfn && modeDefault) {
      s.err(`${name} fsdax mode not available`);
      mode = "raw";
    }
  } else if (mode === "devdax") {
    dax = regionSeed(s, region, "dax_seed");
    if (!dax) {
      s.err(`  Error: Kernel does not support ${mode} mode`);
      return -ENODEV;
    }
  }
  let align: number;
  if (o.align !== undefined) {
    let list: number[];
    if (mode === "fsdax") {
      if (!pfn) {
        s.err("  Error: Kernel does not support setting an alignment in fsdax mode");
        return -EINVAL;
      }
      list = supportedList(s.read(`${pfn.path}/supported_alignments`));
    } else if (mode === "devdax" && dax) {
      list = supportedList(s.read(`${dax.path}/supported_alignments`));
    } else {
      s.err(`  Error: ${mode} mode does not support setting an alignment`);
      return -ENXIO;
    }
    if (!list.includes(o.align)) {
      s.err(`  Error: unsupported align: ${o.align}`);
      return -ENXIO;
    }
    align = o.align;
  } else {
    if (ns && mode === namespaceGetMode(s, ns)) {
      const nsPfn = namespaceHolder(s, ns, "nd_pfn");
      const nsDax = namespaceHolder(s, ns, "nd_dax");
      if (nsPfn) align = Number(s.read(`${nsPfn.path}/align`));
      else if (nsDax) align = Number(s.read(`${nsDax.path}/align`));
      else align = PAGE_SIZE;
    } else if (mode === "fsdax") {
      align = pfn ? Number(s.read(`${pfn.path}/align`)) : SZ_2M;
    } else if (mode === "devdax" && dax) {
      align = Number(s.read(`${dax.path}/align`));
    } else {
      align = PAGE_SIZE;
    }
    const resource = Number(s.read(`${region.path}/resource`));
    if (resource % align !== 0) align = PAGE_SIZE;
  }
  const regionAlign = Number(s.read(`${region.path}/align`));
  if (regionAlign && size % regionAlign) {
    s.err(`${name}: align setting is 0x${regionAlign.toString(16)} size 0x${size.toString(16)} is misaligned`);
    return -EINVAL;
  }
  const ways = Math.max(1, Number(s.read(`${region.path}/mappings`) ?? "0"));
  if (size % (align * ways)) {
    s.err(`'--size=' must align to interleave-width: ${ways} and alignment: ${align}`);
    return -EINVAL;
  }
  if (size < SZ_16M && mode !== "raw") {
    if (defaultSize) return -EAGAIN;
    s.err(`  Error: '--size=' must be >= 16MiB for '${mode}' mode`);
    return -EINVAL;
  }
  let sectorSize = 0;
  if (o.sectorSize !== undefined || mode === "sector") {
    sectorSize = o.sectorSize ?? 4096;
    if (mode === "sector") {
      const btt = regionSeed(s, region, "btt_seed");
      if (!btt) {
        s.err(`${name}: does not support 'sector' mode`);
        return -EINVAL;
      }
      if (!supportedList(s.read(`${btt.path}/sector_size`)).includes(sectorSize)) {
        s.err(`${name}: does not support btt sector_size ${sectorSize}`);
        return -EINVAL;
      }
    } else {
      // An io namespace has no sector_size attribute: no sizes are supported.
      s.err(`${name}: does not support namespace sector_size ${sectorSize}`);
      return -EINVAL;
    }
  }
  let loc: Params["loc"] = "none";
  if (o.map) {
    loc = o.map;
    if (ns && mode !== "fsdax" && mode !== "devdax") {
      s.err(`${ns.name}: --map= only valid for fsdax mode namespace`);
      return -EINVAL;
    }
  } else if (mode === "fsdax" || mode === "devdax") {
    loc = "dev";
  } else if (!o.namespace) {
    loc = "dev";
  }
  if (!pfn && doSetupPfn(s, ns, mode, loc)) {
    s.err(`  Error: operation failed, ${name} cannot support requested mode`);
    return -EINVAL;
  }
  return { size, mode, align, sectorSize, loc, uuid };
}

/** fsdax needs a pfn device unless the namespace maps pages itself (legacy raw = fsdax, map=mem). */
// ref: ndctl/namespace.c do_setup_pfn
function doSetupPfn(s: Sys, ns: NdNamespaceIo | null, mode: NdctlMode, loc: Params["loc"]): boolean {
  if (mode !== "fsdax") return false;
  if (!ns || namespaceGetMode(s, ns) !== "fsdax" || loc === "dev") return true;
  return false;
}

// ref: ndctl/namespace.c check_dax_align
function checkDaxAlign(s: Sys, ns: NdNamespaceIo, force: boolean): Errno {
  const resource = Number(s.read(`${ns.path}/resource`));
  if (resource % SZ_16M === 0 || force) return 0;
  s.err(`  Error: ${ns.name} misaligned to 16M, adjust region alignment and retry`);
  return -EINVAL;
}

/** Configure a pfn/dax/btt seed (uuid, mode, align, namespace) and bind it. */
// ref: ndctl/lib/libndctl.c ndctl_pfn_set_*, ndctl_pfn_enable, ndctl_dax_enable, ndctl_btt_enable
function enableClaim(s: Sys, dev: Device, ns: NdNamespaceIo, p: Params, what: "pfn" | "dax" | "btt", autorecover: boolean): Errno {
  const steps: Array<[string, string]> =
    what === "btt"
      ? [
          ["uuid", p.uuid],
          ["sector_size", `${p.sectorSize}\n`],
          ["namespace", ns.name],
        ]
      : [
          ["uuid", p.uuid],
          ["mode", p.loc === "mem" ? "ram" : p.loc === "dev" ? "pmem" : "none"],
          ["align", `${p.align}\n`],
          ["namespace", ns.name],
        ];
  for (const [attr, value] of steps) {
    const rc = s.write(`${dev.path}/${attr}`, value);
    if (rc) return rc;
  }
  if (!s.driver(dev)) utilBind(s, dev.name);
  let rc: Errno = 0;
  if (!s.driver(dev)) {
    s.err(`libndctl: ndctl_${what}_enable: ${dev.name}: failed to enable`);
    rc = -ENXIO;
  }
  if (rc && autorecover && what !== "btt") s.write(`${dev.path}/namespace`, "\n");
  return rc;
}

// ref: ndctl/namespace.c setup_namespace
function setupNamespace(s: Sys, region: NdRegion, ns: NdNamespaceIo, p: Params, o: CreateNamespaceOptions): Errno {
  const force = o.force ?? false;
  const autorecover = o.autorecover ?? true;
  setEnforceMode(s, ns, p.mode);
  let rc: Errno;
  if (doSetupPfn(s, ns, p.mode, p.loc)) {
    const pfn = regionSeed(s, region, "pfn_seed");
    if (!pfn) return -ENXIO;
    rc = checkDaxAlign(s, ns, force);
    if (rc) return rc;
    rc = enableClaim(s, pfn, ns, p, "pfn", autorecover);
  } else if (p.mode === "devdax") {
    const dax = regionSeed(s, region, "dax_seed");
    if (!dax) return -ENXIO;
    rc = checkDaxAlign(s, ns, force);
    if (rc) return rc;
    rc = enableClaim(s, dax, ns, p, "dax", autorecover);
  } else if (p.mode === "sector") {
    const btt = regionSeed(s, region, "btt_seed");
    if (!btt) return -ENXIO;
    rc = enableClaim(s, btt, ns, p, "btt", autorecover);
  } else {
    rc = namespaceEnable(s, ns);
    if (rc > 0) rc = 0;
  }
  if (rc) s.err(`  Error: ${ns.name}: failed to enable`);
  return rc;
}

/** strerror() of the errnos ndctl reports. */
function strerror(rc: Errno): string {
  const texts: Record<number, string> = {
    [ENXIO]: "No such device or address",
    [EBUSY]: "Device or resource busy",
    [EINVAL]: "Invalid argument",
    [ENODEV]: "No such device",
    [ENOSPC]: "No space left on device",
    [EAGAIN]: "Resource temporarily unavailable",
  };
  return texts[-rc] ?? `errno ${-rc}`;
}

/**
 * `ndctl create-namespace`: with `namespace` (-e) reconfigure it (disable, zero the info block through a raw
 * enable, claim with the seed of the new mode, enable); without, take the region's idle io namespace.
 */
// ref: ndctl/namespace.c cmd_create_namespace, do_xaction_namespace, namespace_reconfig, namespace_create
export function createNamespace(k: Kernel, o: CreateNamespaceOptions): NdctlResult<NamespaceInfo> {
  const s = new Sys(k);
  let rc: Errno;
  let target: NdNamespaceIo | null = null;
  if (o.namespace) {
    const ns = findNamespace(k, o.namespace);
    if (!ns || (o.region && ns.region.name !== o.region)) rc = -ENXIO;
    else {
      target = ns;
      rc = namespaceReconfig(s, ns.region, ns, o);
    }
  } else {
    rc = -EAGAIN;
    for (const d of ndDevices(k)) {
      if (!isNdRegion(d) || (o.region && d.name !== o.region)) continue;
      rc = namespaceCreate(s, d, o);
      if (rc === -EAGAIN) continue;
      if (rc === 0) target = findNamespace(k, `namespace${d.id}.0`);
      break;
    }
    if (rc === -EAGAIN) rc = -ENOSPC;
  }
  if (rc < 0) s.err(`failed to ${o.namespace ? "reconfigure" : "create"} namespace: ${strerror(rc)}`);
  if (!o.namespace && rc < 0) rc = -ENODEV;
  return s.result(rc < 0 ? rc : 0, rc < 0 || !target ? null : namespaceInfo(k, target.name));
}

// ref: ndctl/namespace.c namespace_reconfig
function namespaceReconfig(s: Sys, region: NdRegion, ns: NdNamespaceIo, o: CreateNamespaceOptions): Errno {
  const p = validateNamespaceOptions(s, region, ns, o);
  if (typeof p === "number") return p;
  const rc = namespacePrepReconfig(s, region, ns, o.force ?? false);
  if (rc < 0) return rc;
  // Autolabel needs DIMMs that support labels: a region without mappings says -ENODEV and stays label-less.
  return setupNamespace(s, region, ns, p, o);
}

// ref: ndctl/namespace.c namespace_create, region_get_namespace, ndctl_namespace_is_configuration_idle
function namespaceCreate(s: Sys, region: NdRegion, o: CreateNamespaceOptions): Errno {
  const p = validateNamespaceOptions(s, region, null, o);
  if (typeof p === "number") return p;
  if (s.read(`${region.path}/read_only`) === "1") return -EAGAIN;
  const ns = findNamespace(s.k, `namespace${region.id}.0`) ?? regionChild(s.k, region, s.read(`${region.path}/namespace_seed`));
  if (!ns || !isNamespaceIo(ns) || namespaceIsActive(s, ns)) return -EAGAIN;
  const rc = setupNamespace(s, region, ns, p, o);
  if (rc && (o.autorecover ?? true)) setEnforceMode(s, ns, "raw");
  return rc;
}

/** `ndctl destroy-namespace NS [-f]`: a label-less namespace is only disabled and its info block zeroed. */
// ref: ndctl/namespace.c cmd_destroy_namespace, namespace_destroy
export function destroyNamespace(k: Kernel, o: { namespace: string; force?: boolean }): NdctlResult<{ destroyed: number }> {
  const s = new Sys(k);
  const ns = findNamespace(k, o.namespace);
  let rc: Errno = -ENXIO;
  let destroyed = 0;
  if (ns) {
    rc = namespacePrepReconfig(s, ns.region, ns, o.force ?? false);
    if (rc === 0) destroyed++;
    if (rc > 0) rc = 0;
  }
  if (rc < 0) s.err(`error destroying namespaces: ${strerror(rc)}`);
  s.err(`destroyed ${destroyed} namespace${destroyed === 1 ? "" : "s"}`);
  return s.result(rc, { destroyed });
}

/** `ndctl disable-namespace NS` */
// ref: ndctl/namespace.c cmd_disable_namespace; libndctl.c ndctl_namespace_disable_safe
export function disableNamespace(k: Kernel, o: { namespace: string }): NdctlResult<{ disabled: number }> {
  const s = new Sys(k);
  const ns = findNamespace(k, o.namespace);
  let rc: Errno = -ENXIO;
  let n = 0;
  if (ns) {
    rc = namespaceDisableSafe(s, ns);
    if (rc === 0) n++;
  }
  if (rc < 0) s.err(`error disabling namespaces: ${strerror(rc)}`);
  s.err(`disabled ${n} namespace${n === 1 ? "" : "s"}`);
  return s.result(rc, { disabled: n });
}

/** `ndctl enable-namespace NS`: bind it; a probe may instead find an info block and bring up its pfn/dax. */
// ref: ndctl/namespace.c cmd_enable_namespace; libndctl.c ndctl_namespace_enable
export function enableNamespace(k: Kernel, o: { namespace: string }): NdctlResult<{ enabled: number }> {
  const s = new Sys(k);
  const ns = findNamespace(k, o.namespace);
  let rc: Errno = -ENXIO;
  let n = 0;
  if (ns) {
    rc = namespaceEnable(s, ns);
    if (rc >= 0) {
      n++;
      rc = 0;
    }
  }
  if (rc < 0) s.err(`error enabling namespaces: ${strerror(rc)}`);
  s.err(`enabled ${n} namespace${n === 1 ? "" : "s"}`);
  return s.result(rc, { enabled: n });
}

/** The namespace as util_namespace_to_json would describe it (with the dax region when devdax). */
// ref: ndctl/json.c util_namespace_to_json
export function namespaceInfo(k: Kernel, name: string): NamespaceInfo | null {
  const ns = findNamespace(k, name);
  if (!ns) return null;
  const s = new Sys(k);
  const btt = namespaceHolder(s, ns, "nd_btt");
  const dax = namespaceHolder(s, ns, "nd_dax");
  const pfn = namespaceHolder(s, ns, "nd_pfn");
  const mode = namespaceGetMode(s, ns);
  const info: NamespaceInfo = { dev: ns.name, mode, numaNode: ns.numaNode };
  const modeLoc = (d: Device) => {
    const m = s.read(`${d.path}/mode`);
    return m === "ram" ? "mem" : m === "pmem" ? "dev" : "none";
  };
  if (mode === "fsdax") {
    if (pfn) {
      info.size = Number(s.read(`${pfn.path}/size`) ?? "0");
      info.map = modeLoc(pfn);
    } else {
      info.size = Number(s.read(`${ns.path}/size`));
      info.map = "mem";
    }
  } else if (mode === "devdax" && dax) {
    info.size = Number(s.read(`${dax.path}/size`) ?? "0");
    info.map = modeLoc(dax);
  } else if (mode === "sector" && btt) {
    info.size = Number(s.read(`${btt.path}/size`) ?? "0");
  } else if (mode === "raw") {
    info.size = Number(s.read(`${ns.path}/size`));
  }
  const holder = btt ?? pfn ?? dax;
  if (holder) info.uuid = s.read(`${holder.path}/uuid`) ?? "";
  if (pfn) info.align = Number(s.read(`${pfn.path}/align`));
  if (dax) info.align = Number(s.read(`${dax.path}/align`));
  if (btt) info.sectorSize = Number(/\[(\d+)\]/.exec(s.read(`${btt.path}/sector_size`) ?? "")?.[1] ?? "0");
  else if (!dax) info.sectorSize = 512;
  const disk = (btt && pmemDisk(btt)) || (pfn && pmemDisk(pfn)) || (!holder ? pmemDisk(ns) : null);
  if (disk) info.blockdev = disk.disk;
  if (dax && isNdDax(dax) && dax.daxRegion) {
    const r = dax.daxRegion;
    const devices = deviceCore(k).devices.filter((d) => d.kind === "dev_dax" && d.parent === dax);
    info.daxRegion = {
      id: r.id,
      size: r.res.end - r.res.start + 1,
      align: r.align,
      devices: devices.map((d) => daxDevInfo(k, d.name)).filter((d): d is DaxDevInfo => d !== null),
    };
  }
  if (!namespaceIsActive(s, ns)) info.state = "disabled";
  const target = s.read(`${ns.path}/target_node`);
  if (target !== null) info.targetNode = Number(target);
  return info;
}

/** A region as util_region_to_json describes it, with its namespaces. */
// ref: ndctl/json.c util_region_to_json, util_region_capabilities_to_json; libndctl.c ndctl_region_get_available_size
export function regionInfo(k: Kernel, name: string): RegionInfo | null {
  const region = ndDevices(k).find((d) => d.name === name);
  if (!region || !isNdRegion(region)) return null;
  const s = new Sys(k);
  const num = (attr: string) => Number(s.read(`${region.path}/${attr}`) ?? "0");
  const capabilities: RegionInfo["capabilities"] = [];
  const btt = regionSeed(s, region, "btt_seed");
  if (btt) capabilities.push({ mode: "sector", sectorSizes: supportedList(s.read(`${btt.path}/sector_size`)) });
  const pfn = regionSeed(s, region, "pfn_seed");
  if (pfn) capabilities.push({ mode: "fsdax", alignments: supportedList(s.read(`${pfn.path}/supported_alignments`)) });
  const dax = regionSeed(s, region, "dax_seed");
  if (dax) capabilities.push({ mode: "devdax", alignments: supportedList(s.read(`${dax.path}/supported_alignments`)) });
  const info: RegionInfo = {
    dev: region.name,
    size: num("size"),
    align: num("align"),
    // available_size is not visible on an io region: libndctl reads it as 0.
    availableSize: num("available_size"),
    maxAvailableExtent: num("max_available_extent"),
    type: "pmem",
    capabilities,
    persistenceDomain: s.read(`${region.path}/persistence_domain`) || "unknown",
    namespaces: ndDevices(k)
      .filter((d) => d.parent === region && isNamespaceIo(d))
      .map((d) => namespaceInfo(k, d.name)!)
      .filter((n) => n !== null),
  };
  const numa = s.read(`${region.path}/numa_node`);
  if (numa !== null && Number(numa) >= 0) info.numaNode = Number(numa);
  const target = s.read(`${region.path}/target_node`);
  if (target !== null) info.targetNode = Number(target);
  if (!s.driver(region)) info.state = "disabled";
  return info;
}

/** Every nd bus with its regions and namespaces (`ndctl list -BRN`). */
// ref: ndctl/list.c, json.c util_bus_to_json
export function ndctlList(k: Kernel): BusInfo[] {
  const s = new Sys(k);
  return ndDevices(k)
    .filter((d) => d.kind === "nvdimm_bus")
    .map((bus) => ({
      provider: s.read(`${bus.path}/provider`) ?? "",
      dev: bus.name,
      regions: ndDevices(k)
        .filter((d) => d.parent === bus && isNdRegion(d))
        .map((r) => regionInfo(k, r.name)!)
        .filter((r) => r !== null),
    }));
}
