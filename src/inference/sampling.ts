import { channelsOf, type Frame } from '../capture/frame.js';
import type { InputSpec, Interpolation } from './manifest.js';

/**
 * The sampling plan of one frame size: which source pixels each model-input pixel is made of, and
 * with what weights, per axis (the resize is separable). The TypeScript reference
 * (src/inference/preprocess.ts) and the native writer (native/src/tensor.cc, through
 * src/inference/tensorize.ts) both run the same plan with the same arithmetic.
 *
 * Two kinds of axis:
 * - `lerp`: two source pixels per output pixel and the weight of the second (bilinear with half-pixel
 *   centres, as OpenCV INTER_LINEAR; nearest is the same with the weight 0 and both on one pixel);
 * - `taps`: any number of source pixels per output pixel with normalised weights (area: each source
 *   pixel weighted by how much of it the output pixel covers, as OpenCV INTER_AREA; the antialiased
 *   filters: PIL's convolution, its kernel widened by the downscale factor).
 */

/** Maps model-input pixels back to source pixels: src = (dst - offset) / scale. */
export interface Geometry {
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
  srcWidth: number;
  srcHeight: number;
}

export interface Axis {
  kind: 'lerp';
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
  /** Destination pixels [lo, hi) fall inside the source; the rest is letterbox padding. */
  lo: number;
  hi: number;
}

interface TapsAxis {
  kind: 'taps';
  /** Output pixel d uses taps [start[d], start[d + 1]). */
  start: Int32Array;
  /** Byte offset of each tap's source pixel (column * bytes per pixel, or row * stride). */
  off: Int32Array;
  weight: Float32Array;
  lo: number;
  hi: number;
}

export type AnyAxis = Axis | TapsAxis;

/** Pixels [lo, hi) of `dst` whose centre maps inside the source. */
function inside(dst: number, src: number, scale: number, offset: number): { lo: number; hi: number } {
  let lo = dst;
  let hi = 0;
  for (let d = 0; d < dst; d++) {
    const s = (d + 0.5 - offset) / scale - 0.5;
    if (s >= -0.5 && s <= src - 0.5) {
      lo = Math.min(lo, d);
      hi = d + 1;
    }
  }
  return { lo, hi: Math.max(hi, lo) };
}

/** Bilinear (two taps, half-pixel centres, edges clamped), or nearest (the pixel under the centre). */
function axis(dst: number, src: number, scale: number, offset: number, bytesPerStep: number, nearest = false): Axis {
  const { lo, hi } = inside(dst, src, scale, offset);
  const a: Axis = { kind: 'lerp', i0: new Int32Array(dst), i1: new Int32Array(dst), w1: new Float32Array(dst), lo, hi };
  // Nearest: the source pixel under each centre, the centre stepped along as PIL does (its
  // resize adds the inverse scale pixel after pixel), so a centre that lands exactly between two
  // pixels falls the same way as in PIL.
  const inv = 1 / scale;
  let centre = -offset * inv + 0.5 * inv;
  for (let d = 0; d < dst; d++, centre += inv) {
    if (nearest) {
      const i = Math.min(Math.max(Math.trunc(centre), 0), src - 1);
      a.i0[d] = a.i1[d] = i * bytesPerStep;
      continue;
    }
    const c = Math.min(Math.max((d + 0.5 - offset) / scale - 0.5, 0), src - 1);
    const i0 = Math.floor(c);
    // Stored as byte offsets (column * channels, row * stride) so the hot loop only adds.
    a.i0[d] = i0 * bytesPerStep;
    a.i1[d] = Math.min(i0 + 1, src - 1) * bytesPerStep;
    a.w1[d] = c - i0;
  }
  return a;
}

