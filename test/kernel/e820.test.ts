import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.ts";
import {
  applyMemmapArgs,
  type E820Entry,
  E820Type,
  e820RangeAdd,
  e820RangeRemove,
  e820RangeUpdate,
  e820TypeFromName,
  e820TypeName,
  e820TypeToResourceName,
  e820UpdateTable,
  formatE820Table,
  memparse,
  parseMemmapArgs,
  trimBiosRange,
} from "../../src/kernel/arch/x86/e820.ts";
import { parseDmesg } from "../../src/machine/dmesg.ts";

const CAPTURES = new URL("../fixtures/captures/", import.meta.url);

/** The text of one `=== BEGIN <name> ===` section (the first one whose name ends with `what`). */
function section(text: string, what: string): string | undefined {
  const lines = text.split("\n");
  const begin = lines.findIndex((l) => l.startsWith("=== BEGIN ") && l.endsWith(`${what} ===`));
  if (begin < 0) return undefined;
  const end = lines.findIndex((l, i) => i > begin && l.startsWith("=== END"));
  return lines.slice(begin + 1, end).join("\n");
}

/** The messages of a dmesg section whose text matches `re`, timestamps removed. */
function messages(dmesg: string, re: RegExp): string[] {
  return dmesg
    .split("\n")
    .map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ""))
    .filter((m) => re.test(m));
}

const captureFiles = readdirSync(CAPTURES)
  .filter((f) => f.endsWith(".txt"))
  .filter((f) => readFileSync(new URL(f, CAPTURES), "utf8").includes("=== BEGIN final:dmesg-full ==="))
  .sort();

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe("e820 against the oracle's captures", () => {
  it("finds the captures", () => {
    assert.ok(captureFiles.length >= 20, `only ${captureFiles.length} captures with a dmesg-full section`);
  });

  for (const file of captureFiles) {
    it(`${file}: BIOS-e820, user-defined map, trim_bios_range and iomem agree with the kernel`, () => {
      const text = readFileSync(new URL(file, CAPTURES), "utf8");
      const dmesg = section(text, "final:dmesg-full");
      assert.ok(dmesg !== undefined);
      const parsed = parseDmesg(dmesg, file);

      // The firmware table prints back byte for byte.
      const biosLines = messages(dmesg, /^BIOS-e820: /);
      assert.ok(biosLines.length > 0);
      assert.deepEqual(formatE820Table(parsed.firmwareE820, "BIOS-e820"), biosLines);

      // memmap= from the command line gives the kernel's user-defined map, or none when there was no memmap=.
      assert.ok(parsed.commandLine !== undefined);
      const args = parseMemmapArgs(parsed.commandLine);
      const user = applyMemmapArgs(parsed.firmwareE820, args);
      const userLines = messages(dmesg, /^user: /);
      if (userLines.length > 0) {
        assert.equal(user.userdef, true);
        assert.deepEqual(formatE820Table(user.table, "user"), userLines);
        assert.deepEqual(user.log, ["user-defined physical RAM map:", ...userLines]);
      } else {
        assert.equal(user.userdef, false);
        assert.deepEqual(user.log, []);
        assert.deepEqual(user.table, parsed.firmwareE820);
        assert.equal(messages(dmesg, /^user-defined physical RAM map:/).length, 0);
      }

      // trim_bios_range's two debug lines.
      const trimmed = trimBiosRange(user.table);
      assert.deepEqual(trimmed.log, messages(dmesg, /^e820: (update|remove) /));

      // e820__reserve_resources registers every entry of the trimmed table in iomem under its type's name.
      const iomem = section(text, ":iomem");
      if (iomem !== undefined) {
        const iomemLines = new Set(iomem.split("\n").map((l) => l.trim()));
        const hex8 = (n: number): string => n.toString(16).padStart(8, "0");
        for (const e of trimmed.table) {
          const line = `${hex8(e.addr)}-${hex8(e.addr + e.size - 1)} : ${e820TypeToResourceName(e.type)}`;
          assert.ok(iomemLines.has(line), `${file}: iomem lacks "${line}"`);
        }
      }
    });
  }

  it("e820-raw: memmap=1G!4G turns [4G,5G) into legacy pmem and trims the first page and the BIOS hole", () => {
    const text = readFileSync(new URL("e820-raw.txt", CAPTURES), "utf8");
    const parsed = parseDmesg(section(text, "final:dmesg-full")!, "e820-raw.txt");
    const user = applyMemmapArgs(parsed.firmwareE820, parseMemmapArgs(parsed.commandLine!));
    assert.deepEqual(
      user.table.find((e) => e.addr === 4 * GiB),
      { addr: 4 * GiB, size: GiB, type: E820Type.PRAM },
    );
    const trimmed = trimBiosRange(user.table).table;
    assert.deepEqual(trimmed.slice(0, 4), [
      { addr: 0, size: 0x1000, type: E820Type.RESERVED },
      { addr: 0x1000, size: 0x9fc00 - 0x1000, type: E820Type.RAM },
      { addr: 0x9fc00, size: 0x400, type: E820Type.RESERVED },
      { addr: 0xf0000, size: 0x10000, type: E820Type.RESERVED },
    ]);
  });
});

