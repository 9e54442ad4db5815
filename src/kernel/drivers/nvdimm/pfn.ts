/**
 * The NVDIMM pfn / dax info block: struct nd_pfn_sb (drivers/nvdimm/pfn.h), its constants (drivers/nvdimm/nd.h,
 * pfn_devs.c) and its fletcher64 checksum (drivers/nvdimm/claim.c nd_sb_checksum, core.c nd_fletcher64).
 *
 * The block lives at namespace byte offset 4096 and is 4096 bytes long, all fields little-endian. u64 fields are
 * plain numbers (exact below 2^53, which covers every value a kernel writes); the checksum is a bigint.
 */

// ref: drivers/nvdimm/pfn.h PFN_SIG_LEN
export const PFN_SIG_LEN = 16;
// ref: drivers/nvdimm/pfn.h PFN_SIG
export const PFN_SIG = "NVDIMM_PFN_INFO\0";
// ref: drivers/nvdimm/pfn.h DAX_SIG
export const DAX_SIG = "NVDIMM_DAX_INFO\0";

/** Namespace byte offset of the info block (nvdimm_read_bytes(ndns, SZ_4K, ...)). */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_validate
export const ND_PFN_SB_OFFSET = 4096;
/** sizeof(struct nd_pfn_sb) (BUILD_BUG_ON != SZ_4K). */
// ref: drivers/nvdimm/claim.c nd_sb_checksum
export const ND_PFN_SB_SIZE = 4096;

/** Bytes of memmap budgeted per pfn on the device, whatever the running kernel's sizeof(struct page). */
// ref: drivers/nvdimm/nd.h MAX_STRUCT_PAGE_SIZE
export const MAX_STRUCT_PAGE_SIZE = 64;
/** Length of the zero-terminated supported-alignments array. */
// ref: drivers/nvdimm/nd.h MAX_NVDIMM_ALIGN
export const MAX_NVDIMM_ALIGN = 4;

// ref: drivers/nvdimm/nd.h enum nd_pfn_mode
export const PFN_MODE_NONE = 0;
// ref: drivers/nvdimm/nd.h enum nd_pfn_mode
export const PFN_MODE_RAM = 1;
// ref: drivers/nvdimm/nd.h enum nd_pfn_mode
export const PFN_MODE_PMEM = 2;

/** Version nd_pfn_init writes (1.4: page_size and page_struct_size recorded). */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_init
export const ND_PFN_VERSION_MAJOR = 1;
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_init
export const ND_PFN_VERSION_MINOR = 4;

/** The literal SZ_8K of nd_pfn_init's data-offset formula. */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_init
export const SZ_8K = 8192;

/** Bytes at the start of the namespace kept out of the memmap (the altmap reserve): ALIGN(SZ_8K, PAGE_SIZE). */
// ref: drivers/nvdimm/nd.h nd_info_block_reserve
export function ndInfoBlockReserve(pageSize: number): number {
  return Math.ceil(SZ_8K / pageSize) * pageSize;
}

/** Byte offset and size of each struct nd_pfn_sb field. */
// ref: drivers/nvdimm/pfn.h struct nd_pfn_sb
export const ND_PFN_SB_LAYOUT = {
  signature: { offset: 0x000, size: 16 },
  uuid: { offset: 0x010, size: 16 },
  parentUuid: { offset: 0x020, size: 16 },
  flags: { offset: 0x030, size: 4 },
  versionMajor: { offset: 0x034, size: 2 },
  versionMinor: { offset: 0x036, size: 2 },
  dataoff: { offset: 0x038, size: 8 },
  npfns: { offset: 0x040, size: 8 },
  mode: { offset: 0x048, size: 4 },
  startPad: { offset: 0x04c, size: 4 },
  endTrunc: { offset: 0x050, size: 4 },
  align: { offset: 0x054, size: 4 },
  pageSize: { offset: 0x058, size: 4 },
  pageStructSize: { offset: 0x05c, size: 2 },
  padding: { offset: 0x05e, size: 3994 },
  checksum: { offset: 0xff8, size: 8 },
} as const;

