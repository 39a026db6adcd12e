import { channelsOf, type Frame } from '../capture/frame.js';
import type { Box, Inference } from '../inference/types.js';

/**
 * Privacy for snapshots: a copy of the frame with every box blacked out (rounded outwards to whole
 * pixels, clipped to the frame), so a person a stage found never leaves the device in a picture.
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
 * full-resolution twin when the frame has one, with every detected box blacked out in `redact`
 * mode. `k` scales results (in the camera's pixels) to the picture's pixels: on a scaled frame
 * with no twin, boxes shrink by it.
 */
export function visibleFrame(frame: Frame, inf: Inference, mode: 'redact' | 'on'): { frame: Frame; k: number } {
  const pic = frame.full ?? frame;
  const k = pic.width / (frame.sourceWidth ?? frame.width);
  if (mode !== 'redact' || inf.task !== 'detect') return { frame: pic, k };
  return {
    frame: redactFrame(
      pic,
      inf.detections.map((d) => ({ x: d.box.x * k, y: d.box.y * k, w: d.box.w * k, h: d.box.h * k })),
    ),
    k,
  };
}
