import { describe, expect, it } from 'vitest';
import { Detector, iou, nms } from '../../src/inference/detect.js';
import { detectSchema } from '../../src/inference/manifest.js';
import { geometryFor } from '../../src/inference/preprocess.js';

/** Decoders and NMS on hand-made output tensors whose right answers are worked out here. */

const spec = (patch: object) => detectSchema.parse(patch);
const g = geometryFor({ width: 100, height: 100, resize: 'letterbox' }, 200, 100); // scale 0.5, 25 px bars top and bottom

describe('detection decoding', () => {
  it('boxes-scores, normalised cx cy w h: back to source pixels through the letterbox', () => {
    const d = new Detector(spec({ format: 'boxes-scores', boxes: 'b', scores: 's', boxFormat: 'cxcywh', normalized: true }), 2);
    // One box centred at (0.5, 0.5) of the 100x100 input, 0.2 x 0.1 of it: input pixels 40..60 x 45..55.
    const out = d.run(
      { boxes: { data: [0.5, 0.5, 0.2, 0.1], dims: [1, 1, 4] }, scores: { data: [0.1, 0.8], dims: [1, 1, 2] } },
      ['cat', 'dog'],
      g,
      100,
      100,
    );
    expect(out).toEqual([{ index: 1, label: 'dog', score: expect.closeTo(0.8, 6), box: { x: 80, y: 40, w: 40, h: 20 } }]);
  });

  it('yolov5: score = objectness x class score, both thresholded', () => {
    const d = new Detector(spec({ format: 'yolov5', scoreThreshold: 0.3 }), 2);
    const rows = [
      [50, 50, 10, 10, 0.9, 0.2, 0.5], // 0.45: kept, class 1
      [20, 50, 10, 10, 0.2, 0.9, 0.9], // objectness below the threshold
      [80, 50, 10, 10, 0.5, 0.5, 0.1], // 0.25 after multiplying: dropped
    ];
    const out = d.run(
      { main: { data: rows.flat(), dims: [1, 3, 7] } },
      ['a', 'b'],
      geometryFor({ width: 100, height: 100, resize: 'stretch' }, 100, 100),
      100,
      100,
    );
    expect(out.map((o) => [o.label, Number(o.score.toFixed(4)), o.box])).toEqual([['b', 0.45, { x: 45, y: 45, w: 10, h: 10 }]]);
  });

  it('yolov8: each anchor takes its best class; a score exactly at the threshold is kept, one under it is not', () => {
    const d = new Detector(spec({ format: 'yolov8', scoreThreshold: 0.5 }), 2);
    // N = 3 anchors, class-major rows: cx, cy, w, h, class 0, class 1.
    const rows = [
      [20, 50, 80], // cx
      [50, 50, 50], // cy
      [10, 10, 10], // w
      [10, 10, 10], // h
      [0.5, 0.25, 0.75], // class 0
      [0.25, 0.4375, 0.875], // class 1
    ];
    const stretch = geometryFor({ width: 100, height: 100, resize: 'stretch' }, 100, 100);
    const out = d.run({ main: { data: rows.flat(), dims: [1, 6, 3] } }, ['a', 'b'], stretch, 100, 100);
    expect(out.map((o) => [o.label, o.score, o.box.x])).toEqual([
      ['b', 0.875, 75],
      ['a', 0.5, 15],
    ]);
  });

  it('yolov8: a detector reused for the next frame keeps nothing of the last one (anchor 0 included)', () => {
    const d = new Detector(spec({ format: 'yolov8', scoreThreshold: 0.5 }), 1);
    const stretch = geometryFor({ width: 100, height: 100, resize: 'stretch' }, 100, 100);
    // two anchors: cx, cy, w, h rows, then the class row
    const frame = (s0: number, s1: number) => ({ main: { data: [20, 80, 50, 50, 10, 10, 10, 10, s0, s1], dims: [1, 5, 2] } });
    expect(d.run(frame(0.875, 0.75), ['x'], stretch, 100, 100).map((o) => o.score)).toEqual([0.875, 0.75]);
    expect(d.run(frame(0.25, 0.125), ['x'], stretch, 100, 100)).toEqual([]);
    expect(d.run(frame(0.25, 0.625), ['x'], stretch, 100, 100).map((o) => [o.score, o.box.x])).toEqual([[0.625, 75]]);
  });

  it('yolov8 pose: keypoints come back to source pixels through the letterbox like the box, with their visibility as score', () => {
    const d = new Detector(spec({ format: 'yolov8', keypoints: ['nose', 'chin'] }), 1);
    // one anchor: cx cy w h, class, then (x, y, visibility) per keypoint; input y 40 is 15 px below the 25 px top bar
    const data = [50, 50, 40, 40, 0.9, 50, 40, 0.75, 44, 70, 0.5];
    const [det] = d.run({ main: { data, dims: [1, data.length, 1] } }, ['face'], g, 100, 100);
    expect(det.box).toEqual({ x: 60, y: 10, w: 80, h: 80 });
    expect(det.keypoints).toEqual([
      { name: 'nose', x: 100, y: 30, score: 0.75 },
      { name: 'chin', x: 88, y: 90, score: 0.5 },
    ]);
  });

  it('yolov5 and boxes-scores: objectness exactly at the threshold is kept; a tie between classes goes to the lower class; anchors do not share scores', () => {
    const stretch = geometryFor({ width: 100, height: 100, resize: 'stretch' }, 100, 100);
    const v5 = new Detector(spec({ format: 'yolov5', scoreThreshold: 0.5 }), 2);
    // objectness 0.5 (the threshold) x class score 1 = 0.5: kept; classes 0 and 1 tie at 1: class 0
    const out5 = v5.run({ main: { data: [50, 50, 10, 10, 0.5, 1, 1], dims: [1, 1, 7] } }, ['a', 'b'], stretch, 100, 100);
    expect(out5.map((o) => [o.label, o.score])).toEqual([['a', 0.5]]);
    const bs = new Detector(spec({ format: 'boxes-scores', boxes: 'b', scores: 's', boxFormat: 'xyxy', scoreThreshold: 0.5 }), 2);
    // anchor 0: scores 0.75, 0.75 (a tie: class 0); anchor 1: 0.9375, 0.625 (class 0): each reads its own two scores only
    const outBs = bs.run(
      {
        boxes: { data: [10, 10, 20, 20, 60, 60, 80, 80], dims: [1, 2, 4] },
        scores: { data: [0.75, 0.75, 0.9375, 0.625], dims: [1, 2, 2] },
      },
      ['a', 'b'],
      stretch,
      100,
      100,
    );
    expect(outBs.map((o) => [o.label, o.score, o.box.x])).toEqual([
      ['a', 0.9375, 60],
      ['a', 0.75, 10],
    ]);
  });

  it('boxes are clipped to the frame', () => {
    const d = new Detector(spec({ format: 'yolov8' }), 1);
    // cx, cy, w, h rows then one class row; N = 1: a box reaching past the top-left corner.
    const out = d.run({ main: { data: [5, 30, 20, 20, 0.9], dims: [1, 5, 1] } }, ['x'], g, 100, 100);
    expect(out[0].box).toEqual({ x: 0, y: 0, w: 30, h: 30 });
    expect(d.last).toEqual({ invalid: 0, capped: 0, incomplete: false });
  });

  it('a box wholly in a letterbox bar (outside the frame in one direction) is clipped to nothing and marks the run incomplete', () => {
    const d = new Detector(spec({ format: 'yolov8' }), 1);
    // input y 5..15 is inside the top bar (0..25): source y -40..-20; x 40..60 is inside (source 80..120)
    const out = d.run({ main: { data: [50, 10, 20, 10, 0.9], dims: [1, 5, 1] } }, ['x'], g, 100, 100);
    expect(out.map((o) => o.box)).toEqual([{ x: 80, y: 0, w: 40, h: 0 }]);
    expect(d.last).toEqual({ invalid: 0, capped: 0, incomplete: true });
  });
});

