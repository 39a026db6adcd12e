import type { Camera, Frame } from './capture/frame.js';
import { errorCode, errorMessage } from './errors.js';
import type { Inference } from './inference/types.js';
import type { Logger } from './log.js';

/**
 * One camera's frame loop: read the newest frame when the engine is free, infer, hand the result
 * on. A slow model never builds a queue: the camera keeps only its latest frame.
 */
export interface LoopStats {
  inferred: number;
  failures: number;
  lastResultAtMs?: number;
  lastError?: string;
  paused: boolean;
  /** When it was last resumed: the health check's no-progress clock restarts there. */
  resumedAtMs?: number;
}

export class CameraLoop {
  readonly camera: Camera;
  private readonly infer: (frame: Frame) => Promise<Inference>;
  private readonly onResult: (frame: Frame, inf: Inference) => void;
  private readonly log: Logger;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Set while paused; the loop waits on it before taking the next frame. */
  private gate: { opened: Promise<void>; open: () => void } | undefined;
  /** The inference (and its onResult) in flight, so pause() can wait for it. */
  private inFlight: Promise<void> | undefined;
  readonly stats: LoopStats = { inferred: 0, failures: 0, paused: false };

  constructor(opts: { camera: Camera; infer: (frame: Frame) => Promise<Inference>; onResult: (frame: Frame, inf: Inference) => void; log: Logger }) {
    this.camera = opts.camera;
    this.infer = opts.infer;
    this.onResult = opts.onResult;
    this.log = opts.log;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.run();
  }

  private async run(): Promise<void> {
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
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (this.gate) continue; // paused while waiting for this frame: it is not inferred
      this.inFlight = this.process(frame);
      await this.inFlight;
      this.inFlight = undefined;
    }
  }

  private async process(frame: Frame): Promise<void> {
    try {
      const inf = await this.infer(frame);
      this.stats.inferred++;
      this.stats.lastResultAtMs = Date.now();
      this.onResult(frame, inf);
    } catch (err) {
      this.stats.failures++;
      const msg = errorMessage(err);
      if (msg !== this.stats.lastError) this.log.error({ camera: this.camera.name, err: msg }, 'inference failed');
      this.stats.lastError = msg;
    }
  }

  /**
   * Stops inferring (the camera keeps capturing; the latest frame wins). Resolves once the
   * inference in flight, if any, has been handed on, so nothing is published after it.
   */
  async pause(): Promise<void> {
    if (!this.gate) {
      let open!: () => void;
      const opened = new Promise<void>((r) => (open = r));
      this.gate = { opened, open };
      this.stats.paused = true;
    }
    await this.inFlight;
  }

  resume(): void {
    const gate = this.gate;
    if (!gate) return;
    this.gate = undefined;
    this.stats.paused = false;
    this.stats.resumedAtMs = Date.now();
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
