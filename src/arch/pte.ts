/**
 * Page-table entry encodings per architecture: where the present, write, accessed, dirty, huge, special and
 * devmap bits live, how a pfn is packed, and what the kernel's pte_mk*() helpers set.
 *
 * Entries are 64-bit; the page tables store them as two 32-bit words (lo, hi) so the hot GUP paths test bits
 * without BigInt. Construction (a fault inserting an entry) goes through bigint and is split once.
 *
 * ref: arch/x86/include/asm/pgtable_types.h, pgtable.h; arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h,
 *      pgtable.h; arch/powerpc/include/asm/book3s/64/pgtable.h, radix.h
 */
import type { ArchProfile } from "./profiles.ts";

/** Software-visible meanings an entry bit can have; each arch maps them to its own bit (or none). */
export type PteFlag =
  | "present"
  | "write"
  | "user"
  | "accessed"
  | "dirty"
  | "softDirty"
  | "huge"
  | "special"
  | "devmap"
  | "noExec"
  | "readOnly"
  | "shared"
  | "notGlobal"
  | "privNoExec"
  | "read"
  | "leaf";

export interface PteFormat {
  readonly arch: ArchProfile["arch"];
  readonly pageShift: number;
  /** Bit number of each flag this arch has. */
  readonly bits: Partial<Record<PteFlag, number>>;
  /** Bits a leaf entry of this level has in common (arm64 descriptor type, ppc64 _PAGE_PTE). */
  leafTypeBits(level: "pte" | "pmd" | "pud"): bigint;
  /** A table (non-leaf) entry pointing at the next-level table at physical address `phys`. */
  tableEntry(phys: number, childIndexBits: number): bigint;
  /** pfn_pte/pfn_pmd: the pfn packed into the address field, plus `prot`. */
  pfnEntry(pfn: number, prot: bigint): bigint;
  /** The pfn an entry maps (pte_pfn). */
  entryPfn(lo: number, hi: number): number;
  /** Physical address of the next-level table a table entry points at. */
  tableAddr(lo: number, hi: number): number;
  /** pte_mkwrite (arm64 also clears PTE_RDONLY). */
  mkwrite(e: bigint): bigint;
  /** pte_mkdirty (x86 also sets the soft-dirty bit when CONFIG_MEM_SOFT_DIRTY; arm64 clears RDONLY if writable). */
  mkdirty(e: bigint, softDirty: boolean): bigint;
  /** pte_mkyoung */
  mkyoung(e: bigint): bigint;
  /** pte_mkdevmap: devmap and special at the PTE level (special only in an encoding without devmap). */
  pteMkdevmap(e: bigint): bigint;
  /** pmd_mkdevmap / pud_mkdevmap: devmap only (no special bit above the PTE level; nothing without devmap). */
  hugeMkdevmap(e: bigint): bigint;
  /** pmd_mkhuge / pud_mkhuge */
  mkhuge(e: bigint): bigint;
  /** vm_get_page_prot for a user mapping. */
  protection(p: { read: boolean; write: boolean; exec: boolean; shared: boolean }): bigint;
}

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** Test one bit of an entry stored as two 32-bit words. */
export function testBit(lo: number, hi: number, n: number | undefined): boolean {
  if (n === undefined) return false;
  return n < 32 ? ((lo >>> n) & 1) === 1 : ((hi >>> (n - 32)) & 1) === 1;
}

export function splitEntry(e: bigint): { lo: number; hi: number } {
  return { lo: Number(e & 0xffffffffn), hi: Number((e >> 32n) & 0xffffffffn) };
}

