/**
 * Scenario steps for the user side: processes that mmap device memory, touch it, pin it with GUP, do an
 * O_DIRECT read into it, unpin, unmap; and the reports a developer wants next to them (page tables, smaps).
 *
 *   process app                                   # a process with an empty address space
 *   mmap app /dev/dax0.0 64M [--offset 0] [--private] [--read-only] [--as buf]
 *   access app buf+4K [--len 2M] [--write]       # user loads/stores: faults where the entry is missing
 *   gup app buf 1024 [--pin] [--write] [--longterm] [--slow|--fast-only] [--as pins]
 *   unpin pins                                    # unpin_user_pages / put_page of what gup took
 *   odirect_read app buf 1M                       # 6.1 block DIO: get_user_pages_fast(FOLL_WRITE), DMA, put_page
 *   munmap app buf 2M
 *   pagetable app | smaps app | exit app
 *
 * Addresses are a mapping label (from mmap --as, default the file's basename) plus an optional +OFFSET, or a
 * hex address. Per-kernel step state (names → tasks, labels → mappings and held pages) lives beside the kernel
 * in a WeakMap, never in the kernel model.
 */

import { findDevDax, openDevDax } from "../kernel/drivers/dax/device.ts";
import { EFAULT, ENOENT, errnoName } from "../kernel/errno.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { sideTable } from "../kernel/lib/rewind.ts";
import { FOLL_FAST_ONLY, FOLL_GET, FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, follString, getUserPages, getUserPagesFast, unpinUserPages } from "../kernel/mm/gup.ts";
import { entryAccessPermitted, handleMmFault } from "../kernel/mm/memory.ts";
import { type MappedFile, type Task, VM_FAULT_ERROR, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, vmaLookup, vmFaultString } from "../kernel/mm/mm_types.ts";
import { createProcess, doMmap, doMunmap, exitMmap } from "../kernel/mm/mmap.ts";
import { step } from "../kernel/path.ts";
import { pageTableReport, renderPageTable, renderSmaps } from "../report/pagetable.ts";
import { BadArguments, defineCommand, definePathCommand, intArg, noRedirect, type ScenarioCommand, type StepOutput, sizeArg, splitOptions } from "./commands.ts";
import type { Invocation } from "./tokenize.ts";

interface Held {
  task: Task;
  pages: number[];
  flags: number;
}

interface UserSteps {
  procs: Map<string, Task>;
  maps: Map<string, { task: Task; addr: number; len: number }>;
  held: Map<string, Held>;
}

const STATE = sideTable<Kernel, UserSteps>();

function steps(k: Kernel): UserSteps {
  let s = STATE.get(k);
  if (!s) {
    s = { procs: new Map(), maps: new Map(), held: new Map() };
    STATE.set(k, s);
  }
  return s;
}

/** A file a step can open: /dev/daxX.Y, or whatever an extra resolver (filesystems) knows. */
export type FileResolver = (k: Kernel, path: string) => MappedFile | null;

const resolvers: FileResolver[] = [
  (k, path) => {
    const m = /^\/dev\/(dax\d+\.\d+)$/.exec(path);
    if (!m) return null;
    const dd = findDevDax(k, m[1]!);
    return dd ? openDevDax(k, dd) : null;
  },
];

/** Let another module (a filesystem) open its files from steps. */
export function registerFileResolver(r: FileResolver): void {
  if (!resolvers.includes(r)) resolvers.push(r);
}

function task(k: Kernel, name: string): Task | StepOutput {
  const t = steps(k).procs.get(name);
  if (!t) return { stdout: `${name}: no such process (create it with 'process ${name}')\n`, rc: 1 };
  return t;
}

/** "label+off", "label", or a hex address. */
function parseAddr(what: string, v: string): { label: string | null; value: number } {
  if (/^0x[0-9a-f]+$/i.test(v)) return { label: null, value: Number.parseInt(v, 16) };
  const m = /^([A-Za-z_][\w.-]*)(?:\+(.+))?$/.exec(v);
  if (!m) throw new BadArguments(`${what}: '${v}' is neither a hex address nor LABEL[+OFFSET]`);
  return { label: m[1]!, value: m[2] === undefined ? 0 : sizeArg(what, m[2]) };
}

function resolveAddr(k: Kernel, a: { label: string | null; value: number }): number | StepOutput {
  if (a.label === null) return a.value;
  const m = steps(k).maps.get(a.label);
  if (!m) return { stdout: `${a.label}: no such mapping label\n`, rc: 1 };
  return m.addr + a.value;
}

