/**
 * Scenario commands on a booted kernel: the texts shell tools print for sysfs errors (bash's echo, the
 * oracle guest's busybox cat), kernel-level steps' rc, and a hang reported instead of thrown.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import { errnoName } from "../../src/kernel/errno.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { resolveMachine } from "../../src/machine/spec.ts";
import { BadArguments, builtinCommands, CommandRegistry, defineCommand, type StepOutput } from "../../src/scenario/commands.ts";
import { ERRNO_BY_NAME, errnoLabel, strerror } from "../../src/scenario/errno_text.ts";
import { tokenize } from "../../src/scenario/tokenize.ts";

const registry = builtinCommands();

function run(k: Kernel, text: string): StepOutput {
  const inv = tokenize(text);
  const cmd = registry.get(inv.argv[0]!);
  assert.ok(cmd, `command ${inv.argv[0]}`);
  cmd.check(inv);
  return cmd.run(k, inv, { where: "test" });
}

function check(text: string): void {
  const inv = tokenize(text);
  registry.get(inv.argv[0]!)!.check(inv);
}

const oracle = () => bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
const MEM = "/sys/devices/system/memory";

/** QEMU q35 -m 2G with the oracle's custom HMM kernel (DEVICE_PRIVATE=y). */
function hmmMachine(): Kernel {
  return bootKernel(
    resolveMachine(
      {
        kconfig: "hmm",
        e820: [
          { start: 0, end: 0x9fbff, type: "usable" },
          { start: 0x100000, end: 0x7ffdefff, type: "usable" },
          { start: 0xfd00000000, end: 0xffffffffff, type: "reserved" },
        ],
      },
      "test",
    ),
  );
}

describe("errno texts", () => {
  it("strerror is glibc's wording", () => {
    assert.equal(strerror(-22), "Invalid argument");
    assert.equal(strerror(-16), "Device or resource busy");
    assert.equal(strerror(-6), "No such device or address");
    assert.equal(strerror(-13), "Permission denied");
  });

  it("every expectable errno name maps back to the model's own name", () => {
    for (const [name, value] of ERRNO_BY_NAME) {
      assert.equal(errnoLabel(value), name);
      if (name !== "-EACCES" && name !== "-EISDIR") assert.equal(errnoName(value), name);
    }
    assert.equal(ERRNO_BY_NAME.get("-EBUSY"), -16);
  });
});

describe("echo VALUE > /sys/...", () => {
  it("stores the value: a hot-added block goes online_movable", () => {
    const k = oracle();
    assert.deepEqual(run(k, "add_memory 0 0x200000000 256M"), { stdout: "", rc: 0 });
    assert.deepEqual(run(k, `echo online_movable > ${MEM}/memory64/state`), { stdout: "", rc: 0 });
    assert.equal(run(k, `cat ${MEM}/memory64/valid_zones`).stdout, "Movable\n");
  });

  it("a store's errno: `echo: write error: <strerror>`, exit status 1, the errno kept", () => {
    const k = oracle();
    assert.deepEqual(run(k, `echo online > ${MEM}/memory5/state`), { stdout: "echo: write error: Invalid argument\n", rc: 1, errno: -22 });
  });

  it("open errors as bash reports a failed redirection: missing directory, no such attribute, read-only, a directory", () => {
    const k = oracle();
    assert.deepEqual(run(k, "echo 1 > /sys/devices/nope/x"), { stdout: "/sys/devices/nope/x: No such file or directory\n", rc: 1, errno: -2 });
    // sysfs directories cannot create files: lookup_open returns -EACCES.
    assert.deepEqual(run(k, `echo 1 > ${MEM}/nope`), { stdout: `${MEM}/nope: Permission denied\n`, rc: 1, errno: -13 });
    assert.deepEqual(run(k, `echo 1 > ${MEM}/block_size_bytes`), { stdout: `${MEM}/block_size_bytes: Permission denied\n`, rc: 1, errno: -13 });
    assert.deepEqual(run(k, `echo 1 > ${MEM}`), { stdout: `${MEM}: Is a directory\n`, rc: 1, errno: -21 });
  });

  it("without a redirection echo prints; -n drops the newline", () => {
    const k = oracle();
    assert.deepEqual(run(k, "echo hello  world"), { stdout: "hello world\n", rc: 0 });
    assert.deepEqual(run(k, "echo -n x"), { stdout: "x", rc: 0 });
  });

  it("paths: absolute, under /sys, repeated and trailing slashes folded", () => {
    const k = oracle();
    assert.equal(run(k, `cat /sys//devices/system/memory/memory5//state`).stdout, "online\n");
    assert.throws(() => check("echo 1 > state"), BadArguments);
    assert.throws(() => check("echo 1 > /proc/sys/vm/drop_caches"), /only \/sys is modelled/);
    assert.throws(() => check("cat /sys/devices/../x"), /'\.' and '\.\.'/);
  });
});

