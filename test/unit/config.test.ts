import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../src/config/format.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { demoModelDir, demoSamplesDir } from '../../src/paths.js';
import { CLI } from '../helpers/daemon.js';
import { configFiles } from '../helpers/config-files.js';

const { dir, file, problems } = configFiles('cfg-test-');

describe('config: bad configs give exact `path: problem (got X)` messages', () => {
  const cases: [string, string, string[]][] = [
    ['wrong type', 'http:\n  port: "eighty"\n', ['http.port: expected number (got "eighty")']],
    ['out of range', 'http:\n  port: 70000\n', ['http.port: must be <= 65535 (got 70000)']],
    ['non-integer', 'http:\n  port: 80.5\n', ['http.port: expected int (got 80.5)']],
    ['unknown top-level key with suggestion', 'mqqt:\n  url: embedded\n', ['mqqt: unknown key (did you mean "mqtt"?)']],
    ['unknown nested key with suggestion', 'mqtt:\n  prefx: kiosk\n', ['mqtt.prefx: unknown key (did you mean "prefix"?)']],
    [
      'unknown key without a close match lists the valid ones',
      'log:\n  colour: true\n',
      ['log.colour: unknown key (valid keys: level, format)'],
    ],
    ['enum', 'log:\n  level: loud\n', ['log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace" (got "loud")']],
    [
      'bad camera name',
      'cameras:\n  "front door":\n    uri: images:///tmp\n',
      ['cameras.front door: camera name must be 1-64 letters, digits, "_" or "-", starting with a letter or digit (got "front door")'],
    ],
    ['camera without uri', 'cameras:\n  tray:\n    fps: 5\n', ['cameras.tray.uri: is required (expected string)']],
    ['negative fps', 'cameras:\n  tray:\n    uri: images:///tmp\n    fps: -1\n', ['cameras.tray.fps: must be >= 0.01 (got -1)']],
    [
      'bad provider in list',
      'model:\n  providers: [tensorrt, gpu]\n',
      ['model.providers: must be "auto" or a list of "tensorrt", "cuda", "cpu" (got ["tensorrt","gpu"])'],
    ],
    [
      'bad mqtt url',
      'mqtt:\n  url: broker.local\n',
      ['mqtt.url: must be "embedded" or a broker URL like mqtt://host:1883 or mqtts://host:8883 (got "broker.local")'],
    ],
    [
      'a list of brokers with a bad one',
      'mqtt:\n  url: [mqtt://a:1883, embedded, b:1883]\n',
      [
        'mqtt.url[1]: "embedded" cannot be part of a list of brokers',
        'mqtt.url[2]: must be "embedded" or a broker URL like mqtt://host:1883 or mqtts://host:8883 (got "b:1883")',
      ],
    ],
    [
      'reconnect caps the wrong way round',
      'mqtt:\n  reconnectMinSec: 20\n  reconnectMaxSec: 5\n',
      ['mqtt.reconnectMinSec: 20 is more than mqtt.reconnectMaxSec (5)'],
    ],
    [
      'password and passwordFile',
      'mqtt:\n  url: mqtt://b:1883\n  password: x\n  passwordFile: /p\n',
      ['mqtt.passwordFile: set either mqtt.password or mqtt.passwordFile, not both'],
    ],
    [
      'topic-unsafe prefix',
      'mqtt:\n  prefix: "a/b"\n',
      ['mqtt.prefix: must be 1-64 letters, digits, "_" or "-", starting with a letter or digit (got "a/b")'],
    ],
    ['a list at the root', '- a\n- b\n', ['(root): expected a mapping of settings (got a list)']],
    ['empty cameras', 'cameras: {}\n', ['cameras: at least one camera is needed (got none)']],
    [
      'unknown policy',
      'cameras:\n  tray:\n    uri: images:///tmp\n    publish:\n      policy: sometimes\n',
      ['cameras.tray.publish.policy: must be one of "every", "change", "stable", "interval" (got "sometimes")'],
    ],
    [
      'stable k above n',
      'cameras:\n  tray:\n    uri: images:///tmp\n    publish:\n      stable: { k: 6, n: 5 }\n',
      ['cameras.tray.publish.stable.k: must be <= n (5) (got 6)'],
    ],
    [
      'a key of publish misspelt',
      'cameras:\n  tray:\n    uri: images:///tmp\n    publish:\n      intervalSecs: 2\n',
      ['cameras.tray.publish.intervalSecs: unknown key (did you mean "intervalSec"?)'],
    ],
    [
      'home assistant prefix with a slash',
      'homeassistant:\n  prefix: ha/x\n',
      ['homeassistant.prefix: must be 1-64 letters, digits, "_" or "-", starting with a letter or digit (got "ha/x")'],
    ],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => expect(problems(text)).toEqual(want));
  }

  it('reports every problem at once', () => {
    expect(problems('http:\n  port: -1\nlog:\n  level: x\nfoo: 1\n')).toEqual([
      'http.port: must be >= 0 (got -1)',
      'log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace" (got "x")',
      'foo: unknown key (valid keys: deviceId, cameras, model, pipelines, mqtt, http, health, log, stats, commands, homeassistant, journal)',
    ]);
  });

  it('YAML syntax errors name the file and line', () => {
    const p = file('mqtt:\n  url: [unclosed\n');
    try {
      loadConfig({ file: p, env: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems[0]).toMatch(new RegExp(`^${p.replace(/[.]/g, '\\.')}:\\d+: YAML: `));
    }
  });

  it('a missing explicit file is an error, not the demo', () => {
    expect(() => loadConfig({ file: join(dir, 'nope.yaml'), env: {} })).toThrow(/nope\.yaml: cannot read config: file not found/);
  });
});

