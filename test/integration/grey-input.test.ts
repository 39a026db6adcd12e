import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder, int } from '../../scripts/onnx/builder.js';
import type { Frame } from '../../src/capture/frame.js';
import { Engine } from '../../src/inference/engine.js';
import { loadModelPackage, modelSha256 } from '../../src/inference/package.js';
import { loadTf } from '../../src/inference/tfjs.js';
import { WorkerEngine } from '../../src/inference/worker-engine.js';

/**
 * Grey (1-channel) models, ONNX and TF.js, in the inference worker: each answers the mean of its
 * input, so the score is the grey the daemon wrote (BT.601 luma of the frame, scaled by 1/255)
 * and, letterboxed, the share of the pad value. A manifest that says 3 channels for a 1-channel
 * model is refused naming input.channels, not the layout.
 */

const SIZE = 16;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function pkgDir(files: Record<string, string | Uint8Array>, manifest: (sha: string) => string, model: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'grey-'));
  dirs.push(dir);
  for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(dir, name), bytes);
  await writeFile(path.join(dir, 'manifest.yaml'), manifest(await modelSha256(path.join(dir, model))));
  return dir;
}

const input = (layout: string, extra: string) =>
  `input:\n  name: image\n  layout: ${layout}\n  width: ${SIZE}\n  height: ${SIZE}\n${extra}labels: [grey]\nclassify:\n  outputs: probabilities\n`;

/** ONNX: image [1, 1, S, S] -> GlobalAveragePool -> [1, 1]. */
function onnxGrey(extra: string): Promise<string> {
  const g = new GraphBuilder('grey_mean');
  const x = g.input('image', [1, 1, SIZE, SIZE]);
  g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: int(1) }, 'mean');
  g.output('mean', [1, 1]);
  const bytes = g.build();
  const sha = createHash('sha256').update(bytes).digest('hex');
  return pkgDir(
    { 'model.onnx': bytes },
    () => `name: grey-onnx\nversion: 1.0.0\ntask: classify\nsha256: ${sha}\n${input('NCHW', extra)}`,
    'model.onnx',
  );
}

/** TF.js layers: image [S, S, 1] -> globalAveragePooling2d -> [1, 1]. */
async function tfjsGrey(extra: string): Promise<string> {
  await loadTf();
  const tfl = await import('@tensorflow/tfjs-layers');
  const core = await import('@tensorflow/tfjs-core');
  const x = tfl.input({ shape: [SIZE, SIZE, 1], name: 'image' });
  const model = tfl.model({
    inputs: x,
    outputs: tfl.layers.globalAveragePooling2d({ name: 'mean' }).apply(x) as InstanceType<typeof tfl.SymbolicTensor>,
  });
  let json = '';
  await model.save(
    core.io.withSaveHandler((a) => {
      json = JSON.stringify({ modelTopology: a.modelTopology, format: a.format, weightsManifest: [{ paths: [], weights: [] }] });
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const } });
    }),
  );
  return pkgDir(
    { 'model.json': json },
    (sha) => `name: grey-tfjs\nversion: 1.0.0\ntask: classify\nmodel: model.json\nsha256: ${sha}\n${input('NHWC', extra)}`,
    'model.json',
  );
}

function solid(width: number, height: number, rgb: [number, number, number]): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rgb[i % 3];
  return { camera: 't', seq: 0, width, height, stride: width * 3, format: 'RGB', data, capturedAtMs: 0 };
}

const luma = ([r, g, b]: [number, number, number]) => 0.299 * r + 0.587 * g + 0.114 * b;

async function score(dir: string, frame: Frame): Promise<number> {
  const engine = await WorkerEngine.load(await loadModelPackage(dir), { providers: ['cpu'] });
  try {
    const r = await engine.infer(frame);
    if (r.task !== 'classify') throw new Error('expected classify');
    return r.top[0].score;
  } finally {
    await engine.close();
  }
}

describe.each([
  ['ONNX', onnxGrey],
  ['TF.js', tfjsGrey],
] as const)('grey models: %s', (_, make) => {
  it('gets the BT.601 luma of a colour frame; letterboxed, the pad value where there is no picture', async () => {
    const colour: [number, number, number] = [200, 100, 50];
    expect(await score(await make('  channels: 1\n'), solid(40, 40, colour))).toBeCloseTo(luma(colour) / 255, 5);
    // A frame half as wide as tall, letterboxed: half the input is the picture, half the pad (250).
    const padded = await make('  channels: 1\n  resize: letterbox\n  pad: 250\n');
    expect(await score(padded, solid(20, 40, colour))).toBeCloseTo((luma(colour) / 255 + 250 / 255) / 2, 5);
  });

  it('a manifest that says 3 channels is refused naming input.channels', async () => {
    const dir = await make('');
    const err = (await WorkerEngine.load(await loadModelPackage(dir)).catch((e: unknown) => e)) as { code: string; problems: string[] };
    expect(err.code).toBe('MODEL_MISMATCH');
    expect(err.problems[0]).toMatch(
      /^input\.channels: manifest says 3, the model's input "image" has 1 \(shape \[[^\]]*\], N[CHW]{3}\); set input\.channels: 1$/,
    );
  });
});

describe('grey crops', () => {
  it("a crop stage's grey model with area interpolation gets each crop's own luma", async () => {
    const engine = await Engine.load(await loadModelPackage(await onnxGrey('  channels: 1\n  interpolation: area\n')), {
      providers: ['cpu'],
    });
    try {
      // Left half one colour, right half another: one crop on each.
      const a: [number, number, number] = [30, 200, 90];
      const b: [number, number, number] = [250, 240, 10];
      const frame = solid(80, 40, a);
      for (let y = 0; y < 40; y++) for (let x = 40; x < 80; x++) frame.data.set(b, (y * 80 + x) * 3);
      const r = await engine.inferCrops(frame, {
        rects: [
          { x: 5, y: 5, w: 30, h: 30 },
          { x: 45, y: 5, w: 30, h: 30 },
        ],
        quality: { minSidePx: 1, minSharpness: 0 },
      });
      expect(r.crops.map((c) => c.scores?.[0])).toEqual([expect.closeTo(luma(a) / 255, 5), expect.closeTo(luma(b) / 255, 5)]);
    } finally {
      await engine.close();
    }
  });
});
