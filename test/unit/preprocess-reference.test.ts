import { describe, expect, it } from 'vitest';
import type { Frame, PixelFormat } from '../../src/capture/frame.js';
import type { InputSpec } from '../../src/inference/manifest.js';
import { geometryFor, Preprocessor, toSource } from '../../src/inference/preprocess.js';
import { mulberry32 } from '../../scripts/make-demo-model.js';

/** The preprocessor against a slow, obvious reference: every layout, colour order, dtype, resize mode and pixel format. */

function randomFrame(width: number, height: number, format: PixelFormat, pad = 0): Frame {
  const ch = format === 'GRAY8' ? 1 : format === 'RGB' || format === 'BGR' ? 3 : 4;
  const stride = width * ch + pad;
  const rand = mulberry32(width * 31 + height);
  const data = new Uint8Array(stride * height);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  return { camera: 't', seq: 0, width, height, stride, format, data, capturedAtMs: 0 };
}

/** Bilinear sample of source channel `c` (in R,G,B terms) at model pixel (x, y); undefined in the padding. */
function reference(frame: Frame, spec: InputSpec, x: number, y: number, c: number): number | undefined {
  const g = geometryFor(spec, frame.width, frame.height);
  const sx = (x + 0.5 - g.offsetX) / g.scaleX - 0.5;
  const sy = (y + 0.5 - g.offsetY) / g.scaleY - 0.5;
  if (sx < -0.5 || sx > frame.width - 0.5 || sy < -0.5 || sy > frame.height - 0.5) return undefined;
  const ch = frame.format === 'GRAY8' ? 1 : frame.format === 'RGB' || frame.format === 'BGR' ? 3 : 4;
  const rgbIndex = (k: number) => (frame.format === 'GRAY8' ? 0 : frame.format.startsWith('BGR') ? 2 - k : k);
  const want = spec.colour === 'RGB' ? c : 2 - c;
  const px = (ix: number, iy: number) => frame.data[iy * frame.stride + ix * ch + rgbIndex(want)];
  const cx = Math.min(Math.max(sx, 0), frame.width - 1);
  const cy = Math.min(Math.max(sy, 0), frame.height - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, frame.width - 1);
  const y1 = Math.min(y0 + 1, frame.height - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  return (px(x0, y0) * (1 - fx) + px(x1, y0) * fx) * (1 - fy) + (px(x0, y1) * (1 - fx) + px(x1, y1) * fx) * fy;
}

const base: InputSpec = {
  name: 'x',
  layout: 'NCHW',
  width: 24,
  height: 16,
  colour: 'RGB',
  dtype: 'float32',
  scale: 1 / 255,
  mean: [0.4, 0.5, 0.6],
  std: [0.2, 0.25, 0.3],
  resize: 'stretch',
};

describe('Preprocessor', () => {
  const combos: [string, Partial<InputSpec>, PixelFormat, number][] = [
    ['NCHW RGB float stretch from RGB', {}, 'RGB', 0],
    ['NHWC BGR float letterbox from RGB with padded rows', { layout: 'NHWC', colour: 'BGR', resize: 'letterbox' }, 'RGB', 2],
    ['NCHW RGB uint8 center-crop from BGRA', { dtype: 'uint8', resize: 'center-crop' }, 'BGRA', 0],
    ['NHWC RGB float letterbox from GRAY8', { layout: 'NHWC', resize: 'letterbox' }, 'GRAY8', 3],
    ['NCHW BGR float letterbox from BGR (tall source)', { colour: 'BGR', resize: 'letterbox' }, 'BGR', 0],
  ];
  for (const [what, patch, format, pad] of combos) {
    it(what, () => {
      const spec = { ...base, ...patch };
      const p = new Preprocessor(spec);
      // 24x12 and 24x16: unscaled columns and rows landing on source rows (the table look-up path).
      const frames = [
        randomFrame(61, 37, format, pad),
        randomFrame(20, 45, format, pad),
        randomFrame(24, 12, format, pad),
        randomFrame(24, 16, format, pad),
      ];
      for (const frame of [...frames, frames[0]]) {
        const { data, dims } = p.run(frame);
        expect(dims).toEqual(spec.layout === 'NCHW' ? [1, 3, 16, 24] : [1, 16, 24, 3]);
        for (let y = 0; y < spec.height; y++) {
          for (let x = 0; x < spec.width; x++) {
            for (let c = 0; c < 3; c++) {
              const idx = spec.layout === 'NCHW' ? c * 16 * 24 + y * 24 + x : (y * 24 + x) * 3 + c;
              const v = reference(frame, spec, x, y, c) ?? 114;
              const want = spec.dtype === 'uint8' ? Math.floor(v + 0.5) : (v * spec.scale - spec.mean[c]) / spec.std[c];
              expect(Math.abs(data[idx] - want), `${frame.width}x${frame.height} (${x},${y}) c${c}`).toBeLessThan(
                spec.dtype === 'uint8' ? 1.01 : 1e-4,
              );
            }
          }
        }
      }
    });
  }

  it('geometry maps model pixels back to source pixels', () => {
    const g = geometryFor({ width: 640, height: 640, resize: 'letterbox' }, 1280, 720);
    expect(g).toMatchObject({ scaleX: 0.5, scaleY: 0.5, offsetX: 0, offsetY: 140 });
    expect(toSource(g, 100, 190, 64, 32)).toEqual([200, 100, 128, 64]);
    const c = geometryFor({ width: 224, height: 224, resize: 'center-crop' }, 448, 224);
    expect(c).toMatchObject({ scaleX: 1, scaleY: 1, offsetX: -112, offsetY: 0 });
    expect(toSource(c, 0, 0, 224, 224)).toEqual([112, 0, 224, 224]);
  });
});
