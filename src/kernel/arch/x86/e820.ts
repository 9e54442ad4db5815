/**
 * The x86 boot-time E820 table (arch/x86/kernel/e820.c, arch/x86/include/asm/e820/types.h) and the parts of
 * setup_arch that edit it before memblock sees it: the memmap=/mem= early parameters and trim_bios_range.
 *
 * A table is an array of entries in table order, exactly as `struct e820_table` holds them: the edit
 * functions append to it and leave zeroed entries behind (as the C does) until e820UpdateTable sorts, merges
 * and drops them. Every exported function is pure: it copies its input and returns a new table plus the
 * lines the kernel prints while doing it.
 *
 * Addresses and sizes are u64 in the kernel and doubles here, exact up to 2^53; ULLONG_MAX only ever appears
 * as "to the end of the address space" and is handled as such (see rangeEnd).
 */
import { ModelBug, UsageError } from "../../../errors.ts";

/** enum e820_type (arch/x86/include/asm/e820/types.h). Entries may carry any other u32 from firmware. */
export const E820Type = {
  RAM: 1,
  RESERVED: 2,
  ACPI: 3,
  NVS: 4,
  UNUSABLE: 5,
  PMEM: 7,
  PRAM: 12,
  SOFT_RESERVED: 0xefffffff,
  RESERVED_KERN: 128,
} as const;
export type E820Type = (typeof E820Type)[keyof typeof E820Type];

/** struct e820_entry: [addr, addr + size - 1] of `type`. */
export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** What an edit produced: the new table, the lines printed, and the size the C function returns. */
export interface E820Edit {
  table: E820Entry[];
  log: string[];
  /** real_updated_size / real_removed_size; for e820RangeAdd the size added (0 when the table was full). */
  size: number;
}

/** CONFIG_NODES_SHIFT=10 in the oracle's (Debian 6.1) config, so MAX_NUMNODES = 1024. */
const MAX_NUMNODES = 1024;
/** E820_MAX_ENTRIES_ZEROPAGE + 3 * MAX_NUMNODES */
export const E820_MAX_ENTRIES = 128 + 3 * MAX_NUMNODES;

const PAGE_SIZE = 4096;
/** The legacy PC BIOS hole, 640 KiB to 1 MiB (arch/x86/include/asm/e820/types.h). */
export const BIOS_BEGIN = 0x000a0000;
export const BIOS_END = 0x00100000;

/** 2^64 - 1 in C; its nearest double is 2^64. Only used as "the end of the address space". */
const ULLONG_MAX = 2 ** 64;
const ULLONG_MAX_BIG = 2n ** 64n - 1n;

const MAX_EXACT = Number.MAX_SAFE_INTEGER;

/** printk's `%#0<width>Lx`: 0x prefix (the kernel prints it even for 0) and zero padding to `width` chars. */
function hexPad(n: number | bigint, width: number): string {
  return "0x" + n.toString(16).padStart(width - 2, "0");
}

/**
 * The C clamp `if (size > ULLONG_MAX - start) size = ULLONG_MAX - start; end = start + size;` together with
 * the `end - 1` the callers print. A range that reaches ULLONG_MAX (mem=/memmap= limits pass ULLONG_MAX - x)
 * ends there, and the kernel prints its last byte as 0xfffffffffffffffe.
 */
function rangeEnd(start: number, size: number): { size: number; end: number; last: string } {
  if (start + size >= ULLONG_MAX) {
    return { size: ULLONG_MAX - start, end: ULLONG_MAX, last: hexPad(ULLONG_MAX_BIG - 1n, 10) };
  }
  const end = start + size;
  return { size, end, last: hexPad(end - 1, 10) };
}

function copyTable(table: readonly E820Entry[]): E820Entry[] {
  return table.map((e) => ({ addr: e.addr, size: e.size, type: e.type }));
}

