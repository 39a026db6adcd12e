import { DaemonError } from '../errors.js';
import type { Candidate, OutputTensor } from './outputs.js';
import type { AnchorSpec, DetectSpec } from './manifest.js';

/**
 * Anchor-based detectors as the zoos ship them (BlazeFace, SSD, RetinaFace, SCRFD, YuNet): the
 * model answers per anchor of a fixed grid, relative to that anchor; the grid is written in the
 * manifest (detect.anchors) and built here once, at load. Decoding reads only anchors whose score
 * passes the threshold (compared in logit space for logits, so a frame costs one pass over the
 * scores plus the survivors), and keypoints only for the boxes NMS keeps.
 */

/** One feature map of the grid: consecutive levels with the same stride share it. */
export interface GridLevel {
  stride: number;
  rows: number;
  cols: number;
  /** Anchor sides (input pixels) per cell, in order; undefined entries: fixed size (the whole input). */
  sizes: (number | undefined)[];
  count: number;
}

export interface AnchorGrid {
  levels: GridLevel[];
  count: number;
  /** Per anchor, input pixels: centre, size, stride. */
  cx: Float32Array;
  cy: Float32Array;
  w: Float32Array;
  h: Float32Array;
  stride: Float32Array;
}

/** The levels of the grid, merged as MediaPipe's SSD anchor generator does (same stride in a row: one map). */
export function gridLevels(a: AnchorSpec, inputW: number, inputH: number): GridLevel[] {
  const levels: GridLevel[] = [];
  a.strides.forEach((stride, i) => {
    const perCell = a.sizes ? a.sizes[i].length : Array.isArray(a.perCell) ? a.perCell[i] : (a.perCell ?? 1);
    const sizes: (number | undefined)[] = a.sizes ? a.sizes[i] : Array.from({ length: perCell }, () => undefined);
    const [rows, cols] = a.featureMaps?.[i] ?? [Math.ceil(inputH / stride), Math.ceil(inputW / stride)];
    const last = levels[levels.length - 1];
    if (last && last.stride === stride && last.rows === rows && last.cols === cols && i > 0 && a.strides[i - 1] === stride) {
      last.sizes.push(...sizes);
      last.count = rows * cols * last.sizes.length;
    } else levels.push({ stride, rows, cols, sizes: [...sizes], count: rows * cols * sizes.length });
  });
  return levels;
}

export function anchorGrid(a: AnchorSpec, inputW: number, inputH: number): AnchorGrid {
  const levels = gridLevels(a, inputW, inputH);
  const count = levels.reduce((s, l) => s + l.count, 0);
  const g: AnchorGrid = {
    levels,
    count,
    cx: new Float32Array(count),
    cy: new Float32Array(count),
    w: new Float32Array(count),
    h: new Float32Array(count),
    stride: new Float32Array(count),
  };
  let n = 0;
  for (const l of levels) {
    for (let y = 0; y < l.rows; y++) {
      for (let x = 0; x < l.cols; x++) {
        for (const size of l.sizes) {
          g.cx[n] = (x + a.offset) * l.stride;
          g.cy[n] = (y + a.offset) * l.stride;
          g.w[n] = size ?? inputW;
          g.h[n] = size ?? inputH;
          g.stride[n] = l.stride;
          n++;
        }
      }
    }
  }
  return g;
}

/** A human description of the grid for error messages: "strides 8, 16 (16x16 x 2 + 8x8 x 6)". */
export function describeGrid(levels: readonly GridLevel[]): string {
  return `strides ${levels.map((l) => l.stride).join(', ')}: ${levels.map((l) => `${l.rows}x${l.cols} x ${l.sizes.length}`).join(' + ')}`;
}

/** Most anchors decoded per frame (the best-scoring): what NMS sees is bounded whatever the model answers. */
export const PRE_NMS_LIMIT = 1000;

