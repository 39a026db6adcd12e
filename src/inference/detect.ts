import { AnchorDecoder } from './anchors.js';
import { MAX_DETECTIONS, screen } from './detect-guard.js';
import { readKeypoints } from './keypoints.js';
import type { Candidate, DetectOutputs } from './outputs.js';
import type { DetectSpec } from './manifest.js';
import { type Geometry, toSource } from './preprocess.js';
import type { Detection } from './types.js';
import { must } from '../errors.js';

/**
 * Detection postprocessing: decode the model's output format into candidate boxes (model-input
 * pixels, x1 y1 x2 y2), keep those above the score threshold, run NMS, then map the survivors back
 * to source pixels through the letterbox/crop geometry the frame was preprocessed with.
 */

export type { Candidate, DetectOutputs, OutputTensor } from './outputs.js';

export function iou(a: Candidate, b: Candidate): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

/** Greedy NMS, best score first (ties: lower class, then earlier candidate). */
/** `seen.examined` (when given): how many candidates it looked at before it stopped at maxDetections. */
export function nms(
  cands: Candidate[],
  iouThreshold: number,
  maxDetections: number,
  classAware: boolean,
  seen?: { examined: number },
): Candidate[] {
  const order = cands.map((_, i) => i).sort((a, b) => cands[b].score - cands[a].score || cands[a].cls - cands[b].cls || a - b);
  const kept: Candidate[] = [];
  if (seen) seen.examined = 0;
  for (const i of order) {
    if (seen) seen.examined++;
    const c = cands[i];
    let suppressed = false;
    for (const k of kept) {
      if ((!classAware || k.cls === c.cls) && iou(k, c) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) {
      kept.push(c);
      if (kept.length >= maxDetections) break;
    }
  }
  return kept;
}

function corners(fmt: 'xyxy' | 'cxcywh', a: number, b: number, c: number, d: number): [number, number, number, number] {
  return fmt === 'xyxy' ? [a, b, c, d] : [a - c / 2, b - d / 2, a + c / 2, b + d / 2];
}

/** Reused per-anchor scratch, so a 8400-anchor YOLO output allocates nothing per frame. */

export class Detector {
  private readonly spec: DetectSpec;
  private anchors?: AnchorDecoder;
  private readonly classes: number;
  private best = new Float32Array(0);
  private bestCls = new Int32Array(0);
  /**
   * The last run's dropped boxes (detect-guard), and whether some of what the model found may be
   * missing from its detections: boxes dropped or capped, NMS stopped at maxDetections with
   * candidates left, or a box wholly outside the frame. Privacy hides the whole frame then.
   */
  last = { invalid: 0, capped: 0, incomplete: false };

  constructor(spec: DetectSpec, classes: number) {
    this.spec = spec;
    this.classes = classes;
  }

  private scratch(n: number): void {
    if (this.best.length < n) {
      this.best = new Float32Array(n);
      this.bestCls = new Int32Array(n);
    }
  }

  /** Candidates above the score threshold, in model-input pixels. */
  candidates(outputs: DetectOutputs, inputW: number, inputH: number): Candidate[] {
    const { format, scoreThreshold: thr } = this.spec;
    if (format === 'anchors') {
      if (!outputs.boxes || !outputs.scores) throw new Error('detect: anchors need the boxes and scores outputs');
      return this.decoder(inputW, inputH).candidates(outputs.boxes, outputs.scores, outputs.objectness);
    }
    const C = this.classes;
    const sx = this.spec.normalized ? inputW : 1;
    const sy = this.spec.normalized ? inputH : 1;
    const out: Candidate[] = [];
    if (format === 'yolov8') {
      const { data, dims } = must(outputs.main, 'the main output');
      const N = dims[2];
      this.scratch(N);
      const best = this.best;
      const bestCls = this.bestCls;
      best.fill(-Infinity, 0, N);
      // Class-major memory order: scan each class row contiguously. Only scores at or above the
      // threshold can make an anchor a candidate, so the rest are skipped against a constant
      // (no load of best[n]): the same best class for every anchor that passes.
      for (let c = 0; c < C; c++) {
        const row = (4 + c) * N;
        for (let n = 0; n < N; n++) {
          const s = data[row + n];
          if (s >= thr && s > best[n]) {
            best[n] = s;
            bestCls[n] = c;
          }
        }
      }
      for (let n = 0; n < N; n++) {
        if (best[n] < thr) continue;
        const [x1, y1, x2, y2] = corners('cxcywh', data[n] * sx, data[N + n] * sy, data[2 * N + n] * sx, data[3 * N + n] * sy);
        out.push({ x1, y1, x2, y2, score: best[n], cls: bestCls[n], anchor: n });
      }
    } else if (format === 'yolov5') {
      const { data, dims } = must(outputs.main, 'the main output');
      const N = dims[1];
      const stride = dims[2];
      for (let n = 0; n < N; n++) {
        const o = n * stride;
        const obj = data[o + 4];
        if (obj < thr) continue;
        let bs = -Infinity;
        let bc = 0;
        for (let c = 0; c < C; c++) {
          const s = data[o + 5 + c];
          if (s > bs) [bs, bc] = [s, c];
        }
        const score = obj * bs;
        if (score < thr) continue;
        const [x1, y1, x2, y2] = corners('cxcywh', data[o] * sx, data[o + 1] * sy, data[o + 2] * sx, data[o + 3] * sy);
        out.push({ x1, y1, x2, y2, score, cls: bc, anchor: n });
      }
    } else {
      const boxes = must(outputs.boxes, 'the boxes output').data;
      const scores = must(outputs.scores, 'the scores output').data;
      const N = must(outputs.boxes, 'the boxes output').dims[1];
      const per = must(outputs.boxes, 'the boxes output').dims[2]; // 4, or 4 + keypoint values
      for (let n = 0; n < N; n++) {
        let bs = -Infinity;
        let bc = 0;
        for (let c = 0; c < C; c++) {
          const s = scores[n * C + c];
          if (s > bs) [bs, bc] = [s, c];
        }
        if (bs < thr) continue;
        const b = n * per;
        const [x1, y1, x2, y2] = corners(this.spec.boxFormat, boxes[b] * sx, boxes[b + 1] * sy, boxes[b + 2] * sx, boxes[b + 3] * sy);
        out.push({ x1, y1, x2, y2, score: bs, cls: bc, anchor: n });
      }
    }
    return out;
  }

  /** The anchor grid, built once from the manifest at the first frame (it needs the input size). */
  private decoder(inputW: number, inputH: number): AnchorDecoder {
    this.anchors ??= new AnchorDecoder(this.spec, this.classes, inputW, inputH);
    return this.anchors;
  }

  run(outputs: DetectOutputs, labels: readonly string[], g: Geometry, inputW: number, inputH: number): Detection[] {
    // Every format's candidates pass detect-guard: drawable boxes only, at most MAX_CANDIDATES into NMS.
    const screened = screen(this.candidates(outputs, inputW, inputH));
    const max = Math.min(this.spec.maxDetections, MAX_DETECTIONS);
    const seen = { examined: 0 };
    const kept = nms(screened.candidates, this.spec.iouThreshold, max, this.spec.classAware, seen);
    // NMS stopped at the cap: the candidates it never looked at are counted as capped.
    const overCap = screened.candidates.length - seen.examined + screened.capped;
    const names = this.spec.keypoints;
    const at = { spec: this.spec, classes: this.classes, inputW, inputH, anchors: this.anchors };
    const detections = kept.map((c) => ({
      index: c.cls,
      label: labels[c.cls] ?? `class_${c.cls}`,
      score: c.score,
      box: sourceBox(g, c),
      // Inverted through the letterbox like the box (not clipped: a point may lie outside the
      // frame, and the crop code clips what it takes).
      ...(names && c.anchor !== undefined
        ? {
            keypoints: readKeypoints(at, outputs, c.anchor, c.score).map((p, k) => ({
              name: names[k],
              x: (p.x - g.offsetX) / g.scaleX,
              y: (p.y - g.offsetY) / g.scaleY,
              score: p.score,
            })),
          }
        : {}),
    }));
    const outside = detections.some((d) => d.box.w <= 0 || d.box.h <= 0);
    this.last = { invalid: screened.invalid, capped: overCap, incomplete: screened.invalid + overCap > 0 || outside };
    return detections;
  }
}

/** Model-input corners -> source-pixel {x, y, w, h}, clipped to the frame. */
export function sourceBox(g: Geometry, c: Pick<Candidate, 'x1' | 'y1' | 'x2' | 'y2'>): Detection['box'] {
  const [x, y, w, h] = toSource(g, c.x1, c.y1, c.x2 - c.x1, c.y2 - c.y1);
  const x1 = Math.min(Math.max(x, 0), g.srcWidth);
  const y1 = Math.min(Math.max(y, 0), g.srcHeight);
  const x2 = Math.min(Math.max(x + w, 0), g.srcWidth);
  const y2 = Math.min(Math.max(y + h, 0), g.srcHeight);
  return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
}
