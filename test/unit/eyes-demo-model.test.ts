import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { parse } from 'yaml';
import type { Frame } from '../../src/capture/frame.js';
import { nms, type Candidate } from '../../src/inference/detect.js';
import { inputSchema } from '../../src/inference/manifest.js';
import { Preprocessor, toSource, type Geometry } from '../../src/inference/preprocess.js';
import { mulberry32 } from '../../scripts/make-demo-model.js';
import {
  COLOURS,
  EYE_CROP_SIZE,
  EYE_INPUT_SIZE,
  EYE_LABELS,
  FACE_INPUT_HEIGHT,
  FACE_INPUT_WIDTH,
  FRAME_HEIGHT,
  FRAME_WIDTH,
  IRIS,
  KEYPOINTS,
  MAX_FACE_SIZE,
  MIN_FACE_SIZE,
  checkFrameSpec,
  drawFace,
  faceGeometry,
  makeEyesDemo,
  renderFrame,
  sampleSequence,
  type EyeLabel,
  type FaceSpec,
  type FrameSpec,
  type Point,
} from '../../scripts/make-eyes-demo.js';

const committed = fileURLToPath(new URL('../../models/demo-eyes/', import.meta.url));

const frameOf = (rgb: Uint8Array, width = FRAME_WIDTH, height = FRAME_HEIGHT): Frame => ({
  camera: 'kiosk',
  seq: 0,
  width,
  height,
  stride: width * 3,
  format: 'RGB',
  data: rgb,
  capturedAtMs: 0,
});

interface Found {
  box: { x: number; y: number; w: number; h: number };
  score: number;
  /** left_eye, right_eye (frame pixels) and their visibility. */
  kp: Array<Point & { v: number }>;
}

/** YOLOv8-pose decode with the project's NMS, then letterbox inversion to frame pixels. */
function decode(out: ort.Tensor, g: Geometry, minScore = 0.5): Found[] {
  const [, rows, N] = out.dims;
  expect(rows).toBe(4 + 1 + 3 * KEYPOINTS.length);
  const d = out.data as Float32Array;
  const at = (r: number, n: number): number => d[r * N + n];
  const cands: Array<Candidate & { n: number }> = [];
  for (let n = 0; n < N; n++) {
    if (at(4, n) < minScore) continue;
    const [cx, cy, w, h] = [at(0, n), at(1, n), at(2, n), at(3, n)];
    cands.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score: at(4, n), cls: 0, n });
  }
  return (nms(cands, 0.45, 10, true) as Array<Candidate & { n: number }>).map((c) => {
    const [x, y, w, h] = toSource(g, c.x1, c.y1, c.x2 - c.x1, c.y2 - c.y1);
    const kp = KEYPOINTS.map((_, k) => {
      const [kx, ky] = toSource(g, at(5 + 3 * k, c.n), at(6 + 3 * k, c.n), 0, 0);
      return { x: kx, y: ky, v: at(7 + 3 * k, c.n) };
    });
    return { box: { x, y, w, h }, score: c.score, kp };
  });
}

