import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { configFiles } from '../helpers/config-files.js';

/** The mqtt.* and journal.* keys of the delivery path: defaults, resolved paths, checks. */

const { dir, file, problems } = configFiles('cfg-delivery-');

describe('config: mqtt delivery keys', () => {
  it('defaults: MQTT 5 chosen at run time, persistent session, results and events QoS 1, stats QoS 0, no expiry', () => {
    const c = loadConfig({ file: file('{}\n'), env: {} });
    expect(c.mqtt).toMatchObject({
      persistentSession: true,
      sessionExpirySec: 86400,
      inflight: 64,
      reconnectMaxSec: 15,
      topics: { result: { qos: 1, retain: false }, event: { qos: 1, retain: false }, stats: { qos: 0, retain: false } },
    });
    expect(c.mqtt.protocolVersion).toBeUndefined();
    expect(c.mqtt.resultExpirySec).toBeUndefined();
    expect(c.mqtt.tls).toBeUndefined();
  });

  it('TLS file paths resolve against the config folder; verification is on unless turned off', () => {
    const c = loadConfig({
      file: file('mqtt:\n  url: mqtts://b:8883\n  tls:\n    ca: pki/ca.crt\n    cert: /abs/c.crt\n    key: pki/c.key\n'),
      env: {},
    });
    expect(c.mqtt.tls).toEqual({ ca: join(dir, 'pki/ca.crt'), cert: '/abs/c.crt', key: join(dir, 'pki/c.key'), rejectUnauthorized: true });
  });

  it('rejects TLS options on a plain URL, half a client certificate, and bad QoS', () => {
    expect(problems('mqtt:\n  url: mqtt://b:1883\n  tls:\n    ca: ca.crt\n')).toEqual([
      'mqtt.tls: set, but mqtt.url is not a TLS URL; use mqtts://host:8883 (got "mqtt://b:1883")',
    ]);
    expect(problems('mqtt:\n  url: mqtts://b:8883\n  tls:\n    cert: c.crt\n')).toEqual([
      'mqtt.tls.key: a client certificate needs both mqtt.tls.cert and mqtt.tls.key',
    ]);
    expect(problems('mqtt:\n  topics:\n    result:\n      qos: 3\n')).toHaveLength(1);
    expect(problems('mqtt:\n  topics:\n    results:\n      qos: 1\n')).toEqual([
      'mqtt.topics.results: unknown key (did you mean "result"?)',
    ]);
  });
});

describe('config: journal', () => {
  it('the path defaults to systemd StateDirectory, else XDG state, else ~/.local/state', () => {
    const path = (env: NodeJS.ProcessEnv) => loadConfig({ file: file('{}\n'), env }).journal.path;
    expect(path({ STATE_DIRECTORY: '/var/lib/edge-inferd' })).toBe('/var/lib/edge-inferd/journal.sqlite');
    expect(path({ STATE_DIRECTORY: '/var/lib/a:/var/lib/b' })).toBe('/var/lib/a/journal.sqlite');
    expect(path({ XDG_STATE_HOME: '/srv/state' })).toBe('/srv/state/edge-inferd/journal.sqlite');
    expect(path({})).toBe(join(homedir(), '.local/state/edge-inferd/journal.sqlite'));
  });

  it('a relative journal.path is relative to the config file; bounds are checked', () => {
    const c = loadConfig({ file: file('journal:\n  path: data/j.sqlite\n  maxRows: 500\n  synchronous: full\n'), env: {} });
    expect(c.journal).toMatchObject({
      path: join(dir, 'data/j.sqlite'),
      maxRows: 500,
      synchronous: 'full',
      maxBytes: 64 * 1024 * 1024,
      retentionHours: 168,
    });
    expect(problems('journal:\n  maxRows: 10\n  synchronous: off\n')).toEqual([
      'journal.maxRows: must be >= 100 (got 10)',
      'journal.synchronous: must be one of "normal", "full" (got "off")',
    ]);
  });
});
