import type { Frame } from '../capture/frame.js';
import type { InputSpec } from './manifest.js';

/**
 * Frame -> model input tensor in one pass: resize (stretch | letterbox | center-crop, with the
 * manifest's interpolation: src/inference/sampling.ts), colour order or grey, scale/mean/std and
 * layout. Output arrays and the per-column sampling tables are
 * reused between frames of the same size, so the steady state allocates nothing.
 *
 * This is the reference: the daemon writes tensors with the native edge_tensor addon
 * (src/inference/tensorize.ts), which uses the same sampling tables and the same arithmetic and is
 * tested against this on every layout and dtype. TF.js models and machines without the addon use
 * this one.
 */

import { type AnyAxis, type Axis, type Geometry, samplingPlan, type SamplingPlan } from './sampling.js';

export { type Geometry, geometryFor } from './sampling.js';

/** A tensor's elements: float16 travels as its IEEE bits. */
export type TensorData = Float32Array | Uint16Array | Uint8Array;

export interface Preprocessed {
  data: TensorData;
  dims: number[];
  geometry: Geometry;
}

/**
 * The geometry in the camera's full-resolution pixels: a frame that capture scaled (Frame.sourceWidth)
 * was sampled at its own size, and its coordinates stretch back to the source's.
 */
export function toSourceGeometry(g: Geometry, frame: Pick<Frame, 'width' | 'height' | 'sourceWidth' | 'sourceHeight'>): Geometry {
  if (!frame.sourceWidth || !frame.sourceHeight) return g;
  const sx = frame.width / frame.sourceWidth;
  const sy = frame.height / frame.sourceHeight;
  return {
    scaleX: g.scaleX * sx,
    scaleY: g.scaleY * sy,
    offsetX: g.offsetX,
    offsetY: g.offsetY,
    srcWidth: frame.sourceWidth,
    srcHeight: frame.sourceHeight,
  };
}

/** Model-input box (x, y, w, h) -> source pixels. */
export function toSource(g: Geometry, x: number, y: number, w: number, h: number): [number, number, number, number] {
  return [(x - g.offsetX) / g.scaleX, (y - g.offsetY) / g.scaleY, w / g.scaleX, h / g.scaleY];
}

