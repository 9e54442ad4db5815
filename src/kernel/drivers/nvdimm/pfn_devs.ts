/**
 * NVDIMM pfn / dax devices: alignment options, the info-block layout nd_pfn_init computes, nd_pfn_validate, and
 * the dev_pagemap parameters __nvdimm_setup_pfn derives from a block (drivers/nvdimm/pfn_devs.c), plus the sysfs
 * values (`align`, `mode`, `resource`, `size`, `supported_alignments`) of the pfn/dax device.
 *
 * Pure functions: nothing here touches a Kernel. Failures come back as `{ ok: false, rc, msg }` with the negative
 * errno the C returns and the dev_err/dev_info text it prints (without the "driver device: " prefix), or null.
 *
 * Arithmetic is on plain numbers: namespaces, offsets and pfns are far below 2^53. Where the C would wrap a u64
 * (only reachable with a corrupt or hand-made block) the result is computed as the wrapped value, exactly for pfn
 * counts and approximately for byte counts above 2^53.
 */
import type { ArchProfile } from "../../../arch/profiles.ts";
import { geometry } from "../../../arch/profiles.ts";
import { EBUSY, EINVAL, ENODEV, ENXIO, EOPNOTSUPP, ERANGE } from "../../errno.ts";
import { type ByteRange, PGMAP_ALTMAP_VALID } from "../../mm/dev_pagemap.ts";
import { newAltmap, type VmemAltmap } from "../../mm/vmem_altmap.ts";
import {
  DAX_SIG,
  decodeNdPfnSb,
  encodeNdPfnSb,
  MAX_STRUCT_PAGE_SIZE,
  ND_PFN_SB_SIZE,
  ND_PFN_VERSION_MAJOR,
  ND_PFN_VERSION_MINOR,
  type NdPfnSb,
  ndInfoBlockReserve,
  ndSbChecksum,
  PFN_MODE_NONE,
  PFN_MODE_PMEM,
  PFN_MODE_RAM,
  PFN_SIG,
  PFN_SIG_LEN,
  SZ_8K,
  UUID_NULL,
  withNdSbChecksum,
} from "./pfn.ts";

const U64 = 2 ** 64;

/** A failed call: the negative errno and the message the kernel logs on the way out (null when silent). */
export interface NdPfnFailure {
  readonly ok: false;
  readonly rc: number;
  readonly msg: string | null;
}

function fail(rc: number, msg: string | null = null): NdPfnFailure {
  return { ok: false, rc, msg };
}

/** Arch facts the profile does not carry. */
export interface NdArchOptions {
  /**
   * CONFIG_TRANSPARENT_HUGEPAGE and has_transparent_hugepage() (x86: X86_FEATURE_PSE; ppc radix: 2M pages at PMD
   * level; arm64: the config). Default true, as in the oracle's Debian config.
   */
  thp?: boolean;
  /**
   * ppc64 with the hash MMU: log2 of the linear-map page size (mmu_psize_defs[mmu_linear_psize].shift, typically 24).
   * Only memremap_compat_align uses it; the shipped ppc64 profile is radix.
   */
  ppcHashLinearPageShift?: number;
}

/** "none" | "ram" (sysfs; ndctl --map=mem) | "pmem" (ndctl --map=dev). */
export type NdPfnModeName = "none" | "ram" | "pmem";

/** PFN_MODE_* for a sysfs/ndctl name; numbers pass through. */
export function pfnModeValue(mode: NdPfnModeName | number): number {
  if (typeof mode === "number") return mode;
  return mode === "ram" ? PFN_MODE_RAM : mode === "pmem" ? PFN_MODE_PMEM : PFN_MODE_NONE;
}

// ---------------------------------------------------------------------------------------------------------------
// Alignment

