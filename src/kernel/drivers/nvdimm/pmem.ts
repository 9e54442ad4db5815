/**
 * The nd_pmem driver (drivers/nvdimm/pmem.c): binds io namespaces, pfn devices (fsdax) and btt devices
 * (sector). A namespace probe first looks for a btt, pfn or dax info block; without one it attaches a disk,
 * with struct pages (MEMORY_DEVICE_FS_DAX, memmap in RAM) when the region is ND_REGION_PAGEMAP. A pfn device
 * attaches the disk over the data area with a pgmap per its info block (map=dev: memmap in the altmap).
 */
import { EBUSY, ENXIO, EOPNOTSUPP, type Errno } from "../../errno.ts";
import { invalidateDevice } from "../../fs/super.ts";
import type { Kernel } from "../../kernel.ts";
import { MemoryType } from "../../mm/dev_pagemap.ts";
import { PFN_DEV, PFN_MAP } from "../../mm/memory.ts";
import { setPgmapMemoryFailure } from "../../mm/memory_failure.ts";
import { memremapPages, memunmapPages, newDevPagemap } from "../../mm/memremap.ts";
import type { Task } from "../../mm/mm_types.ts";
import { type KernelPath, step } from "../../path.ts";
import { releaseRegion, requestRegion } from "../../resource.ts";
import { ro, type SysfsAttr, type SysfsDir } from "../../sysfs.ts";
import { daxState } from "../dax/bus.ts";
import { allocDax, type DaxDevice, daxAddHost, daxHolderNotifyFailure, daxRemoveHost, killDax, putDax } from "../dax/super.ts";
import { ndBttProbe, nvdimmNamespaceAttachBtt } from "./btt_devs.ts";
import type { NdDriverSpec } from "./bus.ts";
import { devmNamespaceDisable, devmNamespaceEnable } from "./claim.ts";
import { ndDaxProbe } from "./dax_devs.ts";
import { type Device, devmAddAction, devmAddPlainAction, devPrintk } from "./device_core.ts";
import { nvdimmNamespaceCommonProbe, nvdimmNamespaceDiskName, pmemShouldMapPages } from "./namespace_devs.ts";
import {
  fmtResourceR,
  isNamespaceIo,
  isNdBtt,
  isNdPfn,
  ND_DEVICE_NAMESPACE_IO,
  ND_DEVICE_NAMESPACE_PMEM,
  type NdNamespaceIo,
  type NdPfn,
  nsioSize,
  type PmemDevice,
} from "./nd.ts";
import { ndInfoBlockReserve } from "./pfn.ts";
import { ndPfnProbe, ndPfnSetup } from "./pfn_device.ts";

/** nvdimm_has_flush: a region without DIMMs has no flush capability to report (-ENXIO). */
// ref: drivers/nvdimm/region_devs.c nvdimm_has_flush
function nvdimmHasFlush(mappings: number): number {
  return mappings === 0 ? -ENXIO : 0;
}

function setDrvdata(dev: Device, pmem: PmemDevice | null): void {
  if (isNamespaceIo(dev) || isNdPfn(dev)) dev.pmem = pmem;
}

