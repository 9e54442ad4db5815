/**
 * ndctl's namespace commands as the sysfs writes it performs (ndctl/namespace.c, ndctl/lib/libndctl.c,
 * util/sysfs.c of ndctl v76–v81): each operation reads and writes the model's sysfs at the kernel's paths,
 * in ndctl's order, and returns the errno ndctl exits with (negated), the stderr lines of libndctl and of the
 * command, and the namespace as util_namespace_to_json sees it (JSON rendering is the caller's business).
 * Label-less (io) namespaces are reconfigured in place; on a region whose DIMMs carry labels a namespace is
 * carved out of the seed (uuid, alt_name, size, sector_size) and destroyed by giving its capacity back, and a
 * label-less region whose DIMMs support labels gets them first (autolabel). libndctl lists devices in the
 * order it reads them from sysfs (reverse kernfs hash order). Region and DIMM commands: ndctl_dimm.ts.
 *
 * uuid_generate() is replaced by a counter in the device core so runs are reproducible.
 */
import { EAGAIN, EBUSY, EINVAL, ENODEV, ENOSPC, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type DaxDevInfo, daxDevInfo } from "../dax/daxctl.ts";
import { type Device, deviceCore } from "./device_core.ts";
import { isNvdimm, type Nvdimm } from "./dimm_devs.ts";
import { isNamespaceIo, isNdDax, isNdRegion, ND_DEVICE_NAMESPACE_IO, ND_DEVICE_NAMESPACE_PMEM, type NdNamespaceIo, type NdRegion } from "./nd.ts";
import { dimmDisable, dimmEnable, dimmInitLabels, dimmIsActive, readLabelIndex, regionDisableInvalidate, regionEnable } from "./ndctl_dimm.ts";
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
  /** A labelled namespace's own uuid when a pfn/dax/btt holds it (shown with -v). */
  rawUuid?: string;
  /** alt_name, when not empty. */
  name?: string;
}

/** A DIMM as util_dimm_to_json reads it. */
export interface DimmInfo {
  dev: string;
  id?: string;
  handle?: number;
  physId?: number;
  state?: "disabled";
}

/** One region mapping as util_mapping_to_json reads it. */
export interface MappingInfo {
  dimm: string;
  offset: number;
  length: number;
  position: number;
  /** The DIMM's driver is bound (disabled DIMMs' mappings are listed only with -i / -c). */
  dimmEnabled: boolean;
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
  /** The interleave-set cookie of a labelled region (a u64, hence a bigint). */
  isetId?: bigint;
  mappings: MappingInfo[];
  capabilities: Array<{ mode: "sector"; sectorSizes: number[] } | { mode: "fsdax" | "devdax"; alignments: number[] }>;
  persistenceDomain: string;
  namespaces: NamespaceInfo[];
  state?: "disabled";
}

export interface BusInfo {
  provider: string;
  dev: string;
  dimms: DimmInfo[];
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

  /** errors namespace.c counts (err_count), printed as "  Error: <cmd_name>: …"; they silence the final summary. */
  errCount = 0;
  cmdName = "namespace";

