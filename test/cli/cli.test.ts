/**
 * The CLI as a user runs it: real processes, stdout/stderr/exit status.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadCapture } from "../support/capture.ts";

const BIN = fileURLToPath(new URL("../../bin/zonedev.js", import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function expectUsageError(r: ReturnType<typeof run>, pattern: RegExp) {
  assert.equal(r.code, 2, `exit status (stderr: ${r.err})`);
  assert.equal(r.out, "");
  const lines = r.err.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got: ${r.err}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.err, /at .*\.ts:\d+/, "no stack trace");
}

const tmp = mkdtempSync(join(tmpdir(), "zonedev-cli-"));
function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

describe("zonedev layout", () => {
  it("prints the oracle preset's iomem and zones by default", () => {
    const r = run("layout");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^100000000-13fffffff : Persistent Memory \(legacy\)$/m);
    assert.match(r.out, /^Node 0, zone {4}DMA32\n {8}spanned {2}520159$/m);
    assert.match(r.out, /^memory15 phys_index=0000000f state=online/m);
  });

  it("--json gives machine-readable state", () => {
    const r = run("layout", "--json");
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { zones: Array<{ zone: string; startPfn: number | null }>; maxPfn: number };
    assert.equal(j.maxPfn, 0x7ffdf);
    assert.equal(j.zones.find((z) => z.zone === "DMA32")?.startPfn, 4096);
  });

  it("--dmesg builds the machine from a real boot log, --append changes memmap=", () => {
    const dmesg = file("dmesg.txt", loadCapture("e820-raw").sections.get("final:dmesg-full")!.join("\n"));
    const r = run("layout", "--dmesg", dmesg, "--append", "memmap=512M!4G", "--show", "iomem");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^100000000-11fffffff : Persistent Memory \(legacy\)$/m);
    assert.match(r.out, /^120000000-13fffffff : System RAM$/m);
  });

  it("--show picks parts; the log part shows the kernel's boot lines", () => {
    const r = run("layout", "--show", "log");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^On node 0, zone DMA32: 33 pages in unavailable ranges$/m);
    assert.doesNotMatch(r.out, /Persistent Memory \(legacy\)$/m);
  });

  it("boots a YAML machine spec for arm64 with 64K pages", () => {
    const spec = file("arm.yaml", "arch: arm64-64k-48\nmemory:\n  - { start: 0x80000000, size: 8G }\n");
    const r = run("layout", "--machine", spec, "--json");
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { pageSize: number; memoryBlockSize: number; zones: Array<{ zone: string; spanned: number }> };
    assert.equal(j.pageSize, 65536);
    assert.equal(j.memoryBlockSize, 512 * 2 ** 20);
    // ZONE_DMA covers the 32-bit addressable part: [2 GiB, 4 GiB) = 32768 pages of 64 KiB.
    assert.equal(j.zones.find((z) => z.zone === "DMA")?.spanned, 32768);
  });
});

describe("bad input is one line and exit status 2", () => {
  it("unknown preset", () => expectUsageError(run("layout", "--preset", "nope"), /--preset: unknown preset 'nope'/));
  it("unknown arch in a spec, with file and line", () =>
    expectUsageError(run("layout", "--machine", file("a.yaml", "name: x\narch: sparc64\ne820: []\n")), /a\.yaml:2: arch: unknown arch 'sparc64'/));
  it("malformed YAML", () => expectUsageError(run("layout", "--machine", file("b.yaml", "arch: [x86_64\n")), /b\.yaml:\d+: malformed YAML/));
  it("overlapping ranges", () =>
    expectUsageError(
      run("layout", "--machine", file("c.yaml", "e820:\n  - { start: 0, size: 1G, type: usable }\n  - { start: 512M, size: 1G, type: usable }\n")),
      /c\.yaml:3: e820\[1\]: overlaps e820\[0\]/,
    ));
  it("address beyond MAX_PHYSMEM_BITS", () =>
    expectUsageError(run("layout", "--machine", file("d.yaml", "arch: x86_64\ne820:\n  - { start: 0x400000000000, size: 1G, type: usable }\n")), /e820\[0\]: ends above MAX_PHYSMEM_BITS \(46 bits/));
  it("contradictory config", () =>
    expectUsageError(run("layout", "--machine", file("e.yaml", "e820:\n  - { start: 0, size: 1G, type: usable }\nconfig: { ZONE_DEVICE: y, SPARSEMEM_VMEMMAP: n }\n")), /config.*ZONE_DEVICE.*SPARSEMEM_VMEMMAP/));
  it("unknown field", () => expectUsageError(run("layout", "--machine", file("f.yaml", "e820: []\nram: 4G\n")), /f\.yaml.*ram|Unrecognized key/));
  it("malformed memmap= on the command line", () => expectUsageError(run("layout", "--append", "memmap=1Q!4G"), /append: memmap=1Q!4G/));
  it("unknown flag", () => expectUsageError(run("layout", "--frobnicate"), /unknown option '--frobnicate'/));
  it("unknown --show part", () => expectUsageError(run("layout", "--show", "iomem,bogus"), /--show: unknown part 'bogus'/));
  it("missing file", () => expectUsageError(run("layout", "--dmesg", join(tmp, "missing.txt")), /missing\.txt: cannot read: ENOENT/));
  it("a dmesg without an e820 table", () => expectUsageError(run("layout", "--dmesg", file("g.txt", "hello\n")), /g\.txt: no BIOS-e820 lines found/));
});

describe("zonedev demo and presets", () => {
  it("demo runs and tells the story with computed numbers", () => {
    const r = run("demo");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /persistent \(type 12\)/);
    assert.match(r.out, /add_memory\(nid 0, 8 GiB, 256 MiB\) = 0/);
    assert.match(r.out, /MEMORY_DEVICE_FS_DAX, live/);
    assert.match(r.out, /references held by a GUP walker in the middle of get_user_pages/);
    // fsdax map=dev: data at 0x101200000 as on the real kernel, memmap in the device.
    assert.match(r.out, /pfn0\.0: MEMORY_DEVICE_FS_DAX, live/);
    assert.match(r.out, /device pages from pfn 0x101200/);
    assert.match(r.out, /in RAM 0 KiB, in the device 16 MiB/);
  });
  it("presets lists machines, arches and Kconfig presets", () => {
    const r = run("presets");
    assert.equal(r.code, 0, r.err);
    for (const name of ["qemu-q35-3g-pmem1g", "arm64-64k-52", "ppc64-radix-64k", "debian-6.1-amd64"]) assert.match(r.out, new RegExp(name));
  });
});
