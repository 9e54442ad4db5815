/**
 * kmem (drivers/dax/kmem.c): a dax device as System RAM. Each range, trimmed to memory blocks, is reserved in
 * iomem under the device's name (a non-busy parent) and hot-added below it as "System RAM (kmem)" through
 * add_memory_driver_managed; the blocks come up per memhp_default_state (userspace onlines them). No
 * ZONE_DEVICE: the memmap comes from RAM. Removal needs every block offline.
 */
import { EBUSY, EINVAL, ENOSPC, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { addMemory, removeMemory } from "../../mm/memory_hotplug.ts";
import { type KernelPath, step } from "../../path.ts";
import { IORESOURCE_SYSTEM_RAM, type Resource, removeResource, requestRegion } from "../../resource.ts";
import { devPrintk } from "../nvdimm/device_core.ts";
import { type DaxDriverSpec, type DevDax, daxDriverRegister } from "./bus.ts";

/** The name of every range kmem adds. */
// ref: drivers/dax/kmem.c dax_kmem_init (kmem_name)
export const KMEM_NAME = "System RAM (kmem)";

/** A range aligned inward to memory blocks, or -ENOSPC (then r is the unaligned range). */
// ref: drivers/dax/kmem.c dax_kmem_range
export function daxKmemRange(k: Kernel, dd: DevDax, i: number): { rc: Errno; start: number; end: number } {
  const range = dd.ranges[i]!.range;
  const bs = k.memoryBlockSizeBytes();
  const start = Math.ceil(range.start / bs) * bs;
  const end = Math.floor((range.end + 1) / bs) * bs - 1;
  if (start >= end) return { rc: -ENOSPC, start: range.start, end: range.end };
  return { rc: 0, start, end };
}

const hx = (n: number) => `0x${n.toString(16)}`;

// ref: drivers/dax/kmem.c dev_dax_kmem_probe
export function* devDaxKmemProbe(k: Kernel, dd: DevDax): KernelPath<Errno> {
  const numaNode = dd.targetNode;
  if (numaNode < 0) {
    devPrintk(k, dd, `rejecting DAX region with invalid node: ${numaNode}`);
    return -EINVAL;
  }
  let totalLen = 0;
  for (let i = 0; i < dd.ranges.length; i++) {
    const r = daxKmemRange(k, dd, i);
    if (r.rc) {
      devPrintk(k, dd, `mapping${i}: ${hx(r.start)}-${hx(r.end)} too small after alignment`);
      continue;
    }
    totalLen += r.end - r.start + 1;
  }
  if (!totalLen) {
    devPrintk(k, dd, "rejecting DAX region without any memory after alignment");
    return -EINVAL;
  }
  // init_node_memory_type / memory_group_register_static: memory tiers and groups are not modelled.
  const res: Array<Resource | null> = dd.ranges.map(() => null);
  let mapped = 0;
  for (let i = 0; i < dd.ranges.length; i++) {
    const r = daxKmemRange(k, dd, i);
    if (r.rc) continue;
    const len = r.end - r.start + 1;
    const parent = requestRegion(k.iomem, r.start, len, dd.name);
    if (!parent) {
      devPrintk(k, dd, `mapping${i}: ${hx(r.start)}-${hx(r.end)} could not reserve region`);
      if (mapped) continue;
      return -EBUSY;
    }
    // Plain System RAM flags, BUSY clear: add_memory can nest its resource below.
    parent.flags = IORESOURCE_SYSTEM_RAM;
    res[i] = parent;
    yield step(`dev_dax_kmem_probe(${dd.name}): add_memory_driver_managed(${hx(r.start)})`);
    const rc = addMemory(k, numaNode, r.start, len, KMEM_NAME);
    if (rc) {
      devPrintk(k, dd, `mapping${i}: ${hx(r.start)}-${hx(r.end)} memory add failed`);
      removeResource(parent);
      res[i] = null;
      if (mapped) continue;
      return rc;
    }
    mapped++;
  }
  dd.kmem = { res };
  return 0;
}

/** Unplug every range; a range with online blocks stays until reboot (the unbind still succeeds). */
// ref: drivers/dax/kmem.c dev_dax_kmem_remove
export function* devDaxKmemRemove(k: Kernel, dd: DevDax): KernelPath<void> {
  const data = dd.kmem;
  if (!data) return;
  let success = 0;
  for (let i = 0; i < dd.ranges.length; i++) {
    const r = daxKmemRange(k, dd, i);
    if (r.rc) continue;
    const res = data.res[i];
    if (!res) {
      success++;
      continue;
    }
    yield step(`dev_dax_kmem_remove(${dd.name}): remove_memory(${hx(r.start)})`);
    const rc = removeMemory(k, r.start, r.end - r.start + 1);
    if (rc === 0) {
      removeResource(res);
      data.res[i] = null;
      success++;
      continue;
    }
    devPrintk(k, dd, `mapping${i}: ${hx(r.start)}-${hx(r.end)} cannot be hotremoved until the next reboot`);
  }
  if (success >= dd.ranges.length) dd.kmem = null;
}

export function kmemDriver(k: Kernel): DaxDriverSpec {
  return {
    name: "kmem",
    matchAlways: false,
    probe: (dd) => devDaxKmemProbe(k, dd),
    remove: (dd) => devDaxKmemRemove(k, dd),
  };
}

export function* kmemInit(k: Kernel): KernelPath<void> {
  yield* daxDriverRegister(k, kmemDriver(k));
}
