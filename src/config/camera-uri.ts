import { pathToFileURL } from 'node:url';
import type { CameraConfig } from './schema.js';

/**
 * Camera URIs, read and checked: what `check-config` and the config loader report, and what
 * src/capture/uri.ts turns into a GStreamer pipeline. Nothing here knows GStreamer's syntax beyond
 * the name the appsink must have; it only decides whether a URI is acceptable and what it says.
 *
 * The checks are what keeps a pipeline free of injection: numbers are parsed here (the pipeline
 * builder prints them itself), names come from fixed lists, and the few free strings (a device
 * path, a file URI, an RTSP URL) are checked to hold no whitespace, quotes, backslashes or control
 * characters, so the builder can pass them inside double quotes. A URI can set a property of the
 * element capture chose, never add an element: `rtsp://h/x ! filesink location=/tmp/pwn` is rejected.
 *
 * Options come from the URI's query (`test://ball?width=320`) or the camera's config keys
 * (`cameras.<name>.width`); a config key wins over the same option in the URI.
 */

/** The appsink every pipeline ends in; `gst://` pipelines must use this name too. */
export const SINK_NAME = 'sink';

export type CameraKind = 'images' | 'test' | 'file' | 'v4l2' | 'csi' | 'rtsp' | 'gst';

export const V4L2_FORMATS = ['auto', 'mjpeg', 'yuyv', 'nv12', 'i420', 'gray8'] as const;
export type V4l2Format = (typeof V4L2_FORMATS)[number];

export const TEST_PATTERNS = [
  'smpte',
  'snow',
  'black',
  'white',
  'red',
  'green',
  'blue',
  'checkers-1',
  'checkers-2',
  'checkers-4',
  'checkers-8',
  'circular',
  'blink',
  'smpte75',
  'zone-plate',
  'gamut',
  'chroma-zone-plate',
  'solid-color',
  'ball',
  'smpte100',
  'bar',
  'pinwheel',
  'spokes',
  'gradient',
  'colors',
  'smpte-rp-219',
] as const;
export type TestPattern = (typeof TEST_PATTERNS)[number];

/** Options a camera kind understands; anything else in the query or the config is an error. */
const OPTIONS: Record<CameraKind, readonly string[]> = {
  images: ['fps'],
  test: ['width', 'height', 'fps', 'color'],
  file: ['width', 'height', 'fps', 'loop'],
  v4l2: ['width', 'height', 'fps', 'format'],
  csi: ['width', 'height', 'fps'],
  rtsp: ['width', 'height', 'fps', 'latencyMs', 'transport'],
  gst: [],
};
/** Query spellings of the options (the config key is the option name). */
const QUERY_NAME: Record<string, string> = { latencyMs: 'latency' };
const CONFIG_OPTIONS = ['width', 'height', 'fps', 'format', 'latencyMs', 'transport', 'loop'] as const;

/** A camera's options, checked: from its URI's query, with its config keys merged over them. */
export interface CameraUriOptions {
  width?: number;
  height?: number;
  fps?: number;
  format?: V4l2Format;
  latencyMs?: number;
  transport?: 'auto' | 'tcp' | 'udp';
  loop?: boolean;
  /** test://solid only: 0xAARRGGBB. */
  color?: number;
}

/**
 * What a camera URI says, checked. Free strings (`fileUri`, `device`, `location`) hold no
 * whitespace, quotes, backslashes or control characters. `display` is the URI with any password
 * replaced by *** (the URI as written for images:// and gst://).
 */
export type CameraUri =
  | { kind: 'images'; dir: string; fps: number; display: string }
  | { kind: 'gst'; pipeline: string; display: string }
  | { kind: 'test'; pattern: TestPattern; opts: CameraUriOptions; display: string }
  | { kind: 'file'; fileUri: string; opts: CameraUriOptions; display: string }
  | { kind: 'v4l2'; device: string; opts: CameraUriOptions; display: string }
  | { kind: 'csi'; sensorId: number; opts: CameraUriOptions; display: string }
  | { kind: 'rtsp'; location: string; opts: CameraUriOptions; display: string };

