import { type Clock, systemClock, type Timer, wallMinusMonotonicMs } from '../clock.js';
import { DaemonError, errorCode, errorMessage } from '../errors.js';
import type { ReconnectConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Camera, CameraState, CameraStatus, Frame, PixelFormat } from './frame.js';
import { NativeCapture, type NativeFrame, scalerElement } from './native.js';
import { type EosPolicy, FULL_BRANCH, type ScaleTarget, SINK_NAME, type SplitSource, scaledPipeline } from './uri.js';

/**
 * A Camera over one GStreamer pipeline (the native addon), that reconnects by itself.
 *
 * States: `connecting` (pipeline opened, no frame yet) -> `streaming` (frames arrive) -> on an
 * error, an unexpected end of stream or no frame for `stallMs`: `backoff` (wait, then open again).
 * The wait starts at `initialMs` and doubles after each failed attempt up to `maxMs`, each wait
 * shortened by a random fraction up to `jitter` so several cameras do not retry in step; the first
 * frame resets it. A file that does not loop ends in `stopped` with reason `eos`.
 *
 * Frames are pulled, never pushed: read() asks the addon for the newest frame when the caller is
 * ready for one, so a slow model never builds a queue (superseded frames count as dropped).
 */

export interface GstCameraOptions {
  name: string;
  /** Pipeline ending in `appsink name=sink` (src/capture/uri.ts builds it). */
  pipeline: string;
  /** The same source, split for scaling to a model (src/capture/uri.ts scaledPipeline). */
  split?: SplitSource;
  /**
   * What to scale to, asked at each (re)open: the model's input. Undefined: frames at the camera's
   * own size, as `pipeline` says.
   */
  target?: () => ScaleTarget | undefined;
  /** The URI as shown in logs and /status (password redacted). */
  display: string;
  onEos: EosPolicy;
  /** Added to "no such element" errors: which package provides this kind's elements. */
  hint?: string;
  reconnect: ReconnectConfig;
  log?: Logger;
  /** Backoff and stall timers; wall time for errors and retry times, monotonic for how long it was down. */
  clock?: Clock;
  /** [0, 1): jitter source; tests pass a constant. */
  random?: () => number;
  /** Called on every state change, after the status reflects it (health listens). */
  onState?: (state: CameraState) => void;
}

