import { mkdirSync, mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAME_HEIGHT, FRAME_WIDTH, type FaceSpec, faceGeometry, renderFrame } from '../../scripts/make-eyes-demo.js';
import { eyesDemoDir } from '../../src/paths.js';
import { startTestApp, type TestApp, waitUntil } from '../helpers/app.js';
import { launchChromium } from '../helpers/headless-chromium.js';

/**
 * Issue 21 row 8 in real headless Chromium: a web page on the device whose name resolves to
 * 127.0.0.1 (DNS rebinding, here by --host-resolver-rules) cannot read /status, /snapshot.jpg,
 * /results nor call /infer: every route, answered 421 with the reason only. The same browser on
 * 127.0.0.1 gets the status page, whose picture (the one-model camera's, a privacy: person
 * detector: row 3) has the faces blacked out.
 */

const faces: FaceSpec[] = [
  { x: 80, y: 120, size: 120, leftClass: 'healthy', rightClass: 'stye' },
  { x: 380, y: 140, size: 100, leftClass: 'cataract', rightClass: 'healthy' },
];

describe('the HTTP endpoint serves only Host names of this listener', () => {
  let t: TestApp;
  let port: number;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;

  beforeAll(async () => {
    const frames = join(mkdtempSync(join(tmpdir(), 'host-browser-')), 'frames');
    mkdirSync(frames);
    await sharp(renderFrame({ faces }), { raw: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 } })
      .png()
      .toFile(join(frames, 'two-faces.png'));
    t = await startTestApp({
      samples: [],
      extra: { model: { path: join(eyesDemoDir, 'face') }, cameras: { kiosk: { uri: `images://${frames}`, fps: 5 } } },
    });
    port = t.app.httpPort ?? 0;
    chromium = await launchChromium({ hostRules: 'MAP rebind.test 127.0.0.1, MAP *.rebind.test 127.0.0.1' });
    await waitUntil(() => (t.app.status().cameras.kiosk?.inferred ?? 0) > 0 || undefined, 30_000, 'a result on kiosk');
  }, 90_000);
  afterAll(async () => {
    await chromium?.close();
    await t?.stop();
  });

  it('a page loaded as rebind.test gets 421 on every route, with the reason and nothing else', async () => {
    const page = await chromium.browser.newPage();
    const nav = await page.goto(`http://rebind.test:${port}/`);
    expect(nav?.status()).toBe(421);
    // The attacker's script runs same-origin with the rebound name and tries every route.
    const answers = await page.evaluate(async () => {
      const out: Record<string, { status: number; body: string }> = {};
      for (const [method, path] of [
        ['GET', '/status'],
        ['GET', '/snapshot.jpg?camera=kiosk'],
        ['GET', '/results'],
        ['GET', '/metrics'],
        ['GET', '/healthz'],
        ['POST', '/infer'],
        ['GET', '/events'],
        ['GET', '/preview.mjpeg'],
        ['GET', '/kiosk/'],
      ]) {
        const r = await fetch(path, { method, body: method === 'POST' ? 'x' : undefined });
        out[`${method} ${path}`] = { status: r.status, body: await r.text() };
      }
      return out;
    });
    for (const [route, a] of Object.entries(answers)) {
      expect(a.status, route).toBe(421);
      expect(Object.keys(JSON.parse(a.body)), route).toEqual(['error']);
      expect(a.body, route).not.toContain('kiosk');
    }
    await page.close();
  });

  it('on 127.0.0.1 the status page loads and shows the picture with both faces blacked out', async () => {
    const page = await chromium.browser.newPage();
    const nav = await page.goto(`http://127.0.0.1:${port}/`);
    expect(nav?.status()).toBe(200);
    // Browser-side code (the page's CSP forbids strings to eval; the test's TypeScript has no DOM types).
    await page.waitForFunction(() => {
      const img = (globalThis as any).document.querySelector('img.snap');
      return img?.complete && img.naturalWidth > 0;
    });
    const boxes = faces.map((f) => faceGeometry(f).box);
    const means = await page.evaluate((bs) => {
      const doc = (globalThis as any).document;
      const img = doc.querySelector('img.snap');
      const c = doc.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const g = c.getContext('2d');
      g.drawImage(img, 0, 0);
      return bs.map((b) => {
        const d: Uint8ClampedArray = g.getImageData(b.x + 8, b.y + 8, b.w - 16, b.h - 16).data;
        let sum = 0;
        for (let i = 0; i < d.length; i += 4) sum += (d[i] + d[i + 1] + d[i + 2]) / 3;
        return sum / (d.length / 4);
      });
    }, boxes);
    expect(
      means.every((m) => m < 30),
      `face means ${means}`,
    ).toBe(true);
    await page.close();
  });

  it('Hosts: localhost and [::1] with the port are served; a wrong port, no Host, or "//name" paths are not', async () => {
    const get = (headers: Record<string, string>, path = '/status') =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, headers, setHost: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await get({ Host: `localhost:${port}` })).toBe(200);
    expect(await get({ Host: `LOCALHOST:${port}` })).toBe(200);
    expect(await get({ Host: `[::1]:${port}` })).toBe(200);
    expect(await get({ Host: `127.0.0.1:${port}` })).toBe(200);
    expect(await get({ Host: `127.0.0.1:${port + 1}` })).toBe(421);
    expect(await get({ Host: 'localhost' })).toBe(421);
    expect(await get({ Host: `localhost.evil.test:${port}` })).toBe(421);
    // No Host at all: Node refuses it first (HTTP/1.1 requires one).
    expect(await get({})).toBe(400);
    // Row 16: a path starting with two slashes is not the status page.
    expect(await get({ Host: `127.0.0.1:${port}` }, '//anything')).toBe(404);
  });
});
