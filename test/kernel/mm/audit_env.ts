/**
 * Machines, eras and a hand-stepped thread for the seed 002 audit tests (test/kernel/mm/audit_*.test.ts): each
 * audited function runs (a) against a live device page, (b) after the device is gone, (c) interleaved with the
 * unbind at its dangerous point, under 5.4, 6.1 and zone-device-subsection-map.
 */
import assert from "node:assert/strict";
import type { MachineSpec } from "../../../src/kernel/boot.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { findDevDax, openDevDax } from "../../../src/kernel/drivers/dax/device.ts";
import { type BusName, type Device, deviceCore, unbindStorePath } from "../../../src/kernel/drivers/nvdimm/device_core.ts";
import { createFile, mountDaxFs, openFile } from "../../../src/kernel/fs/dax_fs.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { type DevPagemap, MemoryType } from "../../../src/kernel/mm/dev_pagemap.ts";
import { FOLL_GET, getUserPagesFast } from "../../../src/kernel/mm/gup.ts";
import { handleMmFault } from "../../../src/kernel/mm/memory.ts";
import { memremapPages, memunmapPages, newDevPagemap } from "../../../src/kernel/mm/memremap.ts";
import { doAnonymousPage, migrateToDevice } from "../../../src/kernel/mm/migrate_device.ts";
import { type Task, vmaLookup } from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap } from "../../../src/kernel/mm/mmap.ts";
import type { KernelPath, Yield } from "../../../src/kernel/path.ts";
import { runToEnd } from "../../../src/kernel/path.ts";
import type { ViolationKind } from "../../../src/kernel/sanitizer.ts";
import { type KernelVariant, VARIANTS } from "../../../src/kernel/variant.ts";
import { MACHINE_PRESETS, machinePreset } from "../../../src/machine/presets.ts";
import { type MachineFile, resolveMachine } from "../../../src/machine/spec.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";

export const MiB = 2 ** 20;

/** The eras of the audit: the kernel it read (5.4), the baseline (6.1), and seed 002's proposal on 6.1. */
export type Era = "5.4" | "6.1" | "zone-device-subsection-map";
export const ERAS: readonly Era[] = ["5.4", "6.1", "zone-device-subsection-map"];

export function variantOf(era: Era): KernelVariant {
  return VARIANTS[era]!;
}

/**
 * A kernel path stepped by hand: one transition at a time, as the explorer would, so a test can put another
 * thread's steps at a chosen point.
 */
export class Thread<T> {
  private pending: Yield | null = null;
  private result: { value: T } | null = null;
  readonly name: string;
  private readonly path: KernelPath<T>;

  constructor(name: string, path: KernelPath<T>) {
    this.name = name;
    this.path = path;
  }

  get done(): boolean {
    return this.result !== null;
  }

  /** Waiting on something that does not hold yet. */
  get blocked(): boolean {
    const p = this.pending;
    return p !== null && p.kind === "block" && !p.until();
  }

  /** Where it stopped: the label of its last yield. */
  get at(): string {
    return this.pending?.at ?? "";
  }

  get value(): T {
    if (!this.result) throw new Error(`${this.name}: not finished (at ${this.at})`);
    return this.result.value;
  }

  /** One transition: resume from the last yield and run to the next. */
  step(): void {
    if (this.result) throw new Error(`${this.name}: already finished`);
    if (this.blocked) throw new Error(`${this.name}: blocked at ${this.at}`);
    const r = this.path.next();
    if (r.done) {
      this.result = { value: r.value };
      this.pending = null;
    } else {
      this.pending = r.value;
    }
  }

  /** Run until it has just yielded at a point whose label contains `at` (that point is where it now stands). */
  runTo(at: string): this {
    for (;;) {
      this.step();
      if (this.result) throw new Error(`${this.name}: finished without reaching '${at}'`);
      if (this.pending?.at.includes(at)) return this;
      if (this.blocked) throw new Error(`${this.name}: blocked at ${this.at} before reaching '${at}'`);
    }
  }

  /** Run until it finishes or blocks on something that does not hold. */
  run(): "done" | "blocked" {
    while (!this.result) {
      if (this.blocked) return "blocked";
      this.step();
    }
    return "done";
  }

  /** Run to the end; a block that does not resolve fails the test. */
  finish(): T {
    assert.equal(this.run(), "done", `${this.name} blocked at ${this.at}`);
    return this.value;
  }

