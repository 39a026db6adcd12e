import type { OutputTensor } from './detect.js';
import { encodeGreyPng } from './png.js';
import type { Geometry } from './preprocess.js';
import type { SegmentClass } from './types.js';

/**
 * Segmentation postprocessing: per-pixel argmax (or class ids straight from the model), per-class
 * area fractions over the output pixels that show the source image (letterbox padding excluded),
 * and optionally the class mask resampled to source pixels as a PNG. Scratch arrays are reused.
 */

export interface SegmentResult {
  classes: SegmentClass[];
  maskPng?: Uint8Array;
}

export class Segmenter {
  private readonly kind: 'scores' | 'classes';
  private readonly maskPng: boolean;
  private classMap = new Int32Array(0);
  private best = new Float32Array(0);
  private counts = new Float64Array(0);
  private key = '';
  private validX = new Uint8Array(0);
  private validY = new Uint8Array(0);

  constructor(opts: { output: 'scores' | 'classes'; maskPng: boolean }) {
    this.kind = opts.output;
    this.maskPng = opts.maskPng;
  }

  /** Which output columns/rows have their centre inside the source image. */
  private region(g: Geometry, inW: number, inH: number, outW: number, outH: number): void {
    const key = `${g.scaleX},${g.scaleY},${g.offsetX},${g.offsetY},${g.srcWidth},${g.srcHeight},${outW},${outH}`;
    if (key === this.key) return;
    const inside = (n: number, out: number, inSize: number, offset: number, extent: number) => {
      const v = new Uint8Array(n);
      for (let o = 0; o < n; o++) {
        const c = ((o + 0.5) * inSize) / out;
        v[o] = c >= offset && c < offset + extent ? 1 : 0;
      }
      return v;
    };
    this.validX = inside(outW, outW, inW, g.offsetX, g.srcWidth * g.scaleX);
    this.validY = inside(outH, outH, inH, g.offsetY, g.srcHeight * g.scaleY);
    this.key = key;
  }

  run(out: OutputTensor, labels: readonly string[], g: Geometry, inW: number, inH: number): SegmentResult {
    const { data, dims } = out;
    const [H, W] = this.kind === 'scores' ? [dims[2], dims[3]] : [dims[1], dims[2]];
    const C = this.kind === 'scores' ? dims[1] : labels.length;
    const P = H * W;
    if (this.classMap.length < P) {
      this.classMap = new Int32Array(P);
      this.best = new Float32Array(P);
    }
    if (this.counts.length < C) this.counts = new Float64Array(C);
    const cls = this.classMap;
    if (this.kind === 'scores') {
      const best = this.best;
      best.fill(-Infinity, 0, P);
      // Channel-major memory order: one contiguous pass per class (first class wins ties).
      for (let c = 0; c < C; c++) {
        const base = c * P;
        for (let p = 0; p < P; p++) {
          const s = data[base + p];
          if (s > best[p]) {
            best[p] = s;
            cls[p] = c;
          }
        }
      }
    } else {
      // int64 class ids arrive as a BigInt64Array.
      const ids = data as ArrayLike<number | bigint>;
      for (let p = 0; p < P; p++) cls[p] = Math.min(Math.max(Math.round(Number(ids[p])), 0), C - 1);
    }

    this.region(g, inW, inH, W, H);
    const counts = this.counts;
    counts.fill(0, 0, C);
    let valid = 0;
    for (let y = 0; y < H; y++) {
      if (!this.validY[y]) continue;
      for (let x = 0; x < W; x++) {
        if (!this.validX[x]) continue;
        counts[cls[y * W + x]]++;
        valid++;
      }
    }
    const classes: SegmentClass[] = [];
    for (let c = 0; c < C; c++) {
      if (counts[c] > 0) classes.push({ index: c, label: labels[c] ?? `class_${c}`, fraction: counts[c] / valid });
    }
    classes.sort((a, b) => b.fraction - a.fraction || a.index - b.index);
    return this.maskPng ? { classes, maskPng: this.mask(g, inW, inH, W, H) } : { classes };
  }

  /** Nearest output pixel for every source pixel, one byte per pixel (class index, capped at 255). */
  private mask(g: Geometry, inW: number, inH: number, W: number, H: number): Uint8Array {
    const sw = g.srcWidth;
    const sh = g.srcHeight;
    const col = new Int32Array(sw);
    for (let x = 0; x < sw; x++) col[x] = Math.min(W - 1, Math.max(0, Math.floor((((x + 0.5) * g.scaleX + g.offsetX) * W) / inW)));
    const pixels = new Uint8Array(sw * sh);
    for (let y = 0; y < sh; y++) {
      const oy = Math.min(H - 1, Math.max(0, Math.floor((((y + 0.5) * g.scaleY + g.offsetY) * H) / inH)));
      const row = oy * W;
      for (let x = 0; x < sw; x++) pixels[y * sw + x] = Math.min(255, this.classMap[row + col[x]]);
    }
    return encodeGreyPng(pixels, sw, sh);
  }
}
