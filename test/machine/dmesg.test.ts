import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.ts";
import { E820Type, formatE820Table } from "../../src/kernel/arch/x86/e820.ts";
import { parseDmesg, stripDmesgPrefix } from "../../src/machine/dmesg.ts";

const CAPTURES = new URL("../fixtures/captures/", import.meta.url);

function dmesgOf(file: string): string | undefined {
  const lines = readFileSync(new URL(file, CAPTURES), "utf8").split("\n");
  const begin = lines.indexOf("=== BEGIN final:dmesg-full ===");
  if (begin < 0) return undefined;
  const end = lines.findIndex((l, i) => i > begin && l.startsWith("=== END"));
  return lines.slice(begin + 1, end).join("\n");
}

function messages(dmesg: string, re: RegExp): string[] {
  return dmesg
    .split("\n")
    .map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ""))
    .filter((m) => re.test(m));
}

const captures = readdirSync(CAPTURES)
  .filter((f) => f.endsWith(".txt"))
  .sort()
  .flatMap((f) => {
    const d = dmesgOf(f);
    return d === undefined ? [] : [{ file: f, dmesg: d }];
  });

const GiB = 2 ** 30;

describe("parseDmesg on the oracle's captures", () => {
  it("finds the captures", () => {
    assert.ok(captures.length >= 20);
  });

  for (const { file, dmesg } of captures) {
    it(`${file}: e820 table, command line, SRAT and fake-NUMA flag`, () => {
      const parsed = parseDmesg(dmesg, file);
      assert.deepEqual(formatE820Table(parsed.firmwareE820, "BIOS-e820"), messages(dmesg, /^BIOS-e820: /));

      // The command line is what QEMU passed with -append, byte for byte (trailing space included).
      const qemu = readFileSync(new URL(file.replace(/\.txt$/, ".cmdline"), CAPTURES), "utf8").replace(/\n$/, "");
      assert.equal(parsed.commandLine, qemu.slice(qemu.indexOf(" -append ") + " -append ".length));

      // SRAT lines, re-read independently here.
      const srat = messages(dmesg, /^ACPI: SRAT: Node /).map((m) => {
        const x = /^ACPI: SRAT: Node (\d+) PXM (\d+) \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\]( hotplug)?( non-volatile)?$/.exec(m);
        assert.ok(x, m);
        return {
          node: Number(x[1]),
          pxm: Number(x[2]),
          start: Number.parseInt(x[3]!, 16),
          end: Number.parseInt(x[4]!, 16) + 1,
          hotplug: x[5] !== undefined,
          nonVolatile: x[6] !== undefined,
        };
      });
      assert.deepEqual(parsed.srat, srat);
      if (file.startsWith("e820numa-") || file.startsWith("nfit-")) assert.ok(parsed.srat.length >= 3);
      assert.equal(parsed.numaFaked, messages(dmesg, /^Faking a node at /).length === 1);
      assert.equal(parsed.numaFaked, parsed.srat.length === 0);
    });
  }

  it("e820numa-raw: one node covering low RAM and [4G,5G)", () => {
    const parsed = parseDmesg(dmesgOf("e820numa-raw.txt")!, "e820numa-raw.txt");
    const n0 = { node: 0, pxm: 0, hotplug: false, nonVolatile: false };
    assert.deepEqual(parsed.srat, [
      { ...n0, start: 0, end: 0xa0000 },
      { ...n0, start: 0x100000, end: 0x80000000 },
      { ...n0, start: 4 * GiB, end: 5 * GiB },
    ]);
    assert.equal(parsed.numaFaked, false);
  });

  it("nfit-raw: the NVDIMM's non-volatile range and the hotplug window", () => {
    const parsed = parseDmesg(dmesgOf("nfit-raw.txt")!, "nfit-raw.txt");
    assert.deepEqual(parsed.srat.slice(2), [
      { node: 0, pxm: 0, start: 4 * GiB, end: 0x13ffe0000, hotplug: false, nonVolatile: true },
      { node: 0, pxm: 0, start: 4 * GiB, end: 0x300000000, hotplug: true, nonVolatile: false },
    ]);
  });

  it("e820-raw: no SRAT, the node is faked", () => {
    const parsed = parseDmesg(dmesgOf("e820-raw.txt")!, "e820-raw.txt");
    assert.deepEqual(parsed.srat, []);
    assert.equal(parsed.numaFaked, true);
    assert.equal(parsed.commandLine, "console=ttyS0 nokaslr panic=-1 oracle_setup=e820 oracle_cfg=raw  memmap=1G!4G");
  });
});

