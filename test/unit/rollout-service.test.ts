import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Config, configSchema } from '../../src/config/schema.js';
import { ModelService } from '../../src/inference/model-service.js';
import { createLogger } from '../../src/log.js';
import type { CommandError } from '../../src/publish/commands.js';
import type { ModelStatePayload } from '../../src/publish/schemas.js';
import { PackageStore, RolloutService } from '../../src/rollout/service.js';
import { ManualClock } from '../helpers/clock.js';
import { sha256, tarFolder, writePackage } from '../helpers/rollout.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * RolloutService with its real parts: a ModelService running a "dominant channel" classifier (an
 * inference worker with ONNX Runtime on the CPU), a PackageStore on real files, packages made here
 * with the system's tar and offered as file:// URLs below fileRoot, or by an HTTP server on
 * loopback for what only a network does (a dropped connection, a download still running). The
 * model/state messages are collected as published; time is a manual clock.
 */

const work = mkdtempSync(join(tmpdir(), 'rollout-service-'));
const offers = join(work, 'offers');
mkdirSync(offers);
const labels = (v: string): [string, string, string] => [`${v}-red`, `${v}-green`, `${v}-blue`];

let base = '';
/** Archives by name, with the install arguments for them (file:// URLs). */
const archives = new Map<string, { url: string; sha256: string; name: string; version: string; bytes: Buffer }>();

async function offer(name: string, version: string, more: { labels?: [string, string, string]; selftest?: boolean } = {}) {
  const key = `${name}-${version}`;
  const dir = await writePackage(join(work, 'src', key), {
    name,
    version,
    labels: more.labels ?? labels(version),
    selftest:
      more.selftest === false
        ? undefined
        : [
            { label: (more.labels ?? labels(version))[0], colour: 'red' },
            { label: (more.labels ?? labels(version))[2], colour: 'blue' },
          ],
  });
  const bytes = tarFolder(dir, join(offers, `${key}.tgz`));
  const a = { url: `file://${join(offers, `${key}.tgz`)}`, sha256: sha256(bytes), name, version, bytes };
  archives.set(key, a);
  return a;
}

/** Served over HTTP: /drop sends half of the archive and drops the connection; /hold sends some and waits. */
let server: http.Server;
let port = 0;
let dropBody: Buffer = Buffer.alloc(0);
let held: http.ServerResponse | undefined;
let onHold: (() => void) | undefined;
/** /drip: 1000 bytes at first, 1000 more at each drip() (of 10 000). */
let drip: (() => void) | undefined;
let onDrip: (() => void) | undefined;

beforeAll(async () => {
  base = await writePackage(join(work, 'base'), { name: 'base', version: '1.0.0', labels: labels('base') });
  server = http.createServer((req, res) => {
    if (req.url === '/drop') {
      res.writeHead(200, { 'content-length': dropBody.length });
      res.write(dropBody.subarray(0, dropBody.length >> 1), () => res.destroy());
      return;
    }
    if (req.url === '/drip') {
      res.writeHead(200, { 'content-length': 10_000 });
      res.write(Buffer.alloc(1000, 2));
      drip = () => void res.write(Buffer.alloc(1000, 2));
      res.on('close', () => {
        drip = undefined;
      });
      return onDrip?.();
    }
    res.writeHead(200, { 'content-length': 1_000_000 });
    res.write(Buffer.alloc(1000, 1));
    held = res;
    onHold?.();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  held?.destroy();
  server.close();
});

interface Rig {
  rollout: RolloutService;
  model: ModelService;
  store: PackageStore;
  clock: ManualClock;
  states: ModelStatePayload[];
  /** Resolves with the first model/state message (published so far or later) that `pred` accepts. */
  published(pred: (s: ModelStatePayload) => boolean): Promise<ModelStatePayload>;
  logs: Record<string, unknown>[];
  dir: string;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.rollout.stop();
    await r.model.stop();
  }
});

