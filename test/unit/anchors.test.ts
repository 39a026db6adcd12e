import { describe, expect, it } from 'vitest';
import { anchorGrid, PRE_NMS_LIMIT } from '../../src/inference/anchors.js';
import { checkModelIo, type ModelIo } from '../../src/inference/check.js';
import { Detector } from '../../src/inference/detect.js';
import { HeadJoiner } from '../../src/inference/heads.js';
import { anchorsSchema, detectSchema, manifestSchema } from '../../src/inference/manifest.js';
import { geometryFor } from '../../src/inference/preprocess.js';

/**
 * Anchor-based decoding (BlazeFace offsets, SSD/RetinaFace centre-size, SCRFD distances), several
 * heads per role, keypoints (x, y) or (x, y, v) in every format, and the load-time checks, on
 * hand-made tensors whose answers are worked out in the comments.
 */

const spec = (patch: object) => detectSchema.parse(patch);
const id = (w: number, h = w) => geometryFor({ width: w, height: h, resize: 'stretch' }, w, h);
const t = (rows: number[][]) => ({ data: rows.flat(), dims: [1, rows.length, rows[0].length] });
const zeros = (n: number, k: number) => Array.from({ length: n }, () => new Array<number>(k).fill(0));

describe('anchor grid', () => {
  it("BlazeFace: strides 8, 16, 16, 16 with 2 per layer are MediaPipe's 16x16x2 + 8x8x6 = 896, row-major, centres at (x + 0.5) stride", () => {
    const g = anchorGrid(anchorsSchema.parse({ strides: [8, 16, 16, 16], perCell: 2 }), 128, 128);
    expect(g.levels.map((l) => [l.rows, l.cols, l.sizes.length, l.count])).toEqual([
      [16, 16, 2, 512],
      [8, 8, 6, 384],
    ]);
    expect(g.count).toBe(896);
    expect([g.cx[0], g.cy[0], g.cx[1], g.cx[2], g.cx[32], g.cy[32]]).toEqual([4, 4, 4, 12, 4, 12]);
    // First anchor of the 8x8 map, and the last anchor overall (cell 7,7 of the 8x8 map).
    expect([g.cx[512], g.cx[517], g.cx[518], g.cx[895], g.cy[895], g.w[0]]).toEqual([8, 8, 24, 120, 120, 128]);
  });

  it('SCRFD: offset 0 and 2 anchors per cell; RetinaFace: sizes per level make the anchors per cell', () => {
    const s = anchorGrid(anchorsSchema.parse({ strides: [8, 16, 32], perCell: 2, offset: 0 }), 640, 640);
    expect(s.count).toBe(80 * 80 * 2 + 40 * 40 * 2 + 20 * 20 * 2);
    expect([s.cx[0], s.cx[2], s.stride[12800], s.cx[12802]]).toEqual([0, 8, 16, 16]);
    const r = anchorGrid(anchorsSchema.parse({ strides: [8, 16], sizes: [[16, 32], [64]] }), 32, 32);
    expect(r.count).toBe(4 * 4 * 2 + 2 * 2);
    expect([r.w[0], r.w[1], r.cx[1], r.w[32], r.cx[33]]).toEqual([16, 32, 4, 64, 24]);
  });
});

describe('anchor grid: explicit maps and yolo heads', () => {
  it('featureMaps override ceil(input / stride); a yolov8 output split over heads is checked head by head', () => {
    const g = anchorGrid(anchorsSchema.parse({ strides: [8], featureMaps: [[3, 5]], perCell: 1 }), 40, 30);
    expect([g.count, g.cx[4], g.cy[5]]).toEqual([15, 36, 12]);
    const m = manifestSchema.parse({
      name: 'y',
      version: '1',
      task: 'detect',
      sha256: 'a'.repeat(64),
      input: { name: 'images', width: 64, height: 64 },
      output: { name: ['p3', 'p4'] },
      labels: ['a', 'b'],
    });
    const io = (k: number): ModelIo => ({
      inputs: [{ name: 'images', type: 'float32', shape: [1, 3, 64, 64] }],
      outputs: [
        { name: 'p3', type: 'float32', shape: [1, 6, 64] },
        { name: 'p4', type: 'float32', shape: [1, k, 16] },
      ],
    });
    expect(checkModelIo(m, ['a', 'b'], io(6))).toEqual({ problems: [], outputs: { main: ['p3', 'p4'] } });
    expect(checkModelIo(m, ['a', 'b'], io(7)).problems).toEqual([
      'labels: 2 labels need 6 values per box in yolov8 format (4 box + classes), the model\'s output "p4" has 7 (shape [1,7,16])',
    ]);
    const cls = manifestSchema.safeParse({ ...m, task: 'classify', output: { name: ['p3', 'p4'] } });
    expect(cls.error?.issues.map((i) => i.path.join('.'))).toEqual(['output.name']);
  });
});

