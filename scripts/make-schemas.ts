/**
 * Writes schemas/*.schema.json, the JSON Schemas (draft 2020-12) of every MQTT payload, from the
 * zod definitions in src/publish/schemas.ts. `npm run make-schemas`; a test fails when the
 * committed files differ from what this writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { PAYLOAD_SCHEMAS, payloadJsonSchema } from '../src/publish/schemas.js';

export const schemasDir = join(packageRoot, 'schemas');

export function renderSchemas(): Record<string, string> {
  return Object.fromEntries(Object.keys(PAYLOAD_SCHEMAS).map((f) => [f, JSON.stringify(payloadJsonSchema(f), null, 2) + '\n']));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  mkdirSync(schemasDir, { recursive: true });
  for (const [file, text] of Object.entries(renderSchemas())) {
    writeFileSync(join(schemasDir, file), text);
    console.log(`wrote schemas/${file}`);
  }
}
