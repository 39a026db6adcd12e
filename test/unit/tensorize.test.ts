import { describe, expect, it } from 'vitest';
import type { Frame, PixelFormat } from '../../src/capture/frame.js';
import type { InputSpec } from '../../src/inference/manifest.js';
import { f16bits, Preprocessor, toSource } from '../../src/inference/preprocess.js';
import { nativeTensorAvailable, Tensorizer, tensorView } from '../../src/inference/tensorize.js';
import { mulberry32 } from '../../scripts/make-demo-model.js';
import { IN_CI } from '../helpers/tools.js';

/**
 * The native tensor writer (native/src/tensor.cc through src/inference/tensorize.ts) against the
 * TypeScript reference (src/inference/preprocess.ts, itself checked against an obvious bilinear
 * sampler in preprocess-reference.test.ts): every layout, dtype, colour order, resize mode and pixel
 * format, on frames that take the blend path and the table look-up path. The claim is identical
 * bits (0 ulp), not "close": both do the same double-precision operations in the same order and
 * round once.
 */

const native = nativeTensorAvailable();
if (!native && !IN_CI) console.warn('\n*** tensorize tests SKIPPED (not CI): native/build/Release/edge_tensor.node is not built\n');

function randomFrame(width: number, height: number, format: PixelFormat, pad = 0, seed = 1): Frame {
  const ch = format === 'GRAY8' ? 1 : format === 'RGB' || format === 'BGR' ? 3 : 4;
  const stride = width * ch + pad;
  const rand = mulberry32(width * 31 + height + seed);
  const data = new Uint8Array(stride * height);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  return { camera: 't', seq: 0, width, height, stride, format, data, capturedAtMs: 0 };
}

const base: InputSpec = {
  name: 'x',
  layout: 'NCHW',
  width: 24,
  height: 16,
  colour: 'RGB',
  dtype: 'float32',
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  resize: 'stretch',
};

