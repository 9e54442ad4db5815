/**
 * Page faults, pfn insertion and zapping (mm/memory.c) for the mappings ZONE_DEVICE memory gets: DAX
 * files and device-dax. Devmap entries are inserted without page references or mapcounts (vm_normal_page
 * returns NULL for them), so zapping them only clears the entry.
 */
import { testBit } from "../../arch/pte.ts";
import type { Kernel } from "../kernel.ts";
import { type KernelPath, step } from "../path.ts";
import { splitHugeEntry, zapHugeEntry } from "./huge_memory.ts";
import {
  type AddressSpace,
  type PageEntrySize,
  VM_FAULT_FALLBACK,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_MIXEDMAP,
  VM_NOHUGEPAGE,
  VM_WRITE,
  type Vma,
  type VmFault,
  vmaIsDax,
} from "./mm_types.ts";
import { type PageTable, type PtTable, pfnTDevmap as variantPfnTDevmap } from "./pgtable.ts";

/** pfn_t flags (include/linux/pfn_t.h). */
export const PFN_DEV = 1 << 1;
export const PFN_MAP = 1 << 2;
export const PFN_SPECIAL = 1 << 3;

export interface PfnT {
  pfn: number;
  /** PFN_DEV | PFN_MAP | PFN_SPECIAL */
  flags: number;
}

/**
 * pfn_t_devmap by the Kconfig symbol alone: it does not look at the variant's archHasPteDevmap, so on
 * arm64-no-pte-devmap it is still true for PFN_DEV|PFN_MAP. vmf_insert_pfn_pmd/pud (mm/huge_memory.ts) and
 * dax_iomap_direct_access (fs/dax.ts) use it. With the variant-aware pgtable.ts pfnTDevmap they would, as 6.1's
 * code does, BUG_ON a device PMD in a VMA without VM_MIXEDMAP and refuse an fsdax PMD (-EINVAL, PTE fallback) —
 * but scenarios/seed000-gup-fast-unbind-no-devmap.yaml and test/kernel/mm/gup_nodevmap.test.ts map fsdax PMDs on
 * that variant. insert_pfn and vm_mixed_ok here use the variant-aware one.
 */
// ref: include/linux/pfn_t.h pfn_t_devmap
export function pfnTDevmap(k: Kernel, p: PfnT): boolean {
  const both = PFN_DEV | PFN_MAP;
  return k.config.enabled("ARCH_HAS_PTE_DEVMAP") && (p.flags & both) === both;
}

/** Entry predicates on a stored (lo, hi) entry, per the arch's encoding. */
export function entryNone(t: PtTable, idx: number): boolean {
  return t.lo[idx] === 0 && t.hi[idx] === 0;
}

export function entryPresent(pt: PageTable, t: PtTable, idx: number): boolean {
  return testBit(t.lo[idx]!, t.hi[idx]!, pt.fmt.bits.present);
}

export function entryWrite(pt: PageTable, t: PtTable, idx: number): boolean {
  return testBit(t.lo[idx]!, t.hi[idx]!, pt.fmt.bits.write);
}

/** pte_devmap / pmd_devmap / pud_devmap, with the generic fallbacks (0 without ARCH_HAS_PTE_DEVMAP, PUD only on x86). */
// ref: include/linux/mm.h pte_devmap; include/linux/pgtable.h pmd_devmap, pud_devmap
export function entryDevmap(k: Kernel, pt: PageTable, t: PtTable, idx: number): boolean {
  if (!pt.devmapAt(k, t.depth)) return false;
  return testBit(t.lo[idx]!, t.hi[idx]!, pt.fmt.bits.devmap);
}

export function entrySpecial(pt: PageTable, t: PtTable, idx: number): boolean {
  return testBit(t.lo[idx]!, t.hi[idx]!, pt.fmt.bits.special);
}

export function entryPfn(pt: PageTable, t: PtTable, idx: number): number {
  return pt.fmt.entryPfn(t.lo[idx]!, t.hi[idx]!);
}

