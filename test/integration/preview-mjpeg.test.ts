import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { PreviewHub, STALL_MS } from '../../src/health/preview.js';
import { previewRoute } from '../../src/health/routes/preview.js';
import { HealthServer } from '../../src/health/server.js';
import { SnapshotStore } from '../../src/health/snapshots.js';
import type { SnapshotPrivacy } from '../../src/inference/stages.js';
import type { Inference } from '../../src/inference/types.js';
import { ManualClock } from '../helpers/clock.js';
import { BLUE, drawFrame, GREEN, RED } from '../helpers/draw.js';
import { captureLog } from '../helpers/log.js';
import { MjpegClient } from '../helpers/mjpeg.js';

/** GET /preview.mjpeg on a real HTTP server: frames we drew, redaction, mirroring, one encoding per frame, fps caps, limits. */

const W = 160;
const H = 120;
/** Left half red, right half blue, a green square where the "face" is. */
const FACE = { x: 20, y: 30, w: 40, h: 40 };
function frame(seq: number): Frame {
  const f = drawFrame(
    W,
    H,
    [
      { x: 0, y: 0, w: W / 2, h: H, rgb: RED },
      { x: W / 2, y: 0, w: W / 2, h: H, rgb: BLUE },
      { ...FACE, rgb: GREEN },
    ],
    [0, 0, 0],
    'kiosk',
  );
  return { ...f, seq };
}
const inf = {
  task: 'detect',
  detections: [{ index: 0, label: 'face', score: 0.9, box: FACE }],
  model: { name: 'f', version: '1', sha256: 'a'.repeat(64), task: 'detect', provider: 'cpu' },
  latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
} as Inference;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function rig(over: { mode?: SnapshotPrivacy; maxClients?: number; maxFps?: number; token?: string } = {}) {
  const { log, lines } = captureLog();
  const clock = new ManualClock();
  let mode = over.mode ?? 'redact';
  const hub = new PreviewHub({
    clock,
    log,
    maxFps: over.maxFps ?? 10,
    maxClients: over.maxClients ?? 4,
    quality: 90,
    privacy: () => mode,
  });
  const server = new HealthServer({
    host: '127.0.0.1',
    port: 0,
    log,
    token: over.token,
    source: { health: () => ({ ok: true }), ready: () => ({ ok: true, checks: {} }), status: () => ({}) },
  });
  server.addRoute(
    previewRoute(
      hub,
      () => ['kiosk', 'tray'],
      () => mode,
    ),
  );
  await server.start();
  cleanup.push(() => server.stop());
  const open = async (query = '', headers: Record<string, string> = {}) => {
    const c = await MjpegClient.open(server.port, `/preview.mjpeg${query}`, headers);
    cleanup.push(() => c.close());
    return c;
  };
  return { hub, clock, open, lines, setMode: (m: SnapshotPrivacy) => (mode = m) };
}

async function pixel(jpeg: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]];
}
const near = (got: number[], want: readonly number[]) => got.every((v, i) => Math.abs(v - want[i]) < 40);

