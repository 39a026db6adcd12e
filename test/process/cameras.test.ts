// GStreamer cameras through the real daemon (dist/, spawned): several cameras with their own
// topics, known colours classified by the demo model, GStreamer's errors in /status and the log
// while the daemon keeps running, an RTSP server that goes away and comes back, and the fake V4L2
// device (preloaded into the daemon) in MJPEG and YUYV, unplugged and plugged back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureAvailable } from '../../src/capture/native.js';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { prototypeRgb } from '../helpers/demo.js';
import { fakeV4l2 } from '../helpers/fake-v4l2.js';
import { mjpegAvi, rgbHex } from '../helpers/gst-media.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { startRtspServer } from '../helpers/rtsp-server.js';
import { runOrSkipLoudly } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';

const available = captureAvailable();
const run = runOrSkipLoudly('the daemon camera tests (GStreamer capture)', available);

/** Prototype colours of the demo model (scripts/make-demo-model.ts): a solid frame of one is classified as it. */
const PLASTIC = prototypeRgb('plastic');
const GLASS = prototypeRgb('glass');
const FAST_RECONNECT = { initialMs: 100, maxMs: 400 };

async function status(port: number): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${port}/status`);
  return r.json();
}

/** /status once `pred` holds for it (a fetch that fails while the daemon starts is "not yet"). */
function statusUntil(port: number, what: string, pred: (s: any) => boolean, timeoutMs = 20_000): Promise<any> {
  let last: unknown;
  return waitUntil(
    async () => {
      last = await status(port).catch((e: unknown) => String(e));
      return typeof last === 'object' && pred(last) ? last : undefined;
    },
    timeoutMs,
    () => `/status showing ${what}; last: ${JSON.stringify(last)}`,
    100,
  );
}

describe.runIf(run)('GStreamer cameras in the daemon', () => {
  it('GStreamer capture is available (must hold in CI)', () => {
    expect(available).toEqual({ ok: true });
  });

  let mosq: Mosquitto | undefined;
  const daemons: DaemonProcess[] = [];
  const subs: Subscriber[] = [];
  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.kill('SIGKILL')));
    await Promise.all(subs.map((s) => s.close()));
    await mosq?.stop();
  });

  async function daemon(deviceId: string, cameras: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
    if (!mosq) return undefined;
    const httpPort = await freePort();
    const sub = await subscribe(mosq.url, `edge-inferd/${deviceId}/#`);
    subs.push(sub);
    const d = spawnDaemon({ deviceId, http: { port: httpPort }, mqtt: { url: mosq.url }, cameras }, { env });
    daemons.push(d);
    return { d, sub, httpPort };
  }
  const results = (sub: Subscriber, camera: string) => sub.messages.filter((m) => m.topic.endsWith(`/${camera}/result`)).map((m) => m.json);

  it("several cameras, each on its own topic with the right label; failing ones report GStreamer's errors and the rest go on", async (ctx) => {
    const media = mkdtempSync(join(tmpdir(), 'cams-'));
    const avi = mjpegAvi(media, { rgb: GLASS, frames: 10, width: 160, height: 120, fps: 10 });
    const closedPort = await freePort();
    const started = await daemon('cams-1', {
      tray: { uri: `test://solid?color=${rgbHex(PLASTIC)}&width=160&height=120`, fps: 10 },
      door: { uri: `test://solid?color=${rgbHex(GLASS)}&width=160&height=120`, fps: 10 },
      argus: { uri: 'csi://0', reconnect: FAST_RECONNECT },
      usb: { uri: 'v4l2:///dev/video-nope', reconnect: FAST_RECONNECT },
      ipcam: { uri: `rtsp://viewer:hunter2@127.0.0.1:${closedPort}/live?transport=tcp`, reconnect: FAST_RECONNECT },
      broken: {
        uri: 'gst://videotestsrc ! video/x-raw,format=RGB,width=32,height=24 ! pngenc ! pngdec ! video/x-raw,format=GRAY8 ! appsink name=sink',
        reconnect: FAST_RECONNECT,
      },
      ...(avi ? { replay: { uri: `file://${avi}` } } : {}),
    });
    if (!started) return ctx.skip();
    const { d, sub, httpPort } = started;

    await sub.waitFor(() => results(sub, 'tray').length >= 3 && results(sub, 'door').length >= 3, 30_000);
    for (const r of results(sub, 'tray')) expect(r).toMatchObject({ camera: 'tray', label: 'plastic', frame: { width: 160, height: 120 } });
    for (const r of results(sub, 'door')) expect(r).toMatchObject({ camera: 'door', label: 'glass' });

    const st = await statusUntil(
      httpPort,
      'every failing camera retried',
      (s) =>
        ['argus', 'usb', 'ipcam', 'broken'].every((n) => s.cameras[n]?.attempts >= 2) && (!avi || s.cameras.replay?.state === 'stopped'),
    );
    expect(st.state).toBe('running');
    expect(st.cameras.tray).toMatchObject({ state: 'streaming', errors: 0 });
    const failing = {
      argus: ['PIPELINE_PARSE', 'no element "nvarguscamerasrc"'],
      usb: ['STATE_CHANGE', "Cannot identify device '/dev/video-nope'"],
      ipcam: ['STREAM_ERROR', 'Could not open resource for reading and writing'],
      broken: ['NOT_NEGOTIATED', 'streaming stopped, reason not-negotiated'],
    };
    for (const [name, [code, text]] of Object.entries(failing)) {
      expect(st.cameras[name].state, name).toMatch(/^(backoff|connecting)$/);
      expect(st.cameras[name].lastError, name).toMatchObject({ code, message: expect.stringContaining(text) });
      const line = await d.waitForLog((l) => l.camera === name && String(l.msg).startsWith('camera failed:'));
      expect(String(line.msg)).toContain(text);
      expect(line.code).toBe(code);
    }
    // The password is never shown.
    expect(st.cameras.ipcam.uri).toBe(`rtsp://viewer:***@127.0.0.1:${closedPort}/live?transport=tcp`);
    expect(JSON.stringify(d.logs)).not.toContain('hunter2');
    if (avi) {
      expect(st.cameras.replay).toMatchObject({ state: 'stopped', reason: 'eos', received: 10 });
      expect(results(sub, 'replay').length).toBeGreaterThan(0);
      for (const r of results(sub, 'replay')) expect(r.label).toBe('glass');
    }

    // Still classifying after all of that.
    const n = results(sub, 'tray').length;
    await sub.waitFor(() => results(sub, 'tray').length > n + 2);
    expect(await d.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('RTSP: the server goes away (backoff, the error in /status) and comes back (streaming, results resume)', async (ctx) => {
    const port = await freePort();
    const server = await startRtspServer({ port, rgb: PLASTIC, fps: 15 });
    if (!server) return ctx.skip();
    try {
      const started = await daemon('cams-rtsp', { ipcam: { uri: `${server.url}?latency=50`, reconnect: { initialMs: 200, maxMs: 1000 } } });
      if (!started) return ctx.skip();
      const { sub, httpPort } = started;
      await sub.waitFor(() => results(sub, 'ipcam').length >= 3, 30_000);
      expect(results(sub, 'ipcam')[0]).toMatchObject({ label: 'plastic', frame: { width: 320, height: 240 } });

      await server.stop();
      const down = await statusUntil(httpPort, 'the camera in backoff', (s) => s.cameras.ipcam.state === 'backoff');
      expect(down.cameras.ipcam.lastError.code).toMatch(/^(EOS|STREAM_ERROR)$/);
      expect(down.state).toBe('running');
      // Kept away for a retry or two: the daemon goes on trying while the server is gone.
      await statusUntil(httpPort, 'a second failed attempt', (s) => s.cameras.ipcam.attempts >= 2);
      const before = results(sub, 'ipcam').length;

      await server.start();
      const back = await statusUntil(
        httpPort,
        'the camera streaming again',
        (s) => s.cameras.ipcam.state === 'streaming' && s.cameras.ipcam.reconnects >= 1,
      );
      expect(back.cameras.ipcam.attempts).toBe(0);
      await sub.waitFor(() => results(sub, 'ipcam').length >= before + 3, 20_000);
      expect(results(sub, 'ipcam').at(-1)).toMatchObject({ label: 'plastic' });
    } finally {
      await server.stop();
    }
  });

  for (const format of ['mjpeg', 'yuyv'] as const) {
    it(`V4L2 (${format}) from the fake device; ${format === 'mjpeg' ? 'unplugged after 30 frames, then plugged back' : 'steady'}`, async (ctx) => {
      const lib = fakeV4l2();
      if (!lib) return ctx.skip();
      const env = {
        LD_PRELOAD: lib,
        FAKE_V4L2_DEVICE: '/dev/video-fake0',
        FAKE_V4L2_FORMAT: format,
        FAKE_V4L2_COLOR: rgbHex(PLASTIC),
        FAKE_V4L2_FPS: '20',
        ...(format === 'mjpeg' ? { FAKE_V4L2_UNPLUG_AFTER: '30', FAKE_V4L2_UNPLUG_OPENS: '1' } : {}),
      };
      const started = await daemon(
        `cams-v4l2-${format}`,
        { usb: { uri: `v4l2:///dev/video-fake0?format=${format}`, reconnect: FAST_RECONNECT } },
        env,
      );
      if (!started) return ctx.skip();
      const { d, sub, httpPort } = started;
      await sub.waitFor(() => results(sub, 'usb').length >= 3, 30_000);
      for (const r of results(sub, 'usb')) expect(r).toMatchObject({ label: 'plastic', frame: { width: 320, height: 240 } });
      if (format === 'mjpeg') {
        const back = await statusUntil(
          httpPort,
          'a reconnect after the unplug',
          (s) => s.cameras.usb.reconnects >= 1 && s.cameras.usb.state === 'streaming',
        );
        expect(back.cameras.usb.lastError).toMatchObject({ code: 'STREAM_ERROR' });
        await d.waitForLog((l) => l.camera === 'usb' && l.msg === 'camera streaming again');
        const n = results(sub, 'usb').length;
        await sub.waitFor(() => results(sub, 'usb').length >= n + 3);
      }
      expect(await d.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    });
  }
});
