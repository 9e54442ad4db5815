/**
 * Namespace labels (drivers/nvdimm/label.c, label.h): the label storage area of a DIMM as bytes — two index
 * blocks (nd_namespace_index: signature, sequence number, free-slot bitmap, fletcher64) followed by an array of
 * label slots (struct nvdimm_efi_label: 128 bytes for v1.1, 256 for v1.2) — and the kernel's operations on it:
 * validation at DIMM probe, DPA reservation for every active label, slot allocation in the staging ("next")
 * index, label updates with garbage collection of the previous label, and deletion.
 *
 * All offsets are byte offsets into the drvdata copy of the label area (ndd->data); a label is named by its
 * offset. uuids are strings (%pUb form), read and written as the 16 bytes the label stores.
 */
import { EBUSY, ENXIO, type Errno } from "../../errno.ts";
import type { Resource } from "../../resource.ts";
import {
  type NdLabelEnt,
  type NdMapping,
  type NvdimmDrvdata,
  nvdimmAllocateDpa,
  nvdimmGetConfigData,
  nvdimmSetConfigData,
  toNdd,
} from "./dimm_devs.ts";
import type { ClaimClass, NdNamespacePmem, NdRegion } from "./nd.ts";
import { ndFletcher64, uuidFromBytes, uuidToBytes } from "./pfn.ts";

// ref: drivers/nvdimm/label.h enum (NSINDEX_*, NSLABEL_*, ND_NSINDEX_INIT)
export const NSINDEX_SIG_LEN = 16;
export const NSINDEX_ALIGN = 256;
export const NSINDEX_SEQ_MASK = 0x3;
export const NSLABEL_UUID_LEN = 16;
export const NSLABEL_NAME_LEN = 64;
export const NSLABEL_FLAG_UPDATING = 0x8;
export const ND_NSINDEX_INIT = 0x1;
// ref: drivers/nvdimm/label.c NSINDEX_SIGNATURE
export const NSINDEX_SIGNATURE = "NAMESPACE_INDEX\0";

/** struct nd_namespace_index field offsets; sizeof (without free[]) is 72. */
// ref: drivers/nvdimm/label.h struct nd_namespace_index
export const NSINDEX = {
  sig: 0,
  flags: 16,
  labelsize: 19,
  seq: 20,
  myoff: 24,
  mysize: 32,
  otheroff: 40,
  labeloff: 48,
  nslot: 56,
  major: 60,
  minor: 62,
  checksum: 64,
  free: 72,
  sizeof: 72,
} as const;

/** struct nvdimm_efi_label field offsets (fields at or past `align` exist only in 256-byte v1.2 labels). */
// ref: drivers/nvdimm/label.h struct nvdimm_efi_label
export const NSLABEL = {
  uuid: 0,
  name: 16,
  flags: 80,
  nlabel: 84,
  position: 86,
  isetcookie: 88,
  lbasize: 96,
  dpa: 104,
  rawsize: 112,
  slot: 120,
  align: 124,
  typeGuid: 128,
  abstractionGuid: 144,
  checksum: 248,
} as const;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u64 = (b: Uint8Array, off: number) => Number(view(b).getBigUint64(off, true));
const setU64 = (b: Uint8Array, off: number, v: number | bigint) => view(b).setBigUint64(off, BigInt(v), true);

// ref: drivers/nvdimm/nd.h nd_inc_seq
export function ndIncSeq(seq: number): number {
  return [0, 2, 3, 1][seq & 3]!;
}

// ref: drivers/nvdimm/label.h nd_label_next_nsindex
export function ndLabelNextNsindex(index: number): number {
  return index < 0 ? -1 : (index + 1) % 2;
}

// ref: drivers/nvdimm/label.c best_seq
function bestSeq(a0: number, b0: number): number {
  const a = a0 & NSINDEX_SEQ_MASK;
  const b = b0 & NSINDEX_SEQ_MASK;
  if (a === 0 || a === b) return b;
  if (b === 0) return a;
  if (ndIncSeq(a) === b) return b;
  return a;
}

/** What the label-area geometry needs: the area's size and the label size (nvdimm_drvdata, or libndctl's copy). */
export interface LabelGeometry {
  nsarea: { configSize: number };
  nslabelSize: number;
}

