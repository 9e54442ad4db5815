/** A bare platform device (hmem.0) to hang a device-dax region on in tests that need no real bus. */
import type { Device } from "../../src/kernel/drivers/nvdimm/device_core.ts";

export function hmemParent(): Device & { daxRegion: null } {
  return {
    kind: "platform",
    name: "hmem.0",
    bus: null,
    parent: null,
    path: "/sys/devices/platform/hmem.0",
    driver: null,
    registered: true,
    numaNode: 0,
    devres: [],
    attrs: () => new Map(),
    daxRegion: null,
  };
}
