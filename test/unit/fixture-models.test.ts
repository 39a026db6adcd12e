import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DETECT_SCORES, fixtureFiles, SEGMENT_LABELS } from '../../scripts/make-fixture-models.js';
import { Engine } from '../../src/inference/engine.js';
import { loadModelPackage } from '../../src/inference/package.js';
import type { DetectInference, SegmentInference } from '../../src/inference/types.js';
import { resultPayload } from '../../src/publish/payload.js';
import { BLUE, drawFrame, GREEN, RED, type Rect, YELLOW } from '../helpers/draw.js';

/**
 * The fixture detector and segmenter (scripts/make-fixture-models.ts), run by the real engine
 * (preprocess -> ORT -> postprocess): boxes we drew come back where we drew them, in source pixels,
 * after letterbox inversion; area fractions are exact to the pixel.
 */

const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const engines = new Map<string, Engine>();
async function engine(name: string, dir = path.join(fixtures, name)): Promise<Engine> {
  if (!engines.has(dir)) engines.set(dir, await Engine.load(await loadModelPackage(dir), { providers: ['cpu'], intraOpThreads: 1 }));
  return engines.get(dir)!;
}
afterAll(async () => {
  for (const e of engines.values()) await e.close();
});

const box = (r: Rect) => ({ x: r.x, y: r.y, w: r.w, h: r.h });

describe('fixture models', () => {
  it('are exactly what scripts/make-fixture-models.ts generates (run it after changing the script)', async () => {
    for (const [rel, bytes] of fixtureFiles()) {
      const committed = await readFile(path.join(fixtures, rel));
      expect(committed.equals(Buffer.from(bytes)), `${rel} differs: npx tsx scripts/make-fixture-models.ts`).toBe(true);
    }
  });
});

