/**
 * `ndctl` as users type it: argument parsing (util/parse-options.c rules), the model's operations
 * (src/kernel/drivers/nvdimm/ndctl.ts) and the JSON they print (ndctl/json.c, ndctl/list.c, rendered by
 * json-c). stdout and stderr come back together, as a terminal shows them; rc is the exit status.
 *
 * ndctl v76 (Debian 12, the oracle's guest). create-namespace prints human-readable sizes because its stdout
 * is a terminal there (isatty(1)); `ndctl list` only with -u.
 */
import type { DaxDevInfo } from "../kernel/drivers/dax/daxctl.ts";
import {
  type CreateNamespaceOptions,
  createNamespace,
  type DimmInfo,
  destroyNamespace,
  disableNamespace,
  enableNamespace,
  type NamespaceInfo,
  type NdctlMode,
  ndctlList,
  type RegionInfo,
} from "../kernel/drivers/nvdimm/ndctl.ts";
import { type DimmAction, dimmAction, xableRegion } from "../kernel/drivers/nvdimm/ndctl_dimm.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { displayJsonArray, type JsonObject, JsonSize, type JsonValue, jsoncPretty, type OptionSpec, parseOptions } from "./json.ts";

export interface ToolOutput {
  stdout: string;
  rc: number;
}

/** util/json.h UTIL_JSON_* as the renderers need them. */
export interface JsonFlags {
  idle?: boolean;
  dax?: boolean;
  human?: boolean;
  verbose?: boolean;
  capabilities?: boolean;
  /** daxctl -M */
  mappings?: boolean;
  /** ndctl list -D: regions show their mappings. */
  dimms?: boolean;
  /** ndctl list -d DIMM */
  dimmFilter?: string;
  /** ndctl list -c */
  configured?: boolean;
}

/** An exit status as the shell sees a negative errno returned from main. */
export const exitStatus = (rc: number): number => ((rc % 256) + 256) % 256;

/** ndctl/daxctl parse_size64: a number (strtoull base 0) with an optional k/m/g/t (binary) suffix. */
// ref: ndctl util/size.c __parse_size64
export function parseSize64(s: string): number | null {
  const m = /^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)([kmgt]?)$/i.exec(s);
  if (!m) return null;
  const base = m[1]!.toLowerCase().startsWith("0x") ? Number.parseInt(m[1]!.slice(2), 16) : m[1]!.length > 1 && m[1]!.startsWith("0") ? Number.parseInt(m[1]!, 8) : Number(m[1]);
  const shift = { "": 0, k: 10, m: 20, g: 30, t: 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return base * 2 ** shift;
}

/** util/parse-options.c usage_with_options without the option table: the error, the usage line, exit 129. */
export function usageError(error: string | null, usage: string): ToolOutput {
  return { stdout: `${error === null ? "" : `  Error: ${error}\n`}\n usage: ${usage}\n\n`, rc: 129 };
}

const size = (bytes: number, f: JsonFlags) => new JsonSize(bytes, f.human ?? false);

// ---------------------------------------------------------------------------------------------------------
// JSON renderers

/** daxctl/json.c util_daxctl_dev_to_json */
export function daxDevJson(d: DaxDevInfo, f: JsonFlags): JsonObject {
  const o: JsonObject = { chardev: d.chardev, size: size(d.size, f) };
  if (d.targetNode !== undefined) o.target_node = d.targetNode;
  if (d.align !== undefined) o.align = size(d.align, f);
  o.mode = d.mode;
  if (d.onlineMemblocks !== undefined) o.online_memblocks = d.onlineMemblocks;
  if (d.totalMemblocks !== undefined) o.total_memblocks = d.totalMemblocks;
  if (d.movable !== undefined) o.movable = d.movable;
  if (d.state) o.state = d.state;
  if (f.mappings && d.mappings.length) {
    o.mappings = d.mappings.map((m) => ({ page_offset: m.pageOffset, start: m.start, end: m.end, size: size(m.size, f) }));
  }
  return o;
}

/** daxctl/json.c util_daxctl_devs_to_list: zero-size devices only with -i. */
export function daxDevsJson(devs: readonly DaxDevInfo[], f: JsonFlags): JsonObject[] {
  return devs.filter((d) => f.idle || d.size > 0).map((d) => daxDevJson(d, f));
}

