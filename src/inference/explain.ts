import sharp from 'sharp';
import type { Frame } from '../capture/frame.js';
import type { InputSpec } from './manifest.js';
import { halfToFloat, Preprocessor, type TensorData } from './preprocess.js';

/**
 * Explanations for classifiers: occlusion sensitivity. The model input is cut into a grid; each
 * cell in turn is covered by a neutral patch (through the model's own preprocessing, so any
 * layout, dtype and normalisation) and the drop of the explained class's probability is that
 * cell's saliency. The patch is the eight corners of the RGB cube in a fine pattern: mid-grey on
 * average, but no colour of its own, so a model that weighs the colour evidence it sees (the eyes
 * demo's classifier votes per pixel: a flat grey patch would vote for nothing and change no ratio)
 * loses that cell's evidence too.
 * Model-agnostic, and batched: every masked copy of every explained input goes through the model
 * in as few session.run calls as its batch dimension allows (a dynamic batch: one run, up to a
 * memory cap). Runs in the inference worker, beside the session.
 */

/** off: never; assessment: one heatmap per region of a pipeline's assessment; every: every classified frame or crop. */
export type ExplainMode = 'off' | 'assessment' | 'every';

export interface Heatmap {
  /** occlusion (here) or cam (class activation maps: cam.ts). */
  method: 'occlusion' | 'cam';
  /** Grid rows and columns over the model's input (the crop as the model saw it); cam: the feature map's. */
  rows: number;
  cols: number;
  /** The class explained (its index in the model's labels). */
  target: number;
  /** Its probability on the unmasked input. */
  base: number;
  /**
   * Row-major. occlusion: the probability drop when each cell is masked (negative: masking that cell
   * raised it); cam: the class's activation per cell over its largest magnitude (-1..1).
   */
  values: number[];
  /** The model's input with the heatmap laid over it (red: the score depended on it), PNG. */
  png: Uint8Array;
}

/** Grid side: 8 x 8 cells, 64 masked copies per explained input. */
export const GRID = 8;
/** The mask's pixel at (x, y): corner (x + 2y) mod 8 of the RGB cube; every 4x4 block holds each corner twice (mean exactly 127.5). */
function maskPixel(x: number, y: number): [number, number, number] {
  const i = (x + 2 * y) % 8;
  return [(i & 1) * 255, ((i >> 1) & 1) * 255, ((i >> 2) & 1) * 255];
}
/** The masked inputs of one session.run stay under this many bytes (a dynamic batch is cut into runs of this size). */
const MAX_RUN_BYTES = 64 * 1024 * 1024;
/** Longer side of the overlay PNG. */
const PNG_SIDE = 128;

/** One batch of inputs through the model: `data` holds `n` inputs back to back; the answer: one probability vector per input. */
export type RunBatch = (data: TensorData, n: number) => Promise<Float32Array[]>;

export interface ExplainItem {
  /** The input tensor as classified (batch 1). */
  input: TensorData;
  target: number;
  /** The target's probability on `input`. */
  base: number;
}

export class Occlusion {
  private readonly spec: InputSpec;
  /** The mask, as the model's input tensor. */
  private readonly grey: TensorData;
  private readonly grid: number;
  /** Inputs per session.run: the model's fixed batch size, or as many as fit MAX_RUN_BYTES (dynamic). */
  private readonly perRun: number;
  private readonly fixed: boolean;
  /** Session runs made so far (the bench and the tests read it). */
  runs = 0;

  /** `fixedBatch`: the model's batch dimension when it is a number, undefined when dynamic. */
  constructor(spec: InputSpec, fixedBatch: number | undefined, grid = GRID) {
    this.spec = spec;
    this.grid = grid;
    const { width: W, height: H } = spec;
    const data = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data.set(maskPixel(x, y), (y * W + x) * 3);
    const frame: Frame = { camera: 'explain', seq: 0, width: W, height: H, stride: W * 3, format: 'RGB', data, capturedAtMs: 0 };
    this.grey = new Preprocessor(spec).run(frame).data.slice();
    const bytes = this.grey.byteLength;
    this.fixed = fixedBatch !== undefined;
    this.perRun = fixedBatch ?? Math.max(1, Math.floor(MAX_RUN_BYTES / bytes));
  }

  /** One heatmap per item, in order. */
  async explain(items: readonly ExplainItem[], run: RunBatch): Promise<Heatmap[]> {
    const G = this.grid;
    const cells = G * G;
    const total = items.length * cells;
    const per = this.grey.length;
    const probs: Float32Array[] = [];
    for (let start = 0; start < total; start += this.perRun) {
      const n = Math.min(this.perRun, total - start);
      // A fixed batch is filled up with grey inputs; their answers are dropped.
      const size = this.fixed ? this.perRun : n;
      const data = new (this.grey.constructor as new (n: number) => TensorData)(per * size);
      for (let k = 0; k < size; k++) {
        const j = start + k;
        if (j >= total) {
          data.set(this.grey, k * per);
          continue;
        }
        data.set(items[Math.floor(j / cells)].input, k * per);
        this.mask(data, k * per, j % cells);
      }
      const out = await run(data, size);
      this.runs++;
      probs.push(...out.slice(0, n));
    }
    return Promise.all(
      items.map(async (it, i) => {
        const values = probs.slice(i * cells, (i + 1) * cells).map((p) => Math.round((it.base - p[it.target]) * 1e4) / 1e4);
        const heat = { method: 'occlusion' as const, rows: G, cols: G, target: it.target, base: it.base, values };
        return { ...heat, png: await overlayPng(it.input, this.spec, heat) };
      }),
    );
  }