describe('anchor decoding', () => {
  it('offsets (BlazeFace): input pixels from the anchor centre, logits, (x, y) keypoints scored as the face', () => {
    // 16x16 input, stride 8: 2x2 cells, 1 anchor each, centres (4,4) (12,4) (4,12) (12,12).
    const d = new Detector(
      spec({
        format: 'anchors',
        boxes: 'b',
        scores: 's',
        scoreType: 'logits',
        scoreThreshold: 0.5,
        anchors: { strides: [8], perCell: 1 },
        encoding: 'offsets',
        keypoints: ['right_eye', 'left_eye'],
      }),
      1,
    );
    const boxes = zeros(4, 8);
    boxes[3] = [1, -2, 6, 4, -2, -1, 2, -1]; // anchor (12,12): centre (13,10), 6x4; eyes (10,11) (14,11)
    const scores = [[-3], [-0.1], [-5], [2]]; // sigmoid(2) = 0.881; sigmoid(-0.1) < 0.5
    const out = d.run({ boxes: t(boxes), scores: t(scores) }, ['face'], id(16), 16, 16);
    expect(out).toHaveLength(1);
    const s = 1 / (1 + Math.exp(-2));
    expect(out[0]).toEqual({
      index: 0,
      label: 'face',
      score: s,
      box: { x: 10, y: 8, w: 6, h: 4 },
      keypoints: [
        { name: 'right_eye', x: 10, y: 11, score: s },
        { name: 'left_eye', x: 14, y: 11, score: s },
      ],
    });
  });

  it('center-size (RetinaFace): centre + d x 0.1 x anchor, size anchor x exp(d x 0.2); softmax with a background column', () => {
    const d = new Detector(
      spec({
        format: 'anchors',
        boxes: 'b',
        scores: 's',
        keypointOutputs: 'k',
        scoreType: 'probabilities',
        background: true,
        anchors: { strides: [16], sizes: [[10]] },
        encoding: 'center-size',
        keypoints: ['nose'],
      }),
      1,
    );
    // One 16x16 cell, anchor (8,8) side 10: centre 8 + 1 x 0.1 x 10 = 9, 8 - 2 x 0.1 x 10 = 6;
    // w = 10 e^(0.2 x ln(1.2) / 0.2) = 12, h = 10 e^0 = 10.
    const out = d.run(
      { boxes: t([[1, -2, Math.log(1.2) / 0.2, 0]]), scores: t([[0.1, 0.9]]), keypoints: t([[5, 5]]) },
      ['face'],
      id(16),
      16,
      16,
    );
    expect(out[0].score).toBeCloseTo(0.9, 6);
    expect(out[0].box.x).toBeCloseTo(3, 5); // 9 - 6
    expect(out[0].box.w).toBeCloseTo(12, 5);
    expect(out[0].box.y).toBeCloseTo(1, 5); // 6 - 5
    expect(out[0].box.h).toBeCloseTo(10, 5);
    expect(out[0].keypoints).toEqual([{ name: 'nose', x: 13, y: 13, score: out[0].score }]);
  });

  it('distance (SCRFD): edges at distance x stride from the anchor point, keypoints (x, y, v), two heads joined in order', () => {
    const d = new Detector(
      spec({
        format: 'anchors',
        boxes: ['b8', 'b16'],
        scores: ['s8', 's16'],
        keypointOutputs: ['k8', 'k16'],
        keypointValues: 3,
        anchors: { strides: [8, 16], perCell: 1, offset: 0 },
        encoding: 'distance',
        keypoints: ['eye'],
        scoreThreshold: 0.5,
      }),
      1,
    );
    // 16x16 input: stride 8 gives 4 anchors at (0,0) (8,0) (0,8) (8,8); stride 16 one at (0,0).
    const joiner = new HeadJoiner();
    const boxes = joiner.join([t(zeros(4, 4)), t([[-0.5, -0.5, 1, 0.5]])], 'rows'); // (8,8)..(16,8): x1 8 y1 8 x2 16 y2 8+8
    const scores = new HeadJoiner().join([t([[0], [0], [0], [0.2]]), t([[0.7]])], 'rows');
    const kps = new HeadJoiner().join([t(zeros(4, 3)), t([[0.5, 0.75, 0.4]])], 'rows');
    const out = d.run({ boxes, scores, keypoints: kps }, ['face'], id(16), 16, 16);
    expect(out).toEqual([
      {
        index: 0,
        label: 'face',
        score: Math.fround(0.7),
        box: { x: 8, y: 8, w: 8, h: 0 },
        keypoints: [{ name: 'eye', x: 8, y: 12, score: Math.fround(0.4) }],
      },
    ]);
  });

  it('at most 1000 anchors, the best, go on to NMS however many pass the threshold', () => {
    // 64x64 at stride 2, 1 per cell: 1024 anchors, all passing; scores rise with the index.
    const d = new Detector(
      spec({ format: 'anchors', boxes: 'b', scores: 's', anchors: { strides: [2], perCell: 1 }, encoding: 'distance' }),
      1,
    );
    const scores = Array.from({ length: 1024 }, (_, i) => [0.3 + i / 2048]);
    const c = d.candidates({ boxes: t(zeros(1024, 4)), scores: t(scores) }, 64, 64);
    expect(c).toHaveLength(PRE_NMS_LIMIT);
    expect(Math.min(...c.map((x) => x.anchor ?? -1))).toBe(1024 - PRE_NMS_LIMIT);
  });

  it('stride-exp (YuNet 2023): centre + d x stride, size exp(d) x stride; objectness heads, product or geometric mean', () => {
    // 16x16 input, stride 8, offset 0: cells at (0,0) (8,0) (0,8) (8,8).
    const yunet = (combine: string, scoreType = 'probabilities') =>
      new Detector(
        spec({
          format: 'anchors',
          boxes: 'b',
          scores: 'c',
          objectness: 'o',
          objectnessCombine: combine,
          scoreType,
          scoreThreshold: 0.7,
          anchors: { strides: [8], perCell: 1, offset: 0 },
          encoding: 'stride-exp',
          keypoints: ['nose'],
        }),
        1,
      );
    // Anchor 3 (8,8): centre (8 + 0.5 x 8, 8 + 0.25 x 8) = (12, 10), size e^0 x 8 = 8 by e^(ln 0.5) x 8 = 4; nose (8 + 8, 8 - 4).
    const boxes = zeros(4, 4);
    boxes[3] = [0.5, 0.25, 0, Math.log(0.5)];
    const kps = zeros(4, 2);
    kps[3] = [1, -0.5];
    // Anchor 3: class 0.8, objectness 0.9 (product 0.72, geometric mean 0.849); anchor 1: 1.3 and 0.6 clamped to 1 x 0.6.
    const outputs = { boxes: t(boxes), scores: t([[0.2], [1.3], [0], [0.8]]), objectness: t([[1], [0.6], [1], [0.9]]), keypoints: t(kps) };
    const geo = yunet('geometric-mean').run(outputs, ['face'], id(16), 16, 16);
    expect(geo.map((x) => x.score)).toEqual([expect.closeTo(Math.sqrt(0.72), 6), expect.closeTo(Math.sqrt(0.6), 6)]);
    expect(geo[0].box).toEqual({ x: 8, y: 8, w: 8, h: 4 });
    expect(geo[0].keypoints).toEqual([{ name: 'nose', x: 16, y: 4, score: geo[0].score }]);
    const product = yunet('product').run(outputs, ['face'], id(16), 16, 16);
    expect(product.map((x) => x.score)).toEqual([expect.closeTo(0.72, 6)]);
    // Logits: a sigmoid on both heads before they combine (sigmoid(ln 4) = 0.8, sigmoid(ln 9) = 0.9).
    const logits = { ...outputs, scores: t([[-9], [-9], [-9], [Math.log(4)]]), objectness: t([[-9], [-9], [-9], [Math.log(9)]]) };
    expect(
      yunet('product', 'logits')
        .run(logits, ['face'], id(16), 16, 16)
        .map((x) => x.score),
    ).toEqual([expect.closeTo(0.72, 6)]);
    expect(() => yunet('product').run({ ...outputs, objectness: t(zeros(3, 1)) }, ['face'], id(16), 16, 16)).toThrow(
      'the model answered 4 boxes and 4 scores and 3 objectness values',
    );
  });

  it('a model answering another number of anchors than the grid is an error, never a silent wrong decode', () => {
    const d = new Detector(
      spec({ format: 'anchors', boxes: 'b', scores: 's', anchors: { strides: [8], perCell: 1 }, encoding: 'offsets' }),
      1,
    );
    expect(() => d.run({ boxes: t(zeros(3, 4)), scores: t(zeros(3, 1)) }, ['f'], id(16), 16, 16)).toThrow(
      'detect.anchors: the grid has 4 anchors, the model answered 3 boxes and 3 scores',
    );
  });
});