/** A parsed struct nd_pfn_sb. */
export interface NdPfnSb {
  /** 16 bytes as a latin1 string (PFN_SIG / DAX_SIG include their trailing NUL). */
  signature: string;
  /** uuid of the pfn/dax device, canonical form, bytes in %pUb order. */
  uuid: string;
  /** uuid of the namespace (all zero for a namespace_io, e.g. legacy e820 pmem). */
  parentUuid: string;
  flags: number;
  versionMajor: number;
  versionMinor: number;
  /** Byte offset of the data from the namespace base. */
  dataoff: number;
  npfns: number;
  mode: number;
  startPad: number;
  endTrunc: number;
  /** The requested alignment (nd_pfn->align), not the effective one. */
  align: number;
  pageSize: number;
  pageStructSize: number;
  /** The 3994 padding bytes; absent means all zero. */
  padding?: Uint8Array;
  checksum: bigint;
}

export const UUID_NULL = "00000000-0000-0000-0000-000000000000";

/** uuid string → 16 bytes in the order %pUb prints them. */
export function uuidToBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a uuid: ${uuid}`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** 16 bytes → canonical lowercase uuid (%pUb). */
export function uuidFromBytes(bytes: Uint8Array): string {
  const hex = [...bytes.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Fletcher-64 over little-endian u32 words: lo32 wraps mod 2^32, hi32 accumulates every lo32 in a u64, result
 * `hi32 << 32 | lo32` (so only hi32's low 32 bits survive).
 */
// ref: drivers/nvdimm/core.c nd_fletcher64
export function ndFletcher64(bytes: Uint8Array, le = true): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = Math.floor(bytes.byteLength / 4);
  let lo32 = 0;
  // At most 2^30 words of < 2^32 each per summand; reduce mod 2^32 as we go, only the low 32 bits are kept.
  let hi32 = 0;
  for (let i = 0; i < words; i++) {
    lo32 = (lo32 + view.getUint32(4 * i, le)) % 2 ** 32;
    hi32 = (hi32 + lo32) % 2 ** 32;
  }
  return (BigInt(hi32) << 32n) | BigInt(lo32);
}

/** fletcher64 of the 4096-byte block with its checksum field taken as zero. */
// ref: drivers/nvdimm/claim.c nd_sb_checksum
export function ndSbChecksum(image: Uint8Array): bigint {
  if (image.byteLength !== ND_PFN_SB_SIZE) throw new RangeError(`info block is ${image.byteLength} bytes, not ${ND_PFN_SB_SIZE}`);
  const copy = image.slice();
  copy.fill(0, ND_PFN_SB_LAYOUT.checksum.offset, ND_PFN_SB_SIZE);
  return ndFletcher64(copy, true);
}

function u64(n: number, what: string): bigint {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} ${n} is not a u64 this model can represent`);
  return BigInt(n);
}

function uint(n: number, bits: 16 | 32, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** bits) throw new RangeError(`${what} ${n} does not fit __le${bits}`);
  return n;
}