/** Minimum namespace alignment that lets it switch between every mode: SUBSECTION_SIZE (ppc hash: max with the linear-map page). */
// ref: mm/memremap.c memremap_compat_align
export function memremapCompatAlign(arch: ArchProfile, opts: NdArchOptions = {}): number {
  const subsection = 2 ** arch.subsectionShift;
  // ref: arch/powerpc/mm/book3s64/pgtable.c memremap_compat_align
  if (arch.arch === "ppc64" && opts.ppcHashLinearPageShift !== undefined) {
    return Math.max(subsection, 2 ** opts.ppcHashLinearPageShift);
  }
  return subsection;
}

// ref: include/linux/pgtable.h has_transparent_hugepage
export function hasTransparentHugepage(arch: ArchProfile, opts: NdArchOptions = {}): boolean {
  return (opts.thp ?? true) && arch.selects.HAVE_ARCH_TRANSPARENT_HUGEPAGE;
}

/** PAGE_SIZE, then HPAGE_PMD_SIZE with THP, then HPAGE_PUD_SIZE with PUD THP (x86_64 only). */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_supported_alignments
export function ndPfnSupportedAlignments(arch: ArchProfile, opts: NdArchOptions = {}): number[] {
  const out = [2 ** arch.pageShift];
  if (hasTransparentHugepage(arch, opts)) {
    out.push(2 ** arch.pmdShift);
    if (arch.selects.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD && arch.pudShift !== null) out.push(2 ** arch.pudShift);
  }
  return out;
}

/** nd_pfn->align of a new pfn/dax device: HPAGE_PMD_SIZE with THP, else PAGE_SIZE. */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_default_alignment
export function ndPfnDefaultAlignment(arch: ArchProfile, opts: NdArchOptions = {}): number {
  return hasTransparentHugepage(arch, opts) ? 2 ** arch.pmdShift : 2 ** arch.pageShift;
}

// ref: drivers/nvdimm/pfn_devs.c nd_supported_alignment
export function ndSupportedAlignment(arch: ArchProfile, align: number, opts: NdArchOptions = {}): boolean {
  if (align === 0) return false;
  return ndPfnSupportedAlignments(arch, opts).includes(align);
}

/** sysfs supported_alignments (also dax's): "4096 2097152 1073741824 \n", the current one in brackets (current 0: none). */
// ref: drivers/nvdimm/core.c nd_size_select_show
export function ndSizeSelectShow(current: number, supported: readonly number[]): string {
  return `${supported.map((a) => (a === current ? `[${a}] ` : `${a} `)).join("")}\n`;
}

// ref: drivers/nvdimm/pfn_devs.c supported_alignments_show
export function ndPfnSupportedAlignmentsShow(arch: ArchProfile, opts: NdArchOptions = {}): string {
  return ndSizeSelectShow(0, ndPfnSupportedAlignments(arch, opts));
}

// ref: drivers/nvdimm/pfn_devs.c align_show
export function ndPfnAlignShow(align: number): string {
  return `${align}\n`;
}

/**
 * kstrtoul(s, base): optional '+', radix prefix for base 0 ("0x" needs a hex digit after it, else octal from the
 * '0'), digits, one optional '\n', end. -EINVAL on no digits or trailing junk, -ERANGE above 2^64 - 1.
 */
// ref: lib/kstrtox.c kstrtoull, _kstrtoull, _parse_integer_fixup_radix, _parse_integer_limit
export function kstrtoul(s: string, base: number): { ok: true; value: bigint } | NdPfnFailure {
  let i = s[0] === "+" ? 1 : 0;
  const isxdigit = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);
  if (base === 0) {
    if (s[i] === "0") base = s[i + 1]?.toLowerCase() === "x" && isxdigit(s[i + 2]) ? 16 : 8;
    else base = 10;
  }
  if (base === 16 && s[i] === "0" && s[i + 1]?.toLowerCase() === "x") i += 2;
  const big = BigInt(base);
  let res = 0n;
  let digits = 0;
  let overflow = false;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const lc = c | 0x20;
    let val: number;
    if (c >= 0x30 && c <= 0x39) val = c - 0x30;
    else if (lc >= 0x61 && lc <= 0x66) val = lc - 0x61 + 10;
    else break;
    if (val >= base) break;
    res = res * big + BigInt(val);
    if (res >= 2n ** 64n) {
      overflow = true;
      res %= 2n ** 64n;
    }
    digits++;
  }
  if (overflow) return fail(-ERANGE);
  if (digits === 0) return fail(-EINVAL);
  if (s[i] === "\n") i++;
  if (i < s.length && s[i] !== "\0") return fail(-EINVAL);
  return { ok: true, value: res };
}

