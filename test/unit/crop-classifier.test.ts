import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, int } from '../../scripts/onnx/builder.js';
import type { Frame } from '../../src/capture/frame.js';
import { Cam, planCam } from '../../src/inference/cam.js';
import { CropClassifier, type CropRequest, cropView, fixedBatch, sharpness } from '../../src/inference/crop.js';
import { sessionIo } from '../../src/inference/engine.js';
import { loadModelPackage, type ModelPackage } from '../../src/inference/package.js';
import { writeCamClassifier } from '../helpers/cam-classifier.js';
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
        { x: 20, y: 10, w: 8, h: 20 }, // 8 px wide: exactly minSidePx, kept
        RIGHT, // flat grey: sharpness 0, kept with the blur gate off
      ],
      quality,
    });
    expect(out.crops[0]).toEqual({ box: { x: 500, y: 10, w: 0, h: 0 }, sidePx: 0, sharpness: 0, skipped: 'small' });
    expect(out.crops[1]).toMatchObject({ box: { x: 10, y: 10, w: 6, h: 20 }, sidePx: 6, skipped: 'small' });
    expect(out.crops[1].scores).toBeUndefined();
    expect(out.crops[2]).toMatchObject({ sidePx: 8 });
    expect(out.crops[2].skipped).toBeUndefined();
    expect(out.crops[3]).toMatchObject({ sidePx: 64, sharpness: 0 });
    expect(out.crops[3].skipped).toBeUndefined();
    expect(out.crops[3].scores?.[0]).toBeCloseTo(pRed(90 / 255), 4);
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

describe('CropClassifier with CAM', () => {
  it('explains from the classifying run itself: no extra run, and its time is a part of the call', async () => {
    const pkg = await loadModelPackage(await writeCamClassifier(dir, 'NCHW'));
    const session = await ort.InferenceSession.create(pkg.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    try {
      const planned = planCam(pkg.manifest, pkg.labels.length, sessionIo(session), await readFile(pkg.modelPath));
      expect(planned.problems).toEqual([]);
      const c = new CropClassifier(pkg, session, 'logits', new Cam(planned.plan!, pkg.manifest.input));
      const started = performance.now();
      const out = await c.run(regionFrame(64), { rects: [{ x: 0, y: 0, w: 64, h: 64 }], quality, explain: true });
      const elapsed = performance.now() - started;
      expect(out.runs).toBe(1);
      expect(out.explain?.runs).toBe(0);
      expect(out.explain?.ms).toBeGreaterThanOrEqual(0);
      expect(out.explain?.ms).toBeLessThanOrEqual(elapsed);
      expect(out.crops[0].heatmap).toMatchObject({ target: 0 });
    } finally {
      await session.release();
    }
  });
});

/** A dynamic-batch "brightest channel" classifier taking `dtype` input: Cast to float, mean per channel, softmax. */
async function brightest(dtype: 'float16' | 'uint8'): Promise<string> {
  const g = new GraphBuilder(`brightest_${dtype}`);
  const x = g.op('Cast', [g.input('image', ['batch', 3, 8, 8], dtype)], { to: int(1) });
  g.op('Softmax', [g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: int(1) })], { axis: int(1) }, 'probs');
  g.output('probs', ['batch', 3]);
  const bytes = g.build();
  const out = path.join(dir, `brightest-${dtype}`);
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'model.onnx'), bytes);
  await writeFile(
    path.join(out, 'manifest.yaml'),
    `name: brightest\nversion: 1.0.0\ntask: classify\nsha256: ${createHash('sha256').update(bytes).digest('hex')}\n` +
      `input: {name: image, width: 8, height: 8, dtype: ${dtype}, scale: ${dtype === 'uint8' ? 1 : 0.00392156862745098}, resize: stretch}\n` +
      'labels: [red, green, blue]\nclassify: {outputs: probabilities, topK: 3}\n',
  );
  return out;
}

