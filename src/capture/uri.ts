import { DaemonError } from '../errors.js';
import { type CameraUri, type CameraUriOptions, parseCameraUri, SINK_NAME, type V4l2Format } from '../config/camera-uri.js';
import type { CameraConfig } from '../config/schema.js';

/**
 * Camera URIs -> GStreamer pipeline strings ending in `appsink name=sink`.
 *
 * The URI is read and checked by src/config/camera-uri.ts (the same checks `check-config` runs);
 * this module only prints the pipeline. Nothing a user writes is pasted into a pipeline as is:
 * numbers were parsed there and are printed here, names come from fixed lists, and the few free
 * strings (a device path, a file URI, an RTSP URL), checked there to hold no whitespace, quotes,
 * backslashes or control characters, are passed inside double quotes. So a URI can set a property
 * of the element we chose, never add an element: `rtsp://h/x ! filesink location=/tmp/pwn` is rejected.
 */

export { SINK_NAME };
/** Our source elements are named, so GStreamer's messages name the same element on every attempt. */
export const SOURCE_NAME = 'source';

/**
 * What end-of-stream means: `stop` (a file that does not loop has ended), `restart` (a looping
 * file: open it again at once) or `reconnect` (a live source ended: back off and retry).
 */
export type EosPolicy = 'stop' | 'restart' | 'reconnect';

export type CameraSource =
  | { kind: 'images'; dir: string; fps: number; display: string }
  | {
      kind: Exclude<CameraUri['kind'], 'images'>;
      /** The pipeline at the camera's own size (no model to scale to). */
      pipeline: string;
      /**
       * The same source scaled for a model (see scaledPipeline); absent for gst:// (the expert's
       * pipeline is used as written) and csi:// (Argus scales in hardware already).
       */
      split?: SplitSource;
      onEos: EosPolicy;
      display: string;
      hint?: string;
    };

/** A source pipeline cut where the model branch and the full-resolution branch part. */
export interface SplitSource {
  /** Everything up to the tee: the source, its caps, the user's own scaling and the rate cap. */
  head: string;
  sync: boolean;
}

/** What the capture pipeline scales frames to: the model's input, its resize mode and interpolation. */
export interface ScaleTarget {
  width: number;
  height: number;
  resize: 'stretch' | 'letterbox' | 'center-crop';
  /** The manifest's input.interpolation; default bilinear. */
  interpolation?: 'bilinear' | 'nearest' | 'area' | 'bilinear-antialias' | 'bicubic-antialias';
}

/**
 * The scalers' own methods for the interpolations they do as the tensor writer does: videoscale's
 * (and a Jetson nvvidconv's interpolation-method) nearest and 2-tap bilinear. The antialiased ones
 * (area, *-antialias) have no exact GStreamer twin: that branch then only converts, at the camera's
 * size, and the tensor writer resamples exactly (a conversion of the whole frame: the price of
 * the model's own resize).
 */
const SCALER_METHOD: Partial<Record<NonNullable<ScaleTarget['interpolation']>, { videoscale: string; nvvidconv: number }>> = {
  bilinear: { videoscale: 'bilinear', nvvidconv: 1 },
  nearest: { videoscale: 'nearest-neighbour', nvvidconv: 0 },
};

/** The element that scales: GStreamer's own, or a Jetson's VIC hardware through nvvidconv. */
export type Scaler = 'videoscale' | 'nvvidconv';

/** Names of the full-resolution branch's elements (src/capture/native.ts FullBranch). */
export const FULL_BRANCH = { sink: 'full', valve: 'fullvalve', tee: 'split', gate: 'gate' } as const;

const V4L2_RAW: Record<Exclude<V4l2Format, 'auto' | 'mjpeg'>, string> = { yuyv: 'YUY2', nv12: 'NV12', i420: 'I420', gray8: 'GRAY8' };

const TEST_DEFAULTS = { width: 640, height: 480, fps: 30 };
const RTSP_DEFAULT_LATENCY_MS = 200;

/** Double-quotes a free string for the pipeline; src/config/camera-uri.ts checked it holds no quotes. */
const quote = (s: string) => `"${s}"`;

/** "25" -> 25/1, "29.97" -> 2997/100: GStreamer framerates are fractions. */
export function fpsFraction(fps: number): string {
  if (Number.isInteger(fps)) return `${fps}/1`;
  let n = Math.round(fps * 1000);
  let d = 1000;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = gcd(n, d);
  n /= g;
  d /= g;
  return `${n}/${d}`;
}