/** pte_access_permitted / pmd_access_permitted: present, user-accessible, and writable if asked. */
// ref: arch/x86/include/asm/pgtable.h __pte_access_permitted; arch/arm64/include/asm/pgtable.h pte_access_permitted
export function entryAccessPermitted(pt: PageTable, t: PtTable, idx: number, write: boolean): boolean {
  const lo = t.lo[idx]!;
  const hi = t.hi[idx]!;
  const b = pt.fmt.bits;
  if (!testBit(lo, hi, b.present)) return false;
  if (b.user !== undefined && !testBit(lo, hi, b.user)) return false;
  return !write || testBit(lo, hi, b.write);
}

/** linear_page_index */
export function linearPageIndex(k: Kernel, vma: Vma, addr: number): number {
  return (addr - vma.start) / k.geo.pageSize + vma.pgoff;
}

// ref: include/linux/mm.h maybe_mkwrite
function maybeMkwrite(pt: PageTable, e: bigint, vma: Vma): bigint {
  return vma.flags & VM_WRITE ? pt.fmt.mkwrite(e) : e;
}

function softDirty(k: Kernel): boolean {
  return k.arch.arch === "x86_64" && k.config.enabled("MEM_SOFT_DIRTY");
}

/** insert_pfn: a devmap (or special) PTE, no reference taken; an existing entry is only made writable. */
// ref: mm/memory.c insert_pfn
function* insertPfn(k: Kernel, vma: Vma, addr: number, pfn: PfnT, prot: bigint, mkwrite: boolean): KernelPath<number> {
  const pt = vma.mm.pgd;
  const slot = pt.walk(addr, "pte", true);
  if (slot === "enomem" || slot === null || "leafAbove" in slot) return VM_FAULT_OOM;
  yield step("insert_pfn: get_locked_pte");
  const { table: t, idx } = slot;
  if (!entryNone(t, idx)) {
    if (mkwrite && entryPfn(pt, t, idx) === pfn.pfn) {
      pt.set(t, idx, maybeMkwrite(pt, pt.fmt.mkdirty(pt.fmt.mkyoung(pt.entry(slot)), softDirty(k)), vma));
    }
    yield step("insert_pfn: pte_unmap_unlock");
    return VM_FAULT_NOPAGE;
  }
  let entry = pt.fmt.pfnEntry(pfn.pfn, prot);
  // Without pte_devmap the entry is only special: GUP-fast can no longer tell it from a normal page's.
  entry = variantPfnTDevmap(k, pfn) ? pt.fmt.pteMkdevmap(entry) : entry | (1n << BigInt(pt.fmt.bits.special ?? 0));
  if (mkwrite) entry = maybeMkwrite(pt, pt.fmt.mkdirty(pt.fmt.mkyoung(entry), softDirty(k)), vma);
  pt.set(t, idx, entry);
  yield step("insert_pfn: set_pte_at; pte_unmap_unlock");
  return VM_FAULT_NOPAGE;
}

/**
 * vm_mixed_ok: a device pfn needs pfn_t_devmap() — false without pte_devmap (arm64-no-pte-devmap) — or a
 * VM_MIXEDMAP VMA, which device-dax's and the DAX filesystems' mmap no longer set (since v4.15).
 */
// ref: mm/memory.c vm_mixed_ok; include/linux/pfn_t.h pfn_t_devmap, pfn_t_special
function vmMixedOk(k: Kernel, vma: Vma, pfn: PfnT): boolean {
  if (vma.flags & VM_MIXEDMAP) return true;
  if (variantPfnTDevmap(k, pfn)) return true;
  return (pfn.flags & PFN_SPECIAL) !== 0 && k.config.enabled("ARCH_HAS_PTE_SPECIAL");
}

/** vmf_insert_mixed / vmf_insert_mixed_mkwrite */
// ref: mm/memory.c __vm_insert_mixed
export function* vmfInsertMixed(k: Kernel, vma: Vma, addr: number, pfn: PfnT, mkwrite = false): KernelPath<number> {
  if (!vmMixedOk(k, vma, pfn)) {
    k.sanitizer.report({ kind: "warning", at: "__vm_insert_mixed", detail: "BUG_ON(!vm_mixed_ok(vma, pfn)): a device pfn without pte_devmap in a VMA that is not VM_MIXEDMAP" });
    return VM_FAULT_SIGBUS;
  }
  if (addr < vma.start || addr >= vma.end) return VM_FAULT_SIGBUS;
  return yield* insertPfn(k, vma, addr, pfn, vma.pageProt, mkwrite);
}