/** Pairs each expected face with the detection nearest its box centre. */
function expectFaces(found: Found[], faces: FaceSpec[], tolerance: number, what: string): void {
  expect(found, `${what}: number of faces`).toHaveLength(faces.length);
  for (const [i, f] of faces.entries()) {
    const want = faceGeometry(f);
    const cx = want.box.x + want.box.w / 2;
    const cy = want.box.y + want.box.h / 2;
    const got = found.reduce((a, b) =>
      Math.hypot(b.box.x + b.box.w / 2 - cx, b.box.y + b.box.h / 2 - cy) <
      Math.hypot(a.box.x + a.box.w / 2 - cx, a.box.y + a.box.h / 2 - cy)
        ? b
        : a,
    );
    const where = `${what} face ${i} ${JSON.stringify(want.box)}`;
    for (const k of ['x', 'y', 'w', 'h'] as const)
      expect(Math.abs(got.box[k] - want.box[k]), `${where}: box ${k} ${got.box[k]}`).toBeLessThan(tolerance);
    for (const [k, eye] of [want.leftEye, want.rightEye].entries()) {
      expect(Math.abs(got.kp[k].x - eye.x), `${where}: ${KEYPOINTS[k]} x`).toBeLessThan(tolerance);
      expect(Math.abs(got.kp[k].y - eye.y), `${where}: ${KEYPOINTS[k]} y`).toBeLessThan(tolerance);
      const covered = f.covered === (k === 0 ? 'left' : 'right');
      if (covered) expect(got.kp[k].v, `${where}: covered ${KEYPOINTS[k]} visibility`).toBeLessThan(0.1);
      else expect(got.kp[k].v, `${where}: open ${KEYPOINTS[k]} visibility`).toBeGreaterThan(0.9);
    }
    // The subject's left eye is at the larger image x.
    expect(got.kp[0].x).toBeGreaterThan(got.kp[1].x);
  }
}

/** Random frames with 0..3 faces obeying the generator's rules (sizes, border, gaps). */
function randomFrames(seed: number, count: number): FrameSpec[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const out: FrameSpec[] = [];
  for (let n = 0; n < count; n++) {
    const want = n % 4;
    const faces: FaceSpec[] = [];
    for (let tries = 0; faces.length < want && tries < 500; tries++) {
      const size = MIN_FACE_SIZE + Math.floor(rand() * (want === 3 ? 100 : MAX_FACE_SIZE - MIN_FACE_SIZE + 1));
      const h = Math.round(size * 1.25);
      const face: FaceSpec = {
        x: 4 + Math.floor(rand() * (FRAME_WIDTH - 8 - size)),
        y: 4 + Math.floor(rand() * (FRAME_HEIGHT - 8 - h)),
        size,
        leftClass: pick(EYE_LABELS),
        rightClass: pick(EYE_LABELS),
        ...(rand() < 0.3 ? { covered: pick(['left', 'right'] as const) } : {}),
      };
      try {
        checkFrameSpec({ faces: [...faces, face] });
        faces.push(face);
      } catch {
        // overlaps or too close: draw another
      }
    }
    expect(faces).toHaveLength(want);
    out.push({ faces });
  }
  return out;
}

