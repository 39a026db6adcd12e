import type { Config } from './schema.js';

export interface ConfigChange {
  path: string;
  from: unknown;
  to: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Leaf-level differences by key path ("cameras.tray.fps"); arrays compare as whole values. */
export function diffConfig(a: unknown, b: unknown, prefix = ''): ConfigChange[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.filter((k) => !(prefix === '' && k === 'source')).flatMap((k) => diffConfig(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ path: prefix, from: a, to: b }];
}

/**
 * Whether a key path falls under a pattern: `*` stands for one key, or, at the end, for any keys
 * below. Components declare the keys they apply live as such patterns (src/component.ts).
 */
export function matchesKey(pattern: string, path: string): boolean {
  const keys = path.split('.');
  const pat = pattern.split('.');
  const tail = pat[pat.length - 1] === '*';
  if (tail ? keys.length < pat.length : keys.length !== pat.length) return false;
  return pat.every((p, i) => p === '*' || p === keys[i]);
}

/** For logs and /status: secrets are never shown, whatever key they sit under. */
export function describeChange(c: ConfigChange): string {
  if (/password|token/i.test(c.path)) return `${c.path} (changed)`;
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  return `${c.path}: ${show(c.from)} -> ${show(c.to)}`;
}

/**
 * The config to run with after a reload: `next` for live keys, `running` for the rest (which wait
 * for a restart). Diffing it against `next` again yields exactly the pending restart-required keys.
 */
export function mergeLive(running: Config, applied: ConfigChange[]): Config {
  const out = structuredClone(running) as unknown as Record<string, unknown>;
  for (const c of applied) setPath(out, c.path, structuredClone(c.to));
  return out as unknown as Config;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isPlainObject(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
}
