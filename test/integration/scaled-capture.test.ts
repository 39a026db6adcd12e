// GStreamer scales frames to the model's input; full-resolution frames come from a second appsink
// on a tee, behind a valve, paired with the scaled frame of the same instant. Real pipelines, the
// real addon, the real App with the colour-box detector (its right answer is where we put colour).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { createCamera } from '../../src/capture/index.js';
import { captureAvailable, NativeCapture, type NativeFrame } from '../../src/capture/native.js';
import { cameraSource, FULL_BRANCH, scaledPipeline } from '../../src/capture/uri.js';
import { cameraSchema } from '../../src/config/schema.js';
import { startTestApp, waitUntil } from '../helpers/app.js';
import { mjpegAvi } from '../helpers/gst-media.js';
import { runOrSkipLoudly } from '../helpers/tools.js';

const available = captureAvailable();
const run = runOrSkipLoudly('the scaled capture tests (GStreamer capture)', available);
const detectorDir = fileURLToPath(new URL('../fixtures/models/detector-yolov8/', import.meta.url));

function split(uri: string) {
  const s = cameraSource('c', cameraSchema.parse({ uri }));
  if (s.kind === 'images' || !s.split) throw new Error('no split');
  return s.split;
}

describe.runIf(run)('capture scaled to the model, full resolution on demand', () => {
  it('letterbox, stretch and center-crop sizes; the full branch opens and closes; pairs share a timestamp', async () => {
    const cases = [
      { resize: 'letterbox' as const, size: [224, 168] },
      { resize: 'stretch' as const, size: [224, 224] },
      { resize: 'center-crop' as const, size: [299, 224] },
    ];
    for (const { resize, size } of cases) {
      const cap = new NativeCapture();
      // is-live: frames at 30 fps, as a camera delivers them.
      cap.open(scaledPipeline(split('test://ball?width=640&height=480'), { width: 224, height: 224, resize }), {
        full: { ...FULL_BRANCH },
      });
      try {
        const plain = await cap.read();
        expect([plain.width, plain.height, plain.format, plain.sourceWidth, plain.sourceHeight, plain.full]).toEqual([
          ...size,
          'RGB',
          640,
          480,
          undefined,
        ]);
        cap.setFull(true);
        const paired: NativeFrame[] = [];
        while (paired.length < 5) {
          const f = await cap.read();
          if (f.full) paired.push({ ...f, full: { ...f.full, data: Buffer.from(f.full.data) } });
          else expect(paired).toHaveLength(0); // only frames that passed the tee before the valve opened lack a twin
        }
        for (const f of paired) {
          expect([f.full!.width, f.full!.height, f.full!.format]).toEqual([640, 480, 'RGB']);
          expect(f.full!.ptsNs).toBe(f.ptsNs);
          expect(f.full!.seq).toBe(f.seq);
        }
        cap.setFull(false);
        // Frames already past the valve may still come paired; then none.
        let f = await cap.read();
        for (let i = 0; i < 10 && f.full; i++) f = await cap.read();
        expect(f.full).toBeUndefined();
        expect((await cap.read()).full).toBeUndefined();
      } finally {
        cap.close();
      }
    }
  });

  it('the interpolation picks the scaler method; antialiased ones leave the model branch at the camera size for the tensor writer', async () => {
    const target = { width: 224, height: 224, resize: 'stretch' as const };
    expect(scaledPipeline(split('test://ball'), { ...target, interpolation: 'nearest' })).toContain('videoscale method=nearest-neighbour ');
    expect(scaledPipeline(split('test://ball'), target)).toContain('videoscale method=bilinear ');
    expect(scaledPipeline(split('test://ball'), { ...target, interpolation: 'nearest' }, 'nvvidconv')).toContain(
      'nvvidconv interpolation-method=0 ! video/x-raw,format=RGBA,width=224,height=224',
    );
    for (const [interpolation, size] of [
      ['nearest', [224, 224]],
      ['area', [640, 480]],
      ['bicubic-antialias', [640, 480]],
    ] as const) {
      const cap = new NativeCapture();
      cap.open(scaledPipeline(split('test://ball?width=640&height=480'), { ...target, interpolation }), { full: { ...FULL_BRANCH } });
      try {
        const f = await cap.read();
        expect([interpolation, f.width, f.height, f.format]).toEqual([interpolation, ...size, 'RGB']);
      } finally {
        cap.close();
      }
    }
  });

  it('frames nobody reads are not scaled (the gate), and the frame read after a pause is fresh', async () => {
    const cap = new NativeCapture();
    cap.open(scaledPipeline(split('test://ball?width=640&height=480&fps=30'), { width: 224, height: 224, resize: 'stretch' }), {
      full: { ...FULL_BRANCH },
    });
    try {
      const a = await cap.read();
      const before = cap.stats();
      // The condition under test is time without a read: 9 frames of the 30 fps source (300 ms of
      // its time), counted at the gate rather than timed, so a slow machine only makes it longer.
      await waitUntil(
        () => cap.stats().gated - before.gated >= 9,
        10_000,
        () => `${cap.stats().gated - before.gated} frames gated`,
      );
      const b = await cap.read();
      const after = cap.stats();
      // At most the frames already past the gate (its queue holds 2) reached the scaler meanwhile.
      expect(after.received - after.gated - (before.received - before.gated)).toBeLessThanOrEqual(3);
      // The others are still counted: received and dropped, and seq moved on by the source's frames.
      expect(after.gated - before.gated).toBeGreaterThanOrEqual(3);
      expect(after.dropped - before.dropped).toBeGreaterThanOrEqual(after.gated - before.gated);
      expect(b.seq - a.seq).toBeGreaterThanOrEqual(after.gated - before.gated);
      // Yet the frame is one of the last ones drawn, not one from before the pause.
      expect((b.ptsNs! - a.ptsNs!) / 1e6).toBeGreaterThanOrEqual(250);
    } finally {
      cap.close();
    }
  });

  it('a file that ends while nobody reads still ends (EOS passes both closed valves)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scaled-eos-'));
    const avi = mjpegAvi(dir, { rgb: [200, 40, 40], frames: 10, width: 160, height: 120, fps: 10 });
    expect(avi, 'gst-launch-1.0 made the test video').toBeDefined();
    const cap = new NativeCapture();
    cap.open(scaledPipeline(split(`file://${avi}`), { width: 64, height: 64, resize: 'stretch' }), { full: { ...FULL_BRANCH } });
    try {
      await cap.read();
      // No read() waits now: the gate and the full valve are closed while the 1 s file plays out.
      // There is no event for "the end passed a closed valve"; waiting out the file is the condition.
      await new Promise((r) => setTimeout(r, 1_500));
      let err: unknown;
      for (let i = 0; i < 20 && !err; i++) await cap.read().catch((e: unknown) => (err = e));
      expect(err).toMatchObject({ code: 'EOS' });
    } finally {
      cap.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the scaled frame and its full-resolution twin show the same instant (a moving ball)', async () => {
    const cap = new NativeCapture();
    cap.open(scaledPipeline(split('test://ball?width=320&height=240&fps=30'), { width: 320, height: 240, resize: 'stretch' }), {
      full: { ...FULL_BRANCH },
    });
    try {
      cap.setFull(true);
      let checked = 0;
      while (checked < 8) {
        const f = await cap.read();
        if (!f.full) continue;
        // Same size both ways (scale 1): the two branches must hold the same pixels, byte for byte.
        expect(Buffer.compare(f.data, f.full.data), `frame ${f.seq}`).toBe(0);
        checked++;
      }
    } finally {
      cap.close();
    }
  });

  it('a GstCamera asks for the target at each open and carries Frame.full only while wanted', async () => {
    let target = { width: 256, height: 256, resize: 'letterbox' as const };
    const cam = createCamera('c', cameraSchema.parse({ uri: 'test://smpte?width=640&height=480' }), { target: () => target });
    await cam.start();
    try {
      const a = await cam.read();
      expect([a.width, a.height, a.sourceWidth, a.sourceHeight, a.full]).toEqual([256, 192, 640, 480, undefined]);
      cam.wantFull?.(true);
      let b: Frame = await cam.read();
      for (let i = 0; i < 10 && !b.full; i++) b = await cam.read();
      expect([b.full?.width, b.full?.height, b.full?.camera, b.full?.seq]).toEqual([640, 480, 'c', b.seq]);
      cam.wantFull?.(false);
      target = { width: 128, height: 128, resize: 'letterbox' };
      expect((await cam.read()).width).toBe(256); // the running pipeline keeps its size until reopened
    } finally {
      await cam.stop();
    }
  });

  it("the daemon end to end: boxes and the result frame in the camera's pixels, /snapshot.jpg at full resolution", async () => {
    // A red 640x480 picture: the colour-box detector (256x256 letterbox) finds one red box, the whole frame.
    const t = await startTestApp({
      samples: [],
      extra: {
        cameras: { tray: { uri: 'test://solid?color=ff0000&width=640&height=480&fps=10' } },
        model: { path: detectorDir, providers: ['cpu'], intraOpThreads: 1 },
      },
    });
    try {
      await waitUntil(() => t.app.status().cameras.tray?.lastResult ?? undefined, 20_000, 'a result');
      const last = t.app.status().cameras.tray!.lastResult as any;
      expect(last.frame).toMatchObject({ width: 640, height: 480 });
      expect(last.detections).toHaveLength(1);
      const d = last.detections[0];
      expect(d.label).toBe('red');
      for (const [got, want] of [
        [d.box.x, 0],
        [d.box.y, 0],
        [d.box.w, 640],
        [d.box.h, 480],
      ])
        expect(Math.abs(got - want), JSON.stringify(d.box)).toBeLessThanOrEqual(4);
      const res = await fetch(`${t.base}/snapshot.jpg?camera=tray`);
      expect(res.status).toBe(200);
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect([meta.width, meta.height]).toEqual([640, 480]);
    } finally {
      await t.stop();
    }
  });
});
