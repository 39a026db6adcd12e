import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Frame } from '../../src/capture/frame.js';
import { pipelineSchema } from '../../src/config/pipeline.js';
import { must } from '../../src/errors.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import type { StageModel } from '../../src/inference/pipeline.js';
import { GraphBuilder, int, ints } from '../../scripts/onnx/builder.js';
import { colourBoxEdges } from '../../scripts/make-fixture-models.js';

/**
 * Pipeline test models built from real ONNX ops, with answers a test can compute:
 * - a "face" detector (YOLOv8-pose layout, letterbox 256): each face is a rectangle of one face
 *   colour (red, green or blue) on black; its box is that colour's extent, its eye keypoints are
 *   the centroids of the non-face pixels inside the box, right half = the subject's left eye
 *   (larger x), left half = the subject's right eye; an eye's visibility is 1 when such pixels
 *   exist, 0 when the eye is covered (painted in face colour);
 * - an eye classifier (stretch 32, dynamic batch): the mean colour of the crop's central 8x8 is
 *   compared to four iris colours; logits = -10 * squared distance.
 * renderFaces() draws frames with faces and eyes at known places.
 */

type Rgb = readonly [number, number, number];
export const FACE_COLOURS: Record<'red' | 'green' | 'blue', Rgb> = { red: [1, 0, 0], green: [0, 1, 0], blue: [0, 0, 1] };
export const EYE_LABELS = ['cataract', 'conjunctivitis', 'healthy', 'stye'] as const;
export type EyeLabel = (typeof EYE_LABELS)[number];
export const IRIS: Record<EyeLabel, Rgb> = {
  cataract: [0.9, 0.9, 0.9],
  conjunctivitis: [1, 0.5, 0.7],
  healthy: [0.5, 0.3, 0.1],
  stye: [1, 1, 0],
};
export const FACE_SIZE = 256;
export const EYE_SIZE = 32;
const K = 3;

