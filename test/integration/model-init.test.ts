import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { onnxMetadata, pythonNames } from '../../src/inference/onnx-meta.js';
import { modelInit } from '../../src/model-init.js';
import { constantModel } from '../helpers/constant-model.js';
import { buildCamClassifier } from '../helpers/cam-classifier.js';
import { astronautPng, realModels } from '../helpers/real-models.js';

/**
 * `model init` on generated ONNX files carrying Ultralytics-style metadata_props (the keys and
 * Python-literal value formats of a real `yolo export`), on an unknown model, and on the real
 * BlazeFace: the package written, its detect section, the DECIDE marks, the load check, and the
 * one run on a sample whose answer is known.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'model-init-'));
  dirs.push(d);
  return d;
}

/** YOLOv8-pose [1, 4 + 1 + 17 x 3, N]: anchor 1 is a person at (32, 30) 20x24, keypoint k at (20 + k, 10 + k), visibility 0.8. */
function poseOutput(N = 3): number[] {
  const rows: number[][] = Array.from({ length: 5 + 51 }, () => new Array(N).fill(0));
  [rows[0][1], rows[1][1], rows[2][1], rows[3][1], rows[4][1]] = [32, 30, 20, 24, 0.9];
  for (let k = 0; k < 17; k++) [rows[5 + 3 * k][1], rows[6 + 3 * k][1], rows[7 + 3 * k][1]] = [20 + k, 10 + k, 0.8];
  return rows.flat();
}

const out = () => {
  const o = { stdout: '', stderr: '' };
  const io = {
    stdout: (s: string) => {
      o.stdout += s;
    },
    stderr: (s: string) => {
      o.stderr += s;
    },
  };
  return { o, io };
};

