/**
 * Huge PMD/PUD entries for device memory (mm/huge_memory.c): inserting devmap PMDs and PUDs, zapping
 * them, and the GUP lookup of a devmap huge entry (follow_devmap_pmd/pud).
 */
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step } from "../path.ts";
import { entryNone, entryPfn, type PfnT, pfnTDevmap } from "./memory.ts";
import { VM_FAULT_NOPAGE, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_MIXEDMAP, VM_PFNMAP, VM_WRITE, type Vma, type VmFault } from "./mm_types.ts";
import type { PtTable } from "./pgtable.ts";

function softDirty(k: Kernel): boolean {
  return k.arch.arch === "x86_64" && k.config.enabled("MEM_SOFT_DIRTY");
}

/** vmf_insert_pfn_pmd / vmf_insert_pfn_pud: a devmap huge entry, no reference taken. */
// ref: mm/huge_memory.c vmf_insert_pfn_pmd_prot, insert_pfn_pmd, vmf_insert_pfn_pud_prot, insert_pfn_pud
export function* vmfInsertPfnHuge(k: Kernel, vmf: VmFault, size: "pmd" | "pud", pfn: PfnT, write: boolean): KernelPath<number> {
  const vma = vmf.vma;
  const pt = vma.mm.pgd;
  const shift = size === "pmd" ? k.arch.pmdShift : (k.arch.pudShift ?? 0);
  const addr = vmf.address - (vmf.address % 2 ** shift);
  if (!(vma.flags & (VM_PFNMAP | VM_MIXEDMAP)) && !pfnTDevmap(k, pfn)) {
    k.sanitizer.report({ kind: "warning", at: `vmf_insert_pfn_${size}_prot`, detail: "BUG_ON: a device pfn without pfn_t_devmap in a VMA that is neither VM_PFNMAP nor VM_MIXEDMAP" });
    return VM_FAULT_SIGBUS;
  }
  if (addr < vma.start || addr >= vma.end) return VM_FAULT_SIGBUS;
  const slot = pt.walk(addr, size, true);
  if (slot === "enomem" || slot === null || "leafAbove" in slot) return VM_FAULT_OOM;
  yield step(`insert_pfn_${size}: ${size}_lock`);
  const { table: t, idx } = slot;
  const f = pt.fmt;
  if (!entryNone(t, idx)) {
    if (write && entryPfn(pt, t, idx) === pfn.pfn) {
      let e = f.mkdirty(f.mkyoung(pt.entry(slot)), softDirty(k));
      if (vma.flags & VM_WRITE) e = f.mkwrite(e);
      pt.set(t, idx, e);
    }
    yield step(`insert_pfn_${size}: spin_unlock`);
    return VM_FAULT_NOPAGE;
  }
  let e = f.mkhuge(f.pfnEntry(pfn.pfn, vma.pageProt));
  if (pfnTDevmap(k, pfn)) e = f.hugeMkdevmap(e);
  if (write) {
    e = f.mkyoung(f.mkdirty(e, softDirty(k)));
    if (vma.flags & VM_WRITE) e = f.mkwrite(e);
  }
  pt.set(t, idx, e);
  yield step(`insert_pfn_${size}: set_${size}_at; spin_unlock`);
  return VM_FAULT_NOPAGE;
}

/** zap_huge_pmd / zap_huge_pud on a DAX (special huge) VMA: clear the entry; devmap pages hold no reference. */
// ref: mm/huge_memory.c zap_huge_pmd, zap_huge_pud
export function* zapHugeEntry(_k: Kernel, vma: Vma, t: PtTable, idx: number): KernelPath<void> {
  const pt = vma.mm.pgd;
  yield step(`zap_huge_${pt.levels[t.depth]!.name}: ${pt.levels[t.depth]!.name}_lock`);
  // Devmap or not, a huge entry in a DAX VMA is a special huge mapping (vma_is_special_huge): no reference to put.
  pt.clear(t, idx);
}

/**
 * __split_huge_pmd / __split_huge_pud of a huge entry in a DAX VMA (vma_is_special_huge): nothing is split
 * into a lower table; the entry is cleared (pmdp_huge_clear_flush_notify), so the fault that asked for the
 * split re-faults the address at the next level down. Devmap pages hold no reference to drop.
 */
// ref: mm/huge_memory.c __split_huge_pmd, __split_huge_pmd_locked, __split_huge_pud, __split_huge_pud_locked
export function* splitHugeEntry(_k: Kernel, vma: Vma, t: PtTable, idx: number): KernelPath<void> {
  const pt = vma.mm.pgd;
  const level = pt.levels[t.depth]!.name;
  yield step(`__split_huge_${level}: ${level}_lock`);
  pt.clear(t, idx);
  yield step(`__split_huge_${level}_locked: ${level}p_huge_clear_flush_notify`);
}
