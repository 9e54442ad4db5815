/**
 * The scenario format (docs/scenarios.md), as a zod schema. docs/scenario.schema.json is generated from it
 * (`npx tsx src/scenario/write-schema.ts`) and a test keeps the committed file equal to the generated one.
 *
 * A scenario is a machine, an optional kernel variant, a list of steps run in order and, optionally, threads:
 * step lists run concurrently after the steps, whose interleavings `zonedev explore` tries (docs/explore.md).
 */
import { z } from "zod";
import type { ViolationKind } from "../kernel/sanitizer.ts";
import { machineFileSchema } from "../machine/spec.ts";
import { ERRNO_BY_NAME } from "./errno_text.ts";

export const VIOLATION_KINDS = [
  "struct-page-use-after-free",
  "uninitialised-struct-page-read",
  "no-memmap-access",
  "dead-pgmap-use",
  "negative-refcount",
  "idle-page-touched",
  "null-pointer-dereference",
  "pgmap-ref-mismatch",
  "dangling-pte",
  "device-pfn-in-buddy",
  "zone-span",
  "subsection-map",
  "max-pfn",
  "warning",
] as const satisfies readonly ViolationKind[];

/** Fails to compile when the sanitizer grows a violation kind this list does not have. */
type AllListed<T extends never> = T;
export type ViolationKindsComplete = AllListed<Exclude<ViolationKind, (typeof VIOLATION_KINDS)[number]>>;

/** What `--show` and a step's `show:` can print after a step. */
export const SHOW_PARTS = ["iomem", "zoneinfo", "sysfs", "blocks", "pgmaps", "log"] as const;
export type ShowPart = (typeof SHOW_PARTS)[number];

const ERRNO_NAMES = [...ERRNO_BY_NAME.keys()] as [string, ...string[]];

export const commandText = z
  .string()
  .min(1)
  .describe("A command line as a user types it: `echo online_movable > /sys/devices/system/memory/memory64/state`, `cat PATH`, `add_memory 0 0x200000000 256M`");

export const expectSchema = z
  .object({
    rc: z
      .union([z.number().int(), z.enum(ERRNO_NAMES)], {
        error: `an exit status (integer) or an errno name (${ERRNO_NAMES.join(", ")})`,
      })
      .optional()
      .describe("The step's status: an integer compares rc; an errno name (-EBUSY) compares the kernel errno behind the result (a kernel step's rc, or what a sysfs store returned to echo)"),
    stdout: z
      .union([z.string(), z.object({ contains: z.string() }).strict()], { error: "a string (the exact output) or { contains: TEXT }" })
      .optional()
      .describe("The step's output: exactly this text (a final newline is ignored on both sides), or { contains: TEXT }"),
    violation: z
      .enum(["none", ...VIOLATION_KINDS])
      .optional()
      .describe("none: the sanitizer recorded nothing but kernel WARNs during the step; a kind: at least one violation of that kind"),
  })
  .strict()
  .refine((e) => e.rc !== undefined || e.stdout !== undefined || e.violation !== undefined, { error: "give at least one of rc, stdout, violation" });

export const stepObjectSchema = z
  .object({
    run: commandText,
    expect: expectSchema.optional(),
    show: z.array(z.enum(SHOW_PARTS)).optional().describe("State to print after this step (as --show does for every step)"),
  })
  .strict();

export const stepSchema = z.union([commandText, stepObjectSchema], { error: "a step is a command string or { run: COMMAND, expect: {...} }" });

export const presetMachineSchema = z
  .object({
    preset: z.string().min(1).describe("A machine preset (`zonedev presets`)"),
    append: z.string().optional().describe("Replaces the preset's kernel command line"),
  })
  .strict();

export const fileMachineSchema = z
  .object({
    file: z.string().min(1).describe("A machine spec file (docs/machine-spec.md), relative to the scenario file"),
    append: z.string().optional().describe("Replaces the spec's kernel command line"),
  })
  .strict();

