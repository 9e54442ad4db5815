/**
 * Named machines. `qemu-*` presets are the oracle's QEMU guests: their firmware tables, platform resources
 * (PCI windows, ROMs, APICs: facts about the machine, not derived by the model), kernel image placement and
 * boot-time managed page counts are copied from the guests' own boot logs and /proc output, as inputs. What the
 * model computes from them (zones, sections, blocks, iomem nesting) is compared against the same captures.
 */
import { UsageError } from "../errors.ts";
import type { MachineSpec } from "../kernel/boot.ts";
import { type MachineFile, resolveMachine } from "./spec.ts";

const KERNEL_IMAGE_6_1_0_56 = [
  { name: "Kernel code", start: 0x01000000, end: 0x01e01d31 },
  { name: "Kernel rodata", start: 0x02000000, end: 0x028eafff },
  { name: "Kernel data", start: 0x02a00000, end: 0x02c4897f },
  { name: "Kernel bss", start: 0x03310000, end: 0x043fffff },
];

/** QEMU q35's platform resources as the 6.1 guest lists them in /proc/iomem. */
function q35Platform(pci64: [number, number]): MachineFile["platform"] {
  return {
    early: [
      { name: "PCI Bus 0000:00", start: 0x000a0000, end: 0x000bffff },
      { name: "Video ROM", start: 0x000c0000, end: 0x000c9bff },
      { name: "Adapter ROM", start: 0x000ca000, end: 0x000cadff },
      { name: "Adapter ROM", start: 0x000cb000, end: 0x000cb5ff },
      { name: "System ROM", start: 0x000f0000, end: 0x000fffff, op: "nest" },
      { name: "PCI Bus 0000:00", start: 0x80000000, end: 0xafffffff },
      { name: "PCI Bus 0000:00", start: 0xc0000000, end: 0xfebfffff },
      { name: "PCI Bus 0000:00", start: pci64[0], end: pci64[1] },
      { name: "0000:00:01.0", start: 0xfd000000, end: 0xfdffffff, op: "request" },
      { name: "0000:00:02.0", start: 0xfeb40000, end: 0xfeb7ffff, op: "request" },
      { name: "0000:00:02.0", start: 0xfeb80000, end: 0xfeb9ffff, op: "request" },
      { name: "0000:00:02.0", start: 0xfeba0000, end: 0xfebbffff, op: "request" },
      { name: "0000:00:02.0", start: 0xfebd0000, end: 0xfebd3fff, op: "request" },
      { name: "0000:00:01.0", start: 0xfebd4000, end: 0xfebd4fff, op: "request" },
      { name: "0000:00:1f.2", start: 0xfebd5000, end: 0xfebd5fff, op: "request" },
      { name: "IOAPIC 0", start: 0xfec00000, end: 0xfec003ff },
      { name: "HPET 0", start: 0xfed00000, end: 0xfed003ff },
      { name: "PNP0103:00", start: 0xfed00000, end: 0xfed003ff, op: "nest" },
      { name: "Local APIC", start: 0xfee00000, end: 0xfee00fff },
    ],
    late: [
      { name: "pnp 00:05", start: 0xb0000000, end: 0xbfffffff, op: "nest" },
      { name: "PCI MMCONFIG 0000 [bus 00-ff]", start: 0xb0000000, end: 0xbfffffff },
    ],
  };
}

/** SeaBIOS's e820 for q35 with `-m 3G` (RAM below the 2 GiB PCI hole, then 1 GiB at 4 GiB). */
const Q35_3G_E820: MachineFile["e820"] = [
  { start: 0x0, end: 0x9fbff, type: "usable" },
  { start: 0x9fc00, end: 0x9ffff, type: "reserved" },
  { start: 0xf0000, end: 0xfffff, type: "reserved" },
  { start: 0x100000, end: 0x7ffdefff, type: "usable" },
  { start: 0x7ffdf000, end: 0x7fffffff, type: "reserved" },
  { start: 0xb0000000, end: 0xbfffffff, type: "reserved" },
  { start: 0xfed1c000, end: 0xfed1ffff, type: "reserved" },
  { start: 0xfffc0000, end: 0xffffffff, type: "reserved" },
  { start: 0x100000000, end: 0x13fffffff, type: "usable" },
  { start: 0xfd00000000, end: 0xffffffffff, type: "reserved" },
];

/** SeaBIOS's e820 for q35 with `-m 2G` (all RAM below the 2 GiB PCI hole). */
const Q35_2G_E820: MachineFile["e820"] = [
  { start: 0x0, end: 0x9fbff, type: "usable" },
  { start: 0x9fc00, end: 0x9ffff, type: "reserved" },
  { start: 0xf0000, end: 0xfffff, type: "reserved" },
  { start: 0x100000, end: 0x7ffddfff, type: "usable" },
  { start: 0x7ffde000, end: 0x7fffffff, type: "reserved" },
  { start: 0xb0000000, end: 0xbfffffff, type: "reserved" },
  { start: 0xfed1c000, end: 0xfed1ffff, type: "reserved" },
  { start: 0xfffc0000, end: 0xffffffff, type: "reserved" },
  { start: 0xfd00000000, end: 0xffffffffff, type: "reserved" },
];

interface Preset {
  description: string;
  file: MachineFile;
}

const TiB = 2 ** 40;