/** Writing sysfs `align`: -EBUSY while a driver is bound, the kstrtoul error, -EINVAL if not a supported value. */
// ref: drivers/nvdimm/pfn_devs.c align_store; drivers/nvdimm/core.c nd_size_select_store
export function ndPfnAlignStore(
  arch: ArchProfile,
  buf: string,
  bound: boolean,
  opts: NdArchOptions = {},
): { ok: true; align: number } | NdPfnFailure {
  if (bound) return fail(-EBUSY);
  const parsed = kstrtoul(buf, 0);
  if (!parsed.ok) return parsed;
  const found = ndPfnSupportedAlignments(arch, opts).find((a) => BigInt(a) === parsed.value);
  return found === undefined ? fail(-EINVAL) : { ok: true, align: found };
}

// ref: drivers/nvdimm/pfn_devs.c mode_show
export function ndPfnModeShow(mode: number): string {
  return mode === PFN_MODE_RAM ? "ram\n" : mode === PFN_MODE_PMEM ? "pmem\n" : "none\n";
}

/** strncmp on a NUL-terminated view of JS strings. */
function strncmp(a: string, b: string, n: number): number {
  for (let i = 0; i < n; i++) {
    const ca = i < a.length ? a.charCodeAt(i) : 0;
    const cb = i < b.length ? b.charCodeAt(i) : 0;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca === 0) return 0;
  }
  return 0;
}

/**
 * Writing sysfs `mode`. Compares only len - 1 bytes, so any prefix of "pmem"/"ram"/"none" followed by one more
 * character selects that mode ("p\n", "rx"), and a single character selects pmem (n = 0).
 */
