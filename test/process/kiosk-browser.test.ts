import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, spawnDaemon, runCli } from '../helpers/daemon.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../helpers/headless-chromium.js';
import { freePort } from '../helpers/ports.js';
import { SseClient } from '../helpers/sse.js';
import { waitUntil } from '../helpers/wait.js';
import { eyesAnswers } from '../helpers/demo-answers.js';

/**
 * The example kiosk page (examples/kiosk/) in real headless Chromium (Debian's, driven by
 * playwright-core) on `edge-inferd run --demo eyes`: within 5 s it shows an assessment with both
 * eyes and their heatmaps, the live preview loads and changes; then, with the browser offline, the
 * daemon restarts on the same journal and produces assessments the page has not seen; back online,
 * the page (never reloaded) catches up through the SSE replay, and the assessments it showed are
 * exactly the journal's, in order, none missing, none twice.
 */

const answers = eyesAnswers();
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: CI installs chromium (.ci/run)`);

// Browser-side code: this project's TypeScript has no DOM types, so the page's globals are `any`
// here. Functions, not source strings (the page's Content-Security-Policy forbids eval); each
// takes the page's globalThis itself, since a function runs in the page without its closure.
type Browser = any;

/** Both eye figures are shown, each with a label (not "not detected") and a loaded picture. */
function bothEyesShown(): boolean {
  const browser: Browser = globalThis;
  const figs = [...browser.document.querySelectorAll('#eyes figure')].filter((f) => !f.hidden);
  return (
    !browser.document.getElementById('eyes').hidden &&
    ['left', 'right'].every((side) =>
      figs.some((f) => {
        const img = f.querySelector('img');
        return (
          f.dataset.region === side && f.querySelector('.label').textContent !== 'not detected' && img.complete && img.naturalWidth > 0
        );
      }),
    )
  );
}

interface Seen {
  assessments: string[];
  results: number;
  lastEventId: string;
  connected: number;
}

describe.skipIf(!haveChromium)('kiosk page in headless Chromium', () => {
  let dir: string;
  let profile: string;
  let httpPort: number;
  let env: NodeJS.ProcessEnv;
  let d: DaemonProcess | undefined;
  let context: BrowserContext;
  let page: Page;

  const start = async (): Promise<DaemonProcess> => {
    const p = spawnDaemon(undefined, { args: ['run', '--demo', 'eyes'], env, dir });
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined))?.status !== undefined,
      30_000,
      () => `the daemon's HTTP endpoint (stderr: ${p.stderr().slice(-500)})`,
    );
    return p;
  };
  const seen = () => page.evaluate(() => (globalThis as Browser).kiosk as Seen);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiosk-daemon-'));
    profile = mkdtempSync(join(tmpdir(), 'kiosk-chromium-'));
    httpPort = await freePort();
    env = {
      EDGE_INFERD_DEVICE_ID: 'kiosk-e2e',
      EDGE_INFERD_MQTT__EMBEDDED__PORT: String(await freePort()),
      EDGE_INFERD_HTTP__PORT: String(httpPort),
      EDGE_INFERD_LOG__FORMAT: 'json',
    };
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS] });
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await d?.kill('SIGKILL');
    rmSync(profile, { recursive: true, force: true });
  });

  it('shows the first assessment with both eyes and their heatmaps once the demo is ready', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // HTTP is up before the models load: the page is open before the camera's first frame.
    d = await start();
    await page.goto(`http://127.0.0.1:${httpPort}/kiosk/`);
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, 30_000, 'the daemon ready');
    // No stopwatch (a loaded machine is slow, not wrong): the page must show the demo's first
    // assessment, which it can only do if it was listening from the start and missed none.
    await page.waitForFunction(bothEyesShown, undefined, { timeout: 30_000 });
    const shown = (await page.evaluate(() =>
      [...(globalThis as Browser).document.querySelectorAll('#eyes figure')].map((f) => ({
        region: f.dataset.region,
        label: f.querySelector('.label').textContent,
        src: f.querySelector('img').getAttribute('src').slice(0, 22),
      })),
    )) as { region: string; label: string; src: string }[];
    // The demo's first subject (answers.json): left eye cataract, right eye healthy; the pictures are the heatmap PNGs.
    const first = answers[0].faces[0];
    expect(Object.fromEntries(shown.map((s) => [s.region, s.label]))).toEqual({ left: first.leftEye.class, right: first.rightEye.class });
    for (const s of shown) expect(s.src).toBe('data:image/png;base64,');
    expect(errors).toEqual([]);
  }, 60_000);

  it('the live preview loads and changes', async () => {
    await page.waitForFunction(
      () => {
        // An MJPEG stream never completes: its first frame gives the image its size.
        return (globalThis as Browser).document.getElementById('preview').naturalWidth > 0;
      },
      undefined,
      { timeout: 10_000 },
    );
    const shot = () => page.locator('#preview').screenshot();
    const first = await shot();
    // The sample frames change every 200 ms; a few tries, each after a frame's time.
    await waitUntil(async () => !(await shot()).equals(first), 5000, 'the preview picture to change', 250);
  }, 20_000);

  it('recovers after a daemon restart without a reload and without missing an assessment', async () => {
    await page.evaluate(() => {
      (globalThis as Browser).marker = 'same page';
    });
    const before = await seen();
    expect(before.assessments.length).toBeGreaterThan(0);
    // Offline while the daemon restarts: what the new one journals meanwhile must come through the replay.
    await context.setOffline(true);
    await d!.kill('SIGTERM');
    d = await start();
    const sse = await SseClient.open(httpPort, `/events?camera=kiosk&type=assessment&lastEventId=${before.lastEventId}`);
    try {
      await sse.until((c) => c.messages.some((e) => e.event === 'assessment'));
    } finally {
      sse.close();
    }
    const missed = JSON.parse(sse.messages.find((e) => e.event === 'assessment')!.data).id as string;
    expect((await seen()).assessments).not.toContain(missed);
    await context.setOffline(false);
    await page.waitForFunction((id) => (globalThis as Browser).kiosk.assessments.includes(id), missed, { timeout: 15_000 });
    const after = await seen();
    expect(after.connected).toBeGreaterThanOrEqual(2);
    expect(await page.evaluate(() => (globalThis as Browser).marker)).toBe('same page');
    // The picture came back too: it changes again.
    const shot = () => page.locator('#preview').screenshot();
    const still = await shot();
    await waitUntil(async () => !(await shot()).equals(still), 10_000, 'the preview picture to change after the restart', 250);
    // The page's assessments are the journal's, from its first to its last, in order.
    const r = await runCli(['history', '--events', '--json', '--limit', '1000', '--journal', join(dir, 'journal.sqlite')]);
    expect(r.code, r.stderr).toBe(0);
    const journal = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; type: string; camera: string })
      .filter((e) => e.type === 'assessment' && e.camera === 'kiosk')
      .map((e) => e.id);
    const from = journal.indexOf(after.assessments[0]);
    const to = journal.indexOf(after.assessments[after.assessments.length - 1]);
    expect(from).toBeGreaterThanOrEqual(0);
    expect(after.assessments).toEqual(journal.slice(from, to + 1));
  }, 60_000);

  it("the recycling demo: the latest item's label, written as text", async () => {
    await d?.kill('SIGTERM');
    const recycling = spawnDaemon(undefined, {
      args: ['run'],
      env: { ...env, EDGE_INFERD_HTTP__KIOSK: 'true' },
      dir: mkdtempSync(join(tmpdir(), 'kiosk-recycling-')),
    });
    d = recycling;
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200,
      30_000,
      'ready',
    );
    await page.goto(`http://127.0.0.1:${httpPort}/kiosk/`);
    await page.waitForFunction(() => (globalThis as Browser).kiosk.results > 0, undefined, { timeout: 10_000 });
    const label = await page.evaluate(() => (globalThis as Browser).document.querySelector('#item .label').textContent as string);
    expect(['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash']).toContain(label);
    expect(await page.evaluate(() => (globalThis as Browser).document.getElementById('eyes').hidden)).toBe(true);
  }, 60_000);
});
