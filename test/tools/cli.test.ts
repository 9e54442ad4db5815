/**
 * ndctl/daxctl argument parsing, json-c printing and ndctl's human sizes (the capture replay is in
 * conformance.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bootKernel } from "../../src/kernel/boot.ts";
import { machinePreset } from "../../src/machine/presets.ts";
import { BadArguments, daxctlCommand, ndctlCommand } from "../../src/scenario/commands.ts";
import { tokenize } from "../../src/scenario/tokenize.ts";
import { runDaxctl } from "../../src/tools/daxctl_cli.ts";
import { humanSize, JsonSize, jsoncPretty, parseOptions } from "../../src/tools/json.ts";
import { parseSize64, runNdctl } from "../../src/tools/ndctl_cli.ts";

describe("json-c pretty printing", () => {
  it("two-space indent, no space after the colon, escaped slashes, empty containers", () => {
    assert.equal(jsoncPretty({ a: [1, { p: "/x" }], e: [], o: {}, t: true }), '{\n  "a":[\n    1,\n    {\n      "p":"\\/x"\n    }\n  ],\n  "e":[\n  ],\n  "o":{\n  },\n  "t":true\n}');
  });
  it("human sizes as ndctl prints them", () => {
    assert.equal(humanSize(1054867456), '"1006.00 MiB (1054.87 MB)"');
    assert.equal(humanSize(1073741824), '"1024.00 MiB (1073.74 MB)"');
    assert.equal(humanSize(4 * 2 ** 30), '"4.00 GiB (4.29 GB)"');
    assert.equal(humanSize(2097152), "2097152");
    assert.equal(jsoncPretty(new JsonSize(2 ** 30, false)), "1073741824");
  });
});

describe("parse-options", () => {
  const specs = [{ short: "N", long: "namespaces" }, { short: "R", long: "regions" }, { short: "m", long: "mode", value: true }, { short: "v", long: "verbose", incr: true }];
  it("combined switches, attached and separate values, --name=value, OPT_INCR", () => {
    const p = parseOptions(["-NRvvv", "-mfsdax", "ns", "--mode", "devdax"], specs);
    assert.ok(!("error" in p));
    assert.deepEqual([...p.opts], [["namespaces", true], ["regions", true], ["verbose", 3], ["mode", "devdax"]]);
    assert.deepEqual(p.args, ["ns"]);
  });
  it("unknown options as ndctl names them", () => {
    assert.deepEqual(parseOptions(["-Q"], specs), { error: "unknown switch `Q'" });
    assert.deepEqual(parseOptions(["--frob"], specs), { error: "unknown option `frob'" });
  });
  it("sizes with binary suffixes", () => {
    assert.equal(parseSize64("2M"), 2 ** 21);
    assert.equal(parseSize64("1g"), 2 ** 30);
    assert.equal(parseSize64("0x1000"), 4096);
    assert.equal(parseSize64("2Q"), null);
  });
});

describe("commands", () => {
  it("mode aliases: memory is fsdax, dax is devdax", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    const r = runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "-m", "dax", "-a", "2M"]);
    assert.equal(r.rc, 0, r.stdout);
    assert.match(r.stdout, /"mode":"devdax"/);
    const r2 = runNdctl(k, ["create-namespace", "-f", "-e", "namespace0.0", "--mode=memory", "-M", "mem"]);
    assert.equal(r2.rc, 0, r2.stdout);
    assert.match(r2.stdout, /"mode":"fsdax",\n {2}"map":"mem"/);
  });
  it("usage errors exit 129", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    assert.equal(runNdctl(k, ["create-namespace", "--map=foo"]).rc, 129);
    assert.equal(runNdctl(k, ["list", "-Z"]).rc, 129);
    const d = runDaxctl(k, ["reconfigure-device", "dax0.0"]);
    assert.equal(d.rc, 129);
    assert.match(d.stdout, /^error: a 'align', 'mode' or 'size' option is required\n/);
    assert.equal(runDaxctl(k, ["offline-memory"]).stdout.split("\n")[0], 'specify a device to offline memory for, or "all"');
  });
  it("daxctl list without devices prints nothing", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    assert.deepEqual(runDaxctl(k, ["list"]), { stdout: "", rc: 0 });
  });
});

describe("ndctl/daxctl as scenario commands", () => {
  it("check their subcommand at load time and run through the CLI", () => {
    const k = bootKernel(machinePreset("qemu-q35-3g-pmem1g"));
    const inv = tokenize("ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev");
    ndctlCommand.check(inv);
    assert.throws(() => daxctlCommand.check(tokenize("daxctl create-device")), BadArguments);
    const out = ndctlCommand.run(k, inv, { where: "--step 1" });
    assert.equal(out.rc, 0);
    assert.match(out.stdout, /"size":"1006.00 MiB \(1054.87 MB\)"/);
  });
});
