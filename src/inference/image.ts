import sharp from 'sharp';
import { DECODE_GUARDS } from '../capture/decode-guards.js';
import type { Frame } from '../capture/frame.js';
import { systemClock } from '../clock.js';
import { DaemonError, errorMessage } from '../errors.js';

/**
 * Still images for one-shot inference (`POST /infer`, `edge-inferd infer`): the type is decided by
 * the bytes, never by a file name or a Content-Type header, and decoding has a pixel limit so a
 * small compressed file cannot expand into gigabytes.
 */

export type ImageType = 'jpeg' | 'png' | 'webp';

export function sniffImageType(b: Uint8Array): ImageType | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (
    b.length >= 8 &&
    b[0] === 0x89 &&
    b[1] === 0x50 &&
    b[2] === 0x4e &&
    b[3] === 0x47 &&
    b[4] === 0x0d &&
    b[5] === 0x0a &&
    b[6] === 0x1a &&
    b[7] === 0x0a
  )
    return 'png';
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...b.subarray(8, 12)) === 'WEBP')
    return 'webp';
  return undefined;
}

const hexHead = (b: Uint8Array) => Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');

/** Decodes a JPEG/PNG/WebP into an RGB frame. Errors: IMAGE_EMPTY, IMAGE_TYPE, IMAGE_DECODE. */
export async function decodeImage(
  bytes: Uint8Array,
  meta: { camera: string; seq: number; name?: string; nowMs?: number },
): Promise<Frame & { imageType: ImageType }> {
  if (bytes.length === 0) throw new DaemonError('IMAGE_EMPTY', 'the image is empty (0 bytes)');
  const type = sniffImageType(bytes);
  if (!type) throw new DaemonError('IMAGE_TYPE', `not a JPEG, PNG or WebP image (first bytes: ${hexHead(bytes)})`);
  const { data, info } = await sharp(bytes, DECODE_GUARDS)
    .rotate()
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((err: unknown) => {
      throw new DaemonError('IMAGE_DECODE', `cannot decode the ${type.toUpperCase()} image: ${errorMessage(err)}`, { cause: err });
    });
  return {
    camera: meta.camera,
    seq: meta.seq,
    width: info.width,
    height: info.height,
    stride: info.width * info.channels,
    format: info.channels === 1 ? 'GRAY8' : 'RGB',
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    capturedAtMs: meta.nowMs ?? systemClock.now(),
    ...(meta.name ? { name: meta.name } : {}),
    imageType: type,
  };
}