describe('heads and keypoints in every format', () => {
  it('yolov8 split over two heads decodes as the one output would; keypoints (x, y) take the box score', () => {
    // [1, 4 + 1 + 2, N]: cx cy w h, score, kx ky; anchors 0..2 in head A, 3 in head B.
    const rows = (n: number, f: (i: number) => number[]) =>
      Array.from({ length: 7 }, (_, r) => Array.from({ length: n }, (_, i) => f(i)[r]));
    const col = (i: number) => (i === 3 ? [50, 40, 20, 10, 0.9, 45, 41] : [10 * i, 10, 4, 4, 0.1, 0, 0]);
    const one = { data: rows(4, col).flat(), dims: [1, 7, 4] };
    const a = { data: rows(3, col).flat(), dims: [1, 7, 3] };
    const b = { data: rows(1, (i) => col(i + 3)).flat(), dims: [1, 7, 1] };
    const joined = new HeadJoiner().join([a, b], 'columns');
    expect(Array.from(joined.data)).toEqual(one.data.map(Math.fround));
    const d = new Detector(spec({ format: 'yolov8', keypoints: ['eye'], keypointValues: 2 }), 1);
    const out = d.run({ main: joined }, ['face'], id(100), 100, 100);
    expect(out).toEqual([
      {
        index: 0,
        label: 'face',
        score: expect.closeTo(0.9, 6),
        box: { x: 40, y: 35, w: 20, h: 10 },
        keypoints: [{ name: 'eye', x: 45, y: 41, score: expect.closeTo(0.9, 6) }],
      },
    ]);
  });

  it('yolov5 keypoints after the class scores; boxes-scores keypoints after the box, normalised like it', () => {
    const v5 = new Detector(spec({ format: 'yolov5', keypoints: ['a'], keypointValues: 3 }), 1);
    const o5 = v5.run({ main: t([[50, 50, 10, 10, 0.9, 1, 48, 52, 0.6]]) }, ['x'], id(100), 100, 100);
    expect(o5[0].keypoints).toEqual([{ name: 'a', x: 48, y: 52, score: 0.6 }]);
    const bs = new Detector(spec({ format: 'boxes-scores', boxes: 'b', scores: 's', normalized: true, keypoints: ['a'] }), 1);
    const ob = bs.run({ boxes: t([[0.1, 0.2, 0.3, 0.4, 0.25, 0.5]]), scores: t([[0.8]]) }, ['x'], id(100), 100, 100);
    expect(ob[0]).toMatchObject({
      box: { x: 10, y: 20, w: 20, h: 20 },
      keypoints: [{ name: 'a', x: 25, y: 50, score: expect.closeTo(0.8, 6) }],
    });
  });
});