  /** How many transitions the path takes run alone (a fresh path from `make`). */
  static count<R>(make: () => KernelPath<R>): number {
    const p = make();
    let n = 0;
    for (;;) {
      const r = p.next();
      n++;
      if (r.done) return n;
    }
  }
}

/** The sanitizer's verdict: the violation kinds recorded since `from` (warnings excluded), deduplicated. */
export function kinds(k: Kernel, from = 0): ViolationKind[] {
  return [...new Set(k.sanitizer.violations.slice(from).filter((v) => v.kind !== "warning").map((v) => v.kind))];
}

function proc(k: Kernel, comm: string): Task {
  const t = createProcess(k, comm);
  assert.ok(typeof t !== "number");
  return t;
}

/** A device with a devm_memremap_pages action and how to unbind it. */
export interface Unbindable {
  k: Kernel;
  pgmap: DevPagemap;
  unbind(): Thread<number>;
}

function unbindThread(k: Kernel, driver: string, device: string, bus: BusName): () => Thread<number> {
  return () => {
    const core = deviceCore(k);
    const dev: Device | undefined = core.find(device, bus);
    assert.ok(dev, device);
    const drv = core.drivers.find((d) => d.name === driver);
    assert.ok(drv, driver);
    return new Thread(`unbind ${device}`, unbindStorePath(k, drv, device));
  };
}

export interface DevDaxEnv extends Unbindable {
  t: Task;
  addr: number;
  /** The compound head behind addr. */
  head: number;
}

/** device-dax with 2 MiB alignment, mapped by `app`, the first 2 MiB faulted in (a devmap PMD). */
export function devdax(era: Era): DevDaxEnv {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"), variantOf(era));
  assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", "--align=2M"]).rc, 0);
  const dd = findDevDax(k, "dax0.0");
  assert.ok(dd?.pgmap);
  const t = proc(k, "app");
  const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 64 * MiB, read: true, write: true, shared: true, offset: 0 }));
  assert.ok(addr > 0);
  assert.equal(runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, true)).size, "pmd");
  return { k, t, addr, head: 0x101200, pgmap: dd.pgmap, unbind: unbindThread(k, "device_dax", "dax0.0", "dax") };
}

/** get_user_pages_fast(FOLL_GET) of one page at addr: the reference a driver (O_DIRECT, RDMA) would hold. */
export function gupOne(k: Kernel, t: Task, addr: number): number {
  const g = runToEnd(getUserPagesFast(k, t, addr, 1, FOLL_GET));
  assert.equal(g.ret, 1);
  return g.pages[0]!;
}

export interface FsDaxEnv extends Unbindable {
  t: Task;
  addr: number;
  /** The first pfn of the file (its first 2 MiB extent, PMD-mapped). */
  pfn: number;
}

/** ext4 on pmem0 (fsdax, --map=dev), a 64 MiB file mapped by `app`, its first 2 MiB faulted in (a devmap PMD). */
export function fsdax(era: Era): FsDaxEnv {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"), variantOf(era));
  assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=fsdax", "--map=dev"]).rc, 0);
  const fs = runToEnd(mountDaxFs(k, "ext4", "pmem0", "/mnt/pmem", {}));
  assert.ok(typeof fs !== "number");
  assert.ok(typeof createFile(k, fs, "data", 64 * MiB) !== "number");
  const f = openFile(k, fs, "data");
  assert.ok(typeof f !== "number");
  const t = proc(k, "app");
  const addr = runToEnd(doMmap(k, t, f, { len: 64 * MiB, read: true, write: true, shared: true, offset: 0 }));
  assert.ok(addr > 0);
  assert.equal(runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, true)).size, "pmd");
  const pgmap = k.pgmaps.all().find((p) => p.type === MemoryType.FS_DAX && p.state === "live");
  assert.ok(pgmap);
  const s = t.mm.pgd.lookup(addr)!;
  const pfn = t.mm.pgd.fmt.entryPfn(s.table.lo[s.idx]!, s.table.hi[s.idx]!);
  return { k, t, addr, pfn, pgmap, unbind: unbindThread(k, "nd_pmem", "pfn0.0", "nd") };
}

