/**
 * Reads what a user pastes from `dmesg` (or `journalctl -k`, or /var/log/kern.log): the firmware E820 table,
 * the kernel command line and the ACPI SRAT memory affinities, which together describe a machine's memory as
 * the kernel first saw it.
 *
 * Lines may carry a `[    0.000000] ` timestamp (or `dmesg -T`'s wall clock, or none), a caller id
 * (`[    T0] `), a raw `<6>` level, `dmesg -x`'s `kern  :info  : ` or a syslog prefix ending in `kernel: `.
 */
import { UsageError } from "../errors.ts";
import { type E820Entry, e820TypeFromName } from "../kernel/arch/x86/e820.ts";

/** One `ACPI: SRAT: Node N PXM P [mem ...]` line (drivers/acpi/numa/srat.c acpi_numa_memory_affinity_init). */
export interface SratMemoryAffinity {
  node: number;
  pxm: number;
  start: number;
  /** Exclusive. */
  end: number;
  hotplug: boolean;
  /** ACPI_SRAT_MEM_NON_VOLATILE: the range is (or includes) persistent memory, e.g. a QEMU NVDIMM. */
  nonVolatile: boolean;
}

export interface ParsedDmesg {
  /** The table as e820__memory_setup printed it ("BIOS-e820"): already sanitized, before memmap=/mem=. */
  firmwareE820: E820Entry[];
  /** setup_arch's `Command line:` (or, failing that, start_kernel's `Kernel command line:`). */
  commandLine?: string;
  srat: SratMemoryAffinity[];
  /** dummy_numa_init ran ("Faking a node at ..."): no usable NUMA description, everything is node 0. */
  numaFaked: boolean;
}

/** What log tools put before the kernel's message, each optional, in the order they appear. */
const PREFIXES: readonly RegExp[] = [
  // dmesg -r: <level> or <facility*8+level>
  /^<\d{1,3}>/,
  // syslog / journalctl: "Nov 22 03:04:05 host kernel: ", "2025-11-22T03:04:05+0000 host kernel: "
  /^(?:[^\s[]+\s+){1,4}kernel:\s?/,
  // dmesg -x: "kern  :info  : "
  /^[a-z]+\s*:\s*(?:emerg|alert|crit|err|warn|notice|info|debug)\s*:\s?/,
  // one timestamp: monotonic (with dmesg -d's delta), dmesg -T's wall clock, or --time-format iso
  /^(?:\[\s*\d+\.\d+(?:\s*<\s*\d+\.\d+>)?\]|\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [^\]]*\]|\d{4}-\d\d-\d\dT[\d:.,+-]+)\s?/,
  // CONFIG_PRINTK_CALLER: "[    T0] " / "[    C1] "
  /^\[\s*[TC]\d+\]\s?/,
];

/** The kernel's message with whatever the log tool put in front of it removed (one pass, in order). */
export function stripDmesgPrefix(line: string): string {
  let s = line.replace(/\r$/, "");
  for (const re of PREFIXES) {
    const m = re.exec(s);
    if (m) s = s.slice(m[0].length);
  }
  return s;
}

const HEX_LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

/** A printed address; beyond 2^53 it would not be exact, which no x86 physical address needs. */
function hexAddress(text: string): number | undefined {
  const v = BigInt(text);
  return v > HEX_LIMIT ? undefined : Number(v);
}

// e820__print_table: "%s: [mem %#018Lx-%#018Lx] " then e820_print_type.
const E820_LINE = /^BIOS-e820: \[mem (0x[0-9a-f]{1,16})-(0x[0-9a-f]{1,16})\] (.*)$/;
// acpi_numa_memory_affinity_init: "SRAT: Node %u PXM %u [mem %#010Lx-%#010Lx]%s%s" under pr_fmt "ACPI: ".
const SRAT_LINE = /^ACPI: SRAT: Node (\d+) PXM (\d+) \[mem (0x[0-9a-f]{1,16})-(0x[0-9a-f]{1,16})\]( hotplug)?( non-volatile)?$/;

/**
 * Parses a pasted dmesg. `file` names the paste in errors (`file` or `file:line`). Needs the BIOS-e820 table;
 * the command line and SRAT are optional. Only one boot may be pasted.
 */