/** Above any camera's rate: the top of the range a camera is asked for when `fps` caps it. */
const MAX_CAMERA_FPS = 1000;

/**
 * A camera's caps fields. `fps` is a cap, never a mode: the camera is asked for any rate it has at
 * or above it (a camera whose only mode is 30 fps still negotiates with fps 10), and the tail's
 * videorate drops down to it.
 */
function capsFields(o: CameraUriOptions, withRate: boolean): string {
  let s = '';
  if (o.width !== undefined && o.height !== undefined) s += `,width=${o.width},height=${o.height}`;
  if (withRate && o.fps !== undefined) s += `,framerate=[${fpsFraction(o.fps)},${MAX_CAMERA_FPS}/1]`;
  return s;
}

/**
 * A source pipeline up to where it goes on at full resolution (`head`: cap the rate, dropping and
 * never duplicating; the user's own scaling, in the source's pixel format, cheaper than after
 * conversion), and that pipeline ended as today: converted to RGB into the appsink.
 */
function splittable(
  source: string,
  o: { scale?: CameraUriOptions; rate?: number; sync: boolean },
): { pipeline: string; split: SplitSource } {
  const parts = [source];
  if (o.rate !== undefined) parts.push(`videorate drop-only=true`, `video/x-raw,framerate=${fpsFraction(o.rate)}`);
  if (o.scale?.width !== undefined && o.scale.height !== undefined) {
    parts.push('videoscale', `video/x-raw,width=${o.scale.width},height=${o.scale.height},pixel-aspect-ratio=1/1`);
  }
  const head = parts.join(' ! ');
  return {
    pipeline: `${head} ! videoconvert ! video/x-raw,format=RGB ! appsink name=${SINK_NAME} sync=${o.sync}`,
    split: { head, sync: o.sync },
  };
}

/**
 * The model's caps after the scaler: stretch fills the input exactly; letterbox fits inside it
 * keeping the aspect ratio (GStreamer picks the largest size within the ranges with square pixels;
 * preprocessing pads the rest with the model's pad value); center-crop scales the height to the
 * input's (landscape cameras then cover the input; preprocessing crops the middle).
 */
function modelCaps(t: ScaleTarget): string {
  if (t.resize === 'stretch') return `width=${t.width},height=${t.height}`;
  if (t.resize === 'letterbox') return `width=[1,${t.width}],height=[1,${t.height}],pixel-aspect-ratio=1/1`;
  return `height=${t.height},pixel-aspect-ratio=1/1`;
}

/**
 * The source split by a tee: one branch scaled to the model's input before the conversion to RGB
 * (a 224x224 model converts 50 k pixels per frame instead of the camera's 300 k), into
 * `appsink name=sink`; the other at full resolution behind a closed valve, into `appsink name=full`,
 * opened only while full frames are wanted (snapshots, crops). Both branches see the same buffers,
 * so the addon pairs them by timestamp. The full sink does not preroll (async=false): with its valve
 * closed it never gets a buffer. The model branch has a valve too, the gate: the addon opens it only
 * while a read() waits for a frame, so the frames that would be dropped unread are not scaled.
 *
 * With nvvidconv (a Jetson), the VIC hardware scales and converts to RGBA in one step.
 */
export function scaledPipeline(split: SplitSource, target: ScaleTarget, scaler: Scaler = 'videoscale'): string {
  const { sink, valve, tee, gate } = FULL_BRANCH;
  const sync = `sync=${split.sync}`;
  const full = scaler === 'nvvidconv' ? 'nvvidconv ! video/x-raw,format=RGBA' : 'videoconvert ! video/x-raw,format=RGB';
  const method = SCALER_METHOD[target.interpolation ?? 'bilinear'];
  const model = !method
    ? full
    : scaler === 'nvvidconv'
      ? `nvvidconv interpolation-method=${method.nvvidconv} ! video/x-raw,format=RGBA,${modelCaps(target)}`
      : `videoscale method=${method.videoscale} add-borders=false ! video/x-raw,${modelCaps(target)} ! videoconvert ! video/x-raw,format=RGB`;
  return (
    `${split.head} ! tee name=${tee} ` +
    `${tee}. ! valve name=${gate} drop=false ! queue max-size-buffers=2 ! ${model} ! appsink name=${SINK_NAME} ${sync} ` +
    `${tee}. ! valve name=${valve} drop=true ! queue max-size-buffers=2 ! ${full} ! appsink name=${sink} ${sync} async=false`
  );
}

/**
 * Parses a camera's URI and options into what createCamera needs, or returns every problem as
 * `cameras.<name>.<key>: ...` lines. `name` is the camera's config name.
 */
