import { channelsOf, type Frame } from './frame.js';

/**
 * A frame's pixels packed row after row (no stride padding), in RGB order: what an encoder that
 * takes raw RGB(A) wants. Always a copy: a capture source may reuse the frame's buffer for the
 * next frame while the encoder runs on its own thread.
 */
export function packedRgb(frame: Pick<Frame, 'width' | 'height' | 'stride' | 'format' | 'data'>): { data: Buffer; channels: 1 | 3 | 4 } {
  const ch = channelsOf(frame.format) as 1 | 3 | 4;
  const row = frame.width * ch;
  const px = Buffer.allocUnsafe(row * frame.height);
  for (let y = 0; y < frame.height; y++) px.set(frame.data.subarray(y * frame.stride, y * frame.stride + row), y * row);
  if (frame.format === 'BGR' || frame.format === 'BGRA') {
    for (let i = 0; i < px.length; i += ch) {
      const b = px[i];
      px[i] = px[i + 2];
      px[i + 2] = b;
    }
  }
  return { data: px, channels: ch };
}
