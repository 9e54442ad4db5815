/**
 * Boot-time layout against the real 6.1 kernel: every capture's machine is rebuilt from the capture's own
 * dmesg (BIOS-e820 table, SRAT) and QEMU command line, booted in the model, and compared with what the
 * kernel printed at boot. e820 guests load nd_pmem as the oracle's init does, so the Device zone is the raw
 * legacy namespace's memmap. Out of scope here: NFIT regions (the libnvdimm model's work), resources other
 * drivers add, and managed/free page counts (they depend on boot reservations the model takes as input).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { machineFromDmesg } from "../../src/machine/spec.ts";
import { renderIomem } from "../../src/report/iomem.ts";
import { renderMemoryBlocks } from "../../src/report/memory_blocks.ts";
import { zoneinfoJson } from "../../src/report/zoneinfo.ts";
import { captureAppend, captureNames, dmesgLines, loadCapture, zoneSummary } from "../support/capture.ts";

const BOOT_LOG = /^(Zone ranges:| {2}(DMA|DMA32|Normal|Device) |Movable zone start|Early memory node ranges| {2}node +\d+: \[mem|Initmem setup node|On node \d+, zone \w+: \d+ pages in unavailable ranges|last_pfn = |No NUMA configuration found|Faking a node at|x86\/mm: Memory block size|e820: (update|remove) |user(-defined physical RAM map:|: \[mem))/;

const withBoot = captureNames().filter((n) => loadCapture(n).sections.has("final:dmesg-full"));

describe("boot layout vs real 6.1 captures", () => {
  it("has captures to compare against", () => assert.ok(withBoot.length >= 20, `only ${withBoot.length} captures`));

  for (const name of withBoot) {
    describe(name, () => {
      const cap = loadCapture(name);
      const dmesg = dmesgLines(cap).join("\n");
      // The oracle's init loads nd_e820 + nd_pmem before the first snapshot: legacy pmem gets its memmap.
      const legacy = name.startsWith("e820");
      const k = bootKernel(machineFromDmesg(`${name}.txt`, captureAppend(name), "x86_64", dmesg, legacy ? ["nd_pmem"] : []));

      it("prints the kernel's memory boot log lines", () => {
        const want = dmesgLines(cap).filter((l) => BOOT_LOG.test(l));
        const got = k.log.filter((l) => BOOT_LOG.test(l));
        assert.deepEqual(got, want);
      });

      const first = ["boot", "none"].find((s) => cap.sections.has(`${s}:zone-summary`));
      const zones = first ? zoneSummary(cap, first) : [];
      it("computes every zone's start_pfn, spanned and present", { skip: zones.length === 0 && "capture has only a dmesg" }, () => {
        const model = zoneinfoJson(k);
        for (const z of zones) {
          // p2p guests: the NVMe CMB's P2PDMA pgmap is published by the nvme driver, not modelled at boot.
          if (z.zone === "Device" && name.startsWith("p2p")) continue;
          const m = model.find((x) => x.node === z.node && x.zone === z.zone);
          assert.ok(m, `model has node ${z.node} zone ${z.zone}`);
          assert.deepEqual(
            { startPfn: m.startPfn, spanned: m.spanned, present: m.present },
            { startPfn: z.startPfn, spanned: z.spanned, present: z.present },
            `node ${z.node} zone ${z.zone}`,
          );
        }
        assert.equal(model.length, zones.length, "same zones");
      });

      const iomem = first ? cap.sections.get(`${first}:iomem`) : undefined;
      it("lists the same System RAM and legacy pmem resources in /proc/iomem", { skip: !iomem && "no iomem snapshot" }, () => {
        const pick = (lines: string[]) => lines.filter((l) => /: (System RAM|Persistent Memory \(legacy\))$/.test(l) && !l.startsWith(" "));
        assert.deepEqual(pick(renderIomem(k).trimEnd().split("\n")), pick(iomem ?? []));
      });

      const blocks = first ? cap.sections.get(`${first}:memory-blocks`) : undefined;
      it("creates the same memory blocks with the same state, zones and node", { skip: !blocks && "no memory-blocks snapshot" }, () => {
        const pick = (lines: string[]) => lines.filter((l) => /^(memory\d+ |block_size_bytes=|auto_online_blocks=)/.test(l));
        assert.deepEqual(pick(renderMemoryBlocks(k).trimEnd().split("\n")), pick(blocks ?? []));
      });
    });
  }
});

describe("preset qemu-q35-3g-pmem1g is the oracle's guest", () => {
  const cap = loadCapture("e820-raw");
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));

  it("prints the boot /proc/iomem line for line", () => {
    assert.deepEqual(renderIomem(k).trimEnd().split("\n"), cap.sections.get("boot:iomem")!);
  });

  it("matches every zone's start_pfn/spanned/present (Device included), and managed as given by the preset", () => {
    const model = zoneinfoJson(k);
    for (const z of zoneSummary(cap, "boot")) {
      const m = model.find((x) => x.zone === z.zone)!;
      assert.equal(m.startPfn, z.startPfn, z.zone);
      assert.equal(m.spanned, z.spanned, z.zone);
      assert.equal(m.present, z.present, z.zone);
      assert.equal(m.managed, z.managed, z.zone);
    }
  });
});
