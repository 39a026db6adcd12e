import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import type { Interpolation } from '../../src/inference/manifest.js';
import { Preprocessor } from '../../src/inference/preprocess.js';
import { Tensorizer, tensorView } from '../../src/inference/tensorize.js';

/**
 * The daemon's resize against the libraries models are trained with, on the same picture: OpenCV's
 * INTER_AREA and INTER_LINEAR (colour, and grey after COLOR_RGB2GRAY) and PIL's BILINEAR, BICUBIC,
 * BOX and NEAREST, made by scripts/make-resize-reference.py (committed PNGs: CI needs no OpenCV).
 * The bound is the mean absolute difference per pixel value, in 0..255 levels: our float output
 * against their uint8 (rounded) one, so about 0.25 of it is their rounding alone. The wrong
 * interpolation must be far off on the same picture, so the comparison can fail.
 */

const dir = join(import.meta.dirname, '..', 'fixtures', 'resize');

async function rgb(file: string): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(join(dir, file)).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels };
}

/** Our resize of source.png to `w`x`h` as float pixel values (scale 1, NHWC: the picture's own order), written natively. */
async function ours(interpolation: Interpolation, w: number, h: number, channels: 1 | 3): Promise<Float32Array> {
  const src = await rgb('source.png');
  const frame: Frame = {
    camera: 't',
    seq: 0,
    width: src.width,
    height: src.height,
    stride: src.width * 3,
    format: 'RGB',
    data: src.data,
    capturedAtMs: 0,
  };
  const spec = {
    name: 'x',
    layout: 'NHWC',
    width: w,
    height: h,
    colour: 'RGB',
    dtype: 'float32',
    scale: 1,
    mean: [0],
    std: [1],
    resize: 'stretch',
    interpolation,
    channels,
  } as const;
  const t = new Tensorizer(spec);
  const slot = new SharedArrayBuffer(t.byteLength);
  t.write(frame, slot);
  const out = Float32Array.from(tensorView('float32', slot, t.length));
  // The reference writer (TF.js models, crops) gives the same values.
  expect(new Preprocessor(spec).run(frame).data).toEqual(out);
  return out;
}

const meanAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
};

/** [reference file prefix, our interpolation, bound]: what the docs (docs/inputs.md) claim matches. */
const MATCHES: [string, Interpolation, number][] = [
  ['opencv-area', 'area', 0.3],
  ['opencv-area-grey', 'area', 0.3],
  ['opencv-linear', 'bilinear', 0.3],
  ['pil-bilinear', 'bilinear-antialias', 0.3],
  ['pil-bicubic', 'bicubic-antialias', 0.3],
  ['pil-nearest', 'nearest', 0.01],
];

describe('resize = OpenCV / PIL on the same picture', () => {
  const files = readdirSync(dir).filter((f) => f !== 'source.png');
  for (const [prefix, interpolation, bound] of MATCHES) {
    const refs = files.filter((f) => new RegExp(`^${prefix}-\\d+x\\d+\\.png$`).test(f));
    it(`${interpolation} = ${prefix} (mean |difference| < ${bound} of 255), at ${refs.map((f) => f.slice(prefix.length + 1, -4)).join(', ')}`, async () => {
      expect(refs.length).toBeGreaterThan(0);
      for (const f of refs) {
        const ref = await rgb(f);
        const grey = prefix.includes('grey');
        const got = await ours(interpolation, ref.width, ref.height, grey ? 1 : 3);
        const want = grey ? ref.data.filter((_, i) => i % ref.channels === 0) : ref.data;
        const d = meanAbs(got, want);
        expect(d, `${f}: mean |difference| ${d.toFixed(3)}`).toBeLessThan(bound);
      }
    });
  }

  it('the plain bilinear of before is far from INTER_AREA on a downscale (the gap the interpolation key closes)', async () => {
    const ref = await rgb('opencv-area-64x48.png');
    const d = meanAbs(await ours('bilinear', 64, 48, 3), ref.data);
    expect(d).toBeGreaterThan(5);
  });
});
