import { channelsOf, type Frame } from '../capture/frame.js';
import type { Box } from '../inference/types.js';

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