describe("cat PATH", () => {
  it("prints the value with a newline; several files in order", () => {
    const k = oracle();
    assert.deepEqual(run(k, `cat ${MEM}/block_size_bytes ${MEM}/memory0/valid_zones`), { stdout: "8000000\nnone\n", rc: 0 });
  });

  it("busybox's texts: can't open a missing file, read error for a show that fails or a directory", () => {
    const k = oracle();
    assert.deepEqual(run(k, `cat ${MEM}/memory99/state`), {
      stdout: `cat: can't open '${MEM}/memory99/state': No such file or directory\n`,
      rc: 1,
      errno: -2,
    });
    assert.deepEqual(run(k, `cat ${MEM}`), { stdout: "cat: read error: Is a directory\n", rc: 1, errno: -21 });
  });

  it("a show that returns -ENXIO reads as the oracle's capture does", () => {
    const k = oracle();
    k.sysfs.register(() => [{ path: "/sys/devices/test", driver: "", attrs: new Map([["resource", { show: () => -6 }]]) }]);
    assert.deepEqual(run(k, "cat /sys/devices/test/resource"), { stdout: "cat: read error: No such device or address\n", rc: 1, errno: -6 });
  });

  it("/proc/iomem is the model's /proc/iomem", () => {
    const out = run(oracle(), "cat /proc/iomem");
    assert.match(out.stdout, /^100000000-13fffffff : Persistent Memory \(legacy\)\n {2}100000000-13fffffff : namespace0\.0\n/m);
  });

  it("refuses stdin, options and redirection", () => {
    assert.throws(() => check("cat"), /steps have no stdin/);
    assert.throws(() => check("cat -A /sys/x"), /unknown option '-A'/);
    assert.throws(() => check("cat /sys/a > /sys/b"), /only for echo/);
  });
});

