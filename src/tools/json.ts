/**
 * JSON as ndctl and daxctl print it: json-c's JSON_C_TO_STRING_PRETTY (two-space indent, `"key":value`
 * without spaces, `[`/`{` then a newline, empty containers as `[\n]`, `/` escaped as `\/`) and ndctl's
 * human-readable size serializer (util/json.c display_size, used with UTIL_JSON_HUMAN).
 */

/** A size that prints as ndctl's "1006.00 MiB (1054.87 MB)" when the output is human-readable. */
export class JsonSize {
  constructor(
    readonly bytes: number,
    readonly human: boolean,
  ) {}
}

export type JsonValue = string | number | bigint | boolean | JsonSize | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

const SZ_1K = 1024;
const SZ_1M = 1024 * SZ_1K;
const SZ_1G = 1024 * SZ_1M;
const SZ_1T = 1024 * SZ_1G;

/** ndctl util/json.c display_size: below 5000 KiB the number, else IEC and JEDEC in hundredths, rounded. */
// ref: ndctl util/json.c display_size (adapted from mdadm human_size_brief)
export function humanSize(bytes: number): string {
  if (bytes < 5000 * SZ_1K) return String(bytes);
  const b = BigInt(bytes);
  const cent = (unit: bigint) => (b * 200n) / unit;
  const two = (c: bigint) => `${c / 100n}.${String(c % 100n).padStart(2, "0")}`;
  let iec: string;
  let jedec: string;
  if (bytes < 2 * SZ_1G) {
    iec = `${two((cent(BigInt(SZ_1M)) + 1n) / 2n)} MiB`;
    jedec = `${two((b / (1000000n / 200n) + 1n) / 2n)} MB`;
  } else if (bytes < 2 * SZ_1T) {
    iec = `${two((cent(BigInt(SZ_1G)) + 1n) / 2n)} GiB`;
    jedec = `${two((b / (1000000000n / 200n) + 1n) / 2n)} GB`;
  } else {
    iec = `${two((cent(BigInt(SZ_1T)) + 1n) / 2n)} TiB`;
    jedec = `${two((b / (1000000000000n / 200n) + 1n) / 2n)} TB`;
  }
  return `"${iec} (${jedec})"`;
}

/** json-c's string escaping (json_escape_str): control characters, quote, backslash and slash. */
function jsonEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "/") out += "\\/";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20) out += `\\u00${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `"${out}"`;
}

const indent = (level: number) => "  ".repeat(level);

/** json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY), without the trailing newline. */
// ref: json-c json_object.c json_object_object_to_json_string, json_object_array_to_json_string
export function jsoncPretty(v: JsonValue, level = 0): string {
  if (v instanceof JsonSize) return v.human ? humanSize(v.bytes) : String(v.bytes);
  if (typeof v === "string") return jsonEscape(v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) {
    const items = v.map((x) => `${indent(level + 1)}${jsoncPretty(x, level + 1)}`);
    return `[\n${items.join(",\n")}${items.length ? "\n" : ""}${indent(level)}]`;
  }
  const items = Object.entries(v).map(([key, x]) => `${indent(level + 1)}${jsonEscape(key)}:${jsoncPretty(x, level + 1)}`);
  return `{\n${items.join(",\n")}${items.length ? "\n" : ""}${indent(level)}}`;
}

/** ndctl util/json.c util_display_json_array: human output of a single element prints the element alone. */
export function displayJsonArray(items: JsonValue[], human: boolean): string {
  if (items.length > 1 || !human) return `${jsoncPretty(items)}\n`;
  if (items.length === 1) return `${jsoncPretty(items[0]!)}\n`;
  return "";
}

/** A command line option as ndctl's parse-options knows it. */
export interface OptionSpec {
  short?: string;
  long: string;
  /** Takes a value (`-m fsdax`, `-mfsdax`, `--mode=fsdax`, `--mode fsdax`). */
  value?: boolean;
  /** OPT_INCR (`-vvv`). */
  incr?: boolean;
}

export type ParsedOptions = { opts: Map<string, string | number | true>; args: string[] } | { error: string };

/**
 * ndctl's util/parse-options.c as far as these commands need it: combined short switches, values attached or
 * separate, `--name=value`, `--no-name` for booleans, `--` ends options; arguments may come before options.
 */
// ref: ndctl util/parse-options.c parse_short_opt, parse_long_opt, get_value
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[]): ParsedOptions {
  const opts = new Map<string, string | number | true>();
  const args: string[] = [];
  const set = (s: OptionSpec, value: string | undefined): string | null => {
    if (s.incr) opts.set(s.long, ((opts.get(s.long) as number | undefined) ?? 0) + 1);
    else if (s.value) {
      if (value === undefined) return s.short && !s.long ? `switch \`${s.short}' requires a value` : `option \`${s.long}' requires a value`;
      opts.set(s.long, value);
    } else opts.set(s.long, true);
    return null;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      let s = specs.find((x) => x.long === name);
      if (!s && name.startsWith("no-")) {
        const neg = specs.find((x) => x.long === name.slice(3) && !x.value);
        if (neg) {
          opts.delete(neg.long);
          continue;
        }
      }
      if (!s) s = specs.find((x) => x.long.startsWith(name) && name.length > 0);
      if (!s) return { error: `unknown option \`${name}'` };
      if (!s.value && eq >= 0) return { error: `option \`${s.long}' takes no value` };
      const err = set(s, eq >= 0 ? a.slice(eq + 1) : s.value ? argv[++i] : undefined);
      if (err) return { error: err };
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const s = specs.find((x) => x.short === a[j]);
        if (!s) return { error: `unknown switch \`${a[j]}'` };
        if (s.value) {
          const rest = a.slice(j + 1);
          const value = rest.length ? rest : argv[++i];
          if (value === undefined) return { error: `switch \`${s.short}' requires a value` };
          opts.set(s.long, value);
          break;
        }
        set(s, undefined);
      }
      continue;
    }
    args.push(a);
  }
  return { opts, args };
}
