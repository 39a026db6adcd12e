import type { Frame } from '../capture/frame.js';
import { frameToJpeg } from '../capture/jpeg.js';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import { type Inference, primaryOf } from '../inference/types.js';
import { CommandError } from '../publish/commands.js';
import type { SnapshotResult } from '../publish/schemas.js';
import { visibleFrame } from './redact.js';
import { detectionBoxes, renderSnapshot } from './snapshot.js';
import type { SnapshotPrivacy } from '../inference/stages.js';

/** Snapshots keep a copy of each inferred frame while someone looked within this long. */
const INTEREST_MS = 60_000;
/** Per camera: the frame inferred, the one waiting, the one shown, and one spare. */
const FRAME_COPIES = 4;
/**
 * A camera that scales frames for its model sends full-resolution ones only while snapshots are
 * wanted: the first request after a quiet minute waits this long for one before it makes do with
 * the scaled frame.
 */
const FULL_WAIT_MS = 2000;

/**
 * Different JPEG encodings (frame, quality, width) running at once for the `snapshot` command;
 * one more is answered BUSY. Requests for an encoding already running or just done share it, so a
 * flood of identical requests costs one encoding per frame.
 */
export const MAX_ENCODES = 2;

interface Encoded {
  key: string;
  result: Promise<SnapshotResult>;
}

/**
 * The latest inferred frame of each camera with its inference: /snapshot.jpg (annotated) and the
 * `snapshot` command (plain JPEG). A capture source's frame is valid until its next read, and the
 * loop reads the next one while this one is inferred: while snapshots are wanted, each frame is
 * copied as it is read, into a small ring per camera; otherwise frames are not copied at all.
 */
export class SnapshotStore {
  private readonly clock: Clock;
  private readonly latest = new Map<string, { frame: Frame; inf: Inference; atMs: number; jpeg?: Promise<Buffer> }>();
  private readonly copies = new Map<string, { bufs: Uint8Array[]; next: number }>();
  private readonly fullWaiters = new Map<string, (() => void)[]>();
  private wantedUntilMs = -Infinity;
  /** Encodings running, and the last one done per camera (until its next frame), by key. */
  private readonly encoding = new Map<string, Promise<SnapshotResult>>();
  private readonly lastEncoded = new Map<string, Encoded>();
  /** JPEG encodings made for the `snapshot` command so far. */
  encodes = 0;

  private readonly privacy: (camera: string) => SnapshotPrivacy;
  private readonly alsoWanted: () => boolean;

  /**
   * `privacy`: per camera (SnapshotPrivacy). Default auto: what person-finding models found is blacked out.
   * `alsoWanted`: someone else needs the inferred frames kept too (the preview, while it has viewers).
   */
  constructor(opts: { clock: Clock; privacy?: (camera: string) => SnapshotPrivacy; alsoWanted?: () => boolean }) {
    this.clock = opts.clock;
    this.privacy = opts.privacy ?? (() => 'auto');
    this.alsoWanted = opts.alsoWanted ?? (() => false);
  }

  /** The frame as it may leave the device: redacted, as is, or refused (SNAPSHOTS_OFF). */
  private shown(camera: string, frame: Frame, inf: Inference): { frame: Frame; k: number } {
    const mode = this.privacy(camera);
    if (mode === 'off')
      throw new CommandError('SNAPSHOTS_OFF', `camera ${camera}: snapshots are off (cameras.${camera}.privacy.snapshots)`);
    return visibleFrame(frame, inf, mode);
  }

  /** Whether someone asked for a snapshot lately: cameras then send full-resolution frames too. */
  get wanted(): boolean {
    return this.clock.monotonic() <= this.wantedUntilMs || this.alsoWanted();
  }

  /**
   * The frame to keep: while someone asked for a snapshot lately, a copy of what a snapshot shows
   * (the full-resolution twin when the frame has one, else the frame); otherwise the frame as it is.
   */
  keep(frame: Frame): Frame {
    if (!this.wanted) return frame;
    if (frame.full) return { ...frame, full: { ...frame.full, data: this.copy(frame.full) } };
    return { ...frame, data: this.copy(frame) };
  }

  private copy(frame: Frame): Uint8Array {
    let ring = this.copies.get(frame.camera);
    if (!ring) {
      ring = { bufs: [], next: 0 };
      this.copies.set(frame.camera, ring);
    }
    const i = ring.next;
    ring.next = (i + 1) % FRAME_COPIES;
    let copy = ring.bufs[i];
    if (copy?.byteLength !== frame.data.byteLength) copy = ring.bufs[i] = new Uint8Array(frame.data.byteLength);
    copy.set(frame.data);
    return copy;
  }

