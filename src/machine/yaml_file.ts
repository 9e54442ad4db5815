/**
 * Reading a user's YAML file (machine spec or scenario) with line positions kept, so every later error can
 * name file:line. A file that cannot be read or parsed is a UsageError of its own.
 */
import { readFileSync } from "node:fs";
import { type Document, LineCounter, parseDocument } from "yaml";
import { UsageError } from "../errors.ts";

export interface YamlFile {
  doc: Document;
  lineCounter: LineCounter;
}

export function readYamlFile(file: string, text?: string): YamlFile {
  let src: string;
  try {
    src = text ?? readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(src, { lineCounter, intAsBigInt: false });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const message = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new UsageError(`${file}:${err.linePos?.[0]?.line ?? "?"}`, `malformed YAML: ${message}`);
  }
  return { doc, lineCounter };
}
