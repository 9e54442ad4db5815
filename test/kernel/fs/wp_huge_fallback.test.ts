/**
 * __handle_mm_fault's write to a read-only huge entry (mm/memory.c wp_huge_pmd / wp_huge_pud, 6.1): it goes
 * back to ->huge_fault; VM_FAULT_FALLBACK there splits the entry — for a DAX VMA, __split_huge_pmd/pud just
 * clears it — and the fault continues a level down, ending in the PTE fault. Shown with a driver whose
 * ->huge_fault never upgrades a read-only entry, and with ext4/XFS after pmem unbind or an XFS shutdown, where
 * fs/dax.c's PMD fault falls back because dax_direct_access or the iomap fails.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeFlags } from "../../../src/arch/pte.ts";
import { bootKernel } from "../../../src/kernel/boot.ts";
import { unbindStore } from "../../../src/kernel/drivers/nvdimm/device_core.ts";
import { createFile, type DaxFsKind, type MountOptions, mountDaxFs, openFile } from "../../../src/kernel/fs/dax_fs.ts";
import type { Kernel } from "../../../src/kernel/kernel.ts";
import { vmfInsertPfnHuge } from "../../../src/kernel/mm/huge_memory.ts";
import { handleMmFault, PFN_DEV, PFN_MAP, vmfInsertMixed } from "../../../src/kernel/mm/memory.ts";
import {
  type MappedFile,
  type PageEntrySize,
  type Task,
  VM_FAULT_FALLBACK,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGBUS,
  type VmFault,
  vmaLookup,
} from "../../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap, newAddressSpace } from "../../../src/kernel/mm/mmap.ts";
import { type KernelPath, runToEnd, step } from "../../../src/kernel/path.ts";
import { machinePreset } from "../../../src/machine/presets.ts";
import { runNdctl } from "../../../src/tools/ndctl_cli.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const PAGE = 4096;

function boot(): Kernel {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  assert.equal(runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=fsdax", "--map=dev"]).rc, 0);
  return k;
}

function proc(k: Kernel): Task {
  const t = createProcess(k, "app");
  assert.ok(typeof t !== "number");
  return t;
}

function fault(k: Kernel, t: Task, addr: number, write: boolean) {
  return runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, write));
}

/** The entry mapping addr: level, decoded flags, pfn; null when none. */
function mapped(t: Task, addr: number): { level: string; flags: string[]; pfn: number } | null {
  const pt = t.mm.pgd;
  const s = pt.lookup(addr);
  if (!s || (s.table.lo[s.idx] === 0 && s.table.hi[s.idx] === 0)) return null;
  const lo = s.table.lo[s.idx]!;
  const hi = s.table.hi[s.idx]!;
  return { level: s.level.name, flags: decodeFlags(pt.fmt, lo, hi), pfn: pt.fmt.entryPfn(lo, hi) };
}

/**
 * A DAX-like character device whose ->huge_fault maps read faults with a read-only huge entry and answers
 * every write with VM_FAULT_FALLBACK (as a driver that cannot upgrade the entry); ->fault maps PTEs.
 */
function fallbackDevice(k: Kernel, basePfn: number, calls: string[]): MappedFile {
  const mapping = newAddressSpace(k, "/dev/test", { charDev: true, dax: true });
  const pfnAt = (vmf: VmFault) => basePfn + vmf.pgoff;
  return {
    path: "/dev/test",
    mapping,
    size: () => 2 * GiB,
    unmappedAreaAlign: () => GiB,
    mmap(vma) {
      vma.ops = {
        name: "test_vm_ops",
        // Write-notify: shared writable mappings start read-only (vma_wants_writenotify).
        pfnMkwrite: true,
        *hugeFault(vmf: VmFault, size: PageEntrySize): KernelPath<number> {
          calls.push(`huge_fault ${size} ${vmf.write ? "write" : "read"}`);
          yield step("test: huge_fault");
          if (vmf.write || size === "pte") return VM_FAULT_FALLBACK;
          const shift = size === "pud" ? 30 : 21;
          const start = vmf.address - (vmf.address % 2 ** shift);
          if (start < vmf.vma.start || start + 2 ** shift > vmf.vma.end) return VM_FAULT_FALLBACK;
          const pgoff = vmf.pgoff - (vmf.pgoff % 2 ** (shift - 12));
          return yield* vmfInsertPfnHuge(k, vmf, size, { pfn: basePfn + pgoff, flags: PFN_DEV | PFN_MAP }, false);
        },
        *fault(vmf: VmFault): KernelPath<number> {
          calls.push(`fault ${vmf.write ? "write" : "read"}`);
          return yield* vmfInsertMixed(k, vmf.vma, vmf.address, { pfn: pfnAt(vmf), flags: PFN_DEV | PFN_MAP }, vmf.write);
        },
      };
      return 0;
    },
  };
}

