import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { classify, softmax, topK } from '../../src/inference/classify.js';
import type { InputSpec } from '../../src/inference/manifest.js';
import { geometryFor, Preprocessor, toSource } from '../../src/inference/preprocess.js';
import { mulberry32 } from '../../scripts/make-demo-model.js';

const spec = (over: Partial<InputSpec>): InputSpec => ({
  name: 'x',
  layout: 'NCHW',
  width: 4,
  height: 4,
  colour: 'RGB',
  dtype: 'float32',
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  resize: 'stretch',
  ...over,
});

/** A frame filled with one colour, with padded rows like GStreamer's RGB. */
function solid(w: number, h: number, rgb: [number, number, number], format: Frame['format'] = 'RGB', pad = 0): Frame {
  const ch = format === 'GRAY8' ? 1 : format === 'RGB' || format === 'BGR' ? 3 : 4;
  const stride = w * ch + pad;
  const data = new Uint8Array(stride * h).fill(0xee); // padding bytes must never be read
  const px = format === 'BGR' || format === 'BGRA' ? [rgb[2], rgb[1], rgb[0], 255] : [rgb[0], rgb[1], rgb[2], 255];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < ch; c++) data[y * stride + x * ch + c] = px[c];
  return { camera: 't', seq: 0, width: w, height: h, stride, format, data, capturedAtMs: 0 };
}

describe('preprocess', () => {
  it('NCHW float: scale, mean and std per channel, padded rows ignored', () => {
    const p = new Preprocessor(spec({ mean: [0.5, 0.25, 0], std: [0.5, 0.25, 1] }));
    const { data, dims } = p.run(solid(7, 5, [255, 51, 0], 'RGB', 3));
    expect(dims).toEqual([1, 3, 4, 4]);
    const plane = 16;
    for (let i = 0; i < plane; i++) {
      expect(data[i]).toBeCloseTo((1 - 0.5) / 0.5, 5);
      expect(data[plane + i]).toBeCloseTo((0.2 - 0.25) / 0.25, 5);
      expect(data[2 * plane + i]).toBeCloseTo(0, 5);
    }
  });

  it('BGR source into an RGB model, and RGB source into a BGR NHWC model', () => {
    const a = new Preprocessor(spec({ scale: 1 })).run(solid(8, 8, [10, 20, 30], 'BGR'));
    expect([a.data[0], a.data[16], a.data[32]]).toEqual([10, 20, 30]);
    const b = new Preprocessor(spec({ scale: 1, colour: 'BGR', layout: 'NHWC' })).run(solid(8, 8, [10, 20, 30], 'RGBA'));
    expect(b.dims).toEqual([1, 4, 4, 3]);
    expect(Array.from(b.data.slice(0, 6))).toEqual([30, 20, 10, 30, 20, 10]);
  });

  it('uint8 models get raw pixels', () => {
    const r = new Preprocessor(spec({ dtype: 'uint8' })).run(solid(4, 4, [1, 2, 3]));
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(r.data.slice(0, 2))).toEqual([1, 1]);
    expect(r.data[16]).toBe(2);
  });

  it('bilinear stretch of a left/right split keeps the halves and blends the middle', () => {
    const f = solid(8, 2, [0, 0, 0]);
    for (let y = 0; y < 2; y++) for (let x = 4; x < 8; x++) f.data.fill(200, y * f.stride + x * 3, y * f.stride + x * 3 + 3);
    const { data } = new Preprocessor(spec({ width: 4, height: 1, scale: 1 })).run(f);
    // dst x=0 samples src 0.5 (black), x=3 samples src 6.5 (white), x=1 samples 2.5, x=2 samples 4.5
    expect(Array.from(data.slice(0, 4))).toEqual([0, 0, 200, 200]);
  });

  it('letterbox: geometry, grey padding, and boxes mapped back to source pixels', () => {
    const g = geometryFor({ width: 640, height: 640, resize: 'letterbox' }, 1280, 720);
    expect(g).toMatchObject({ scaleX: 0.5, scaleY: 0.5, offsetX: 0, offsetY: 140 });
    expect(toSource(g, 100, 240, 50, 60)).toEqual([200, 200, 100, 120]);

    const p = new Preprocessor(spec({ width: 8, height: 8, resize: 'letterbox', scale: 1 }));
    const { data } = p.run(solid(16, 8, [255, 0, 0]));
    // 16x8 -> 8x4 centred: rows 0-1 and 6-7 are padding (114), rows 2-5 the red image
    const R = (x: number, y: number) => data[y * 8 + x];
    expect([R(0, 0), R(7, 1), R(3, 2), R(3, 5), R(0, 6), R(7, 7)]).toEqual([114, 114, 255, 255, 114, 114]);
  });

  it('center-crop fills the input and crops the long side', () => {
    const g = geometryFor({ width: 224, height: 224, resize: 'center-crop' }, 640, 480);
    expect(g.scaleX).toBeCloseTo(224 / 480);
    expect(g.offsetX).toBeCloseTo((224 - 640 * (224 / 480)) / 2);
    expect(toSource(g, 0, 0, 224, 224).map((v) => Math.round(v))).toEqual([80, 0, 480, 480]);
  });

  it('grey sources fill all three channels', () => {
    const { data } = new Preprocessor(spec({ scale: 1 })).run(solid(4, 4, [77, 77, 77], 'GRAY8'));
    expect([data[0], data[16], data[32]]).toEqual([77, 77, 77]);
  });
});

describe('classification postprocessing', () => {
  it('softmax and top-k', () => {
    const p = softmax([1, 2, 3]);
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const s = e[0] + e[1] + e[2];
    expect(Array.from(p).map((v) => +v.toFixed(6))).toEqual(e.map((v) => +(v / s).toFixed(6)));
    expect(topK([0.1, 0.7, 0.2], ['a', 'b', 'c'], 2)).toEqual([
      { index: 1, label: 'b', score: 0.7 },
      { index: 2, label: 'c', score: 0.2 },
    ]);
    expect(classify([0, 10, 0], ['a', 'b', 'c'], { outputs: 'logits', topK: 1 }).top[0].label).toBe('b');
  });

  it('top-k is the head of the full sort (score down, index up on ties), with many ties and k beyond the length', () => {
    const rand = mulberry32(7);
    for (let t = 0; t < 500; t++) {
      const n = 1 + Math.floor(rand() * 40);
      const k = 1 + Math.floor(rand() * 8);
      const scores = Array.from({ length: n }, () => Math.floor(rand() * 5) / 4);
      const sorted = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      expect(
        topK(scores, [], k).map((c) => c.index),
        JSON.stringify({ scores, k }),
      ).toEqual(sorted.slice(0, k));
    }
  });
});