/** IEEE binary16 bits -> number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** IEEE binary32 -> binary16 bits, round to nearest even (native/src/tensor.cc HalfOf is the same function). */
export function f16bits(f: number): number {
  F32[0] = f;
  const x = U32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

export class Preprocessor {
  private readonly spec: InputSpec;
  private readonly channels: 1 | 3;
  /** float16: the float32 values, converted into `half` at the end. */
  private readonly out: Float32Array | Uint8Array;
  private readonly half?: Uint16Array;
  private key = '';
  private plan!: SamplingPlan;
  private readonly lut: Float32Array | Uint8Array;
  private lutKey: number[] = [];

  constructor(spec: InputSpec) {
    this.spec = spec;
    this.channels = spec.channels ?? 3;
    const n = spec.width * spec.height * this.channels;
    const float = spec.dtype !== 'uint8';
    this.out = float ? new Float32Array(n) : new Uint8Array(n);
    if (spec.dtype === 'float16') this.half = new Uint16Array(n);
    this.lut = float ? new Float32Array(768) : new Uint8Array(768);
  }

  get dims(): number[] {
    const { width: W, height: H, layout } = this.spec;
    return layout === 'NCHW' ? [1, this.channels, H, W] : [1, H, W, this.channels];
  }

  /** New source size: new sampling tables, and the padding written once (frames only overwrite the inside). */
  private setup(frame: Frame): void {
    const { width: W, height: H, layout } = this.spec;
    const p = samplingPlan(this.spec, frame);
    this.plan = p;
    const C = this.channels;
    const plane = W * H;
    for (let c = 0; c < C; c++) {
      const v = this.out instanceof Float32Array ? p.pad[c] * p.mul[c] + p.add[c] : p.pad[c];
      if (layout === 'NCHW') this.out.fill(v, c * plane, (c + 1) * plane);
      else for (let o = c; o < plane * C; o += C) this.out[o] = v;
    }
    this.key = `${frame.width}x${frame.height}/${frame.stride}/${frame.format}`;
  }

  /**
   * Writes the tensor for `frame` into the reused output array and returns it. The array is
   * overwritten by the next call: copy it if it must outlive the inference.
   *
   * Bilinear: an output row that lands exactly on a source row, with the columns unscaled (640x480
   * into a 640 letterbox), needs no blend: it is one table look-up per byte. Other rows blend four
   * source pixels per output pixel (top and bottom lerps, then the vertical one). The other
   * interpolations, and grey models, take the general path (sample).
   */
  run(frame: Frame): Preprocessed {
    if (`${frame.width}x${frame.height}/${frame.stride}/${frame.format}` !== this.key) this.setup(frame);
    const { ax, ay } = this.plan;
    if (ax.kind === 'lerp' && ay.kind === 'lerp' && this.channels === 3) this.bilinear(frame, ax, ay);
    else this.general(frame);
    const geometry = toSourceGeometry(this.plan.geometry, frame);
    const out = this.out;
    if (this.half) {
      const h = this.half;
      for (let i = 0; i < h.length; i++) h[i] = f16bits(out[i]);
      return { data: h, dims: this.dims, geometry };
    }
    return { data: out, dims: this.dims, geometry };
  }

  private bilinear(frame: Frame, ax: Axis, ay: Axis): void {
    const W = this.spec.width;
    const plane = W * this.spec.height;
    const out = this.out;
    const src = frame.data;
    const [k0, k1, k2] = this.plan.k;
    if (k0 !== this.lutKey[0] || k1 !== this.lutKey[1] || k2 !== this.lutKey[2]) this.fillLut([k0, k1, k2]);
    const [m0, m1, m2] = this.plan.mul;
    const [a0, a1, a2] = this.plan.add;
    const nchw = this.spec.layout === 'NCHW';
    // NCHW: channel c of pixel o at c * plane + o; NHWC: at o * 3 + c.
    const cs = nchw ? plane : 1;
    const ps = nchw ? 1 : 3;
    const { i0: cx0, i1: cx1, w1: wxs } = ax;
    const lut = this.lut;
    const step = this.plan.bpp;
    for (let y = ay.lo; y < ay.hi; y++) {
      const r0 = ay.i0[y];
      const r1 = ay.i1[y];
      const wy = ay.w1[y];
      let o = (y * W + ax.lo) * ps;
      if (wy === 0 && this.plan.unitX) {
        for (let x = ax.lo, t = r0 + cx0[ax.lo]; x < ax.hi; x++, o += ps, t += step) {
          out[o] = lut[src[t + k0]];
          out[o + cs] = lut[256 + src[t + k1]];
          out[o + 2 * cs] = lut[512 + src[t + k2]];
        }
        continue;
      }
      for (let x = ax.lo; x < ax.hi; x++, o += ps) {
        const t0 = r0 + cx0[x];
        const t1 = r0 + cx1[x];
        const b0 = r1 + cx0[x];
        const b1 = r1 + cx1[x];
        const wx = wxs[x];
        let top = src[t0 + k0] + (src[t1 + k0] - src[t0 + k0]) * wx;
        let bot = src[b0 + k0] + (src[b1 + k0] - src[b0 + k0]) * wx;
        out[o] = (top + (bot - top) * wy) * m0 + a0;
        top = src[t0 + k1] + (src[t1 + k1] - src[t0 + k1]) * wx;
        bot = src[b0 + k1] + (src[b1 + k1] - src[b0 + k1]) * wx;
        out[o + cs] = (top + (bot - top) * wy) * m1 + a1;
        top = src[t0 + k2] + (src[t1 + k2] - src[t0 + k2]) * wx;
        bot = src[b0 + k2] + (src[b1 + k2] - src[b0 + k2]) * wx;
        out[o + 2 * cs] = (top + (bot - top) * wy) * m2 + a2;
      }
    }
  }

  /**
   * Any interpolation, colour or grey: each channel's sample (sample()), then grey = the weighted
   * sum of the R, G, B samples, then v * mul + add. native/src/tensor.cc RunGeneral is the same, operation for operation.
   */
  private general(frame: Frame): void {
    const { ax, ay, k, mul, add, grey } = this.plan;
    const W = this.spec.width;
    const C = this.channels;
    const plane = W * this.spec.height;
    const nchw = this.spec.layout === 'NCHW';
    const cs = nchw ? plane : 1;
    const ps = nchw ? 1 : C;
    const out = this.out;
    const s = [0, 0, 0];
    // Taps: each source row the y taps name is filtered along x once (per model channel), then
    // every output row sums its rows: the sums sample() would make, in the same order.
    const rows = ax.kind === 'taps' && ay.kind === 'taps' ? new Map<number, Float64Array>() : undefined;
    const rowOf = (off: number): Float64Array => {
      let r = rows?.get(off);
      if (r) return r;
      r = new Float64Array(W * 3);
      if (ax.kind === 'taps')
        for (let x = ax.lo; x < ax.hi; x++)
          for (let c = 0; c < 3; c++) {
            let v = 0;
            for (let i = ax.start[x]; i < ax.start[x + 1]; i++) v += frame.data[off + ax.off[i] + k[c]] * ax.weight[i];
            r[x * 3 + c] = v;
          }
      rows?.set(off, r);
      return r;
    };
    let rowsOfY: Float64Array[] = [];
    let wy: Float32Array = new Float32Array(0);
    for (let y = ay.lo; y < ay.hi; y++) {
      let o = (y * W + ax.lo) * ps;
      if (rows && ay.kind === 'taps') {
        rowsOfY = Array.from(ay.off.subarray(ay.start[y], ay.start[y + 1]), rowOf);
        wy = ay.weight.subarray(ay.start[y], ay.start[y + 1]);
      }
      for (let x = ax.lo; x < ax.hi; x++, o += ps) {
        if (rows) {
          for (let c = 0; c < 3; c++) {
            let acc = 0;
            for (let j = 0; j < rowsOfY.length; j++) acc += rowsOfY[j][x * 3 + c] * wy[j];
            s[c] = acc;
          }
        } else for (let c = 0; c < 3; c++) s[c] = sample(frame.data, ax, ay, x, y, k[c]);
        if (C === 1) out[o] = (s[0] * grey[0] + s[1] * grey[1] + s[2] * grey[2]) * mul[0] + add[0];
        else for (let c = 0; c < 3; c++) out[o + c * cs] = s[c] * mul[c] + add[c];
      }
    }
  }

  /** The output value of byte v in model channel c at lut[c * 256 + v]: the same v * mul + add the blend computes. */
  private fillLut(k: readonly number[]): void {
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) this.lut[c * 256 + v] = v * this.plan.mul[c] + this.plan.add[c];
    this.lutKey = [...k];
  }
}

