// The fake V4L2 device (test/fixtures/fake-v4l2) under real v4l2src. The library is preloaded into
// child processes only (LD_PRELOAD cannot be added to a running process): gst-launch-1.0 first, as
// a check of the fake itself, then a node child that reads through our createCamera (from dist/).
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { captureAvailable } from '../../src/capture/native.js';
import { prototypeRgb } from '../helpers/demo.js';
import { fakeV4l2 } from '../helpers/fake-v4l2.js';
import { rgbHex, rowStride } from '../helpers/gst-media.js';
import { needTool, runOrSkipLoudly } from '../helpers/tools.js';

const available = captureAvailable();
const run = runOrSkipLoudly('the fake V4L2 tests (GStreamer capture)', available);
const exec = promisify(execFile);
const DIST = resolve(import.meta.dirname, '../../dist/src');
const DEVICE = '/dev/video-fake0';

/** Runs `body` in a node child with the fake preloaded; `cam` is createCamera(uri, reconnect fast). Returns its JSON output. */
async function child(uri: string, env: Record<string, string>, body: string): Promise<any> {
  const lib = fakeV4l2();
  if (!lib) return undefined;
  const code = `
    const { createCamera } = await import(${JSON.stringify(pathToFileURL(`${DIST}/capture/index.js`).href)});
    const { cameraSchema } = await import(${JSON.stringify(pathToFileURL(`${DIST}/config/schema.js`).href)});
    const cam = createCamera('usb', cameraSchema.parse({ uri: ${JSON.stringify(uri)}, reconnect: { initialMs: 50, maxMs: 200 } }), { random: () => 0 });
    const colours = (f) => { const s = new Set(); for (let y = 0; y < f.height; y++) for (let x = 0; x < f.width; x++) { const o = y * f.stride + x * 3; s.add(f.data[o] + ',' + f.data[o + 1] + ',' + f.data[o + 2]); } return [...s]; };
    await cam.start();
    ${body}
    await cam.stop();`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, LD_PRELOAD: lib, FAKE_V4L2_DEVICE: DEVICE, ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null');
}

