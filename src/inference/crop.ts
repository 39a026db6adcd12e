import ort from 'onnxruntime-node';
import { channelsOf, type Frame } from '../capture/frame.js';
import type { Cam, FeatureTensor } from './cam.js';
import { cropOutputs, probabilities, regressValues } from './classify.js';
import { argmax, type ExplainItem, type Heatmap, Occlusion } from './explain.js';
import type { ModelPackage } from './package.js';
import { Preprocessor, type TensorData } from './preprocess.js';
import type { Box, CropOutputs, LatencyMs } from './types.js';

/**
 * The second stage of a pipeline, in the inference worker: crops taken from the full-resolution
 * frame, each checked by the quality gate (shorter side, variance of the Laplacian) and resized to
 * the model's input with the model's own preprocessing; then every crop that passed goes through
 * the model in one session.run when its batch dimension is dynamic, one at a time otherwise.
 */

export interface QualityGate {
  minSidePx: number;
  /** Variance of the Laplacian of the crop's grey (0..255); 0 turns the blur gate off. */
  minSharpness: number;
}

export interface CropRequest {
  /** Crop rectangles in the coordinates of the frame the detector saw (the camera's full resolution). */
  rects: Box[];
  /**
   * Source pixels per frame pixel: 1 when `source` is that frame; e.g. 2 when the crops come from a
   * frame twice as large (a full-resolution branch beside a scaled detector input).
   */
  scale?: number;
  quality: QualityGate;
  /** auto: batched when the model's batch dimension is dynamic; one-by-one: always one crop per run (tests compare the two). */
  batch?: 'auto' | 'one-by-one';
  /**
   * Explain the classified crops (heatmaps, by the manifest's explain.method): true: each for its
   * best class; a list: the class to explain per rect (null: not that one).
   */
  explain?: true | (number | null)[];
}

export interface CropResult {
  /** The rectangle actually taken, clipped to the frame, in frame pixels (integers in source pixels). */
  box: Box;
  /** Its shorter side in source pixels. */
  sidePx: number;
  /** Variance of the Laplacian of its grey. */
  sharpness: number;
  /** Why it was not classified: too small (or outside the frame), or too blurred. */
  skipped?: 'small' | 'blurred';
  /** Probabilities per label, or a regress model's values, in the manifest's label order (absent when skipped). */
  scores?: number[];
  /** Where the model looked (CropRequest.explain). */
  heatmap?: Heatmap;
}

export interface CropsInference {
  task: 'crops';
  crops: CropResult[];
  labels: string[];
  /** How the crops' scores read: classes, multi-label, or regress values. */
  outputs: CropOutputs;
  /** Runs of the model (1 when batched). */
  runs: number;
  /** Extra runs of the model for the explanations (0 for CAM: its feature map comes with the scores), and the time they took (ms). */
  explain?: { runs: number; ms: number };
  latencyMs: LatencyMs;
}

/**
 * The part of `frame` under `rect` (frame pixels times `scale`), as a frame sharing its memory, with
 * its top-left corner in source pixels; undefined if empty.
 */
export function cropView(frame: Frame, rect: Box, scale = 1): { view: Frame; x0: number; y0: number } | undefined {
  const x0 = Math.max(0, Math.round(rect.x * scale));
  const y0 = Math.max(0, Math.round(rect.y * scale));
  const x1 = Math.min(frame.width, Math.round((rect.x + rect.w) * scale));
  const y1 = Math.min(frame.height, Math.round((rect.y + rect.h) * scale));
  if (x1 <= x0 || y1 <= y0) return undefined;
  const ch = channelsOf(frame.format);
  const start = y0 * frame.stride + x0 * ch;
  const end = (y1 - 1) * frame.stride + x1 * ch;
  return { view: { ...frame, width: x1 - x0, height: y1 - y0, data: frame.data.subarray(start, end), name: undefined }, x0, y0 };
}

/**
 * Variance of the 4-neighbour Laplacian of the grey image (BT.601 luma, 0..255): a sharp crop has
 * strong edges and a large variance, a blurred one a small variance. 0 for crops under 3x3.
 */
