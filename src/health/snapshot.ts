import sharp from 'sharp';
import { channelsOf, type Frame } from '../capture/frame.js';
import type { Inference } from '../inference/types.js';

/**
 * /snapshot.jpg: the latest frame with what the model said drawn on it, so a technician sees the
 * camera's view and the result side by side. The overlay is an SVG composited by sharp: a banner
 * along the top in the label's colour with "label score", and a rectangle per detection.
 */

export interface OverlayBox {
  /** Frame pixels, top-left origin. */
  x: number;
  y: number;
  width: number;
  height: number;
  label: string;
  score: number;
  /** Class index: picks the colour. */
  index: number;
}

/** A detector's boxes as the overlay draws them, scaled by `k` from the inferred frame to the one shown; none for other tasks. */
export function detectionBoxes(inf: Inference, k: number): OverlayBox[] | undefined {
  if (inf.task !== 'detect') return undefined;
  return inf.detections.map((d) => ({
    x: d.box.x * k,
    y: d.box.y * k,
    width: d.box.w * k,
    height: d.box.h * k,
    label: d.label,
    score: d.score,
    index: d.index,
  }));
}

export interface Overlay {
  label?: string;
  score?: number;
  /** Class index of `label`: picks the banner colour. */
  index?: number;
  boxes?: OverlayBox[];
  /** Small print in the bottom-left corner (camera, time). */
  caption?: string;
}

/** Distinct colours, one per class index (cycled). */
export const PALETTE = [
  '#e6194b',
  '#3cb44b',
  '#4363d8',
  '#f58231',
  '#911eb4',
  '#42d4f4',
  '#f032e6',
  '#bfef45',
  '#ffe119',
  '#469990',
] as const;
export const colourOf = (index: number): string => PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];

/** The banner's height for a frame of this height (the test looks for the colour inside it). */
export const bannerHeight = (frameHeight: number): number => Math.max(16, Math.round(frameHeight * 0.12));
/** The box outline width for a frame of this size. */
export const strokeWidth = (w: number, h: number): number => Math.max(2, Math.round(Math.min(w, h) / 80));

const esc = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function overlaySvg(width: number, height: number, o: Overlay): string {
  const parts: string[] = [];
  const bh = bannerHeight(height);
  const font = Math.round(bh * 0.65);
  const sw = strokeWidth(width, height);
  for (const b of o.boxes ?? []) {
    const c = colourOf(b.index);
    parts.push(
      `<rect x="${b.x + sw / 2}" y="${b.y + sw / 2}" width="${Math.max(0, b.width - sw)}" ` +
        `height="${Math.max(0, b.height - sw)}" fill="none" stroke="${c}" stroke-width="${sw}"/>`,
    );
    const ty = b.y > bh ? b.y - 3 : b.y + font;
    parts.push(
      `<text x="${b.x + sw}" y="${ty}" font-family="sans-serif" font-size="${Math.round(font * 0.8)}" ` +
        `fill="${c}" stroke="#000" stroke-width="0.6">${esc(`${b.label} ${b.score.toFixed(2)}`)}</text>`,
    );
  }
  if (o.label !== undefined) {
    parts.push(`<rect x="0" y="0" width="${width}" height="${bh}" fill="${colourOf(o.index ?? 0)}"/>`);
    const text = o.score === undefined ? o.label : `${o.label} ${o.score.toFixed(2)}`;
    parts.push(
      `<text x="${Math.round(bh * 0.3)}" y="${Math.round(bh * 0.75)}" font-family="sans-serif" ` +
        `font-weight="bold" font-size="${font}" fill="#fff" stroke="#000" stroke-width="0.8">${esc(text)}</text>`,
    );
  }
  if (o.caption) {
    const size = Math.max(9, Math.round(font * 0.6));
    parts.push(`<rect x="0" y="${height - size - 6}" width="${width}" height="${size + 6}" fill="#000" fill-opacity="0.55"/>`);
    parts.push(`<text x="4" y="${height - 4}" font-family="monospace" font-size="${size}" fill="#fff">${esc(o.caption)}</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Packed RGB pixels from a frame, whatever its stride, channel order or grey; written into `into` when its size fits. */
export function framePixels(frame: Frame, into?: Buffer): Buffer {
  const ch = channelsOf(frame.format);
  const row = frame.width * 3;
  const data = into?.length === row * frame.height ? into : Buffer.alloc(row * frame.height);
  const bgr = frame.format === 'BGR' || frame.format === 'BGRA';
  for (let y = 0; y < frame.height; y++) {
    const src = y * frame.stride;
    const dst = y * row;
    if (frame.format === 'RGB') {
      data.set(frame.data.subarray(src, src + row), dst);
      continue;
    }
    for (let x = 0; x < frame.width; x++) {
      const s = src + x * ch;
      const d = dst + x * 3;
      if (ch === 1) {
        data[d] = data[d + 1] = data[d + 2] = frame.data[s];
        continue;
      }
      data[d] = frame.data[bgr ? s + 2 : s];
      data[d + 1] = frame.data[s + 1];
      data[d + 2] = frame.data[bgr ? s : s + 2];
    }
  }
  return data;
}

export async function renderSnapshot(frame: Frame, overlay: Overlay, quality = 80): Promise<Buffer> {
  return await sharp(framePixels(frame), { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .composite([{ input: Buffer.from(overlaySvg(frame.width, frame.height, overlay)), top: 0, left: 0 }])
    .jpeg({ quality })
    .toBuffer();
}
