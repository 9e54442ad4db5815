/**
 * libnvdimm on the oracle guest (legacy pmem at [4 GiB, 5 GiB)): sysfs stores and driver binds with the errno
 * each C path returns (drivers/nvdimm/claim.c nd_namespace_store, pfn_devs.c mode/align/uuid stores,
 * namespace_devs.c holder_class/force_raw, region_devs.c align_store, drivers/base/bus.c bind/unbind), seed
 * advancement, info-block autodetection, BTT geometry, and the ndctl operations' refusals.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../../../src/kernel/boot.ts";
import { bttNlba } from "../../../../src/kernel/drivers/nvdimm/btt_devs.ts";
import { deviceReleaseDriver } from "../../../../src/kernel/drivers/nvdimm/device_core.ts";
import { isNdRegion } from "../../../../src/kernel/drivers/nvdimm/nd.ts";
import { createNamespace, destroyNamespace, disableNamespace, enableNamespace, namespaceInfo } from "../../../../src/kernel/drivers/nvdimm/ndctl.ts";
import { EBUSY, EINVAL, ENODEV, ENOENT, ENXIO, EPERM } from "../../../../src/kernel/errno.ts";
import type { Kernel } from "../../../../src/kernel/kernel.ts";
import { getDevPagemap } from "../../../../src/kernel/mm/memremap.ts";
import { Hang, runToEnd } from "../../../../src/kernel/path.ts";
import { requestRegion } from "../../../../src/kernel/resource.ts";
import { machinePreset } from "../../../../src/machine/presets.ts";
import { renderIomem } from "../../../../src/report/iomem.ts";
import { zoneinfoJson } from "../../../../src/report/zoneinfo.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const R = "/sys/devices/platform/e820_pmem/ndbus0/region0";
const NS = `${R}/namespace0.0`;

function boot(preset = "qemu-q35-3g-pmem1g"): Kernel {
  return bootKernel(machinePreset(preset));
}

const read = (k: Kernel, p: string) => k.sysfs.read(k, p);
const write = (k: Kernel, p: string, v: string) => k.sysfs.write(k, p, v);
const pmemLines = (k: Kernel) => renderIomem(k).split("\n").filter((l) => /^ *1[0-3][0-9a-f]{7}-/.test(l));

/** What ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev leaves: pfn0.0 bound to nd_pmem. */
function fsdaxDev(k: Kernel): void {
  const r = createNamespace(k, { namespace: "namespace0.0", mode: "fsdax", map: "dev", force: true });
  assert.equal(r.rc, 0, r.stderr.join("\n"));
}

describe("boot: nd_e820 + nd_pmem bring up the legacy region", () => {
  it("ndbus0, region0, a raw namespace0.0 bound to nd_pmem and btt/pfn/dax seeds", () => {
    const k = boot();
    assert.equal(read(k, "/sys/devices/platform/e820_pmem/ndbus0/provider"), "e820");
    assert.equal(read(k, `${R}/namespace_seed`), "namespace0.0");
    assert.equal(read(k, `${R}/pfn_seed`), "pfn0.0");
    assert.equal(read(k, `${R}/dax_seed`), "dax0.0");
    assert.equal(read(k, `${R}/btt_seed`), "btt0.0");
    assert.equal(read(k, `${NS}/mode`), "memory");
    assert.deepEqual(pmemLines(k), ["100000000-13fffffff : Persistent Memory (legacy)", "  100000000-13fffffff : namespace0.0"]);
    assert.equal(k.devices?.find("namespace0.0")?.driver?.name, "nd_pmem");
  });

  it("numa_node -1 and no target_node without SRAT; node 0 and target_node 0 with it", () => {
    const k = boot();
    assert.equal(read(k, `${R}/numa_node`), "-1");
    assert.equal(read(k, `${R}/target_node`), -ENOENT);
    const n = boot("qemu-q35-3g-pmem1g-numa");
    assert.equal(read(n, `${R}/numa_node`), "0");
    assert.equal(read(n, `${R}/target_node`), "0");
    assert.equal(read(n, `${R}/pfn0.0/target_node`), "0");
  });

  it("disabled pfn/dax/btt seeds read -ENXIO for resource and size; read-only attributes refuse writes", () => {
    const k = boot();
    assert.equal(read(k, `${R}/pfn0.0/resource`), -ENXIO);
    assert.equal(read(k, `${R}/dax0.0/size`), -ENXIO);
    assert.equal(read(k, `${R}/btt0.0/size`), -ENXIO);
    assert.equal(write(k, `${R}/size`, "1"), -EPERM);
  });
});