describe("e820UpdateTable (expected tables derived by hand from e820__update_table)", () => {
  it("splits RAM around a reserved range that overlaps it", () => {
    const r = e820UpdateTable([
      { addr: 0, size: 0x100000, type: E820Type.RAM },
      { addr: 0x80000, size: 0x20000, type: E820Type.RESERVED },
    ]);
    assert.equal(r.ret, 0);
    assert.deepEqual(r.table, [
      { addr: 0, size: 0x80000, type: E820Type.RAM },
      { addr: 0x80000, size: 0x20000, type: E820Type.RESERVED },
      { addr: 0xa0000, size: 0x60000, type: E820Type.RAM },
    ]);
  });

  it("sorts, merges touching same-type entries, drops empty ones and lets the highest type win", () => {
    const r = e820UpdateTable([
      { addr: 0x200000, size: 0x100000, type: E820Type.RAM },
      { addr: 0x100000, size: 0x100000, type: E820Type.RAM },
      { addr: 0, size: 0, type: 0 },
      { addr: 0x250000, size: 0x1b0000, type: E820Type.ACPI },
      { addr: 0x380000, size: 0x10000, type: E820Type.NVS },
    ]);
    assert.deepEqual(r.table, [
      { addr: 0x100000, size: 0x150000, type: E820Type.RAM },
      { addr: 0x250000, size: 0x130000, type: E820Type.ACPI },
      { addr: 0x380000, size: 0x10000, type: E820Type.NVS },
      { addr: 0x390000, size: 0x70000, type: E820Type.ACPI },
    ]);
  });

  it("never merges PRAM: memmap=2G!4G over RAM ending at 5G gives two legacy pmem entries", () => {
    // The RAM entry's end at 5G is a change point; PRAM is no-merge, so a new entry starts there.
    const r = e820UpdateTable([
      { addr: 4 * GiB, size: GiB, type: E820Type.RAM },
      { addr: 4 * GiB, size: 2 * GiB, type: E820Type.PRAM },
    ]);
    assert.deepEqual(r.table, [
      { addr: 4 * GiB, size: GiB, type: E820Type.PRAM },
      { addr: 5 * GiB, size: GiB, type: E820Type.PRAM },
    ]);
    const adjacent = e820UpdateTable([
      { addr: 5 * GiB, size: GiB, type: E820Type.PRAM },
      { addr: 4 * GiB, size: GiB, type: E820Type.PRAM },
    ]);
    assert.deepEqual(adjacent.table, [
      { addr: 4 * GiB, size: GiB, type: E820Type.PRAM },
      { addr: 5 * GiB, size: GiB, type: E820Type.PRAM },
    ]);
    const ram = e820UpdateTable([
      { addr: MiB, size: MiB, type: E820Type.RAM },
      { addr: 0, size: MiB, type: E820Type.RAM },
    ]);
    assert.deepEqual(ram.table, [{ addr: 0, size: 2 * MiB, type: E820Type.RAM }]);
  });

  it("soft reserved (0xefffffff) beats every type and is split at every change point", () => {
    const r = e820UpdateTable([
      { addr: 0, size: 0x10000, type: E820Type.RAM },
      { addr: 0x8000, size: 0x10000, type: E820Type.SOFT_RESERVED },
      { addr: 0x10000, size: 0x10000, type: E820Type.PRAM },
    ]);
    assert.deepEqual(r.table, [
      { addr: 0, size: 0x8000, type: E820Type.RAM },
      { addr: 0x8000, size: 0x8000, type: E820Type.SOFT_RESERVED },
      { addr: 0x10000, size: 0x8000, type: E820Type.SOFT_RESERVED },
      { addr: 0x18000, size: 0x8000, type: E820Type.PRAM },
    ]);
  });

  it("bails out (ret -1, table untouched) with fewer than two entries", () => {
    const one = [{ addr: 0x1000, size: 0x1000, type: E820Type.RAM }];
    assert.deepEqual(e820UpdateTable(one), { ret: -1, table: one });
    assert.deepEqual(e820UpdateTable([]), { ret: -1, table: [] });
  });

  it("does not modify its input", () => {
    const input: E820Entry[] = [
      { addr: 0x1000, size: 0x1000, type: E820Type.RAM },
      { addr: 0, size: 0x1000, type: E820Type.RAM },
    ];
    const copy = structuredClone(input);
    e820UpdateTable(input);
    assert.deepEqual(input, copy);
  });
});