/** A label area being read or written (ndd->data with its geometry). */
export interface LabelArea extends LabelGeometry {
  data: Uint8Array | null;
}

// ref: drivers/nvdimm/label.c sizeof_namespace_label
export function sizeofNamespaceLabel(ndd: LabelGeometry): number {
  return ndd.nslabelSize;
}

// ref: drivers/nvdimm/label.c __sizeof_namespace_index
function sizeofNamespaceIndexSlots(nslot: number): number {
  return Math.ceil((NSINDEX.sizeof + Math.ceil(nslot / 8)) / NSINDEX_ALIGN) * NSINDEX_ALIGN;
}

// ref: drivers/nvdimm/label.c __nvdimm_num_label_slots
function nvdimmNumLabelSlotsWith(ndd: LabelGeometry, indexSize: number): number {
  return Math.floor((ndd.nsarea.configSize - indexSize * 2) / sizeofNamespaceLabel(ndd));
}

// ref: drivers/nvdimm/label.c nvdimm_num_label_slots
export function nvdimmNumLabelSlots(ndd: LabelGeometry): number {
  const tmpNslot = Math.floor(ndd.nsarea.configSize / sizeofNamespaceLabel(ndd));
  const n = sizeofNamespaceIndexSlots(tmpNslot) / NSINDEX_ALIGN;
  return nvdimmNumLabelSlotsWith(ndd, NSINDEX_ALIGN * n);
}

/** The size of one index block, 0 when the area cannot hold two index blocks and two labels. */
// ref: drivers/nvdimm/label.c sizeof_namespace_index
export function sizeofNamespaceIndex(ndd: LabelGeometry): number {
  const nslot = nvdimmNumLabelSlots(ndd);
  const space = ndd.nsarea.configSize - nslot * sizeofNamespaceLabel(ndd);
  const size = sizeofNamespaceIndexSlots(nslot) * 2;
  if (size <= space && nslot >= 2) return size / 2;
  return 0;
}

/** to_namespace_index: the byte offset of index block i in ndd->data, null for i < 0. */
// ref: drivers/nvdimm/nd.h to_namespace_index
export function toNamespaceIndex(ndd: NvdimmDrvdata, i: number): number | null {
  if (i < 0) return null;
  return sizeofNamespaceIndex(ndd) * i;
}

function indexU32(ndd: LabelArea, idx: number, field: number): number {
  return view(ndd.data!).getUint32(idx + field, true);
}

function indexU16(ndd: LabelArea, idx: number, field: number): number {
  return view(ndd.data!).getUint16(idx + field, true);
}

/** Index `i` of a label area, validated with the label size `ndd.nslabelSize`: its `nsindex%d` checks. */
// ref: drivers/nvdimm/label.c __nd_label_validate
function ndLabelValidateOnce(ndd: LabelArea): number {
  const data = ndd.data!;
  const isize = sizeofNamespaceIndex(ndd);
  const valid = [false, false];
  let numValid = 0;
  for (let i = 0; i < 2; i++) {
    const idx = isize * i;
    if (isize === 0 || idx + isize > data.byteLength) continue;
    const sig = new TextDecoder("latin1").decode(data.subarray(idx, idx + NSINDEX_SIG_LEN));
    if (sig !== NSINDEX_SIGNATURE) continue;
    const version = indexU16(ndd, idx, NSINDEX.major) * 100 + indexU16(ndd, idx, NSINDEX.minor);
    let labelsize: number;
    if (version >= 102) {
      const ls = data[idx + NSINDEX.labelsize]!;
      if (ls > 1) continue;
      labelsize = 1 << (7 + ls);
    } else labelsize = 128;
    if (labelsize !== sizeofNamespaceLabel(ndd)) continue;
    const block = data.slice(idx, idx + isize);
    const sumSave = view(block).getBigUint64(NSINDEX.checksum, true);
    setU64(block, NSINDEX.checksum, 0);
    if (ndFletcher64(block) !== sumSave) continue;
    const seq = indexU32(ndd, idx, NSINDEX.seq);
    if ((seq & NSINDEX_SEQ_MASK) === 0) continue;
    if (u64(data, idx + NSINDEX.myoff) !== i * isize) continue;
    if (u64(data, idx + NSINDEX.otheroff) !== (i === 0 ? 1 : 0) * isize) continue;
    if (u64(data, idx + NSINDEX.labeloff) !== 2 * isize) continue;
    const size = u64(data, idx + NSINDEX.mysize);
    if (size > isize || size < NSINDEX.sizeof) continue;
    const nslot = indexU32(ndd, idx, NSINDEX.nslot);
    if (nslot * sizeofNamespaceLabel(ndd) + 2 * isize > ndd.nsarea.configSize) continue;
    valid[i] = true;
    numValid++;
  }
  if (numValid === 0) return -1;
  if (numValid === 1) return valid[0] ? 0 : 1;
  const seq = bestSeq(indexU32(ndd, 0, NSINDEX.seq), indexU32(ndd, isize, NSINDEX.seq));
  return seq === (indexU32(ndd, isize, NSINDEX.seq) & NSINDEX_SEQ_MASK) ? 1 : 0;
}