describe('GET /preview.mjpeg', () => {
  it('streams the frames as multipart JPEGs, the detected face blacked out (redact, the default)', async () => {
    const r = await rig();
    const c = await r.open('?camera=kiosk&boxes=0');
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toBe('multipart/x-mixed-replace; boundary=edge-inferd-frame');
    r.hub.record(frame(1), inf);
    await c.frameCount(1);
    const meta = await sharp(c.frames[0]).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', W, H]);
    expect(near(await pixel(c.frames[0], 5, 5), RED)).toBe(true);
    expect(near(await pixel(c.frames[0], 150, 5), BLUE)).toBe(true);
    expect(near(await pixel(c.frames[0], FACE.x + 20, FACE.y + 20), [0, 0, 0])).toBe(true);
  });

  it('privacy.preview on shows the face; mirror=1 flips the picture left-right', async () => {
    const r = await rig({ mode: 'on' });
    const plain = await r.open('?boxes=0');
    const mirrored = await r.open('?boxes=0&mirror=1');
    r.hub.record(frame(1), inf);
    await plain.frameCount(1);
    await mirrored.frameCount(1);
    expect(near(await pixel(plain.frames[0], FACE.x + 20, FACE.y + 20), GREEN)).toBe(true);
    expect(near(await pixel(mirrored.frames[0], 5, 5), BLUE)).toBe(true);
    expect(near(await pixel(mirrored.frames[0], 150, 5), RED)).toBe(true);
    expect(near(await pixel(mirrored.frames[0], W - FACE.x - 20, FACE.y + 20), GREEN)).toBe(true);
    // Two ways of drawing the frame: two encodings.
    expect(r.hub.stats().encodes).toBe(2);
  });

  it('boxes=1 (the default) outlines the detection where it is, also mirrored', async () => {
    const r = await rig({ mode: 'redact' });
    const c = await r.open();
    const m = await r.open('?mirror=1');
    r.hub.record(frame(1), inf);
    await c.frameCount(1);
    await m.frameCount(1);
    // The outline is drawn in the class colour on the box edge; inside, the face stays blacked out.
    const edge = await pixel(c.frames[0], FACE.x + 1, FACE.y + FACE.h / 2);
    expect(near(edge, [0, 0, 0]) || near(edge, GREEN) || near(edge, RED)).toBe(false);
    expect(near(await pixel(c.frames[0], FACE.x + 20, FACE.y + 20), [0, 0, 0])).toBe(true);
    const mEdge = await pixel(m.frames[0], W - FACE.x - 2, FACE.y + FACE.h / 2);
    expect(near(mEdge, edge)).toBe(true);
  });

  it('encodes each frame once however many viewers watch, and nothing while nobody does', async () => {
    const r = await rig();
    r.hub.record(frame(1), inf);
    expect(r.hub.stats().encodes).toBe(0);
    const viewers = [await r.open(), await r.open(), await r.open()];
    r.hub.record(frame(2), inf);
    await Promise.all(viewers.map((v) => v.frameCount(1)));
    expect(r.hub.stats()).toMatchObject({ encodes: 1, sent: 3, clients: 3 });
    expect(viewers[0].frames[0].equals(viewers[2].frames[0])).toBe(true);
  });

  it('keeps each viewer to its fps on the injected clock, capped at http.preview.maxFps', async () => {
    const r = await rig({ maxFps: 10 });
    const slow = await r.open('?fps=2');
    const capped = await r.open('?fps=100');
    expect(slow.headers['x-preview-fps']).toBe('2');
    expect(capped.headers['x-preview-fps']).toBe('10');
    // A 20 fps camera for one second: frames every 50 ms.
    for (let i = 0; i <= 20; i++) {
      r.hub.record(frame(i), inf);
      // The encoding is asynchronous: the next frame comes once this one is out (a frame during an encoding is skipped).
      await Promise.all([slow.frameCount(Math.floor(i / 10) + 1), capped.frameCount(Math.floor(i / 2) + 1)]);
      await r.clock.advance(50);
    }
    expect(slow.frames.length).toBe(3);
    expect(capped.frames.length).toBe(11);
  });

  it('answers 400 naming the cameras, 403 when the preview is off, 503 past maxClients', async () => {
    const r = await rig({ maxClients: 1 });
    const bad = await r.open('?camera=garage');
    await bad.closed();
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'UNKNOWN_CAMERA', error: 'camera: no camera "garage" (valid: kiosk, tray)' });
    const fps = await r.open('?fps=fast&mirror=yes');
    await fps.closed();
    expect(JSON.parse(fps.body).problems).toEqual([
      'fps: must be a number above 0, up to 10 (got "fast")',
      'mirror: must be 1 or 0 (got "yes")',
    ]);
    await r.open();
    const more = await r.open();
    await more.closed();
    expect(more.status).toBe(503);
    expect(r.hub.stats()).toMatchObject({ clients: 1, refused: 1 });
    r.setMode('off');
    const off = await r.open();
    await off.closed();
    expect([off.status, JSON.parse(off.body).code]).toEqual([403, 'PREVIEW_OFF']);
  });

  it('needs the token when one is set (?token= for an <img>), and never logs it', async () => {
    const token = 'a-token-of-sixteen-plus';
    const r = await rig({ token });
    const none = await r.open();
    await none.closed();
    expect(none.status).toBe(401);
    const ok = await r.open(`?token=${token}`);
    expect(ok.status).toBe(200);
    r.hub.record(frame(1), inf);
    await ok.frameCount(1);
    expect(JSON.stringify(r.lines)).not.toContain(token);
  });

  it('drops a viewer that takes no frame for STALL_MS, and counts it', async () => {
    const r = await rig();
    const c = await r.open();
    // Noise: each JPEG is about a megabyte, so a few fill the kernel's socket buffers.
    const big = (seq: number): Frame => {
      const data = new Uint8Array(1280 * 960 * 3);
      for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i + seq, 2654435761) >>> 24) & 255;
      return { camera: 'kiosk', seq, width: 1280, height: 960, stride: 1280 * 3, format: 'RGB', data, capturedAtMs: 0 };
    };
    r.hub.record(big(1), inf);
    await c.frameCount(1);
    // The viewer stops reading: frames then stay unsent in its socket, and the next ones are skipped.
    c.pause();
    let sent = 1;
    for (let i = 2; i < 60; i++) {
      await r.clock.advance(200);
      r.hub.record(big(i), inf);
      await r.hub.idle();
      if (r.hub.stats().sent === sent) break;
      sent = r.hub.stats().sent;
    }
    expect(r.hub.stats()).toMatchObject({ sent, dropped: 0, clients: 1 });
    expect(r.hub.cameraStats('kiosk')).toEqual({ viewers: 1, dropped: 0 });
    await r.clock.advance(STALL_MS);
    r.hub.record(big(99), inf);
    expect(r.hub.stats()).toMatchObject({ dropped: 1, clients: 0 });
    // Per camera too (/status shows it): the kiosk's viewer, none of the tray's.
    expect(r.hub.cameraStats('kiosk')).toEqual({ viewers: 0, dropped: 1 });
    expect(r.hub.cameraStats('tray')).toEqual({ viewers: 0, dropped: 0 });
    expect(r.lines.some((l) => l.msg?.includes('preview: dropped a viewer'))).toBe(true);
  });
});

describe('snapshot store: frames kept for the preview', () => {
  it('copies frames only while the preview has viewers', () => {
    let watching = false;
    const store = new SnapshotStore({ clock: new ManualClock(), alsoWanted: () => watching });
    const f = frame(1);
    expect(store.keep(f).data).toBe(f.data);
    watching = true;
    expect(store.keep(f).data).not.toBe(f.data);
    expect(store.keep(f).data).toEqual(f.data);
  });
});
