/**
 * pfn and dax devices on the nd bus (drivers/nvdimm/pfn_devs.c, dax_devs.c): allocation with the region's ida,
 * seeds, their sysfs attributes, autodetection of an info block by the namespace probe (nd_pfn_probe,
 * nd_dax_probe), and nvdimm_setup_pfn run against the region's media. The info-block arithmetic itself is in
 * pfn_devs.ts.
 */
import { EBUSY, EINVAL, ENODEV, ENOMEM, ENXIO, type Errno } from "../../errno.ts";
import type { Kernel } from "../../kernel.ts";
import { ro, rw, type SysfsAttr } from "../../sysfs.ts";
import { daxRegionAttrs } from "../dax/bus.ts";
import { ndDeviceAttrs, ndDeviceRegister } from "./bus.ts";
import { ndAttachNdns, ndDetachNdns, ndNamespaceStore, nvdimmReadBytes, nvdimmWriteBytes } from "./claim.ts";
import { type Device, devPrintk } from "./device_core.ts";
import { hex, isNdDax, type NdBtt, type NdNamespaceIo, type NdPfn, type NdRegion, nsioSize } from "./nd.ts";
import { DAX_SIG, ND_PFN_SB_OFFSET, ND_PFN_SB_SIZE, PFN_MODE_NONE, PFN_SIG, uuidFromBytes } from "./pfn.ts";
import {
  type NdPfnSetup,
  ndPfnAlignStore,
  ndPfnDefaultAlignment,
  ndPfnModeShow,
  ndPfnModeStore,
  ndPfnSupportedAlignmentsShow,
  ndPfnValidate,
  nvdimmSetupPfn,
} from "./pfn_devs.ts";

/** nd_pfn_alloc / nd_dax_alloc: the next free id of the region's pfn or dax ida. */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_alloc, nd_pfn_release; dax_devs.c nd_dax_alloc, nd_dax_release
export function ndPfnAlloc(k: Kernel, region: NdRegion, kind: "nd_pfn" | "nd_dax"): NdPfn {
  const ida = kind === "nd_pfn" ? region.pfnIda : region.daxIda;
  const id = ida.get();
  const name = `${kind === "nd_pfn" ? "pfn" : "dax"}${region.id}.${id}`;
  const pfn: NdPfn = {
    kind,
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
    mode: PFN_MODE_NONE,
    align: 0,
    ndns: null,
    pfnSb: null,
    pmem: null,
    daxRegion: null,
    attrs: () => ndPfnAttrs(k, pfn),
    subdirs: () => (pfn.daxRegion ? [{ name: "dax_region", attrs: daxRegionAttrs(pfn.daxRegion) }] : []),
    release: () => {
      ndDetachNdns(pfn);
      ida.remove(id);
    },
  };
  return pfn;
}

/** nd_pfn_devinit: default mode and alignment, and the claim on `ndns` when probing. */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_devinit
export function ndPfnDevinit(k: Kernel, pfn: NdPfn, ndns: NdNamespaceIo | null): boolean {
  pfn.mode = PFN_MODE_NONE;
  pfn.align = ndPfnDefaultAlignment(k.arch);
  if (ndns && !ndAttachNdns(pfn, ndns)) {
    pfn.release?.();
    return false;
  }
  return true;
}

/** A new pfn seed. */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_create
export function ndPfnCreate(k: Kernel, region: NdRegion): NdPfn {
  const pfn = ndPfnAlloc(k, region, "nd_pfn");
  ndPfnDevinit(k, pfn, null);
  ndDeviceRegister(k, pfn);
  return pfn;
}

// ref: lib/uuid.c __uuid_parse
function uuidParse(buf: string): string | null {
  const s = buf.slice(0, 36);
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) return null;
  return s.toLowerCase();
}

// ref: drivers/nvdimm/core.c nd_uuid_store
export function ndUuidStore(dev: Device, buf: string): string | Errno {
  if (dev.driver) return -EBUSY;
  const u = uuidParse(buf);
  return u ?? -EINVAL;
}

/** `namespace` and `uuid`: the attributes every claim device (pfn, dax, btt) shares. */
// ref: drivers/nvdimm/claim.c nd_namespace_store; drivers/nvdimm/core.c nd_uuid_store
export function claimAttrs(k: Kernel, dev: NdPfn | NdBtt): Array<[string, SysfsAttr]> {
  return [
    ["namespace", rw(() => dev.ndns?.name ?? "", (v) => ndNamespaceStore(k, dev, v))],
    [
      "uuid",
      rw(
        () => dev.uuid ?? "",
        (v) => {
          const r = ndUuidStore(dev, v);
          if (typeof r === "number") return r;
          dev.uuid = r;
          return 0;
        },
      ),
    ],
  ];
}

