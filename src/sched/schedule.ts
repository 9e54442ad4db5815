/**
 * Schedules as replay tokens: `zd1-<scenario hash>-<run-length thread letters>`, e.g. `zd1-3fa9c2-a3ba2`:
 * thread a runs 3 transitions, then b 1, then a 2. The hash covers everything a schedule's meaning depends on
 * (machine, variant, setup and thread steps), so a token made for another scenario is refused, not misread.
 */

/** FNV-1a, 32 bits, as 6 hex digits: a fingerprint, not a security measure. */
export function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h >>> 8).toString(16).padStart(6, "0");
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

export function encodeSchedule(hash: string, schedule: readonly number[]): string {
  let body = "";
  for (let i = 0; i < schedule.length; ) {
    const t = schedule[i]!;
    let n = 1;
    while (schedule[i + n] === t) n++;
    body += LETTERS[t]! + (n > 1 ? String(n) : "");
    i += n;
  }
  return `zd1-${hash}-${body}`;
}

/** The schedule a token names, or why it cannot be read. */
export function decodeSchedule(token: string, hash: string, threads: number): number[] | string {
  const m = /^zd1-([0-9a-f]{6})-([a-z0-9]*)$/.exec(token.trim());
  if (!m) return `'${token}' is not a schedule token (zd1-HASH-RUNS, as explore prints it)`;
  if (m[1] !== hash) return `the token was made for a different scenario (hash ${m[1]}, this one is ${hash})`;
  const out: number[] = [];
  const re = /([a-z])(\d*)/g;
  const body = m[2]!;
  let last = 0;
  for (let r = re.exec(body); r !== null; r = re.exec(body)) {
    if (r.index !== last) return `'${token}': unreadable runs at '${body.slice(last)}'`;
    const t = LETTERS.indexOf(r[1]!);
    if (t >= threads) return `'${token}' names thread '${r[1]}', but the scenario has ${threads} thread${threads === 1 ? "" : "s"}`;
    const n = r[2] ? Number(r[2]) : 1;
    if (n < 1 || n > 1_000_000) return `'${token}': run length ${n} out of range`;
    for (let i = 0; i < n; i++) out.push(t);
    last = re.lastIndex;
  }
  if (last !== body.length) return `'${token}': unreadable runs at '${body.slice(last)}'`;
  return out;
}

/** The thread letter used in tokens and traces. */
export function threadLetter(t: number): string {
  return LETTERS[t] ?? "?";
}