export function sharpness(view: Frame): number {
  const { width: W, height: H, stride, data, format } = view;
  if (W < 3 || H < 3) return 0;
  const ch = channelsOf(format);
  const [r, g, b] = format === 'BGR' || format === 'BGRA' ? [2, 1, 0] : [0, 1, 2];
  const grey = new Float32Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0, o = y * stride; x < W; x++, o += ch)
      grey[y * W + x] = ch === 1 ? data[o] : 0.299 * data[o + r] + 0.587 * data[o + g] + 0.114 * data[o + b];
  }
  let sum = 0;
  let sq = 0;
  const n = (W - 2) * (H - 2);
  for (let y = 1; y < H - 1; y++) {
    for (let x = 1; x < W - 1; x++) {
      const i = y * W + x;
      const l = grey[i - 1] + grey[i + 1] + grey[i - W] + grey[i + W] - 4 * grey[i];
      sum += l;
      sq += l * l;
    }
  }
  const mean = sum / n;
  return sq / n - mean * mean;
}

/** Whether the model's first input dimension is symbolic (any batch size). */
export function dynamicBatch(session: ort.InferenceSession, inputName: string): boolean {
  return fixedBatch(session, inputName) === undefined;
}

/** The model's batch size when its first input dimension is a number; undefined when it is symbolic. */
export function fixedBatch(session: ort.InferenceSession, inputName: string): number | undefined {
  const meta = session.inputMetadata.find((m) => m.name === inputName);
  const b = meta?.isTensor ? meta.shape[0] : 1;
  return typeof b !== 'number' || b < 0 ? undefined : b;
}

export class CropClassifier {
  private readonly pkg: ModelPackage;
  private readonly session: ort.InferenceSession;
  private readonly output: string;
  private readonly pre: Preprocessor;
  private readonly outputs: CropOutputs;
  private occlusion: Occlusion | undefined;
  private readonly cam?: Cam;
  readonly batched: boolean;

  constructor(pkg: ModelPackage, session: ort.InferenceSession, output: string, cam?: Cam) {
    this.pkg = pkg;
    this.session = session;
    this.output = output;
    this.cam = cam;
    this.pre = new Preprocessor(pkg.manifest.input);
    this.batched = dynamicBatch(session, pkg.manifest.input.name);
    this.outputs = cropOutputs(pkg.manifest, pkg.labels);
  }

