import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { modelSha256 } from '../../src/inference/package.js';
import type { DetectInference } from '../../src/inference/types.js';
import { constantModel } from '../helpers/constant-model.js';

/**
 * An SCRFD-style detector in a real ONNX Runtime session, in the inference worker: nine outputs
 * (score, box and keypoint heads for strides 8, 16, 32, without a batch dimension, as insightface
 * exports them), declared by the manifest alone. The outputs are constants placed here, so the
 * decoded face is known: a face on the stride-16 map, a weaker duplicate of it on the stride-8
 * map (removed by NMS across heads), and a manifest whose grid does not fit refused at load.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

// 64x64 input, strides 8, 16, 32, 2 anchors per cell at the cell corner (offset 0): 8x8x2 = 128, 4x4x2 = 32, 2x2x2 = 8.
const LEVELS = [
  [8, 128],
  [16, 32],
  [32, 8],
] as const;

function outputs(): { name: string; dims: number[]; data: number[] }[] {
  const out: { name: string; dims: number[]; data: number[] }[] = [];
  for (const [stride, n] of LEVELS) {
    const score = new Array(n).fill(0.01);
    const box = new Array(n * 4).fill(0);
    const kps = new Array(n * 4).fill(0);
    if (stride === 16) {
      // Cell (row 1, col 2), first anchor: index (1 x 4 + 2) x 2 = 12, point (32, 16).
      // Edges 32 - 1 x 16 = 16, 16 - 0.5 x 16 = 8, 32 + 16 = 48, 16 + 1.5 x 16 = 40.
      score[12] = 0.9;
      box.splice(12 * 4, 4, 1, 0.5, 1, 1.5);
      kps.splice(12 * 4, 4, 0.25, 0.5, -0.5, 1); // (36, 24) and (24, 32)
    }
    if (stride === 8) {
      // Cell (row 3, col 4) = index (3 x 8 + 4) x 2 = 56, point (32, 24): nearly the same box, weaker.
      score[56] = 0.7;
      box.splice(56 * 4, 4, 2, 2, 2, 2);
    }
    out.push({ name: `score_${stride}`, dims: [n, 1], data: score });
    out.push({ name: `bbox_${stride}`, dims: [n, 4], data: box });
    out.push({ name: `kps_${stride}`, dims: [n, 4], data: kps });
  }
  return out;
}

async function pkg(strides: number[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'scrfd-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'model.onnx'), constantModel(outputs(), {}));
  const heads = (role: string) => `[${LEVELS.map(([s]) => `${role}_${s}`).join(', ')}]`;
  await writeFile(
    path.join(dir, 'manifest.yaml'),
    `name: scrfd-like\nversion: 1.0.0\ntask: detect\nsha256: ${await modelSha256(path.join(dir, 'model.onnx'))}\n` +
      'input: { name: images, layout: NCHW, width: 64, height: 64, resize: letterbox }\nlabels: [face]\n' +
      `detect:\n  format: anchors\n  scores: ${heads('score')}\n  boxes: ${heads('bbox')}\n  keypointOutputs: ${heads('kps')}\n` +
      `  anchors: { strides: [${strides.join(', ')}], perCell: 2, offset: 0 }\n  encoding: distance\n` +
      '  keypoints: [right_eye, left_eye]\n  scoreThreshold: 0.5\n  iouThreshold: 0.4\n',
  );
  return dir;
}

const frame: Frame = {
  camera: 't',
  seq: 1,
  width: 128,
  height: 128,
  stride: 128 * 3,
  format: 'RGB',
  data: new Uint8Array(128 * 128 * 3).fill(90),
  capturedAtMs: 0,
};

describe('anchor heads in ONNX Runtime', () => {
  it('nine [N, K] heads joined per role, distance boxes, (x, y) keypoints, NMS across strides; source pixels (x2)', async () => {
    let engine: InferenceEngine | undefined;
    try {
      engine = await loadEngine(await pkg([8, 16, 32]), { providers: ['cpu'], intraOpThreads: 1 });
      const inf = (await engine.infer(frame)) as DetectInference;
      expect(inf.detections).toEqual([
        {
          index: 0,
          label: 'face',
          score: expect.closeTo(0.9, 6),
          box: { x: 32, y: 16, w: 64, h: 64 },
          keypoints: [
            { name: 'right_eye', x: 72, y: 48, score: expect.closeTo(0.9, 6) },
            { name: 'left_eye', x: 48, y: 64, score: expect.closeTo(0.9, 6) },
          ],
        },
      ]);
    } finally {
      await engine?.close();
    }
  }, 60_000);

  it('a grid that does not fit the heads is refused at load, one line per role', async () => {
    const err = await loadEngine(await pkg([8, 16]), { providers: ['cpu'], intraOpThreads: 1 }).then(
      (e) => e.close().then(() => undefined),
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('MODEL_MISMATCH');
    for (const role of ['boxes', 'scores', 'keypointOutputs'])
      expect(err?.message).toContain(
        `detect.anchors: expected 160 anchors from the grid (strides 8, 16: 8x8 x 2 + 4x4 x 2 = 128 + 32), the heads of detect.${role} have 128 + 32 + 8 = 168`,
      );
  }, 60_000);
});
