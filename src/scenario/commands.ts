/**
 * The commands a scenario step can run, by name. Each command checks its arguments when the scenario is
 * loaded (so a bad step is bad input, reported with file:line before anything runs) and, when the step runs,
 * receives the kernel, the split command line and a context, and returns what the command printed and its
 * status: { stdout, rc }.
 *
 * Shell tools (`echo … > /sys/…`, `cat`) behave as the tools do on a real machine: exit status 1 and their
 * own error text. Kernel-level steps (add_memory, memremap, …) are for prototyping: they call the modelled
 * kernel function and return its result as rc (0 or a negative errno). A kernel path that blocks forever is
 * a hang: rc -1 and "hang: waiting in … for …", not a crash.
 *
 * ndctl and daxctl register here too, once the libnvdimm/dax model has them.
 */
import type { Errno } from "../kernel/errno.ts";
import { ENODEV, ENOENT } from "../kernel/errno.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { type DevPagemap, MemoryType } from "../kernel/mm/dev_pagemap.ts";
import { addMemory, removeMemory } from "../kernel/mm/memory_hotplug.ts";
import { getPage, memremapPages, memunmapPages, newDevPagemap, putPage, zoneDevicePageInit } from "../kernel/mm/memremap.ts";
import { newAltmap } from "../kernel/mm/vmem_altmap.ts";
import { Hang, type KernelPath, pathOf, runToEnd } from "../kernel/path.ts";
import { parseSize } from "../machine/spec.ts";
import { renderIomem } from "../report/iomem.ts";
import { DAXCTL_SUBCOMMANDS, runDaxctl } from "../tools/daxctl_cli.ts";
import { NDCTL_SUBCOMMANDS, runNdctl } from "../tools/ndctl_cli.ts";
import { auditCommands } from "./audit_commands.ts";
import { EACCES, EISDIR, strerror } from "./errno_text.ts";
import { fsCommands } from "./fs_commands.ts";
import type { Invocation } from "./tokenize.ts";
import { userCommands } from "./user_commands.ts";

/** What a step printed (stdout and stderr together, as a terminal shows them) and its status. */
export interface StepOutput {
  stdout: string;
  /** Exit status for shell tools (0, 1); the kernel function's result for kernel-level steps; -1 for a hang. */
  rc: number;
  /** The kernel's errno behind a failure (for echo: what the sysfs store returned), negative. */
  errno?: Errno;
  /** The step blocked forever: where, and who holds what it waits for. */
  hang?: { at: string; holder: string };
}

export interface StepContext {
  /** Where the step is written: `file:line` or `--step N`. */
  readonly where: string;
}

/** Wrong arguments for a command; the loader reports it as a UsageError naming the step. */
export class BadArguments extends Error {}

export interface ScenarioCommand {
  readonly name: string;
  /** One line: the command's synopsis. */
  readonly usage: string;
  readonly summary: string;
  /** Throws BadArguments when the arguments cannot work; called when the scenario is loaded. */
  check(inv: Invocation): void;
  /** Run the step to its end, as a shell would: a block nothing can resolve is reported as a hang. */
  run(k: Kernel, inv: Invocation, ctx: StepContext): StepOutput;
  /**
   * The step as a kernel path, so a scheduler can interleave it with other threads' steps (src/sched).
   * Commands written as plain functions are one atomic step.
   */
  path(k: Kernel, inv: Invocation, ctx: StepContext): KernelPath<StepOutput>;
}

/** A command whose arguments are parsed once into P (at load time, to check them, and again to run). */
export function defineCommand<P>(def: {
  name: string;
  usage: string;
  summary: string;
  parse(inv: Invocation): P;
  run(k: Kernel, args: P, ctx: StepContext): StepOutput;
}): ScenarioCommand {
  // One atomic step; run alone it cannot block, so it is called directly.
  const cmd = definePathCommand({ ...def, path: (k, args, ctx) => pathOf(def.name, () => def.run(k, args, ctx)) });
  return { ...cmd, run: (k, inv, ctx) => def.run(k, def.parse(inv), ctx) };
}

/**
 * A command whose step is a kernel path: it yields where the kernel could be preempted or block, so it
 * interleaves with other threads; run alone it is driven to its end (a block that cannot resolve is a hang).
 */
