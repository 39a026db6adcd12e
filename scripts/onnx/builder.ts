// A small ONNX graph builder on top of protobuf.ts, for generated models and test fixtures.
// Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto,
// StringStringEntryProto). Fields are written in ascending field-number order, like the reference
// serializer, and repeated scalars that onnx.proto declares without [packed] are written unpacked.
import { ProtoWriter } from './protobuf.js';

/** ONNX TensorProto.DataType values for the element types fixtures need. */
export const ELEM_TYPE = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
} as const;
export type ElemType = keyof typeof ELEM_TYPE;

export interface Tensor {
  name: string;
  dataType: 'float32' | 'int64';
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export type AttributeValue =
  | { type: 'int'; value: number | bigint }
  | { type: 'ints'; value: ReadonlyArray<number | bigint> }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: ReadonlyArray<number> }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor };

// JS numbers cannot say "int" or "float", so attributes are tagged explicitly.
export const int = (value: number | bigint): AttributeValue => ({ type: 'int', value });
export const ints = (value: ReadonlyArray<number | bigint>): AttributeValue => ({ type: 'ints', value });
export const float = (value: number): AttributeValue => ({ type: 'float', value });
export const floats = (value: ReadonlyArray<number>): AttributeValue => ({ type: 'floats', value });
export const str = (value: string): AttributeValue => ({ type: 'string', value });
export const tensorAttr = (value: Tensor): AttributeValue => ({ type: 'tensor', value });

export interface NodeSpec {
  opType: string;
  /** '' marks an omitted optional input (e.g. Resize's roi). */
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface ValueInfo {
  name: string;
  elemType?: ElemType; // default float32
  /** Static sizes; a string becomes a symbolic dim_param (e.g. 'batch'). */
  shape: Array<number | string>;
  doc?: string;
}

export interface ModelSpec {
  graphName: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: NodeSpec[];
  initializers?: Tensor[];
  metadata?: Record<string, string>;
  doc?: string;
  opset?: number; // default 17
  irVersion?: number; // default 8 (matches opset 17)
  producerVersion?: string;
  modelVersion?: number;
}

const count = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): Tensor {
  if (count(dims) !== data.length) throw new Error(`tensor ${name}: dims ${dims} vs ${data.length} values`);
  return { name, dataType: 'float32', dims: [...dims], data: Float32Array.from(data) };
}

export function int64Tensor(name: string, dims: number[], data: ArrayLike<number | bigint>): Tensor {
  if (count(dims) !== data.length) throw new Error(`tensor ${name}: dims ${dims} vs ${data.length} values`);
  return { name, dataType: 'int64', dims: [...dims], data: BigInt64Array.from(Array.from(data, (v) => BigInt(v))) };
}

/** raw_data must be little-endian whatever the host is, hence DataView rather than .buffer. */
function rawData(t: Tensor): Uint8Array {
  const size = t.dataType === 'float32' ? 4 : 8;
  const view = new DataView(new ArrayBuffer(t.data.length * size));
  for (let i = 0; i < t.data.length; i++) {
    if (t.data instanceof Float32Array) view.setFloat32(i * size, t.data[i], true);
    else view.setBigInt64(i * size, t.data[i], true);
  }
  return new Uint8Array(view.buffer);
}

function writeTensor(w: ProtoWriter, t: Tensor): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, ELEM_TYPE[t.dataType]);
  w.string(8, t.name);
  w.bytes(9, rawData(t));
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function writeAttribute(w: ProtoWriter, name: string, a: AttributeValue): void {
  w.string(1, name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value));
      break;
    case 'floats':
      for (const v of a.value) w.float(7, v);
      break;
    case 'ints':
      for (const v of a.value) w.int(8, v);
      break;
  }
  w.int(20, ATTR_TYPE[a.type]);
}

function writeNode(w: ProtoWriter, n: NodeSpec): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, (a) => writeAttribute(a, k, v));
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ELEM_TYPE[v.elemType ?? 'float32']);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
  if (v.doc) w.string(3, v.doc);
}

