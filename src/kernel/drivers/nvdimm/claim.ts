/**
 * Namespace claims (drivers/nvdimm/claim.c): attaching a namespace to a btt/pfn/dax device, the `namespace`
 * attribute store with its detach-and-reset, and the raw (nsio) access window a driver opens while probing.
 */
import { EBUSY, EINVAL, ENODEV, ENOMEM, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { releaseRegion, requestRegion } from "../../resource.ts";
import { ndDeviceUnregisterAsync } from "./bus.ts";
import { type Device, deviceCore, devmAddAction, devmReleaseAction, devPrintk } from "./device_core.ts";
import {
  fmtResourceR,
  isNamespaceIo,
  isNdBtt,
  isNdDax,
  isNdPfn,
  isPfnOrDax,
  type NdBtt,
  type NdNamespaceIo,
  type NdPfn,
  nvdimmNamespaceCapacity,
  SZ_16M,
} from "./nd.ts";
import { PFN_MODE_NONE } from "./pfn.ts";

type Claimer = NdPfn | NdBtt;

// ref: drivers/nvdimm/claim.c __nd_attach_ndns
export function ndAttachNdns(dev: Claimer, attach: NdNamespaceIo): boolean {
  if (attach.claim) return false;
  attach.claim = dev;
  dev.ndns = attach;
  return true;
}

// ref: drivers/nvdimm/claim.c __nd_detach_ndns, nd_detach_ndns
export function ndDetachNdns(dev: Claimer): void {
  const ndns = dev.ndns;
  if (!ndns) return;
  ndns.claim = null;
  dev.ndns = null;
}

// ref: drivers/nvdimm/claim.c is_idle
function isIdle(dev: Claimer): boolean {
  const region = dev.region;
  let seed: Device | null = null;
  if (isNdBtt(dev)) seed = region.bttSeed;
  else if (isNdPfn(dev)) seed = region.pfnSeed;
  else if (isNdDax(dev)) seed = region.daxSeed;
  return !(seed === dev || dev.ndns || dev.driver);
}

/** Detach the namespace; an idle non-seed device goes away, a seed is reset for reuse. */
// ref: drivers/nvdimm/claim.c nd_detach_and_reset
function ndDetachAndReset(k: Kernel, dev: Claimer): void {
  ndDetachNdns(dev);
  if (isIdle(dev)) {
    ndDeviceUnregisterAsync(k, dev);
  } else if (isNdBtt(dev)) {
    dev.lbasize = 0;
    dev.uuid = null;
  } else {
    dev.uuid = null;
    dev.mode = PFN_MODE_NONE;
  }
}

/** Writing a pfn/dax/btt device's `namespace` attribute ("" detaches). */
// ref: drivers/nvdimm/claim.c nd_namespace_store
export function ndNamespaceStore(k: Kernel, dev: Claimer, buf: string): Errno {
  if (dev.driver) return -EBUSY;
  const name = buf.trim();
  if (!(name.startsWith("namespace") || name === "")) return -EINVAL;
  if (name === "") {
    ndDetachAndReset(k, dev);
    return 0;
  }
  if (dev.ndns) return -EBUSY;
  const found = deviceCore(k)
    .children(dev.region)
    .find((d) => d.name === name);
  if (!found || !isNamespaceIo(found)) return -ENODEV;
  const ndns = found;
  switch (ndns.claimClass) {
    case "none":
      break;
    case "btt":
    case "btt2":
      if (!isNdBtt(dev)) return -EBUSY;
      break;
    case "pfn":
      if (!isNdPfn(dev)) return -EBUSY;
      break;
    case "dax":
      if (!isNdDax(dev)) return -EBUSY;
      break;
  }
  if (nvdimmNamespaceCapacity(ndns) < SZ_16M) return -ENXIO;
  if (!ndAttachNdns(dev, ndns)) return -EBUSY;
  return 0;
}

/** The devres tag of an open nsio window. */
const NSIO = "devm_nsio_enable";

/**
 * devm_nsio_enable: reserve the first `size` bytes of the namespace under its own name (the rw_bytes window
 * used to read the info block), owned by `dev` until devm_nsio_disable or unbind.
 */
// ref: drivers/nvdimm/claim.c devm_nsio_enable; namespace_devs.c devm_namespace_enable
export function* devmNamespaceEnable(k: Kernel, dev: Device, ndns: NdNamespaceIo, size: number): KernelPath<Errno> {
  ndns.nsioSize = size;
  const res = requestRegion(k.iomem, ndns.resStart, size, ndns.name);
  if (!res) {
    devPrintk(k, dev, `could not reserve region ${fmtResourceR(ndns.resStart, ndns.resEnd)}`);
    return -EBUSY;
  }
  yield step(`devm_nsio_enable(${ndns.name}, ${size})`);
  devmAddAction(dev, NSIO, function* () {
    releaseRegion(k.iomem, ndns.resStart, size);
    yield step(`devm_nsio_disable(${ndns.name})`);
  });
  return 0;
}

// ref: drivers/nvdimm/claim.c devm_nsio_disable; namespace_devs.c devm_namespace_disable
export function* devmNamespaceDisable(dev: Device): KernelPath<void> {
  yield* devmReleaseAction(dev, NSIO);
}

/** nvdimm_read_bytes: -EFAULT outside the open window. */
// ref: drivers/nvdimm/nd.h nvdimm_read_bytes; claim.c nsio_rw_bytes
export function nvdimmReadBytes(ndns: NdNamespaceIo, offset: number, size: number): Uint8Array | null {
  if (offset + size > ndns.nsioSize) return null;
  return ndns.region.media.read(ndns.resStart + offset, size);
}

// ref: drivers/nvdimm/nd.h nvdimm_write_bytes; claim.c nsio_rw_bytes
export function nvdimmWriteBytes(ndns: NdNamespaceIo, offset: number, bytes: Uint8Array): Errno {
  if (offset + bytes.byteLength > ndns.nsioSize) return -ENOMEM;
  ndns.region.media.write(ndns.resStart + offset, bytes);
  return 0;
}

/** The namespace a pfn/dax/btt device claims, or the namespace itself. */
export function claimedNamespace(dev: Device): NdNamespaceIo | null {
  if (isNamespaceIo(dev)) return dev;
  if (isPfnOrDax(dev) || isNdBtt(dev)) return dev.ndns;
  return null;
}