// ref: arch/x86/kernel/e820.c e820_print_type
/** The type as e820__print_table and the update/remove debug lines print it. */
export function e820TypeName(type: number): string {
  switch (type) {
    case E820Type.RAM:
    case E820Type.RESERVED_KERN:
      return "usable";
    case E820Type.RESERVED:
      return "reserved";
    case E820Type.SOFT_RESERVED:
      return "soft reserved";
    case E820Type.ACPI:
      return "ACPI data";
    case E820Type.NVS:
      return "ACPI NVS";
    case E820Type.UNUSABLE:
      return "unusable";
    case E820Type.PMEM:
    case E820Type.PRAM:
      return `persistent (type ${type})`;
    default:
      return `type ${type}`;
  }
}

/**
 * The inverse of e820TypeName, for reading a printed table back. "usable" reads as RAM: RESERVED_KERN prints
 * the same and cannot be told apart. Returns undefined for text the kernel would never print.
 */
export function e820TypeFromName(name: string): number | undefined {
  let type: number | undefined;
  const m = /^(?:persistent \()?type (\d{1,10})\)?$/.exec(name);
  if (m) type = Number(m[1]);
  else {
    const known = [
      E820Type.RAM,
      E820Type.RESERVED,
      E820Type.SOFT_RESERVED,
      E820Type.ACPI,
      E820Type.NVS,
      E820Type.UNUSABLE,
    ] as const;
    type = known.find((t) => e820TypeName(t) === name);
  }
  // Round-trip check: rejects "type 1", "persistent (type 5)", "type 99999999999" and the like.
  if (type === undefined || type > 0xffffffff || e820TypeName(type) !== name) return undefined;
  return type;
}

// ref: arch/x86/kernel/e820.c e820_type_to_string
/** The name of the iomem resource e820__reserve_resources registers for an entry of this type. */
export function e820TypeToResourceName(type: number): string {
  switch (type) {
    case E820Type.RESERVED_KERN:
    case E820Type.RAM:
      return "System RAM";
    case E820Type.ACPI:
      return "ACPI Tables";
    case E820Type.NVS:
      return "ACPI Non-volatile Storage";
    case E820Type.UNUSABLE:
      return "Unusable memory";
    case E820Type.PRAM:
      return "Persistent Memory (legacy)";
    case E820Type.PMEM:
      return "Persistent Memory";
    case E820Type.RESERVED:
      return "Reserved";
    case E820Type.SOFT_RESERVED:
      return "Soft Reserved";
    default:
      return "Unknown E820 type";
  }
}

// ref: arch/x86/kernel/e820.c e820__print_table
/** The lines e820__print_table prints under the name `who` ("BIOS-e820", "user", "modified", ...). */
export function formatE820Table(table: readonly E820Entry[], who: string): string[] {
  return table.map(
    (e) => `${who}: [mem ${hexPad(e.addr, 18)}-${hexPad(e.addr + e.size - 1, 18)}] ${e820TypeName(e.type)}`,
  );
}

// ref: arch/x86/kernel/e820.c __e820__range_add
function __e820RangeAdd(table: E820Entry[], start: number, size: number, type: number, log: string[]): boolean {
  if (table.length >= E820_MAX_ENTRIES) {
    log.push(`too many entries; ignoring [mem ${hexPad(start, 10)}-${hexPad(start + size - 1, 10)}]`);
    return false;
  }
  table.push({ addr: start, size, type });
  return true;
}

// ref: arch/x86/kernel/e820.c e820__range_add
/** Appends an entry, unsorted and possibly overlapping: e820UpdateTable resolves that later. */
export function e820RangeAdd(table: readonly E820Entry[], start: number, size: number, type: number): E820Edit {
  const t = copyTable(table);
  const log: string[] = [];
  const added = __e820RangeAdd(t, start, size, type, log);
  return { table: t, log, size: added ? size : 0 };
}