/** Probe both label sizes (128 first): the current index, or -1 when neither validates. */
// ref: drivers/nvdimm/label.c nd_label_validate
export function ndLabelValidate(ndd: LabelArea): number {
  for (const size of [128, 256]) {
    ndd.nslabelSize = size;
    const rc = ndLabelValidateOnce(ndd);
    if (rc >= 0) return rc;
  }
  return -1;
}

/** The byte offset of the first label slot. */
// ref: drivers/nvdimm/label.c nd_label_base
function ndLabelBase(ndd: NvdimmDrvdata): number {
  return 2 * sizeofNamespaceIndex(ndd);
}

// ref: drivers/nvdimm/label.c to_slot
export function toSlot(ndd: NvdimmDrvdata, label: number): number {
  return (label - ndLabelBase(ndd)) / sizeofNamespaceLabel(ndd);
}

// ref: drivers/nvdimm/label.c to_label
export function toLabel(ndd: NvdimmDrvdata, slot: number): number {
  return ndLabelBase(ndd) + sizeofNamespaceLabel(ndd) * slot;
}

/** Bit `bit` of a little-endian bitmap at `off` (test_bit_le). */
function testBitLe(data: Uint8Array, off: number, bit: number): boolean {
  return ((data[off + (bit >> 3)]! >> (bit & 7)) & 1) === 1;
}

function setBitLe(data: Uint8Array, off: number, bit: number, v: boolean): void {
  const i = off + (bit >> 3);
  if (v) data[i] = data[i]! | (1 << (bit & 7));
  else data[i] = data[i]! & ~(1 << (bit & 7));
}

/** preamble_index: the index block, its free bitmap and slot count, or null. */
// ref: drivers/nvdimm/label.c preamble_index, preamble_current, preamble_next
function preamble(ndd: NvdimmDrvdata, which: "current" | "next"): { nsindex: number; free: number; nslot: number } | null {
  const nsindex = toNamespaceIndex(ndd, which === "current" ? ndd.nsCurrent : ndd.nsNext);
  if (nsindex === null || !ndd.data) return null;
  return { nsindex, free: nsindex + NSINDEX.free, nslot: indexU32(ndd, nsindex, NSINDEX.nslot) };
}

/** Slots whose free bit is clear (for_each_clear_bit_le). */
function* clearSlots(ndd: NvdimmDrvdata, free: number, nslot: number): Generator<number> {
  for (let slot = 0; slot < nslot; slot++) if (!testBitLe(ndd.data!, free, slot)) yield slot;
}

/** efi_namespace_label_has(ndd, field): the field lies inside this label size. */
// ref: drivers/nvdimm/nd.h efi_namespace_label_has
function labelHas(ndd: NvdimmDrvdata, field: number): boolean {
  return field < sizeofNamespaceLabel(ndd);
}

/** The label at byte offset `label` as the nsl_get_* accessors read it. */
export interface NsLabel {
  uuid: string;
  name: string;
  flags: number;
  nlabel: number;
  position: number;
  isetcookie: bigint;
  lbasize: number;
  dpa: number;
  rawsize: number;
  slot: number;
}