describe('config: defaults, paths and environment overrides', () => {
  it('no file at all means the built-in demo', () => {
    const c = loadConfig({ env: {}, defaultPath: join(dir, 'absent.yaml') });
    expect(c.source).toBe('built-in demo');
    expect(c.cameras).toEqual({
      demo: {
        uri: `images://${demoSamplesDir}`,
        fps: 2,
        enabled: true,
        reconnect: { initialMs: 1000, maxMs: 30_000, jitter: 0.2, stallMs: 10_000 },
        publish: { policy: 'every', intervalSec: 1, stable: { k: 3, n: 5, minScore: 0.5 }, events: true },
      },
    });
    expect(c.stats).toEqual({ intervalSec: 30 });
    expect(c.commands).toEqual({ enabled: true, maxBytes: 16_384 });
    expect(c.homeassistant).toEqual({ enabled: false, prefix: 'homeassistant' });
    expect(c.model.path).toBe(demoModelDir);
    expect(c.mqtt.url).toBe('embedded');
    expect(c.http).toEqual({
      enabled: true,
      host: '127.0.0.1',
      port: 8321,
      kiosk: false,
      allowedHosts: [],
      limits: { connections: 128, perClient: 16, bodyTimeoutSec: 30, inferConcurrent: 1 },
      cors: { origins: [] },
      events: { maxClients: 32, heartbeatSec: 15, bufferBytes: 262_144 },
      preview: { maxFps: 10, maxClients: 4, quality: 70 },
    });
    expect(c.deviceId).toBe(
      hostname()
        .split('.')[0]
        .replace(/[^A-Za-z0-9_-]/g, '-'),
    );
  });

  it('relative paths resolve against the config file folder', () => {
    const c = loadConfig({ file: file('model:\n  path: ./pkg\ncameras:\n  tray:\n    uri: images://samples\n'), env: {} });
    expect(c.model.path).toBe(join(dir, 'pkg'));
    expect(c.cameras.tray.uri).toBe(`images://${join(dir, 'samples')}`);
  });

  it('EDGE_INFERD_* variables override file values, typed by YAML', () => {
    const c = loadConfig({
      file: file('mqtt:\n  url: mqtt://a:1883\ncameras:\n  Tray:\n    uri: images:///x\n'),
      env: {
        EDGE_INFERD_MQTT__URL: 'mqtt://b:1883',
        EDGE_INFERD_HTTP__PORT: '9000',
        EDGE_INFERD_DEVICE_ID: 'kiosk-7',
        EDGE_INFERD_CAMERAS__TRAY__FPS: '12.5',
        EDGE_INFERD_MODEL__PROVIDERS: '[cuda, cpu]',
        EDGE_INFERD_LOG__LEVEL: 'debug',
        EDGE_INFERD_CAMERAS__TRAY__PUBLISH__POLICY: 'stable',
        EDGE_INFERD_CAMERAS__TRAY__PUBLISH__STABLE__MIN_SCORE: '0.8',
      },
    });
    expect(c.cameras.Tray.publish).toMatchObject({ policy: 'stable', stable: { k: 3, n: 5, minScore: 0.8 } });
    expect(c.mqtt.url).toBe('mqtt://b:1883');
    expect(c.http.port).toBe(9000);
    expect(c.deviceId).toBe('kiosk-7');
    expect(c.cameras.Tray.fps).toBe(12.5);
    expect(c.model.providers).toEqual(['cuda', 'cpu']);
    expect(c.log.level).toBe('debug');
  });

  it('a bad env value names the variable; an unknown variable suggests the right one', () => {
    expect(problems('{}\n', { EDGE_INFERD_HTTP__PORT: 'abc' })).toEqual([
      'http.port: expected number (got "abc") [from EDGE_INFERD_HTTP__PORT]',
    ]);
    expect(problems('{}\n', { EDGE_INFERD_MQTT__URLL: 'x' })).toEqual([
      'EDGE_INFERD_MQTT__URLL: no config key "mqtt.urll" (did you mean EDGE_INFERD_MQTT__URL?)',
    ]);
  });

  it('the JSON Schema comes from the same schema', () => {
    const s = configJsonSchema() as { properties: Record<string, any>; additionalProperties: boolean };
    expect(Object.keys(s.properties)).toEqual([
      'deviceId',
      'cameras',
      'model',
      'pipelines',
      'mqtt',
      'http',
      'health',
      'log',
      'stats',
      'commands',
      'homeassistant',
      'journal',
    ]);
    expect(s.additionalProperties).toBe(false);
    expect(s.properties.http.properties.port).toMatchObject({ type: 'integer', maximum: 65535, default: 8321 });
  });
});

