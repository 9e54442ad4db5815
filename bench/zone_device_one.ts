/** One ZONE_DEVICE hot-plug benchmark sample in a fresh process. Prints JSON. */
import { bootKernel } from "../src/kernel/boot.ts";
import { MemoryType } from "../src/kernel/mm/dev_pagemap.ts";
import { memremapPages, newDevPagemap } from "../src/kernel/mm/memremap.ts";
import { newAltmap } from "../src/kernel/mm/vmem_altmap.ts";
import { runToEnd } from "../src/kernel/path.ts";
import { resolveMachine } from "../src/machine/spec.ts";

const TiB = 2 ** 40;
const which = process.argv[2] ?? "devdax-2m-64t";
const spec = resolveMachine(
  { arch: "x86_64-la57", e820: [{ start: 0, end: 0x9fbff, type: "usable" }, { start: 0x100000, size: "4G", type: "usable" }] },
  "bench",
);
const k = bootKernel(spec);
const start = 64 * TiB;
const t0 = performance.now();
let rc: number;
if (which === "devdax-2m-64t") {
  const pgmap = newDevPagemap(k, { device: "dax0.0", type: MemoryType.GENERIC, ranges: [{ start, end: start + 64 * TiB - 1 }], vmemmapShift: 9 });
  rc = runToEnd(memremapPages(k, pgmap, 0));
} else {
  const size = 16 * TiB;
  const sections = size / 2 ** 27;
  const basePfn = start / 4096;
  const altmap = newAltmap(basePfn, basePfn + size / 4096 - 1, 2, 512 * sections + 510);
  const pgmap = newDevPagemap(k, { device: "pfn0.0", type: MemoryType.FS_DAX, ranges: [{ start, end: start + size - 1 }], altmap });
  rc = runToEnd(memremapPages(k, pgmap, 0));
}
const ms = performance.now() - t0;
process.stdout.write(
  JSON.stringify({
    rc,
    ms,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    memmapRamBytes: k.vmemmap.ramBytes,
    memmapDeviceBytes: k.vmemmap.altmapPfns * 4096,
    pageTableBytes: k.vmemmap.pageTableBytes,
  }),
);
