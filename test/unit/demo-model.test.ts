import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { parse } from 'yaml';
import { makeDemoModel, LABELS, PROTOTYPES, TEMPERATURE } from '../../scripts/make-demo-model.js';

const committed = fileURLToPath(new URL('../../models/demo/', import.meta.url));
const SIZE = 64;

const decode = (buf: Buffer) => sharp(buf).raw().toBuffer({ resolveWithObject: true });

/** What the daemon feeds the model: stretch-resize, RGB, /255, NCHW. */
async function toTensor(file: string): Promise<Float32Array> {
  const { data, info } = await sharp(file).resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  const out = new Float32Array(3 * SIZE * SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) for (let c = 0; c < 3; c++) out[c * SIZE * SIZE + i] = data[i * 3 + c] / 255;
  return out;
}

function solid(rgb: readonly number[]): Float32Array {
  const out = new Float32Array(3 * SIZE * SIZE);
  for (let c = 0; c < 3; c++) out.fill(rgb[c], c * SIZE * SIZE, (c + 1) * SIZE * SIZE);
  return out;
}

/** Independent reference of the model's maths: mean colour -> T(2p.x - |p|^2) -> softmax. */
function reference(x: Float32Array): number[] {
  const mean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = 0; i < SIZE * SIZE; i++) s += x[c * SIZE * SIZE + i];
    return s / (SIZE * SIZE);
  });
  const scores = LABELS.map((l) => {
    const p = PROTOTYPES[l];
    return TEMPERATURE * (2 * (p[0] * mean[0] + p[1] * mean[1] + p[2] * mean[2]) - (p[0] ** 2 + p[1] ** 2 + p[2] ** 2));
  });
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const argmax = (v: ArrayLike<number>): number => Array.from(v).reduce((best, x, i, a) => (x > a[best] ? i : best), 0);

describe('demo model package (models/demo)', () => {
  let regenerated: string;

  beforeAll(async () => {
    regenerated = await mkdtemp(path.join(os.tmpdir(), 'demo-model-'));
    await makeDemoModel(regenerated);
  });
  afterAll(async () => {
    if (regenerated) await rm(regenerated, { recursive: true, force: true });
  });

  it('regenerates byte-identical model and manifest, and pixel-identical samples', async () => {
    for (const f of ['model.onnx', 'manifest.yaml']) {
      const [a, b] = await Promise.all([readFile(path.join(committed, f)), readFile(path.join(regenerated, f))]);
      expect(a.equals(b), `${f} differs from a fresh generation: run npm run make-demo`).toBe(true);
    }
    const names = (await readdir(path.join(committed, 'samples'))).sort();
    expect(names).toEqual((await readdir(path.join(regenerated, 'samples'))).sort());
    expect(names).toHaveLength(LABELS.length * 2);
    for (const n of names) {
      const [a, b] = await Promise.all([committed, regenerated].map(async (dir) => decode(await readFile(path.join(dir, 'samples', n)))));
      expect(a.info).toMatchObject({ width: 320, height: 240, channels: 3 });
      expect(b.info).toMatchObject({ width: a.info.width, height: a.info.height, channels: a.info.channels });
      expect(a.data.equals(b.data), `${n} pixels differ`).toBe(true);
    }
  });

  it('has a manifest whose sha256 matches model.onnx', async () => {
    const manifest = parse(await readFile(path.join(committed, 'manifest.yaml'), 'utf8'));
    const sha = createHash('sha256')
      .update(await readFile(path.join(committed, 'model.onnx')))
      .digest('hex');
    expect(manifest.sha256).toBe(sha);
    expect(manifest).toMatchObject({
      model: 'model.onnx',
      task: 'classify',
      input: { name: 'image', layout: 'NCHW', width: SIZE, height: SIZE, colour: 'RGB', scale: 1 / 255, resize: 'stretch' },
      output: { name: 'probs' },
      labels: [...LABELS],
    });
  });

  describe('onnxruntime CPU session', () => {
    let session: ort.InferenceSession;
    beforeAll(async () => {
      session = await ort.InferenceSession.create(path.join(committed, 'model.onnx'), { executionProviders: ['cpu'] });
    });
    afterAll(async () => {
      await session?.release();
    });

    const run = async (x: Float32Array): Promise<Float32Array> => {
      const out = await session.run({ image: new ort.Tensor('float32', x, [1, 3, SIZE, SIZE]) });
      expect(out.probs.dims).toEqual([1, LABELS.length]);
      return out.probs.data as Float32Array;
    };
    const expectMatchesReference = (probs: Float32Array, x: Float32Array): void => {
      const ref = reference(x);
      for (let k = 0; k < ref.length; k++) expect(Math.abs(probs[k] - ref[k])).toBeLessThan(1e-4);
    };

    it('names its input image and its output probs', () => {
      expect(session.inputNames).toEqual(['image']);
      expect(session.outputNames).toEqual(['probs']);
    });

    it('classifies each pure prototype colour as its label with p > 0.9', async () => {
      for (const [k, label] of LABELS.entries()) {
        const x = solid(PROTOTYPES[label]);
        const probs = await run(x);
        expect(LABELS[argmax(probs)], label).toBe(label);
        expect(probs[k]).toBeGreaterThan(0.9);
        expectMatchesReference(probs, x);
      }
    });

    it('matches the reference where it is undecided (midpoints between prototypes)', async () => {
      for (const a of LABELS) {
        for (const b of LABELS) {
          if (a >= b) continue;
          const x = solid([0, 1, 2].map((c) => (PROTOTYPES[a][c] + PROTOTYPES[b][c]) / 2));
          const probs = await run(x);
          // Equidistant from a and b, so they (nearly) tie unless another prototype is nearer.
          expectMatchesReference(probs, x);
        }
      }
    });

    it('classifies every sample as the label in its file name, matching the reference', async () => {
      const names = (await readdir(path.join(committed, 'samples'))).filter((n) => n.endsWith('.png'));
      expect(names.length).toBeGreaterThan(0);
      for (const n of names) {
        const label = /^([a-z]+)-\d+\.png$/.exec(n)?.[1];
        expect(LABELS as readonly string[], n).toContain(label);
        const x = await toTensor(path.join(committed, 'samples', n));
        const probs = await run(x);
        expect(LABELS[argmax(probs)], n).toBe(label);
        expectMatchesReference(probs, x);
      }
    });
  });
});
