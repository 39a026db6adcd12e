import type { ServerResponse } from 'node:http';
import sharp from 'sharp';
import type { Frame } from '../capture/frame.js';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { SnapshotPrivacy } from '../inference/stages.js';
import { type Inference, primaryOf } from '../inference/types.js';
import type { Logger } from '../log.js';
import { visibleFrame } from './redact.js';
import { framePixels, type OverlayBox, overlaySvg } from './snapshot.js';

/**
 * GET /preview.mjpeg: the frames behind the results as multipart/x-mixed-replace (what an <img>
 * shows), redacted as snapshots are (the same code: src/health/redact.ts). Each inferred frame is
 * encoded at most once per way of drawing it (boxes or not, mirrored or not), however many
 * viewers share it, and only when some viewer is due a frame; with no viewer a frame costs one map
 * lookup and the cameras keep no copies. A viewer whose socket has not taken the last frame is
 * skipped (latest frame wins); one that takes nothing for STALL_MS is dropped and counted.
 */

export interface PreviewHubOptions {
  clock: Clock;
  log: Logger;
  /** `http.preview.maxFps`: a viewer's ?fps= above it is capped. */
  maxFps: number;
  /** `http.preview.maxClients`: streams at once. */
  maxClients: number;
  /** JPEG quality. */
  quality: number;
  /** The camera's preview mode (`cameras.<name>.privacy.preview`, src/inference/stages.ts). */
  privacy: (camera: string) => SnapshotPrivacy;
}

export interface PreviewRequest {
  camera: string;
  fps: number;
  /** Detections outlined with their labels, a classifier's label in a banner. */
  boxes: boolean;
  /** Flipped left-right (the person sees themselves as in a mirror); drawings stay readable. */
  mirror: boolean;
}

export interface PreviewStats {
  clients: number;
  refused: number;
  dropped: number;
  /** JPEG encodings so far (one per frame and way of drawing it, whatever the number of viewers). */
  encodes: number;
  /** Frames sent, summed over viewers. */
  sent: number;
}

/** A viewer that took nothing for this long (monotonic ms) is dropped. */
export const STALL_MS = 10_000;
const BOUNDARY = 'edge-inferd-frame';

interface Viewer extends PreviewRequest {
  res: ServerResponse;
  intervalMs: number;
  /** Monotonic ms from which the next frame is due. */
  dueMs: number;
  blockedSinceMs?: number;
}

export class PreviewHub {
  private readonly opts: PreviewHubOptions;
  private readonly viewers = new Map<string, Set<Viewer>>();
  private count = 0;
  /** Cameras with an encoding running: a frame that comes meanwhile is not encoded (latest wins). */
  private readonly encoding = new Set<string>();
  private readonly counts = { refused: 0, dropped: 0, encodes: 0, sent: 0 };
  /** Viewers dropped since start, per camera. */
  private readonly droppedBy = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();

  constructor(opts: PreviewHubOptions) {
    this.opts = opts;
  }

  /** Whether anyone watches any camera: the cameras keep copies of their frames only then. */
  get watching(): boolean {
    return this.count > 0;
  }

  get full(): boolean {
    return this.count >= this.opts.maxClients;
  }

  get maxFps(): number {
    return this.opts.maxFps;
  }

  refused(): void {
    this.counts.refused++;
  }

  stats(): PreviewStats {
    return { clients: this.count, ...this.counts };
  }

  /** One camera's viewers now, and those dropped since start. */
  cameraStats(camera: string): { viewers: number; dropped: number } {
    return { viewers: this.viewers.get(camera)?.size ?? 0, dropped: this.droppedBy.get(camera) ?? 0 };
  }

  /** Ends every stream (the HTTP server stops). */
  stop(): void {
    for (const set of this.viewers.values()) for (const v of set) v.res.end();
    this.viewers.clear();
    this.count = 0;
  }