/** The nd_pfn attribute group (shared by dax devices) plus the nd device and NUMA groups. */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_attributes, mode_*, align_*, uuid_*, namespace_*, resource_show, size_show
function ndPfnAttrs(k: Kernel, pfn: NdPfn): Map<string, SysfsAttr> {
  const bound = () => pfn.driver !== null;
  const attrs = new Map<string, SysfsAttr>([
    [
      "mode",
      rw(
        () => ndPfnModeShow(pfn.mode).trimEnd(),
        (v) => {
          const r = ndPfnModeStore(v, bound());
          if (!r.ok) return r.rc;
          pfn.mode = r.mode;
          return 0;
        },
      ),
    ],
    ...claimAttrs(k, pfn),
    [
      "align",
      rw(
        () => String(pfn.align),
        (v) => {
          const r = ndPfnAlignStore(k.arch, v, bound());
          if (!r.ok) return r.rc;
          pfn.align = r.align;
          return 0;
        },
      ),
    ],
    [
      "resource",
      ro(() => {
        if (!bound() || !pfn.pfnSb || !pfn.ndns) return -ENXIO;
        return hex(pfn.ndns.resStart + pfn.pfnSb.startPad + pfn.pfnSb.dataoff);
      }),
    ],
    [
      "size",
      ro(() => {
        if (!bound() || !pfn.pfnSb || !pfn.ndns) return -ENXIO;
        const sb = pfn.pfnSb;
        return String(nsioSize(pfn.ndns) - sb.startPad - sb.endTrunc - sb.dataoff);
      }),
    ],
    ["supported_alignments", ro(() => ndPfnSupportedAlignmentsShow(k.arch).replace(/\n$/, ""))],
  ]);
  for (const [n, a] of ndDeviceAttrs(k, pfn, pfn.kind)) attrs.set(n, a);
  return attrs;
}

/**
 * A namespace probe looking for an info block of `kind` (PFN_SIG or DAX_SIG): a new device claims the
 * namespace, adopts the block's uuid/align/mode and is registered (0), or is dropped again (the errno).
 */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_probe; dax_devs.c nd_dax_probe
export function ndPfnProbe(k: Kernel, ndns: NdNamespaceIo, kind: "nd_pfn" | "nd_dax"): Errno {
  if (ndns.forceRaw) return -ENODEV;
  const ok = kind === "nd_pfn" ? ["none", "pfn"] : ["none", "dax"];
  if (!ok.includes(ndns.claimClass)) return -ENODEV;
  const pfn = ndPfnAlloc(k, ndns.region, kind);
  if (!ndPfnDevinit(k, pfn, ndns)) return -ENOMEM;
  const block = nvdimmReadBytes(ndns, ND_PFN_SB_OFFSET, ND_PFN_SB_SIZE);
  const v = ndPfnValidate(block ?? new Uint8Array(ND_PFN_SB_SIZE), {
    arch: k.arch,
    sig: kind === "nd_pfn" ? PFN_SIG : DAX_SIG,
    ns: { start: ndns.resStart, size: nsioSize(ndns), name: ndns.name },
    pfn: { uuid: null, align: pfn.align, mode: pfn.mode },
    readError: block === null,
  });
  if (!v.ok) {
    if (v.msg) devPrintk(k, pfn, v.msg);
    ndDetachNdns(pfn);
    pfn.release?.();
    return v.rc;
  }
  pfn.uuid = v.uuid;
  pfn.align = v.align;
  pfn.mode = v.mode;
  pfn.pfnSb = v.sb;
  ndDeviceRegister(k, pfn);
  return 0;
}

/** nvdimm_setup_pfn against the media: validate or write the info block, then derive the pgmap. */
// ref: drivers/nvdimm/pfn_devs.c nvdimm_setup_pfn, nd_pfn_init
export function ndPfnSetup(k: Kernel, pfn: NdPfn): NdPfnSetup | Errno {
  const ndns = pfn.ndns;
  const block = ndns ? nvdimmReadBytes(ndns, ND_PFN_SB_OFFSET, ND_PFN_SB_SIZE) : null;
  const r = nvdimmSetupPfn({
    arch: k.arch,
    sig: isNdDax(pfn) ? DAX_SIG : PFN_SIG,
    ns: ndns ? { start: ndns.resStart, size: nsioSize(ndns), name: ndns.name } : null,
    pfn: { uuid: pfn.uuid, align: pfn.align, mode: pfn.mode },
    media: block ?? undefined,
    readError: ndns !== null && block === null,
    readOnly: pfn.region.ro,
    regionName: pfn.region.name,
  });
  if (!r.ok) {
    if (r.msg) devPrintk(k, pfn, r.msg);
    return r.rc;
  }
  if (r.write && ndns) {
    const rc = nvdimmWriteBytes(ndns, ND_PFN_SB_OFFSET, r.write);
    if (rc) return rc;
  }
  for (const m of r.msgs) devPrintk(k, pfn, m);
  pfn.pfnSb = r.sb;
  return r.setup;
}

/** uuid_generate() as the ndctl model does it: deterministic, version-4 shaped. */
export function modelUuid(counter: number): string {
  const b = new Uint8Array(16);
  let c = counter;
  for (let i = 15; i >= 10 && c > 0; i--) {
    b[i] = c % 256;
    c = Math.floor(c / 256);
  }
  b[0] = 0x5a;
  b[1] = 0xed;
  b[6] = 0x40;
  b[8] = 0x80;
  return uuidFromBytes(b);
}
