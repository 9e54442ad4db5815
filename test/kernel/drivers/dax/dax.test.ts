/**
 * device-dax and kmem on the oracle guests (drivers/dax/bus.c, device.c, pmem.c, kmem.c) and daxctl's
 * reconfigure / online / offline: the static region dax_pmem builds, the GENERIC pgmap device_dax maps, kmem's
 * hot-plug as "System RAM (kmem)" below the device's own resource, and each refusal with its errno.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../../../src/kernel/boot.ts";
import type { DaxRegion } from "../../../../src/kernel/drivers/dax/bus.ts";
import { allocDaxRegion, type DevDax, devmCreateDevDax, isDevDax } from "../../../../src/kernel/drivers/dax/bus.ts";
import { daxDevInfo, daxReconfigureDevice, offlineMemory, onlineMemory } from "../../../../src/kernel/drivers/dax/daxctl.ts";
import { type Device, runOp } from "../../../../src/kernel/drivers/nvdimm/device_core.ts";
import { createNamespace } from "../../../../src/kernel/drivers/nvdimm/ndctl.ts";
import { EBUSY, EINVAL, ENOSPC, ENXIO, EPERM } from "../../../../src/kernel/errno.ts";
import type { Kernel } from "../../../../src/kernel/kernel.ts";
import { MemoryType } from "../../../../src/kernel/mm/dev_pagemap.ts";
import { pathOf } from "../../../../src/kernel/path.ts";
import { machinePreset } from "../../../../src/machine/presets.ts";
import { renderIomem } from "../../../../src/report/iomem.ts";
import { zoneinfoJson } from "../../../../src/report/zoneinfo.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const R = "/sys/devices/platform/e820_pmem/ndbus0/region0";
const DD = `${R}/dax0.0/dax0.0`;

function boot(numa = true, append?: string): Kernel {
  const spec = machinePreset(numa ? "qemu-q35-3g-pmem1g-numa" : "qemu-q35-3g-pmem1g");
  return bootKernel(append ? { ...spec, commandLine: `${spec.commandLine} ${append}` } : spec);
}

function devdax(k: Kernel, align = 2 * MiB): void {
  const r = createNamespace(k, { namespace: "namespace0.0", mode: "devdax", align, force: true });
  assert.equal(r.rc, 0, r.stderr.join("\n"));
}

const read = (k: Kernel, p: string) => k.sysfs.read(k, p);
const write = (k: Kernel, p: string, v: string) => k.sysfs.write(k, p, v);
const pmemLines = (k: Kernel) => renderIomem(k).split("\n").filter((l) => /^ *1[0-3][0-9a-f]{7}-/.test(l));
const zone = (k: Kernel, name: string) => zoneinfoJson(k).find((z) => z.zone === name)!;

describe("dax_pmem + device_dax", () => {
  it("a static region over the data, one device mapped MEMORY_DEVICE_GENERIC with 2 MiB compound pages", () => {
    const k = boot();
    devdax(k);
    assert.deepEqual(pmemLines(k), [
      "100000000-13fffffff : Persistent Memory (legacy)",
      "  100000000-1011fffff : namespace0.0",
      "  101200000-13fffffff : dax0.0",
    ]);
    const live = k.pgmaps.all().filter((p) => p.state === "live");
    assert.equal(live.length, 1);
    const pg = live[0]!;
    assert.equal(pg.device, "dax0.0");
    assert.equal(pg.type, MemoryType.GENERIC);
    assert.equal(pg.vmemmapShift, 9);
    assert.deepEqual(pg.ranges, [{ start: 4 * GiB, end: 5 * GiB - 1 }], "the pgmap spans the whole namespace");
    assert.ok(pg.altmap, "map=dev: memmap in the altmap");
    assert.equal(read(k, `${R}/dax0.0/dax_region/size`), "1054867456");
    assert.equal(read(k, `${R}/dax0.0/dax_region/available_size`), -2, "static regions hide available_size");
    assert.equal(read(k, `${DD}/mapping0/start`), "0x101200000");
    assert.equal(write(k, `${DD}/size`, "0"), -EPERM, "static devices show size read-only");
    assert.equal(write(k, `${DD}/align`, "4096"), -EPERM);
  });

  it("align 4K: no compound pages", () => {
    const k = boot();
    devdax(k, 4096);
    assert.equal(k.pgmaps.all().find((p) => p.state === "live")?.vmemmapShift, 0);
    assert.equal(read(k, `${DD}/align`), "4096");
  });

  it("unbinding device_dax tears the pgmap down and releases dax0.0; the Device zone keeps its span", () => {
    const k = boot();
    devdax(k);
    assert.equal(write(k, "/sys/bus/dax/drivers/device_dax/unbind", "dax0.0"), 0);
    assert.equal(k.pgmaps.all().filter((p) => p.state === "live").length, 0);
    assert.deepEqual(pmemLines(k), ["100000000-13fffffff : Persistent Memory (legacy)", "  100000000-1011fffff : namespace0.0"]);
    assert.equal(zone(k, "Device").spanned, 262144);
    assert.equal(write(k, "/sys/bus/dax/drivers/device_dax/bind", "dax0.0"), 0);
    assert.equal(k.pgmaps.all().filter((p) => p.state === "live").length, 1);
  });

  it("new_id/remove_id take only daxX.Y names (-EINVAL)", () => {
    const k = boot();
    assert.equal(write(k, "/sys/bus/dax/drivers/kmem/new_id", "pfn0.0"), -EINVAL);
    assert.equal(write(k, "/sys/bus/dax/drivers/kmem/new_id", "dax0.0x"), -EINVAL);
    assert.equal(write(k, "/sys/bus/dax/drivers/kmem/new_id", "dax0.0"), 0);
    assert.equal(write(k, "/sys/bus/dax/drivers/kmem/remove_id", "dax0.0"), 0);
  });
});

describe("kmem and daxctl", () => {
  it("system-ram: 7 blocks [0x108000000, 0x140000000) under dax0.0, onlined Movable", () => {
    const k = boot();
    devdax(k);
    const r = daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    assert.equal(r.rc, 0, r.stderr.join("\n"));
    assert.deepEqual(
      r.out?.map((d) => ({ mode: d.mode, online: d.onlineMemblocks, total: d.totalMemblocks, movable: d.movable })),
      [{ mode: "system-ram", online: 7, total: 7, movable: true }],
    );
    assert.deepEqual(pmemLines(k), [
      "100000000-13fffffff : Persistent Memory (legacy)",
      "  100000000-1011fffff : namespace0.0",
      "  108000000-13fffffff : dax0.0",
      "    108000000-13fffffff : System RAM (kmem)",
    ]);
    assert.deepEqual({ start: zone(k, "Movable").startPfn, spanned: zone(k, "Movable").spanned }, { start: 0x108000, spanned: 7 * 32768 });
    // The daxctl writes: unbind device_dax (remove_id first), new_id + bind on kmem, then each block's state.
    const writes = r.trace.filter((t) => t.startsWith("write")).map((t) => t.replace(/ -> .*$/, ""));
    assert.deepEqual(writes.slice(0, 4), [
      'write /sys/bus/dax/drivers/device_dax/remove_id = "dax0.0"',
      'write /sys/bus/dax/drivers/device_dax/unbind = "dax0.0"',
      'write /sys/bus/dax/drivers/kmem/new_id = "dax0.0"',
      'write /sys/bus/dax/drivers/kmem/bind = "dax0.0"',
    ]);
    assert.equal(writes.filter((w) => w.endsWith('/state = "online_movable"')).length, 7);
  });

  it("without a NUMA node kmem rejects the device twice (new_id attach, then bind): -EINVAL, device left unbound", () => {
    const k = boot(false);
    devdax(k);
    const r = daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    assert.equal(r.rc, -EINVAL);
    assert.deepEqual(r.stderr, ["libdaxctl: daxctl_dev_enable: dax0.0: failed to enable", "error reconfiguring devices: Invalid argument", "reconfigured 0 devices"]);
    assert.deepEqual(
      k.log.filter((l) => l.startsWith("kmem")),
      ["kmem dax0.0: rejecting DAX region with invalid node: -1", "kmem: probe of dax0.0 failed with error -22", "kmem dax0.0: rejecting DAX region with invalid node: -1", "kmem: probe of dax0.0 failed with error -22"],
    );
    assert.equal(daxDevInfo(k, "dax0.0")?.state, "disabled");
    const off = offlineMemory(k, { device: "dax0.0" });
    assert.equal(off.rc, -ENXIO);
    assert.equal(off.stderr[0], "dax0.0: memory operations are not applicable in devdax mode");
    assert.equal(daxReconfigureDevice(k, { device: "dax0.0", mode: "devdax" }).rc, 0);
  });

  it("back to devdax needs the memory offline (-EBUSY); so does ndctl reconfiguring the namespace", () => {
    const k = boot();
    devdax(k);
    daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    assert.equal(daxReconfigureDevice(k, { device: "dax0.0", mode: "devdax" }).rc, -EBUSY);
    assert.equal(createNamespace(k, { namespace: "namespace0.0", mode: "raw", force: true }).rc, -EBUSY);
    assert.equal(offlineMemory(k, { device: "dax0.0" }).rc, 0);
    assert.equal(zone(k, "Movable").spanned, 0, "Movable shrinks when its blocks go offline");
    assert.equal(onlineMemory(k, { device: "dax0.0" }).rc, 0);
    assert.equal(offlineMemory(k, { device: "dax0.0" }).rc, 0);
    assert.equal(offlineMemory(k, { device: "dax0.0" }).rc, 1, "all already offline: skipped");
    assert.equal(daxReconfigureDevice(k, { device: "dax0.0", mode: "devdax" }).rc, 0);
    assert.equal(k.memoryBlocks.get(33), undefined, "the kmem blocks are removed");
    assert.deepEqual(pmemLines(k), [
      "100000000-13fffffff : Persistent Memory (legacy)",
      "  100000000-1011fffff : namespace0.0",
      "  101200000-13fffffff : dax0.0",
    ]);
  });

  it("unbinding kmem with online memory: the unbind succeeds, the memory stays until reboot", () => {
    const k = boot();
    devdax(k);
    daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    assert.equal(write(k, "/sys/bus/dax/drivers/kmem/unbind", "dax0.0"), 0);
    assert.ok(k.log.includes("kmem dax0.0: mapping0: 0x108000000-0x13fffffff cannot be hotremoved until the next reboot"));
    assert.ok(pmemLines(k).includes("    108000000-13fffffff : System RAM (kmem)"));
    assert.equal(k.memoryBlocks.get(33)?.state, "online");
  });

  it("an auto-online policy makes daxctl refuse without -f (-EBUSY)", () => {
    const k = boot(true, "memhp_default_state=online");
    devdax(k);
    const r = daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    assert.equal(r.rc, -EBUSY);
    assert.equal(r.stderr[0], "dax0.0: error: kernel policy will auto-online memory, aborting");
  });
});

describe("dynamic dax regions (bus.c size/mapping/align rules)", () => {
  /** A bound parent device holding a dynamic region of 1 GiB at 4 GiB (what hmem would set up). */
  function dynamic(k: Kernel): { parent: Device & { daxRegion: DaxRegion | null }; dd: DevDax } {
    const drv = { name: "test", bus: "nd" as const, match: () => false, probe: () => pathOf("probe", () => 0) };
    const parent: Device & { daxRegion: DaxRegion | null } = {
      kind: "test_parent",
      name: "hmem0",
      bus: null,
      parent: null,
      path: "/sys/devices/platform/hmem.0",
      driver: drv,
      registered: true,
      numaNode: 0,
      devres: [],
      daxRegion: null,
      attrs: () => new Map(),
    };
    const region = allocDaxRegion(parent, 0, { start: 4 * GiB, end: 5 * GiB - 1 }, 0, 2 * MiB, 0);
    assert.ok(region);
    const dd = runOp(k, devmCreateDevDax(k, { region, id: -1, pgmap: null, size: 0 }));
    assert.ok(typeof dd !== "number" && isDevDax(dd));
    return { parent, dd };
  }

  it("size grows first-fit in 2 MiB units, -EINVAL misaligned, -ENOSPC beyond the region", () => {
    const k = boot(true);
    const { dd } = dynamic(k);
    const P = dd.path;
    assert.equal(read(k, `${P}/size`), "0");
    assert.equal(write(k, `${P}/size`, String(MiB)), -EINVAL);
    assert.equal(write(k, `${P}/size`, String(2 * GiB)), -ENOSPC);
    assert.equal(write(k, `${P}/size`, String(256 * MiB)), 0);
    assert.equal(read(k, `${P}/mapping0/start`), "0x100000000");
    assert.equal(write(k, `${P}/size`, String(128 * MiB)), 0, "shrink the last range in place");
    assert.equal(read(k, `${P}/mapping0/end`), "0x107ffffff");
    assert.equal(write(k, `${P}/align`, String(3 * MiB)), -EINVAL);
    assert.equal(write(k, `${P}/align`, String(GiB)), -EINVAL, "a 128 MiB range is not 1 GiB aligned");
    assert.equal(write(k, `${P}/align`, String(4096)), 0);
  });

  it("mapping allocates an exact range: -ENXIO misaligned, -ENOMEM on a collision", () => {
    const k = boot(true);
    const { dd } = dynamic(k);
    const P = dd.path;
    assert.equal(write(k, `${P}/mapping`, "100000000-1001fffff"), 0);
    assert.equal(write(k, `${P}/mapping`, "100200000-1002fffff"), -ENXIO);
    assert.equal(write(k, `${P}/mapping`, "100000000-1001fffff"), -12);
    assert.equal(write(k, `${P}/mapping`, "nonsense"), -EINVAL);
    assert.equal(read(k, `${P}/size`), String(2 * MiB));
  });
});
