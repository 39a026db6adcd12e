import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { MjpegClient } from '../helpers/mjpeg.js';
import { assertValid } from '../helpers/schemas.js';
import { SseClient } from '../helpers/sse.js';
import { waitUntil } from '../helpers/wait.js';

/** The kiosk's screen on a real App (images camera, demo model, embedded broker): /events and /preview.mjpeg wired end to end. */

let t: TestApp;
const port = () => Number(new URL(t.base).port);
beforeAll(async () => {
  t = await startTestApp({ samples: ['glass-1.png'], fps: 10 });
});
afterAll(async () => t?.stop());

describe('kiosk endpoints on the daemon', () => {
  it('/events streams the camera results as published, resumable by id', async () => {
    const c = await SseClient.open(port(), '/events?camera=tray&type=result');
    await c.until((x) => x.messages.length >= 2);
    const first = JSON.parse(c.messages[0].data);
    expect(first).toMatchObject({ camera: 'tray', label: 'glass' });
    const history = (await (await fetch(`${t.base}/results?camera=tray&limit=100`)).json()) as { results: { seq: number }[] };
    // The same payload as journaled (and published).
    expect(history.results.find((r) => r.seq === first.seq)).toEqual(first);
    c.close();
    const again = await SseClient.open(port(), '/events?camera=tray&type=result', { 'Last-Event-ID': c.messages[0].id! });
    await again.until((x) => x.messages.length >= 2);
    expect(again.messages[0].data).toBe(c.messages[1].data);
    expect(Number(again.messages[0].id)).toBeGreaterThan(Number(c.messages[0].id));
    again.close();
  });

  it('/preview.mjpeg shows the camera frames, and /metrics counts the streams', async () => {
    const c = await MjpegClient.open(port(), '/preview.mjpeg?camera=tray&fps=5');
    await c.frameCount(2);
    const meta = await sharp(c.frames[1]).metadata();
    expect(meta.format).toBe('jpeg');
    const metrics = await (await fetch(`${t.base}/metrics`)).text();
    expect(metrics).toContain('edge_inferd_http_streams{endpoint="preview"} 1');
    c.close();
  });

  it('/status shows the live streams per endpoint and per camera, as the shipped schema says', async () => {
    type Streams = { events: { clients: number }; preview: { clients: number }; cameras: Record<string, unknown> };
    const status = async () => {
      const s = await (await fetch(`${t.base}/status`)).json();
      assertValid('daemon-status.schema.json', s);
      return (s as { streams: Streams }).streams;
    };
    // A stream's count follows its socket: opened when the request is taken, closed when the server sees it close.
    const settle = (events: number, preview: number) =>
      waitUntil(
        async () => {
          const s = await status();
          return s.events.clients === events && s.preview.clients === preview && s;
        },
        15_000,
        `${events} event streams and ${preview} preview viewers in /status`,
      );
    const before = await settle(0, 0);
    expect(before.cameras).toEqual({ tray: { events: 0, preview: 0, previewDropped: 0 } });
    // A stream of this camera, one of every camera (no camera filter), a preview viewer.
    const one = await SseClient.open(port(), '/events?camera=tray&type=result');
    const all = await SseClient.open(port(), '/events?type=event');
    const view = await MjpegClient.open(port(), '/preview.mjpeg?camera=tray&fps=5');
    await view.frameCount(1);
    const s = await settle(2, 1);
    expect(s.events).toMatchObject({ clients: 2, dropped: 0 });
    expect(s.preview).toMatchObject({ clients: 1, dropped: 0 });
    expect(s.cameras).toEqual({ tray: { events: 2, preview: 1, previewDropped: 0 } });
    for (const c of [one, all, view]) c.close();
    expect((await settle(0, 0)).cameras).toEqual({ tray: { events: 0, preview: 0, previewDropped: 0 } });
  });
});
