import { access, constants } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DaemonError } from '../errors.js';
import type { Frame } from './frame.js';
import { CaptureError, NativeCapture, type NativeFrame } from './native.js';

/**
 * A recorded video file decoded frame by frame through GStreamer, for `edge-inferd infer VIDEO`:
 * every frame in order, none dropped (the capture runs lossless: the decoder waits for the
 * reader), each with its time in the video. `fps` keeps at most that many frames per second of
 * video (the first frame, then the first at or after each 1/fps step), so a clip is checked at
 * the rate the kiosk would infer it, whatever rate it was recorded at. Errors say what went
 * wrong, not which file: the caller prints them after the file's name.
 */

/** Video file extensions: for bare streams (MPEG-TS, H.264, MJPEG) whose first bytes say little. */
const VIDEO_EXT = /\.(mp4|m4v|mov|mkv|webm|avi|ogv|ogg|ts|mts|m2ts|mpg|mpeg|flv|mjpeg|mjpg|h264|264|h265|265|hevc|y4m)$/i;

/** Whether `head` (a file's first bytes) or its name says it is a video rather than an image. */
export function looksLikeVideo(head: Uint8Array, name: string): boolean {
  const ascii = (at: number, s: string) => [...s].every((c, i) => head[at + i] === c.charCodeAt(0));
  if (ascii(4, 'ftyp')) return true; // MP4, MOV, 3GP
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return true; // Matroska, WebM
  if (ascii(0, 'RIFF') && ascii(8, 'AVI ')) return true;
  if (ascii(0, 'OggS') || ascii(0, 'FLV') || ascii(0, 'YUV4MPEG2')) return true;
  if (head[0] === 0 && head[1] === 0 && head[2] === 1 && (head[3] === 0xba || head[3] === 0xb3)) return true; // MPEG-PS/ES
  return VIDEO_EXT.test(name);
}

/** Characters a file URI may not hold inside the pipeline's double quotes (see src/capture/uri.ts): a guard, the URI has none. */
const UNSAFE = /[\s"'\\]/;
const hasControl = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** The decode pipeline: the file through uridecodebin, converted to packed RGB, into an appsink that does not wait for the clock. */
export function videoFilePipeline(file: string): string {
  // pathToFileURL percent-encodes quotes, backslashes, whitespace and control characters; not "'".
  const uri = pathToFileURL(resolve(file)).href.replaceAll("'", '%27');
  if (UNSAFE.test(uri) || hasControl(uri))
    throw new DaemonError('VIDEO_PATH', `the path holds a quote, backslash or control character; rename the file`);
  return `uridecodebin uri="${uri}" ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false`;
}

export class VideoFile {
  readonly name: string;
  private readonly capture = new NativeCapture();
  private readonly stepMs: number;
  private nextMs: number | undefined;
  private seq = 0;
  private readonly clock: () => number;

  private constructor(file: string, opts: { fps?: number; now: () => number }) {
    this.name = basename(file);
    this.stepMs = opts.fps ? 1000 / opts.fps : 0;
    this.clock = opts.now;
  }

  /** Opens `file` (checked readable first, for a clear error) for decoding. */
  static async open(file: string, opts: { fps?: number; now: () => number }): Promise<VideoFile> {
    try {
      await access(file, constants.R_OK);
    } catch (err) {
      throw new DaemonError('VIDEO_FILE', `cannot read the video file: ${(err as Error).message}`, { cause: err });
    }
    const v = new VideoFile(file, opts);
    v.capture.open(videoFilePipeline(file), { lossless: true });
    return v;
  }

  /**
   * The next frame to infer (camera "infer", `timeMs` its time in the video, `capturedAtMs` when
   * it was decoded), or undefined at the end of the video. The frame's pixels are valid until the
   * next call.
   */
  async next(): Promise<Frame | undefined> {
    for (;;) {
      let nf: NativeFrame;
      try {
        nf = await this.capture.read();
      } catch (err) {
        if (err instanceof CaptureError && err.code === 'EOS') return undefined;
        throw new DaemonError((err as DaemonError).code ?? 'VIDEO_DECODE', `GStreamer cannot decode it: ${(err as Error).message}`, {
          cause: err,
        });
      }
      const timeMs = nf.ptsNs === null ? undefined : nf.ptsNs / 1e6;
      if (timeMs !== undefined && this.stepMs > 0) {
        // Keep the first frame at or after each step (a small tolerance for rounded timestamps).
        if (this.nextMs !== undefined && timeMs < this.nextMs - 0.5) continue;
        this.nextMs = (this.nextMs ?? timeMs) + this.stepMs;
        while (this.nextMs <= timeMs + 0.5) this.nextMs += this.stepMs;
      }
      if (nf.format !== 'RGB') throw new DaemonError('CAMERA_FORMAT', `decoded ${nf.format} frames, expected RGB`);
      this.seq++;
      return {
        camera: 'infer',
        seq: this.seq,
        width: nf.width,
        height: nf.height,
        stride: nf.stride,
        format: 'RGB',
        data: new Uint8Array(nf.data.buffer, nf.data.byteOffset, nf.data.byteLength),
        capturedAtMs: this.clock(),
        name: this.name,
        ...(timeMs !== undefined ? { timeMs: Math.round(timeMs * 1000) / 1000 } : {}),
      };
    }
  }

  close(): void {
    this.capture.close();
  }
}
