import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { GraphBuilder, int, ints } from '../../scripts/onnx/builder.js';
import type { Frame } from '../../src/capture/frame.js';

/**
 * A classifier whose answer depends on one known region of its input and nothing else: input
 * 32x32 RGB (stretch), labels [red, other]; logit(red) = 10 x the mean red of rows 20..27,
 * columns 4..11 (the 8x8 occlusion grid's cells (5,1), (5,2), (6,1), (6,2)); logit(other) = 5.
 * A red patch there makes it "red" (p = 0.993); masking any of those cells lowers p(red),
 * masking anything else changes nothing.
 */

export const REGION = { y0: 20, y1: 28, x0: 4, x1: 12 } as const;
export const REGION_CELLS = [
  [5, 1],
  [5, 2],
  [6, 1],
  [6, 2],
] as const;
const S = 32;

export function buildRegionClassifier(dynamic: boolean): Uint8Array {
  const g = new GraphBuilder('region_classifier');
  const image = g.input('images', [dynamic ? 'batch' : 1, 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const patch = g.op('Slice', [
    image,
    g.int64Init('starts', [3], [0, REGION.y0, REGION.x0]),
    g.int64Init('ends', [3], [1, REGION.y1, REGION.x1]),
    g.int64Init('axes', [3], [1, 2, 3]),
  ]); // [N,1,8,8]: the red channel of the region
  const mean = g.op('ReduceMean', [patch], { axes: ints([1, 2, 3]), keepdims: int(0) }); // [N]
  const red = g.op('Unsqueeze', [g.op('Mul', [mean, g.floatInit('ten', [], [10])]), g.int64Init('axis1', [1], [1])]); // [N,1]
  const other = g.op('Add', [g.op('Mul', [red, g.floatInit('zero', [], [0])]), g.floatInit('five', [], [5])]);
  g.op('Concat', [red, other], { axis: int(1) }, 'logits');
  g.output('logits', [dynamic ? 'batch' : 1, 2]);
  return g.build({ doc: 'Test fixture: "red" when a known region of the image is red.' });
}

export async function writeRegionClassifier(dir: string, dynamic = true): Promise<string> {
  const out = path.join(dir, dynamic ? 'region' : 'region-fixed');
  await mkdir(out, { recursive: true });
  const model = buildRegionClassifier(dynamic);
  await writeFile(path.join(out, 'model.onnx'), model);
  const sha = createHash('sha256').update(model).digest('hex');
  await writeFile(
    path.join(out, 'manifest.yaml'),
    `name: test-region\nversion: 1.0.0\ntask: classify\nsha256: ${sha}\ninput:\n  name: images\n  width: ${S}\n  height: ${S}\n` +
      `  resize: stretch\nlabels: [red, other]\nclassify:\n  outputs: logits\n  topK: 2\n`,
  );
  return out;
}

/**
 * A `size` x `size` RGB frame: mid-grey noise-free backdrop with the region (scaled from the
 * model's 32 px) painted red, plus a blue decoy square elsewhere the model ignores.
 */
export function regionFrame(size = 64, camera = 'explain'): Frame {
  const k = size / S;
  const data = new Uint8Array(size * size * 3).fill(90);
  const fill = (y0: number, y1: number, x0: number, x1: number, c: readonly number[]) => {
    for (let y = Math.round(y0 * k); y < Math.round(y1 * k); y++)
      for (let x = Math.round(x0 * k); x < Math.round(x1 * k); x++) data.set(c, (y * size + x) * 3);
  };
  fill(4, 12, 20, 28, [0, 0, 255]);
  fill(REGION.y0, REGION.y1, REGION.x0, REGION.x1, [255, 0, 0]);
  return { camera, seq: 1, width: size, height: size, stride: size * 3, format: 'RGB', data, capturedAtMs: 1_700_000_000_000 };
}

/**
 * A heatmap overlay of the region classifier's answer (128 px PNG of the 64 px input): red over
 * the region's centre (model 8,24 -> png 32,96), the grey backdrop untouched in a far corner.
 * Returns what is wrong, or undefined.
 */
export async function overlayProblem(png: Uint8Array): Promise<string | undefined> {
  const img = sharp(Buffer.from(png));
  const { format, width, height } = await img.metadata();
  if (format !== 'png' || width !== 128 || height !== 128) return `a ${format} of ${width}x${height}, expected a 128x128 png`;
  const { data } = await img.raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => [...data.subarray((y * 128 + x) * 3, (y * 128 + x) * 3 + 3)];
  const [r, g] = px(32, 96);
  if (r <= 200 || g >= 60) return `the region's centre is ${px(32, 96)}, not red`;
  if (px(120, 120).join() !== '90,90,90') return `the far corner is ${px(120, 120)}, not the grey backdrop`;
  return undefined;
}
