/** One benchmark sample in a fresh process, so peak RSS belongs to this boot alone. Prints JSON. */
import { bootKernel } from "../src/kernel/boot.ts";
import { machinePreset } from "../src/machine/presets.ts";

const name = process.argv[2] ?? "qemu-q35-3g-pmem1g";
const baseline = process.resourceUsage().maxRSS;
const spec = machinePreset(name);
const t0 = performance.now();
const k = bootKernel(spec);
const ms = performance.now() - t0;
const ram = k.memblock.memory.reduce((n, r) => n + r.size, 0);
process.stdout.write(
  JSON.stringify({
    ms,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    baselineRssMiB: baseline / 1024,
    ramBytes: ram,
    modelBytes: k.memmap.bytes() + k.sections.bytes(),
    blocks: k.memoryBlocks.count(),
  }),
);