export function resolveCameraSource(name: string, cfg: CameraConfig): { source?: CameraSource; problems: string[] } {
  const { uri, problems } = parseCameraUri(name, cfg);
  return uri ? { source: sourceOf(uri), problems: [] } : { problems };
}

/** Like resolveCameraSource, but throws a DaemonError (CAMERA_URI) listing the problems. */
export function cameraSource(name: string, cfg: CameraConfig): CameraSource {
  const { source, problems } = resolveCameraSource(name, cfg);
  if (!source) throw new DaemonError('CAMERA_URI', problems.join('; '));
  return source;
}

/** The pipeline for a checked camera URI. */
function sourceOf(u: CameraUri): CameraSource {
  switch (u.kind) {
    case 'images':
      return { kind: 'images', dir: u.dir, fps: u.fps, display: u.display };
    case 'gst':
      return { kind: 'gst', pipeline: u.pipeline, onEos: 'reconnect', display: u.display };
    case 'test': {
      const o = u.opts;
      const w = o.width ?? TEST_DEFAULTS.width;
      const h = o.height ?? TEST_DEFAULTS.height;
      const fps = o.fps ?? TEST_DEFAULTS.fps;
      const color = u.pattern === 'solid-color' ? ` foreground-color=0x${(o.color ?? 0xff000000).toString(16).padStart(8, '0')}` : '';
      // RGB straight from the source: solid colours arrive exactly as asked for.
      const source = `videotestsrc name=${SOURCE_NAME} is-live=true pattern=${u.pattern}${color}`;
      const head = `${source} ! video/x-raw,format=RGB,width=${w},height=${h},framerate=${fpsFraction(fps)}`;
      return { kind: 'test', ...splittable(head, { sync: false }), onEos: 'reconnect', display: u.display };
    }
    case 'file': {
      const o = u.opts;
      // sync=true: a file plays at its own frame rate, like a camera would deliver it.
      const built = splittable(`uridecodebin name=${SOURCE_NAME} uri=${quote(u.fileUri)}`, { scale: o, rate: o.fps, sync: true });
      return { kind: 'file', ...built, onEos: o.loop ? 'restart' : 'stop', display: u.display };
    }
    case 'v4l2': {
      const o = u.opts;
      const format = o.format ?? 'auto';
      const fields = capsFields(o, true);
      let head: string;
      if (format === 'mjpeg') head = `image/jpeg${fields} ! jpegdec`;
      else if (format === 'auto') head = `${fields ? `video/x-raw${fields};image/jpeg${fields} ! ` : ''}decodebin`;
      else head = `video/x-raw,format=${V4L2_RAW[format]}${fields}`;
      const built = splittable(`v4l2src name=${SOURCE_NAME} device=${quote(u.device)} ! ${head}`, { rate: o.fps, sync: false });
      return { kind: 'v4l2', ...built, onEos: 'reconnect', display: u.display };
    }
    case 'csi': {
      // Argus delivers NVMM (GPU) memory; nvvidconv converts to RGBA in hardware on the way out.
      const rate = u.opts.fps !== undefined ? `videorate drop-only=true ! video/x-raw,framerate=${fpsFraction(u.opts.fps)} ! ` : '';
      const pipeline =
        `nvarguscamerasrc name=${SOURCE_NAME} sensor-id=${u.sensorId} ! video/x-raw(memory:NVMM)${capsFields(u.opts, true)} ! ` +
        `nvvidconv ! video/x-raw,format=RGBA ! ${rate}appsink name=${SINK_NAME} sync=false`;
      const hint = "csi:// needs NVIDIA Argus (nvarguscamerasrc, nvvidconv: JetPack's nvidia-l4t-gstreamer package)";
      return { kind: 'csi', pipeline, onEos: 'reconnect', display: u.display, hint };
    }
    case 'rtsp': {
      const o = u.opts;
      const protocols = o.transport === 'tcp' ? ' protocols=tcp' : o.transport === 'udp' ? ' protocols=udp' : '';
      // drop-on-latency: a late packet is dropped rather than delaying every frame after it.
      const built = splittable(
        `rtspsrc name=${SOURCE_NAME} location=${quote(u.location)} ` +
          `latency=${o.latencyMs ?? RTSP_DEFAULT_LATENCY_MS}${protocols} drop-on-latency=true ! decodebin`,
        { scale: o, rate: o.fps, sync: false },
      );
      return { kind: 'rtsp', ...built, onEos: 'reconnect', display: u.display };
    }
  }
}
