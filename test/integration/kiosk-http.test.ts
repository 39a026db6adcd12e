import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { MjpegClient } from '../helpers/mjpeg.js';
import { SseClient } from '../helpers/sse.js';

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
});