/** `PROC ADDR LEN` arguments (odirect_read, munmap). */
function procAddrLen(inv: Invocation): { proc: string; addr: { label: string | null; value: number }; len: number } {
  const { args } = splitOptions(inv, []);
  if (args.length !== 3) throw new BadArguments(`expected 3 arguments (PROC, ADDR, LEN), got ${args.length}`);
  return { proc: args[0]!, addr: parseAddr("ADDR", args[1]!), len: sizeArg("LEN", args[2]!) };
}

/** The step's process and its resolved start address, or the output saying which one is unknown. */
function procAt(k: Kernel, proc: string, addr: { label: string | null; value: number }): { t: Task; start: number } | StepOutput {
  const t = task(k, proc);
  if ("rc" in t) return t;
  const start = resolveAddr(k, addr);
  if (typeof start !== "number") return start;
  return { t, start };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function flagSet(inv: Invocation, known: readonly string[], withValue: readonly string[]): { args: string[]; flags: Set<string>; opts: Map<string, string> } {
  noRedirect(inv);
  const args: string[] = [];
  const flags = new Set<string>();
  const opts = new Map<string, string>();
  const rest = inv.argv.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith("--")) {
      args.push(a);
      continue;
    }
    if (withValue.includes(a)) {
      const v = rest[++i];
      if (v === undefined) throw new BadArguments(`${a} needs a value`);
      opts.set(a, v);
    } else if (known.includes(a)) {
      flags.add(a);
    } else {
      throw new BadArguments(`unknown option '${a}' (known: ${[...known, ...withValue].join(", ")})`);
    }
  }
  return { args, flags, opts };
}

function reportCommand(name: string, summary: string, render: (k: Kernel, t: Task) => string): ScenarioCommand {
  return defineCommand({
    name,
    usage: `${name} PROC`,
    summary,
    parse(inv) {
      const { args } = splitOptions(inv, []);
      if (args.length !== 1) throw new BadArguments("expected one PROC");
      return args[0]!;
    },
    run(k, proc) {
      const t = task(k, proc);
      if ("rc" in t) return t;
      return { stdout: render(k, t), rc: 0 };
    },
  });
}

