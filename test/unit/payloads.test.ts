import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { renderSchemas, schemasDir } from '../../scripts/make-schemas.js';
import { App } from '../../src/app.js';
import type { Frame } from '../../src/capture/frame.js';
import { loadConfig } from '../../src/config/load.js';
import { topicMatches } from '../../src/publish/client.js';
import { CommandHandler, type CommandHandlers } from '../../src/publish/commands.js';
import { HomeAssistantDiscovery } from '../../src/publish/homeassistant.js';
import { commandResponse, eventPayload, resultPayload, statusPayload } from '../../src/publish/payload.js';
import { StatsReporter } from '../../src/publish/stats.js';
import { Topics } from '../../src/publish/topics.js';
import { assertValid, schemaErrors } from '../helpers/schemas.js';

const model = { name: 'demo', version: '1.0.0', sha256: 'a'.repeat(64), task: 'classify' as const, provider: 'cpu' };
const frame: Frame = {
  camera: 'tray',
  seq: 4,
  width: 320,
  height: 240,
  stride: 960,
  format: 'RGB',
  data: new Uint8Array(0),
  capturedAtMs: 1_700_000_000_000,
  name: 'glass-1.png',
};
const inference = {
  task: 'classify' as const,
  model,
  top: [
    { index: 1, label: 'glass', score: 0.97 },
    { index: 0, label: 'cardboard', score: 0.02 },
  ],
  latencyMs: { preprocess: 1.23456, inference: 2, postprocess: 0.1 },
};
const rule = { k: 3, n: 5, minScore: 0.5 };

describe('schemas/ are the zod definitions, rendered', () => {
  it('the committed files are current (else: npm run make-schemas)', () => {
    const want = renderSchemas();
    const have = Object.fromEntries(
      readdirSync(schemasDir)
        .filter((f) => f.endsWith('.schema.json'))
        .map((f) => [f, readFileSync(join(schemasDir, f), 'utf8')]),
    );
    expect(Object.keys(have).sort()).toEqual(Object.keys(want).sort());
    for (const f of Object.keys(want)) expect(have[f], `schemas/${f} is stale: run npm run make-schemas`).toBe(want[f]);
  });
});

