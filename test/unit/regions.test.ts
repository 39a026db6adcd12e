import { describe, expect, it } from 'vitest';
import { stageSchema } from '../../src/config/pipeline.js';
import { planRegions, unmirror } from '../../src/inference/regions.js';
import type { Detection } from '../../src/inference/types.js';

/** Where the crop stage cuts: boxes (padded, squared) or squares around keypoints; mirrored cameras. */

const det: Detection = {
  index: 0,
  label: 'face',
  score: 0.9,
  box: { x: 100, y: 50, w: 80, h: 120 },
  keypoints: [
    { name: 'left_eye', x: 156, y: 98, score: 0.95 },
    { name: 'right_eye', x: 124, y: 98, score: 0.2 },
  ],
};
const stage = (extra: Record<string, unknown>) => stageSchema.parse({ name: 's', model: 'm', from: 'f', ...extra });

describe('crop regions', () => {
  it('regions: box takes the box, grown by pad on every side, and squared on request', () => {
    expect(planRegions(det, stage({}))).toEqual([{ name: 'box', rect: { x: 100, y: 50, w: 80, h: 120 } }]);
    expect(planRegions(det, stage({ pad: 0.25 }))).toEqual([{ name: 'box', rect: { x: 80, y: 20, w: 120, h: 180 } }]);
    expect(planRegions(det, stage({ pad: 0.25, square: true }))).toEqual([{ name: 'box', rect: { x: 50, y: 20, w: 180, h: 180 } }]);
  });

  it('keypoint regions: a square of size x box width centred on the point; a point under minScore is not detected', () => {
    const regions = { left: { keypoint: 'left_eye', size: 0.5 }, right: { keypoint: 'right_eye' }, nose: { keypoint: 'nose' } };
    expect(planRegions(det, stage({ regions }))).toEqual([
      { name: 'left', rect: { x: 136, y: 78, w: 40, h: 40 } },
      { name: 'right' },
      { name: 'nose' },
    ]);
    expect(planRegions(det, stage({ regions: { right: { keypoint: 'right_eye', minScore: 0.1 } } }))[0].rect).toEqual({
      x: 110,
      y: 84,
      w: 28,
      h: 28,
    });
  });

  it("a mirrored camera swaps left and right keypoint names back to the subject's", () => {
    expect(unmirror(det.keypoints!).map((k) => [k.name, k.x])).toEqual([
      ['right_eye', 156],
      ['left_eye', 124],
    ]);
    expect(
      unmirror([
        { name: 'LeftHand', x: 1, y: 2, score: 1 },
        { name: 'nose', x: 3, y: 4, score: 1 },
      ]).map((k) => k.name),
    ).toEqual(['RightHand', 'nose']);
  });
});
