import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { geometryFor } from '../../src/inference/preprocess.js';
import { Segmenter } from '../../src/inference/segment.js';

/** Segmentation postprocessing on hand-made class maps: the mask lands on the source pixels of what was placed. */

const LABELS = ['background', 'object', 'padding'];
const [BACKGROUND, OBJECT, PADDING] = [0, 1, 2];

async function maskPixels(png: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

describe('segment mask with a horizontal letterbox offset', () => {
  it('a frame taller than wide in a square input: the mask pixels land on the object, not shifted by the side bars', async () => {
    // Source 16 x 32 into a 64 x 64 letterbox input: scale 2, bars of 16 input pixels left and right.
    const [srcW, srcH, inW, inH] = [16, 32, 64, 64];
    const g = geometryFor({ width: inW, height: inH, resize: 'letterbox' }, srcW, srcH);
    expect(g.offsetX).toBeGreaterThan(0);
    expect(g.offsetY).toBe(0);
    // The model's class map is half the input size (32 x 32), as segmenters' outputs often are.
    const [W, H] = [inW / 2, inH / 2];
    // The object, in source pixels [x0, x1) x [y0, y1): on the right side of the frame.
    const [x0, x1, y0, y1] = [9, 14, 4, 20];
    const ids = new Float32Array(W * H);
    for (let oy = 0; oy < H; oy++) {
      for (let ox = 0; ox < W; ox++) {
        // The output pixel's centre, in input pixels, then in source pixels.
        const sx = (((ox + 0.5) * inW) / W - g.offsetX) / g.scaleX;
        const sy = (((oy + 0.5) * inH) / H - g.offsetY) / g.scaleY;
        const inside = sx >= 0 && sx < srcW && sy >= 0 && sy < srcH;
        ids[oy * W + ox] = !inside ? PADDING : sx >= x0 && sx < x1 && sy >= y0 && sy < y1 ? OBJECT : BACKGROUND;
      }
    }
    const seg = new Segmenter({ output: 'classes', maskPng: true });
    const r = seg.run({ data: ids, dims: [1, H, W] }, LABELS, g, inW, inH);

    const mask = await maskPixels(r.maskPng!);
    expect([mask.width, mask.height]).toEqual([srcW, srcH]);
    const wrong: string[] = [];
    for (let y = 0; y < srcH; y++) {
      for (let x = 0; x < srcW; x++) {
        const want = x >= x0 && x < x1 && y >= y0 && y < y1 ? OBJECT : BACKGROUND;
        if (mask.data[y * srcW + x] !== want) wrong.push(`(${x},${y}) is ${LABELS[mask.data[y * srcW + x]]}, not ${LABELS[want]}`);
      }
    }
    expect(wrong.slice(0, 5), `${wrong.length} mask pixels wrong`).toEqual([]);
    // The bars are not part of the picture: no area fraction for what the model said there.
    expect(r.classes.map((c) => c.label).sort()).toEqual(['background', 'object']);
  });
});
