/**
 * ACPI NFIT NVDIMMs on the oracle's NFIT guest (preset qemu-q35-2g-nvdimm1g: one 1 GiB QEMU NVDIMM with a
 * 128 KiB label area): the label area (drivers/nvdimm/label.c), DPA allocation of several namespaces in one
 * region (namespace_devs.c scan_allocate, dimm_devs.c available/max-extent), seeds and renumbering when the
 * region is re-enabled, ndctl's refusals, and the machine spec's NVDIMM input.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../../../src/errors.ts";
import { bootKernel } from "../../../../src/kernel/boot.ts";
import { isNvdimm } from "../../../../src/kernel/drivers/nvdimm/dimm_devs.ts";
import { ndLabelValidate } from "../../../../src/kernel/drivers/nvdimm/label.ts";
import { kernfsNameHash, ndctlList } from "../../../../src/kernel/drivers/nvdimm/ndctl.ts";
import type { Kernel } from "../../../../src/kernel/kernel.ts";
import { MACHINE_PRESETS, machinePreset } from "../../../../src/machine/presets.ts";
import { nvdimmsFromQemuCmdline, resolveMachine } from "../../../../src/machine/spec.ts";
import { renderIomem } from "../../../../src/report/iomem.ts";
import { zoneinfoJson } from "../../../../src/report/zoneinfo.ts";
import { runNdctl } from "../../../../src/tools/ndctl_cli.ts";
import { loadCapture, zoneSummary } from "../../../support/capture.ts";

const MiB = 2 ** 20;
const BUS = "/sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0";
const R = `${BUS}/region0`;

const read = (k: Kernel, p: string) => k.sysfs.read(k, p);
const write = (k: Kernel, p: string, v: string) => k.sysfs.write(k, p, v);
const ndctl = (k: Kernel, line: string) => runNdctl(k, line.split(" "));
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

function boot(nvdimms?: unknown): Kernel {
  if (nvdimms === undefined) return bootKernel(machinePreset("qemu-q35-2g-nvdimm1g"));
  return bootKernel(resolveMachine({ ...MACHINE_PRESETS["qemu-q35-2g-nvdimm1g"]!.file, nvdimms }, "test"));
}

/** The oracle's prelude: disable-region, init-labels -f, enable-region. */
function labelled(k: Kernel = boot()): Kernel {
  for (const c of ["disable-region all", "init-labels -f all", "enable-region all"]) assert.equal(ndctl(k, c).rc, 0, c);
  return k;
}

/** The label area as the DIMM (QEMU) holds it. */
function labelArea(k: Kernel): Uint8Array {
  const nmem = k.devices!.find("nmem0") ?? null;
  if (!isNvdimm(nmem)) throw new Error("no nmem0");
  const p = nmem.provider;
  const size = p.getConfigSize().configSize;
  const data = p.getConfigData(0, size);
  assert.ok(typeof data !== "number");
  return data;
}

const pmemLines = (k: Kernel) => renderIomem(k).split("\n").filter((l) => /^ *1[0-3][0-9a-f]{7}-/.test(l));

describe("preset qemu-q35-2g-nvdimm1g is the oracle's NFIT guest", () => {
  const cap = loadCapture("nfit-raw");

  it("lists what `ndctl list -vvv` printed before the labels were initialised", () => {
    const k = boot();
    assert.equal(ndctl(k, "list -vvv").stdout, `${cap.sections.get("prelude:ndctl-list-before-labels")!.join("\n")}\n`);
  });

  it("after the label prelude: /proc/iomem and every zone (managed as the preset gives it) as the boot snapshot", () => {
    const k = labelled();
    assert.deepEqual(renderIomem(k).trimEnd().split("\n"), cap.sections.get("boot:iomem"));
    for (const z of zoneSummary(cap, "boot")) {
      const m = zoneinfoJson(k).find((x) => x.zone === z.zone)!;
      assert.deepEqual([m.startPfn, m.spanned, m.present, m.managed], [z.startPfn, z.spanned, z.present, z.managed], z.zone);
    }
  });
});