/** The user-side commands (built on call: commands.ts and this module import each other). */
export function userCommands(): ScenarioCommand[] {
  const processCommand = defineCommand({
    name: "process",
    usage: "process NAME",
    summary: "a new process with an empty address space (its pgd from the buddy allocator)",
    parse(inv) {
      const { args } = splitOptions(inv, []);
      if (args.length !== 1 || !/^[A-Za-z_][\w-]*$/.test(args[0]!)) throw new BadArguments("expected one process NAME (letters, digits, _ and -)");
      return args[0]!;
    },
    run(k, name) {
      if (steps(k).procs.has(name)) return { stdout: `${name}: process exists\n`, rc: 1 };
      const t = createProcess(k, name);
      if (typeof t === "number") return { stdout: "", rc: t, errno: t };
      steps(k).procs.set(name, t);
      return { stdout: `pid ${t.pid}\n`, rc: 0 };
    },
  });

  const mmapCommand = definePathCommand({
    name: "mmap",
    usage: "mmap PROC FILE SIZE [--offset OFF] [--private] [--read-only] [--as LABEL]",
    summary: "mmap(2) of a device-dax (or DAX file) mapping; prints the address",
    parse(inv) {
      const { args, flags, opts } = flagSet(inv, ["--private", "--read-only"], ["--offset", "--as"]);
      if (args.length !== 3) throw new BadArguments(`expected 3 arguments (PROC, FILE, SIZE), got ${args.length}`);
      const [proc, file, sizeS] = args as [string, string, string];
      if (!file.startsWith("/")) throw new BadArguments(`FILE: '${file}' must be an absolute path`);
      const off = opts.get("--offset");
      return {
        proc,
        file,
        len: sizeArg("SIZE", sizeS),
        offset: off === undefined ? 0 : sizeArg("--offset", off),
        shared: !flags.has("--private"),
        write: !flags.has("--read-only"),
        label: opts.get("--as") ?? file.slice(file.lastIndexOf("/") + 1),
      };
    },
    *path(k, a) {
      const t = task(k, a.proc);
      if ("rc" in t) return t;
      let f: MappedFile | null = null;
      for (const r of resolvers) f ??= r(k, a.file);
      if (!f) return { stdout: `${a.file}: No such file or directory\n`, rc: -ENOENT, errno: -ENOENT };
      const addr = yield* doMmap(k, t, f, { len: a.len, read: true, write: a.write, shared: a.shared, offset: a.offset });
      if (addr < 0) return { stdout: `mmap: ${errnoName(addr)}\n`, rc: addr, errno: addr };
      steps(k).maps.set(a.label, { task: t, addr, len: a.len });
      return { stdout: `${hex(addr)}\n`, rc: 0 };
    },
  });

  /** Exit statuses of a process killed by a signal, as a shell reports them (128 + signo). */
  const SIGBUS_STATUS = 135;
  const SIGSEGV_STATUS = 139;

  const accessCommand = definePathCommand({
    name: "access",
    usage: "access PROC ADDR [--len LEN] [--write]",
    summary: "user loads (or stores) over [ADDR, ADDR+LEN): a page fault wherever the entry does not allow it",
    parse(inv) {
      const { args, flags, opts } = flagSet(inv, ["--write"], ["--len"]);
      if (args.length !== 2) throw new BadArguments(`expected 2 arguments (PROC, ADDR), got ${args.length}`);
      const len = opts.get("--len");
      return { proc: args[0]!, addr: parseAddr("ADDR", args[1]!), len: len === undefined ? 1 : sizeArg("--len", len), write: flags.has("--write") };
    },
    *path(k, a) {
      const at = procAt(k, a.proc, a.addr);
      if ("rc" in at) return at;
      const { t, start } = at;
      const out: string[] = [];
      const ps = k.geo.pageSize;
      for (let addr = start - (start % ps); addr < start + a.len; addr += ps) {
        const slot = t.mm.pgd.lookup(addr);
        if (slot && entryAccessPermitted(t.mm.pgd, slot.table, slot.idx, a.write)) continue;
        const f = yield* handleMmFault(k, vmaLookup(t.mm, addr), addr, a.write);
        out.push(`fault ${hex(addr)} ${a.write ? "write" : "read"}: ${f.size ?? "-"} ${vmFaultString(f.ret)}\n`);
        if (f.ret & VM_FAULT_ERROR) {
          const sig = f.ret & VM_FAULT_SIGSEGV ? "SIGSEGV" : f.ret & VM_FAULT_SIGBUS ? "SIGBUS" : "SIGBUS";
          t.signals.push(`${sig} addr=${hex(addr)}`);
          out.push(`${a.proc}: ${sig} at ${hex(addr)}\n`);
          return { stdout: out.join(""), rc: sig === "SIGSEGV" ? SIGSEGV_STATUS : SIGBUS_STATUS };
        }
      }
      return { stdout: out.join(""), rc: 0 };
    },
  });

  const gupCommand = definePathCommand({
    name: "gup",
    usage: "gup PROC ADDR NR_PAGES [--pin] [--write] [--longterm] [--slow | --fast-only] [--as LABEL]",
    summary: "get_user_pages_fast / pin_user_pages_fast (or the slow path) and hold the pages under LABEL",
    parse(inv) {
      const { args, flags, opts } = flagSet(inv, ["--pin", "--write", "--longterm", "--slow", "--fast-only"], ["--as"]);
      if (args.length !== 3) throw new BadArguments(`expected 3 arguments (PROC, ADDR, NR_PAGES), got ${args.length}`);
      if (flags.has("--slow") && flags.has("--fast-only")) throw new BadArguments("--slow and --fast-only exclude each other");
      let foll = flags.has("--pin") ? FOLL_PIN : FOLL_GET;
      if (flags.has("--write")) foll |= FOLL_WRITE;
      if (flags.has("--longterm")) foll |= FOLL_LONGTERM;
      if (flags.has("--fast-only")) foll |= FOLL_FAST_ONLY;
      return { proc: args[0]!, addr: parseAddr("ADDR", args[1]!), nr: intArg("NR_PAGES", args[2]!, 1, 2 ** 31), flags: foll, slow: flags.has("--slow"), label: opts.get("--as") ?? "pages" };
    },
    *path(k, a) {
      const at = procAt(k, a.proc, a.addr);
      if ("rc" in at) return at;
      const { t, start } = at;
      const pin = (a.flags & FOLL_PIN) !== 0;
      // The get_user_pages* entry points take FOLL_GET themselves; pin_user_pages* FOLL_PIN.
      const name = `${pin ? "pin" : "get"}_user_pages${a.slow ? "" : "_fast"}`;
      const g = yield* (a.slow ? getUserPages(k, t, start, a.nr, a.flags) : getUserPagesFast(k, t, start, a.nr, a.flags));
      if (g.pages.length > 0) steps(k).held.set(a.label, { task: t, pages: g.pages, flags: a.flags });
      const how = a.slow ? "" : ` (${g.fast} by the fast path)`;
      if (g.ret < 0) return { stdout: `${name}(${hex(start)}, ${a.nr}, ${follString(a.flags)}) = ${errnoName(g.ret)}\n`, rc: g.ret, errno: g.ret };
      return { stdout: `${name}(${hex(start)}, ${a.nr}, ${follString(a.flags)}) = ${g.ret}${how}${g.pages.length ? `, held as ${a.label}` : ""}\n`, rc: 0 };
    },
  });

  const unpinCommand = definePathCommand({
    name: "unpin",
    usage: "unpin LABEL",
    summary: "unpin_user_pages (FOLL_PIN) or put_page (FOLL_GET) on the pages a gup step holds",
    parse(inv) {
      const { args } = splitOptions(inv, []);
      if (args.length !== 1) throw new BadArguments("expected one LABEL");
      return args[0]!;
    },
    *path(k, label) {
      const h = steps(k).held.get(label);
      if (!h) return { stdout: `${label}: no pages held under this label\n`, rc: 1 };
      steps(k).held.delete(label);
      yield* unpinUserPages(k, h.pages, h.flags);
      return { stdout: `${h.flags & FOLL_PIN ? "unpin_user_pages" : "put_page"}: ${h.pages.length} pages\n`, rc: 0 };
    },
  });

  const odirectCommand = definePathCommand({
    name: "odirect_read",
    usage: "odirect_read PROC ADDR LEN",
    summary: "a read(2) with O_DIRECT into [ADDR, ADDR+LEN): 6.1's bio takes FOLL_GET references (get_user_pages_fast, FOLL_WRITE), DMA, put_page",
    parse: procAddrLen,
    *path(k, a) {
      const at = procAt(k, a.proc, a.addr);
      if ("rc" in at) return at;
      const { t, start } = at;
      const ps = k.geo.pageSize;
      const nr = Math.ceil((start + a.len) / ps) - Math.floor(start / ps);
      // ref: block/bio.c bio_iov_iter_get_pages → iov_iter_get_pages2 → get_user_pages_fast; bio_release_pages
      const g = yield* getUserPagesFast(k, t, start - (start % ps), nr, FOLL_GET | FOLL_WRITE);
      const lines = [`get_user_pages_fast: ${g.ret < 0 ? errnoName(g.ret) : `${g.ret} pages (${g.fast} by the fast path)`}`];
      if (g.ret < 0) return { stdout: `${lines.join("\n")}\n`, rc: g.ret, errno: g.ret };
      lines.push(`DMA into ${g.pages.length} pages`);
      yield step("DMA");
      yield* unpinUserPages(k, g.pages, FOLL_GET);
      lines.push(`bio_release_pages: put_page × ${g.pages.length}`);
      return { stdout: `${lines.join("\n")}\n`, rc: g.ret === nr ? 0 : -EFAULT };
    },
  });

  const munmapCommand = definePathCommand({
    name: "munmap",
    usage: "munmap PROC ADDR LEN",
    summary: "munmap(2): split (->may_split may refuse), zap, free emptied page tables",
    parse: procAddrLen,
    *path(k, a) {
      const at = procAt(k, a.proc, a.addr);
      if ("rc" in at) return at;
      const { t, start } = at;
      const rc = yield* doMunmap(k, t, start, a.len);
      return rc < 0 ? { stdout: `munmap: ${errnoName(rc)}\n`, rc, errno: rc } : { stdout: "", rc: 0 };
    },
  });

  const pagetableCommand = reportCommand("pagetable", "the process's page-table entries, raw and decoded", (k, t) => renderPageTable(pageTableReport(k, t)));
  const smapsCommand = reportCommand("smaps", "/proc/PID/smaps as 6.1 accounts it (reading it splits devmap PUDs, as 6.1 does)", (k, t) => renderSmaps(k, t.mm));

  const exitCommand = definePathCommand({
    name: "exit",
    usage: "exit PROC",
    summary: "the process exits: every mapping zapped, its page tables freed (pins it still holds stay)",
    parse(inv) {
      const { args } = splitOptions(inv, []);
      if (args.length !== 1) throw new BadArguments("expected one PROC");
      return args[0]!;
    },
    *path(k, proc) {
      const t = task(k, proc);
      if ("rc" in t) return t;
      yield* exitMmap(k, t);
      steps(k).procs.delete(proc);
      return { stdout: "", rc: 0 };
    },
  });

  return [
  processCommand,
  mmapCommand,
  accessCommand,
  gupCommand,
  unpinCommand,
  odirectCommand,
  munmapCommand,
  pagetableCommand,
  smapsCommand,
  exitCommand,
  ];
}