  async run(source: Frame, req: CropRequest): Promise<CropsInference> {
    const t0 = performance.now();
    const scale = req.scale ?? 1;
    const { minSidePx, minSharpness } = req.quality;
    const crops: CropResult[] = [];
    const inputs: TensorData[] = [];
    const which: number[] = [];
    for (const rect of req.rects) {
      const cut = cropView(source, rect, scale);
      if (!cut) {
        crops.push({ box: { x: rect.x, y: rect.y, w: 0, h: 0 }, sidePx: 0, sharpness: 0, skipped: 'small' });
        continue;
      }
      const { view } = cut;
      const box = { x: cut.x0 / scale, y: cut.y0 / scale, w: view.width / scale, h: view.height / scale };
      const sidePx = Math.min(view.width, view.height);
      const sharp = sharpness(view);
      const skipped = sidePx < minSidePx ? 'small' : minSharpness > 0 && sharp < minSharpness ? 'blurred' : undefined;
      crops.push({ box, sidePx, sharpness: sharp, ...(skipped ? { skipped } : {}) });
      if (skipped) continue;
      inputs.push(this.pre.run(view).data.slice());
      which.push(crops.length - 1);
    }
    const t1 = performance.now();
    const m = this.pkg.manifest;
    const dims = this.pre.dims;
    const per = inputs[0]?.length ?? 0;
    const type = m.input.dtype;
    const outputs: Float32Array[] = [];
    // CAM: each run's feature map, fetched with its scores, and where each input sits in it.
    const cam = req.explain && m.task === 'classify' ? this.cam : undefined;
    const features: { tensor: FeatureTensor; index: number }[] = [];
    let runs = 0;
    const runOne = async (data: TensorData, n: number) => {
      const fetches = cam ? [this.output, cam.output] : [this.output];
      const out = await this.session.run({ [m.input.name]: new ort.Tensor(type, data, [n, ...dims.slice(1)]) }, fetches);
      runs++;
      const scores = out[this.output].data as Float32Array;
      const L = scores.length / n;
      for (let i = 0; i < n; i++) outputs.push(scores.slice(i * L, (i + 1) * L));
      if (cam) for (let i = 0; i < n; i++) features.push({ tensor: out[cam.output] as FeatureTensor, index: i });
    };
    if (inputs.length && this.batched && req.batch !== 'one-by-one') {
      const all =
        type === 'float32'
          ? new Float32Array(per * inputs.length)
          : type === 'float16'
            ? new Uint16Array(per * inputs.length)
            : new Uint8Array(per * inputs.length);
      for (const [i, d] of inputs.entries()) all.set(d, i * per);
      await runOne(all, inputs.length);
    } else {
      for (const d of inputs) await runOne(d, 1);
    }
    const t2 = performance.now();
    const probs = (raw: Float32Array) => Float32Array.from(probabilities(raw, m.classify.outputs));
    which.forEach((ci, k) => {
      const raw = outputs[k];
      crops[ci].scores = m.task === 'regress' ? regressValues(raw, m.regress) : Array.from(probabilities(raw, m.classify.outputs));
    });
    const t3 = performance.now();
    // A heatmap explains a class score; a regress model's values have no class to explain.
    const explain =
      req.explain && m.task !== 'regress' ? await this.explain(req.explain, crops, which, inputs, probs, cam && features) : undefined;
    return {
      task: 'crops',
      crops,
      labels: this.pkg.labels,
      outputs: this.outputs,
      runs,
      ...(explain ? { explain } : {}),
      latencyMs: { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 },
    };
  }

  /**
   * Heatmaps of the classified crops asked for. CAM: from the feature maps of the classifying runs
   * (`features`, per input), no further run; occlusion: all masked copies in as few runs as the
   * batch dimension allows.
   */
  private async explain(
    what: true | (number | null)[],
    crops: CropResult[],
    which: number[],
    inputs: TensorData[],
    probs: (raw: Float32Array) => Float32Array,
    features?: { tensor: FeatureTensor; index: number }[],
  ): Promise<{ runs: number; ms: number }> {
    const t0 = performance.now();
    const m = this.pkg.manifest;
    const items: ExplainItem[] = [];
    const at: number[] = [];
    const of: number[] = [];
    for (const [k, ci] of which.entries()) {
      const scores = crops[ci].scores ?? [];
      const target = what === true ? argmax(scores) : what[ci];
      if (target === null || target === undefined || target < 0 || target >= scores.length) continue;
      items.push({ input: inputs[k], target, base: scores[target] });
      at.push(ci);
      of.push(k);
    }
    if (this.cam && features) {
      const cam = this.cam;
      const maps = await Promise.all(
        items.map(async (it, j) => {
          const f = features[of[j]];
          return (await cam.explain([it], [f.index], f.tensor))[0];
        }),
      );
      maps.forEach((h, k) => {
        crops[at[k]].heatmap = h;
      });
      return { runs: 0, ms: performance.now() - t0 };
    }
    this.occlusion ??= new Occlusion(m.input, fixedBatch(this.session, m.input.name));
    const before = this.occlusion.runs;
    const maps = await this.occlusion.explain(items, async (data, n) => {
      const out = await this.session.run({ [m.input.name]: new ort.Tensor(m.input.dtype, data, [n, ...this.pre.dims.slice(1)]) }, [
        this.output,
      ]);
      const all = out[this.output].data as Float32Array;
      const L = all.length / n;
      return Array.from({ length: n }, (_, i) => probs(all.slice(i * L, (i + 1) * L)));
    });
    maps.forEach((h, k) => {
      crops[at[k]].heatmap = h;
    });
    return { runs: this.occlusion.runs - before, ms: performance.now() - t0 };
  }
}
