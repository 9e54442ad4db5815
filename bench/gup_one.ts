/**
 * One fresh-process GUP sample: a 16 GiB device-dax namespace (legacy pmem) with ALIGN, mapped and faulted
 * in by one process, then pin_user_pages_fast over all of it (the kernel's gup_test PIN_FAST_BENCHMARK).
 * argv: ALIGN (2M | 4K), GiB. Prints JSON: { pages, fast, faultMs, pinMs, unpinMs, peakRssMiB }.
 */
import { performance } from "node:perf_hooks";
import { bootKernel } from "../src/kernel/boot.ts";
import { findDevDax, openDevDax } from "../src/kernel/drivers/dax/device.ts";
import { FOLL_PIN, FOLL_WRITE, getUserPagesFast, unpinUserPages } from "../src/kernel/mm/gup.ts";
import { handleMmFault } from "../src/kernel/mm/memory.ts";
import { vmaLookup } from "../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap } from "../src/kernel/mm/mmap.ts";
import { runToEnd } from "../src/kernel/path.ts";
import { resolveMachine } from "../src/machine/spec.ts";
import { runNdctl } from "../src/tools/ndctl_cli.ts";

const align = process.argv[2] ?? "2M";
const gib = Number(process.argv[3] ?? 16);
// QEMU q35 with 2 GiB below 4G and the rest above, memmap= turning [4G, 4G + GiB + 1) into legacy pmem.
const spec = resolveMachine(
  {
    arch: "x86_64",
    kconfig: "debian-6.1-amd64",
    e820: [
      { start: 0, end: 0x9fbff, type: "usable" },
      { start: 0x100000, end: 0x7fffffff, type: "usable" },
      { start: 2 ** 32, end: 2 ** 32 + (gib + 1) * 2 ** 30 - 1, type: "usable" },
    ],
    append: `console=ttyS0 nokaslr memmap=${gib + 1}G!4G`,
    modules: ["nd_pmem"],
  },
  "bench/gup_one.ts",
);
const k = bootKernel(spec);
const rc = runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", `--align=${align}`]).rc;
if (rc !== 0) throw new Error(`ndctl create-namespace: ${rc}`);
const t = createProcess(k, "gup_test");
if (typeof t === "number") throw new Error(`process: ${t}`);
const len = gib * 2 ** 30;
const addr = runToEnd(doMmap(k, t, openDevDax(k, findDevDax(k, "dax0.0")!), { len, read: true, write: true, shared: true, offset: 0 }));
if (addr < 0) throw new Error(`mmap: ${addr}`);
const step = align === "2M" ? 2 ** 21 : k.geo.pageSize;
let t0 = performance.now();
const vma = vmaLookup(t.mm, addr);
for (let a = addr; a < addr + len; a += step) runToEnd(handleMmFault(k, vma, a, true));
const faultMs = performance.now() - t0;
const nr = len / k.geo.pageSize;
t0 = performance.now();
const g = runToEnd(getUserPagesFast(k, t, addr, nr, FOLL_PIN | FOLL_WRITE));
const pinMs = performance.now() - t0;
t0 = performance.now();
runToEnd(unpinUserPages(k, g.pages));
const unpinMs = performance.now() - t0;
if (g.ret !== nr || k.sanitizer.errors().length) throw new Error(`pinned ${g.ret} of ${nr}; ${k.sanitizer.errors().length} violations`);
process.stdout.write(`${JSON.stringify({ pages: g.ret, fast: g.fast, faultMs, pinMs, unpinMs, peakRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
