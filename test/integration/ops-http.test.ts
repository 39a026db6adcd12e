import { execFileSync, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { HealthServer } from '../../src/health/server.js';
import { colourOf } from '../../src/health/snapshot.js';
import { demoSamplesDir } from '../../src/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { captureLog } from '../helpers/log.js';
import { assertValid, schemaErrors } from '../helpers/schemas.js';
import { needTool } from '../helpers/tools.js';
import { labelIndex } from '../helpers/demo.js';
import { waitUntil } from '../helpers/wait.js';

/** Every operations endpoint on the real HTTP server of a real App (images camera, demo model, embedded broker). */

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { headers });
  const buf = Buffer.from(await r.arrayBuffer());
  const type = r.headers.get('content-type') ?? '';
  return {
    status: r.status,
    headers: r.headers,
    buf,
    text: buf.toString(),
    json: type.includes('json') ? JSON.parse(buf.toString()) : undefined,
  };
}

/** A request with the path exactly as given (fetch would normalise "/../"). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every sample line `name{labels} value`; HELP and TYPE once per family, before its samples; no series twice. */
function strictParse(text: string): Map<string, { type: string; samples: { name: string; labels: string; value: number }[] }> {
  const families = new Map<string, { type: string; help: boolean; samples: { name: string; labels: string; value: number }[] }>();
  const series = new Set<string>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      if (families.has(m[1])) throw new Error(`family ${m[1]} declared twice`);
      families.set(m[1], { type: '', help: true, samples: [] });
      current = m[1];
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      if (m[1] !== current) throw new Error(`TYPE ${m[1]} not right after its HELP`);
      families.get(m[1])!.type = m[2];
      continue;
    }
    m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|NaN|\+Inf|-Inf))$/.exec(
        line,
      );
    if (!m) throw new Error(`not a valid sample line: ${JSON.stringify(line)}`);
    const fam = families.get(current ?? '');
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!fam || (m[1] !== current && base !== current)) throw new Error(`sample ${m[1]} outside its family (${current})`);
    const key = `${m[1]}${m[2] ?? ''}`;
    if (series.has(key)) throw new Error(`series twice: ${key}`);
    series.add(key);
    fam.samples.push({ name: m[1], labels: m[2] ?? '', value: Number(m[3]) });
  }
  return families;
}

const near = (a: number[], b: number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]) <= tol);
const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

