import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceEngine } from '../../src/inference/engine.js';
import type { Heatmap } from '../../src/inference/explain.js';
import { loadEngine } from '../../src/inference/load.js';
import type { ClassifyInference } from '../../src/inference/types.js';
import { CAM_WEIGHTS, writeCamClassifier } from '../helpers/cam-classifier.js';
import { overlayProblem, REGION_CELLS, regionFrame } from '../helpers/region-classifier.js';

/**
 * Class activation maps on real ORT sessions in real workers, on generated GAP + linear classifiers
 * that expose their feature map (PyTorch-style NCHW + Gemm [classes, C]; Keras-style NHWC + MatMul
 * [C, classes]) and whose answer depends on one known region: the map peaks there, comes from the
 * classifying run itself (no extra session.run), and equals the sum of the weights times the
 * features computed here by hand. A manifest naming what the model lacks is refused at load.
 */

let dir: string;
let nchw: InferenceEngine;
let nhwc: InferenceEngine;
let fixed: InferenceEngine;
const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };
const quality = { minSidePx: 1, minSharpness: 0 };
const inRegion = new Set(REGION_CELLS.map(([r, c]) => r * 8 + c));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'explain-cam-'));
  const [a, b, c] = await Promise.all([
    writeCamClassifier(dir, 'NCHW'),
    writeCamClassifier(dir, 'NHWC'),
    writeCamClassifier(dir, 'NCHW', undefined, 'cam-fixed', false),
  ]);
  [nchw, nhwc, fixed] = await Promise.all([loadEngine(a, cpu1), loadEngine(b, cpu1), loadEngine(c, cpu1)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([nchw, nhwc, fixed].map((e) => e?.close()));
  await rm(dir, { recursive: true, force: true });
});

/** p(red) on a red region: logits 160 x 4/64 = 10 against 5 + 10 x 4/64. */
const RED_P = 1 / (1 + Math.exp(-(10 - 5.625)));

/** A red region (and the blue decoy elsewhere): "red"'s map is 1 on the region's four cells, 0 everywhere else. */
function expectRegionPeak(h: Heatmap): void {
  expect(h).toMatchObject({ method: 'cam', rows: 8, cols: 8, target: 0 });
  expect(h.base).toBeCloseTo(RED_P, 4);
  for (const [i, v] of h.values.entries()) expect(v).toBeCloseTo(inRegion.has(i) ? 1 : 0, 4);
}

/** The region's cells ((5,1), (5,2), (6,1), (6,2): cells 41, 42, 49, 50 of the 8x8 grid) in two sets of colours (0..1). */
const TILES: Record<number, number[]>[] = [
  { 41: [1, 0, 0], 42: [1, 1, 0], 49: [0, 0, 1], 50: [1, 0, 1] },
  { 41: [0, 1, 0], 42: [1, 0, 0], 49: [1, 1, 1], 50: [0, 0, 1] },
];

/** A 64x32 frame: two 32x32 tiles (the crops), each with its region cells in its colours and noise elsewhere (masked off by the model). */
function mixedFrame() {
  const data = new Uint8Array(64 * 32 * 3);
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 64; x++) {
      const cell = (y >> 2) * 8 + ((x % 32) >> 2);
      const c = TILES[x >> 5][cell]?.map((v) => v * 255) ?? [(x * 37 + y * 11) % 256, (x * 5 + y * 71) % 256, (x * 13 + y * 29) % 256];
      data.set(c, (y * 64 + x) * 3);
    }
  return { camera: 'cam', seq: 1, width: 64, height: 32, stride: 192, format: 'RGB' as const, data, capturedAtMs: 0 };
}
/** The two tiles as crops. */
const TILE_RECTS = [
  { x: 0, y: 0, w: 32, h: 32 },
  { x: 32, y: 0, w: 32, h: 32 },
];

/** The expected map of class k on tile t: W[k] . (r, g, b) on each region cell, over the largest magnitude. */
function expectedMixed(t: number, k: number): number[] {
  const colours = TILES[t];
  const raw = Array.from({ length: 64 }, (_, i) => (colours[i] ? colours[i].reduce((s, v, c) => s + v * CAM_WEIGHTS[k][c], 0) : 0));
  const max = Math.max(...raw.map(Math.abs));
  return raw.map((v) => v / max);
}