export function definePathCommand<P>(def: {
  name: string;
  usage: string;
  summary: string;
  parse(inv: Invocation): P;
  path(k: Kernel, args: P, ctx: StepContext): KernelPath<StepOutput>;
}): ScenarioCommand {
  return {
    name: def.name,
    usage: def.usage,
    summary: def.summary,
    check: (inv) => {
      def.parse(inv);
    },
    run: (k, inv, ctx) => {
      const r = runPath(def.path(k, def.parse(inv), ctx));
      return "hang" in r ? hangResult(r.hang) : r.value;
    },
    path: (k, inv, ctx) => def.path(k, def.parse(inv), ctx),
  };
}

/** Commands by name. Built per run: no module-level mutable state. */
export class CommandRegistry {
  private readonly byName = new Map<string, ScenarioCommand>();

  register(cmd: ScenarioCommand): this {
    if (this.byName.has(cmd.name)) throw new Error(`scenario command '${cmd.name}' registered twice`);
    this.byName.set(cmd.name, cmd);
    return this;
  }

  registerAll(cmds: readonly ScenarioCommand[]): this {
    for (const c of cmds) this.register(c);
    return this;
  }

  get(name: string): ScenarioCommand | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  all(): ScenarioCommand[] {
    return [...this.byName.values()];
  }
}

/** The commands every scenario has. */
export function builtinCommands(): CommandRegistry {
  return new CommandRegistry()
    .register(echoCommand)
    .register(catCommand)
    .register(addMemoryCommand)
    .register(removeMemoryCommand)
    .register(memremapCommand)
    .register(memunmapCommand)
    .register(zoneDevicePageInitCommand)
    .register(getPageCommand)
    .register(putPageCommand)
    .register(ndctlCommand)
    .register(daxctlCommand)
    .registerAll(userCommands())
    .registerAll(fsCommands())
    .registerAll(auditCommands());
}

/**
 * ndctl and daxctl as scenario steps. Not yet in builtinCommands(): test/scenario/commands.test.ts ("the
 * built-ins") and test/scenario/load.test.ts ("an unknown step command…") pin the built-in list; registering
 * them is `.register(ndctlCommand).register(daxctlCommand)` above plus ", ndctl, daxctl" in those two lists.
 */
export const ndctlCommand: ScenarioCommand = toolCommand(
  "ndctl",
  NDCTL_SUBCOMMANDS,
  runNdctl,
  "ndctl create-namespace|destroy-namespace|disable-namespace|enable-namespace|list …",
  "ndctl as users type it: prints what ndctl prints, rc is its exit status",
);
export const daxctlCommand: ScenarioCommand = toolCommand(
  "daxctl",
  DAXCTL_SUBCOMMANDS,
  runDaxctl,
  "daxctl reconfigure-device|online-memory|offline-memory|list …",
  "daxctl as users type it: prints what daxctl prints, rc is its exit status",
);

