import { channelsOf, type Frame } from '../capture/frame.js';
import { DaemonError } from '../errors.js';
import { type Loaded, loadAddon } from '../native/addon.js';
import type { InputSpec } from './manifest.js';
import { type Geometry, Preprocessor, type TensorData, toSourceGeometry } from './preprocess.js';
import { type AnyAxis, samplingPlan } from './sampling.js';

/**
 * Frame -> model input tensor, written straight into memory the caller gives (the inference
 * worker's SharedArrayBuffer slot): no per-pixel JS loop and no copy of the frame on the main
 * thread. The native edge_tensor addon does the pixel work; this side builds its sampling plan once
 * per frame size (the same tables as the reference in preprocess.ts) and checks every size before
 * anything crosses into C++. Without the addon, the reference writes the tensor and it is copied.
 */

interface TensorAddon {
  tensor(src: Uint8Array, dst: TensorData, ints: Int32Array, floats: Float32Array): void;
}

let addon: Loaded<TensorAddon> | undefined;
function tensorAddon(): Loaded<TensorAddon> {
  addon ??= loadAddon<TensorAddon>('edge_tensor');
  return addon;
}

/** Whether tensors are written natively here (else by the TypeScript reference). */
export function nativeTensorAvailable(): boolean {
  return tensorAddon().ok;
}

const DTYPE_CODE = { float32: 0, float16: 1, uint8: 2 } as const;
const BYTES = { float32: 4, float16: 2, uint8: 1 } as const;

/** A view of `dtype` over `bytes` (its first `n` elements). */
export function tensorView(dtype: InputSpec['dtype'], buf: ArrayBufferLike, n: number): TensorData {
  if (dtype === 'float32') return new Float32Array(buf, 0, n);
  if (dtype === 'float16') return new Uint16Array(buf, 0, n);
  return new Uint8Array(buf, 0, n);
}

export class Tensorizer {
  readonly spec: InputSpec;
  /** Elements and bytes of one tensor. */
  readonly length: number;
  readonly byteLength: number;
  readonly dims: number[];
  private readonly native: TensorAddon | undefined;
  private reference: Preprocessor | undefined;
  private key = '';
  private ints = new Int32Array(0);
  private floats = new Float32Array(0);
  private geometry!: Geometry;
  private minBytes = 0;
  /** The destination views of the slots seen lately, by buffer (a new view per frame would be garbage). */
  private readonly views = new WeakMap<ArrayBufferLike, TensorData>();

  /** `useNative: false` forces the TypeScript reference (tests compare the two). */
  constructor(spec: InputSpec, opts: { useNative?: boolean } = {}) {
    this.spec = spec;
    const C = spec.channels ?? 3;
    this.length = spec.width * spec.height * C;
    this.byteLength = this.length * BYTES[spec.dtype];
    this.dims = spec.layout === 'NCHW' ? [1, C, spec.height, spec.width] : [1, spec.height, spec.width, C];
    const a = opts.useNative === false ? undefined : tensorAddon();
    this.native = a?.ok ? a.addon : undefined;
  }

  get isNative(): boolean {
    return this.native !== undefined;
  }

  /**
   * Writes `frame`'s tensor into the first byteLength bytes of `dst` and returns the geometry that
   * maps model-input pixels back to the camera's full-resolution pixels.
   */
  write(frame: Frame, dst: ArrayBufferLike): Geometry {
    if (dst.byteLength < this.byteLength) {
      throw new DaemonError('TENSOR_SIZE', `tensor buffer: ${dst.byteLength} bytes, the model's input needs ${this.byteLength}`);
    }
    let view = this.views.get(dst);
    if (!view) {
      view = tensorView(this.spec.dtype, dst, this.length);
      this.views.set(dst, view);
    }
    if (!this.native) {
      this.reference ??= new Preprocessor(this.spec);
      const r = this.reference.run(frame);
      view.set(r.data);
      return r.geometry;
    }
    const key = `${frame.width}x${frame.height}/${frame.stride}/${frame.format}`;
    if (key !== this.key) this.plan(frame, key);
    if (frame.data.byteLength < this.minBytes) {
      throw new DaemonError(
        'FRAME_SIZE',
        `camera ${frame.camera}: frame #${frame.seq} has ${frame.data.byteLength} bytes; ` +
          `${frame.width}x${frame.height} ${frame.format} with stride ${frame.stride} needs ${this.minBytes}`,
      );
    }
    this.native.tensor(frame.data, view, this.ints, this.floats);
    return toSourceGeometry(this.geometry, frame);
  }

  /** The sampling plan for a new frame size (native/src/tensor.cc documents its layout). */
  private plan(frame: Frame, key: string): void {
    const { width: W, height: H, layout } = this.spec;
    const bpp = channelsOf(frame.format);
    if (frame.stride < frame.width * bpp) {
      throw new DaemonError(
        'FRAME_SIZE',
        `camera ${frame.camera}: stride ${frame.stride} is less than ${frame.width} pixels of ${bpp} bytes`,
      );
    }
    const p = samplingPlan(this.spec, frame);
    const { ax, ay } = p;
    const header = [W, H, layout === 'NCHW' ? 0 : 1, DTYPE_CODE[this.spec.dtype], bpp, ...p.k, ax.lo, ax.hi, ay.lo, ay.hi];
    header.push(p.unitX ? 1 : 0, p.channels, ax.kind === 'lerp' ? 0 : 1);
    const [xi, xf] = axisArrays(ax);
    const [yi, yf] = axisArrays(ay);
    const ints = new Int32Array(header.length + xi.length + yi.length);
    ints.set(header);
    ints.set(xi, header.length);
    ints.set(yi, header.length + xi.length);
    const floats = new Float32Array(12 + xf.length + yf.length);
    floats.set(p.mul, 0);
    floats.set(p.add, 3);
    floats.set(p.pad, 6);
    floats.set(p.grey, 9);
    floats.set(xf, 12);
    floats.set(yf, 12 + xf.length);
    const g = p.geometry;
    this.ints = ints;
    this.floats = floats;
    this.geometry = g;
    // The last byte any sample reads: the bottom row's offset plus a whole row of pixels.
    this.minBytes = (frame.height - 1) * frame.stride + frame.width * bpp;
    this.key = key;
  }
}

/** An axis as the native plan lays it out (native/src/tensor.cc): lerp i0, i1 | w1; taps start, off | weight. */
function axisArrays(a: AnyAxis): [Int32Array, Float32Array] {
  if (a.kind === 'lerp') {
    const ints = new Int32Array(a.i0.length * 2);
    ints.set(a.i0);
    ints.set(a.i1, a.i0.length);
    return [ints, a.w1];
  }
  const ints = new Int32Array(a.start.length + a.off.length);
  ints.set(a.start);
  ints.set(a.off, a.start.length);
  return [ints, a.weight];
}