/**
 * One channel (source byte `k` of each pixel) at output pixel (x, y): the bilinear blend (lerp
 * axes), or the weighted sum of the taps, row by row (taps axes). A lerp axis against a taps axis
 * counts as two taps.
 */
function sample(src: Uint8Array, ax: AnyAxis, ay: AnyAxis, x: number, y: number, k: number): number {
  if (ax.kind === 'lerp' && ay.kind === 'lerp') {
    const r0 = ay.i0[y];
    const r1 = ay.i1[y];
    const c0 = ax.i0[x] + k;
    const c1 = ax.i1[x] + k;
    const wx = ax.w1[x];
    const top = src[r0 + c0] + (src[r0 + c1] - src[r0 + c0]) * wx;
    const bot = src[r1 + c0] + (src[r1 + c1] - src[r1 + c0]) * wx;
    return top + (bot - top) * ay.w1[y];
  }
  const tx = tapsOf(ax, x);
  const ty = tapsOf(ay, y);
  let acc = 0;
  for (let j = 0; j < ty.n; j++) {
    const row = ty.off(j) + k;
    let r = 0;
    for (let i = 0; i < tx.n; i++) r += src[row + tx.off(i)] * tx.w(i);
    acc += r * ty.w(j);
  }
  return acc;
}

/** The taps of output pixel d on an axis: a lerp axis's two (weights 1 - w1 and w1, as float32). */
function tapsOf(a: AnyAxis, d: number): { n: number; off: (i: number) => number; w: (i: number) => number } {
  if (a.kind === 'taps') {
    const s = a.start[d];
    return { n: a.start[d + 1] - s, off: (i) => a.off[s + i], w: (i) => a.weight[s + i] };
  }
  const w1 = a.w1[d];
  const w0 = Math.fround(1 - w1);
  return { n: 2, off: (i) => (i === 0 ? a.i0[d] : a.i1[d]), w: (i) => (i === 0 ? w0 : w1) };
}
