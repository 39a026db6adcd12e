import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { type ItemAnswer as Item, trayAnswers } from '../helpers/demo-answers.js';

/**
 * `edge-inferd run --demo tray` end to end: the real daemon, a real Mosquitto, the generated trays.
 * Every message is checked against its shipped schema by the subscriber; each item of a tray gets
 * an assessment whose box region carries the material from answers.json, and its track is cleared
 * when the tray is emptied; a result carries several objects, each with its box crop's material.
 */

const answers = trayAnswers();
type Json = Record<string, any>;
const itemsOf = (file: string) => answers.find((f) => f.file === file)?.items ?? [];

describe('tray demo end to end', () => {
  let mosq: Mosquitto | undefined;
  let sub: Subscriber;
  let d: DaemonProcess;
  const dev = 'tray-e2e';
  const base = `edge-inferd/${dev}`;

  beforeAll(async () => {
    mosq = await startMosquitto();
    if (!mosq) return;
    sub = await subscribe(mosq.url, `${base}/#`);
    d = spawnDaemon(undefined, {
      args: ['run', '--demo', 'tray'],
      env: {
        EDGE_INFERD_DEVICE_ID: dev,
        EDGE_INFERD_MQTT__URL: mosq.url,
        EDGE_INFERD_HTTP__PORT: String(await freePort()),
        EDGE_INFERD_LOG__FORMAT: 'json',
      },
    });
  });

  afterAll(async () => {
    await d?.kill('SIGKILL');
    await sub?.close(); // throws if any message broke its schema
    await mosq?.stop();
  });

  it('a result per tray frame with every item and the material of its box crop', async () => {
    if (!mosq) return;
    const r = await sub.waitFor((m) => m.topic === `${base}/tray/result` && m.json.objects?.length >= 3, 30_000);
    const items = itemsOf(r.json.frame.name);
    expect(r.json.objects).toHaveLength(items.length);
    for (const it of items) {
      const o = r.json.objects.find((x: Item) => x.box.x === it.box.x && x.box.y === it.box.y);
      expect(o, `${r.json.frame.name}: ${it.label}`).toMatchObject({ label: 'item', box: it.box, regions: { box: { label: it.label } } });
    }
    expect(r.json.pipeline.stages.map((s: { name: string }) => s.name)).toEqual(['items', 'material']);
  });

  it("assesses each item of a tray with its material, and clears the tray's tracks when it is emptied", async () => {
    if (!mosq) return;
    const event = (pred: (j: Json) => boolean) => sub.waitFor((m) => m.topic === `${base}/tray/event` && pred(m.json), 30_000);
    const first = await event((j) => j.type === 'assessment');
    // The tray on the frame that completed it: each of its items gets an assessment with its material.
    const items = itemsOf(first.json.frame.name);
    expect(items.length).toBeGreaterThanOrEqual(2);
    const tracks = new Map<number, Item>();
    for (const it of items) {
      const a = await event((j) => j.type === 'assessment' && j.box.x === it.box.x && j.box.y === it.box.y);
      expect(a.json).toMatchObject({
        pipeline: 'tray',
        label: 'item',
        box: it.box,
        regions: { box: { notDetected: false, label: it.label } },
      });
      tracks.set(a.json.track, it);
    }
    expect(tracks.size).toBe(items.length);
    for (const track of tracks.keys()) {
      const c = await event((j) => j.type === 'cleared' && j.track === track);
      expect(c.json).toMatchObject({ reason: 'left', assessed: true });
    }
  });
});