describe('detector fixture (letterbox, 256x256 input)', () => {
  const red: Rect = { x: 100, y: 60, w: 120, h: 80, rgb: RED };
  const blue: Rect = { x: 300, y: 200, w: 50, h: 100, rgb: BLUE };

  for (const format of ['yolov8', 'yolov5', 'boxes-scores']) {
    it(`${format}: boxes come back exactly where they were drawn (512x384 -> scale 1/2, 32 px bars)`, async () => {
      const e = await engine(`detector-${format}`);
      const inf = (await e.infer(drawFrame(512, 384, [red, blue]))) as DetectInference;
      expect(inf.task).toBe('detect');
      // The decoy boxes (4 px larger, half the score) are removed by NMS; green is absent.
      expect(inf.detections.map((d) => [d.label, d.index])).toEqual([
        ['red', 0],
        ['blue', 2],
      ]);
      expect(inf.detections[0].score).toBeCloseTo(DETECT_SCORES[0], 6);
      expect(inf.detections[1].score).toBeCloseTo(DETECT_SCORES[2], 6);
      expect(inf.detections[0].box).toEqual(box(red));
      expect(inf.detections[1].box).toEqual(box(blue));
    });
  }

  const within1px = (got: { x: number; y: number; w: number; h: number }, want: Rect) => {
    for (const [a, b, what] of [
      [got.x, want.x, 'x1'],
      [got.y, want.y, 'y1'],
      [got.x + got.w, want.x + want.w, 'x2'],
      [got.y + got.h, want.y + want.h, 'y2'],
    ] as const) {
      expect(Math.abs(a - b), `${what}: got ${a}, drew ${b}`).toBeLessThanOrEqual(1);
    }
  };

  it('boxes are within 1 px at a non-integer scale (300x225 -> 0.853) and with side bars (240x400)', async () => {
    const e = await engine('detector-yolov8');
    const a: Rect = { x: 37, y: 51, w: 101, h: 77, rgb: RED };
    const b: Rect = { x: 180, y: 20, w: 90, h: 150, rgb: GREEN };
    const wide = (await e.infer(drawFrame(300, 225, [a, b]))) as DetectInference;
    expect(wide.detections.map((d) => d.label)).toEqual(['red', 'green']);
    within1px(wide.detections[0].box, a);
    within1px(wide.detections[1].box, b);

    const c: Rect = { x: 13, y: 301, w: 200, h: 61, rgb: BLUE };
    const tall = (await e.infer(drawFrame(240, 400, [c]))) as DetectInference;
    expect(tall.detections.map((d) => d.label)).toEqual(['blue']);
    within1px(tall.detections[0].box, c);
  });

  it('finds nothing in an empty frame', async () => {
    const e = await engine('detector-yolov8');
    const inf = (await e.infer(drawFrame(640, 480, []))) as DetectInference;
    expect(inf.detections).toEqual([]);
  });

  it('class-aware NMS keeps overlapping boxes of different classes; class-agnostic keeps the best', async () => {
    const red2: Rect = { x: 100, y: 100, w: 200, h: 160, rgb: RED };
    const green2: Rect = { x: 110, y: 104, w: 190, h: 156, rgb: GREEN }; // mostly covers red: IoU ~0.93
    const frame = drawFrame(512, 384, [red2, green2]);
    const aware = (await (await engine('detector-yolov8')).infer(frame)) as DetectInference;
    expect(aware.detections.map((d) => d.label)).toEqual(['red', 'green']);

    const dir = await mkdtemp(path.join(os.tmpdir(), 'agnostic-'));
    try {
      await cp(path.join(fixtures, 'detector-yolov8'), dir, { recursive: true });
      const manifest = await readFile(path.join(dir, 'manifest.yaml'), 'utf8');
      await writeFile(path.join(dir, 'manifest.yaml'), manifest.replace('classAware: true', 'classAware: false'));
      const agnostic = (await (await engine('', dir)).infer(frame)) as DetectInference;
      expect(agnostic.detections.map((d) => d.label)).toEqual(['red']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('becomes a detect result payload: best box as label/score, boxes in source pixels', async () => {
    const e = await engine('detector-yolov5');
    const frame = drawFrame(512, 384, [red, blue], [0, 0, 0], 'door');
    const inf = await e.infer(frame);
    const p = resultPayload({ deviceId: 'd1', seq: 7, frame, inference: inf, model: inf.model, nowMs: frame.capturedAtMs + 5 });
    expect(p).toMatchObject({
      task: 'detect',
      camera: 'door',
      seq: 7,
      label: 'red',
      model: { name: 'fixture-detector-yolov5', version: '1.0.0' },
    });
    if (p.task !== 'detect') throw new Error('not a detect payload');
    expect(p.detections.map((d) => d.box)).toEqual([box(red), box(blue)]);
  });
});

describe('segmenter fixture (per-pixel nearest colour, 64x64 input, letterbox)', () => {
  // 128x96 -> scale 1/2 (64x48 content, 8 px bars): every model pixel is one 2x2 block of the
  // source, and all rectangles sit on even coordinates, so each block is one colour.
  const W = 128;
  const H = 96;
  const rects: Rect[] = [
    { x: 10, y: 20, w: 30, h: 16, rgb: RED },
    { x: 60, y: 40, w: 24, h: 30, rgb: GREEN },
    { x: 100, y: 0, w: 28, h: 96, rgb: YELLOW },
  ];
  const classOf = (rgb: readonly number[]) => ({ '255,0,0': 1, '0,255,0': 2, '0,0,255': 3, '255,255,0': 4 })[rgb.join(',')] ?? 0;
  const expected = () => {
    const counts = new Array(SEGMENT_LABELS.length).fill(0);
    const mask = new Uint8Array(W * H);
    const frame = drawFrame(W, H, rects);
    for (let i = 0; i < W * H; i++) {
      mask[i] = classOf(Array.from(frame.data.subarray(i * 3, i * 3 + 3)));
      counts[mask[i]]++;
    }
    return {
      frame,
      mask,
      fractions: counts.map((c, index) => ({ index, label: SEGMENT_LABELS[index], fraction: c / (W * H) })).filter((c) => c.fraction > 0),
    };
  };

  for (const name of ['segmenter', 'segmenter-classes']) {
    it(`${name}: area fractions are exact to the pixel; letterbox bars are not counted`, async () => {
      const { frame, fractions } = expected();
      const inf = (await (await engine(name)).infer(frame)) as SegmentInference;
      expect(inf.task).toBe('segment');
      const want = [...fractions].sort((a, b) => b.fraction - a.fraction || a.index - b.index);
      expect(inf.classes).toEqual(want);
      expect(inf.classes.map((c) => c.label)).toEqual(['background', 'yellow', 'green', 'red']);
    });
  }

  it('the mask PNG gives each source pixel its class', async () => {
    const { frame, mask } = expected();
    const inf = (await (await engine('segmenter')).infer(frame)) as SegmentInference;
    expect(inf.maskPng).toBeInstanceOf(Uint8Array);
    expect(await sharp(inf.maskPng!).metadata()).toMatchObject({ format: 'png', width: W, height: H, channels: 1, depth: 'uchar' });
    const { data, info } = await sharp(inf.maskPng!).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: W, height: H, channels: 1 });
    expect(Buffer.from(data).equals(Buffer.from(mask))).toBe(true);

    const p = resultPayload({ deviceId: 'd1', seq: 1, frame, inference: inf, model: inf.model, nowMs: Date.now() });
    expect(p).toMatchObject({ task: 'segment', label: 'background' });
    if (p.task !== 'segment') throw new Error('not a segment payload');
    expect(Buffer.from(p.maskPng!, 'base64').equals(Buffer.from(inf.maskPng!))).toBe(true);
    expect(p.segments.map((s) => s.label)).toEqual(inf.classes.map((c) => c.label));
  });
});