describe('explanations: class activation maps', () => {
  for (const [layout, engine] of [
    ['NCHW', () => nchw],
    ['NHWC', () => nhwc],
  ] as const) {
    it(`${layout}: a crop stage's maps peak on the region, from the classifying run itself (one session.run, none added)`, async () => {
      const rect = { x: 0, y: 0, w: 64, h: 64 };
      const out = await engine().inferCrops!(regionFrame(64), { rects: [rect, rect], quality, explain: true });
      expect(out.runs).toBe(1);
      expect(out.explain?.runs).toBe(0);
      expect(out.crops[0].scores![0]).toBeCloseTo(RED_P, 4);
      for (const c of out.crops) expectRegionPeak(c.heatmap!);
    });

    it(`${layout}: the map is the weights times the feature map, for the class asked (a transposed or misread weight shows)`, async () => {
      const out = await engine().inferCrops!(mixedFrame(), { rects: TILE_RECTS, quality, explain: [0, 1] });
      // Each crop's map from its own item of the batch, for the class asked.
      for (const k of [0, 1]) {
        const h = out.crops[k].heatmap!;
        expect(h.target).toBe(k);
        for (const [i, v] of h.values.entries()) expect(v).toBeCloseTo(expectedMixed(k, k)[i], 3);
      }
      // "red": the strongest evidence is the yellow cell (160 + 40), the blue one counts against it.
      expect(out.crops[0].heatmap!.values[42]).toBe(1);
      expect(out.crops[0].heatmap!.values[49]).toBeCloseTo(-0.1, 4);
    });
  }

  it('a fixed batch of 1: one run per crop, each map from its own run', async () => {
    const out = await fixed.inferCrops!(mixedFrame(), { rects: TILE_RECTS, quality, explain: [1, 0] });
    expect(out.runs).toBe(2);
    expect(out.explain?.runs).toBe(0);
    for (const [t, k] of [
      [0, 1],
      [1, 0],
    ]) {
      expect(out.crops[t].heatmap!.target).toBe(k);
      for (const [i, v] of out.crops[t].heatmap!.values.entries()) expect(v).toBeCloseTo(expectedMixed(t, k)[i], 3);
    }
  });

  it('a single-model classifier: infer with explain gives the map with the result; the overlay is red over the region', async () => {
    const inf = (await nchw.infer(regionFrame(96), { explain: true })) as ClassifyInference;
    expect(inf.top[0].label).toBe('red');
    expectRegionPeak(inf.heatmap!);
    expect(await overlayProblem(inf.heatmap!.png)).toBeUndefined();
    expect(((await nchw.infer(regionFrame(96))) as ClassifyInference).heatmap).toBeUndefined();
  });
});

describe('explanations: a CAM manifest the model does not match is refused at load', () => {
  const refused = async (layout: 'NCHW' | 'NHWC', explain: string, name: string) => {
    const pkg = await writeCamClassifier(dir, layout, explain, name);
    return loadEngine(pkg, cpu1).then(
      async (e) => {
        await e.close();
        throw new Error('loaded');
      },
      (err: Error & { code?: string }) => err,
    );
  };

  it('a feature map the model does not output', async () => {
    const err = await refused('NCHW', '  method: cam\n  featureMap: layer4\n  weights: head.fc.weight\n', 'no-output');
    expect(err.code).toBe('MODEL_MISMATCH');
    expect(err.message).toContain('explain.featureMap: the model has no output "layer4" (model outputs: logits, features)');
  });

  it('weights the model has no initializer for: the ones that fit are named', async () => {
    const err = await refused('NCHW', '  method: cam\n  featureMap: features\n  weights: fc.weight\n', 'no-init');
    expect(err.code).toBe('MODEL_MISMATCH');
    expect(err.message).toContain(
      'explain.weights: model.onnx has no initializer "fc.weight"; initializers with a dimension of 2 (the labels): head.fc.weight [2,3]',
    );
  });

  it('weights of the wrong shape, and a feature map read in the wrong layout', async () => {
    const shape = await refused('NCHW', '  method: cam\n  featureMap: features\n  weights: region_mask\n', 'bad-shape');
    expect(shape.message).toContain('explain.weights: initializer "region_mask" has shape [1,1,8,8]; expected [classes, channels]');
    const layout = await refused(
      'NCHW',
      '  method: cam\n  featureMap: features\n  weights: head.fc.weight\n  layout: NHWC\n',
      'bad-layout',
    );
    expect(layout.message).toContain(
      'explain.layout: NHWC reads 8 channels from "features" [batch,3,8,8], the weights "head.fc.weight" [2,3] have 3; it looks NCHW',
    );
  });

  it('method cam without its fields: refused when the manifest is read', async () => {
    const err = await refused('NCHW', '  method: cam\n  featureMap: features\n', 'no-weights');
    expect(err.code).toBe('MODEL_MANIFEST');
    expect(err.message).toContain('explain.weights: required when explain.method is cam (an initializer name)');
  });
});
