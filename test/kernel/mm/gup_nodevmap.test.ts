/**
 * Seed 000: ZONE_DEVICE on an arch without pte_devmap (variant arm64-no-pte-devmap: arm64 selecting
 * ARCH_HAS_ZONE_DEVICE before it had PTE_DEVMAP). pfn_t_devmap() is false, so a device pfn is mapped by a special
 * PTE or a plain block PMD; pte/pmd_devmap() are 0. GUP-fast then refuses the PTE (pte_special) and takes the PMD
 * like a THP: a plain reference on the compound head, with no get_dev_pagemap. Against a concurrent unbind what
 * keeps the memmap alive is RCU (interrupts off is a read-side section; memunmap_pages waits a grace period), on
 * both variants; the difference shows where a mapping outlives the memmap (FS-DAX after pmem unbind:
 * scenarios/seed000-*.yaml): without pte_devmap GUP-fast grabs the freed struct page, with it get_dev_pagemap
 * finds nothing and GUP backs off.
 *
 * The mapping: in this configuration device-dax's own faults would BUG — since v4.15 dax_mmap no longer sets
 * VM_MIXEDMAP and relies on pfn_t_devmap() instead, so vm_mixed_ok() and vmf_insert_pfn_pmd()'s BUG_ON trip on
 * a PFN_DEV|PFN_MAP pfn. The tests map /dev/dax0.0 as dax_mmap did before 4.15 (VM_MIXEDMAP | VM_HUGEPAGE), which
 * is what a driver has to do to map its ZONE_DEVICE pages on such an arch.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeFlags } from "../../../src/arch/pte.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { allocDaxRegion, type DevDax, devmCreateDevDax } from "../../../src/kernel/drivers/dax/bus.ts";
import { findDevDax, openDevDax } from "../../../src/kernel/drivers/dax/device.ts";
import { type Driver, unbindStorePath } from "../../../src/kernel/drivers/nvdimm/device_core.ts";
import { modprobe } from "../../../src/kernel/drivers/nvdimm/e820_pmem.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { FOLL_PIN, FOLL_WRITE, getUserPagesFast, unpinUserPages } from "../../../src/kernel/mm/gup.ts";
import { PageState } from "../../../src/kernel/mm/memmap.ts";
import { entryDevmap, handleMmFault } from "../../../src/kernel/mm/memory.ts";
import { type Task, VM_FAULT_NOPAGE, VM_MIXEDMAP, vmaLookup } from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap, userland } from "../../../src/kernel/mm/mmap.ts";
import { archHasPteDevmap, pfnTDevmap } from "../../../src/kernel/mm/pgtable.ts";
import { type KernelPath, runToEnd, type Yield } from "../../../src/kernel/path.ts";
import { type KernelVariant, VARIANTS } from "../../../src/kernel/variant.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { builtinCommands } from "../../../src/scenario/commands.ts";
import { tokenize } from "../../../src/scenario/tokenize.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";
import { hmemParent } from "../../support/platform.ts";

const MiB = 2 ** 20;
const NO_DEVMAP = VARIANTS["arm64-no-pte-devmap"]!;
const V61 = VARIANTS["6.1"]!;
/** Where the "Soft Reserved" device range sits on the arm64 virt machine (RAM is [1 GiB, 5 GiB)). */
const DEV_START = 0x200000000;
const DEV_PFN = DEV_START / 4096;

interface Setup {
  k: Kernel;
  t: Task;
  addr: number;
  dd: DevDax;
}

/**
 * arm64 virt with a 64 MiB device-dax instance: a platform device's dynamic dax region over device memory, as
 * drivers/dax/hmem makes one, probed by device_dax (MEMORY_DEVICE_GENERIC, vmemmap_shift for the align), and
 * mapped by a process. `mixedmap`: the VMA is VM_MIXEDMAP (see the file comment).
 */
