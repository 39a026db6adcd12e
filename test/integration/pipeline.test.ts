import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineAggregator } from '../../src/decide/aggregate.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { PipelineRunner } from '../../src/inference/pipeline.js';
import type { DetectInference, PipelineRun } from '../../src/inference/types.js';
import { aggregateSchema } from '../../src/config/pipeline.js';
import {
  blurRegion,
  EYE_LABELS,
  eyeCentres,
  eyesStages,
  type FaceSpec,
  IRIS,
  renderFaces,
  stageModel,
  writePipelineModels,
} from '../helpers/pipeline-models.js';

/**
 * A face -> eye pipeline on real ORT sessions in real workers, over generated frames whose faces,
 * eyes and iris colours we placed: boxes and keypoints come back where we drew them (through the
 * detector's letterbox), each eye gets its class, covered and blurred eyes are told apart.
 */

let dir: string;
let models: { face: string; eye: string; eyeFixed: string };
const engines: InferenceEngine[] = [];
let face: InferenceEngine;
let eye: InferenceEngine;
let eyeFixed: InferenceEngine;
const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pipeline-'));
  const a = await writePipelineModels(dir);
  const b = await writePipelineModels(dir, { dynamic: false });
  models = { face: a.face, eye: a.eye, eyeFixed: b.eye };
  [face, eye, eyeFixed] = await Promise.all([models.face, models.eye, models.eyeFixed].map((d) => loadEngine(d, cpu1)));
  engines.push(face, eye, eyeFixed);
}, 60_000);

afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await rm(dir, { recursive: true, force: true });
});

function runner(
  opts: {
    second?: InferenceEngine;
    mirror?: boolean;
    batch?: 'auto' | 'one-by-one';
    quality?: { minSidePx?: number; minSharpness?: number };
  } = {},
): PipelineRunner {
  const stages = eyesStages({ maxObjects: 5, quality: opts.quality });
  return new PipelineRunner({
    name: 'eyes',
    stages: () => stages,
    models: [stageModel(face), stageModel(opts.second ?? eye)],
    mirror: opts.mirror,
    batch: opts.batch,
  });
}

async function run(
  r: PipelineRunner,
  faces: FaceSpec[],
  seq = 1,
  edit?: (f: ReturnType<typeof renderFaces>) => void,
): Promise<PipelineRun> {
  const frame = renderFaces(512, 384, faces, 'kiosk', seq);
  edit?.(frame);
  const inf = (await r.infer(frame)) as DetectInference;
  return inf.pipeline!;
}

const F1: FaceSpec = { colour: 'red', x: 40, y: 60, w: 120, h: 160, left: 'healthy', right: 'stye' };
const F2: FaceSpec = { colour: 'green', x: 200, y: 100, w: 100, h: 140, left: 'cataract', right: 'conjunctivitis' };
const F3: FaceSpec = { colour: 'blue', x: 340, y: 40, w: 140, h: 180, left: 'stye', right: 'healthy' };

const labelOf = (labels: string[], scores: number[] | undefined) => scores && labels[scores.indexOf(Math.max(...scores))];

