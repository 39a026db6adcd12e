import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfig } from '../../src/config/demo.js';
import { eyesDemoDir } from '../../src/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type Received, type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';

/**
 * Class activation maps in a real App: the eyes demo pipeline with its eye model's manifest
 * switched to `explain.method: cam` (the model declares its feature map and weights), a camera
 * explaining assessments with crops included. Each assessed eye on MQTT carries a CAM heatmap that
 * matches the shipped event schema (the subscriber validates every message) and peaks on the
 * central cells, where the model's votes are.
 */

type J = any;

let t: TestApp;
let sub: Subscriber;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(os.tmpdir(), 'explain-cam-app-'));
  const eye = join(dir, 'eye-condition');
  await cp(join(eyesDemoDir, 'eye-condition'), eye, { recursive: true });
  const manifest = await readFile(join(eye, 'manifest.yaml'), 'utf8');
  if (!manifest.includes('method: occlusion')) throw new Error('the eye manifest no longer says method: occlusion');
  await writeFile(join(eye, 'manifest.yaml'), manifest.replace('method: occlusion', 'method: cam'));
  const stages = (demoConfig('eyes') as { pipelines: { eyes: { model: string }[] } }).pipelines.eyes;
  const port = await freePort();
  t = await startTestApp({
    samples: [],
    extra: {
      pipelines: { eyes: [stages[0], { ...stages[1], model: eye }] },
      cameras: {
        kiosk: {
          uri: `images://${join(eyesDemoDir, 'samples')}`,
          fps: 10,
          pipeline: 'eyes',
          aggregate: { window: 10, minFrames: 3 },
          explain: 'assessment',
          privacy: { includeCrops: true },
        },
      },
      mqtt: { url: 'embedded', embedded: { port } },
    },
  });
  sub = await subscribe(`mqtt://127.0.0.1:${port}`, ['edge-inferd/ops-test/+/event'], { protocolVersion: 4 });
}, 60_000);

afterAll(async () => {
  await sub?.close();
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const isAssessment = (m: Received) => m.json?.type === 'assessment' && Object.values(m.json.regions).some((r: J) => !r.notDetected);

describe('explain.method: cam in the daemon', () => {
  it('each assessed eye has a CAM heatmap over the 8x8 feature map, peaking at the iris, in the shipped schema', async () => {
    const m = await sub.waitFor(isAssessment, 30_000);
    const assessed = Object.values(m.json.regions as Record<string, J>).filter((r) => !r.notDetected);
    for (const r of assessed) {
      const h = r.heatmap;
      expect(h).toMatchObject({ method: 'cam', label: r.label, rows: 8, cols: 8 });
      // The votes fill the central four cells only: 1 at the strongest, nothing elsewhere.
      expect(Math.max(...h.values)).toBe(1);
      for (const [i, v] of (h.values as number[]).entries()) {
        const central = [3, 4].includes(Math.floor(i / 8)) && [3, 4].includes(i % 8);
        if (!central) expect(v).toBe(0);
      }
      expect(Buffer.from(h.png, 'base64').subarray(1, 4).toString()).toBe('PNG');
    }
    expect(sub.invalid).toEqual([]);
  }, 40_000);
});