function arm64DevDax(variant: KernelVariant, align: number, mixedmap: boolean): Setup {
  const k = bootKernel(machinePreset("arm64-virt-4g"), variant);
  assert.equal(modprobe(k, "device_dax"), 0);
  const parent = hmemParent();
  const region = allocDaxRegion(parent, 0, { start: DEV_START, end: DEV_START + 64 * MiB - 1 }, 0, align, 0);
  assert.ok(region);
  const dd = runToEnd(devmCreateDevDax(k, { region, id: -1, pgmap: null, size: 64 * MiB }));
  assert.ok(typeof dd !== "number", `devm_create_dev_dax: ${dd}`);
  assert.ok(dd.pgmap && dd.alive, "device_dax bound");
  const t = createProcess(k, "app");
  assert.ok(typeof t !== "number");
  const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 16 * MiB, read: true, write: true, shared: true, offset: 0 }));
  assert.ok(addr > 0, `mmap: ${addr}`);
  if (mixedmap) vmaLookup(t.mm, addr)!.flags |= VM_MIXEDMAP;
  return { k, t, addr, dd };
}

function fault(s: Setup, addr: number): number {
  return runToEnd(handleMmFault(s.k, vmaLookup(s.t.mm, addr), addr, true)).ret;
}

function deviceDax(k: Kernel): Driver {
  return k.devices!.drivers.find((d) => d.name === "device_dax")!;
}

/** Run a path until it yields at `at`; fails if it ends first. */
function stepTo<T>(path: KernelPath<T>, at: string): void {
  for (;;) {
    const r = path.next();
    assert.ok(!r.done, `the path ended before yielding at "${at}"`);
    const y: Yield = r.value;
    if (y.at === at) return;
  }
}

/** Run a path on from where it stopped (as runToEnd, for a path already started). */
function finish<T>(path: KernelPath<T>): T {
  for (;;) {
    const r = path.next();
    if (r.done) return r.value;
    if (r.value.kind === "block" && !r.value.until()) throw new Error(`blocked in ${r.value.at}`);
  }
}

describe("arm64 without pte_devmap (seed 000): what is mapped", () => {
  it("the variant: pfn_t_devmap() is false and the arm64 encoding has no PTE_DEVMAP; every other preset has it", () => {
    for (const v of Object.values(VARIANTS)) assert.equal(v.archHasPteDevmap, v.name !== "arm64-no-pte-devmap", v.name);
    const { k } = arm64DevDax(NO_DEVMAP, 2 * MiB, true);
    assert.equal(archHasPteDevmap(k), false);
    assert.equal(pfnTDevmap(k, { flags: (1 << 1) | (1 << 2) }), false);
    const k61 = bootKernel(machinePreset("arm64-virt-4g"), V61);
    assert.equal(pfnTDevmap(k61, { flags: (1 << 1) | (1 << 2) }), true);
  });

  it("a 4 KiB device page is mapped by a special PTE, with no devmap bit; pte_devmap() is 0", () => {
    const s = arm64DevDax(NO_DEVMAP, 4096, true);
    assert.equal(fault(s, s.addr), VM_FAULT_NOPAGE);
    const pt = s.t.mm.pgd;
    const slot = pt.lookup(s.addr)!;
    assert.equal(slot.level.name, "pte");
    const bits = decodeFlags(pt.fmt, slot.table.lo[slot.idx]!, slot.table.hi[slot.idx]!);
    assert.ok(bits.includes("special") && !bits.includes("devmap"), bits.join(" "));
    assert.equal((slot.table.hi[slot.idx]! >>> (57 - 32)) & 1, 0, "bit 57 (6.1's PTE_DEVMAP) is clear");
    assert.equal(entryDevmap(s.k, pt, slot.table, slot.idx), false);
  });

  it("a 2 MiB device page is mapped by a plain block PMD (pmd_mkhuge only); pmd_devmap() is 0", () => {
    const s = arm64DevDax(NO_DEVMAP, 2 * MiB, true);
    assert.equal(fault(s, s.addr), VM_FAULT_NOPAGE);
    const pt = s.t.mm.pgd;
    const slot = pt.lookup(s.addr)!;
    assert.equal(slot.level.name, "pmd");
    assert.equal(slot.table.lo[slot.idx]! & 3, 1, "PMD_TYPE_SECT");
    assert.equal(pt.fmt.entryPfn(slot.table.lo[slot.idx]!, slot.table.hi[slot.idx]!), DEV_PFN);
    assert.equal(entryDevmap(s.k, pt, slot.table, slot.idx), false);
    assert.ok(!decodeFlags(pt.fmt, slot.table.lo[slot.idx]!, slot.table.hi[slot.idx]!).includes("devmap"));
  });
});

