/**
 * Typed wrapper for the capture addon in native/ (see native/README.md), edge_capture.node:
 * GStreamer pipeline → appsink → newest frame, pulled by `read()`. src/native/addon.ts finds and
 * loads it.
 *
 * Everything is validated here before it crosses into C++ (C++ trusts what it is given), and every
 * native error becomes a `CaptureError` with a stable `code` and the stack of the JS call site.
 */
import { DaemonError } from '../errors.js';
import { type Loaded, loadAddon } from '../native/addon.js';

/** The Debian/Ubuntu packages that make `npm install` build the capture addon and let it run. */
export const GST_APT_PACKAGES = 'libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good';
const GST_HINT =
  `install them with: sudo apt-get install ${GST_APT_PACKAGES} ` +
  `(and a C++ toolchain: build-essential python3), then run: npm rebuild edge-inferd ` +
  `(or node scripts/build-native.mjs in the package folder)`;

/** Elements every pipeline we build needs (gstreamer1.0-plugins-base). */
const REQUIRED_ELEMENTS = ['appsink', 'videoconvert', 'videoscale'];

// ---------------------------------------------------------------------------------------------
// Errors

export type CaptureErrorCode =
  /** The capture addon is not built or GStreamer's libraries/plugins are not installed. */
  | 'GST_MISSING'
  /** gst_init failed. */
  | 'GST_INIT'
  /** The pipeline text does not parse or link (a missing element, a bad property, caps that cannot link). */
  | 'PIPELINE_PARSE'
  /** The pipeline has no appsink with the expected name (`appsink name=sink`). */
  | 'NO_APPSINK'
  /** The pipeline could not be started (a missing or busy device, no permission). */
  | 'STATE_CHANGE'
  /** The pipeline failed while running. */
  | 'STREAM_ERROR'
  /** The pipeline failed while running because caps could not be negotiated. */
  | 'NOT_NEGOTIATED'
  /** The source ended (after the last frame was read). */
  | 'EOS'
  /** close() was called (a pending read is rejected with this; so is every read after close). */
  | 'CLOSED'
  | 'NOT_OPEN'
  | 'ALREADY_OPEN'
  /** read() was called while another read() was pending. */
  | 'READ_PENDING'
  /** The appsink delivered something that is not raw video (this read fails, the stream goes on). */
  | 'UNSUPPORTED_CAPS'
  | 'MAP'
  | 'THREAD'
  /** open() options did not validate (nothing reached C++). */
  | 'BAD_OPTIONS';

export class CaptureError extends DaemonError {
  declare readonly code: CaptureErrorCode;
  /** GStreamer's debug string (file, function, element path and the real reason, e.g. "not-negotiated"). */
  readonly debug?: string;
  /** The element that posted the error; for PIPELINE_PARSE, the missing element name(s). */
  readonly element?: string;
  /** GStreamer error domain: 'resource' | 'stream' | 'core' | 'library' | 'parse'. */
  readonly domain?: string;
  /** GStreamer error code within the domain (GstResourceError, GstStreamError, GstParseError ...). */
  readonly gstCode?: number;

  constructor(
    code: CaptureErrorCode,
    message: string,
    details: { debug?: string; element?: string; domain?: string; gstCode?: number; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CaptureError';
    if (details.debug !== undefined) this.debug = details.debug;
    if (details.element !== undefined) this.element = details.element;
    if (details.domain !== undefined) this.domain = details.domain;
    if (details.gstCode !== undefined) this.gstCode = details.gstCode;
  }
}

/** What the addon throws/rejects with: an Error with these own properties. */
interface RawNativeError {
  message: string;
  code?: string;
  debug?: string;
  element?: string;
  domain?: string;
  gstCode?: number;
}

const NATIVE_CODES: ReadonlySet<string> = new Set<CaptureErrorCode>([
  'GST_INIT',
  'PIPELINE_PARSE',
  'NO_APPSINK',
  'STATE_CHANGE',
  'STREAM_ERROR',
  'EOS',
  'CLOSED',
  'NOT_OPEN',
  'ALREADY_OPEN',
  'READ_PENDING',
  'UNSUPPORTED_CAPS',
  'MAP',
  'THREAD',
]);

/** The last line of GStreamer's debug text is the useful part ("streaming stopped, reason not-negotiated (-4)"). */
function debugReason(debug: string | undefined): string | undefined {
  if (!debug) return undefined;
  const lines = debug
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1];
}

