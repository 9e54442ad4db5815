/**
 * The struct-page / pgmap lifetime sanitizer and the access footprint.
 *
 * Model code reaches struct pages and pgmaps through the accessors in mm/page_access.ts; each access is
 * checked here (a read of a struct page that was never initialised or was torn down, a use of a pgmap after
 * percpu_ref_exit, a refcount going negative) and noted on the current step's footprint, so the explorer only
 * reorders steps that touch the same thing. Violations are recorded, not thrown: a kernel with a
 * use-after-free keeps running, and the report says where it happened.
 */

export type ViolationKind =
  | "struct-page-use-after-free"
  | "uninitialised-struct-page-read"
  | "no-memmap-access"
  | "dead-pgmap-use"
  | "negative-refcount"
  | "idle-page-touched"
  | "null-pointer-dereference"
  // Invariants over the whole state (src/check/invariants.ts), checked after every step.
  | "pgmap-ref-mismatch"
  | "dangling-pte"
  | "device-pfn-in-buddy"
  | "zone-span"
  | "subsection-map"
  | "max-pfn"
  | "warning";

export interface Violation {
  kind: ViolationKind;
  /** The kernel function (and step) where it happened. */
  at: string;
  detail: string;
  pfn?: number;
  pgmap?: number;
}

export interface Footprint {
  reads: Set<string>;
  writes: Set<string>;
}

export class Sanitizer {
  readonly violations: Violation[] = [];
  /** Set by the explorer around each step; null when nobody is recording. */
  footprint: Footprint | null = null;

  report(v: Violation): void {
    this.violations.push(v);
  }

  read(key: string): void {
    this.footprint?.reads.add(key);
  }

  write(key: string): void {
    this.footprint?.writes.add(key);
  }

  /** Violations other than kernel WARNs (which the kernel survives by design). */
  errors(): Violation[] {
    return this.violations.filter((v) => v.kind !== "warning");
  }
}