describe("arm64 without pte_devmap (seed 000): GUP", () => {
  it("4 KiB: GUP-fast bails on pte_special and the slow path refuses the page (follow_pfn_pte: -EEXIST)", () => {
    const s = arm64DevDax(NO_DEVMAP, 4096, true);
    fault(s, s.addr);
    const g = runToEnd(getUserPagesFast(s.k, s.t, s.addr, 1, FOLL_PIN | FOLL_WRITE));
    assert.equal(g.fast, 0);
    assert.equal(g.ret, -17);
    assert.equal(s.k.memmap.get(DEV_PFN).refcount, 1, "no reference was taken");
    assert.deepEqual(s.k.sanitizer.errors(), []);
  });

  it("2 MiB: GUP-fast takes the block PMD like a THP — refs on the compound head, and no pgmap reference at all", () => {
    const s = arm64DevDax(NO_DEVMAP, 2 * MiB, true);
    fault(s, s.addr);
    const pgmap = s.dd.pgmap!;
    const refsBefore = pgmap.ref.count;
    const reads = new Set<string>();
    s.k.sanitizer.footprint = { reads, writes: new Set() };
    const g = runToEnd(getUserPagesFast(s.k, s.t, s.addr, 512, FOLL_PIN | FOLL_WRITE));
    s.k.sanitizer.footprint = null;
    assert.equal(g.ret, 512);
    assert.equal(g.fast, 512);
    assert.equal(s.k.memmap.get(DEV_PFN).refcount, 1 + 512);
    assert.equal(s.k.memmap.get(DEV_PFN).pincount, 512);
    assert.equal(pgmap.ref.count, refsBefore);
    assert.deepEqual([...reads].filter((r) => r.startsWith("pgmap")), [], "get_dev_pagemap was never called");
    runToEnd(unpinUserPages(s.k, g.pages));
    assert.equal(s.k.memmap.get(DEV_PFN).refcount, 1);
    assert.deepEqual(s.k.sanitizer.errors(), []);
  });

  it("2 MiB, slow path: follow_trans_huge_pmd takes the same plain reference, under the pmd lock", () => {
    const s = arm64DevDax(NO_DEVMAP, 2 * MiB, true);
    const g = runToEnd(getUserPagesFast(s.k, s.t, s.addr + 4096, 2, FOLL_PIN | FOLL_WRITE));
    assert.equal(g.ret, 2);
    assert.equal(g.fast, 0, "nothing mapped yet: the slow path faults the PMD in");
    assert.deepEqual(g.pages, [DEV_PFN + 1, DEV_PFN + 2]);
    assert.equal(s.k.memmap.get(DEV_PFN).pincount, 2);
  });
});

