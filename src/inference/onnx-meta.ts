/**
 * The `metadata_props` of an ONNX file (ModelProto field 14: key/value strings), read straight
 * from the protobuf: ONNX Runtime's Node API does not expose them. Ultralytics exports keep
 * `names`, `imgsz`, `stride`, `task` and `kpt_shape` there. Only the top level is walked; the
 * graph (field 7) is skipped by its length, so a large model costs one pass over its bytes.
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

/** Top-level fields of a message: [field number, wire type, payload for length-delimited]. */
function* fields(b: Uint8Array): Generator<[number, number, Uint8Array | undefined]> {
  const at = { i: 0 };
  while (at.i < b.length) {
    const key = varint(b, at);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      varint(b, at);
      yield [field, wire, undefined];
    } else if (wire === 1) {
      at.i += 8;
      yield [field, wire, undefined];
    } else if (wire === 2) {
      const len = varint(b, at);
      if (at.i + len > b.length) throw new Error('truncated field');
      yield [field, wire, b.subarray(at.i, at.i + len)];
      at.i += len;
    } else if (wire === 5) {
      at.i += 4;
      yield [field, wire, undefined];
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

const utf8 = new TextDecoder();

export function onnxMetadata(model: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, , payload] of fields(model)) {
    if (field !== 14 || !payload) continue;
    let key = '';
    let value = '';
    for (const [f, , p] of fields(payload)) {
      if (f === 1 && p) key = utf8.decode(p);
      if (f === 2 && p) value = utf8.decode(p);
    }
    if (key) out[key] = value;
  }
  return out;
}

/** Ultralytics' `names`: a Python dict literal, {0: 'person', 1: "driver's seat", ...}. */
export function pythonNames(s: string): string[] | undefined {
  const names: string[] = [];
  for (const m of s.matchAll(/(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g))
    names[Number(m[1])] = (m[2] ?? m[3]).replace(/\\(.)/g, '$1');
  return names.length > 0 && names.every((n) => typeof n === 'string') ? names : undefined;
}

/** `[640, 640]` or `640` -> [h, w]. */
export function pythonInts(s: string | undefined): number[] | undefined {
  if (s === undefined) return undefined;
  const ns = [...s.matchAll(/-?\d+/g)].map((m) => Number(m[0]));
  return ns.length ? ns : undefined;
}
