/**
 * Sparsemem sections: flags, node, sub-section map. Consecutive sections in the same state are folded into
 * one row so a 64 TiB machine prints a few lines, not half a million.
 */
import type { Kernel } from "../kernel/kernel.ts";
import {
  SECTION_HAS_MEM_MAP,
  SECTION_IS_EARLY,
  SECTION_IS_ONLINE,
  SECTION_MARKED_PRESENT,
  SECTION_TAINT_ZONE_DEVICE,
} from "../kernel/mm/sparse.ts";

export interface SectionRun {
  first: number;
  last: number;
  startPfn: number;
  /** Exclusive. */
  endPfn: number;
  flags: string[];
  node: number;
  /** The sub-section map of each section in the run, as hex (bit 0 = first 2 MiB). */
  subsectionMap: string;
}

const FLAG_NAMES: Array<[number, string]> = [
  [SECTION_MARKED_PRESENT, "present"],
  [SECTION_HAS_MEM_MAP, "mem_map"],
  [SECTION_IS_ONLINE, "online"],
  [SECTION_IS_EARLY, "early"],
  [SECTION_TAINT_ZONE_DEVICE, "zone_device"],
];

function subsectionHex(k: Kernel, nr: number): string {
  const bits = k.sections.subsectionBits(nr);
  let hex = "";
  for (let i = bits.length - 4; i >= 0; i -= 4) {
    const nib = (bits[i] ? 1 : 0) | (bits[i + 1] ? 2 : 0) | (bits[i + 2] ? 4 : 0) | (bits[i + 3] ? 8 : 0);
    hex += nib.toString(16);
  }
  return hex.replace(/^0+(?=.)/, "");
}

export function sectionRuns(k: Kernel): SectionRun[] {
  const runs: SectionRun[] = [];
  for (const nr of k.sections.presentSections()) {
    const f = k.sections.flags(nr);
    const flags = FLAG_NAMES.filter(([bit]) => (f & bit) !== 0).map(([, n]) => n);
    const node = k.sections.nid(nr);
    const map = subsectionHex(k, nr);
    const prev = runs[runs.length - 1];
    if (prev && prev.last === nr - 1 && prev.node === node && prev.subsectionMap === map && prev.flags.join() === flags.join()) {
      prev.last = nr;
      prev.endPfn = k.sections.sectionNrToPfn(nr + 1);
      continue;
    }
    runs.push({
      first: nr,
      last: nr,
      startPfn: k.sections.sectionNrToPfn(nr),
      endPfn: k.sections.sectionNrToPfn(nr + 1),
      flags,
      node,
      subsectionMap: map,
    });
  }
  return runs;
}

export function renderSections(k: Kernel): string {
  const g = k.geo;
  let out = `sections: ${g.sectionBytes / 2 ** 20} MiB (${g.pagesPerSection} pages), ${g.subsectionsPerSection} sub-sections of 2 MiB each\n`;
  for (const r of sectionRuns(k)) {
    const range = r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
    const pfns = `pfn 0x${r.startPfn.toString(16)}-0x${(r.endPfn - 1).toString(16)}`;
    out += `section ${range.padEnd(13)} ${pfns.padEnd(30)} node ${r.node} ${r.flags.join(",").padEnd(34)} subsections 0x${r.subsectionMap}\n`;
  }
  return out;
}
