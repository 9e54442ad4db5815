/**
 * A process's page tables and mappings as a kernel developer reads them: every leaf entry with its raw value
 * and decoded bits (runs of identical 4 KiB entries folded into one line), and an smaps-like view of its VMAs.
 */
import { type PteFlag, testBit } from "../arch/pte.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { entryDevmap } from "../kernel/mm/memory.ts";
import { type MmStruct, type Task, VM_EXEC, VM_FLAG_MNEMONICS, VM_MAYSHARE, VM_READ, VM_WRITE, type Vma } from "../kernel/mm/mm_types.ts";

/** The kernel's names for the bits, per arch (pgtable_types.h / pgtable-hwdef.h / book3s pgtable.h). */
const BIT_NAMES: Record<string, Partial<Record<PteFlag, string>>> = {
  x86_64: { present: "PRESENT", write: "RW", user: "USER", accessed: "ACCESSED", dirty: "DIRTY", huge: "PSE", special: "SPECIAL", softDirty: "SOFT_DIRTY", devmap: "DEVMAP", noExec: "NX" },
  arm64: {
    present: "VALID",
    leaf: "TABLE_BIT",
    user: "USER",
    readOnly: "RDONLY",
    shared: "SHARED",
    accessed: "AF",
    notGlobal: "NG",
    write: "WRITE(DBM)",
    privNoExec: "PXN",
    noExec: "UXN",
    dirty: "DIRTY",
    special: "SPECIAL",
    devmap: "DEVMAP",
  },
  ppc64: { write: "WRITE", read: "READ", dirty: "DIRTY", accessed: "ACCESSED", special: "SPECIAL", devmap: "DEVMAP", leaf: "PTE", present: "PRESENT" },
};

export interface PageTableLeaf {
  /** First virtual address and the size each entry maps. */
  start: number;
  end: number;
  level: string;
  /** Entries in this run (consecutive addresses, consecutive pfns, same bits). */
  count: number;
  entry: string;
  pfn: number;
  bits: string[];
  devmap: boolean;
}

export interface PageTableReport {
  pid: number;
  comm: string;
  layout: string;
  tablePages: number;
  tableBytes: number;
  leaves: PageTableLeaf[];
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export function pageTableReport(k: Kernel, task: Task): PageTableReport {
  const pt = task.mm.pgd;
  const names = BIT_NAMES[pt.fmt.arch] ?? {};
  const leaves: PageTableLeaf[] = [];
  pt.forEachLeaf((t, i, l, start) => {
    const size = 2 ** l.shift;
    const lo = t.lo[i]!;
    const hi = t.hi[i]!;
    const bits: string[] = [];
    for (const [flag, n] of Object.entries(pt.fmt.bits) as Array<[PteFlag, number]>) {
      if (n >= 0 && testBit(lo, hi, n) && names[flag]) bits.push(names[flag]!);
    }
    const pfn = pt.fmt.entryPfn(lo, hi);
    const prev = leaves[leaves.length - 1];
    const value = ((BigInt(hi) << 32n) | BigInt(lo)).toString(16).padStart(16, "0");
    const same = prev && prev.level === l.name && prev.end === start && prev.pfn + (prev.count * size) / k.geo.pageSize === pfn && prev.bits.join() === bits.join();
    if (same) {
      prev.count++;
      prev.end = start + size;
      return;
    }
    leaves.push({ start, end: start + size, level: l.name, count: 1, entry: value, pfn, bits, devmap: entryDevmap(k, pt, t, i) });
  });
  return {
    pid: task.pid,
    comm: task.comm,
    layout: `${k.arch.name}: ${pt.levels.map((l) => `${l.display}[${2 ** l.indexBits}]`).join(" → ")}`,
    tablePages: pt.pages,
    tableBytes: pt.pages * k.geo.pageSize,
    leaves,
  };
}

export function renderPageTable(r: PageTableReport): string {
  const lines = [`pid ${r.pid} (${r.comm}): ${r.layout}; ${r.tablePages} page-table pages (${r.tableBytes / 1024} KiB)`];
  if (r.leaves.length === 0) lines.push("  (no entries)");
  for (const l of r.leaves) {
    const run = l.count > 1 ? ` ×${l.count}` : "";
    const pfns = l.count > 1 ? `pfn ${hex(l.pfn)}..` : `pfn ${hex(l.pfn)}`;
    lines.push(`  ${hex(l.start)}-${hex(l.end)} ${l.level}${run} ${l.entry} ${pfns} ${l.bits.join(" ")}`);
  }
  return `${lines.join("\n")}\n`;
}

/** smaps for one VMA: device memory is never counted in Rss (vm_normal_page[_pmd] is NULL for devmap entries). */
// ref: fs/proc/task_mmu.c show_map_vma, show_smap, smaps_pte_entry, smaps_pmd_entry, show_smap_vma_flags
export function renderSmaps(k: Kernel, mm: MmStruct): string {
  const out: string[] = [];
  for (const v of mm.vmas) {
    const perms = `${v.flags & VM_READ ? "r" : "-"}${v.flags & VM_WRITE ? "w" : "-"}${v.flags & VM_EXEC ? "x" : "-"}${v.flags & VM_MAYSHARE ? "s" : "p"}`;
    out.push(`${v.start.toString(16).padStart(8, "0")}-${v.end.toString(16).padStart(8, "0")} ${perms} ${(v.pgoff * k.geo.pageSize).toString(16).padStart(8, "0")} 00:00 0${" ".repeat(21)}${v.file?.path ?? ""}`);
    const kb = (n: number) => `${String(n / 1024).padStart(8)} kB`;
    const pagesize = v.ops?.pagesize?.(v) ?? k.geo.pageSize;
    out.push(`Size:           ${kb(v.end - v.start)}`);
    out.push(`KernelPageSize: ${kb(pagesize)}`);
    out.push(`MMUPageSize:    ${kb(pagesize)}`);
    out.push(`Rss:            ${kb(0)}`);
    out.push(`VmFlags: ${vmFlags(v)}`);
  }
  return `${out.join("\n")}\n`;
}

function vmFlags(v: Vma): string {
  return `${VM_FLAG_MNEMONICS.filter(([b]) => v.flags & b)
    .map(([, n]) => n)
    .join(" ")} `;
}
