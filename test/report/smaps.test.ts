/**
 * The `smaps` report (src/report/pagetable.ts renderSmaps over src/kernel/fs/proc/task_mmu.ts smapGatherStats)
 * against what 6.1's fs/proc/task_mmu.c counts for device memory, entry kind by entry kind:
 * - devmap PMD → smaps_pmd_entry: follow_trans_huge_pmd() returns the page, smaps_account(compound = true) counts
 *   compound_nr(page) pages: 512 for device-dax's compound 2 MiB page, 1 for an fsdax PMD (pmem's pages are not
 *   compound);
 * - devmap/special PTE → smaps_pte_entry: vm_normal_page() is NULL, nothing counted;
 * - devmap PUD → walk_pud_range's split_huge_pud() clears it, nothing counted.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import { allocDaxRegion, devmCreateDevDax } from "../../src/kernel/drivers/dax/bus.ts";
import { openDevDax } from "../../src/kernel/drivers/dax/device.ts";
import { modprobe } from "../../src/kernel/drivers/nvdimm/e820_pmem.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import { handleMmFault } from "../../src/kernel/mm/memory.ts";
import { VM_MIXEDMAP, vmaLookup } from "../../src/kernel/mm/mm_types.ts";
import { createProcess, doMmap } from "../../src/kernel/mm/mmap.ts";
import { runToEnd } from "../../src/kernel/path.ts";
import { VARIANTS } from "../../src/kernel/variant.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { renderSmaps } from "../../src/report/pagetable.ts";
import { builtinCommands } from "../../src/scenario/commands.ts";
import { tokenize } from "../../src/scenario/tokenize.ts";
import { loadCapture, oracleMachineOf } from "../support/capture.ts";
import { hmemParent } from "../support/platform.ts";

const MiB = 2 ** 20;
const registry = builtinCommands();

/** One scenario step, as a user types it; asserts it succeeded. */
function sh(k: Kernel, text: string): string {
  const inv = tokenize(text);
  const cmd = registry.get(inv.argv[0]!);
  assert.ok(cmd, inv.argv[0]);
  cmd.check(inv);
  const out = cmd.run(k, inv, { where: "test" });
  assert.equal(out.rc, 0, `${text}: ${out.stdout}`);
  return out.stdout;
}

type Smaps = Map<string, Map<string, string>>;

/** `smaps app`, parsed: the mapped path (or the range) → field → value ("2048 kB", "0", "rd wr …"). */
function smaps(k: Kernel): Smaps {
  const out: Smaps = new Map();
  let cur: Map<string, string> | null = null;
  for (const line of sh(k, "smaps app").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ [-r][-w][-x][sp] [0-9a-f]{8} [0-9a-f]{2}:[0-9a-f]{2} \d+ +(\S+)$/.exec(line);
    if (head) {
      cur = new Map();
      out.set(head[1]!, cur);
      continue;
    }
    const m = /^(\w+):\s+(.*?)\s*$/.exec(line);
    if (m && cur) cur.set(m[1]!, m[2]!);
  }
  return out;
}

/** Every byte counter of one VMA's smaps that is not 0 kB (Size and the page sizes left out). */
function nonZero(v: Map<string, string> | undefined): Record<string, string> {
  assert.ok(v, "the VMA is in smaps");
  const r: Record<string, string> = {};
  for (const [f, val] of v) if (val.endsWith(" kB") && val !== "0 kB" && !["Size", "KernelPageSize", "MMUPageSize"].includes(f)) r[f] = val;
  return r;
}

/** Every field 6.1's show_smap prints (but ProtectionKey), in its order. */
const FIELDS = [
  "Size",
  "KernelPageSize",
  "MMUPageSize",
  "Rss",
  "Pss",
  "Pss_Dirty",
  "Shared_Clean",
  "Shared_Dirty",
  "Private_Clean",
  "Private_Dirty",
  "Referenced",
  "Anonymous",
  "LazyFree",
  "AnonHugePages",
  "ShmemPmdMapped",
  "FilePmdMapped",
  "Shared_Hugetlb",
  "Private_Hugetlb",
  "Swap",
  "SwapPss",
  "Locked",
  "THPeligible",
  "VmFlags",
];

function devdax(align: "4K" | "2M"): Kernel {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  sh(k, `ndctl create-namespace -f -e namespace0.0 --mode=devdax --align=${align}`);
  sh(k, "process app");
  sh(k, "mmap app /dev/dax0.0 4M --as buf");
  return k;
}

