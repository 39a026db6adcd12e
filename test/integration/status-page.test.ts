import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_AT, TAG_SLOPE } from '../../scripts/make-fixture-models.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../helpers/headless-chromium.js';

/**
 * The status page (src/health/page.ts) in real headless Chromium, served by a real App whose
 * camera runs the generated colour meter (regress) or colour tagger (multi-label) on images we
 * drew: the last result shows the values, or the labels that are on, as computed from the pixels.
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
    extra: { model: { path: join(fixtures, model) }, cameras: { tray: { uri: `images://${images}`, fps: 5 } } },
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