describe("sysfs stores (errno as the C returns it)", () => {
  it("pfn mode/align/uuid: -EINVAL on junk, -EBUSY while bound", () => {
    const k = boot();
    const P = `${R}/pfn0.0`;
    assert.equal(write(k, `${P}/mode`, "bogus"), -EINVAL);
    assert.equal(write(k, `${P}/mode`, "pmem"), 0);
    assert.equal(read(k, `${P}/mode`), "pmem");
    assert.equal(write(k, `${P}/align`, "8192"), -EINVAL);
    assert.equal(write(k, `${P}/align`, "0x40000000"), 0);
    assert.equal(read(k, `${P}/align`), String(GiB));
    assert.equal(write(k, `${P}/uuid`, "not-a-uuid"), -EINVAL);
    fsdaxDev(k);
    assert.equal(write(k, `${P}/mode`, "ram"), -EBUSY);
    assert.equal(write(k, `${P}/align`, "4096"), -EBUSY);
    assert.equal(write(k, `${P}/uuid`, "11111111-2222-3333-4444-555555555555"), -EBUSY);
    assert.equal(write(k, `${P}/namespace`, ""), -EBUSY);
  });

  it("namespace store: -EINVAL for a non-namespace name, -ENODEV for a missing one, -EBUSY against the holder class", () => {
    const k = boot();
    const P = `${R}/pfn0.0`;
    assert.equal(write(k, `${P}/namespace`, "region0"), -EINVAL);
    assert.equal(write(k, `${P}/namespace`, "namespace0.7"), -ENODEV);
    // nd_pmem holds the namespace, but a claim only needs it unclaimed: holder_class refuses while bound.
    assert.equal(write(k, `${NS}/holder_class`, "dax"), -EBUSY);
    assert.equal(write(k, `${NS}/holder_class`, "bogus"), -EBUSY);
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/unbind", "namespace0.0"), 0);
    assert.equal(write(k, `${NS}/holder_class`, "bogus"), -EINVAL);
    // The class is set, but an io namespace has no labels to update: the store reports -ENXIO (as 6.1 does).
    assert.equal(write(k, `${NS}/holder_class`, "dax"), -ENXIO);
    assert.equal(read(k, `${NS}/holder_class`), "dax");
    assert.equal(write(k, `${P}/namespace`, "namespace0.0"), -EBUSY);
    assert.equal(write(k, `${R}/dax0.0/namespace`, "namespace0.0"), 0);
    assert.equal(write(k, `${R}/dax0.0/namespace`, "namespace0.0"), -EBUSY);
    assert.equal(read(k, `${NS}/holder`), "dax0.0");
    assert.equal(read(k, `${NS}/mode`), "dax");
    assert.equal(write(k, `${NS}/holder_class`, ""), -EBUSY);
    assert.equal(write(k, `${NS}/force_raw`, "maybe"), -EINVAL);
  });

  it("region align: a power of two between PAGE_SIZE and the region size", () => {
    const k = boot();
    assert.equal(write(k, `${R}/align`, "0x3000"), -EINVAL);
    assert.equal(write(k, `${R}/align`, "2048"), -EINVAL);
    assert.equal(write(k, `${R}/align`, String(2 * GiB)), -EINVAL);
    assert.equal(write(k, `${R}/align`, "0x200000"), 0);
    assert.equal(read(k, `${R}/align`), "0x200000");
  });
});

