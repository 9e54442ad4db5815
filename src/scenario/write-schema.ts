/**
 * Writes docs/scenario.schema.json from the zod schema: `npx tsx src/scenario/write-schema.ts`.
 * test/scenario/schema.test.ts fails while the committed file differs from what this writes.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { scenarioJsonSchema } from "./schema.ts";

export const SCHEMA_FILE = fileURLToPath(new URL("../../docs/scenario.schema.json", import.meta.url));

/** The file's exact text: two-space JSON and a final newline. */
export function scenarioSchemaText(): string {
  return `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, scenarioSchemaText());
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