/** Serialise an info block; the checksum field is written as given (see withNdSbChecksum). */
// ref: drivers/nvdimm/pfn.h struct nd_pfn_sb
export function encodeNdPfnSb(sb: NdPfnSb): Uint8Array {
  const L = ND_PFN_SB_LAYOUT;
  const out = new Uint8Array(ND_PFN_SB_SIZE);
  const view = new DataView(out.buffer);
  if (sb.signature.length > PFN_SIG_LEN) throw new RangeError(`signature longer than ${PFN_SIG_LEN} bytes`);
  for (let i = 0; i < sb.signature.length; i++) {
    const c = sb.signature.charCodeAt(i);
    if (c > 0xff) throw new RangeError("signature is not latin1");
    out[L.signature.offset + i] = c;
  }
  out.set(uuidToBytes(sb.uuid), L.uuid.offset);
  out.set(uuidToBytes(sb.parentUuid), L.parentUuid.offset);
  view.setUint32(L.flags.offset, uint(sb.flags, 32, "flags"), true);
  view.setUint16(L.versionMajor.offset, uint(sb.versionMajor, 16, "version_major"), true);
  view.setUint16(L.versionMinor.offset, uint(sb.versionMinor, 16, "version_minor"), true);
  view.setBigUint64(L.dataoff.offset, u64(sb.dataoff, "dataoff"), true);
  view.setBigUint64(L.npfns.offset, u64(sb.npfns, "npfns"), true);
  view.setUint32(L.mode.offset, uint(sb.mode, 32, "mode"), true);
  view.setUint32(L.startPad.offset, uint(sb.startPad, 32, "start_pad"), true);
  view.setUint32(L.endTrunc.offset, uint(sb.endTrunc, 32, "end_trunc"), true);
  view.setUint32(L.align.offset, uint(sb.align, 32, "align"), true);
  view.setUint32(L.pageSize.offset, uint(sb.pageSize, 32, "page_size"), true);
  view.setUint16(L.pageStructSize.offset, uint(sb.pageStructSize, 16, "page_struct_size"), true);
  if (sb.padding) {
    if (sb.padding.byteLength !== L.padding.size) throw new RangeError(`padding must be ${L.padding.size} bytes`);
    out.set(sb.padding, L.padding.offset);
  }
  if (sb.checksum < 0n || sb.checksum >= 2n ** 64n) throw new RangeError("checksum does not fit __le64");
  view.setBigUint64(L.checksum.offset, sb.checksum, true);
  return out;
}

/**
 * Parse 4096 bytes. u64 fields above 2^53 (never written by a kernel) are rounded to the nearest number, so such a
 * block no longer re-encodes to the same bytes; pass the bytes themselves to ndPfnValidate to check the checksum.
 */
// ref: drivers/nvdimm/pfn.h struct nd_pfn_sb
export function decodeNdPfnSb(image: Uint8Array): NdPfnSb {
  if (image.byteLength !== ND_PFN_SB_SIZE) throw new RangeError(`info block is ${image.byteLength} bytes, not ${ND_PFN_SB_SIZE}`);
  const L = ND_PFN_SB_LAYOUT;
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const padding = image.slice(L.padding.offset, L.padding.offset + L.padding.size);
  const sb: NdPfnSb = {
    signature: String.fromCharCode(...image.subarray(L.signature.offset, L.signature.offset + PFN_SIG_LEN)),
    uuid: uuidFromBytes(image.subarray(L.uuid.offset, L.uuid.offset + 16)),
    parentUuid: uuidFromBytes(image.subarray(L.parentUuid.offset, L.parentUuid.offset + 16)),
    flags: view.getUint32(L.flags.offset, true),
    versionMajor: view.getUint16(L.versionMajor.offset, true),
    versionMinor: view.getUint16(L.versionMinor.offset, true),
    dataoff: Number(view.getBigUint64(L.dataoff.offset, true)),
    npfns: Number(view.getBigUint64(L.npfns.offset, true)),
    mode: view.getUint32(L.mode.offset, true),
    startPad: view.getUint32(L.startPad.offset, true),
    endTrunc: view.getUint32(L.endTrunc.offset, true),
    align: view.getUint32(L.align.offset, true),
    pageSize: view.getUint32(L.pageSize.offset, true),
    pageStructSize: view.getUint16(L.pageStructSize.offset, true),
    checksum: view.getBigUint64(L.checksum.offset, true),
  };
  if (padding.some((b) => b !== 0)) sb.padding = padding;
  return sb;
}

/** A copy of `sb` with the checksum the kernel would store (nd_pfn_init: checksum = nd_sb_checksum(pfn_sb)). */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_init
export function withNdSbChecksum(sb: NdPfnSb): NdPfnSb {
  return { ...sb, checksum: ndSbChecksum(encodeNdPfnSb({ ...sb, checksum: 0n })) };
}
