import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS, PROTOTYPES, TEMPERATURE } from '../../scripts/make-demo-model.js';
import type { Frame } from '../../src/capture/frame.js';
import { must } from '../../src/errors.js';
import { Engine } from '../../src/inference/engine.js';
import { loadModelPackage, modelSha256 } from '../../src/inference/package.js';
import { loadTf } from '../../src/inference/tfjs.js';
import { WorkerEngine } from '../../src/inference/worker-engine.js';
import { demoModelDir, demoSamplesDir } from '../../src/paths.js';

/**
 * The TensorFlow.js engine on the WASM backend (tfjs-node is not installed here), in the inference
 * worker: the demo's colour classifier rebuilt as a TF.js layers model (with the layers API) and as
 * a graph model (topology written out by hand), saved to disk the way tensorflowjs_converter lays
 * them out (model.json + weights.bin), then loaded from those files.
 */

const K = LABELS.length;
// Nearest prototype as a linear layer (see make-demo-model.ts): W[c][k] = 2T p_k[c], b_k = -T |p_k|^2.
const kernel = Float32Array.from({ length: 3 * K }, (_, i) => 2 * TEMPERATURE * PROTOTYPES[LABELS[i % K]][Math.floor(i / K)]);
const bias = Float32Array.from(LABELS, (l) => -TEMPERATURE * PROTOTYPES[l].reduce((s, c) => s + c * c, 0));

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function writePackage(modelJson: object, weights: Uint8Array, manifestPatch: (m: string) => string = (m) => m): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tfjs-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(modelJson));
  await writeFile(path.join(dir, 'weights.bin'), weights);
  const manifest =
    `name: tfjs-colour\nversion: 1.0.0\ntask: classify\nmodel: model.json\nsha256: ${await modelSha256(path.join(dir, 'model.json'))}\n` +
    `input:\n  name: image\n  layout: NHWC\n  width: 64\n  height: 64\n  resize: stretch\noutput:\n  name: probs\nlabels: [${LABELS.join(', ')}]\nclassify:\n  outputs: probabilities\n  topK: 3\n`;
  await writeFile(path.join(dir, 'manifest.yaml'), manifestPatch(manifest));
  return dir;
}

/** A Keras-style functional model made with tfjs-layers, saved as model.json + weights.bin. */
async function layersPackage(patch?: (m: string) => string): Promise<string> {
  await loadTf(); // the engine's own loader: puts tfjs-core on the WASM backend in this thread too
  const tfl = await import('@tensorflow/tfjs-layers');
  const core = await import('@tensorflow/tfjs-core');
  const input = tfl.input({ shape: [64, 64, 3], name: 'image' });
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(input) as InstanceType<typeof tfl.SymbolicTensor>;
  const dense = tfl.layers.dense({ units: K, activation: 'softmax', name: 'probs' });
  const model = tfl.model({ inputs: input, outputs: dense.apply(pooled) as InstanceType<typeof tfl.SymbolicTensor> });
  dense.setWeights([core.tensor(kernel, [3, K]), core.tensor(bias, [K])]);
  let json: object = {};
  let weights = new Uint8Array();
  await model.save(
    core.io.withSaveHandler((a) => {
      json = {
        modelTopology: a.modelTopology,
        format: a.format,
        generatedBy: a.generatedBy,
        convertedBy: a.convertedBy,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      weights = new Uint8Array(a.weightData as ArrayBuffer);
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  return writePackage(json, weights, patch);
}

/** The same classifier as a TF graph (Placeholder -> Mean -> MatMul -> BiasAdd -> Softmax). */
function graphPackage(): Promise<string> {
  const f = { type: 'DT_FLOAT' };
  const dims = (...d: number[]) => ({ dim: d.map((size) => ({ size: String(size) })) });
  const konst = (name: string, dtype: string, shape: number[]) => ({
    name,
    op: 'Const',
    attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: dims(...shape) } } },
  });
  const topology = {
    node: [
      { name: 'image', op: 'Placeholder', attr: { dtype: f, shape: { shape: dims(-1, 64, 64, 3) } } },
      konst('axes', 'DT_INT32', [2]),
      konst('kernel', 'DT_FLOAT', [3, K]),
      konst('bias', 'DT_FLOAT', [K]),
      { name: 'mean', op: 'Mean', input: ['image', 'axes'], attr: { T: f, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } } },
      { name: 'scores', op: 'MatMul', input: ['mean', 'kernel'], attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false } } },
      { name: 'logits', op: 'BiasAdd', input: ['scores', 'bias'], attr: { T: f } },
      { name: 'probs', op: 'Softmax', input: ['logits'], attr: { T: f } },
    ],
    library: {},
    versions: { producer: 1 },
  };
  const weights = Buffer.concat([Buffer.from(Int32Array.of(1, 2).buffer), Buffer.from(kernel.buffer), Buffer.from(bias.buffer)]);
  const spec = [
    { name: 'axes', shape: [2], dtype: 'int32' },
    { name: 'kernel', shape: [3, K], dtype: 'float32' },
    { name: 'bias', shape: [K], dtype: 'float32' },
  ];
  return writePackage(
    {
      format: 'graph-model',
      generatedBy: 'test',
      convertedBy: 'test',
      modelTopology: topology,
      weightsManifest: [{ paths: ['weights.bin'], weights: spec }],
    },
    weights,
  );
}