function fsdax(): Kernel {
  const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
  for (const s of [
    "ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev",
    "mkfs.xfs -q /dev/pmem0",
    "mount -o dax /dev/pmem0 /mnt/pmem",
    "xfs_io -f -c 'pwrite -q 0 2M' /mnt/pmem/data",
    "xfs_io -f -c 'pwrite -q 0 8K' /mnt/pmem/small",
    "process app",
  ]) {
    sh(k, s);
  }
  return k;
}

describe("smaps: the format", () => {
  it("prints 6.1's show_smap fields in order, the path padded to column 73, kB right-aligned in 8", () => {
    const k = devdax("2M");
    const text = sh(k, "smaps app");
    const lines = text.split("\n").slice(0, -1);
    assert.equal(lines[0], `7ffff7a00000-7ffff7e00000 rw-s 00000000 00:00 0${" ".repeat(26)}/dev/dax0.0`);
    assert.equal(lines[0]!.indexOf("/dev/dax0.0"), 73);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(":")[0]),
      FIELDS,
    );
    assert.equal(lines[1], "Size:               4096 kB");
    assert.equal(lines[18], "Private_Hugetlb:       0 kB");
    assert.equal(lines[22], "THPeligible:    0");
    assert.equal(lines[23], "VmFlags: rd wr sh mr mw me ms hg ");
  });
});