describe("e820RangeUpdate / e820RangeRemove / e820RangeAdd", () => {
  const low: E820Entry[] = [
    { addr: 0, size: 0x9fc00, type: E820Type.RAM },
    { addr: 0x9fc00, size: 0x400, type: E820Type.RESERVED },
  ];

  it("update of the head of an entry appends the piece and moves the entry's start", () => {
    const r = e820RangeUpdate(low, 0, 0x1000, E820Type.RAM, E820Type.RESERVED);
    assert.deepEqual(r.log, ["e820: update [mem 0x00000000-0x00000fff] usable ==> reserved"]);
    assert.equal(r.size, 0x1000);
    assert.deepEqual(r.table, [
      { addr: 0x1000, size: 0x9ec00, type: E820Type.RAM },
      { addr: 0x9fc00, size: 0x400, type: E820Type.RESERVED },
      { addr: 0, size: 0x1000, type: E820Type.RESERVED },
    ]);
    assert.deepEqual(low[0], { addr: 0, size: 0x9fc00, type: E820Type.RAM });
  });

  it("update strictly inside an entry keeps the head and appends middle and tail", () => {
    const r = e820RangeUpdate([{ addr: 0, size: 0x100000, type: E820Type.RAM }], 0x10000, 0x1000, 1, 3);
    assert.deepEqual(r.log, ["e820: update [mem 0x00010000-0x00010fff] usable ==> ACPI data"]);
    assert.deepEqual(r.table, [
      { addr: 0, size: 0x10000, type: E820Type.RAM },
      { addr: 0x10000, size: 0x1000, type: E820Type.ACPI },
      { addr: 0x11000, size: 0xef000, type: E820Type.RAM },
    ]);
  });

  it("remove zeroes covered entries, trims partial ones, and prints a trailing space without a type", () => {
    const r = e820RangeRemove(low, 0x9f000, 0x2000, 0, false);
    assert.deepEqual(r.log, ["e820: remove [mem 0x0009f000-0x000a0fff] "]);
    assert.equal(r.size, 0xc00 + 0x400);
    assert.deepEqual(r.table, [
      { addr: 0, size: 0x9f000, type: E820Type.RAM },
      { addr: 0, size: 0, type: 0 },
    ]);
    const typed = e820RangeRemove(low, 0x9f000, 0x2000, E820Type.RESERVED, true);
    assert.deepEqual(typed.log, ["e820: remove [mem 0x0009f000-0x000a0fff] reserved"]);
    assert.equal(typed.table[0]!.size, 0x9fc00);
  });

  it("remove to the end of the address space prints 0xfffffffffffffffe, as mem= does", () => {
    const r = e820RangeRemove(low, 3000, 2 ** 64 - 3000, E820Type.RAM, true);
    assert.deepEqual(r.log, ["e820: remove [mem 0x00000bb8-0xfffffffffffffffe] usable"]);
    assert.deepEqual(r.table[0], { addr: 0, size: 3000, type: E820Type.RAM });
  });

  it("add appends unsorted", () => {
    const r = e820RangeAdd(low, 0, 0x1000, E820Type.PRAM);
    assert.deepEqual(r.table[2], { addr: 0, size: 0x1000, type: E820Type.PRAM });
    assert.equal(low.length, 2);
  });
});