describe("GUP-fast racing device unbind", () => {
  const READ_PMD = "gup_pmd_range: READ_ONCE(*pmdp)";

  /** Run unbind as a path until it waits on something that does not hold yet; what it waits for. */
  function unbindUntilBlocked(k: Kernel, name: string): { path: KernelPath<number>; at: string; holder: string } {
    const path = unbindStorePath(k, deviceDax(k), name);
    for (;;) {
      const r = path.next();
      assert.ok(!r.done, "unbind finished without waiting");
      const y: Yield = r.value;
      if (y.kind === "block" && !y.until()) return { path, at: y.at, holder: y.holder?.() ?? "" };
    }
  }

  it("without pte_devmap: unbind while GUP-fast holds the PMD it read — the grace period waits for its interrupts-off walk", () => {
    const s = arm64DevDax(NO_DEVMAP, 2 * MiB, true);
    fault(s, s.addr);
    const gup = getUserPagesFast(s.k, s.t, s.addr, 512, FOLL_PIN | FOLL_WRITE);
    stepTo(gup, READ_PMD); // lockless: the PMD is read, IRQs are off on this CPU, the other CPU goes on
    // kill_dev_dax zaps the PMD (arm64's TLBI is broadcast: no IPI waits for this CPU), then memunmap_pages
    // kills the pgmap's ref — whose switch to atomic mode needs an RCU grace period, and interrupts-off is a
    // read-side critical section: teardown waits for this walk before it touches the memmap.
    const u = unbindUntilBlocked(s.k, s.dd.name);
    assert.match(u.at, /RCU grace period/);
    assert.match(u.holder, /gup_fast \(interrupts off\)/);
    assert.equal(s.k.memmap.state(DEV_PFN), PageState.Initialised, "the memmap is still there");
    const g = finish(gup);
    // The grab happened on a live struct page; the PMD re-check saw the zap and gave the references back.
    assert.equal(g.ret, -14);
    assert.equal(finish(u.path), 0);
    assert.equal(s.k.memmap.state(DEV_PFN), PageState.TornDown);
    assert.deepEqual(s.k.sanitizer.errors(), []);
  });

  it("6.1 with pte_devmap (x86_64 and arm64): the same interleaving is safe — get_dev_pagemap finds the pgmap dying", () => {
    const x86 = ((): Setup => {
      const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"), V61);
      assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", "--align=2M"]).rc, 0);
      const dd = findDevDax(k, "dax0.0")!;
      const t = createProcess(k, "app");
      assert.ok(typeof t !== "number");
      const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 16 * MiB, read: true, write: true, shared: true, offset: 0 }));
      return { k, t, addr, dd };
    })();
    for (const s of [x86, arm64DevDax(V61, 2 * MiB, false)]) {
      const arch = s.k.arch.arch;
      assert.equal(fault(s, s.addr), VM_FAULT_NOPAGE, arch);
      const slot = s.t.mm.pgd.lookup(s.addr)!;
      assert.ok(entryDevmap(s.k, s.t.mm.pgd, slot.table, slot.idx), `${arch}: a devmap PMD`);
      const gup = getUserPagesFast(s.k, s.t, s.addr, 512, FOLL_PIN | FOLL_WRITE);
      stepTo(gup, READ_PMD);
      const u = unbindUntilBlocked(s.k, s.dd.name);
      assert.match(u.holder, /gup_fast/, arch);
      const g = finish(gup);
      // __gup_device_huge: get_dev_pagemap() before any struct page is touched; percpu_ref_kill already ran, so
      // GUP-fast backs off, and the slow path finds the mapping gone: -EFAULT.
      assert.equal(g.ret, -14, arch);
      assert.equal(finish(u.path), 0, arch);
      assert.deepEqual(s.k.sanitizer.errors(), [], arch);
    }
  });

  it("6.1 with pte_devmap: the window between put_dev_pagemap and the PMD re-check is closed by the same grace period", () => {
    // __gup_device_huge_pmd re-checks the PMD only after __gup_device_huge dropped its pgmap reference, and the
    // pins hold no pgmap reference (6.1). What keeps memunmap_pages from freeing the memmap in between is not a
    // reference but RCU: interrupts are still off, so percpu_ref_kill's grace period has not ended.
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"), V61);
    assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", "--align=2M"]).rc, 0);
    const dd = findDevDax(k, "dax0.0")!;
    const t = createProcess(k, "app");
    assert.ok(typeof t !== "number");
    const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 16 * MiB, read: true, write: true, shared: true, offset: 0 }));
    runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, true));
    const gup = getUserPagesFast(k, t, addr, 512, FOLL_PIN | FOLL_WRITE);
    stepTo(gup, "put_dev_pagemap: percpu_ref_put");
    assert.equal(k.memmap.get(0x101200).pincount, 512, "the pins are taken");
    const u = unbindUntilBlocked(k, "dax0.0");
    assert.match(u.holder, /gup_fast/);
    finish(gup);
    assert.equal(k.memmap.get(0x101200).pincount, 0, "undo_dev_pagemap gave the pins back on a live memmap");
    assert.equal(finish(u.path), 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("a mapping that outlives the memmap: FS-DAX after pmem unbind", () => {
  const registry = builtinCommands();
  /** One scenario step, as a user types it. */
  function sh(k: Kernel, text: string): { stdout: string; rc: number } {
    const inv = tokenize(text);
    const cmd = registry.get(inv.argv[0]!);
    assert.ok(cmd, inv.argv[0]);
    cmd.check(inv);
    const out = cmd.run(k, inv, { where: "test" });
    return { stdout: out.stdout, rc: out.rc };
  }

  /**
   * XFS -o dax on pmem0 (fsdax, map=dev), a 2 MiB file mapped and written (a huge PMD), then nd_pmem unbound
   * from pfn0.0: 6.1 tears the memmap down and leaves the file's PMD in place. The VMA is VM_MIXEDMAP, as xfs's
   * DAX mmap set it before 4.15 (see the file comment), on both variants so that only archHasPteDevmap differs.
   */
  function unboundFsdax(variant: KernelVariant): { k: Kernel; head: number } {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"), variant);
    for (const step of [
      "ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev",
      "mkfs.xfs -q /dev/pmem0",
      "mount -o dax /dev/pmem0 /mnt/pmem",
      "xfs_io -f -c 'pwrite -q 0 2M' /mnt/pmem/data",
      "process app",
    ]) {
      assert.equal(sh(k, step).rc, 0, step);
    }
    const mapped = sh(k, "mmap app /mnt/pmem/data 2M --as buf");
    assert.equal(mapped.rc, 0);
    const addr = Number.parseInt(mapped.stdout, 16);
    const task = [...userland(k).tasks.values()][0]!;
    vmaLookup(task.mm, addr)!.flags |= VM_MIXEDMAP;
    assert.equal(sh(k, "access app buf --write").rc, 0);
    const slot = task.mm.pgd.lookup(addr)!;
    assert.equal(slot.level.name, "pmd");
    const head = task.mm.pgd.fmt.entryPfn(slot.table.lo[slot.idx]!, slot.table.hi[slot.idx]!);
    assert.equal(sh(k, "echo pfn0.0 > /sys/bus/nd/drivers/nd_pmem/unbind").rc, 0);
    assert.equal(k.memmap.state(head), PageState.TornDown);
    assert.equal(task.mm.pgd.lookup(addr)!.table.lo[slot.idx], slot.table.lo[slot.idx], "the PMD is still there");
    assert.deepEqual(k.sanitizer.errors(), []);
    return { k, head };
  }

  it("without pte_devmap: GUP-fast takes the PMD as a THP and grabs the freed struct page", () => {
    const { k, head } = unboundFsdax(NO_DEVMAP);
    sh(k, "gup app buf 1 --pin --write --as p");
    const uaf = k.sanitizer.errors().filter((v) => v.kind === "struct-page-use-after-free");
    assert.ok(uaf.length > 0, "try_grab_folio reads torn-down struct pages");
    assert.equal(uaf[0]!.pfn, head);
    assert.match(uaf[0]!.at, /^try_get_folio/);
  });

  it("6.1 with pte_devmap: the same PMD is devmap, get_dev_pagemap finds no pgmap and GUP backs off", () => {
    const { k } = unboundFsdax(V61);
    const out = sh(k, "gup app buf 1 --pin --write --as p");
    assert.notEqual(out.rc, 0, out.stdout);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});
