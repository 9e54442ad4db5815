/**
 * dax_pmem (drivers/dax/pmem.c): binds an nd_dax device, sets up its info block (DAX_SIG), reserves the
 * metadata head of the namespace under the namespace's name and creates the static dax region with its one
 * device, whose pgmap covers the whole namespace (the altmap too, for map=dev).
 */
import { EBUSY, EINVAL, ENOMEM, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { releaseRegion, requestRegion } from "../../resource.ts";
import type { NdDriverSpec } from "../nvdimm/bus.ts";
import { devmNamespaceDisable, devmNamespaceEnable } from "../nvdimm/claim.ts";
import { type Device, devmAddPlainAction, devPrintk } from "../nvdimm/device_core.ts";
import { nvdimmNamespaceCommonProbe } from "../nvdimm/namespace_devs.ts";
import { isNdDax, ND_DEVICE_DAX_PMEM } from "../nvdimm/nd.ts";
import { ndInfoBlockReserve } from "../nvdimm/pfn.ts";
import { ndPfnSetup } from "../nvdimm/pfn_device.ts";
import { allocDaxRegion, devmCreateDevDax, IORESOURCE_DAX_STATIC } from "./bus.ts";

// ref: drivers/dax/pmem.c __dax_pmem_probe, dax_pmem_probe
function* daxPmemProbe(k: Kernel, dev: Device): KernelPath<Errno> {
  if (!isNdDax(dev)) return -ENXIO;
  const ndns = nvdimmNamespaceCommonProbe(k, dev);
  if (typeof ndns === "number") return ndns;
  let rc = yield* devmNamespaceEnable(k, dev, ndns, ndInfoBlockReserve(k.geo.pageSize));
  if (rc) return rc;
  const setup = ndPfnSetup(k, dev);
  if (typeof setup === "number") return setup;
  yield* devmNamespaceDisable(dev);
  const sb = dev.pfnSb!;
  const offset = sb.dataoff;
  const meta = requestRegion(k.iomem, ndns.resStart, offset, ndns.name);
  if (!meta) {
    devPrintk(k, dev, "could not reserve metadata");
    return -EBUSY;
  }
  devmAddPlainAction(dev, "devm_request_mem_region(metadata)", () => {
    releaseRegion(k.iomem, ndns.resStart, offset);
  });
  const m = /^namespace(\d+)\.(\d+)/.exec(ndns.name);
  if (!m) return -EINVAL;
  const range = { start: setup.range.start + offset, end: setup.range.end };
  const daxRegion = allocDaxRegion(dev, Number(m[1]), range, ndns.region.targetNode, sb.align, IORESOURCE_DAX_STATIC);
  if (!daxRegion) return -ENOMEM;
  yield step(`alloc_dax_region(${dev.name})`);
  const dd = yield* devmCreateDevDax(k, {
    region: daxRegion,
    id: Number(m[2]),
    pgmap: { ranges: [setup.range], altmap: setup.altmap },
    size: range.end - range.start + 1,
  });
  rc = typeof dd === "number" ? dd : 0;
  return rc;
}

export function daxPmemDriver(k: Kernel): NdDriverSpec {
  return { name: "dax_pmem", types: [ND_DEVICE_DAX_PMEM], probe: (dev) => daxPmemProbe(k, dev) };
}
