import { describe, expect, it } from 'vitest';
import { aggregateSchema } from '../../src/config/pipeline.js';
import { PipelineAggregator, type TrackDecision } from '../../src/decide/aggregate.js';
import type { PipelineRun, RegionResult } from '../../src/inference/types.js';

/** Per-track, per-region aggregation: means over the window, quality skips counted not averaged, notDetected, clearing. */

const labels = ['a', 'b', 'c'];
const region = (name: string, r: Partial<RegionResult>): RegionResult => ({ name, ...r });
function run(regions: RegionResult[][], x = 100): PipelineRun {
  return {
    name: 'p',
    labels,
    stages: [],
    objects: regions.map((rs, i) => ({ index: 0, label: 'face', score: 0.8, box: { x: x + 300 * i, y: 50, w: 100, h: 100 }, regions: rs })),
  };
}
const assessments = (ds: TrackDecision[]) => ds.filter((d): d is Extract<TrackDecision, { type: 'assessment' }> => d.type === 'assessment');

describe('pipeline aggregation', () => {
  it('averages each region over its good frames, counts skipped ones, and assesses once every region has minFrames', () => {
    const agg = new PipelineAggregator(aggregateSchema.parse({ window: 10, minFrames: 3 }));
    const frames: RegionResult[][] = [
      [region('left', { scores: [0.6, 0.3, 0.1] }), region('right', { skipped: 'blurred' })],
      [region('left', { scores: [0.2, 0.7, 0.1] }), region('right', { scores: [0, 0, 1] })],
      [region('left', { skipped: 'small' }), region('right', { scores: [0, 0.2, 0.8] })],
      [region('left', { scores: [0.7, 0.2, 0.1] }), region('right', { scores: [0.1, 0.1, 0.8] })],
    ];
    const out: TrackDecision[] = [];
    for (const [i, f] of frames.entries()) out.push(...agg.observe(run([f]), 1000 + i));
    const [a] = assessments(out);
    expect(out).toHaveLength(1);
    expect(a).toMatchObject({ track: 1, atMs: 1003, sinceMs: 1000, frames: 4, score: 0.8 });
    expect(a.regions[0]).toMatchObject({
      name: 'left',
      label: 'a',
      frames: 3,
      seen: 4,
      skipped: { small: 1, blurred: 0 },
      notDetected: false,
    });
    expect(a.regions[0].scores!.map((v) => +v.toFixed(6))).toEqual([0.5, 0.4, 0.1]);
    expect(a.regions[1]).toMatchObject({ name: 'right', label: 'c', frames: 3, seen: 4, skipped: { small: 0, blurred: 1 } });
    expect(agg.counters()).toEqual({
      tracks: 1,
      active: 1,
      assessments: 1,
      cleared: 0,
      crops: 8,
      qualitySkipped: { small: 1, blurred: 1 },
    });
  });

  it('after the window, a region with too few good frames is notDetected (never found, or always skipped)', () => {
    const agg = new PipelineAggregator(aggregateSchema.parse({ window: 4, minFrames: 2 }));
    const out: TrackDecision[] = [];
    for (let i = 0; i < 4; i++)
      out.push(
        ...agg.observe(
          run([[region('left', { notDetected: true }), region('right', { skipped: 'blurred' }), region('box', { scores: [0, 1, 0] })]]),
          i,
        ),
      );
    const [a] = assessments(out);
    expect(a.atMs).toBe(3);
    expect(a.regions).toEqual([
      { name: 'left', notDetected: true, frames: 0, seen: 0, skipped: { small: 0, blurred: 0 } },
      { name: 'right', notDetected: true, frames: 0, seen: 4, skipped: { small: 0, blurred: 4 } },
      { name: 'box', notDetected: false, label: 'b', score: 1, scores: [0, 1, 0], frames: 4, seen: 4, skipped: { small: 0, blurred: 0 } },
    ]);
  });

  it('clears a track that left (at its last sighting) and every track on a pause', () => {
    const agg = new PipelineAggregator(aggregateSchema.parse({ window: 4, minFrames: 1, maxMissed: 1 }));
    agg.observe(run([[region('box', { scores: [1, 0, 0] })], [region('box', { scores: [0, 1, 0] })]]), 10);
    agg.observe(run([[region('box', { scores: [1, 0, 0] })]]), 20);
    expect(agg.counters().active).toBe(2);
    expect(agg.observe(run([[region('box', { scores: [1, 0, 0] })]]), 30)).toEqual([
      { type: 'cleared', track: 2, label: 'face', atMs: 10, sinceMs: 10, frames: 1, assessed: true, reason: 'left' },
    ]);
    // A cleared track's state goes with it: a kiosk that sees a subject a minute for months keeps none of them.
    expect(agg.counters().active).toBe(1);
    expect(agg.reset(40)).toEqual([
      { type: 'cleared', track: 1, label: 'face', atMs: 40, sinceMs: 10, frames: 3, assessed: true, reason: 'paused' },
    ]);
    expect(agg.counters().active).toBe(0);
    expect(agg.observe(run([[region('box', { scores: [1, 0, 0] })]]), 50).map((d) => d.type === 'assessment' && d.track)).toEqual([3]);
  });
});
