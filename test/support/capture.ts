/**
 * Reading the real-kernel captures kept in test/fixtures/captures (recorded with ../shared/oracle; format: its README).
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { MachineSpec } from "../../src/kernel/boot.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { machineFromDmesg } from "../../src/machine/spec.ts";

/** The captures directory; ZONEDEV_CAPTURES points the suites at another one (a staging copy of new captures). */
export const CAPTURES = process.env.ZONEDEV_CAPTURES ? `${process.env.ZONEDEV_CAPTURES.replace(/\/$/, "")}/` : fileURLToPath(new URL("../fixtures/captures/", import.meta.url));

export interface Capture {
  name: string;
  text: string;
  /** `snapshot:what` → body lines. */
  sections: Map<string, string[]>;
}

export function loadCapture(name: string): Capture {
  const text = readFileSync(`${CAPTURES}${name}.txt`, "utf8");
  const sections = new Map<string, string[]>();
  let cur: string[] | null = null;
  for (const line of text.split("\n")) {
    const begin = /^=== BEGIN (.+) ===$/.exec(line);
    if (begin) {
      cur = [];
      sections.set(begin[1]!, cur);
      continue;
    }
    if (/^=== END rc=/.test(line)) {
      cur = null;
      continue;
    }
    cur?.push(line);
  }
  return { name, text, sections };
}

export function captureNames(): string[] {
  return readdirSync(CAPTURES)
    .filter((f) => f.endsWith(".txt") && f !== "timings.txt")
    .map((f) => f.replace(/\.txt$/, ""))
    .sort();
}

/** The kernel command line the capture's guest booted with (from its .cmdline, after `-append `). */
export function captureAppend(name: string): string {
  const cmd = readFileSync(`${CAPTURES}${name}.cmdline`, "utf8").replace(/\n$/, "");
  const i = cmd.indexOf("-append ");
  return i < 0 ? "" : cmd.slice(i + "-append ".length);
}

/** dmesg lines without timestamps. */
export function dmesgLines(c: Capture): string[] {
  return (c.sections.get("final:dmesg-full") ?? []).map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ""));
}

export interface ZoneSummary {
  node: number;
  zone: string;
  spanned: number;
  present: number;
  managed: number;
  startPfn: number | null;
}

export function zoneSummary(c: Capture, snapshot: string): ZoneSummary[] {
  const out: ZoneSummary[] = [];
  for (const line of c.sections.get(`${snapshot}:zone-summary`) ?? []) {
    const m = /^node=(\d+) zone=(\S+)\s+free=\d+ spanned=(\d+) present=(\d+) managed=(\d+) start_pfn=(\S+)/.exec(line);
    if (!m) continue;
    out.push({ node: Number(m[1]), zone: m[2]!, spanned: Number(m[3]), present: Number(m[4]), managed: Number(m[5]), startPfn: m[6] === "-" ? null : Number(m[6]) });
  }
  return out;
}

/**
 * An oracle capture's machine: e820 table, SRAT and command line from its dmesg (NFIT guests: their NVDIMMs
 * from the QEMU command line); the platform resources dmesg does not print (PCI windows, ROMs, APICs) from the
 * oracle preset; the kernel image from the boot /proc/iomem; the modules the oracle's init loads.
 */
export function oracleMachineOf(name: string, cap: Capture): MachineSpec {
  // NFIT guests: the NVDIMMs come from the QEMU command line (sizes, label area) and the SRAT (placement).
  const qemu = name.startsWith("nfit") ? readFileSync(`${CAPTURES}${name}.cmdline`, "utf8") : undefined;
  const spec = machineFromDmesg(`${name}.txt`, captureAppend(name), "x86_64", dmesgLines(cap).join("\n"), ["nd_pmem"], qemu === undefined ? {} : { qemu });
  const preset = machinePreset(name.startsWith("nfit") ? "qemu-q35-2g-nvdimm1g" : name.startsWith("e820numa") ? "qemu-q35-3g-pmem1g-numa" : "qemu-q35-3g-pmem1g");
  const kernelImage = (cap.sections.get("boot:iomem") ?? []).flatMap((l) => {
    const m = /^ {2}([0-9a-f]+)-([0-9a-f]+) : (Kernel \w+)$/.exec(l);
    return m ? [{ name: m[3]!, start: Number.parseInt(m[1]!, 16), end: Number.parseInt(m[2]!, 16) }] : [];
  });
  // QEMU places the 64-bit PCI window above the end of RAM: take it from the capture (an input, like the image).
  const pci64 = (cap.sections.get("boot:iomem") ?? []).flatMap((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) : PCI Bus 0000:00$/.exec(l);
    const start = m ? Number.parseInt(m[1]!, 16) : 0;
    return m && start >= 2 ** 32 ? [{ start, end: Number.parseInt(m[2]!, 16) }] : [];
  });
  const early = preset.platform.early.map((r) => (r.name === "PCI Bus 0000:00" && r.start >= 2 ** 32 && pci64[0] ? { ...r, ...pci64[0] } : r));
  return { ...spec, platform: { ...preset.platform, early }, kernelImage };
}
