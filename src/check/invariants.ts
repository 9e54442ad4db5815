/**
 * Invariants over the whole kernel state, checked after every transition the explorer takes (and after every
 * scenario step). Each returns violations rather than throwing: the report says which one broke and where.
 *
 * - pgmap-ref-mismatch: a dev_pagemap's percpu_ref count is negative, or differs from the references its
 *   holders account for (a get without a put, or a put without a get).
 * - dangling-pte: a user page-table entry that pfn_to_page() would follow (devmap, or not special) points
 *   at a struct page whose memmap was torn down — the next GUP or zap through it is a use-after-free.
 * - device-pfn-in-buddy: a live dev_pagemap's pfn is on a buddy free list.
 * - zone-span: a zone presents more pages than it spans; a live pgmap's pfns lie outside every ZONE_DEVICE span.
 * - subsection-map: a live pgmap's sub-sections are not all marked in their section's sub-section map, so
 *   pfn_valid() says no struct page where memremap_pages installed one.
 * - max-pfn (x86): max_pfn lies above the highest System RAM, i.e. device memory raised it — what seed 003
 *   objected to: code that takes pfn < max_pfn to mean "RAM with a struct page" would then misjudge.
 */
import type { Kernel } from "../kernel/kernel.ts";
import type { DevPagemap } from "../kernel/mm/dev_pagemap.ts";
import { PageState } from "../kernel/mm/memmap.ts";
import { entryDevmap, entrySpecial } from "../kernel/mm/memory.ts";
import type { Task } from "../kernel/mm/mm_types.ts";
import { zoneSpansPfn } from "../kernel/mm/mmzone.ts";
import type { Resource } from "../kernel/resource.ts";
import type { Violation } from "../kernel/sanitizer.ts";

const hex = (n: number): string => `0x${n.toString(16)}`;

function pgmapRefs(k: Kernel, out: Violation[]): void {
  for (const p of k.pgmaps.all()) {
    if (p.state === "new" || p.state === "failed") continue;
    let held = 0;
    for (const n of p.ref.holders.values()) held += n;
    if (p.ref.count < 0 || held !== p.ref.count) {
      out.push({
        kind: "pgmap-ref-mismatch",
        at: "invariant: dev_pagemap references",
        pgmap: p.id,
        detail: `pgmap ${p.id} (${p.device}): percpu_ref count ${p.ref.count}, holders account for ${held} (${p.ref.describeHolders() || "none"})`,
      });
    }
  }
}

function livePgmaps(k: Kernel): DevPagemap[] {
  return k.pgmaps.all().filter((p) => p.state === "live");
}

/**
 * The last dangling-pte walk per kernel, by what it depends on: the memmap's page states and each task's page
 * tables, named by their stamps. Stamps never repeat for different states (lib/rewind.ts), so the cache holds
 * across the explorer's rewinds and is deliberately not part of the kernel's snapshot.
 */
const lastWalk = new WeakMap<Kernel, { key: string; found: Violation[] }>();

function danglingPtes(k: Kernel, out: Violation[]): void {
  const tasks = k.userland?.tasks;
  if (!tasks) return;
  let key = `${k.memmap.stateStamp}`;
  for (const task of tasks.values()) key += ` ${task.pid}:${task.mm.pgd.stamp}`;
  const last = lastWalk.get(k);
  if (last?.key === key) {
    out.push(...last.found);
    return;
  }
  const found: Violation[] = [];
  walkTasks(k, tasks.values(), found);
  lastWalk.set(k, { key, found });
  out.push(...found);
}

function walkTasks(k: Kernel, tasks: Iterable<Task>, out: Violation[]): void {
  for (const task of tasks) {
    const pt = task.mm.pgd;
    pt.forEachLeaf((t, i, _level, addr) => {
      // The memmap first: almost every entry points at a live struct page, and that is the cheap test.
      const pfn = pt.fmt.entryPfn(t.lo[i]!, t.hi[i]!);
      if (k.memmap.state(pfn) !== PageState.TornDown) return;
      if (!entryDevmap(k, pt, t, i) && entrySpecial(pt, t, i)) return;
      out.push({
        kind: "dangling-pte",
        at: "invariant: user page tables",
        pfn,
        detail: `pid ${task.pid} (${task.comm}) maps ${hex(addr)} to pfn ${hex(pfn)}, whose memmap was torn down`,
      });
    });
  }
}

