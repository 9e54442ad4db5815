/**
 * A step's command line, split as a shell would split it, with nothing else a shell does: words separated by
 * blanks, '…' (literal) and "…" (\" and \\ escaped) quoting, backslash escapes outside quotes, and one output
 * redirection `> PATH` (or `>> PATH`, the same thing for sysfs). Pipes, `;`, `&`, `<`, `$` and backquotes are
 * refused rather than silently taken literally.
 */

export interface Invocation {
  /** argv[0] is the command name. */
  readonly argv: readonly string[];
  /** The target of `> PATH`, if any. */
  readonly redirect: string | null;
  /** The command as the user wrote it. */
  readonly text: string;
}

/** Bad command-line syntax; the scenario loader turns it into a UsageError naming the step. */
export class StepSyntaxError extends Error {}

const REFUSED = new Set(["|", ";", "&", "<", "$", "`"]);

type Token = { word: string } | { op: ">" };

function lex(text: string): Token[] {
  const out: Token[] = [];
  let word: string | null = null;
  const push = (): void => {
    if (word !== null) out.push({ word });
    word = null;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n") {
      push();
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new StepSyntaxError("unterminated ' quote");
      word = (word ?? "") + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let s = "";
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        const d = text[j]!;
        if (d === "\\" && (text[j + 1] === '"' || text[j + 1] === "\\")) s += text[++j]!;
        else if (d === "$" || d === "`") throw new StepSyntaxError(`'${d}' inside "…" is a shell expansion, which steps do not do (use '…')`);
        else s += d;
      }
      if (j >= text.length) throw new StepSyntaxError('unterminated " quote');
      word = (word ?? "") + s;
      i = j;
    } else if (c === "\\") {
      if (i + 1 >= text.length) throw new StepSyntaxError("trailing backslash");
      word = (word ?? "") + text[++i]!;
    } else if (c === ">") {
      push();
      if (text[i + 1] === ">") i++;
      out.push({ op: ">" });
    } else if (REFUSED.has(c)) {
      throw new StepSyntaxError(`'${c}': steps are single commands, not shell pipelines or expansions (quote it to mean the character)`);
    } else {
      word = (word ?? "") + c;
    }
  }
  push();
  return out;
}

/** Split a step's command line. */
export function tokenize(text: string): Invocation {
  const argv: string[] = [];
  let redirect: string | null = null;
  const tokens = lex(text);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if ("word" in t) {
      argv.push(t.word);
      continue;
    }
    const target = tokens[i + 1];
    if (!target || !("word" in target)) throw new StepSyntaxError("'>' needs a file to write to");
    if (redirect !== null) throw new StepSyntaxError("only one '>' redirection per step");
    redirect = target.word;
    i++;
  }
  if (argv.length === 0) throw new StepSyntaxError(redirect !== null ? "a redirection needs a command" : "empty command");
  return { argv, redirect, text };
}
