/**
 * btt devices (drivers/nvdimm/btt_devs.c) and the part of the BTT (drivers/nvdimm/btt.c) that decides what the
 * kernel shows: the arena split of the namespace and the resulting `size`. btt_init finds no arena on the
 * media ("No existing arenas") and writes a fresh layout (btt_meta_init); the model does no block I/O and keeps
 * no layout on the media, so every attach starts from "No existing arenas" and nd_btt_probe never finds a BTT
 * (re-enabling a sector namespace without ndctl's reconfiguration is not modelled).
 */
import { EBUSY, EINVAL, ENODEV, ENOMEM, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { type KernelPath, step } from "../../path.ts";
import { ro, rw, type SysfsAttr } from "../../sysfs.ts";
import { ndDeviceAttrs, ndDeviceRegister } from "./bus.ts";
import { devmNamespaceEnable, ndAttachNdns, ndDetachNdns, nvdimmReadBytes } from "./claim.ts";
import { devmAddPlainAction, devPrintk } from "./device_core.ts";
import { nvdimmNamespaceDiskName } from "./namespace_devs.ts";
import { type NdBtt, type NdNamespaceIo, type NdRegion, nvdimmNamespaceCapacity, SZ_16M } from "./nd.ts";
import { claimAttrs } from "./pfn_device.ts";
import { kstrtoul, ndSizeSelectShow } from "./pfn_devs.ts";

// ref: drivers/nvdimm/btt_devs.c btt_lbasize_supported
export const BTT_LBASIZE_SUPPORTED = [512, 520, 528, 4096, 4104, 4160, 4224] as const;

// ref: drivers/nvdimm/btt.h ARENA_MIN_SIZE, ARENA_MAX_SIZE, BTT_PG_SIZE, MAP_ENT_SIZE; nd.h ND_MAX_LANES, INT_LBASIZE_ALIGNMENT
const ARENA_MIN_SIZE = 2 ** 24;
const ARENA_MAX_SIZE = 2 ** 39;
const BTT_PG_SIZE = 4096;
const MAP_ENT_SIZE = 4;
const LOG_GRP_SIZE = 64;
const BTT_DEFAULT_NFREE = 256;
const INT_LBASIZE_ALIGNMENT = 64;
/** "BTT_ARENA_INFO\0" */
const BTT_SIG = "BTT_ARENA_INFO\0";

function roundup(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** External LBAs of a BTT over `rawsize` bytes: the sum of every arena's external_nlba. */
// ref: drivers/nvdimm/btt.c create_arenas, alloc_arena
export function bttNlba(rawsize: number, lbasize: number): number {
  let remaining = rawsize;
  let nlba = 0;
  while (remaining) {
    const arenaSize = Math.min(ARENA_MAX_SIZE, remaining);
    remaining -= arenaSize;
    if (arenaSize < ARENA_MIN_SIZE) break;
    const internalLbasize = roundup(lbasize, INT_LBASIZE_ALIGNMENT);
    let available = arenaSize - (arenaSize % BTT_PG_SIZE);
    available -= 2 * BTT_PG_SIZE;
    available -= roundup(BTT_DEFAULT_NFREE * LOG_GRP_SIZE, BTT_PG_SIZE);
    const internalNlba = Math.floor((available - BTT_PG_SIZE) / (internalLbasize + MAP_ENT_SIZE));
    nlba += internalNlba - BTT_DEFAULT_NFREE;
  }
  return nlba;
}

// ref: drivers/nvdimm/btt_devs.c __nd_btt_create, nd_btt_release
function ndBttAlloc(k: Kernel, region: NdRegion, ndns: NdNamespaceIo | null): NdBtt | null {
  const id = region.bttIda.get();
  const name = `btt${region.id}.${id}`;
  const btt: NdBtt = {
    kind: "nd_btt",
    name,
    bus: "nd",
    parent: region,
    path: `${region.path}/${name}`,
    driver: null,
    registered: false,
    numaNode: -1,
    devres: [],
    region,
    id,
    uuid: null,
    lbasize: 0,
    ndns: null,
    size: 0,
    initialOffset: 0,
    pmem: null,
    attrs: () => ndBttAttrs(k, btt),
    release: () => {
      ndDetachNdns(btt);
      region.bttIda.remove(id);
    },
  };
  if (ndns && !ndAttachNdns(btt, ndns)) {
    btt.release?.();
    return null;
  }
  return btt;
}

/** A new btt seed. */
// ref: drivers/nvdimm/btt_devs.c nd_btt_create
export function ndBttCreate(k: Kernel, region: NdRegion): NdBtt | null {
  const btt = ndBttAlloc(k, region, null);
  if (btt) ndDeviceRegister(k, btt);
  return btt;
}

// ref: drivers/nvdimm/btt_devs.c nd_btt_attributes, sector_size_*, size_show, log_zero_flags_show
function ndBttAttrs(k: Kernel, btt: NdBtt): Map<string, SysfsAttr> {
  const attrs = new Map<string, SysfsAttr>([
    [
      "sector_size",
      rw(
        () => ndSizeSelectShow(btt.lbasize, BTT_LBASIZE_SUPPORTED).replace(/\n$/, ""),
        (v) => {
          if (btt.driver) return -EBUSY;
          const r = kstrtoul(v, 0);
          if (!r.ok) return r.rc;
          const found = BTT_LBASIZE_SUPPORTED.find((s) => BigInt(s) === r.value);
          if (found === undefined) return -EINVAL;
          btt.lbasize = found;
          return 0;
        },
      ),
    ],
    ...claimAttrs(k, btt),
    ["size", ro(() => (btt.driver ? String(btt.size) : -ENXIO))],
    ["log_zero_flags", ro(() => "Y")],
  ]);
  for (const [n, a] of ndDeviceAttrs(k, btt, "nd_btt")) attrs.set(n, a);
  return attrs;
}

/** Look for a BTT on the namespace (the model never writes one, see above). */
// ref: drivers/nvdimm/btt_devs.c nd_btt_probe, __nd_btt_probe, nd_btt_version
export function ndBttProbe(k: Kernel, ndns: NdNamespaceIo): Errno {
  if (ndns.forceRaw) return -ENODEV;
  if (!["none", "btt", "btt2"].includes(ndns.claimClass)) return -ENODEV;
  const btt = ndBttAlloc(k, ndns.region, ndns);
  if (!btt) return -ENODEV;
  let rc: Errno = -ENODEV;
  if (nvdimmNamespaceCapacity(ndns) < SZ_16M) rc = -ENXIO;
  else {
    const offset = ndns.claimClass === "btt2" ? 0 : 4096;
    const sb = nvdimmReadBytes(ndns, offset, 16);
    if (!sb) rc = -ENXIO;
    else if (String.fromCharCode(...sb) !== BTT_SIG.padEnd(16, "\0")) rc = -ENODEV;
  }
  ndDetachNdns(btt);
  btt.release?.();
  return rc;
}

/** nd_pmem binding a btt device: the whole namespace behind a BTT block device "pmemNs". */
// ref: drivers/nvdimm/btt.c nvdimm_namespace_attach_btt, btt_init, btt_blk_init
export function* nvdimmNamespaceAttachBtt(k: Kernel, btt: NdBtt, ndns: NdNamespaceIo): KernelPath<Errno> {
  if (!btt.uuid || !btt.ndns || !btt.lbasize) return -ENODEV;
  const size = nvdimmNamespaceCapacity(ndns);
  const rc = yield* devmNamespaceEnable(k, btt, ndns, size);
  if (rc) return rc;
  btt.initialOffset = ndns.claimClass === "btt2" ? 0 : 4096;
  const rawsize = size - btt.initialOffset;
  if (rawsize < ARENA_MIN_SIZE) return -ENXIO;
  // ref: drivers/nvdimm/btt.c btt_init, discover_arenas (no valid info block at the first arena)
  devPrintk(k, btt, "No existing arenas");
  if (btt.region.ro) {
    devPrintk(k, btt, `${btt.region.name} is read-only, unable to init btt metadata`);
    return -ENOMEM;
  }
  const sectorSize = btt.lbasize >= 4096 ? 4096 : 512;
  const nlba = bttNlba(rawsize, btt.lbasize);
  btt.size = nlba * sectorSize;
  btt.pmem = {
    physAddr: ndns.resStart,
    size,
    dataOffset: 0,
    pfnPad: 0,
    pfnMap: false,
    pgmap: null,
    disk: nvdimmNamespaceDiskName(ndns),
    capacity: (nlba * sectorSize) / 512,
    readOnly: btt.region.ro,
  };
  devmAddPlainAction(btt, "btt_fini", () => {
    btt.pmem = null;
  });
  yield step(`btt_init(${btt.name})`);
  return 0;
}
