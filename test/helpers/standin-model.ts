import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mulberry32 } from '../../scripts/make-demo-model.js';
import { GraphBuilder, int, ints } from '../../scripts/onnx/builder.js';

/**
 * A conv stack with about mobilenet_v2's compute (0.6 GFLOPs at 224x224), made here so the
 * off-thread test still has a heavy model when ../shared/bench-models is not beside the checkout.
 */
export async function standinPackage(): Promise<string> {
  const rand = mulberry32(7);
  const g = new GraphBuilder('standin_conv_stack');
  let x = g.input('images', [1, 3, 224, 224]);
  const layers: [number, number, number][] = [
    [3, 16, 2],
    [16, 32, 1],
    [32, 32, 1],
    [32, 32, 1],
    [32, 32, 1],
  ];
  layers.forEach(([cin, cout, stride], i) => {
    const w = g.floatInit(
      `w${i}`,
      [cout, cin, 3, 3],
      Array.from({ length: cout * cin * 9 }, () => (rand() - 0.5) * (2 / Math.sqrt(cin * 9))),
    );
    x = g.op('Relu', [g.op('Conv', [x, w], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), strides: ints([stride, stride]) })]);
  });
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: int(1) });
  const fc = g.floatInit(
    'fc',
    [10, 32],
    Array.from({ length: 320 }, () => rand() - 0.5),
  );
  g.op('Gemm', [pooled, fc], { transB: int(1) }, 'logits');
  g.output('logits', [1, 10]);
  const bytes = g.build();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'standin-'));
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  await writeFile(
    path.join(dir, 'manifest.yaml'),
    `name: standin-conv-stack\nversion: 0.0.0\ntask: classify\nsha256: ${createHash('sha256').update(bytes).digest('hex')}\n` +
      `input: {name: images, width: 224, height: 224}\nlabels: [${Array.from({ length: 10 }, (_, i) => `c${i}`).join(', ')}]\n`,
  );
  return dir;
}
