/**
 * Resolving the options.ts symbols for one arch, the way scripts/kconfig/symbol.c sym_calc_value() does:
 * a symbol with a visible prompt takes the user's value (capped by its `depends`), otherwise its first
 * default whose condition holds (also capped by `depends`); then every active `select` raises it, whatever its
 * own dependencies say. A bool that comes out m becomes y. Values are recomputed until nothing changes.
 *
 * Two kinds of input: `base` values behave like an existing .config under `make olddefconfig` (kept where
 * they can hold, silently adjusted where not); `overrides` are requirements, and one that does not hold in the
 * result is a UsageError naming the dependency or select that prevents it.
 *
 * ref: scripts/kconfig/symbol.c (sym_calc_value, sym_calc_visibility), scripts/kconfig/confdata.c (which
 * symbols a .config lists).
 */
import type { ArchProfile } from "../arch/profiles.ts";
import { ModelBug, UsageError } from "../errors.ts";
import { isKconfigSymbol, KCONFIG_SYMBOLS, type SymbolDef, type SymbolName } from "./options.ts";

export type Tristate = "y" | "m" | "n";
export type ConfigValue = Tristate | boolean;
/** Symbol name (without CONFIG_) → value. */
export type ConfigRequest = Readonly<Record<string, ConfigValue>>;

export interface ResolveOptions {
  /** Starting values, like an existing .config: used where they can hold, silently dropped where not. */
  readonly base?: ConfigRequest;
}

export interface KernelConfig {
  readonly arch: ArchProfile;
  readonly values: ReadonlyMap<SymbolName, Tristate>;
  /** The symbols a .config would have a line for (visible prompt, or on through a default or select). */
  readonly written: ReadonlySet<SymbolName>;
  /** Kconfig's "unmet direct dependencies" warnings: a select forced a symbol on past its `depends`. */
  readonly warnings: readonly string[];
  value(sym: SymbolName): Tristate;
  /** y or m. */
  enabled(sym: SymbolName): boolean;
}

type Tri = 0 | 1 | 2;
const LETTER = ["n", "m", "y"] as const;
const min = (a: Tri, b: Tri): Tri => (a < b ? a : b);
const max = (a: Tri, b: Tri): Tri => (a > b ? a : b);

// ---------------------------------------------------------------------------------------------------------
// Expressions

type Expr =
  | { readonly op: "sym"; readonly name: SymbolName }
  | { readonly op: "const"; readonly v: Tri }
  | { readonly op: "not"; readonly e: Expr }
  | { readonly op: "and" | "or"; readonly a: Expr; readonly b: Expr }
  | { readonly op: "eq"; readonly name: SymbolName; readonly v: Tri };

function parseExpr(text: string): Expr {
  const tokens = text.match(/&&|\|\||!=|[!()=]|\w+/g) ?? [];
  const bad = (why: string) => new ModelBug(`kconfig table: ${why} in '${text}'`);
  if (tokens.join("") !== text.replace(/\s+/g, "")) throw bad("stray characters");
  let i = 0;
  const next = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw bad("unexpected end");
    return t;
  };
  const atom = (t: string): Expr => {
    if (t === "n" || t === "m" || t === "y") return { op: "const", v: LETTER.indexOf(t) as Tri };
    if (!isKconfigSymbol(t)) throw bad(`unknown symbol ${t}`);
    return { op: "sym", name: t };
  };
  const unary = (): Expr => {
    const t = next();
    if (t === "!") return { op: "not", e: unary() };
    if (t === "(") {
      const e = or();
      if (next() !== ")") throw bad("missing )");
      return e;
    }
    const a = atom(t);
    if (tokens[i] !== "=" && tokens[i] !== "!=") return a;
    const negate = next() === "!=";
    const b = atom(next());
    if (a.op !== "sym" || b.op !== "const") throw bad("comparison must be SYMBOL=y|m|n");
    const eq: Expr = { op: "eq", name: a.name, v: b.v };
    return negate ? { op: "not", e: eq } : eq;
  };
  const and = (): Expr => {
    let e = unary();
    while (tokens[i] === "&&") {
      i++;
      e = { op: "and", a: e, b: unary() };
    }
    return e;
  };
  const or = (): Expr => {
    let e = and();
    while (tokens[i] === "||") {
      i++;
      e = { op: "or", a: e, b: and() };
    }
    return e;
  };
  const e = or();
  if (i !== tokens.length) throw bad(`unexpected '${tokens[i]}'`);
  return e;
}

