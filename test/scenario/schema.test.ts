/**
 * docs/scenario.schema.json is generated from the zod schema and committed; they must not drift.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { scenarioJsonSchema, VIOLATION_KINDS } from "../../src/scenario/schema.ts";
import { SCHEMA_FILE, scenarioSchemaText } from "../../src/scenario/write-schema.ts";

describe("docs/scenario.schema.json", () => {
  it("equals the schema generated from the zod schema (regenerate: npx tsx src/scenario/write-schema.ts)", () => {
    assert.equal(readFileSync(SCHEMA_FILE, "utf8"), scenarioSchemaText());
  });

  it("describes the format: machine forms, steps as strings or objects, expectations", () => {
    const s = scenarioJsonSchema() as {
      required: string[];
      additionalProperties: boolean;
      properties: { machine: { anyOf: Array<{ required?: string[] }> }; steps: { items: { anyOf: Array<{ type: string; properties?: { expect?: { properties: { violation: { enum: string[] } } } } }> } } };
    };
    assert.deepEqual(s.required, ["machine"]);
    assert.equal(s.additionalProperties, false);
    assert.deepEqual(s.properties.machine.anyOf.slice(0, 3).map((m) => m.required), [["preset"], ["file"], ["dmesg"]]);
    const [asString, asObject] = s.properties.steps.items.anyOf;
    assert.equal(asString?.type, "string");
    assert.deepEqual(asObject?.properties?.expect?.properties.violation.enum, ["none", ...VIOLATION_KINDS]);
  });

  it("sizes in the inline machine spec are numbers or size strings", () => {
    const text = scenarioSchemaText();
    assert.ok(text.includes('"description": "A size or address: 4096, 0x1000 or 4G"'));
  });
});