describe("driver binding", () => {
  it("bind: -ENODEV for a driver that does not match or a device that does not exist", () => {
    const k = boot();
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_region/bind", "namespace0.0"), -ENODEV);
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/bind", "namespace9.9"), -ENODEV);
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/unbind", "pfn0.0"), -ENODEV);
  });

  it("bind: -EBUSY when already bound; a seed without a namespace rejects the probe (-ENODEV)", () => {
    const k = boot();
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/bind", "namespace0.0"), -EBUSY);
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/bind", "pfn0.0"), -ENODEV);
    assert.equal(write(k, "/sys/bus/nd/drivers/dax_pmem/bind", "dax0.0"), -ENODEV);
  });

  it("a pfn probe while the namespace is bound fails -EBUSY; a claimed namespace's own probe fails -ENXIO", () => {
    const k = boot();
    const P = `${R}/pfn0.0`;
    write(k, "/sys/bus/nd/drivers/nd_pmem/unbind", "namespace0.0");
    write(k, `${NS}/holder_class`, "pfn");
    write(k, `${P}/uuid`, "11111111-2222-3333-4444-555555555555");
    write(k, `${P}/mode`, "pmem");
    write(k, `${P}/namespace`, "namespace0.0");
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/bind", "namespace0.0"), -ENXIO);
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/bind", "pfn0.0"), 0);
    assert.equal(read(k, `${P}/resource`), "0x101200000");
    assert.equal(read(k, `${R}/pfn_seed`), "pfn0.1", "a successful seed probe advances the seed");
  });

  it("the pmem probe fails -EBUSY when someone else holds the namespace range", () => {
    const k = boot();
    write(k, "/sys/bus/nd/drivers/nd_pmem/unbind", "namespace0.0");
    assert.ok(requestRegion(k.iomem, 4 * GiB + 64 * MiB, MiB, "squatter"));
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_pmem/bind", "namespace0.0"), -EBUSY);
    assert.ok(k.log.includes("nd_pmem namespace0.0: could not reserve region [mem 0x100000000-0x13fffffff]"));
  });

  it("unbinding a pfn whose pgmap someone holds hangs in memunmap_pages, naming the holder", () => {
    const k = boot();
    fsdaxDev(k);
    const pfn = k.devices!.find("pfn0.0")!;
    const held = runToEnd(getDevPagemap(k, (4 * GiB + 20 * MiB) / 4096, "test-holder"));
    assert.ok(held);
    assert.throws(
      () => runToEnd(deviceReleaseDriver(k, pfn)),
      (e: unknown) => e instanceof Hang && /wait_for_completion/.test(e.at) && /test-holder/.test(e.holder),
    );
  });
});