/** Turns a native error into a CaptureError whose stack is the one captured at the JS call site. */
function fromNative(raw: unknown, site: { stack?: string }): CaptureError {
  const e = (raw ?? {}) as RawNativeError;
  const nativeCode = typeof e.code === 'string' && NATIVE_CODES.has(e.code) ? (e.code as CaptureErrorCode) : 'STREAM_ERROR';
  let code = nativeCode;
  let message = typeof e.message === 'string' ? e.message : String(raw);
  const reason = debugReason(e.debug);
  if (code === 'STREAM_ERROR' && e.debug?.includes('not-negotiated')) code = 'NOT_NEGOTIATED';
  // GStreamer's generic message says little; put the debug reason and the element next to it.
  if ((code === 'STREAM_ERROR' || code === 'NOT_NEGOTIATED' || code === 'STATE_CHANGE') && reason && !message.includes(reason)) {
    message = `${message} (${e.element ? `${e.element}: ` : ''}${reason})`;
  } else if (e.element && (code === 'STREAM_ERROR' || code === 'STATE_CHANGE')) {
    message = `${message} (${e.element})`;
  }
  if (code === 'NOT_NEGOTIATED') {
    message += ' — the caps asked for downstream cannot be produced upstream; add videoconvert/videoscale or change the caps';
  }
  if (code === 'PIPELINE_PARSE' && e.domain === 'parse' && e.gstCode === 1 /* GST_PARSE_ERROR_NO_SUCH_ELEMENT */) {
    message +=
      ` — is the GStreamer plugin that provides it installed? (gst-inspect-1.0 ${e.element ?? '<element>'}; ` +
      `apt-get install gstreamer1.0-plugins-base gstreamer1.0-plugins-good, -bad or -ugly)`;
  }
  const err = new CaptureError(code, message, {
    ...(e.debug !== undefined ? { debug: e.debug } : {}),
    ...(e.element !== undefined ? { element: e.element } : {}),
    ...(e.domain !== undefined ? { domain: e.domain } : {}),
    ...(e.gstCode !== undefined ? { gstCode: e.gstCode } : {}),
  });
  withSiteStack(err, site);
  return err;
}

/** Replaces err.stack's frames with those captured at the call site (the header stays err's own). */
function withSiteStack(err: Error, site: { stack?: string }): void {
  const frames = site.stack ? site.stack.slice(site.stack.indexOf('\n') + 1) : '';
  err.stack = `${err.name} [${(err as { code?: string }).code ?? ''}]: ${err.message}${frames ? `\n${frames}` : ''}`;
}

function captureSite(fn: (...args: never[]) => unknown): { stack?: string } {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, fn);
  return site;
}

// ---------------------------------------------------------------------------------------------
// Loading

interface NativeCaptureHandle {
  open(pipeline: string, sinkName: string, copy: boolean, pullTimeoutMs: number, full: FullBranch | null, lossless: boolean): void;
  setFull(on: boolean): void;
  read(): Promise<NativeFrame>;
  close(): void;
  stats(): CaptureStats;
}

interface CaptureAddon {
  Capture: new () => NativeCaptureHandle;
  probe(elements: string[]): { ok: boolean; version?: string; error?: string; missing: string[] };
}

let captureAddon: Loaded<CaptureAddon> | undefined;
let scaler: 'videoscale' | 'nvvidconv' | undefined;

/**
 * The element that scales frames to the model: nvvidconv (a Jetson's VIC hardware) when GStreamer
 * has it, else videoscale. Asked once; `edge-inferd probe` shows the answer.
 */
export function scalerElement(): 'videoscale' | 'nvvidconv' {
  if (scaler) return scaler;
  const loaded = getCaptureAddon();
  scaler = loaded.ok && loaded.addon.probe(['nvvidconv']).missing.length === 0 ? 'nvvidconv' : 'videoscale';
  return scaler;
}
let availability: { ok: true } | { ok: false; reason: string } | undefined;

function getCaptureAddon(): Loaded<CaptureAddon> {
  captureAddon ??= loadAddon<CaptureAddon>('edge_capture');
  return captureAddon;
}

/**
 * Whether camera capture can work here: the addon is built and loads, GStreamer initialises and the
 * base plugins are present. The reason names the apt packages. Cached after the first call.
 */
export function captureAvailable(): { ok: true } | { ok: false; reason: string } {
  if (availability) return availability;
  const loaded = getCaptureAddon();
  if (!loaded.ok) {
    availability = { ok: false, reason: `GStreamer capture is unavailable: ${loaded.reason}; ${GST_HINT}` };
    return availability;
  }
  const probe = loaded.addon.probe(REQUIRED_ELEMENTS);
  if (!probe.ok) {
    availability = { ok: false, reason: `GStreamer does not initialise: ${probe.error ?? 'unknown error'}; ${GST_HINT}` };
  } else if (probe.missing.length > 0) {
    availability = {
      ok: false,
      reason: `GStreamer elements missing: ${probe.missing.join(', ')}; ${GST_HINT}`,
    };
  } else {
    availability = { ok: true };
  }
  return availability;
}

