import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { GraphBuilder, ints } from '../../scripts/onnx/builder.js';
import type { Frame } from '../../src/capture/frame.js';
import { type InferenceEngine, onnxIo } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { draftManifest } from '../../src/inference/model-draft.js';
import { modelSha256 } from '../../src/inference/package.js';
import { loadTf } from '../../src/inference/tfjs.js';
import type { ClassifyInference, DetectInference, Inference } from '../../src/inference/types.js';

/**
 * Every worked manifest of docs/models.md ("Bring your model"), read from the page itself so the
 * docs cannot drift, run in a real ONNX Runtime (or TF.js) session on a generated model with the
 * family's real output layout: YOLOv8 detect [1,84,8400] and pose [1,56,8400], SCRFD's nine
 * [N, K] heads, RetinaFace's priors with variances, YuNet 2023's twelve heads, a timm classifier
 * (ImageNet mean/std) and a Keras NHWC classifier as a TF.js layers model. Detectors answer
 * constants placed here, so each box and keypoint is known; the classifiers answer from the
 * picture's normalised channel means, so the manifest's normalisation is checked too. The
 * expected values are worked out in the comments, from each family's own decode rules. The
 * BlazeFace section is checked against the example manifest the real-model tests run; for SCRFD
 * and YuNet, `model init`'s draft must be the page's manifest.
 */

