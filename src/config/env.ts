import { parse as parseYamlScalar } from 'yaml';
import { underflows } from './yaml-file.js';
import type { z } from 'zod';
import { closest } from './format.js';
import { isRecordAt, keysAt } from './walk.js';

/**
 * Environment overrides: EDGE_INFERD_<KEY>[__<KEY>...] sets a config key. `__` separates levels;
 * inside a level, case and single underscores are ignored, so EDGE_INFERD_DEVICE_ID -> deviceId,
 * EDGE_INFERD_MQTT__URL -> mqtt.url, EDGE_INFERD_CAMERAS__TRAY__FPS -> cameras.tray.fps.
 * Values are read as YAML scalars/flow collections (8080 -> number, true -> boolean, [a, b] -> list).
 */
export const ENV_PREFIX = 'EDGE_INFERD_';

/** Variables under the prefix that are not config keys. */
const RESERVED = new Set(['EDGE_INFERD_CONFIG']);

export interface EnvOverrides {
  /** Errors for variables that name no config key. */
  problems: string[];
  /** Applied paths and the variable each came from. */
  sources: Map<string, string>;
}

const norm = (s: string) => s.replace(/_/g, '').toLowerCase();

export function applyEnvOverrides(schema: z.ZodType, target: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvOverrides {
  const problems: string[] = [];
  const sources = new Map<string, string>();
  const names = Object.keys(env)
    .filter((k) => k.startsWith(ENV_PREFIX) && !RESERVED.has(k))
    .sort();
  for (const name of names) {
    const raw = env[name] ?? '';
    const segments = name.slice(ENV_PREFIX.length).split('__');
    const path: string[] = [];
    let ok = true;
    for (const seg of segments) {
      const keys = keysAt(schema, path);
      const match = keys.find((k) => norm(k) === norm(seg));
      if (match) {
        path.push(match);
        continue;
      }
      if (keys.length === 0 && isRecordAt(schema, path)) {
        // A record level (camera names): reuse an existing entry's spelling, else take it as written, lowercased.
        const existing = Object.keys(getObj(target, path) ?? {}).find((k) => norm(k) === norm(seg));
        path.push(existing ?? seg.toLowerCase());
        continue;
      }
      const guess = closest(
        seg,
        keys.map((k) => k.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()),
      );
      const hint = guess ? ` (did you mean ${ENV_PREFIX}${[...path.map(envSeg), guess].join('__')}?)` : '';
      problems.push(`${name}: no config key "${[...path, seg.toLowerCase()].join('.')}"${hint}`);
      ok = false;
      break;
    }
    if (!ok) continue;
    const value = parseValue(raw);
    if (underflows(raw, value)) {
      problems.push(`${name}: ${raw.trim()} is too close to 0 for a number here (it would read as 0); write 0 or a larger value`);
      continue;
    }
    setPath(target, path, value);
    sources.set(path.join('.'), name);
  }
  return { problems, sources };
}

const envSeg = (k: string) => k.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

function parseValue(raw: string): unknown {
  try {
    const v = parseYamlScalar(raw);
    return v === null ? raw : v;
  } catch {
    return raw;
  }
}

function getObj(target: Record<string, unknown>, path: string[]): Record<string, unknown> | undefined {
  let cur: unknown = target;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>) : undefined;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let cur: Record<string, unknown> = target;
  for (const p of path.slice(0, -1)) {
    const next = cur[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}