/** __transparent_hugepage_enabled → hugepage_vma_check(vma, vm_flags, false, in_pf = true, true) for DAX VMAs. */
// ref: mm/huge_memory.c hugepage_vma_check
function hugeFaultsAllowed(k: Kernel, vma: Vma): boolean {
  if (!k.config.enabled("TRANSPARENT_HUGEPAGE")) return false;
  if (vma.flags & VM_NOHUGEPAGE) return false;
  return vmaIsDax(vma);
}

/** What one fault did, for traces and reports. */
export interface FaultOutcome {
  /** VM_FAULT_* bits (0 or NOPAGE = handled). */
  ret: number;
  /** The entry size that ended up handling it. */
  size: PageEntrySize | null;
}

/**
 * handle_mm_fault for a user access at `address`: find the VMA, try a PUD then a PMD huge fault where the
 * mapping allows it, else the PTE fault. A write to a read-only huge entry goes back to ->huge_fault; when
 * that falls back, the entry is split (for DAX: zapped) and the fault continues a level down. Errors are
 * VM_FAULT_SIGSEGV (no VMA / no permission) and what the handlers return.
 */
// ref: mm/memory.c handle_mm_fault, __handle_mm_fault, create_huge_pud, create_huge_pmd, wp_huge_pud, wp_huge_pmd, handle_pte_fault, do_fault, wp_pfn_shared
export function* handleMmFault(k: Kernel, vmaIn: Vma | null, address: number, write: boolean): KernelPath<FaultOutcome> {
  const vma = vmaIn;
  if (!vma || address < vma.start || address >= vma.end) return { ret: VM_FAULT_SIGSEGV, size: null };
  if (write && !(vma.flags & VM_WRITE)) return { ret: VM_FAULT_SIGSEGV, size: null };
  const pt = vma.mm.pgd;
  const vmf: VmFault = { vma, address, realAddress: address, write, pgoff: linearPageIndex(k, vma, pageDown(k, address)) };
  yield step("handle_mm_fault");
  const huge = hugeFaultsAllowed(k, vma) && vma.ops?.hugeFault;
  for (const size of ["pud", "pmd"] as const) {
    const depth = pt.depthOf(size);
    if (depth < 0) continue;
    const slot = pt.walk(address, size, true);
    if (slot === "enomem") return { ret: VM_FAULT_OOM, size };
    if (slot === null) continue;
    if ("leafAbove" in slot) return { ret: 0, size: slot.leafAbove.level.name as PageEntrySize };
    const { table: t, idx } = slot;
    if (entryNone(t, idx)) {
      if (size === "pud" && !k.config.enabled("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD")) continue;
      if (!huge) continue;
      const ret = yield* vma.ops!.hugeFault!(vmf, size);
      if (!(ret & VM_FAULT_FALLBACK)) return { ret, size };
      continue;
    }
    if (pt.isLeaf(t, idx)) {
      if (!write || entryWrite(pt, t, idx)) {
        pt.set(t, idx, pt.fmt.mkyoung(pt.entry(slot)));
        return { ret: 0, size };
      }
      // wp_huge_pmd / wp_huge_pud: a write to a read-only huge entry goes back to ->huge_fault; if that falls
      // back (a private CoW write, dax_direct_access failing, an fs that cannot map it whole any more), the
      // entry is split — for a DAX VMA: cleared — and the fault goes on a level down, to the PTE fault.
      if (vma.ops?.hugeFault) {
        const ret = yield* vma.ops.hugeFault(vmf, size);
        if (!(ret & VM_FAULT_FALLBACK)) return { ret, size };
      }
      yield* splitHugeEntry(k, vma, t, idx);
      // On to the next level down (the PMD under a split PUD, else handle_pte_fault).
    }
  }
  // handle_pte_fault
  const slot = pt.walk(address, "pte", true);
  if (slot === "enomem") return { ret: VM_FAULT_OOM, size: "pte" };
  if (slot === null || "leafAbove" in slot) return { ret: 0, size: "pte" };
  const { table: t, idx } = slot;
  vmf.address = pageDown(k, address);
  if (entryNone(t, idx)) {
    if (!vma.ops?.fault) return { ret: VM_FAULT_SIGBUS, size: "pte" };
    const ret = yield* vma.ops.fault(vmf);
    return { ret, size: "pte" };
  }
  if (write && !entryWrite(pt, t, idx)) {
    // do_wp_page → wp_pfn_shared: ->pfn_mkwrite (the filesystem's fault handler again) or just make it writable.
    if (vma.ops?.pfnMkwrite && vma.ops.fault) {
      const ret = yield* vma.ops.fault(vmf);
      return { ret, size: "pte" };
    }
    pt.set(t, idx, maybeMkwrite(pt, pt.fmt.mkdirty(pt.fmt.mkyoung(pt.entry(slot)), softDirty(k)), vma));
    return { ret: 0, size: "pte" };
  }
  pt.set(t, idx, pt.fmt.mkyoung(pt.entry(slot)));
  return { ret: 0, size: "pte" };
}

