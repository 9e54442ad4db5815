/**
 * What the explorer's snapshot (src/sched/snapshot.ts) needs from the kernel's objects to rewind them in place.
 *
 * - Side tables: state a module keeps per kernel object (per kernel, per mm, per pgmap…) in a WeakMap rather
 *   than as a field. A WeakMap cannot be walked, so every one is registered here and the snapshot looks each
 *   object of the kernel up in each table. Create them with sideTable(), never with `new WeakMap`.
 * - REWIND: an object that knows a cheaper way to save and restore itself than a copy of everything it holds
 *   (a memmap section's typed arrays, copied back only when written since) implements `[REWIND]()`.
 */

let clock = 0;

/**
 * A stamp for an object's new state. Stamps only grow, never rewind, so a stamp names one state of one
 * object: a rewind brings an old stamp back together with the state it named. Caches keyed by stamps (the
 * invariant checks', a side table's "unchanged since saved") stay right across rewinds.
 */
export function nextStamp(): number {
  return ++clock;
}

/** A WeakMap that stamps itself when an entry is set or deleted, so a snapshot can tell it is unchanged. */
export class SideTable<K extends object, V> extends WeakMap<K, V> {
  stamp = 0;

  override set(key: K, value: V): this {
    this.stamp = nextStamp();
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    this.stamp = nextStamp();
    return super.delete(key);
  }
}

const TABLES: SideTable<object, unknown>[] = [];

export function sideTable<K extends object, V>(): SideTable<K, V> {
  const t = new SideTable<K, V>();
  TABLES.push(t as SideTable<object, unknown>);
  return t;
}

/** Every side table created so far (modules create theirs when loaded). */
export function sideTables(): readonly SideTable<object, unknown>[] {
  return TABLES;
}

export const REWIND: unique symbol = Symbol("rewind");

/** Saves the object's state now; the function returned puts it back (any number of times). */
export interface Rewindable {
  [REWIND](): () => void;
}

export function isRewindable(o: object): o is Rewindable {
  return typeof (o as Partial<Rewindable>)[REWIND] === "function";
}
