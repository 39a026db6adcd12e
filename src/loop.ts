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
}

export class CameraLoop {
  readonly camera: Camera;
  private readonly infer: (frame: Frame) => Promise<Inference>;
  private readonly onResult: (frame: Frame, inf: Inference) => void;
  private readonly log: Logger;
  private running: Promise<void> | undefined;
  private stopping = false;
  readonly stats: LoopStats = { inferred: 0, failures: 0 };

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
      let frame: Frame;
      try {
        frame = await this.camera.read();
      } catch (err) {
        if (this.stopping || errorCode(err) === 'CAMERA_STOPPED') return;
        this.log.error({ camera: this.camera.name, err: errorMessage(err) }, 'camera read failed');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
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
  }

  /** Stops taking frames and waits for the inference in flight to finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.camera.stop();
    await this.running;
    this.running = undefined;
  }
}
