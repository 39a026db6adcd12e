import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GraphBuilder, int, ints } from '../../scripts/onnx/builder.js';
import { REGION_CELLS } from './region-classifier.js';

/**
 * A classifier built like the ones CAM is for (a feature map, global average pooling, one linear
 * layer), exposing its feature map as an output, whose answer depends on one known region: input
 * 32x32 RGB [0,1]; features = the 4x4 average of each channel (an 8x8 grid, the occlusion grid's
 * cells) times a fixed mask that keeps only the region's four cells (REGION_CELLS); logits =
 * W . mean(features) + b, labels [red, other]. With W's red weight 160 a red region gives
 * logit(red) = 160 x 4/64 = 10 against logit(other) = 5, as the occlusion fixture does.
 *
 * NCHW: PyTorch/timm style, features [N,3,8,8], Gemm with weights [classes, channels] (transB).
 * NHWC: Keras style, input and features [N,8,8,3], MatMul with a kernel [channels, classes].
 */

/** Classifier weights, [classes][channels]: red's row weighs red most; the others are there so a transposed read shows. */
export const CAM_WEIGHTS = [
  [160, 40, -20],
  [10, 0, 60],
] as const;
export const CAM_BIAS = [0, 5] as const;
const S = 32;
const G = 8;

/** `dynamic`: a symbolic batch dimension (crops in one run); false: batch 1 (one run per crop). */
export function buildCamClassifier(layout: 'NCHW' | 'NHWC', dynamic = true): Uint8Array {
  const g = new GraphBuilder('cam_classifier');
  const nchw = layout === 'NCHW';
  const N = dynamic ? 'batch' : 1;
  const image = g.input('images', nchw ? [N, 3, S, S] : [N, S, S, 3], 'float32', `RGB, ${layout}, [0,1]`);
  const planar = nchw ? image : g.op('Transpose', [image], { perm: ints([0, 3, 1, 2]) });
  const pooled = g.op('AveragePool', [planar], { kernel_shape: ints([S / G, S / G]), strides: ints([S / G, S / G]) }); // [N,3,8,8]
  const mask = new Array(G * G).fill(0);
  for (const [r, c] of REGION_CELLS) mask[r * G + c] = 1;
  const masked = g.op('Mul', [pooled, g.floatInit('region_mask', [1, 1, G, G], mask)], {}, nchw ? 'features' : undefined);
  const features = nchw ? masked : g.op('Transpose', [masked], { perm: ints([0, 2, 3, 1]) }, 'features');
  const C = CAM_WEIGHTS[0].length;
  const K = CAM_WEIGHTS.length;
  let logits: string;
  if (nchw) {
    const flat = g.op('Flatten', [g.op('GlobalAveragePool', [features])], { axis: int(1) }); // [N,3]
    logits = g.op(
      'Gemm',
      [flat, g.floatInit('head.fc.weight', [K, C], CAM_WEIGHTS.flat()), g.floatInit('head.fc.bias', [K], CAM_BIAS)],
      {
        transB: int(1),
      },
      'logits',
    );
  } else {
    const mean = g.op('ReduceMean', [features], { axes: ints([1, 2]), keepdims: int(0) }); // [N,3]
    const kernel = Array.from({ length: C * K }, (_, i) => CAM_WEIGHTS[i % K][Math.floor(i / K)]); // [C,K]
    const mm = g.op('MatMul', [mean, g.floatInit('dense/kernel', [C, K], kernel)]);
    logits = g.op('Add', [mm, g.floatInit('dense/bias', [K], CAM_BIAS)], {}, 'logits');
  }
  g.output(logits, [N, K]);
  g.output('features', nchw ? [N, C, G, G] : [N, G, G, C]);
  return g.build({ doc: 'Test fixture: GAP + linear classifier exposing its feature map, "red" when a known region is red.' });
}

/** The package; `explain` is the manifest's explain section as YAML lines (default: method cam with this model's names). */
export async function writeCamClassifier(
  dir: string,
  layout: 'NCHW' | 'NHWC',
  explain?: string,
  name = `cam-${layout}`,
  dynamic = true,
): Promise<string> {
  const out = path.join(dir, name);
  await mkdir(out, { recursive: true });
  const model = buildCamClassifier(layout, dynamic);
  await writeFile(path.join(out, 'model.onnx'), model);
  const sha = createHash('sha256').update(model).digest('hex');
  const weights = layout === 'NCHW' ? 'head.fc.weight' : 'dense/kernel';
  await writeFile(
    path.join(out, 'manifest.yaml'),
    `name: test-cam\nversion: 1.0.0\ntask: classify\nsha256: ${sha}\ninput:\n  name: images\n  layout: ${layout}\n` +
      `  width: ${S}\n  height: ${S}\n  resize: stretch\nlabels: [red, other]\nclassify:\n  outputs: logits\n  topK: 2\n` +
      `explain:\n${explain ?? `  method: cam\n  featureMap: features\n  weights: ${weights}\n`}`,
  );
  return out;
}