export function parseDmesg(text: string, file: string): ParsedDmesg {
  const firmwareE820: E820Entry[] = [];
  const srat: SratMemoryAffinity[] = [];
  let commandLine: string | undefined;
  let kernelCommandLine: string | undefined;
  let numaFaked = false;
  // The table is printed as one run of lines; a BIOS-e820 line after the run ended means a second boot.
  let e820State: "before" | "in" | "after" = "before";
  let e820EndLine = 0;

  const lines = text.split("\n");
  lines.forEach((raw, idx) => {
    const lineNo = idx + 1;
    const where = `${file}:${lineNo}`;
    const msg = stripDmesgPrefix(raw);

    if (msg.startsWith("BIOS-e820:")) {
      if (e820State === "after") {
        throw new UsageError(
          where,
          `a second BIOS-e820 table (the first ended at line ${e820EndLine}): paste the dmesg of one boot only`,
        );
      }
      e820State = "in";
      e820EndLine = lineNo;
      const m = E820_LINE.exec(msg);
      if (!m) throw new UsageError(where, `not an e820 table line: expected "BIOS-e820: [mem 0x...-0x...] type", got "${msg}"`);
      const start = hexAddress(m[1]!);
      const last = hexAddress(m[2]!);
      if (start === undefined || last === undefined) {
        throw new UsageError(where, `address beyond 2^53 in "${msg}": zonedev keeps physical addresses exact only up to 2^53`);
      }
      if (last < start) throw new UsageError(where, `range ends (${m[2]}) before it starts (${m[1]})`);
      const typeName = m[3]!;
      const type = e820TypeFromName(typeName);
      if (type === undefined) {
        throw new UsageError(
          where,
          `unknown e820 type "${typeName}": expected usable, reserved, soft reserved, ACPI data, ACPI NVS, unusable, persistent (type 7|12) or type N`,
        );
      }
      const prev = firmwareE820[firmwareE820.length - 1];
      // The kernel prints the table sanitized: sorted and without overlaps.
      if (prev && start < prev.addr + prev.size) {
        throw new UsageError(where, `[mem ${m[1]}-${m[2]}] overlaps or precedes the previous entry: the kernel prints its table sorted`);
      }
      firmwareE820.push({ addr: start, size: last - start + 1, type });
      return;
    }
    if (e820State === "in" && msg !== "") e820State = "after";

    if (msg.startsWith("Command line: ")) {
      commandLine ??= msg.slice("Command line: ".length);
      return;
    }
    if (msg.startsWith("Kernel command line: ")) {
      kernelCommandLine ??= msg.slice("Kernel command line: ".length);
      return;
    }
    if (msg.startsWith("ACPI: SRAT: Node ")) {
      const m = SRAT_LINE.exec(msg);
      if (!m) {
        throw new UsageError(where, `not an SRAT memory affinity line: expected "ACPI: SRAT: Node N PXM P [mem 0x...-0x...]", got "${msg}"`);
      }
      const start = hexAddress(m[3]!);
      const last = hexAddress(m[4]!);
      if (start === undefined || last === undefined) {
        throw new UsageError(where, `address beyond 2^53 in "${msg}": zonedev keeps physical addresses exact only up to 2^53`);
      }
      if (last < start) throw new UsageError(where, `range ends (${m[4]}) before it starts (${m[3]})`);
      srat.push({
        node: Number(m[1]),
        pxm: Number(m[2]),
        start,
        end: last + 1,
        hotplug: m[5] !== undefined,
        nonVolatile: m[6] !== undefined,
      });
      return;
    }
    if (msg.startsWith("Faking a node at ")) numaFaked = true;
  });

  if (firmwareE820.length === 0) {
    throw new UsageError(file, "no BIOS-e820 lines found: paste the start of dmesg (the BIOS-provided physical RAM map)");
  }
  const out: ParsedDmesg = { firmwareE820, srat, numaFaked };
  const cmd = commandLine ?? kernelCommandLine;
  if (cmd !== undefined) out.commandLine = cmd;
  return out;
}
