import sharp from 'sharp';
import type { Frame } from './frame.js';
import { packedRgb } from './pixels.js';

/**
 * A frame as JPEG. The pixels are copied first, synchronously: a capture source may reuse the
 * frame's buffer for the next frame while sharp encodes on its own thread.
 */
export async function frameToJpeg(
  frame: Frame,
  opts: { quality: number; maxWidth?: number },
): Promise<{ jpeg: Buffer; width: number; height: number }> {
  const { data: px, channels: ch } = packedRgb(frame);
  let img = sharp(px, { raw: { width: frame.width, height: frame.height, channels: ch } });
  if (ch === 4) img = img.removeAlpha();
  if (opts.maxWidth !== undefined && frame.width > opts.maxWidth) img = img.resize({ width: opts.maxWidth });
  const { data, info } = await img.jpeg({ quality: opts.quality }).toBuffer({ resolveWithObject: true });
  return { jpeg: data, width: info.width, height: info.height };
}