/** ndctl / daxctl (src/tools): an unmodelled subcommand is bad input; everything else is the tool's own business. */
function toolCommand(name: string, subcommands: readonly string[], run: (k: Kernel, argv: readonly string[]) => { stdout: string; rc: number }, usage: string, summary: string): ScenarioCommand {
  return defineCommand({
    name,
    usage,
    summary,
    parse(inv) {
      noRedirect(inv);
      const sub = inv.argv[1];
      if (sub === undefined || !subcommands.includes(sub)) throw new BadArguments(`${sub === undefined ? "give a subcommand" : `'${sub}' is not modelled`} (modelled: ${subcommands.join(", ")})`);
      return inv.argv.slice(1);
    },
    run: (k, argv) => run(k, argv),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

const ok = (stdout = ""): StepOutput => ({ stdout, rc: 0 });

/** A kernel function's result as a step's result. */
export function kernelResult(rc: Errno): StepOutput {
  return rc < 0 ? { stdout: "", rc, errno: rc } : { stdout: "", rc };
}

/** Drive a kernel path to its end; a block nothing can resolve becomes a reported hang. */
export function runPath<T>(path: KernelPath<T>): { value: T } | { hang: Hang } {
  try {
    return { value: runToEnd(path) };
  } catch (e) {
    if (e instanceof Hang) return { hang: e };
    throw e;
  }
}

export function hangResult(h: Hang): StepOutput {
  return { stdout: `${h.message}\n`, rc: -1, hang: { at: h.at, holder: h.holder } };
}

export function noRedirect(inv: Invocation): void {
  if (inv.redirect !== null) throw new BadArguments(`output redirection ('> ${inv.redirect}') is only for echo`);
}

function positional(inv: Invocation, names: readonly string[]): string[] {
  noRedirect(inv);
  const args = inv.argv.slice(1);
  const opt = args.find((a) => a.startsWith("-") && !/^-\d/.test(a));
  if (opt !== undefined) throw new BadArguments(`unknown option '${opt}'`);
  if (args.length !== names.length) {
    throw new BadArguments(`expected ${names.length} argument${names.length === 1 ? "" : "s"} (${names.join(", ")}), got ${args.length}`);
  }
  return args;
}

export function sizeArg(what: string, v: string): number {
  const r = parseSize(v);
  if (typeof r === "string") throw new BadArguments(`${what}: ${r}`);
  return r;
}

export function intArg(what: string, v: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(v)) throw new BadArguments(`${what}: '${v}' is not an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new BadArguments(`${what}: ${n} is outside ${min}..${max}`);
  return n;
}

/** A sysfs path as the shell would pass it to open(2): absolute, without repeated or trailing slashes. */
function sysfsPath(cmd: string, p: string): string {
  if (!p.startsWith("/")) throw new BadArguments(`'${p}': give an absolute path (steps have no working directory)`);
  const norm = p.replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
  if (norm.split("/").some((c) => c === "." || c === "..")) throw new BadArguments(`'${p}': '.' and '..' are not resolved; give the path itself`);
  const modelled = norm === "/sys" || norm.startsWith("/sys/") || (cmd === "cat" && norm === "/proc/iomem");
  if (!modelled) throw new BadArguments(`'${p}': only /sys${cmd === "cat" ? " and /proc/iomem are" : " is"} modelled`);
  return norm;
}

type Lookup = { kind: "attr"; writable: boolean } | { kind: "dir" } | { kind: "missing"; parentExists: boolean };

/** What open(2) finds at a sysfs path. */
function sysfsLookup(k: Kernel, path: string): Lookup {
  // An attribute is found without listing every directory; a directory or a missing path needs the list.
  const found = k.sysfs.attr(k, path);
  if (found) return { kind: "attr", writable: found.store !== undefined };
  const dirs = new Set<string>(["/sys"]);
  let attr: Lookup | null = null;
  const slash = path.lastIndexOf("/");
  const parent = path.slice(0, slash);
  const name = path.slice(slash + 1);
  for (const d of k.sysfs.dirs(k)) {
    for (let p = d.path; p.length > 1; p = p.slice(0, p.lastIndexOf("/"))) dirs.add(p);
    if (d.path === parent) {
      const a = d.attrs.get(name);
      if (a) attr = { kind: "attr", writable: a.store !== undefined };
    }
  }
  if (attr) return attr;
  if (dirs.has(path)) return { kind: "dir" };
  return { kind: "missing", parentExists: dirs.has(parent) };
}

// ---------------------------------------------------------------------------------------------------------
// Shell tools

/**
 * `echo [-n] WORDS… > /sys/…`: one write(2) of the words and a newline. Errors read as bash prints them,
 * without its leading "bash: ": a failed open is "PATH: <strerror>", a store that returns an errno is
 * "echo: write error: <strerror>"; both exit 1. Without a redirection echo prints its words.
 */
const echoCommand = definePathCommand({
  name: "echo",
  usage: "echo [-n] VALUE... > /sys/PATH",
  summary: "write to a sysfs attribute (its store), as `echo online_movable > /sys/.../state` does",
  parse(inv) {
    let words = inv.argv.slice(1);
    let newline = true;
    if (words[0] === "-n") {
      newline = false;
      words = words.slice(1);
    }
    const path = inv.redirect === null ? null : sysfsPath("echo", inv.redirect);
    return { text: words.join(" ") + (newline ? "\n" : ""), path };
  },
  *path(k, { text, path }) {
    if (path === null) return ok(text);
    const found = sysfsLookup(k, path);
    // ref: fs/namei.c lookup_open (no ->create in sysfs: -EACCES); fs/kernfs/file.c kernfs_fop_open
    const openErr =
      found.kind === "dir" ? -EISDIR : found.kind === "missing" ? (found.parentExists ? -EACCES : -ENOENT) : found.writable ? 0 : -EACCES;
    if (openErr) return { stdout: `${path}: ${strerror(openErr)}\n`, rc: 1, errno: openErr };
    const rc = yield* k.sysfs.writePath(k, path, text);
    if (rc < 0) return { stdout: `echo: write error: ${strerror(rc)}\n`, rc: 1, errno: rc };
    return ok();
  },
});

/**
 * `cat PATH…` for sysfs attributes and /proc/iomem. Errors read as the oracle's busybox cat prints them:
 * "cat: can't open 'PATH': <strerror>" and "cat: read error: <strerror>"; exit status 1 if any failed.
 */
const catCommand = defineCommand({
  name: "cat",
  usage: "cat /sys/PATH... | /proc/iomem",
  summary: "read sysfs attributes (their show) or /proc/iomem",
  parse(inv) {
    noRedirect(inv);
    const paths = inv.argv.slice(1);
    if (paths.length === 0) throw new BadArguments("give a file to read (steps have no stdin)");
    const opt = paths.find((p) => p.startsWith("-"));
    if (opt !== undefined) throw new BadArguments(`unknown option '${opt}'`);
    return paths.map((p) => sysfsPath("cat", p));
  },
  run(k, paths) {
    let stdout = "";
    let rc = 0;
    let errno: Errno | undefined;
    for (const path of paths) {
      if (path === "/proc/iomem") {
        stdout += renderIomem(k);
        continue;
      }
      const found = sysfsLookup(k, path);
      if (found.kind === "missing") {
        stdout += `cat: can't open '${path}': ${strerror(-ENOENT)}\n`;
        rc = 1;
        errno ??= -ENOENT;
        continue;
      }
      const v = found.kind === "dir" ? -EISDIR : k.sysfs.read(k, path);
      if (typeof v === "number") {
        stdout += `cat: read error: ${strerror(v)}\n`;
        rc = 1;
        errno ??= v;
        continue;
      }
      stdout += `${v}\n`;
    }
    return errno === undefined ? { stdout, rc } : { stdout, rc, errno };
  },
});