// ref: drivers/nvdimm/nd.h nsl_get_uuid, nsl_ref_name, nsl_get_flags, nsl_get_nlabel, nsl_get_position, nsl_get_isetcookie, nsl_get_lbasize, nsl_get_dpa, nsl_get_rawsize, nsl_get_slot
export function nslGet(ndd: NvdimmDrvdata, label: number): NsLabel {
  const d = ndd.data!;
  const v = view(d);
  const nameBytes = d.subarray(label + NSLABEL.name, label + NSLABEL.name + NSLABEL_NAME_LEN);
  const nul = nameBytes.indexOf(0);
  return {
    uuid: uuidFromBytes(d.subarray(label + NSLABEL.uuid, label + NSLABEL.uuid + NSLABEL_UUID_LEN)),
    name: new TextDecoder("latin1").decode(nameBytes.subarray(0, nul < 0 ? NSLABEL_NAME_LEN : nul)),
    flags: v.getUint32(label + NSLABEL.flags, true),
    nlabel: v.getUint16(label + NSLABEL.nlabel, true),
    position: v.getUint16(label + NSLABEL.position, true),
    isetcookie: v.getBigUint64(label + NSLABEL.isetcookie, true),
    lbasize: u64(d, label + NSLABEL.lbasize),
    dpa: u64(d, label + NSLABEL.dpa),
    rawsize: u64(d, label + NSLABEL.rawsize),
    slot: v.getUint32(label + NSLABEL.slot, true),
  };
}

// ref: drivers/nvdimm/label.c nsl_validate_checksum
function nslValidateChecksum(ndd: NvdimmDrvdata, label: number): boolean {
  if (!labelHas(ndd, NSLABEL.checksum)) return true;
  const copy = ndd.data!.slice(label, label + sizeofNamespaceLabel(ndd));
  const sumSave = view(copy).getBigUint64(NSLABEL.checksum, true);
  setU64(copy, NSLABEL.checksum, 0);
  return ndFletcher64(copy) === sumSave;
}

// ref: drivers/nvdimm/label.c nsl_calculate_checksum
function nslCalculateChecksum(ndd: NvdimmDrvdata, label: number): void {
  if (!labelHas(ndd, NSLABEL.checksum)) return;
  const d = ndd.data!;
  setU64(d, label + NSLABEL.checksum, 0);
  setU64(d, label + NSLABEL.checksum, ndFletcher64(d.subarray(label, label + sizeofNamespaceLabel(ndd))));
}

// ref: drivers/nvdimm/label.c slot_valid
function slotValid(ndd: NvdimmDrvdata, label: number, slot: number): boolean {
  if (slot !== nslGet(ndd, label).slot) return false;
  return nslValidateChecksum(ndd, label);
}

/** The DPA resource name of a namespace: "pmem-<uuid>". */
// ref: drivers/nvdimm/label.c nd_label_gen_id
export function ndLabelGenId(uuid: string): string {
  return `pmem-${uuid}`;
}

/** At DIMM probe: reserve the DPA of every active label (-EBUSY on an overlap). */
// ref: drivers/nvdimm/label.c nd_label_reserve_dpa
export function ndLabelReserveDpa(ndd: NvdimmDrvdata): Errno {
  const p = preamble(ndd, "current");
  if (!p) return 0;
  for (const slot of clearSlots(ndd, p.free, p.nslot)) {
    const label = toLabel(ndd, slot);
    if (!slotValid(ndd, label, slot)) continue;
    const l = nslGet(ndd, label);
    const res = nvdimmAllocateDpa(ndd, ndLabelGenId(l.uuid), l.dpa, l.rawsize);
    if (!res) return -EBUSY;
  }
  return 0;
}

/**
 * Read the label area into the drvdata copy: the two index blocks, then every active label; free slots read
 * as zero. -ENXIO when the DIMM reports no label area.
 */