// ref: arch/x86/kernel/e820.c __e820__range_update
function __e820RangeUpdate(
  table: E820Entry[],
  start: number,
  size: number,
  oldType: number,
  newType: number,
  log: string[],
): number {
  // The kernel BUG()s here; memmap= parsing refuses such input before it gets this far.
  if (oldType === newType) throw new ModelBug(`__e820__range_update: BUG_ON(old_type == new_type) for type ${oldType}`);
  const r = rangeEnd(start, size);
  size = r.size;
  const end = r.end;
  log.push(`e820: update [mem ${hexPad(start, 10)}-${r.last}] ${e820TypeName(oldType)} ==> ${e820TypeName(newType)}`);

  let realUpdatedSize = 0;
  // table.length is re-read every time round, as the C re-reads nr_entries: appended pieces are visited too.
  for (let i = 0; i < table.length; i++) {
    const entry = table[i]!;
    if (entry.type !== oldType) continue;
    const entryEnd = entry.addr + entry.size;

    // Completely covered by the new range: retype in place.
    if (entry.addr >= start && entryEnd <= end) {
      entry.type = newType;
      realUpdatedSize += entry.size;
      continue;
    }

    // The new range sits strictly inside the entry: keep the head, append the middle and the tail.
    if (entry.addr < start && entryEnd > end) {
      __e820RangeAdd(table, start, size, newType, log);
      __e820RangeAdd(table, end, entryEnd - end, entry.type, log);
      entry.size = start - entry.addr;
      realUpdatedSize += size;
      continue;
    }

    // Partial overlap at one end: append the overlap, shrink the entry to what is left.
    const finalStart = Math.max(start, entry.addr);
    const finalEnd = Math.min(end, entryEnd);
    if (finalStart >= finalEnd) continue;
    __e820RangeAdd(table, finalStart, finalEnd - finalStart, newType, log);
    realUpdatedSize += finalEnd - finalStart;
    entry.size -= finalEnd - finalStart;
    if (entry.addr < finalStart) continue;
    entry.addr = finalEnd;
  }
  return realUpdatedSize;
}

// ref: arch/x86/kernel/e820.c e820__range_update
/** Retypes the `oldType` parts of [start, start + size) to `newType`; the result needs e820UpdateTable. */
export function e820RangeUpdate(
  table: readonly E820Entry[],
  start: number,
  size: number,
  oldType: number,
  newType: number,
): E820Edit {
  const t = copyTable(table);
  const log: string[] = [];
  const updated = __e820RangeUpdate(t, start, size, oldType, newType, log);
  return { table: t, log, size: updated };
}

// ref: arch/x86/kernel/e820.c e820__range_remove
function __e820RangeRemove(
  table: E820Entry[],
  start: number,
  size: number,
  oldType: number,
  checkType: boolean,
  log: string[],
): number {
  const r = rangeEnd(start, size);
  size = r.size;
  const end = r.end;
  // Without a type the kernel still prints the space before the (absent) type name.
  log.push(`e820: remove [mem ${hexPad(start, 10)}-${r.last}] ${checkType ? e820TypeName(oldType) : ""}`);

  let realRemovedSize = 0;
  for (let i = 0; i < table.length; i++) {
    const entry = table[i]!;
    if (checkType && entry.type !== oldType) continue;
    const entryEnd = entry.addr + entry.size;

    // Completely covered: zero it (memset); e820__update_table drops empty entries.
    if (entry.addr >= start && entryEnd <= end) {
      realRemovedSize += entry.size;
      entry.addr = 0;
      entry.size = 0;
      entry.type = 0;
      continue;
    }

    // The removed range sits strictly inside the entry: keep the head, append the tail.
    if (entry.addr < start && entryEnd > end) {
      __e820RangeAdd(table, end, entryEnd - end, entry.type, log);
      entry.size = start - entry.addr;
      realRemovedSize += size;
      continue;
    }

    const finalStart = Math.max(start, entry.addr);
    const finalEnd = Math.min(end, entryEnd);
    if (finalStart >= finalEnd) continue;
    realRemovedSize += finalEnd - finalStart;
    entry.size -= finalEnd - finalStart;
    if (entry.addr < finalStart) continue;
    entry.addr = finalEnd;
  }
  return realRemovedSize;
}

/**
 * Removes [start, start + size) (only its `oldType` parts when checkType), leaving zeroed entries in place as
 * the kernel does. A size reaching past 2^64 - 1 is clamped to the end of the address space.
 */
