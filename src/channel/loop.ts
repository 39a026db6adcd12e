import type { Camera, Frame } from '../capture/frame.js';
import { type Clock, sleep, sleepUnless, systemClock } from '../clock.js';
import { errorCode, errorMessage } from '../errors.js';
import type { InferHooks } from '../inference/engine.js';
import type { Inference } from '../inference/types.js';
import type { Logger } from '../log.js';

/**
 * One camera's frame loop, pipelined one deep: frame N+1 is read (and handed to the engine, which
 * copies it next to the worker) as soon as the engine turns to frame N, so capture and delivery
 * overlap N's inference and the worker never waits for the main thread between two frames. A slow
 * model never builds a queue: the camera keeps only its latest frame, and the loop holds at most
 * one frame waiting behind the one being inferred. That frame is read half-way through the
 * inference before it (from a running average of how long this camera's inferences take), so it
 * waits about half an inference, not a whole one; below 4 ms an inference is too short to pace.
 */
export interface LoopStats {
  inferred: number;
  failures: number;
  lastResultAtMs?: number;
  lastInferenceError?: string;
  paused: boolean;
  /** When it was last resumed: the health check's no-progress clock restarts there. */
  resumedAtMs?: number;
  /** Detector boxes not published (not drawable, or over the caps), once some were. */
  boxesDropped?: { invalid: number; capped: number };
}

export class CameraLoop {
  readonly camera: Camera;
  private readonly infer: (frame: Frame, hooks: InferHooks) => Promise<Inference>;
  private readonly keep: (frame: Frame) => Frame;
  private readonly onResult: (frame: Frame, inf: Inference) => void;
  private readonly log: Logger;
  private readonly clock: Clock;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Set while paused; the loop waits on it before taking the next frame. */
  private gate: { opened: Promise<void>; open: () => void } | undefined;
  /** The inferences (and their onResult) in flight, so pause() and stop() can wait for them. */
  private readonly inFlight = new Set<Promise<void>>();
  readonly stats: LoopStats = { inferred: 0, failures: 0, paused: false };
  private readonly pace: boolean;
  /** Running average of engine start -> result for this camera's frames, ms. */
  private busyMs: number | undefined;

  /**
   * `keep` runs on each frame right after it is read, before the camera may reuse its memory for
   * the next (the next read can happen before this frame's result is in): it returns the frame to
   * infer and hand to onResult, e.g. a copy.
   */
  constructor(opts: {
    camera: Camera;
    infer: (frame: Frame, hooks: InferHooks) => Promise<Inference>;
    onResult: (frame: Frame, inf: Inference) => void;
    log: Logger;
    keep?: (frame: Frame) => Frame;
    /** Read the next frame half-way through the current inference (default), or as soon as it starts. */
    pace?: boolean;
    /** Wall time for lastResultAtMs/resumedAtMs, monotonic time for the inference durations, timers for the waits. */
    clock?: Clock;
  }) {
    this.pace = opts.pace ?? true;
    this.clock = opts.clock ?? systemClock;
    this.camera = opts.camera;
    this.infer = opts.infer;
    this.keep = opts.keep ?? ((f) => f);
    this.onResult = opts.onResult;
    this.log = opts.log;
  }

  start(): void {
    if (this.running !== undefined) return;
    this.stopping = false;
    this.running = this.run();
  }

  private async run(): Promise<void> {
    try {
      await this.frames();
    } finally {
      await Promise.all(this.inFlight);
    }
  }

  private async frames(): Promise<void> {
    while (!this.stopping) {
      if (this.gate) {
        await this.gate.opened;
        continue;
      }
      let frame: Frame;
      try {
        frame = await this.camera.read();
      } catch (err) {
        if (this.stopping || errorCode(err) === 'CAMERA_STOPPED') return;
        this.log.error({ camera: this.camera.name, err: errorMessage(err) }, 'camera read failed');
        await sleep(this.clock, 500);
        continue;
      }
      if (this.gate) continue; // paused while waiting for this frame: it is not inferred
      let taken!: () => void;
      const handedOver = new Promise<void>((r) => (taken = r));
      const done = this.process(this.keep(frame), taken);
      this.inFlight.add(done);
      void done.then(() => this.inFlight.delete(done));
      // The next read waits until the engine has taken this frame (or, if it never says, its result).
      await Promise.race([handedOver, done]);
      const busyMs = this.pace ? (this.busyMs ?? 0) : 0;
      const wait = busyMs / 2 - 1;
      if (wait >= 1 && busyMs >= 4) {
        await sleepUnless(this.clock, wait, done);
      }
    }
  }

  /** Never rejects: failures are counted and logged. */
  private async process(frame: Frame, onStart: () => void): Promise<void> {
    let startedAt: number | undefined;
    const started = () => {
      startedAt = this.clock.monotonic();
      onStart();
    };
    try {
      const inf = await this.infer(frame, { onStart: started });
      if (startedAt !== undefined) {
        const ms = this.clock.monotonic() - startedAt;
        this.busyMs = this.busyMs === undefined ? ms : this.busyMs + 0.2 * (ms - this.busyMs);
      }
      this.stats.inferred++;
      this.stats.lastResultAtMs = this.clock.now();
      if (inf.task === 'detect' && inf.overflow) {
        this.stats.boxesDropped ??= { invalid: 0, capped: 0 };
        const d = this.stats.boxesDropped;
        d.invalid += inf.overflow.invalid;
        d.capped += inf.overflow.capped;
      }
      this.onResult(frame, inf);
    } catch (err) {
      this.stats.failures++;
      const msg = errorMessage(err);
      if (msg !== this.stats.lastInferenceError) this.log.error({ camera: this.camera.name, err: msg }, 'inference failed');
      this.stats.lastInferenceError = msg;
    }
  }

  /**
   * Stops inferring (the camera keeps capturing; the latest frame wins). Resolves once the
   * inferences in flight, if any, have been handed on, so nothing is published after it.
   */
  async pause(): Promise<void> {
    if (!this.gate) {
      let open!: () => void;
      const opened = new Promise<void>((r) => (open = r));
      this.gate = { opened, open };
      this.stats.paused = true;
    }
    await Promise.all(this.inFlight);
  }

  resume(): void {
    const gate = this.gate;
    if (!gate) return;
    this.gate = undefined;
    this.stats.paused = false;
    this.stats.resumedAtMs = this.clock.now();
    gate.open();
  }

  get paused(): boolean {
    return this.gate !== undefined;
  }

  /** Stops taking frames and waits for the inference in flight to finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.gate?.open();
    await this.camera.stop();
    await this.running;
    this.running = undefined;
  }
}
