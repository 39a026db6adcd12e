import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame } from '../../src/capture/frame.js';
import { inputSchema } from '../../src/inference/manifest.js';
import { Preprocessor } from '../../src/inference/preprocess.js';
import { loadTf } from '../../src/inference/tfjs.js';

/**
 * The real BlazeFace (test/fixtures/real-models, see its README) as a package made from the
 * example manifest, and an independent reference for its answers: the raw TF.js graph run here,
 * decoded with MediaPipe's anchor rules written out again (not the daemon's decoder).
 */

export const realModels = fileURLToPath(new URL('../fixtures/real-models/', import.meta.url));
export const astronautPng = path.join(realModels, 'astronaut.png');
const example = fileURLToPath(new URL('../../examples/models/blazeface-front/manifest.yaml', import.meta.url));

/** A temp package folder: the example manifest beside the two model files. */
export async function blazefacePackage(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'blazeface-'));
  await copyFile(example, path.join(dir, 'manifest.yaml'));
  for (const f of ['blazeface-front.json', 'blazeface-front.bin']) await copyFile(path.join(realModels, f), path.join(dir, f));
  return dir;
}

export interface RefFace {
  score: number;
  /** Source pixels; [right_eye, left_eye, nose, mouth, right_ear, left_ear] as the model orders them. */
  box: { x1: number; y1: number; x2: number; y2: number };
  keypoints: [number, number][];
}

const SIZE = 128;

/**
 * MediaPipe's SSD anchors for BlazeFace front: layers with strides 8, 16, 16, 16 and 2 anchors
 * each; layers of one stride share a feature map, so the 16x16 map has 2 anchors per cell and the
 * 8x8 map 6; centres ((x + 0.5) / map, (y + 0.5) / map) in units of the input, row-major.
 */
function mediapipeAnchors(): [number, number][] {
  const out: [number, number][] = [];
  for (const [map, perCell] of [
    [16, 2],
    [8, 6],
  ])
    for (let y = 0; y < map; y++)
      for (let x = 0; x < map; x++) for (let a = 0; a < perCell; a++) out.push([(x + 0.5) / map, (y + 0.5) / map]);
  return out;
}

/** The best face of a square RGB frame (the photo is square: no letterbox bars), in source pixels. */
export async function referenceFace(frame: Frame): Promise<RefFace> {
  const { tf } = await loadTf();
  const t = tf as unknown as {
    tensor(v: Float32Array, s: number[], d: string): { dispose(): void };
    loadGraphModel(h: { load: () => Promise<unknown> }): Promise<{
      execute(i: Record<string, unknown>, o: string[]): { data(): Promise<Float32Array>; dispose(): void }[];
      dispose(): void;
    }>;
  };
  const json = JSON.parse(await readFile(path.join(realModels, 'blazeface-front.json'), 'utf8'));
  const bin = await readFile(path.join(realModels, 'blazeface-front.bin'));
  const model = await t.loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      format: json.format,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    }),
  });
  // The input tensor as the daemon writes it (pixel / 127.5 - 1 at 128x128): the preprocessing is not what is checked here.
  const pre = new Preprocessor(
    inputSchema.parse({ name: 'input', layout: 'NHWC', width: SIZE, height: SIZE, scale: 1 / 127.5, mean: [1, 1, 1] }),
  );
  const { data } = pre.run(frame);
  const x = t.tensor(data as Float32Array, [1, SIZE, SIZE, 3], 'float32');
  const outs = model.execute({ input: x }, ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0']);
  const [s8, s16, r8, r16] = await Promise.all(outs.map((o) => o.data()));
  for (const o of outs) o.dispose();
  x.dispose();
  model.dispose();
  const scores = [...s8, ...s16];
  const regs = new Float32Array([...r8, ...r16]);
  const anchors = mediapipeAnchors();
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  const [ax, ay] = anchors[best];
  const k = frame.width / SIZE;
  const r = regs.subarray(best * 16, best * 16 + 16);
  // MediaPipe: x_center = raw / x_scale * anchor_w + anchor_x with x_scale 128 and fixed anchor size 1.
  const px = (v: number, a: number) => (a + v / SIZE) * SIZE * k;
  const cx = px(r[0], ax);
  const cy = px(r[1], ay);
  const w = r[2] * k;
  const h = r[3] * k;
  return {
    score: 1 / (1 + Math.exp(-scores[best])),
    box: { x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2 },
    keypoints: Array.from({ length: 6 }, (_, i) => [px(r[4 + 2 * i], ax), px(r[5 + 2 * i], ay)] as [number, number]),
  };
}
