import { describe, expect, it } from 'vitest';
import { stageSchema } from '../../src/config/pipeline.js';
import type { Frame } from '../../src/capture/frame.js';
import { cropView, sharpness } from '../../src/inference/crop.js';
import { planRegions, unmirror } from '../../src/inference/regions.js';
import type { Box, Detection } from '../../src/inference/types.js';

/** Every other pixel of every other row: the frame at half the resolution. */
function halve(f: Frame): Frame {
  const w = f.width / 2;
  const h = f.height / 2;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) data.set(f.data.subarray(2 * y * f.stride + 2 * x * 3, 2 * y * f.stride + 2 * x * 3 + 3), (y * w + x) * 3);
  return { ...f, width: w, height: h, stride: w * 3, data };
}

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

  it("a keypoint crop that crosses the frame's right edge ends at the edge, with the frame's own pixels", () => {
    // A 200x120 RGB frame whose red channel is the column number and green the row.
    const W = 200;
    const H = 120;
    const data = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data.set([x, y, 0], (y * W + x) * 3);
    const frame: Frame = { camera: 'c', seq: 1, width: W, height: H, stride: W * 3, format: 'RGB', data, capturedAtMs: 0 };
    const face: Detection = { ...det, box: { x: 150, y: 40, w: 60, h: 60 }, keypoints: [{ name: 'left_eye', x: 190, y: 60, score: 1 }] };
    const [plan] = planRegions(face, stage({ regions: { left: { keypoint: 'left_eye', size: 0.5 } } }));
    expect(plan.rect).toEqual({ x: 175, y: 45, w: 30, h: 30 }); // 5 px past the right edge
    for (const scale of [1, 0.5]) {
      // scale 0.5: the same region read from a frame at half the resolution (a scaled camera's copy).
      const f = scale === 1 ? frame : halve(frame);
      const cut = cropView(f, plan.rect as Box, scale);
      expect(cut, `scale ${scale}`).toBeDefined();
      const { view, x0, y0 } = cut as NonNullable<typeof cut>;
      expect(x0 + view.width, `scale ${scale}: ends at the frame's edge`).toBe(f.width);
      expect(view.height).toBe(Math.round(30 * scale));
      const rgb = (img: Frame, x: number, y: number) => [...img.data.subarray(y * img.stride + x * 3, y * img.stride + x * 3 + 3)];
      // Its last column is the frame's last column on every row (not a wrap into the next row).
      for (let y = 0; y < view.height; y++) expect(rgb(view, view.width - 1, y)).toEqual(rgb(f, f.width - 1, y0 + y));
    }
  });

  it('sharpness: the variance of the 4-neighbour Laplacian of the grey image, over every interior pixel', () => {
    // 4x3 grey (100, 100, 100) with one bright pixel at (1, 1): interior pixels (1, 1) and (2, 1).
    const data = new Uint8Array(4 * 3 * 3);
    data.set([200, 200, 200], (1 * 4 + 1) * 3);
    for (let i = 0; i < 12; i++) if (i !== 5) data.set([100, 100, 100], i * 3);
    const img: Frame = { camera: 'c', seq: 1, width: 4, height: 3, stride: 12, format: 'RGB', data, capturedAtMs: 0 };
    // Laplacians: 4 x 200 - 4 x 100 = 400 at (1, 1); 4 x 100 - (200 + 3 x 100) = -100 at (2, 1); variance of {400, -100}.
    const grey = (v: number) => (0.299 + 0.587 + 0.114) * v;
    const l = [4 * grey(200) - 4 * grey(100), 4 * grey(100) - grey(200) - 3 * grey(100)];
    const mean = (l[0] + l[1]) / 2;
    expect(sharpness(img)).toBeCloseTo(((l[0] - mean) ** 2 + (l[1] - mean) ** 2) / 2, 3);
    expect(sharpness({ ...img, width: 2 })).toBe(0); // under 3x3: 0
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
