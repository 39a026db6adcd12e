import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { DaemonError } from '../errors.js';
import { defaultJournalPath, demoModelDir, demoSamplesDir } from '../paths.js';
import { applyEnvOverrides } from './env.js';
import { parseCameraUri } from './camera-uri.js';
import { formatIssues } from './format.js';
import { parseYaml } from './yaml-file.js';
import { checkPipelines } from './pipeline.js';
import { type DemoName, demoConfig } from './demo.js';
import { type Config, cameraSchema, configSchema, NAME_RE } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/edge-inferd/config.yaml';

/** Thrown with every problem found, one `path: problem` line each, so a technician fixes them all at once. */
export class ConfigError extends DaemonError {
  readonly problems: string[];
  readonly file: string;
  constructor(file: string, problems: string[]) {
    super('CONFIG_INVALID', `invalid config (${file}):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.file = file;
  }
}

export interface LoadOptions {
  /** An explicit --config path: it must exist. Without it the default path is used if present, else the demo. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** For tests: the path tried when no file is given. */
  defaultPath?: string;
  /** Without a config file: which built-in demo (default recycling). */
  demo?: DemoName;
}

/** Reads, env-overrides, validates and resolves the config. Throws ConfigError listing every problem. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const explicit = opts.file ?? env.EDGE_INFERD_CONFIG;
  // An explicit demo does not pick up the installed config file.
  const file =
    explicit ?? (!opts.demo && existsSync(opts.defaultPath ?? DEFAULT_CONFIG_PATH) ? (opts.defaultPath ?? DEFAULT_CONFIG_PATH) : undefined);

  let raw: Record<string, unknown> = demoConfig(opts.demo ?? 'recycling');
  if (file !== undefined) raw = readYamlFile(file);
  const label = file ?? (opts.demo && opts.demo !== 'recycling' ? `built-in ${opts.demo} demo` : 'built-in demo');

  const overrides = applyEnvOverrides(configSchema, raw, env);
  const parsed = configSchema.safeParse(raw);
  const problems = [...overrides.problems];
  if (!parsed.success) problems.push(...formatIssues(configSchema, raw, parsed.error.issues, { envSources: overrides.sources }));
  if (problems.length || !parsed.success) throw new ConfigError(label, problems);

  const baseDir = file ? dirname(resolve(file)) : process.cwd();
  const c = parsed.data;
  const deviceId = c.deviceId ?? safeHostname();
  const cameras = c.cameras ?? { demo: cameraSchema.parse({ uri: `images://${demoSamplesDir}`, fps: 2 }) };
  for (const cam of Object.values(cameras)) cam.uri = resolvePathUri(cam.uri, baseDir);
  const journalPath = c.journal.path ? resolve(baseDir, c.journal.path) : defaultJournalPath(env);
  const config: Config = {
    ...c,
    deviceId,
    cameras,
    model: {
      ...c.model,
      path: c.model.path ? resolve(baseDir, c.model.path) : demoModelDir,
      cacheDir: c.model.cacheDir ? resolve(baseDir, c.model.cacheDir) : undefined,
      rollout: {
        ...c.model.rollout,
        // Beside the journal: the state directory under systemd (StateDirectory=), owned by the daemon.
        dir: c.model.rollout.dir ? resolve(baseDir, c.model.rollout.dir) : join(dirname(journalPath), 'models'),
        caFile: c.model.rollout.caFile && resolve(baseDir, c.model.rollout.caFile),
      },
    },
    mqtt: {
      ...c.mqtt,
      passwordFile: c.mqtt.passwordFile ? resolve(baseDir, c.mqtt.passwordFile) : undefined,
      tls: c.mqtt.tls && {
        ...c.mqtt.tls,
        ca: c.mqtt.tls.ca && resolve(baseDir, c.mqtt.tls.ca),
        cert: c.mqtt.tls.cert && resolve(baseDir, c.mqtt.tls.cert),
        key: c.mqtt.tls.key && resolve(baseDir, c.mqtt.tls.key),
      },
    },
    http: { ...c.http, tokenFile: c.http.tokenFile ? resolve(baseDir, c.http.tokenFile) : undefined },
    journal: { ...c.journal, path: journalPath },
    source: label,
  };
  const late = [...checkResolved(config), ...checkPipelines(config.pipelines, config.cameras, baseDir), ...resolveHttpToken(config)];
  if (late.length) throw new ConfigError(label, late);
  return config;
}

function readYamlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String(err);
    throw new ConfigError(file, [`${file}: cannot read config: ${why}`]);
  }
  const parsed = parseYaml(text, file);
  if (!parsed.ok) throw new ConfigError(file, parsed.problems);
  const value = parsed.value;
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(file, [`(root): expected a mapping of settings (got ${Array.isArray(value) ? 'a list' : typeof value})`]);
  }
  return value as Record<string, unknown>;
}

/** images:// and file:// take a path; a relative one is relative to the config file's folder. */
function resolvePathUri(uri: string, baseDir: string): string {
  const scheme = ['images://', 'file://'].find((s) => uri.startsWith(s));
  if (!scheme) return uri;
  const p = uri.slice(scheme.length);
  return `${scheme}${isAbsolute(p) ? p : resolve(baseDir, p)}`;
}

