import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { redactFrame } from '../../src/health/redact.js';
import { colourOf } from '../../src/health/snapshot.js';
import { SnapshotStore } from '../../src/health/snapshots.js';
import type { SnapshotPrivacy } from '../../src/inference/stages.js';
import type { Inference } from '../../src/inference/types.js';
import { ManualClock } from '../helpers/clock.js';

/** Snapshot privacy: redact blacks out the detected boxes (page and command alike), on shows them, off refuses. */

const W = 200;
const H = 150;
const box = { x: 60.4, y: 40.6, w: 50.2, h: 60 };
function frame(): Frame {
  const data = new Uint8Array(W * H * 3).fill(200); // a bright frame: anything left inside the box shows
  return { camera: 'kiosk', seq: 7, width: W, height: H, stride: W * 3, format: 'RGB', data, capturedAtMs: 0 };
}
const inf = {
  task: 'detect',
  detections: [{ index: 0, label: 'face', score: 0.9, box }],
  model: { name: 'f', version: '1', sha256: 'a'.repeat(64), task: 'detect', provider: 'cpu' },
  latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
} as Inference;

async function maxInside(jpeg: Buffer, inset: number): Promise<number> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  let m = 0;
  for (let y = Math.ceil(box.y) + inset; y < box.y + box.h - inset; y++)
    for (let x = Math.ceil(box.x) + inset; x < box.x + box.w - inset; x++)
      m = Math.max(m, ...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
  return m;
}

describe('snapshot privacy', () => {
  it('redactFrame blacks out whole pixels under each box (outwards) and copies, leaving the camera frame alone', () => {
    const f = frame();
    const r = redactFrame(f, [box]);
    const at = (fr: Frame, x: number, y: number) => fr.data[(y * W + x) * 3];
    expect([at(r, 60, 40), at(r, 110, 100), at(r, 59, 40), at(r, 111, 100), at(r, 60, 101)]).toEqual([0, 0, 200, 200, 200]);
    expect(at(f, 60, 40)).toBe(200);
  });

  it('redactFrame blacks out a box that crosses the frame edges up to the edge pixels, and nothing past them', () => {
    const f = frame();
    const r = redactFrame(f, [
      { x: -5.5, y: -3, w: 20, h: 10 }, // over the top-left corner: columns 0..14, rows 0..6
      { x: W - 10, y: H - 5, w: 30, h: 30 }, // over the bottom-right corner
    ]);
    const at = (x: number, y: number) => r.data[(y * W + x) * 3];
    expect([at(0, 0), at(14, 6), at(0, 6), at(14, 0)]).toEqual([0, 0, 0, 0]);
    expect([at(15, 0), at(0, 7)]).toEqual([200, 200]);
    expect([at(W - 1, H - 1), at(W - 10, H - 5)]).toEqual([0, 0]);
    expect([at(W - 11, H - 1), at(W - 1, H - 6)]).toEqual([200, 200]);
    expect(r.data.length).toBe(f.data.length);
  });

  it('the snapshot command scales to each maxWidth asked for (one frame, two sizes: not the cached other one)', async () => {
    const store = new SnapshotStore({ clock: new ManualClock(), privacy: () => 'on' });
    store.record(frame(), inf);
    const width = async (maxWidth: number | undefined) =>
      (await sharp(Buffer.from((await store.command('kiosk', 90, maxWidth)).data, 'base64')).metadata()).width;
    expect([await width(100), await width(50), await width(undefined)]).toEqual([100, 50, W]);
  });

  it("the page snapshot's banner is in the colour of the result's label", async () => {
    const store = new SnapshotStore({ clock: new ManualClock(), privacy: () => 'on' });
    const second = { ...inf, detections: [{ index: 2, label: 'hand', score: 0.9, box }] } as Inference;
    store.record(frame(), second);
    const { data } = await sharp((await store.annotated('kiosk')) as Buffer)
      .raw()
      .toBuffer({ resolveWithObject: true });
    const want = colourOf(2)
      .slice(1)
      .match(/../g)
      ?.map((h) => Number.parseInt(h, 16));
    // The banner's corner pixel (JPEG: within a few levels).
    for (const [i, c] of (want ?? []).entries()) expect(Math.abs(data[i] - c), `channel ${i}`).toBeLessThan(24);
  });

  for (const mode of ['redact', 'on', 'off'] as SnapshotPrivacy[]) {
    it(`${mode}: the page snapshot and the snapshot command`, async () => {
      const store = new SnapshotStore({ clock: new ManualClock(), privacy: () => mode });
      store.record(frame(), inf);
      if (mode === 'off') {
        await expect(store.annotated('kiosk')).rejects.toMatchObject({ code: 'SNAPSHOTS_OFF' });
        await expect(store.command('kiosk', 90, undefined)).rejects.toMatchObject({ code: 'SNAPSHOTS_OFF' });
        return;
      }
      const page = await store.annotated('kiosk');
      const cmd = Buffer.from((await store.command('kiosk', 90, undefined)).data, 'base64');
      const dark = mode === 'redact';
      expect((await maxInside(page!, 6)) < 40, 'page').toBe(dark);
      expect((await maxInside(cmd, 2)) < 40, 'command').toBe(dark);
    });
  }
});