// ---------------------------------------------------------------------------------------------
// Capture

export type NativePixelFormat = 'RGB' | 'BGR' | 'RGBA' | 'BGRA' | 'BGRx' | 'RGBx' | 'GRAY8' | 'I420' | 'NV12';

export interface NativePlane {
  /** Byte offset of the plane in `data`. */
  offset: number;
  /** Bytes per row of the plane (>= the visible row; GStreamer pads RGB/GRAY8 rows to 4 bytes). */
  stride: number;
}

export interface NativeFrame {
  /**
   * The pixels, planes at `planes[i].offset` with `planes[i].stride`.
   * copy mode (default): ONE buffer reused by every read() — valid until the next read() settles;
   * copy it if you keep it. Zero-copy mode: a read-only view of GStreamer's memory, valid as long
   * as you hold it (it holds a GStreamer buffer until garbage collected).
   */
  data: Buffer;
  width: number;
  height: number;
  /** Bytes per row of plane 0. */
  stride: number;
  /** GStreamer's format name ('RGB', 'I420', ...); any raw video format GStreamer knows works. */
  format: NativePixelFormat | (string & {});
  planes: NativePlane[];
  /** 1, 2, 3 ... per NativeCapture object, counted for every frame the appsink produced: gaps are drops. */
  seq: number;
  /** The buffer's presentation timestamp in ns (pipeline running time), or null when it has none. */
  ptsNs: number | null;
  /** When the pull thread got the frame: CLOCK_MONOTONIC ns, the clock of process.hrtime.bigint(). */
  capturedAtNs: number;
  /** With a full-resolution branch: the size of the frames entering its tee (the camera's own size). */
  sourceWidth?: number;
  sourceHeight?: number;
  /** While setFull(true): the full-resolution frame of the same instant (same timestamp), its own reused buffer. */
  full?: NativeFrame;
}

/**
 * Elements of a pipeline's full-resolution branch: `tee name=<tee>` before the scaling, and on its
 * second output `valve name=<valve> drop=true ! ... ! appsink name=<sink>`. The valve stays closed
 * (nothing converted) until setFull(true).
 */
export interface FullBranch {
  sink: string;
  valve: string;
  tee: string;
  /** A `valve` in front of the model branch's scaler: open only while a read() waits for a frame. */
  gate?: string;
}

export interface CaptureStats {
  /** Frames the source produced (those the gate kept from the scaler included). */
  received: number;
  /** Frames handed to read(). */
  delivered: number;
  /** Frames nobody read: replaced by a newer one (latest frame wins) or dropped at the gate. */
  dropped: number;
  /** Of those, the frames the gate dropped before the scaler because no read() waited. */
  gated: number;
  /** Errors: failed opens, stream errors, frames that could not be mapped. */
  errors: number;
}

export interface CaptureOptions {
  /** Copy into one reused buffer (default, predictable memory) or hand out GStreamer's memory. */
  copy?: boolean;
  /** How long the pull thread waits for a sample before it polls the bus again (1..10000, default 100). */
  pullTimeoutMs?: number;
  /** Name of the appsink to pull from (default 'sink': end the pipeline with `appsink name=sink`). */
  sinkName?: string;
  /** The pipeline's full-resolution branch, if it has one. */
  full?: FullBranch;
  /**
   * Every frame, none dropped: the next frame is taken from the appsink only once the previous
   * one was read, so the pipeline waits (a video file decoded for `infer`; never a live camera).
   */
  lossless?: boolean;
}

export const DEFAULT_SINK_NAME = 'sink';
const SINK_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

