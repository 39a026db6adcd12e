import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfig } from '../../src/config/demo.js';
import { demoSamplesDir, eyesDemoDir } from '../../src/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type Received, type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { SseClient } from '../helpers/sse.js';

/**
 * Explained assessments in a real App (eyes demo pipeline, embedded broker, real workers): with
 * privacy.includeCrops: true an assessment on MQTT carries each eye's crop and heatmap; with
 * `local` the MQTT (and journaled) payload carries neither, and, while a loopback client listens,
 * the full payload waits in the local copies under its journal position for it (with nobody
 * listening, no crop or heatmap is made). The demo's eye classifier looks
 * at the central 6x6 pixels of its 32x32 input only: the heatmap's peak is in the central cells.
 */

type J = any;

let t: TestApp;
let sub: Subscriber;

beforeAll(async () => {
  const port = await freePort();
  const cam = (includeCrops: boolean | 'local') => ({
    uri: `images://${join(eyesDemoDir, 'samples')}`,
    fps: 10,
    pipeline: 'eyes',
    aggregate: { window: 10, minFrames: 3 },
    explain: 'assessment',
    privacy: { includeCrops },
  });
  t = await startTestApp({
    samples: [],
    extra: {
      pipelines: (demoConfig('eyes') as { pipelines: unknown }).pipelines,
      cameras: {
        shared: cam(true),
        local: cam('local'),
        // A one-model camera (the recycling demo's classifier) explaining every result.
        tray: { uri: `images://${demoSamplesDir}`, fps: 5, explain: 'every', privacy: { includeCrops: true } },
      },
      mqtt: { url: 'embedded', embedded: { port } },
    },
  });
  sub = await subscribe(`mqtt://127.0.0.1:${port}`, ['edge-inferd/ops-test/+/event', 'edge-inferd/ops-test/tray/result'], {
    protocolVersion: 4,
  });
}, 60_000);

afterAll(async () => {
  await sub?.close();
  await t?.stop();
});

const isAssessment = (camera: string) => (m: Received) =>
  m.json?.type === 'assessment' && m.json.camera === camera && Object.values(m.json.regions).some((r: J) => !r.notDetected);

/** The heatmap's largest cell is one of the central four of the 8x8 grid. */
function expectCentralPeak(h: J, label: string): void {
  expect(h).toMatchObject({ method: 'occlusion', label, rows: 8, cols: 8 });
  expect(h.values).toHaveLength(64);
  const peak = h.values.indexOf(Math.max(...h.values));
  expect([3, 4]).toContain(Math.floor(peak / 8));
  expect([3, 4]).toContain(peak % 8);
  expect(Math.max(...h.values)).toBeGreaterThan(0);
  expect(Buffer.from(h.png, 'base64').subarray(1, 4).toString()).toBe('PNG');
}

describe('POST /infer?explain=1', () => {
  const post = (query: string, body: Buffer) =>
    fetch(`${t.base}/infer${query}`, { method: 'POST', body: new Uint8Array(body), headers: { 'Content-Type': 'image/png' } });

  it("the one model (the recycling demo's classifier): the result has its heatmap; explain is off without the parameter", async () => {
    const png = readFileSync(join(demoSamplesDir, readdirSync(demoSamplesDir).filter((f) => f.endsWith('.png') || f.endsWith('.jpg'))[0]));
    const r = (await (await post('?explain=1', png)).json()) as Record<string, J>;
    expect(r.task).toBe('classify');
    expect(r.heatmap).toMatchObject({ method: 'occlusion', label: r.label, rows: 8, cols: 8 });
    expect(r.heatmap.values).toHaveLength(64);
    expect(Buffer.from(r.heatmap.png, 'base64').subarray(1, 4).toString()).toBe('PNG');
    const plain = (await (await post('', png)).json()) as Record<string, J>;
    expect(plain.heatmap).toBeUndefined();
  }, 30_000);

  it("a pipeline camera: each eye's region has its heatmap, whatever the camera's explain", async () => {
    const png = readFileSync(join(eyesDemoDir, 'samples', 'frame-000.png'));
    const r = (await (await post('?explain=1&camera=shared', png)).json()) as Record<string, J>;
    const regions = Object.values(r.objects[0].regions as Record<string, J>);
    expect(regions).toHaveLength(2);
    for (const reg of regions) expectCentralPeak(reg.heatmap, reg.label);
  }, 30_000);

  it('a bad explain value is a 400 naming it', async () => {
    const res = await post('?explain=yes', Buffer.from('x'));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^explain: must be 1 or 0/);
  });
});