  /** Covers cell `c` of the input at `off` with the mask, in every channel. */
  private mask(data: TensorData, off: number, c: number): void {
    const { width: W, height: H, layout } = this.spec;
    const G = this.grid;
    const r = Math.floor(c / G);
    const q = c % G;
    const y0 = Math.floor((r * H) / G);
    const y1 = Math.floor(((r + 1) * H) / G);
    const x0 = Math.floor((q * W) / G);
    const x1 = Math.floor(((q + 1) * W) / G);
    const plane = W * H;
    const C = this.spec.channels ?? 3;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const p = y * W + x;
        for (let ch = 0; ch < C; ch++) {
          const i = layout === 'NCHW' ? ch * plane + p : p * C + ch;
          data[off + i] = this.grey[i];
        }
      }
    }
  }
}

/**
 * The model's input back as RGB bytes (undoing scale, mean and std), W x H; a one-channel
 * (grey) input comes back grey in all three.
 */
export function inputPixels(input: TensorData, spec: InputSpec): Uint8Array {
  const { width: W, height: H, layout, dtype, scale, mean, std, colour } = spec;
  const C = spec.channels ?? 3;
  // mean and std: one value for every channel, or one per channel.
  const at = (v: readonly number[], ch: number) => (v.length === 1 ? v[0] : v[ch]);
  const plane = W * H;
  const out = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < C; ch++) {
      const i = layout === 'NCHW' ? ch * plane + p : p * C + ch;
      const raw = dtype === 'float16' ? halfToFloat(input[i]) : input[i];
      const v = dtype === 'uint8' ? raw : (raw * at(std, ch) + at(mean, ch)) / scale;
      const byte = Math.max(0, Math.min(255, Math.round(v)));
      if (C === 1) out.fill(byte, p * 3, p * 3 + 3);
      else out[p * 3 + (colour === 'RGB' ? ch : 2 - ch)] = byte;
    }
  }
  return out;
}

/** Blue (0) -> green -> yellow -> red (1). */
function heatColour(v: number): [number, number, number] {
  const t = Math.max(0, Math.min(1, v));
  if (t < 1 / 3) return [0, Math.round(t * 3 * 255), 255 - Math.round(t * 3 * 255)];
  if (t < 2 / 3) return [Math.round((t - 1 / 3) * 3 * 255), 255, 0];
  return [255, 255 - Math.round((t - 2 / 3) * 3 * 255), 0];
}

/**
 * The overlay: the input as the model saw it, scaled to PNG_SIDE on its longer side, with the
 * heatmap (bilinear between cell centres, positive drops relative to the largest) blended over it.
 */
export async function overlayPng(input: TensorData, spec: InputSpec, heat: Pick<Heatmap, 'rows' | 'cols' | 'values'>): Promise<Uint8Array> {
  const { width: W, height: H } = spec;
  const px = inputPixels(input, spec);
  const k = PNG_SIDE / Math.max(W, H);
  const ow = Math.max(1, Math.round(W * k));
  const oh = Math.max(1, Math.round(H * k));
  const max = Math.max(1e-6, ...heat.values);
  const at = (r: number, c: number) => Math.max(0, heat.values[r * heat.cols + c]) / max;
  const out = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    const gy = Math.min(heat.rows - 1, Math.max(0, ((y + 0.5) / oh) * heat.rows - 0.5));
    const r0 = Math.floor(gy);
    const r1 = Math.min(heat.rows - 1, r0 + 1);
    const fy = gy - r0;
    const sy = Math.min(H - 1, Math.floor(((y + 0.5) / oh) * H));
    for (let x = 0; x < ow; x++) {
      const gx = Math.min(heat.cols - 1, Math.max(0, ((x + 0.5) / ow) * heat.cols - 0.5));
      const c0 = Math.floor(gx);
      const c1 = Math.min(heat.cols - 1, c0 + 1);
      const fx = gx - c0;
      const v = (at(r0, c0) * (1 - fx) + at(r0, c1) * fx) * (1 - fy) + (at(r1, c0) * (1 - fx) + at(r1, c1) * fx) * fy;
      const sx = Math.min(W - 1, Math.floor(((x + 0.5) / ow) * W));
      const colour = heatColour(v);
      const a = 0.6 * v;
      for (let ch = 0; ch < 3; ch++) out[(y * ow + x) * 3 + ch] = Math.round(px[(sy * W + sx) * 3 + ch] * (1 - a) + colour[ch] * a);
    }
  }
  const png = await sharp(out, { raw: { width: ow, height: oh, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** The index of the largest value. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