describe('model init', () => {
  it('reads metadata_props as Ultralytics writes them', () => {
    const bytes = constantModel([{ name: 'output0', dims: [1, 1], data: [1] }], {
      names: "{0: 'person', 1: \"driver's seat\"}",
      imgsz: '[64, 64]',
    });
    const meta = onnxMetadata(bytes);
    expect(meta.imgsz).toBe('[64, 64]');
    expect(pythonNames(meta.names)).toEqual(['person', "driver's seat"]);
  });

  it('an Ultralytics pose export: the detect section and COCO keypoints filled in, loaded, run once on the sample', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'yolo-pose.onnx');
    await writeFile(
      file,
      constantModel([{ name: 'output0', dims: [1, 56, 3], data: poseOutput() }], {
        author: 'Ultralytics',
        task: 'pose',
        names: "{0: 'person'}",
        imgsz: '[64, 64]',
        stride: '32',
        kpt_shape: '[17, 3]',
        version: '8.3.0',
      }),
    );
    const sample = path.join(dir, 'sample.png');
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
      .png()
      .toFile(sample);
    const { o, io } = out();
    const code = await modelInit({ source: file, out: path.join(dir, 'pkg'), sample }, io);
    expect(code, o.stderr).toBe(0);
    const m = parse(await readFile(path.join(dir, 'pkg', 'manifest.yaml'), 'utf8'));
    expect(m).toMatchObject({
      name: 'yolo-pose',
      version: '8.3.0',
      task: 'detect',
      labels: ['person'],
      privacy: 'person',
      // Ultralytics letterboxes with OpenCV INTER_LINEAR onto grey 114: known, not a guess.
      input: {
        name: 'images',
        layout: 'NCHW',
        width: 64,
        height: 64,
        channels: 3,
        resize: 'letterbox',
        interpolation: 'bilinear',
        pad: 114,
      },
      output: { name: 'output0' },
      detect: { format: 'yolov8', keypointValues: 3 },
    });
    expect(m.detect.keypoints).toHaveLength(17);
    expect(m.detect.keypoints[1]).toBe('left_eye');
    expect(o.stdout).toContain('Ultralytics YOLO pose (1 classes)');
    expect(o.stdout).not.toContain('DECIDE');
    const result = JSON.parse(o.stdout.trim().split('\n').pop()!);
    expect(result.detections).toEqual([
      expect.objectContaining({
        label: 'person',
        score: expect.closeTo(0.9, 5),
        box: { x: 22, y: 18, w: 20, h: 24 },
        keypoints: expect.arrayContaining([{ name: 'left_eye', x: 21, y: 11, score: 0.8 }]),
      }),
    ]);
  });

  it('a classifier exposing its feature map: the explain section for CAM filled in from the weights that fit, loaded, run once', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'resnet-ish.onnx');
    await writeFile(file, buildCamClassifier('NCHW'));
    const { o, io } = out();
    const code = await modelInit({ source: file, out: path.join(dir, 'pkg') }, io);
    expect(o.stderr).toBe('');
    expect(code).toBe(0);
    const m = parse(await readFile(path.join(dir, 'pkg', 'manifest.yaml'), 'utf8'));
    // head.fc.weight [2, 3]: 2 classes (logits [batch, 2]) by 3 channels (features [batch, 3, 8, 8]); region_mask does not fit.
    expect(m).toMatchObject({
      task: 'classify',
      output: { name: 'logits' },
      explain: { method: 'cam', featureMap: 'features', weights: 'head.fc.weight' },
    });
    expect(o.stdout).toContain('explained by class activation maps over features [batch,3,8,8]');
    expect(o.stdout).toContain('  explain.weights: DECIDE:');
  });

  it('an unknown model: guesses marked DECIDE, and what does not fit printed as path: problem (exit 1)', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'mystery.onnx');
    await writeFile(
      file,
      constantModel(
        [
          { name: 'loc', dims: [1, 10, 4], data: new Array(40).fill(0) },
          { name: 'conf', dims: [1, 10, 2], data: new Array(20).fill(0) },
        ],
        {},
      ),
    );
    const { o, io } = out();
    const code = await modelInit({ source: file, out: path.join(dir, 'pkg') }, io);
    expect(code).toBe(1);
    const text = await readFile(path.join(dir, 'pkg', 'manifest.yaml'), 'utf8');
    expect(text).toContain('#   loc [1,10,4] float32');
    expect(text).toMatch(/format: boxes-scores # DECIDE: the outputs are loc \[1,10,4\], conf \[1,10,2\]/);
    expect(text).toMatch(/labels: \[ object \] # DECIDE/);
    expect(o.stdout).toContain('  detect.format: DECIDE:');
    expect(o.stderr).toContain('1 problem (MODEL_MISMATCH)');
    expect(o.stderr).toContain('  labels: the manifest has 1 labels, the model\'s output "conf" has 2 classes (shape [1,10,2])');
  });

  it('a grey model (1 channel, NCHW and NHWC): channels 1 with one mean/std/pad value, loaded; the resize the trainer used marked DECIDE', async () => {
    const dir = await tmp();
    for (const [layout, shape] of [
      ['NCHW', [1, 1, 48, 48]],
      ['NHWC', [1, 48, 48, 1]],
    ] as const) {
      const file = path.join(dir, `emotion-${layout}.onnx`);
      await writeFile(
        file,
        constantModel([{ name: 'scores', dims: [1, 7], data: [0, 0, 0, 5, 0, 0, 0] }], {}, { name: 'gray', shape: [...shape] }),
      );
      const { o, io } = out();
      const code = await modelInit({ source: file, out: path.join(dir, layout) }, io);
      expect(code, o.stderr).toBe(0);
      const text = await readFile(path.join(dir, layout, 'manifest.yaml'), 'utf8');
      const m = parse(text);
      expect(m.input).toMatchObject({ name: 'gray', layout, width: 48, height: 48, channels: 1, mean: [0], std: [1], pad: 114 });
      expect(m.input.colour).toBeUndefined();
      expect(text).toMatch(/interpolation: bilinear # DECIDE: the resize the training used/);
      expect(text).toMatch(/pad: 114 # DECIDE: the letterbox fill/);
      expect(text).not.toMatch(/channels: 1 # DECIDE/);
      expect(o.stdout).toContain('  input.interpolation: DECIDE:');
    }
  });

  it('an input shape that does not say its channels: channels marked DECIDE', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'dyn.onnx');
    await writeFile(file, constantModel([{ name: 'scores', dims: [1, 2], data: [1, 0] }], {}, { name: 'x', shape: [1, 'c', 32, 32] }));
    const { io } = out();
    await modelInit({ source: file, out: path.join(dir, 'pkg') }, io);
    expect(await readFile(path.join(dir, 'pkg', 'manifest.yaml'), 'utf8')).toMatch(/channels: 3 # DECIDE: the model's input \[1,c,32,32\]/);
  });

  it('YuNet 2023 (cls/obj/bbox/kps heads by name) and SCRFD (nine heads told by their shapes): the detect section filled in, the face found', async () => {
    const dir = await tmp();
    const sample = path.join(dir, 'sample.png');
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#404040' } })
      .png()
      .toFile(sample);
    const head = (n: number, k: number, rows: Record<number, number[]> = {}) => {
      const a = new Array<number>(n * k).fill(0);
      for (const [i, v] of Object.entries(rows)) a.splice(Number(i) * k, v.length, ...v);
      return a;
    };
    // YuNet at 64x64: strides 8, 16, 32 hold 64, 16, 4 cells. Stride 16, cell (row 1, col 2) = index 6:
    // score sqrt(0.95 x 0.95); centre ((2 + 0.5) 16, (1 + 0.5) 16) = (40, 24), size e^(ln 2) 16 = 32: box (24, 8) 32 x 32.
    const levels = [
      [8, 64],
      [16, 16],
      [32, 4],
    ] as const;
    const yunet = ['cls', 'obj', 'bbox', 'kps'].flatMap((role) =>
      levels.map(([st, n]) => {
        const k = { cls: 1, obj: 1, bbox: 4, kps: 10 }[role] ?? 1;
        const face = { cls: [0.95], obj: [0.95], bbox: [0.5, 0.5, Math.log(2), Math.log(2)], kps: [0, 0] }[role] ?? [];
        return { name: `${role}_${st}`, dims: [1, n, k], data: head(n, k, st === 16 ? { 6: face } : {}) };
      }),
    );
    // SCRFD at 64x64: 128, 32, 8 anchors; names as an export numbers them, in no useful order.
    // Stride 16, cell (1, 2), first anchor = index 12, point (32, 16); distances (1, 0.5, 1, 1.5) x 16: box (16, 8) 32 x 32.
    const scrfd = [
      { name: '471', dims: [8, 1], data: head(8, 1) },
      { name: '448', dims: [128, 1], data: head(128, 1) },
      { name: '494', dims: [32, 1], data: head(32, 1, { 12: [0.9] }) },
      { name: '451', dims: [128, 4], data: head(128, 4) },
      { name: '497', dims: [32, 4], data: head(32, 4, { 12: [1, 0.5, 1, 1.5] }) },
      { name: '474', dims: [8, 4], data: head(8, 4) },
      { name: '454', dims: [128, 10], data: head(128, 10) },
      { name: '477', dims: [8, 10], data: head(8, 10) },
      { name: '500', dims: [32, 10], data: head(32, 10, { 12: [0.25, 0.5] }) },
    ];
    const found: Record<string, unknown>[] = [];
    for (const [name, outputs] of [
      ['yunet', yunet],
      ['scrfd', scrfd],
    ] as const) {
      const file = path.join(dir, `${name}.onnx`);
      await writeFile(file, constantModel(outputs, {}));
      const { o, io } = out();
      const code = await modelInit({ source: file, out: path.join(dir, name), sample }, io);
      expect(code, o.stderr).toBe(0);
      expect(o.stdout, name).not.toContain('DECIDE');
      found.push({
        m: parse(await readFile(path.join(dir, name, 'manifest.yaml'), 'utf8')),
        r: JSON.parse(o.stdout.trim().split('\n').pop()!),
      });
    }
    const [y, s] = found as { m: any; r: any }[];
    expect(y.m).toMatchObject({
      task: 'detect',
      labels: ['face'],
      privacy: 'person',
      input: { colour: 'BGR', scale: 1, interpolation: 'bilinear', pad: 0 },
      detect: {
        scores: ['cls_8', 'cls_16', 'cls_32'],
        objectness: ['obj_8', 'obj_16', 'obj_32'],
        objectnessCombine: 'geometric-mean',
        encoding: 'stride-exp',
        anchors: { strides: [8, 16, 32], perCell: 1, offset: 0 },
      },
    });
    expect(y.r.detections).toEqual([
      expect.objectContaining({ label: 'face', score: expect.closeTo(0.95, 5), box: { x: 24, y: 8, w: 32, h: 32 } }),
    ]);
    expect(s.m).toMatchObject({
      input: { mean: [127.5, 127.5, 127.5], std: [128, 128, 128], pad: 0 },
      detect: { scores: ['448', '494', '471'], boxes: ['451', '497', '474'], keypointOutputs: ['454', '500', '477'], encoding: 'distance' },
    });
    expect(s.r.detections).toEqual([
      expect.objectContaining({
        score: expect.closeTo(0.9, 5),
        box: { x: 16, y: 8, w: 32, h: 32 },
        keypoints: expect.arrayContaining([{ name: 'right_eye', x: 36, y: 24, score: expect.closeTo(0.9, 3) }]),
      }),
    ]);
  }, 60_000);

  it('the real BlazeFace (TF.js): recognised from its signature, the anchor section filled in, the face found on the photo', async () => {
    const dir = await tmp();
    const { o, io } = out();
    const code = await modelInit(
      { source: path.join(realModels, 'blazeface-front.json'), out: path.join(dir, 'bf'), sample: astronautPng },
      io,
    );
    expect(code, o.stderr).toBe(0);
    expect(o.stdout).toContain('MediaPipe BlazeFace (front, 896 anchors)');
    const m = parse(await readFile(path.join(dir, 'bf', 'manifest.yaml'), 'utf8'));
    expect(m.detect).toMatchObject({
      format: 'anchors',
      boxes: ['Identity_2:0', 'Identity_3:0'],
      scores: ['Identity:0', 'Identity_1:0'],
      encoding: 'offsets',
      anchors: { strides: [8, 16, 16, 16], perCell: 2, offset: 0.5 },
    });
    // MediaPipe's ImageToTensorCalculator: bilinear, borders zero.
    expect(m.input).toMatchObject({ channels: 3, interpolation: 'bilinear', pad: 0 });
    const r = JSON.parse(o.stdout.trim().split('\n').pop()!);
    expect(r.detections).toHaveLength(1);
    expect(r.detections[0].score).toBeGreaterThan(0.85);
  }, 120_000);
});