describe("e820 type names", () => {
  it("prints types as e820_print_type and names resources as e820_type_to_string", () => {
    const cases: Array<[number, string, string]> = [
      [E820Type.RAM, "usable", "System RAM"],
      [E820Type.RESERVED_KERN, "usable", "System RAM"],
      [E820Type.RESERVED, "reserved", "Reserved"],
      [E820Type.ACPI, "ACPI data", "ACPI Tables"],
      [E820Type.NVS, "ACPI NVS", "ACPI Non-volatile Storage"],
      [E820Type.UNUSABLE, "unusable", "Unusable memory"],
      [E820Type.PMEM, "persistent (type 7)", "Persistent Memory"],
      [E820Type.PRAM, "persistent (type 12)", "Persistent Memory (legacy)"],
      [E820Type.SOFT_RESERVED, "soft reserved", "Soft Reserved"],
      [20, "type 20", "Unknown E820 type"],
    ];
    for (const [type, printed, resource] of cases) {
      assert.equal(e820TypeName(type), printed);
      assert.equal(e820TypeToResourceName(type), resource);
      if (type !== E820Type.RESERVED_KERN) assert.equal(e820TypeFromName(printed), type);
    }
    for (const never of ["type 1", "persistent (type 5)", "type 07", "Usable", "type 4294967296"]) {
      assert.equal(e820TypeFromName(never), undefined, never);
    }
  });

  it("formats 16 hex digits and an inclusive end", () => {
    assert.deepEqual(formatE820Table([{ addr: 4 * GiB, size: GiB, type: E820Type.PRAM }], "user"), [
      "user: [mem 0x0000000100000000-0x000000013fffffff] persistent (type 12)",
    ]);
  });
});

describe("memparse", () => {
  const v = (s: string): bigint => memparse(s).value;
  it("takes K M G T P E in either case", () => {
    assert.equal(v("1K"), 1024n);
    assert.equal(v("1k"), 1024n);
    assert.equal(v("2M"), 2n * 1024n ** 2n);
    assert.equal(v("3g"), 3n * 1024n ** 3n);
    assert.equal(v("1T"), 1024n ** 4n);
    assert.equal(v("1p"), 1024n ** 5n);
    assert.equal(v("1E"), 1024n ** 6n);
    assert.equal(v("4096"), 4096n);
  });
  it("reads base 0 as simple_strtoull: 0x hex, leading-0 octal", () => {
    assert.equal(v("0x10M"), 16n * 1024n ** 2n);
    assert.equal(v("010"), 8n);
    assert.deepEqual(memparse("08"), { value: 0n, end: 1, digits: 1 });
    assert.deepEqual(memparse("0x"), { value: 0n, end: 1, digits: 1 });
    // Decimal stops at the hex letter, which then reads as a suffix: "1e" is an exbibyte, "0x1e" is 30.
    assert.equal(v("1e"), 1024n ** 6n);
    assert.equal(v("0x1e"), 30n);
  });
  it("consumes a lone suffix without digits", () => {
    assert.deepEqual(memparse("G"), { value: 0n, end: 1, digits: 0 });
    assert.equal(memparse("1G!4G").end, 2);
    assert.equal(memparse("1G!4G", 3).value, 4n * 1024n ** 3n);
  });
});