  /** A camera's latest inferred frame. */
  record(frame: Frame, inf: Inference): void {
    this.latest.set(frame.camera, { frame, inf, atMs: this.clock.now() });
    if (frame.full) {
      const waiters = this.fullWaiters.get(frame.camera);
      this.fullWaiters.delete(frame.camera);
      for (const w of waiters ?? []) w();
    }
  }

  /** The latest entry, after waiting (a little) for one at full resolution if the camera scales its frames. */
  private async latestFull(camera: string): Promise<{ frame: Frame; inf: Inference; atMs: number; jpeg?: Promise<Buffer> } | undefined> {
    const e = this.latest.get(camera);
    if (!e || e.frame.full || e.frame.sourceWidth === undefined) return e;
    await new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(resolve, FULL_WAIT_MS);
      const list = this.fullWaiters.get(camera) ?? [];
      list.push(() => {
        this.clock.clearTimeout(timer);
        resolve();
      });
      this.fullWaiters.set(camera, list);
    });
    return this.latest.get(camera);
  }

  /** The latest frame of a camera with its result drawn on it; rendered once per result. */
  async annotated(camera: string): Promise<Buffer | undefined> {
    this.wantedUntilMs = this.clock.monotonic() + INTEREST_MS;
    const entry = await this.latestFull(camera);
    if (!entry) return undefined;
    if (!entry.jpeg) {
      const { inf, frame: inferred } = entry;
      const { frame, k } = this.shown(camera, inferred, inf);
      const best = primaryOf(inf);
      // renderSnapshot reads the pixels synchronously, so the kept copy may be reused afterwards.
      entry.jpeg = renderSnapshot(frame, {
        label: best?.label,
        score: best?.score,
        index: best?.index ?? 0,
        boxes: detectionBoxes(inf, k),
        caption: `${camera} #${inferred.seq} ${new Date(entry.atMs).toISOString()}`,
      });
    }
    return entry.jpeg;
  }

  /** The `snapshot` command: the latest inferred frame as a JPEG, base64. */
  async command(camera: string, quality: number, maxWidth: number | undefined): Promise<SnapshotResult> {
    this.wantedUntilMs = this.clock.monotonic() + INTEREST_MS;
    if (!this.latest.has(camera)) throw new CommandError('NO_FRAME', `camera ${camera} has no frame yet`);
    // Privacy first, and in the key: a reload that turns snapshots off or to redact never gets an old JPEG.
    const mode = this.privacy(camera);
    if (mode === 'off')
      throw new CommandError('SNAPSHOTS_OFF', `camera ${camera}: snapshots are off (cameras.${camera}.privacy.snapshots)`);
    // A camera that scales for its model: wait (a little) for a frame with its full-resolution twin.
    const entry = await this.latestFull(camera);
    if (!entry) throw new CommandError('NO_FRAME', `camera ${camera} has no frame yet`);
    const { frame, inf } = entry;
    const key = `${camera}\0${frame.seq}\0${frame.capturedAtMs}\0${quality}\0${maxWidth ?? ''}\0${mode}`;
    const last = this.lastEncoded.get(camera);
    if (last?.key === key) return last.result;
    const running = this.encoding.get(key);
    if (running !== undefined) return running;
    if (this.encoding.size >= MAX_ENCODES) throw new CommandError('BUSY', `${MAX_ENCODES} snapshots are being encoded; try again`);
    this.encodes++;
    const result = this.encode(camera, frame, inf, quality, maxWidth);
    this.encoding.set(key, result);
    // Kept for the requests that come before the camera's next frame (one JPEG per camera).
    const done = () => {
      this.encoding.delete(key);
      this.lastEncoded.set(camera, { key, result });
    };
    result.then(done, () => this.encoding.delete(key));
    return result;
  }

  private async encode(
    camera: string,
    entryFrame: Frame,
    inf: Inference,
    quality: number,
    maxWidth: number | undefined,
  ): Promise<SnapshotResult> {
    const { frame } = this.shown(camera, entryFrame, inf);
    const { jpeg, width, height } = await frameToJpeg(frame, { quality, maxWidth }).catch((err: unknown) => {
      throw new CommandError('FAILED', `camera ${camera}: JPEG encoding failed: ${errorMessage(err)}`);
    });
    return {
      camera,
      contentType: 'image/jpeg',
      encoding: 'base64',
      data: jpeg.toString('base64'),
      bytes: jpeg.length,
      width,
      height,
      frame: {
        seq: frame.seq,
        capturedAt: new Date(frame.capturedAtMs).toISOString(),
        capturedAtMs: frame.capturedAtMs,
        ...(frame.name ? { name: frame.name } : {}),
      },
    };
  }
}
