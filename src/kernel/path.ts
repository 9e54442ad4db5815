/**
 * Kernel paths as generators (docs/architecture.md "Kernel paths are generators").
 *
 * A path that can interleave with another yields wherever the real kernel could be preempted, block, or
 * publish shared state; it returns its result. Sequential callers drive it to the end with runToEnd; the
 * explorer (src/sched) drives several at once. The model never imports the explorer.
 */

export type Yield =
  /** A point where another thread may run: a lock taken or released, an atomic, an RCU boundary. */
  | { kind: "step"; at: string }
  /** Waiting until `until()` holds (a refcount draining, a completion), and on whom, when known. */
  | { kind: "block"; at: string; until: () => boolean; holder?: () => string };

export type KernelPath<T> = Generator<Yield, T, void>;

export function step(at: string): Yield {
  return { kind: "step", at };
}

/** A path that cannot go on and never will when run alone (nothing else is running to wake it). */
export class Hang extends Error {
  readonly at: string;
  readonly holder: string;
  constructor(at: string, holder: string) {
    super(`hang: waiting in ${at}${holder ? ` for ${holder}` : ""}`);
    this.name = "Hang";
    this.at = at;
    this.holder = holder;
  }
}

/** Drive one path to its end, as if nothing else ran. A block that cannot resolve is a Hang. */
export function runToEnd<T>(path: KernelPath<T>): T {
  for (;;) {
    const r = path.next();
    if (r.done) return r.value;
    const y = r.value;
    if (y.kind === "block" && !y.until()) throw new Hang(y.at, y.holder?.() ?? "");
  }
}

/** Run a plain function as a one-step path (so callers compose paths uniformly). */
export function* pathOf<T>(at: string, fn: () => T): KernelPath<T> {
  yield step(at);
  return fn();
}
