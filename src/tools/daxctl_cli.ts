/**
 * `daxctl` as users type it: reconfigure-device, online-memory, offline-memory and list over the model's
 * operations (src/kernel/drivers/dax/daxctl.ts), printing what daxctl v76 prints (daxctl/device.c,
 * daxctl/list.c, daxctl/json.c through json-c). stdout and stderr together; rc is the exit status.
 */
import { daxctlList, daxReconfigureDevice, offlineMemory, onlineMemory } from "../kernel/drivers/dax/daxctl.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { displayJsonArray, type JsonObject, JsonSize, type OptionSpec, parseOptions } from "./json.ts";
import { daxDevJson, daxDevsJson, exitStatus, type JsonFlags, type ToolOutput, usageError } from "./ndctl_cli.ts";

const BASE: OptionSpec[] = [
  { short: "r", long: "region", value: true },
  { short: "u", long: "human" },
  { short: "v", long: "verbose" },
];

const RECONFIG: OptionSpec[] = [
  ...BASE,
  { short: "m", long: "mode", value: true },
  { short: "N", long: "no-online" },
  { short: "f", long: "force" },
  { short: "C", long: "check-config" },
  { short: "s", long: "size", value: true },
  { short: "a", long: "align", value: true },
  { long: "no-movable" },
];

const ZONE: OptionSpec[] = [...BASE, { long: "no-movable" }];

const lines = (ls: readonly string[]) => ls.map((l) => `${l}\n`).join("");

/** daxctl/device.c parse_device_options: the device argument; errors print the usage and exit 129. */
// ref: daxctl/device.c parse_device_options
function deviceArg(args: readonly string[], action: string, usage: string): { device: string } | ToolOutput {
  let text = "";
  if (args.length === 0) text += `specify a device to ${action}, or "all"\n`;
  for (const a of args.slice(1)) text += `unknown extra parameter "${a}"\n`;
  if (text) return { stdout: `${text}\n usage: ${usage}\n\n`, rc: 129 };
  const dev = args[0]!;
  return { device: dev.slice(dev.lastIndexOf("/") + 1) };
}

// ref: daxctl/device.c cmd_reconfig_device, do_xaction_device, do_reconfig
function reconfigureCmd(k: Kernel, argv: readonly string[]): ToolOutput {
  const usage = "daxctl reconfigure-device <dax0.0> [<options>]";
  const p = parseOptions(argv, RECONFIG);
  if ("error" in p) return usageError(p.error, usage);
  const d = deviceArg(p.args, "reconfigure", usage);
  if ("rc" in d) return d;
  const mode = p.opts.get("mode") as string | undefined;
  if (p.opts.has("size") || p.opts.has("align")) return { stdout: "daxctl: reconfigure-device --size/--align is not modelled\n", rc: exitStatus(-95) };
  if (mode === undefined) {
    return { stdout: `error: a 'align', 'mode' or 'size' option is required\n\n usage: ${usage}\n\n`, rc: 129 };
  }
  if (mode === "devdax" && p.opts.has("no-online")) return { stdout: `--no-online is incompatible with --mode=devdax\n\n usage: ${usage}\n\n`, rc: 129 };
  const f: JsonFlags = { human: p.opts.has("human") };
  if (mode !== "system-ram" && mode !== "devdax") {
    // reconfig_mode stays DAXCTL_DEV_MODE_UNKNOWN (0) and do_reconfig refuses it per device.
    return { stdout: lines([`${d.device}: unknown mode requested: 0`, "error reconfiguring devices: Invalid argument", "reconfigured 0 devices"]), rc: exitStatus(-22) };
  }
  const r = daxReconfigureDevice(k, { device: d.device, mode, noOnline: p.opts.has("no-online"), noMovable: p.opts.has("no-movable"), force: p.opts.has("force") });
  // The summary ("reconfigured N devices") follows the JSON; anything libdaxctl said comes first.
  const summary = r.stderr.slice(-1);
  const before = r.stderr.slice(0, -1);
  const json = r.out?.length ? displayJsonArray(r.out.map((x) => daxDevJson(x, f)), f.human ?? false) : "";
  return { stdout: lines(before) + json + lines(summary), rc: exitStatus(r.rc) };
}