export const dmesgMachineSchema = z
  .object({
    dmesg: z.string().min(1).describe("A boot log (its BIOS-e820 table, Command line and SRAT lines), relative to the scenario file"),
    append: z.string().optional().describe("The kernel command line (default: the log's Command line)"),
    arch: z.string().optional().describe("The arch profile (default x86_64)"),
  })
  .strict();

export const machineSchema = z
  .union([presetMachineSchema, fileMachineSchema, dmesgMachineSchema, machineFileSchema])
  .describe("{ preset }, { file }, { dmesg }, or an inline machine spec (docs/machine-spec.md)");

/** A thread's step: a command, without expectations (its result depends on the schedule). */
export const threadStepSchema = z.union([commandText, z.object({ run: commandText }).strict()], {
  error: "a thread step is a command string or { run: COMMAND } (expectations go in explore:)",
});

export const EXPLORE_VERDICTS = ["none", "hang", ...VIOLATION_KINDS.filter((v) => v !== "warning")] as const;

export const exploreSchema = z
  .object({
    expect: z
      .enum(EXPLORE_VERDICTS)
      .describe("What exhaustive exploration finds: none (every schedule is clean), hang (some schedule cannot finish), or the violation kind some schedule reaches"),
    absent: z
      .array(z.enum(EXPLORE_VERDICTS.filter((v) => v !== "none") as [string, ...string[]]))
      .optional()
      .describe("Kinds no schedule may reach (hang or violation kinds): what makes the verdict exact when expect names another kind"),
    schedules: z.number().int().min(1).optional().describe("Golden count: executions exhaustive exploration runs to an end (with sleep sets; a change in semantics or reduction shows here)"),
    states: z.number().int().min(1).optional().describe("Golden count: distinct end states"),
    depth: z.number().int().min(0).optional().describe("Preemption bound for the exhaustive search (default: none)"),
  })
  .strict();

export const scenarioSchema = z
  .object({
    name: z.string().optional(),
    description: z.string().optional(),
    machine: machineSchema,
    variant: z.string().optional().describe("The kernel variant (era or proposal); overrides the machine's"),
    steps: z.array(stepSchema).min(1).optional().describe("Commands run in order, one after the other (with threads: the setup before they start)"),
    threads: z
      .record(z.string().regex(/^[A-Za-z_][\w-]*$/), z.array(threadStepSchema).min(1))
      .optional()
      .describe("Step lists run concurrently after steps: (at most 26); `zonedev run` takes them one after the other, `zonedev explore` tries their interleavings"),
    explore: exploreSchema.optional().describe("The expected verdict of `zonedev explore` (needs threads:)"),
  })
  .strict();

export type ScenarioFile = z.input<typeof scenarioSchema>;

const SIZE_JSON_SCHEMA = {
  anyOf: [
    { type: "integer", minimum: 0 },
    { type: "string", pattern: "^\\s*(0[xX][0-9a-fA-F]+|\\d+\\s*[KMGTPkmgtp]?([iI]?[bB])?)\\s*$" },
  ],
  description: "A size or address: 4096, 0x1000 or 4G",
};

/** The JSON Schema of the scenario format (what docs/scenario.schema.json holds). */
export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(scenarioSchema, {
    io: "input",
    unrepresentable: "any",
    override: (ctx) => {
      // The machine spec's sizes are z.unknown() piped into a transform (parseSize): describe what it accepts.
      const s = ctx.zodSchema;
      if (s instanceof z.ZodPipe && s.in instanceof z.ZodUnknown && s.out instanceof z.ZodTransform) {
        for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Record<string, unknown>)[key];
        Object.assign(ctx.jsonSchema, SIZE_JSON_SCHEMA);
      }
    },
  });
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: "zonedev scenario",
    description: "A machine, an optional kernel variant and steps run in order (docs/scenarios.md)",
    ...rest,
  };
}
