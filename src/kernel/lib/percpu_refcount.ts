/**
 * percpu_ref as dev_pagemap uses it (include/linux/percpu-refcount.h, lib/percpu-refcount.c): a count that
 * starts at 1 (the initial reference), can be killed (no new tryget_live succeeds, the initial reference is
 * dropped), runs its release callback when it reaches 0 after kill, and is exited afterwards.
 *
 * Holders are tracked by name so a hang can say who holds the last reference.
 */
export type RefState = "live" | "dying" | "released" | "exited";

export class PercpuRef {
  count = 1;
  state: RefState = "live";
  /** Who holds references, by name, with how many ("initial" for the reference percpu_ref_init takes). */
  readonly holders = new Map<string, number>([["initial", 1]]);
  private readonly onRelease: () => void;

  constructor(onRelease: () => void) {
    this.onRelease = onRelease;
  }

  private add(holder: string, n: number): void {
    const v = (this.holders.get(holder) ?? 0) + n;
    if (v === 0) this.holders.delete(holder);
    else this.holders.set(holder, v);
  }

  get dead(): boolean {
    return this.state !== "live";
  }

  // ref: include/linux/percpu-refcount.h percpu_ref_tryget_live
  tryGetLive(holder: string): boolean {
    if (this.state !== "live") return false;
    this.count++;
    this.add(holder, 1);
    return true;
  }

  // ref: include/linux/percpu-refcount.h percpu_ref_get_many
  getMany(n: number, holder: string): void {
    this.count += n;
    this.add(holder, n);
  }

  // ref: include/linux/percpu-refcount.h percpu_ref_put_many
  putMany(n: number, holder: string): void {
    this.count -= n;
    this.add(holder, -n);
    if (this.count === 0 && this.state === "dying") {
      this.state = "released";
      this.onRelease();
    }
  }

  // ref: include/linux/percpu-refcount.h percpu_ref_kill
  kill(): void {
    if (this.state !== "live") return;
    this.state = "dying";
    this.putMany(1, "initial");
  }

  // ref: lib/percpu-refcount.c percpu_ref_exit
  exit(): void {
    this.state = "exited";
  }

  /** The holders as `name×n`, for hang reports. */
  describeHolders(): string {
    return [...this.holders].map(([h, n]) => (n === 1 ? h : `${h}×${n}`)).join(", ");
  }
}
