import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { packageRoot } from '../../src/paths.js';

/**
 * Validates payloads against the JSON Schema files shipped in schemas/ (not the zod definitions
 * they were made from), with ajv 8 in strict mode: what a consumer would do.
 */
const ajv = new Ajv2020({ strict: true, allErrors: true });
(addFormats as unknown as typeof addFormats.default)(ajv);
const validators = new Map<string, ValidateFunction>();
for (const f of readdirSync(join(packageRoot, 'schemas')).filter((f) => f.endsWith('.schema.json'))) {
  validators.set(f, ajv.compile(JSON.parse(readFileSync(join(packageRoot, 'schemas', f), 'utf8'))));
}

export function schemaErrors(file: string, payload: unknown): string[] {
  const validate = validators.get(file);
  if (!validate) throw new Error(`no schema schemas/${file}`);
  if (validate(payload)) return [];
  return (validate.errors ?? []).map((e) =>
    `${e.instancePath || '/'} ${e.message ?? ''} ${e.params ? JSON.stringify(e.params) : ''}`.trim(),
  );
}

/** Throws naming the schema and every violation. */
export function assertValid(file: string, payload: unknown, where = ''): void {
  const errors = schemaErrors(file, payload);
  if (errors.length)
    throw new Error(
      `${where ? where + ': ' : ''}payload does not match schemas/${file}:\n  ${errors.join('\n  ')}\npayload: ${JSON.stringify(payload).slice(0, 2000)}`,
    );
}

/**
 * The schema a message on this topic must match, by the topic contract; undefined for topics that
 * are not ours to check (command requests, which tests send malformed on purpose, and removals).
 */
export function schemaForTopic(topic: string, payload: string, haPrefix = 'homeassistant'): string | undefined {
  const p = topic.split('/');
  if (p[0] === haPrefix) return p.length === 5 && p[4] === 'config' && payload !== '' ? 'homeassistant-discovery.schema.json' : undefined;
  if (p.length === 3 && p[2] === 'status') return 'status.schema.json';
  if (p.length === 3 && p[2] === 'stats') return 'stats.schema.json';
  if (p.length === 4 && p[3] === 'result') return 'result.schema.json';
  if (p.length === 4 && p[3] === 'event') return 'event.schema.json';
  if (p.length === 5 && p[2] === 'cmd' && p[4] === 'response') return 'command-response.schema.json';
  if (p.length === 6 && p[2] === 'cmd' && p[5] === 'response') return 'command-response.schema.json';
  if (p.length === 4 && p[2] === 'model' && p[3] === 'state' && payload !== '') return 'model-state.schema.json';
  return undefined;
}