describe('load-time checks', () => {
  const base = {
    name: 'bf',
    version: '1',
    task: 'detect',
    sha256: 'a'.repeat(64),
    input: { name: 'input', layout: 'NHWC', width: 128, height: 128 },
    labels: ['face'],
  };
  const blaze = (patch: object = {}) =>
    manifestSchema.parse({
      ...base,
      detect: {
        format: 'anchors',
        boxes: ['r8', 'r16'],
        scores: ['s8', 's16'],
        scoreType: 'logits',
        anchors: { strides: [8, 16, 16, 16], perCell: 2 },
        encoding: 'offsets',
        keypoints: ['right_eye', 'left_eye', 'nose', 'mouth', 'right_ear', 'left_ear'],
        ...patch,
      },
    });
  const io = (n16: number, values = 16): ModelIo => ({
    inputs: [{ name: 'input', type: 'float32', shape: [1, 128, 128, 3] }],
    outputs: [
      { name: 's8', type: 'float32', shape: [1, 512, 1] },
      { name: 's16', type: 'float32', shape: [1, n16, 1] },
      { name: 'r8', type: 'float32', shape: [1, 512, values] },
      { name: 'r16', type: 'float32', shape: [1, n16, values] },
    ],
  });

  it('the grid fits the heads: no problem; a grid that does not: one line per role, naming both counts', () => {
    expect(checkModelIo(blaze(), ['face'], io(384)).problems).toEqual([]);
    expect(checkModelIo(blaze(), ['face'], io(388)).problems).toEqual([
      'detect.anchors: expected 896 anchors from the grid (strides 8, 16: 16x16 x 2 + 8x8 x 6 = 512 + 384), the heads of detect.boxes have 512 + 388 = 900 (r8, r16)',
      'detect.anchors: expected 896 anchors from the grid (strides 8, 16: 16x16 x 2 + 8x8 x 6 = 512 + 384), the heads of detect.scores have 512 + 388 = 900 (s8, s16)',
    ]);
    // The right total split the wrong way between the heads is refused too.
    const swapped = checkModelIo(blaze({ boxes: ['r16', 'r8'], scores: ['s16', 's8'] }), ['face'], io(384)).problems;
    expect(swapped[0]).toContain('the heads of detect.boxes have 384 + 512 = 896 (r16, r8)');
  });

  it('objectness heads (YuNet) are counted against the grid like the others, and must have one value per anchor', () => {
    const withObj = (obj8: number[]): ModelIo => ({
      ...io(384),
      outputs: [...io(384).outputs, { name: 'o8', type: 'float32', shape: obj8 }, { name: 'o16', type: 'float32', shape: [1, 384, 1] }],
    });
    const m = blaze({ objectness: ['o8', 'o16'] });
    expect(checkModelIo(m, ['face'], withObj([1, 512, 1]))).toMatchObject({ problems: [], outputs: { objectness: ['o8', 'o16'] } });
    expect(checkModelIo(m, ['face'], withObj([1, 500, 2])).problems).toEqual([
      'detect.objectness: the model\'s output "o8" has 2 values per anchor (shape [1,500,2]); expected 1',
      'detect.anchors: expected 896 anchors from the grid (strides 8, 16: 16x16 x 2 + 8x8 x 6 = 512 + 384), the heads of detect.objectness have 500 + 384 = 884 (o8, o16)',
    ]);
  });

  it('keypoints the model has no room for are refused at load', () => {
    expect(checkModelIo(blaze(), ['face'], io(384, 14)).problems).toEqual([
      'detect.keypoints: 6 keypoints x 2 values need 16 values per box in "r8" (4 box + 12), it has 14 (shape [1,512,14])',
      'detect.keypoints: 6 keypoints x 2 values need 16 values per box in "r16" (4 box + 12), it has 14 (shape [1,384,14])',
    ]);
    expect(checkModelIo(blaze({ keypointValues: 3 }), ['face'], io(384)).problems[0]).toContain('need 22 values per box');
  });

  it('the schema refuses an anchors format without its grid, and anchor fields on the other formats', () => {
    const issues = (d: object) =>
      manifestSchema.safeParse({ ...base, detect: d }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues({ format: 'anchors', boxes: 'b', scores: 's' })).toEqual([
      'detect.anchors: required when detect.format is anchors: strides, perCell or sizes, offset',
      'detect.encoding: required when detect.format is anchors: offsets, center-size, distance or stride-exp',
    ]);
    expect(issues({ format: 'yolov8', encoding: 'offsets', scoreType: 'logits', objectness: 'obj' })).toEqual([
      'detect.objectness: only for detect.format anchors (it is yolov8)',
      'detect.encoding: only for detect.format anchors (it is yolov8)',
      'detect.scoreType: only for detect.format anchors (it is yolov8)',
    ]);
    expect(
      issues({ format: 'anchors', boxes: 'b', scores: 's', encoding: 'center-size', anchors: { strides: [8, 16], perCell: [2] } }),
    ).toEqual([
      'detect.anchors.perCell: one per level: 2 strides, 1 counts',
      'detect.anchors.sizes: center-size boxes are relative to anchor sizes: give sizes per level',
    ]);
  });
});