describe("wp_huge_pmd / wp_huge_pud falling back", () => {
  it("a write to a read-only PUD whose ->huge_fault falls back: the PUD is cleared, the PMD fault falls back too, the PTE fault maps the page", () => {
    const k = boot();
    const t = proc(k);
    const calls: string[] = [];
    const f = fallbackDevice(k, 0x100000, calls);
    const addr = runToEnd(doMmap(k, t, f, { len: 2 * GiB, read: true, write: true, shared: true, offset: 0 }));
    const at = addr + 2 * MiB + 5 * PAGE;
    assert.deepEqual(fault(k, t, at, false), { ret: VM_FAULT_NOPAGE, size: "pud" });
    assert.equal(mapped(t, at)?.level, "pud");
    calls.length = 0;
    const w = fault(k, t, at, true);
    assert.deepEqual(w, { ret: VM_FAULT_NOPAGE, size: "pte" });
    // PUD: write → fallback → split; PMD: none → create_huge_pmd (write) → fallback; then the PTE fault.
    assert.deepEqual(calls, ["huge_fault pud write", "huge_fault pmd write", "fault write"]);
    const m = mapped(t, at);
    assert.equal(m?.level, "pte");
    assert.equal(m.pfn, 0x100000 + (2 * MiB + 5 * PAGE) / PAGE);
    assert.ok(m.flags.includes("write") && m.flags.includes("devmap"));
    assert.equal(mapped(t, addr), null, "the rest of the PUD's range is unmapped, not split into PMDs");
  });

  it("PMD level: read fault → read-only PMD; the write splits it and only the written page is mapped again", () => {
    const k = boot();
    const t = proc(k);
    const calls: string[] = [];
    const f = fallbackDevice(k, 0x100000, calls);
    // 4 MiB: too small for a PUD, PMD-aligned by get_unmapped_area's 1 GiB wish.
    const addr = runToEnd(doMmap(k, t, f, { len: 4 * MiB, read: true, write: true, shared: true, offset: 0 }));
    assert.deepEqual(fault(k, t, addr + PAGE, false), { ret: VM_FAULT_NOPAGE, size: "pmd" });
    const ro = mapped(t, addr);
    assert.equal(ro?.level, "pmd");
    assert.ok(!ro.flags.includes("write"));
    calls.length = 0;
    assert.deepEqual(fault(k, t, addr + PAGE, true), { ret: VM_FAULT_NOPAGE, size: "pte" });
    assert.deepEqual(calls, ["huge_fault pmd write", "fault write"]);
    assert.equal(mapped(t, addr + PAGE)?.level, "pte");
    assert.equal(mapped(t, addr), null);
  });
});

describe("DAX files whose PMD fault falls back on a write", () => {
  function setup(kind: DaxFsKind, opts: MountOptions = {}) {
    const k = boot();
    const fs = runToEnd(mountDaxFs(k, kind, "pmem0", "/mnt/pmem", opts));
    assert.ok(typeof fs !== "number");
    assert.ok(typeof createFile(k, fs, "data", 8 * MiB) !== "number");
    const f = openFile(k, fs, "data");
    assert.ok(typeof f !== "number");
    const t = proc(k);
    const addr = runToEnd(doMmap(k, t, f, { len: 8 * MiB, read: true, write: true, shared: true, offset: 0 }));
    return { k, fs, t, addr };
  }

  function unbind(k: Kernel): void {
    const drv = k.devices?.drivers.find((d) => d.name === "nd_pmem");
    assert.ok(drv);
    assert.equal(unbindStore(k, drv, "pfn0.0"), 0);
  }

  for (const kind of ["ext4", "xfs"] as const) {
    it(`${kind} after unbind: a write to a read-only PMD zaps it (dax_direct_access -ENXIO → fallback) and the PTE fault is SIGBUS`, () => {
      const { k, t, addr } = setup(kind);
      assert.deepEqual(fault(k, t, addr, false), { ret: VM_FAULT_NOPAGE, size: "pmd" });
      unbind(k);
      assert.equal(mapped(t, addr)?.level, "pmd", "unbind left the PMD");
      assert.deepEqual(fault(k, t, addr + PAGE, false), { ret: 0, size: "pmd" }, "a read through it needs no fault work");
      assert.deepEqual(fault(k, t, addr + PAGE, true), { ret: VM_FAULT_SIGBUS, size: "pte" });
      assert.equal(mapped(t, addr), null);
    });
  }

  it("XFS shut down (rmapbt, unbind): the iomap's -EIO makes the PMD fault fall back the same way", () => {
    const { k, fs, t, addr } = setup("xfs", { rmapbt: true });
    fault(k, t, addr + 2 * MiB, false);
    unbind(k);
    assert.ok(fs.shutdown);
    assert.deepEqual(fault(k, t, addr + 2 * MiB, true), { ret: VM_FAULT_SIGBUS, size: "pte" });
    assert.equal(mapped(t, addr + 2 * MiB), null);
  });

  it("a live filesystem upgrades the read-only PMD in ->huge_fault: nothing falls back, the PMD stays", () => {
    const { k, t, addr } = setup("ext4");
    fault(k, t, addr, false);
    assert.deepEqual(fault(k, t, addr, true), { ret: VM_FAULT_NOPAGE, size: "pmd" });
    const m = mapped(t, addr);
    assert.equal(m?.level, "pmd");
    assert.ok(m.flags.includes("write"));
  });
});