const logit = (p: number) => (p <= 0 ? -Infinity : p >= 1 ? Infinity : Math.log(p / (1 - p)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const clamp01 = (x: number) => Math.min(Math.max(x, 0), 1);

/** Rows x values of a [1, N, K] or [N, K] tensor. */
function rowsOf(t: OutputTensor): { n: number; k: number } {
  const k = t.dims[t.dims.length - 1];
  return { n: k > 0 ? t.data.length / k : 0, k };
}

export class AnchorDecoder {
  readonly grid: AnchorGrid;
  private readonly spec: DetectSpec;
  private readonly classes: number;
  private readonly inputW: number;
  private readonly inputH: number;

  constructor(spec: DetectSpec, classes: number, inputW: number, inputH: number) {
    if (!spec.anchors || !spec.encoding) throw new Error('detect.anchors and detect.encoding are checked by the manifest schema');
    this.spec = spec;
    this.classes = classes;
    this.inputW = inputW;
    this.inputH = inputH;
    this.grid = anchorGrid(spec.anchors, inputW, inputH);
  }

  /** Per-anchor scratch: best class score (after the activation) and class, reused frame to frame. */
  private best = new Float64Array(0);
  private bestCls = new Int32Array(0);
  private picked = new Int32Array(0);
  private sorted = new Float64Array(0);

  /**
   * Anchors above the threshold, decoded to input-pixel corners; `anchor` is the grid index. At
   * most PRE_NMS_LIMIT of them, the best: a frame where thousands of anchors pass (a bad
   * threshold, a flat image on a model with probabilities near 0.5) then costs a bounded time.
   */
  candidates(boxes: OutputTensor, scores: OutputTensor, objectness?: OutputTensor): Candidate[] {
    const { scoreThreshold, scoreType, background } = this.spec;
    const g = this.grid;
    const N = g.count;
    const sv = rowsOf(scores);
    const bv = rowsOf(boxes);
    const ov = objectness ? rowsOf(objectness).n : N;
    if (sv.n !== N || bv.n !== N || ov !== N)
      throw new DaemonError(
        'MODEL_MISMATCH',
        `detect.anchors: the grid has ${N} anchors, the model answered ${bv.n} boxes and ${sv.n} scores` +
          `${objectness ? ` and ${ov} objectness values` : ''} (the manifest's anchors do not fit)`,
      );
    if (this.best.length < N) {
      this.best = new Float64Array(N);
      this.bestCls = new Int32Array(N);
      this.picked = new Int32Array(N);
    }
    const first = background ? 1 : 0;
    const C = this.classes;
    // A sigmoid is monotonic: logits are compared against logit(threshold), and only survivors pay for exp().
    const thr = scoreType === 'logits' && !objectness ? logit(scoreThreshold) : scoreThreshold;
    const s = scores.data;
    const obj = objectness?.data;
    const geometric = this.spec.objectnessCombine === 'geometric-mean';
    let count = 0;
    for (let n = 0; n < N; n++) {
      const o = n * sv.k;
      let best = -Infinity;
      let cls = 0;
      for (let c = 0; c < C; c++) {
        const v = s[o + first + c];
        if (v > best) [best, cls] = [v, c];
      }
      let score: number;
      if (scoreType === 'softmax') {
        let max = -Infinity;
        for (let c = 0; c < sv.k; c++) max = Math.max(max, s[o + c]);
        let sum = 0;
        for (let c = 0; c < sv.k; c++) sum += Math.exp(s[o + c] - max);
        score = Math.exp(best - max) / sum;
        if (!obj && !(score >= thr)) continue;
      } else if (obj) score = scoreType === 'logits' ? sigmoid(best) : best;
      else {
        if (!(best >= thr)) continue;
        score = scoreType === 'logits' ? sigmoid(best) : best;
      }
      if (obj) {
        // YuNet: class and objectness heads, each clamped to 0..1 (OpenCV's FaceDetectorYN), then combined.
        const o = clamp01(scoreType === 'logits' ? sigmoid(obj[n]) : obj[n]);
        const p = clamp01(score) * o;
        score = geometric ? Math.sqrt(p) : p;
        if (!(score >= thr)) continue;
      }
      this.best[n] = score;
      this.bestCls[n] = cls;
      this.picked[count++] = n;
    }
    // Over the limit: keep the PRE_NMS_LIMIT best (the limit-th best score found by one native sort).
    let floor = -Infinity;
    if (count > PRE_NMS_LIMIT) {
      if (this.sorted.length < count) this.sorted = new Float64Array(N);
      const sc = this.sorted.subarray(0, count);
      for (let i = 0; i < count; i++) sc[i] = this.best[this.picked[i]];
      sc.sort();
      floor = sc[count - PRE_NMS_LIMIT];
    }
    const b = boxes.data;
    const out: Candidate[] = [];
    for (let i = 0; i < count && out.length < PRE_NMS_LIMIT; i++) {
      const n = this.picked[i];
      const score = this.best[n];
      if (score < floor) continue;
      const [x1, y1, x2, y2] = this.box(n, b, n * bv.k);
      out.push({ x1, y1, x2, y2, score, cls: this.bestCls[n], anchor: n });
    }
    return out;
  }

  private box(n: number, b: ArrayLike<number>, o: number): [number, number, number, number] {
    const g = this.grid;
    const [v0, v1] = this.spec.variances;
    switch (this.spec.encoding) {
      case 'offsets': {
        const ux = g.w[n] / this.inputW;
        const uy = g.h[n] / this.inputH;
        const cx = g.cx[n] + b[o] * ux;
        const cy = g.cy[n] + b[o + 1] * uy;
        const w = b[o + 2] * ux;
        const h = b[o + 3] * uy;
        return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
      }
      case 'center-size': {
        const cx = g.cx[n] + b[o] * v0 * g.w[n];
        const cy = g.cy[n] + b[o + 1] * v0 * g.h[n];
        const w = g.w[n] * Math.exp(b[o + 2] * v1);
        const h = g.h[n] * Math.exp(b[o + 3] * v1);
        return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
      }
      case 'stride-exp': {
        const s = g.stride[n];
        const cx = g.cx[n] + b[o] * s;
        const cy = g.cy[n] + b[o + 1] * s;
        const w = Math.exp(b[o + 2]) * s;
        const h = Math.exp(b[o + 3]) * s;
        return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
      }
      default: {
        const s = g.stride[n];
        return [g.cx[n] - b[o] * s, g.cy[n] - b[o + 1] * s, g.cx[n] + b[o + 2] * s, g.cy[n] + b[o + 3] * s];
      }
    }
  }

  /** Keypoint k of anchor n in input pixels, its raw values at data[o], data[o + 1] (the box centre's encoding). */
  keypoint(n: number, data: ArrayLike<number>, o: number): [number, number] {
    const g = this.grid;
    switch (this.spec.encoding) {
      case 'offsets':
        return [g.cx[n] + (data[o] * g.w[n]) / this.inputW, g.cy[n] + (data[o + 1] * g.h[n]) / this.inputH];
      case 'center-size': {
        const v = this.spec.variances[0];
        return [g.cx[n] + data[o] * v * g.w[n], g.cy[n] + data[o + 1] * v * g.h[n]];
      }
      default:
        return [g.cx[n] + data[o] * g.stride[n], g.cy[n] + data[o + 1] * g.stride[n]];
    }
  }
}
