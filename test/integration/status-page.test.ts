import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_AT, TAG_SLOPE } from '../../scripts/make-fixture-models.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { MjpegClient } from '../helpers/mjpeg.js';
import { SseClient } from '../helpers/sse.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../helpers/headless-chromium.js';

/**
 * The status page (src/health/page.ts) in real headless Chromium, served by a real App whose
 * camera runs the generated colour meter (regress) or colour tagger (multi-label) on images we
 * drew: the last result shows the values, or the labels that are on, as computed from the pixels.
 * With the demo model: the journal and the kiosk's live streams (opened by the test) as /status
 * counts them.
 */

const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
let browser: BrowserContext;
let profile: string;

beforeAll(async () => {
  profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  // A fresh profile (--user-data-dir, which Playwright takes as the persistent context's folder).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  rmSync(profile, { recursive: true, force: true });
});

/** A 64x64 PNG (the models' own input size: no resampling) with rows of colour from the top. */
async function rows(file: string, bands: { rgb: [number, number, number]; rows: number }[]): Promise<void> {
  const data = Buffer.alloc(64 * 64 * 3);
  let y = 0;
  for (const b of bands) for (let i = 0; i < b.rows; i++, y++) for (let x = 0; x < 64; x++) data.set(b.rgb, (y * 64 + x) * 3);
  await sharp(data, { raw: { width: 64, height: 64, channels: 3 } })
    .png()
    .toFile(file);
}

async function appWith(model: string, draw: (dir: string) => Promise<void>): Promise<TestApp> {
  const images = mkdtempSync(join(tmpdir(), 'status-page-images-'));
  await draw(images);
  return startTestApp({
    samples: [],
    extra: { model: { path: resolve(fixtures, model) }, cameras: { tray: { uri: `images://${images}`, fps: 5 } } },
  });
}

async function lastResultText(app: TestApp): Promise<string> {
  const page = await browser.newPage();
  try {
    await page.goto(`${app.base}/`);
    const cell = page.locator('#cam-tray tr', { hasText: 'last result' }).locator('td').nth(1);
    await cell.filter({ hasText: '·' }).waitFor({ timeout: 20_000 });
    return (await cell.textContent()) ?? '';
  } finally {
    await page.close();
  }
}

describe('status page: regress and multi-label results', () => {
  let app: TestApp | undefined;
  afterAll(async () => app?.stop());

  it("shows a regress model's named values", async () => {
    app = await appWith('regressor', (dir) => rows(join(dir, 'a.png'), [{ rgb: [10, 120, 240], rows: 64 }]));
    try {
      expect(await lastResultText(app)).toMatch(/^red 10\.0, green 120, blue 240 · /);
    } finally {
      await app.stop();
      app = undefined;
    }
  }, 90_000);

  it("shows a regress model's points in frame pixels", async () => {
    // The colour meter with its red and green values read as a point (model-input pixels: the
    // 64x64 image is the input, so frame pixels are the same).
    const model = mkdtempSync(join(tmpdir(), 'status-page-points-'));
    cpSync(join(fixtures, 'regressor'), model, { recursive: true });
    appendFileSync(join(model, 'manifest.yaml'), '  points:\n    spot: [red, green]\n');
    app = await appWith(model, (dir) => rows(join(dir, 'a.png'), [{ rgb: [20, 40, 240], rows: 64 }]));
    const page = await browser.newPage();
    try {
      await page.goto(`${app.base}/`);
      const cell = page.locator('#cam-tray tr', { hasText: 'points' }).locator('td').nth(1);
      await cell.filter({ hasText: 'spot (20, 40)' }).waitFor({ timeout: 20_000 });
    } finally {
      await page.close();
      await app.stop();
      app = undefined;
      rmSync(model, { recursive: true, force: true });
    }
  }, 90_000);

  it('shows the labels a multi-label model turned on, with their probabilities', async () => {
    // red covers half the image, blue a quarter, green an eighth: red and blue are on.
    app = await appWith('tagger', (dir) =>
      rows(join(dir, 'a.png'), [
        { rgb: [255, 0, 0], rows: 32 },
        { rgb: [0, 0, 255], rows: 16 },
        { rgb: [0, 255, 0], rows: 8 },
      ]),
    );
    const pct = (share: number) => `${(100 / (1 + Math.exp(-TAG_SLOPE * (share - TAG_AT)))).toFixed(1)} %`;
    try {
      expect(await lastResultText(app)).toMatch(new RegExp(`^on: red ${pct(0.5)}, blue ${pct(0.25)} · `));
    } finally {
      await app.stop();
      app = undefined;
    }
  }, 90_000);
});

describe('status page: the journal and the kiosk streams', () => {
  let app: TestApp | undefined;
  afterAll(async () => app?.stop());

  it("shows the journal's counts, and the live streams and preview viewers open now, per camera and in all", async () => {
    app = await startTestApp({ samples: ['metal-1.png', 'paper-1.png'], fps: 5 });
    const port = Number(new URL(app.base).port);
    const page = await browser.newPage();
    const cell = (section: string, row: string) => page.locator(`${section} tr`, { hasText: row }).locator('td').nth(1);
    const shows = (section: string, row: string, text: string | RegExp) =>
      cell(section, row).filter({ hasText: text }).waitFor({ timeout: 20_000 });
    try {
      await page.goto(`${app.base}/`);
      await shows('#cam-tray', 'watching', '0 live streams, 0 preview viewers');
      // A stream of this camera, one of every camera (both carry it), a preview viewer.
      const one = await SseClient.open(port, '/events?camera=tray&type=result');
      const all = await SseClient.open(port, '/events?type=event');
      const view = await MjpegClient.open(port, '/preview.mjpeg?camera=tray&fps=5');
      await view.frameCount(1);
      await shows('#cam-tray', 'watching', '2 live streams, 1 preview viewer');
      await shows('#device', 'kiosk streams', '2 live streams, 1 preview viewer');
      one.close();
      view.close();
      await shows('#cam-tray', 'watching', '1 live stream, 0 preview viewers');
      all.close();
      await shows('#device', 'kiosk streams', '0 live streams, 0 preview viewers');
      // The journal row reads the counts /status gives (they move with the camera: compared as a shape, then as numbers).
      const text = (await cell('#device', 'journal').textContent()) ?? '';
      const m = /^(\d+) messages? waiting for the broker · (\d+) rows? kept$/.exec(text);
      expect(m, text).not.toBeNull();
      expect(Number(m?.[2])).toBeGreaterThan(0);
      expect(Number(m?.[2])).toBeLessThanOrEqual(app.app.status().journal?.rows ?? 0);
    } finally {
      await page.close();
    }
  }, 90_000);
});
