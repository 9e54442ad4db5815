/**
 * The two kinds of error zonedev knows (docs/architecture.md "Two kinds of error").
 *
 * A UsageError is bad user input: a machine spec, scenario, flag or imported file. It names the field at
 * fault and the reason; the CLI prints it as one line and exits non-zero.
 *
 * Kernel-level failures are not exceptions: model functions return an errno (see kernel/errno.ts).
 */
export class UsageError extends Error {
  /** Where the bad input is: a field path (`ram[2].start`), a flag (`--arch`), or `file:line`. */
  readonly field: string;
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = "UsageError";
    this.field = field;
    this.reason = reason;
  }
}

/** A broken promise inside the model itself (a bug in zonedev, not in the user's input). */
export class ModelBug extends Error {
  constructor(message: string) {
    super(`zonedev model bug: ${message}`);
    this.name = "ModelBug";
  }
}