function subsectionMaps(k: Kernel, out: Violation[]): void {
  const ps = k.geo.pageSize;
  const step = k.geo.pagesPerSubsection;
  for (const p of livePgmaps(k)) {
    for (const r of p.ranges.slice(0, p.nrRange)) {
      const first = Math.floor(r.start / ps);
      const last = Math.floor(r.end / ps);
      const pps = k.geo.pagesPerSection;
      for (let pfn = first - (first % step); pfn <= last; pfn += step) {
        const nr = k.sections.pfnToSectionNr(pfn);
        const valid = k.sections.valid(nr);
        // A whole section's worth of sub-sections at once, when they are all marked (nearly always).
        const sectionLast = Math.min(last, (nr + 1) * pps - 1);
        if (valid && k.sections.subsectionsAllSet(nr, k.sections.subsectionIndex(pfn), k.sections.subsectionIndex(sectionLast))) {
          pfn = sectionLast - (sectionLast % step);
          continue;
        }
        if (valid && k.sections.testSubsection(nr, k.sections.subsectionIndex(pfn))) continue;
        out.push({
          kind: "subsection-map",
          at: "invariant: sub-section maps",
          pfn,
          pgmap: p.id,
          detail: `pgmap ${p.id} (${p.device}) is live over pfn ${hex(pfn)}, but its sub-section is not marked present in section ${nr}`,
        });
        break;
      }
    }
  }
}

function zoneSpans(k: Kernel, out: Violation[]): void {
  for (const node of k.nodes.values()) {
    for (const z of node.zones) {
      if (z.presentPages > z.spannedPages) {
        out.push({ kind: "zone-span", at: "invariant: zone spans", detail: `node ${z.nid} zone ${z.name}: present ${z.presentPages} > spanned ${z.spannedPages}` });
      }
    }
  }
  const ps = k.geo.pageSize;
  for (const p of livePgmaps(k)) {
    for (const r of p.ranges.slice(0, p.nrRange)) {
      for (const pfn of [Math.floor(r.start / ps), Math.floor(r.end / ps)]) {
        const spanned = [...k.nodes.values()].some((n) => n.zones.some((z) => z.name === "Device" && zoneSpansPfn(z, pfn)));
        if (!spanned) {
          out.push({ kind: "zone-span", at: "invariant: zone spans", pfn, pgmap: p.id, detail: `pgmap ${p.id} (${p.device}) pfn ${hex(pfn)} lies outside every ZONE_DEVICE span` });
        }
      }
    }
  }
}

function devicePfnsInBuddy(k: Kernel, out: Violation[]): void {
  const ps = k.geo.pageSize;
  for (const p of livePgmaps(k)) {
    for (const r of p.ranges.slice(0, p.nrRange)) {
      // Both ends of each range: the buddy keeps runs, so a device range freed into it shows at its edges.
      for (const pfn of [Math.floor(r.start / ps), Math.floor(r.end / ps)]) {
        for (const node of k.nodes.values()) {
          for (const z of node.zones) {
            if (!z.buddy.contains(pfn)) continue;
            out.push({ kind: "device-pfn-in-buddy", at: "invariant: buddy free lists", pfn, pgmap: p.id, detail: `pfn ${hex(pfn)} of pgmap ${p.id} (${p.device}) is free in node ${z.nid} zone ${z.name}` });
          }
        }
      }
    }
  }
}

function highestRamEnd(r: Resource | null): number {
  let end = -1;
  for (let c = r; c; c = c.sibling) {
    if (c.name === "System RAM") end = Math.max(end, c.end);
    end = Math.max(end, highestRamEnd(c.child));
  }
  return end;
}

function maxPfnIsRam(k: Kernel, out: Violation[]): void {
  if (k.arch.name !== "x86_64") return;
  const end = highestRamEnd(k.iomem.child);
  if (end < 0) return;
  const ramPfn = Math.floor((end + 1) / k.geo.pageSize);
  if (k.maxPfn <= ramPfn) return;
  // max_pfn never shrinks when RAM is removed; it is the device's doing only when a device range ends there.
  const ps = k.geo.pageSize;
  const byDevice = k.pgmaps.all().some((p) => p.ranges.some((r) => Math.floor((r.end + 1) / ps) === k.maxPfn));
  if (!byDevice) return;
  out.push({
    kind: "max-pfn",
    at: "invariant: max_pfn",
    pfn: k.maxPfn,
    detail: `max_pfn ${hex(k.maxPfn)} lies above the highest System RAM (ends at pfn ${hex(ramPfn)}): device memory raised it`,
  });
}

/** Every invariant, in a fixed order. */
export function checkInvariants(k: Kernel): Violation[] {
  const out: Violation[] = [];
  pgmapRefs(k, out);
  danglingPtes(k, out);
  subsectionMaps(k, out);
  zoneSpans(k, out);
  devicePfnsInBuddy(k, out);
  maxPfnIsRam(k, out);
  return out;
}