describe("smaps: device-dax", () => {
  it("2 MiB align, one PMD write-faulted: the compound page counts whole — Rss/Pss/Private_Dirty/Referenced 2048 kB", () => {
    const k = devdax("2M");
    sh(k, "access app buf --write");
    const v = smaps(k).get("/dev/dax0.0");
    assert.equal(v?.get("KernelPageSize"), "2048 kB");
    assert.deepEqual(nonZero(v), { Rss: "2048 kB", Pss: "2048 kB", Pss_Dirty: "2048 kB", Private_Dirty: "2048 kB", Referenced: "2048 kB" });
    // No THP counter for a ZONE_DEVICE page (smaps_pmd_entry: is_zone_device_page → pass).
    assert.equal(v?.get("FilePmdMapped"), "0 kB");
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("2 MiB align, the second PMD read-faulted: clean (insert_pfn_pmd sets dirty only on a write); x86's vm_page_prot has _PAGE_ACCESSED, so both are Referenced", () => {
    const k = devdax("2M");
    sh(k, "access app buf --write");
    sh(k, "access app buf+2M");
    assert.deepEqual(nonZero(smaps(k).get("/dev/dax0.0")), {
      Rss: "4096 kB",
      Pss: "4096 kB",
      Pss_Dirty: "2048 kB",
      Private_Clean: "2048 kB",
      Private_Dirty: "2048 kB",
      Referenced: "4096 kB",
    });
  });

  it("2 MiB align, pinned: page_count != 1 takes the per-subpage branch; mapcount 0 keeps all 512 subpages private", () => {
    const k = devdax("2M");
    sh(k, "access app buf --write");
    sh(k, "gup app buf 512 --pin --write --as pins");
    assert.equal(k.memmap.get(0x101200).refcount, 513);
    assert.equal(k.memmap.get(0x101200).mapcount, 0, "vmf_insert_pfn_pmd takes no rmap");
    assert.deepEqual(nonZero(smaps(k).get("/dev/dax0.0")), { Rss: "2048 kB", Pss: "2048 kB", Pss_Dirty: "2048 kB", Private_Dirty: "2048 kB", Referenced: "2048 kB" });
    sh(k, "unpin pins");
  });

  it("4 KiB align: devmap PTEs — vm_normal_page() is NULL, Rss 0", () => {
    const k = devdax("4K");
    sh(k, "access app buf --write");
    sh(k, "access app buf+4K");
    assert.match(sh(k, "pagetable app"), / pte ×2 .*SPECIAL DEVMAP/);
    const v = smaps(k).get("/dev/dax0.0");
    assert.equal(v?.get("KernelPageSize"), "4 kB");
    assert.equal(v?.get("Rss"), "0 kB");
    assert.deepEqual(nonZero(v), {});
  });

  it("1 GiB align: walk_pud_range's split_huge_pud() clears the devmap PUD — Rss 0, and the entry is gone", () => {
    const name = "e820numa-big-devdax-1g";
    const k = bootKernel(oracleMachineOf(name, loadCapture(name)));
    sh(k, "ndctl create-namespace -f -e namespace0.0 --mode=devdax --align=1G");
    sh(k, "process app");
    sh(k, "mmap app /dev/dax0.0 1G --as buf");
    assert.match(sh(k, "access app buf --write"), /: pud VM_FAULT_NOPAGE/);
    const v = smaps(k).get("/dev/dax0.0");
    assert.equal(v?.get("KernelPageSize"), "1048576 kB");
    assert.deepEqual(nonZero(v), {});
    assert.match(sh(k, "pagetable app"), /\(no entries\)/);
    // The next access faults it back in.
    assert.match(sh(k, "access app buf"), /: pud VM_FAULT_NOPAGE/);
    assert.deepEqual(k.sanitizer.errors(), []);
  });
});

describe("smaps: fsdax", () => {
  it("a PMD over pmem's non-compound pages: compound_nr() is 1, so the 2 MiB PMD is 4 kB of Rss", () => {
    const k = fsdax();
    sh(k, "mmap app /mnt/pmem/data 2M --as buf");
    assert.match(sh(k, "access app buf --write"), /: pmd VM_FAULT_NOPAGE/);
    const v = smaps(k).get("/mnt/pmem/data");
    assert.equal(v?.get("KernelPageSize"), "4 kB");
    assert.deepEqual(nonZero(v), { Rss: "4 kB", Pss: "4 kB", Pss_Dirty: "4 kB", Private_Dirty: "4 kB", Referenced: "4 kB" });
    assert.equal(v?.get("FilePmdMapped"), "0 kB", "a ZONE_DEVICE page is not a file THP");
    assert.deepEqual(k.sanitizer.errors(), []);
  });

  it("PTEs (an 8 KiB file): devmap PTEs, Rss 0", () => {
    const k = fsdax();
    sh(k, "mmap app /mnt/pmem/small 8K --as s");
    assert.match(sh(k, "access app s"), /: pte VM_FAULT_NOPAGE/);
    assert.match(sh(k, "access app s+4K --write"), /: pte VM_FAULT_NOPAGE/);
    assert.deepEqual(nonZero(smaps(k).get("/mnt/pmem/small")), {});
  });

  it("after pmem unbind the PMD outlives the memmap: smaps reads the freed struct page (try_grab_page refuses it)", () => {
    const k = fsdax();
    sh(k, "mmap app /mnt/pmem/data 2M --as buf");
    sh(k, "access app buf --write");
    sh(k, "echo pfn0.0 > /sys/bus/nd/drivers/nd_pmem/unbind");
    const from = k.sanitizer.violations.length;
    assert.deepEqual(nonZero(smaps(k).get("/mnt/pmem/data")), {});
    const kinds = new Set(k.sanitizer.violations.slice(from).map((v) => v.kind));
    assert.ok(kinds.has("struct-page-use-after-free"), [...kinds].join(", "));
  });
});

describe("smaps: arm64 without pte_devmap (seed 000)", () => {
  it("a device-dax block PMD is pmd_trans_huge: counted as on 6.1, 2048 kB", () => {
    const k = bootKernel(machinePreset("arm64-virt-4g"), VARIANTS["arm64-no-pte-devmap"]!);
    assert.equal(modprobe(k, "device_dax"), 0);
    const parent = hmemParent();
    const start = 0x200000000;
    const region = allocDaxRegion(parent, 0, { start, end: start + 64 * MiB - 1 }, 0, 2 * MiB, 0);
    assert.ok(region);
    const dd = runToEnd(devmCreateDevDax(k, { region, id: -1, pgmap: null, size: 64 * MiB }));
    assert.ok(typeof dd !== "number");
    const t = createProcess(k, "app");
    assert.ok(typeof t !== "number");
    const addr = runToEnd(doMmap(k, t, openDevDax(k, dd), { len: 4 * MiB, read: true, write: true, shared: true, offset: 0 }));
    assert.ok(addr > 0);
    // VM_MIXEDMAP as dax_mmap set it before 4.15 (test/kernel/mm/gup_nodevmap.test.ts).
    vmaLookup(t.mm, addr)!.flags |= VM_MIXEDMAP;
    assert.equal(runToEnd(handleMmFault(k, vmaLookup(t.mm, addr), addr, true)).size, "pmd");
    const text = renderSmaps(k, t.mm);
    assert.match(text, /\nRss: +2048 kB\n/);
    assert.match(text, /\nPrivate_Dirty: +2048 kB\n/);
  });
});