describe('NMS', () => {
  const box = (x1: number, score: number, cls = 0) => ({ x1, y1: 0, x2: x1 + 10, y2: 10, score, cls });

  it('IoU of two boxes', () => {
    expect(iou(box(0, 1), box(5, 1))).toBeCloseTo(50 / 150, 10);
    expect(iou(box(0, 1), box(10, 1))).toBe(0);
    // apart side by side (overlapping rows, not columns), and one above the other: 0, never negative
    expect(iou(box(0, 1), box(20, 1))).toBe(0);
    expect(iou({ ...box(0, 1), y1: 20, y2: 30 }, box(0, 1))).toBe(0);
    // boxes smaller than a pixel (normalised coordinates) have their IoU all the same
    const tiny = { ...box(0, 1), x2: 0.5, y2: 0.5 };
    expect(iou(tiny, { ...tiny })).toBe(1);
  });

  it('keeps the best of overlapping boxes, at most maxDetections, per class when class-aware', () => {
    const cands = [box(0, 0.5), box(1, 0.9), box(30, 0.7), box(1, 0.8, 1), box(60, 0.6)];
    expect(nms(cands, 0.5, 10, true).map((c) => c.score)).toEqual([0.9, 0.8, 0.7, 0.6]);
    expect(nms(cands, 0.5, 10, false).map((c) => c.score)).toEqual([0.9, 0.7, 0.6]);
    expect(nms(cands, 0.5, 2, true).map((c) => c.score)).toEqual([0.9, 0.8]);
  });
});

describe('NMS at an IoU exactly the threshold', () => {
  it('two boxes whose IoU equals the threshold are both kept; any lower threshold suppresses the weaker', () => {
    // Two w x h boxes, the second shifted right by w/3: overlap (w - s) * h, union (w + s) * h, so IoU = 2s / 4s = 1/2 exactly.
    const w = 30;
    const h = 10;
    const s = w / 3;
    const a = { x1: 0, y1: 0, x2: w, y2: h, score: 0.9, cls: 0 };
    const b = { x1: s, y1: 0, x2: s + w, y2: h, score: 0.8, cls: 0 };
    const inter = (w - s) * h;
    const threshold = inter / (2 * w * h - inter);
    expect(threshold).toBe(1 / 2);
    expect(iou(a, b)).toBe(threshold);
    for (const classAware of [true, false]) {
      expect(nms([a, b], threshold, 10, classAware), `classAware ${classAware}`).toEqual([a, b]);
      expect(nms([b, a], threshold, 10, classAware), `classAware ${classAware}, input order swapped`).toEqual([a, b]);
      expect(nms([a, b], threshold - Number.EPSILON, 10, classAware), `classAware ${classAware}`).toEqual([a]);
    }
  });
});