/** The wait before attempt `failures + 1`: initial * 2^(failures-1), capped, minus up to `jitter` of it. */
export function backoffDelayMs(failures: number, r: Pick<ReconnectConfig, 'initialMs' | 'maxMs' | 'jitter'>, random: () => number): number {
  const base = Math.min(r.maxMs, r.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(base * (1 - r.jitter * random()));
}

const FORMATS: Record<string, PixelFormat> = {
  RGB: 'RGB',
  BGR: 'BGR',
  RGBA: 'RGBA',
  BGRA: 'BGRA',
  RGBx: 'RGBA',
  BGRx: 'BGRA',
  GRAY8: 'GRAY8',
};

/** Repeats of the same error are logged once in this many (every change is logged). */
const LOG_EVERY = 10;

export class GstCamera implements Camera {
  readonly name: string;
  private readonly opts: GstCameraOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly cap = new NativeCapture();
  private st: CameraStatus;
  private started = false;
  private open = false;
  /** Frames read since the pipeline was last opened. */
  private framesThisOpen = 0;
  private retryTimer: Timer | undefined;
  private waiters: (() => void)[] = [];
  private reading = false;
  /** Full-resolution frames asked for (wantFull), and whether the open pipeline has that branch. */
  private fullWanted = false;
  private hasFull = false;
  private errorsSeen = 0;
  private lastLogged: { message: string; repeats: number } | undefined;
  /** Monotonic. */
  private downSince: number | undefined;
  /** CLOCK_MONOTONIC (ns) of the native frames -> the clock's wall time (ms), measured once (to the µs): the two do not drift apart within a run. */
  private readonly epochMinusMonoMs: number;

  constructor(opts: GstCameraOptions) {
    this.name = opts.name;
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.epochMinusMonoMs = wallMinusMonotonicMs(this.clock);
    this.random = opts.random ?? Math.random;
    this.log = opts.log;
    this.st = { name: opts.name, uri: opts.display, state: 'stopped', received: 0, dropped: 0, errors: 0, attempts: 0, reconnects: 0 };
  }

  /** Opens the pipeline. Never throws for a camera that fails: it goes to `backoff` and retries. */
  start(): Promise<void> {
    if (!this.started) {
      this.started = true;
      delete this.st.reason;
      this.st.attempts = 0;
      this.tryOpen();
    }
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.started) {
      this.started = false;
      this.stopWith('stop');
    }
    return Promise.resolve();
  }

  async read(): Promise<Frame> {
    if (this.reading) throw new DaemonError('CAMERA_READ_PENDING', `camera ${this.name}: read() called while another read() is pending`);
    this.reading = true;
    try {
      return await this.readLoop();
    } finally {
      this.reading = false;
    }
  }

  /**
   * Whether frames should carry their full-resolution twin (`Frame.full`): snapshots while someone
   * looks, crops for a second model. Only a scaled pipeline has them; cheap to call every frame.
   */
  wantFull(on: boolean): void {
    if (on === this.fullWanted) return;
    this.fullWanted = on;
    if (this.open && this.hasFull) this.cap.setFull(on);
  }

  status(): CameraStatus {
    const s = this.cap.stats();
    return { ...this.st, received: s.received, dropped: s.dropped, errors: this.errorsSeen };
  }

  private async readLoop(): Promise<Frame> {
    for (;;) {
      if (!this.started) {
        const why = this.st.reason === 'eos' ? 'reached the end of its stream' : 'is stopped';
        throw new DaemonError('CAMERA_STOPPED', `camera ${this.name} ${why}`);
      }
      if (!this.open) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        continue;
      }
      let nf: NativeFrame;
      try {
        nf = await this.readWithin(this.opts.reconnect.stallMs);
      } catch (err) {
        if (!this.started || errorCode(err) === 'CLOSED') continue; // stop(), or closed after a stall
        this.onStreamEnd(err);
        continue;
      }
      const frame = this.toFrame(nf);
      if (!frame) continue;
      this.framesThisOpen++;
      this.st.lastFrameAtMs = frame.capturedAtMs;
      if (this.st.state !== 'streaming') this.streaming();
      return frame;
    }
  }

  /** The next native frame, or a CAMERA_STALLED rejection after `ms` without one. */
  private readWithin(ms: number): Promise<NativeFrame> {
    let timer: Timer | undefined;
    const stall = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        const what = this.framesThisOpen === 0 ? 'no first frame' : 'no frame';
        reject(
          new DaemonError('CAMERA_STALLED', `${what} for ${ms / 1000} s (reconnect.stallMs); the source hangs without reporting an error`),
        );
      }, ms);
    });
    // race() subscribes to the native read too, so its CLOSED rejection after a stall is handled.
    return Promise.race([this.cap.read(), stall]).finally(() => this.clock.clearTimeout(timer));
  }

  private streaming(): void {
    const back = this.downSince !== undefined;
    this.setState('streaming');
    this.st.attempts = 0;
    delete this.st.retryAtMs;
    if (back) this.st.reconnects = (this.st.reconnects ?? 0) + 1;
    this.log?.info(
      {
        camera: this.name,
        uri: this.opts.display,
        ...(back ? { downMs: Math.round(this.clock.monotonic() - (this.downSince ?? 0)) } : {}),
      },
      back ? 'camera streaming again' : 'camera streaming',
    );
    this.downSince = undefined;
    this.lastLogged = undefined;
  }

  private tryOpen(): void {
    this.retryTimer = undefined;
    if (!this.started) return;
    this.setState('connecting');
    delete this.st.retryAtMs;
    this.framesThisOpen = 0;
    const target = this.opts.split ? this.opts.target?.() : undefined;
    this.hasFull = target !== undefined;
    try {
      if (target && this.opts.split) {
        this.cap.open(scaledPipeline(this.opts.split, target, scalerElement()), { sinkName: SINK_NAME, full: { ...FULL_BRANCH } });
        if (this.fullWanted) this.cap.setFull(true);
      } else {
        this.cap.open(this.opts.pipeline, { sinkName: SINK_NAME });
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    this.open = true;
    this.wake();
  }

  /** The stream ended: an error, a stall, or end-of-stream (whose meaning depends on the source). */
  private onStreamEnd(err: unknown): void {
    if (errorCode(err) === 'EOS') {
      // A looping file starts over at once, unless it ended without a single frame (no hot loop).
      if (this.opts.onEos === 'restart' && this.framesThisOpen > 0) {
        this.close();
        this.tryOpen();
        return;
      }
      if (this.opts.onEos === 'stop') {
        this.log?.info({ camera: this.name, uri: this.opts.display }, 'camera reached the end of its stream; stopped');
        this.started = false;
        this.stopWith('eos');
        return;
      }
    }
    this.fail(err);
  }

  private fail(err: unknown): void {
    this.close();
    const code = errorCode(err) ?? 'CAMERA_ERROR';
    let message = code === 'EOS' ? `the stream ended (${errorMessage(err)})` : errorMessage(err);
    if (code === 'PIPELINE_PARSE' && this.opts.hint) message += `; ${this.opts.hint}`;
    const now = this.clock.now();
    this.errorsSeen++;
    this.st.lastError = { code, message, atMs: now };
    this.downSince ??= this.clock.monotonic();
    const failures = (this.st.attempts ?? 0) + 1;
    this.st.attempts = failures;
    const delay = backoffDelayMs(failures, this.opts.reconnect, this.random);
    this.setState('backoff');
    this.st.retryAtMs = now + delay;
    this.logFailure(code, message, err, failures, delay);
    this.retryTimer = this.clock.setTimeout(() => this.tryOpen(), delay);
  }

  private logFailure(code: string, message: string, err: unknown, attempt: number, retryInMs: number): void {
    if (!this.log) return;
    const same = this.lastLogged?.message === message;
    const repeats = same ? (this.lastLogged?.repeats ?? 0) + 1 : 0;
    this.lastLogged = { message, repeats };
    if (same && repeats % LOG_EVERY !== 0) return;
    const debug = (err as { debug?: unknown }).debug;
    this.log.warn(
      {
        camera: this.name,
        uri: this.opts.display,
        code,
        attempt,
        retryInMs,
        ...(typeof debug === 'string' ? { gstDebug: debug } : {}),
        ...(repeats ? { repeats } : {}),
      },
      `camera failed: ${message}`,
    );
  }

  private close(): void {
    this.open = false;
    this.cap.close();
  }

  private setState(state: CameraState): void {
    if (this.st.state === state) return;
    this.st.state = state;
    this.opts.onState?.(state);
  }

  private stopWith(reason: 'eos' | 'stop'): void {
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.close();
    this.setState('stopped');
    this.st.reason = reason;
    delete this.st.retryAtMs;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  /** Our Frame from the addon's; undefined (after failing the stream) for a format we cannot use. */
  private toFrame(nf: NativeFrame): Frame | undefined {
    const format = FORMATS[nf.format];
    if (!format) {
      this.fail(
        new DaemonError(
          'CAMERA_FORMAT',
          `the pipeline delivers ${nf.format} frames; end it with "videoconvert ! video/x-raw,format=RGB ! appsink name=${SINK_NAME}"`,
        ),
      );
      return undefined;
    }
    const frame: Frame = {
      camera: this.name,
      seq: nf.seq,
      width: nf.width,
      height: nf.height,
      stride: nf.stride,
      format,
      // The addon's one reused buffer, not a copy (see Frame.data): a copy per frame would cost a
      // full-frame allocation, and at hundreds of frames/s the garbage collector stalls the loop.
      data: new Uint8Array(nf.data.buffer, nf.data.byteOffset, nf.data.byteLength),
      capturedAtMs: Math.round(this.epochMinusMonoMs + nf.capturedAtNs / 1e6),
    };
    if (nf.sourceWidth && nf.sourceHeight && (nf.sourceWidth !== nf.width || nf.sourceHeight !== nf.height)) {
      frame.sourceWidth = nf.sourceWidth;
      frame.sourceHeight = nf.sourceHeight;
    }
    if (nf.full) {
      const full = this.toFrame(nf.full);
      if (!full) return undefined;
      frame.full = full;
    }
    return frame;
  }
}