describe('explain: every on a one-model camera', () => {
  it('each result on MQTT carries the heatmap of its label', async () => {
    const m = await sub.waitFor((x) => x.topic.endsWith('/tray/result'), 30_000);
    expect(m.json.heatmap).toMatchObject({ method: 'occlusion', label: m.json.label, rows: 8, cols: 8 });
    expect(m.json.heatmap.values).toHaveLength(64);
  }, 40_000);
});

describe('explained assessments', () => {
  it('includeCrops: true: each assessed eye has its crop and a heatmap peaking at the iris', async () => {
    const m = await sub.waitFor(isAssessment('shared'), 30_000);
    const assessed = Object.entries(m.json.regions as Record<string, J>).filter(([, r]) => !r.notDetected);
    expect(assessed.length).toBeGreaterThan(0);
    for (const [, r] of assessed) {
      expect(Buffer.from(r.crop, 'base64').subarray(1, 4).toString()).toBe('PNG');
      expectCentralPeak(r.heatmap, r.label);
    }
  }, 40_000);

  it('includeCrops: local, no loopback client: nothing over MQTT, and no crop or heatmap made for anyone', async () => {
    const m = await sub.waitFor(isAssessment('local'), 30_000);
    for (const r of Object.values(m.json.regions as Record<string, J>)) {
      expect(r.crop).toBeUndefined();
      expect(r.heatmap).toBeUndefined();
    }
    // Nobody on the device listens: the frames ran as without crops, so no local copy was kept.
    const local = [...t.app.localCopies.entries()].filter(([, p]) => JSON.parse(p).camera === 'local');
    expect(local).toEqual([]);
    expect(sub.invalid).toEqual([]);
  }, 40_000);

  it('includeCrops: local: once a loopback client listens, it gets the crops and heatmaps; MQTT and the journal still carry neither', async () => {
    const sse = await SseClient.open(t.app.httpPort!, '/events?camera=local&type=assessment');
    try {
      // The first assessment made while it listens (the samples loop: a new subject every few seconds).
      await sse.until((c) => c.messages.some((e) => Object.values(JSON.parse(e.data).regions as Record<string, J>).some((r) => r.crop)));
      const ev = sse.messages.find((e) => Object.values(JSON.parse(e.data).regions as Record<string, J>).some((r) => r.crop))!;
      const data = JSON.parse(ev.data);
      expect(t.app.localCopies.get(Number(ev.id))).toBe(ev.data);
      const m = await sub.waitFor((x) => x.json?.id === data.id, 10_000);
      expect(t.app.localCopies.payloadFor(Number(ev.id), m.payload, false)).toBe(m.payload);
      for (const [name, r] of Object.entries(data.regions as Record<string, J>)) {
        const sent = m.json.regions[name];
        expect(sent.crop).toBeUndefined();
        expect(sent.heatmap).toBeUndefined();
        expect({ ...r, crop: undefined, heatmap: undefined }).toEqual({ ...sent, crop: undefined, heatmap: undefined });
        if (r.notDetected) continue;
        expect(Buffer.from(r.crop, 'base64').subarray(1, 4).toString()).toBe('PNG');
        expectCentralPeak(r.heatmap, r.label);
      }
      expect(sub.invalid).toEqual([]);
    } finally {
      sse.close();
    }
  }, 40_000);
});