/** The oracle's machine file with the HMM kconfig (DEVICE_PRIVATE, PCI_P2PDMA), no nd_pmem. */
function hmmMachine(over: Partial<MachineFile> = {}): MachineSpec {
  const file = MACHINE_PRESETS["qemu-q35-3g-pmem1g"]!.file;
  return resolveMachine({ ...file, name: "qemu-q35-3g-hmm", modules: [], kconfig: "hmm", ...over }, "test");
}

/** Above the 64-bit PCI window: nothing there. */
export const HIGH = 0x940000000;

/** A kernel-level teardown of a pgmap (no driver): memunmap_pages as the era runs it. */
function memunmapThread(k: Kernel, pgmap: DevPagemap): () => Thread<void> {
  return () => new Thread(`memunmap_pages ${pgmap.device}`, memunmapPages(k, pgmap));
}

export interface HmmEnv {
  k: Kernel;
  pgmap: DevPagemap;
  t: Task;
  addr: number;
  /** The device-private page the anonymous page was migrated to. */
  dpfn: number;
  /** The pfns the driver's ->page_free was called for, in order. */
  frees: number[];
  memunmap(): Thread<void>;
}

/**
 * test_hmm's dmirror0: 256 MiB of device-private memory at HIGH; `app` touches an anonymous page at addr and the
 * driver migrates it to device memory (a device-private entry, the page charged to /app).
 */
export function hmm(era: Era): HmmEnv {
  const k = bootKernel(hmmMachine(), variantOf(era));
  const frees: number[] = [];
  const pgmap = newDevPagemap(k, {
    device: "dmirror0",
    type: MemoryType.PRIVATE,
    ranges: [{ start: HIGH, end: HIGH + 256 * MiB - 1 }],
    owner: "dmirror0",
    ops: { pageFree: (pfn) => frees.push(pfn), migrateToRam: true },
  });
  assert.equal(runToEnd(memremapPages(k, pgmap, -1)), 0);
  const t = proc(k, "app");
  const addr = 0x7f0000000000;
  assert.ok(runToEnd(doAnonymousPage(k, t, addr)) > 0);
  const r = runToEnd(migrateToDevice(k, t, addr, pgmap));
  assert.equal(r.migrated, true);
  return { k, pgmap, t, addr, dpfn: r.pfn!, frees, memunmap: memunmapThread(k, pgmap) };
}

/** A p2pdma provider's 2 MiB BAR memremapped at HIGH on the HMM kernel (PCI_P2PDMA=y). */
export function p2p(era: Era): { k: Kernel; pgmap: DevPagemap; memunmap(): Thread<void> } {
  const k = bootKernel(hmmMachine(), variantOf(era));
  const pgmap = newDevPagemap(k, { device: "p2p0", type: MemoryType.PCI_P2PDMA, ranges: [{ start: HIGH, end: HIGH + 2 * MiB - 1 }] });
  assert.equal(runToEnd(memremapPages(k, pgmap, -1)), 0);
  return { k, pgmap, memunmap: memunmapThread(k, pgmap) };
}

/** The device pfn of sharedSection(): the first page of [0x7fe00000, 0x80000000). */
export const SHARED_DEV_PFN = 0x7fe00;

/**
 * As the oracle, but boot RAM ends at 0x7fe00000 inside section 15, and a device (GENERIC, no driver) is
 * memremapped over the section's last 2 MiB: a section where ZONE_DEVICE and online memory meet.
 */
export function sharedSection(era: Era): { k: Kernel; pgmap: DevPagemap; memunmap(): Thread<void> } {
  const e820 = MACHINE_PRESETS["qemu-q35-3g-pmem1g"]!.file.e820!.map((e) =>
    e.start === 0x100000 ? { ...e, end: 0x7fdfffff } : e.start === 0x7ffdf000 ? { ...e, start: 0x7fe00000 } : e,
  );
  const file = MACHINE_PRESETS["qemu-q35-3g-pmem1g"]!.file;
  const k = bootKernel(resolveMachine({ ...file, name: "qemu-q35-shared-section", modules: [], e820 }, "test"), variantOf(era));
  const pgmap = newDevPagemap(k, { device: "dev0", type: MemoryType.GENERIC, ranges: [{ start: 0x7fe00000, end: 0x7fffffff }] });
  assert.equal(runToEnd(memremapPages(k, pgmap, -1)), 0);
  return { k, pgmap, memunmap: memunmapThread(k, pgmap) };
}