function validateOpen(
  pipeline: unknown,
  opts: unknown,
): { pipeline: string; copy: boolean; timeout: number; sink: string; full: FullBranch | null; lossless: boolean } {
  if (typeof pipeline !== 'string' || pipeline.trim() === '') {
    throw new CaptureError('BAD_OPTIONS', 'pipeline: expected a non-empty string');
  }
  if (pipeline.includes('\0')) throw new CaptureError('BAD_OPTIONS', 'pipeline: contains a NUL character');
  if (opts === null || typeof opts !== 'object') throw new CaptureError('BAD_OPTIONS', 'options: expected an object');
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'copy' && key !== 'pullTimeoutMs' && key !== 'sinkName' && key !== 'full' && key !== 'lossless') {
      throw new CaptureError('BAD_OPTIONS', `options.${key}: unknown option (known: copy, pullTimeoutMs, sinkName, full, lossless)`);
    }
  }
  const lossless = o.lossless ?? false;
  if (typeof lossless !== 'boolean') throw new CaptureError('BAD_OPTIONS', 'options.lossless: expected a boolean');
  const copy = o.copy ?? true;
  if (typeof copy !== 'boolean') throw new CaptureError('BAD_OPTIONS', 'options.copy: expected a boolean');
  const timeout = o.pullTimeoutMs ?? 100;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > 10_000) {
    throw new CaptureError('BAD_OPTIONS', 'options.pullTimeoutMs: expected an integer from 1 to 10000');
  }
  const sink = o.sinkName ?? DEFAULT_SINK_NAME;
  if (typeof sink !== 'string' || !SINK_NAME_RE.test(sink)) {
    throw new CaptureError('BAD_OPTIONS', 'options.sinkName: expected an element name like "sink"');
  }
  let full: FullBranch | null = null;
  if (o.full !== undefined) {
    const f = o.full as Record<string, unknown> | null;
    if (f === null || typeof f !== 'object') throw new CaptureError('BAD_OPTIONS', 'options.full: expected { sink, valve, tee }');
    for (const k of ['sink', 'valve', 'tee', 'gate'] as const) {
      if (k === 'gate' && f[k] === undefined) continue;
      if (typeof f[k] !== 'string' || !SINK_NAME_RE.test(f[k] as string)) {
        throw new CaptureError('BAD_OPTIONS', `options.full.${k}: expected an element name like "full"`);
      }
    }
    full = {
      sink: f.sink as string,
      valve: f.valve as string,
      tee: f.tee as string,
      ...(f.gate !== undefined ? { gate: f.gate as string } : {}),
    };
  }
  return { pipeline, copy, timeout, sink, full, lossless };
}

/**
 * One GStreamer pipeline whose appsink (named `sink` unless options.sinkName says otherwise) feeds
 * frames. A native thread pulls every sample and keeps only the newest; `read()` resolves with the
 * newest frame not yet read, waiting if there is none. Call `close()` to stop the threads: nothing
 * is left to garbage collection (an env cleanup hook covers worker/process teardown without close()).
 */
export class NativeCapture {
  #handle: NativeCaptureHandle | undefined;
  #reading = false;
  #open = false;

  /** open() with the same pipeline again after close() is allowed; counters keep counting. */
  open(pipeline: string, opts: CaptureOptions = {}): void {
    const site = captureSite(this.open);
    const v = validateOpen(pipeline, opts);
    if (this.#open) {
      const err = new CaptureError('ALREADY_OPEN', 'capture is already open; close() it first');
      withSiteStack(err, site);
      throw err;
    }
    if (!this.#handle) {
      const available = captureAvailable();
      if (!available.ok) {
        const err = new CaptureError('GST_MISSING', available.reason);
        withSiteStack(err, site);
        throw err;
      }
      const loaded = getCaptureAddon();
      if (!loaded.ok) throw new CaptureError('GST_MISSING', loaded.reason); // unreachable: checked above
      this.#handle = new loaded.addon.Capture();
    }
    try {
      this.#handle.open(v.pipeline, v.sink, v.copy, v.timeout, v.full, v.lossless);
    } catch (raw) {
      throw fromNative(raw, site);
    }
    this.#open = true;
  }

  /**
   * The newest frame not yet read. Rejects with EOS after the last frame, STREAM_ERROR /
   * NOT_NEGOTIATED when the pipeline fails (and again on every later read), CLOSED when close() is
   * called meanwhile, READ_PENDING when another read() is still pending.
   */
  read(): Promise<NativeFrame> {
    const site = captureSite(this.read);
    if (this.#reading) {
      return Promise.reject(
        fromNative({ code: 'READ_PENDING', message: 'read() called while another read() is pending; await it first' }, site),
      );
    }
    if (!this.#handle) return Promise.reject(fromNative({ code: 'NOT_OPEN', message: 'capture is not open' }, site));
    this.#reading = true;
    return this.#handle.read().then(
      (frame) => {
        this.#reading = false;
        return frame;
      },
      (raw: unknown) => {
        this.#reading = false;
        throw fromNative(raw, site);
      },
    );
  }

  /** Stops the pull thread and the pipeline (synchronously), rejects a pending read with CLOSED. Idempotent. */
  close(): void {
    this.#open = false;
    this.#handle?.close();
  }

  /**
   * Opens (true) or closes the full-resolution branch's valve. While open, each frame read carries
   * `full`, its full-resolution twin (a read waits for it); closed, nothing is converted there.
   * No effect without a full branch or while closed.
   */
  setFull(on: boolean): void {
    if (typeof on !== 'boolean') throw new CaptureError('BAD_OPTIONS', 'setFull: expected a boolean');
    if (this.#open) this.#handle?.setFull(on);
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Counters over this object's lifetime (all opens). */
  stats(): CaptureStats {
    return this.#handle ? this.#handle.stats() : { received: 0, delivered: 0, dropped: 0, gated: 0, errors: 0 };
  }
}