describe("the label area (label.c)", () => {
  it("a label-less DIMM: nstype 4, an io namespace over the whole region, 509 slots of the 256-byte guess", () => {
    const k = boot();
    assert.equal(read(k, `${R}/nstype`), "4");
    assert.equal(read(k, `${BUS}/nmem0/flags`), "");
    assert.equal(read(k, `${BUS}/nmem0/available_slots`), "509");
    assert.equal(read(k, `${R}/namespace0.0/size`), "1073610752");
    assert.deepEqual(pmemLines(k), ["100000000-13ffdffff : Persistent Memory", "  100000000-13ffdffff : namespace0.0"]);
    // Before labels the cookie of v1.2 labels is shown (no index: nd_region_interleave_set_cookie gives cookie2).
    assert.equal(read(k, `${R}/set_cookie`), "0xba90120012b4dc");
  });

  it("init-labels writes two index blocks the kernel validates: 1020 slots (one kept free), labelling on", () => {
    const k = labelled();
    const area = labelArea(k);
    assert.equal(ndLabelValidate({ data: area, nsarea: { configSize: area.byteLength }, nslabelSize: 0 }), 0);
    assert.equal(read(k, `${BUS}/nmem0/flags`), "label ");
    assert.equal(read(k, `${BUS}/nmem0/available_slots`), "1019");
    assert.equal(read(k, `${R}/set_cookie`), "0x2468ac00123456");
    assert.equal(read(k, `${R}/nstype`), "5");
    assert.equal(read(k, `${R}/namespace_seed`), "namespace0.0");
    assert.equal(read(k, `${R}/namespace0.0/size`), "0");
    assert.equal(read(k, `${R}/namespace0.0/uuid`), "");
  });

  it("-V 1.2 writes 256-byte labels: 510 slots, the v1.2 cookie", () => {
    const k = boot();
    ndctl(k, "disable-region all");
    assert.equal(ndctl(k, "init-labels -f -V 1.2 nmem0").stdout, "initialized 1 nmem\n");
    ndctl(k, "enable-region all");
    assert.equal(read(k, `${BUS}/nmem0/available_slots`), "509");
    assert.equal(read(k, `${R}/set_cookie`), "0xba90120012b4dc");
  });

  it("refuses while a region holds the DIMM, and without -f over existing labels", () => {
    const k = boot();
    assert.deepEqual(ndctl(k, "init-labels -f all"), { stdout: "nmem0: regions active, abort label write\ninitialized 0 nmem\n", rc: 1 });
    labelled(k);
    ndctl(k, "disable-region all");
    assert.deepEqual(ndctl(k, "init-labels nmem0"), { stdout: "nmem0: error: labels already initialized\ninitialized 0 nmem\n", rc: 1 });
    assert.deepEqual(ndctl(k, "init-labels nmem7 bogus"), { stdout: "'bogus' is not a valid dimm name\ninitialized 0 nmem\n", rc: 0 });
  });

  it("every attribute change rewrites the label: one slot stays in use per namespace", () => {
    const k = labelled();
    assert.equal(ndctl(k, "create-namespace -r region0 --mode=raw --size=32M").rc, 0);
    assert.equal(read(k, `${BUS}/nmem0/available_slots`), "1018");
    assert.equal(write(k, `${R}/namespace0.0/alt_name`, "scratch"), -16); // bound: -EBUSY
    assert.equal(ndctl(k, "disable-namespace namespace0.0").rc, 0);
    assert.equal(write(k, `${R}/namespace0.0/alt_name`, "scratch"), 0);
    assert.equal(read(k, `${BUS}/nmem0/available_slots`), "1018");
    assert.equal(write(k, `${R}/namespace0.0/alt_name`, "x".repeat(64)), -22);
  });
});

