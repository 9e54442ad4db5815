/**
 * Rewinding a kernel in place. The explorer starts every schedule from the same state — the kernel with the
 * scenario's setup done — and re-building it (boot + setup) was most of an exploration's time. A kernel cannot
 * be copied wholesale: its objects hold closures over one another (a pgmap's release callback, devres actions,
 * sysfs attributes). So instead of a copy, a snapshot remembers, for every object reachable from the kernel,
 * what it held — own properties, array elements, map and set entries, typed-array contents, and its entries in
 * the side tables (src/kernel/lib/rewind.ts) — and restore() puts all of it back into the same objects. An
 * object with a `[REWIND]` method saves and restores itself (a memmap section, only when written since).
 * Closures keep pointing at the objects they always did, which now hold the snapshot's state again. Objects
 * made after the snapshot become unreachable.
 *
 * What a snapshot cannot see: variables captured by closures and nothing else (the model keeps its state in
 * objects; test/sched/snapshot.test.ts checks that explorations with restore and with fresh re-builds agree
 * on every scenario), and a kernel path still running (a generator cannot be rewound: taking a snapshot then
 * is an error).
 */
import { isRewindable, REWIND, type SideTable, sideTables } from "../kernel/lib/rewind.ts";

type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** What one object held, by the kind of object. */
type Saved =
  | {
      readonly kind: "object";
      readonly o: Record<PropertyKey, unknown>;
      readonly keys: readonly PropertyKey[];
      readonly values: readonly unknown[];
      /** How many of keys a for-in loop lists (own and inherited enumerable string keys). */
      readonly enumerable: number;
    }
  | { readonly kind: "array"; readonly o: unknown[]; readonly values: readonly unknown[] }
  | { readonly kind: "map"; readonly o: Map<unknown, unknown>; readonly entries: readonly (readonly [unknown, unknown])[] }
  | { readonly kind: "set"; readonly o: Set<unknown>; readonly values: readonly unknown[] }
  | { readonly kind: "typed"; readonly o: TypedArray; readonly copy: TypedArray }
  | { readonly kind: "own"; readonly restore: () => void };

const GENERATOR = "[object Generator]";
/** An array index with no element (a sparse array's hole). */
const HOLE: unique symbol = Symbol("hole");

function isTyped(v: object): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

export class Snapshot {
  private readonly saved: Saved[] = [];
  /** Every object met (not typed arrays): the side tables' possible keys. */
  private readonly objects: object[] = [];
  /** Per side table, the entries it had for objects met, and its stamp when it last held just those. */
  private readonly tables: { readonly table: SideTable<object, unknown>; readonly entries: Map<object, unknown>; stamp: number }[];

  constructor(root: object) {
    this.tables = sideTables().map((table) => ({ table, entries: new Map<object, unknown>(), stamp: table.stamp }));
    const seen = new Set<object>();
    const stack: unknown[] = [root];
    const visit = (v: unknown): void => {
      if (v !== null && typeof v === "object" && !seen.has(v)) stack.push(v);
    };
    while (stack.length > 0) {
      const o = stack.pop() as object;
      if (seen.has(o)) continue;
      seen.add(o);
      if (isTyped(o)) {
        this.saved.push({ kind: "typed", o, copy: o.slice() });
        continue;
      }
      this.objects.push(o);
      for (const { table, entries } of this.tables) {
        if (!table.has(o)) continue;
        const value = table.get(o);
        entries.set(o, value);
        visit(value);
      }
      if (isRewindable(o)) {
        // It saves itself (and what it holds).
        this.saved.push({ kind: "own", restore: o[REWIND]() });
        continue;
      }
      if (o instanceof Map) {
        const entries = [...o];
        this.saved.push({ kind: "map", o, entries });
        for (const [key, value] of entries) {
          visit(key);
          visit(value);
        }
      } else if (o instanceof Set) {
        const values = [...o];
        this.saved.push({ kind: "set", o, values });
        for (const value of values) visit(value);
      } else if (Array.isArray(o)) {
        // Holes stay holes (forEach and `in` skip them; an undefined element is not one).
        const arr = o as unknown[];
        const values: unknown[] = new Array(arr.length);
        for (let i = 0; i < arr.length; i++) {
          if (!(i in arr)) {
            values[i] = HOLE;
            continue;
          }
          values[i] = arr[i];
          visit(arr[i]);
        }
        if (!Object.isFrozen(o)) this.saved.push({ kind: "array", o: arr, values });
      } else {
        const tag = Object.prototype.toString.call(o);
        if (tag === GENERATOR) throw new Error("snapshot: a kernel path is still running (a generator cannot be rewound)");
        if (o instanceof WeakMap || o instanceof WeakSet || o instanceof WeakRef || o instanceof Promise) {
          throw new Error(`snapshot: a ${o.constructor.name} in the kernel cannot be saved (use a side table or a Map)`);
        }
        const rec = o as Record<PropertyKey, unknown>;
        const keys: PropertyKey[] = [];
        const values: unknown[] = [];
        for (const key of Reflect.ownKeys(o)) {
          const d = Object.getOwnPropertyDescriptor(o, key);
          if (!d || !("value" in d)) continue;
          keys.push(key);
          values.push(d.value);
          visit(d.value);
        }
        let enumerable = 0;
        for (const _ in o) enumerable++;
        if (!Object.isFrozen(o)) this.saved.push({ kind: "object", o: rec, keys, values, enumerable });
      }
    }
  }

  /** Put every object back as it was when the snapshot was taken. */
  restore(): void {
    for (const s of this.saved) {
      switch (s.kind) {
        case "object": {
          const { o, keys, values, enumerable } = s;
          for (let i = 0; i < keys.length; i++) o[keys[i]!] = values[i];
          // Properties added since (a field a path set later), removed so the object reads as it did; counted
          // with for-in, which does not allocate.
          let n = 0;
          for (const _ in o) n++;
          if (n !== enumerable) for (const key of Reflect.ownKeys(o)) if (!keys.includes(key)) delete o[key];
          break;
        }
        case "array": {
          const { o, values } = s;
          o.length = values.length;
          for (let i = 0; i < values.length; i++) {
            const v = values[i];
            if (v !== HOLE) o[i] = v;
            else if (i in o) delete o[i];
          }
          break;
        }
        case "map": {
          const { o, entries } = s;
          o.clear();
          for (const [key, value] of entries) o.set(key, value);
          break;
        }
        case "set": {
          const { o, values } = s;
          o.clear();
          for (const value of values) o.add(value);
          break;
        }
        case "typed":
          (s.o as Uint8Array).set(s.copy as Uint8Array);
          break;
        case "own":
          s.restore();
          break;
      }
    }
    for (const t of this.tables) {
      // Not set or deleted since it was saved (or last restored): it holds the saved entries already.
      if (t.table.stamp === t.stamp) continue;
      for (const o of this.objects) {
        if (t.entries.has(o)) t.table.set(o, t.entries.get(o));
        else if (t.table.has(o)) t.table.delete(o);
      }
      t.stamp = t.table.stamp;
    }
  }
}
