import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { needTool } from './tools.js';

/** Test media made with gst-launch-1.0 in test setup: solid colours whose pixels we know. */

export const rgbHex = (c: readonly number[]): string => c.map((v) => v.toString(16).padStart(2, '0')).join('');

function launch(desc: string): boolean {
  const gst = needTool('gst-launch-1.0', 'gstreamer1.0-tools');
  if (!gst) return false;
  execFileSync(gst, ['-q', ...desc.split(' ')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return true;
}

const solid = (rgb: readonly number[], frames: number) =>
  `videotestsrc num-buffers=${frames} pattern=solid-color foreground-color=0xff${rgbHex(rgb)}`;

/** An MJPEG AVI of `frames` frames of one colour; its path, or undefined without gst-launch-1.0 (after a loud warning). */
export function mjpegAvi(
  dir: string,
  o: { rgb: readonly number[]; frames: number; width: number; height: number; fps: number },
): string | undefined {
  const file = join(dir, `solid-${rgbHex(o.rgb)}-${o.frames}.avi`);
  const ok = launch(
    `${solid(o.rgb, o.frames)} ! video/x-raw,format=I420,width=${o.width},height=${o.height},framerate=${o.fps}/1 ! ` +
      `jpegenc quality=95 ! avimux ! filesink location=${file}`,
  );
  return ok ? file : undefined;
}

/** A folder of JPEGs 000.jpg, 001.jpg ... of one colour; its path, or undefined without gst-launch-1.0. */
export function jpegSequence(
  dir: string,
  o: { rgb: readonly number[]; frames: number; width: number; height: number },
): string | undefined {
  const seq = join(dir, `seq-${rgbHex(o.rgb)}`);
  mkdirSync(seq, { recursive: true });
  const ok = launch(
    `${solid(o.rgb, o.frames)} ! video/x-raw,width=${o.width},height=${o.height} ! jpegenc quality=95 ! multifilesink location=${seq}/%03d.jpg`,
  );
  return ok ? seq : undefined;
}

/** GStreamer's default row stride for a packed format: width * bytes per pixel, padded to 4 bytes. */
export const rowStride = (width: number, bytesPerPixel: number): number => Math.ceil((width * bytesPerPixel) / 4) * 4;

/**
 * A video of the PNGs `<dir>/frame-000.png, frame-001.png ...` at `fps`: `mjpeg` (an AVI, lossy
 * like a kiosk's recording) or `raw` (Matroska with RGB frames: the pixels exactly). Its path, or
 * undefined without gst-launch-1.0.
 */
export function pngSequenceVideo(pngDir: string, out: string, o: { fps: number; codec: 'mjpeg' | 'raw' }): string | undefined {
  const encode = o.codec === 'mjpeg' ? 'video/x-raw,format=I420 ! jpegenc quality=95 ! avimux' : 'video/x-raw,format=RGB ! matroskamux';
  const ok = launch(
    `multifilesrc location=${pngDir}/frame-%03d.png index=0 caps=image/png,framerate=${o.fps}/1 ! pngdec ! ` +
      `videoconvert ! ${encode} ! filesink location=${out}`,
  );
  return ok ? out : undefined;
}
