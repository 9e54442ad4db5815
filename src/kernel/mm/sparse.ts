/**
 * SPARSEMEM sections and 2 MiB sub-sections (include/linux/mmzone.h, mm/sparse.c).
 *
 * The kernel's mem_section[] is a two-level table whose roots are allocated on demand (SPARSEMEM_EXTREME);
 * here it is the same idea: section state lives in typed arrays, one chunk of sections at a time, allocated
 * when a section in the chunk is first written. NR_MEM_SECTIONS can be 2^25 (x86_64 LA57): nothing is
 * allocated per possible section up front.
 */
import type { Geometry } from "../../arch/profiles.ts";

export const SECTION_MARKED_PRESENT = 1 << 0;
export const SECTION_HAS_MEM_MAP = 1 << 1;
export const SECTION_IS_ONLINE = 1 << 2;
export const SECTION_IS_EARLY = 1 << 3;
export const SECTION_TAINT_ZONE_DEVICE = 1 << 4;

const CHUNK_SHIFT = 12;
const CHUNK = 1 << CHUNK_SHIFT;

interface Chunk {
  flags: Uint8Array;
  nid: Int16Array;
  /** 1 when mem_section_usage is allocated; 2 when it was allocated at boot (memblock, PageReserved). */
  usage: Uint8Array;
  /** subsection_map, `words` 32-bit words per section. */
  subsectionMap: Uint32Array;
}

export class SectionTable {
  readonly geo: Geometry;
  /** 32-bit words of subsection_map per section (SUBSECTIONS_PER_SECTION / 32, at least 1). */
  readonly words: number;
  private readonly chunks = new Map<number, Chunk>();
  /** __highest_present_section_nr */
  highestPresentSectionNr = -1;

  constructor(geo: Geometry) {
    this.geo = geo;
    this.words = Math.max(1, geo.subsectionsPerSection / 32);
  }

  private chunk(nr: number, create: boolean): Chunk | undefined {
    const key = Math.floor(nr / CHUNK);
    let c = this.chunks.get(key);
    if (!c && create) {
      c = {
        flags: new Uint8Array(CHUNK),
        nid: new Int16Array(CHUNK),
        usage: new Uint8Array(CHUNK),
        subsectionMap: new Uint32Array(CHUNK * this.words),
      };
      this.chunks.set(key, c);
    }
    return c;
  }

  pfnToSectionNr(pfn: number): number {
    return Math.floor(pfn / this.geo.pagesPerSection);
  }

  sectionNrToPfn(nr: number): number {
    return nr * this.geo.pagesPerSection;
  }

  flags(nr: number): number {
    return this.chunk(nr, false)?.flags[nr % CHUNK] ?? 0;
  }

  setFlags(nr: number, flags: number): void {
    this.chunk(nr, true)!.flags[nr % CHUNK] = flags;
  }

  nid(nr: number): number {
    return this.chunk(nr, false)?.nid[nr % CHUNK] ?? 0;
  }

  setNid(nr: number, nid: number): void {
    this.chunk(nr, true)!.nid[nr % CHUNK] = nid;
  }

  hasUsage(nr: number): boolean {
    return (this.chunk(nr, false)?.usage[nr % CHUNK] ?? 0) !== 0;
  }

  usageFromBoot(nr: number): boolean {
    return (this.chunk(nr, false)?.usage[nr % CHUNK] ?? 0) === 2;
  }

  setUsage(nr: number, state: 0 | 1 | 2): void {
    const c = this.chunk(nr, true)!;
    c.usage[nr % CHUNK] = state;
    if (state === 0) c.subsectionMap.fill(0, (nr % CHUNK) * this.words, (nr % CHUNK + 1) * this.words);
  }

  present(nr: number): boolean {
    return (this.flags(nr) & SECTION_MARKED_PRESENT) !== 0;
  }
  valid(nr: number): boolean {
    return (this.flags(nr) & SECTION_HAS_MEM_MAP) !== 0;
  }
  online(nr: number): boolean {
    return (this.flags(nr) & SECTION_IS_ONLINE) !== 0;
  }
  early(nr: number): boolean {
    return (this.flags(nr) & SECTION_IS_EARLY) !== 0;
  }
  onlineDevice(nr: number): boolean {
    const want = SECTION_IS_ONLINE | SECTION_TAINT_ZONE_DEVICE;
    return (this.flags(nr) & want) === want;
  }

  // ref: mm/sparse.c __section_mark_present
  markPresent(nr: number): void {
    if (nr > this.highestPresentSectionNr) this.highestPresentSectionNr = nr;
    this.setFlags(nr, this.flags(nr) | SECTION_MARKED_PRESENT);
  }

  // ref: mm/sparse.c section_taint_zone_device
  taintZoneDevice(nr: number): void {
    this.setFlags(nr, this.flags(nr) | SECTION_TAINT_ZONE_DEVICE);
  }