export const MACHINE_PRESETS: Readonly<Record<string, Preset>> = {
  "qemu-q35-3g-pmem1g": {
    description: "the oracle's guest: QEMU q35 -m 3G, Debian 6.1, memmap=1G!4G (1 GiB legacy pmem at 4 GiB)",
    file: {
      arch: "x86_64",
      kconfig: "debian-6.1-amd64",
      e820: Q35_3G_E820,
      append: "console=ttyS0 nokaslr panic=-1 memmap=1G!4G",
      platform: q35Platform([0x140000000, 0x93fffffff]),
      kernel_image: KERNEL_IMAGE_6_1_0_56,
      modules: ["nd_pmem"],
      managed: [
        { node: 0, zone: "DMA", pages: 3840 },
        { node: 0, zone: "DMA32", pages: 499697 },
      ],
    },
  },
  "qemu-q35-3g-pmem1g-numa": {
    description: "the oracle's NUMA guest: as qemu-q35-3g-pmem1g with one SRAT node (kmem needs a node)",
    file: {
      arch: "x86_64",
      kconfig: "debian-6.1-amd64",
      e820: Q35_3G_E820,
      append: "console=ttyS0 nokaslr panic=-1 memmap=1G!4G",
      numa: [
        { node: 0, start: 0x0, end: 0x9ffff },
        { node: 0, start: 0x100000, end: 0x7fffffff },
        { node: 0, start: 0x100000000, end: 0x13fffffff },
      ],
      platform: q35Platform([0x140000000, 0x93fffffff]),
      kernel_image: KERNEL_IMAGE_6_1_0_56,
      modules: ["nd_pmem"],
      managed: [
        { node: 0, zone: "DMA", pages: 3840 },
        { node: 0, zone: "DMA32", pages: 483121 },
      ],
    },
  },
  "qemu-q35-2g-nvdimm1g": {
    description:
      "the oracle's NFIT guest: QEMU q35 nvdimm=on -m 2G,slots=2,maxmem=8G, one 1 GiB NVDIMM with a 128 KiB label area at 4 GiB",
    file: {
      arch: "x86_64",
      kconfig: "debian-6.1-amd64",
      e820: Q35_2G_E820,
      append: "console=ttyS0 nokaslr panic=-1",
      // QEMU's SRAT: RAM, the NVDIMM's SPA range (non-volatile) and the hot-pluggable device memory window.
      numa: [
        { node: 0, start: 0x0, end: 0x9ffff },
        { node: 0, start: 0x100000, end: 0x7fffffff },
        { node: 0, start: 0x100000000, end: 0x13ffdffff },
        { node: 0, start: 0x100000000, end: 0x2ffffffff, hotplug: true },
      ],
      platform: q35Platform([0x300000000, 0xaffffffff]),
      kernel_image: KERNEL_IMAGE_6_1_0_56,
      modules: ["nd_pmem"],
      nvdimms: [{ size: "1G", label_size: "128K", node: 0 }],
      managed: [
        { node: 0, zone: "DMA", pages: 3840 },
        { node: 0, zone: "DMA32", pages: 483120 },
      ],
    },
  },
  "x86-64t": {
    description: "x86_64 (5-level paging) with 64 TiB of RAM on 4 nodes, bare metal",
    file: {
      arch: "x86_64-la57",
      e820: [
        { start: 0x0, end: 0x9ffff, type: "usable" },
        { start: 0xf0000, end: 0xfffff, type: "reserved" },
        { start: 0x100000, end: 0x7fffffff, type: "usable" },
        { start: 0x80000000, end: 0xffffffff, type: "reserved" },
        { start: 0x100000000, size: 64 * TiB - 2 ** 32, type: "usable" },
      ],
      numa: [0, 1, 2, 3].map((n) => ({ node: n, start: n * 16 * TiB, size: 16 * TiB })),
    },
  },
  "arm64-64k-4t": {
    description: "arm64 with 64 KiB pages and 4 TiB of RAM at 2 GiB on 2 nodes",
    file: {
      arch: "arm64-64k-48",
      memory: [{ start: 0x80000000, size: 4 * TiB }],
      numa: [
        { node: 0, start: 0x80000000, size: 2 * TiB },
        { node: 1, start: 0x80000000 + 2 * TiB, size: 2 * TiB },
      ],
    },
  },
  "arm64-virt-4g": {
    description: "QEMU arm64 virt, 4 KiB pages, 4 GiB of RAM at 1 GiB",
    file: { arch: "arm64-4k-48", memory: [{ start: 0x40000000, size: 4 * 2 ** 30 }] },
  },
  "ppc64-powernv-16g": {
    description: "ppc64le powernv (radix, 64 KiB pages) with 16 GiB of RAM",
    file: { arch: "ppc64-radix-64k", memory: [{ start: 0x0, size: 16 * 2 ** 30 }] },
  },
};

export const DEFAULT_PRESET = "qemu-q35-3g-pmem1g";

export function machinePreset(name: string, extraAppend?: string): MachineSpec {
  const p = Object.hasOwn(MACHINE_PRESETS, name) ? MACHINE_PRESETS[name] : undefined;
  if (!p) throw new UsageError("--preset", `unknown preset '${name}' (known: ${Object.keys(MACHINE_PRESETS).join(", ")})`);
  const file: MachineFile = { name, ...p.file };
  if (extraAppend !== undefined) file.append = extraAppend;
  return resolveMachine(file, `preset ${name}`);
}
