/**
 * nd_dax devices (drivers/nvdimm/dax_devs.c): an nd_pfn with the DAX_SIG personality, claimed by dax_pmem.
 */
import type { Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { ndDeviceRegister } from "./bus.ts";
import type { NdNamespaceIo, NdPfn, NdRegion } from "./nd.ts";
import { ndPfnAlloc, ndPfnDevinit, ndPfnProbe } from "./pfn_device.ts";

/** A new dax seed ("daxN.M"). */
// ref: drivers/nvdimm/dax_devs.c nd_dax_create
export function ndDaxCreate(k: Kernel, region: NdRegion): NdPfn {
  const dax = ndPfnAlloc(k, region, "nd_dax");
  ndPfnDevinit(k, dax, null);
  ndDeviceRegister(k, dax);
  return dax;
}

// ref: drivers/nvdimm/dax_devs.c nd_dax_probe
export function ndDaxProbe(k: Kernel, ndns: NdNamespaceIo): Errno {
  return ndPfnProbe(k, ndns, "nd_dax");
}
