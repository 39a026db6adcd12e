// Decode + NMS cost per frame of the anchor decoder (what the inference worker does after
// session.run): BlazeFace front (896 anchors over two heads, logits, 6 keypoints), an SCRFD-style
// 640x640 detector (16800 anchors over three heads, distances, 5 keypoints) and YuNet 2023 at
// 640x640 (8400 anchors over three heads, a separate objectness head, stride-exp, 5 keypoints). Each on a typical frame
// (one face: a dozen anchors over the threshold) and a worst case (every anchor over it), which
// bounds the cost: one pass over the anchors, at most PRE_NMS_LIMIT (1000) decoded, NMS stops at
// maxDetections.
//   npx tsx scripts/bench-decode.ts        (also a row of npm run bench)
import { type DetectOutputs, Detector, type OutputTensor } from '../src/inference/detect.js';
import { HeadJoiner } from '../src/inference/heads.js';
import { detectSchema } from '../src/inference/manifest.js';
import { geometryFor } from '../src/inference/preprocess.js';

export interface DecodeBenchRow {
  model: string;
  anchors: number;
  frame: 'typical' | 'worst';
  candidates: number;
  kept: number;
  medianMs: number;
  p99Ms: number;
}

/** Deterministic pseudo-random values in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const head = (rows: number, k: number, f: (i: number) => number): OutputTensor => ({
  data: Float32Array.from({ length: rows * k }, (_, i) => f(i)),
  dims: [1, rows, k],
});

interface Case {
  model: string;
  spec: object;
  input: number;
  /** Heads per role (rows, values per row), in manifest order. */
  heads: { boxes: [number, number][]; scores: [number, number][]; objectness?: [number, number][]; keypoints?: [number, number][] };
  /** Score of anchor i: typical or worst. */
  score: (worst: boolean, i: number, r: () => number) => number;
  box: (r: () => number, j: number) => number;
}

const CASES: Case[] = [
  {
    model: 'blazeface-front 128',
    spec: {
      format: 'anchors',
      boxes: ['r8', 'r16'],
      scores: ['s8', 's16'],
      scoreType: 'logits',
      anchors: { strides: [8, 16, 16, 16], perCell: 2 },
      encoding: 'offsets',
      keypoints: ['a', 'b', 'c', 'd', 'e', 'f'],
      scoreThreshold: 0.6,
      iouThreshold: 0.3,
      maxDetections: 10,
    },
    input: 128,
    heads: {
      boxes: [
        [512, 16],
        [384, 16],
      ],
      scores: [
        [512, 1],
        [384, 1],
      ],
    },
    // Typical: a face over a dozen neighbouring anchors, the rest far below (logit -6).
    score: (worst, i, r) => (worst ? 2 + r() : i >= 300 && i < 312 ? 2 + r() : -6 - r()),
    box: (r, j) => (j % 16 < 2 ? (r() - 0.5) * 4 : j % 16 < 4 ? 30 + r() * 4 : (r() - 0.5) * 20),
  },
  {
    model: 'scrfd-style 640',
    spec: {
      format: 'anchors',
      boxes: ['b8', 'b16', 'b32'],
      scores: ['s8', 's16', 's32'],
      keypointOutputs: ['k8', 'k16', 'k32'],
      anchors: { strides: [8, 16, 32], perCell: 2, offset: 0 },
      encoding: 'distance',
      keypoints: ['a', 'b', 'c', 'd', 'e'],
      scoreThreshold: 0.5,
      iouThreshold: 0.4,
      maxDetections: 100,
    },
    input: 640,
    heads: {
      boxes: [
        [12800, 4],
        [3200, 4],
        [800, 4],
      ],
      scores: [
        [12800, 1],
        [3200, 1],
        [800, 1],
      ],
      keypoints: [
        [12800, 10],
        [3200, 10],
        [800, 10],
      ],
    },
    score: (worst, i, r) => (worst ? 0.5 + r() / 2 : i >= 5000 && i < 5012 ? 0.8 + r() / 10 : r() * 0.1),
    box: (r) => 1 + r() * 3,
  },
  {
    model: 'yunet-2023 640',
    spec: {
      format: 'anchors',
      scores: ['c8', 'c16', 'c32'],
      objectness: ['o8', 'o16', 'o32'],
      objectnessCombine: 'geometric-mean',
      boxes: ['b8', 'b16', 'b32'],
      keypointOutputs: ['k8', 'k16', 'k32'],
      anchors: { strides: [8, 16, 32], perCell: 1, offset: 0 },
      encoding: 'stride-exp',
      keypoints: ['a', 'b', 'c', 'd', 'e'],
      scoreThreshold: 0.9,
      iouThreshold: 0.3,
      maxDetections: 100,
    },
    input: 640,
    heads: {
      boxes: [
        [6400, 4],
        [1600, 4],
        [400, 4],
      ],
      scores: [
        [6400, 1],
        [1600, 1],
        [400, 1],
      ],
      objectness: [
        [6400, 1],
        [1600, 1],
        [400, 1],
      ],
      keypoints: [
        [6400, 10],
        [1600, 10],
        [400, 10],
      ],
    },
    // Class and objectness alike (each drawn with this): the score is their geometric mean.
    score: (worst, i, r) => (worst ? 0.95 + r() / 20 : i >= 3000 && i < 3012 ? 0.95 + r() / 20 : r() * 0.1),
    // Centre offsets in cells, then log sizes in strides.
    box: (r, j) => (j % 4 < 2 ? r() : r() * 2),
  },
];

