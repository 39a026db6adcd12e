import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame, PixelFormat } from '../../src/capture/frame.js';
import { bannerHeight, colourOf, framePixels, overlaySvg, renderSnapshot, strokeWidth } from '../../src/health/snapshot.js';

/** A solid-colour frame in any layout, with row padding, as a GStreamer appsink hands it over. */
function solidFrame(width: number, height: number, rgb: [number, number, number], format: PixelFormat, pad = 0): Frame {
  const ch = format === 'GRAY8' ? 1 : format === 'RGB' || format === 'BGR' ? 3 : 4;
  const stride = width * ch + pad;
  const data = new Uint8Array(stride * height).fill(0xee); // padding bytes must never show
  const px = format === 'GRAY8' ? [rgb[0]] : format.startsWith('BGR') ? [rgb[2], rgb[1], rgb[0], 255] : [rgb[0], rgb[1], rgb[2], 255];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(px.slice(0, ch), y * stride + x * ch);
  return { camera: 'c', seq: 1, width, height, stride, format, data, capturedAtMs: 0 };
}

async function decode(jpeg: Buffer) {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
  return { info, px };
}

const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
const near = (a: number[], b: number[], tol = 30) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

describe('snapshot rendering', () => {
  it('packs RGB out of every pixel format and stride', () => {
    for (const format of ['RGB', 'BGR', 'RGBA', 'BGRA'] as const) {
      const out = framePixels(solidFrame(3, 2, [10, 20, 30], format, 5));
      expect([...out], format).toEqual(Array(6).fill([10, 20, 30]).flat());
    }
    expect([...framePixels(solidFrame(2, 2, [77, 0, 0], 'GRAY8', 2))]).toEqual(Array(12).fill(77));
  });

  it('draws boxes where the result says, in the class colour, and leaves the rest of the frame alone', async () => {
    const frame = solidFrame(400, 300, [40, 40, 40], 'BGR', 4);
    const boxes = [
      { x: 50, y: 100, width: 120, height: 80, label: 'eye', score: 0.9, index: 2 },
      { x: 250, y: 150, width: 100, height: 100, label: 'face', score: 0.75, index: 5 },
    ];
    const jpeg = await renderSnapshot(frame, { boxes }, 95);
    const { info, px } = await decode(jpeg);
    expect([info.width, info.height]).toEqual([400, 300]);
    const sw = strokeWidth(400, 300);
    for (const b of boxes) {
      const c = hex(colourOf(b.index));
      const mid = Math.round(sw / 2);
      // Middle of the left and right edges, and of the bottom edge.
      expect(near(px(b.x + mid, b.y + b.height / 2), c), `left edge of ${b.label}: ${px(b.x + mid, b.y + b.height / 2)}`).toBe(true);
      expect(near(px(b.x + b.width - 1 - mid, b.y + b.height / 2), c), `right edge of ${b.label}`).toBe(true);
      expect(near(px(b.x + b.width / 2, b.y + b.height - 1 - mid), c), `bottom edge of ${b.label}`).toBe(true);
      // Inside and just outside the box: the frame.
      expect(near(px(b.x + b.width / 2, b.y + b.height / 2), [40, 40, 40]), 'inside').toBe(true);
      expect(near(px(b.x - 6, b.y + b.height / 2), [40, 40, 40]), 'outside').toBe(true);
    }
    // No classification: no banner.
    expect(near(px(390, 5), [40, 40, 40])).toBe(true);
  });

  it('draws the classification banner across the top in the label colour', async () => {
    const frame = solidFrame(200, 100, [250, 250, 250], 'GRAY8');
    const { info, px } = await decode(await renderSnapshot(frame, { label: 'metal', score: 0.87, index: 2 }, 95));
    expect([info.width, info.height]).toEqual([200, 100]);
    const bh = bannerHeight(100);
    expect(near(px(195, Math.floor(bh / 2)), hex(colourOf(2)))).toBe(true);
    expect(near(px(195, bh + 3), [250, 250, 250])).toBe(true);
  });

  it('escapes text so labels cannot break out of the SVG', () => {
    const svg = overlaySvg(100, 100, {
      label: '<script>&"x"',
      score: 0.5,
      boxes: [{ x: 0, y: 0, width: 10, height: 10, label: '</text><rect/>', score: 1, index: 0 }],
    });
    expect(svg).not.toContain('<script>');
    expect(svg).not.toContain('</text><rect/>');
    expect(svg).toContain('&#60;script&#62;&#38;&#34;x&#34; 0.50');
  });
});