// ---------------------------------------------------------------------------------------------------------
// Kernel-level steps (prototyping: the modelled kernel function, its result as rc)

const addMemoryCommand = defineCommand({
  name: "add_memory",
  usage: "add_memory NID START SIZE",
  summary: "add_memory(nid, start, size): hot-add RAM as System RAM, new blocks per memhp_default_state",
  parse(inv) {
    const [nid, start, size] = positional(inv, ["NID", "START", "SIZE"]);
    return { nid: intArg("NID", nid!, 0, 1023), start: sizeArg("START", start!), size: sizeArg("SIZE", size!) };
  },
  run: (k, a) => kernelResult(addMemory(k, a.nid, a.start, a.size)),
});

const removeMemoryCommand = defineCommand({
  name: "remove_memory",
  usage: "remove_memory START SIZE",
  summary: "remove_memory(start, size): remove offline hot-added RAM (-EBUSY while a block is online)",
  parse(inv) {
    const [start, size] = positional(inv, ["START", "SIZE"]);
    return { start: sizeArg("START", start!), size: sizeArg("SIZE", size!) };
  },
  run: (k, a) => kernelResult(removeMemory(k, a.start, a.size)),
});

const PGMAP_TYPES: Record<string, MemoryType> = {
  private: MemoryType.PRIVATE,
  coherent: MemoryType.COHERENT,
  fsdax: MemoryType.FS_DAX,
  generic: MemoryType.GENERIC,
  p2pdma: MemoryType.PCI_P2PDMA,
};

/** `--name VALUE` or `--name=VALUE` options out of argv; the rest are positional. */
export function splitOptions(inv: Invocation, known: readonly string[]): { args: string[]; opts: Map<string, string> } {
  noRedirect(inv);
  const args: string[] = [];
  const opts = new Map<string, string>();
  const rest = inv.argv.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith("--")) {
      args.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq < 0 ? a : a.slice(0, eq);
    if (!known.includes(name)) throw new BadArguments(`unknown option '${name}' (known: ${known.join(", ")})`);
    if (opts.has(name)) throw new BadArguments(`${name} given twice`);
    const value = eq < 0 ? rest[++i] : a.slice(eq + 1);
    if (value === undefined) throw new BadArguments(`${name} needs a value`);
    opts.set(name, value);
  }
  return { args, opts };
}

/**
 * memremap DEVICE TYPE START SIZE: a driver's devm_memremap_pages with a dev_pagemap of that type over
 * [START, START+SIZE), as a machine spec's `pgmaps:` entry does (private/coherent get the device as owner
 * and the ops their type requires).
 */