function pageDown(k: Kernel, addr: number): number {
  return addr - (addr % k.geo.pageSize);
}

/**
 * zap_page_range for one VMA: clear every entry in [start, end). Devmap/special entries carry no page
 * reference, so nothing is put; huge entries that straddle the range edge are cleared whole (DAX VMAs
 * are split only at their alignment).
 */
// ref: mm/memory.c unmap_page_range, zap_pmd_range, zap_pte_range; mm/huge_memory.c zap_huge_pmd, zap_huge_pud
export function* zapPageRange(k: Kernel, vma: Vma, start: number, end: number): KernelPath<number> {
  const pt = vma.mm.pgd;
  let zapped = 0;
  const visit = function* (t: PtTable, base: number): KernelPath<void> {
    const l = pt.levels[t.depth]!;
    const size = 2 ** l.shift;
    const first = Math.max(0, Math.floor((start - base) / size));
    const last = Math.min(2 ** l.indexBits - 1, Math.floor((end - 1 - base) / size));
    for (let i = first; i <= last; i++) {
      const c = t.child[i];
      if (c) {
        yield* visit(c, base + i * size);
        continue;
      }
      if (entryNone(t, i)) continue;
      if (t.depth < pt.levels.length - 1) {
        yield* zapHugeEntry(k, vma, t, i);
      } else {
        pt.clear(t, i);
      }
      zapped++;
    }
    if (t.depth === pt.levels.length - 1) yield step("zap_pte_range: pte_unmap_unlock");
  };
  yield* visit(pt.root, 0);
  yield step("zap_page_range: tlb_finish_mmu");
  return zapped;
}

/** unmap_mapping_range: zap the user mappings of a file's pages [pgoff, pgoff + nr) (nr 0 = to the end). */
// ref: mm/memory.c unmap_mapping_range, unmap_mapping_range_tree
export function* unmapMappingRange(k: Kernel, mapping: AddressSpace, pgoff: number, nr: number): KernelPath<number> {
  const last = nr === 0 ? Number.MAX_SAFE_INTEGER : pgoff + nr - 1;
  let zapped = 0;
  yield step("unmap_mapping_range: i_mmap_lock_read");
  for (const vma of [...mapping.iMmap]) {
    const vStart = vma.pgoff;
    const vEnd = vma.pgoff + (vma.end - vma.start) / k.geo.pageSize - 1;
    if (vEnd < pgoff || vStart > last) continue;
    const from = vma.start + (Math.max(pgoff, vStart) - vStart) * k.geo.pageSize;
    const to = vma.start + (Math.min(last, vEnd) - vStart + 1) * k.geo.pageSize;
    zapped += yield* zapPageRange(k, vma, from, to);
  }
  yield step("unmap_mapping_range: i_mmap_unlock_read");
  return zapped;
}