// ref: drivers/nvdimm/pmem.c pmem_attach_disk
function* pmemAttachDisk(k: Kernel, dev: Device, ndns: NdNamespaceIo): KernelPath<Errno> {
  const region = ndns.region;
  const reserve = ndInfoBlockReserve(k.geo.pageSize);
  let rc = yield* devmNamespaceEnable(k, dev, ndns, reserve);
  if (rc) return rc;
  let setup = null;
  let pfn: NdPfn | null = null;
  if (isNdPfn(dev)) {
    pfn = dev;
    const s = ndPfnSetup(k, pfn);
    if (typeof s === "number") return s;
    setup = s;
  }
  yield* devmNamespaceDisable(dev);

  const size = nsioSize(ndns);
  const pmem: PmemDevice = {
    physAddr: ndns.resStart,
    size,
    dataOffset: 0,
    pfnPad: 0,
    pfnMap: false,
    pgmap: null,
    disk: nvdimmNamespaceDiskName(ndns),
    capacity: 0,
    readOnly: region.ro,
  };
  let daxDev: DaxDevice | null = null;
  setDrvdata(dev, pmem);
  devmAddPlainAction(dev, "drvdata", () => setDrvdata(dev, null));
  if (nvdimmHasFlush(region.mappings) < 0) devPrintk(k, dev, "unable to guarantee persistence of writes");

  const res = requestRegion(k.iomem, ndns.resStart, size, ndns.name);
  if (!res) {
    devPrintk(k, dev, `could not reserve region ${fmtResourceR(ndns.resStart, ndns.resEnd)}`);
    return -EBUSY;
  }
  devmAddPlainAction(dev, "devm_request_mem_region", () => {
    releaseRegion(k.iomem, ndns.resStart, size);
  });

  let ranges = null;
  let altmap = null;
  if (setup && pfn?.pfnSb) {
    ranges = [setup.range];
    altmap = setup.altmap;
    pmem.dataOffset = pfn.pfnSb.dataoff;
    pmem.pfnPad = setup.pfnPad;
  } else if (pmemShouldMapPages(k, dev)) {
    ranges = [{ start: ndns.resStart, end: ndns.resEnd }];
  }
  if (ranges) {
    const pgmap = newDevPagemap(k, {
      device: dev.name,
      type: MemoryType.FS_DAX,
      ranges,
      altmap,
      ops: { memoryFailure: true },
      owner: `pmem(${dev.name})`,
    });
    rc = yield* memremapPages(k, pgmap, dev.numaNode);
    if (rc) return rc;
    pmem.pgmap = pgmap;
    pmem.pfnMap = true;
    // ops->memory_failure = pmem_pagemap_memory_failure: container_of(pgmap) is this pmem, whose dax_device
    // exists by the time anything can fail (it is looked up when called).
    setPgmapMemoryFailure(pgmap, (pfn, nr, flags, current) => pmemPagemapMemoryFailure(k, pmem, daxDev, pfn, nr, flags, current));
    devmAddAction(dev, "devm_memremap_pages", function* () {
      yield* memunmapPages(k, pgmap);
      pmem.pgmap = null;
    });
  }
  // alloc_dax: every pmem disk's dax_device takes a minor from dax_minor_ida, which device-dax shares; the
  // last put_dax (pmem_release_disk's, or a filesystem's fs_put_dax at umount) frees it (dax_free_inode).
  const daxMinors = daxState(k).minorIda;
  const daxMinor = daxMinors.get();
  pmem.capacity = Math.floor((size - pmem.pfnPad - pmem.dataOffset) / 512);
  daxDev = allocDax(k, pmem.disk, { directAccess: (pgoff, nr) => pmemDaxDirectAccess(k, pmem, pgoff, nr) }, () => daxMinors.remove(daxMinor));
  const dax = daxDev;
  daxAddHost(k, dax, { name: pmem.disk, queueDax: () => pmem.pfnMap, bytes: () => pmem.capacity * 512 });
  yield step(`device_add_disk(${pmem.disk})`);
  devmAddAction(dev, "pmem_release_disk", () => pmemReleaseDisk(k, pmem, dax));
  return 0;
}

/** pmem's ->direct_access: device page pgoff is data_offset into the namespace (badblocks are not modelled). */
// ref: drivers/nvdimm/pmem.c pmem_dax_direct_access, __pmem_direct_access
function pmemDaxDirectAccess(k: Kernel, pmem: PmemDevice, pgoff: number, _nrPages: number): { avail: number; pfn: number; pfnFlags: number } {
  const offset = k.pfnPhys(pgoff) + pmem.dataOffset;
  const pfnFlags = PFN_DEV | (pmem.pfnMap ? PFN_MAP : 0);
  return { avail: Math.max(0, k.physPfn(pmem.size - pmem.pfnPad - offset)), pfn: k.physPfn(pmem.physAddr + offset), pfnFlags };
}

/** The pgmap's ->memory_failure: the failed bytes, as an offset into the disk, go to the dax_device's holder. */
// ref: drivers/nvdimm/pmem.c pmem_pagemap_memory_failure
function* pmemPagemapMemoryFailure(k: Kernel, pmem: PmemDevice, dax: DaxDevice | null, pfn: number, nrPages: number, mfFlags: number, current: Task | null): KernelPath<Errno> {
  if (!dax) return -EOPNOTSUPP;
  const offset = BigInt.asUintN(64, BigInt(k.pfnPhys(pfn) - pmem.physAddr - pmem.dataOffset));
  return yield* daxHolderNotifyFailure(dax, offset, BigInt(k.pfnPhys(nrPages)), mfFlags, current);
}