/** Catch wiring mistakes here, with names, rather than as an opaque ORT load error. */
function checkGraph(spec: ModelSpec): void {
  const known = new Set<string>([...spec.inputs.map((v) => v.name), ...(spec.initializers ?? []).map((t) => t.name)]);
  for (const n of spec.nodes) {
    for (const i of n.inputs) {
      if (i !== '' && !known.has(i)) throw new Error(`node ${n.name ?? n.opType}: input "${i}" is not defined before it`);
    }
    for (const o of n.outputs) {
      if (known.has(o)) throw new Error(`node ${n.name ?? n.opType}: output "${o}" is already defined`);
      known.add(o);
    }
  }
  for (const o of spec.outputs) if (!known.has(o.name)) throw new Error(`graph output "${o.name}" is never produced`);
}

export function buildModel(spec: ModelSpec): Uint8Array {
  checkGraph(spec);
  const w = new ProtoWriter();
  w.int(1, spec.irVersion ?? 8);
  w.string(2, 'edge-inferd');
  if (spec.producerVersion) w.string(3, spec.producerVersion);
  if (spec.modelVersion !== undefined) w.int(5, spec.modelVersion);
  if (spec.doc) w.string(6, spec.doc);
  w.message(7, (g) => {
    for (const n of spec.nodes) g.message(1, (m) => writeNode(m, n));
    g.string(2, spec.graphName);
    for (const t of spec.initializers ?? []) g.message(5, (m) => writeTensor(m, t));
    for (const v of spec.inputs) g.message(11, (m) => writeValueInfo(m, v));
    for (const v of spec.outputs) g.message(12, (m) => writeValueInfo(m, v));
  });
  w.message(8, (o) => o.int(2, spec.opset ?? 17));
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    w.message(14, (e) => e.string(1, key).string(2, value));
  }
  return w.finish();
}

/**
 * Convenience wrapper: declare inputs, initializers and ops in order; op() returns the output
 * name so graphs read like code. Auto-generated names are `<OpType>_<n>`, deterministic.
 */
export class GraphBuilder {
  private spec: ModelSpec;
  private counter = 0;

  constructor(graphName: string) {
    this.spec = { graphName, inputs: [], outputs: [], nodes: [], initializers: [] };
  }

  input(name: string, shape: Array<number | string>, elemType: ElemType = 'float32', doc?: string): string {
    this.spec.inputs.push({ name, shape, elemType, doc });
    return name;
  }

  output(name: string, shape: Array<number | string>, elemType: ElemType = 'float32', doc?: string): string {
    this.spec.outputs.push({ name, shape, elemType, doc });
    return name;
  }

  floatInit(name: string, dims: number[], data: ArrayLike<number>): string {
    this.spec.initializers!.push(floatTensor(name, dims, data));
    return name;
  }

  int64Init(name: string, dims: number[], data: ArrayLike<number | bigint>): string {
    this.spec.initializers!.push(int64Tensor(name, dims, data));
    return name;
  }

  /** One-output op. Pass `output` to give it a fixed name (e.g. a graph output). */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, output?: string): string {
    return this.opN(opType, inputs, attributes, output === undefined ? 1 : [output])[0];
  }

  /** Multi-output op (e.g. Split, TopK): a count for generated names, or explicit names. */
  opN(opType: string, inputs: string[], attributes: Record<string, AttributeValue>, outputs: number | string[]): string[] {
    const name = `${opType}_${this.counter++}`;
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${name}_out${i}`) : outputs;
    this.spec.nodes.push({ opType, inputs, outputs: outs, name, attributes });
    return outs;
  }

  build(options: Omit<ModelSpec, 'graphName' | 'inputs' | 'outputs' | 'nodes' | 'initializers'> = {}): Uint8Array {
    return buildModel({ ...options, ...this.spec });
  }
}
