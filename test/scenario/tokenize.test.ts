/**
 * The step command-line splitter: words, quotes, one `>` redirection, and refusal of other shell syntax.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StepSyntaxError, tokenize } from "../../src/scenario/tokenize.ts";

describe("tokenize", () => {
  it("splits words and takes `> PATH` as the redirection", () => {
    const inv = tokenize("echo online_movable > /sys/devices/system/memory/memory32/state");
    assert.deepEqual(inv.argv, ["echo", "online_movable"]);
    assert.equal(inv.redirect, "/sys/devices/system/memory/memory32/state");
    assert.equal(inv.text, "echo online_movable > /sys/devices/system/memory/memory32/state");
  });

  it("`>` needs no blanks around it; `>>` is the same redirection", () => {
    assert.deepEqual(tokenize("echo 1>/sys/a").redirect, "/sys/a");
    assert.deepEqual(tokenize("echo 1>/sys/a").argv, ["echo", "1"]);
    assert.deepEqual(tokenize("echo 1 >> /sys/a").redirect, "/sys/a");
  });

  it("single quotes are literal, double quotes take \\\" and \\\\, a backslash escapes one character", () => {
    assert.deepEqual(tokenize(`echo 'a  > b' "c \\"d\\" \\\\" e\\ f`).argv, ["echo", "a  > b", 'c "d" \\', "e f"]);
    assert.equal(tokenize(`echo 'a  > b'`).redirect, null);
    assert.deepEqual(tokenize(`echo x'y'"z"`).argv, ["echo", "xyz"]);
    assert.deepEqual(tokenize(`echo ''`).argv, ["echo", ""]);
  });

  it("refuses pipes, lists, input redirection and expansions, and malformed quoting", () => {
    for (const bad of ["cat /sys/a | head", "echo 1; echo 2", "echo 1 &", "cat < /sys/a", "echo $HOME", "echo `x`", 'echo "$x"']) {
      assert.throws(() => tokenize(bad), StepSyntaxError, bad);
    }
    assert.throws(() => tokenize("echo 'abc"), /unterminated ' quote/);
    assert.throws(() => tokenize('echo "abc'), /unterminated " quote/);
    assert.throws(() => tokenize("echo 1 >"), /'>' needs a file/);
    assert.throws(() => tokenize("echo 1 > /a > /b"), /only one '>'/);
    assert.throws(() => tokenize("> /sys/a"), /needs a command/);
    assert.throws(() => tokenize("   "), /empty command/);
  });

  it("quoted shell characters are just characters", () => {
    assert.deepEqual(tokenize("echo 'a|b;c&d<e$f'").argv, ["echo", "a|b;c&d<e$f"]);
  });
});
