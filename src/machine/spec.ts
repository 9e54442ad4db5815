/**
 * Machine specs: the user-facing description of a machine (YAML file, named preset, or a pasted dmesg) and
 * its resolution into the kernel's MachineSpec. Every bad input is a UsageError naming the field.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { type ArchProfile, archProfile } from "../arch/profiles.ts";
import { UsageError } from "../errors.ts";
import { type KernelConfig, kconfigPreset } from "../kconfig/kconfig.ts";
import { type E820Entry, e820TypeFromName } from "../kernel/arch/x86/e820.ts";
import type { MachineSpec, PlatformResource } from "../kernel/boot.ts";
import { type QemuNvdimm, qemuNvdimmCheck } from "../kernel/drivers/acpi/nfit.ts";
import { MemoryType } from "../kernel/mm/dev_pagemap.ts";
import { newAltmap } from "../kernel/mm/vmem_altmap.ts";
import { kernelVariant } from "../kernel/variant.ts";
import { parseDmesg } from "./dmesg.ts";
import { readYamlFile } from "./yaml_file.ts";

const SUFFIX: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

/** A size or address: a number, "0x1000", "4G", "1.5T" is refused (not exact), "128M". */
export function parseSize(v: unknown): number | string {
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? v : "must be a non-negative integer";
  if (typeof v !== "string") return "must be a number or a string like 0x1000 or 4G";
  const s = v.trim();
  const hex = /^0x([0-9a-f]+)$/i.exec(s);
  if (hex) {
    const n = Number.parseInt(hex[1]!, 16);
    return Number.isSafeInteger(n) ? n : `${s} is too large`;
  }
  const m = /^(\d+)\s*([KMGTP])?(?:i?B)?$/i.exec(s);
  if (!m) return `'${s}' is not a size (use 4096, 0x1000 or 4G)`;
  const n = Number(m[1]) * (m[2] ? SUFFIX[m[2].toUpperCase()]! : 1);
  return Number.isSafeInteger(n) ? n : `${s} is too large`;
}

const size = z.unknown().transform((v, ctx) => {
  const r = parseSize(v);
  if (typeof r === "string") {
    ctx.addIssue({ code: "custom", message: r });
    return z.NEVER;
  }
  return r;
});

/** A range: {start, end} (end inclusive, as the kernel prints it) or {start, size}. */
const range = z
  .object({ start: size, end: size.optional(), size: size.optional() })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.end === undefined) === (r.size === undefined)) ctx.addIssue({ code: "custom", message: "give exactly one of end (inclusive) or size" });
    else if (r.end !== undefined && r.end < r.start) ctx.addIssue({ code: "custom", message: "end is below start", path: ["end"] });
    else if (r.size !== undefined && r.size === 0) ctx.addIssue({ code: "custom", message: "size must not be 0", path: ["size"] });
  })
  .transform((r) => ({ start: r.start, endExcl: r.end !== undefined ? r.end + 1 : r.start + r.size! }));

const e820Entry = z
  .object({ start: size, end: size.optional(), size: size.optional(), type: z.union([z.string(), z.number().int()]) })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.end === undefined) === (r.size === undefined)) ctx.addIssue({ code: "custom", message: "give exactly one of end (inclusive) or size" });
    if (typeof r.type === "string" && e820TypeFromName(r.type) === undefined) {
      ctx.addIssue({ code: "custom", message: `unknown e820 type '${r.type}' (usable, reserved, ACPI data, ACPI NVS, unusable, persistent (type 12), ...)`, path: ["type"] });
    }
  });

const platformResource = z
  .object({ name: z.string().min(1), start: size, end: size, op: z.enum(["insert", "request", "nest"]).default("insert") })
  .strict();

const pgmapEntry = z
  .object({
    device: z.string().min(1),
    type: z.enum(["private", "coherent", "fsdax", "generic", "p2pdma"]),
    ranges: z.array(range).min(1),
    node: z.number().int().min(-1).default(-1),
    vmemmap_shift: z.number().int().min(0).max(30).default(0),
    altmap: z.object({ reserve: z.number().int().min(0), free: z.number().int().min(0) }).strict().optional(),
    owner: z.string().optional(),
    ops: z.array(z.enum(["page_free", "migrate_to_ram", "memory_failure"])).optional(),
  })
  .strict();

const PGMAP_TYPES: Record<string, MemoryType> = {
  private: MemoryType.PRIVATE,
  coherent: MemoryType.COHERENT,
  fsdax: MemoryType.FS_DAX,
  generic: MemoryType.GENERIC,
  p2pdma: MemoryType.PCI_P2PDMA,
};

const zoneName = z.enum(["DMA", "DMA32", "Normal", "Movable", "Device"]);