describe("ndctl create-namespace on a legacy region", () => {
  it("fsdax map=dev: pfn0.0 claims the namespace, the memmap goes to the altmap, the seed moves on", () => {
    const k = boot();
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "fsdax", map: "dev", force: true });
    assert.equal(r.rc, 0);
    assert.deepEqual(
      { mode: r.out?.mode, map: r.out?.map, size: r.out?.size, align: r.out?.align, blockdev: r.out?.blockdev },
      { mode: "fsdax", map: "dev", size: 1054867456, align: 4096, blockdev: "pmem0" },
    );
    assert.equal(read(k, `${R}/pfn_seed`), "pfn0.1");
    assert.equal(read(k, `${NS}/holder`), "pfn0.0");
    // The sysfs writes ndctl makes, in its order.
    const writes = r.trace.filter((t) => t.startsWith("write")).map((t) => t.replace(/ -> .*$/, "").replace(R, ""));
    assert.deepEqual(writes, [
      "write /sys/bus/nd/drivers/nd_pmem/unbind = \"namespace0.0\"",
      "write /namespace0.0/holder_class = \"\"",
      "write /namespace0.0/force_raw = \"1\\n\"",
      "write /sys/bus/nd/drivers/nd_bus/bind = \"namespace0.0\"",
      "write /sys/bus/nd/drivers/nvdimm/bind = \"namespace0.0\"",
      "write /sys/bus/nd/drivers/nd_region/bind = \"namespace0.0\"",
      "write /sys/bus/nd/drivers/nd_pmem/bind = \"namespace0.0\"",
      "write /namespace0.0/force_raw = \"0\\n\"",
      "write /sys/bus/nd/drivers/nd_pmem/unbind = \"namespace0.0\"",
      "write /namespace0.0/holder_class = \"pfn\"",
      `write /pfn0.0/uuid = "${read(k, `${R}/pfn0.0/uuid`)}"`,
      "write /pfn0.0/mode = \"pmem\"",
      "write /pfn0.0/align = \"4096\\n\"",
      "write /pfn0.0/namespace = \"namespace0.0\"",
      "write /sys/bus/nd/drivers/nd_bus/bind = \"pfn0.0\"",
      "write /sys/bus/nd/drivers/nvdimm/bind = \"pfn0.0\"",
      "write /sys/bus/nd/drivers/nd_region/bind = \"pfn0.0\"",
      "write /sys/bus/nd/drivers/nd_pmem/bind = \"pfn0.0\"",
    ]);
  });

  it("refuses --size on a label-less region (-EINVAL), --align for raw (-ENXIO), an unsupported align (-ENXIO)", () => {
    const k = boot();
    assert.equal(createNamespace(k, { namespace: "namespace0.0", mode: "fsdax", size: 512 * MiB, force: true }).rc, -EINVAL);
    assert.equal(createNamespace(k, { namespace: "namespace0.0", mode: "raw", align: 2 * MiB, force: true }).rc, -ENXIO);
    assert.equal(createNamespace(k, { namespace: "namespace0.0", mode: "devdax", align: 8192, force: true }).rc, -ENXIO);
    assert.equal(createNamespace(k, { namespace: "namespace0.7", mode: "raw", force: true }).rc, -ENXIO);
  });

  it("an active namespace needs -f (-EBUSY)", () => {
    const k = boot();
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "devdax" });
    assert.equal(r.rc, -EBUSY);
    assert.deepEqual(r.stderr, ["  Error: namespace0.0 is active, specify --force for re-configuration", "failed to reconfigure namespace: Device or resource busy"]);
  });

  it("devdax align=1G cannot fit the data: -ENXIO, the seed reset, the namespace left disabled", () => {
    const k = boot();
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "devdax", align: GiB, force: true });
    assert.equal(r.rc, -ENXIO);
    assert.ok(r.stderr.includes("libndctl: ndctl_dax_enable: dax0.0: failed to enable"));
    assert.ok(k.log.includes("dax_pmem dax0.0: namespace0.0 unable to satisfy requested alignment"));
    assert.equal(read(k, `${R}/dax0.0/mode`), "none");
    assert.equal(read(k, `${R}/dax0.0/uuid`), "");
    assert.equal(read(k, `${R}/dax0.0/align`), String(GiB));
    assert.equal(namespaceInfo(k, "namespace0.0")?.state, "disabled");
    assert.deepEqual(pmemLines(k), ["100000000-13fffffff : Persistent Memory (legacy)"]);
  });

  it("create without -e takes the io namespace only when it is idle, else -ENODEV (after -ENOSPC)", () => {
    const k = boot();
    const busy = createNamespace(k, { mode: "devdax" });
    assert.equal(busy.rc, -ENODEV);
    assert.deepEqual(busy.stderr, ["failed to create namespace: No space left on device"]);
    assert.equal(disableNamespace(k, { namespace: "namespace0.0" }).rc, 0);
    const r = createNamespace(k, { mode: "devdax" });
    assert.equal(r.rc, 0);
    assert.equal(r.out?.daxRegion?.devices[0]?.chardev, "dax0.0");
  });

  it("sector: btt0.0 claims the namespace behind pmem0s, sized by the BTT arena split", () => {
    const k = boot();
    const r = createNamespace(k, { namespace: "namespace0.0", mode: "sector", force: true });
    assert.equal(r.rc, 0);
    assert.equal(r.out?.blockdev, "pmem0s");
    assert.equal(r.out?.sectorSize, 4096);
    assert.equal(read(k, `${R}/btt0.0/size`), String(bttNlba(GiB - 4096, 4096) * 4096));
    assert.equal(read(k, `${R}/btt0.0/sector_size`), "512 520 528 [4096] 4104 4160 4224 ");
    assert.equal(read(k, `${R}/btt_seed`), "btt0.1");
    assert.equal(read(k, `${NS}/mode`), "safe");
    // BTT maps no pages: the namespace's memmap went with the raw claim.
    assert.deepEqual(pmemLines(k), ["100000000-13fffffff : Persistent Memory (legacy)", "  100000000-13fffffff : namespace0.0"]);
  });

  it("BTT geometry: internal LBAs of (available - 4K) / (lbasize rounded to 64 + 4), minus 256 free blocks", () => {
    // 1 GiB - 4 KiB: available = 1073737728 - 2 info pages - 16 KiB log = 1073713152.
    assert.equal(bttNlba(GiB - 4096, 4096), Math.floor((1073713152 - 4096) / 4100) - 256); // 261624
    assert.equal(bttNlba(GiB - 4096, 512), Math.floor((1073713152 - 4096) / 516) - 256); // 2080575
    assert.equal(bttNlba(GiB - 4096, 520), Math.floor((1073713152 - 4096) / (576 + 4)) - 256, "520 rounds up to 576");
    assert.equal(bttNlba(8 * MiB, 512), 0, "an arena below 16 MiB is not created");
  });
});

