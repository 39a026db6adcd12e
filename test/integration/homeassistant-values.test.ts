import { spawnSync } from 'node:child_process';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inference, ModelInfo } from '../../src/inference/types.js';
import { MqttConnection } from '../../src/publish/client.js';
import { HomeAssistantDiscovery, valuesOf } from '../../src/publish/homeassistant.js';
import { resultPayload } from '../../src/publish/payload.js';
import { Topics } from '../../src/publish/topics.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Received, type Subscriber, subscribe } from '../helpers/mqtt.js';

/**
 * Home Assistant discovery of a regress model's named values, on a real Mosquitto: one sensor per
 * value of a camera's regress model and per region and value of a pipeline's regress crop stage,
 * learned from the results; their value templates rendered by Jinja2 (the engine Home Assistant
 * uses) on the result payloads the daemon publishes give back the values; after a restart the
 * value sensors are kept until the camera answers, then those of values gone are removed.
 */

const dev = 'kiosk-1';
const log = pino({ level: 'silent' });
const topics = new Topics('edge-inferd', dev);
const model: ModelInfo = { name: 'm', version: '1', sha256: 'a'.repeat(64), task: 'regress', provider: 'cpu' };
const latencyMs = { preprocess: 1, inference: 1, postprocess: 1 };

let mosq: Mosquitto;
let sub: Subscriber;
const conns: MqttConnection[] = [];

beforeAll(async () => {
  const m = await startMosquitto();
  if (!m) {
    if (process.env.CI) throw new Error('mosquitto is required in CI');
    return;
  }
  mosq = m;
  sub = await subscribe(mosq.url, 'homeassistant/#');
}, 30_000);
afterAll(async () => {
  for (const c of conns) await c.stop();
  await sub?.close();
  await mosq?.stop();
});

async function daemon(cameras: string[]): Promise<HomeAssistantDiscovery> {
  const mqtt = new MqttConnection({
    url: mosq.url,
    clientId: `ha-values-${conns.length}`,
    protocolVersion: 5,
    fallbackTo4: false,
    keepaliveSec: 30,
    persistentSession: false,
    sessionExpirySec: 0,
    statusTopic: topics.status,
    birth: () => '{"state":"online"}',
    will: '{"state":"offline"}',
    log,
  });
  conns.push(mqtt);
  const ha = new HomeAssistantDiscovery({ prefix: 'homeassistant', deviceId: dev, topics, version: '0', model: () => 'm 1', log });
  ha.attach(mqtt, cameras);
  await mqtt.start();
  return ha;
}

const regress = (values: Record<string, number>): Inference => ({
  task: 'regress',
  model,
  latencyMs,
  values: Object.entries(values).map(([name, value], index) => ({ index, name, value })),
});

/** A pipeline frame: one face (none: nobody in view) whose left and right eye crops went through a regress stage with values [x, y]. */
const eyes = (left: [number, number], right: [number, number] | undefined, faces = 1): Inference => ({
  task: 'detect',
  model,
  latencyMs,
  detections: [],
  pipeline: {
    name: 'eyes',
    labels: ['x', 'y'],
    outputs: { kind: 'values' },
    stages: [],
    objects: Array.from({ length: faces }, () => ({
      index: 0,
      label: 'face',
      score: 0.9,
      box: { x: 0, y: 0, w: 10, h: 10 },
      regions: [
        { name: 'left', scores: left },
        { name: 'right', ...(right ? { scores: right } : { notDetected: true as const }) },
      ],
    })),
  },
});