/**
 * pmem_release_disk (the first devm action to run on unbind, before memunmap_pages): unpublish the dax_device,
 * kill_dax (a holder is told the whole device failed first), put_dax, then del_gendisk, whose
 * __invalidate_device evicts the unused inodes of a filesystem still mounted on the disk.
 */
// ref: drivers/nvdimm/pmem.c pmem_release_disk; block/genhd.c del_gendisk
function* pmemReleaseDisk(k: Kernel, pmem: PmemDevice, dax: DaxDevice): KernelPath<void> {
  daxRemoveHost(k, pmem.disk);
  yield* killDax(dax);
  putDax(dax);
  yield step(`del_gendisk(${pmem.disk}): fsync_bdev`);
  yield* invalidateDevice(k, pmem.disk, true);
  pmem.capacity = 0;
  yield step(`del_gendisk(${pmem.disk}): set_capacity(0)`);
}

// ref: drivers/nvdimm/pmem.c nd_pmem_probe
function* ndPmemProbe(k: Kernel, dev: Device): KernelPath<Errno> {
  const ndns = nvdimmNamespaceCommonProbe(k, dev);
  if (typeof ndns === "number") return ndns;
  if (isNdBtt(dev)) return yield* nvdimmNamespaceAttachBtt(k, dev, ndns);
  if (isNdPfn(dev)) return yield* pmemAttachDisk(k, dev, ndns);

  const ret = yield* devmNamespaceEnable(k, dev, ndns, ndInfoBlockReserve(k.geo.pageSize));
  if (ret) return ret;
  if (ndBttProbe(k, ndns) === 0) return -ENXIO;
  // No info block: a raw namespace. A valid block that fails to set up (-EOPNOTSUPP) still advances the seeds.
  let r = ndPfnProbe(k, ndns, "nd_pfn");
  if (r === 0) return -ENXIO;
  if (r === -EOPNOTSUPP) return r;
  r = ndDaxProbe(k, ndns);
  if (r === 0) return -ENXIO;
  if (r === -EOPNOTSUPP) return r;
  yield* devmNamespaceDisable(dev);
  return yield* pmemAttachDisk(k, dev, ndns);
}

// ref: drivers/nvdimm/pmem.c nd_pmem_remove, nvdimm_namespace_detach_btt
function* ndPmemRemove(_k: Kernel, dev: Device): KernelPath<void> {
  yield step(`nd_pmem_remove(${dev.name})`);
}

export function ndPmemDriver(k: Kernel): NdDriverSpec {
  return {
    name: "nd_pmem",
    types: [ND_DEVICE_NAMESPACE_IO, ND_DEVICE_NAMESPACE_PMEM],
    probe: (dev) => ndPmemProbe(k, dev),
    remove: (dev) => ndPmemRemove(k, dev),
  };
}

/** /sys/block/pmemN (and pmemNs for a BTT): capacity in sectors, read-only flag, and the queue's dax flag. */
// ref: block/genhd.c disk_attrs (size, ro); block/blk-sysfs.c queue_dax_show, queue_logical_block_size_show
export function pmemBlockSysfs(k: Kernel): SysfsDir[] {
  const out: SysfsDir[] = [];
  for (const dev of k.devices?.devices ?? []) {
    const disk = pmemDisk(dev);
    if (!disk?.capacity) continue;
    const lbs = isNdBtt(dev) ? (dev.lbasize >= 4096 ? 4096 : 512) : 512;
    const path = `/sys/block/${disk.disk}`;
    out.push({
      path,
      driver: "",
      attrs: new Map<string, SysfsAttr>([
        ["size", ro(() => String(disk.capacity))],
        ["ro", ro(() => (disk.readOnly ? "1" : "0"))],
      ]),
    });
    out.push({
      path: `${path}/queue`,
      driver: "",
      attrs: new Map<string, SysfsAttr>([
        ["dax", ro(() => (disk.pfnMap ? "1" : "0"))],
        ["logical_block_size", ro(() => String(lbs))],
      ]),
    });
  }
  return out;
}

/** The block device of a namespace, pfn or btt device bound to nd_pmem, if any. */
export function pmemDisk(dev: Device): PmemDevice | null {
  if (isNamespaceIo(dev) || isNdPfn(dev) || isNdBtt(dev)) return dev.pmem;
  return null;
}
