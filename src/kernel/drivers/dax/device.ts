/**
 * device_dax (drivers/dax/device.c): the default dax driver. Probing reserves each range in iomem under the
 * device's name and memremaps the device as MEMORY_DEVICE_GENERIC, compound pages of the device's align;
 * everything is undone by devm on unbind (memunmap_pages, then the iomem release).
 */
import { EBUSY, EINVAL, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { sideTable } from "../../lib/rewind.ts";
import { type ByteRange, MemoryType } from "../../mm/dev_pagemap.ts";
import { vmfInsertPfnHuge } from "../../mm/huge_memory.ts";
import { linearPageIndex, PFN_DEV, PFN_MAP, unmapMappingRange, vmfInsertMixed } from "../../mm/memory.ts";
import { memremapPages, memunmapPages, newDevPagemap } from "../../mm/memremap.ts";
import {
  type AddressSpace,
  type MappedFile,
  type PageEntrySize,
  VM_FAULT_FALLBACK,
  VM_FAULT_SIGBUS,
  VM_HUGEPAGE,
  VM_MAYSHARE,
  type Vma,
  type VmFault,
  type VmOps,
  vmaIsDax,
} from "../../mm/mm_types.ts";
import { newAddressSpace } from "../../mm/mmap.ts";
import { pageField, pageWrite } from "../../mm/page_access.ts";
import type { VmemAltmap } from "../../mm/vmem_altmap.ts";
import { type KernelPath, step, type Yield } from "../../path.ts";
import { releaseRegion, requestRegion } from "../../resource.ts";
import { devmAddAction, devmAddPlainAction, devPrintk } from "../nvdimm/device_core.ts";
import { type DaxDriverSpec, type DevDax, daxDriverRegister, isDevDax, killDevDax } from "./bus.ts";

/** order_base_2(n): ceil(log2(n)). */
function orderBase2(n: number): number {
  let o = 0;
  while (2 ** o < n) o++;
  return o;
}

// ref: drivers/dax/device.c dev_dax_probe, dev_dax_kill
export function* devDaxProbe(k: Kernel, dd: DevDax): KernelPath<Errno> {
  let ranges: ByteRange[];
  let altmap: VmemAltmap | null = null;
  if (dd.region.isStatic) {
    if (dd.ranges.length > 1) {
      devPrintk(k, dd, "static pgmap / multi-range device conflict");
      return -EINVAL;
    }
    ranges = dd.staticPgmap!.ranges;
    altmap = dd.staticPgmap!.altmap;
  } else {
    if (dd.pgmap) {
      devPrintk(k, dd, "dynamic-dax with pre-populated page map");
      return -EINVAL;
    }
    ranges = dd.ranges.map((r) => ({ ...r.range }));
  }
  for (let i = 0; i < dd.ranges.length; i++) {
    const r = dd.ranges[i]!.range;
    const len = r.end - r.start + 1;
    if (!requestRegion(k.iomem, r.start, len, dd.name)) {
      devPrintk(k, dd, `mapping${i}: 0x${r.start.toString(16)}-0x${r.end.toString(16)} could not reserve range`);
      return -EBUSY;
    }
    devmAddPlainAction(dd, `devm_request_mem_region(mapping${i})`, () => {
      releaseRegion(k.iomem, r.start, len);
    });
  }
  const vmemmapShift = dd.align > k.geo.pageSize ? orderBase2(dd.align / k.geo.pageSize) : 0;
  const pgmap = newDevPagemap(k, { device: dd.name, type: MemoryType.GENERIC, ranges, altmap, vmemmapShift });
  const rc = yield* memremapPages(k, pgmap, dd.numaNode);
  if (rc) return rc;
  dd.pgmap = pgmap;
  devmAddAction(dd, "devm_memremap_pages", function* () {
    yield* memunmapPages(k, pgmap);
    if (dd.region.isStatic) dd.pgmap = null;
  });
  // cdev_add; run_dax: the dax device is alive until the driver goes.
  dd.alive = true;
  devmAddAction(dd, "dev_dax_kill", () => killDevDaxPath(k, dd));
  yield step(`dev_dax_probe(${dd.name}): run_dax`);
  return 0;
}

/** The dax_device's inode: its address_space (the rmap of every mapping of /dev/daxX.Y) and SRCU readers. */
interface DaxInode {
  mapping: AddressSpace;
  /** dax_read_lock holders (faults and mmap checks in progress). */
  readers: number;
}

const daxInodes = sideTable<DevDax, DaxInode>();

function daxInode(k: Kernel, dd: DevDax): DaxInode {
  let ino = daxInodes.get(dd);
  if (!ino) {
    ino = { mapping: newAddressSpace(k, `/dev/${dd.name}`, { charDev: true, dax: true }), readers: 0 };
    daxInodes.set(dd, ino);
  }
  return ino;
}

/** kill_dev_dax as the driver's devm action: kill_dax (clear ALIVE, synchronize_srcu), then zap every user mapping. */
// ref: drivers/dax/bus.c kill_dev_dax; drivers/dax/super.c kill_dax
function* killDevDaxPath(k: Kernel, dd: DevDax): KernelPath<void> {
  killDevDax(dd);
  const ino = daxInode(k, dd);
  yield { kind: "block", at: "kill_dax: synchronize_srcu(&dax_srcu)", until: () => ino.readers === 0, holder: () => `${ino.readers} fault(s) inside dax_read_lock on ${dd.name}` };
  yield* unmapMappingRange(k, ino.mapping, 0, 0);
}

/** A mapped-file view of /dev/daxX.Y (dax_open). */
// ref: drivers/dax/device.c dax_open, dax_mmap, dax_get_unmapped_area
export function openDevDax(k: Kernel, dd: DevDax): MappedFile {
  const ino = daxInode(k, dd);
  const size = () => dd.ranges.reduce((n, r) => n + (r.range.end - r.range.start + 1), 0);
  return {
    path: `/dev/${dd.name}`,
    mapping: ino.mapping,
    size,
    mmap: (vma) => {
      const rc = checkVma(k, dd, vma, "dax_mmap");
      if (rc) return rc;
      vma.ops = daxVmOps(k, dd);
      vma.flags |= VM_HUGEPAGE;
      return 0;
    },
    unmappedAreaAlign: (len, pgoff) => {
      const off = pgoff * k.geo.pageSize;
      const offAlign = Math.ceil(off / dd.align) * dd.align;
      const offEnd = off + len;
      if (offEnd <= offAlign || offEnd - offAlign < dd.align) return 0;
      return dd.align;
    },
  };
}

/** check_vma's caller for its messages: the fault handlers pass their size (no string built per fault). */
function checkVmaCaller(func: string | PageEntrySize): string {
  return func === "pte" || func === "pmd" || func === "pud" ? `__dev_dax_${func}_fault` : func;
}

// ref: drivers/dax/device.c check_vma
function checkVma(k: Kernel, dd: DevDax, vma: Vma, func: string | PageEntrySize): Errno {
  if (!dd.alive) return -ENXIO;
  if (!(vma.flags & VM_MAYSHARE)) {
    devPrintk(k, dd, `zonedev: ${checkVmaCaller(func)}: fail, attempted private mapping`);
    return -EINVAL;
  }
  const mask = dd.align;
  if (vma.start % mask !== 0 || vma.end % mask !== 0) {
    devPrintk(k, dd, `zonedev: ${checkVmaCaller(func)}: fail, unaligned vma (0x${vma.start.toString(16)} - 0x${vma.end.toString(16)}, 0x${(mask - 1).toString(16)})`);
    return -EINVAL;
  }
  if (!vmaIsDax(vma)) {
    devPrintk(k, dd, `zonedev: ${checkVmaCaller(func)}: fail, vma is not DAX capable`);
    return -EINVAL;
  }
  return 0;
}

// ref: drivers/dax/device.c dax_pgoff_to_phys
export function daxPgoffToPhys(k: Kernel, dd: DevDax, pgoff: number, size: number): number {
  for (const r of dd.ranges) {
    const pgoffEnd = r.pgoff + k.physPfn(r.range.end - r.range.start + 1) - 1;
    if (pgoff < r.pgoff || pgoff > pgoffEnd) continue;
    const phys = k.pfnPhys(pgoff - r.pgoff) + r.range.start;
    return phys + size - 1 <= r.range.end ? phys : -1;
  }
  return -1;
}

/** page->mapping / page->index on the pages of a fault (the head only for compound pgmaps). */
// ref: drivers/dax/device.c dax_set_mapping
function daxSetMapping(k: Kernel, dd: DevDax, ino: DaxInode, vmf: VmFault, pfn: number, faultSize: number): void {
  const nrPages = dd.pgmap?.vmemmapShift ? 1 : faultSize / k.geo.pageSize;
  const pgoff = linearPageIndex(k, vmf.vma, vmf.address - (vmf.address % faultSize));
  for (let i = 0; i < nrPages; i++) {
    let p = pfn + i;
    const head = pageField(k, p, "compoundHead", "dax_set_mapping");
    if (head >= 0) p = head;
    if (pageField(k, p, "mapping", "dax_set_mapping") !== 0) continue;
    pageWrite(k, p, "mapping", ino.mapping.id, "dax_set_mapping");
    pageWrite(k, p, "index", pgoff + i, "dax_set_mapping");
  }
}

function entryBytes(k: Kernel, size: PageEntrySize): number {
  if (size === "pte") return k.geo.pageSize;
  if (size === "pmd") return 2 ** k.arch.pmdShift;
  return 2 ** (k.arch.pudShift ?? 0);
}

// ref: drivers/dax/device.c dev_dax_huge_fault, __dev_dax_pte_fault, __dev_dax_pmd_fault, __dev_dax_pud_fault
function* devDaxHugeFault(k: Kernel, dd: DevDax, ino: DaxInode, lockStep: Yield, vmf: VmFault, size: PageEntrySize): KernelPath<number> {
  ino.readers++;
  yield lockStep;
  try {
    if (size === "pud" && !k.config.enabled("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD")) return VM_FAULT_FALLBACK;
    if (checkVma(k, dd, vmf.vma, size)) return VM_FAULT_SIGBUS;
    const faultSize = entryBytes(k, size);
    if (dd.align > faultSize) return VM_FAULT_SIGBUS;
    if (size === "pte") {
      if (faultSize !== dd.align) return VM_FAULT_SIGBUS;
    } else if (faultSize > dd.align) {
      return VM_FAULT_FALLBACK;
    }
    const start = vmf.address - (vmf.address % faultSize);
    if (size !== "pte" && (start < vmf.vma.start || start + faultSize > vmf.vma.end)) return VM_FAULT_SIGBUS;
    const pgoff = linearPageIndex(k, vmf.vma, start);
    const phys = daxPgoffToPhys(k, dd, pgoff, faultSize);
    if (phys === -1) return VM_FAULT_SIGBUS;
    const pfn = { pfn: k.physPfn(phys), flags: PFN_DEV | PFN_MAP };
    daxSetMapping(k, dd, ino, vmf, pfn.pfn, faultSize);
    if (size === "pte") return yield* vmfInsertMixed(k, vmf.vma, start, pfn);
    return yield* vmfInsertPfnHuge(k, vmf, size, pfn, vmf.write);
  } finally {
    ino.readers--;
  }
}

// ref: drivers/dax/device.c dax_vm_ops, dev_dax_may_split, dev_dax_pagesize
function daxVmOps(k: Kernel, dd: DevDax): VmOps {
  const ino = daxInode(k, dd);
  const lockStep = step(`dev_dax_huge_fault(${dd.name}): dax_read_lock`);
  return {
    name: "dax_vm_ops",
    fault: (vmf) => devDaxHugeFault(k, dd, ino, lockStep, vmf, "pte"),
    hugeFault: (vmf, size) => devDaxHugeFault(k, dd, ino, lockStep, vmf, size),
    maySplit: (_vma, addr) => (addr % dd.align === 0 ? 0 : -EINVAL),
    pagesize: () => dd.align,
  };
}

export function deviceDaxDriver(k: Kernel): DaxDriverSpec {
  return { name: "device_dax", matchAlways: true, probe: (dd) => devDaxProbe(k, dd) };
}

export function* deviceDaxInit(k: Kernel): KernelPath<void> {
  yield* daxDriverRegister(k, deviceDaxDriver(k));
}

/** The registered dev_dax named `name` (daxX.Y), if any. */
export function findDevDax(k: Kernel, name: string): DevDax | null {
  for (const d of k.devices?.devices ?? []) if (isDevDax(d) && d.name === name && d.registered) return d;
  return null;
}