/** A 64x64 frame (the model's input size): the left half one prototype colour, the right half another. */
function halves(left: (typeof LABELS)[number], right: (typeof LABELS)[number]): Frame {
  const data = new Uint8Array(64 * 64 * 3);
  for (let i = 0; i < 64 * 64; i++)
    data.set(
      PROTOTYPES[i % 64 < 32 ? left : right].map((c) => Math.round(c * 255)),
      i * 3,
    );
  return { camera: 't', seq: 0, width: 64, height: 64, stride: 64 * 3, format: 'RGB', data, capturedAtMs: 0 };
}

let samples: { frame: Frame; label: string }[];
let onnx: Engine;
beforeAll(async () => {
  const names = (await readdir(demoSamplesDir)).filter((n) => n.endsWith('.png')).sort();
  samples = await Promise.all(
    names.map(async (name) => {
      const { data, info } = await sharp(path.join(demoSamplesDir, name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return {
        frame: {
          camera: 't',
          seq: 0,
          width: info.width,
          height: info.height,
          stride: info.width * 3,
          format: 'RGB' as const,
          data: new Uint8Array(data),
          capturedAtMs: 0,
          name,
        },
        label: name.split('-')[0],
      };
    }),
  );
  onnx = await Engine.load(await loadModelPackage(demoModelDir), { providers: ['cpu'] });
});
afterAll(async () => onnx?.close());

describe('TensorFlow.js engine (WASM backend, in the inference worker)', () => {
  for (const [kind, make] of [
    ['layers', layersPackage],
    ['graph', graphPackage],
  ] as const) {
    it(`${kind} model: classifies every demo sample like the ONNX demo model`, async () => {
      const pkg = await loadModelPackage(await make());
      expect(pkg.format).toBe('tfjs');
      const engine = await WorkerEngine.load(pkg, { providers: 'auto' });
      try {
        expect(engine.info).toMatchObject({ name: 'tfjs-colour', task: 'classify', provider: 'tfjs-wasm' });
        expect(engine.attempts.map((a) => [a.provider, a.ok, a.error])).toEqual([
          ['tfjs-node-gpu', false, '@tensorflow/tfjs-node-gpu is not installed'],
          ['tfjs-node', false, '@tensorflow/tfjs-node is not installed'],
          ['tfjs-wasm', true, undefined],
        ]);
        for (const { frame, label } of samples) {
          const [tf, ref] = await Promise.all([engine.infer(frame), onnx.infer(frame)]);
          if (tf.task !== 'classify' || ref.task !== 'classify') throw new Error('expected classify');
          expect(tf.top[0].label, frame.name).toBe(label);
          expect(tf.top.map((t) => t.index)).toEqual(ref.top.map((t) => t.index));
          for (const [k, t] of tf.top.entries()) expect(Math.abs(t.score - ref.top[k].score)).toBeLessThan(1e-4);
        }
      } finally {
        await engine.close();
      }
    });

    it(`${kind} model: explains a result with the occlusion heatmap the ONNX engine computes for the same classifier`, async () => {
      const engine = await WorkerEngine.load(await loadModelPackage(await make()), { providers: 'auto' });
      try {
        // Glass green on the left, plastic blue on the right: nearly a tie, which plastic wins. Masking a
        // blue cell lowers plastic's probability, masking a green one raises it.
        const frame = halves('glass', 'plastic');
        const [tf, ref] = await Promise.all([engine.infer(frame, { explain: true }), onnx.infer(frame, { explain: true })]);
        if (tf.task !== 'classify' || ref.task !== 'classify' || !ref.heatmap) throw new Error('expected an explained classify result');
        expect(tf.top[0].label).toBe('plastic');
        expect(tf.heatmap).toMatchObject({ method: 'occlusion', rows: 8, cols: 8, target: LABELS.indexOf('plastic') });
        const values = tf.heatmap?.values ?? [];
        expect(values).toHaveLength(64);
        for (const [i, v] of values.entries()) {
          expect(Math.sign(v), `cell ${i}`).toBe(i % 8 < 4 ? -1 : 1);
          expect(Math.abs(v - ref.heatmap.values[i]), `cell ${i}`).toBeLessThan(5e-4);
        }
        expect(
          Buffer.from(tf.heatmap?.png ?? [])
            .subarray(1, 4)
            .toString('latin1'),
        ).toBe('PNG');
        // Without the hook, no heatmap (and no masked runs).
        const plain = await engine.infer(must(samples[0], 'a demo sample').frame);
        expect(plain.task === 'classify' && plain.heatmap).toBeFalsy();
      } finally {
        await engine.close();
      }
    });
  }

  it('checks the manifest against the TF.js model too', async () => {
    const fewer = await layersPackage((m) => m.replace(`labels: [${LABELS.join(', ')}]`, `labels: [${LABELS.slice(0, 5).join(', ')}]`));
    await expect(WorkerEngine.load(await loadModelPackage(fewer))).rejects.toMatchObject({
      code: 'MODEL_MISMATCH',
      problems: ['labels: the manifest has 5 labels, the model\'s output "probs" has 6 classes (shape [1,6])'],
    });
    const nchw = await layersPackage((m) => m.replace('layout: NHWC', 'layout: NCHW'));
    const err = (await WorkerEngine.load(await loadModelPackage(nchw)).catch((e: unknown) => e)) as { code: string; problems: string[] };
    expect(err.code).toBe('MODEL_MISMATCH');
    expect(err.problems[0]).toBe(
      'input.layout: manifest says NCHW (3 channels at dim 1), the model\'s input "image" has shape [N,64,64,3] (it looks NHWC)',
    );
  });

  it('the sha256 covers the weight files: changed weights refuse the model', async () => {
    const dir = await graphPackage();
    await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(8 + 4 * 4 * K));
    await expect(loadModelPackage(dir)).rejects.toMatchObject({ code: 'MODEL_SHA256' });
  });
});
