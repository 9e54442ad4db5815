/**
 * The ACPI NFIT driver (drivers/acpi/nfit/core.c) for the NVDIMMs a QEMU guest describes (hw/acpi/nvdimm.c):
 * per DIMM one SPA range (type PM, proximity domain = its node), one memory-device map (handle slot + 1,
 * DPA 0) and one control region (vendor 0x8086, device 1, serial 0x123456 + slot, format 0x201). The label
 * area is the last label-size bytes of the backend file, reached through the Intel DSM label functions
 * (get_size, get_data, set_data); the SPA range is the file size minus the label area.
 *
 * Loading the driver registers bus "ndbusN" (provider ACPI.NFIT) under ACPI0012:00, one "nmemN" per DIMM,
 * inserts each SPA range into iomem as "Persistent Memory", and creates one pmem region per range whose
 * interleave-set cookies are the fletcher64 of the set's (region offset, serial …) records.
 */
import { EINVAL, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { IORES_DESC_PERSISTENT_MEMORY, IORESOURCE_MEM, insertResource, newResource, REGION_INTERSECTS, regionIntersects } from "../../resource.ts";
import { ro, type SysfsAttr } from "../../sysfs.ts";
import { nvdimmBusRegister } from "../nvdimm/bus.ts";
import { flushAsync } from "../nvdimm/device_core.ts";
import { ND_CMD_CALL, ND_CMD_GET_CONFIG_DATA, ND_CMD_GET_CONFIG_SIZE, ND_CMD_SET_CONFIG_DATA, type NvdimmProvider, nvdimmCreate } from "../nvdimm/dimm_devs.ts";
import { numaMapToOnlineNode } from "../nvdimm/e820.ts";
import { guidBytes } from "../nvdimm/label.ts";
import type { NdInterleaveSet, NvdimmBus } from "../nvdimm/nd.ts";
import { ndFletcher64 } from "../nvdimm/pfn.ts";
import { nvdimmPmemRegionCreate } from "../nvdimm/region_devs.ts";

/** A QEMU `-device nvdimm` on a memory-backend-file, as the machine spec describes it. */
export interface QemuNvdimm {
  /** Guest physical address of the DIMM (QEMU's `addr=`, by default the next free place in device memory). */
  start: number;
  /** The backend's size; the SPA range is size - labelSize. */
  size: number;
  /** `label-size=`: the label area at the end of the backend (0: no label DSMs, the region stays label-less). */
  labelSize: number;
  /** `node=`: the SPA range's proximity domain. */
  node: number;
  /** The pc-dimm slot: NFIT handle slot + 1, serial 0x123456 + slot, SPA index (slot + 1) * 2. */
  slot: number;
}

/** Where QEMU's NVDIMM ACPI device lives in sysfs (its _HID ACPI0012 under the system bus). */
export const ACPI0012_PATH = "/sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00";

// ref: include/acpi/actbl1.h ACPI_NFIT_PROXIMITY_VALID; drivers/acpi/nfit/nfit.h UUID_PERSISTENT_MEMORY
const NFIT_SPA_PM_GUID = "66f0d379-b4f3-4074-ac43-0d3318b78cdb";

/** QEMU's NFIT structures for one DIMM (hw/acpi/nvdimm.c nvdimm_build_structure_spa/_memdev/_dcr). */
interface NfitDimmTables {
  spa: { rangeIndex: number; proximityDomain: number; address: number; length: number };
  memdev: { deviceHandle: number; physicalId: number; regionOffset: number; address: number; regionSize: number };
  dcr: { vendorId: number; deviceId: number; revisionId: number; serialNumber: number; code: number; mfgDate: number; mfgLocation: number };
}

// ref: hw/acpi/nvdimm.c nvdimm_slot_to_sn, nvdimm_slot_to_handle, nvdimm_slot_to_spa_index
function nfitTables(d: QemuNvdimm): NfitDimmTables {
  const length = d.size - d.labelSize;
  return {
    spa: { rangeIndex: (d.slot + 1) << 1, proximityDomain: d.node, address: d.start, length },
    memdev: { deviceHandle: d.slot + 1, physicalId: 0, regionOffset: 0, address: 0, regionSize: length },
    dcr: { vendorId: 0x8086, deviceId: 1, revisionId: 1, serialNumber: 0x123456 + d.slot, code: 0x201, mfgDate: 0, mfgLocation: 0 },
  };
}

const bswap16 = (v: number) => ((v & 0xff) << 8) | ((v >> 8) & 0xff);
const bswap32 = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
const hex4 = (v: number) => `0x${v.toString(16).padStart(4, "0")}`;

/** nfit_mem->id: vendor-serial, both as be16/be32 of the little-endian table fields. */
// ref: drivers/acpi/nfit/core.c acpi_nfit_add_dimm
function nfitMemId(t: NfitDimmTables): string {
  return `${bswap16(t.dcr.vendorId).toString(16).padStart(4, "0")}-${bswap32(t.dcr.serialNumber).toString(16).padStart(8, "0")}`;
}

/** The "nfit" attribute group of an nmem device (dsm_mask and dirty_shutdown are not modelled). */
// ref: drivers/acpi/nfit/core.c acpi_nfit_dimm_attributes, acpi_nfit_dimm_attr_visible
function nfitDimmAttrs(t: NfitDimmTables): Map<string, SysfsAttr> {
  return new Map<string, SysfsAttr>([
    ["handle", ro(() => `0x${t.memdev.deviceHandle.toString(16)}`)],
    ["phys_id", ro(() => `0x${t.memdev.physicalId.toString(16)}`)],
    ["vendor", ro(() => hex4(bswap16(t.dcr.vendorId)))],
    ["device", ro(() => hex4(bswap16(t.dcr.deviceId)))],
    ["rev_id", ro(() => hex4(bswap16(t.dcr.revisionId)))],
    ["subsystem_vendor", ro(() => hex4(0))],
    ["subsystem_device", ro(() => hex4(0))],
    ["subsystem_rev_id", ro(() => hex4(0))],
    ["format", ro(() => hex4(t.dcr.code))],
    ["formats", ro(() => "1")],
    ["serial", ro(() => `0x${bswap32(t.dcr.serialNumber).toString(16).padStart(8, "0")}`)],
    ["flags", ro(() => "")],
    ["id", ro(() => nfitMemId(t))],
    ["family", ro(() => "0")],
  ]);
}

/**
 * The DIMM as the bus provider reaches it: QEMU's label DSMs over the label area (`max_xfer` is the 4 KiB DSM
 * buffer minus its 8-byte header).
 */
// ref: drivers/acpi/nfit/core.c acpi_nfit_ctl; hw/acpi/nvdimm.c nvdimm_dsm_label_size, nvdimm_dsm_get_label_data, nvdimm_dsm_set_label_data
function qemuNvdimmProvider(d: QemuNvdimm, t: NfitDimmTables, labels: Uint8Array): NvdimmProvider {
  return {
    getConfigSize: () => ({ status: 0, configSize: d.labelSize, maxXfer: Math.min(d.labelSize, 4096 - 8) }),
    getConfigData: (offset, len): Uint8Array | Errno => (offset + len > labels.byteLength ? -EINVAL : labels.slice(offset, offset + len)),
    setConfigData: (offset, data): Errno => {
      if (offset + data.byteLength > labels.byteLength) return -EINVAL;
      labels.set(data, offset);
      return 0;
    },
    groups: () => [{ name: "nfit", attrs: nfitDimmAttrs(t) }],
  };
}

/** nd_set cookies: fletcher64 over the set's sorted (region_offset, serial) and (… vendor, mfg) records. */
// ref: drivers/acpi/nfit/core.c acpi_nfit_init_interleave_set, struct nfit_set_info, struct nfit_set_info2
function nfitInterleaveSet(tables: NfitDimmTables[]): NdInterleaveSet {
  const byOffset = [...tables].sort((a, b) => a.memdev.regionOffset - b.memdev.regionOffset);
  const info = new Uint8Array(16 * tables.length);
  const info2 = new Uint8Array(48 * tables.length);
  byOffset.forEach((t, i) => {
    const v = new DataView(info.buffer, 16 * i, 16);
    v.setBigUint64(0, BigInt(t.memdev.regionOffset), true);
    v.setUint32(8, t.dcr.serialNumber, true);
    const v2 = new DataView(info2.buffer, 48 * i, 48);
    v2.setBigUint64(0, BigInt(t.memdev.regionOffset), true);
    v2.setUint32(8, t.dcr.serialNumber, true);
    v2.setUint16(12, t.dcr.vendorId, true);
    v2.setUint16(14, t.dcr.mfgDate, true);
    v2.setUint8(16, t.dcr.mfgLocation);
  });
  const cookie = ndFletcher64(info);
  // The compat sort (memcmp of the little-endian region offsets) orders one DIMM the same way.
  return { cookie1: cookie, cookie2: ndFletcher64(info2), altcookie: cookie, typeGuid: guidBytes(NFIT_SPA_PM_GUID) };
}

/** "Persistent Memory" for the SPA range, unless a PMEM resource already covers it. */
// ref: drivers/acpi/nfit/core.c acpi_nfit_insert_resource
function acpiNfitInsertResource(k: Kernel, start: number, length: number): Errno {
  if (regionIntersects(k.iomem, start, length, IORESOURCE_MEM, IORES_DESC_PERSISTENT_MEMORY) === REGION_INTERSECTS) return 0;
  return insertResource(k.iomem, newResource("Persistent Memory", start, start + length - 1, IORESOURCE_MEM, IORES_DESC_PERSISTENT_MEMORY));
}

/**
 * acpi_nfit_add / acpi_nfit_init on QEMU's NFIT: the bus, the DIMMs (probed before any region, as
 * nvdimm_bus_check_dimm_count flushes their async registration), then one region per SPA range.
 */
// ref: drivers/acpi/nfit/core.c acpi_nfit_add, acpi_nfit_init, acpi_nfit_register_dimms, acpi_nfit_register_regions, acpi_nfit_register_region, acpi_nfit_init_mapping
export function* acpiNfitInit(k: Kernel, nvdimms: readonly QemuNvdimm[]): KernelPath<NvdimmBus | null> {
  if (nvdimms.length === 0) return null;
  const bus = yield* nvdimmBusRegister(k, "ACPI0012:00", "ACPI.NFIT", { parentPath: ACPI0012_PATH, cmdMask: 1 << ND_CMD_CALL });
  const dimms = [...nvdimms].sort((a, b) => a.slot - b.slot).map((d) => {
    const t = nfitTables(d);
    const labels = new Uint8Array(d.labelSize);
    const cmdMask = (1 << ND_CMD_CALL) | (d.labelSize ? (1 << ND_CMD_GET_CONFIG_SIZE) | (1 << ND_CMD_GET_CONFIG_DATA) | (1 << ND_CMD_SET_CONFIG_DATA) : 0);
    const nvdimm = nvdimmCreate(k, bus, qemuNvdimmProvider(d, t, labels), cmdMask);
    return { d, t, nvdimm };
  });
  yield* flushAsync(k);
  for (const { t, nvdimm } of dimms) {
    const { spa } = t;
    const rc = acpiNfitInsertResource(k, spa.address, spa.length);
    if (rc) {
      k.printk(`nfit ACPI0012:00: failed to insert pmem resource to iomem: ${rc}`);
      k.printk(`nfit ACPI0012:00: failed to register spa range ${spa.rangeIndex}`);
      continue;
    }
    nvdimmPmemRegionCreate(k, bus, {
      start: spa.address,
      size: spa.length,
      numaNode: numaMapToOnlineNode(k, spa.proximityDomain),
      targetNode: spa.proximityDomain,
      pagemap: false,
      mappings: [{ nvdimm, start: t.memdev.address, size: t.memdev.regionSize, position: 0 }],
      ndSet: nfitInterleaveSet([t]),
      attrGroups: () => [{ name: "nfit", attrs: new Map([["range_index", ro(() => String(spa.rangeIndex))]]) }],
    });
    yield step(`acpi_nfit_register_region(spa${spa.rangeIndex})`);
  }
  return bus;
}

/** Why QEMU would refuse this NVDIMM (the label-size property's minimum, no room left for data), or null. */
// ref: hw/mem/nvdimm.c nvdimm_set_label_size (MIN_NAMESPACE_LABEL_SIZE), nvdimm_prepare_memory_region
export function qemuNvdimmCheck(d: Pick<QemuNvdimm, "size" | "labelSize">): string | null {
  if (d.labelSize && d.labelSize < 128 * 1024) return "label_size must be 0 or at least 128K (QEMU's MIN_NAMESPACE_LABEL_SIZE)";
  if (d.size % 4096 || d.labelSize % 4096) return "size and label_size must be multiples of 4K";
  if (d.labelSize + 4096 >= d.size) return "label_size leaves no room for data";
  return null;
}