// ref: daxctl/device.c cmd_online_memory, cmd_offline_memory, do_xline
function xlineCmd(k: Kernel, argv: readonly string[], online: boolean): ToolOutput {
  const usage = `daxctl ${online ? "online" : "offline"}-memory <dax0.0> [<options>]`;
  const p = parseOptions(argv, online ? ZONE : BASE);
  if ("error" in p) return usageError(p.error, usage);
  const d = deviceArg(p.args, `${online ? "online" : "offline"} memory for`, usage);
  if ("rc" in d) return d;
  const r = online ? onlineMemory(k, { device: d.device, noMovable: p.opts.has("no-movable") }) : offlineMemory(k, { device: d.device });
  return { stdout: lines(r.stderr), rc: exitStatus(r.rc) };
}

const LIST: OptionSpec[] = [
  { short: "r", long: "region", value: true },
  { short: "d", long: "dev", value: true },
  { short: "D", long: "devices" },
  { short: "R", long: "regions" },
  { short: "M", long: "mappings" },
  { short: "i", long: "idle" },
  { short: "u", long: "human" },
];

// ref: daxctl/list.c cmd_list; daxctl/json.c util_daxctl_region_to_json, util_daxctl_devs_to_list
function listCmd(k: Kernel, argv: readonly string[]): ToolOutput {
  const usage = "daxctl list [<options>]";
  const p = parseOptions(argv, LIST);
  if ("error" in p) return usageError(p.error, usage);
  if (p.args.length) return { stdout: `${p.args.map((a) => `  Error: unknown parameter "${a}"\n\n`).join("")}\n usage: ${usage}\n\n`, rc: 129 };
  const regionFilter = p.opts.get("region") as string | undefined;
  const devFilter = p.opts.get("dev") as string | undefined;
  let regions = p.opts.has("regions");
  let devs = p.opts.has("devices");
  const mappings = p.opts.has("mappings");
  if (!regions && !devs && !mappings) {
    regions = regionFilter !== undefined;
    devs = devFilter !== undefined;
  }
  if (!regions && !devs && !mappings) devs = true;
  const f: JsonFlags = { idle: p.opts.has("idle"), human: p.opts.has("human"), mappings };
  let jregions: JsonObject[] | null = null;
  let jdevs: JsonObject[] | null = null;
  for (const r of daxctlList(k)) {
    if (regionFilter !== undefined && regionFilter !== "all" && regionFilter !== String(r.id) && regionFilter !== `region${r.id}`) continue;
    const list = r.devices.filter((d) => devFilter === undefined || devFilter === "all" || devFilter === d.chardev);
    if (regions) {
      const jr: JsonObject = { path: r.path, id: r.id, size: new JsonSize(r.size, f.human ?? false), align: r.align };
      if (devs) {
        const jd = daxDevsJson(list, f);
        if (jd.length) jr.devices = jd;
      }
      jregions ??= [];
      jregions.push(jr);
    } else if (devs) {
      const jd = daxDevsJson(list, f);
      if (jd.length) jdevs = [...(jdevs ?? []), ...jd];
    }
  }
  const human = f.human ?? false;
  const stdout = jregions ? displayJsonArray(jregions, human) : jdevs ? displayJsonArray(jdevs, human) : "";
  return { stdout, rc: 0 };
}

const DAXCTL_COMMANDS: Record<string, (k: Kernel, argv: readonly string[]) => ToolOutput> = {
  "reconfigure-device": reconfigureCmd,
  "online-memory": (k, argv) => xlineCmd(k, argv, true),
  "offline-memory": (k, argv) => xlineCmd(k, argv, false),
  list: listCmd,
};

export const DAXCTL_SUBCOMMANDS = Object.keys(DAXCTL_COMMANDS);

/** `daxctl SUBCOMMAND ARGS…` (argv without the leading "daxctl"). */
export function runDaxctl(k: Kernel, argv: readonly string[]): ToolOutput {
  const [sub, ...rest] = argv;
  if (sub === undefined) return { stdout: "\n usage: daxctl [--version] [--help] COMMAND [ARGS]\n\n", rc: 1 };
  const cmd = Object.hasOwn(DAXCTL_COMMANDS, sub) ? DAXCTL_COMMANDS[sub] : undefined;
  if (!cmd) return { stdout: `daxctl: '${sub}' is not a daxctl command. See 'daxctl --help'.\n`, rc: 1 };
  return cmd(k, rest);
}
