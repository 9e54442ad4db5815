/**
 * Processes, address spaces and VMAs (include/linux/mm_types.h, mm.h): the user side that maps device
 * memory. One Task per process, one MmStruct per address space, VMAs sorted by address, files with an
 * address_space whose i_mmap lists the VMAs mapping them (the rmap used by unmap_mapping_range).
 */
import type { Errno } from "../errno.ts";
import type { KernelPath } from "../path.ts";
import type { PageTable } from "./pgtable.ts";

// ref: include/linux/mm.h VM_* flags
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_PFNMAP = 0x400;
export const VM_IO = 0x4000;
export const VM_DONTEXPAND = 0x40000;
export const VM_SYNC = 0x800000;
export const VM_DONTDUMP = 0x4000000;
export const VM_SOFTDIRTY = 0x8000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;

/** smaps' VmFlags mnemonics, in bit order. ref: fs/proc/task_mmu.c show_smap_vma_flags */
export const VM_FLAG_MNEMONICS: ReadonlyArray<readonly [number, string]> = [
  [VM_READ, "rd"],
  [VM_WRITE, "wr"],
  [VM_EXEC, "ex"],
  [VM_SHARED, "sh"],
  [VM_MAYREAD, "mr"],
  [VM_MAYWRITE, "mw"],
  [VM_MAYEXEC, "me"],
  [VM_MAYSHARE, "ms"],
  [VM_PFNMAP, "pf"],
  [VM_IO, "io"],
  [VM_DONTEXPAND, "de"],
  [VM_SYNC, "sf"],
  [VM_DONTDUMP, "dd"],
  [VM_SOFTDIRTY, "sd"],
  [VM_MIXEDMAP, "mm"],
  [VM_HUGEPAGE, "hg"],
  [VM_NOHUGEPAGE, "nh"],
];

// ref: include/linux/mm_types.h enum vm_fault_reason
export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_SIGBUS = 0x2;
export const VM_FAULT_HWPOISON = 0x10;
export const VM_FAULT_SIGSEGV = 0x40;
export const VM_FAULT_NOPAGE = 0x100;
export const VM_FAULT_RETRY = 0x400;
export const VM_FAULT_FALLBACK = 0x800;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON;

const FAULT_NAMES: ReadonlyArray<readonly [number, string]> = [
  [VM_FAULT_OOM, "VM_FAULT_OOM"],
  [VM_FAULT_SIGBUS, "VM_FAULT_SIGBUS"],
  [VM_FAULT_HWPOISON, "VM_FAULT_HWPOISON"],
  [VM_FAULT_SIGSEGV, "VM_FAULT_SIGSEGV"],
  [VM_FAULT_NOPAGE, "VM_FAULT_NOPAGE"],
  [VM_FAULT_RETRY, "VM_FAULT_RETRY"],
  [VM_FAULT_FALLBACK, "VM_FAULT_FALLBACK"],
];

export function vmFaultString(v: number): string {
  if (v === 0) return "0";
  return FAULT_NAMES.filter(([b]) => (v & b) !== 0)
    .map(([, n]) => n)
    .join("|");
}

/** The entry size a fault asks for (enum page_entry_size). */
export type PageEntrySize = "pte" | "pmd" | "pud";

/** struct vm_fault, the parts the modelled handlers use. */
export interface VmFault {
  readonly vma: Vma;
  /** Faulting address, aligned down to the entry size being tried. */
  address: number;
  /** The exact address the access hit. */
  readonly realAddress: number;
  readonly write: boolean;
  /** File page offset of `address`. */
  pgoff: number;
}

/** vm_operations_struct: what a driver or filesystem plugs into a VMA. */
export interface VmOps {
  readonly name: string;
  fault?(vmf: VmFault): KernelPath<number>;
  hugeFault?(vmf: VmFault, size: PageEntrySize): KernelPath<number>;
  /** Present on filesystems (write-notify: shared writable mappings start read-only). */
  readonly pageMkwrite?: boolean;
  readonly pfnMkwrite?: boolean;
  /** ->may_split: an error stops munmap/mprotect from splitting the VMA at addr. */
  maySplit?(vma: Vma, addr: number): Errno;
  /** ->pagesize (smaps KernelPageSize / MMUPageSize). */
  pagesize?(vma: Vma): number;
}

/** struct address_space of a file: its DAX entries (i_pages) and the VMAs mapping it (i_mmap). */
export interface AddressSpace {
  readonly id: number;
  /** The inode's path, for reports. */
  readonly host: string;
  /** The inode is a character device (device-dax) rather than a regular file. */
  readonly charDev: boolean;
  /** IS_DAX(host) */
  readonly dax: boolean;
  readonly iMmap: Set<Vma>;
  /** fs/dax.c value entries by page index (regular DAX files only). */
  readonly iPages: Map<number, number>;
}

/** An open file as mmap sees it. */
export interface MappedFile {
  readonly path: string;
  readonly mapping: AddressSpace;
  /** Size in bytes (i_size); faults past it get SIGBUS. */
  size(): number;
  /** file->f_op->mmap */
  mmap(vma: Vma): Errno;
  /** file->f_op->get_unmapped_area alignment wish: (len, pgoff) → the alignment to honour, 0 for none. */
  unmappedAreaAlign?(len: number, pgoff: number): number;
  /**
   * The mappings' reference to the file (remove_vma's fput), dropped once no VMA maps this file any more;
   * with the descriptor closed too it is the last reference (__fput). Files without it need no release.
   */
  release?(): KernelPath<void>;
}

/** struct vm_area_struct */
export interface Vma {
  readonly mm: MmStruct;
  start: number;
  /** Exclusive. */
  end: number;
  flags: number;
  /** Page offset into the file of `start`. */
  pgoff: number;
  readonly file: MappedFile | null;
  ops: VmOps | null;
  /** vm_page_prot, as the arch encodes it. */
  pageProt: bigint;
}

/** One process (task_struct + the signals it was sent). */
export interface Task {
  readonly pid: number;
  readonly comm: string;
  readonly mm: MmStruct;
  /** Signals delivered, in order ("SIGBUS BUS_MCEERR_AR addr=0x… lsb=21"). */
  readonly signals: string[];
}

/** struct mm_struct */
export interface MmStruct {
  readonly id: number;
  readonly pgd: PageTable;
  /** Sorted by start, non-overlapping. */
  readonly vmas: Vma[];
  /** mmap_lock as a reader/writer count (blocking is modelled by the paths that take it). */
  readonly mmapLock: { readers: number; writer: boolean };
  /** Next top-down search start for get_unmapped_area (mmap_base). */
  readonly mmapBase: number;
  readonly taskSize: number;
}

export function vmaLookup(mm: MmStruct, addr: number): Vma | null {
  let lo = 0;
  let hi = mm.vmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (mm.vmas[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  const v = mm.vmas[lo];
  return v && v.start <= addr ? v : null;
}

// ref: include/linux/mm.h vma_is_dax
export function vmaIsDax(vma: Vma): boolean {
  return vma.file?.mapping.dax ?? false;
}

// ref: include/linux/mm.h vma_is_fsdax
export function vmaIsFsdax(vma: Vma, fsDaxEnabled: boolean): boolean {
  if (!fsDaxEnabled || !vma.file) return false;
  return vmaIsDax(vma) && !vma.file.mapping.charDev;
}