describe('pipeline: face -> eyes on generated frames', () => {
  for (const faces of [[], [F1], [F1, F2], [F1, F2, F3]]) {
    it(`${faces.length} subject(s): boxes and keypoints within 1 px, each eye its class`, async () => {
      const p = await run(runner(), faces);
      expect(p.objects).toHaveLength(faces.length);
      for (const f of faces) {
        const o = p.objects.find((obj) => Math.abs(obj.box.x - f.x) <= 1 && Math.abs(obj.box.y - f.y) <= 1);
        expect(o, `face at ${f.x},${f.y}`).toBeDefined();
        expect(Math.abs(o!.box.w - f.w)).toBeLessThanOrEqual(1);
        expect(Math.abs(o!.box.h - f.h)).toBeLessThanOrEqual(1);
        const e = eyeCentres(f);
        for (const side of ['left', 'right'] as const) {
          const kp = o!.keypoints!.find((k) => k.name === `${side}_eye`)!;
          expect(Math.abs(kp.x - e[side].x), `${side} eye x`).toBeLessThanOrEqual(1);
          expect(Math.abs(kp.y - e[side].y), `${side} eye y`).toBeLessThanOrEqual(1);
          const region = o!.regions.find((r) => r.name === side)!;
          expect(region.skipped).toBeUndefined();
          expect(labelOf(p.labels, region.scores), `${f.colour} ${side}`).toBe(f[side]);
        }
      }
      const eyeStage = p.stages[1];
      expect(eyeStage).toMatchObject({
        name: 'eye',
        crops: 2 * faces.length,
        classified: 2 * faces.length,
        skipped: 0,
        runs: faces.length ? 1 : 0,
      });
    });
  }

  it("a mirrored camera swaps the eyes back to the subject's", async () => {
    const p = await run(runner({ mirror: true }), [F1]);
    const region = (n: string) => p.objects[0].regions.find((r) => r.name === n)!;
    // In a mirror image the eye drawn at the larger x is the subject's right one.
    expect(labelOf(p.labels, region('right').scores)).toBe(F1.left);
    expect(labelOf(p.labels, region('left').scores)).toBe(F1.right);
  });

  it('a covered eye is not detected; a blurred eye is skipped by the quality gate', async () => {
    const covered = await run(runner(), [{ ...F1, right: null }]);
    expect(covered.objects[0].regions.find((r) => r.name === 'right')).toEqual({ name: 'right', notDetected: true });
    expect(covered.stages[1]).toMatchObject({ crops: 1 });

    const e = eyeCentres(F1);
    const side = 0.35 * F1.w;
    const blurred = await run(runner({ quality: { minSharpness: 40 } }), [F1], 1, (f) => blurRegion(f, e.left.x, e.left.y, side + 8));
    const left = blurred.objects[0].regions.find((r) => r.name === 'left')!;
    const right = blurred.objects[0].regions.find((r) => r.name === 'right')!;
    expect(left.sharpness).toBeLessThan(40);
    expect(left).toMatchObject({ skipped: 'blurred' });
    expect(left.scores).toBeUndefined();
    expect(right.sharpness).toBeGreaterThan(40);
    expect(right.skipped).toBeUndefined();
    expect(blurred.stages[1]).toMatchObject({ crops: 2, classified: 1, skipped: 1 });

    const small = await run(runner({ quality: { minSidePx: 43 } }), [F1]); // crop side 0.35 * 120 = 42 px
    expect(small.objects[0].regions.map((r) => r.skipped)).toEqual(['small', 'small']);
  });

  it('batched and one-by-one crop runs give identical scores', async () => {
    const faces = [F1, F2, F3];
    const batched = await run(runner(), faces);
    const single = await run(runner({ batch: 'one-by-one' }), faces);
    const fixed = await run(runner({ second: eyeFixed }), faces);
    expect(batched.stages[1].runs).toBe(1);
    expect(single.stages[1].runs).toBe(6);
    expect(fixed.stages[1].runs).toBe(6);
    const scores = (p: PipelineRun) => p.objects.map((o) => o.regions.map((r) => r.scores));
    expect(scores(single)).toEqual(scores(batched));
    expect(scores(fixed)).toEqual(scores(batched));
    expect(batched.labels).toEqual([...EYE_LABELS]);
  });

  it("crops from a larger frame of the same instant (scale): boxes stay in the detector frame's pixels, the classes agree", async () => {
    const small = renderFaces(512, 384, [F1, F2]);
    const big = renderFaces(
      1024,
      768,
      [F1, F2].map((f) => ({ ...f, x: 2 * f.x, y: 2 * f.y, w: 2 * f.w, h: 2 * f.h })),
    );
    const rects = [F1, F2].flatMap((f) =>
      Object.values(eyeCentres(f))
        .slice(0, 2)
        .map((c) => ({ x: (c as { x: number }).x - 20, y: (c as { y: number }).y - 20, w: 40, h: 40 })),
    );
    const quality = { minSidePx: 8, minSharpness: 0 };
    const a = await eye.inferCrops!(small, { rects, quality });
    const b = await eye.inferCrops!(big, { rects, quality, scale: 2 });
    expect(b.crops.map((c) => c.box)).toEqual(a.crops.map((c) => c.box));
    expect(b.crops.map((c) => c.sidePx)).toEqual(a.crops.map((c) => 2 * c.sidePx));
    const best = (c: { scores?: number[] }) => labelOf([...EYE_LABELS], c.scores);
    expect(b.crops.map(best)).toEqual(a.crops.map(best));
    expect(a.crops.map(best)).toEqual([F1.left, F1.right, F2.left, F2.right]);
  });

  it('aggregates per track and eye: an assessment once each eye has minFrames good frames, notDetected for a covered one', async () => {
    const agg = new PipelineAggregator(aggregateSchema.parse({ window: 6, minFrames: 3 }));
    const r = runner();
    const decisions = [];
    for (let i = 0; i < 6; i++) {
      const p = await run(
        r,
        [
          { ...F1, x: F1.x + 10 * i, right: null },
          { ...F2, x: F2.x + 12 * i },
        ],
        i + 1,
      );
      decisions.push(...agg.observe(p, 1000 * i));
      expect(p.objects.map((o) => o.track)).toEqual([1, 2]);
    }
    // F2: both eyes good on frames 1..3 -> assessed at the third frame; F1 (right eye covered) waits for the window.
    expect(decisions.map((d) => [d.type, d.track, d.atMs])).toEqual([
      ['assessment', 2, 2000],
      ['assessment', 1, 5000],
    ]);
    const [a2, a1] = decisions as Extract<(typeof decisions)[number], { type: 'assessment' }>[];
    expect(a2.regions.map((x) => [x.name, x.label, x.frames])).toEqual([
      ['left', 'cataract', 3],
      ['right', 'conjunctivitis', 3],
    ]);
    expect(a1.regions).toEqual([
      expect.objectContaining({ name: 'left', label: 'healthy', frames: 6, notDetected: false }),
      { name: 'right', notDetected: true, frames: 0, seen: 0, skipped: { small: 0, blurred: 0 } },
    ]);
    // Both leave: after maxMissed (5) empty frames they are cleared, in track order.
    const cleared = [];
    for (let i = 0; i < 6; i++) cleared.push(...agg.observe(await run(r, [], 10 + i), 10_000 + i));
    expect(cleared.map((d) => [d.type, d.track, d.type === 'cleared' && d.reason])).toEqual([
      ['cleared', 1, 'left'],
      ['cleared', 2, 'left'],
    ]);
  });
});

describe('pipeline: includeCrops', () => {
  it('a crop from a BGR camera is an RGB PNG: its centre is the iris colour we drew', async () => {
    const stages = eyesStages({ maxObjects: 5 });
    const r = new PipelineRunner({ name: 'eyes', stages: () => stages, models: [stageModel(face), stageModel(eye)], includeCrops: true });
    const frame = renderFaces(512, 384, [F1], 'kiosk', 1);
    for (let i = 0; i < frame.data.length; i += 3) [frame.data[i], frame.data[i + 2]] = [frame.data[i + 2], frame.data[i]];
    const p = ((await r.infer({ ...frame, format: 'BGR' })) as DetectInference).pipeline!;
    const regions = p.objects[0].regions;
    for (const side of ['left', 'right'] as const) {
      const png = regions.find((g) => g.name === side)!.cropPng!;
      const { data, info } = await sharp(Buffer.from(png)).raw().toBuffer({ resolveWithObject: true });
      const at = (Math.floor(info.height / 2) * info.width + Math.floor(info.width / 2)) * info.channels;
      expect([...data.subarray(at, at + 3)], side).toEqual(IRIS[F1[side]!].map((v) => Math.round(v * 255)));
    }
  });
});
