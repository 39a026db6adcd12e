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
      input: { name: 'images', layout: 'NCHW', width: 64, height: 64, resize: 'letterbox' },
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
    const r = JSON.parse(o.stdout.trim().split('\n').pop()!);
    expect(r.detections).toHaveLength(1);
    expect(r.detections[0].score).toBeGreaterThan(0.85);
  }, 120_000);
});
