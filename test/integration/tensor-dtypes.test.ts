// The main thread's native tensor writer -> the worker -> a real ORT session, for every input dtype
// and layout: a generated "brightest channel" classifier (Cast to float, mean per channel, softmax)
// whose right answer is the colour we paint.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder, int, ints } from '../../scripts/onnx/builder.js';
import type { Frame } from '../../src/capture/frame.js';
import { loadModelPackage } from '../../src/inference/package.js';
import { WorkerEngine } from '../../src/inference/worker-engine.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** mean per channel of the input (cast to float), then softmax: the brightest channel wins. */
async function brightestChannel(dtype: 'float32' | 'float16' | 'uint8', layout: 'NCHW' | 'NHWC'): Promise<string> {
  const g = new GraphBuilder(`brightest_${dtype}_${layout}`);
  const shape = layout === 'NCHW' ? [1, 3, 8, 8] : [1, 8, 8, 3];
  let x = g.input('image', shape, dtype);
  x = g.op('Cast', [x], { to: int(1) });
  if (layout === 'NHWC') x = g.op('Transpose', [x], { perm: ints([0, 3, 1, 2]) });
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: int(1) });
  g.op('Softmax', [pooled], { axis: int(1) }, 'probs');
  g.output('probs', [1, 3]);
  const bytes = g.build();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tensor-dtype-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  const norm = dtype === 'uint8' ? 'scale: 1' : 'scale: 0.00392156862745098';
  await writeFile(
    path.join(dir, 'manifest.yaml'),
    `name: brightest\nversion: 1.0.0\ntask: classify\nsha256: ${createHash('sha256').update(bytes).digest('hex')}\n` +
      `input: {name: image, width: 8, height: 8, layout: ${layout}, dtype: ${dtype}, ${norm}, resize: letterbox}\n` +
      `labels: [red, green, blue]\nclassify: {outputs: probabilities, topK: 3}\n`,
  );
  return dir;
}

function solid(rgb: [number, number, number], width = 40, height = 30): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { camera: 'c', seq: 1, width, height, stride: width * 3, format: 'RGB', data, capturedAtMs: 0 };
}

describe('input tensors written on the main thread, inferred in the worker', () => {
  for (const dtype of ['float32', 'float16', 'uint8'] as const) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      it(`${dtype} ${layout}: the brightest channel of a solid frame wins`, async () => {
        const engine = await WorkerEngine.load(await loadModelPackage(await brightestChannel(dtype, layout)), {
          providers: ['cpu'],
          intraOpThreads: 1,
        });
        try {
          for (const [rgb, label] of [
            [[200, 40, 10], 'red'],
            [[5, 180, 90], 'green'],
            [[60, 20, 250], 'blue'],
          ] as const) {
            const inf = await engine.infer(solid([...rgb]));
            if (inf.task !== 'classify') throw new Error('not a classification');
            expect(inf.top[0].label).toBe(label);
            // Letterbox pads 40x30 into 8x8 with grey 114 (a quarter of the rows): the means move
            // towards 114 by exactly that share; softmax of the means is the answer.
            const scale = dtype === 'uint8' ? 1 : 1 / 255;
            const means = rgb.map((v) => (0.75 * v + 0.25 * 114) * scale);
            const e = means.map((m) => Math.exp(m - Math.max(...means)));
            const want = e.map((v) => v / e.reduce((a, b) => a + b, 0));
            const got = [0, 1, 2].map((i) => inf.top.find((t) => t.index === i)!.score);
            for (let i = 0; i < 3; i++)
              expect(Math.abs(got[i] - want[i]), `${label} ${got} vs ${want}`).toBeLessThan(dtype === 'float16' ? 2e-3 : 1e-4);
          }
        } finally {
          await engine.close();
        }
      });
    }
  }
});