// ref: drivers/nvdimm/label.c nd_label_data_init
export function ndLabelDataInit(ndd: NvdimmDrvdata): Errno {
  if (ndd.data) return 0;
  if (ndd.nsarea.status || ndd.nsarea.maxXfer === 0 || ndd.nsarea.configSize === 0) return -ENXIO;
  ndd.nslabelSize = 128;
  const readSize = sizeofNamespaceIndex(ndd) * 2;
  if (!readSize) return -ENXIO;
  const configSize = ndd.nsarea.configSize;
  ndd.data = new Uint8Array(configSize);
  let rc = nvdimmGetConfigData(ndd, ndd.data, 0, Math.min(readSize, configSize));
  if (rc) return rc;
  ndd.nsCurrent = ndLabelValidate(ndd);
  if (ndd.nsCurrent < 0) return 0;
  ndd.nsNext = ndLabelNextNsindex(ndd.nsCurrent);
  const isize = sizeofNamespaceIndex(ndd);
  const cur = toNamespaceIndex(ndd, ndd.nsCurrent)!;
  const next = toNamespaceIndex(ndd, ndd.nsNext)!;
  ndd.data.copyWithin(next, cur, cur + isize);
  const labeloff = u64(ndd.data, cur + NSINDEX.labeloff);
  const nslot = indexU32(ndd, cur, NSINDEX.nslot);
  for (let i = 0, offset = labeloff; i < nslot; i++, offset += ndd.nslabelSize) {
    if (testBitLe(ndd.data, cur + NSINDEX.free, i)) {
      ndd.data.fill(0, offset, offset + ndd.nslabelSize);
      continue;
    }
    rc = nvdimmGetConfigData(ndd, ndd.data, offset, ndd.nslabelSize);
    if (rc) return rc;
  }
  return 0;
}

// ref: drivers/nvdimm/label.c nd_label_active_count
export function ndLabelActiveCount(ndd: NvdimmDrvdata): number {
  const p = preamble(ndd, "current");
  if (!p) return 0;
  let count = 0;
  for (const slot of clearSlots(ndd, p.free, p.nslot)) if (slotValid(ndd, toLabel(ndd, slot), slot)) count++;
  return count;
}

/** The n-th valid active label, or null. */
// ref: drivers/nvdimm/label.c nd_label_active
export function ndLabelActive(ndd: NvdimmDrvdata, n0: number): number | null {
  const p = preamble(ndd, "current");
  if (!p) return null;
  let n = n0;
  for (const slot of clearSlots(ndd, p.free, p.nslot)) {
    const label = toLabel(ndd, slot);
    if (!slotValid(ndd, label, slot)) continue;
    if (n-- === 0) return label;
  }
  return null;
}

/** Take the lowest free slot of the staging index (UINT_MAX: none). */
// ref: drivers/nvdimm/label.c nd_label_alloc_slot
export function ndLabelAllocSlot(ndd: NvdimmDrvdata): number {
  const p = preamble(ndd, "next");
  if (!p) return 0xffffffff;
  for (let slot = 0; slot < p.nslot; slot++) {
    if (testBitLe(ndd.data!, p.free, slot)) {
      setBitLe(ndd.data!, p.free, slot, false);
      return slot;
    }
  }
  return 0xffffffff;
}

// ref: drivers/nvdimm/label.c nd_label_free_slot
export function ndLabelFreeSlot(ndd: NvdimmDrvdata, slot: number): boolean {
  const p = preamble(ndd, "next");
  if (!p || slot >= p.nslot) return false;
  const was = testBitLe(ndd.data!, p.free, slot);
  setBitLe(ndd.data!, p.free, slot, true);
  return !was;
}

/** Free slots in the staging index (all of them without an index). */
// ref: drivers/nvdimm/label.c nd_label_nfree
export function ndLabelNfree(ndd: NvdimmDrvdata): number {
  const p = preamble(ndd, "next");
  if (!p) return nvdimmNumLabelSlots(ndd);
  let n = 0;
  for (let slot = 0; slot < p.nslot; slot++) if (testBitLe(ndd.data!, p.free, slot)) n++;
  return n;
}

