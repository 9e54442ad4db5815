/**
 * The user side of device memory (issue 5 core): page-table levels and entry encodings per arch, device-dax
 * mmap and faults per alignment, GUP slow/fast with FOLL_GET/FOLL_PIN refcounts, the refusals' errnos, and
 * what unbind does to mappings and pins in 6.1.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { archProfile } from "../../../src/arch/profiles.ts";
import { decodeFlags, pteFormat, splitEntry } from "../../../src/arch/pte.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { allocDaxRegion, devmCreateDevDax } from "../../../src/kernel/drivers/dax/bus.ts";
import { findDevDax, openDevDax } from "../../../src/kernel/drivers/dax/device.ts";
import { unbindStore } from "../../../src/kernel/drivers/nvdimm/device_core.ts";
import { modprobe } from "../../../src/kernel/drivers/nvdimm/e820_pmem.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { FOLL_FAST_ONLY, FOLL_GET, FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, GUP_PIN_COUNTING_BIAS, getUserPages, getUserPagesFast, unpinUserPages } from "../../../src/kernel/mm/gup.ts";
import { handleMmFault } from "../../../src/kernel/mm/memory.ts";
import { type Task, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS, vmaLookup } from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap, doMunmap } from "../../../src/kernel/mm/mmap.ts";
import { pageTableLevels } from "../../../src/kernel/mm/pgtable.ts";
import { runToEnd } from "../../../src/kernel/path.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";
import { hmemParent } from "../../support/platform.ts";

const MiB = 2 ** 20;

function devdax(align: string): { k: Kernel; t: Task; addr: number } {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", `--align=${align}`]).rc, 0);
  const dd = findDevDax(k, "dax0.0");
  assert.ok(dd);
  const t = createProcess(k, "app");
  assert.ok(typeof t !== "number");
  const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 64 * MiB, read: true, write: true, shared: true, offset: 0 }));
  assert.ok(addr > 0, `mmap: ${addr}`);
  return { k, t, addr };
}

function fault(k: Kernel, t: Task, addr: number, write: boolean) {
  return runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, write));
}

describe("page-table levels per arch", () => {
  const cases: Array<[string, string]> = [
    ["x86_64", "pgd[512] pud[512] pmd[512] pte[512]"],
    ["x86_64-la57", "pgd[512] p4d[512] pud[512] pmd[512] pte[512]"],
    ["arm64-4k-39", "pgd(pud)[512] pmd[512] pte[512]"],
    ["arm64-4k-48", "pgd[512] pud[512] pmd[512] pte[512]"],
    ["arm64-16k-47", "pgd(pud)[2048] pmd[2048] pte[2048]"],
    ["arm64-64k-42", "pgd(pmd)[8192] pte[8192]"],
    ["arm64-64k-52", "pgd(pud)[1024] pmd[8192] pte[8192]"],
    ["ppc64-radix-64k", "pgd[8192] pud[512] pmd[512] pte[32]"],
  ];
  for (const [arch, want] of cases) {
    it(`${arch}: ${want}`, () => {
      const k = { arch: archProfile(arch) } as Kernel;
      assert.equal(
        pageTableLevels(k)
          .map((l) => `${l.display}[${2 ** l.indexBits}]`)
          .join(" "),
        want,
      );
    });
  }
});

describe("devmap entry encodings", () => {
  it("x86_64: pte_mkdevmap sets SPECIAL (9) and DEVMAP (58); pmd_mkdevmap only DEVMAP, with PSE", () => {
    const f = pteFormat(archProfile("x86_64"));
    const prot = f.protection({ read: true, write: true, exec: false, shared: true });
    const pte = splitEntry(f.pteMkdevmap(f.pfnEntry(0x101200, prot)));
    assert.deepEqual(decodeFlags(f, pte.lo, pte.hi), ["present", "write", "user", "accessed", "special", "devmap", "noExec"]);
    assert.equal(f.entryPfn(pte.lo, pte.hi), 0x101200);
    const pmd = splitEntry(f.hugeMkdevmap(f.mkhuge(f.pfnEntry(0x101200, prot))));
    assert.deepEqual(decodeFlags(f, pmd.lo, pmd.hi), ["present", "write", "user", "accessed", "huge", "devmap", "noExec"]);
  });
  it("arm64: DEVMAP is bit 57, SPECIAL bit 56; a PMD block clears the table bit; 52-bit PA keeps PA[51:48] in bits 15:12", () => {
    const f = pteFormat(archProfile("arm64-64k-52"));
    const e = f.pteMkdevmap(f.pfnEntry(2 ** 35 + 5, 0n));
    assert.equal((e >> 57n) & 1n, 1n);
    assert.equal((e >> 56n) & 1n, 1n);
    const s = splitEntry(e);
    assert.equal(f.entryPfn(s.lo, s.hi), 2 ** 35 + 5);
    assert.equal((e >> 12n) & 0xfn, 0x8n, "PA bit 51 is stored in bit 15");
    const blk = f.mkhuge(f.pfnEntry(0x10000, f.protection({ read: true, write: true, exec: false, shared: true })));
    assert.equal(blk & 3n, 1n);
  });
  it("ppc64: DEVMAP is _RPAGE_SW1 (0x800), SPECIAL 0x400, and a huge entry carries _PAGE_PTE", () => {
    const f = pteFormat(archProfile("ppc64-radix-64k"));
    const e = f.hugeMkdevmap(f.pfnEntry(0x1000, 0n));
    assert.equal(e & 0x800n, 0x800n);
    assert.equal(e & 0x400n, 0n);
    assert.equal((e >> 62n) & 1n, 1n);
  });
});

describe("device-dax mmap and faults", () => {
  it("2 MiB align: mmap is 2 MiB aligned, a touch installs a devmap PMD without a page reference", () => {
    const { k, t, addr } = devdax("2M");
    assert.equal(addr % (2 * MiB), 0);
    const r = fault(k, t, addr + 12345, false);
    assert.deepEqual(r, { ret: VM_FAULT_NOPAGE, size: "pmd" });
    const s = t.mm.pgd.lookup(addr)!;
    assert.equal(s.level.name, "pmd");
    assert.equal(t.mm.pgd.fmt.entryPfn(s.table.lo[s.idx]!, s.table.hi[s.idx]!), 0x101200);
    const head = k.memmap.get(0x101200);
    assert.equal(head.refcount, 1);
    assert.equal(head.mapcount, 0);
    assert.notEqual(head.mapping, 0, "dax_set_mapping sets the head's mapping");
  });
  it("a read fault installs a writable, clean PMD: device-dax has no pfn_mkwrite, so no write-notify", () => {
    const { k, t, addr } = devdax("2M");
    fault(k, t, addr, false);
    const s = t.mm.pgd.lookup(addr)!;
    const bits = decodeFlags(t.mm.pgd.fmt, s.table.lo[s.idx]!, s.table.hi[s.idx]!);
    assert.ok(bits.includes("write"));
    assert.ok(!bits.includes("dirty"));
  });
  it("4 KiB align: PTE faults, devmap + special PTEs", () => {
    const { k, t, addr } = devdax("4K");
    assert.deepEqual(fault(k, t, addr + 4096, true), { ret: VM_FAULT_NOPAGE, size: "pte" });
    const s = t.mm.pgd.lookup(addr + 4096)!;
    assert.equal(s.level.name, "pte");
    const bits = decodeFlags(t.mm.pgd.fmt, s.table.lo[s.idx]!, s.table.hi[s.idx]!);
    assert.ok(bits.includes("devmap") && bits.includes("special"));
  });
  it("1 GiB align: the namespace is too small for one 1 GiB page, so -ENXIO; a private mapping is refused with -EINVAL", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    assert.notEqual(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=devdax", "--align=1G"]).rc, 0);
    const { k: k2, t } = devdax("2M");
    const dd = findDevDax(k2, "dax0.0")!;
    assert.equal(runToEnd(doMmap(k2, t, openDevDax(k2, dd), { len: 2 * MiB, read: true, write: true, shared: false, offset: 0 })), -22);
  });
  it("munmap inside a 2 MiB unit is refused by ->may_split (-EINVAL)", () => {
    const { k, t, addr } = devdax("2M");
    assert.equal(runToEnd(doMunmap(k, t, addr + MiB, MiB)), -22);
    assert.equal(runToEnd(doMunmap(k, t, addr, 2 * MiB)), 0);
  });
});

describe("GUP on device-dax", () => {
  it("FOLL_PIN on a compound 2 MiB page: +1 refcount and +1 pincount per subpage; unpin restores both", () => {
    const { k, t, addr } = devdax("2M");
    fault(k, t, addr, true);
    const g = runToEnd(getUserPagesFast(k, t, addr, 512, FOLL_PIN | FOLL_WRITE));
    assert.equal(g.ret, 512);
    assert.equal(g.fast, 512);
    assert.equal(k.memmap.get(0x101200).refcount, 513);
    assert.equal(k.memmap.get(0x101200).pincount, 512);
    runToEnd(unpinUserPages(k, g.pages));
    assert.equal(k.memmap.get(0x101200).refcount, 1);
    assert.equal(k.memmap.get(0x101200).pincount, 0);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
  it("FOLL_PIN on 4 KiB pages adds GUP_PIN_COUNTING_BIAS; FOLL_GET adds 1", () => {
    const { k, t, addr } = devdax("4K");
    fault(k, t, addr, true);
    const p = runToEnd(getUserPagesFast(k, t, addr, 1, FOLL_PIN | FOLL_WRITE));
    assert.equal(k.memmap.get(p.pages[0]!).refcount, 1 + GUP_PIN_COUNTING_BIAS);
    const g = runToEnd(getUserPagesFast(k, t, addr, 1, FOLL_GET));
    assert.equal(k.memmap.get(g.pages[0]!).refcount, 2 + GUP_PIN_COUNTING_BIAS);
  });
  it("the fast path stops at a missing entry and the slow path faults the rest in", () => {
    const { k, t, addr } = devdax("2M");
    fault(k, t, addr, true);
    const g = runToEnd(getUserPagesFast(k, t, addr, 1024, FOLL_PIN | FOLL_WRITE));
    assert.equal(g.ret, 1024);
    assert.equal(g.fast, 512);
  });
  it("FOLL_LONGTERM: the fast path falls back; device-dax allows the slow path", () => {
    const { k, t, addr } = devdax("2M");
    fault(k, t, addr, true);
    const g = runToEnd(getUserPagesFast(k, t, addr, 512, FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE));
    assert.equal(g.ret, 512);
    assert.equal(g.fast, 0);
  });
  it("FOLL_LONGTERM without FOLL_PIN is -EINVAL; past the VMA is -EFAULT", () => {
    const { k, t, addr } = devdax("2M");
    assert.equal(runToEnd(getUserPages(k, t, addr, 1, FOLL_GET | FOLL_LONGTERM)).ret, -22);
    assert.equal(runToEnd(getUserPages(k, t, addr + 64 * MiB, 1, FOLL_GET)).ret, -14);
  });
  it("GUP leaves no pgmap reference behind (only the bulk references remain)", () => {
    const { k, t, addr } = devdax("2M");
    const pgmap = findDevDax(k, "dax0.0")!.pgmap!;
    const before = pgmap.ref.count;
    runToEnd(getUserPagesFast(k, t, addr, 1024, FOLL_PIN | FOLL_WRITE));
    assert.equal(pgmap.ref.count, before);
  });
});

/**
 * A 64 MiB device-dax instance on any machine: a platform device's dynamic dax region over device memory at
 * `start` (as drivers/dax/hmem makes one), probed by device_dax, mapped by a process.
 */
