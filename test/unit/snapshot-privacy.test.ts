import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { redactFrame } from '../../src/health/redact.js';
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