describe('CropClassifier batches any input dtype', () => {
  for (const dtype of ['float16', 'uint8'] as const) {
    it(`${dtype}: red, green and blue crops in one run, each its colour`, async () => {
      const pkg = await loadModelPackage(await brightest(dtype));
      const session = await ort.InferenceSession.create(pkg.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
      try {
        const c = new CropClassifier(pkg, session, 'probs');
        // three 16x16 squares side by side: red, green, blue
        const W = 48;
        const data = new Uint8Array(W * 16 * 3);
        for (let y = 0; y < 16; y++) for (let x = 0; x < W; x++) data[(y * W + x) * 3 + Math.floor(x / 16)] = 200;
        const frame: Frame = { camera: 'c', seq: 1, width: W, height: 16, stride: W * 3, format: 'RGB', data, capturedAtMs: 0 };
        const rects = [0, 16, 32].map((x) => ({ x, y: 0, w: 16, h: 16 }));
        const out = await c.run(frame, { rects, quality: { minSidePx: 1, minSharpness: 0 } });
        expect(out.runs).toBe(1);
        expect(out.crops.map((k) => pkg.labels[(k.scores ?? []).indexOf(Math.max(...(k.scores ?? [])))])).toEqual(['red', 'green', 'blue']);
      } finally {
        await session.release();
      }
    });
  }
});

describe('cropView and sharpness', () => {
  const W = 6;
  const H = 5;
  const grey = (f: (x: number, y: number) => number): Frame => {
    const data = new Uint8Array(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = f(x, y);
    return { camera: 'c', seq: 1, width: W, height: H, stride: W, format: 'GRAY8', data, capturedAtMs: 0 };
  };

  it("cropView without a scale takes the rectangle in the frame's own pixels", () => {
    const f = grey((x, y) => 10 * y + x);
    const cut = cropView(f, { x: 2, y: 1, w: 3, h: 2 });
    expect(cut && { x0: cut.x0, y0: cut.y0, w: cut.view.width, h: cut.view.height, first: cut.view.data[0] }).toEqual({
      x0: 2,
      y0: 1,
      w: 3,
      h: 2,
      first: 12,
    });
    // scale 2: the same rectangle read from a frame twice as large, in that frame's pixels
    const big = { ...f, width: 2 * W, height: 2 * H, stride: 2 * W, data: new Uint8Array(4 * W * H) };
    const cut2 = cropView(big, { x: 2, y: 1, w: 3, h: 2 }, 2);
    expect(cut2 && [cut2.x0, cut2.y0, cut2.view.width, cut2.view.height]).toEqual([4, 2, 6, 4]);
  });

  it('is 0 on a linear ramp in x or y (the Laplacian of a ramp is 0) and on a flat image; an edge gives the variance we work out', () => {
    expect(sharpness(grey((x) => 10 * x))).toBe(0);
    expect(sharpness(grey((_, y) => 20 * y + 5))).toBe(0);
    expect(sharpness(grey(() => 77))).toBe(0);
    // 0 left of x = 3, 200 from it: interior Laplacians per row 0, 200, -200, 0 (x = 1..4): mean 0, variance 20000
    expect(sharpness(grey((x) => (x < 3 ? 0 : 200)))).toBe(20_000);
    // the same edge across rows: per column 200, -200, 0 (y = 1..3): variance 80000 / 3
    expect(sharpness(grey((_, y) => (y < 2 ? 0 : 200)))).toBeCloseTo(80_000 / 3, 6);
    // 3 wide is the smallest with an interior: one column, rows 1..3 with Laplacians -400, 100, 0
    const narrow: Frame = { ...grey(() => 0), width: 3, stride: 3, data: new Uint8Array(15).fill(100) };
    narrow.data[1 * 3 + 1] = 200;
    const l = [-400, 100, 0];
    const mean = (l[0] + l[1] + l[2]) / 3;
    expect(sharpness(narrow)).toBeCloseTo(l.reduce((a, v) => a + (v - mean) ** 2, 0) / 3, 6);
  });

  it("reads the luma by the frame's channel order: a red edge in RGB, the same pixels in BGR and their luma in GRAY8 agree", () => {
    const rgb = new Uint8Array(W * H * 3);
    const bgr = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) {
      const red = i % W < 3 ? 0 : 200;
      rgb.set([red, 0, 0], i * 3);
      bgr.set([0, 0, red], i * 3);
    }
    const frame = (format: 'RGB' | 'BGR', data: Uint8Array): Frame => ({
      camera: 'c',
      seq: 1,
      width: W,
      height: H,
      stride: W * 3,
      format,
      data,
      capturedAtMs: 0,
    });
    // luma 0.299 x 200 = 59.8 at the edge: 0.299^2 x 20000
    const expected = 0.299 ** 2 * 20_000;
    expect(sharpness(frame('RGB', rgb))).toBeCloseTo(expected, 2);
    expect(sharpness(frame('BGR', bgr))).toBeCloseTo(expected, 2);
  });
});
