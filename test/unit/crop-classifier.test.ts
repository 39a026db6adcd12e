import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { CropClassifier, type CropRequest, fixedBatch, sharpness } from '../../src/inference/crop.js';
import { loadModelPackage, type ModelPackage } from '../../src/inference/package.js';
import { regionFrame, writeRegionClassifier } from '../helpers/region-classifier.js';

/**
 * The crop stage in this thread, on a real ORT session of a generated classifier whose answer we
 * know: "red" (p = 1 / (1 + e^(5 - 10 r))) from the mean red r of a fixed region of its 32x32
 * input, "other" otherwise. A crop of regionFrame() has the red patch in that region (r = 1);
 * a crop of a plain grey frame has r = 90/255.
 */

let dir: string;
const classifiers: Record<'dynamic' | 'fixed', { pkg: ModelPackage; session: ort.InferenceSession }> = {} as never;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'crop-classifier-'));
  for (const dynamic of [true, false]) {
    const pkg = await loadModelPackage(await writeRegionClassifier(dir, dynamic));
    const session = await ort.InferenceSession.create(pkg.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    classifiers[dynamic ? 'dynamic' : 'fixed'] = { pkg, session };
  }
}, 60_000);

afterAll(async () => {
  for (const c of Object.values(classifiers)) await c.session.release();
  await rm(dir, { recursive: true, force: true });
});

const pRed = (r: number) => 1 / (1 + Math.exp(5 - 10 * r));
const quality = { minSidePx: 8, minSharpness: 0 };

/** regionFrame (64x64, red patch) on the left, a grey 64x64 square on the right: a crop of either half. */
function twoHalves(): Frame {
  const left = regionFrame(64);
  const W = 128;
  const data = new Uint8Array(W * 64 * 3).fill(90);
  for (let y = 0; y < 64; y++) data.set(left.data.subarray(y * 64 * 3, (y + 1) * 64 * 3), y * W * 3);
  return { ...left, width: W, stride: W * 3, data };
}
const LEFT = { x: 0, y: 0, w: 64, h: 64 };
const RIGHT = { x: 64, y: 0, w: 64, h: 64 };

describe('CropClassifier on a generated classifier', () => {
  it('a dynamic batch classifies every crop in one run, each its own answer, the same as one by one', async () => {
    const { pkg, session } = classifiers.dynamic;
    const c = new CropClassifier(pkg, session, 'logits');
    expect(c.batched).toBe(true);
    const frame = twoHalves();
    const req: CropRequest = { rects: [LEFT, RIGHT, LEFT], quality };
    const started = performance.now();
    const batched = await c.run(frame, req);
    const elapsed = performance.now() - started;
    expect(batched.runs).toBe(1);
    const red = batched.crops.map((k) => k.scores?.[0] ?? Number.NaN);
    expect(red[0]).toBeCloseTo(pRed(1), 4);
    expect(red[1]).toBeCloseTo(pRed(90 / 255), 4);
    expect(red[2]).toBeCloseTo(pRed(1), 4);
    for (const k of batched.crops) expect((k.scores ?? []).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(batched.crops.map((k) => k.box)).toEqual([LEFT, RIGHT, LEFT]);
    // each phase's time is a part of the call's
    for (const ms of Object.values(batched.latencyMs)) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(elapsed);
    }
    const single = await c.run(frame, { ...req, batch: 'one-by-one' });
    expect(single.runs).toBe(3);
    expect(single.crops.map((k) => k.scores)).toEqual(batched.crops.map((k) => k.scores));
  });

  it('a fixed batch of 1 runs once per crop', async () => {
    const { pkg, session } = classifiers.fixed;
    expect(fixedBatch(session, 'images')).toBe(1);
    expect(fixedBatch(classifiers.dynamic.session, 'images')).toBeUndefined();
    const c = new CropClassifier(pkg, session, 'logits');
    expect(c.batched).toBe(false);
    const out = await c.run(twoHalves(), { rects: [RIGHT, LEFT], quality });
    expect(out.runs).toBe(2);
    expect(out.crops.map((k) => k.scores?.[0])).toEqual([expect.closeTo(pRed(90 / 255), 4), expect.closeTo(pRed(1), 4)]);
  });

  it('the quality gate: outside the frame and too small are skipped as small, a blur gate of 0 passes a flat crop; skipped crops are not run', async () => {
    const { pkg, session } = classifiers.dynamic;
    const c = new CropClassifier(pkg, session, 'logits');
    const frame = twoHalves();
    const out = await c.run(frame, {
      rects: [
        { x: 500, y: 10, w: 20, h: 20 }, // wholly outside
        { x: 10, y: 10, w: 6, h: 20 }, // 6 px wide: under minSidePx 8
        RIGHT, // flat grey: sharpness 0, kept with the blur gate off
      ],
      quality,
    });
    expect(out.crops[0]).toEqual({ box: { x: 500, y: 10, w: 0, h: 0 }, sidePx: 0, sharpness: 0, skipped: 'small' });
    expect(out.crops[1]).toMatchObject({ box: { x: 10, y: 10, w: 6, h: 20 }, sidePx: 6, skipped: 'small' });
    expect(out.crops[1].scores).toBeUndefined();
    expect(out.crops[2]).toMatchObject({ sidePx: 64, sharpness: 0 });
    expect(out.crops[2].skipped).toBeUndefined();
    expect(out.crops[2].scores?.[0]).toBeCloseTo(pRed(90 / 255), 4);
    expect(out.runs).toBe(1);
    // with a blur gate, the flat crop is blurred
    const gated = await c.run(frame, { rects: [RIGHT], quality: { minSidePx: 8, minSharpness: 1 } });
    expect(gated.crops[0].skipped).toBe('blurred');
    expect(gated.runs).toBe(0);
  });

  it('explain: each crop asked for gets its heatmap, null or a class out of range gets none', async () => {
    const { pkg, session } = classifiers.dynamic;
    const c = new CropClassifier(pkg, session, 'logits');
    const out = await c.run(twoHalves(), { rects: [LEFT, RIGHT, LEFT, LEFT], quality, explain: [0, null, 2, 1] });
    expect(out.crops.map((k) => k.heatmap?.target)).toEqual([0, undefined, undefined, 1]);
    expect(out.explain?.runs).toBeGreaterThan(0);
    const all = await c.run(twoHalves(), { rects: [LEFT, RIGHT], quality, explain: true });
    // explain: true explains each crop's best class
    expect(all.crops.map((k) => k.heatmap?.target)).toEqual([0, 1]);
  });
});

describe('sharpness', () => {
  it('is 0 on a linear ramp in x or y (the Laplacian of a ramp is 0) and on a flat image; an edge makes it positive', () => {
    const W = 6;
    const H = 5;
    const img = (f: (x: number, y: number) => number): Frame => {
      const data = new Uint8Array(W * H);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = f(x, y);
      return { camera: 'c', seq: 1, width: W, height: H, stride: W, format: 'GRAY8', data, capturedAtMs: 0 };
    };
    expect(sharpness(img((x) => 10 * x))).toBe(0);
    expect(sharpness(img((_, y) => 20 * y + 5))).toBe(0);
    expect(sharpness(img(() => 77))).toBe(0);
    expect(sharpness(img((x) => (x < 3 ? 0 : 200)))).toBeGreaterThan(0);
  });
});
