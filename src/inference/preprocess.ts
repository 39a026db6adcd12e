import { channelsOf, type Frame } from '../capture/frame.js';
import type { InputSpec } from './manifest.js';

/**
 * Frame -> model input tensor in one pass: bilinear resize (stretch | letterbox | center-crop),
 * colour order, scale/mean/std and layout. Output arrays and the per-column sampling tables are
 * reused between frames of the same size, so the steady state allocates nothing.
 *
 * This is the reference: the daemon writes tensors with the native edge_tensor addon
 * (src/inference/tensorize.ts), which uses the same sampling tables and the same arithmetic and is
 * tested against this on every layout and dtype. TF.js models and machines without the addon use
 * this one.
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

/** A tensor's elements: float16 travels as its IEEE bits. */
export type TensorData = Float32Array | Uint16Array | Uint8Array;

export interface Preprocessed {
  data: TensorData;
  dims: number[];
  geometry: Geometry;
}

/** YOLO-style grey for letterbox padding. */
export const PAD = 114;

export function geometryFor(spec: Pick<InputSpec, 'width' | 'height' | 'resize'>, srcW: number, srcH: number): Geometry {
  const { width: W, height: H } = spec;
  if (spec.resize === 'stretch') return { scaleX: W / srcW, scaleY: H / srcH, offsetX: 0, offsetY: 0, srcWidth: srcW, srcHeight: srcH };
  const s = spec.resize === 'letterbox' ? Math.min(W / srcW, H / srcH) : Math.max(W / srcW, H / srcH);
  return { scaleX: s, scaleY: s, offsetX: (W - srcW * s) / 2, offsetY: (H - srcH * s) / 2, srcWidth: srcW, srcHeight: srcH };
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

export interface Axis {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
  /** Destination pixels [lo, hi) fall inside the source; the rest is letterbox padding. */
  lo: number;
  hi: number;
}

export function axis(dst: number, src: number, scale: number, offset: number, bytesPerStep: number): Axis {
  const a: Axis = { i0: new Int32Array(dst), i1: new Int32Array(dst), w1: new Float32Array(dst), lo: dst, hi: 0 };
  for (let d = 0; d < dst; d++) {
    const s = (d + 0.5 - offset) / scale - 0.5;
    if (s >= -0.5 && s <= src - 0.5) {
      a.lo = Math.min(a.lo, d);
      a.hi = d + 1;
    }
    const c = Math.min(Math.max(s, 0), src - 1);
    const i0 = Math.floor(c);
    // Stored as byte offsets (column * channels, row * stride) so the hot loop only adds.
    a.i0[d] = i0 * bytesPerStep;
    a.i1[d] = Math.min(i0 + 1, src - 1) * bytesPerStep;
    a.w1[d] = c - i0;
  }
  if (a.hi < a.lo) a.hi = a.lo;
  return a;
}

/** Which source byte holds each model channel (R,G,B or B,G,R order). */
export function channelMap(format: Frame['format'], colour: InputSpec['colour']): [number, number, number] {
  const rgb: [number, number, number] = format === 'BGR' || format === 'BGRA' ? [2, 1, 0] : format === 'GRAY8' ? [0, 0, 0] : [0, 1, 2];
  return colour === 'RGB' ? rgb : [rgb[2], rgb[1], rgb[0]];
}

/** out = v * mul + add per channel: (v * scale - mean) / std for float, v + 0.5 (rounding) for uint8. */
export function affineOf(spec: InputSpec): { mul: Float32Array; add: Float32Array } {
  if (spec.dtype === 'uint8') return { mul: Float32Array.of(1, 1, 1), add: Float32Array.of(0.5, 0.5, 0.5) };
  return { mul: Float32Array.from(spec.std, (s) => spec.scale / s), add: Float32Array.from(spec.mean, (m, i) => -m / spec.std[i]) };
}

/** Whether the x axis samples whole source pixels one after another (scale 1): no blend needed. */
export function unitAxis(a: Axis, bpp: number): boolean {
  for (let x = a.lo; x < a.hi; x++) if (a.w1[x] !== 0 || (x > a.lo && a.i0[x] - a.i0[x - 1] !== bpp)) return false;
  return true;
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
  /** float16: the float32 values, converted into `half` at the end. */
  private readonly out: Float32Array | Uint8Array;
  private readonly half?: Uint16Array;
  private key = '';
  private ax!: Axis;
  private ay!: Axis;
  private geometry!: Geometry;
  /** out = v * mul + add per channel: (v * scale - mean) / std for float, v + 0.5 (rounding) for uint8. */
  private readonly mul: Float32Array;
  private readonly add: Float32Array;
  /** The horizontal axis samples whole source pixels one after another (scale 1): no blend needed. */
  private unitX = false;
  private bpp = 3;
  private readonly lut: Float32Array | Uint8Array;
  private lutKey: number[] = [];

  constructor(spec: InputSpec) {
    this.spec = spec;
    const n = spec.width * spec.height * 3;
    const float = spec.dtype !== 'uint8';
    this.out = float ? new Float32Array(n) : new Uint8Array(n);
    if (spec.dtype === 'float16') this.half = new Uint16Array(n);
    ({ mul: this.mul, add: this.add } = affineOf(spec));
    this.lut = float ? new Float32Array(768) : new Uint8Array(768);
  }

  get dims(): number[] {
    const { width: W, height: H, layout } = this.spec;
    return layout === 'NCHW' ? [1, 3, H, W] : [1, H, W, 3];
  }

  /** New source size: new sampling tables, and the padding written once (frames only overwrite the inside). */
  private setup(frame: Frame): void {
    const { width: W, height: H, layout } = this.spec;
    this.geometry = geometryFor(this.spec, frame.width, frame.height);
    this.ax = axis(W, frame.width, this.geometry.scaleX, this.geometry.offsetX, channelsOf(frame.format));
    this.ay = axis(H, frame.height, this.geometry.scaleY, this.geometry.offsetY, frame.stride);
    this.bpp = channelsOf(frame.format);
    this.unitX = unitAxis(this.ax, this.bpp);
    const plane = W * H;
    for (let c = 0; c < 3; c++) {
      const v = this.out instanceof Float32Array ? PAD * this.mul[c] + this.add[c] : PAD;
      if (layout === 'NCHW') this.out.fill(v, c * plane, (c + 1) * plane);
      else for (let o = c; o < plane * 3; o += 3) this.out[o] = v;
    }
    this.key = `${frame.width}x${frame.height}/${frame.stride}/${frame.format}`;
  }

  /**
   * Writes the tensor for `frame` into the reused output array and returns it. The array is
   * overwritten by the next call: copy it if it must outlive the inference.
   *
   * An output row that lands exactly on a source row, with the columns unscaled (640x480 into a
   * 640 letterbox), needs no blend: it is one table look-up per byte. Other rows blend four source
   * pixels per output pixel (top and bottom lerps, then the vertical one).
   */
  run(frame: Frame): Preprocessed {
    if (`${frame.width}x${frame.height}/${frame.stride}/${frame.format}` !== this.key) this.setup(frame);
    const W = this.spec.width;
    const plane = W * this.spec.height;
    const { ax, ay, out } = this;
    const src = frame.data;
    const [k0, k1, k2] = channelMap(frame.format, this.spec.colour);
    if (k0 !== this.lutKey[0] || k1 !== this.lutKey[1] || k2 !== this.lutKey[2]) this.fillLut([k0, k1, k2]);
    const [m0, m1, m2] = this.mul;
    const [a0, a1, a2] = this.add;
    const nchw = this.spec.layout === 'NCHW';
    // NCHW: channel c of pixel o at c * plane + o; NHWC: at o * 3 + c.
    const cs = nchw ? plane : 1;
    const ps = nchw ? 1 : 3;
    const { i0: cx0, i1: cx1, w1: wxs } = ax;
    const lut = this.lut;
    const step = this.bpp;
    for (let y = ay.lo; y < ay.hi; y++) {
      const r0 = ay.i0[y];
      const r1 = ay.i1[y];
      const wy = ay.w1[y];
      let o = (y * W + ax.lo) * ps;
      if (wy === 0 && this.unitX) {
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
    const geometry = toSourceGeometry(this.geometry, frame);
    if (this.half) {
      const h = this.half;
      for (let i = 0; i < h.length; i++) h[i] = f16bits(out[i]);
      return { data: h, dims: this.dims, geometry };
    }
    return { data: out, dims: this.dims, geometry };
  }

  /** The output value of byte v in model channel c at lut[c * 256 + v]: the same v * mul + add the blend computes. */
  private fillLut(k: readonly number[]): void {
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) this.lut[c * 256 + v] = v * this.mul[c] + this.add[c];
    this.lutKey = [...k];
  }
}