/** `load: false`: the configured model is not loaded (for commands refused before any load). */
async function rig(
  opts: { dir?: string; keep?: number; rollout?: Partial<Config['model']['rollout']>; start?: boolean; load?: boolean } = {},
): Promise<Rig> {
  const dir = opts.dir ?? mkdtempSync(join(work, 'state-'));
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', format: 'json', destination: { write: (s: string) => void logs.push(JSON.parse(s)) } });
  const parsed = configSchema.parse({ model: { providers: ['cpu'], keep: opts.keep ?? 2 } }).model;
  const config = { ...parsed, path: base, rollout: { ...parsed.rollout, dir, fileRoot: offers, reserveBytes: 0, ...opts.rollout } };
  const clock = new ManualClock();
  const store = new PackageStore({ dir, keep: config.keep, log });
  const model = new ModelService({
    config,
    log,
    listener: { buildStarted: () => undefined, buildEnded: () => undefined, swapped: () => undefined },
    clock,
    resolve: (p) => store.effectivePath(p),
  });
  const states: ModelStatePayload[] = [];
  let waiters: { pred: (s: ModelStatePayload) => boolean; resolve: (s: ModelStatePayload) => void }[] = [];
  const onState = (st: ModelStatePayload) => {
    states.push(st);
    const hit = waiters.filter((w) => w.pred(st));
    waiters = waiters.filter((w) => !hit.includes(w));
    for (const w of hit) w.resolve(st);
  };
  const published = (pred: (s: ModelStatePayload) => boolean) => {
    const st = states.find(pred);
    return st ? Promise.resolve(st) : new Promise<ModelStatePayload>((resolve) => waiters.push({ pred, resolve }));
  };
  const rollout = new RolloutService({
    config: { ...config.rollout, keep: config.keep },
    store,
    model,
    deviceId: 'kiosk-s',
    publish: async (p) => onState(JSON.parse(p) as ModelStatePayload),
    clock,
    log,
  });
  if (opts.load !== false) await model.start();
  if (opts.start !== false) await rollout.start();
  const r = { rollout, model, store, clock, states, published, logs, dir };
  rigs.push(r);
  return r;
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('the command did not fail');
    },
    (e: unknown) => e as CommandError & { problems?: string[] },
  );

