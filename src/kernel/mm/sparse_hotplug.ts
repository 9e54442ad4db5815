/**
 * Hot-add and hot-remove of sections and sub-sections (mm/sparse.c sparse_add_section, section_activate,
 * section_deactivate, sparse_remove_section).
 *
 * Where the memmap for a hot-added range comes from (RAM vs a device altmap) and what it costs is modelled by
 * the vmemmap code (mm/sparse-vmemmap.c); here the memmap is "populated" (allocated, not yet initialised).
 */
import { EEXIST, EINVAL, type Errno } from "../errno.ts";
import type { Kernel } from "../kernel.ts";
import { PageState, pageValue } from "./memmap.ts";
import { SECTION_HAS_MEM_MAP } from "./sparse.ts";
import { depopulateSectionMemmap, type MhpParams, populateSectionMemmap } from "./sparse_vmemmap.ts";

// ref: mm/sparse.c fill_subsection_map
function fillSubsectionMap(k: Kernel, pfn: number, nrPages: number): Errno {
  const nr = k.sections.pfnToSectionNr(pfn);
  const first = k.sections.subsectionIndex(pfn);
  const last = k.sections.subsectionIndex(pfn + nrPages - 1);
  if (nrPages <= 0) return -EINVAL;
  if (k.sections.subsectionsIntersect(nr, first, last)) return -EEXIST;
  k.sections.setSubsections(nr, first, last, true);
  return 0;
}

// ref: mm/sparse.c section_activate
function sectionActivate(k: Kernel, nid: number, pfn: number, nrPages: number, params: MhpParams): Errno {
  const nr = k.sections.pfnToSectionNr(pfn);
  let usageFresh = false;
  if (!k.sections.hasUsage(nr)) {
    k.sections.setUsage(nr, 1);
    usageFresh = true;
  }
  const rc = fillSubsectionMap(k, pfn, nrPages);
  if (rc) {
    if (usageFresh) k.sections.setUsage(nr, 0);
    return rc;
  }
  // A partial hot-add into an early section reuses the boot memmap: no allocation.
  if (nrPages < k.geo.pagesPerSection && k.sections.early(nr)) return 0;
  const err = populateSectionMemmap(k, pfn, nrPages, nid, params);
  if (err) {
    sectionDeactivate(k, pfn, nrPages, params);
    return err;
  }
  return 0;
}

// ref: mm/sparse.c sparse_add_section
export function sparseAddSection(k: Kernel, nid: number, pfn: number, nrPages: number, params: MhpParams): Errno {
  const nr = k.sections.pfnToSectionNr(pfn);
  const rc = sectionActivate(k, nid, pfn, nrPages, params);
  if (rc) return rc;
  if (!k.sections.present(nr)) k.sections.setNid(nr, nid);
  k.sections.markPresent(nr);
  k.sections.setFlags(nr, k.sections.flags(nr) | SECTION_HAS_MEM_MAP);
  return 0;
}

// ref: mm/sparse.c section_deactivate
export function sectionDeactivate(k: Kernel, pfn: number, nrPages: number, params: MhpParams): void {
  const nr = k.sections.pfnToSectionNr(pfn);
  const first = k.sections.subsectionIndex(pfn);
  const last = k.sections.subsectionIndex(pfn + nrPages - 1);
  // clear_subsection_map: every bit must be set, else WARN "section already deactivated" and do nothing.
  if (!k.sections.subsectionsAllSet(nr, first, last)) {
    k.printk(`WARNING: section already deactivated (${pfn.toString(16)} + ${nrPages.toString(16)})`);
    return;
  }
  k.sections.setSubsections(nr, first, last, false);
  const empty = k.sections.subsectionMapEmpty(nr);
  const early = k.sections.early(nr);
  if (empty) {
    k.sections.setFlags(nr, k.sections.flags(nr) & ~SECTION_HAS_MEM_MAP);
    if (!k.sections.usageFromBoot(nr)) k.sections.setUsage(nr, 0);
  }
  if (!early) {
    noteMemmapWrite(k, pfn, nrPages);
    depopulateSectionMemmap(k, pfn, nrPages, params.altmap);
  }
  else if (empty) {
    const start = k.sections.sectionNrToPfn(nr);
    k.memmap.setRange(start, start + k.geo.pagesPerSection, pageValue({ state: PageState.TornDown }));
    noteMemmapWrite(k, start, k.geo.pagesPerSection);
  }
  if (empty) k.sections.setFlags(nr, 0);
}

/** Tearing struct pages down writes `memmap:SECTION`, which every struct-page access reads (src/sched). */
export function noteMemmapWrite(k: Kernel, startPfn: number, nrPages: number): void {
  if (!k.sanitizer.footprint || nrPages <= 0) return;
  const first = k.sections.pfnToSectionNr(startPfn);
  const last = k.sections.pfnToSectionNr(startPfn + nrPages - 1);
  for (let nr = first; nr <= last; nr++) k.sanitizer.write(`memmap:${nr}`);
}