export function e820RangeRemove(
  table: readonly E820Entry[],
  start: number,
  size: number,
  oldType: number,
  checkType: boolean,
): E820Edit {
  const t = copyTable(table);
  const log: string[] = [];
  const removed = __e820RangeRemove(t, start, size, oldType, checkType, log);
  return { table: t, log, size: removed };
}

/** struct change_member: a start or end address of one entry (by index into the input table). */
interface ChangeMember {
  entry: number;
  addr: number;
}

// ref: arch/x86/kernel/e820.c e820_nomerge
function e820Nomerge(type: number): boolean {
  // PRAM and soft-reserved ranges can mark NUMA/performance domain boundaries: never merge neighbours.
  return type === E820Type.PRAM || type === E820Type.SOFT_RESERVED;
}

// ref: arch/x86/kernel/e820.c e820__update_table
/**
 * The sanitizer: walks every start and end address in order, keeps the set of entries overlapping the
 * current point, and emits a new entry whenever the highest type in that set changes (or is a no-merge type).
 * Overlaps resolve to the highest-numbered type; touching same-type entries merge; empty entries vanish.
 * ret is -1, with the table unchanged, when the kernel bails out: fewer than 2 entries or a wrapping range.
 */
export function e820UpdateTable(table: readonly E820Entry[]): { ret: 0 | -1; table: E820Entry[] } {
  const entries = copyTable(table);
  if (entries.length < 2) return { ret: -1, table: entries };
  if (entries.length > E820_MAX_ENTRIES) throw new ModelBug(`e820__update_table: ${entries.length} entries`);

  // addr + size wrapping past 2^64 - 1 is unreasonable: leave the table alone.
  for (const e of entries) if (e.addr + e.size >= ULLONG_MAX) return { ret: -1, table: entries };

  // Every start and end, omitting empty entries.
  const changePoint: ChangeMember[] = [];
  entries.forEach((e, i) => {
    if (e.size !== 0) {
      changePoint.push({ entry: i, addr: e.addr });
      changePoint.push({ entry: i, addr: e.addr + e.size });
    }
  });

  // ref: arch/x86/kernel/e820.c cpcompare
  // By address; at equal addresses starts come before ends (so touching same-type entries merge).
  const isEnd = (cp: ChangeMember): number => (cp.addr !== entries[cp.entry]!.addr ? 1 : 0);
  changePoint.sort((a, b) => (a.addr !== b.addr ? (a.addr > b.addr ? 1 : -1) : isEnd(a) - isEnd(b)));

  const overlapList: number[] = [];
  let overlapEntries = 0;
  const newEntries: E820Entry[] = [];
  const slot = (n: number): E820Entry => {
    let e = newEntries[n];
    if (!e) {
      e = { addr: 0, size: 0, type: 0 };
      newEntries[n] = e;
    }
    return e;
  };
  let newNrEntries = 0;
  let lastType = 0; // undefined memory type
  let lastAddr = 0;

  for (const cp of changePoint) {
    if (cp.addr === entries[cp.entry]!.addr) {
      // A start: the entry joins the overlap set.
      overlapList[overlapEntries++] = cp.entry;
    } else {
      // An end: drop the entry from the set (order does not matter, so swap the last one in).
      for (let i = 0; i < overlapEntries; i++) {
        if (overlapList[i] === cp.entry) overlapList[i] = overlapList[overlapEntries - 1]!;
      }
      overlapEntries--;
    }

    // The highest type among overlapping entries wins (1 = usable; anything larger is less usable).
    let currentType = 0;
    for (let i = 0; i < overlapEntries; i++) {
      const t = entries[overlapList[i]!]!.type;
      if (t > currentType) currentType = t;
    }

    if (currentType !== lastType || e820Nomerge(currentType)) {
      if (lastType !== 0) {
        slot(newNrEntries).size = cp.addr - lastAddr;
        // Only a non-empty entry is kept; an empty one is overwritten by the next start.
        if (slot(newNrEntries).size !== 0) {
          if (++newNrEntries >= E820_MAX_ENTRIES) break;
        }
      }
      if (currentType !== 0) {
        slot(newNrEntries).addr = cp.addr;
        slot(newNrEntries).type = currentType;
        lastAddr = cp.addr;
      }
      lastType = currentType;
    }
  }

  return { ret: 0, table: copyTable(newEntries.slice(0, newNrEntries)) };
}

