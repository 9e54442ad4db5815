/**
 * daxctl's device commands as the sysfs traffic they produce (daxctl/device.c, daxctl/lib/libdaxctl.c of
 * ndctl v76–v81): reconfigure-device between devdax and system-ram (unbind with remove_id, bind with new_id +
 * bind, online every memory block of the device's node that lies in the device to ZONE_MOVABLE), and
 * online-memory / offline-memory. Results carry the errno daxctl exits with, its stderr, and the device as
 * util_daxctl_dev_to_json sees it.
 */
import { EBUSY, EINVAL, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { deviceCore } from "../nvdimm/device_core.ts";
import { type NdctlResult, Sys } from "../nvdimm/ndctl.ts";
import { type DevDax, isDevDax } from "./bus.ts";

export interface DaxDevInfo {
  chardev: string;
  size: number;
  targetNode?: number;
  align?: number;
  mode: "devdax" | "system-ram";
  onlineMemblocks?: number;
  totalMemblocks?: number;
  movable?: boolean;
  state?: "disabled";
  mappings: Array<{ pageOffset: number; start: number; end: number; size: number }>;
}

export interface ReconfigureOptions {
  device: string;
  mode: "system-ram" | "devdax";
  /** --no-online */
  noOnline?: boolean;
  /** --no-movable: online as ZONE_NORMAL ("online") instead of ZONE_MOVABLE */
  noMovable?: boolean;
  /** -f */
  force?: boolean;
}


function findDevDax(k: Kernel, name: string): DevDax | null {
  const d = k.devices?.devices.find((x) => x.name === name && x.bus === "dax");
  return d && isDevDax(d) ? d : null;
}

/** The memory object exists only while the device is bound to kmem. */
// ref: daxctl/lib/libdaxctl.c daxctl_dev_is_system_ram_capable, daxctl_dev_alloc_mem
function hasMemory(s: Sys, dd: DevDax): boolean {
  return s.driver(dd) === "kmem";
}

/**
 * kernfs_name_hash(name, NULL): kernfs keeps a directory's entries in an rbtree ordered by this 31-bit hash (then
 * by name), and readdir returns them in that order. partial_name_hash wraps at 64 bits; end_name_hash is
 * hash_64(hash, 32) with GOLDEN_RATIO_64.
 */
// ref: fs/kernfs/dir.c kernfs_name_hash, kernfs_sd_compare; include/linux/stringhash.h; include/linux/hash.h hash_64_generic
export function kernfsNameHash(name: string): number {
  const M = (1n << 64n) - 1n;
  let hash = 0n;
  for (const c of Buffer.from(name, "latin1")) {
    const ch = BigInt(c);
    hash = ((hash + (ch << 4n) + (ch >> 4n)) * 11n) & M;
  }
  let h = Number((((hash * 0x61c8864680b583ebn) & M) >> 32n) & 0x7fffffffn);
  if (h < 2) h += 2;
  if (h >= 0x7fffffff) h = 0x7fffffff - 1;
  return h;
}

/** readdir order of kernfs entries: by kernfs_name_hash, then by name. */
// ref: fs/kernfs/dir.c kernfs_fop_readdir, kernfs_dir_pos, kernfs_name_compare
export function kernfsReaddirOrder(names: readonly string[]): string[] {
  return [...names].sort((a, b) => kernfsNameHash(a) - kernfsNameHash(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The memory blocks daxctl walks, in the order it walks them: readdir of /sys/devices/system/node/node<target>
 * (kernfs hash order), the memoryN links whose phys_index * block size lies in [resource, resource + size).
 */
// ref: daxctl/lib/libdaxctl.c daxctl_memory_op, memblock_in_dev
function deviceMemblocks(s: Sys, dd: DevDax): number[] | Errno {
  const node = Number(s.read(`${dd.path}/target_node`) ?? "-1");
  if (node < 0) return -ENXIO;
  const blockSize = Number.parseInt(s.read("/sys/devices/system/memory/block_size_bytes") ?? "0", 16);
  const start = Number(s.read(`${dd.path}/resource`) ?? "0");
  const end = start + Number(s.read(`${dd.path}/size`) ?? "0") - 1;
  const links = s.k.memoryBlocks
    .all()
    .filter((mem) => Math.max(mem.nid, 0) === node)
    .map((mem) => `memory${mem.id}`);
  const out: number[] = [];
  for (const name of kernfsReaddirOrder(links)) {
    const phys = Number.parseInt(s.read(`/sys/devices/system/memory/${name}/phys_index`) ?? "0", 16) * blockSize;
    if (phys >= start && phys <= end) out.push(Number(name.slice("memory".length)));
  }
  return out;
}

function blockOnline(s: Sys, id: number): boolean {
  return (s.read(`/sys/devices/system/memory/memory${id}/state`) ?? "").startsWith("online");
}

type MemoryOp = "online" | "online-no-movable" | "offline" | "is-online" | "count" | "get-zone";
type MemZone = "unknown" | "Movable" | "Normal" | null;

/**
 * daxctl_memory_op: op on every block of the device in readdir order, stopping at the first error; the number of
 * blocks where the op returned 0 (blocks onlined / offlined, blocks online, all blocks, blocks with a zone).
 */
// ref: daxctl/lib/libdaxctl.c daxctl_memory_op, op_for_one_memblock, online_one_memblock, offline_one_memblock, memblock_find_zone
function daxctlMemoryOp(s: Sys, dd: DevDax, op: MemoryOp, mem: { zone: MemZone } = { zone: null }): number {
  const blocks = deviceMemblocks(s, dd);
  if (typeof blocks === "number") return blocks;
  const node = Number(s.read(`${dd.path}/target_node`) ?? "-1");
  let count = 0;
  let inconsistent = false;
  for (const b of blocks) {
    let rc: number;
    if (op === "online" || op === "online-no-movable") {
      if (blockOnline(s, b)) rc = 1;
      else {
        rc = s.write(`/sys/devices/system/memory/memory${b}/state`, op === "online" ? "online_movable" : "online");
        // Onlined by someone else meanwhile: fine, the zone scan comes later.
        if (rc && blockOnline(s, b)) rc = 0;
      }
    } else if (op === "offline") {
      if (!blockOnline(s, b)) rc = 1;
      else {
        rc = s.write(`/sys/devices/system/memory/memory${b}/state`, "offline");
        if (rc && !blockOnline(s, b)) rc = 1;
        else if (rc) s.stderr.push(`libdaxctl: offline_one_memblock: ${dd.name}: Failed to offline /sys/devices/system/node/node${node}/memory${b}/state: ${strerror(rc)}`);
      }
    } else if (op === "is-online") {
      rc = blockOnline(s, b) ? 0 : 1;
    } else if (op === "count") {
      rc = 0;
    } else {
      if (!blockOnline(s, b)) rc = -ENXIO;
      else {
        const v = s.read(`/sys/devices/system/memory/memory${b}/valid_zones`);
        const cur: MemZone = v === "Movable" ? "Movable" : v === "Normal" ? "Normal" : "unknown";
        if (mem.zone === null) mem.zone = cur;
        else if (mem.zone !== cur) inconsistent = true;
        rc = 0;
      }
    }
    if (rc < 0) return rc;
    if (rc === 0) count++;
  }
  if (inconsistent) mem.zone = "unknown";
  return count;
}

/** Online the device's offline blocks; the zone scan runs only when none needed onlining. */
// ref: daxctl/lib/libdaxctl.c daxctl_memory_online_with_zone
function daxctlMemoryOnlineWithZone(s: Sys, dd: DevDax, zone: "Movable" | "Normal"): number {
  let rc = daxctlMemoryOp(s, dd, zone === "Movable" ? "online" : "online-no-movable");
  if (rc) return rc;
  const mem: { zone: MemZone } = { zone: null };
  rc = daxctlMemoryOp(s, dd, "get-zone", mem);
  if (rc) return rc;
  if (mem.zone !== zone) {
    s.stderr.push(`libdaxctl: daxctl_memory_online_with_zone: ${dd.name}:\n  WARNING: detected a race while onlining memory\n  See 'man daxctl-reconfigure-device' for more details`);
    return -EBUSY;
  }
  return rc;
}

/** 1 when every block is online in ZONE_MOVABLE, 0 otherwise, -ENXIO when one is offline. */
// ref: daxctl/lib/libdaxctl.c daxctl_memory_is_movable
function daxctlMemoryIsMovable(s: Sys, dd: DevDax): number {
  const mem: { zone: MemZone } = { zone: null };
  const rc = daxctlMemoryOp(s, dd, "get-zone", mem);
  if (rc < 0) return rc;
  return mem.zone === "Movable" ? 1 : 0;
}

// ref: daxctl/lib/libdaxctl.c daxctl_unbind (remove_id, then unbind)
function daxctlUnbind(s: Sys, dd: DevDax): Errno {
  const drv = s.driver(dd);
  if (!drv) return 0;
  const rc = s.write(`/sys/bus/dax/drivers/${drv}/remove_id`, dd.name);
  if (rc) return rc;
  return s.write(`/sys/bus/dax/drivers/${drv}/unbind`, dd.name);
}

// ref: daxctl/lib/libdaxctl.c daxctl_dev_disable
function devDisable(s: Sys, dd: DevDax): Errno {
  if (!s.driver(dd)) return 0;
  daxctlUnbind(s, dd);
  if (s.driver(dd)) {
    s.stderr.push(`libdaxctl: daxctl_dev_disable: ${dd.name}: failed to disable`);
    return -EBUSY;
  }
  return 0;
}

/** new_id then bind on the mode's driver; success is whether the device ends up bound. */
// ref: daxctl/lib/libdaxctl.c daxctl_dev_enable, daxctl_bind
function devEnable(s: Sys, dd: DevDax, driver: "device_dax" | "kmem"): Errno {
  if (s.driver(dd)) return 0;
  if (!deviceCore(s.k).modules.has(driver)) return -ENXIO;
  s.write(`/sys/bus/dax/drivers/${driver}/new_id`, dd.name);
  const rc = s.write(`/sys/bus/dax/drivers/${driver}/bind`, dd.name);
  if (!s.driver(dd)) {
    s.stderr.push(`libdaxctl: daxctl_dev_enable: ${dd.name}: failed to enable`);
    return rc ? rc : -ENXIO;
  }
  return 0;
}

// ref: daxctl/device.c dev_online_memory
function devOnlineMemory(s: Sys, dd: DevDax, noMovable: boolean): number {
  if (!hasMemory(s, dd)) {
    s.stderr.push(`${dd.name}: failed to get the memory object`);
    return -ENXIO;
  }
  const numSections = daxctlMemoryOp(s, dd, "count");
  if (numSections < 0) {
    s.stderr.push(`${dd.name}: failed to get number of memory sections`);
    return numSections;
  }
  let numOn = daxctlMemoryOp(s, dd, "is-online");
  if (numOn < 0) {
    s.stderr.push(`${dd.name}: failed to determine online state: ${strerror(numOn)}`);
    return numOn;
  }
  if (numOn) {
    s.stderr.push(
      `${dd.name}:\n  WARNING: detected a race while onlining memory\n  Some memory may not be in the expected zone. It is\n  recommended to disable any other onlining mechanisms,\n  and retry. If onlining is to be left to other agents,\n  use the --no-online option to suppress this warning`,
    );
  }
  if (numOn === numSections) {
    s.stderr.push(`${dd.name}: all memory sections (${numOn}) already online`);
    return 1;
  }
  if (numOn > 0) s.stderr.push(`${dd.name}: ${numOn} memory section${numOn === 1 ? "" : "s"} already online`);
  const rc = daxctlMemoryOnlineWithZone(s, dd, noMovable ? "Normal" : "Movable");
  if (rc < 0) {
    s.stderr.push(`${dd.name}: failed to online memory: ${strerror(rc)}`);
    return rc;
  }
  numOn = daxctlMemoryOp(s, dd, "is-online");
  if (numOn < 0) {
    s.stderr.push(`${dd.name}: failed to determine online state: ${strerror(numOn)}`);
    return numOn;
  }
  if (numOn < numSections) {
    s.stderr.push(`${dd.name}: failed to online ${numSections - numOn} memory sections`);
    return -ENXIO;
  }
  return 0;
}

// ref: daxctl/device.c dev_offline_memory
function devOfflineMemory(s: Sys, dd: DevDax): number {
  if (!hasMemory(s, dd)) {
    s.stderr.push(`${dd.name}: failed to get the memory object`);
    return -ENXIO;
  }
  const numSections = daxctlMemoryOp(s, dd, "count");
  if (numSections < 0) {
    s.stderr.push(`${dd.name}: failed to get number of memory sections`);
    return numSections;
  }
  let numOn = daxctlMemoryOp(s, dd, "is-online");
  if (numOn < 0) {
    s.stderr.push(`${dd.name}: failed to determine online state: ${strerror(numOn)}`);
    return numOn;
  }
  const numOff = numSections - numOn;
  if (numOff === numSections) {
    s.stderr.push(`${dd.name}: all memory sections (${numOff}) already offline`);
    return 1;
  }
  if (numOff) s.stderr.push(`${dd.name}: ${numOff} memory section${numOff === 1 ? "" : "s"} already offline`);
  const rc = daxctlMemoryOp(s, dd, "offline");
  if (rc < 0) {
    s.stderr.push(`${dd.name}: failed to offline memory: ${strerror(rc)}`);
    return rc;
  }
  numOn = daxctlMemoryOp(s, dd, "is-online");
  if (numOn < 0) {
    s.stderr.push(`${dd.name}: failed to determine online state: ${strerror(numOn)}`);
    return numOn;
  }
  if (numOn) {
    s.stderr.push(`${dd.name}: failed to offline ${numOn} memory sections`);
    return -ENXIO;
  }
  return 0;
}

// ref: daxctl/device.c reconfig_mode_system_ram, disable_devdax_device
function reconfigSystemRam(s: Sys, dd: DevDax, o: ReconfigureOptions): number {
  if (o.noOnline || !o.noMovable) {
    const policy = s.read("/sys/devices/system/memory/auto_online_blocks") ?? "";
    if (!o.force && policy.startsWith("online")) {
      s.stderr.push(`${dd.name}: error: kernel policy will auto-online memory, aborting`);
      return -EBUSY;
    }
  }
  let skipEnable = false;
  if (s.driver(dd)) {
    if (hasMemory(s, dd)) {
      s.stderr.push(`${dd.name} was already in system-ram mode`);
      skipEnable = true;
    } else {
      const rc = devDisable(s, dd);
      if (rc) {
        s.stderr.push(`${dd.name}: disable failed: ${strerror(rc)}`);
        return rc;
      }
    }
  }
  if (!skipEnable) {
    const rc = devEnable(s, dd, "kmem");
    if (rc) return rc;
  }
  if (o.noOnline) return 0;
  return devOnlineMemory(s, dd, o.noMovable ?? false);
}

// ref: daxctl/device.c reconfig_mode_devdax, disable_system_ram_device
function reconfigDevdax(s: Sys, dd: DevDax, o: ReconfigureOptions): number {
  if (s.driver(dd)) {
    if (!hasMemory(s, dd)) {
      s.stderr.push(`${dd.name} was already in devdax mode`);
      return 1;
    }
    if (o.force) {
      const rc = devOfflineMemory(s, dd);
      if (rc < 0) return rc;
    }
    const on = daxctlMemoryOp(s, dd, "is-online");
    if (on < 0) {
      s.stderr.push(`${dd.name}: failed to determine online state: ${strerror(on)}`);
      return on;
    }
    if (on > 0) return -EBUSY;
    const rc = devDisable(s, dd);
    if (rc) {
      s.stderr.push(`${dd.name}: disable failed: ${strerror(rc)}`);
      return rc;
    }
  }
  return devEnable(s, dd, "device_dax");
}

const STRERROR: Record<number, string> = {
  [ENXIO]: "No such device or address",
  [EBUSY]: "Device or resource busy",
  [EINVAL]: "Invalid argument",
};

function strerror(rc: Errno): string {
  return STRERROR[-rc] ?? `errno ${-rc}`;
}

/** `daxctl reconfigure-device --mode=system-ram|devdax DEV` */
// ref: daxctl/device.c cmd_reconfig_device, do_xaction_device, do_reconfig
export function daxReconfigureDevice(k: Kernel, o: ReconfigureOptions): NdctlResult<DaxDevInfo[]> {
  const s = new Sys(k);
  const dd = findDevDax(k, o.device);
  let rc: number = -ENXIO;
  let processed = 0;
  let out: DaxDevInfo[] | null = null;
  if (dd) {
    rc = o.mode === "system-ram" ? reconfigSystemRam(s, dd, o) : reconfigDevdax(s, dd, o);
    if (rc === 0) processed++;
    if (rc >= 0) out = [daxDevInfo(k, dd.name)!];
  }
  if (rc < 0) s.stderr.push(`error reconfiguring devices: ${strerror(rc)}`);
  s.stderr.push(`reconfigured ${processed} device${processed === 1 ? "" : "s"}`);
  return s.result(rc, out);
}

function xline(k: Kernel, device: string, online: boolean, noMovable: boolean): NdctlResult<{ processed: number }> {
  const s = new Sys(k);
  const dd = findDevDax(k, device);
  let rc: number = -ENXIO;
  let processed = 0;
  if (dd) {
    if (!hasMemory(s, dd)) {
      s.stderr.push(`${dd.name}: memory operations are not applicable in devdax mode`);
      rc = -ENXIO;
    } else rc = online ? devOnlineMemory(s, dd, noMovable) : devOfflineMemory(s, dd);
    if (rc === 0) processed++;
  }
  const verb = online ? "onlin" : "offlin";
  if (rc < 0) s.stderr.push(`error ${verb}ing memory: ${strerror(rc)}`);
  s.stderr.push(`${verb}ed memory for ${processed} device${processed === 1 ? "" : "s"}`);
  return s.result(rc, { processed });
}

/** `daxctl online-memory DEV [--no-movable]` */
// ref: daxctl/device.c cmd_online_memory, do_xline
export function onlineMemory(k: Kernel, o: { device: string; noMovable?: boolean }): NdctlResult<{ processed: number }> {
  return xline(k, o.device, true, o.noMovable ?? false);
}

/** `daxctl offline-memory DEV` */
// ref: daxctl/device.c cmd_offline_memory, do_xline
export function offlineMemory(k: Kernel, o: { device: string }): NdctlResult<{ processed: number }> {
  return xline(k, o.device, false, false);
}

export interface DaxRegionListing {
  /** The region's device path below /sys/devices ("/platform/e820_pmem/ndbus0/region0/dax0.0"). */
  path: string;
  id: number;
  size: number;
  align: number;
  devices: DaxDevInfo[];
}

/** Every dax region with its devices and mappings (`daxctl list -R -D -M`). */
// ref: daxctl/list.c, json.c util_daxctl_region_to_json
export function daxctlList(k: Kernel): DaxRegionListing[] {
  const s = new Sys(k);
  const out: DaxRegionListing[] = [];
  for (const parent of k.devices?.devices ?? []) {
    const dir = `${parent.path}/dax_region`;
    const id = s.read(`${dir}/id`);
    if (id === null) continue;
    const devices = (k.devices?.devices ?? []).filter((d) => isDevDax(d) && d.parent === parent);
    out.push({
      path: parent.path.replace(/^\/sys\/devices/, ""),
      id: Number(id),
      size: Number(s.read(`${dir}/size`)),
      align: Number(s.read(`${dir}/align`)),
      devices: devices.map((d) => daxDevInfo(k, d.name)!),
    });
  }
  return out;
}

/** The device as util_daxctl_dev_to_json reads it (with mappings). */
// ref: daxctl/json.c util_daxctl_dev_to_json
export function daxDevInfo(k: Kernel, name: string): DaxDevInfo | null {
  const dd = findDevDax(k, name);
  if (!dd) return null;
  const s = new Sys(k);
  const info: DaxDevInfo = { chardev: dd.name, size: Number(s.read(`${dd.path}/size`)), mode: "devdax", mappings: [] };
  const target = s.read(`${dd.path}/target_node`);
  if (target !== null && Number(target) >= 0) info.targetNode = Number(target);
  const align = Number(s.read(`${dd.path}/align`) ?? "0");
  if (align > 0) info.align = align;
  if (hasMemory(s, dd)) {
    info.mode = "system-ram";
    const online = daxctlMemoryOp(s, dd, "is-online");
    if (online >= 0) info.onlineMemblocks = online;
    const total = daxctlMemoryOp(s, dd, "count");
    if (total >= 0) info.totalMemblocks = total;
    // daxctl_memory_is_movable fails (no "movable") as soon as one block is offline.
    const movable = daxctlMemoryIsMovable(s, dd);
    if (movable >= 0) info.movable = movable === 1;
  }
  if (!s.driver(dd)) info.state = "disabled";
  for (let i = 0; ; i++) {
    const start = s.read(`${dd.path}/mapping${i}/start`);
    const end = s.read(`${dd.path}/mapping${i}/end`);
    const pgoff = s.read(`${dd.path}/mapping${i}/page_offset`);
    if (start === null || end === null || pgoff === null) break;
    info.mappings.push({ pageOffset: Number(pgoff), start: Number(start), end: Number(end), size: Number(end) - Number(start) + 1 });
  }
  return info;
}
