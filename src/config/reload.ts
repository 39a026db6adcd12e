import type { Config } from './schema.js';

/**
 * What a SIGHUP reload may change while running. Each changed key path is either applied live or
 * reported as "restart required"; keys not listed here need a restart (the safe default for keys
 * other components add later: list them here when their component can take a new value live).
 */
export const LIVE_KEYS: readonly string[] = [
  'log.level',
  // QoS and retain are read on every publish.
  'mqtt.topics.*',
  'http.token',
  'http.tokenFile',
  'health.*',
  // The camera's decider is replaced: its stable/change history starts afresh.
  'cameras.*.publish.*',
  // A new Engine is loaded next to the old one and swapped in; on failure the old one stays.
  // (model.inferMaxBytes is read when the HTTP route is set up: restart required.)
  'model.path',
  'model.providers',
  'model.intraOpThreads',
  'model.interOpThreads',
  'model.intraOpSpinning',
  'model.workerNice',
  'model.gpuId',
  'model.cacheDir',
];

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

/** `*` stands for one key, or, at the end, for any keys below. */
export function isLive(path: string): boolean {
  const keys = path.split('.');
  return LIVE_KEYS.some((pattern) => {
    const pat = pattern.split('.');
    const tail = pat[pat.length - 1] === '*';
    if (tail ? keys.length < pat.length : keys.length !== pat.length) return false;
    return pat.every((p, i) => p === '*' || p === keys[i]);
  });
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