/** Checks that need the resolved values. */
function checkResolved(c: Config): string[] {
  const problems: string[] = [];
  if (Object.keys(c.cameras).length === 0) problems.push('cameras: at least one camera is needed (got none)');
  if (!NAME_RE.test(c.deviceId)) problems.push(`deviceId: the hostname "${c.deviceId}" is not a valid topic level; set deviceId`);
  const urls = typeof c.mqtt.url === 'string' ? [c.mqtt.url] : c.mqtt.url;
  urls.forEach((url, i) => {
    const where = typeof c.mqtt.url === 'string' ? 'mqtt.url' : `mqtt.url[${i}]`;
    if (url === 'embedded' && typeof c.mqtt.url !== 'string') problems.push(`${where}: "embedded" cannot be part of a list of brokers`);
    else if (url !== 'embedded' && !/^(mqtts?|wss?|tcp|tls):\/\/[^\s/]+/.test(url)) {
      problems.push(`${where}: must be "embedded" or a broker URL like mqtt://host:1883 or mqtts://host:8883 (got ${JSON.stringify(url)})`);
    }
  });
  if (c.mqtt.reconnectMinSec > c.mqtt.reconnectMaxSec) {
    problems.push(`mqtt.reconnectMinSec: ${c.mqtt.reconnectMinSec} is more than mqtt.reconnectMaxSec (${c.mqtt.reconnectMaxSec})`);
  }
  const tls = c.mqtt.tls;
  for (const url of urls) {
    if (tls && url !== 'embedded' && !/^(mqtts|wss|tls):/.test(url)) {
      problems.push(`mqtt.tls: set, but mqtt.url is not a TLS URL; use mqtts://host:8883 (got ${JSON.stringify(url)})`);
    }
  }
  if (tls && c.mqtt.url === 'embedded')
    problems.push('mqtt.tls: the embedded broker speaks plain MQTT on 127.0.0.1; remove mqtt.tls or set mqtt.url');
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    problems.push(`mqtt.tls.${tls.cert === undefined ? 'cert' : 'key'}: a client certificate needs both mqtt.tls.cert and mqtt.tls.key`);
  }
  if (c.mqtt.password !== undefined && c.mqtt.passwordFile !== undefined) {
    problems.push('mqtt.passwordFile: set either mqtt.password or mqtt.passwordFile, not both');
  }
  const e = c.mqtt.embedded;
  if (
    c.mqtt.url === 'embedded' &&
    !isLoopback(e.host) &&
    (c.mqtt.username === undefined || (c.mqtt.password === undefined && c.mqtt.passwordFile === undefined))
  ) {
    // Like HTTP: commands reach the cameras (a snapshot is a camera image), so the LAN needs a login.
    problems.push(
      `mqtt.embedded.host: listening beyond loopback (got ${JSON.stringify(e.host)}) needs authentication; ` +
        `set mqtt.username and mqtt.passwordFile (clients of the embedded broker must then log in with ` +
        `them), or listen on 127.0.0.1`,
    );
  }
  const ws = e.websocket;
  if (
    c.mqtt.url === 'embedded' &&
    ws &&
    !isLoopback(ws.host) &&
    (c.mqtt.username === undefined || (c.mqtt.password === undefined && c.mqtt.passwordFile === undefined))
  ) {
    problems.push(
      `mqtt.embedded.websocket.host: listening beyond loopback (got ${JSON.stringify(ws.host)}) needs ` +
        `authentication; set mqtt.username and mqtt.passwordFile, or listen on 127.0.0.1`,
    );
  }
  if (ws && ws.port === e.port && ws.host === e.host) {
    problems.push(`mqtt.embedded.websocket.port: must differ from mqtt.embedded.port (${e.port})`);
  }
  for (const [name, cam] of Object.entries(c.cameras)) {
    // The person's own picture, as seen, only to a screen on this device.
    if (cam.privacy?.preview === 'on' && c.http.enabled && !isLoopback(c.http.host)) {
      problems.push(
        `cameras.${name}.privacy.preview: "on" shows people as the camera sees them and needs HTTP on loopback only (got ` +
          `http.host ${JSON.stringify(c.http.host)}); use "redact", or listen on 127.0.0.1`,
      );
    }
    problems.push(...parseCameraUri(name, cam).problems);
    if (cam.reconnect.maxMs < cam.reconnect.initialMs) {
      problems.push(`cameras.${name}.reconnect.maxMs: must be >= initialMs (${cam.reconnect.initialMs}) (got ${cam.reconnect.maxMs})`);
    }
  }
  return problems;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Reads http.tokenFile into http.token, and refuses to expose the endpoint beyond loopback without
 * a token: /status and /snapshot.jpg show what the camera sees.
 */
function resolveHttpToken(c: Config): string[] {
  const h = c.http;
  if (h.token !== undefined && h.tokenFile !== undefined) return ['http.tokenFile: set either http.token or http.tokenFile, not both'];
  if (h.tokenFile !== undefined) {
    let token: string;
    try {
      token = readFileSync(h.tokenFile, 'utf8').split(/\r?\n/)[0].trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return [
        `http.tokenFile: cannot read ${h.tokenFile}: ${code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String(err)}`,
      ];
    }
    if (token.length < 16) return [`http.tokenFile: the token in ${h.tokenFile} must be at least 16 characters (got ${token.length})`];
    h.token = token;
  }
  if (h.enabled && !isLoopback(h.host) && h.token === undefined) {
    return [
      `http.token: required when http.host is not a loopback address (got http.host ` +
        `${JSON.stringify(h.host)}); set http.token or http.tokenFile, or listen on 127.0.0.1 and use an SSH tunnel`,
    ];
  }
  return [];
}

function safeHostname(): string {
  const h = hostname()
    .split('.')[0]
    .replace(/[^A-Za-z0-9_-]/g, '-');
  return h || 'edge-inferd';
}