// ref: arch/x86/kernel/setup.c trim_bios_range
/**
 * Reserves the first page (BIOS-owned, rarely listed as such) and removes RAM claimed in the 640K-1M BIOS
 * hole, then sanitizes. Logs the two KERN_DEBUG lines every x86 boot prints.
 */
export function trimBiosRange(table: readonly E820Entry[]): { table: E820Entry[]; log: string[] } {
  const t = copyTable(table);
  const log: string[] = [];
  __e820RangeUpdate(t, 0, PAGE_SIZE, E820Type.RAM, E820Type.RESERVED, log);
  __e820RangeRemove(t, BIOS_BEGIN, BIOS_END - BIOS_BEGIN, E820Type.RAM, true, log);
  return { table: e820UpdateTable(t).table, log };
}

/* ------------------------------------------------------------------------------------------------------ */
/* memmap= and mem= (early parameters)                                                                      */
/* ------------------------------------------------------------------------------------------------------ */

/** One memmap= item or mem= value, already turned into the e820 edit parse_memmap_one/parse_memopt makes. */
export type MemmapArg =
  /** memmap=exactmap: empty the table, the following items build it from scratch. */
  | { kind: "exactmap"; text: string }
  /** nn@ss, nn#ss, nn$ss, nn!ss, nn%ss+type */
  | { kind: "add"; text: string; start: number; size: number; type: number }
  /** nn%ss-old+new */
  | { kind: "update"; text: string; start: number; size: number; oldType: number; newType: number }
  /** nn%ss-old (checkType) and nn%ss (any type) */
  | { kind: "remove"; text: string; start: number; size: number; oldType: number; checkType: boolean }
  /** memmap=nn or mem=nn: remove all RAM at and above nn. mem= also caps memory hotplug (max_mem_size). */
  | { kind: "limit"; text: string; size: number; param: "mem" | "memmap" };

// Kernel isspace(): ASCII whitespace (the kernel's ctype also counts Latin-1 NBSP, irrelevant in UTF-16 text).
function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";
}

// ref: lib/cmdline.c next_arg
/** Splits one `param[=val]` off the command line; double quotes may surround spaces and are stripped. */
function nextArg(args: string, pos: number): { param: string; val: string | null; next: number } {
  let inQuote = false;
  let quoted = false;
  let s = pos;
  if (args[s] === '"') {
    s++;
    inQuote = true;
    quoted = true;
  }
  let i = s;
  let equals = -1;
  for (; i < args.length; i++) {
    if (isSpace(args[i]) && !inQuote) break;
    // The C uses equals == 0 as "none", so a leading '=' does not split either.
    if (equals < 0 && args[i] === "=" && i > s) equals = i;
    if (args[i] === '"') inQuote = !inQuote;
  }
  let tokenEnd = i;
  // A quoted token loses its closing quote (the C overwrites args[i-1] with NUL).
  const closingQuote = i > s && args[i - 1] === '"';
  let param: string;
  let val: string | null;
  if (equals < 0) {
    if (quoted && closingQuote) tokenEnd = i - 1;
    param = args.slice(s, tokenEnd);
    val = null;
  } else {
    param = args.slice(s, equals);
    let v = equals + 1;
    if (args[v] === '"') {
      v++;
      if (closingQuote) tokenEnd = i - 1;
    } else if (quoted && closingQuote) tokenEnd = i - 1;
    val = args.slice(v, Math.max(v, tokenEnd));
  }
  let next = i < args.length ? i + 1 : i;
  while (isSpace(args[next])) next++;
  return { param, val, next };
}