/** The value template of a config rendered by Jinja2 on a result payload, as Home Assistant does (value_json: the parsed payload). */
function render(template: string, payload: unknown): string {
  const py =
    'import json, sys, jinja2\nt, p = json.load(sys.stdin)\nprint(jinja2.Environment().from_string(t).render(value_json=p), end="")';
  const r = spawnSync('python3', ['-c', py], { input: JSON.stringify([template, payload]), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`jinja2: ${r.stderr}`);
  return r.stdout;
}

/** The result payload the daemon publishes for an inference. */
function payload(inf: Inference): unknown {
  const frame = { camera: 'x', seq: 1, width: 1, height: 1, stride: 3, format: 'RGB' as const, data: new Uint8Array(3), capturedAtMs: 0 };
  return resultPayload({ deviceId: dev, seq: 1, frame, inference: inf, model, nowMs: 0 });
}

const cfg = (camera: string, id: string) => `homeassistant/sensor/${dev}/${camera}_value_${id}/config`;
const since = (n: number) => (m: Received) => sub.messages.indexOf(m) >= n;

describe('Home Assistant discovery of regress values', () => {
  it('a sensor per value (and per region and value of a crop stage), learned from the results; templates read the values', async (ctx) => {
    if (!mosq) return ctx.skip();
    const ha = await daemon(['meter', 'eyes', 'tray']);
    const meter = regress({ age: 41.5, 'eye openness': 0.8 });
    ha.observe('meter', valuesOf(meter));
    ha.observe('eyes', valuesOf(eyes([3, 4], [5, 6])));
    ha.observe('tray', valuesOf({ task: 'classify', model, latencyMs, top: [] }));
    const age = await sub.waitFor((m) => m.topic === cfg('meter', 'age') && m.payload !== '');
    const open = await sub.waitFor((m) => m.topic === cfg('meter', 'eye_openness') && m.payload !== '');
    const ry = await sub.waitFor((m) => m.topic === cfg('eyes', 'right_y') && m.payload !== '');
    expect(age.json).toMatchObject({
      platform: 'sensor',
      name: 'meter age',
      state_topic: topics.result('meter'),
      state_class: 'measurement',
    });
    expect(ry.json.name).toBe('eyes right y');
    expect(sub.messages.some((m) => m.topic.includes('/tray_value_'))).toBe(false);

    // The templates on the payloads the daemon publishes: the value, or None (Home Assistant: unknown) when absent.
    expect(render(age.json.value_template, payload(meter))).toBe('41.5');
    expect(render(open.json.value_template, payload(meter))).toBe('0.8');
    expect(render(ry.json.value_template, payload(eyes([3, 4], [5, 6])))).toBe('6');
    expect(render(ry.json.value_template, payload(eyes([3, 4], undefined)))).toBe('None');
    expect(render(ry.json.value_template, payload(eyes([3, 4], [5, 6], 0)))).toBe('None');

    // The same values again: nothing republished.
    const n = sub.messages.length;
    ha.observe('meter', valuesOf(regress({ age: 40, 'eye openness': 0.5 })));
    ha.observe('eyes', valuesOf(eyes([1, 1], [2, 2])));
    // A frame with nobody in it says nothing about the values.
    ha.observe('eyes', valuesOf(eyes([0, 0], [0, 0], 0)));
    ha.observe('tray', valuesOf(meter)); // the marker: tray now has values, published after anything above
    await sub.waitFor((m) => since(n)(m) && m.topic === cfg('tray', 'age'));
    expect(sub.messages.slice(n).filter((m) => m.topic.includes('/meter_value_') || m.topic.includes('/eyes_value_'))).toEqual([]);
  }, 30_000);

  it('after a restart the value sensors stay until the camera answers; then those of values gone are removed', async (ctx) => {
    if (!mosq) return ctx.skip();
    const n = sub.messages.length;
    const ha = await daemon(['meter', 'eyes', 'tray']);
    // Its connect-time configs, then Home Assistant's birth: answered after the retained configs it was sent on subscribing.
    await sub.waitFor((m) => since(n)(m) && m.topic === `homeassistant/sensor/${dev}/meter_label/config`);
    const birth = sub.messages.length;
    await sub.client.publishAsync('homeassistant/status', 'online');
    await sub.waitFor((m) => since(birth)(m) && m.topic === `homeassistant/sensor/${dev}/meter_label/config`);
    expect(sub.messages.slice(n).filter((m) => m.topic.includes('_value_') && m.payload === '')).toEqual([]);

    // The model was swapped: "eye openness" is gone, "age" stays.
    const before = sub.messages.length;
    ha.observe('meter', valuesOf(regress({ age: 30 })));
    await sub.waitFor((m) => since(before)(m) && m.topic === cfg('meter', 'eye_openness') && m.payload === '');
    await sub.waitFor((m) => since(before)(m) && m.topic === cfg('meter', 'age') && m.payload !== '');
    // eyes and tray have not answered yet: their value sensors are still there.
    expect(
      sub.messages
        .slice(before)
        .filter((m) => m.payload === '')
        .map((m) => m.topic),
    ).toEqual([cfg('meter', 'eye_openness')]);
  }, 30_000);

  it('values whose names make the same object id each get their own sensor; names that do not collide keep the plain id', async (ctx) => {
    if (!mosq) return ctx.skip();
    const ha = await daemon(['gauge']);
    const n = sub.messages.length;
    const gauge = regress({ 'depth (mm)': 12, 'depth [mm]': 34, 'width mm': 5 });
    ha.observe('gauge', valuesOf(gauge));
    // Published in the values' order, so once the last is in, the others are too.
    const width = await sub.waitFor((m) => since(n)(m) && m.topic === cfg('gauge', 'width_mm') && m.payload !== '');
    const depth = sub.messages.filter((m) => since(n)(m) && m.topic.includes('/gauge_value_depth_mm_') && m.payload !== '');
    expect(new Set(depth.map((m) => m.topic)).size).toBe(2);
    expect(new Set(depth.map((m) => m.json.unique_id)).size).toBe(2);
    const shown = Object.fromEntries(depth.map((m) => [m.json.name, render(m.json.value_template, payload(gauge))]));
    expect(shown).toEqual({ 'gauge depth (mm)': '12', 'gauge depth [mm]': '34' });
    expect(render(width.json.value_template, payload(gauge))).toBe('5');
  }, 30_000);
});
