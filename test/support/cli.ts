/**
 * Running the `zonedev` binary as a user does, from the repository root: stdout, stderr, exit status.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../../bin/zonedev.js", import.meta.url));
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: ROOT });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Bad input: exit status 2, nothing on stdout, one line on stderr matching `pattern`, no stack trace. */
export function expectUsageError(r: ReturnType<typeof run>, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit status (stderr: ${r.err})`);
  assert.equal(r.out, "", "no partial output");
  const lines = r.err.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got: ${r.err}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.err, /at .*\.ts:\d+/, "no stack trace");
}
