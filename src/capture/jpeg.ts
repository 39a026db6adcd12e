import sharp from 'sharp';
import { channelsOf, type Frame } from './frame.js';

/**
 * A frame as JPEG. The pixels are copied first, synchronously: a capture source may reuse the
 * frame's buffer for the next frame while sharp encodes on its own thread.
 */
export async function frameToJpeg(frame: Frame, opts: { quality: number; maxWidth?: number }): Promise<{ jpeg: Buffer; width: number; height: number }> {
  const ch = channelsOf(frame.format);
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
  let img = sharp(px, { raw: { width: frame.width, height: frame.height, channels: ch as 1 | 3 | 4 } });
  if (ch === 4) img = img.removeAlpha();
  if (opts.maxWidth !== undefined && frame.width > opts.maxWidth) img = img.resize({ width: opts.maxWidth });
  const { data, info } = await img.jpeg({ quality: opts.quality }).toBuffer({ resolveWithObject: true });
  return { jpeg: data, width: info.width, height: info.height };
}