  /** subsection_map_index(pfn) */
  subsectionIndex(pfn: number): number {
    return Math.floor((pfn % this.geo.pagesPerSection) / this.geo.pagesPerSubsection);
  }

  testSubsection(nr: number, idx: number): boolean {
    const c = this.chunk(nr, false);
    if (!c) return false;
    const w = c.subsectionMap[(nr % CHUNK) * this.words + (idx >>> 5)] ?? 0;
    return ((w >>> (idx & 31)) & 1) === 1;
  }

  /** The subsection bits of one section as a bigint-free list of booleans (for reports). */
  subsectionBits(nr: number): boolean[] {
    const out: boolean[] = [];
    for (let i = 0; i < this.geo.subsectionsPerSection; i++) out.push(this.testSubsection(nr, i));
    return out;
  }

  /** The bits of sub-sections [first, last] that fall in 32-bit word w (computed, not allocated). */
  private maskWord(w: number, first: number, last: number): number {
    const lo = Math.max(first, w * 32);
    const hi = Math.min(last, w * 32 + 31);
    if (lo > hi) return 0;
    const width = hi - lo + 1;
    const bits = width === 32 ? 0xffffffff : (2 ** width - 1) >>> 0;
    return (bits << (lo - w * 32)) >>> 0;
  }

  /** Does the section's subsection_map intersect [first, last]? */
  subsectionsIntersect(nr: number, first: number, last: number): boolean {
    const c = this.chunk(nr, false);
    if (!c) return false;
    const base = (nr % CHUNK) * this.words;
    for (let w = first >>> 5; w <= last >>> 5; w++) if (((c.subsectionMap[base + w]! & this.maskWord(w, first, last)) >>> 0) !== 0) return true;
    return false;
  }

  /** Are all of [first, last] set? */
  subsectionsAllSet(nr: number, first: number, last: number): boolean {
    const c = this.chunk(nr, false);
    if (!c) return false;
    const base = (nr % CHUNK) * this.words;
    for (let w = first >>> 5; w <= last >>> 5; w++) {
      const m = this.maskWord(w, first, last);
      if (((c.subsectionMap[base + w]! & m) >>> 0) !== m) return false;
    }
    return true;
  }

  setSubsections(nr: number, first: number, last: number, on: boolean): void {
    const c = this.chunk(nr, true)!;
    const base = (nr % CHUNK) * this.words;
    for (let w = first >>> 5; w <= last >>> 5; w++) {
      const m = this.maskWord(w, first, last);
      const cur = c.subsectionMap[base + w]!;
      c.subsectionMap[base + w] = on ? (cur | m) >>> 0 : (cur & ~m) >>> 0;
    }
  }

  subsectionMapEmpty(nr: number): boolean {
    const c = this.chunk(nr, false);
    if (!c) return true;
    const base = (nr % CHUNK) * this.words;
    for (let w = 0; w < this.words; w++) if (c.subsectionMap[base + w] !== 0) return false;
    return true;
  }

  /** Section numbers with any flag set, ascending. */
  *presentSections(): Generator<number> {
    const keys = [...this.chunks.keys()].sort((a, b) => a - b);
    for (const key of keys) {
      const c = this.chunks.get(key)!;
      for (let i = 0; i < CHUNK; i++) if (c.flags[i] !== 0) yield key * CHUNK + i;
    }
  }

  /** Bytes this table holds (for benchmarks). */
  bytes(): number {
    return this.chunks.size * CHUNK * (1 + 2 + 1 + 4 * this.words);
  }

  // ref: include/linux/mmzone.h pfn_section_valid
  pfnSectionValid(nr: number, pfn: number): boolean {
    return this.hasUsage(nr) && this.testSubsection(nr, this.subsectionIndex(pfn));
  }

  // ref: include/linux/mmzone.h pfn_valid
  pfnValid(pfn: number): boolean {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.geo.maxPfn) return false;
    const nr = this.pfnToSectionNr(pfn);
    if (nr >= this.geo.nrMemSections) return false;
    if (!this.valid(nr)) return false;
    // Early sections are valid for their entire span; hot-added ones only in populated sub-sections.
    return this.early(nr) || this.pfnSectionValid(nr, pfn);
  }

  // ref: mm/sparse.c subsection_map_init (boot: mark the sub-sections covering early memory)
  subsectionMapInit(pfn: number, nrPages: number): void {
    const end = pfn + nrPages;
    for (let cur = pfn; cur < end; ) {
      const nr = this.pfnToSectionNr(cur);
      const sectionEnd = this.sectionNrToPfn(nr + 1);
      const last = Math.min(end, sectionEnd) - 1;
      this.setSubsections(nr, this.subsectionIndex(cur), this.subsectionIndex(last), true);
      cur = last + 1;
    }
  }
}
