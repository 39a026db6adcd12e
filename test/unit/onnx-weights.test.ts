import { describe, expect, it } from 'vitest';
import { ProtoWriter } from '../../scripts/onnx/protobuf.js';
import { onnxInitializers } from '../../src/inference/onnx-weights.js';
import { f16bits } from '../../src/inference/preprocess.js';

/**
 * The initializer reader on hand-written protobuf: every way ONNX stores a float tensor that CAM's
 * weights may come in (raw_data float32/float16/float64, packed and unpacked float_data, float16
 * bits in int32_data), dims packed or not, and the ones it must refuse with a reason.
 */

const W = [0.5, -1.25, 3, 1024, -0.001, 7];

/** A ModelProto with one graph holding the given TensorProtos. */
function model(...tensors: ((t: ProtoWriter) => void)[]): Uint8Array {
  return new ProtoWriter()
    .int(1, 8)
    .message(7, (g) => {
      for (const t of tensors) g.message(5, t);
      g.string(2, 'g');
    })
    .finish();
}

const le = (n: number, size: number, set: (v: DataView, i: number, x: number) => void) => {
  const v = new DataView(new ArrayBuffer(n * size));
  for (const [i, x] of W.entries()) set(v, i * size, x);
  return new Uint8Array(v.buffer);
};

describe('onnxInitializers', () => {
  const all = model(
    (t) =>
      t
        .int(1, 2)
        .int(1, 3)
        .int(2, 1)
        .string(8, 'raw32')
        .bytes(
          9,
          le(6, 4, (v, i, x) => v.setFloat32(i, x, true)),
        ),
    (t) =>
      t
        .packedInts(1, [3, 2])
        .int(2, 10)
        .string(8, 'raw16')
        .bytes(
          9,
          le(6, 2, (v, i, x) => v.setUint16(i, f16bits(x), true)),
        ),
    (t) =>
      t
        .int(1, 6)
        .int(2, 11)
        .string(8, 'raw64')
        .bytes(
          9,
          le(6, 8, (v, i, x) => v.setFloat64(i, x, true)),
        ),
    (t) => t.int(1, 6).int(2, 1).packedFloats(4, W).string(8, 'packed'),
    (t) => {
      t.int(1, 6).int(2, 1);
      for (const x of W) t.float(4, x);
      t.string(8, 'unpacked');
    },
    (t) => t.int(1, 6).int(2, 10).packedInts(5, W.map(f16bits)).string(8, 'int32data16'),
    (t) => t.int(1, 6).int(2, 7).string(8, 'ints').bytes(9, new Uint8Array(48)),
    (t) => t.int(1, 6).int(2, 1).string(8, 'external').int(14, 1),
    (t) =>
      t
        .int(1, 7)
        .int(2, 1)
        .string(8, 'short')
        .bytes(
          9,
          le(6, 4, (v, i, x) => v.setFloat32(i, x, true)),
        ),
  );
  const read = onnxInitializers(all, () => true);
  const by = (name: string) => read.find((i) => i.name === name)!;

  it('lists every initializer with its dims and type, decoding none unless asked', () => {
    expect(onnxInitializers(all).map((i) => [i.name, i.dims, i.type, i.values])).toEqual([
      ['raw32', [2, 3], 'float32', undefined],
      ['raw16', [3, 2], 'float16', undefined],
      ['raw64', [6], 'float64', undefined],
      ['packed', [6], 'float32', undefined],
      ['unpacked', [6], 'float32', undefined],
      ['int32data16', [6], 'float16', undefined],
      ['ints', [6], 'int64', undefined],
      ['external', [6], 'float32', undefined],
      ['short', [7], 'float32', undefined],
    ]);
  });

  it('decodes every float storage to the same values', () => {
    for (const name of ['raw32', 'raw64', 'packed', 'unpacked'])
      expect(Array.from(by(name).values!)).toEqual(Array.from(Float32Array.from(W)));
    // float16: to its precision (-0.001 rounds to the nearest half).
    for (const name of ['raw16', 'int32data16']) for (const [i, v] of by(name).values!.entries()) expect(v).toBeCloseTo(W[i], 3);
  });

  it('says why a tensor cannot be used', () => {
    expect(by('ints').why).toBe('it is int64, not a float tensor');
    expect(by('external').why).toBe('it is stored outside the model file (external data)');
    expect(by('short').why).toBe('it holds 6 values for dims [7]');
  });

  it('refuses a truncated file', () => {
    expect(() => onnxInitializers(all.subarray(0, all.length - 5))).toThrow(/truncated/);
  });
});
