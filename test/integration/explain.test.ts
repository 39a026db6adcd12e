import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Heatmap } from '../../src/inference/explain.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import type { ClassifyInference } from '../../src/inference/types.js';
import { overlayProblem, REGION_CELLS, regionFrame, writeRegionClassifier } from '../helpers/region-classifier.js';

/**
 * Occlusion heatmaps on real ORT sessions in real workers, on a generated classifier whose answer
 * depends on one known region only: the heatmap's peak cells are that region's, everything else is
 * flat; batched into one run when the batch dimension is dynamic, one run per masked copy when it
 * is fixed at 1.
 */

let dir: string;
let dynamic: InferenceEngine;
let fixed: InferenceEngine;
const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'explain-'));
  const [a, b] = await Promise.all([writeRegionClassifier(dir, true), writeRegionClassifier(dir, false)]);
  [dynamic, fixed] = await Promise.all([loadEngine(a, cpu1), loadEngine(b, cpu1)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([dynamic, fixed].map((e) => e?.close()));
  await rm(dir, { recursive: true, force: true });
});

const quality = { minSidePx: 1, minSharpness: 0 };

/** The cells holding the largest value (within 1e-3). */
function peakCells(h: Heatmap): [number, number][] {
  const max = Math.max(...h.values);
  return h.values.flatMap((v, i) => (v > max - 1e-3 ? [[Math.floor(i / h.cols), i % h.cols] as [number, number]] : []));
}

function expectRegionPeak(h: Heatmap): void {
  expect(h.method).toBe('occlusion');
  expect([h.rows, h.cols]).toEqual([8, 8]);
  expect(h.target).toBe(0); // "red"
  expect(h.base).toBeGreaterThan(0.99);
  // Masking one of the region's 4 cells (a quarter of it) takes its mean red from 1 to 0.75 + 0.25 * 0.5 (the mask's mean).
  const drop = h.base - 1 / (1 + Math.exp(5 - 10 * (0.75 + 0.25 * 0.5)));
  expect(peakCells(h).sort()).toEqual(REGION_CELLS.map((c) => [...c]).sort());
  for (const [r, c] of REGION_CELLS) expect(h.values[r * 8 + c]).toBeCloseTo(drop, 3);
  const inRegion = new Set(REGION_CELLS.map(([r, c]) => r * 8 + c));
  for (const [i, v] of h.values.entries()) if (!inRegion.has(i)) expect(Math.abs(v)).toBeLessThan(1e-6);
}

describe('explanations: occlusion sensitivity', () => {
  it('a crop stage: the heatmap peaks on the region the answer depends on, all crops in one session.run', async () => {
    const frame = regionFrame(64);
    // Two crops: the whole frame twice (the same answer), explained together.
    const rect = { x: 0, y: 0, w: 64, h: 64 };
    const out = await dynamic.inferCrops!(frame, { rects: [rect, rect], quality, explain: true });
    expect(out.runs).toBe(1);
    expect(out.explain?.runs).toBe(1);
    for (const c of out.crops) expectRegionPeak(c.heatmap!);
    // The overlay is a PNG of the crop as the model saw it, 128 px, red-hot over the region.
    expect(await overlayProblem(out.crops[0].heatmap!.png)).toBeUndefined();
  });

  it('targets per crop: null leaves a crop unexplained; a given class is explained even when it is not the best', async () => {
    const frame = regionFrame(64);
    const rect = { x: 0, y: 0, w: 64, h: 64 };
    const out = await dynamic.inferCrops!(frame, { rects: [rect, rect], quality, explain: [null, 1] });
    expect(out.crops[0].heatmap).toBeUndefined();
    const h = out.crops[1].heatmap!;
    expect(h.target).toBe(1);
    // Masking the region raises p(other): its drops are negative there, zero elsewhere.
    expect(Math.min(...h.values)).toBeLessThan(-0.001);
    expect(h.values.indexOf(Math.min(...h.values))).toBe(REGION_CELLS[0][0] * 8 + REGION_CELLS[0][1]);
  });

  it('a fixed batch of 1: one run per masked copy, the same heatmap', async () => {
    const frame = regionFrame(64);
    const out = await fixed.inferCrops!(frame, { rects: [{ x: 0, y: 0, w: 64, h: 64 }], quality, explain: true });
    expect(out.explain?.runs).toBe(64);
    expectRegionPeak(out.crops[0].heatmap!);
  });

  it('a single-model classifier: infer with explain gives the heatmap with the result', async () => {
    const inf = (await dynamic.infer(regionFrame(96), { explain: true })) as ClassifyInference;
    expect(inf.top[0].label).toBe('red');
    expectRegionPeak(inf.heatmap!);
    const plain = (await dynamic.infer(regionFrame(96))) as ClassifyInference;
    expect(plain.heatmap).toBeUndefined();
  });
});