/** Write index block `index` with `seq`; with ND_NSINDEX_INIT a fresh one with every slot free. */
// ref: drivers/nvdimm/label.c nd_label_write_index
function ndLabelWriteIndex(ndd: NvdimmDrvdata, index: number, seq: number, flags: number): Errno {
  const d = ndd.data!;
  const isize = sizeofNamespaceIndex(ndd);
  const nsindex = toNamespaceIndex(ndd, index)!;
  const nslot = flags & ND_NSINDEX_INIT ? nvdimmNumLabelSlots(ndd) : indexU32(ndd, nsindex, NSINDEX.nslot);
  const v = view(d);
  d.set(new TextEncoder().encode(NSINDEX_SIGNATURE), nsindex + NSINDEX.sig);
  d.fill(0, nsindex + NSINDEX.flags, nsindex + NSINDEX.flags + 3);
  d[nsindex + NSINDEX.labelsize] = sizeofNamespaceLabel(ndd) >> 8;
  v.setUint32(nsindex + NSINDEX.seq, seq, true);
  setU64(d, nsindex + NSINDEX.myoff, nsindex);
  setU64(d, nsindex + NSINDEX.mysize, isize);
  setU64(d, nsindex + NSINDEX.otheroff, toNamespaceIndex(ndd, ndLabelNextNsindex(index))!);
  setU64(d, nsindex + NSINDEX.labeloff, ndLabelBase(ndd));
  v.setUint32(nsindex + NSINDEX.nslot, nslot, true);
  v.setUint16(nsindex + NSINDEX.major, 1, true);
  v.setUint16(nsindex + NSINDEX.minor, sizeofNamespaceLabel(ndd) < 256 ? 1 : 2, true);
  setU64(d, nsindex + NSINDEX.checksum, 0);
  if (flags & ND_NSINDEX_INIT) {
    const nfree = Math.ceil(nslot / 64) * 64;
    d.fill(0xff, nsindex + NSINDEX.free, nsindex + NSINDEX.free + nfree / 8);
    for (let i = 0; i < nfree - nslot; i++) setBitLe(d, nsindex + NSINDEX.free, nslot + i, false);
  }
  setU64(d, nsindex + NSINDEX.checksum, ndFletcher64(d.subarray(nsindex, nsindex + isize)));
  const rc = nvdimmSetConfigData(ndd, nsindex, d.slice(nsindex, nsindex + isize));
  if (rc < 0) return rc;
  if (flags & ND_NSINDEX_INIT) return 0;
  // The index just written becomes current; copy it over the old current, which becomes the next.
  const cur = toNamespaceIndex(ndd, ndd.nsCurrent)!;
  d.copyWithin(cur, nsindex, nsindex + isize);
  ndd.nsCurrent = ndLabelNextNsindex(ndd.nsCurrent);
  ndd.nsNext = ndLabelNextNsindex(ndd.nsNext);
  return 0;
}

// ref: drivers/nvdimm/label.c reap_victim
function reapVictim(ndd: NvdimmDrvdata, victim: NdLabelEnt): void {
  ndLabelFreeSlot(ndd, toSlot(ndd, victim.label!));
  victim.label = null;
}

/** The interleave-set cookie the index version calls for (v1.1: cookie1, else cookie2). */
// ref: drivers/nvdimm/region_devs.c nd_region_interleave_set_cookie
export function ndRegionInterleaveSetCookie(region: NdRegion, ndd: NvdimmDrvdata | null, nsindex: number | null): bigint {
  const set = region.ndSet;
  if (!set) return 0n;
  if (ndd && nsindex !== null && indexU16(ndd, nsindex, NSINDEX.major) === 1 && indexU16(ndd, nsindex, NSINDEX.minor) === 1) return set.cookie1;
  return set.cookie2;
}

/** The index version of the current index ("1.1", "1.2"), null without one. */
export function currentIndexVersion(ndd: NvdimmDrvdata): { major: number; minor: number } | null {
  const idx = toNamespaceIndex(ndd, ndd.nsCurrent);
  if (idx === null || !ndd.data) return null;
  return { major: indexU16(ndd, idx, NSINDEX.major), minor: indexU16(ndd, idx, NSINDEX.minor) };
}

