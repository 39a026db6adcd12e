import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cameraFrame, type FaceSpec, faceGeometry, renderFrame } from '../../scripts/make-eyes-demo.js';
import type { Frame } from '../../src/capture/frame.js';
import { demoConfig } from '../../src/config/demo.js';
import { aggregateSchema, pipelineSchema } from '../../src/config/pipeline.js';
import { PipelineAggregator } from '../../src/decide/aggregate.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { PipelineRunner } from '../../src/inference/pipeline.js';
import type { DetectInference, PipelineRun } from '../../src/inference/types.js';
import { eyesDemoDir } from '../../src/paths.js';
import { blurRegion } from '../helpers/pipeline-models.js';
import { eyesAnswers } from '../helpers/demo-answers.js';

/**
 * Known answers on the eyes demo: the generated sample frames through the demo's own pipeline
 * config, checked against answers.json (boxes and eye keypoints within 1 px, each eye's class,
 * covered eyes not detected), then frames drawn here with renderFrame: a blurred eye, a subject
 * moving 30 % of its size per frame, a newcomer.
 */

const samples = join(eyesDemoDir, 'samples');
const answers = eyesAnswers();
const stages = pipelineSchema.parse((demoConfig('eyes') as { pipelines: { eyes: unknown } }).pipelines.eyes);
const engines: InferenceEngine[] = [];
let runner: PipelineRunner;

beforeAll(async () => {
  engines.push(...(await Promise.all(stages.map((s) => loadEngine(s.model, { providers: ['cpu'], intraOpThreads: 1 })))));
  const m = (e: InferenceEngine) => ({ info: e.info, infer: e.infer.bind(e), inferCrops: e.inferCrops!.bind(e) });
  runner = new PipelineRunner({ name: 'eyes', stages: () => stages, models: [m(engines[0]), m(engines[1])] });
}, 60_000);
afterAll(async () => void (await Promise.all(engines.map((e) => e.close()))));

const frameOf = (data: Uint8Array, seq = 1): Frame =>
  cameraFrame(data, { camera: 'kiosk', seq, capturedAtMs: 1_700_000_000_000 + seq * 200 });
const run = async (frame: Frame): Promise<PipelineRun> => ((await runner.infer(frame)) as DetectInference).pipeline!;
const best = (p: PipelineRun, scores: number[] | undefined) => scores && p.labels[scores.indexOf(Math.max(...scores))];

describe('eyes demo: known answers', () => {
  it('every sample frame (zero to three subjects): boxes and eyes within 1 px, each eye its class, covered eyes not detected', async () => {
    const counts = new Set<number>();
    for (const [i, fr] of answers.entries()) {
      const { data } = await sharp(join(samples, fr.file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const p = await run(frameOf(new Uint8Array(data), i));
      counts.add(fr.faces.length);
      expect(p.objects.length, fr.file).toBe(fr.faces.length);
      for (const f of fr.faces) {
        const o = p.objects.find((x) => Math.abs(x.box.x - f.box.x) <= 1 && Math.abs(x.box.y - f.box.y) <= 1);
        expect(o, `${fr.file} subject ${f.subject}`).toBeDefined();
        expect(Math.abs(o!.box.w - f.box.w)).toBeLessThanOrEqual(1);
        expect(Math.abs(o!.box.h - f.box.h)).toBeLessThanOrEqual(1);
        for (const [region, eye] of [
          ['left', f.leftEye],
          ['right', f.rightEye],
        ] as const) {
          const kp = o!.keypoints!.find((k) => k.name === `${region}_eye`)!;
          const r = o!.regions.find((x) => x.name === region)!;
          if (eye.covered) {
            expect(r, `${fr.file} subject ${f.subject} ${region}`).toEqual({ name: region, notDetected: true });
            continue;
          }
          expect(Math.hypot(kp.x - eye.x, kp.y - eye.y), `${fr.file} ${region} eye`).toBeLessThanOrEqual(1);
          expect(best(p, r.scores), `${fr.file} subject ${f.subject} ${region}`).toBe(eye.class);
        }
      }
    }
    expect([...counts].sort()).toEqual([0, 1, 2, 3]);
  });

  it('a blurred eye (blurred here) is skipped by the quality gate; the other eye is still classified', async () => {
    const face: FaceSpec = { x: 220, y: 120, size: 160, leftClass: 'stye', rightClass: 'healthy' };
    const g = faceGeometry(face);
    const frame = frameOf(renderFrame({ faces: [face] }));
    blurRegion(frame, g.leftEye.x, g.leftEye.y, 0.35 * face.size + 10, 2, 2); // still an eye to the detector, too soft for the gate
    const p = await run(frame);
    const [left, right] = p.objects[0].regions;
    expect(left).toMatchObject({ name: 'left', skipped: 'blurred' });
    expect(left.sharpness).toBeLessThan(stages[1].quality.minSharpness);
    expect(right.skipped).toBeUndefined();
    expect(best(p, right.scores)).toBe('healthy');
  });

  it('tracks a subject moving 30 % of its size per frame with one id; a newcomer gets a new id; the assessment has the right classes', async () => {
    const agg = new PipelineAggregator(aggregateSchema.parse({ window: 10, minFrames: 3 }));
    const size = 80;
    const decisions = [];
    const ids: number[][] = [];
    for (let i = 0; i < 6; i++) {
      const walker: FaceSpec = {
        x: 20 + Math.round(0.3 * size * i),
        y: 40 + Math.round(0.3 * size * i),
        size,
        leftClass: 'conjunctivitis',
        rightClass: 'cataract',
      };
      const faces = i >= 3 ? [walker, { x: 500, y: 300, size: 100, leftClass: 'healthy', rightClass: 'stye' } as FaceSpec] : [walker];
      const p = await run(frameOf(renderFrame({ faces }), i + 1));
      decisions.push(...agg.observe(p, i * 200));
      ids.push(p.objects.map((o) => o.track!).sort());
    }
    expect(ids).toEqual([[1], [1], [1], [1, 2], [1, 2], [1, 2]]);
    const assessed = decisions.filter((d) => d.type === 'assessment');
    expect(assessed.map((d) => [d.track, d.regions.map((r) => r.label)])).toEqual([
      [1, ['conjunctivitis', 'cataract']],
      [2, ['healthy', 'stye']],
    ]);
  });
});