describe('operations endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ samples: ['paper-1.png'], fps: 10 });
    await waitUntil(() => (t.app.status().cameras.tray?.inferred ?? 0) >= 3 || undefined, 20_000, 'three results');
  });
  afterAll(async () => t?.stop());

  it('/healthz says progressing, /readyz lists each check, /status tells it all', async () => {
    const h = await get(`${t.base}/healthz`);
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({
      ok: true,
      verdict: 'progressing',
      cameras: { tray: { verdict: 'progressing', state: 'streaming', limitMs: 10_000 } },
    });
    const r = await get(`${t.base}/readyz`);
    expect(r.status).toBe(200);
    expect(r.json.checks).toMatchObject({
      model: { ok: true },
      'camera:tray': { ok: true, detail: 'streaming' },
      mqtt: { ok: true },
      journal: { ok: true, detail: expect.stringMatching(/^accepting \(\d+ queued\)$/) },
    });
    const s = await get(`${t.base}/status`);
    expect(s.json).toMatchObject({
      deviceId: 'ops-test',
      state: 'running',
      model: { provider: 'cpu' },
      health: { ok: true },
      reload: null,
      cameras: { tray: { lastResult: { label: 'paper' } } },
    });
    // The document is what its shipped schema says, to the last field.
    assertValid('daemon-status.schema.json', s.json);
    expect(schemaErrors('daemon-status.schema.json', { ...s.json, surprise: 1 }).length).toBeGreaterThan(0);
  });

  it('/metrics is valid Prometheus text with the pipeline figures (strict parser)', async () => {
    // Make the reader late on purpose so there are drops to count: with the event loop blocked for
    // 3.5 frame periods, the images camera replaces the frames that fell due meanwhile (>= 2).
    const tray = () => t.app.status().cameras.tray;
    const droppedBefore = tray().dropped;
    for (const end = Date.now() + 350; Date.now() < end; );
    const statusBefore = await waitUntil(
      () => tray().dropped >= droppedBefore + 2 && tray().dropped,
      10_000,
      'the late read to count its drops',
    );
    // ...and every result so far to be acknowledged (the depth /metrics reports). The camera keeps
    // running, so remember how many results there were at that moment.
    const unacknowledged = () => {
      const o = t.app.status().mqtt?.outbox;
      return o ? o.queued + o.inflight : Number.NaN;
    };
    const inferredAtDrain = await waitUntil(() => unacknowledged() === 0 && tray().inferred, 10_000, 'the outbox drained');
    const m = await get(`${t.base}/metrics`);
    const statusAfter = tray().dropped;
    const inferredAfter = tray().inferred;
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const fams = strictParse(m.text);
    const samples = [...fams.values()].flatMap((f) => f.samples);
    const one = (name: string, labels = '') => samples.find((s) => s.name === name && s.labels.includes(labels))?.value;
    expect(fams.get('edge_inferd_frames_captured_total')?.type).toBe('counter');
    expect(one('edge_inferd_frames_captured_total', 'camera="tray"')).toBeGreaterThanOrEqual(3);
    expect(one('edge_inferd_frames_inferred_total', 'camera="tray"')).toBeGreaterThanOrEqual(3);
    // The camera's own count at scrape time: between what its status said just before and just after,
    const dropped = one('edge_inferd_frames_dropped_total', 'camera="tray"')!;
    expect(dropped).toBeGreaterThanOrEqual(statusBefore);
    expect(dropped).toBeLessThanOrEqual(statusAfter);
    // and, in the same scrape, consistent with the other counters: captured = dropped + inferred +
    // the frames in flight (at most one being inferred and one read behind it).
    const inFlight =
      one('edge_inferd_frames_captured_total', 'camera="tray"')! - one('edge_inferd_frames_inferred_total', 'camera="tray"')! - dropped;
    expect(inFlight).toBeGreaterThanOrEqual(0);
    expect(inFlight).toBeLessThanOrEqual(2);
    expect(one('edge_inferd_provider_info', 'provider="cpu"')).toBe(1);
    expect(one('edge_inferd_mqtt_connected')).toBe(1);
    // Only results counted after the drain can be waiting for their PUBACK (a result is counted before it is journaled).
    expect(one('edge_inferd_journal_depth')).toBeLessThanOrEqual(inferredAfter - inferredAtDrain);
    expect(one('edge_inferd_journal_evictions_total')).toBe(0);
    expect(one('edge_inferd_healthy')).toBe(1);
    expect(one('edge_inferd_camera_streaming', 'state="streaming"')).toBe(1);
    expect(fams.get('edge_inferd_stage_latency_seconds')?.type).toBe('histogram');
    for (const stage of ['preprocess', 'inference', 'postprocess', 'total']) {
      expect(one('edge_inferd_stage_latency_seconds_count', `stage="${stage}"`), stage).toBeGreaterThanOrEqual(3);
    }
    expect(one('nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0);
    expect(one('process_resident_memory_bytes')).toBeGreaterThan(10e6);
    expect(fams.has('edge_inferd_device_temperature_celsius')).toBe(true);
  });

  it('/metrics passes promtool check metrics (our families lint clean)', async (ctx) => {
    const promtool = needTool('promtool', 'prometheus');
    if (!promtool) return ctx.skip();
    const { text } = await get(`${t.base}/metrics`);
    // Exit 1 = parse error, 3 = lint findings. prom-client's own default metrics have three known
    // lint findings (gauges named *_total); ours must have none.
    const all = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(all.status === 0 || all.status === 3, all.stdout + all.stderr).toBe(true);
    const findings = (all.stdout + all.stderr).split('\n').filter(Boolean);
    expect(
      findings.filter(
        (f) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(f),
      ),
    ).toEqual([]);
    const ours = text
      .split(/(?=^# HELP )/m)
      .filter((block) => block.startsWith('# HELP edge_inferd_'))
      .join('');
    const lint = spawnSync(promtool, ['check', 'metrics'], { input: ours, encoding: 'utf8' });
    expect({ status: lint.status, out: lint.stdout + lint.stderr }).toEqual({ status: 0, out: '' });
  });

  it('/snapshot.jpg is a JPEG of the frame size with the result banner in the label colour', async () => {
    const s = await get(`${t.base}/status`);
    const last = s.json.cameras.tray.lastResult;
    expect(last.label).toBe('paper');
    const r = await get(`${t.base}/snapshot.jpg?camera=tray`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/jpeg');
    expect(r.buf.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const { data, info } = await sharp(r.buf).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.format]).toEqual([320, 240, 'raw']);
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    // Right end of the banner (the text sits on the left): the colour of paper's class index.
    expect(last.top[0].index).toBe(labelIndex('paper'));
    const banner = hex(colourOf(labelIndex('paper')));
    expect(near(px(310, 8), banner, 30), `banner pixel ${px(310, 8)} vs ${banner}`).toBe(true);
    // Below the banner the frame itself shows through: the same pixel as the source image.
    const src = await sharp(join(demoSamplesDir, 'paper-1.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const spx = [...src.data.subarray((120 * 320 + 160) * 3, (120 * 320 + 160) * 3 + 3)];
    expect(near(px(160, 120), spx, 30), `frame pixel ${px(160, 120)} vs ${spx}`).toBe(true);
    expect(near(px(160, 120), banner, 60)).toBe(false);
    // Without ?camera= the first camera's.
    expect((await get(`${t.base}/snapshot.jpg`)).status).toBe(200);
  });

  it('rejects path traversal, bad camera names, repeated parameters and oversize requests', async () => {
    const port = t.app.httpPort!;
    expect((await get(`${t.base}/snapshot.jpg?camera=../../etc/passwd`)).status).toBe(400);
    expect((await get(`${t.base}/snapshot.jpg?camera=%2e%2e%2fmodels`)).status).toBe(400);
    expect((await get(`${t.base}/snapshot.jpg?camera=nope`)).json).toEqual({ error: 'no enabled camera "nope"', cameras: ['tray'] });
    expect((await get(`${t.base}/snapshot.jpg?camera=tray&camera=tray`)).status).toBe(400);
    for (const path of [
      '/../../etc/passwd',
      '/snapshot.jpg/../../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '//etc/passwd',
      '/models/demo/model.onnx',
    ]) {
      const r = await rawGet(port, path);
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain('root:');
    }
    expect((await get(`${t.base}/snapshot.jpg?camera=${'a'.repeat(5000)}`)).status).toBe(414);
    expect((await get(`${t.base}/status?${'x=1&'.repeat(1000)}`)).status).toBe(414);
    const post = await fetch(`${t.base}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('/ is a self-contained status page (no external assets) that polls /status and the snapshot', async () => {
    const r = await get(`${t.base}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(r.text).toContain('<!doctype html>');
    expect(r.text).not.toMatch(/\b(src|href)=["']?(https?:)?\/\//i);
    expect(r.text).not.toMatch(/@import|url\(/);
    for (const endpoint of ["'/status'", "'/healthz'", "'/readyz'", "'/snapshot.jpg?camera='"]) expect(r.text).toContain(endpoint);
  });
});

describe('a camera that stops delivering', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ samples: ['metal-1.png', 'paper-1.png'], fps: 10, extra: { health: { stallAfterSec: 2 } } });
  });
  afterAll(async () => t?.stop());

  it('turns /healthz 503 with the reason once no result came for the limit', async () => {
    await waitUntil(
      async () => ((await get(`${t.base}/healthz`)).status === 200 && (t.app.status().cameras.tray?.inferred ?? 0) > 0) || undefined,
      20_000,
      'first result',
    );
    // Take the images away: the images camera counts each unreadable file and produces nothing.
    rmSync(t.imagesDir, { recursive: true });
    const h = await waitUntil(
      async () => {
        const r = await get(`${t.base}/healthz`);
        return r.status === 503 ? r : undefined;
      },
      20_000,
      '/healthz 503',
    );
    expect(h.json).toMatchObject({
      ok: false,
      verdict: 'stalled',
      cameras: { tray: { verdict: 'stalled', state: 'streaming', limitMs: 2000 } },
    });
    expect(h.json.reason).toMatch(/^camera tray: no result for \d+(\.\d)? s \(limit 2\.0 s\)$/);
    const m = await get(`${t.base}/metrics`);
    expect(m.text).toMatch(/^edge_inferd_healthy 0$/m);
    expect(Number(/^edge_inferd_camera_errors_total\{camera="tray"\} (\d+)$/m.exec(m.text)?.[1])).toBeGreaterThan(0);
    const s = await get(`${t.base}/status`);
    expect(s.json.health).toMatchObject({ ok: false, verdict: 'stalled' });
    expect(s.json.cameras.tray.lastError.message).toMatch(/missing|no such file/i);
  });
});

describe('bearer token', () => {
  it('binding beyond loopback without a token is refused with a config error', () => {
    const dir = join(process.env.TMPDIR ?? '/tmp');
    const file = join(dir, `edge-inferd-token-${process.pid}.yaml`);
    writeFileSync(file, 'http:\n  host: 0.0.0.0\n');
    try {
      expect(() => loadConfig({ file, env: {} })).toThrow(ConfigError);
      try {
        loadConfig({ file, env: {} });
      } catch (err) {
        expect((err as ConfigError).problems).toEqual([
          'http.token: required when http.host is not a loopback address (got http.host "0.0.0.0"); set http.token or http.tokenFile, or listen on 127.0.0.1 and use an SSH tunnel',
        ]);
      }
      expect(() => loadConfig({ file, env: { EDGE_INFERD_HTTP__TOKEN: 'short' } })).toThrow(/http\.token: must be at least 16 characters/);
      expect(loadConfig({ file, env: { EDGE_INFERD_HTTP__TOKEN: 'a-long-enough-token' } }).http.token).toBe('a-long-enough-token');
      writeFileSync(file, 'http:\n  host: "::1"\n');
      expect(loadConfig({ file, env: {} }).http.host).toBe('::1');
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('with a token every endpoint but the page needs it; tokenFile works and reload swaps the token live', async () => {
    const tokenFileDir = join(process.env.TMPDIR ?? '/tmp', `edge-inferd-tok-${process.pid}`);
    rmSync(tokenFileDir, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', tokenFileDir]);
    const tokenFile = join(tokenFileDir, 'token');
    writeFileSync(tokenFile, 'first-token-0123456789\n');
    const t = await startTestApp({ samples: ['trash-1.png'], extra: { http: { host: '0.0.0.0', tokenFile } } });
    try {
      const base = `http://127.0.0.1:${t.app.httpPort}`;
      for (const path of ['/healthz', '/readyz', '/status', '/metrics', '/snapshot.jpg']) {
        const r = await get(`${base}${path}`);
        expect(r.status, path).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe('Bearer realm="edge-inferd"');
        expect((await get(`${base}${path}`, { Authorization: 'Bearer wrong-token-0123456789' })).status, path).toBe(401);
      }
      expect((await get(`${base}/`)).status).toBe(200);
      expect((await get(`${base}/healthz`, { Authorization: 'Bearer first-token-0123456789' })).status).toBe(200);
      expect((await get(`${base}/status`, { Authorization: 'bearer   first-token-0123456789' })).status).toBe(200);
      expect(t.logs.some((l) => JSON.stringify(l).includes('first-token'))).toBe(false);

      writeFileSync(tokenFile, 'second-token-0123456789\n');
      const report = await t.app.reload(() => loadConfig({ file: t.configPath, env: {} }));
      expect(report).toMatchObject({ ok: true, applied: ['http.token (changed)'], restartRequired: [] });
      expect((await get(`${base}/healthz`, { Authorization: 'Bearer first-token-0123456789' })).status).toBe(401);
      expect((await get(`${base}/healthz`, { Authorization: 'Bearer second-token-0123456789' })).status).toBe(200);
      expect(t.logs.some((l) => JSON.stringify(l).includes('second-token'))).toBe(false);
    } finally {
      await t.stop();
      rmSync(tokenFileDir, { recursive: true, force: true });
    }
  });
});

describe('bearer token on a loopback bind', () => {
  it('a HealthServer on 127.0.0.1 with a token enforces it: no header 401, a wrong token 401, the right one 200', async () => {
    const token = 'loopback-token-0123456789';
    const healthy = { ok: true };
    const server = new HealthServer({
      host: '127.0.0.1',
      port: 0,
      token,
      log: captureLog().log,
      source: { health: () => healthy, ready: () => ({ ok: true, checks: {} }), status: () => ({ state: 'running' }) },
    });
    await server.start();
    try {
      const base = `http://127.0.0.1:${server.port}`;
      for (const path of ['/healthz', '/readyz', '/status']) {
        const none = await get(`${base}${path}`);
        expect(none.status, path).toBe(401);
        expect(none.headers.get('www-authenticate')).toBe('Bearer realm="edge-inferd"');
        expect((await get(`${base}${path}`, { Authorization: `Bearer ${token}x` })).status, path).toBe(401);
        expect((await get(`${base}${path}`, { Authorization: `Bearer ${token}` })).status, path).toBe(200);
      }
      expect((await get(`${base}/healthz`, { Authorization: `Bearer ${token}` })).json).toEqual(healthy);
    } finally {
      await server.stop();
    }
  });

  it('a token given with the default loopback host is kept by the config, not dropped as unneeded', () => {
    const file = join(process.env.TMPDIR ?? '/tmp', `edge-inferd-loop-token-${process.pid}.yaml`);
    writeFileSync(file, 'http:\n  token: loopback-token-0123456789\n');
    try {
      expect(loadConfig({ file, env: {} }).http).toMatchObject({ host: '127.0.0.1', token: 'loopback-token-0123456789' });
    } finally {
      rmSync(file, { force: true });
    }
  });
});
