import { channelsOf, type Frame } from '../capture/frame.js';
import type { InputSpec } from './manifest.js';

/**
 * Frame -> model input tensor in one pass: bilinear resize (stretch | letterbox | center-crop),
 * colour order, scale/mean/std and layout. Output arrays and the per-column sampling tables are
 * reused between frames of the same size, so the steady state allocates nothing.
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

export interface Preprocessed {
  data: Float32Array | Uint8Array;
  dims: number[];
  geometry: Geometry;
}

/** YOLO-style grey for letterbox padding. */
const PAD = 114;

export function geometryFor(spec: Pick<InputSpec, 'width' | 'height' | 'resize'>, srcW: number, srcH: number): Geometry {
  const { width: W, height: H } = spec;
  if (spec.resize === 'stretch') return { scaleX: W / srcW, scaleY: H / srcH, offsetX: 0, offsetY: 0, srcWidth: srcW, srcHeight: srcH };
  const s = spec.resize === 'letterbox' ? Math.min(W / srcW, H / srcH) : Math.max(W / srcW, H / srcH);
  return { scaleX: s, scaleY: s, offsetX: (W - srcW * s) / 2, offsetY: (H - srcH * s) / 2, srcWidth: srcW, srcHeight: srcH };
}

/** Model-input box (x, y, w, h) -> source pixels. */
export function toSource(g: Geometry, x: number, y: number, w: number, h: number): [number, number, number, number] {
  return [(x - g.offsetX) / g.scaleX, (y - g.offsetY) / g.scaleY, w / g.scaleX, h / g.scaleY];
}

interface Axis {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
  /** false where the destination pixel falls outside the source (letterbox padding). */
  inside: Uint8Array;
}

function axis(dst: number, src: number, scale: number, offset: number): Axis {
  const a: Axis = { i0: new Int32Array(dst), i1: new Int32Array(dst), w1: new Float32Array(dst), inside: new Uint8Array(dst) };
  for (let d = 0; d < dst; d++) {
    const s = (d + 0.5 - offset) / scale - 0.5;
    a.inside[d] = s >= -0.5 && s <= src - 0.5 ? 1 : 0;
    const c = Math.min(Math.max(s, 0), src - 1);
    const i0 = Math.floor(c);
    a.i0[d] = i0;
    a.i1[d] = Math.min(i0 + 1, src - 1);
    a.w1[d] = c - i0;
  }
  return a;
}

/** Which source byte holds each model channel (R,G,B or B,G,R order). */
function channelMap(format: Frame['format'], colour: InputSpec['colour']): [number, number, number] {
  const rgb: [number, number, number] = format === 'BGR' || format === 'BGRA' ? [2, 1, 0] : format === 'GRAY8' ? [0, 0, 0] : [0, 1, 2];
  return colour === 'RGB' ? rgb : [rgb[2], rgb[1], rgb[0]];
}

export class Preprocessor {
  private readonly spec: InputSpec;
  private out: Float32Array | Uint8Array;
  private key = '';
  private ax!: Axis;
  private ay!: Axis;
  private geometry!: Geometry;
  private readonly mul: Float32Array;
  private readonly add: Float32Array;

  constructor(spec: InputSpec) {
    this.spec = spec;
    const n = spec.width * spec.height * 3;
    this.out = spec.dtype === 'uint8' ? new Uint8Array(n) : new Float32Array(n);
    // (p * scale - mean) / std == p * mul + add
    this.mul = Float32Array.from(spec.std, (s) => spec.scale / s);
    this.add = Float32Array.from(spec.mean, (m, i) => -m / spec.std[i]);
  }

  get dims(): number[] {
    const { width: W, height: H, layout } = this.spec;
    return layout === 'NCHW' ? [1, 3, H, W] : [1, H, W, 3];
  }

  /**
   * Writes the tensor for `frame` into the reused output array and returns it. The array is
   * overwritten by the next call: copy it if it must outlive the inference.
   */
  run(frame: Frame): Preprocessed {
    const { width: W, height: H, layout } = this.spec;
    const key = `${frame.width}x${frame.height}`;
    if (key !== this.key) {
      this.geometry = geometryFor(this.spec, frame.width, frame.height);
      this.ax = axis(W, frame.width, this.geometry.scaleX, this.geometry.offsetX);
      this.ay = axis(H, frame.height, this.geometry.scaleY, this.geometry.offsetY);
      this.key = key;
    }
    const { ax, ay, mul, add, out } = this;
    const src = frame.data;
    const stride = frame.stride;
    const ch = channelsOf(frame.format);
    const [c0, c1, c2] = channelMap(frame.format, this.spec.colour);
    const plane = W * H;
    const nchw = layout === 'NCHW';
    const isFloat = out instanceof Float32Array;
    const padV = [PAD * mul[0] + add[0], PAD * mul[1] + add[1], PAD * mul[2] + add[2]];
    const chans = [c0, c1, c2];

    for (let y = 0; y < H; y++) {
      const r0 = ay.i0[y] * stride;
      const r1 = ay.i1[y] * stride;
      const wy = ay.w1[y];
      const yIn = ay.inside[y];
      for (let x = 0; x < W; x++) {
        const o = y * W + x;
        if (!yIn || !ax.inside[x]) {
          for (let c = 0; c < 3; c++) out[nchw ? c * plane + o : o * 3 + c] = isFloat ? padV[c] : PAD;
          continue;
        }
        const p0 = ax.i0[x] * ch;
        const p1 = ax.i1[x] * ch;
        const wx = ax.w1[x];
        for (let c = 0; c < 3; c++) {
          const k = chans[c];
          const top = src[r0 + p0 + k] + (src[r0 + p1 + k] - src[r0 + p0 + k]) * wx;
          const bot = src[r1 + p0 + k] + (src[r1 + p1 + k] - src[r1 + p0 + k]) * wx;
          const v = top + (bot - top) * wy;
          out[nchw ? c * plane + o : o * 3 + c] = isFloat ? v * mul[c] + add[c] : v + 0.5;
        }
      }
    }
    return { data: out, dims: this.dims, geometry: this.geometry };
  }
}
