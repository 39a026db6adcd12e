import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { eyesDemoDir } from '../../src/paths.js';

/**
 * systemd/config.example.yaml is what install.sh writes to /etc/edge-inferd/config.yaml: it must
 * validate as shipped, and it must document every key of the schema. Settings switched off are
 * written "#key: value" (no space after '#'); prose comments have a space.
 */

const EXAMPLE = resolve(import.meta.dirname, '../../systemd/config.example.yaml');

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  type?: string | string[];
};

/** Every leaf key path of the JSON Schema; record levels (camera names) become '*'. */
function schemaPaths(s: JsonSchema, prefix = ''): string[] {
  if (s.properties) return Object.entries(s.properties).flatMap(([k, v]) => schemaPaths(v, prefix ? `${prefix}.${k}` : k));
  if (typeof s.additionalProperties === 'object') return schemaPaths(s.additionalProperties, `${prefix}.*`);
  return [prefix];
}

/** Every leaf key path written in the example, switched on or off; names under `cameras` and `pipelines` become '*'. */
function examplePaths(text: string): string[] {
  const all = parse(text.replace(/^(\s*)#(?=[A-Za-z_][\w-]*:(\s|$))/gm, '$1')) as Record<string, unknown>;
  const out: string[] = [];
  const walk = (v: unknown, path: string[]) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, c] of Object.entries(v))
        walk(c, [...path, path.length === 1 && (path[0] === 'cameras' || path[0] === 'pipelines') ? '*' : k]);
    } else out.push(path.join('.'));
  };
  walk(all, []);
  return out;
}

describe('systemd/config.example.yaml', () => {
  const text = readFileSync(EXAMPLE, 'utf8');

  it('validates as shipped (and runs the demo camera and model)', () => {
    const c = loadConfig({ file: EXAMPLE, env: {} });
    expect(Object.keys(c.cameras)).toEqual(['demo']);
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 8321 });
    expect(c.mqtt.url).toBe('embedded');
  });

  it('documents every schema key, and no key the schema does not have', () => {
    const want = schemaPaths(configJsonSchema() as JsonSchema).sort();
    const have = examplePaths(text).sort();
    expect(want).toContain('cameras.*.uri');
    expect(want).toContain('mqtt.embedded.port');
    expect(
      want.filter((p) => !have.includes(p)),
      'schema keys missing from the example',
    ).toEqual([]);
    expect(
      have.filter((p) => !want.includes(p)),
      'example keys the schema does not know',
    ).toEqual([]);
  });

  it('with every switched-off key turned on it still validates (no typo hides behind a "#")', () => {
    const all = parse(text.replace(/^(\s*)#(?=[A-Za-z_][\w-]*:(\s|$))/gm, '$1')) as Record<string, any>;
    // The example shows both ways to give each secret; a real config picks one.
    delete all.mqtt.password;
    delete all.http.tokenFile;
    all.mqtt.passwordFile = EXAMPLE;
    delete all.model.path; // a folder that only exists on a device
    all.pipelines.eyes[0].model = join(eyesDemoDir, 'face'); // the same shapes as the example's models
    all.pipelines.eyes[1].model = join(eyesDemoDir, 'eye-condition');
    const dir = mkdtempSync(join(tmpdir(), 'example-'));
    const file = join(dir, 'all-on.yaml');
    writeFileSync(file, stringify(all));
    try {
      const c = loadConfig({ file, env: {} });
      expect(Object.keys(c.cameras)).toEqual(['tray', 'door', 'replay', 'kiosk']);
      expect(c.deviceId).toBe('kiosk-7');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