/** Write one label for the namespace into a free slot, reap the old one, and commit the staging index. */
// ref: drivers/nvdimm/label.c __pmem_label_update
function pmemLabelUpdate(region: NdRegion, mapping: NdMapping, nspm: NdNamespacePmem, pos: number, flags: number): Errno {
  const ndd = toNdd(mapping);
  if (!ndd) return -ENXIO;
  const p = preamble(ndd, "next");
  if (!p || !nspm.uuid) return -ENXIO;
  const cookie = ndRegionInterleaveSetCookie(region, ndd, p.nsindex);
  const labelId = ndLabelGenId(nspm.uuid);
  let res: Resource | null = null;
  for (let r = ndd.dpa.child; r; r = r.sibling) {
    if (r.name === labelId) {
      res = r;
      break;
    }
  }
  if (!res) return -ENXIO;
  const slot = ndLabelAllocSlot(ndd);
  if (slot === 0xffffffff) return -ENXIO;
  const d = ndd.data!;
  const label = toLabel(ndd, slot);
  const size = sizeofNamespaceLabel(ndd);
  d.fill(0, label, label + size);
  d.set(uuidToBytes(nspm.uuid), label + NSLABEL.uuid);
  if (nspm.altName !== null) {
    const name = new Uint8Array(NSLABEL_NAME_LEN);
    name.set(new TextEncoder().encode(nspm.altName).subarray(0, NSLABEL_NAME_LEN - 1));
    d.set(name, label + NSLABEL.name);
  }
  const v = view(d);
  v.setUint32(label + NSLABEL.flags, flags, true);
  v.setUint16(label + NSLABEL.nlabel, region.mappings, true);
  v.setUint16(label + NSLABEL.position, pos, true);
  v.setBigUint64(label + NSLABEL.isetcookie, cookie, true);
  setU64(d, label + NSLABEL.rawsize, res.end - res.start + 1);
  setU64(d, label + NSLABEL.lbasize, nspm.lbasize);
  setU64(d, label + NSLABEL.dpa, res.start);
  v.setUint32(label + NSLABEL.slot, slot, true);
  // type_guid and abstraction_guid (v1.2 labels): the SPA range type and the claim class.
  if (labelHas(ndd, NSLABEL.typeGuid)) d.set(region.ndSet?.typeGuid ?? new Uint8Array(16), label + NSLABEL.typeGuid);
  if (labelHas(ndd, NSLABEL.abstractionGuid)) d.set(abstractionGuid(nspm.claimClass), label + NSLABEL.abstractionGuid);
  nslCalculateChecksum(ndd, label);
  let rc = nvdimmSetConfigData(ndd, label, d.slice(label, label + size));
  if (rc < 0) return rc;
  for (const ent of mapping.labels) {
    if (ent.label === null) continue;
    if (ent.reap || nslGet(ndd, ent.label).uuid === nspm.uuid) {
      ent.reap = false;
      reapVictim(ndd, ent);
    }
  }
  rc = ndLabelWriteIndex(ndd, ndd.nsNext, ndIncSeq(indexU32(ndd, p.nsindex, NSINDEX.seq)), 0);
  if (rc === 0) {
    const free = mapping.labels.find((e) => e.label === null);
    if (free) free.label = label;
    else rc = -ENXIO; // "failed to track label"
  }
  return rc;
}

// ref: drivers/nvdimm/label.h NVDIMM_BTT_GUID, NVDIMM_BTT2_GUID, NVDIMM_PFN_GUID, NVDIMM_DAX_GUID
const CLAIM_GUIDS: Record<string, string> = {
  btt: "8aed63a2-29a2-4c66-8b12-f05d15d3922a",
  btt2: "18633bfc-1735-4217-8ac9-17239282d3f8",
  pfn: "266400ba-fb9f-4677-bcb0-968f11d0d225",
  dax: "97a86d9c-3cdd-4eda-986f-5068b4f80088",
};

/** guid_parse() stores the first three fields little-endian. */
// ref: lib/uuid.c guid_parse, __uuid_parse (guid_index)
export function guidBytes(s: string): Uint8Array {
  const b = uuidToBytes(s);
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  return Uint8Array.from(order.map((i) => b[i]!));
}

// ref: drivers/nvdimm/label.c to_abstraction_guid
function abstractionGuid(claimClass: ClaimClass): Uint8Array {
  const g = CLAIM_GUIDS[claimClass];
  return g ? guidBytes(g) : new Uint8Array(16);
}

