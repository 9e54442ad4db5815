/**
 * device_dax (drivers/dax/device.c): the default dax driver. Probing reserves each range in iomem under the
 * device's name and memremaps the device as MEMORY_DEVICE_GENERIC, compound pages of the device's align;
 * everything is undone by devm on unbind (memunmap_pages, then the iomem release).
 */
import { EBUSY, EINVAL, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type ByteRange, MemoryType } from "../../mm/dev_pagemap.ts";
import { memremapPages, memunmapPages, newDevPagemap } from "../../mm/memremap.ts";
import type { VmemAltmap } from "../../mm/vmem_altmap.ts";
import { type KernelPath, step } from "../../path.ts";
import { releaseRegion, requestRegion } from "../../resource.ts";
import { devmAddAction, devmAddPlainAction, devPrintk } from "../nvdimm/device_core.ts";
import { type DaxDriverSpec, type DevDax, daxDriverRegister } from "./bus.ts";

/** order_base_2(n): ceil(log2(n)). */
function orderBase2(n: number): number {
  let o = 0;
  while (2 ** o < n) o++;
  return o;
}

// ref: drivers/dax/device.c dev_dax_probe, dev_dax_kill
export function* devDaxProbe(k: Kernel, dd: DevDax): KernelPath<Errno> {
  let ranges: ByteRange[];
  let altmap: VmemAltmap | null = null;
  if (dd.region.isStatic) {
    if (dd.ranges.length > 1) {
      devPrintk(k, dd, "static pgmap / multi-range device conflict");
      return -EINVAL;
    }
    ranges = dd.staticPgmap!.ranges;
    altmap = dd.staticPgmap!.altmap;
  } else {
    if (dd.pgmap) {
      devPrintk(k, dd, "dynamic-dax with pre-populated page map");
      return -EINVAL;
    }
    ranges = dd.ranges.map((r) => ({ ...r.range }));
  }
  for (let i = 0; i < dd.ranges.length; i++) {
    const r = dd.ranges[i]!.range;
    const len = r.end - r.start + 1;
    if (!requestRegion(k.iomem, r.start, len, dd.name)) {
      devPrintk(k, dd, `mapping${i}: 0x${r.start.toString(16)}-0x${r.end.toString(16)} could not reserve range`);
      return -EBUSY;
    }
    devmAddPlainAction(dd, `devm_request_mem_region(mapping${i})`, () => {
      releaseRegion(k.iomem, r.start, len);
    });
  }
  const vmemmapShift = dd.align > k.geo.pageSize ? orderBase2(dd.align / k.geo.pageSize) : 0;
  const pgmap = newDevPagemap(k, { device: dd.name, type: MemoryType.GENERIC, ranges, altmap, vmemmapShift });
  const rc = yield* memremapPages(k, pgmap, dd.numaNode);
  if (rc) return rc;
  dd.pgmap = pgmap;
  devmAddAction(dd, "devm_memremap_pages", function* () {
    yield* memunmapPages(k, pgmap);
    if (dd.region.isStatic) dd.pgmap = null;
  });
  // cdev_add; run_dax: the dax device is alive until the driver goes.
  dd.alive = true;
  devmAddPlainAction(dd, "dev_dax_kill", () => {
    dd.alive = false;
  });
  yield step(`dev_dax_probe(${dd.name}): run_dax`);
  return 0;
}

export function deviceDaxDriver(k: Kernel): DaxDriverSpec {
  return { name: "device_dax", matchAlways: true, probe: (dd) => devDaxProbe(k, dd) };
}

export function* deviceDaxInit(k: Kernel): KernelPath<void> {
  yield* daxDriverRegister(k, deviceDaxDriver(k));
}
