import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { colourOf } from '../../src/health/snapshot.js';
import { SnapshotStore } from '../../src/health/snapshots.js';
import type { CommandError } from '../../src/publish/commands.js';
import type { Inference } from '../../src/inference/types.js';
import { ManualClock } from '../helpers/clock.js';

/** The snapshot store's frame copies (when, of what, in how much memory) and its limits, on a manual clock. */

function frame(seq: number, value = seq, extra: Partial<Frame> = {}): Frame {
  return {
    camera: 'c',
    seq,
    width: 8,
    height: 4,
    stride: 24,
    format: 'RGB',
    data: new Uint8Array(96).fill(value),
    capturedAtMs: 1000 + seq,
    ...extra,
  };
}

const inf = {
  task: 'classify',
  top: [{ index: 0, label: 'a', score: 1 }],
  model: { name: 'm', version: '1', sha256: 'a'.repeat(64), task: 'classify', provider: 'cpu' },
  latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
} as unknown as Inference;

describe('SnapshotStore.keep', () => {
  it('copies nothing until someone asks; a request keeps frames wanted for exactly a minute', async () => {
    const clock = new ManualClock();
    const store = new SnapshotStore({ clock });
    const f = frame(1);
    expect(store.keep(f)).toBe(f);
    store.record(f, inf);
    await store.command('c', 80, undefined);
    expect(store.wanted).toBe(true);
    await clock.advance(60_000);
    expect(store.wanted).toBe(true);
    expect(store.keep(frame(2)).data).not.toBe(frame(2).data);
    await clock.advance(1);
    expect(store.wanted).toBe(false);
    // The page snapshot (/snapshot.jpg) asks for frames too.
    await store.annotated('c');
    await clock.advance(60_000);
    expect(store.wanted).toBe(true);
  });

  it('a frame with a full-resolution twin: the twin is copied, the scaled frame passed on as it is', () => {
    const store = new SnapshotStore({ clock: new ManualClock(), alsoWanted: () => true });
    const full = frame(1, 77, { width: 16, height: 8, stride: 48, data: new Uint8Array(384).fill(77) });
    const scaled = frame(1, 5, { sourceWidth: 16, sourceHeight: 8, full });
    const kept = store.keep(scaled);
    expect(kept.data).toBe(scaled.data);
    expect(kept.full?.data).not.toBe(full.data);
    expect(kept.full?.data).toEqual(full.data);
    full.data.fill(0); // the camera reuses its memory for the next frame
    expect(kept.full?.data[0]).toBe(77);
  });

  it('keeps four copies per camera (inferred, waiting, shown, spare): each stays intact for three more frames, then is reused', () => {
    const store = new SnapshotStore({ clock: new ManualClock(), alsoWanted: () => true });
    const kept = Array.from({ length: 12 }, (_, i) => store.keep(frame(i + 1)));
    // The last four frames are each intact...
    expect(kept.slice(8).map((k) => k.data[0])).toEqual([9, 10, 11, 12]);
    // ...in four buffers, allocated once and reused in turn.
    expect(new Set(kept.map((k) => k.data)).size).toBe(4);
    expect(kept[8].data).toBe(kept[0].data);
    expect(kept[8].data).toBe(kept[4].data);
    // Another camera has its own ring.
    expect(store.keep(frame(13, 13, { camera: 'd' })).data).not.toBe(kept[8].data);
    expect(kept[11].data[0]).toBe(12);
  });
});

describe('SnapshotStore.command', () => {
  it('two different encodings at once (docs/reference.md: BUSY beyond 2); a third is BUSY', async () => {
    const store = new SnapshotStore({ clock: new ManualClock() });
    store.record(frame(1), inf);
    const running = [store.command('c', 50, undefined), store.command('c', 60, undefined)];
    const third = await store.command('c', 70, undefined).catch((e: unknown) => e);
    expect((third as CommandError).code).toBe('BUSY');
    await Promise.all(running);
    expect(store.encodes).toBe(2);
  });
});

describe('a camera that scales its frames for the model', () => {
  const scaled = (seq: number, full?: Frame) =>
    frame(seq, 128, {
      width: 200,
      height: 150,
      stride: 600,
      data: new Uint8Array(90_000).fill(128),
      sourceWidth: 400,
      sourceHeight: 300,
      full,
    });
  const twin = (seq: number) => frame(seq, 128, { width: 400, height: 300, stride: 1200, data: new Uint8Array(360_000).fill(128) });

  it('a request waits for the next frame with its full-resolution twin, and no timer is left once it came', async () => {
    const clock = new ManualClock();
    const store = new SnapshotStore({ clock });
    store.record(scaled(1), inf);
    const asked = store.command('c', 80, undefined);
    await clock.waitForTimer((t) => t.ms === 2000);
    store.record(scaled(2, twin(2)), inf);
    expect(clock.pending).toBe(0);
    expect(await asked).toMatchObject({ width: 400, height: 300, frame: { seq: 2 } });
  });

  it('without a twin within 2 s it shows the scaled frame, its boxes scaled down from the camera pixels', async () => {
    const clock = new ManualClock();
    const store = new SnapshotStore({ clock, privacy: () => 'on' });
    const box = { x: 100, y: 120, w: 160, h: 120 }; // camera pixels: (50, 60) to (130, 120) on the 200x150 frame
    const found = { ...inf, task: 'detect', detections: [{ index: 0, label: 'person', score: 0.9, box }] } as unknown as Inference;
    store.record(scaled(1), found);
    const page = store.annotated('c');
    await clock.waitForTimer((t) => t.ms === 2000);
    await clock.advance(1999);
    expect(clock.pending).toBe(1);
    await clock.advance(1);
    const { data, info } = await sharp((await page) as Buffer)
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([200, 150]);
    const at = (x: number, y: number) => [...data.subarray((y * 200 + x) * 3, (y * 200 + x) * 3 + 3)];
    const want = (colourOf(0).slice(1).match(/../g) ?? []).map((h) => Number.parseInt(h, 16));
    // JPEG blurs a 2-pixel stroke: a pixel is the box's when it is nearer its colour than the grey picture.
    const dist = (px: number[], to: number[]) => px.reduce((s, v, i) => s + Math.abs(v - to[i]), 0);
    const near = (px: number[]) => dist(px, want) < dist(px, [128, 128, 128]);
    // The box's left and right edges (2-pixel strokes inside it) are in its colour; inside and beyond, the picture.
    expect([near(at(50, 90)), near(at(128, 90)), near(at(90, 90)), near(at(140, 90))]).toEqual([true, true, false, false]);
  });

  it('a classifier frame is shown without boxes', async () => {
    const store = new SnapshotStore({ clock: new ManualClock(), privacy: () => 'on' });
    store.record(frame(1), inf);
    const jpeg = await store.annotated('c');
    expect((await sharp(jpeg as Buffer).metadata()).width).toBe(8);
  });
});