describe('install', () => {
  it('downloads, checks, self-checks and switches; model/state follows each phase; the request is remembered', async () => {
    const r = await rig();
    const a = await offer('colours', '2.0.0');
    const installing = r.rollout.install({ ...a, activate: true }, 'req-1');
    // Past its download (loading the model) it cannot be cancelled.
    await r.published((s) => s.phase === 'loading');
    expect(() => r.rollout.cancel(9)).toThrow(
      'model/install req-1 is past its download (loading or self-checking): it cannot be cancelled',
    );
    const res = await installing;
    expect(res).toMatchObject({
      phase: 'active',
      request: {
        requestId: 'req-1',
        command: 'model/install',
        url: a.url,
        sha256: a.sha256,
        name: 'colours',
        version: '2.0.0',
        activate: true,
      },
      current: { name: 'colours', version: '2.0.0' },
      bytes: a.bytes.length,
      totalBytes: a.bytes.length,
      resumedFrom: 0,
      selftest: { mode: 'images', checked: 2 },
      packages: [{ name: 'colours', version: '2.0.0', role: 'current' }],
    });
    expect(r.model.info?.version).toBe('2.0.0');
    await r.published((s) => s.phase === 'active');
    const phases = r.states.map((s) => s.phase);
    expect(phases[0]).toBe('idle');
    expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual(['idle', 'downloading', 'verifying', 'loading', 'selftest', 'active']);
    expect(r.states.at(-1)).toMatchObject({ v: expect.any(Number), deviceId: 'kiosk-s', phase: 'active', current: { version: '2.0.0' } });
    const last = r.states.at(-1) as ModelStatePayload;
    expect(last.tsMs).toBe(r.clock.now());
    expect(last.ts).toBe(new Date(r.clock.now()).toISOString());
    // Nothing is left in staging; the package is kept under its folder name, marked with the archive's sha256.
    expect(readdirSync(r.store.stagingDir)).toEqual([]);
    const folder = PackageStore.folderName('colours', '2.0.0', a.sha256);
    expect(readFileSync(join(r.store.packageDir(folder), '.archive-sha256'), 'utf8')).toBe(`${a.sha256}\n`);
    expect(r.store.state).toMatchObject({ current: folder, basePath: base });
    expect(r.logs.some((l) => l.msg === 'model installed over MQTT and active')).toBe(true);
    // The download's deadline went with it.
    expect(r.clock.pending).toBe(0);
  });

  it('activate: false verifies and keeps it, the running model stays; activating it later needs no download', async () => {
    const r = await rig();
    const a = await offer('colours', '3.0.0');
    expect(await r.rollout.install({ ...a, activate: false }, 7)).toMatchObject({
      phase: 'staged',
      selftest: { mode: 'images', checked: 2 },
      current: { name: 'base' },
      packages: [{ version: '3.0.0', role: 'staged' }],
    });
    expect(r.model.info?.version).toBe('1.0.0');
    // The archive is gone from where it was offered: only the kept package can serve.
    rmSync(join(offers, 'colours-3.0.0.tgz'));
    const res = await r.rollout.install({ ...a, activate: true }, 8);
    expect(res).toMatchObject({ phase: 'active', current: { version: '3.0.0' } });
    expect(res.bytes).toBeUndefined();
  });

  it('a kept package whose archive sha256 differs beyond the folder name is downloaded and checked in full', async () => {
    const r = await rig();
    const a = await offer('colours', '4.0.0');
    await r.rollout.install({ ...a, activate: false }, 1);
    const folder = PackageStore.folderName('colours', '4.0.0', a.sha256);
    writeFileSync(join(r.store.packageDir(folder), '.archive-sha256'), `${'0'.repeat(64)}\n`);
    const res = await r.rollout.install({ ...a, activate: true }, 2);
    expect(res).toMatchObject({ phase: 'active', bytes: a.bytes.length });
  });

  it('refuses a wrong sha256 and a manifest naming another model; the running model stays and nothing is kept', async () => {
    const r = await rig({ load: false });
    const a = await offer('colours', '5.0.0');
    const wrong = await rejection(r.rollout.install({ ...a, sha256: 'ab'.repeat(32), activate: true }, 'w'));
    expect(wrong).toMatchObject({ code: 'MODEL_REJECTED' });
    expect(wrong.message).toBe(
      `MODEL_SHA256: the sha256 of the downloaded archive (${a.bytes.length} bytes) is not the command's ${'ab'.repeat(32)}; nothing was installed`,
    );
    const other = await rejection(r.rollout.install({ ...a, name: 'other', activate: true }, 'n'));
    expect(other.message).toBe('MODEL_MANIFEST: the manifest names colours 5.0.0, the command other 5.0.0');
    const version = await rejection(r.rollout.install({ ...a, version: '6.0.0', activate: true }, 'v'));
    expect(version.message).toBe('MODEL_MANIFEST: the manifest names colours 5.0.0, the command colours 6.0.0');
    expect(readdirSync(r.store.stagingDir)).toEqual([]);
    expect(existsSync(r.store.packagesDir) ? readdirSync(r.store.packagesDir) : []).toEqual([]);
    expect(r.rollout.status()).toMatchObject({ phase: 'failed', request: { requestId: 'v' }, error: { code: 'MODEL_MANIFEST' } });
    expect(r.logs.filter((l) => l.msg === 'model rollout failed; the running model stays').length).toBe(3);
  });

  it('a package whose self-check fails is refused and removed, with the problems listed', async () => {
    const r = await rig();
    // The red image filed under blue: the model (red is class 0) answers 7-red, the self-check wants 7-blue.
    const bad = await writePackage(join(work, 'src', 'bad-7'), {
      name: 'colours',
      version: '7.0.0',
      labels: ['7-red', '7-green', '7-blue'],
      selftest: [{ label: '7-blue', colour: 'red' }],
    });
    const bytes = tarFolder(bad, join(offers, 'bad-7.tgz'));
    const err = await rejection(
      r.rollout.install(
        { url: `file://${join(offers, 'bad-7.tgz')}`, sha256: sha256(bytes), name: 'colours', version: '7.0.0', activate: true },
        1,
      ),
    );
    expect(err.code).toBe('MODEL_REJECTED');
    expect(err.problems?.length).toBeGreaterThan(0);
    expect(existsSync(r.store.packageDir(PackageStore.folderName('colours', '7.0.0', sha256(bytes))))).toBe(false);
    const staged = await rejection(
      r.rollout.install(
        { url: `file://${join(offers, 'bad-7.tgz')}`, sha256: sha256(bytes), name: 'colours', version: '7.0.0', activate: false },
        2,
      ),
    );
    expect(staged.code).toBe('MODEL_REJECTED');
    expect(existsSync(r.store.packageDir(PackageStore.folderName('colours', '7.0.0', sha256(bytes))))).toBe(false);
    expect(r.model.info?.version).toBe('1.0.0');
  });

  it('refuses a URL it cannot fetch as a bad request, before anything runs', async () => {
    const r = await rig({ load: false });
    const err = await rejection(
      r.rollout.install({ url: 'ftp://x/p.tgz', sha256: 'a'.repeat(64), name: 'm', version: '1.0.0', activate: true }, 1),
    );
    expect(err).toMatchObject({ code: 'BAD_REQUEST', message: 'url: scheme ftp: not accepted (http, https or file)' });
    expect(r.rollout.status().phase).toBe('idle');
  });

  it('one model command at a time, and none before start or after stop', async () => {
    const idle = await rig({ start: false, load: false });
    const a = await offer('colours', '8.0.0');
    expect(await rejection(idle.rollout.install({ ...a, activate: true }, 1))).toMatchObject({
      code: 'UNAVAILABLE',
      message: 'the daemon is not running',
    });
    const r = await rig();
    const first = r.rollout.install({ ...a, activate: true }, 'first');
    expect(await rejection(r.rollout.rollback('second'))).toMatchObject({
      code: 'BUSY',
      message: 'another model command is running (model/install first)',
    });
    await first;
    expect((await r.rollout.rollback(null)).phase).toBe('rolledback');
  });
});

