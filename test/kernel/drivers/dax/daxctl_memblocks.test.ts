/**
 * daxctl's walk over a device's memory blocks (daxctl/lib/libdaxctl.c daxctl_memory_op): it reads
 * /sys/devices/system/node/nodeN in readdir order, which kernfs gives by name hash, takes every block whose
 * start lies inside the device (a boot RAM block sharing its 128 MiB with the device's tail counts too), and stops
 * at the first block an op fails on. Onlining skips the zone scan once it has onlined anything.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../../../src/kernel/boot.ts";
import { daxReconfigureDevice, kernfsNameHash, kernfsReaddirOrder, offlineMemory } from "../../../../src/kernel/drivers/dax/daxctl.ts";
import { createNamespace } from "../../../../src/kernel/drivers/nvdimm/ndctl.ts";
import { EINVAL } from "../../../../src/kernel/errno.ts";
import type { Kernel } from "../../../../src/kernel/kernel.ts";
import { q35Numa4g } from "../../../support/q35.ts";

const MiB = 2 ** 20;

function devdax(k: Kernel): void {
  const r = createNamespace(k, { namespace: "namespace0.0", mode: "devdax", align: 2 * MiB, force: true });
  assert.equal(r.rc, 0, r.stderr.join("\n"));
}

describe("kernfs readdir order", () => {
  it("kernfs_name_hash: partial_name_hash per byte, hash_64(…, 32), 31 bits, never 0, 1 or INT_MAX", () => {
    assert.equal(kernfsNameHash("memory40"), 153606547);
    assert.equal(kernfsNameHash("memory33"), 977622479);
    assert.equal(kernfsNameHash(""), 2, "hash 0 is reserved for '.': bumped to 2");
  });

  it("entries come by hash, not by name", () => {
    const names = Array.from({ length: 8 }, (_, i) => `memory${33 + i}`);
    assert.deepEqual(kernfsReaddirOrder(names), ["memory40", "memory39", "memory37", "memory35", "memory33", "memory38", "memory36", "memory34"]);
  });
});

describe("daxctl on a device whose tail shares a memory block with boot RAM (memmap=1008M!0x106000000)", () => {
  it("system-ram counts the RAM block as already online and succeeds without the zone scan", () => {
    const k = bootKernel(q35Numa4g("1008M!0x106000000"));
    devdax(k);
    const r = daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    assert.equal(r.rc, 0, r.stderr.join("\n"));
    assert.ok(r.stderr.includes("dax0.0: 1 memory section already online"), r.stderr.join("\n"));
    assert.ok(!r.stderr.some((l) => l.startsWith("libdaxctl: daxctl_memory_online_with_zone")), "no zone scan after onlining");
    assert.deepEqual(
      r.out?.map((d) => ({ online: d.onlineMemblocks, total: d.totalMemblocks, movable: d.movable })),
      [{ online: 8, total: 8, movable: false }],
      "7 kmem blocks Movable + memory40 Normal: zones inconsistent",
    );
  });

  it("offline-memory fails on memory40, which readdir returns first: no block is offlined", () => {
    const k = bootKernel(q35Numa4g("1008M!0x106000000"));
    devdax(k);
    daxReconfigureDevice(k, { device: "dax0.0", mode: "system-ram" });
    const r = offlineMemory(k, { device: "dax0.0" });
    assert.equal(r.rc, -EINVAL);
    assert.deepEqual(r.stderr, [
      "libdaxctl: offline_one_memblock: dax0.0: Failed to offline /sys/devices/system/node/node0/memory40/state: Invalid argument",
      "dax0.0: failed to offline memory: Invalid argument",
      "error offlining memory: Invalid argument",
      "offlined memory for 0 devices",
    ]);
    for (let b = 33; b <= 40; b++) assert.equal(k.memoryBlocks.get(b)?.state, "online", `memory${b}`);
  });
});