function measure(run: () => void, n: number): { median: number; p99: number } {
  for (let i = 0; i < Math.min(50, n); i++) run();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    run();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(n / 2)], p99: ms[Math.min(n - 1, Math.floor(n * 0.99))] };
}

export function benchDecode(iterations = 300): DecodeBenchRow[] {
  const rows: DecodeBenchRow[] = [];
  for (const c of CASES) {
    const spec = detectSchema.parse(c.spec);
    const g = geometryFor({ width: c.input, height: c.input, resize: 'letterbox' }, 640, 480);
    for (const worst of [false, true]) {
      const r = rng(42);
      let n = 0;
      const scores = c.heads.scores.map(([rows_, k]) => head(rows_, k, () => c.score(worst, n++, r)));
      let o = 0;
      const objectness = c.heads.objectness?.map(([rows_, k]) => head(rows_, k, () => c.score(worst, o++, r)));
      const boxes = c.heads.boxes.map(([rows_, k]) => head(rows_, k, (j) => c.box(r, j)));
      const kps = c.heads.keypoints?.map(([rows_, k]) => head(rows_, k, () => r() * 2));
      const det = new Detector(spec, 1);
      const joiners = { b: new HeadJoiner(), s: new HeadJoiner(), o: new HeadJoiner(), k: new HeadJoiner() };
      // What the worker does per frame after session.run: join the heads, decode, NMS, keypoints.
      const frame = (): number => {
        const out: DetectOutputs = {
          boxes: joiners.b.join(boxes, 'rows'),
          scores: joiners.s.join(scores, 'rows'),
          ...(objectness ? { objectness: joiners.o.join(objectness, 'rows') } : {}),
          ...(kps ? { keypoints: joiners.k.join(kps, 'rows') } : {}),
        };
        return det.run(out, ['face'], g, c.input, c.input).length;
      };
      const kept = frame();
      const candidates = det.candidates(
        {
          boxes: joiners.b.join(boxes, 'rows'),
          scores: joiners.s.join(scores, 'rows'),
          ...(objectness ? { objectness: joiners.o.join(objectness, 'rows') } : {}),
        },
        c.input,
        c.input,
      ).length;
      const t = measure(frame, iterations);
      rows.push({ model: c.model, anchors: n, frame: worst ? 'worst' : 'typical', candidates, kept, medianMs: t.median, p99Ms: t.p99 });
    }
  }
  return rows;
}

export function formatDecodeRows(rows: readonly DecodeBenchRow[]): string {
  const head_ = 'anchor decode + NMS (worker, per frame)   anchors  frame     to NMS (max 1000)  kept   median ms   p99 ms';
  return [
    head_,
    ...rows.map((r) =>
      [
        r.model.padEnd(41),
        String(r.anchors).padStart(7),
        ` ${r.frame.padEnd(8)}`,
        String(r.candidates).padStart(18),
        String(r.kept).padStart(5),
        r.medianMs.toFixed(3).padStart(11),
        r.p99Ms.toFixed(3).padStart(8),
      ].join(' '),
    ),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(formatDecodeRows(benchDecode()));