describe("parseDmesg on pasted variants", () => {
  const body = [
    "BIOS-provided physical RAM map:",
    "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
    "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
    "BIOS-e820: [mem 0x0000000000100000-0x000000007ffdefff] usable",
    "BIOS-e820: [mem 0x000000007ffdf000-0x000000007fffffff] ACPI data",
    "BIOS-e820: [mem 0x0000000080000000-0x000000008000ffff] ACPI NVS",
    "BIOS-e820: [mem 0x0000000080010000-0x000000008001ffff] unusable",
    "BIOS-e820: [mem 0x0000000080020000-0x000000008002ffff] type 20",
    "BIOS-e820: [mem 0x0000000080030000-0x000000008003ffff] soft reserved",
    "BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] persistent (type 7)",
    "BIOS-e820: [mem 0x0000000140000000-0x000000017fffffff] persistent (type 12)",
    "BIOS-e820: [mem 0x0000000180000000-0x00000001bfffffff] persistent (type 12)",
    "Command line: BOOT_IMAGE=/vmlinuz root=/dev/sda1 memmap=1G!4G",
    "ACPI: SRAT: Node 1 PXM 3 [mem 0x100000000-0x13fffffff] hotplug non-volatile",
  ];
  const e820Lines = body.filter((l) => l.startsWith("BIOS-e820:"));

  it("round-trips every type name, known or not", () => {
    const parsed = parseDmesg(body.join("\n"), "paste");
    assert.deepEqual(formatE820Table(parsed.firmwareE820, "BIOS-e820"), e820Lines);
    assert.deepEqual(
      parsed.firmwareE820.map((e) => e.type),
      [1, 2, 1, 3, 4, 5, 20, E820Type.SOFT_RESERVED, 7, 12, 12],
    );
    assert.equal(parsed.commandLine, "BOOT_IMAGE=/vmlinuz root=/dev/sda1 memmap=1G!4G");
    assert.deepEqual(parsed.srat, [
      { node: 1, pxm: 3, start: 4 * GiB, end: 5 * GiB, hotplug: true, nonVolatile: true },
    ]);
    assert.equal(parsed.numaFaked, false);
  });

  const prefixes: Array<[string, (l: string, i: number) => string]> = [
    ["dmesg", (l, i) => `[    0.00000${i}] ${l}`],
    ["dmesg -r", (l) => `<6>[    0.000000] ${l}`],
    ["dmesg -x", (l) => `kern  :info  : [    0.000000] ${l}`],
    ["dmesg -T", (l) => `[Sat Nov 22 03:04:05 2025] ${l}`],
    ["dmesg --time-format iso", (l) => `2025-11-22T03:04:05,123456+00:00 ${l}`],
    ["printk caller", (l) => `[    0.000000] [    T0] ${l}`],
    ["kern.log", (l) => `Nov 22 03:04:05 myhost kernel: [    0.000000] ${l}`],
    ["journalctl -k", (l) => `Nov 22 03:04:05 myhost kernel: ${l}`],
    ["journalctl -o short-iso", (l) => `2025-11-22T03:04:05+0000 myhost kernel: ${l}`],
    ["CRLF", (l) => `[    0.000000] ${l}\r`],
  ];
  for (const [name, wrap] of prefixes) {
    it(`reads ${name} output`, () => {
      const parsed = parseDmesg(body.map(wrap).join("\n"), "paste");
      assert.deepEqual(formatE820Table(parsed.firmwareE820, "BIOS-e820"), e820Lines);
      assert.equal(parsed.commandLine, "BOOT_IMAGE=/vmlinuz root=/dev/sda1 memmap=1G!4G");
      assert.equal(parsed.srat.length, 1);
    });
  }

  it("strips prefixes but leaves messages alone", () => {
    assert.equal(stripDmesgPrefix("[    0.000000] Kernel command line: quiet"), "Kernel command line: quiet");
    assert.equal(stripDmesgPrefix("[mem 0x0-0x1] odd"), "[mem 0x0-0x1] odd");
    assert.equal(stripDmesgPrefix("Unknown kernel command line parameters"), "Unknown kernel command line parameters");
  });

  it("falls back to 'Kernel command line:' and detects a faked node", () => {
    const parsed = parseDmesg(
      [e820Lines[0], e820Lines[1], "No NUMA configuration found", "Faking a node at [mem 0x0000000000000000-0x000000007ffdefff]", "Kernel command line: quiet"].join("\n"),
      "paste",
    );
    assert.equal(parsed.commandLine, "quiet");
    assert.equal(parsed.numaFaked, true);
    assert.equal(parsed.srat.length, 0);
  });
});

describe("parseDmesg errors", () => {
  const rejects = (text: string, field: string, mention: string): void => {
    assert.throws(
      () => parseDmesg(text, "boot.log"),
      (e: unknown) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.equal(e.field, field);
        assert.ok(e.reason.includes(mention), `"${e.reason}" does not mention ${mention}`);
        return true;
      },
    );
  };
  const ok = "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable";

  it("needs the BIOS-e820 table", () => {
    assert.throws(
      () => parseDmesg("[    1.0] Linux version 6.1\n[    2.0] something else\n", "boot.log"),
      (e: unknown) =>
        e instanceof UsageError &&
        e.field === "boot.log" &&
        e.reason === "no BIOS-e820 lines found: paste the start of dmesg (the BIOS-provided physical RAM map)",
    );
  });

  it("names file:line of a malformed e820 line", () => {
    rejects(`${ok}\n[    0.000000] BIOS-e820: [mem 0x00000000000a0000-0x00000000000fffff]`, "boot.log:2", "BIOS-e820: [mem 0x00000000000a0000");
    rejects(`${ok}\n[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000000010ffff] weird`, "boot.log:2", '"weird"');
    rejects(`${ok}\n[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000000010ffff] type 1`, "boot.log:2", '"type 1"');
    rejects(`${ok}\n[    0.000000] BIOS-e820: [mem 0x0000000000200000-0x000000000010ffff] usable`, "boot.log:2", "0x000000000010ffff");
    rejects(`${ok}\n[    0.000000] BIOS-e820: [mem 0x0000000000090000-0x00000000000fffff] reserved`, "boot.log:2", "0x0000000000090000");
    rejects(`${ok}\n[    0.000000] BIOS-e820: [mem 0x0000000000100000-0xffffffffffffffff] reserved`, "boot.log:2", "2^53");
  });

  it("refuses a second boot's table and a malformed SRAT line", () => {
    rejects(`${ok}\n[    0.0] Command line: quiet\n${ok}`, "boot.log:3", "one boot");
    rejects(`${ok}\n[    0.1] ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x0009ffff] hotswap`, "boot.log:2", "hotswap");
  });
});