// ref: kernel/params.c parse_args
/** The `param[=val]` pairs parse_early_param hands to do_early_param, in order, stopping at "--". */
function parseArgs(cmdline: string): Array<{ param: string; val: string | null }> {
  const out: Array<{ param: string; val: string | null }> = [];
  let pos = 0;
  while (isSpace(cmdline[pos])) pos++;
  while (pos < cmdline.length) {
    const a = nextArg(cmdline, pos);
    pos = a.next;
    // Everything after "--" is for init, not the kernel.
    if (a.val === null && a.param === "--") break;
    out.push({ param: a.param, val: a.val });
  }
  return out;
}

// ref: kernel/params.c parameq
/** Parameter names compare with '-' and '_' equivalent. */
function parameq(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] === "-" ? "_" : a[i];
    const y = b[i] === "-" ? "_" : b[i];
    if (x !== y) return false;
  }
  return true;
}

/** What simple_strtoull/memparse read: the value (exact, as a bigint), where they stopped, and digit count. */
export interface MemparseResult {
  value: bigint;
  end: number;
  digits: number;
}

// ref: lib/vsprintf.c simple_strtoull
/**
 * Base 0 as the kernel does it: "0x" followed by a hex digit means hex, a leading 0 means octal, else decimal.
 * No sign, no whitespace. Stops at the first character that is not a digit of the base.
 */
function simpleStrtoull(s: string, pos: number): MemparseResult {
  let base: bigint;
  let p = pos;
  if (s[p] === "0") {
    if ((s[p + 1] === "x" || s[p + 1] === "X") && /^[0-9a-fA-F]$/.test(s[p + 2] ?? "")) {
      base = 16n;
      p += 2;
    } else base = 8n;
  } else base = 10n;
  let value = 0n;
  let digits = 0;
  for (; p < s.length; p++) {
    const c = s[p]!.toLowerCase();
    let v: bigint;
    if (c >= "0" && c <= "9") v = BigInt(c.charCodeAt(0) - 48);
    else if (c >= "a" && c <= "f") v = BigInt(c.charCodeAt(0) - 87);
    else break;
    if (v >= base) break;
    value = value * base + v;
    digits++;
  }
  return { value, end: p, digits };
}

const MEM_SUFFIX_SHIFT: Record<string, bigint> = { k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n };

// ref: lib/cmdline.c memparse
/**
 * A number (simple_strtoull base 0) with an optional K/M/G/T/P/E suffix, either case. Beware: decimal stops
 * at a hex letter, so "1e" is 1 EiB while "0x1e" is 30. Values are kept exact (the kernel wraps at 2^64).
 */
export function memparse(s: string, pos = 0): MemparseResult {
  const r = simpleStrtoull(s, pos);
  const shift = MEM_SUFFIX_SHIFT[(s[r.end] ?? "").toLowerCase()];
  if (shift !== undefined) return { value: r.value * 2n ** shift, end: r.end + 1, digits: r.digits };
  return r;
}

/** For error messages: the character found, or "the end". */
function describeAt(s: string, pos: number): string {
  const c = s[pos];
  if (c === undefined) return "the end";
  if (c === "\\") return `'\\' (a GRUB escape? the kernel must see a bare character)`;
  return `'${c}'`;
}

/** A memparse'd number that must be present and exact as a double. */
function needNumber(bad: (reason: string) => UsageError, s: string, pos: number, what: string): MemparseResult & { n: number } {
  const r = memparse(s, pos);
  if (r.digits === 0) throw bad(`expected ${what} (a number with an optional K/M/G/T/P/E suffix) at ${describeAt(s, pos)}`);
  if (r.value > BigInt(MAX_EXACT)) {
    throw bad(`${what} ${s.slice(pos, r.end)} is beyond 2^53, where zonedev's physical addresses stop being exact`);
  }
  return { ...r, n: Number(r.value) };
}