describe('payload builders produce what the shipped schemas accept, and the schemas reject what they must', () => {
  it('result', () => {
    const r = resultPayload({
      deviceId: 'kiosk-1',
      seq: 1,
      frame,
      inference,
      model,
      nowMs: frame.capturedAtMs + 5,
      policy: 'stable',
      stable: { label: 'glass', score: 0.9, frames: 3, window: 5, becameMs: frame.capturedAtMs },
    });
    assertValid('result.schema.json', r);
    expect(r).toMatchObject({
      label: 'glass',
      score: 0.97,
      policy: 'stable',
      latencyMs: { preprocess: 1.235, total: 5 },
      stable: { label: 'glass', frames: 3, since: '2023-11-14T22:13:20.000Z' },
    });
    // the result schema is a oneOf by task: the classify branch names the stray key
    expect(schemaErrors('result.schema.json', { ...r, extra: 1 })).toContain(
      '/ must NOT have additional properties {"additionalProperty":"extra"}',
    );
    expect(schemaErrors('result.schema.json', { ...r, task: 'detect' })).toContain(
      '/ must have required property \'detections\' {"missingProperty":"detections"}',
    );
    expect(schemaErrors('result.schema.json', { ...r, score: 1.5 })).toContain('/score must be <= 1 {"comparison":"<=","limit":1}');
    expect(schemaErrors('result.schema.json', { ...r, id: 'not-a-uuid' })[0]).toMatch(/^\/id must match/);
    const { seq: _, ...noSeq } = r;
    expect(schemaErrors('result.schema.json', noSeq)).toContain('/ must have required property \'seq\' {"missingProperty":"seq"}');
  });

  it('events of each type; a change without `previous` is rejected', () => {
    const base = { deviceId: 'kiosk-1', camera: 'tray', seq: 1, model, rule, nowMs: 1_700_000_000_100 };
    const change = eventPayload({
      ...base,
      frame,
      decision: {
        type: 'change',
        label: 'glass',
        score: 0.9,
        atMs: 1_700_000_000_000,
        sinceMs: 1_700_000_000_000,
        frames: 1,
        previous: null,
      },
    });
    const stable = eventPayload({
      ...base,
      frame,
      decision: { type: 'stable', label: 'glass', score: 0.9, atMs: 1_700_000_000_000, sinceMs: 1_699_999_999_800, frames: 3 },
    });
    const cleared = eventPayload({
      ...base,
      decision: {
        type: 'cleared',
        label: 'glass',
        score: 0,
        atMs: 1_700_000_000_000,
        sinceMs: 1_699_999_999_800,
        frames: 7,
        reason: 'paused',
      },
    });
    for (const e of [change, stable, cleared]) assertValid('event.schema.json', e);
    expect(cleared).toMatchObject({ type: 'cleared', reason: 'paused', frame: null, rule });
    const { previous: _, ...noPrevious } = change as Record<string, unknown>;
    expect(schemaErrors('event.schema.json', noPrevious).length).toBeGreaterThan(0);
  });

  it('status (birth with camera states, and the bare will)', () => {
    assertValid(
      'status.schema.json',
      statusPayload('online', 'kiosk-1', {
        version: '0.1.0',
        model: { name: 'demo', version: '1', sha256: 'b'.repeat(64) },
        provider: 'cpu',
        cameras: ['tray'],
        cameraState: { tray: 'paused' },
      }),
    );
    assertValid('status.schema.json', statusPayload('offline', 'kiosk-1'));
    expect(
      schemaErrors('status.schema.json', statusPayload('offline', 'kiosk-1', { cameraState: { tray: 'sleeping' as never } })).length,
    ).toBeGreaterThan(0);
  });

  it('stats: totals, fps and latency over the period', () => {
    const s = new StatsReporter({ deviceId: 'kiosk-1', intervalSec: 10 });
    const counters = {
      inferred: 20,
      published: 5,
      heldBack: 15,
      events: { change: 5, stable: 4, cleared: 3 },
      labels: { glass: 12, metal: 8 },
    };
    s.recordLatency('tray', 2);
    s.recordLatency('tray', 4);
    const first = s.build(
      {
        cameras: { tray: { state: 'streaming', counters, failures: 0, dropped: 1 } },
        mqtt: { connected: true, connects: 1, publishFailures: 0 },
        startedAtMs: 1000,
      },
      11_000,
    );
    assertValid('stats.schema.json', first);
    expect(first.cameras.tray).toMatchObject({ fps: 2, latencyMs: { mean: 3, max: 4 }, heldBack: 15 });
    const second = s.build(
      {
        cameras: { tray: { state: 'paused', counters: { ...counters, inferred: 25 }, failures: 0, dropped: 1 } },
        mqtt: { connected: true, connects: 1, publishFailures: 0 },
        startedAtMs: 1000,
      },
      21_000,
    );
    assertValid('stats.schema.json', second);
    expect(second).toMatchObject({ seq: 2, uptimeSec: 20, cameras: { tray: { fps: 0.5, latencyMs: null, state: 'paused' } } });
  });

  it('command responses: each success shape and the error shape', () => {
    assertValid(
      'command-response.schema.json',
      commandResponse('kiosk-1', 'r1', { command: 'pause', ok: true, result: { changed: ['tray'], paused: ['tray'] } }),
    );
    assertValid(
      'command-response.schema.json',
      commandResponse('kiosk-1', 7, { command: 'reload', ok: true, result: { ok: true, changed: [], problems: [] } }),
    );
    assertValid(
      'command-response.schema.json',
      commandResponse('kiosk-1', null, { command: 'nope', ok: false, error: { code: 'UNKNOWN_COMMAND', message: 'x' } }),
    );
    // a pause result under the snapshot command is not a valid response
    expect(
      schemaErrors(
        'command-response.schema.json',
        commandResponse('kiosk-1', 'r1', { command: 'snapshot', ok: true, result: { changed: [], paused: [] } }),
      ).length,
    ).toBeGreaterThan(0);
    expect(
      schemaErrors(
        'command-response.schema.json',
        commandResponse('kiosk-1', null, { command: 'x', ok: false, error: { code: 'OOPS', message: 'x' } }),
      ).length,
    ).toBeGreaterThan(0);
  });

  const discovery = () =>
    new HomeAssistantDiscovery({
      prefix: 'homeassistant',
      deviceId: 'kiosk-1',
      topics: new Topics('edge-inferd', 'kiosk-1'),
      version: '0.1.0',
      model: () => 'demo 1.0.0',
      log: pino({ level: 'silent' }),
    });

  it('Home Assistant discovery configs', () => {
    const ha = discovery();
    const configs = ha.configs(['tray']);
    expect([...configs.keys()]).toEqual([
      'homeassistant/sensor/kiosk-1/tray_label/config',
      'homeassistant/binary_sensor/kiosk-1/tray_online/config',
    ]);
    for (const c of configs.values()) assertValid('homeassistant-discovery.schema.json', c);
  });

  it("Home Assistant: a value sensor's object id never takes another camera's (camera names may hold _value_)", () => {
    const ha = discovery();
    ha.setCameras(['door', 'door_value_x']);
    ha.observe('door', [{ name: 'x_label' }, { name: 'y' }]);
    // door_value_x_label would be both door's "x_label" value and door_value_x's label sensor.
    const configs = ha.configs();
    expect(configs.size).toBe(6);
    const ids = [...configs.values()].map((c) => c.unique_id);
    expect(new Set(ids).size).toBe(6);
    expect(ids).toContain('edge-inferd_kiosk-1_door_value_x_label');
    expect(ids).toContain('edge-inferd_kiosk-1_door_value_y');
  });
});