/** PIL's filters (Imaging/Resample.c): support at scale 1, and the kernel. */
const FILTERS: Record<'bilinear-antialias' | 'bicubic-antialias', { support: number; f: (x: number) => number }> = {
  'bilinear-antialias': { support: 1, f: (x) => Math.max(0, 1 - Math.abs(x)) },
  'bicubic-antialias': {
    support: 2,
    f: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
};

/** Weights of the source pixels under each output pixel (area coverage, or a widened kernel), normalised to 1. */
function tapsAxis(
  dst: number,
  src: number,
  scale: number,
  offset: number,
  bytesPerStep: number,
  kind: 'area' | 'bilinear-antialias' | 'bicubic-antialias',
): TapsAxis {
  const { lo, hi } = inside(dst, src, scale, offset);
  const start = new Int32Array(dst + 1);
  const off: number[] = [];
  const weight: number[] = [];
  for (let d = 0; d < dst; d++) {
    start[d] = off.length;
    const taps: [number, number][] = [];
    if (kind === 'area') {
      // The output pixel covers source [a, b): each source pixel by its overlap.
      const a = Math.max((d - offset) / scale, 0);
      const b = Math.min((d + 1 - offset) / scale, src);
      for (let i = Math.floor(a); i < Math.ceil(b) && b > a; i++) taps.push([i, Math.min(b, i + 1) - Math.max(a, i)]);
      if (!taps.length) taps.push([Math.min(Math.max(Math.floor(a), 0), src - 1), 1]);
    } else {
      const { support, f } = FILTERS[kind];
      const wide = Math.max(1 / scale, 1);
      const centre = (d + 0.5 - offset) / scale;
      const from = Math.max(Math.trunc(centre - support * wide + 0.5), 0);
      const to = Math.min(Math.trunc(centre + support * wide + 0.5), src);
      // Taps the kernel gives 0 are left out (a triangle at scale 1 would blend in zeros of both neighbours).
      for (let i = from; i < to; i++) {
        const w = f((i - centre + 0.5) / wide);
        if (w !== 0) taps.push([i, w]);
      }
      if (!taps.length) taps.push([Math.min(Math.max(Math.floor(centre), 0), src - 1), 1]);
    }
    const sum = taps.reduce((s, [, w]) => s + w, 0);
    for (const [i, w] of taps) {
      off.push(i * bytesPerStep);
      weight.push(sum !== 0 ? w / sum : 1 / taps.length);
    }
  }
  start[dst] = off.length;
  return { kind: 'taps', start, off: Int32Array.from(off), weight: Float32Array.from(weight), lo, hi };
}

function axisFor(interpolation: Interpolation, dst: number, src: number, scale: number, offset: number, bytesPerStep: number): AnyAxis {
  if (interpolation === 'bilinear' || interpolation === 'nearest')
    return axis(dst, src, scale, offset, bytesPerStep, interpolation === 'nearest');
  return tapsAxis(dst, src, scale, offset, bytesPerStep, interpolation);
}

export function geometryFor(spec: Pick<InputSpec, 'width' | 'height' | 'resize'>, srcW: number, srcH: number): Geometry {
  const { width: W, height: H } = spec;
  if (spec.resize === 'stretch') return { scaleX: W / srcW, scaleY: H / srcH, offsetX: 0, offsetY: 0, srcWidth: srcW, srcHeight: srcH };
  const s = spec.resize === 'letterbox' ? Math.min(W / srcW, H / srcH) : Math.max(W / srcW, H / srcH);
  return { scaleX: s, scaleY: s, offsetX: (W - srcW * s) / 2, offsetY: (H - srcH * s) / 2, srcWidth: srcW, srcHeight: srcH };
}

/** Which source byte holds each model channel (R,G,B or B,G,R order). */
function channelMap(format: Frame['format'], colour: InputSpec['colour']): [number, number, number] {
  const rgb: [number, number, number] = format === 'BGR' || format === 'BGRA' ? [2, 1, 0] : format === 'GRAY8' ? [0, 0, 0] : [0, 1, 2];
  return colour === 'RGB' ? rgb : [rgb[2], rgb[1], rgb[0]];
}

/**
 * A grey model's weights of the R, G, B samples (channelMap in RGB order): BT.601 luma, what OpenCV
 * (COLOR_RGB2GRAY) and PIL (convert('L')) use; a GRAY8 frame is its own grey.
 */
function greyWeights(format: Frame['format']): Float32Array {
  return format === 'GRAY8' ? Float32Array.of(1, 0, 0) : Float32Array.of(0.299, 0.587, 0.114);
}

/** out = v * mul + add per channel: (v * scale - mean) / std for float, v + 0.5 (rounding) for uint8. */
function affineOf(spec: InputSpec): { mul: Float32Array; add: Float32Array } {
  if (spec.dtype === 'uint8') return { mul: Float32Array.of(1, 1, 1), add: Float32Array.of(0.5, 0.5, 0.5) };
  const of = (v: readonly number[], c: number) => v[c] ?? v[0];
  return {
    mul: Float32Array.from([0, 1, 2], (c) => spec.scale / of(spec.std, c)),
    add: Float32Array.from([0, 1, 2], (c) => -of(spec.mean, c) / of(spec.std, c)),
  };
}

/** The letterbox fill per model channel, in pixel values (one value: every channel). */
function padOf(spec: InputSpec): [number, number, number] {
  const p = spec.pad ?? [114];
  return [p[0], p[1] ?? p[0], p[2] ?? p[0]];
}

/** Whether the x axis samples whole source pixels one after another (scale 1): no blend needed. */
function unitAxis(a: AnyAxis, bpp: number): boolean {
  if (a.kind === 'taps') return false;
  for (let x = a.lo; x < a.hi; x++) if (a.w1[x] !== 0 || (x > a.lo && a.i0[x] - a.i0[x - 1] !== bpp)) return false;
  return true;
}

/** Everything a frame of one size needs to become the model's input. */
export interface SamplingPlan {
  geometry: Geometry;
  ax: AnyAxis;
  ay: AnyAxis;
  /** Bytes per source pixel. */
  bpp: number;
  /** Source byte of each model channel (RGB order for grey models). */
  k: [number, number, number];
  /** Model channels: 3, or 1 (grey). */
  channels: 1 | 3;
  grey: Float32Array;
  mul: Float32Array;
  add: Float32Array;
  /** The letterbox fill per model channel, as a pixel value. */
  pad: [number, number, number];
  unitX: boolean;
}

export function samplingPlan(spec: InputSpec, frame: Pick<Frame, 'width' | 'height' | 'stride' | 'format'>): SamplingPlan {
  const interpolation = spec.interpolation ?? 'bilinear';
  const channels = spec.channels ?? 3;
  const bpp = channelsOf(frame.format);
  const g = geometryFor(spec, frame.width, frame.height);
  const ax = axisFor(interpolation, spec.width, frame.width, g.scaleX, g.offsetX, bpp);
  const ay = axisFor(interpolation, spec.height, frame.height, g.scaleY, g.offsetY, frame.stride);
  return {
    geometry: g,
    ax,
    ay,
    bpp,
    k: channelMap(frame.format, channels === 1 ? 'RGB' : spec.colour),
    channels,
    grey: greyWeights(frame.format),
    ...affineOf(spec),
    pad: padOf(spec),
    // The table look-up path handles three channels; a grey model always blends.
    unitX: channels === 3 && unitAxis(ax, bpp),
  };
}