/** ndctl/json.c util_namespace_to_json */
export function namespaceJson(n: NamespaceInfo, f: JsonFlags): JsonObject {
  const o: JsonObject = { dev: n.dev };
  if (n.mode) o.mode = n.mode;
  if (n.map !== undefined && n.mode !== "sector" && n.mode !== "raw") o.map = n.map;
  if (n.size !== undefined) o.size = size(n.size, f);
  if (n.uuid !== undefined) o.uuid = n.uuid;
  if (n.rawUuid !== undefined && f.verbose) o.raw_uuid = n.rawUuid;
  if (n.daxRegion) {
    const r = n.daxRegion;
    if (f.dax) {
      const region: JsonObject = { id: r.id, size: size(r.size, f), align: r.align };
      const devices = daxDevsJson(r.devices, { ...f, mappings: false });
      if (devices.length) region.devices = devices;
      o.daxregion = region;
    } else if (r.devices[0]) o.chardev = r.devices[0].chardev;
  }
  if (n.sectorSize !== undefined) o.sector_size = n.sectorSize;
  if (n.align) o.align = n.align;
  if (n.blockdev) o.blockdev = n.blockdev;
  if (n.state) o.state = n.state;
  if (n.name) o.name = n.name;
  if (n.numaNode >= 0 && f.verbose) o.numa_node = n.numaNode;
  if (n.targetNode !== undefined && n.targetNode >= 0 && f.verbose) o.target_node = n.targetNode;
  return o;
}

/** util_json_object_hex: the number, or "0x…" with -u. */
// ref: ndctl util/json.c util_json_object_hex
function hexObj(v: number | bigint, f: JsonFlags): JsonValue {
  return f.human ? `0x${v.toString(16)}` : v;
}

/** util_dimm_filter: "all", the name, or its number. */
// ref: ndctl/filter.c util_dimm_filter
function dimmMatches(ident: string, dimm: string): boolean {
  if (ident === "all") return true;
  return ident.split(" ").some((n) => n === "all" || n === dimm || (/^(nmem)?\d+$/.test(n) && `nmem${Number(n.replace(/^nmem/, ""))}` === dimm));
}

/** ndctl/json.c util_dimm_to_json */
export function dimmJson(d: DimmInfo, f: JsonFlags): JsonObject {
  const o: JsonObject = { dev: d.dev };
  if (d.id !== undefined) o.id = d.id;
  if (d.handle !== undefined) o.handle = hexObj(d.handle, f);
  if (d.physId !== undefined) o.phys_id = hexObj(d.physId, f);
  if (d.state) o.state = d.state;
  return o;
}

