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

/** The memory blocks daxctl walks: /sys/devices/system/node/node<target>/memoryN inside the device. */
// ref: daxctl/lib/libdaxctl.c daxctl_memory_op, memblock_in_dev
function deviceMemblocks(s: Sys, dd: DevDax): number[] | Errno {
  const node = Number(s.read(`${dd.path}/target_node`) ?? "-1");
  if (node < 0) return -ENXIO;
  const blockSize = Number.parseInt(s.read("/sys/devices/system/memory/block_size_bytes") ?? "0", 16);
  const start = Number(s.read(`${dd.path}/resource`) ?? "0");
  const end = start + Number(s.read(`${dd.path}/size`) ?? "0") - 1;
  const out: number[] = [];
  for (const mem of s.k.memoryBlocks.all()) {
    if (Math.max(mem.nid, 0) !== node) continue;
    const phys = Number.parseInt(s.read(`/sys/devices/system/memory/memory${mem.id}/phys_index`) ?? "0", 16) * blockSize;
    if (phys >= start && phys <= end) out.push(mem.id);
  }
  return out;
}

function blockOnline(s: Sys, id: number): boolean {
  return (s.read(`/sys/devices/system/memory/memory${id}/state`) ?? "").startsWith("online");
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

// ref: daxctl/device.c dev_online_memory; libdaxctl.c daxctl_memory_online_with_zone, online_one_memblock
function devOnlineMemory(s: Sys, dd: DevDax, noMovable: boolean): number {
  if (!hasMemory(s, dd)) {
    s.stderr.push(`${dd.name}: failed to get the memory object`);
    return -ENXIO;
  }
  const blocks = deviceMemblocks(s, dd);
  if (typeof blocks === "number") return blocks;
  let on = blocks.filter((b) => blockOnline(s, b)).length;
  if (on) {
    s.stderr.push(
      `${dd.name}:\n  WARNING: detected a race while onlining memory\n  Some memory may not be in the expected zone. It is\n  recommended to disable any other onlining mechanisms,\n  and retry. If onlining is to be left to other agents,\n  use the --no-online option to suppress this warning`,
    );
  }
  if (on === blocks.length) {
    s.stderr.push(`${dd.name}: all memory sections (${on}) already online`);
    return 1;
  }
  if (on > 0) s.stderr.push(`${dd.name}: ${on} memory section${on === 1 ? "" : "s"} already online`);
  const state = noMovable ? "online" : "online_movable";
  for (const b of blocks) {
    if (blockOnline(s, b)) continue;
    const rc = s.write(`/sys/devices/system/memory/memory${b}/state`, state);
    if (rc && !blockOnline(s, b)) {
      s.stderr.push(`${dd.name}: failed to online memory: ${rc}`);
      return rc;
    }
  }
  const want = noMovable ? "Normal" : "Movable";
  const zones = new Set(blocks.map((b) => s.read(`/sys/devices/system/memory/memory${b}/valid_zones`)));
  if (zones.size !== 1 || !zones.has(want)) {
    s.stderr.push(`libdaxctl: daxctl_memory_online_with_zone: ${dd.name}:\n  WARNING: detected a race while onlining memory\n  See 'man daxctl-reconfigure-device' for more details`);
    return -EBUSY;
  }
  on = blocks.filter((b) => blockOnline(s, b)).length;
  if (on < blocks.length) {
    s.stderr.push(`${dd.name}: failed to online ${blocks.length - on} memory sections`);
    return -ENXIO;
  }
  return 0;
}

// ref: daxctl/device.c dev_offline_memory; libdaxctl.c offline_one_memblock
function devOfflineMemory(s: Sys, dd: DevDax): number {
  if (!hasMemory(s, dd)) {
    s.stderr.push(`${dd.name}: failed to get the memory object`);
    return -ENXIO;
  }
  const blocks = deviceMemblocks(s, dd);
  if (typeof blocks === "number") return blocks;
  const on = blocks.filter((b) => blockOnline(s, b)).length;
  const off = blocks.length - on;
  if (off === blocks.length) {
    s.stderr.push(`${dd.name}: all memory sections (${off}) already offline`);
    return 1;
  }
  if (off) s.stderr.push(`${dd.name}: ${off} memory section${off === 1 ? "" : "s"} already offline`);
  for (const b of blocks) {
    if (!blockOnline(s, b)) continue;
    const rc = s.write(`/sys/devices/system/memory/memory${b}/state`, "offline");
    if (rc && blockOnline(s, b)) {
      s.stderr.push(`libdaxctl: offline_one_memblock: ${dd.name}: Failed to offline /sys/devices/system/node/node${dd.targetNode}/memory${b}/state`);
      s.stderr.push(`${dd.name}: failed to offline memory: ${rc}`);
      return rc;
    }
  }
  const left = blocks.filter((b) => blockOnline(s, b)).length;
  if (left) {
    s.stderr.push(`${dd.name}: failed to offline ${left} memory sections`);
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
        s.stderr.push(`${dd.name}: disable failed: ${rc}`);
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
    const blocks = deviceMemblocks(s, dd);
    if (typeof blocks === "number") return blocks;
    if (blocks.some((b) => blockOnline(s, b))) return -EBUSY;
    const rc = devDisable(s, dd);
    if (rc) {
      s.stderr.push(`${dd.name}: disable failed: ${rc}`);
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
    const blocks = deviceMemblocks(s, dd);
    if (typeof blocks !== "number") {
      info.onlineMemblocks = blocks.filter((b) => blockOnline(s, b)).length;
      info.totalMemblocks = blocks.length;
      // daxctl_memory_is_movable fails (no "movable") as soon as one block is offline.
      if (blocks.length && blocks.every((b) => blockOnline(s, b))) {
        info.movable = blocks.every((b) => s.read(`/sys/devices/system/memory/memory${b}/valid_zones`) === "Movable");
      }
    }
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
