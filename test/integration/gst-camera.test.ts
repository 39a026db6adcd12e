// GstCamera (src/capture/gst-camera.ts) over the real addon and real GStreamer: camera URIs as a
// user writes them, generated media, the reconnect state machine, and GStreamer's errors as they
// reach /status. In CI nothing skips; elsewhere the suite skips loudly without the addon.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Camera, Frame } from '../../src/capture/frame.js';
import type { Clock } from '../../src/clock.js';
import { createCamera } from '../../src/capture/index.js';
import { captureAvailable } from '../../src/capture/native.js';
import { cameraSchema } from '../../src/config/schema.js';
import { prototypeRgb } from '../helpers/demo.js';
import { jpegSequence, mjpegAvi, rgbHex as hex, rowStride } from '../helpers/gst-media.js';
import { freePort } from '../helpers/ports.js';
import { IN_CI } from '../helpers/tools.js';
import { ManualClock, type TimerInfo } from '../helpers/clock.js';
import { frozenLoopBoundMs, percentile, timerLateness } from '../helpers/lag.js';
import { waitUntil } from '../helpers/wait.js';

const available = captureAvailable();
if (!available.ok && !IN_CI) console.warn(`\n*** gst-camera tests SKIPPED (not CI): ${available.reason}\n`);
const run = available.ok || IN_CI;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const threadCount = () => readdirSync('/proc/self/task').length;

/** The recycling demo's prototype colours (scripts/make-demo-model.ts) as RGB bytes. */
const PLASTIC = prototypeRgb('plastic');
const GLASS = prototypeRgb('glass');

/** The backoff tests' stallMs: its timers are not the backoff's. */
const STALL_MS = 5000;
const backoffTimer = (t: TimerInfo) => t.ms !== STALL_MS;

const cameras: Camera[] = [];
function camera(uri: string, extra: Record<string, unknown> = {}, deps: { clock?: Clock } = {}): Camera {
  const cfg = cameraSchema.parse({ uri, reconnect: { initialMs: 50, maxMs: 200, stallMs: STALL_MS }, ...extra });
  const cam = createCamera('cam', cfg, { random: () => 0, ...deps });
  cameras.push(cam);
  return cam;
}
afterAll(async () => {
  await Promise.all(cameras.map((c) => c.stop()));
});

/** Every pixel of the frame, as [r, g, b] strings, counted. */
function colours(f: Frame): Map<string, number> {
  const m = new Map<string, number>();
  const ch = f.format === 'RGB' ? 3 : 4;
  for (let y = 0; y < f.height; y++) {
    for (let x = 0; x < f.width; x++) {
      const o = y * f.stride + x * ch;
      const k = `${f.data[o]},${f.data[o + 1]},${f.data[o + 2]}`;
      m.set(k, (m.get(k) ?? 0) + 1);
    }
  }
  return m;
}

/** JPEG (4:2:0, limited-range YUV) moves a solid colour by up to ~12 per channel. */
function expectNear(f: Frame, rgb: readonly number[], tolerance: number): void {
  const cs = [...colours(f).keys()].map((k) => k.split(',').map(Number));
  for (const c of cs) for (let i = 0; i < 3; i++) expect(Math.abs(c[i] - rgb[i]), `pixel ${c} vs ${rgb}`).toBeLessThanOrEqual(tolerance);
}

async function readUntilStopped(cam: Camera, onFrame: (f: Frame) => void = () => undefined): Promise<unknown> {
  for (;;) {
    try {
      onFrame(await cam.read());
    } catch (err) {
      return err;
    }
  }
}

