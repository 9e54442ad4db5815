/**
 * Loadable modules of the nvdimm / dax stack and the boot hook.
 *
 * modprobe loads a module's dependencies first, as modprobe does (nd_pmem needs libnvdimm and nd_btt …); the
 * dax core (bus.c, super.c) is built in. The boot module `nd_pmem` is what the oracle guest's init does
 * (`modprobe libnvdimm nd_btt nd_pmem nd_e820 nfit dax_pmem device_dax kmem`, which is also what udev loads on
 * a distro for e820 pmem): legacy pmem comes up as bus ndbus0, region0 and a raw namespace0.0 that nd_pmem
 * maps as MEMORY_DEVICE_FS_DAX with its memmap in RAM.
 */
import { EEXIST, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { runToEnd } from "../../path.ts";
import { findResource, IORES_DESC_PERSISTENT_MEMORY_LEGACY } from "../../resource.ts";
import { acpiNfitInit, type QemuNvdimm } from "../acpi/nfit.ts";
import { daxState } from "../dax/bus.ts";
import { deviceDaxInit } from "../dax/device.ts";
import { kmemInit } from "../dax/kmem.ts";
import { daxPmemDriver } from "../dax/pmem.ts";
import { libnvdimmInit, ndDriverRegister } from "./bus.ts";
import { deviceCore, flushAsync } from "./device_core.ts";
import { e820PmemProbe, type NumaView } from "./e820.ts";
import { ndPmemDriver, pmemBlockSysfs } from "./pmem.ts";
import { ndRegionDriver } from "./region_devs.ts";

export type ModuleName = "libnvdimm" | "nd_btt" | "nd_pmem" | "nd_e820" | "nfit" | "dax_pmem" | "device_dax" | "kmem";

/** Module dependencies (modules.dep of the oracle's kernel). */
const DEPS: Record<ModuleName, ModuleName[]> = {
  libnvdimm: [],
  nd_btt: ["libnvdimm"],
  nd_pmem: ["libnvdimm", "nd_btt"],
  nd_e820: ["libnvdimm"],
  nfit: ["libnvdimm"],
  dax_pmem: ["libnvdimm"],
  device_dax: [],
  kmem: [],
};

/** What the boot environment tells the modules (nd_e820 needs the SRAT, nfit the ACPI NFIT's NVDIMMs). */
export interface ModuleEnv {
  numa: NumaView;
  nvdimms?: readonly QemuNvdimm[];
}

/** The SRAT as the boot used it: nothing when it faked a node. */
export function numaViewOf(k: Kernel, numa: ReadonlyArray<{ node: number; start: number; end: number }>): NumaView {
  const faked = k.log.includes("No NUMA configuration found");
  return { srat: faked ? [] : numa.map((m) => ({ node: m.node, start: m.start, end: m.end })) };
}

/** module_init of one module (its dependencies already loaded). */
function moduleInit(k: Kernel, name: ModuleName, env: ModuleEnv): void {
  switch (name) {
    case "libnvdimm":
      runToEnd(libnvdimmInit(k, ndRegionDriver(k)));
      return;
    case "nd_btt":
      // The BTT core: no driver of its own (nd_pmem binds btt devices).
      return;
    case "nd_pmem":
      k.sysfs.register(pmemBlockSysfs);
      runToEnd(ndDriverRegister(k, ndPmemDriver(k)));
      return;
    case "nd_e820":
      // The e820_pmem platform device exists from boot when e820 has legacy pmem (register_e820_pmem);
      // its driver probes it on load.
      if (findResource(k.iomem, (r) => r.desc === IORES_DESC_PERSISTENT_MEMORY_LEGACY)) runToEnd(e820PmemProbe(k, env.numa));
      return;
    case "nfit":
      // The ACPI0012 device is there when the firmware has an NFIT (QEMU nvdimm=on); none: nothing to bind.
      runToEnd(acpiNfitInit(k, env.nvdimms ?? []));
      return;
    case "dax_pmem":
      runToEnd(ndDriverRegister(k, daxPmemDriver(k)));
      return;
    case "device_dax":
      runToEnd(deviceDaxInit(k));
      return;
    case "kmem":
      runToEnd(kmemInit(k));
      return;
  }
}

/** modprobe NAME: 0, or -EEXIST when it is loaded already. Waits for async probing, like the oracle's init. */
export function modprobe(k: Kernel, name: ModuleName, env: ModuleEnv = { numa: { srat: [] } }): Errno {
  const core = deviceCore(k);
  daxState(k);
  if (core.modules.has(name)) return -EEXIST;
  for (const dep of DEPS[name]) if (!core.modules.has(dep)) modprobe(k, dep, env);
  core.modules.add(name);
  moduleInit(k, name, env);
  runToEnd(flushAsync(k));
  return 0;
}

/** The oracle guest's init (guest/init: MODS). */
export const ORACLE_MODULES: readonly ModuleName[] = ["libnvdimm", "nd_btt", "nd_pmem", "nd_e820", "nfit", "dax_pmem", "device_dax", "kmem"];

export interface BootEnv {
  numa: ReadonlyArray<{ node: number; start: number; end: number }>;
  nvdimms?: readonly QemuNvdimm[];
}

/** Boot-time modules a machine spec can name. */
export const BOOT_MODULES = {
  nd_pmem: (k: Kernel, boot: BootEnv): void => {
    const env = { numa: numaViewOf(k, boot.numa), nvdimms: boot.nvdimms };
    for (const m of ORACLE_MODULES) modprobe(k, m, env);
  },
} as const;

export type BootModule = keyof typeof BOOT_MODULES;