function platformDevDax(preset: string, start: number, align: number): { k: Kernel; t: Task; addr: number } {
  const k = bootKernel(machinePreset(preset));
  assert.equal(modprobe(k, "device_dax"), 0);
  const parent = hmemParent();
  const region = allocDaxRegion(parent, 0, { start, end: start + 64 * MiB - 1 }, 0, align, 0);
  assert.ok(region);
  const dd = runToEnd(devmCreateDevDax(k, { region, id: -1, pgmap: null, size: 64 * MiB }));
  assert.ok(typeof dd !== "number" && dd.alive, `dax device: ${typeof dd === "number" ? dd : "not bound"}`);
  const t = createProcess(k, "app");
  assert.ok(typeof t !== "number");
  const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 16 * MiB, read: true, write: true, shared: true, offset: 0 }));
  assert.ok(addr > 0, `mmap: ${addr}`);
  return { k, t, addr };
}

describe("GUP-fast per arch and entry size", () => {
  const cases: Array<[string, string, number, number]> = [
    ["arm64 4K, PTEs", "arm64-virt-4g", 0x200000000, 4096],
    ["arm64 4K, 2 MiB PMDs", "arm64-virt-4g", 0x200000000, 2 * MiB],
    ["arm64 64K (52-bit PA), PTEs", "arm64-64k-4t", 0x100000000000, 65536],
    ["ppc64 radix 64K, PTEs", "ppc64-powernv-16g", 0x800000000, 65536],
    ["ppc64 radix 64K, 2 MiB PMDs (32-page compound pages)", "ppc64-powernv-16g", 0x800000000, 2 * MiB],
  ];
  for (const [name, preset, start, align] of cases) {
    it(`${name}: every page of 4 MiB by the fast path, refcounts per folio, unpin restores them`, () => {
      const { k, t, addr } = platformDevDax(preset, start, align);
      const ps = k.geo.pageSize;
      for (let a = addr; a < addr + 4 * MiB; a += align) assert.equal(fault(k, t, a, true).ret, VM_FAULT_NOPAGE);
      const nr = (4 * MiB) / ps;
      const g = runToEnd(getUserPagesFast(k, t, addr, nr, FOLL_PIN | FOLL_WRITE));
      assert.equal(g.ret, nr);
      assert.equal(g.fast, nr);
      const base = start / ps;
      assert.deepEqual(
        g.pages,
        Array.from({ length: nr }, (_, i) => base + i),
      );
      const perFolio = align / ps;
      for (let p = base; p < base + nr; p += perFolio) {
        const head = k.memmap.get(p);
        if (perFolio === 1) {
          assert.equal(head.refcount, 1 + GUP_PIN_COUNTING_BIAS, `pfn 0x${p.toString(16)}`);
        } else {
          assert.equal(head.refcount, 1 + perFolio, `pfn 0x${p.toString(16)}`);
          assert.equal(head.pincount, perFolio);
        }
      }
      runToEnd(unpinUserPages(k, g.pages));
      for (let p = base; p < base + nr; p += perFolio) {
        assert.equal(k.memmap.get(p).refcount, 1);
        assert.equal(k.memmap.get(p).pincount, 0);
      }
      assert.deepEqual(k.sanitizer.errors(), []);
    });
  }

  it("a run of PTEs stops where the pfns stop being consecutive, and at an entry that is not writable for FOLL_WRITE", () => {
    const { k, t, addr } = platformDevDax("arm64-virt-4g", 0x200000000, 4096);
    for (let a = addr; a < addr + 16 * 4096; a += 4096) fault(k, t, a, true);
    // Re-point PTE 5 at another device page and make PTE 9 read-only, as a driver's remap or mprotect would.
    const pt = t.mm.pgd;
    const s5 = pt.lookup(addr + 5 * 4096)!;
    const s4 = pt.lookup(addr + 4 * 4096)!;
    pt.set(s5.table, s5.idx, pt.entry(s4));
    const s9 = pt.lookup(addr + 9 * 4096)!;
    pt.set(s9.table, s9.idx, pt.entry(s9) & ~(1n << BigInt(pt.fmt.bits.write!)));
    const g = runToEnd(getUserPagesFast(k, t, addr, 16, FOLL_PIN | FOLL_WRITE | FOLL_FAST_ONLY));
    const base = 0x200000;
    assert.deepEqual(g.pages, [base, base + 1, base + 2, base + 3, base + 4, base + 4, base + 6, base + 7, base + 8]);
    assert.equal(k.memmap.get(base + 4).refcount, 1 + 2 * GUP_PIN_COUNTING_BIAS);
    assert.equal(k.memmap.get(base + 5).refcount, 1);
    runToEnd(unpinUserPages(k, g.pages));
    assert.equal(k.memmap.get(base + 4).refcount, 1);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("unbind with mappings and pins (6.1)", () => {
  it("unbind zaps the mapping (kill_dev_dax); the next touch is SIGBUS", () => {
    const { k, t, addr } = devdax("2M");
    fault(k, t, addr, true);
    const drv = k.devices!.drivers.find((d) => d.name === "device_dax")!;
    assert.equal(unbindStore(k, drv, "dax0.0"), 0);
    const s = t.mm.pgd.lookup(addr)!;
    assert.equal(s.table.lo[s.idx], 0);
    assert.equal(fault(k, t, addr, false).ret, VM_FAULT_SIGBUS);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
  it("a pin held across unbind does not hold teardown up; its unpin is a struct-page use-after-free", () => {
    const { k, t, addr } = devdax("2M");
    const g = runToEnd(getUserPagesFast(k, t, addr, 4, FOLL_PIN | FOLL_WRITE));
    const drv = k.devices!.drivers.find((d) => d.name === "device_dax")!;
    assert.equal(unbindStore(k, drv, "dax0.0"), 0);
    assert.deepEqual(k.sanitizer.errors(), []);
    runToEnd(unpinUserPages(k, g.pages));
    assert.ok(k.sanitizer.errors().some((v) => v.kind === "struct-page-use-after-free" && v.pfn === 0x101200));
  });
});
