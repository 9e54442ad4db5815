/**
 * The `zonedev` command line. Bad input is one line on stderr and exit status 2; never a stack trace.
 */
import { Command, CommanderError, Option } from "commander";
import { ARCH_PROFILES } from "../arch/profiles.ts";
import { UsageError } from "../errors.ts";
import { formatConfig, KCONFIG_PRESETS } from "../kconfig/kconfig.ts";
import { bootKernel, type MachineSpec } from "../kernel/boot.ts";
import { DEFAULT_PRESET, MACHINE_PRESETS, machinePreset } from "../machine/presets.ts";
import { loadMachineFile, machineFromDmesg } from "../machine/spec.ts";
import { LAYOUT_PARTS, type LayoutPart, layoutJson, renderLayout } from "../report/layout.ts";
import { runDemo } from "./demo.ts";
import { registerExplore } from "./explore.ts";
import { registerRun } from "./run.ts";

interface MachineOpts {
  preset?: string;
  machine?: string;
  dmesg?: string;
  append?: string;
  arch?: string;
}

function addMachineOptions(cmd: Command): Command {
  return cmd
    .option("--preset <name>", `a named machine (default ${DEFAULT_PRESET}; see \`zonedev presets\`)`)
    .option("--machine <file.yaml>", "a machine spec file (docs/machine-spec.md)")
    .option("--dmesg <file>", "build the machine from a boot log: its BIOS-e820 table and SRAT lines")
    .option("--append <cmdline>", "the kernel command line (memmap=, memhp_default_state=, ...)")
    .option("--arch <arch>", "with --dmesg: the arch profile (default x86_64)");
}

export function resolveMachineOpts(o: MachineOpts): MachineSpec {
  const given = [o.preset, o.machine, o.dmesg].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError("--preset/--machine/--dmesg", "give only one machine source");
  if (o.arch !== undefined && o.dmesg === undefined) throw new UsageError("--arch", "only goes with --dmesg (a preset or spec names its arch)");
  if (o.machine !== undefined) {
    const spec = loadMachineFile(o.machine);
    return o.append !== undefined ? { ...spec, commandLine: o.append } : spec;
  }
  if (o.dmesg !== undefined) return machineFromDmesg(o.dmesg, o.append, o.arch);
  return machinePreset(o.preset ?? DEFAULT_PRESET, o.append);
}

function parseParts(value: string): LayoutPart[] {
  const parts = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const p of parts) {
    if (!(LAYOUT_PARTS as readonly string[]).includes(p)) throw new UsageError("--show", `unknown part '${p}' (known: ${LAYOUT_PARTS.join(", ")})`);
  }
  return parts as LayoutPart[];
}

function write(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

function buildProgram(exit: { status: number }): Command {
  const program = new Command("zonedev")
    .description("An executable model of Linux ZONE_DEVICE memory (baseline: Linux 6.1)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: () => {} })
    .showHelpAfterError(false);

  addMachineOptions(
    program
      .command("layout")
      .description("boot a machine and print /proc/iomem, /proc/zoneinfo, sections and memory blocks"),
  )
    .addOption(new Option("--show <parts>", `comma-separated: ${LAYOUT_PARTS.join(",")}`).default("summary,iomem,zoneinfo,sections,blocks,pgmaps"))
    .option("--json", "print JSON for scripts")
    .action((opts: MachineOpts & { show: string; json?: boolean }) => {
      const parts = parseParts(opts.show);
      const spec = resolveMachineOpts(opts);
      const k = bootKernel(spec);
      write(opts.json ? JSON.stringify(layoutJson(k, spec.name), null, 2) : renderLayout(k, spec.name, parts));
    });

  addMachineOptions(program.command("kconfig").description("print the machine's resolved Kconfig for the ZONE_DEVICE symbols")).action(
    (opts: MachineOpts) => {
      const spec = resolveMachineOpts(opts);
      const cfg = spec.config as Parameters<typeof formatConfig>[0];
      write(formatConfig(cfg).join("\n"));
    },
  );

  program
    .command("presets")
    .description("list machine presets, arch profiles and Kconfig presets")
    .action(() => {
      const lines = ["machines:"];
      for (const [name, p] of Object.entries(MACHINE_PRESETS)) lines.push(`  ${name.padEnd(26)} ${p.description}`);
      lines.push("arches:");
      for (const a of ARCH_PROFILES) lines.push(`  ${a.name.padEnd(26)} ${a.description}`);
      lines.push("kconfig presets:");
      for (const [name, p] of Object.entries(KCONFIG_PRESETS)) lines.push(`  ${name.padEnd(26)} ${p.description}`);
      write(lines.join("\n"));
    });

  registerRun(addMachineOptions(program.command("run")), resolveMachineOpts, exit);
  registerExplore(program, exit);

  program
    .command("demo")
    .description("a guided tour on the oracle's machine")
    .action(() => write(runDemo()));

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const exit = { status: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync(argv, { from: "user" });
    return exit.status;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      process.stderr.write(`zonedev: ${e.message.replace(/^error: /, "")}\n`);
      return 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`zonedev: ${e.message}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`zonedev: internal error: ${msg} (please report it with the command line)\n`);
    if (process.env["ZONEDEV_DEBUG"] && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 70;
  }
}
