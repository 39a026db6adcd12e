import { GraphBuilder, ints } from '../../scripts/onnx/builder.js';

/**
 * A model (64x64 RGB unless `input` says otherwise) whose outputs ignore the picture: out = mean(image) x 0 + constant, so every
 * answer is the constant's (shape [1, K, N] for YOLO).
 */
export function constantModel(
  outputs: { name: string; dims: number[]; data: number[] }[],
  metadata: Record<string, string>,
  input: { name: string; shape: (number | string)[] } = { name: 'images', shape: [1, 3, 64, 64] },
): Uint8Array {
  const g = new GraphBuilder('init');
  const x = g.input(input.name, input.shape);
  const m = g.op('ReduceMean', [x], { axes: ints([1, 2, 3]), keepdims: { type: 'int', value: 0 } });
  for (const o of outputs) {
    const zero = g.floatInit(`${o.name}_zero`, o.dims, new Array(o.data.length).fill(0));
    const c = g.floatInit(`${o.name}_const`, o.dims, o.data);
    g.output(o.name, o.dims);
    g.op('Add', [g.op('Mul', [m, zero]), c], {}, o.name);
  }
  return g.build({ metadata });
}
