import type { Frame } from '../../src/capture/frame.js';

/** Synthetic RGB frames with rectangles placed where a test wants them. */

export type Rgb = readonly [number, number, number];
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
  rgb: Rgb;
}

export function drawFrame(width: number, height: number, rects: readonly Rect[], background: Rgb = [0, 0, 0], camera = 'test'): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(background, i * 3);
  for (const r of rects) {
    for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) data.set(r.rgb, (y * width + x) * 3);
  }
  return { camera, seq: 1, width, height, stride: width * 3, format: 'RGB', data, capturedAtMs: Date.now() };
}

export const RED: Rgb = [255, 0, 0];
export const GREEN: Rgb = [0, 255, 0];
export const BLUE: Rgb = [0, 0, 255];
export const YELLOW: Rgb = [255, 255, 0];