const docs = fileURLToPath(new URL('../../docs/models.md', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The first yaml block under the `## <heading>` of docs/models.md, parsed. */
async function docManifest(heading: string): Promise<Record<string, unknown>> {
  const text = await readFile(docs, 'utf8');
  const at = text.indexOf(`\n## ${heading}\n`);
  if (at < 0) throw new Error(`docs/models.md has no section "## ${heading}"`);
  const block = /```yaml\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error(`docs/models.md "## ${heading}" has no yaml block`);
  return parse(block[1]) as Record<string, unknown>;
}

/**
 * A package from the doc's manifest as written, with what only a real package has filled in: the
 * sha256 of the model file, and a labels file when the doc names one.
 */
async function pkg(m: Record<string, unknown>, files: Record<string, Uint8Array | string>, labels?: string[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'family-'));
  dirs.push(dir);
  for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(dir, name), bytes);
  if (typeof m.labels === 'string') await writeFile(path.join(dir, m.labels), `${(labels ?? []).join('\n')}\n`);
  const model = typeof m.model === 'string' ? m.model : 'model.onnx';
  await writeFile(path.join(dir, 'manifest.yaml'), stringify({ ...m, sha256: await modelSha256(path.join(dir, model)) }));
  return dir;
}

/** A model whose outputs ignore the picture: out = mean(image) x 0 + constant. */
function constants(
  input: { name: string; shape: number[] },
  outputs: { name: string; dims: number[]; data: ArrayLike<number> }[],
): Uint8Array {
  const g = new GraphBuilder('family');
  const x = g.input(input.name, input.shape);
  const m = g.op('ReduceMean', [x], { axes: ints([1, 2, 3]), keepdims: { type: 'int', value: 0 } });
  const zero = g.floatInit('zero', [1], [0]);
  const z = g.op('Mul', [m, zero]);
  for (const o of outputs) {
    g.output(o.name, o.dims);
    g.op('Add', [z, g.floatInit(`${o.name}_const`, o.dims, o.data)], {}, o.name);
  }
  return g.build();
}

function frame(width: number, height: number, rgb: [number, number, number] = [90, 90, 90]): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rgb[i % 3];
  return { camera: 't', seq: 1, width, height, stride: width * 3, format: 'RGB', data, capturedAtMs: 0 };
}

async function run(dir: string, f: Frame): Promise<Inference> {
  let engine: InferenceEngine | undefined;
  try {
    engine = await loadEngine(dir, { providers: ['cpu'], intraOpThreads: 1 });
    return await engine.infer(f);
  } finally {
    await engine?.close();
  }
}

/** Source pixels of a model-input point, through the letterbox or stretch written out again here. */
const letterbox = (W: number, H: number, fw: number, fh: number) => {
  const s = Math.min(W / fw, H / fh);
  const [ox, oy] = [(W - fw * s) / 2, (H - fh * s) / 2];
  return (x: number, y: number) => [(x - ox) / s, (y - oy) / s];
};
const stretch = (W: number, H: number, fw: number, fh: number) => (x: number, y: number) => [(x * fw) / W, (y * fh) / H];

/** The detection's box and keypoints, checked against model-input corners and points mapped to the frame. */
function expectFace(
  d: DetectInference['detections'][number] | undefined,
  want: { score: number; corners: [number, number, number, number]; points?: [number, number][]; names?: string[] },
  toFrame: (x: number, y: number) => number[],
): void {
  expect(d, 'a detection').toBeDefined();
  if (!d) return;
  expect(d.score).toBeCloseTo(want.score, 5);
  const [x1, y1] = toFrame(want.corners[0], want.corners[1]);
  const [x2, y2] = toFrame(want.corners[2], want.corners[3]);
  expect(d.box.x).toBeCloseTo(x1, 3);
  expect(d.box.y).toBeCloseTo(y1, 3);
  expect(d.box.w).toBeCloseTo(x2 - x1, 3);
  expect(d.box.h).toBeCloseTo(y2 - y1, 3);
  if (!want.points) return;
  expect(d.keypoints?.map((k) => k.name)).toEqual(want.names);
  want.points.forEach(([x, y], k) => {
    const [fx, fy] = toFrame(x, y);
    expect(d.keypoints?.[k].x, `keypoint ${k} x`).toBeCloseTo(fx, 3);
    expect(d.keypoints?.[k].y, `keypoint ${k} y`).toBeCloseTo(fy, 3);
  });
}

/** Rows-major [N, K] (or [1, N, K]) head of zeros with some rows set. */
function head(n: number, k: number, rows: Record<number, number[]> = {}, fill = 0): Float32Array {
  const a = new Float32Array(n * k).fill(fill);
  for (const [i, v] of Object.entries(rows)) a.set(v, Number(i) * k);
  return a;
}

/** `model init` writes the page's manifest for this model: its input, labels and detect section. */
async function expectDraft(model: Uint8Array, doc: Record<string, unknown>): Promise<void> {
  const draft = draftManifest('x', 'model.onnx', await onnxIo(model), {}).manifest;
  expect(draft.input).toMatchObject(doc.input as object);
  expect(draft.labels).toEqual(doc.labels);
  expect(draft.detect).toEqual(doc.detect);
}

const COCO = Array.from({ length: 80 }, (_, i) => (i === 0 ? 'person' : i === 16 ? 'dog' : `class_${i}`));

describe('the worked manifests of docs/models.md on generated models of each family', () => {
  it('YOLOv8 / YOLO11 detect: [1,84,8400], letterboxed 1280x720, NMS keeps the best of two dog boxes', async () => {
    const m = await docManifest('YOLOv8 / YOLO11 detect (Ultralytics ONNX export)');
    const N = 8400;
    const out = new Float32Array(84 * N);
    const put = (n: number, cx: number, cy: number, w: number, h: number, cls: number, score: number) => {
      [cx, cy, w, h].forEach((v, r) => {
        out[r * N + n] = v;
      });
      out[(4 + cls) * N + n] = score;
    };
    put(100, 320, 300, 200, 100, 16, 0.8); // corners (220, 250) - (420, 350)
    put(101, 322, 302, 200, 100, 16, 0.5); // IoU ~0.94 with it: suppressed
    put(5000, 100, 100, 50, 50, 0, 0.2); // below scoreThreshold 0.25
    const dir = await pkg(
      m,
      { 'model.onnx': constants({ name: 'images', shape: [1, 3, 640, 640] }, [{ name: 'output0', dims: [1, 84, N], data: out }]) },
      COCO,
    );
    const inf = (await run(dir, frame(1280, 720))) as DetectInference;
    expect(inf.detections.map((d) => d.label)).toEqual(['dog']);
    // Letterbox: scale 0.5, 140 px bands above and below: (220, 250) -> (440, 220), 400 x 200.
    expectFace(inf.detections[0], { score: 0.8, corners: [220, 250, 420, 350] }, letterbox(640, 640, 1280, 720));
    expect(inf.detections[0].box).toEqual({ x: 440, y: 220, w: 400, h: 200 });
  }, 60_000);

  it('YOLOv8 / YOLO11 pose: [1,56,8400], 17 COCO keypoints (x, y, visibility)', async () => {
    const m = await docManifest('YOLOv8 / YOLO11 pose');
    const N = 8400;
    const out = new Float32Array(56 * N);
    const n = 4321;
    [320, 320, 100, 200, 0.9].forEach((v, r) => {
      out[r * N + n] = v;
    });
    for (let k = 0; k < 17; k++)
      [300 + k, 250 + 2 * k, 0.5 + k / 100].forEach((v, j) => {
        out[(5 + 3 * k + j) * N + n] = v;
      });
    const dir = await pkg(m, {
      'model.onnx': constants({ name: 'images', shape: [1, 3, 640, 640] }, [{ name: 'output0', dims: [1, 56, N], data: out }]),
    });
    const inf = (await run(dir, frame(1280, 720))) as DetectInference;
    expect(inf.detections).toHaveLength(1);
    const points = Array.from({ length: 17 }, (_, k) => [300 + k, 250 + 2 * k] as [number, number]);
    const names = (m.detect as { keypoints: string[] }).keypoints;
    expectFace(inf.detections[0], { score: 0.9, corners: [270, 220, 370, 420], points, names }, letterbox(640, 640, 1280, 720));
    expect(inf.detections[0].keypoints?.[3].score).toBeCloseTo(0.53, 6);
    expect(names[1]).toBe('left_eye');
  }, 60_000);

  it('BlazeFace: the manifest on the page is the example the real-model tests run (examples/models/blazeface-front)', async () => {
    // The page shows the heart of it; test/process/real-blazeface.test.ts runs the example on the real model and photo.
    const m = await docManifest('BlazeFace (MediaPipe, TF.js graph model)');
    const example = parse(
      await readFile(fileURLToPath(new URL('../../examples/models/blazeface-front/manifest.yaml', import.meta.url)), 'utf8'),
    );
    expect(example).toMatchObject(m);
  });

  it('SCRFD: nine [N, K] heads (strides 8, 16, 32, 2 anchors per cell at the corner), distances x stride', async () => {
    const m = await docManifest('SCRFD (insightface)');
    const levels = [
      [8, 80 * 80 * 2],
      [16, 40 * 40 * 2],
      [32, 20 * 20 * 2],
    ] as const;
    // Stride 16, cell (row 10, col 20), second anchor: index (10 x 40 + 20) x 2 + 1 = 841, point (320, 160).
    // Box distances (2, 1, 3, 4) x 16: corners (288, 144) - (368, 224); keypoint j at (320 + (-1 + 0.5 j) 16, 160 + (-0.5 + 0.25 j) 16).
    const kp = [0, 1, 2, 3, 4].flatMap((j) => [-1 + 0.5 * j, -0.5 + 0.25 * j]);
    const outputs = levels.flatMap(([s, n]) => [
      { name: `score_${s}`, dims: [n, 1], data: head(n, 1, s === 16 ? { 841: [0.88] } : s === 32 ? { 5: [0.45] } : {}, 0.01) },
      { name: `bbox_${s}`, dims: [n, 4], data: head(n, 4, s === 16 ? { 841: [2, 1, 3, 4] } : { 5: [1, 1, 1, 1] }) },
      { name: `kps_${s}`, dims: [n, 10], data: head(n, 10, s === 16 ? { 841: kp } : {}) },
    ]);
    const model = constants({ name: 'input.1', shape: [1, 3, 640, 640] }, outputs);
    await expectDraft(model, m);
    const dir = await pkg(m, { 'model.onnx': model });
    const inf = (await run(dir, frame(640, 480))) as DetectInference;
    expect(inf.detections).toHaveLength(1);
    const points = [0, 1, 2, 3, 4].map((j) => [320 + (-1 + 0.5 * j) * 16, 160 + (-0.5 + 0.25 * j) * 16] as [number, number]);
    const names = ['right_eye', 'left_eye', 'nose', 'mouth_right', 'mouth_left'];
    expectFace(inf.detections[0], { score: 0.88, corners: [288, 144, 368, 224], points, names }, letterbox(640, 640, 640, 480));
  }, 60_000);

  it('RetinaFace: priors with min_sizes per level, variances [0.1, 0.2], softmax (background, face), stretched 1280x960', async () => {
    const m = await docManifest('RetinaFace / SSD style');
    const N = 16800;
    // Level 2 (stride 16, sizes 64 and 128) starts at 80 x 80 x 2 = 12800; cell (row 12, col 25), size 128:
    // index 12800 + (12 x 40 + 25) x 2 + 1 = 13811, prior centre (25.5 x 16, 12.5 x 16) = (408, 200).
    // d = (0.5, -0.25, ln(1.5) / 0.2, 0): centre (408 + 0.5 x 0.1 x 128, 200 - 0.25 x 0.1 x 128) = (414.4, 196.8),
    // size 192 x 128; keypoint j: (408 + 0.5 j x 0.1 x 128, 200 - 0.5 j x 0.1 x 128).
    const n = 13811;
    const boxes = head(N, 4, { [n]: [0.5, -0.25, Math.log(1.5) / 0.2, 0] });
    const scores = head(N, 2, { [n]: [0.05, 0.95], 7: [0.45, 0.55] });
    for (let i = 0; i < N; i++) if (i !== n && i !== 7) scores[2 * i] = 1;
    const kps = head(N, 10, { [n]: [0, 1, 2, 3, 4].flatMap((j) => [0.5 * j, -0.5 * j]) });
    const outputs = [
      { name: 'output0', dims: [1, N, 4], data: boxes },
      { name: 'output1', dims: [1, N, 2], data: scores },
      { name: 'output2', dims: [1, N, 10], data: kps },
    ];
    const dir = await pkg(m, { 'model.onnx': constants({ name: 'input0', shape: [1, 3, 640, 640] }, outputs) });
    const inf = (await run(dir, frame(1280, 960))) as DetectInference;
    expect(inf.detections).toHaveLength(1);
    const points = [0, 1, 2, 3, 4].map((j) => [408 + 6.4 * j, 200 - 6.4 * j] as [number, number]);
    const names = ['right_eye', 'left_eye', 'nose', 'mouth_right', 'mouth_left'];
    expectFace(inf.detections[0], { score: 0.95, corners: [318.4, 132.8, 510.4, 260.8], points, names }, stretch(640, 640, 1280, 960));
  }, 60_000);

  it('YuNet 2023: class x objectness heads (geometric mean), centre + d x stride, size exp(d) x stride', async () => {
    const m = await docManifest('YuNet (OpenCV zoo, 2023)');
    const levels = [
      [8, 80 * 80],
      [16, 40 * 40],
      [32, 20 * 20],
    ] as const;
    // Stride 16, cell (row 8, col 30): index 8 x 40 + 30 = 350. Score sqrt(0.9 x 0.92) = 0.90995 passes 0.9
    // (their product, 0.828, would not). Box centre ((30 + 0.25) 16, (8 + 0.5) 16) = (484, 136), size
    // exp(ln 4) 16 x exp(ln 5) 16 = 64 x 80: corners (452, 96) - (516, 176). Keypoint j: ((30 + 0.1 j) 16, (8 + 0.2 j) 16).
    // Stride 8, index 100: class 0.95, objectness 0.5: sqrt(0.475) = 0.69, below.
    const n = 350;
    const kp = [0, 1, 2, 3, 4].flatMap((j) => [0.1 * j, 0.2 * j]);
    const at = (s: number, rows16: Record<number, number[]>, rows8: Record<number, number[]> = {}) =>
      s === 16 ? rows16 : s === 8 ? rows8 : {};
    const outputs = [
      ...levels.map(([s, N]) => ({ name: `cls_${s}`, dims: [1, N, 1], data: head(N, 1, at(s, { [n]: [0.9] }, { 100: [0.95] })) })),
      ...levels.map(([s, N]) => ({ name: `obj_${s}`, dims: [1, N, 1], data: head(N, 1, at(s, { [n]: [0.92] }, { 100: [0.5] }), 0.9) })),
      ...levels.map(([s, N]) => ({
        name: `bbox_${s}`,
        dims: [1, N, 4],
        data: head(N, 4, at(s, { [n]: [0.25, 0.5, Math.log(4), Math.log(5)] })),
      })),
      ...levels.map(([s, N]) => ({ name: `kps_${s}`, dims: [1, N, 10], data: head(N, 10, at(s, { [n]: kp })) })),
    ];
    const model = constants({ name: 'input', shape: [1, 3, 640, 640] }, outputs);
    await expectDraft(model, m);
    const dir = await pkg(m, { 'model.onnx': model });
    const inf = (await run(dir, frame(640, 640))) as DetectInference;
    expect(inf.detections).toHaveLength(1);
    const points = [0, 1, 2, 3, 4].map((j) => [(30 + 0.1 * j) * 16, (8 + 0.2 * j) * 16] as [number, number]);
    const names = ['right_eye', 'left_eye', 'nose', 'mouth_right', 'mouth_left'];
    expectFace(
      inf.detections[0],
      { score: Math.sqrt(0.9 * 0.92), corners: [452, 96, 516, 176], points, names },
      letterbox(640, 640, 640, 640),
    );
  }, 60_000);

  it('a timm classifier: ImageNet mean/std, center-crop, bicubic-antialias; logits from the normalised channel means', async () => {
    const m = await docManifest('A classifier exported from timm');
    // logits[c] = 10 x mean of normalised channel c for c < 3, 0 for the other 997 classes.
    const g = new GraphBuilder('timm');
    const x = g.input('input', [1, 3, 224, 224]);
    const means = g.op('ReduceMean', [x], { axes: ints([2, 3]), keepdims: { type: 'int', value: 0 } });
    const W = new Float32Array(3 * 1000);
    for (let c = 0; c < 3; c++) W[c * 1000 + c] = 10;
    g.output('logits', [1, 1000]);
    g.op('MatMul', [means, g.floatInit('w', [3, 1000], W)], {}, 'logits');
    const labels = Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(8, '0')}`);
    const dir = await pkg(m, { 'model.onnx': g.build() }, labels);
    const rgb: [number, number, number] = [200, 100, 50];
    const inf = (await run(dir, frame(320, 240, rgb))) as ClassifyInference;
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const logits = [0, 1, 2].map((c) => (10 * (rgb[c] / 255 - mean[c])) / std[c]); // 18.1, -2.5, -10.2
    const z = logits.reduce((s, l) => s + Math.exp(l), 0) + 997;
    expect(inf.top).toHaveLength(5);
    expect(inf.top[0]).toMatchObject({ index: 0, label: labels[0] });
    expect(inf.top[0].score).toBeCloseTo(Math.exp(logits[0]) / z, 4);
    // Then four of the 997 classes at logit 0 (above channels 1 and 2, whose logits are negative).
    expect(inf.top[1].index).toBeGreaterThan(2);
    expect(inf.top[1].score).toBeCloseTo(1 / z, 6);
  }, 60_000);

  it('a Keras classifier as a TF.js layers model: NHWC, x / 127.5 - 1, softmax from the normalised channel means', async () => {
    const m = await docManifest('Keras (converted to TF.js)');
    await loadTf();
    const tfl = await import('@tensorflow/tfjs-layers');
    const core = await import('@tensorflow/tfjs-core');
    const input = tfl.input({ shape: [224, 224, 3], name: 'input_1' });
    const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(input) as InstanceType<typeof tfl.SymbolicTensor>;
    const dense = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'predictions' });
    const model = tfl.model({ inputs: input, outputs: dense.apply(pooled) as InstanceType<typeof tfl.SymbolicTensor> });
    dense.setWeights([core.tensor([10, 0, 0, 0, 10, 0, 0, 0, 10], [3, 3]), core.tensor([0, 0, 0], [3])]);
    let json = '';
    let weights = new Uint8Array();
    await model.save(
      core.io.withSaveHandler((a) => {
        json = JSON.stringify({
          modelTopology: a.modelTopology,
          format: a.format,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        });
        weights = new Uint8Array(a.weightData as ArrayBuffer);
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
      }),
    );
    const dir = await pkg(m, { 'model.json': json, 'weights.bin': weights }, ['red', 'green', 'blue']);
    const rgb: [number, number, number] = [140, 120, 90];
    const inf = (await run(dir, frame(300, 200, rgb))) as ClassifyInference;
    const logits = rgb.map((v) => 10 * (v / 127.5 - 1));
    const z = logits.reduce((s, l) => s + Math.exp(l), 0);
    expect(inf.top.map((t) => t.label)).toEqual(['red', 'green', 'blue']);
    // Float32 pooling over 224 x 224 in TF.js: within 5e-4 of the exact softmax (a wrong mean moves it by 0.1 and more).
    expect(inf.top.map((t) => t.score)).toEqual(logits.map((l) => expect.closeTo(Math.exp(l) / z, 3)));
  }, 60_000);
});