/** A problem with one config key, collected so check-config can list them all. */
class Problems {
  readonly list: string[] = [];
  constructor(readonly prefix: string) {}
  add(key: string, problem: string): void {
    this.list.push(`${this.prefix}.${key}: ${problem}`);
  }
}

/** The URI with a password replaced by ***, for logs and /status. */
export function redactUri(uri: string): string {
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@?#]*?:)[^/@?#]*@/i, '$1***@');
}

const show = (uri: string) => JSON.stringify(redactUri(uri));

/** The first character that may not appear in a value passed to GStreamer, or undefined. */
function unsafeChar(s: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  const m = /[\s"'\\\u0000-\u001f\u007f]/.exec(s);
  return m?.[0];
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  if (/\s/.test(c)) return 'whitespace';
  if (c === '"' || c === "'") return 'a quote';
  if (c === '\\') return 'a backslash';
  return 'a control character';
}

function parseQueryValue(p: Problems, opt: string, raw: string, into: CameraUriOptions): void {
  const key = 'uri';
  const q = QUERY_NAME[opt] ?? opt;
  const int = (min: number, max: number): number | undefined => {
    const v = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(v) || v < min || v > max) {
      p.add(key, `?${q}= must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return undefined;
    }
    return v;
  };
  switch (opt) {
    case 'width':
    case 'height': {
      const v = int(16, 8192);
      if (v !== undefined) into[opt] = v;
      return;
    }
    case 'latencyMs': {
      const v = int(0, 60_000);
      if (v !== undefined) into.latencyMs = v;
      return;
    }
    case 'fps': {
      const v = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!(v > 0 && v <= 1000)) p.add(key, `?fps= must be a number above 0 and at most 1000 (got ${JSON.stringify(raw)})`);
      else into.fps = v;
      return;
    }
    case 'format':
      if ((V4L2_FORMATS as readonly string[]).includes(raw)) into.format = raw as V4l2Format;
      else p.add(key, `?format= must be one of ${V4L2_FORMATS.join(', ')} (got ${JSON.stringify(raw)})`);
      return;
    case 'transport':
      if (raw === 'auto' || raw === 'tcp' || raw === 'udp') into.transport = raw;
      else p.add(key, `?transport= must be auto, tcp or udp (got ${JSON.stringify(raw)})`);
      return;
    case 'loop':
      if (raw === '1' || raw === 'true' || raw === '') into.loop = true;
      else if (raw === '0' || raw === 'false') into.loop = false;
      else p.add(key, `?loop= must be 1 or 0 (got ${JSON.stringify(raw)})`);
      return;
    case 'color':
      if (/^[0-9a-f]{6}$/i.test(raw)) into.color = (0xff000000 | parseInt(raw, 16)) >>> 0;
      else if (/^[0-9a-f]{8}$/i.test(raw)) into.color = parseInt(raw, 16) >>> 0;
      else p.add(key, `?color= must be RRGGBB or AARRGGBB in hex (got ${JSON.stringify(raw)})`);
      return;
  }
}

/**
 * Splits `scheme://rest?query` and reads the query's options. For rtsp:// only our option names are
 * taken out; every other parameter stays in the URL for the camera.
 */
function splitQuery(p: Problems, kind: CameraKind, uri: string, opts: CameraUriOptions): { base: string; rest: string[] } {
  const qi = uri.indexOf('?');
  if (qi < 0) return { base: uri, rest: [] };
  const base = uri.slice(0, qi);
  const rest: string[] = [];
  const known = OPTIONS[kind];
  for (const part of uri.slice(qi + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = decodeURIComponent(eq < 0 ? '' : part.slice(eq + 1));
    const opt = known.find((o) => (QUERY_NAME[o] ?? o) === name);
    if (opt) parseQueryValue(p, opt, value, opts);
    else if (kind === 'rtsp') rest.push(part);
    else {
      const names = known.map((o) => QUERY_NAME[o] ?? o);
      p.add('uri', `unknown option ?${name}= for ${kind}:// (${names.length ? `known: ${names.join(', ')}` : 'it takes none'})`);
    }
  }
  return { base, rest };
}

/** Merges the config keys over the query options; a key the camera kind does not use is a problem. */
function mergeConfig(p: Problems, kind: CameraKind, cfg: CameraConfig, opts: CameraUriOptions): void {
  for (const key of CONFIG_OPTIONS) {
    const v = cfg[key];
    if (v === undefined) continue;
    if (!OPTIONS[kind].includes(key)) {
      const users = (Object.keys(OPTIONS) as CameraKind[]).filter((k) => OPTIONS[k].includes(key)).map((k) => `${k}://`);
      p.add(key, `not used by ${kind}:// cameras (only by ${users.join(', ')})`);
      continue;
    }
    (opts as Record<string, unknown>)[key] = v;
  }
  if ((opts.width === undefined) !== (opts.height === undefined)) {
    const [missing, present] = opts.width === undefined ? ['width', 'height'] : ['height', 'width'];
    p.add(missing, `required when ${present} is set`);
  }
}

function kindOf(uri: string): CameraKind | string {
  if (uri.startsWith('/dev/')) return 'v4l2';
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
  if (!m) return '';
  const s = m[1].toLowerCase();
  return s === 'rtsps' ? 'rtsp' : s;
}

const KINDS: readonly string[] = ['images', 'test', 'file', 'v4l2', 'csi', 'rtsp', 'gst'];

/**
 * Reads and checks a camera's URI and options, or returns every problem as
 * `cameras.<name>.<key>: ...` lines. `name` is the camera's config name.
 */
export function parseCameraUri(name: string, cfg: CameraConfig): { uri?: CameraUri; problems: string[] } {
  const p = new Problems(`cameras.${name}`);
  const uri = cfg.uri;
  const kind = kindOf(uri);
  if (!KINDS.includes(kind)) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1];
    p.add(
      'uri',
      scheme
        ? `unsupported scheme "${scheme}:" (supported: ${KINDS.map((k) => `${k}://`).join(', ')}) (got ${show(uri)})`
        : `expected a URI such as test://ball, v4l2:///dev/video0 or rtsp://host/path (got ${show(uri)})`,
    );
    return { problems: p.list };
  }
  const k = kind as CameraKind;
  if (k === 'gst') return gstUri(p, cfg);
  if (k === 'images') {
    // A folder read by sharp, never by GStreamer: any path is fine, and there is no query.
    const opts: CameraUriOptions = {};
    mergeConfig(p, k, cfg, opts);
    if (p.list.length) return { problems: p.list };
    return { uri: { kind: 'images', dir: uri.slice('images://'.length), fps: opts.fps ?? 2, display: uri }, problems: [] };
  }
  const bad = unsafeChar(uri);
  if (bad !== undefined) {
    p.add('uri', `must not contain ${describeChar(bad)}; percent-encode it in URLs (got ${show(uri)})`);
    return { problems: p.list };
  }
  const opts: CameraUriOptions = {};
  let split: { base: string; rest: string[] };
  try {
    split = splitQuery(p, k, uri, opts);
  } catch {
    p.add('uri', `bad percent-encoding (got ${show(uri)})`);
    return { problems: p.list };
  }
  const { base, rest } = split;
  mergeConfig(p, k, cfg, opts);
  const display = redactUri(uri);
  const parsed = PARSERS[k](p, base, opts, display, rest);
  return p.list.length ? { problems: p.list } : { uri: parsed, problems: [] };
}

function testUri(p: Problems, base: string, opts: CameraUriOptions, display: string): CameraUri | undefined {
  let pattern = base.slice('test://'.length).replace(/\/$/, '') || 'smpte';
  if (pattern === 'solid') pattern = 'solid-color';
  if (!(TEST_PATTERNS as readonly string[]).includes(pattern)) {
    p.add('uri', `unknown test pattern "${pattern}" (known: solid, ${TEST_PATTERNS.join(', ')})`);
    return undefined;
  }
  if (opts.color !== undefined && pattern !== 'solid-color') p.add('uri', '?color= only applies to test://solid');
  return { kind: 'test', pattern: pattern as TestPattern, opts, display };
}

function fileUri(p: Problems, base: string, opts: CameraUriOptions, display: string): CameraUri | undefined {
  let path: string;
  try {
    path = decodeURIComponent(base.slice('file://'.length));
  } catch {
    path = '';
  }
  if (!path.startsWith('/')) {
    p.add('uri', `expected an absolute path, file:///dir/video.mp4 (got ${show(base)})`);
    return undefined;
  }
  // pathToFileURL percent-encodes anything special; the check below is the belt to those braces.
  const href = pathToFileURL(path).href;
  const bad = unsafeChar(href);
  if (bad !== undefined) {
    p.add('uri', `the path contains ${describeChar(bad)} (got ${show(base)})`);
    return undefined;
  }
  return { kind: 'file', fileUri: href, opts, display };
}

/** /dev/video0, /dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_ABC-video-index0, /dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0 */
const DEVICE_RE = /^\/dev\/[A-Za-z0-9_.:+@-]+(\/[A-Za-z0-9_.:+@-]+)*$/;

function v4l2Uri(p: Problems, base: string, opts: CameraUriOptions, display: string): CameraUri | undefined {
  const device = base.startsWith('/dev/') ? base : base.slice('v4l2://'.length);
  if (!DEVICE_RE.test(device) || device.split('/').includes('..')) {
    p.add('uri', `expected a device path such as v4l2:///dev/video0 or v4l2:///dev/v4l/by-id/... (got ${show(base)})`);
    return undefined;
  }
  return { kind: 'v4l2', device, opts, display };
}

function csiUri(p: Problems, base: string, opts: CameraUriOptions, display: string): CameraUri | undefined {
  const id = base.slice('csi://'.length).replace(/\/$/, '') || '0';
  if (!/^\d{1,2}$/.test(id) || Number(id) > 15) {
    p.add('uri', `expected a sensor number, csi://0 to csi://15 (got ${show(base)})`);
    return undefined;
  }
  return { kind: 'csi', sensorId: Number(id), opts, display };
}

function rtspUri(p: Problems, base: string, opts: CameraUriOptions, display: string, rest: string[]): CameraUri | undefined {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    url = undefined as unknown as URL;
  }
  if (!url?.hostname) {
    p.add('uri', `expected rtsp://[user:password@]host[:port]/path (got ${show(base)})`);
    return undefined;
  }
  const location = rest.length ? `${base}?${rest.join('&')}` : base;
  return { kind: 'rtsp', location, opts, display };
}

type Parser = (p: Problems, base: string, opts: CameraUriOptions, display: string, rest: string[]) => CameraUri | undefined;
const PARSERS: Record<Exclude<CameraKind, 'images' | 'gst'>, Parser> = {
  test: testUri,
  file: fileUri,
  v4l2: v4l2Uri,
  csi: csiUri,
  rtsp: rtspUri,
};

function gstUri(p: Problems, cfg: CameraConfig): { uri?: CameraUri; problems: string[] } {
  const pipeline = cfg.uri.slice('gst://'.length).trim();
  const opts: CameraUriOptions = {};
  mergeConfig(p, 'gst', cfg, opts);
  if (!new RegExp(`\\bappsink\\b[^!]*\\bname\\s*=\\s*"?${SINK_NAME}"?(\\s|$)`).test(pipeline)) {
    p.add('uri', `a gst:// pipeline must end in "appsink name=${SINK_NAME}" (got ${JSON.stringify(pipeline.slice(-60))})`);
  }
  if (p.list.length) return { problems: p.list };
  return { uri: { kind: 'gst', pipeline, display: cfg.uri }, problems: [] };
}
