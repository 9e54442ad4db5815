/**
 * Variants of the oracle's QEMU q35 guests for unit tests (the captures' machines come from their own dmesg, see
 * capture.ts).
 */
import type { MachineSpec } from "../../src/kernel/boot.ts";
import { machinePreset } from "../../src/machine/presets.ts";

/**
 * The NUMA oracle guest with `-m 4G` and its legacy pmem at `memmap`: RAM [4G, 6G), and QEMU's 64-bit PCI window
 * moved above it (platform input, as the oracle's MEM=4G captures e820numa-off96m-* and e820numa-odd1m-* show it).
 */
export function q35Numa4g(memmap: string): MachineSpec {
  const base = machinePreset("qemu-q35-3g-pmem1g-numa");
  const GiB = 2 ** 30;
  return {
    ...base,
    e820: base.e820?.map((e) => (e.addr === 4 * GiB ? { ...e, size: 2 * GiB } : e)),
    numa: base.numa.map((m) => (m.start === 4 * GiB ? { ...m, end: 6 * GiB } : m)),
    platform: { ...base.platform, early: base.platform.early.map((r) => (r.name === "PCI Bus 0000:00" && r.start >= 4 * GiB ? { ...r, start: 6 * GiB, end: 38 * GiB - 1 } : r)) },
    commandLine: base.commandLine.replace(/memmap=\S+/, `memmap=${memmap}`),
  };
}

