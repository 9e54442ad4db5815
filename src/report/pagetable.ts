/**
 * A process's page tables and mappings as a kernel developer reads them: every leaf entry with its raw value
 * and decoded bits (runs of identical 4 KiB entries folded into one line), and its /proc/PID/smaps.
 */
import { type PteFlag, testBit } from "../arch/pte.ts";
import { PSS_SHIFT, smapGatherStats } from "../kernel/fs/proc/task_mmu.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { entryDevmap } from "../kernel/mm/memory.ts";
import { type MmStruct, type Task, VM_EXEC, VM_FLAG_MNEMONICS, VM_MAYSHARE, VM_READ, VM_WRITE, type Vma, vmaIsDax } from "../kernel/mm/mm_types.ts";

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

/**
 * /proc/PID/smaps as 6.1 prints it for the process's VMAs, with each VMA's counters from the model's page tables
 * and memmap (smapGatherStats, src/kernel/fs/proc/task_mmu.ts). What 6.1 counts, by entry:
 * - a devmap PMD: follow_trans_huge_pmd() returns its page, smaps_account(compound = true) counts compound_nr()
 *   pages — a device-dax 2 MiB page (compound, vmemmap_shift 9): 2048 kB of Rss and Pss; an fsdax PMD (pmem's
 *   pages are not compound): 4 kB. Private_Dirty or Private_Clean by the PMD's dirty bit (device pages idle at
 *   refcount 1 and are never rmapped), Referenced by its young bit; no AnonHugePages/ShmemPmdMapped/FilePmdMapped
 *   (is_zone_device_page passes).
 * - a devmap or special PTE (device-dax 4 KiB, fsdax PTEs, any device pfn without pte_devmap): vm_normal_page() is
 *   NULL, nothing is counted.
 * - a devmap PUD (device-dax 1 GiB): the page walk splits it — clears it — and counts nothing. Rendering smaps
 *   therefore unmaps 1 GiB device-dax entries, as reading the file does in 6.1.
 * Where this differs from the real file: the header's device and inode are 00:00 0 (the model has no inode numbers
 * or superblock devices); ProtectionKey (printed when the CPU has protection keys) is left out; THPeligible is
 * printed for DAX VMAs only (hugepage_vma_check(…, in_pf = false) is false for them; the model maps nothing else).
 * Anonymous memory the model keeps apart from its page tables (mm/rmap.ts: no VMA) is not shown.
 */
// ref: fs/proc/task_mmu.c show_smap, show_map_vma, show_vma_header_prefix, __show_smap, show_smap_vma_flags; mm/huge_memory.c hugepage_vma_check
export function renderSmaps(k: Kernel, mm: MmStruct): string {
  const out: string[] = [];
  const kb = (n: number) => `${String(Math.floor(n / 1024)).padStart(8)} kB`;
  const pssKb = (n: bigint) => `${String((n >> PSS_SHIFT) >> 10n).padStart(8)} kB`;
  for (const v of [...mm.vmas]) {
    const mss = smapGatherStats(k, v);
    const perms = `${v.flags & VM_READ ? "r" : "-"}${v.flags & VM_WRITE ? "w" : "-"}${v.flags & VM_EXEC ? "x" : "-"}${v.flags & VM_MAYSHARE ? "s" : "p"}`;
    const pgoff = v.file ? v.pgoff * k.geo.pageSize : 0;
    const prefix = `${hex8(v.start)}-${hex8(v.end)} ${perms} ${hex8(pgoff)} 00:00 0 `;
    // seq_setwidth(25 + sizeof(void *) * 6 - 1), then seq_pad(m, ' ') before the path.
    out.push(v.file ? `${prefix.padEnd(72)} ${v.file.path}` : prefix);
    const pagesize = v.ops?.pagesize?.(v) ?? k.geo.pageSize;
    out.push(`Size:           ${kb(v.end - v.start)}`);
    out.push(`KernelPageSize: ${kb(pagesize)}`);
    out.push(`MMUPageSize:    ${kb(pagesize)}`);
    out.push(`Rss:            ${kb(mss.resident)}`);
    out.push(`Pss:            ${pssKb(mss.pss)}`);
    out.push(`Pss_Dirty:      ${pssKb(mss.pssDirty)}`);
    out.push(`Shared_Clean:   ${kb(mss.sharedClean)}`);
    out.push(`Shared_Dirty:   ${kb(mss.sharedDirty)}`);
    out.push(`Private_Clean:  ${kb(mss.privateClean)}`);
    out.push(`Private_Dirty:  ${kb(mss.privateDirty)}`);
    out.push(`Referenced:     ${kb(mss.referenced)}`);
    out.push(`Anonymous:      ${kb(mss.anonymous)}`);
    out.push(`LazyFree:       ${kb(mss.lazyfree)}`);
    out.push(`AnonHugePages:  ${kb(mss.anonymousThp)}`);
    out.push(`ShmemPmdMapped: ${kb(mss.shmemThp)}`);
    out.push(`FilePmdMapped:  ${kb(mss.fileThp)}`);
    out.push(`Shared_Hugetlb: ${kb(mss.sharedHugetlb)}`);
    out.push(`Private_Hugetlb: ${String(Math.floor(mss.privateHugetlb / 1024)).padStart(7)} kB`);
    out.push(`Swap:           ${kb(mss.swap)}`);
    out.push(`SwapPss:        ${pssKb(mss.swapPss)}`);
    out.push(`Locked:         ${pssKb(mss.pssLocked)}`);
    if (vmaIsDax(v)) out.push("THPeligible:    0");
    out.push(`VmFlags: ${vmFlags(v)}`);
  }
  return `${out.join("\n")}\n`;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function vmFlags(v: Vma): string {
  return `${VM_FLAG_MNEMONICS.filter(([b]) => v.flags & b)
    .map(([, n]) => n)
    .join(" ")} `;
}