/** A QEMU `-device nvdimm` on a memory-backend-file (ACPI NFIT). */
const nvdimmEntry = z
  .object({
    size: size,
    label_size: size.default(0),
    node: z.number().int().min(0).max(1023).default(0),
    start: size.optional(),
  })
  .strict();

export const machineFileSchema = z
  .object({
    name: z.string().optional(),
    description: z.string().optional(),
    arch: z.string().default("x86_64"),
    kconfig: z.string().optional(),
    config: z.record(z.string(), z.union([z.enum(["y", "m", "n"]), z.boolean()])).default({}),
    e820: z.array(e820Entry).optional(),
    memory: z.array(range).optional(),
    append: z.string().default(""),
    numa: z
      .array(z.object({ node: z.number().int().min(0).max(1023), start: size, end: size.optional(), size: size.optional(), hotplug: z.boolean().default(false) }).strict())
      .default([]),
    platform: z.object({ early: z.array(platformResource).default([]), late: z.array(platformResource).default([]) }).strict().default({ early: [], late: [] }),
    kernel_image: z.array(z.object({ name: z.string(), start: size, end: size }).strict()).default([]),
    managed: z.array(z.object({ node: z.number().int().min(0), zone: zoneName, pages: z.number().int().min(0) }).strict()).default([]),
    hypervisor: z.boolean().default(false),
    modules: z.array(z.enum(["nd_pmem"])).default([]),
    nvdimms: z.array(nvdimmEntry).default([]),
    pgmaps: z.array(pgmapEntry).default([]),
    variant: z.string().optional(),
    memory_block_size: size.optional(),
  })
  .strict();

export type MachineFile = z.input<typeof machineFileSchema>;

function fail(where: string, path: ReadonlyArray<PropertyKey>, message: string): never {
  const field = path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
  throw new UsageError(field ? `${where}: ${field}` : where, message);
}

