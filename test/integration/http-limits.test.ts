import { mkdtempSync, writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { ImagesCamera } from '../../src/capture/images.js';
import type { Frame } from '../../src/capture/frame.js';
import { inferRoute } from '../../src/health/routes/infer.js';
import { resultsRoute } from '../../src/health/routes/results.js';
import type { HttpLimits } from '../../src/health/server.js';
import type { Inference } from '../../src/inference/types.js';
import { captureLog } from '../helpers/log.js';
import { waitUntil } from '../helpers/wait.js';
import { loopbackServer } from '../helpers/health-server.js';

/**
 * The HTTP endpoint under abuse (issue 13, rows 6, 9 and 16): connection limits per client and in
 * all, a body that never ends, /infer beyond its concurrency, a truncated JPEG, and the small ones
 * (GET /infer, a huge /results limit). A real HealthServer on a free port; the model behind /infer
 * is a function the test holds, so it decides when an inference ends.
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const LIMITS: HttpLimits = { connections: 12, perClient: 4, bodyTimeoutSec: 1, inferConcurrent: 2 };

interface Held {
  resolve(inf: Inference): void;
  frame: Frame;
}

async function startServer(limits: Partial<HttpLimits> = {}) {
  const { log, lines } = captureLog('info');
  const held: Held[] = [];
  const server = loopbackServer({
    log,
    limits: { ...LIMITS, ...limits },
  });
  server.addRoute(
    inferRoute({
      maxBytes: 1_000_000,
      maxConcurrent: { ...LIMITS, ...limits }.inferConcurrent,
      infer: (frame) => new Promise<Inference>((resolve) => held.push({ resolve, frame })),
      toPayload: (frame) => ({ width: frame.width, height: frame.height }),
      log,
      refused: (reason, fields) => server.refusals.note(reason, fields),
    }),
  );
  server.addRoute(
    resultsRoute({ history: (q) => Array.from({ length: Math.min(q.limit, 3) }, (_, i) => ({ payload: JSON.stringify({ i }) }) as never) }),
  );
  await server.start();
  cleanups.push(() => server.stop());
  return { server, lines, held, base: `http://127.0.0.1:${server.port}` };
}

/** A raw connection from a given loopback address (all of 127/8 reaches lo on Linux). */
function rawConnect(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => s.destroy());
  });
}

/** What comes back on a raw socket until the server closes it. */
function readUntilClose(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('error', () => undefined);
    s.once('close', () => resolve(text));
  });
}

const okInference = (): Inference =>
  ({
    task: 'classify',
    top: [{ label: 'x', score: 1, index: 0 }],
    latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
  }) as unknown as Inference;