/** An e820 type number after '-' or '+' in the % form (simple_strtoull base 0, stored in a u32 enum). */
function needType(bad: (reason: string) => UsageError, s: string, pos: number, what: string): MemparseResult & { n: number } {
  const r = simpleStrtoull(s, pos);
  if (r.digits === 0) throw bad(`expected the ${what} e820 type number at ${describeAt(s, pos)}`);
  if (r.value === 0n) throw bad(`the ${what} type is 0, which the kernel reads as "no type given"`);
  if (r.value > 0xffffffffn) throw bad(`the ${what} type ${s.slice(pos, r.end)} does not fit the kernel's 32-bit e820 type`);
  return { ...r, n: Number(r.value) };
}

// ref: arch/x86/kernel/e820.c parse_memmap_one
/**
 * One memmap= item. Stricter than the kernel, which returns -EINVAL (silently ignored) for a malformed item
 * after having applied whatever it parsed: here a malformed item is a UsageError naming it.
 */
function parseMemmapOne(p: string): MemmapArg {
  const text = `memmap=${p}`;
  const bad = (reason: string): UsageError => new UsageError("append", `${text}: ${reason}`);

  // strncmp(p, "exactmap", 8): anything starting so counts.
  if (p.startsWith("exactmap")) return { kind: "exactmap", text };

  if (p === "") throw bad("empty item (the kernel ignores it)");
  const mem = needNumber(bad, p, 0, "a size");
  const memSize = mem.n;
  const op = p[mem.end];

  const trailing = (at: number, applied: string): void => {
    if (at < p.length) {
      throw bad(`unexpected ${describeAt(p, at)} after ${applied} (the kernel would apply what it parsed and silently ignore the rest)`);
    }
  };
  const checkRange = (start: number): void => {
    if (start + memSize > MAX_EXACT) throw bad("the range ends beyond 2^53, where zonedev's addresses stop being exact");
  };

  const addTypes: Record<string, number> = {
    "@": E820Type.RAM,
    "#": E820Type.ACPI,
    $: E820Type.RESERVED,
    "!": E820Type.PRAM,
  };
  const addType = op === undefined ? undefined : addTypes[op];
  if (addType !== undefined) {
    const at = needNumber(bad, p, mem.end + 1, `a start address after '${op}'`);
    trailing(at.end, "the start address");
    checkRange(at.n);
    return { kind: "add", text, start: at.n, size: memSize, type: addType };
  }

  if (op === "%") {
    const at = needNumber(bad, p, mem.end + 1, "a start address after '%'");
    checkRange(at.n);
    let q = at.end;
    let from = 0;
    let to = 0;
    if (p[q] === "-") {
      const r = needType(bad, p, q + 1, "old");
      from = r.n;
      q = r.end;
    }
    if (p[q] === "+") {
      const r = needType(bad, p, q + 1, "new");
      to = r.n;
      q = r.end;
    }
    // The kernel checks this one before acting: trailing junk means the item is ignored entirely.
    if (q < p.length) throw bad(`unexpected ${describeAt(p, q)}: expected -oldtype, +newtype or the end (the kernel ignores the item)`);
    if (from && to) {
      if (from === to) throw bad(`old and new type are both ${from}: the kernel hits BUG_ON(old_type == new_type) and dies`);
      return { kind: "update", text, start: at.n, size: memSize, oldType: from, newType: to };
    }
    if (to) return { kind: "add", text, start: at.n, size: memSize, type: to };
    if (from) return { kind: "remove", text, start: at.n, size: memSize, oldType: from, checkType: true };
    return { kind: "remove", text, start: at.n, size: memSize, oldType: 0, checkType: false };
  }

  // A bare size: keep RAM below it.
  trailing(mem.end, "the size");
  return { kind: "limit", text, size: memSize, param: "memmap" };
}

// ref: arch/x86/kernel/e820.c parse_memmap_opt
function parseMemmapOpt(str: string): MemmapArg[] {
  // Comma-separated items, each parsed on its own.
  return str.split(",").map(parseMemmapOne);
}

