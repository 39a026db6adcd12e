import { channelsOf, type Frame } from '../capture/frame.js';
import type { SnapshotPrivacy } from '../inference/stages.js';
import type { Box, Inference } from '../inference/types.js';

/**
 * Privacy for every picture that leaves the device (snapshots, the status page, the `snapshot`
 * command, the live preview). It fails closed: a frame whose people cannot all be blacked out
 * exactly is not shown at all (it is blacked out whole).
 */

/** A box that can be blacked out: finite, non-negative size. */
function drawable(b: Box): boolean {
  return Number.isFinite(b.x) && Number.isFinite(b.y) && Number.isFinite(b.w) && Number.isFinite(b.h) && b.w >= 0 && b.h >= 0;
}

/**
 * The picture `pic` of an inferred frame as it may be shown under `mode` (not `off`: the caller
 * refuses). Boxes are in the camera's pixels; `k` scales them to `pic` (a full-resolution twin or
 * a scaled frame). Every box of `inf.privacy` (taken before any camera-side limit) is blacked out;
 * with `redact`, every detection too. A box that cannot be drawn, or `inf.privacy.whole`, hides
 * the whole frame.
 */
export function privateView(pic: Frame, inf: Inference, mode: Exclude<SnapshotPrivacy, 'off'>, k: number): Frame {
  if (mode === 'on') return pic;
  const boxes: Box[] = [...(inf.privacy?.boxes ?? [])];
  if (mode === 'redact' && inf.task === 'detect') boxes.push(...inf.detections.map((d) => d.box));
  if (inf.privacy?.whole || !boxes.every(drawable)) return blackFrame(pic);
  if (!boxes.length) return pic;
  return redactFrame(
    pic,
    boxes.map((b) => ({ x: b.x * k, y: b.y * k, w: b.w * k, h: b.h * k })),
  );
}

/** A black copy of the frame. */
export function blackFrame(frame: Frame): Frame {
  return { ...frame, data: new Uint8Array(frame.stride * frame.height) };
}

/**
 * A copy of the frame with every box blacked out (rounded outwards to whole pixels, clipped to the
 * frame). Boxes must be drawable (privateView checks).
 */
export function redactFrame(frame: Frame, boxes: readonly Box[]): Frame {
  const data = frame.data.slice(0, frame.stride * frame.height);
  const ch = channelsOf(frame.format);
  for (const b of boxes) {
    const x0 = Math.max(0, Math.floor(b.x));
    const y0 = Math.max(0, Math.floor(b.y));
    const x1 = Math.min(frame.width, Math.ceil(b.x + b.w));
    const y1 = Math.min(frame.height, Math.ceil(b.y + b.h));
    if (x1 <= x0) continue;
    for (let y = y0; y < y1; y++) data.fill(0, y * frame.stride + x0 * ch, y * frame.stride + x1 * ch);
  }
  return { ...frame, data };
}

/**
 * The frame as a picture may show it (/snapshot.jpg, the `snapshot` command, /preview.mjpeg): the
 * full-resolution twin when the frame has one, private as privateView says. `k` scales results
 * (in the camera's pixels) to the picture's pixels: on a scaled frame with no twin, boxes shrink by it.
 */
export function visibleFrame(frame: Frame, inf: Inference, mode: Exclude<SnapshotPrivacy, 'off'>): { frame: Frame; k: number } {
  const pic = frame.full ?? frame;
  const k = pic.width / (frame.sourceWidth ?? frame.width);
  return { frame: privateView(pic, inf, mode, k), k };
}
