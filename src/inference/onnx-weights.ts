import { halfToFloat } from './preprocess.js';
import { fields, varint } from './protobuf.js';

/**
 * The initializers (constant tensors: a model's weights) of an ONNX file, read straight from the
 * protobuf at load: ONNX Runtime's Node API does not expose them. ModelProto field 7 is the graph;
 * GraphProto field 5 its initializers (TensorProto: dims 1, data_type 2, float_data 4, int32_data 5
 * (float16 bits), name 8, raw_data 9, double_data 10, data_location 14). Only what CAM needs: float
 * tensors stored in the file.
 */

/** ONNX TensorProto.DataType values read here. */
const FLOAT = 1;
const FLOAT16 = 10;
const DOUBLE = 11;
const TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
};

export interface Initializer {
  name: string;
  dims: number[];
  /** ORT's name of the element type (float32, float16, int64...). */
  type: string;
  /** The values as float32, for float types stored in the file; undefined otherwise (see `why`). */
  values?: Float32Array;
  why?: string;
}

const utf8 = new TextDecoder();

/** Every initializer of the model's graph; values are decoded only for the names `want` accepts. */
export function onnxInitializers(model: Uint8Array, want: (name: string) => boolean = () => false): Initializer[] {
  const out: Initializer[] = [];
  for (const [field, , graph] of fields(model)) {
    if (field !== 7 || !(graph instanceof Uint8Array)) continue;
    for (const [f, , t] of fields(graph)) if (f === 5 && t instanceof Uint8Array) out.push(tensor(t, want));
  }
  return out;
}

function tensor(b: Uint8Array, want: (name: string) => boolean): Initializer {
  let name = '';
  let type = 0;
  let external = false;
  const dims: number[] = [];
  const parts: { field: number; wire: number; v: number | Uint8Array }[] = [];
  for (const [field, wire, v] of fields(b)) {
    if (field === 1) {
      if (typeof v === 'number') dims.push(v);
      else for (const at = { i: 0 }; at.i < v.length; ) dims.push(varint(v, at));
    } else if (field === 2 && typeof v === 'number') type = v;
    else if (field === 8 && v instanceof Uint8Array) name = utf8.decode(v);
    else if (field === 14 && v === 1) external = true;
    else if (field === 4 || field === 5 || field === 9 || field === 10) parts.push({ field, wire, v });
  }
  const init: Initializer = { name, dims, type: TYPE_NAMES[type] ?? `type ${type}` };
  if (!want(name)) return init;
  const count = dims.reduce((a, d) => a * d, 1);
  if (external) return { ...init, why: 'it is stored outside the model file (external data)' };
  if (type !== FLOAT && type !== FLOAT16 && type !== DOUBLE) return { ...init, why: `it is ${init.type}, not a float tensor` };
  const values = decode(type, parts);
  if (values.length !== count) return { ...init, why: `it holds ${values.length} values for dims [${dims.join(',')}]` };
  return { ...init, values };
}

/** raw_data (little-endian), or the typed repeated fields (packed or not). */
function decode(type: number, parts: { field: number; wire: number; v: number | Uint8Array }[]): Float32Array {
  const raw = parts.find((p) => p.field === 9)?.v;
  if (raw instanceof Uint8Array) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const size = type === DOUBLE ? 8 : type === FLOAT16 ? 2 : 4;
    const out = new Float32Array(Math.floor(raw.byteLength / size));
    for (let i = 0; i < out.length; i++)
      out[i] =
        type === DOUBLE
          ? view.getFloat64(i * 8, true)
          : type === FLOAT16
            ? halfToFloat(view.getUint16(i * 2, true))
            : view.getFloat32(i * 4, true);
    return out;
  }
  const values: number[] = [];
  for (const { field, wire, v } of parts) {
    if (type === FLOAT && field === 4) {
      const bytes = v as Uint8Array; // packed (wire 2) or one fixed32 (wire 5): both little-endian floats
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i + 4 <= bytes.length; i += 4) values.push(view.getFloat32(i, true));
    } else if (type === DOUBLE && field === 10) {
      const bytes = v as Uint8Array;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i + 8 <= bytes.length; i += 8) values.push(view.getFloat64(i, true));
    } else if (type === FLOAT16 && field === 5) {
      // float16 bits ride in int32_data, as varints (packed or one by one).
      if (wire === 0) values.push(halfToFloat(v as number));
      else for (const at = { i: 0 }; at.i < (v as Uint8Array).length; ) values.push(halfToFloat(varint(v as Uint8Array, at)));
    }
  }
  return Float32Array.from(values);
}