describe('redact on a camera that scales its frames for the model', () => {
  // The model saw a 100x75 copy; its box is in the camera's pixels (400x300), as results are.
  const FW = 400;
  const FH = 300;
  const person = { x: 250, y: 120, w: 80, h: 100 };
  function scaledFrame(): Frame {
    const full: Frame = {
      camera: 'kiosk',
      seq: 3,
      width: FW,
      height: FH,
      stride: FW * 3,
      format: 'RGB',
      data: new Uint8Array(FW * FH * 3).fill(200),
      capturedAtMs: 0,
    };
    const small = new Uint8Array(100 * 75 * 3).fill(200);
    return { ...full, width: 100, height: 75, stride: 300, data: small, sourceWidth: FW, sourceHeight: FH, full };
  }
  const found = { ...inf, detections: [{ index: 0, label: 'person', score: 0.9, box: person }] } as Inference;

  /** The brightest channel in a rectangle of a JPEG, `inset` pixels inside its edges. */
  async function brightest(jpeg: Buffer, r: { x: number; y: number; w: number; h: number }, inset: number) {
    const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([FW, FH]); // the full-resolution picture
    let m = 0;
    for (let y = r.y + inset; y < r.y + r.h - inset; y++)
      for (let x = r.x + inset; x < r.x + r.w - inset; x++) m = Math.max(m, ...data.subarray((y * FW + x) * 3, (y * FW + x) * 3 + 3));
    return m;
  }

  it("blacks the person's box out at its place in the full-resolution snapshot, on the page and in the command", async () => {
    const store = new SnapshotStore({ clock: new ManualClock(), privacy: () => 'redact' });
    store.record(store.keep(scaledFrame()), found);
    const page = (await store.annotated('kiosk')) as Buffer;
    const cmd = Buffer.from((await store.command('kiosk', 90, undefined)).data, 'base64');
    for (const [surface, jpeg] of [
      ['page', page],
      ['command', cmd],
    ] as const) {
      expect(await brightest(jpeg, person, 6), `${surface}: inside the box`).toBeLessThan(40);
      // Where the box would be if its scaled-frame coordinates were used unscaled: still the picture.
      expect(await brightest(jpeg, { x: 62, y: 30, w: 20, h: 25 }, 2), `${surface}: the box at the model's scale`).toBeGreaterThan(150);
      // Just outside each side of the box: still the picture.
      for (const side of [
        { x: person.x - 14, y: person.y + 20, w: 10, h: 40 },
        { x: person.x + person.w + 4, y: person.y + 20, w: 10, h: 40 },
        { x: person.x + 20, y: person.y - 14, w: 40, h: 10 },
        { x: person.x + 20, y: person.y + person.h + 4, w: 40, h: 10 },
      ])
        expect(await brightest(jpeg, side, 2), `${surface}: beside the box`).toBeGreaterThan(150);
    }
  });
});