describe('download outcomes', () => {
  it('a dropped connection keeps the part file; the next start says the download was interrupted', async () => {
    const a = await offer('colours', '9.0.0');
    dropBody = a.bytes;
    const r = await rig();
    const err = await rejection(r.rollout.install({ ...a, url: `http://127.0.0.1:${port}/drop`, activate: true }, 'd'));
    expect(err.message).toMatch(/^DOWNLOAD_FAILED: /);
    expect(readdirSync(join(r.store.stagingDir, a.sha256)).sort()).toEqual(['archive.part', 'request.json']);
    // A restart finds it.
    const again = await rig({ dir: r.dir });
    expect(again.rollout.status()).toMatchObject({
      phase: 'interrupted',
      request: { requestId: 'd', url: `http://127.0.0.1:${port}/drop` },
      error: { code: 'INTERRUPTED' },
    });
    expect(
      again.logs.some((l) => l.msg === 'a model download was interrupted by a restart; it is kept for a resume and was not activated'),
    ).toBe(true);
    // Another install clears it.
    await again.rollout.install({ ...a, activate: true }, 'e');
    expect(readdirSync(again.store.stagingDir)).toEqual([]);
  });

  it('a refused file:// URL keeps nothing', async () => {
    const r = await rig({ load: false });
    const err = await rejection(
      r.rollout.install({ url: 'file:///etc/passwd', sha256: 'c'.repeat(64), name: 'm', version: '1.0.0', activate: true }, 1),
    );
    expect(err.message).toMatch(/^DOWNLOAD_URL: /);
    expect(readdirSync(r.store.stagingDir)).toEqual([]);
  });

  it('refuses a package of more than 1000 entries, and names paths inside a refused package relative to it', async () => {
    const r = await rig({ load: false });
    const many = join(work, 'src', 'many');
    mkdirSync(join(many, 'selftest'), { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(join(many, 'selftest', `f${i}`), '');
    writeFileSync(join(many, 'manifest.yaml'), 'name: many\n');
    const manyBytes = tarFolder(many, join(offers, 'many.tgz'));
    const err = await rejection(
      r.rollout.install(
        { url: `file://${join(offers, 'many.tgz')}`, sha256: sha256(manyBytes), name: 'many', version: '1.0.0', activate: true },
        1,
      ),
    );
    expect(err.message).toBe('MODEL_ARCHIVE: more than 1000 entries');
    const dir = await writePackage(join(work, 'src', 'dance'), {
      name: 'dance',
      version: '1.0.0',
      labels: labels('d'),
      manifest: (t) => t.replace('task: classify', 'task: dance'),
    });
    const danceBytes = tarFolder(dir, join(offers, 'dance.tgz'));
    const bad = await rejection(
      r.rollout.install(
        { url: `file://${join(offers, 'dance.tgz')}`, sha256: sha256(danceBytes), name: 'dance', version: '1.0.0', activate: true },
        2,
      ),
    );
    expect(bad.message).toMatch(/^MODEL_MANIFEST: package\/manifest\.yaml: /);
    expect(bad.message).not.toContain(r.store.stagingDir);
    expect(bad.problems?.length).toBeGreaterThan(0);
    for (const p of bad.problems ?? []) expect(p).not.toContain(r.store.stagingDir);
  });

  it('cmd/model/cancel stops the download and removes its part file; with nothing running it says so', async () => {
    const r = await rig({ load: false });
    expect(() => r.rollout.cancel(1)).toThrow('no install is running');
    const a = await offer('colours', '10.0.0');
    const held = new Promise<void>((resolve) => {
      onHold = resolve;
    });
    const running = rejection(r.rollout.install({ ...a, url: `http://127.0.0.1:${port}/hold`, activate: true }, 'h'));
    await held;
    expect(r.rollout.downloading).toBe(true);
    expect(r.rollout.cancel('c').phase).toBe('downloading');
    const err = await running;
    expect(err.message).toBe('DOWNLOAD_CANCELLED: the install was cancelled (cmd/model/cancel c)');
    expect(r.rollout.downloading).toBe(false);
    expect(readdirSync(r.store.stagingDir)).toEqual([]);
    // Without request ids: the texts name none.
    const heldAgain = new Promise<void>((resolve) => {
      onHold = resolve;
    });
    const second = rejection(r.rollout.install({ ...a, url: `http://127.0.0.1:${port}/hold`, activate: true }, null));
    await heldAgain;
    expect(await rejection(r.rollout.install({ ...a, activate: true }, 'x'))).toMatchObject({
      code: 'BUSY',
      message: 'another model command is running (model/install)',
    });
    r.rollout.cancel(null);
    expect((await second).message).toBe('DOWNLOAD_CANCELLED: the install was cancelled (cmd/model/cancel)');
    onHold = undefined;
  });

  it('stopping the daemon ends the download; its part file stays for a resume', async () => {
    const r = await rig({ load: false });
    const a = await offer('colours', '14.0.0');
    const held = new Promise<void>((resolve) => {
      onHold = resolve;
    });
    const running = rejection(r.rollout.install({ ...a, url: `http://127.0.0.1:${port}/hold`, activate: true }, 's'));
    await held;
    // The first bytes are on disk (the progress message says so).
    await r.published((st) => st.phase === 'downloading' && (st.bytes ?? 0) > 0);
    await r.rollout.stop();
    expect((await running).message).toBe('DOWNLOAD_ABORTED: the download was stopped (the daemon is stopping)');
    expect(readdirSync(join(r.store.stagingDir, a.sha256))).toContain('archive.part');
    onHold = undefined;
  });

  it('the first bytes are on model/state at once, then not again while the clock stands still', async () => {
    const r = await rig({ load: false });
    // 200 KB that do not compress: the copy reports progress several times.
    const dir = await writePackage(join(work, 'src', 'big'), { name: 'big', version: '1.0.0', labels: labels('big') });
    writeFileSync(join(dir, 'noise.bin'), randomBytes(200_000));
    const bytes = tarFolder(dir, join(offers, 'big.tgz'));
    const progress: number[] = [];
    const err = await rejection(
      r.rollout.install(
        { url: `file://${join(offers, 'big.tgz')}`, sha256: 'f'.repeat(64), name: 'big', version: '1.0.0', activate: true },
        'p',
      ),
    );
    expect(err.message).toMatch(/^MODEL_SHA256: /);
    await r.published((s) => s.phase === 'failed');
    for (const st of r.states) if (st.phase === 'downloading') progress.push(st.bytes ?? 0);
    expect(progress).toHaveLength(2);
    expect(progress[0]).toBe(0);
    expect(progress[1]).toBeGreaterThan(0);
    expect(progress[1]).toBeLessThan(bytes.length);
    // The actual digest stays in the local log only.
    expect(err.message).not.toContain(sha256(bytes));
    expect(r.logs.find((l) => l.msg === 'downloaded archive has another sha256')).toMatchObject({ actual: sha256(bytes) });
  });

  it('progress: the first bytes at once, then at most one message a second (by the clock)', async () => {
    const r = await rig({ load: false });
    const a = await offer('colours', '16.0.0');
    const first = new Promise<void>((resolve) => {
      onDrip = resolve;
    });
    const running = rejection(r.rollout.install({ ...a, url: `http://127.0.0.1:${port}/drip`, activate: true }, 'p'));
    await first;
    const at = (bytes: number) => r.published((s) => s.phase === 'downloading' && s.bytes === bytes);
    await at(1000);
    await r.clock.advance(1000);
    drip?.(); // 2000 bytes, a second after the first message: published
    await at(2000);
    await r.clock.advance(999);
    drip?.(); // 3000 bytes, 999 ms after: not published
    await waitUntil(() => r.rollout.status().bytes === 3000, 10_000, 'the download at 3000 bytes');
    await r.clock.advance(1);
    drip?.(); // 4000 bytes, a second after: published
    await at(4000);
    expect(r.states.filter((s) => s.phase === 'downloading').map((s) => s.bytes ?? 0)).toEqual([0, 1000, 2000, 4000]);
    r.rollout.cancel(null);
    await running;
    onDrip = undefined;
  });

  it("failed downloads leave no listener on the daemon's stop signal (Node warns of a leak past 10)", async () => {
    const r = await rig({ load: false });
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 12; i++) {
        const refused = { url: 'file:///etc/passwd', sha256: 'c'.repeat(64), name: 'm', version: '1.0.0', activate: true };
        expect((await rejection(r.rollout.install(refused, i))).message).toMatch(/^DOWNLOAD_URL: /);
      }
      // process.emitWarning reports on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('the deadline (model.rollout.timeoutSec) ends a download that takes too long; its part file stays', async () => {
    const r = await rig({ load: false, rollout: { timeoutSec: 30 } });
    const a = await offer('colours', '11.0.0');
    const held = new Promise<void>((resolve) => {
      onHold = resolve;
    });
    const running = rejection(r.rollout.install({ ...a, url: `http://127.0.0.1:${port}/hold`, activate: true }, 't'));
    await held;
    await r.published((st) => st.phase === 'downloading' && (st.bytes ?? 0) > 0);
    await r.clock.advance(29_999);
    expect(r.rollout.downloading).toBe(true);
    await r.clock.advance(1);
    const err = await running;
    expect(err.message).toBe('DOWNLOAD_TIMEOUT: the download did not finish within model.rollout.timeoutSec (30 s)');
    expect(readdirSync(join(r.store.stagingDir, a.sha256))).toContain('archive.part');
    expect(r.clock.pending).toBe(0);
    onHold = undefined;
  });
});

describe('remembering the switch', () => {
  it('when state.json cannot be written the switch is undone: the model that ran before runs again', async () => {
    const r = await rig();
    mkdirSync(join(r.dir, 'state.json.tmp')); // the atomic write's temporary file cannot be made
    const a = await offer('colours', '15.0.0');
    const err = await rejection(r.rollout.install({ ...a, activate: true }, 'r'));
    expect(err.message).toMatch(/^ROLLOUT_STATE: cannot write the rollout state \(.*\); the model that ran before runs again$/);
    expect(r.model.info?.version).toBe('1.0.0');
    expect(r.logs.find((l) => l.msg === 'cannot write the model rollout state; the switch is undone')).toMatchObject({ undone: true });
  });
});

describe('rollback', () => {
  it('with nothing installed there is nothing to roll back to; after an install it returns to model.path', async () => {
    const r = await rig();
    const none = await rejection(r.rollout.rollback(1));
    expect(none.message).toBe('NOTHING_TO_ROLL_BACK: no earlier model to roll back to: nothing was installed over MQTT');
    const a = await offer('colours', '12.0.0');
    await r.rollout.install({ ...a, activate: true }, 2);
    const b = await offer('colours', '13.0.0');
    await r.rollout.install({ ...b, activate: true }, 3);
    expect(await r.rollout.rollback(4)).toMatchObject({ phase: 'rolledback', request: { requestId: 4, command: 'model/rollback' } });
    expect(r.model.info?.version).toBe('12.0.0');
    expect((await r.rollout.rollback(5)).current).toMatchObject({ version: '13.0.0' });
    expect(r.logs.filter((l) => l.msg === 'model rolled back').map((l) => l.to)).toEqual([
      PackageStore.folderName('colours', '12.0.0', a.sha256),
      PackageStore.folderName('colours', '13.0.0', b.sha256),
    ]);
  });
});