/** The claim class a v1.2 label records (v1.1 labels have no abstraction guid: none). */
// ref: drivers/nvdimm/label.c nsl_get_claim_class, guid_to_nvdimm_cclass
export function nslGetClaimClass(ndd: NvdimmDrvdata, label: number): ClaimClass {
  if (!labelHas(ndd, NSLABEL.abstractionGuid)) return "none";
  const g = ndd.data!.subarray(label + NSLABEL.abstractionGuid, label + NSLABEL.abstractionGuid + 16);
  for (const [cls, s] of Object.entries(CLAIM_GUIDS)) {
    const want = guidBytes(s);
    if (want.every((b, i) => g[i] === b)) return cls as ClaimClass;
  }
  return "none";
}

/** A label's type_guid matches the region's SPA type (always true for v1.1 labels). */
// ref: drivers/nvdimm/label.c nsl_validate_type_guid
export function nslValidateTypeGuid(ndd: NvdimmDrvdata, label: number, guid: Uint8Array | null): boolean {
  if (!labelHas(ndd, NSLABEL.typeGuid)) return true;
  const g = ndd.data!.subarray(label + NSLABEL.typeGuid, label + NSLABEL.typeGuid + 16);
  const want = guid ?? new Uint8Array(16);
  return want.every((b, i) => g[i] === b);
}

/** Make sure the mapping tracks `numLabels` label entries; write fresh index blocks if there are none. */
// ref: drivers/nvdimm/label.c init_labels
function initLabels(mapping: NdMapping, numLabels: number): number | Errno {
  const ndd = toNdd(mapping)!;
  const old = mapping.labels.length;
  for (let i = old; i < numLabels; i++) mapping.labels.push({ reap: false, label: null });
  if (ndd.nsCurrent !== -1 && ndd.nsNext !== -1) return Math.max(numLabels, old);
  ndd.data!.fill(0);
  for (let i = 0; i < 2; i++) {
    const rc = ndLabelWriteIndex(ndd, i, 3 - i, ND_NSINDEX_INIT);
    if (rc) return rc;
  }
  ndd.nsNext = 1;
  ndd.nsCurrent = 0;
  return Math.max(numLabels, old);
}

/** Free every label of `uuid` in the staging index and commit it. */
// ref: drivers/nvdimm/label.c del_labels
function delLabels(mapping: NdMapping, uuid: string | null): Errno {
  const ndd = toNdd(mapping)!;
  if (!uuid) return 0;
  const p = preamble(ndd, "next");
  if (!p) return 0;
  let active = 0;
  const moved: NdLabelEnt[] = [];
  const kept: NdLabelEnt[] = [];
  for (const ent of mapping.labels) {
    if (ent.label === null) {
      kept.push(ent);
      continue;
    }
    active++;
    if (nslGet(ndd, ent.label).uuid !== uuid) {
      kept.push(ent);
      continue;
    }
    active--;
    ndLabelFreeSlot(ndd, toSlot(ndd, ent.label));
    ent.label = null;
    moved.push(ent);
  }
  mapping.labels = [...kept, ...moved];
  if (active === 0) mapping.labels = [];
  return ndLabelWriteIndex(ndd, ndd.nsNext, ndIncSeq(indexU32(ndd, p.nsindex, NSINDEX.seq)), 0);
}

/** Write (size > 0, twice: with and then without NSLABEL_FLAG_UPDATING) or delete (size 0) the labels. */
// ref: drivers/nvdimm/label.c nd_pmem_namespace_label_update
export function ndPmemNamespaceLabelUpdate(region: NdRegion, nspm: NdNamespacePmem, size: number): Errno {
  for (let i = 0; i < region.mappings; i++) {
    const mapping = region.ndMappings[i]!;
    const ndd = toNdd(mapping);
    if (!ndd) return -ENXIO;
    if (size === 0) {
      const rc = delLabels(mapping, nspm.uuid);
      if (rc) return rc;
      continue;
    }
    let count = 0;
    for (let r = ndd.dpa.child; r; r = r.sibling) if (r.name.startsWith("pmem")) count++;
    const n = initLabels(mapping, count);
    if (n < 0) return n;
    const rc = pmemLabelUpdate(region, mapping, nspm, i, NSLABEL_FLAG_UPDATING);
    if (rc) return rc;
  }
  if (size === 0) return 0;
  for (let i = 0; i < region.mappings; i++) {
    const rc = pmemLabelUpdate(region, region.ndMappings[i]!, nspm, i, 0);
    if (rc) return rc;
  }
  return 0;
}
