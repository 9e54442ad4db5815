/**
 * A kernel's reachable state as text, to compare two kernels (a rewound one and a freshly built one): every
 * object from the root, in a fixed order, named by when it was first met; own data properties, array
 * elements, map and set entries in order, typed arrays by content, functions by name, and each object's
 * side-table entries (src/kernel/lib/rewind.ts). Stamps and rewind bookkeeping are left out: they name
 * states, they are not state.
 */
import { createHash } from "node:crypto";
import { sideTables } from "../../src/kernel/lib/rewind.ts";

const BOOKKEEPING = new Set(["stamp", "stateStamp", "syncedBy", "dirtyLo", "dirtyHi", "spareSections"]);

export function kernelGraph(root: object): string {
  const ids = new Map<object, number>();
  const lines: string[] = [];
  const queue: object[] = [];
  const tables = sideTables();
  const ref = (v: unknown): string => {
    if (v === null || v === undefined) return String(v);
    if (typeof v === "function") return `fn ${v.name || "anonymous"}`;
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v !== "object") return JSON.stringify(v) ?? String(v);
    let id = ids.get(v);
    if (id === undefined) {
      id = ids.size;
      ids.set(v, id);
      queue.push(v);
    }
    return `#${id}`;
  };
  ref(root);
  for (let i = 0; i < queue.length; i++) {
    const o = queue[i]!;
    const parts: string[] = [];
    if (ArrayBuffer.isView(o)) {
      const bytes = new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
      parts.push(`${o.constructor.name}(${o.byteLength}) ${createHash("sha1").update(bytes).digest("hex")}`);
    } else if (o instanceof Map) {
      for (const [key, value] of o) parts.push(`${ref(key)} => ${ref(value)}`);
    } else if (o instanceof Set) {
      for (const value of o) parts.push(ref(value));
    } else {
      for (const key of Reflect.ownKeys(o)) {
        if (typeof key === "string" && BOOKKEEPING.has(key)) continue;
        const d = Object.getOwnPropertyDescriptor(o, key)!;
        parts.push(`${String(key)}: ${"value" in d ? ref(d.value) : "accessor"}`);
      }
    }
    tables.forEach((t, n) => {
      if (t.has(o)) parts.push(`side table ${n}: ${ref(t.get(o))}`);
    });
    lines.push(`#${i} ${o.constructor?.name ?? "null"} { ${parts.join(", ")} }`);
  }
  return lines.join("\n");
}
