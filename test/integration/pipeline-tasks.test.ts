import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_AT, TAG_SLOPE } from '../../scripts/make-fixture-models.js';
import { aggregateSchema } from '../../src/config/pipeline.js';
import { PipelineAggregator, type TrackDecision } from '../../src/decide/aggregate.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { PipelineRunner } from '../../src/inference/pipeline.js';
import type { DetectInference } from '../../src/inference/types.js';
import { resultPayload, trackEventPayload } from '../../src/publish/payload.js';
import { drawFrame, type Rgb } from '../helpers/draw.js';
import { eyeCentres, eyesStages, stageModel, writePipelineModels } from '../helpers/pipeline-models.js';
import { assertValid } from '../helpers/schemas.js';

/**
 * A regress model and a multi-label classifier as a pipeline's crop stage (the generated face
 * detector finds a red face and its two eyes; the colour meter and the colour tagger of
 * scripts/make-fixture-models.ts run on the eye crops), averaged per subject and eye by the
 * aggregator like class scores: the means are those of the colours we drew.
 */

const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };
let dir: string;
let face: InferenceEngine;
let meter: InferenceEngine;
let tagger: InferenceEngine;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pipeline-tasks-'));
  const models = await writePipelineModels(dir);
  [face, meter, tagger] = await Promise.all(
    [models.face, path.join(fixtures, 'regressor'), path.join(fixtures, 'tagger')].map((d) => loadEngine(d, cpu1)),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([face, meter, tagger].map((e) => e?.close()));
  await rm(dir, { recursive: true, force: true });
});

function runner(second: InferenceEngine): PipelineRunner {
  const stages = eyesStages();
  return new PipelineRunner({ name: 'eyes', stages: () => stages, models: [stageModel(face), stageModel(second)] });
}

// A red face 240 px wide: the eye crops are 84 px squares around squares of eye colour 48 px wide,
// so the meter's central half (42 px of the crop) sees the eye colour alone.
const FACE = { x: 200, y: 100, w: 240, h: 300 };
const EYE = Math.round(0.2 * FACE.w);
function frame(left: Rgb, right: Rgb, seq: number) {
  const e = eyeCentres(FACE);
  const eye = (c: { x: number; y: number }, rgb: Rgb) => ({
    x: Math.round(c.x - EYE / 2),
    y: Math.round(c.y - EYE / 2),
    w: EYE,
    h: EYE,
    rgb,
  });
  const f = drawFrame(640, 480, [{ ...FACE, rgb: [255, 0, 0] }, eye(e.left, left), eye(e.right, right)], [0, 0, 0], 'kiosk');
  return { ...f, seq, capturedAtMs: 1_700_000_000_000 + seq * 100 };
}

async function track(r: PipelineRunner, frames: ReturnType<typeof frame>[]) {
  const agg = new PipelineAggregator(aggregateSchema.parse({ window: frames.length, minFrames: frames.length }));
  const decisions: TrackDecision[] = [];
  const infs: DetectInference[] = [];
  for (const f of frames) {
    const inf = (await r.infer(f)) as DetectInference;
    decisions.push(...agg.observe(inf.pipeline!, f.capturedAtMs));
    infs.push(inf);
  }
  const payloads = infs.map((inf, i) =>
    resultPayload({ deviceId: 'dev', seq: i + 1, frame: frames[i], inference: inf, model: inf.model, nowMs: frames[i].capturedAtMs }),
  );
  for (const p of payloads) assertValid('result.schema.json', p);
  const events = decisions.map((d, i) =>
    trackEventPayload({
      deviceId: 'dev',
      camera: 'kiosk',
      seq: i + 1,
      pipeline: 'eyes',
      decision: d,
      model: face.info,
      stageModel: face.info,
      nowMs: 1,
    }),
  );
  for (const e of events) assertValid('event.schema.json', e);
  return { payloads, decisions, events };
}

describe('pipeline crop stages beyond one class', () => {
  it('regress: each eye gets the mean colour of its crop centre, averaged over the track', async () => {
    // Left eye pure blue throughout; the right eye's blue is 150, 200 and 250 on three frames: mean 200.
    const frames = [150, 200, 250].map((b, i) => frame([0, 0, 255], [0, 0, b], i + 1));
    const { payloads, events } = await track(runner(meter), frames);
    const regions = payloads[1].task === 'detect' ? payloads[1].objects?.[0].regions : undefined;
    expect(regions?.left).toMatchObject({
      values: { red: expect.closeTo(0, 1), green: expect.closeTo(0, 1), blue: expect.closeTo(255, 1) },
    });
    expect(regions?.right).toMatchObject({ values: { blue: expect.closeTo(200, 1) } });
    expect(regions?.left).not.toHaveProperty('label');
    const assessment = events.find((e) => e.type === 'assessment');
    expect(assessment).toMatchObject({
      type: 'assessment',
      regions: {
        left: { notDetected: false, frames: 3, values: { red: expect.closeTo(0, 1), blue: expect.closeTo(255, 1) } },
        right: { notDetected: false, frames: 3, values: { green: expect.closeTo(0, 1), blue: expect.closeTo(200, 1) } },
      },
    });
    expect((assessment as { regions: Record<string, object> }).regions.left).not.toHaveProperty('label');
  });

  it('multi-label: the face colour and the eye colour are both on, by their mean probability', async () => {
    // An eye crop (84 px) holds the eye square (48 px) and face around it: blue covers (48/84)^2
    // of it, red the rest, green nothing. The left eye is green on the second frame only.
    const frames = [frame([0, 0, 255], [0, 0, 255], 1), frame([0, 255, 0], [0, 0, 255], 2), frame([0, 0, 255], [0, 0, 255], 3)];
    const { payloads, decisions } = await track(runner(tagger), frames);
    const p = (share: number) => 1 / (1 + Math.exp(-TAG_SLOPE * (share - TAG_AT)));
    const eye = (48 / 84) ** 2;
    const per = payloads.map((pl) => (pl.task === 'detect' ? pl.objects?.[0].regions : undefined));
    expect(per[0]?.left).toMatchObject({ label: 'red', on: ['red', 'blue'] });
    expect(per[1]?.left).toMatchObject({ label: 'red', on: ['red', 'green'] });
    expect(per[1]?.left?.scores?.green).toBeCloseTo(p(eye), 1);
    const a = decisions.find((d) => d.type === 'assessment');
    if (a?.type !== 'assessment') throw new Error('no assessment');
    const left = a.regions.find((r) => r.name === 'left');
    const right = a.regions.find((r) => r.name === 'right');
    // Left: blue on 2 of 3 frames (mean ~ 2/3 p(eye) + 1/3 p(0): on), green on 1 of 3 (off).
    const blueMean = (2 * p(eye) + p(0)) / 3;
    const greenMean = (p(eye) + 2 * p(0)) / 3;
    expect(blueMean).toBeGreaterThan(0.5);
    expect(greenMean).toBeLessThan(0.5);
    expect(left?.scores?.[2]).toBeCloseTo(blueMean, 1);
    expect(left?.scores?.[1]).toBeCloseTo(greenMean, 1);
    expect(left).toMatchObject({ label: 'red', on: ['red', 'blue'] });
    expect(right).toMatchObject({ label: 'red', on: ['red', 'blue'] });
  });
});