describe("kernel-level steps", () => {
  it("add_memory / remove_memory return the kernel's errno as rc", () => {
    const k = oracle();
    assert.deepEqual(run(k, "add_memory 0 0x200001000 128M"), { stdout: "", rc: -22, errno: -22 });
    assert.equal(run(k, "add_memory 0 0x200000000 128M").rc, 0);
    assert.deepEqual(run(k, "add_memory 0 0x200000000 128M"), { stdout: "", rc: -17, errno: -17 });
    assert.equal(run(k, `echo online > ${MEM}/memory64/state`).rc, 0);
    assert.deepEqual(run(k, "remove_memory 0x200000000 128M"), { stdout: "", rc: -16, errno: -16 });
  });

  it("checks arguments when loaded: counts, numbers, types, options", () => {
    assert.throws(() => check("add_memory 0 0x200000000"), /expected 3 arguments/);
    assert.throws(() => check("add_memory x 0 1G"), /NID: 'x' is not an integer/);
    assert.throws(() => check("remove_memory 0 lots"), /SIZE: 'lots' is not a size/);
    assert.throws(() => check("memremap d weird 0 1G"), /unknown pgmap type 'weird'/);
    assert.throws(() => check("memremap d fsdax 0 0"), /SIZE: must not be 0/);
    assert.throws(() => check("memremap d fsdax 0 1G --altmap 2"), /RESERVE,FREE/);
    assert.throws(() => check("memremap d fsdax 0 1G --colour red"), /unknown option '--colour'/);
    assert.throws(() => check("memremap d fsdax 0 1G --node"), /--node needs a value/);
    assert.throws(() => check("memremap d fsdax 0 1G --vmemmap-shift 31"), /outside 0\.\.30/);
    assert.throws(() => check("memunmap"), /expected 1 argument/);
    check("memremap d fsdax 0x100000000 1G --altmap=2,4606 --node 0 --vmemmap-shift 9");
  });

  it("memremap / memunmap: a pgmap comes and goes; memunmap of nothing is -ENODEV", () => {
    const k = oracle();
    assert.deepEqual(run(k, "memunmap namespace0.0"), { stdout: "", rc: 0 });
    assert.equal(k.pgmaps.byId.get(1)!.state, "exited");
    assert.deepEqual(run(k, "memremap pfn0.0 fsdax 0x100000000 1G --altmap 2,4606 --node 0"), { stdout: "", rc: 0 });
    const p = k.pgmaps.all().find((x) => x.device === "pfn0.0")!;
    assert.equal(p.state, "live");
    assert.equal(p.altmap?.reserve, 2);
    assert.equal(p.altmap?.free, 4606);
    assert.deepEqual(run(k, "memunmap pfn0.0"), { stdout: "", rc: 0 });
    assert.deepEqual(run(k, "memunmap pfn0.0"), { stdout: "memunmap: pfn0.0: no dev_pagemap to tear down\n", rc: -19, errno: -19 });
  });

  it("a device-private page nobody frees: memunmap hangs, reported with the holder, rc -1", () => {
    const k = hmmMachine();
    assert.equal(run(k, "memremap dmirror0 private 0xfcf0000000 256M").rc, 0);
    assert.equal(run(k, "zone_device_page_init 0xfcf0000").rc, 0);
    const out = run(k, "memunmap dmirror0");
    assert.equal(out.rc, -1);
    assert.equal(out.errno, undefined);
    assert.equal(out.hang?.at, "memunmap_pages: wait_for_completion(&pgmap->done)");
    assert.equal(out.hang?.holder, "pgmap 1 (dmirror0) references held by allocated page 0xfcf0000");
    assert.equal(out.stdout, `hang: waiting in ${out.hang.at} for ${out.hang.holder}\n`);
  });

  it("get_page / put_page print the refcount; freeing a device-private page runs page_free", () => {
    const k = hmmMachine();
    run(k, "memremap dmirror0 private 0xfcf0000000 256M");
    run(k, "zone_device_page_init 0xfcf0000");
    assert.deepEqual(run(k, "get_page 0xfcf0000"), { stdout: "refcount 2\n", rc: 0 });
    assert.deepEqual(run(k, "put_page 0xfcf0000"), { stdout: "refcount 1\n", rc: 0 });
    assert.deepEqual(run(k, "put_page 0xfcf0000"), { stdout: "refcount 0, freed (page_free)\n", rc: 0 });
    assert.deepEqual(run(k, "memunmap dmirror0"), { stdout: "", rc: 0 });
  });
});

describe("CommandRegistry", () => {
  it("registers commands by name and refuses a second registration", () => {
    const r = new CommandRegistry();
    const hello = defineCommand({
      name: "hello",
      usage: "hello NAME",
      summary: "greets",
      parse: (inv) => inv.argv[1] ?? "world",
      run: (_k, name) => ({ stdout: `hello ${name}\n`, rc: 0 }),
    });
    r.register(hello);
    assert.deepEqual(r.names(), ["hello"]);
    assert.throws(() => r.register(hello), /registered twice/);
    assert.deepEqual(r.get("hello")!.run(oracle(), tokenize("hello you"), { where: "t" }), { stdout: "hello you\n", rc: 0 });
  });

  it("the built-ins", () => {
    assert.deepEqual(builtinCommands().names(), ["echo", "cat", "add_memory", "remove_memory", "memremap", "memunmap", "zone_device_page_init", "get_page", "put_page", "ndctl", "daxctl", "process", "mmap", "access", "gup", "unpin", "odirect_read", "munmap", "pagetable", "smaps", "exit", "mkfs.xfs", "mkfs.ext4", "mount", "umount", "xfs_io", "truncate", "rm", "sysctl", "signals", "smaps_pmd_entry", "put_devmap_managed_page", "__put_page", "release_pages", "is_device_private_page", "pci_alloc_p2pmem", "is_pci_p2pdma_page", "pci_free_p2pmem", "anon_page", "migrate_vma_pages", "migrate_to_ram", "move_to_new_page", "uncharge_page", "add_to_kill", "soft_offline_page", "madvise_soft_offline", "memunmap_pages"]);
  });
});