describe("disable, enable, destroy", () => {
  it("enable-namespace after a disable finds the pfn info block and brings fsdax back as pfn0.0", () => {
    const k = boot();
    fsdaxDev(k);
    assert.equal(disableNamespace(k, { namespace: "namespace0.0" }).rc, 0);
    assert.equal(read(k, `${R}/pfn0.0/mode`), -ENOENT, "the idle non-seed pfn0.0 is unregistered");
    assert.deepEqual(pmemLines(k), ["100000000-13fffffff : Persistent Memory (legacy)"]);
    assert.equal(enableNamespace(k, { namespace: "namespace0.0" }).rc, 0);
    assert.equal(read(k, `${NS}/holder`), "pfn0.0");
    assert.equal(read(k, `${R}/pfn0.0/mode`), "pmem");
    assert.equal(read(k, `${R}/pfn0.0/align`), "4096", "adopted from the info block");
    assert.equal(read(k, `${R}/pfn0.0/resource`), "0x101200000");
    assert.equal(read(k, `${R}/pfn_seed`), "pfn0.1", "an autodetected pfn is not a seed");
  });

  it("destroy-namespace zeroes the info block and leaves the namespace disabled; the Device zone keeps its span", () => {
    const k = boot();
    fsdaxDev(k);
    const r = destroyNamespace(k, { namespace: "namespace0.0", force: true });
    assert.equal(r.rc, 0);
    assert.deepEqual(r.stderr, ["destroyed 1 namespace"]);
    assert.equal(namespaceInfo(k, "namespace0.0")?.state, "disabled");
    const region = k.devices!.find("region0");
    assert.ok(region && isNdRegion(region));
    assert.ok(region.media.read(4 * GiB, 8192).every((b) => b === 0), "the info block is gone");
    assert.equal(zoneinfoJson(k).find((z) => z.zone === "Device")?.spanned, 262144);
    // Nothing left to zero the second time: skipped, not counted.
    assert.deepEqual(destroyNamespace(k, { namespace: "namespace0.0", force: true }).stderr, ["destroyed 0 namespaces"]);
  });

  it("re-enabling the region brings devdax back from the info block: dax0.1 (the seed took id 0) holding dax0.0", () => {
    const k = boot("qemu-q35-3g-pmem1g-numa");
    assert.equal(createNamespace(k, { namespace: "namespace0.0", mode: "devdax", force: true }).rc, 0);
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_region/unbind", "region0"), 0);
    assert.deepEqual(pmemLines(k), ["100000000-13fffffff : Persistent Memory (legacy)"]);
    assert.equal(k.pgmaps.all().filter((p) => p.state === "live").length, 0, "unbinding the region unmapped everything");
    assert.equal(write(k, "/sys/bus/nd/drivers/nd_region/bind", "region0"), 0);
    assert.equal(read(k, `${NS}/holder`), "dax0.1");
    assert.equal(read(k, `${R}/dax_seed`), "dax0.0");
    assert.equal(read(k, `${R}/dax0.1/dax0.0/size`), "1054867456", "the dax device is named after the namespace");
    assert.deepEqual(pmemLines(k), [
      "100000000-13fffffff : Persistent Memory (legacy)",
      "  100000000-1011fffff : namespace0.0",
      "  101200000-13fffffff : dax0.0",
    ]);
  });
});