/** Validate a machine description (already parsed from YAML or a preset) and resolve it. */
export function resolveMachine(raw: unknown, where: string, lineOf?: (path: ReadonlyArray<PropertyKey>) => string): MachineSpec {
  const parsed = machineFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const loc = lineOf ? lineOf(issue.path) : where;
    fail(loc, issue.path, issue.message);
  }
  const m = parsed.data;
  const at = (path: Array<string | number>) => (lineOf ? lineOf(path) : where);
  let arch: ArchProfile;
  try {
    arch = archProfile(m.arch);
  } catch (e) {
    if (e instanceof UsageError) fail(at(["arch"]), ["arch"], e.reason);
    throw e;
  }
  let config: KernelConfig;
  try {
    const preset = m.kconfig ?? (arch.arch === "x86_64" ? "debian-6.1-amd64" : "defconfig");
    config = kconfigPreset(preset, arch, m.config);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${at(["config"])}: ${e.field}`, e.reason);
    throw e;
  }
  const limit = 2 ** arch.maxPhysmemBits;
  let e820: E820Entry[] | undefined;
  if (m.e820) {
    if (arch.arch !== "x86_64") fail(at(["e820"]), ["e820"], `e820 tables exist only on x86_64 (this is ${arch.name}): use memory`);
    e820 = m.e820.map((e, i) => {
      const len = e.end !== undefined ? e.end - e.start + 1 : e.size!;
      const type = typeof e.type === "number" ? e.type : e820TypeFromName(e.type)!;
      if (e.start + len > limit) fail(at(["e820", i]), ["e820", i], `ends above MAX_PHYSMEM_BITS (${arch.maxPhysmemBits} bits on ${arch.name})`);
      return { addr: e.start, size: len, type };
    });
    checkOverlaps(e820.map((e) => ({ start: e.addr, end: e.addr + e.size })), "e820", at);
  }
  const memory = m.memory?.map((r, i) => {
    if (r.endExcl > limit) fail(at(["memory", i]), ["memory", i], `ends above MAX_PHYSMEM_BITS (${arch.maxPhysmemBits} bits on ${arch.name})`);
    if (r.start % 2 ** arch.pageShift !== 0) fail(at(["memory", i]), ["memory", i, "start"], `not aligned to the ${2 ** arch.pageShift / 1024} KiB page size`);
    return { start: r.start, end: r.endExcl };
  });
  if (memory) checkOverlaps(memory, "memory", at);
  if (arch.arch === "x86_64" && !e820) fail(where, ["e820"], "an x86_64 machine needs an e820 table");
  if (arch.arch !== "x86_64" && !memory) fail(where, ["memory"], `an ${arch.arch} machine needs memory ranges`);
  const numa = m.numa.map((n, i) => {
    if ((n.end === undefined) === (n.size === undefined)) fail(at(["numa", i]), ["numa", i], "give exactly one of end (inclusive) or size");
    const end = n.end !== undefined ? n.end + 1 : n.start + n.size!;
    if (end > limit) fail(at(["numa", i]), ["numa", i], `ends above MAX_PHYSMEM_BITS (${arch.maxPhysmemBits} bits)`);
    return { node: n.node, start: n.start, end, hotplug: n.hotplug };
  });
  if (m.memory_block_size !== undefined) {
    const bs = m.memory_block_size;
    if ((bs & (bs - 1)) !== 0 || bs < 2 ** arch.sectionSizeBits) {
      fail(at(["memory_block_size"]), ["memory_block_size"], `must be a power of two of at least the section size (${2 ** arch.sectionSizeBits / 2 ** 20} MiB)`);
    }
  }
  const platform = (list: typeof m.platform.early): PlatformResource[] => list.map((p) => ({ name: p.name, start: p.start, end: p.end, op: p.op }));
  const nvdimms = resolveNvdimms(m.nvdimms, e820, arch, at);
  return {
    name: m.name ?? where,
    arch,
    config,
    e820,
    memory,
    commandLine: m.append,
    numa,
    platform: { early: platform(m.platform.early), late: platform(m.platform.late) },
    kernelImage: m.kernel_image,
    managed: m.managed,
    hypervisor: m.hypervisor,
    memoryBlockSize: m.memory_block_size,
    modules: m.modules,
    nvdimms,
    pgmaps: m.pgmaps.map((p) => {
      const type = PGMAP_TYPES[p.type]!;
      const ranges = p.ranges.map((r) => ({ start: r.start, end: r.endExcl - 1 }));
      const first = ranges[0]!;
      const needsOwner = type === MemoryType.PRIVATE || type === MemoryType.COHERENT;
      // Default ops: what the type requires (page_free, and migrate_to_ram for device-private).
      const ops = p.ops ?? (needsOwner ? ["page_free", ...(type === MemoryType.PRIVATE ? ["migrate_to_ram"] : [])] : []);
      return {
        device: p.device,
        type,
        ranges,
        nid: p.node,
        vmemmapShift: p.vmemmap_shift,
        altmap: p.altmap ? newAltmap(Math.floor(first.start / 2 ** arch.pageShift), Math.floor(first.end / 2 ** arch.pageShift), p.altmap.reserve, p.altmap.free) : null,
        owner: p.owner ?? (needsOwner ? p.device : null),
        ops: ops.length ? { pageFree: ops.includes("page_free") ? () => {} : undefined, migrateToRam: ops.includes("migrate_to_ram"), memoryFailure: ops.includes("memory_failure") } : null,
      };
    }),
    variant: m.variant === undefined ? undefined : (() => {
      try {
        return kernelVariant(m.variant);
      } catch (e) {
        if (e instanceof UsageError) fail(at(["variant"]), ["variant"], e.reason);
        throw e;
      }
    })(),
  };
}

/**
 * Place the NVDIMMs as QEMU does: from the device-memory base (4 GiB plus the RAM above 4 GiB, rounded up to
 * 1 GiB) one after the other, unless `start` (QEMU's addr=) pins one; slots in order.
 */
// ref: hw/i386/pc.c pc_memory_init (device_memory->base); hw/mem/memory-device.c memory_device_get_free_addr
function resolveNvdimms(
  list: ReadonlyArray<{ size: number; label_size: number; node: number; start?: number | undefined }>,
  e820: E820Entry[] | undefined,
  arch: ArchProfile,
  at: (path: Array<string | number>) => string,
): QemuNvdimm[] {
  if (list.length === 0) return [];
  if (arch.arch !== "x86_64" || !e820) fail(at(["nvdimms"]), ["nvdimms"], "QEMU NVDIMMs (ACPI NFIT) are modelled on x86_64 q35 machines only");
  const GiB = 2 ** 30;
  const ramEnd = Math.max(4 * GiB, ...e820.filter((e) => e.type === 1 && e.addr + e.size > 4 * GiB).map((e) => e.addr + e.size));
  let next = Math.ceil(ramEnd / GiB) * GiB;
  const out = list.map((d, i): QemuNvdimm => {
    const why = qemuNvdimmCheck({ size: d.size, labelSize: d.label_size });
    if (why) fail(at(["nvdimms", i]), ["nvdimms", i], why);
    const start = d.start ?? next;
    if (start % 4096) fail(at(["nvdimms", i, "start"]), ["nvdimms", i, "start"], "must be 4K aligned");
    if (start + d.size > 2 ** arch.maxPhysmemBits) fail(at(["nvdimms", i]), ["nvdimms", i], `ends above MAX_PHYSMEM_BITS (${arch.maxPhysmemBits} bits)`);
    next = Math.max(next, start + d.size);
    return { start, size: d.size, labelSize: d.label_size, node: d.node, slot: i };
  });
  for (const [i, d] of out.entries()) {
    for (const e of e820) {
      if (e.type === 1 && d.start < e.addr + e.size && e.addr < d.start + d.size) fail(at(["nvdimms", i]), ["nvdimms", i], "overlaps usable RAM in the e820 table");
    }
  }
  checkOverlaps(out.map((d) => ({ start: d.start, end: d.start + d.size })), "nvdimms", at);
  return out;
}

function checkOverlaps(ranges: Array<{ start: number; end: number }>, field: string, at: (p: Array<string | number>) => string): void {
  const order = ranges.map((r, i) => ({ ...r, i })).sort((a, b) => a.start - b.start);
  for (let j = 1; j < order.length; j++) {
    const a = order[j - 1]!;
    const b = order[j]!;
    if (b.start < a.end) fail(at([field, b.i]), [field, b.i], `overlaps ${field}[${a.i}]`);
  }
}

/** Read a YAML machine file; errors carry file:line. */
export function loadMachineFile(file: string, text?: string): MachineSpec {
  const { doc, lineCounter } = readYamlFile(file, text);
  const lineOf = (path: ReadonlyArray<PropertyKey>): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) return `${file}:${lineCounter.linePos(node.range[0]).line}`;
    }
    return file;
  };
  return resolveMachine(doc.toJS(), file, lineOf);
}

/**
 * The NVDIMMs of a QEMU command line: each `-device nvdimm,memdev=ID[,label-size=S][,node=N][,addr=A]` with the
 * size of its `-object memory-backend-*,id=ID,size=S`. Bad or missing values are UsageErrors.
 */
// ref: hw/mem/nvdimm.c (label-size), hw/mem/pc-dimm.c (memdev, node, addr, slot)
export function nvdimmsFromQemuCmdline(cmdline: string, where = "qemu command line"): Array<{ size: number; label_size: number; node: number; start?: number }> {
  const words = cmdline.trim().split(/\s+/);
  const props = (arg: string) => {
    const [type, ...rest] = arg.split(",");
    const m = new Map<string, string>();
    for (const kv of rest) {
      const eq = kv.indexOf("=");
      m.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? "on" : kv.slice(eq + 1));
    }
    return { type: type ?? "", props: m };
  };
  const backends = new Map<string, string>();
  const devices: Array<Map<string, string>> = [];
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === "-object") {
      const o = props(words[i + 1]!);
      const id = o.props.get("id");
      const sz = o.props.get("size");
      if (o.type.startsWith("memory-backend-") && id && sz) backends.set(id, sz);
    } else if (words[i] === "-device") {
      const d = props(words[i + 1]!);
      if (d.type === "nvdimm") devices.push(d.props);
    }
  }
  const num = (v: string, what: string) => {
    const r = parseSize(v);
    if (typeof r === "string") throw new UsageError(where, `${what}: ${r}`);
    return r;
  };
  return devices.map((d, i) => {
    const memdev = d.get("memdev");
    const backing = memdev ? backends.get(memdev) : undefined;
    if (!memdev || backing === undefined) throw new UsageError(where, `nvdimm #${i}: no memory backend with a size for memdev=${memdev ?? "(none)"}`);
    const entry: { size: number; label_size: number; node: number; start?: number } = {
      size: num(backing, `${memdev} size`),
      label_size: d.has("label-size") ? num(d.get("label-size")!, "label-size") : 0,
      node: d.has("node") ? Number(d.get("node")) : 0,
    };
    if (d.has("addr")) entry.start = num(d.get("addr")!, "addr");
    return entry;
  });
}