describe.runIf(run)('GstCamera over real GStreamer', () => {
  let avi: string | undefined;
  let seq: string | undefined;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'gst-media-'));
    avi = mjpegAvi(dir, { rgb: GLASS, frames: 20, width: 160, height: 120, fps: 20 });
    seq = jpegSequence(dir, { rgb: PLASTIC, frames: 5, width: 96, height: 64 });
  });

  it('test://solid: exact pixels, padded stride, increasing seq, wall-clock capture time', async () => {
    const cam = camera(`test://solid?color=${hex(PLASTIC)}&width=321&height=240&fps=30`);
    const startedAt = Date.now();
    await cam.start();
    expect(cam.status().state).toBe('connecting');
    const a = await cam.read();
    const stride = rowStride(321, 3);
    expect(a).toMatchObject({ camera: 'cam', width: 321, height: 240, stride, format: 'RGB' });
    expect(a.data.length).toBe(stride * 240);
    expect(colours(a)).toEqual(new Map([[PLASTIC.join(','), 321 * 240]]));
    const b = await cam.read();
    expect(b.seq).toBeGreaterThan(a.seq);
    // Wall-clock time of this run (not the stream's pts, not a monotonic clock): after the start, not after now.
    expect(b.capturedAtMs).toBeGreaterThanOrEqual(startedAt);
    expect(b.capturedAtMs).toBeLessThanOrEqual(Date.now());
    expect(cam.status()).toMatchObject({ state: 'streaming', uri: expect.stringContaining('test://solid'), attempts: 0, errors: 0 });
    await cam.stop();
    expect(cam.status()).toMatchObject({ state: 'stopped', reason: 'stop' });
    await expect(cam.read()).rejects.toMatchObject({ code: 'CAMERA_STOPPED' });
  });

  it('file:// MJPEG AVI without loop: every frame, then stopped with reason eos', async (ctx) => {
    if (!avi) return ctx.skip();
    const cam = camera(`file://${avi}`);
    await cam.start();
    const frames: Frame[] = [];
    const end = await readUntilStopped(cam, (f) => frames.push(f));
    expect(end).toMatchObject({ code: 'CAMERA_STOPPED', message: 'camera cam reached the end of its stream' });
    expect(frames.length).toBeGreaterThan(0);
    expect(frames[0]).toMatchObject({ width: 160, height: 120, format: 'RGB' });
    expectNear(frames[0], GLASS, 16);
    const st = cam.status();
    expect(st).toMatchObject({ state: 'stopped', reason: 'eos', received: 20, errors: 0 });
    expect(st.received - st.dropped).toBe(frames.length);
  });

  it('file:// with ?loop=1 starts over at the end and keeps streaming', async (ctx) => {
    if (!avi) return ctx.skip();
    const cam = camera(`file://${avi}?loop=1`);
    await cam.start();
    let seen = 0;
    while (cam.status().received <= 45) {
      await cam.read();
      seen++;
    }
    expect(seen).toBeGreaterThan(2);
    expect(cam.status()).toMatchObject({ state: 'streaming', errors: 0, reconnects: 0 });
    expect(cam.status().lastError).toBeUndefined();
  });

  it('a JPEG sequence: images:// (TypeScript) and gst:// multifilesrc (GStreamer) see the same colour', async (ctx) => {
    if (!seq) return ctx.skip();
    const images = camera(`images://${seq}`, { fps: 50 });
    await images.start();
    const fi = await images.read();
    expect(fi).toMatchObject({ width: 96, height: 64, name: '000.jpg' });
    expectNear(fi, PLASTIC, 16);
    const gst = camera(
      `gst://multifilesrc location=${seq}/%03d.jpg index=0 caps=image/jpeg,framerate=25/1 ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink`,
    );
    await gst.start();
    const fg = await gst.read();
    expect(fg).toMatchObject({ width: 96, height: 64, format: 'RGB' });
    expectNear(fg, PLASTIC, 16);
  });

  it('a live source that ends is reopened with backoff and resumes; backoff resets on the first frame', async () => {
    const clock = new ManualClock();
    const cam = camera('gst://videotestsrc num-buffers=4 ! video/x-raw,format=RGB,width=64,height=48 ! appsink name=sink', {}, { clock });
    await cam.start();
    let frames = 0;
    let backThrice!: () => void;
    const reconnected = new Promise<void>((r) => (backThrice = r));
    const reader = readUntilStopped(cam, () => {
      frames++;
      if ((cam.status().reconnects ?? 0) >= 3) backThrice();
    });
    // Each end of stream arms the backoff timer (the event waited on); the clock then runs it out.
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await clock.waitForTimer(backoffTimer);
      delays.push(t.ms);
      expect(cam.status()).toMatchObject({ state: 'backoff', retryAtMs: clock.now() + t.ms });
      await clock.advance(t.ms);
    }
    await reconnected;
    const st = cam.status();
    expect(frames).toBeGreaterThanOrEqual(4);
    expect(st.lastError).toMatchObject({ code: 'EOS', message: expect.stringContaining('the stream ended') });
    // Each end of stream came after frames, so each wait is the first one again.
    expect(delays).toEqual([50, 50, 50]);
    await cam.stop();
    await expect(reader).resolves.toMatchObject({ code: 'CAMERA_STOPPED' });
  });

  describe("errors: GStreamer's text in status, backoff growing 50 -> 100 -> 200 ms (cap), the camera keeps trying", () => {
    const cases: [string, () => Promise<string>, string, RegExp][] = [
      [
        'missing element (csi:// without Argus)',
        async () => 'csi://0',
        'PIPELINE_PARSE',
        /no element "nvarguscamerasrc".*nvidia-l4t-gstreamer/,
      ],
      ['bad device', async () => 'v4l2:///dev/video-nope', 'STATE_CHANGE', /Cannot identify device '\/dev\/video-nope'/],
      [
        'caps that cannot be negotiated',
        async () =>
          'gst://videotestsrc ! video/x-raw,format=RGB,width=32,height=24 ! pngenc ! pngdec ! video/x-raw,format=GRAY8 ! appsink name=sink',
        'NOT_NEGOTIATED',
        /not-negotiated/,
      ],
      [
        'unreachable RTSP server',
        async () => `rtsp://127.0.0.1:${await freePort()}/none?transport=tcp`,
        'STREAM_ERROR',
        /Could not open resource for reading and writing.*Failed to connect/,
      ],
    ];
    for (const [name, uriOf, code, text] of cases) {
      it(name, async () => {
        const clock = new ManualClock();
        const cam = camera(await uriOf(), {}, { clock });
        await cam.start();
        const reading = cam.read();
        // Each failure arms the backoff timer (the event waited on): 4 attempts, 3 waits run out on the clock.
        const delays: number[] = [];
        for (let attempt = 1; attempt <= 4; attempt++) {
          const t = await clock.waitForTimer(backoffTimer);
          delays.push(t.ms);
          expect(cam.status()).toMatchObject({ state: 'backoff', attempts: attempt, retryAtMs: clock.now() + t.ms, lastError: { code } });
          if (attempt < 4) await clock.advance(t.ms);
        }
        expect(cam.status().lastError?.message).toMatch(text);
        expect(delays).toEqual([50, 100, 200, 200]);
        await cam.stop();
        await expect(reading).rejects.toMatchObject({ code: 'CAMERA_STOPPED' });
        expect(cam.status()).toMatchObject({ state: 'stopped', reason: 'stop' });
        expect(clock.pending).toBe(0);
      });
    }
  });

  it('a source that hangs without an error counts as failed after stallMs (on the clock)', async () => {
    const clock = new ManualClock();
    const cam = camera(
      'gst://videotestsrc is-live=true ! video/x-raw,format=RGB,width=32,height=24 ! valve drop=true ! appsink name=sink',
      { reconnect: { initialMs: 50, maxMs: 200, stallMs: 300 } },
      { clock },
    );
    await cam.start();
    const reading = cam.read();
    await clock.waitForTimer((t) => t.ms === 300);
    await clock.advance(299);
    expect(cam.status()).toMatchObject({ state: 'connecting', errors: 0 });
    await clock.advance(1);
    expect(cam.status()).toMatchObject({
      state: 'backoff',
      lastError: { code: 'CAMERA_STALLED', message: expect.stringContaining('no first frame for 0.3 s') },
    });
    await cam.stop();
    await expect(reading).rejects.toMatchObject({ code: 'CAMERA_STOPPED' });
  });

  it('start() after stop() streams again; stop() and start() are idempotent', async () => {
    const cam = camera('test://ball?width=64&height=48');
    await cam.start();
    await cam.start();
    await cam.read();
    await cam.stop();
    await cam.stop();
    await cam.start();
    expect((await cam.read()).width).toBe(64);
    expect(cam.status().state).toBe('streaming');
  });

  it('60 reconnect cycles leave no threads behind', async () => {
    const cam = camera('gst://videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=32,height=24 ! appsink name=sink', {
      reconnect: { initialMs: 10, maxMs: 10, stallMs: 5000 },
    });
    await cam.start();
    for (let i = 0; i < 3; i++) await cam.read(); // GStreamer's thread pool warms up
    await sleep(50);
    const before = threadCount();
    while ((cam.status().reconnects ?? 0) < 63) await cam.read();
    await cam.stop();
    // The capture threads end on their own after stop(): wait for them (up to 5 s), then check.
    const after = await waitUntil(
      () => threadCount() <= before + 2 && threadCount(),
      5000,
      () => `threads back to ${before} + 2 (now ${threadCount()})`,
    ).catch(() => threadCount());
    console.log(`threads: ${before} before, ${after} after 60 reconnects`);
    expect(after).toBeLessThanOrEqual(before + 2);
  });

  it('the event loop stays responsive while a camera is read as fast as the source delivers', async () => {
    const idleP99 = percentile(await timerLateness(500), 99);
    const cam = camera('gst://videotestsrc ! video/x-raw,format=RGB,width=640,height=480 ! appsink name=sink sync=false');
    await cam.start();
    let frames = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        await cam.read();
        frames++;
      }
    })();
    const lateness = await timerLateness(1500);
    stop = true;
    await reader;
    await cam.stop();
    const p99 = percentile(lateness, 99);
    console.log(
      `GstCamera event loop: ${frames} frames in 1.5 s, 5 ms timer lateness p99 ${p99.toFixed(2)} ms (idle p99 ${idleP99.toFixed(2)} ms)`,
    );
    expect(frames).toBeGreaterThan(30);
    expect(p99).toBeLessThan(frozenLoopBoundMs(idleP99));
  });
});