describe("parseMemmapArgs", () => {
  it("parses every form of a comma-separated memmap= and mem=, in command-line order", () => {
    const args = parseMemmapArgs(
      "console=ttyS0 memmap=exactmap,640K@0,0x1000$0x2000,4K#8K,1m%2m-1+2,1M%3M+12,1M%4M-1,1M%5M,8G mem=2G memmap=1g!4g",
    );
    assert.deepEqual(args, [
      { kind: "exactmap", text: "memmap=exactmap" },
      { kind: "add", text: "memmap=640K@0", start: 0, size: 640 * 1024, type: E820Type.RAM },
      { kind: "add", text: "memmap=0x1000$0x2000", start: 0x2000, size: 0x1000, type: E820Type.RESERVED },
      { kind: "add", text: "memmap=4K#8K", start: 8192, size: 4096, type: E820Type.ACPI },
      { kind: "update", text: "memmap=1m%2m-1+2", start: 2 * MiB, size: MiB, oldType: 1, newType: 2 },
      { kind: "add", text: "memmap=1M%3M+12", start: 3 * MiB, size: MiB, type: 12 },
      { kind: "remove", text: "memmap=1M%4M-1", start: 4 * MiB, size: MiB, oldType: 1, checkType: true },
      { kind: "remove", text: "memmap=1M%5M", start: 5 * MiB, size: MiB, oldType: 0, checkType: false },
      { kind: "limit", text: "memmap=8G", size: 8 * GiB, param: "memmap" },
      { kind: "limit", text: "mem=2G", size: 2 * GiB, param: "mem" },
      { kind: "add", text: "memmap=1g!4g", start: 4 * GiB, size: GiB, type: E820Type.PRAM },
    ]);
  });

  it("follows next_arg's quoting and stops at --", () => {
    const pram = { kind: "add", text: "memmap=1G!4G", start: 4 * GiB, size: GiB, type: E820Type.PRAM };
    assert.deepEqual(parseMemmapArgs('"memmap=1G!4G" quiet'), [pram]);
    assert.deepEqual(parseMemmapArgs('quiet memmap="1G!4G"'), [pram]);
    assert.deepEqual(parseMemmapArgs("memmap=1G!4G -- memmap=2G!8G"), [pram]);
    assert.deepEqual(parseMemmapArgs("memmapx=1G!4G nomem=1G"), []);
  });

  const rejects = (cmdline: string, mention: string): void => {
    assert.throws(
      () => parseMemmapArgs(cmdline),
      (e: unknown) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.equal(e.field, "append");
        assert.ok(e.reason.includes(mention), `"${e.reason}" does not mention ${mention}`);
        return true;
      },
    );
  };

  it("names the bad item in every UsageError", () => {
    rejects("memmap=1G!", "memmap=1G!:");
    rejects("memmap=1G!4Gx", "memmap=1G!4Gx:");
    rejects("memmap=xyz", "memmap=xyz:");
    rejects("memmap=G", "memmap=G:");
    rejects("memmap=1G?4G", "memmap=1G?4G:");
    rejects("memmap=1G%4G-1+1", "memmap=1G%4G-1+1:");
    rejects("memmap=1G%4G-1x", "memmap=1G%4G-1x:");
    rejects("memmap=1G%4G-+2", "memmap=1G%4G-+2:");
    rejects("memmap=1G%4G+0", "memmap=1G%4G+0:");
    rejects("memmap=1G%4G+0x100000000", "memmap=1G%4G+0x100000000:");
    rejects("memmap=1G\\$4G", "memmap=1G\\$4G:");
    rejects("memmap=20000000T!0", "memmap=20000000T!0:");
    rejects("memmap=1G!4G,", "memmap=:");
    rejects("memmap", "memmap");
    rejects("mem=0", "mem=0:");
    rejects("mem=4Gx", "mem=4Gx:");
    rejects("mem=nopentium", "mem=nopentium:");
    rejects("mem", "mem");
  });

  it("explains what the kernel would do", () => {
    assert.throws(() => parseMemmapArgs("memmap=1G%4G-12+12"), /BUG_ON/);
    assert.throws(() => parseMemmapArgs("memmap=1G\\$4G"), /GRUB/);
  });
});