describe.runIf(run)('fake V4L2 device', () => {
  it('GStreamer capture is available (must hold in CI)', () => {
    expect(available).toEqual({ ok: true });
  });

  it('real v4l2src streams from it in both modes (gst-launch-1.0)', async (ctx) => {
    const gst = needTool('gst-launch-1.0', 'gstreamer1.0-tools');
    const lib = fakeV4l2();
    if (!gst || !lib) return ctx.skip();
    for (const format of ['mjpeg', 'yuyv']) {
      const r = await exec(gst, ['-q', 'v4l2src', `device=${DEVICE}`, 'num-buffers=5', '!', 'fakesink'], {
        env: { ...process.env, LD_PRELOAD: lib, FAKE_V4L2_DEVICE: DEVICE, FAKE_V4L2_FORMAT: format },
        timeout: 30_000,
      });
      expect(r.stderr).not.toMatch(/ERROR|WARN/); // exec() already rejects a non-zero exit
    }
  });

  // The fake fills frames with the colour it is given (here the demo's "plastic"): MJPEG as JFIF
  // YCbCr, YUYV as BT.601 limited range; GStreamer's conversion back to RGB rounds each channel by a
  // few levels.
  const expected = prototypeRgb('plastic');
  for (const format of ['mjpeg', 'yuyv'] as const) {
    it(`${format}: v4l2:// delivers the fake's frames: size, stride, one solid colour`, async (ctx) => {
      const env = { FAKE_V4L2_FORMAT: format, FAKE_V4L2_COLOR: rgbHex(expected), FAKE_V4L2_WIDTH: '322', FAKE_V4L2_HEIGHT: '240' };
      const out = await child(
        `v4l2://${DEVICE}?format=${format}`,
        env,
        `
        const f = await cam.read();
        const g = await cam.read();
        console.log(JSON.stringify({ width: f.width, height: f.height, stride: f.stride, format: f.format, colours: colours(g), seqs: [f.seq, g.seq], status: cam.status() }));`,
      );
      if (!out) return ctx.skip();
      expect(out).toMatchObject({
        width: 322,
        height: 240,
        stride: rowStride(322, 3),
        format: 'RGB',
        status: { state: 'streaming', errors: 0 },
      });
      expect(out.seqs[1]).toBeGreaterThan(out.seqs[0]);
      expect(out.colours).toHaveLength(1);
      const rgb = (out.colours[0] as string).split(',').map(Number);
      for (let i = 0; i < 3; i++) expect(Math.abs(rgb[i] - expected[i]), `${rgb} vs ${expected}`).toBeLessThanOrEqual(5);
    });
  }

  it('unplugged after 10 frames (DQBUF -> ENODEV): backoff, then the replugged device streams again', async (ctx) => {
    const out = await child(
      `v4l2://${DEVICE}`,
      { FAKE_V4L2_UNPLUG_AFTER: '10', FAKE_V4L2_UNPLUG_OPENS: '1' },
      `
      let frames = 0, after = 0;
      while (after < 10) {
        await cam.read();
        frames++;
        if ((cam.status().reconnects ?? 0) > 0) after++;
      }
      console.log(JSON.stringify({ frames, status: cam.status() }));`,
    );
    if (!out) return ctx.skip();
    // Latest frame wins: a loaded machine may read fewer than the 10 frames sent before the unplug
    // (the rest are dropped and counted), never more, and at least one.
    const beforeUnplug = out.frames - 10;
    expect(beforeUnplug).toBeGreaterThanOrEqual(1);
    expect(beforeUnplug).toBeLessThanOrEqual(10);
    expect(out.status).toMatchObject({ state: 'streaming', reconnects: 1, attempts: 0, errors: 1, lastError: { code: 'STREAM_ERROR' } });
    expect(out.status.lastError.message).toContain('Failed to allocate a buffer');
  });

  // fps is a cap: a camera whose only mode is 30 fps is asked for a rate it has (>= fps), and
  // videorate drops to fps. It used to put framerate=10/1 into the camera caps: not-negotiated for ever.
  it('fps below the only mode the camera has (30): streams, capped at fps by dropping', async (ctx) => {
    const out = await child(
      `v4l2://${DEVICE}?format=yuyv&fps=10`,
      { FAKE_V4L2_FORMAT: 'yuyv', FAKE_V4L2_FPS: '30' },
      `
      const t = [];
      const reads = (async () => { while (t.length < 7) t.push((await cam.read()).capturedAtMs); })();
      reads.catch(() => {});
      await Promise.race([reads, new Promise((r) => setTimeout(r, 5000).unref())]);
      console.log(JSON.stringify({ t, status: cam.status() }));`,
    );
    if (!out) return ctx.skip();
    expect(out.status).toMatchObject({ state: 'streaming', errors: 0 });
    expect(out.t).toHaveLength(7);
    // Six intervals: 600 ms at 10 fps, 200 ms at 30 fps (delivery may bunch frames, never speed the source up).
    expect(out.t[6] - out.t[0]).toBeGreaterThanOrEqual(450);
  });

  it("a mode the camera does not have: not-negotiated, with GStreamer's reason", async (ctx) => {
    const out = await child(
      `v4l2://${DEVICE}?format=yuyv&width=640&height=480`,
      { FAKE_V4L2_FORMAT: 'yuyv' },
      `
      cam.read().catch(() => {});
      while ((cam.status().attempts ?? 0) < 2) await new Promise((r) => setTimeout(r, 20));
      console.log(JSON.stringify({ status: cam.status() }));`,
    );
    if (!out) return ctx.skip();
    expect(out.status).toMatchObject({ state: expect.stringMatching(/backoff|connecting/), lastError: { code: 'NOT_NEGOTIATED' } });
    expect(out.status.lastError.message).toContain('streaming stopped, reason not-negotiated');
  });
});