describe("several namespaces in one region (DPA allocation)", () => {
  it("allocates in 16 MiB granules from the start, one extent each, seeds moving on", () => {
    const k = labelled();
    for (const [mode, size] of [
      ["fsdax --map=dev", 96],
      ["devdax --align=2M", 64],
      ["raw", 32],
    ] as const) {
      assert.equal(ndctl(k, `create-namespace -r region0 --mode=${mode} --size=${size}M`).rc, 0, mode);
    }
    assert.deepEqual(
      ["namespace0.0", "namespace0.1", "namespace0.2"].map((n) => [read(k, `${R}/${n}/resource`), read(k, `${R}/${n}/size`), read(k, `${R}/${n}/dpa_extents`)]),
      [
        ["0x100000000", String(96 * MiB), "1"],
        ["0x106000000", String(64 * MiB), "1"],
        ["0x10a000000", String(32 * MiB), "1"],
      ],
    );
    assert.equal(read(k, `${R}/namespace_seed`), "namespace0.3");
    assert.equal(read(k, `${R}/available_size`), String(1008 * MiB - 192 * MiB));
    assert.equal(read(k, `${BUS}/nmem0/available_slots`), "1016");
  });

  it("a hole left by a destroyed namespace counts as available, but the largest extent decides what fits", () => {
    const k = labelled();
    ndctl(k, "create-namespace -r region0 --mode=raw --size=96M");
    ndctl(k, "create-namespace -r region0 --mode=raw --size=64M");
    ndctl(k, "create-namespace -r region0 --mode=raw --size=832M");
    assert.equal(read(k, `${R}/available_size`), String(16 * MiB));
    assert.deepEqual(ndctl(k, "destroy-namespace -f namespace0.1"), { stdout: "destroyed 1 namespace\n", rc: 0 });
    // namespace0.1 (not the seed, not id 0) is gone with its allocation.
    assert.equal(k.devices!.find("namespace0.1"), undefined);
    assert.equal(read(k, `${R}/available_size`), String(80 * MiB));
    assert.equal(read(k, `${R}/max_available_extent`), String(64 * MiB));
    const r = ndctl(k, "create-namespace -r region0 --mode=raw --size=80M");
    assert.deepEqual(r, { stdout: "failed to create namespace: No space left on device\n", rc: 237 });
    assert.equal(ndctl(k, "create-namespace -r region0 --mode=raw --size=48M").rc, 0);
    assert.equal(read(k, `${R}/namespace0.3/resource`), "0x106000000");
  });

  it("re-enabling the region re-reads the labels: namespaces by address, renumbered, with their info blocks", () => {
    const k = labelled();
    ndctl(k, "create-namespace -r region0 --mode=raw --size=32M");
    ndctl(k, "create-namespace -r region0 --mode=fsdax --size=64M");
    ndctl(k, "create-namespace -r region0 --mode=raw --size=16M");
    ndctl(k, "destroy-namespace -f namespace0.0");
    assert.equal(ndctl(k, "disable-region region0").stdout, "disabled 1 region\n");
    assert.equal(ndctl(k, "enable-region 0").stdout, "enabled 1 region\n");
    const list = ndctlList(k)[0]!.regions[0]!.namespaces.map((n) => [n.dev, n.mode, n.size]);
    // libndctl lists in reverse kernfs hash order; the fsdax one was found again through its pfn info block.
    assert.deepEqual(list, [
      ["namespace0.2", "raw", 0],
      ["namespace0.1", "raw", 16 * MiB],
      ["namespace0.0", "fsdax", 64 * MiB - 2 * MiB],
    ]);
  });

  it("a label-less region with a 1 GiB-aligned SPA gets labels from create-namespace -e (autolabel, v1.2)", () => {
    const k = boot([{ size: 2 ** 30 + 128 * 1024, label_size: "128K" }]);
    assert.equal(read(k, `${R}/nstype`), "4");
    const r = ndctl(k, "create-namespace -f -e namespace0.0 --mode=fsdax");
    assert.equal(r.rc, 0, r.stdout);
    assert.equal(read(k, `${R}/nstype`), "5");
    assert.equal(read(k, `${R}/set_cookie`), "0xba90120012b4dc");
    assert.match(r.stdout.replace(UUID, "<uuid>"), /"dev":"namespace0.0",\n {2}"mode":"fsdax",\n {2}"map":"dev",\n {2}"size":"1006.00 MiB/);
  });

  it("the 1 GiB - 128 KiB region of the oracle cannot be autolabelled: its size is not 16 MiB aligned", () => {
    const k = boot();
    assert.deepEqual(ndctl(k, "create-namespace -f -e namespace0.0 --mode=fsdax"), {
      stdout: "  Error: create namespace: region0: align setting is 0x1000000 size 0x3ffe0000 is misaligned\n\n",
      rc: 234,
    });
  });
});

describe("libndctl's listing order and the JSON", () => {
  it("kernfs name hashes: readdir order, reversed by libndctl's list_add", () => {
    assert.ok(kernfsNameHash("namespace0.0") < kernfsNameHash("namespace0.1"));
    assert.equal(kernfsNameHash("namespace0.0"), 17380623);
  });

  it("ndctl list -D / -R -u: DIMMs with their nfit handle, regions with iset_id and mappings in hex", () => {
    const k = labelled();
    assert.equal(ndctl(k, "list -D").stdout, '[\n  {\n    "dev":"nmem0",\n    "id":"8680-56341200",\n    "handle":1,\n    "phys_id":0\n  }\n]\n');
    const r = ndctl(k, "list -RD -u").stdout;
    assert.match(r, /"iset_id":"0x2468ac00123456"/);
    assert.match(r, /"length":"0x3ffe0000"/);
  });
});

describe("machine spec: nvdimms", () => {
  const file = MACHINE_PRESETS["qemu-q35-2g-nvdimm1g"]!.file;
  const bad = (nvdimms: unknown, re: RegExp) => assert.throws(() => resolveMachine({ ...file, nvdimms }, "m.yaml"), (e: unknown) => e instanceof UsageError && re.test(`${e.field}: ${e.reason}`));

  it("places DIMMs after the device-memory base, one after the other, in slot order", () => {
    const spec = resolveMachine({ ...file, nvdimms: [{ size: "1G", label_size: "128K" }, { size: "512M", node: 0 }] }, "m");
    assert.deepEqual(
      spec.nvdimms?.map((d) => [d.start, d.size, d.labelSize, d.slot]),
      [
        [2 ** 32, 2 ** 30, 128 * 1024, 0],
        [2 ** 32 + 2 ** 30, 512 * MiB, 0, 1],
      ],
    );
  });

  it("refuses what QEMU refuses: a small label area, no room for data, overlaps, other arches", () => {
    bad([{ size: "1G", label_size: "64K" }], /nvdimms\[0\]: label_size must be 0 or at least 128K/);
    bad([{ size: "128K", label_size: "128K" }], /no room for data/);
    bad([{ size: "1G", start: "1G" }], /overlaps usable RAM/);
    bad([{ size: "1G" }, { size: "1G", start: "4G" }], /overlaps nvdimms/);
    assert.throws(() => resolveMachine({ arch: "arm64-4k-48", memory: [{ start: "1G", size: "1G" }], nvdimms: [{ size: "1G" }] }, "m"), /x86_64 q35 machines only/);
  });

  it("reads NVDIMMs off a QEMU command line", () => {
    const line = "qemu-system-x86_64 -machine q35,nvdimm=on -object memory-backend-file,id=mem1,share=on,mem-path=/x,size=1G -device nvdimm,id=nv1,memdev=mem1,label-size=128K -object memory-backend-ram,id=m2,size=2G -device nvdimm,memdev=m2,node=1,addr=0x200000000";
    assert.deepEqual(nvdimmsFromQemuCmdline(line), [
      { size: 2 ** 30, label_size: 128 * 1024, node: 0 },
      { size: 2 ** 31, label_size: 0, node: 1, start: 2 ** 33 },
    ]);
    assert.throws(() => nvdimmsFromQemuCmdline("-device nvdimm,memdev=nope"), /no memory backend/);
  });
});