describe("applyMemmapArgs", () => {
  const firmware: E820Entry[] = [
    { addr: 0, size: 0x9fc00, type: E820Type.RAM },
    { addr: 0x9fc00, size: 0x400, type: E820Type.RESERVED },
    { addr: 0xf0000, size: 0x10000, type: E820Type.RESERVED },
    { addr: 0x100000, size: 0x7fedf000, type: E820Type.RAM },
    { addr: 4 * GiB, size: GiB, type: E820Type.RAM },
  ];

  it("mem= removes RAM above the limit, logs the removal and caps hotplug", () => {
    const r = applyMemmapArgs(firmware, parseMemmapArgs("mem=1G"));
    assert.equal(r.userdef, true);
    assert.equal(r.maxMemSize, GiB);
    assert.deepEqual(r.log, [
      "e820: remove [mem 0x40000000-0xfffffffffffffffe] usable",
      "user-defined physical RAM map:",
      "user: [mem 0x0000000000000000-0x000000000009fbff] usable",
      "user: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
      "user: [mem 0x00000000000f0000-0x00000000000fffff] reserved",
      "user: [mem 0x0000000000100000-0x000000003fffffff] usable",
    ]);
    const viaMemmap = applyMemmapArgs(firmware, parseMemmapArgs("memmap=1G"));
    assert.deepEqual(viaMemmap.table, r.table);
    assert.equal(viaMemmap.maxMemSize, undefined);
  });

  it("memmap=exactmap builds the table from scratch", () => {
    const r = applyMemmapArgs(firmware, parseMemmapArgs("memmap=exactmap memmap=640K@0,1G@1M"));
    assert.deepEqual(r.table, [
      { addr: 0, size: 0xa0000, type: E820Type.RAM },
      { addr: MiB, size: GiB, type: E820Type.RAM },
    ]);
  });

  it("memmap=nn%ss-1+2 retypes and logs like e820__range_update", () => {
    const r = applyMemmapArgs(firmware, parseMemmapArgs("memmap=16M%0x1000000-1+2"));
    assert.equal(r.log[0], "e820: update [mem 0x01000000-0x01ffffff] usable ==> reserved");
    assert.deepEqual(r.table.slice(3, 6), [
      { addr: MiB, size: 15 * MiB, type: E820Type.RAM },
      { addr: 16 * MiB, size: 16 * MiB, type: E820Type.RESERVED },
      { addr: 32 * MiB, size: 0x7fedf000 - 31 * MiB, type: E820Type.RAM },
    ]);
  });

  it("no memmap=/mem= leaves the table alone and prints nothing", () => {
    const r = applyMemmapArgs(firmware, parseMemmapArgs("console=ttyS0 quiet"));
    assert.deepEqual(r, { table: firmware, userdef: false, log: [] });
  });

  it("a user table the sanitizer refuses is the kernel's 'Invalid user supplied memory map' panic", () => {
    for (const cmdline of ["memmap=exactmap", "memmap=exactmap,640K@0"]) {
      assert.throws(
        () => applyMemmapArgs(firmware, parseMemmapArgs(cmdline)),
        (e: unknown) =>
          e instanceof UsageError &&
          e.field === "append" &&
          e.reason.includes(cmdline.replace(",", " memmap=")) &&
          e.reason.includes("Invalid user supplied memory map"),
      );
    }
  });
});