  /** Takes over the response: headers now, a part per frame as the camera's results come. */
  attach(res: ServerResponse, req: PreviewRequest): void {
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Preview-Fps': String(req.fps),
    });
    res.socket?.setNoDelay(true);
    // The headers go now: a viewer learns the stream is open before the first frame is due.
    res.flushHeaders();
    const v: Viewer = { ...req, res, intervalMs: 1000 / req.fps, dueMs: -Infinity };
    const set = this.viewers.get(req.camera) ?? new Set<Viewer>();
    this.viewers.set(req.camera, set);
    set.add(v);
    this.count++;
    res.on('close', () => this.remove(v));
  }

  private remove(v: Viewer): void {
    const set = this.viewers.get(v.camera);
    if (!set?.delete(v)) return;
    this.count--;
    if (!set.size) this.viewers.delete(v.camera);
  }

  /** A camera's inferred frame (its pixels valid for this call only). */
  record(frame: Frame, inf: Inference): void {
    const set = this.viewers.get(frame.camera);
    if (!set) return;
    const now = this.opts.clock.monotonic();
    const due: Viewer[] = [];
    for (const v of set) {
      if (v.blockedSinceMs !== undefined) {
        if (now - v.blockedSinceMs >= STALL_MS) this.drop(v);
        continue;
      }
      if (now >= v.dueMs) due.push(v);
    }
    if (!due.length || this.encoding.has(frame.camera)) return;
    const mode = this.opts.privacy(frame.camera);
    if (mode === 'off') {
      // A reload turned the preview off: the streams end.
      for (const v of [...set]) v.res.end();
      return;
    }
    // Copied out now (the camera may reuse the frame's memory once this returns); encoded off the thread by sharp.
    const { frame: pic, k } = visibleFrame(frame, inf, mode);
    const pixels = framePixels(pic);
    const variants = new Map<string, Viewer[]>();
    for (const v of due) {
      const key = `${v.boxes ? 'b' : ''}${v.mirror ? 'm' : ''}`;
      variants.set(key, [...(variants.get(key) ?? []), v]);
    }
    this.encoding.add(frame.camera);
    const jobs = [...variants.values()].map(async (viewers) => {
      const { boxes, mirror } = viewers[0];
      this.counts.encodes++;
      const jpeg = await encodePreview(pixels, pic.width, pic.height, boxes ? drawingOf(inf, k) : undefined, mirror, this.opts.quality);
      this.send(viewers, jpeg);
    });
    const done = Promise.all(jobs)
      .then(() => undefined)
      .catch((err: unknown) => this.opts.log.warn({ camera: frame.camera, err: errorMessage(err) }, 'preview: JPEG encoding failed'))
      .finally(() => {
        this.encoding.delete(frame.camera);
        this.running.delete(done);
      });
    this.running.add(done);
  }

  /** Resolves once the encodings running now are sent (tests, the bench). */
  async idle(): Promise<void> {
    await Promise.all([...this.running]);
  }

  private send(viewers: Viewer[], jpeg: Buffer): void {
    const head = Buffer.from(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
    const part = Buffer.concat([head, jpeg, Buffer.from('\r\n')]);
    const now = this.opts.clock.monotonic();
    for (const v of viewers) {
      if (v.res.destroyed || v.res.writableEnded) continue;
      // The last frame has not left yet: this one is skipped, so a viewer holds at most one frame.
      if (v.res.writableLength > 0) {
        this.block(v, now);
        continue;
      }
      v.res.write(part);
      this.counts.sent++;
      // Keeps to the viewer's rate on average; after a gap it starts afresh instead of catching up.
      v.dueMs = (now - v.dueMs < v.intervalMs ? v.dueMs : now) + v.intervalMs;
    }
  }

  private block(v: Viewer, now: number): void {
    if (v.blockedSinceMs !== undefined) return;
    v.blockedSinceMs = now;
    v.res.once('drain', () => (v.blockedSinceMs = undefined));
  }

  private drop(v: Viewer): void {
    this.counts.dropped++;
    this.droppedBy.set(v.camera, (this.droppedBy.get(v.camera) ?? 0) + 1);
    this.opts.log.info({ camera: v.camera, buffered: v.res.writableLength }, 'preview: dropped a viewer that took no frame for 10 s');
    this.remove(v);
    v.res.destroy();
  }
}

/** What `boxes` draws: detections outlined with their labels; a classifier's label in a banner. */
function drawingOf(inf: Inference, k: number): { boxes?: OverlayBox[]; label?: string; score?: number; index?: number } {
  if (inf.task === 'detect') {
    return {
      boxes: inf.detections.map((d) => ({
        x: d.box.x * k,
        y: d.box.y * k,
        width: d.box.w * k,
        height: d.box.h * k,
        label: d.label,
        score: d.score,
        index: d.index,
      })),
    };
  }
  const best = primaryOf(inf);
  return best ? { label: best.label, score: best.score, index: best.index } : {};
}

/**
 * One preview JPEG. Mirroring flips the pixels and then draws the boxes at their mirrored places,
 * so the labels read the right way round.
 */
export async function encodePreview(
  rgb: Buffer,
  width: number,
  height: number,
  drawing: ReturnType<typeof drawingOf> | undefined,
  mirror: boolean,
  quality: number,
): Promise<Buffer> {
  let img = sharp(rgb, { raw: { width, height, channels: 3 } });
  if (mirror) img = sharp(await img.flop().raw().toBuffer(), { raw: { width, height, channels: 3 } });
  if (drawing) {
    const boxes = mirror ? drawing.boxes?.map((b) => ({ ...b, x: width - b.x - b.width })) : drawing.boxes;
    img = img.composite([{ input: Buffer.from(overlaySvg(width, height, { ...drawing, boxes })), top: 0, left: 0 }]);
  }
  return img.jpeg({ quality }).toBuffer();
}