export function joinEntry(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Bits [from, to) of (lo, hi) as a number (to - from <= 52), exact whatever the high bits hold. */
function field(lo: number, hi: number, from: number, to: number): number {
  let v = 0;
  if (from < 32) v += ((lo >>> from) >>> 0) % 2 ** (Math.min(to, 32) - from);
  if (to > 32) {
    const hFrom = Math.max(from, 32);
    v += (((hi >>> (hFrom - 32)) >>> 0) % 2 ** (to - hFrom)) * 2 ** (hFrom - from);
  }
  return v;
}

// ref: arch/x86/include/asm/pgtable_types.h (_PAGE_BIT_*), pgtable.h pte_mk*
function x86Format(p: ArchProfile, devmap: boolean): PteFormat {
  const b = { present: 0, write: 1, user: 2, accessed: 5, dirty: 6, huge: 7, special: 9, softDirty: 11, devmap: 58, noExec: 63 } as const;
  const PFN_TOP = 52; // __PHYSICAL_MASK_SHIFT
  // The bits as bigint constants, made once per format (the pte_mk* helpers run on every fault).
  const PRESENT = bit(b.present);
  const WRITE = bit(b.write);
  const USER = bit(b.user);
  const ACCESSED = bit(b.accessed);
  const DIRTY = bit(b.dirty);
  const HUGE = bit(b.huge);
  const SPECIAL = bit(b.special);
  const SOFT_DIRTY = bit(b.softDirty);
  const DEVMAP = bit(b.devmap);
  const NX = bit(b.noExec);
  const shift = BigInt(p.pageShift);
  return {
    arch: "x86_64",
    pageShift: p.pageShift,
    bits: devmap ? b : withoutDevmap(b),
    leafTypeBits: () => 0n,
    // _PAGE_TABLE = __PP|__RW|_USR|___A|___D
    tableEntry: (phys) => BigInt(phys) | PRESENT | WRITE | USER | ACCESSED | DIRTY,
    pfnEntry: (pfn, prot) => (BigInt(pfn) << shift) | prot,
    entryPfn: (lo, hi) => field(lo, hi, p.pageShift, PFN_TOP),
    tableAddr: (lo, hi) => field(lo, hi, p.pageShift, PFN_TOP) * 2 ** p.pageShift,
    mkwrite: (e) => e | WRITE,
    mkdirty: (e, sd) => (sd ? e | DIRTY | SOFT_DIRTY : e | DIRTY),
    mkyoung: (e) => e | ACCESSED,
    pteMkdevmap: devmap ? (e) => e | SPECIAL | DEVMAP : (e) => e | SPECIAL,
    hugeMkdevmap: devmap ? (e) => e | DEVMAP : (e) => e,
    mkhuge: (e) => e | HUGE,
    // protection_map: PAGE_SHARED = __PP|__RW|_USR|___A|__NX; PAGE_READONLY / PAGE_COPY = __PP|_USR|___A|__NX
    protection: ({ read, write, exec, shared }) => {
      if (!read && !write && !exec) return ACCESSED; // PAGE_NONE = _PAGE_PROTNONE|___A (protnone not modelled)
      let prot = PRESENT | USER | ACCESSED;
      if (write && shared) prot |= WRITE;
      if (!exec) prot |= NX;
      return prot;
    },
  };
}

// ref: arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h (_PAGE_SHARED, _PAGE_READONLY), pgtable.h
function arm64Format(p: ArchProfile, devmap: boolean): PteFormat {
  const b = {
    present: 0, // PTE_VALID
    leaf: 1, // PTE_TABLE_BIT: set in a page / table descriptor, clear in a block (section)
    user: 6, // AP[1]
    readOnly: 7, // AP[2]
    shared: 8, // SH[1:0] = 3 (inner shareable): bits 8 and 9
    accessed: 10, // AF
    notGlobal: 11, // nG
    write: 51, // PTE_WRITE = DBM
    privNoExec: 53,
    noExec: 54, // UXN
    dirty: 55,
    special: 56,
    devmap: 57,
  } as const;
  const WRITE = bit(b.write);
  const RDONLY = bit(b.readOnly);
  const DIRTY = bit(b.dirty);
  const SPECIAL = bit(b.special);
  const DEVMAP = bit(b.devmap);
  const ACCESSED = bit(b.accessed);
  const TABLE_BIT = bit(b.leaf);
  const shift = BigInt(p.pageShift);
  // 52-bit PA with 64 KiB pages keeps PA[51:48] in bits [15:12].
  const pa52 = p.pageShift === 16 && p.maxPhysmemBits === 52;
  const physToVal = (phys: bigint): bigint => {
    if (!pa52) return phys & ((1n << 48n) - 1n) & ~((1n << BigInt(p.pageShift)) - 1n);
    return (phys | (phys >> 36n)) & ((((1n << 48n) - 1n) & ~0xffffn) | 0xf000n);
  };
  const valToPhys = (lo: number, hi: number): number => {
    const low = field(lo, hi, p.pageShift, 48) * 2 ** p.pageShift;
    return pa52 ? low + field(lo, hi, 12, 16) * 2 ** 48 : low;
  };
  return {
    arch: "arm64",
    pageShift: p.pageShift,
    bits: devmap ? b : withoutDevmap(b),
    // PTE_TYPE_PAGE = 3 at the last level; PMD/PUD blocks are PMD_TYPE_SECT = 1 (pmd_mkhuge clears the table bit).
    leafTypeBits: (level) => (level === "pte" ? 3n : 1n),
    // PMD_TYPE_TABLE | PMD_TABLE_UXN (user tables, pmd_populate)
    tableEntry: (phys) => physToVal(BigInt(phys)) | 3n | bit(60),
    pfnEntry: (pfn, prot) => physToVal(BigInt(pfn) << shift) | prot,
    entryPfn: (lo, hi) => valToPhys(lo, hi) / 2 ** p.pageShift,
    tableAddr: (lo, hi) => valToPhys(lo, hi),
    mkwrite: (e) => (e | WRITE) & ~RDONLY,
    mkdirty: (e) => {
      const d = e | DIRTY;
      return (d & WRITE) !== 0n ? d & ~RDONLY : d;
    },
    mkyoung: (e) => e | ACCESSED,
    // Without pte_devmap (before 5.3, seed 000) there is no PTE_DEVMAP: insert_pfn's entry is only special.
    pteMkdevmap: devmap ? (e) => e | DEVMAP | SPECIAL : (e) => e | SPECIAL,
    hugeMkdevmap: devmap ? (e) => e | DEVMAP : (e) => e,
    mkhuge: (e) => e & ~TABLE_BIT,
    // _PAGE_DEFAULT = PTE_TYPE_PAGE | PTE_AF | PTE_SHARED | ATTRINDX(MT_NORMAL = 0); shared+writable pages start
    // clean: PTE_RDONLY | PTE_WRITE.
    protection: ({ read, write, exec, shared }) => {
      const base = 3n | ACCESSED | (3n << 8n) | bit(b.user) | RDONLY | bit(b.notGlobal) | bit(b.privNoExec);
      if (!read && !write && !exec) return 0n;
      let prot = base;
      if (write && shared) prot |= WRITE;
      if (!exec) prot |= bit(b.noExec);
      return prot;
    },
  };
}

// ref: arch/powerpc/include/asm/book3s/64/pgtable.h, radix.h (RADIX_*_VAL_BITS)
function ppc64Format(p: ArchProfile, devmap: boolean): PteFormat {
  const b = { noExec: -1, write: 1, read: 2, accessed: 8, dirty: 7, special: 10, devmap: 11, leaf: 62, present: 63 } as const;
  const bits: Partial<Record<PteFlag, number>> = { write: 1, read: 2, dirty: 7, accessed: 8, special: 10, devmap: 11, leaf: 62, present: 63 };
  const PA_MAX = 53; // _PAGE_PA_MAX: PTE_RPN_MASK covers bits [PAGE_SHIFT, 53)
  return {
    arch: "ppc64",
    pageShift: p.pageShift,
    bits: devmap ? bits : withoutDevmap(bits),
    leafTypeBits: () => bit(b.leaf),
    // RADIX_P*D_VAL_BITS: valid bit 63 plus the next level's index size in the low bits.
    tableEntry: (phys, childIndexBits) => BigInt(phys) | bit(b.present) | BigInt(childIndexBits),
    pfnEntry: (pfn, prot) => ((BigInt(pfn) << BigInt(p.pageShift)) & ((1n << BigInt(PA_MAX)) - 1n)) | prot,
    entryPfn: (lo, hi) => field(lo, hi, p.pageShift, PA_MAX),
    tableAddr: (lo, hi) => field(lo, hi, 8, 56) * 256,
    mkwrite: (e) => e | bit(b.write),
    mkdirty: (e) => e | bit(b.dirty),
    mkyoung: (e) => e | bit(b.accessed),
    pteMkdevmap: devmap ? (e) => e | bit(b.special) | bit(b.devmap) : (e) => e | bit(b.special),
    // pmd_mkdevmap (radix): _PAGE_PTE | _PAGE_DEVMAP
    hugeMkdevmap: devmap ? (e) => e | bit(b.leaf) | bit(b.devmap) : (e) => e | bit(b.leaf),
    mkhuge: (e) => e | bit(b.leaf),
    // _PAGE_BASE = _PAGE_PRESENT | _PAGE_ACCESSED; PAGE_SHARED adds _PAGE_RW; _PAGE_EXEC (bit 0) for exec.
    protection: ({ read, write, exec, shared }) => {
      if (!read && !write && !exec) return bit(b.leaf) | bit(b.accessed);
      let prot = bit(b.present) | bit(b.accessed) | bit(b.leaf) | bit(b.read);
      if (write && shared) prot |= bit(b.write);
      if (exec) prot |= 1n;
      return prot;
    },
  };
}

/** The flags of an encoding without its devmap bit. */
function withoutDevmap<T extends Partial<Record<PteFlag, number>>>(bits: T): Partial<Record<PteFlag, number>> {
  const out: Partial<Record<PteFlag, number>> = { ...bits };
  delete out.devmap;
  return out;
}

/**
 * The arch's entry encoding. `devmap: false` is the arch without pte_devmap (no ARCH_HAS_PTE_DEVMAP, e.g. arm64
 * before 5.3): no devmap bit; pfn_t_devmap() is false there, so insert_pfn's fallback (a special PTE) and a plain
 * huge entry are what pteMkdevmap/hugeMkdevmap give (the C declares pte_mkdevmap but never defines it).
 */
export function pteFormat(p: ArchProfile, opts: { devmap?: boolean } = {}): PteFormat {
  const devmap = opts.devmap ?? true;
  switch (p.arch) {
    case "x86_64":
      return x86Format(p, devmap);
    case "arm64":
      return arm64Format(p, devmap);
    case "ppc64":
      return ppc64Format(p, devmap);
  }
}

/** Names of the flags set in an entry, for page-table dumps. */
export function decodeFlags(f: PteFormat, lo: number, hi: number): PteFlag[] {
  const out: PteFlag[] = [];
  for (const [name, n] of Object.entries(f.bits) as Array<[PteFlag, number]>) {
    if (n >= 0 && testBit(lo, hi, n)) out.push(name);
  }
  return out;
}