const memremapCommand = definePathCommand({
  name: "memremap",
  usage: "memremap DEVICE private|coherent|fsdax|generic|p2pdma START SIZE [--vmemmap-shift N] [--altmap RESERVE,FREE] [--node N]",
  summary: "memremap_pages() for a new dev_pagemap of DEVICE over [START, START+SIZE)",
  parse(inv) {
    const { args, opts } = splitOptions(inv, ["--vmemmap-shift", "--altmap", "--node"]);
    if (args.length !== 4) throw new BadArguments(`expected 4 arguments (DEVICE, TYPE, START, SIZE), got ${args.length}`);
    const [device, typeName, startS, sizeS] = args as [string, string, string, string];
    const type = Object.hasOwn(PGMAP_TYPES, typeName) ? PGMAP_TYPES[typeName] : undefined;
    if (type === undefined) throw new BadArguments(`TYPE: unknown pgmap type '${typeName}' (known: ${Object.keys(PGMAP_TYPES).join(", ")})`);
    const start = sizeArg("START", startS);
    const size = sizeArg("SIZE", sizeS);
    if (size === 0) throw new BadArguments("SIZE: must not be 0");
    const shift = opts.get("--vmemmap-shift");
    const node = opts.get("--node");
    const altmapS = opts.get("--altmap");
    let altmap: { reserve: number; free: number } | null = null;
    if (altmapS !== undefined) {
      const m = /^(\d+),(\d+)$/.exec(altmapS);
      if (!m) throw new BadArguments(`--altmap: '${altmapS}' is not RESERVE,FREE (pages, e.g. 2,4096)`);
      altmap = { reserve: Number(m[1]), free: Number(m[2]) };
    }
    return {
      device,
      type,
      start,
      size,
      vmemmapShift: shift === undefined ? 0 : intArg("--vmemmap-shift", shift, 0, 30),
      nid: node === undefined ? -1 : intArg("--node", node, -1, 1023),
      altmap,
    };
  },
  *path(k, a) {
    const needsOwner = a.type === MemoryType.PRIVATE || a.type === MemoryType.COHERENT;
    const startPfn = Math.floor(a.start / k.geo.pageSize);
    const lastPfn = Math.floor((a.start + a.size - 1) / k.geo.pageSize);
    const pgmap = newDevPagemap(k, {
      device: a.device,
      type: a.type,
      ranges: [{ start: a.start, end: a.start + a.size - 1 }],
      vmemmapShift: a.vmemmapShift,
      altmap: a.altmap ? newAltmap(startPfn, lastPfn, a.altmap.reserve, a.altmap.free) : null,
      owner: needsOwner ? a.device : null,
      ops: needsOwner ? { pageFree: () => {}, migrateToRam: a.type === MemoryType.PRIVATE } : null,
    });
    return kernelResult(yield* memremapPages(k, pgmap, a.nid));
  },
});

/** The newest dev_pagemap of a device that memunmap can still tear down. */
function pgmapOfDevice(k: Kernel, device: string): DevPagemap | null {
  const list = k.pgmaps.all().filter((p) => p.device === device && p.state !== "exited" && p.state !== "failed" && p.state !== "new");
  return list[list.length - 1] ?? null;
}

const memunmapCommand = definePathCommand({
  name: "memunmap",
  usage: "memunmap DEVICE",
  summary: "memunmap_pages() of DEVICE's dev_pagemap (hangs while something holds a reference)",
  parse(inv) {
    const [device] = positional(inv, ["DEVICE"]);
    return { device: device! };
  },
  *path(k, { device }) {
    const pgmap = pgmapOfDevice(k, device);
    if (!pgmap) return { stdout: `memunmap: ${device}: no dev_pagemap to tear down\n`, rc: -ENODEV, errno: -ENODEV };
    yield* memunmapPages(k, pgmap);
    return ok();
  },
});

function pfnCommand(name: string, summary: string, path: (k: Kernel, pfn: number) => KernelPath<string>): ScenarioCommand {
  return definePathCommand({
    name,
    usage: `${name} PFN`,
    summary,
    parse(inv) {
      const [pfn] = positional(inv, ["PFN"]);
      return sizeArg("PFN", pfn!);
    },
    *path(k, pfn) {
      return ok(yield* path(k, pfn));
    },
  });
}

const zoneDevicePageInitCommand = pfnCommand(
  "zone_device_page_init",
  "a driver allocates a device page: refcount 1, locked, and a pgmap reference held for it",
  function* (k, pfn) {
    yield* zoneDevicePageInit(k, pfn);
    return "";
  },
);

const getPageCommand = pfnCommand("get_page", "get_page(pfn_to_page(PFN)); prints the new refcount", function* (k, pfn) {
  return `refcount ${yield* getPage(k, pfn)}\n`;
});

const putPageCommand = pfnCommand("put_page", "put_page(pfn_to_page(PFN)); prints the new refcount and whether the page was freed", function* (k, pfn) {
  const r = yield* putPage(k, pfn);
  return `refcount ${r.refcount}${r.freed ? ", freed (page_free)" : ""}${r.woke ? ", idle (waiters woken)" : ""}\n`;
});