describe('eyes demo models (models/demo-eyes)', () => {
  let regenerated: string;

  beforeAll(async () => {
    regenerated = await mkdtemp(path.join(os.tmpdir(), 'eyes-demo-'));
    await makeEyesDemo(regenerated);
  });
  afterAll(async () => {
    if (regenerated) await rm(regenerated, { recursive: true, force: true });
  });

  it('regenerates byte-identical models, manifests and answers, and pixel-identical samples', async () => {
    for (const f of [
      'face/model.onnx',
      'face/manifest.yaml',
      'eye-condition/model.onnx',
      'eye-condition/manifest.yaml',
      'samples/answers.json',
    ]) {
      const [a, b] = await Promise.all([readFile(path.join(committed, f)), readFile(path.join(regenerated, f))]);
      expect(a.equals(b), `${f} differs from a fresh generation: run npm run make-demo:eyes`).toBe(true);
    }
    const names = (await readdir(path.join(committed, 'samples'))).filter((n) => n.endsWith('.png')).sort();
    expect(names).toEqual((await readdir(path.join(regenerated, 'samples'))).filter((n) => n.endsWith('.png')).sort());
    expect(names).toHaveLength(sampleSequence().length);
    for (const n of names) {
      const [a, b] = await Promise.all(
        [committed, regenerated].map((dir) =>
          sharp(path.join(dir, 'samples', n))
            .raw()
            .toBuffer({ resolveWithObject: true }),
        ),
      );
      expect(a.info).toMatchObject({ width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 });
      expect(a.data.equals(b.data), `${n} pixels differ`).toBe(true);
    }
  });

  it('has manifests whose sha256 match their models', async () => {
    const face = parse(await readFile(path.join(committed, 'face/manifest.yaml'), 'utf8'));
    const eye = parse(await readFile(path.join(committed, 'eye-condition/manifest.yaml'), 'utf8'));
    for (const [dir, m] of [
      ['face', face],
      ['eye-condition', eye],
    ] as const) {
      expect(m.sha256).toBe(
        createHash('sha256')
          .update(await readFile(path.join(committed, dir, 'model.onnx')))
          .digest('hex'),
      );
    }
    expect(face).toMatchObject({
      task: 'detect',
      privacy: 'person',
      input: { name: 'image', width: FACE_INPUT_WIDTH, height: FACE_INPUT_HEIGHT, resize: 'letterbox' },
      output: { name: 'output0' },
      labels: ['face'],
      detect: { format: 'yolov8', keypoints: [...KEYPOINTS] },
    });
    expect(eye).toMatchObject({
      task: 'classify',
      input: { name: 'image', width: EYE_INPUT_SIZE, height: EYE_INPUT_SIZE, resize: 'stretch' },
      output: { name: 'probs' },
      labels: [...EYE_LABELS],
      classify: { outputs: 'probabilities' },
    });
    // The input sections are valid as they stand for today's manifest schema.
    expect(() => inputSchema.parse(face.input)).not.toThrow();
    expect(() => inputSchema.parse(eye.input)).not.toThrow();
  });

  it('refuses frame specs the detector cannot promise answers for, naming the face', () => {
    const f: FaceSpec = { x: 100, y: 100, size: 100, leftClass: 'healthy', rightClass: 'healthy' };
    expect(() => checkFrameSpec({ faces: [{ ...f, size: 40 }] })).toThrow(/face 0: size 40/);
    expect(() => checkFrameSpec({ faces: [{ ...f, x: 2 }] })).toThrow(/face 0: box .* inside/);
    expect(() => checkFrameSpec({ faces: [f, { ...f, x: 205 }] })).toThrow(/faces 0 and 1 .* apart/);
    expect(() => checkFrameSpec({ faces: [{ ...f, x: 10.5 }] })).toThrow(/face 0: x must be an integer/);
    expect(() => checkFrameSpec({ faces: [f, { ...f, x: 208 }] })).not.toThrow();
  });

  describe('face detector (onnxruntime CPU)', () => {
    let session: ort.InferenceSession;
    let pre: Preprocessor;
    beforeAll(async () => {
      session = await ort.InferenceSession.create(path.join(committed, 'face/model.onnx'), { executionProviders: ['cpu'] });
      const manifest = parse(await readFile(path.join(committed, 'face/manifest.yaml'), 'utf8'));
      pre = new Preprocessor(inputSchema.parse(manifest.input));
    });
    afterAll(async () => {
      await session?.release();
    });

    const detect = async (rgb: Uint8Array, width = FRAME_WIDTH, height = FRAME_HEIGHT): Promise<Found[]> => {
      const p = pre.run(frameOf(rgb, width, height));
      const out = await session.run({ image: new ort.Tensor('float32', p.data as Float32Array, p.dims) });
      return decode(out.output0, p.geometry);
    };

    it('finds 0, 1, 2 and 3 faces at known places: boxes and eye centres exact after letterbox inversion', async () => {
      const frames: FrameSpec[] = [
        { faces: [] },
        { faces: [{ x: 241, y: 117, size: 157, leftClass: 'cataract', rightClass: 'healthy' }] },
        {
          faces: [
            { x: 90, y: 130, size: 150, leftClass: 'healthy', rightClass: 'conjunctivitis' },
            { x: 249, y: 131, size: 61, leftClass: 'stye', rightClass: 'healthy', covered: 'right' },
          ],
        },
        {
          faces: [
            { x: 4, y: 4, size: 60, leftClass: 'conjunctivitis', rightClass: 'stye', covered: 'left' },
            { x: 73, y: 101, size: 121, leftClass: 'healthy', rightClass: 'healthy' },
            { x: 433, y: 227, size: 199, leftClass: 'cataract', rightClass: 'stye' },
          ],
        },
      ];
      for (const [n, spec] of frames.entries()) expectFaces(await detect(renderFrame(spec)), spec.faces, 0.05, `frame ${n}`);
    });

    it('is exact on random layouts of 0-3 faces of 60-200 px, with covered eyes', async () => {
      for (const [n, spec] of randomFrames(0xe7e5, 24).entries()) {
        expectFaces(await detect(renderFrame(spec)), spec.faces, 0.05, `random frame ${n} ${JSON.stringify(spec)}`);
      }
    });

    it('sees no face in letterbox padding; other frame sizes: exact at scale 0.5, within 1 px at 1280x720', async () => {
      // 640x360 into 320x240: scale 0.5 again, 30 rows of padding above and below. 1280x720: scale
      // 0.25, the resize samples instead of averaging, so edges are known to a pixel.
      const cases = [
        { width: 640, height: 360, face: { x: 301, y: 51, size: 161 }, tolerance: 0.05 },
        { width: 1280, height: 720, face: { x: 603, y: 97, size: 317 }, tolerance: 1.001 },
        { width: 1280, height: 720, face: { x: 42, y: 281, size: 150 }, tolerance: 1.001 },
      ];
      for (const { width, height, face: at, tolerance } of cases) {
        const rgb = new Uint8Array(width * height * 3);
        for (let i = 0; i < rgb.length; i++) rgb[i] = COLOURS.backdrop[i % 3];
        const face: FaceSpec = { ...at, leftClass: 'healthy', rightClass: 'stye' };
        drawFace(rgb, width, face);
        expectFaces(await detect(rgb, width, height), [face], tolerance, `${width}x${height}`);
      }
    });

    it('detects each committed sample frame as answers.json says', async () => {
      const answers = JSON.parse(await readFile(path.join(committed, 'samples/answers.json'), 'utf8'));
      const sequence = sampleSequence();
      expect(answers.frames).toHaveLength(sequence.length);
      expect(answers.fps).toBe(5);
      for (const [n, a] of answers.frames.entries()) {
        // answers.json agrees with the sequence it was made from ...
        expect(a.faces.map((f: { box: unknown }) => f.box)).toEqual(sequence[n].faces.map((f) => faceGeometry(f).box));
        // ... and the model finds exactly that in the committed PNG.
        const { data } = await sharp(path.join(committed, 'samples', a.file))
          .raw()
          .toBuffer({ resolveWithObject: true });
        expectFaces(await detect(new Uint8Array(data)), sequence[n].faces, 0.05, a.file);
      }
    });
  });

  describe('eye classifier (onnxruntime CPU)', () => {
    let session: ort.InferenceSession;
    let pre: Preprocessor;
    const S = EYE_INPUT_SIZE;
    beforeAll(async () => {
      session = await ort.InferenceSession.create(path.join(committed, 'eye-condition/model.onnx'), { executionProviders: ['cpu'] });
      const manifest = parse(await readFile(path.join(committed, 'eye-condition/manifest.yaml'), 'utf8'));
      pre = new Preprocessor(inputSchema.parse(manifest.input));
    });
    afterAll(async () => {
      await session?.release();
    });

    /** The pipeline's crop: a square of side 0.35 x face width around the eye, from the full frame. */
    function crop(rgb: Uint8Array, centre: Point, faceWidth: number): Float32Array {
      const side = Math.round(EYE_CROP_SIZE * faceWidth);
      const x0 = Math.round(centre.x - side / 2);
      const y0 = Math.round(centre.y - side / 2);
      const out = new Uint8Array(side * side * 3);
      for (let y = 0; y < side; y++)
        out.set(rgb.subarray(((y0 + y) * FRAME_WIDTH + x0) * 3, ((y0 + y) * FRAME_WIDTH + x0 + side) * 3), y * side * 3);
      return Float32Array.from(pre.run(frameOf(out, side, side)).data);
    }

    const runBatch = async (crops: Float32Array[]): Promise<Float32Array[]> => {
      const data = new Float32Array(crops.length * 3 * S * S);
      for (const [i, c] of crops.entries()) data.set(c, i * 3 * S * S);
      const out = await session.run({ image: new ort.Tensor('float32', data, [crops.length, 3, S, S]) });
      expect(out.probs.dims).toEqual([crops.length, EYE_LABELS.length]);
      const p = out.probs.data as Float32Array;
      return crops.map((_, i) => p.slice(i * EYE_LABELS.length, (i + 1) * EYE_LABELS.length));
    };
    const argmax = (v: ArrayLike<number>): number => Array.from(v).reduce((best, x, i, a) => (x > a[best] ? i : best), 0);

    it('gives each eye its class from crops around the eye centres, batched equal to one by one', async () => {
      const faces: FaceSpec[] = [
        { x: 10, y: 20, size: 60, leftClass: 'cataract', rightClass: 'conjunctivitis' },
        { x: 90, y: 20, size: 61, leftClass: 'healthy', rightClass: 'stye', covered: 'left' },
        { x: 170, y: 20, size: 200, leftClass: 'stye', rightClass: 'healthy' },
        { x: 390, y: 21, size: 133, leftClass: 'conjunctivitis', rightClass: 'cataract', covered: 'right' },
      ];
      const rgb = renderFrame({ faces });
      const crops: Float32Array[] = [];
      const want: Array<EyeLabel | 'covered'> = [];
      for (const f of faces) {
        const g = faceGeometry(f);
        // Keypoints off by up to a pixel must not change the answer.
        for (const [dx, dy] of [
          [0, 0],
          [1, 0],
          [-1, 0],
          [0, 1],
          [0, -1],
          [1, 1],
          [-1, -1],
        ]) {
          crops.push(crop(rgb, { x: g.leftEye.x + dx, y: g.leftEye.y + dy }, g.box.w));
          want.push(f.covered === 'left' ? 'covered' : f.leftClass);
          crops.push(crop(rgb, { x: g.rightEye.x + dx, y: g.rightEye.y + dy }, g.box.w));
          want.push(f.covered === 'right' ? 'covered' : f.rightClass);
        }
      }
      const batched = await runBatch(crops);
      for (const [i, probs] of batched.entries()) {
        const [single] = await runBatch([crops[i]]);
        expect(Array.from(probs), `crop ${i}: batched vs alone`).toEqual(Array.from(single));
        expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        if (want[i] === 'covered') {
          // A closed eye shows no iris: no class is preferred.
          for (const p of probs) expect(p, `crop ${i} (covered)`).toBeCloseTo(0.25, 3);
        } else {
          expect(EYE_LABELS[argmax(probs)], `crop ${i}`).toBe(want[i]);
          expect(Math.max(...probs), `crop ${i}`).toBeGreaterThan(0.95);
        }
      }
    });

    it('classifies a crop of pure iris colour by the nearest prototype, and ignores skin and sclera', async () => {
      const solid = (c: readonly number[]): Float32Array => {
        const x = new Float32Array(3 * S * S);
        for (let k = 0; k < 3; k++) x.fill(c[k] / 255, k * S * S, (k + 1) * S * S);
        return x;
      };
      const probs = await runBatch([...EYE_LABELS.map((l) => solid(IRIS[l])), solid(COLOURS.skin), solid(COLOURS.sclera)]);
      for (const [k, l] of EYE_LABELS.entries()) {
        expect(EYE_LABELS[argmax(probs[k])]).toBe(l);
        expect(probs[k][k]).toBeGreaterThan(0.99);
      }
      for (const p of probs.slice(EYE_LABELS.length)) for (const v of p) expect(v).toBeCloseTo(0.25, 3);
    });
  });
});