// ref: arch/x86/kernel/e820.c parse_memopt
function parseMemopt(p: string | null): MemmapArg {
  if (p === null) throw new UsageError("append", "mem: needs a value, mem=nn[KMG] (the kernel warns \"Malformed early option 'mem'\")");
  const text = `mem=${p}`;
  const bad = (reason: string): UsageError => new UsageError("append", `${text}: ${reason}`);
  if (p === "nopentium") throw bad("only supported on x86_32; the x86_64 kernel ignores it");
  const r = needNumber(bad, p, 0, "a size");
  // memparse's end is not checked by the kernel: "mem=4Gxyz" silently means 4G. Refuse the ambiguity.
  if (r.end < p.length) throw bad(`unexpected ${describeAt(p, r.end)} after the size (the kernel would ignore it)`);
  // "Don't remove all memory when getting mem={invalid}"
  if (r.n === 0) throw bad("a size of 0 is refused by the kernel (\"Malformed early option 'mem'\")");
  return { kind: "limit", text, size: r.n, param: "mem" };
}

/**
 * Every memmap= and mem= on a kernel command line, in command-line order (the order parse_early_param applies
 * them in), each comma-separated memmap= item on its own. Throws UsageError("append", ...) naming a bad item.
 */
export function parseMemmapArgs(cmdline: string): MemmapArg[] {
  const out: MemmapArg[] = [];
  for (const { param, val } of parseArgs(cmdline)) {
    if (parameq(param, "memmap")) {
      // The kernel calls parse_memmap_opt(NULL) and does nothing.
      if (val === null) throw new UsageError("append", "memmap: needs a value, memmap=nn[KMG]<op>ss[KMG]");
      out.push(...parseMemmapOpt(val));
    } else if (parameq(param, "mem")) {
      out.push(parseMemopt(val));
    }
  }
  return out;
}

/** The table after the early parameters, as e820__finish_early_params leaves and prints it. */
export interface MemmapResult {
  table: E820Entry[];
  /** Whether any memmap=/mem= took effect: then the kernel prints the "user-defined physical RAM map". */
  userdef: boolean;
  /** The printed lines, in order: edit debug lines, then (userdef) the user-defined table. */
  log: string[];
  /** mem=nn sets max_mem_size (CONFIG_MEMORY_HOTPLUG): hot-added memory must end at or below it. */
  maxMemSize?: number;
}

// ref: arch/x86/kernel/e820.c e820__finish_early_params
/**
 * Applies parsed memmap=/mem= edits in order to the table e820__memory_setup printed ("BIOS-e820"), then
 * sanitizes and prints it as "user" when any took effect. The kernel panics ("Invalid user supplied memory
 * map") if the sanitizer bails out, e.g. memmap=exactmap with fewer than two entries: that is a UsageError.
 */
export function applyMemmapArgs(firmwareTable: readonly E820Entry[], args: readonly MemmapArg[]): MemmapResult {
  let table = copyTable(firmwareTable);
  const log: string[] = [];
  let userdef = false;
  let maxMemSize: number | undefined;

  for (const a of args) {
    userdef = true;
    switch (a.kind) {
      case "exactmap":
        table = [];
        break;
      case "add":
        __e820RangeAdd(table, a.start, a.size, a.type, log);
        break;
      case "update":
        __e820RangeUpdate(table, a.start, a.size, a.oldType, a.newType, log);
        break;
      case "remove":
        __e820RangeRemove(table, a.start, a.size, a.oldType, a.checkType, log);
        break;
      case "limit":
        __e820RangeRemove(table, a.size, ULLONG_MAX - a.size, E820Type.RAM, true, log);
        if (a.param === "mem") maxMemSize = a.size;
        break;
    }
  }

  if (userdef) {
    const r = e820UpdateTable(table);
    if (r.ret < 0) {
      const live = table.filter((e) => e.size !== 0).length;
      throw new UsageError(
        "append",
        `${args.map((a) => a.text).join(" ")}: the kernel panics "Invalid user supplied memory map": ` +
          `the resulting table has ${live} entr${live === 1 ? "y" : "ies"} and e820__update_table needs at least 2`,
      );
    }
    table = r.table;
    log.push("user-defined physical RAM map:", ...formatE820Table(table, "user"));
  }
  const result: MemmapResult = { table, userdef, log };
  if (maxMemSize !== undefined) result.maxMemSize = maxMemSize;
  return result;
}