  // ref: ndctl/namespace.c err
  errCmd(line: string): void {
    this.errCount++;
    this.stderr.push(`  Error: ${this.cmdName}: ${line}`);
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

/**
 * kernfs orders a directory by name hash: readdir returns entries in increasing kernfs_name_hash (ns NULL).
 * libndctl (device_parse) adds each device at the head of its list, so its lists run in decreasing hash order.
 */
// ref: fs/kernfs/dir.c kernfs_name_hash; include/linux/stringhash.h partial_name_hash, end_name_hash; include/linux/hash.h hash_64
export function kernfsNameHash(name: string): number {
  const mask = (1n << 64n) - 1n;
  let hash = 0n;
  for (const ch of new TextEncoder().encode(name)) {
    const c = BigInt(ch);
    hash = ((hash + (c << 4n) + (c >> 4n)) * 11n) & mask;
  }
  let h = Number(((hash * 0x61c8864680b583ebn) & mask) >> 32n) & 0x7fffffff;
  if (h < 2) h += 2;
  if (h >= 0x7fffffff) h = 0x7fffffff - 1;
  return h;
}

/** Devices in the order libndctl lists them (device_parse over readdir, list_add at the head). */
// ref: ndctl util/sysfs.c __sysfs_device_parse; ccan/list list_add
export function libndctlOrder<T extends Device>(devs: readonly T[]): T[] {
  return [...devs].sort((a, b) => kernfsNameHash(b.name) - kernfsNameHash(a.name) || (a.name < b.name ? 1 : -1));
}

/** A region's namespaces as ndctl_namespace_foreach walks them. */
// ref: ndctl/lib/libndctl.c namespaces_init, add_namespace
function regionNamespaces(k: Kernel, region: NdRegion): NdNamespaceIo[] {
  return libndctlOrder(ndDevices(k).filter((d): d is NdNamespaceIo => d.parent === region && isNamespaceIo(d)));
}

/** The namespace type libndctl read from `nstype` (ND_DEVICE_NAMESPACE_IO / _PMEM). */
// ref: ndctl/lib/libndctl.c ndctl_namespace_get_type
function namespaceGetType(s: Sys, ns: NdNamespaceIo): number {
  return Number(s.read(`${ns.path}/nstype`) ?? "0");
}

/** The uuid libndctl parsed from a labelled namespace's `uuid` (all zero when empty). */
// ref: ndctl/lib/libndctl.c add_namespace (uuid), ndctl_namespace_get_uuid
function namespaceGetUuid(s: Sys, ns: NdNamespaceIo): string {
  const u = s.read(`${ns.path}/uuid`) ?? "";
  return u || "00000000-0000-0000-0000-000000000000";
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
export function utilBind(s: Sys, name: string): Errno {
  const drivers = deviceCore(s.k).driversOn("nd");
  for (const drv of drivers) {
    if (s.write(`/sys/bus/nd/drivers/${drv.name}/bind`, name) === 0) return 0;
  }
  return -ENXIO;
}

// ref: ndctl util/sysfs.c __util_unbind
export function utilUnbind(s: Sys, dev: Device): Errno {
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
export function namespaceDisableSafe(s: Sys, ns: NdNamespaceIo): Errno {
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
    s.errCmd(`${ns.name} failed to enable for zeroing, continuing`);
    rc = 1;
  } else {
    const disk = pmemDisk(ns);
    if (!disk) {
      s.errCmd(`${ns.name}: failed to open /dev/ to zero info block`);
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
  // A labelled namespace is deleted next (2); a label-less one counts as processed only if something was zeroed.
  if (namespaceGetType(s, ns) === ND_DEVICE_NAMESPACE_PMEM) return 2;
  return z === 0 ? 0 : 1;
}

interface Params {
  size: number;
  mode: NdctlMode;
  align: number;
  /** 0: not set; UINT_MAX: the namespace has no sector_size choice. */
  sectorSize: number;
  loc: "none" | "mem" | "dev";
  /** The namespace's uuid (labelled namespaces) and alt_name. */
  uuid: string;
  name: string;
}

const UINT_MAX = 0xffffffff;

/** A labelled namespace's sector_size choices ("512 4096 " with the current one bracketed); none for io. */
// ref: ndctl/lib/libndctl.c parse_lbasize_supported, ndctl_namespace_get_sector_size
function namespaceLbasize(s: Sys, ns: NdNamespaceIo): { supported: number[]; select: number } {
  if (namespaceGetType(s, ns) !== ND_DEVICE_NAMESPACE_PMEM) return { supported: [], select: -1 };
  const fields = (s.read(`${ns.path}/sector_size`) ?? "").split(" ").slice(0, -1);
  const supported: number[] = [];
  let select = -1;
  for (const f of fields) {
    const m = /^\[(\d+)\]$/.exec(f);
    if (m) select = supported.length;
    else if (!/^\d+/.test(f)) break;
    supported.push(Number(m ? m[1] : Number.parseInt(f, 10)));
  }
  return { supported, select };
}

/** ndctl_namespace_get_sector_size: the selected size, 0 without choices, UINT_MAX when none is selected. */
function namespaceSectorSize(s: Sys, ns: NdNamespaceIo): number {
  const l = namespaceLbasize(s, ns);
  if (l.supported.length === 0) return 0;
  return l.select < 0 ? UINT_MAX : l.supported[l.select]!;
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
  const nstype = Number(s.read(`${region.path}/nstype`) ?? "0");
  // validate_available_capacity: a label-less region's whole size, else the largest free extent.
  if (!ns) {
    let available: number;
    if (nstype === ND_DEVICE_NAMESPACE_IO) available = regionSize;
    else {
      const extent = s.read(`${region.path}/max_available_extent`);
      available = Number(extent ?? s.read(`${region.path}/available_size`) ?? "0");
    }
    if (!available || size > available) return -EAGAIN;
    if (size === 0) size = available;
  }
  if (nstype === ND_DEVICE_NAMESPACE_IO && size !== regionSize) {
    s.err("  Error: Legacy / label-less namespaces do not support sub-dividing a region");
    s.err("  Error: Retry without -s/--size=");
    return -EINVAL;
  }
  const uuid = nextUuid(s.k);
  const altName = ns ? (s.read(`${ns.path}/alt_name`) ?? "") : "";
  // Without -e, set_defaults picked mode fsdax (mode_default).
  const modeDefault = !o.namespace && o.mode === undefined;
  let mode: NdctlMode | null = normMode(o.mode) ?? (ns ? namespaceGetMode(s, ns) : modeDefault ? "fsdax" : null);
  if (!mode) mode = "raw";
  let pfn: Device | null = null;
  let dax: Device | null = null;
  if (mode === "fsdax") {
    pfn = regionSeed(s, region, "pfn_seed");
    if (!pfn && modeDefault) {
      s.errCmd(`${name} fsdax mode not available`);
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
    s.errCmd(`${name}: align setting is 0x${regionAlign.toString(16)} size 0x${size.toString(16)} is misaligned`);
    return -EINVAL;
  }
  const ways = Math.max(1, Number(s.read(`${region.path}/mappings`) ?? "0"));
  if (size % (align * ways)) {
    // The suggestion is in --size's units; the options carry bytes (units 1).
    const units = 1;
    const sizeAlign = Math.max(units, align) * ways;
    const suggest = ((Math.floor(size / sizeAlign) + 1) * sizeAlign) / units;
    s.errCmd(`'--size=' must align to interleave-width: ${ways} and alignment: ${align}\ndid you intend --size=${suggest}?`);
    return -EINVAL;
  }
  if (size < SZ_16M && mode !== "raw") {
    if (defaultSize) return -EAGAIN;
    s.err(`  Error: '--size=' must be >= 16MiB for '${mode}' mode`);
    return -EINVAL;
  }
  let sectorSize = 0;
  // set_defaults: --mode=sector (or safe) without --sector-size asks for 4096.
  const paramSectorSize = o.sectorSize ?? (normMode(o.mode) === "sector" ? 4096 : undefined);
  if (paramSectorSize !== undefined) {
    sectorSize = paramSectorSize;
    if (mode === "sector") {
      const btt = regionSeed(s, region, "btt_seed");
      if (!btt) {
        s.errCmd(`${name}: does not support 'sector' mode`);
        return -EINVAL;
      }
      if (!supportedList(s.read(`${btt.path}/sector_size`)).includes(sectorSize)) {
        s.errCmd(`${name}: does not support btt sector_size ${sectorSize}`);
        return -EINVAL;
      }
    } else {
      const seed = ns ?? regionChild(s.k, region, s.read(`${region.path}/namespace_seed`));
      if (!seed || !isNamespaceIo(seed)) {
        s.errCmd(`${name}: failed to get seed`);
        return -ENXIO;
      }
      if (!namespaceLbasize(s, seed).supported.includes(sectorSize)) {
        s.errCmd(`${name}: does not support namespace sector_size ${sectorSize}`);
        return -EINVAL;
      }
    }
  } else if (ns) {
    // A namespace staying in sector mode keeps its btt's sector size, else it falls back to its own.
    const btt = namespaceHolder(s, ns, "nd_btt");
    if (btt && mode === "sector") sectorSize = Number(/\[(\d+)\]/.exec(s.read(`${btt.path}/sector_size`) ?? "")?.[1] ?? UINT_MAX);
    else sectorSize = namespaceSectorSize(s, ns);
  } else {
    const seed = regionChild(s.k, region, s.read(`${region.path}/namespace_seed`));
    if (!seed || !isNamespaceIo(seed)) {
      s.errCmd(`${name}: failed to get seed`);
      return -ENXIO;
    }
    sectorSize = namespaceLbasize(s, seed).supported.length === 0 ? UINT_MAX : 512;
  }
  let loc: Params["loc"] = "none";
  if (o.map) {
    loc = o.map;
    if (ns && mode !== "fsdax" && mode !== "devdax") {
      s.errCmd(`${ns.name}: --map= only valid for fsdax mode namespace`);
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
  return { size, mode, align, sectorSize, loc, uuid, name: altName };
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
function enableClaim(s: Sys, dev: Device, ns: NdNamespaceIo, p: Params, uuid: string, what: "pfn" | "dax" | "btt", autorecover: boolean): Errno {
  const steps: Array<[string, string]> =
    what === "btt"
      ? [
          ["uuid", uuid],
          ["sector_size", `${p.sectorSize === UINT_MAX ? 4096 : p.sectorSize}\n`],
          ["namespace", ns.name],
        ]
      : [
          ["uuid", uuid],
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

/** A namespace attribute write as libndctl's setters do it, reported as namespace.c's try() macro does. */
// ref: ndctl/namespace.c try(); libndctl.c ndctl_namespace_set_uuid, _set_alt_name, _set_size, _set_sector_size
function trySet(s: Sys, ns: NdNamespaceIo, op: string, attr: string, value: string): Errno {
  let rc: Errno;
  if (op === "set_size" && s.driver(ns)) rc = -EBUSY;
  else rc = s.write(`${ns.path}/${attr}`, value);
  if (rc) s.errCmd(`${ns.name}: ${op} failed: ${strerror(rc)}`);
  return rc;
}

// ref: ndctl/namespace.c setup_namespace
function setupNamespace(s: Sys, region: NdRegion, ns: NdNamespaceIo, p: Params, o: CreateNamespaceOptions): Errno {
  const force = o.force ?? false;
  const autorecover = o.autorecover ?? true;
  let rc: Errno;
  if (namespaceGetType(s, ns) !== ND_DEVICE_NAMESPACE_IO) {
    rc = trySet(s, ns, "set_uuid", "uuid", p.uuid);
    if (rc) return rc;
    rc = trySet(s, ns, "set_alt_name", "alt_name", p.name);
    if (rc) return rc;
    rc = trySet(s, ns, "set_size", "size", `0x${p.size.toString(16)}\n`);
    if (rc) return rc;
  }
  if (p.sectorSize && p.sectorSize < UINT_MAX) {
    if (namespaceLbasize(s, ns).supported.includes(p.sectorSize)) {
      rc = trySet(s, ns, "set_sector_size", "sector_size", `${p.sectorSize}\n`);
      if (rc) return rc;
    } else if (p.mode === "sector") {
      // the btt's sector_size overrides
    } else if (p.sectorSize !== 512) {
      s.err(`  Error: ${ns.name}: sector_size: ${p.sectorSize} not supported`);
      return -EINVAL;
    }
  }
  const uuid = nextUuid(s.k);
  setEnforceMode(s, ns, p.mode);
  if (doSetupPfn(s, ns, p.mode, p.loc)) {
    const pfn = regionSeed(s, region, "pfn_seed");
    if (!pfn) return -ENXIO;
    rc = checkDaxAlign(s, ns, force);
    if (rc) return rc;
    rc = enableClaim(s, pfn, ns, p, uuid, "pfn", autorecover);
  } else if (p.mode === "devdax") {
    const dax = regionSeed(s, region, "dax_seed");
    if (!dax) return -ENXIO;
    rc = checkDaxAlign(s, ns, force);
    if (rc) return rc;
    rc = enableClaim(s, dax, ns, p, uuid, "dax", autorecover);
  } else if (p.mode === "sector") {
    const btt = regionSeed(s, region, "btt_seed");
    if (!btt) return -ENXIO;
    rc = enableClaim(s, btt, ns, p, uuid, "btt", autorecover);
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
  s.cmdName = "create namespace";
  let rc: Errno;
  let target: NdNamespaceIo | null = null;
  if (o.namespace) {
    const ns = findNamespace(k, o.namespace);
    if (!ns || (o.region && ns.region.name !== o.region)) rc = -ENXIO;
    else {
      const r = namespaceReconfig(s, ns.region, ns, o);
      rc = r.rc;
      target = r.ns;
    }
  } else {
    rc = -EAGAIN;
    for (const d of libndctlRegions(k)) {
      if (o.region && d.name !== o.region && d.name !== `region${o.region}`) continue;
      const r = namespaceCreate(s, d, o);
      rc = r.rc;
      if (rc === -EAGAIN) continue;
      if (rc === 0) target = r.ns;
      break;
    }
    if (rc === -EAGAIN) rc = -ENOSPC;
  }
  if (rc < 0 && s.errCount === 0) {
    s.err(`failed to ${o.namespace ? "reconfigure" : "create"} namespace: ${strerror(rc)}`);
    if (!o.namespace) rc = -ENODEV;
  }
  return s.result(rc < 0 ? rc : 0, rc < 0 || !target ? null : namespaceInfo(k, target.name));
}

/**
 * Try to give a label-less region labels: every DIMM must support the label commands and none may be active;
 * v1.2 labels first, v1.1 if the kernel does not see them all (its available_slots + 1 differs). -ENODEV when
 * the region cannot have labels (nothing was touched), -EBUSY when it still has none afterwards.
 */
// ref: ndctl/namespace.c enable_labels
function enableLabels(s: Sys, region: NdRegion): Errno {
  const mappings = Number(s.read(`${region.path}/mappings`) ?? "0");
  if (!mappings) return -ENODEV;
  const dimms = regionDimms(s.k, region);
  const labelCmds = ["get_size", "get_data", "set_data"];
  const capable = dimms.filter((d) => labelCmds.every((c) => (s.read(`${d.path}/commands`) ?? "").split(" ").includes(c)));
  if (capable.length !== mappings) return -ENODEV;
  regionDisableInvalidate(s, region);
  let busy = 0;
  for (const d of dimms) {
    if (!dimmIsActive(s, d)) continue;
    s.err(`  Warning: ${d.name} is active in ${region.name}, failing autolabel`);
    busy++;
  }
  if (!busy) {
    let version: "1.1" | "1.2" = "1.2";
    for (let retry = true; retry; ) {
      retry = false;
      for (const d of dimms) {
        const ndd = readLabelIndex(d);
        if (!ndd) continue;
        const numLabels = dimmInitLabels(d, ndd, version);
        if (numLabels < 0) continue;
        dimmDisable(s, d);
        dimmEnable(s, d);
        // The kernel keeps one free slot for updates: available_slots + 1 is what it sees.
        const avail = Number(s.read(`${d.path}/available_slots`) ?? "-1") + 1;
        if (numLabels !== avail && version === "1.2") {
          version = "1.1";
          retry = true;
          break;
        }
      }
    }
  }
  regionEnable(s, region);
  if (Number(s.read(`${region.path}/nstype`) ?? "0") !== ND_DEVICE_NAMESPACE_PMEM) {
    s.errCmd(`${region.name}: failed to initialize labels`);
    return -EBUSY;
  }
  return 0;
}

/** The DIMMs behind a region's mappings (ndctl_dimm_foreach_in_region). */
// ref: ndctl/lib/libndctl.c ndctl_dimm_foreach_in_region, ndctl_region_get_first_dimm
function regionDimms(k: Kernel, region: NdRegion): Nvdimm[] {
  const s = new Sys(k);
  const out: Nvdimm[] = [];
  for (let i = 0; i < Number(s.read(`${region.path}/mappings`) ?? "0"); i++) {
    const name = (s.read(`${region.path}/mapping${i}`) ?? "").split(",")[0];
    const d = ndDevices(k).find((x) => x.name === name);
    if (d && isNvdimm(d)) out.push(d);
  }
  return out;
}

// ref: ndctl/namespace.c namespace_reconfig
function namespaceReconfig(s: Sys, region: NdRegion, ns0: NdNamespaceIo, o: CreateNamespaceOptions): { rc: Errno; ns: NdNamespaceIo | null } {
  let ns: NdNamespaceIo | null = ns0;
  const p = validateNamespaceOptions(s, region, ns, o);
  if (typeof p === "number") return { rc: p, ns: null };
  const rc = namespacePrepReconfig(s, region, ns, o.force ?? false);
  if (rc < 0) return { rc, ns: null };
  // A label-less region whose DIMMs support labels gets them now (-L, on by default); the idle seed follows.
  if (Number(s.read(`${region.path}/nstype`) ?? "0") === ND_DEVICE_NAMESPACE_IO && (o.autolabel ?? true)) {
    const lrc = enableLabels(s, region);
    if (lrc !== -ENODEV) ns = regionGetNamespace(s, region);
    if (!ns || (lrc !== -ENODEV && !namespaceIsConfigurationIdle(s, ns))) return { rc: -ENODEV, ns: null };
  }
  return { rc: setupNamespace(s, region, ns, p, o), ns };
}

/** A labelled namespace with a uuid and at least ND_MIN_NAMESPACE_SIZE bytes; an io namespace always is. */
// ref: ndctl/lib/libndctl.c ndctl_namespace_is_configured, pmem_namespace_is_configured
function namespaceIsConfigured(s: Sys, ns: NdNamespaceIo): boolean {
  if (namespaceGetType(s, ns) !== ND_DEVICE_NAMESPACE_PMEM) return true;
  if (Number(s.read(`${ns.path}/size`) ?? "0") < 4096) return false;
  return namespaceGetUuid(s, ns) !== "00000000-0000-0000-0000-000000000000";
}

// ref: ndctl/lib/libndctl.c ndctl_namespace_is_configuration_idle
function namespaceIsConfigurationIdle(s: Sys, ns: NdNamespaceIo): boolean {
  if (namespaceIsActive(s, ns)) return false;
  if (namespaceIsConfigured(s, ns)) return namespaceGetType(s, ns) === ND_DEVICE_NAMESPACE_IO;
  return true;
}

/** The 0th namespace if idle, else the region's namespace seed. */
// ref: ndctl/namespace.c region_get_namespace
function regionGetNamespace(s: Sys, region: NdRegion): NdNamespaceIo | null {
  for (const ns of regionNamespaces(s.k, region)) {
    if (ns.name === `namespace${region.id}.0` && namespaceIsConfigurationIdle(s, ns)) return ns;
  }
  const seed = regionChild(s.k, region, s.read(`${region.path}/namespace_seed`));
  return seed && isNamespaceIo(seed) ? seed : null;
}

/** Give back a labelled namespace's capacity (size 0); io namespaces cannot be deleted. */
// ref: ndctl/lib/libndctl.c ndctl_namespace_delete, namespace_set_size
function namespaceDelete(s: Sys, ns: NdNamespaceIo): Errno {
  if (s.driver(ns)) return -EBUSY;
  if (namespaceGetType(s, ns) !== ND_DEVICE_NAMESPACE_PMEM) return 0;
  const rc = s.write(`${ns.path}/size`, "0\n");
  if (rc && rc !== -ENXIO) return rc;
  return 0;
}

// ref: ndctl/namespace.c namespace_create
function namespaceCreate(s: Sys, region: NdRegion, o: CreateNamespaceOptions): { rc: Errno; ns: NdNamespaceIo | null } {
  const p = validateNamespaceOptions(s, region, null, o);
  if (typeof p === "number") return { rc: p, ns: null };
  if (s.read(`${region.path}/read_only`) === "1") return { rc: -EAGAIN, ns: null };
  const ns = regionGetNamespace(s, region);
  if (!ns || !namespaceIsConfigurationIdle(s, ns)) return { rc: -EAGAIN, ns: null };
  const rc = setupNamespace(s, region, ns, p, o);
  if (rc && (o.autorecover ?? true)) {
    setEnforceMode(s, ns, "raw");
    namespaceDelete(s, ns);
  }
  return { rc, ns };
}

/** `ndctl destroy-namespace NS [-f]`: a label-less namespace is only disabled and its info block zeroed. */
// ref: ndctl/namespace.c cmd_destroy_namespace, namespace_destroy
export function destroyNamespace(k: Kernel, o: { namespace: string; force?: boolean }): NdctlResult<{ destroyed: number }> {
  const s = new Sys(k);
  s.cmdName = "destroy namespace";
  let rc: Errno = o.namespace === "all" ? 0 : -ENXIO;
  let destroyed = 0;
  for (const ns of targetNamespaces(s, o.namespace)) {
    // namespace_destroy: a labelled namespace's label and allocation go too.
    rc = namespacePrepReconfig(s, ns.region, ns, o.force ?? false);
    if (rc === 2) rc = namespaceDelete(s, ns);
    if (rc === 0) destroyed++;
    if (rc > 0) rc = 0;
  }
  if (rc < 0 && s.errCount === 0) s.err(`error destroying namespaces: ${strerror(rc)}`);
  s.err(`destroyed ${destroyed} namespace${destroyed === 1 ? "" : "s"}`);
  return s.result(rc, { destroyed });
}

/** `ndctl disable-namespace NS` */
// ref: ndctl/namespace.c cmd_disable_namespace; libndctl.c ndctl_namespace_disable_safe
export function disableNamespace(k: Kernel, o: { namespace: string }): NdctlResult<{ disabled: number }> {
  const s = new Sys(k);
  let rc: Errno = o.namespace === "all" ? 0 : -ENXIO;
  let n = 0;
  for (const ns of targetNamespaces(s, o.namespace)) {
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
  let rc: Errno = o.namespace === "all" ? 0 : -ENXIO;
  let n = 0;
  for (const ns of targetNamespaces(s, o.namespace)) {
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
  const labelled = namespaceGetType(s, ns) !== ND_DEVICE_NAMESPACE_IO;
  if (holder) {
    info.uuid = s.read(`${holder.path}/uuid`) ?? "";
    // util_raw_uuid: the namespace's own uuid, when it has one.
    const raw = labelled ? namespaceGetUuid(s, ns) : "00000000-0000-0000-0000-000000000000";
    if (raw !== "00000000-0000-0000-0000-000000000000") info.rawUuid = raw;
  } else if (labelled) info.uuid = namespaceGetUuid(s, ns);
  if (pfn) info.align = Number(s.read(`${pfn.path}/align`));
  if (dax) info.align = Number(s.read(`${dax.path}/align`));
  if (btt) info.sectorSize = Number(/\[(\d+)\]/.exec(s.read(`${btt.path}/sector_size`) ?? "")?.[1] ?? "0");
  else if (!dax) {
    const ss = namespaceSectorSize(s, ns);
    info.sectorSize = !ss || ss === UINT_MAX ? 512 : ss;
  }
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
  const altName = labelled ? (s.read(`${ns.path}/alt_name`) ?? "") : "";
  if (altName) info.name = altName;
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
  // libndctl reads available_size and max_available_extent only for labelled regions (else 0).
  const nstype = num("nstype");
  const labelled = nstype === ND_DEVICE_NAMESPACE_PMEM;
  const mappings: MappingInfo[] = [];
  for (let i = 0; i < num("mappings"); i++) {
    const m = /^([^,]+),(\d+),(\d+),(-?\d+)$/.exec(s.read(`${region.path}/mapping${i}`) ?? "");
    const dimm = m ? ndDevices(k).find((d) => d.name === m[1] && isNvdimm(d)) : undefined;
    if (m) mappings.unshift({ dimm: m[1]!, offset: Number(m[2]), length: Number(m[3]), position: Number(m[4]), dimmEnabled: dimm !== undefined && s.driver(dimm) !== null });
  }
  const info: RegionInfo = {
    dev: region.name,
    size: num("size"),
    align: num("align"),
    availableSize: labelled ? num("available_size") : 0,
    maxAvailableExtent: labelled ? num("max_available_extent") : 0,
    type: "pmem",
    mappings,
    capabilities,
    persistenceDomain: s.read(`${region.path}/persistence_domain`) || "unknown",
    namespaces: regionNamespaces(k, region)
      .map((d) => namespaceInfo(k, d.name)!)
      .filter((n) => n !== null),
  };
  if (labelled) info.isetId = BigInt(s.read(`${region.path}/set_cookie`) ?? "0");
  const numa = s.read(`${region.path}/numa_node`);
  if (numa !== null && Number(numa) >= 0) info.numaNode = Number(numa);
  const target = s.read(`${region.path}/target_node`);
  if (target !== null) info.targetNode = Number(target);
  if (!s.driver(region)) info.state = "disabled";
  return info;
}

/** A DIMM as util_dimm_to_json reads it (its nfit/ attributes). */
// ref: ndctl/json.c util_dimm_to_json; libndctl.c add_dimm, ndctl_dimm_is_enabled
export function dimmInfo(k: Kernel, dimm: Nvdimm): DimmInfo {
  const s = new Sys(k);
  const info: DimmInfo = { dev: dimm.name };
  const id = s.read(`${dimm.path}/nfit/id`);
  if (id !== null) info.id = id;
  const handle = s.read(`${dimm.path}/nfit/handle`);
  if (handle !== null) info.handle = Number(handle);
  const physId = s.read(`${dimm.path}/nfit/phys_id`);
  if (physId !== null) info.physId = Number(physId);
  if (!s.driver(dimm)) info.state = "disabled";
  return info;
}

/** The buses as libndctl finds them (/sys/class/nd/ndctlN). */
// ref: ndctl/lib/libndctl.c ndctl_bus_get_first, add_bus
export function libndctlBuses(k: Kernel): Device[] {
  const buses = ndDevices(k).filter((d) => d.kind === "nvdimm_bus");
  return [...buses].sort((a, b) => kernfsNameHash(`ndctl${b.name.slice(5)}`) - kernfsNameHash(`ndctl${a.name.slice(5)}`));
}

/** Every region of every bus, in libndctl's order. */
function libndctlRegions(k: Kernel): NdRegion[] {
  return libndctlBuses(k).flatMap((bus) => libndctlOrder(ndDevices(k).filter((d): d is NdRegion => d.parent === bus && isNdRegion(d))));
}

/** A bus's DIMMs in libndctl's order. */
export function libndctlDimms(k: Kernel, bus: Device): Nvdimm[] {
  return libndctlOrder(ndDevices(k).filter((d): d is Nvdimm => d.parent === bus && isNvdimm(d)));
}

/** The namespaces a command names: one by name, or "all" but the unconfigured seeds (size 0, no uuid). */
// ref: ndctl/namespace.c do_xaction_namespace
function targetNamespaces(s: Sys, name: string): NdNamespaceIo[] {
  const out: NdNamespaceIo[] = [];
  for (const region of libndctlRegions(s.k)) {
    for (const ns of regionNamespaces(s.k, region)) {
      if (name === "all") {
        if (Number(s.read(`${ns.path}/size`) ?? "0") === 0 && namespaceGetUuid(s, ns) === "00000000-0000-0000-0000-000000000000") continue;
      } else if (ns.name !== name) continue;
      out.push(ns);
    }
  }
  return out;
}

/** Every nd bus with its DIMMs, regions and namespaces (`ndctl list -BDRN`). */
// ref: ndctl/list.c, json.c util_bus_to_json
export function ndctlList(k: Kernel): BusInfo[] {
  const s = new Sys(k);
  return libndctlBuses(k).map((bus) => ({
    provider: s.read(`${bus.path}/provider`) ?? "",
    dev: bus.name,
    dimms: libndctlDimms(k, bus).map((d) => dimmInfo(k, d)),
    regions: libndctlOrder(ndDevices(k).filter((d): d is NdRegion => d.parent === bus && isNdRegion(d)))
      .map((r) => regionInfo(k, r.name)!)
      .filter((r) => r !== null),
  }));
}