/** ndctl/list.c region_to_json */
export function regionJson(r: RegionInfo, f: JsonFlags): JsonObject {
  const o: JsonObject = {
    dev: r.dev,
    size: size(r.size, f),
    align: size(r.align, f),
    available_size: size(r.availableSize, f),
    max_available_extent: size(r.maxAvailableExtent, f),
    type: r.type,
  };
  if (r.numaNode !== undefined && r.numaNode >= 0 && f.verbose) o.numa_node = r.numaNode;
  if (r.targetNode !== undefined && r.targetNode >= 0 && f.verbose) o.target_node = r.targetNode;
  if (r.isetId !== undefined) o.iset_id = hexObj(r.isetId, f);
  if (f.dimms) {
    const mappings = r.mappings.filter((m) => (f.dimmFilter === undefined || dimmMatches(f.dimmFilter, m.dimm)) && (f.configured || f.idle || m.dimmEnabled));
    if (mappings.length) o.mappings = mappings.map((m): JsonObject => ({ dimm: m.dimm, offset: hexObj(m.offset, f), length: hexObj(m.length, f), position: m.position }));
  }
  if (r.state) o.state = r.state;
  if (f.capabilities) {
    o.capabilities = r.capabilities.map((c): JsonObject => (c.mode === "sector" ? { mode: c.mode, sector_sizes: c.sectorSizes } : { mode: c.mode, alignments: c.alignments }));
  }
  o.persistence_domain = r.persistenceDomain;
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// Commands

const MODES: Record<string, NdctlMode> = { raw: "raw", sector: "sector", safe: "sector", fsdax: "fsdax", memory: "fsdax", devdax: "devdax", dax: "devdax" };

const CREATE_OPTS: OptionSpec[] = [
  { short: "b", long: "bus", value: true },
  { short: "r", long: "region", value: true },
  { short: "v", long: "verbose" },
  { short: "e", long: "reconfig", value: true },
  { short: "u", long: "human" },
  { short: "f", long: "force" },
  { short: "s", long: "size", value: true },
  { short: "m", long: "mode", value: true },
  { short: "M", long: "map", value: true },
  { short: "l", long: "sector-size", value: true },
  { short: "a", long: "align", value: true },
  { short: "t", long: "type", value: true },
  { short: "L", long: "autolabel" },
  { short: "R", long: "autorecover" },
];

// ref: ndctl/namespace.c cmd_create_namespace, parse_namespace_options
function createNamespaceCmd(k: Kernel, argv: readonly string[]): ToolOutput {
  const usage = "ndctl create-namespace [<options>]";
  const p = parseOptions(argv, CREATE_OPTS);
  if ("error" in p) return usageError(p.error, usage);
  const str = (name: string) => p.opts.get(name) as string | undefined;
  const errors: string[] = [];
  const o: CreateNamespaceOptions = { force: p.opts.has("force") };
  for (const a of p.args) errors.push(`unknown extra parameter "${a}"`);
  const reconfig = str("reconfig");
  if (reconfig !== undefined) o.namespace = reconfig;
  const region = str("region");
  if (region !== undefined && region !== "all") o.region = region;
  const type = str("type");
  if (type !== undefined && type !== "pmem" && type !== "blk") errors.push(`invalid type '${type}', must be either 'pmem' or 'blk'`);
  const mode = str("mode");
  if (mode !== undefined) {
    const m = MODES[mode];
    if (!Object.hasOwn(MODES, mode) || m === undefined) errors.push(`invalid mode '${mode}'`);
    else o.mode = m;
  }
  const map = str("map");
  if (map !== undefined) {
    if (map === "mem" || map === "dev") o.map = map;
    else errors.push(`invalid map location '${map}'`);
    if (reconfig === undefined && o.mode && o.mode !== "fsdax" && o.mode !== "devdax") errors.push("--map only valid for an devdax mode pmem namespace");
  } else if (reconfig === undefined) o.map = "dev";
  const sizeS = str("size");
  if (sizeS !== undefined) {
    const v = parseSize64(sizeS);
    if (v === null) errors.push(`failed to parse namespace size '${sizeS}'`);
    else o.size = v;
  }
  const alignS = str("align");
  if (alignS !== undefined) {
    const v = parseSize64(alignS);
    if (v === null) errors.push(`failed to parse namespace alignment '${alignS}'`);
    else if (v < 4096 || (v & (v - 1)) !== 0) errors.push("align must be a power-of-2 greater than 4096");
    else o.align = v;
  }
  const ss = str("sector-size");
  if (ss !== undefined) {
    const v = parseSize64(ss);
    if (v === null) errors.push(`invalid sector size: ${ss}`);
    else o.sectorSize = v;
  }
  if (errors.length) return { stdout: `${errors.map((e) => `  Error: ${e}\n\n`).join("")}\n usage: ${usage}\n\n`, rc: 129 };
  const r = createNamespace(k, o);
  // namespace.c's error("…\n") lines end in a blank line: report() adds its own newline.
  let stdout = r.stderr.map((l) => (/^ {2}(Error|Warning): /.test(l) ? `${l}\n\n` : `${l}\n`)).join("");
  // isatty(1): the oracle's guest runs ndctl on its console, so sizes are human-readable.
  if (r.rc === 0 && r.out) stdout += `${jsoncPretty(namespaceJson(r.out, { dax: true, human: true }))}\n`;
  return { stdout, rc: exitStatus(r.rc) };
}

function namespaceAction(
  k: Kernel,
  argv: readonly string[],
  verb: "destroy" | "disable" | "enable",
  op: (k: Kernel, ns: string, force: boolean) => { rc: number; stderr: string[] },
): ToolOutput {
  const usage = `ndctl ${verb}-namespace <namespace> [<options>]`;
  const specs: OptionSpec[] = [
    { short: "b", long: "bus", value: true },
    { short: "r", long: "region", value: true },
    { short: "v", long: "verbose" },
  ];
  if (verb === "destroy") specs.push({ short: "f", long: "force" });
  const p = parseOptions(argv, specs);
  if ("error" in p) return usageError(p.error, usage);
  const errors: string[] = [];
  if (p.args.length === 0) errors.push(`specify a namespace to ${verb}, or "all"`);
  for (const a of p.args.slice(1)) errors.push(`unknown extra parameter "${a}"`);
  if (errors.length) return { stdout: `${errors.map((e) => `  Error: ${e}\n\n`).join("")}\n usage: ${usage}\n\n`, rc: 129 };
  const r = op(k, p.args[0]!, p.opts.has("force"));
  return { stdout: r.stderr.map((l) => `${l}\n`).join(""), rc: exitStatus(r.rc) };
}

const LIST_OPTS: OptionSpec[] = [
  { short: "b", long: "bus", value: true },
  { short: "r", long: "region", value: true },
  { short: "d", long: "dimm", value: true },
  { short: "n", long: "namespace", value: true },
  { short: "m", long: "mode", value: true },
  { short: "t", long: "type", value: true },
  { short: "U", long: "numa-node", value: true },
  { short: "B", long: "buses" },
  { short: "D", long: "dimms" },
  { short: "F", long: "firmware" },
  { short: "H", long: "health" },
  { short: "R", long: "regions" },
  { short: "N", long: "namespaces" },
  { short: "X", long: "device-dax" },
  { short: "C", long: "capabilities" },
  { short: "i", long: "idle" },
  { short: "c", long: "configured" },
  { short: "M", long: "media-errors" },
  { short: "u", long: "human" },
  { short: "v", long: "verbose", incr: true },
];

/** util_nsmode for `ndctl list -m` */
const LIST_MODES: Record<string, NdctlMode> = { ...MODES };

// ref: ndctl/list.c cmd_list, list_display, filter_bus, filter_dimm, filter_region, filter_namespace; ndctl/filter.c ndctl_filter_walk
function listCmd(k: Kernel, argv: readonly string[]): ToolOutput {
  const usage = "ndctl list [<options>]";
  const p = parseOptions(argv, LIST_OPTS);
  if ("error" in p) return usageError(p.error, usage);
  if (p.args.length) return { stdout: `${p.args.map((a) => `  Error: unknown parameter "${a}"\n\n`).join("")}\n usage: ${usage}\n\n`, rc: 129 };
  const has = (n: string) => p.opts.has(n);
  const str = (n: string) => p.opts.get(n) as string | undefined;
  const l = { buses: has("buses"), dimms: has("dimms"), regions: has("regions"), namespaces: has("namespaces"), dax: has("device-dax"), idle: has("idle"), capabilities: has("capabilities"), configured: has("configured") };
  const numFlags = () => Number(l.buses) + Number(l.dimms) + Number(l.regions) + Number(l.namespaces);
  let modeFilter = str("mode");
  if (numFlags() === 0) {
    l.buses = str("bus") !== undefined;
    l.regions = str("region") !== undefined;
    l.dimms = str("dimm") !== undefined;
    if (l.dax && modeFilter === undefined) modeFilter = "dax";
  }
  const verbose = (p.opts.get("verbose") as number | undefined) ?? 0;
  if (verbose >= 3) {
    l.idle = true;
    l.capabilities = true;
  }
  if (verbose >= 2) {
    l.dimms = true;
    l.buses = true;
    l.regions = true;
  }
  if (verbose >= 1) {
    l.namespaces = true;
    l.dax = true;
  }
  if (numFlags() === 0) l.namespaces = true;
  const dimmFilter = str("dimm");
  const f: JsonFlags = { idle: l.idle, dax: l.dax, human: has("human"), verbose: verbose > 0, capabilities: l.capabilities, dimms: l.dimms, dimmFilter, configured: l.configured };
  let nsMode: NdctlMode | undefined;
  if (modeFilter !== undefined) {
    nsMode = LIST_MODES[modeFilter];
    if (!Object.hasOwn(LIST_MODES, modeFilter) || nsMode === undefined) return { stdout: `  Error: invalid mode: '${modeFilter}'\n\n`, rc: exitStatus(-22) };
  }
  const busFilter = str("bus");
  const regionFilter = str("region");
  const nsFilter = str("namespace");
  const matches = (filter: string | undefined, dev: string, id: string) => filter === undefined || filter === "all" || filter === dev || filter === id;
  const dimmOk = (name: string) => dimmFilter === undefined || dimmMatches(dimmFilter, name);

  let jbuses: JsonObject[] | null = null;
  let jdimms: JsonObject[] | null = null;
  let jregions: JsonObject[] | null = null;
  let jnamespaces: JsonObject[] | null = null;
  for (const bus of ndctlList(k)) {
    if (!matches(busFilter, bus.dev, bus.dev.replace(/^ndbus/, "")) && busFilter !== bus.provider) continue;
    // util_bus_filter_by_dimm / _by_region: the bus must hold the named DIMM / region.
    if (dimmFilter !== undefined && !bus.dimms.some((d) => dimmOk(d.dev))) continue;
    // filter_bus: objects below a new bus start over.
    if (jbuses) {
      jdimms = null;
      jregions = null;
      jnamespaces = null;
    }
    let jbus: JsonObject | null = null;
    let jregion: JsonObject | null = null;
    if (l.buses) {
      jbus = { provider: bus.provider, dev: bus.dev };
      jbuses ??= [];
      jbuses.push(jbus);
    }
    if (l.dimms) {
      for (const dimm of bus.dimms) {
        if (!dimmOk(dimm.dev)) continue;
        if (!l.configured && !l.idle && dimm.state === "disabled") continue;
        if (!jdimms) {
          jdimms = [];
          if (jbus) jbus.dimms = jdimms;
        }
        jdimms.push(dimmJson(dimm, f));
      }
    }
    for (const region of bus.regions) {
      if (!matches(regionFilter, region.dev, region.dev.replace(/^region/, ""))) continue;
      if (dimmFilter !== undefined && !region.mappings.some((m) => dimmOk(m.dimm))) continue;
      if (l.regions && (l.configured || l.idle || region.state !== "disabled")) {
        if (!jregions) {
          jregions = [];
          if (jbus) jbus.regions = jregions;
        }
        jregion = regionJson(region, f);
        jregions.push(jregion);
        jnamespaces = null;
      }
      if (!l.namespaces) continue;
      for (const ns of region.namespaces) {
        if (!matches(nsFilter, ns.dev, ns.dev.replace(/^namespace/, ""))) continue;
        if (nsMode !== undefined && ns.mode !== nsMode) continue;
        const active = ns.state !== "disabled";
        if (!active && !l.idle && !(l.configured && (ns.size ?? 0) > 0)) continue;
        if (!jnamespaces) {
          jnamespaces = [];
          const container = jregion ?? jbus;
          if (container) container.namespaces = jnamespaces;
        }
        jnamespaces.push(namespaceJson(ns, f));
      }
    }
  }
  const human = f.human ?? false;
  let stdout = "";
  if (jbuses) stdout = displayJsonArray(jbuses, human);
  else if (Number(jdimms !== null) + Number(jregions !== null) + Number(jnamespaces !== null) > 1) {
    const platform: JsonObject = {};
    if (jdimms) platform.dimms = jdimms;
    if (jregions) platform.regions = jregions;
    if (jnamespaces && !jregions) platform.namespaces = jnamespaces;
    stdout = `${jsoncPretty(platform)}\n`;
  } else if (jdimms) stdout = displayJsonArray(jdimms, human);
  else if (jregions) stdout = displayJsonArray(jregions, human);
  else if (jnamespaces) stdout = displayJsonArray(jnamespaces, human);
  return { stdout, rc: 0 };
}

const REGION_OPTS: OptionSpec[] = [
  { short: "b", long: "bus", value: true },
  { short: "t", long: "type", value: true },
];

/** `ndctl disable-region|enable-region REGION [-b BUS] [-t TYPE]` */
// ref: ndctl/region.c parse_region_options, cmd_disable_region, cmd_enable_region
function regionCmd(k: Kernel, argv: readonly string[], enable: boolean): ToolOutput {
  const usage = `ndctl ${enable ? "enable" : "disable"}-region <region> [<options>]`;
  const p = parseOptions(argv, REGION_OPTS);
  if ("error" in p) return usageError(p.error, usage);
  const errors: string[] = [];
  if (p.args.length === 0) errors.push('specify a specific region id to act on, or "all"');
  for (const a of p.args.slice(1)) errors.push(`unknown extra parameter "${a}"`);
  if (errors.length) return { stdout: `${errors.map((e) => `  Error: ${e}\n\n`).join("")}\n usage: ${usage}\n\n`, rc: 129 };
  const type = p.opts.get("type") as string | undefined;
  if (type !== undefined && type !== "pmem" && type !== "blk") return { stdout: `  Error: unknown region type '${type}', should be 'pmem' or 'blk'\n\n\n usage: ${usage}\n\n`, rc: 129 };
  // Every modelled region is a pmem region.
  if (type === "blk") return { stdout: `${enable ? "enabled" : "disabled"} 0 regions\n`, rc: 0 };
  const r = xableRegion(k, { region: p.args[0]!, enable, bus: p.opts.get("bus") as string | undefined });
  return { stdout: r.stderr.map((l) => `${l}\n`).join(""), rc: exitStatus(r.rc) };
}

const DIMM_BASE_OPTS: OptionSpec[] = [
  { short: "b", long: "bus", value: true },
  { short: "v", long: "verbose" },
];

/** `ndctl init-labels|disable-dimm|enable-dimm DIMM… [options]`: exit 0 unless every action failed (then 1). */
// ref: ndctl/dimm.c dimm_action, cmd_init_labels, cmd_disable_dimm, cmd_enable_dimm
function dimmCmd(k: Kernel, argv: readonly string[], kind: DimmAction["kind"]): ToolOutput {
  const usage = kind === "init-labels" ? "ndctl init-labels <nmem0> [<nmem1>..<nmemN>] [<options>]" : `ndctl ${kind} <nmem0> [<nmem1>..<nmemN>] [<options>]`;
  const specs = kind === "init-labels" ? [...DIMM_BASE_OPTS, { short: "f", long: "force" }, { short: "V", long: "label-version", value: true }] : DIMM_BASE_OPTS;
  const p = parseOptions(argv, specs);
  if ("error" in p) return usageError(p.error, usage);
  if (p.args.length === 0) return usageError(null, usage);
  let out = "";
  const args = p.args.includes("all") ? ["all"] : p.args;
  let bad = 0;
  for (const a of args) {
    if (a === "all" || /^nmem\d+/.test(a)) continue;
    out += `'${a}' is not a valid dimm name\n`;
    bad++;
  }
  if (bad === args.length) return { stdout: `${out}\n usage: ${usage}\n\n`, rc: 129 };
  let action: DimmAction;
  if (kind === "init-labels") {
    const v = (p.opts.get("label-version") as string | undefined) ?? "1.1";
    const version = v === "1.1" || v === "v1.1" ? "1.1" : v === "1.2" || v === "v1.2" ? "1.2" : null;
    if (!version) return { stdout: `${out}'${v}' is not a valid label version\n${kind === "init-labels" ? "initialized" : ""} 0 nmem\n`, rc: 1 };
    action = { kind, force: p.opts.has("force"), labelVersion: version };
  } else action = { kind };
  const r = dimmAction(k, args, action, p.opts.get("bus") as string | undefined);
  out += r.stderr.map((l) => `${l}\n`).join("");
  return { stdout: out, rc: r.rc < 0 ? 1 : 0 };
}

const NDCTL_COMMANDS: Record<string, (k: Kernel, argv: readonly string[]) => ToolOutput> = {
  "create-namespace": createNamespaceCmd,
  "destroy-namespace": (k, argv) => namespaceAction(k, argv, "destroy", (k2, ns, force) => destroyNamespace(k2, { namespace: ns, force })),
  "disable-namespace": (k, argv) => namespaceAction(k, argv, "disable", (k2, ns) => disableNamespace(k2, { namespace: ns })),
  "enable-namespace": (k, argv) => namespaceAction(k, argv, "enable", (k2, ns) => enableNamespace(k2, { namespace: ns })),
  list: listCmd,
  "disable-region": (k, argv) => regionCmd(k, argv, false),
  "enable-region": (k, argv) => regionCmd(k, argv, true),
  "init-labels": (k, argv) => dimmCmd(k, argv, "init-labels"),
  "disable-dimm": (k, argv) => dimmCmd(k, argv, "disable-dimm"),
  "enable-dimm": (k, argv) => dimmCmd(k, argv, "enable-dimm"),
};

/** The subcommands this model implements. */
export const NDCTL_SUBCOMMANDS = Object.keys(NDCTL_COMMANDS);

/** `ndctl SUBCOMMAND ARGS…` (argv without the leading "ndctl"). */
// ref: ndctl/ndctl.c main, util/main.c main_handle_internal_command
export function runNdctl(k: Kernel, argv: readonly string[]): ToolOutput {
  const [sub, ...rest] = argv;
  if (sub === undefined) return { stdout: "\n usage: ndctl [--version] [--help] COMMAND [ARGS]\n\n", rc: 1 };
  const cmd = Object.hasOwn(NDCTL_COMMANDS, sub) ? NDCTL_COMMANDS[sub] : undefined;
  if (!cmd) return { stdout: `ndctl: '${sub}' is not a ndctl command. See 'ndctl --help'.\n`, rc: 1 };
  return cmd(k, rest);
}
