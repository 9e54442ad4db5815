/**
 * Processes and their mappings: creating a process (an mm with an empty pgd), mmap (get_unmapped_area,
 * vm_flags, the file's ->mmap, vm_page_prot with write-notify) and munmap (split with ->may_split, zap,
 * free the emptied page tables).
 *
 * The user address layout is the kernel's top-down one for a process with nothing else mapped and address
 * randomisation off: mmap_base = TASK_SIZE - 128 MiB (the minimum stack gap), the first mapping right below.
 */
import { EINVAL, ENOMEM, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import type { KernelPath } from "../path.ts";
import { zapPageRange } from "./memory.ts";
import {
  type AddressSpace,
  type MappedFile,
  type MmStruct,
  type Task,
  VM_EXEC,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type Vma,
} from "./mm_types.ts";
import { allocKernelPage, PageTable } from "./pgtable.ts";

/** The processes and files of one kernel. */
export class Userland {
  readonly tasks = new Map<number, Task>();
  readonly mappings = new Map<number, AddressSpace>();
  nextPid = 1000;
  nextMm = 1;
  nextMapping = 1;
}

export function userland(k: Kernel): Userland {
  k.userland ??= new Userland();
  return k.userland;
}

/** A new address_space for an inode. */
export function newAddressSpace(k: Kernel, host: string, opts: { charDev: boolean; dax: boolean }): AddressSpace {
  const u = userland(k);
  const m: AddressSpace = { id: u.nextMapping++, host, charDev: opts.charDev, dax: opts.dax, iMmap: new Set(), iPages: new Map() };
  u.mappings.set(m.id, m);
  return m;
}

/** DEFAULT_MAP_WINDOW: the top of the address range mmap searches without a hint. */
export function taskSize(k: Kernel): number {
  const a = k.arch;
  switch (a.arch) {
    case "x86_64":
      return 2 ** 47 - k.geo.pageSize;
    case "arm64":
      return 2 ** Math.min(a.vaBits, 48);
    case "ppc64":
      return 2 ** 47;
  }
}

/** fork + exec of a process with an empty address space; null when no page is left for its pgd. */
// ref: kernel/fork.c mm_init → mm_alloc_pgd; mm/util.c arch_pick_mmap_layout (mmap_base, no randomisation)
export function createProcess(k: Kernel, comm: string): Task | Errno {
  const u = userland(k);
  const pgdPfn = allocKernelPage(k);
  if (pgdPfn < 0) return -ENOMEM;
  const size = taskSize(k);
  const mm: MmStruct = {
    id: u.nextMm++,
    pgd: new PageTable(k, k.pfnPhys(pgdPfn)),
    vmas: [],
    mmapLock: { readers: 0, writer: false },
    mmapBase: size - 128 * 2 ** 20,
    taskSize: size,
  };
  const task: Task = { pid: u.nextPid++, comm, mm, signals: [] };
  u.tasks.set(task.pid, task);
  return task;
}

/** Top-down search for a free range of `len` below mmap_base, with start ≡ want (mod align). */
// ref: mm/mmap.c unmapped_area_topdown; mm/huge_memory.c __thp_get_unmapped_area; drivers/dax/device.c dax_get_unmapped_area
function getUnmappedArea(mm: MmStruct, len: number, align: number, want: number): number {
  const pad = align > 0 ? len + align : len;
  let high = mm.mmapBase;
  // Gaps from the top: [end of the VMA below, start of the VMA above) clipped to mmap_base.
  for (let i = mm.vmas.length - 1; i >= -1; i--) {
    const v = i >= 0 ? mm.vmas[i]! : null;
    const low = v ? v.end : 0;
    if (high - low >= pad) {
      const addr = high - pad;
      return align > 0 ? addr + ((((want - addr) % align) + align) % align) : addr;
    }
    if (v) high = Math.min(high, v.start);
  }
  return -ENOMEM;
}

export interface MmapRequest {
  len: number;
  read: boolean;
  write: boolean;
  exec?: boolean;
  shared: boolean;
  /** File offset in bytes. */
  offset: number;
  /** MAP_FIXED address. */
  fixed?: number;
}

function insertVma(mm: MmStruct, vma: Vma): void {
  let i = 0;
  while (i < mm.vmas.length && mm.vmas[i]!.start < vma.start) i++;
  mm.vmas.splice(i, 0, vma);
}

/** mmap(2) of a file; returns the address or a negative errno. */
// ref: mm/mmap.c do_mmap, mmap_region; mm/mmap.c vma_set_page_prot, vma_wants_writenotify
export function* doMmap(k: Kernel, task: Task, file: MappedFile, req: MmapRequest): KernelPath<number> {
  const mm = task.mm;
  const ps = k.geo.pageSize;
  if (req.len <= 0) return -EINVAL;
  if (req.offset % ps !== 0) return -EINVAL;
  const len = Math.ceil(req.len / ps) * ps;
  const pgoff = req.offset / ps;
  let addr: number;
  if (req.fixed !== undefined) {
    if (req.fixed % ps !== 0) return -EINVAL;
    addr = req.fixed;
    if (mm.vmas.some((v) => v.start < addr + len && addr < v.end)) {
      const r = yield* doMunmap(k, task, addr, len);
      if (r) return r;
    }
  } else {
    const align = file.unmappedAreaAlign?.(len, pgoff) ?? 0;
    addr = getUnmappedArea(mm, len, align, req.offset);
    if (addr < 0) return addr;
  }
  let flags = (req.read ? VM_READ : 0) | (req.write ? VM_WRITE : 0) | (req.exec ? VM_EXEC : 0) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (req.shared) flags |= VM_SHARED | VM_MAYSHARE;
  const vma: Vma = { mm, start: addr, end: addr + len, flags, pgoff, file, ops: null, pageProt: 0n };
  const rc = file.mmap(vma);
  if (rc) return rc;
  vmaSetPageProt(vma);
  insertVma(mm, vma);
  file.mapping.iMmap.add(vma);
  yield { kind: "step", at: "mmap_region: vma_link" };
  return addr;
}

/** vm_page_prot from the flags; shared writable mappings with ->page_mkwrite/->pfn_mkwrite start read-only. */
// ref: mm/mmap.c vma_set_page_prot, vma_wants_writenotify
export function vmaSetPageProt(vma: Vma): void {
  const f = vma.flags;
  const wantsNotify = (f & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED) && !!(vma.ops?.pageMkwrite || vma.ops?.pfnMkwrite);
  vma.pageProt = vma.mm.pgd.fmt.protection({
    read: (f & VM_READ) !== 0,
    write: (f & VM_WRITE) !== 0,
    exec: (f & VM_EXEC) !== 0,
    shared: (f & VM_SHARED) !== 0 && !wantsNotify,
  });
}

/** munmap(2): split at the edges (->may_split may refuse), zap, unlink, free emptied page tables. */
// ref: mm/mmap.c do_mas_munmap, __split_vma, unmap_region
export function* doMunmap(k: Kernel, task: Task, start: number, lenIn: number): KernelPath<Errno> {
  const mm = task.mm;
  const ps = k.geo.pageSize;
  if (start % ps !== 0 || lenIn <= 0) return -EINVAL;
  const end = start + Math.ceil(lenIn / ps) * ps;
  for (const v of mm.vmas) {
    for (const at of [start, end]) {
      if (v.start < at && at < v.end && v.ops?.maySplit) {
        const r = v.ops.maySplit(v, at);
        if (r) return r;
      }
    }
  }
  const hit = mm.vmas.filter((v) => v.start < end && start < v.end);
  for (const v of hit) {
    // __split_vma: keep the parts outside [start, end) as their own VMAs.
    if (v.start < start) {
      const head: Vma = { ...v, end: start };
      insertVma(mm, head);
      v.file?.mapping.iMmap.add(head);
      v.pgoff += (start - v.start) / ps;
      v.start = start;
    }
    if (v.end > end) {
      const tail: Vma = { ...v, start: end, pgoff: v.pgoff + (end - v.start) / ps };
      insertVma(mm, tail);
      v.file?.mapping.iMmap.add(tail);
      v.end = end;
    }
  }
  for (const v of hit) yield* zapPageRange(k, v, v.start, v.end);
  for (const v of hit) {
    mm.vmas.splice(mm.vmas.indexOf(v), 1);
    v.file?.mapping.iMmap.delete(v);
  }
  mm.pgd.freeEmptyTables(start, end);
  yield { kind: "step", at: "unmap_region: free_pgtables" };
  yield* removeVmaFiles(hit);
  return 0;
}

/**
 * remove_vma's fput for VMAs already unlinked: each file that no VMA maps any more drops the mappings'
 * reference (MappedFile.release), which is its last one if its descriptor was closed.
 */
// ref: mm/mmap.c remove_vma, remove_vma_list; fs/file_table.c fput
function* removeVmaFiles(gone: readonly Vma[]): KernelPath<void> {
  const files = new Set<MappedFile>();
  for (const v of gone) if (v.file?.release) files.add(v.file);
  for (const f of files) {
    let mapped = false;
    for (const v of f.mapping.iMmap) if (v.file === f) mapped = true;
    if (!mapped) yield* f.release!();
  }
}

/** exit_mmap: unmap everything, free the page tables, and drop the files the mappings held. */
// ref: mm/mmap.c exit_mmap
export function* exitMmap(k: Kernel, task: Task): KernelPath<void> {
  const mm = task.mm;
  const gone = [...mm.vmas];
  for (const v of gone) yield* zapPageRange(k, v, v.start, v.end);
  for (const v of gone) v.file?.mapping.iMmap.delete(v);
  mm.vmas.length = 0;
  mm.pgd.destroy();
  yield* removeVmaFiles(gone);
  userland(k).tasks.delete(task.pid);
}