describe('topic filters', () => {
  it.each([
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/#', 'a/b/c', true],
    ['a/#', 'a', true],
    ['a/+', 'a/b/c', false],
    ['$share/g/a/+/c', 'a/x/c', true],
    ['+/x', '$SYS/x', false],
    ['x/cmd/+', 'x/cmd/pause/response', false],
  ])('%s ~ %s: %s', (filter, topic, want) => expect(topicMatches(filter, topic)).toBe(want));
});

describe('command handler: every input gets one response, nothing throws', () => {
  const topics = new Topics('p', 'd');
  // The status of a real App, built on the demo config and not started.
  const config = loadConfig({ env: {}, defaultPath: '/nonexistent/config.yaml' });
  const app = new App({ ...config, deviceId: 'd' }, pino({ level: 'silent' }), { notify: () => false });
  function harness(overrides: Partial<CommandHandlers> = {}) {
    const sent: { topic: string; json: any }[] = [];
    const handlers: CommandHandlers = {
      snapshot: () => Promise.reject(new Error('no camera')),
      reload: () => Promise.resolve({ ok: false, changed: [], problems: ['http.port: must be <= 65535 (got 70000)'] }),
      pause: (camera) => Promise.resolve({ changed: camera ? [camera] : [], paused: camera ? [camera] : [] }),
      resume: () => Promise.resolve({ changed: [], paused: [] }),
      status: () => app.status(),
      ...overrides,
    };
    const h = new CommandHandler({
      topics,
      deviceId: 'd',
      maxBytes: 256,
      handlers,
      publish: async (topic, payload) => void sent.push({ topic, json: JSON.parse(payload) }),
      log: pino({ level: 'silent' }),
    });
    return {
      sent,
      run: async (name: string, payload: string | Buffer, retain = false) => {
        await h.handle(topics.command(name), Buffer.from(payload), retain);
        return sent.at(-1);
      },
    };
  }

  it.each([
    ['pause', '{"id":"a","camera":"tray"}', { requestId: 'a', ok: true, result: { changed: ['tray'], paused: ['tray'] } }],
    ['status', '{}', { requestId: null, ok: true }],
    ['status', ' ', { requestId: null, ok: false, error: { code: 'BAD_JSON' } }],
    ['status', '{"id": 12}', { requestId: 12, ok: true }],
    ['status', '{not json', { requestId: null, ok: false, error: { code: 'BAD_JSON' } }],
    ['status', '[1,2]', { requestId: null, ok: false, error: { code: 'BAD_REQUEST', problems: ['(root): expected object (got [1,2])'] } }],
    [
      'pause',
      '{"id":"b","camra":"tray"}',
      { requestId: 'b', ok: false, error: { code: 'BAD_REQUEST', problems: ['camra: unknown key (did you mean "camera"?)'] } },
    ],
    ['pause', '{"id":"c","camera":"a/b"}', { requestId: 'c', ok: false, error: { code: 'BAD_REQUEST' } }],
    [
      'snapshot',
      '{"id":"d","quality":0}',
      { requestId: 'd', ok: false, error: { code: 'BAD_REQUEST', problems: ['quality: must be >= 1 (got 0)'] } },
    ],
    ['snapshot', '{"id":"e"}', { requestId: 'e', ok: false, error: { code: 'FAILED', message: 'no camera' } }],
    [
      'reload',
      '{"id":"f"}',
      { requestId: 'f', ok: false, error: { code: 'RELOAD_REJECTED', problems: ['http.port: must be <= 65535 (got 70000)'] } },
    ],
    ['frobnicate', '{"id":"g"}', { requestId: 'g', command: 'frobnicate', ok: false, error: { code: 'UNKNOWN_COMMAND' } }],
    [
      'status',
      `{"id":"h","pad":"${'x'.repeat(300)}"}`,
      { requestId: 'h', ok: false, error: { code: 'TOO_LARGE', message: 'payload of 319 bytes is over commands.maxBytes (256)' } },
    ],
    ['status', `{"pad":"${'x'.repeat(300)}","id":"i"}`, { requestId: null, ok: false, error: { code: 'TOO_LARGE' } }],
  ])('%s %.40s', async (name, payload, want) => {
    const { run } = harness();
    const r = await run(name, payload);
    expect(r?.topic).toBe(`p/d/cmd/${name}/response`);
    expect(r?.json).toMatchObject(want);
    assertValid('command-response.schema.json', r?.json);
  });

  it('a retained command, and an empty payload (clearing a retained one), are ignored', async () => {
    const { sent, run } = harness();
    await run('pause', '{"id":"r"}', true);
    await run('pause', '');
    expect(sent).toEqual([]);
  });
});
