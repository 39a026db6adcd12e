/**
 * The two protobuf readings the ONNX readers need (src/inference/onnx-meta.ts, onnx-weights.ts):
 * a varint, and a message's fields in order. ONNX Runtime's Node API exposes neither the metadata
 * nor the weights, and a full protobuf library would be a dependency for two loops.
 */

export function varint(b: Uint8Array, at: { i: number }): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (at.i >= b.length) throw new Error('truncated varint');
    const x = b[at.i++];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return v;
    mul *= 128;
    if (mul > 2 ** 63) throw new Error('varint too long');
  }
}

/** One message's fields: [field number, wire type, varint value or length-delimited payload]. */
export function* fields(b: Uint8Array): Generator<[number, number, number | Uint8Array]> {
  const at = { i: 0 };
  while (at.i < b.length) {
    const key = varint(b, at);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) yield [field, wire, varint(b, at)];
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (at.i + n > b.length) throw new Error('truncated field');
      yield [field, wire, b.subarray(at.i, at.i + n)];
      at.i += n;
    } else if (wire === 2) {
      const len = varint(b, at);
      if (at.i + len > b.length) throw new Error('truncated field');
      yield [field, wire, b.subarray(at.i, at.i + len)];
      at.i += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}
