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
  | { kind: Exclude<CameraUri['kind'], 'images'>; pipeline: string; onEos: EosPolicy; display: string; hint?: string };

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
 * The common end of a pipeline: cap the rate (dropping, never duplicating), scale while still in
 * the source's pixel format (cheaper than after conversion), convert to RGB, hand to the appsink.
 */
function tail(o: { scale?: CameraUriOptions; rate?: number; sync: boolean }): string {
  const parts: string[] = [];
  if (o.rate !== undefined) parts.push(`videorate drop-only=true`, `video/x-raw,framerate=${fpsFraction(o.rate)}`);
  if (o.scale?.width !== undefined && o.scale.height !== undefined) {
    parts.push('videoscale', `video/x-raw,width=${o.scale.width},height=${o.scale.height},pixel-aspect-ratio=1/1`);
  }
  parts.push('videoconvert', 'video/x-raw,format=RGB', `appsink name=${SINK_NAME} sync=${o.sync}`);
  return parts.join(' ! ');
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
      const pipeline =
        `videotestsrc name=${SOURCE_NAME} is-live=true pattern=${u.pattern}${color} ! ` +
        `video/x-raw,format=RGB,width=${w},height=${h},framerate=${fpsFraction(fps)} ! ${tail({ sync: false })}`;
      return { kind: 'test', pipeline, onEos: 'reconnect', display: u.display };
    }
    case 'file': {
      const o = u.opts;
      // sync=true: a file plays at its own frame rate, like a camera would deliver it.
      const pipeline = `uridecodebin name=${SOURCE_NAME} uri=${quote(u.fileUri)} ! ${tail({ scale: o, rate: o.fps, sync: true })}`;
      return { kind: 'file', pipeline, onEos: o.loop ? 'restart' : 'stop', display: u.display };
    }
    case 'v4l2': {
      const o = u.opts;
      const format = o.format ?? 'auto';
      const fields = capsFields(o, true);
      let head: string;
      if (format === 'mjpeg') head = `image/jpeg${fields} ! jpegdec`;
      else if (format === 'auto') head = `${fields ? `video/x-raw${fields};image/jpeg${fields} ! ` : ''}decodebin`;
      else head = `video/x-raw,format=${V4L2_RAW[format]}${fields}`;
      const pipeline = `v4l2src name=${SOURCE_NAME} device=${quote(u.device)} ! ${head} ! ${tail({ rate: o.fps, sync: false })}`;
      return { kind: 'v4l2', pipeline, onEos: 'reconnect', display: u.display };
    }
    case 'csi': {
      // Argus delivers NVMM (GPU) memory; nvvidconv converts to RGBA in hardware on the way out.
      const pipeline =
        `nvarguscamerasrc name=${SOURCE_NAME} sensor-id=${u.sensorId} ! video/x-raw(memory:NVMM)${capsFields(u.opts, true)} ! ` +
        `nvvidconv ! video/x-raw,format=RGBA ! ${u.opts.fps !== undefined ? `videorate drop-only=true ! video/x-raw,framerate=${fpsFraction(u.opts.fps)} ! ` : ''}appsink name=${SINK_NAME} sync=false`;
      const hint = 'csi:// needs NVIDIA Argus (nvarguscamerasrc, nvvidconv: JetPack\'s nvidia-l4t-gstreamer package)';
      return { kind: 'csi', pipeline, onEos: 'reconnect', display: u.display, hint };
    }
    case 'rtsp': {
      const o = u.opts;
      const protocols = o.transport === 'tcp' ? ' protocols=tcp' : o.transport === 'udp' ? ' protocols=udp' : '';
      // drop-on-latency: a late packet is dropped rather than delaying every frame after it.
      const pipeline =
        `rtspsrc name=${SOURCE_NAME} location=${quote(u.location)} latency=${o.latencyMs ?? RTSP_DEFAULT_LATENCY_MS}${protocols} drop-on-latency=true ! ` +
        `decodebin ! ${tail({ scale: o, rate: o.fps, sync: false })}`;
      return { kind: 'rtsp', pipeline, onEos: 'reconnect', display: u.display };
    }
  }
}
