import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { blackFrame, privateView, visibleFrame } from '../../src/health/redact.js';
import type { Box, Inference } from '../../src/inference/types.js';

/**
 * What privateView and visibleFrame let a picture show, pixel by pixel: the frames are one grey
 * level, so every blacked-out pixel is known from the boxes placed here.
 */

const W = 40;
const H = 30;
const GREY = 200;

function frame(width = W, height = H, extra: Partial<Frame> = {}): Frame {
  const stride = width * 3 + 4; // padded rows, as GStreamer gives RGB
  return {
    camera: 'kiosk',
    seq: 1,
    width,
    height,
    stride,
    format: 'RGB',
    data: new Uint8Array(stride * height).fill(GREY),
    capturedAtMs: 0,
    ...extra,
  };
}

const model = { name: 'f', version: '1', sha256: 'a'.repeat(64), task: 'detect', provider: 'cpu' } as const;
const latencyMs = { preprocess: 0, inference: 0, postprocess: 0 };

function detect(boxes: Box[], privacy?: Inference['privacy']): Inference {
  return {
    task: 'detect',
    detections: boxes.map((box, index) => ({ index, label: 'person', score: 0.9, box })),
    model,
    latencyMs,
    ...(privacy ? { privacy } : {}),
  } as Inference;
}

/** The pixels (x, y) that are black, as "x,y" strings. */
function blackPixels(f: Frame): Set<string> {
  const out = new Set<string>();
  for (let y = 0; y < f.height; y++) for (let x = 0; x < f.width; x++) if (f.data[y * f.stride + x * 3] === 0) out.add(`${x},${y}`);
  return out;
}

/** The pixels a box [x0, x1) x [y0, y1) covers. */
function rect(x0: number, y0: number, x1: number, y1: number): Set<string> {
  const out = new Set<string>();
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out.add(`${x},${y}`);
  return out;
}

describe('privateView', () => {
  it('redact blacks out the detections; auto only the privacy boxes; on shows all', () => {
    const pic = frame();
    const inf = detect([{ x: 2, y: 3, w: 4, h: 5 }], { boxes: [{ x: 20, y: 10, w: 3, h: 2 }], whole: false });
    expect(blackPixels(privateView(pic, inf, 'redact', 1))).toEqual(new Set([...rect(2, 3, 6, 8), ...rect(20, 10, 23, 12)]));
    expect(blackPixels(privateView(pic, inf, 'auto', 1))).toEqual(rect(20, 10, 23, 12));
    expect(privateView(pic, inf, 'on', 1)).toBe(pic);
    // Without privacy boxes, auto leaves a detector's frame as it is.
    expect(blackPixels(privateView(pic, detect([{ x: 2, y: 3, w: 4, h: 5 }]), 'auto', 1)).size).toBe(0);
  });

  it('privacy.whole hides the whole frame, whatever the boxes', () => {
    const pic = frame();
    const v = privateView(pic, detect([], { boxes: [], whole: true }), 'auto', 1);
    expect(blackPixels(v).size).toBe(W * H);
    expect(v.data.length).toBe(pic.stride * pic.height);
  });

  it.each([
    ['x', { x: Number.NaN, y: 1, w: 2, h: 2 }],
    ['y', { x: 1, y: Number.POSITIVE_INFINITY, w: 2, h: 2 }],
    ['w', { x: 1, y: 1, w: Number.NaN, h: 2 }],
    ['h', { x: 1, y: 1, w: 2, h: Number.POSITIVE_INFINITY }],
    ['negative w', { x: 1, y: 1, w: -2, h: 2 }],
    ['negative h', { x: 1, y: 1, w: 2, h: -2 }],
  ])('a box whose %s cannot be drawn hides the whole frame (fails closed)', (_what, bad) => {
    const v = privateView(frame(), detect([{ x: 2, y: 3, w: 4, h: 5 }, bad]), 'redact', 1);
    expect(blackPixels(v).size).toBe(W * H);
  });

  it('a box of zero or sub-pixel size is drawable: it blacks out the pixels it touches, the frame stays', () => {
    const pic = frame();
    expect(blackPixels(privateView(pic, detect([{ x: 5, y: 5, w: 0, h: 0 }]), 'redact', 1)).size).toBe(0);
    expect(blackPixels(privateView(pic, detect([{ x: 5.2, y: 6.1, w: 0.5, h: 0.5 }]), 'redact', 1))).toEqual(rect(5, 6, 6, 7));
  });

  it('scales the boxes by k (camera pixels to picture pixels), each side alike', () => {
    const v = privateView(frame(), detect([{ x: 2, y: 3, w: 4, h: 5 }]), 'redact', 2);
    expect(blackPixels(v)).toEqual(rect(4, 6, 12, 16));
    const half = privateView(frame(), detect([{ x: 2, y: 4, w: 6, h: 8 }]), 'redact', 0.5);
    expect(blackPixels(half)).toEqual(rect(1, 2, 4, 6));
  });
});

describe('blackFrame', () => {
  it('is a black copy of the whole frame (every row, stride included), leaving the frame alone', () => {
    const f = frame();
    const b = blackFrame(f);
    expect(b.data.length).toBe(f.stride * f.height);
    expect(b.data.every((v) => v === 0)).toBe(true);
    expect(f.data[0]).toBe(GREY);
    expect({ ...b, data: undefined }).toEqual({ ...f, data: undefined });
  });
});

describe('visibleFrame', () => {
  it('shows the full-resolution twin with boxes scaled up from the camera pixels; a scaled frame alone shrinks them', () => {
    // The camera is 80x60; the model got 40x30; results are in the camera's pixels.
    const full = frame(80, 60);
    const scaled = frame(W, H, { sourceWidth: 80, sourceHeight: 60, full });
    const inf = detect([{ x: 10, y: 20, w: 8, h: 6 }]);
    const twin = visibleFrame(scaled, inf, 'redact');
    expect([twin.k, twin.frame.width]).toEqual([1, 80]);
    expect(blackPixels(twin.frame)).toEqual(rect(10, 20, 18, 26));
    const alone = visibleFrame({ ...scaled, full: undefined }, inf, 'redact');
    expect([alone.k, alone.frame.width]).toEqual([0.5, W]);
    expect(blackPixels(alone.frame)).toEqual(rect(5, 10, 9, 13));
    // A frame that was not scaled: k 1, its own pixels.
    expect(visibleFrame(frame(), inf, 'on').k).toBe(1);
  });
});
