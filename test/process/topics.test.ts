import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CameraDecider } from '../../src/decide/policy.js';
import { demoSamplesDir } from '../../src/paths.js';
import { HomeAssistantDiscovery } from '../../src/publish/homeassistant.js';
import { Topics } from '../../src/publish/topics.js';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';

/**
 * The topic contract end to end: the real daemon on the demo samples against a real Mosquitto,
 * two cameras with different policies, stats and Home Assistant discovery. The test subscriber
 * checks every message against its shipped JSON Schema.
 */

const LABELS = ['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash'];
const labelOf = (file: string) => file.split('-')[0];
const rule = { k: 2, n: 2, minScore: 0.5 };

describe('topic contract, policies and events on the demo samples', () => {
  let mosq: Mosquitto | undefined;
  let sub: Subscriber;
  let d: DaemonProcess;
  const dev = 'topics-1';
  const base = `edge-inferd/${dev}`;

  beforeAll(async () => {
    mosq = await startMosquitto();
    if (!mosq) return;
    // Left over from an earlier run: the discovery config of a camera that is gone, and someone else's under our node id.
    const earlier = new HomeAssistantDiscovery({
      prefix: 'homeassistant',
      deviceId: dev,
      topics: new Topics('edge-inferd', dev),
      version: '0.0.1',
      model: () => 'old',
      log: pino({ level: 'silent' }),
    });
    const [[goneTopic, gone]] = earlier.configs(['gone']);
    const pub = await mqtt.connectAsync(mosq.url);
    await pub.publishAsync(goneTopic, JSON.stringify(gone), { qos: 1, retain: true });
    await pub.publishAsync(`homeassistant/sensor/${dev}/theirs/config`, JSON.stringify({ ...gone, unique_id: 'someone-else' }), {
      qos: 1,
      retain: true,
    });
    await pub.endAsync();
    sub = await subscribe(mosq.url, [`${base}/#`, 'homeassistant/#']);
    d = spawnDaemon({
      deviceId: dev,
      http: { port: await freePort() },
      mqtt: { url: mosq.url },
      stats: { intervalSec: 1 },
      homeassistant: { enabled: true },
      cameras: {
        all: { uri: `images://${demoSamplesDir}`, fps: 8, publish: { policy: 'every', stable: rule } },
        chg: { uri: `images://${demoSamplesDir}`, fps: 8, publish: { policy: 'change', stable: rule } },
      },
    });
    // A full cycle of the samples on both cameras, and stats that count beyond it.
    await sub.waitFor((m) => m.topic === `${base}/all/result` && m.json.seq >= 14, 25_000);
    await sub.waitFor((m) => m.topic === `${base}/chg/result` && m.json.seq >= 7, 25_000);
  });

  afterAll(async () => {
    await d?.kill('SIGKILL');
    try {
      await sub?.close(); // throws if any message broke its schema
    } finally {
      await mosq?.stop();
    }
  });

  const results = (cam: string) => sub.messages.filter((m) => m.topic === `${base}/${cam}/result`).map((m) => m.json);
  const events = (cam: string) => sub.messages.filter((m) => m.topic === `${base}/${cam}/event`).map((m) => m.json);

  it('policy every: every inference published, seq from 1 without a gap, each id unique, each label right', (ctx) => {
    if (!mosq) return ctx.skip();
    const received = sub.messages.filter((m) => m.topic === `${base}/all/result`);
    const r = received.map((m) => m.json);
    expect(r.length).toBeGreaterThanOrEqual(14); // beforeAll waited for seq 14
    expect(r.map((x) => x.seq)).toEqual(r.map((_, i) => i + 1));
    expect(new Set(r.map((x) => x.id)).size).toBe(r.length);
    for (const [i, x] of r.entries()) {
      expect(x.label).toBe(labelOf(x.frame.name));
      expect(x.policy).toBe('every');
      expect(x.model.sha256).toMatch(/^[0-9a-f]{64}$/);
      // total is capture -> publish: the payload's own two timestamps apart, so at least the three
      // stages it spans (both timestamps are whole-ms wall clock: 1 ms of truncation), and no more
      // than capture -> arrival at this subscriber.
      const { preprocess, inference, postprocess, total } = x.latencyMs;
      expect(total, `seq ${x.seq}`).toBeCloseTo(x.tsMs - x.capturedAtMs, 2);
      expect(total + 1, `seq ${x.seq}: total vs its stages`).toBeGreaterThanOrEqual(preprocess + inference + postprocess);
      expect(total, `seq ${x.seq}: total vs arrival`).toBeLessThanOrEqual(received[i].atMs - x.capturedAtMs);
    }
  });

  it('events are exactly what the decide stage computes from the published results, and each stable label is the right one', (ctx) => {
    if (!mosq) return ctx.skip();
    // A frame's events are published right after its result: all of them are in by the next result.
    const r = results('all').slice(0, -1);
    const e = events('all');
    const replay = new CameraDecider({ policy: 'every', intervalSec: 1, stable: rule });
    const expected = r.flatMap((x) =>
      replay.observe({ label: x.label, score: x.score, atMs: x.capturedAtMs }).events.map((ev) => ({ ...ev, frameSeq: x.frame.seq })),
    );
    const seen = e.filter((x) => x.frame && x.frame.seq <= r[r.length - 1].frame.seq);
    expect(
      seen.map((x) => ({ type: x.type, label: x.label, atMs: x.atMs, sinceMs: x.sinceMs, frames: x.frames, frameSeq: x.frame.seq })),
    ).toEqual(
      expected.map((x) => ({ type: x.type, label: x.label, atMs: x.atMs, sinceMs: x.sinceMs, frames: x.frames, frameSeq: x.frameSeq })),
    );
    expect(seen.map((x) => x.seq)).toEqual(seen.map((_, i) => i + 1));
    const stable = seen.filter((x) => x.type === 'stable');
    expect(stable.length).toBeGreaterThanOrEqual(4);
    for (const s of stable) {
      expect(s.label).toBe(labelOf(s.frame.name));
      expect(s.rule).toEqual(rule);
      expect(s.score).toBeGreaterThan(0.9); // the demo model is sure of its clean samples
    }
    // The first frame is a change from nothing.
    expect(seen[0]).toMatchObject({ type: 'change', previous: null, frames: 1 });
  });

  it('policy change: a result only when the label changed, each with its change event; the rest counted as held back', async (ctx) => {
    if (!mosq) return ctx.skip();
    const r = results('chg');
    expect(r.map((x) => x.seq)).toEqual(r.map((_, i) => i + 1));
    for (const x of r) expect(x).toMatchObject({ policy: 'change', label: labelOf(x.frame.name) });
    for (let i = 1; i < r.length; i++) expect(r[i].label).not.toBe(r[i - 1].label);
    // Two samples per label, in label order: each change is the first of a pair (a dropped frame,
    // on a loaded machine, may shift one).
    const firsts = r.filter((x) => x.frame.name.endsWith('-1.png')).length;
    expect(firsts).toBeGreaterThanOrEqual(r.length - 2);
    for (const x of r) expect(LABELS).toContain(x.label);
    const changes = new Set(
      events('chg')
        .filter((x) => x.type === 'change')
        .map((x) => x.frame.seq),
    );
    for (const x of r) expect(changes.has(x.frame.seq), `change event for frame ${x.frame.seq}`).toBe(true);

    const stats = await sub.waitFor(
      (m) => m.topic === `${base}/stats` && m.json.cameras.chg.inferred > m.json.cameras.chg.published && m.json.cameras.chg.published >= 3,
    );
    const c = stats.json.cameras.chg;
    expect(c.inferred).toBe(c.published + c.heldBack);
    expect(Object.values(c.labels as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(c.inferred);
    expect(c.events.change).toBe(c.published);
    expect(c.state).toBe('streaming');
    // the published count matches the results that reached us
    await sub.waitFor((m) => m.topic === `${base}/chg/result` && m.json.seq === c.published);
    expect(stats.json.cameras.all.heldBack).toBe(0);
  });

  it('status is retained with per-camera state; stats come every stats.intervalSec with rising seq', async (ctx) => {
    if (!mosq) return ctx.skip();
    const st = await sub.waitFor(
      (m) => m.topic === `${base}/status` && m.json.cameraState?.all === 'streaming' && m.json.cameraState?.chg === 'streaming',
    );
    expect(st.json).toMatchObject({ state: 'online', cameras: ['all', 'chg'], provider: 'cpu' });
    const late = await subscribe(mosq.url, `${base}/status`);
    const retained = await late.waitFor(() => true);
    expect(retained.retain).toBe(true);
    await late.close();
    await sub.waitFor((m) => m.topic === `${base}/stats` && m.json.seq >= 2);
    const stats = sub.messages.filter((m) => m.topic === `${base}/stats`).map((m) => m.json);
    expect(stats.map((s) => s.seq)).toEqual(stats.map((_, i) => i + 1));
    expect(stats[stats.length - 1]).toMatchObject({ intervalSec: 1, mqtt: { connected: true } });
    expect(stats[stats.length - 1].cameras.all.fps).toBeGreaterThan(0);
  });

  it('Home Assistant discovery: a label sensor and an online binary sensor per camera, retained; our stale config removed, a foreign one kept', async (ctx) => {
    if (!mosq) return ctx.skip();
    const ha = await subscribe(mosq.url, 'homeassistant/#');
    try {
      const want = ['all', 'chg'].flatMap((c) => [
        `homeassistant/sensor/${dev}/${c}_label/config`,
        `homeassistant/binary_sensor/${dev}/${c}_online/config`,
      ]);
      for (const t of want) await ha.waitFor((m) => m.topic === t && m.retain);
      const sensor = ha.messages.find((m) => m.topic === want[0])!.json;
      expect(sensor).toMatchObject({
        platform: 'sensor',
        unique_id: `edge-inferd_${dev}_all_label`,
        state_topic: `${base}/all/result`,
        value_template: '{{ value_json.label }}',
        json_attributes_topic: `${base}/all/result`,
        availability: [{ topic: `${base}/status`, payload_available: 'online' }],
        device: { identifiers: [`edge-inferd_${dev}`], name: dev, model: 'demo-recycling-colour 1.0.0' },
      });
      expect(sensor.json_attributes_template).toContain("'score': value_json.score");
      const online = ha.messages.find((m) => m.topic === want[1])!.json;
      expect(online).toMatchObject({ platform: 'binary_sensor', device_class: 'connectivity', state_topic: `${base}/status` });
      expect(online.value_template).toBe(
        "{{ 'ON' if value_json.state == 'online' and (value_json.cameraState or {}).get('all') == 'streaming' else 'OFF' }}",
      );
      // retained state after start-up: the stale config is gone (no retained message), the foreign one stays
      expect(ha.messages.some((m) => m.topic.endsWith('/gone_label/config'))).toBe(false);
      expect(ha.messages.find((m) => m.topic.endsWith('/theirs/config'))?.json.unique_id).toBe('someone-else');
      // and the live subscriber saw the removal as an empty message
      expect(sub.messages.some((m) => m.topic === `homeassistant/sensor/${dev}/gone_label/config` && m.payload === '')).toBe(true);
    } finally {
      await ha.close();
    }
  });
});