describe('connection limits', () => {
  it('one client holding its share of connections cannot take the endpoint from another: /healthz stays 200', async () => {
    const { server, lines } = await startServer();
    const port = server.port;
    // The "attacker" on 127.0.0.2 opens its share plus three more, sending nothing.
    const held: Socket[] = [];
    for (let i = 0; i < LIMITS.perClient; i++) held.push(await rawConnect(port, '127.0.0.2'));
    const refused: string[] = [];
    for (let i = 0; i < 3; i++) refused.push(await readUntilClose(await rawConnect(port, '127.0.0.2')));
    // Refused at once, with a plain 503 the client can read.
    for (const r of refused) expect(r).toMatch(/^HTTP\/1\.1 503 /);
    // The probe on 127.0.0.1 is another client: it gets through.
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(r.status).toBe(200);
    const refusals = lines.filter((l) => l.msg === 'http request refused');
    expect(refusals.length).toBe(3);
    for (const l of refusals) {
      expect(l).toMatchObject({ reason: 'too many connections from this client', client: '127.0.0.2', level: 40 });
      expect(JSON.stringify(l)).not.toContain('stack');
    }
    for (const s of held) s.destroy();
  });

  it('beyond the total limit new connections are refused, whoever they come from, but the device itself (127.0.0.1) still gets in', async () => {
    const { server } = await startServer({ connections: 4, perClient: 4 });
    for (let i = 0; i < 4; i++) await rawConnect(server.port, `127.0.0.${10 + i}`);
    expect(await readUntilClose(await rawConnect(server.port, '127.0.0.20'))).toMatch(/^HTTP\/1\.1 503 /);
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });

  it('a body that never ends is cut off after bodyTimeoutSec (408), and frees its /infer slot', async () => {
    const { server, lines, held } = await startServer();
    const s = await rawConnect(server.port);
    const closed = readUntilClose(s);
    s.write(`POST /infer HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Length: 100000\r\n\r\n` + 'x'.repeat(10));
    const answer = await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // The slot is free again: two inferences can be held at once.
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } })
      .jpeg()
      .toBuffer();
    const both = [0, 1].map(() => fetch(`http://127.0.0.1:${server.port}/infer`, { method: 'POST', body: jpeg }));
    await waitUntil(() => held.length === 2, 10_000, 'two inferences held after the timeout');
    for (const h of held) h.resolve(okInference());
    for (const r of await Promise.all(both)) expect(r.status).toBe(200);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe('POST /infer under load', () => {
  it('at most inferConcurrent requests at once; the next gets 503 BUSY at once, and one log line without a stack', async () => {
    const { base, held, lines } = await startServer();
    const jpeg = await sharp({ create: { width: 16, height: 12, channels: 3, background: '#0f0' } })
      .jpeg()
      .toBuffer();
    const first = [fetch(`${base}/infer`, { method: 'POST', body: jpeg }), fetch(`${base}/infer`, { method: 'POST', body: jpeg })];
    await waitUntil(() => held.length === 2, 10_000, 'two inferences held');
    const busy = await fetch(`${base}/infer`, { method: 'POST', body: jpeg });
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(await busy.json()).toMatchObject({ code: 'BUSY' });
    const refusals = lines.filter((l) => l.msg === 'http request refused');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ reason: 'BUSY', path: '/infer' });
    expect(JSON.stringify(refusals[0])).not.toContain('stack');
    for (const h of held) h.resolve(okInference());
    for (const r of await Promise.all(first)) expect(await r.json()).toEqual({ width: 16, height: 12 });
    // Free again.
    const again = fetch(`${base}/infer`, { method: 'POST', body: jpeg });
    await waitUntil(() => held.length === 3, 10_000, 'a third inference held');
    held[2].resolve(okInference());
    expect((await again).status).toBe(200);
  });

  it('a truncated JPEG whose header says 7000x7000 is a 400 IMAGE_DECODE, never a grey-filled 200', async () => {
    const { base, held } = await startServer();
    // A real 7000x7000 JPEG cut after its first 291 bytes and closed with an end-of-image marker:
    // headers complete, scan data missing; libjpeg only warns and fills the rest with grey.
    const whole = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#808080' } })
      .jpeg({ quality: 50 })
      .toBuffer();
    const truncated = Buffer.concat([whole.subarray(0, 291), Buffer.from([0xff, 0xd9])]);
    expect(truncated.length).toBe(293);
    const r = await fetch(`${base}/infer`, { method: 'POST', body: truncated });
    const body = (await r.json()) as { code: string; error: string };
    expect(held).toHaveLength(0);
    expect(r.status).toBe(400);
    expect(body.code).toBe('IMAGE_DECODE');
  });
});

describe('the pixel limit', () => {
  it('an image over 4096 x 4096 pixels is a 400 naming the limit, never decoded', async () => {
    const { base, held } = await startServer();
    const png = await sharp({ create: { width: 4100, height: 4100, channels: 3, background: '#123456' } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    const r = await fetch(`${base}/infer`, { method: 'POST', body: png });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ code: 'IMAGE_DECODE', error: expect.stringContaining('pixel limit') });
    expect(held).toHaveLength(0);
  });
});

describe('images camera decodes with the same guards', () => {
  it('a truncated JPEG in the folder counts as an error and is skipped, not turned into a frame', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trunc-'));
    const good = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#00f' } })
      .png()
      .toBuffer();
    const jpeg = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#f00' } })
      .jpeg()
      .toBuffer();
    writeFileSync(join(dir, 'a-truncated.jpg'), Buffer.concat([jpeg.subarray(0, Math.floor(jpeg.length / 2)), Buffer.from([0xff, 0xd9])]));
    writeFileSync(join(dir, 'b-good.png'), good);
    const cam = new ImagesCamera({ name: 'c', dir, fps: 100 });
    await cam.start();
    cleanups.push(() => cam.stop());
    const frame = await cam.read();
    expect(frame.name).toBe('b-good.png');
    expect(cam.status()).toMatchObject({ errors: 1, lastError: { code: 'IMAGE_DECODE' } });
  });
});

describe('small ones (row 16)', () => {
  it('GET /infer is 405 with Allow: POST', async () => {
    const { base } = await startServer();
    const r = await fetch(`${base}/infer`);
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
  });

  it('/results?limit=99999999999999999999 is lowered to 1000, as documented', async () => {
    const { base } = await startServer();
    const r = await fetch(`${base}/results?limit=99999999999999999999`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ limit: 1000, limitCapped: true });
  });
});
