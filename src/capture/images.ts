import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { type Clock, systemClock } from '../clock.js';
import { DaemonError, errorMessage } from '../errors.js';
import { DECODE_GUARDS } from './decode-guards.js';
import type { Camera, CameraState, CameraStatus, Frame } from './frame.js';

const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff', '.gif']);

export interface ImagesCameraOptions {
  name: string;
  dir: string;
  fps: number;
  /** Frames fall due on its monotonic time and its timers; capture times are its wall time. */
  clock?: Clock;
  /** Called on every state change, after the status reflects it (health listens). */
  onState?: (state: CameraState) => void;
}

/**
 * `images:///dir`: cycles through the image files of a folder (sorted by name) at `fps`, decoding
 * each with sharp when it is due. It behaves like a camera: frames fall due on a clock whether or
 * not anybody reads them, and a reader that is late gets the newest one; the skipped ones count as
 * dropped.
 */
export class ImagesCamera implements Camera {
  readonly name: string;
  private readonly dir: string;
  private readonly periodMs: number;
  private readonly clock: Clock;
  private files: string[] = [];
  /** Monotonic. */
  private startedAt = 0;
  /** Index of the last frame handed out; -1 before the first. */
  private lastIndex = -1;
  /** Files skipped because they failed to decode: frame i shows file (i + skipped) mod n. */
  private skipped = 0;
  private st: CameraStatus;
  private stopping: (() => void) | undefined;
  private readonly onState: ((state: CameraState) => void) | undefined;

  constructor(opts: ImagesCameraOptions) {
    this.name = opts.name;
    this.dir = opts.dir;
    this.periodMs = 1000 / opts.fps;
    this.onState = opts.onState;
    this.clock = opts.clock ?? systemClock;
    this.st = { name: opts.name, uri: `images://${opts.dir}`, state: 'stopped', received: 0, dropped: 0, errors: 0 };
  }

  async start(): Promise<void> {
    if (this.st.state !== 'stopped') return;
    this.setState('connecting');
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      this.setState('stopped');
      throw new DaemonError('CAMERA_OPEN', `camera ${this.name}: cannot read image folder ${this.dir}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    this.files = entries
      .filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase()))
      .sort()
      .map((f) => join(this.dir, f));
    if (this.files.length === 0) {
      this.setState('stopped');
      throw new DaemonError('CAMERA_OPEN', `camera ${this.name}: no images (${[...IMAGE_EXTS].join(' ')}) in ${this.dir}`);
    }
    this.startedAt = this.clock.monotonic();
    this.lastIndex = -1;
    this.setState('streaming');
  }

  async read(): Promise<Frame> {
    for (;;) {
      if (this.st.state === 'stopped') throw new DaemonError('CAMERA_STOPPED', `camera ${this.name} is stopped`);
      const due = Math.floor((this.clock.monotonic() - this.startedAt) / this.periodMs);
      if (due > this.lastIndex) {
        const skipped = due - this.lastIndex - 1;
        this.st.dropped += skipped;
        this.st.received += skipped + 1;
        this.lastIndex = due;
        // An unreadable file is counted and skipped: the next file stands in for this frame.
        for (let tries = 0; tries < this.files.length; tries++) {
          const frame = await this.decode(due).catch((err: unknown) => {
            this.st.errors++;
            this.st.lastError = { code: 'IMAGE_DECODE', message: errorMessage(err), atMs: this.clock.now() };
            this.skipped++;
            return undefined;
          });
          if (frame) return frame;
        }
        continue; // every file failed: wait for the next frame time
      }
      const waitMs = Math.max(1, (this.lastIndex + 1) * this.periodMs - (this.clock.monotonic() - this.startedAt));
      await new Promise<void>((res) => {
        const t = this.clock.setTimeout(() => {
          this.stopping = undefined;
          res();
        }, waitMs);
        this.stopping = () => {
          this.clock.clearTimeout(t);
          res();
        };
      });
    }
  }

  private async decode(index: number): Promise<Frame> {
    const file = this.files[(index + this.skipped) % this.files.length];
    const { data, info } = await sharp(file, DECODE_GUARDS).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const now = this.clock.now();
    this.st.lastFrameAtMs = now;
    return {
      camera: this.name,
      seq: index,
      width: info.width,
      height: info.height,
      stride: info.width * info.channels,
      format: info.channels === 1 ? 'GRAY8' : 'RGB',
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      capturedAtMs: now,
      name: file.slice(this.dir.length + 1),
    };
  }

  stop(): Promise<void> {
    this.setState('stopped');
    this.stopping?.();
    return Promise.resolve();
  }

  private setState(state: CameraState): void {
    if (this.st.state === state) return;
    this.st.state = state;
    this.onState?.(state);
  }

  status(): CameraStatus {
    return { ...this.st };
  }
}