// ref: drivers/nvdimm/pfn_devs.c mode_store
export function ndPfnModeStore(buf: string, bound: boolean): { ok: true; mode: number } | NdPfnFailure {
  if (bound) return fail(-EBUSY);
  const n = buf.length === 0 ? Number.POSITIVE_INFINITY : buf.length - 1;
  const is = (word: string): boolean => strncmp(buf, `${word}\n`, n) === 0 || strncmp(buf, word, n) === 0;
  if (is("pmem")) return { ok: true, mode: PFN_MODE_PMEM };
  if (is("ram")) return { ok: true, mode: PFN_MODE_RAM };
  if (is("none")) return { ok: true, mode: PFN_MODE_NONE };
  return fail(-EINVAL);
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers (include/linux/align.h, pfn.h, log2.h)

function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

function alignDown(x: number, a: number): number {
  return Math.floor(x / a) * a;
}

function isAligned(x: number, a: number): boolean {
  return x % a === 0;
}

/** PHYS_PFN(a - b) with u64 wrap-around when b > a (exact: 2^64 is a multiple of the page size). */
function physPfnOfDiff(a: number, b: number, pageSize: number): number {
  return a >= b ? Math.floor((a - b) / pageSize) : U64 / pageSize - Math.ceil((b - a) / pageSize);
}

/** a - b as a u64 (wrapped values are only approximate above 2^53). */
function u64Sub(a: number, b: number): number {
  return a >= b ? a - b : U64 - (b - a);
}

/** 1UL << ilog2(n); ilog2(0) is -1 and the shift count is taken mod 64 (x86/arm64), giving 2^63. */
// ref: include/linux/log2.h ilog2
function rounddownPowOf2(n: number): number {
  if (n < 1) return 2 ** 63;
  let e = Math.floor(Math.log2(n));
  if (2 ** e > n) e--;
  if (2 ** (e + 1) <= n) e++;
  return 2 ** e;
}

function hex(n: number): string {
  return n.toString(16);
}

/** %pa: 0x and 16 zero-padded hex digits on 64-bit. */
function fmtPa(n: number): string {
  return `0x${hex(n).padStart(16, "0")}`;
}

function padSig(s: string): string {
  return s.padEnd(PFN_SIG_LEN, "\0").slice(0, PFN_SIG_LEN);
}

// ---------------------------------------------------------------------------------------------------------------
// nd_pfn_init: a new info block

export interface NdPfnInitInput {
  arch: ArchProfile;
  /** nsio->res.start */
  nsStart: number;
  /** resource_size(&nsio->res) */
  nsSize: number;
  /** nd_pfn->mode */
  mode: NdPfnModeName | number;
  /** nd_pfn->align, the requested alignment (sysfs align) */
  align: number;
  /** PFN_SIG for a pfn (fsdax) device, DAX_SIG for a dax device. Default PFN_SIG. */
  sig?: string;
  /** nd_pfn->uuid; default all zero. */
  uuid?: string;
  /** nd_dev_to_uuid(&ndns->dev): the namespace_pmem uuid, all zero for a namespace_io (legacy e820). */
  parentUuid?: string;
  /** nd_region->ro */
  readOnly?: boolean;
  /** For messages: dev_name of the namespace and the region. */
  nsName?: string;
  regionName?: string;
  /** sizeof(struct page) of the running kernel; default the profile's. */
  structPageSize?: number;
  /** CONFIG_NVDIMM_KMSAN (page_struct_override): budget the real struct page size instead of failing. */
  nvdimmKmsan?: boolean;
  archOpts?: NdArchOptions;
}

export interface NdPfnLayout {
  /** Byte offset of the data from the namespace base (sb dataoff). */
  readonly dataoff: number;
  /** Data pfns recorded in the block: PHYS_PFN(size - dataoff - end_trunc). */
  readonly npfns: number;
  /** Always 0: current kernels refuse misaligned starts instead. */
  readonly startPad: number;
  /** Bytes dropped at the end so the end is alignEff-aligned. */
  readonly endTrunc: number;
  /** The requested alignment, as stored in the block. */
  readonly align: number;
  /** max(align, memremap_compat_align()): what offset and end_trunc were computed with. */
  readonly alignEff: number;
  readonly compatAlign: number;
  readonly mode: number;
  /** PHYS_PFN(size - SZ_8K): the pfn count the memmap budget is sized for. */
  readonly npfns0: number;
  /** Bytes of memmap budgeted on the device (map=dev), 0 for map=mem. */
  readonly pageMapSize: number;
  /** The block nd_pfn_init writes at namespace offset 4096, checksum set. */
  readonly sb: NdPfnSb;
}

export type NdPfnInitResult = ({ readonly ok: true; readonly rc: 0 } & NdPfnLayout) | NdPfnFailure;

/**
 * The "no info block, do init" half of nd_pfn_init: the layout of a new block (the caller has already seen
 * nd_pfn_validate return -ENODEV; nvdimmSetupPfn does the whole sequence).
 */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_init
export function ndPfnInit(input: NdPfnInitInput): NdPfnInitResult {
  const { arch, nsStart: start, nsSize: size } = input;
  const pageSize = 2 ** arch.pageShift;
  const mode = pfnModeValue(input.mode);
  const nsName = input.nsName ?? "namespace";
  if (input.readOnly) return fail(-ENXIO, `${input.regionName ?? "region"} is read-only, unable to init metadata`);

  // npfns = PHYS_PFN(size - SZ_8K) (unsigned long: wraps for a namespace below 8 KiB).
  const npfns0 = physPfnOfDiff(size, SZ_8K, pageSize);
  const compatAlign = memremapCompatAlign(arch, input.archOpts);
  const alignEff = Math.max(input.align, compatAlign);

  if (!isAligned(start, compatAlign)) {
    return fail(-EINVAL, `${nsName}: start ${fmtPa(start)} misaligned to 0x${hex(compatAlign)}`);
  }
  // u32 end_trunc = start + size - ALIGN_DOWN(start + size, align)
  const endTrunc = (start + size - alignDown(start + size, alignEff)) % 2 ** 32;

  const structPageSize = input.structPageSize ?? arch.structPageSize;
  const kmsan = input.nvdimmKmsan ?? false;
  let offset: number;
  let pageMapSize = 0;
  if (mode === PFN_MODE_PMEM) {
    pageMapSize = (MAX_STRUCT_PAGE_SIZE * npfns0) % U64;
    if (structPageSize > MAX_STRUCT_PAGE_SIZE) {
      if (kmsan) pageMapSize = (structPageSize * npfns0) % U64;
      else return fail(-EINVAL, "Memory debug options prevent using pmem for the page map");
    }
    offset = alignUp(start + SZ_8K + pageMapSize, alignEff) - start;
  } else if (mode === PFN_MODE_RAM) {
    offset = alignUp(start + SZ_8K, alignEff) - start;
  } else {
    return fail(-ENXIO);
  }

  if (offset >= size) return fail(-ENXIO, `${nsName} unable to satisfy requested alignment`);

  const npfns = Math.floor((size - offset - endTrunc) / pageSize);
  const sb = withNdSbChecksum({
    signature: input.sig ?? PFN_SIG,
    uuid: input.uuid ?? UUID_NULL,
    parentUuid: input.parentUuid ?? UUID_NULL,
    flags: 0,
    versionMajor: ND_PFN_VERSION_MAJOR,
    versionMinor: ND_PFN_VERSION_MINOR,
    dataoff: offset,
    npfns,
    mode,
    startPad: 0,
    endTrunc,
    // cpu_to_le32(nd_pfn->align): the requested value, truncated to 32 bits.
    align: input.align % 2 ** 32,
    pageSize,
    pageStructSize: structPageSize > MAX_STRUCT_PAGE_SIZE && kmsan ? structPageSize : MAX_STRUCT_PAGE_SIZE,
    checksum: 0n,
  });
  return {
    ok: true,
    rc: 0,
    dataoff: offset,
    npfns,
    startPad: 0,
    endTrunc,
    align: input.align,
    alignEff,
    compatAlign,
    mode,
    npfns0,
    pageMapSize,
    sb,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// __nvdimm_setup_pfn: info block → dev_pagemap

export interface NdPfnSetupInput {
  arch: ArchProfile;
  nsStart: number;
  nsSize: number;
  /** nd_pfn->mode (equal to sb.mode once nd_pfn_validate has passed). */
  mode: NdPfnModeName | number;
  sb: NdPfnSb;
}

export interface NdPfnSetup {
  /** pgmap->range: [start + start_pad, end - end_trunc] — includes the info block and the memmap area. */
  readonly range: ByteRange;
  readonly nrRange: 1;
  /** nd_pfn->npfns */
  readonly npfns: number;
  /** pgmap->altmap for map=dev (PGMAP_ALTMAP_VALID), null for map=mem. */
  readonly altmap: VmemAltmap | null;
  readonly flags: number;
  /** sysfs resource of the pfn/dax device: res.start + start_pad + dataoff (the data start). */
  readonly resource: number;
  /** sysfs size of the pfn/dax device: resource_size - start_pad - end_trunc - dataoff. */
  readonly size: number;
  /** dax_pmem's dax_region / dev_dax range: pgmap.range with start += dataoff. */
  readonly daxRange: ByteRange;
  /** pmem->pfn_pad = resource_size - range_len(pgmap.range). */
  readonly pfnPad: number;
  /** The dev_info when sb.npfns exceeds the recomputed count (map=dev), else null. */
  readonly msg: string | null;
}

export type NdPfnSetupResult = ({ readonly ok: true; readonly rc: 0 } & NdPfnSetup) | NdPfnFailure;

// ref: drivers/nvdimm/pfn_devs.c __nvdimm_setup_pfn
export function __nvdimmSetupPfn(input: NdPfnSetupInput): NdPfnSetupResult {
  const { arch, sb } = input;
  const g = geometry(arch);
  const pageSize = g.pageSize;
  const mode = pfnModeValue(input.mode);
  const offset = sb.dataoff;
  const reserve = ndInfoBlockReserve(pageSize);
  const resStart = input.nsStart;
  const resEnd = input.nsStart + input.nsSize - 1;
  const base = resStart + sb.startPad;
  const end = resEnd - sb.endTrunc;
  const range = { start: base, end };
  const rangeLen = end - base + 1;

  let npfns: number;
  let altmap: VmemAltmap | null = null;
  let flags = 0;
  let msg: string | null = null;
  if (mode === PFN_MODE_RAM) {
    if (offset < reserve) return fail(-EINVAL);
    npfns = sb.npfns;
  } else if (mode === PFN_MODE_PMEM) {
    npfns = physPfnOfDiff(rangeLen, offset, pageSize);
    if (sb.npfns > npfns) msg = `number of pfns truncated from ${sb.npfns} to ${npfns}`;
    // init_altmap_base / init_altmap_reserve: pad the reserve back to the sub-section boundary.
    const basePfn = Math.floor(base / pageSize);
    const altmapBase = alignDown(basePfn, g.pagesPerSubsection);
    altmap = newAltmap(
      altmapBase,
      Math.floor(end / pageSize),
      reserve / pageSize + (basePfn - altmapBase),
      physPfnOfDiff(offset, reserve, pageSize),
    );
    flags = PGMAP_ALTMAP_VALID;
  } else {
    return fail(-ENXIO);
  }

  const resource = resStart + sb.startPad + offset;
  return {
    ok: true,
    rc: 0,
    range,
    nrRange: 1,
    npfns,
    altmap,
    flags,
    resource,
    size: u64Sub(input.nsSize, sb.startPad + sb.endTrunc + offset),
    daxRange: { start: range.start + offset, end: range.end },
    pfnPad: input.nsSize - rangeLen,
    msg,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// nd_pfn_validate

/** The namespace a pfn device claims. */
export interface NdPfnNamespace {
  /** nsio->res.start */
  start: number;
  /** resource_size(&nsio->res) (also nvdimm_namespace_capacity) */
  size: number;
  /** nd_dev_to_uuid: the namespace_pmem uuid; omit for a namespace_io (uuid_null). */
  uuid?: string;
  /** dev_name, for messages. */
  name?: string;
}

/** The live nd_pfn settings (sysfs uuid/align/mode). uuid null: probing, adopt the block's settings. */
export interface NdPfnSettings {
  uuid: string | null;
  align: number;
  mode: NdPfnModeName | number;
}

export interface NdPfnValidateInput {
  arch: ArchProfile;
  /** PFN_SIG or DAX_SIG */
  sig: string;
  /** nd_pfn->ndns; null → -ENODEV (the C would dereference it first, see nd_dev_to_uuid). */
  ns: NdPfnNamespace | null;
  pfn: NdPfnSettings;
  /** is_memory(parent region): ND_DEVICE_REGION_PMEM or volatile. Default true. */
  regionIsMemory?: boolean;
  /** nvdimm_read_bytes of the block failed (badblock, out of range). */
  readError?: boolean;
  structPageSize?: number;
  archOpts?: NdArchOptions;
}

export interface NdPfnValidated {
  /** The block with old versions back-filled (start_pad/end_trunc, align, page_size/page_struct_size). */
  readonly sb: NdPfnSb;
  /** nd_pfn settings after validation (adopted from the block when probing). */
  readonly uuid: string;
  readonly align: number;
  readonly mode: number;
  /** True when nd_pfn had no uuid and took uuid, align and mode from the block. */
  readonly adopted: boolean;
}

export type NdPfnValidateResult = ({ readonly ok: true; readonly rc: 0 } & NdPfnValidated) | NdPfnFailure;

/**
 * Check the info block read from namespace offset 4096 (`block`: the raw 4096 bytes, or a parsed block whose
 * checksum is checked against its re-encoding).
 */
// ref: drivers/nvdimm/pfn_devs.c nd_pfn_validate
export function ndPfnValidate(block: NdPfnSb | Uint8Array, input: NdPfnValidateInput): NdPfnValidateResult {
  const { arch, ns } = input;
  const pageSize = 2 ** arch.pageShift;
  if (!ns) return fail(-ENODEV);
  if (input.regionIsMemory === false) return fail(-ENODEV);
  if (input.readError) return fail(-ENXIO);

  let sb: NdPfnSb;
  let image: Uint8Array;
  if (block instanceof Uint8Array) {
    if (block.byteLength !== ND_PFN_SB_SIZE) throw new RangeError(`info block is ${block.byteLength} bytes, not ${ND_PFN_SB_SIZE}`);
    image = block;
    sb = decodeNdPfnSb(block);
  } else {
    sb = { ...block };
    image = encodeNdPfnSb(block);
  }

  if (padSig(sb.signature) !== padSig(input.sig)) return fail(-ENODEV);
  if (sb.checksum !== ndSbChecksum(image)) return fail(-ENODEV);
  if (sb.parentUuid.toLowerCase() !== (ns.uuid ?? UUID_NULL).toLowerCase()) return fail(-ENODEV);

  if (sb.versionMinor < 1) {
    sb.startPad = 0;
    sb.endTrunc = 0;
  }
  if (sb.versionMinor < 2) sb.align = 0;
  if (sb.versionMinor < 4) {
    sb.pageStructSize = 64;
    sb.pageSize = pageSize;
  }

  if (sb.mode !== PFN_MODE_RAM && sb.mode !== PFN_MODE_PMEM) return fail(-ENXIO);

  const offset = sb.dataoff;
  const startPad = sb.startPad;
  const align = sb.align === 0 ? rounddownPowOf2(offset) : sb.align;
  const mode = sb.mode;
  const structPageSize = input.structPageSize ?? arch.structPageSize;

  if (sb.pageSize > pageSize && mode === PFN_MODE_PMEM) {
    return fail(-EOPNOTSUPP, `init failed, page size mismatch ${sb.pageSize}`);
  }
  if (sb.pageStructSize < structPageSize && mode === PFN_MODE_PMEM) {
    return fail(-EOPNOTSUPP, `init failed, struct page size mismatch ${sb.pageStructSize}`);
  }
  // Only a dax block must carry a supported alignment.
  if (!ndSupportedAlignment(arch, align, input.archOpts) && padSig(sb.signature) === padSig(DAX_SIG)) {
    return fail(-EOPNOTSUPP, `init failed, alignment mismatch: ${input.pfn.align}:${align}`);
  }

  let uuid: string;
  let adopted = false;
  if (input.pfn.uuid === null) {
    uuid = sb.uuid;
    adopted = true;
  } else {
    if (input.pfn.uuid.toLowerCase() !== sb.uuid.toLowerCase()) return fail(-ENODEV);
    if (input.pfn.align !== align || pfnModeValue(input.pfn.mode) !== mode) {
      return fail(-EOPNOTSUPP, "init failed, settings mismatch");
    }
    uuid = input.pfn.uuid;
  }

  if (align > ns.size) return fail(-EOPNOTSUPP, `alignment: ${hex(align)} exceeds capacity ${hex(ns.size)}`);

  const nsName = ns.name ?? "namespace";
  const resEnd = ns.start + ns.size - 1;
  if (offset >= ns.size) return fail(-EOPNOTSUPP, `pfn array size exceeds capacity of ${nsName}`);
  if ((align && !isAligned(ns.start + offset + startPad, align)) || !isAligned(offset, pageSize)) {
    return fail(-EOPNOTSUPP, `bad offset: 0x${hex(offset)} dax disabled align: 0x${hex(align)}`);
  }
  const compatAlign = memremapCompatAlign(arch, input.archOpts);
  if (!isAligned(ns.start + sb.startPad, compatAlign)) return fail(-EOPNOTSUPP, "resource start misaligned");
  if (!isAligned(u64Sub(resEnd + 1, sb.endTrunc), compatAlign)) return fail(-EOPNOTSUPP, "resource end misaligned");

  return { ok: true, rc: 0, sb, uuid, align, mode, adopted };
}

// ---------------------------------------------------------------------------------------------------------------
// nvdimm_setup_pfn: the whole sequence a pmem / dax_pmem probe runs

export interface NvdimmSetupPfnInput {
  arch: ArchProfile;
  /** PFN_SIG (nd_pfn, fsdax) or DAX_SIG (nd_dax, devdax). Default PFN_SIG. */
  sig?: string;
  ns: NdPfnNamespace | null;
  pfn: NdPfnSettings;
  /** The 4096 bytes now at namespace offset 4096 (or a parsed block); default all zero (no block). */
  media?: NdPfnSb | Uint8Array;
  readError?: boolean;
  readOnly?: boolean;
  regionIsMemory?: boolean;
  regionName?: string;
  structPageSize?: number;
  nvdimmKmsan?: boolean;
  archOpts?: NdArchOptions;
}

export interface NvdimmSetupPfn {
  /** The block in use. */
  readonly sb: NdPfnSb;
  /** True when nd_pfn_init wrote a new block (then `write` holds its bytes for namespace offset 4096). */
  readonly created: boolean;
  readonly write: Uint8Array | null;
  readonly setup: NdPfnSetup;
  /** Informational messages along the way (the pfn-truncation dev_info). */
  readonly msgs: string[];
}

export type NvdimmSetupPfnResult = ({ readonly ok: true; readonly rc: 0 } & NvdimmSetupPfn) | NdPfnFailure;

/**
 * nvdimm_setup_pfn: -ENODEV without a uuid or namespace; nd_pfn_init (reuse a block that validates, propagate
 * any validation error other than -ENODEV, otherwise write a new block); then __nvdimm_setup_pfn.
 * Badblock clearing in the memmap area (nd_pfn_clear_memmap_errors) is not modelled.
 */
// ref: drivers/nvdimm/pfn_devs.c nvdimm_setup_pfn, nd_pfn_init
export function nvdimmSetupPfn(input: NvdimmSetupPfnInput): NvdimmSetupPfnResult {
  const { arch, ns, pfn } = input;
  if (pfn.uuid === null || !ns) return fail(-ENODEV);
  const sig = input.sig ?? PFN_SIG;
  const validated = ndPfnValidate(input.media ?? new Uint8Array(ND_PFN_SB_SIZE), {
    arch,
    sig,
    ns,
    pfn,
    regionIsMemory: input.regionIsMemory,
    readError: input.readError,
    structPageSize: input.structPageSize,
    archOpts: input.archOpts,
  });
  let sb: NdPfnSb;
  let write: Uint8Array | null = null;
  if (validated.ok) {
    sb = validated.sb;
  } else {
    if (validated.rc !== -ENODEV) return validated;
    const init = ndPfnInit({
      arch,
      nsStart: ns.start,
      nsSize: ns.size,
      mode: pfn.mode,
      align: pfn.align,
      sig,
      uuid: pfn.uuid,
      parentUuid: ns.uuid ?? UUID_NULL,
      readOnly: input.readOnly,
      nsName: ns.name,
      regionName: input.regionName,
      structPageSize: input.structPageSize,
      nvdimmKmsan: input.nvdimmKmsan,
      archOpts: input.archOpts,
    });
    if (!init.ok) return init;
    sb = init.sb;
    write = encodeNdPfnSb(sb);
  }
  const setup = __nvdimmSetupPfn({ arch, nsStart: ns.start, nsSize: ns.size, mode: pfn.mode, sb });
  if (!setup.ok) return setup;
  const { ok: _ok, rc: _rc, ...rest } = setup;
  return { ok: true, rc: 0, sb, created: write !== null, write, setup: rest, msgs: setup.msg ? [setup.msg] : [] };
}