describe('edge-inferd check-config', () => {
  it('exits 0 for a valid file', () => {
    const r = spawnSync(process.execPath, [CLI, 'check-config', file('deviceId: k1\n')], {
      encoding: 'utf8',
      env: { ...process.env, EDGE_INFERD_CONFIG: '' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/: OK \(device k1, cameras: demo/);
  });
  it('exits 1 listing every problem', () => {
    const p = file('http:\n  port: -5\nmqtt:\n  prefx: a\n');
    const r = spawnSync(process.execPath, [CLI, 'check-config', p], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`${p}: 2 problems\n  mqtt.prefx: unknown key (did you mean "prefix"?)\n  http.port: must be >= 0 (got -5)\n`);
  });
});

describe('config: a camera defined only through the environment', () => {
  it('EDGE_INFERD_CAMERAS__DOOR__URI makes a camera "door" (the name lowercased), with no file entry to take the spelling from', () => {
    const c = loadConfig({
      file: file('{}\n'),
      env: { EDGE_INFERD_CAMERAS__DOOR__URI: 'test://ball', EDGE_INFERD_CAMERAS__FRONT_DOOR__URI: 'test://snow' },
    });
    expect(Object.keys(c.cameras).sort()).toEqual(['door', 'front_door']);
    expect(c.cameras.door.uri).toBe('test://ball');
    expect(c.cameras.front_door.uri).toBe('test://snow');
  });
});

describe('config: "did you mean" only for a plausible typo', () => {
  it('log.lvl (2 edits from "level", more than a third of its length) lists the valid keys instead of guessing', () => {
    // The suggestion is allowed up to floor(len/3) edits of the key it names: 1 for "level".
    expect(editDistance('lvl', 'level')).toBe(2);
    expect(editDistance('lvl', 'level')).toBeGreaterThan(Math.floor('level'.length / 3));
    expect(closest('lvl', ['level', 'format'])).toBeUndefined();
    expect(problems('log:\n  lvl: debug\n')).toEqual(['log.lvl: unknown key (valid keys: level, format)']);
    expect(problems('{}\n', { EDGE_INFERD_LOG__LVL: 'debug' })).toEqual(['EDGE_INFERD_LOG__LVL: no config key "log.lvl"']);
    // one edit away is a typo worth naming
    expect(problems('log:\n  levl: debug\n')).toEqual(['log.levl: unknown key (did you mean "level"?)']);
  });
});

describe('config: http.host on every IPv6 interface', () => {
  it('"::" without a token is refused like 0.0.0.0; with a token it is accepted', () => {
    expect(problems('http:\n  host: "::"\n')).toEqual([
      'http.token: required when http.host is not a loopback address (got http.host "::"); set http.token or http.tokenFile, or listen on 127.0.0.1 and use an SSH tunnel',
    ]);
    const c = loadConfig({ file: file('http:\n  host: "::"\n'), env: { EDGE_INFERD_HTTP__TOKEN: 'a-long-enough-token' } });
    expect(c.http).toMatchObject({ host: '::', token: 'a-long-enough-token' });
  });
});

describe('config: the kiosk screen (issue 20)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-kiosk-'));
  const load = (yaml: string) => {
    const f = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    return loadConfig({ file: f, env: {} });
  };
  const problems = (yaml: string): string[] => {
    try {
      load(yaml);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it('refuses privacy.preview: on unless HTTP listens on loopback only', () => {
    const cams = 'cameras:\n  tray:\n    uri: test://ball\n    privacy:\n      preview: on\n';
    expect(problems(cams)).toEqual([]);
    expect(problems(`${cams}http:\n  host: 0.0.0.0\n  token: sixteen-characters-x\n`)).toEqual([
      'cameras.tray.privacy.preview: "on" shows people as the camera sees them and needs HTTP on loopback only (got http.host "0.0.0.0"); use "redact", or listen on 127.0.0.1',
    ]);
  });

  it('refuses an anonymous WebSocket listener beyond loopback, like the TCP one', () => {
    expect(problems('mqtt:\n  embedded:\n    websocket: {}\n')).toEqual([]);
    expect(load('mqtt:\n  embedded:\n    websocket: {}\n').mqtt.embedded.websocket).toEqual({
      host: '127.0.0.1',
      port: 9001,
      path: '/mqtt',
    });
    expect(problems('mqtt:\n  embedded:\n    websocket: { host: 0.0.0.0 }\n')).toEqual([
      'mqtt.embedded.websocket.host: listening beyond loopback (got "0.0.0.0") needs authentication; set mqtt.username and mqtt.passwordFile, or listen on 127.0.0.1',
    ]);
  });

  it('takes only origins in http.cors.origins', () => {
    expect(problems('http:\n  cors:\n    origins: [http://kiosk.local:8080]\n')).toEqual([]);
    expect(problems('http:\n  cors:\n    origins: ["*"]\n')[0]).toContain('http.cors.origins[0]: must be an origin');
  });
});
