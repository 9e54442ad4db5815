/**
 * RCU as the ZONE_DEVICE paths rely on it: read-side critical sections (rcu_read_lock, and — since the RCU
 * flavours were consolidated in 4.20 — any region with interrupts or preemption disabled, such as GUP-fast's
 * local_irq_save), and grace periods (synchronize_rcu; the one percpu_ref_kill waits for before the ref can
 * reach zero). A grace period waits for the readers that were inside a critical section when it began, not
 * for readers that enter later.
 *
 * SRCU (dax_srcu) is separate: an IRQ-off region does not hold it up.
 */
import type { Kernel } from "./kernel.ts";
import type { KernelPath } from "./path.ts";

/** A reader inside a read-side critical section. */
export interface RcuReader {
  readonly id: number;
  /** Who, for hang reports: "gup_fast (local_irq_save)". */
  readonly who: string;
}

export class RcuState {
  private nextId = 1;
  readonly readers = new Map<number, RcuReader>();

  enter(who: string): RcuReader {
    const r = { id: this.nextId++, who };
    this.readers.set(r.id, r);
    return r;
  }

  exit(r: RcuReader): void {
    this.readers.delete(r.id);
  }
}

function rcu(k: Kernel): RcuState {
  k.rcu ??= new RcuState();
  return k.rcu;
}

// ref: include/linux/rcupdate.h rcu_read_lock
export function rcuReadLock(k: Kernel, who: string): RcuReader {
  k.sanitizer.write("rcu");
  return rcu(k).enter(who);
}

// ref: include/linux/rcupdate.h rcu_read_unlock
export function rcuReadUnlock(k: Kernel, r: RcuReader): void {
  k.sanitizer.write("rcu");
  rcu(k).exit(r);
}

/** local_irq_save: on every arch an RCU read-side critical section (consolidated RCU). */
// ref: include/linux/irqflags.h local_irq_save
export function localIrqSave(k: Kernel, who: string): RcuReader {
  return rcuReadLock(k, `${who} (interrupts off)`);
}

// ref: include/linux/irqflags.h local_irq_restore
export function localIrqRestore(k: Kernel, r: RcuReader): void {
  rcuReadUnlock(k, r);
}

/** Wait for every reader inside a critical section now to leave it. */
// ref: kernel/rcu/tree.c synchronize_rcu
export function* synchronizeRcu(k: Kernel, at: string): KernelPath<void> {
  k.sanitizer.read("rcu");
  const s = rcu(k);
  const waitFor = [...s.readers.keys()];
  if (waitFor.length === 0) return;
  yield {
    kind: "block",
    at,
    until: () => waitFor.every((id) => !s.readers.has(id)),
    holder: () =>
      waitFor
        .map((id) => s.readers.get(id)?.who)
        .filter((w) => w !== undefined)
        .join(", "),
  };
}