/** Build a machine from a pasted dmesg plus an optional command line (x86_64: BIOS-e820 + SRAT). */
export function machineFromDmesg(
  file: string,
  append: string | undefined,
  archName = "x86_64",
  text?: string,
  modules: Array<"nd_pmem"> = [],
  opts: { qemu?: string } = {},
): MachineSpec {
  let src: string;
  try {
    src = text ?? readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const d = parseDmesg(src, file);
  const raw: MachineFile = {
    name: file,
    arch: archName,
    e820: d.firmwareE820.map((e) => ({ start: e.addr, size: e.size, type: e.type })),
    append: append ?? d.commandLine ?? "",
    modules,
    numa: d.srat.map((s) => ({ node: s.node, start: s.start, size: s.end - s.start, hotplug: s.hotplug })),
  };
  if (opts.qemu !== undefined) {
    // Where the firmware put each NVDIMM is in the SRAT (its non-volatile range); the QEMU line has its sizes.
    const nv = d.srat.filter((s) => s.nonVolatile);
    raw.nvdimms = nvdimmsFromQemuCmdline(opts.qemu).map((n, i) => {
      const spa = nv[i];
      return spa && spa.end - spa.start === n.size - n.label_size && n.start === undefined ? { ...n, start: spa.start, node: spa.node } : n;
    });
  }
  return resolveMachine(raw, file);
}