describe.runIf(native || IN_CI)('native tensor writer = TypeScript reference', () => {
  it('the addon is built (must hold in CI)', () => {
    expect(native).toBe(true);
  });

  const layouts = ['NCHW', 'NHWC'] as const;
  const dtypes = ['float32', 'float16', 'uint8'] as const;
  const modes = ['stretch', 'letterbox', 'center-crop'] as const;
  const formats: [PixelFormat, number, InputSpec['colour']][] = [
    ['RGB', 2, 'RGB'],
    ['BGR', 0, 'RGB'],
    ['RGBA', 0, 'BGR'],
    ['BGRA', 4, 'RGB'],
    ['GRAY8', 3, 'BGR'],
  ];
  for (const layout of layouts) {
    for (const dtype of dtypes) {
      it(`${layout} ${dtype}: every resize mode and pixel format, bit for bit`, () => {
        for (const resize of modes) {
          for (const [format, pad, colour] of formats) {
            const spec: InputSpec = {
              ...base,
              layout,
              dtype,
              resize,
              colour,
              ...(dtype === 'uint8' ? { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] } : {}),
            };
            const ref = new Preprocessor(spec);
            const t = new Tensorizer(spec);
            expect(t.isNative).toBe(true);
            const slot = new SharedArrayBuffer(t.byteLength + 64);
            // Scaled (blend), tall, exactly the input (table look-up), a letterbox fit of the input
            // (look-up rows plus padding); the first again after a size change.
            const frames = [
              randomFrame(61, 37, format, pad),
              randomFrame(20, 45, format, pad, 2),
              randomFrame(24, 16, format, pad, 3),
              randomFrame(24, 12, format, pad, 4),
            ];
            for (const frame of [...frames, frames[0]]) {
              const want = ref.run(frame);
              // Dirty the slot: the native writer must write every element, padding included.
              new Uint8Array(slot).fill(0xa5);
              const g = t.write(frame, slot);
              const got = tensorView(dtype, slot, t.length);
              expect(got.constructor).toBe(want.data.constructor);
              const diff = firstDifference(want.data, got);
              expect(diff, `${resize} from ${frame.width}x${frame.height} ${format}: element ${diff}`).toBe(-1);
              expect(g).toEqual(want.geometry);
              expect(t.dims).toEqual(want.dims);
            }
          }
        }
      });
    }
  }

  // Every interpolation, grey and colour, with a pad of our own: the general path (taps, grey) too.
  const interpolations = ['nearest', 'bilinear', 'area', 'bilinear-antialias', 'bicubic-antialias'] as const;
  for (const interpolation of interpolations) {
    for (const channels of [1, 3] as const) {
      it(`${interpolation}, ${channels === 1 ? 'grey' : 'colour'}: every layout, dtype, resize mode and pixel format, bit for bit`, () => {
        for (const layout of layouts) {
          for (const dtype of dtypes) {
            for (const resize of modes) {
              for (const [format, pad, colour] of formats) {
                const spec: InputSpec = {
                  ...base,
                  layout,
                  dtype,
                  resize,
                  colour,
                  interpolation,
                  channels,
                  pad: channels === 1 ? [7] : [7, 200, 33],
                  ...(dtype === 'uint8' ? { scale: 1, mean: [0], std: [1] } : channels === 1 ? { mean: [0.5], std: [0.25] } : {}),
                };
                const ref = new Preprocessor(spec);
                const t = new Tensorizer(spec);
                const slot = new SharedArrayBuffer(t.byteLength + 64);
                for (const frame of [
                  randomFrame(61, 37, format, pad),
                  randomFrame(20, 45, format, pad, 2),
                  randomFrame(24, 16, format, pad, 3),
                ]) {
                  const want = ref.run(frame);
                  new Uint8Array(slot).fill(0xa5);
                  t.write(frame, slot);
                  const got = tensorView(dtype, slot, t.length);
                  const diff = firstDifference(want.data, got);
                  expect(diff, `${layout} ${dtype} ${resize} from ${frame.width}x${frame.height} ${format}: element ${diff}`).toBe(-1);
                  expect(t.dims).toEqual(want.dims);
                  expect(t.dims[layout === 'NCHW' ? 1 : 3]).toBe(channels);
                }
              }
            }
          }
        }
      });
    }
  }

  it("a frame that capture scaled maps back to the camera's full-resolution pixels", () => {
    const spec: InputSpec = { ...base, width: 224, height: 224, resize: 'letterbox' };
    const t = new Tensorizer(spec);
    const slot = new SharedArrayBuffer(t.byteLength);
    // 640x480 letterboxed by GStreamer to 224x168: a box over the whole fitted picture is the whole camera frame.
    const frame = { ...randomFrame(224, 168, 'RGB'), sourceWidth: 640, sourceHeight: 480 };
    const g = t.write(frame, slot);
    expect(g.srcWidth).toBe(640);
    expect(toSource(g, 0, 28, 224, 168).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0, 0, 640, 480]);
    expect(new Preprocessor(spec).run(frame).geometry).toEqual(g);
  });

  it('sizes are checked before anything reaches C++', () => {
    const t = new Tensorizer(base);
    expect(() => t.write(randomFrame(24, 16, 'RGB'), new SharedArrayBuffer(t.byteLength - 1))).toThrow(
      /tensor buffer: \d+ bytes, the model's input needs/,
    );
    const short = { ...randomFrame(24, 16, 'RGB'), height: 17 };
    expect(() => t.write(short, new SharedArrayBuffer(t.byteLength))).toThrow(
      /frame #0 has 1152 bytes; 24x17 RGB with stride 72 needs 1224/,
    );
  });
});

describe('float16 conversion', () => {
  it('rounds to nearest even, with subnormals, overflow and NaN', () => {
    expect(f16bits(1)).toBe(0x3c00);
    expect(f16bits(-2)).toBe(0xc000);
    expect(f16bits(65504)).toBe(0x7bff);
    expect(f16bits(65520)).toBe(0x7c00); // halfway to the next: rounds up into infinity
    expect(f16bits(1 + 2 ** -11)).toBe(0x3c00); // a tie: stays even
    expect(f16bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // a tie: rounds up to even
    expect(f16bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f16bits(2 ** -26)).toBe(0x0000);
    expect(f16bits(Number.NaN) & 0x7e00).toBe(0x7e00);
    expect(f16bits(-Infinity)).toBe(0xfc00);
  });
});

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
