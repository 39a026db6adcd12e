import { describe, expect, it } from 'vitest';
import { aggregateSchema } from '../../src/config/pipeline.js';
import { PipelineAggregator, type TrackDecision } from '../../src/decide/aggregate.js';
import type { CropOutputs, PipelineRun, RegionResult } from '../../src/inference/types.js';
import { trackEventPayload } from '../../src/publish/payload.js';
import { assertValid } from '../helpers/schemas.js';

/**
 * Aggregation of crop stages beyond one class: a regress stage's values and a multi-label stage's
 * per-label probabilities are averaged over the good frames like class scores; a multi-label
 * region's labels are on when their mean reaches their own threshold. The assessment's payload
 * carries `values` or `on` and matches the shipped event schema.
 */

const model = { name: 'm', version: '1', sha256: 'a'.repeat(64), task: 'detect' as const, provider: 'cpu' };
function run(labels: string[], outputs: CropOutputs, regions: RegionResult[]): PipelineRun {
  return {
    name: 'p',
    labels,
    outputs,
    stages: [],
    objects: [{ index: 0, label: 'face', score: 0.9, box: { x: 10, y: 10, w: 100, h: 100 }, regions }],
  };
}
function assess(labels: string[], outputs: CropOutputs, frames: RegionResult[][], minFrames = 2) {
  const agg = new PipelineAggregator(aggregateSchema.parse({ window: frames.length, minFrames }));
  const out: TrackDecision[] = [];
  for (const [i, f] of frames.entries()) out.push(...agg.observe(run(labels, outputs, f), 1000 + i));
  const a = out.find((d) => d.type === 'assessment');
  if (a?.type !== 'assessment') throw new Error('no assessment');
  const payload = trackEventPayload({ deviceId: 'd', camera: 'c', seq: 1, pipeline: 'p', decision: a, model, nowMs: 2000 });
  assertValid('event.schema.json', payload);
  return { a, payload: payload as unknown as { regions: Record<string, Record<string, unknown>> } };
}

describe('aggregation of regress and multi-label crop stages', () => {
  it('regress: the mean of each value over the good frames, no label', () => {
    const { a, payload } = assess(
      ['age', 'openness'],
      { kind: 'values' },
      [
        [{ name: 'face', scores: [30, 0.2] }],
        [{ name: 'face', skipped: 'blurred' }],
        [{ name: 'face', scores: [34, 0.6] }],
        [{ name: 'face', scores: [41, 0.1] }],
      ],
      3,
    );
    expect(a.regions[0]).toMatchObject({ name: 'face', notDetected: false, frames: 3, skipped: { small: 0, blurred: 1 } });
    expect(a.regions[0].label).toBeUndefined();
    expect(payload.regions.face).toEqual({
      notDetected: false,
      values: { age: 35, openness: 0.3 },
      frames: 3,
      seen: 4,
      skipped: { small: 0, blurred: 1 },
    });
  });

  it('multi-label: a label is on when its mean reaches its own threshold; none on, no label', () => {
    const outputs: CropOutputs = { kind: 'multi-label', thresholds: [0.5, 0.5, 0.8] };
    const { a, payload } = assess(['x', 'y', 'z'], outputs, [
      [
        { name: 'l', scores: [0.9, 0.4, 0.7] },
        { name: 'r', scores: [0.1, 0.2, 0.3] },
      ],
      [
        { name: 'l', scores: [0.7, 0.7, 0.8] },
        { name: 'r', scores: [0.3, 0.2, 0.1] },
      ],
    ]);
    // l: means x 0.8 (on), y 0.55 (on), z 0.75 (off: below 0.8); r: nothing on.
    expect(a.regions[0]).toMatchObject({ name: 'l', label: 'x', on: ['x', 'y'] });
    expect(a.regions[0].score).toBeCloseTo(0.8, 6);
    expect(payload.regions.l).toMatchObject({ label: 'x', score: 0.8, on: ['x', 'y'], scores: { x: 0.8, y: 0.55, z: 0.75 } });
    expect(a.regions[1]).toMatchObject({ name: 'r', on: [] });
    expect(payload.regions.r).not.toHaveProperty('label');
    expect(payload.regions.r).toMatchObject({ on: [], notDetected: false });
  });

  it('multi-label: a mean exactly at its threshold is on; the labels on are ordered by mean, highest first, ties by index', () => {
    // Means exactly representable (0.25, 0.5, 0.75): no rounding decides the threshold case.
    const outputs: CropOutputs = { kind: 'multi-label', thresholds: [0.25, 0.5, 0.9, 0.5] };
    const { a } = assess(['w', 'x', 'y', 'z'], outputs, [
      [{ name: 'l', scores: [0.25, 0.5, 0.5, 0.5] }],
      [{ name: 'l', scores: [0.25, 1, 0.5, 0.5] }],
    ]);
    // means w 0.25 (= its threshold), x 0.75, y 0.5 (off), z 0.5 (= its threshold, ties nothing)
    expect(a.regions[0]).toMatchObject({ label: 'x', score: 0.75, on: ['x', 'z', 'w'] });
  });
});