export function buildFaceDetector(): Uint8Array {
  const S = FACE_SIZE;
  const g = new GraphBuilder('pipeline_face_detector');
  const image = g.input('images', [1, 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const { mask, cols, one, x1, x2, y1, y2, cx, cy } = colourBoxEdges(g, image, Object.values(FACE_COLOURS), S, 0.25);
  const present = g.op('ReduceMax', [cols], { axes: ints([2]), keepdims: int(0) }); // [1,K]
  const score = g.op('Mul', [present, g.floatInit('score', [], [0.9])]);
  // Pixel centres as coordinates: xs [1,1,1,S], ys [1,1,S,1]; per-face edges as [1,K,1,1].
  const idx = Array.from({ length: S }, (_, i) => i + 0.5);
  const xs = g.floatInit('xs', [1, 1, 1, S], idx);
  const ys = g.floatInit('ys', [1, 1, S, 1], idx);
  const axes23 = g.int64Init('axes23', [2], [2, 3]);
  const at = (v: string) => g.op('Unsqueeze', [v, axes23]);
  const ge = (a: string, b: string) => g.op('Cast', [g.op('Not', [g.op('Less', [a, b])])], { to: int(1) });
  const lt = (a: string, b: string) => g.op('Cast', [g.op('Less', [a, b])], { to: int(1) });
  const inside = g.op('Mul', [g.op('Mul', [ge(xs, at(x1)), lt(xs, at(x2))]), g.op('Mul', [ge(ys, at(y1)), lt(ys, at(y2))])]); // [1,K,S,S]
  const hole = g.op('Mul', [inside, g.op('Sub', [one, mask])]);
  const rightHalf = ge(xs, at(cx)); // [1,K,1,S]
  const sides = { left: g.op('Mul', [hole, rightHalf]), right: g.op('Mul', [hole, g.op('Sub', [one, rightHalf])]) };
  const sum = (v: string) => g.op('ReduceSum', [v, axes23], { keepdims: int(0) }); // [1,K]
  const kp = (m: string) => {
    const n = sum(m);
    const denom = g.op('Max', [n, one]);
    return [g.op('Div', [sum(g.op('Mul', [m, xs])), denom]), g.op('Div', [sum(g.op('Mul', [m, ys])), denom]), g.op('Min', [n, one])];
  };
  const axis1 = g.int64Init('axis1', [1], [1]);
  const row = (v: string) => g.op('Unsqueeze', [v, axis1]); // [1,1,K]
  const w = g.op('Sub', [x2, x1]);
  const h = g.op('Sub', [y2, y1]);
  g.op('Concat', [cx, cy, w, h, score, ...kp(sides.left), ...kp(sides.right)].map(row), { axis: int(1) }, 'output0');
  g.output('output0', [1, 4 + 1 + 3 * 2, K]);
  return g.build({ doc: 'Pipeline fixture: coloured faces with two eye keypoints (YOLOv8-pose layout).' });
}

export function buildEyeClassifier(dynamic = true): Uint8Array {
  const S = EYE_SIZE;
  const g = new GraphBuilder('pipeline_eye_classifier');
  const image = g.input('images', [dynamic ? 'batch' : 1, 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const centre = g.op('Slice', [
    image,
    g.int64Init('starts', [2], [12, 12]),
    g.int64Init('ends', [2], [20, 20]),
    g.int64Init('axes', [2], [2, 3]),
  ]);
  const mean = g.op('ReduceMean', [centre], { axes: ints([2, 3]), keepdims: int(0) }); // [N,3]
  const m3 = g.op('Unsqueeze', [mean, g.int64Init('axis1', [1], [1])]); // [N,1,3]
  const diff = g.op('Sub', [
    m3,
    g.floatInit(
      'iris',
      [1, 4, 3],
      EYE_LABELS.flatMap((l) => IRIS[l]),
    ),
  ]);
  const d2 = g.op('ReduceSum', [g.op('Mul', [diff, diff]), g.int64Init('axis2', [1], [2])], { keepdims: int(0) }); // [N,4]
  g.op('Mul', [d2, g.floatInit('k', [], [-10])], {}, 'logits');
  g.output('logits', [dynamic ? 'batch' : 1, 4]);
  return g.build({ doc: 'Pipeline fixture: eye condition from the iris colour at the crop centre.' });
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Writes both packages under `dir` (face/, eye/ or eye-fixed/); returns their folders. */
export async function writePipelineModels(
  dir: string,
  opts: { dynamic?: boolean; privacy?: 'person' | 'none' } = {},
): Promise<{ face: string; eye: string }> {
  const face = path.join(dir, 'face');
  const eye = path.join(dir, opts.dynamic === false ? 'eye-fixed' : 'eye');
  await mkdir(face, { recursive: true });
  await mkdir(eye, { recursive: true });
  const fm = buildFaceDetector();
  await writeFile(path.join(face, 'model.onnx'), fm);
  const input = (size: number, resize: string) => `input:\n  name: images\n  width: ${size}\n  height: ${size}\n  resize: ${resize}\n`;
  await writeFile(
    path.join(face, 'manifest.yaml'),
    `name: test-face\nversion: 1.0.0\ntask: detect\nsha256: ${sha256(fm)}\nprivacy: ${opts.privacy ?? 'person'}\n${input(FACE_SIZE, 'letterbox')}labels: [face]\ndetect:\n  format: yolov8\n  keypoints: [left_eye, right_eye]\n  scoreThreshold: 0.5\n`,
  );
  const em = buildEyeClassifier(opts.dynamic !== false);
  await writeFile(path.join(eye, 'model.onnx'), em);
  await writeFile(
    path.join(eye, 'manifest.yaml'),
    `name: test-eye\nversion: 1.0.0\ntask: classify\nsha256: ${sha256(em)}\n${input(EYE_SIZE, 'stretch')}labels: [${EYE_LABELS.join(', ')}]\nclassify:\n  outputs: logits\n  topK: 4\n`,
  );
  return { face, eye };
}

export interface FaceSpec {
  colour: keyof typeof FACE_COLOURS;
  x: number;
  y: number;
  w: number;
  h: number;
  /** The subject's eyes: an iris class, or null when covered. */
  left: EyeLabel | null;
  right: EyeLabel | null;
}

/** Eye centres of a face: the subject's left eye at the larger x. Eye squares are 0.2 of the face width. */
export function eyeCentres(f: Pick<FaceSpec, 'x' | 'y' | 'w' | 'h'>): {
  left: { x: number; y: number };
  right: { x: number; y: number };
  side: number;
} {
  return {
    left: { x: f.x + 0.7 * f.w, y: f.y + 0.4 * f.h },
    right: { x: f.x + 0.3 * f.w, y: f.y + 0.4 * f.h },
    side: Math.round(0.2 * f.w),
  };
}

/** An RGB frame (stride = width * 3) with the faces drawn on black. */
export function renderFaces(width: number, height: number, faces: readonly FaceSpec[], camera = 'test', seq = 1): Frame {
  const data = new Uint8Array(width * height * 3);
  const fill = (x0: number, y0: number, w: number, h: number, c: Rgb) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x0 + w); x++)
        data.set(
          c.map((v) => Math.round(v * 255)),
          (y * width + x) * 3,
        );
    }
  };
  for (const f of faces) {
    fill(f.x, f.y, f.w, f.h, FACE_COLOURS[f.colour]);
    const e = eyeCentres(f);
    for (const side of ['left', 'right'] as const) {
      const cls = f[side];
      if (cls) fill(Math.round(e[side].x - e.side / 2), Math.round(e[side].y - e.side / 2), e.side, e.side, IRIS[cls]);
    }
  }
  return { camera, seq, width, height, stride: width * 3, format: 'RGB', data, capturedAtMs: 1_700_000_000_000 + seq * 100 };
}

/** Box-blurs a square region of an RGB frame in place (radius r, applied `passes` times). */
export function blurRegion(frame: Frame, cx: number, cy: number, side: number, r = 4, passes = 3): void {
  const x0 = Math.max(0, Math.round(cx - side / 2));
  const y0 = Math.max(0, Math.round(cy - side / 2));
  const x1 = Math.min(frame.width, Math.round(cx + side / 2));
  const y1 = Math.min(frame.height, Math.round(cy + side / 2));
  for (let p = 0; p < passes; p++) {
    const src = frame.data.slice();
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          let n = 0;
          for (let dy = -r; dy <= r; dy++) {
            for (let dx = -r; dx <= r; dx++) {
              const xx = Math.min(frame.width - 1, Math.max(0, x + dx));
              const yy = Math.min(frame.height - 1, Math.max(0, y + dy));
              s += src[yy * frame.stride + xx * 3 + c];
              n++;
            }
          }
          frame.data[y * frame.stride + x * 3 + c] = Math.round(s / n);
        }
      }
    }
  }
}

/** An engine as a pipeline stage's model (the runner asks frames and crops of it). */
export const stageModel = (e: InferenceEngine): StageModel => ({
  info: e.info,
  infer: (f, h) => e.infer(f, h),
  inferCrops: (f, r) => must(e.inferCrops, `${e.info.name} takes no crops`).call(e, f, r),
});

/** The eyes pipeline's stages over these models: faces, then each eye cropped around its keypoint. */
export const eyesStages = (opts: { maxObjects?: number; quality?: { minSidePx?: number; minSharpness?: number } } = {}) =>
  pipelineSchema.parse([
    { name: 'face', model: 'face', ...(opts.maxObjects ? { maxObjects: opts.maxObjects } : {}) },
    {
      name: 'eye',
      model: 'eye',
      from: 'face',
      regions: { left: { keypoint: 'left_eye', size: 0.35 }, right: { keypoint: 'right_eye', size: 0.35 } },
      quality: { minSidePx: 8, ...opts.quality },
    },
  ]);
