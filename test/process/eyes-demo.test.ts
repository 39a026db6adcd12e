import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { strokeWidth } from '../../src/health/snapshot.js';
import { type DaemonProcess, spawnDaemon, runCli } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { eyesAnswers } from '../helpers/demo-answers.js';

/**
 * `edge-inferd run --demo eyes` end to end: the real daemon, a real Mosquitto, the generated kiosk
 * frames. Every message is checked against its shipped schema by the subscriber; the assessments
 * carry each eye's class from answers.json, are journaled (`history --events`), and the snapshot
 * (redacted by default: the detector's manifest says privacy: person) has no face pixels.
 */

const answers = eyesAnswers();
const facesOf = (file: string) => answers.find((f) => f.file === file)!.faces;

describe('eyes demo end to end', () => {
  let mosq: Mosquitto | undefined;
  let sub: Subscriber;
  let d: DaemonProcess;
  let httpPort: number;
  const dev = 'eyes-e2e';
  const base = `edge-inferd/${dev}`;

  beforeAll(async () => {
    mosq = await startMosquitto();
    if (!mosq) return;
    sub = await subscribe(mosq.url, `${base}/#`);
    httpPort = await freePort();
    d = spawnDaemon(undefined, {
      args: ['run', '--demo', 'eyes'],
      env: {
        EDGE_INFERD_DEVICE_ID: dev,
        EDGE_INFERD_MQTT__URL: mosq.url,
        EDGE_INFERD_HTTP__PORT: String(httpPort),
        EDGE_INFERD_LOG__FORMAT: 'json',
      },
    });
  });

  afterAll(async () => {
    await d?.kill('SIGKILL');
    await sub?.close(); // throws if any message broke its schema
    await mosq?.stop();
  });

  it("publishes schema-valid assessments with each eye's class, and cleared when the subject leaves", async () => {
    if (!mosq) return;
    const first = await sub.waitFor((m) => m.topic === `${base}/kiosk/event` && m.json.type === 'assessment', 30_000);
    const a = first.json;
    // The subject on the frame that completed it, from the generator's answers.
    const face = facesOf(a.frame.name).find((f) => Math.abs(f.box.x - a.box.x) <= 1 && Math.abs(f.box.y - a.box.y) <= 1)!;
    expect(face).toBeDefined();
    expect(a).toMatchObject({ pipeline: 'eyes', track: expect.any(Number), label: 'face' });
    for (const [region, eye] of [
      ['left', face.leftEye],
      ['right', face.rightEye],
    ] as const) {
      if (eye.covered) expect(a.regions[region]).toMatchObject({ notDetected: true });
      else expect(a.regions[region]).toMatchObject({ notDetected: false, label: eye.class });
    }
    // The first subject leaves (empty frames follow it): its track is cleared.
    const cleared = await sub.waitFor(
      (m) => m.topic === `${base}/kiosk/event` && m.json.type === 'cleared' && m.json.track === a.track,
      30_000,
    );
    expect(cleared.json).toMatchObject({ reason: 'left', assessed: true });
    // Results carry the objects with their track ids.
    const result = await sub.waitFor((m) => m.topic === `${base}/kiosk/result` && m.json.objects?.length >= 1, 10_000);
    expect(result.json.objects[0]).toMatchObject({
      track: expect.any(Number),
      regions: { left: expect.any(Object), right: expect.any(Object) },
    });
    expect(result.json.pipeline.stages.map((s: { name: string }) => s.name)).toEqual(['face', 'eye']);
  });

  it('journals the assessments (edge-inferd history --events)', async () => {
    if (!mosq) return;
    const a = await sub.waitFor((m) => m.topic === `${base}/kiosk/event` && m.json.type === 'assessment', 30_000);
    const r = await runCli(['history', '--events', '--json', '--limit', '1000', '--journal', join(d.dir, 'journal.sqlite')]);
    expect(r.code, r.stderr).toBe(0);
    const ids = r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toContain(a.json.id);
    const table = await runCli(['history', '--events', '--journal', join(d.dir, 'journal.sqlite')]);
    expect(table.stdout).toMatch(/assessment\s+\d+\s+face/);
  });

  it('redacts faces in /snapshot.jpg by default', async () => {
    if (!mosq) return;
    // Pause (the last result and the snapshot are then the same frame) on a frame with faces.
    for (let attempt = 0; attempt < 20; attempt++) {
      await sub.waitFor((m) => m.topic === `${base}/kiosk/result` && m.json.objects?.length >= 1 && m.atMs > Date.now() - 500, 20_000);
      await sub.client.publishAsync(`${base}/cmd/pause`, JSON.stringify({ id: `p${attempt}` }), { qos: 1 });
      await sub.waitFor((m) => m.topic === `${base}/cmd/pause/response` && m.json.requestId === `p${attempt}`, 10_000);
      const status = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as {
        cameras: { kiosk: { lastResult: { frame: { name: string } } } };
      };
      const faces = facesOf(status.cameras.kiosk.lastResult.frame.name);
      if (faces.length) {
        const res = await fetch(`http://127.0.0.1:${httpPort}/snapshot.jpg?camera=kiosk`);
        expect(res.status).toBe(200);
        const { data, info } = await sharp(Buffer.from(await res.arrayBuffer()))
          .raw()
          .toBuffer({ resolveWithObject: true });
        const inset = strokeWidth(info.width, info.height) + 3; // the box outline and JPEG ringing at its edge
        for (const f of faces) {
          let brightest = 0;
          for (let y = f.box.y + inset; y < f.box.y + f.box.h - inset; y++) {
            for (let x = f.box.x + inset; x < f.box.x + f.box.w - inset; x++) {
              const o = (y * info.width + x) * info.channels;
              brightest = Math.max(brightest, data[o], data[o + 1], data[o + 2]);
            }
          }
          expect(brightest, `face of subject ${f.subject}`).toBeLessThan(40);
        }
        return;
      }
      await sub.client.publishAsync(`${base}/cmd/resume`, JSON.stringify({ id: `r${attempt}` }), { qos: 1 });
      await sub.waitFor((m) => m.topic === `${base}/cmd/resume/response` && m.json.requestId === `r${attempt}`, 10_000);
    }
    throw new Error('never paused on a frame with a face');
  });
});