type Lookup = (s: SymbolName) => Tri;

function evaluate(e: Expr, v: Lookup): Tri {
  switch (e.op) {
    case "sym":
      return v(e.name);
    case "const":
      return e.v;
    case "not":
      return (2 - evaluate(e.e, v)) as Tri;
    case "and":
      return min(evaluate(e.a, v), evaluate(e.b, v));
    case "or":
      return max(evaluate(e.a, v), evaluate(e.b, v));
    case "eq":
      return v(e.name) === e.v ? 2 : 0;
  }
}

function symbolsOf(e: Expr): SymbolName[] {
  switch (e.op) {
    case "sym":
    case "eq":
      return [e.name];
    case "const":
      return [];
    case "not":
      return symbolsOf(e.e);
    case "and":
    case "or":
      return [...symbolsOf(e.a), ...symbolsOf(e.b)];
  }
}

/** The symbols whose values keep `e` below `want`. */
function blame(e: Expr, want: Tri, v: Lookup): SymbolName[] {
  if (evaluate(e, v) >= want) return [];
  switch (e.op) {
    case "and":
    case "or":
      return [...blame(e.a, want, v), ...blame(e.b, want, v)];
    default:
      return symbolsOf(e);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The compiled table

interface Conditional {
  readonly expr: Expr;
  readonly cond: Expr | null;
  readonly text: string;
}

interface Select {
  readonly source: SymbolName;
  readonly target: SymbolName;
  /** The `if` of the select line and, as menu_finalize() adds them, the selecting symbol's own `depends`. */
  readonly cond: Expr | null;
}

/** How far a select raises its target: the selecting symbol's value, limited by the select's condition. */
function selectStrength(s: Select, v: Lookup): Tri {
  return min(v(s.source), s.cond ? evaluate(s.cond, v) : 2);
}

interface Compiled {
  readonly def: SymbolDef<SymbolName>;
  readonly depends: Expr | null;
  readonly default: Conditional | null;
  /** The selects that name this symbol as their target. */
  readonly selectedBy: readonly Select[];
}

function splitIf(text: string): Conditional {
  const m = /^(.*?)\s+if\s+(.*)$/.exec(text);
  if (!m) return { expr: parseExpr(text), cond: null, text };
  return { expr: parseExpr(m[1] ?? ""), cond: parseExpr(m[2] ?? ""), text };
}

function compile(): ReadonlyMap<SymbolName, Compiled> {
  const selects: Select[] = [];
  for (const def of KCONFIG_SYMBOLS as readonly SymbolDef<SymbolName>[]) {
    for (const s of def.selects ?? []) {
      const { expr, cond } = splitIf(s);
      if (expr.op !== "sym") throw new ModelBug(`kconfig table: ${def.name} selects '${s}'`);
      const deps = def.depends === undefined ? null : parseExpr(def.depends);
      const both: Expr | null = deps && cond ? { op: "and", a: cond, b: deps } : (deps ?? cond);
      selects.push({ source: def.name, target: expr.name, cond: both });
    }
  }
  const table = new Map<SymbolName, Compiled>();
  for (const def of KCONFIG_SYMBOLS as readonly SymbolDef<SymbolName>[]) {
    if (table.has(def.name)) throw new ModelBug(`kconfig table: ${def.name} twice`);
    table.set(def.name, {
      def,
      depends: def.depends === undefined ? null : parseExpr(def.depends),
      default: def.default === undefined ? null : splitIf(def.default),
      selectedBy: selects.filter((s) => s.target === def.name),
    });
  }
  return table;
}

const TABLE = compile();

function compiled(name: SymbolName): Compiled {
  const c = TABLE.get(name);
  if (!c) throw new ModelBug(`unknown Kconfig symbol ${name}`);
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Resolution

function readRequest(req: ConfigRequest): Map<SymbolName, Tri> {
  const out = new Map<SymbolName, Tri>();
  for (const [name, raw] of Object.entries(req)) {
    const field = `config.${name}`;
    if (!isKconfigSymbol(name)) {
      const hint = name.startsWith("CONFIG_") ? ` (write ${name.slice(7)}, without CONFIG_)` : "";
      throw new UsageError(field, `unknown symbol${hint}`);
    }
    const v: unknown = raw;
    const tri = v === true ? 2 : v === false ? 0 : LETTER.indexOf(v as Tristate);
    if (tri < 0) throw new UsageError(field, `bad value ${JSON.stringify(v)} (expected y, m or n)`);
    if (tri === 1 && compiled(name).def.type === "bool") {
      throw new UsageError(field, `${name} is a bool symbol: it can be y or n, not m`);
    }
    out.set(name, tri as Tri);
  }
  return out;
}

interface Computed {
  readonly value: Tri;
  readonly dep: Tri;
  readonly rev: Tri;
  readonly written: boolean;
}

function computeOne(c: Compiled, arch: ArchProfile, user: ReadonlyMap<SymbolName, Tri>, v: Lookup): Computed {
  const { def } = c;
  const dep = c.depends ? evaluate(c.depends, v) : 2;
  let rev: Tri = 0;
  for (const s of c.selectedBy) rev = max(rev, selectStrength(s, v));
  if (def.selectedOutside) rev = max(rev, user.get(def.name) ?? 0);
  let value: Tri = 0;
  let visible: Tri = 0;
  let dflt: Tri = 0;
  if (def.kind === "arch") {
    value = def.arch?.(arch) ? dep : 0;
  } else {
    if (def.kind === "user") visible = dep;
    const u = user.get(def.name);
    if (visible > 0 && u !== undefined) {
      value = min(u, visible);
    } else if (c.default) {
      dflt = min(min(evaluate(c.default.expr, v), c.default.cond ? evaluate(c.default.cond, v) : 2), dep);
      value = dflt;
    }
  }
  value = max(value, rev);
  // A bool limited to m by its dependencies or raised to m by a select is y.
  if (def.type === "bool" && value === 1) value = 2;
  return { value, dep, rev, written: visible > 0 || rev > 0 || dflt > 0 || (def.kind === "arch" && value > 0) };
}

interface Solution {
  readonly values: Map<SymbolName, Tri>;
  readonly v: Lookup;
}

function solve(arch: ArchProfile, user: ReadonlyMap<SymbolName, Tri>): Solution {
  const values = new Map<SymbolName, Tri>();
  const v: Lookup = (s) => values.get(s) ?? 0;
  // The table has no dependency cycles, so this settles in at most (longest chain + 1) passes.
  for (let pass = 0; ; pass++) {
    if (pass > TABLE.size) throw new ModelBug("kconfig resolution does not settle (a dependency cycle?)");
    let changed = false;
    for (const c of TABLE.values()) {
      const { value } = computeOne(c, arch, user, v);
      if (value !== v(c.def.name)) {
        values.set(c.def.name, value);
        changed = true;
      }
    }
    if (!changed) return { values, v };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Why a requirement does not hold

function explain(name: SymbolName, want: Tri, arch: ArchProfile, hard: ReadonlyMap<SymbolName, Tri>, v: Lookup): string {
  const c = compiled(name);
  const { def } = c;
  const got = v(name);
  const head = `cannot be ${LETTER[want]}`;
  const describe = (s: SymbolName): string => {
    const d = compiled(s).def;
    if (d.kind === "arch" && !d.arch?.(arch)) return `${s} is n (${arch.name} does not select it)`;
    return `${s} is ${LETTER[v(s)]}${hard.has(s) ? " (as requested)" : ""}`;
  };
  const unmet = (e: Expr, w: Tri) => [...new Set(blame(e, w, v))].map(describe).join(", ");
  const selectors = (above: Tri) =>
    c.selectedBy.filter((s) => selectStrength(s, v) > above).map((s) => `${s.source} (${LETTER[v(s.source)]})`);

  if (want > got) {
    if (def.kind === "arch" && !def.arch?.(arch)) {
      return `${head}: it is chosen by the architecture, and ${arch.name} does not select ${name}`;
    }
    if (c.depends && evaluate(c.depends, v) < want) {
      return `${head}: depends on ${def.depends}, but ${unmet(c.depends, want)}`;
    }
    if (c.default && evaluate(c.default.expr, v) < want) {
      return `${head}: it has no prompt and its default (${c.default.text}) is n: ${unmet(c.default.expr, want)}`;
    }
    if (c.default?.cond && evaluate(c.default.cond, v) < want) {
      return `${head}: it has no prompt and its default (${c.default.text}) does not apply: ${unmet(c.default.cond, want)}`;
    }
    const by = c.selectedBy.map((s) => s.source);
    return `${head}: it has no prompt and only a select turns it on (${by.length ? `by ${by.join(", ")}` : "nothing in the model selects it"})`;
  }
  const forcing = selectors(want);
  if (forcing.length) return `${head}: selected by ${forcing.join(", ")}`;
  if (def.kind === "arch") return `${head}: it is chosen by the architecture, and ${arch.name} selects ${name}`;
  if (c.default) return `${head}: it has no prompt and its default (${c.default.text}) is ${LETTER[got]}`;
  throw new ModelBug(`kconfig: cannot explain ${name}=${LETTER[got]}`);
}

// ---------------------------------------------------------------------------------------------------------
// API

export function resolveConfig(arch: ArchProfile, overrides: ConfigRequest, opts: ResolveOptions = {}): KernelConfig {
  const hard = readRequest(overrides);
  const user = new Map([...readRequest(opts.base ?? {}), ...hard]);
  const { values, v } = solve(arch, user);
  for (const [name, want] of hard) {
    if (v(name) !== want) throw new UsageError(`config.${name}`, explain(name, want, arch, hard, v));
  }
  const out = new Map<SymbolName, Tristate>();
  const written = new Set<SymbolName>();
  const warnings: string[] = [];
  for (const c of TABLE.values()) {
    const name = c.def.name;
    const r = computeOne(c, arch, user, v);
    out.set(name, LETTER[values.get(name) ?? 0]);
    if (r.written) written.add(name);
    if (c.def.kind !== "arch" && r.rev > r.dep) {
      const by = c.selectedBy.filter((s) => selectStrength(s, v) > 0).map((s) => s.source);
      const outside = c.def.selectedOutside && (user.get(name) ?? 0) > 0 ? [c.def.selectedOutside] : [];
      warnings.push(`unmet direct dependencies for ${name}: depends on ${c.def.depends}, selected by ${[...by, ...outside].join(", ")}`);
    }
  }
  const value = (sym: SymbolName): Tristate => {
    const val = out.get(sym);
    if (val === undefined) throw new ModelBug(`unknown Kconfig symbol ${sym}`);
    return val;
  };
  return { arch, values: out, written, warnings, value, enabled: (sym) => value(sym) !== "n" };
}

/** .config lines, sorted by symbol: `CONFIG_ZONE_DEVICE=y`, `# CONFIG_DEVICE_PRIVATE is not set`. */
export function formatConfig(cfg: KernelConfig): string[] {
  return [...cfg.written].sort().map((s) => {
    const val = cfg.value(s);
    return val === "n" ? `# CONFIG_${s} is not set` : `CONFIG_${s}=${val}`;
  });
}
