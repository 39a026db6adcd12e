import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelDir, demoSamplesDir } from '../../src/paths.js';
import { type DaemonProcess, spawnDaemon, runCli } from '../helpers/daemon.js';
import { BLUE, drawFrame, RED } from '../helpers/draw.js';
import { freePort } from '../helpers/ports.js';

/** One-shot inference against the real daemon (`POST /infer`) and the real CLI (`edge-inferd infer`). */

const MAX = 300_000;
const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const png = (name: string) => readFile(path.join(demoSamplesDir, name));

async function post(port: number, body: Uint8Array | string | undefined, headers: Record<string, string> = {}, query = '') {
  const r = await fetch(`http://127.0.0.1:${port}/infer${query}`, { method: 'POST', body: body as never, headers });
  return { status: r.status, body: (await r.json()) as any };
}

describe('POST /infer on the running daemon', () => {
  let d: DaemonProcess;
  let port: number;
  let modelDir: string;
  beforeAll(async () => {
    port = await freePort();
    // The daemon runs a copy of the demo package, so the hot-swap checks below can change it on disk.
    modelDir = await mkdtemp(path.join(os.tmpdir(), 'model-'));
    await cp(demoModelDir, modelDir, { recursive: true });
    d = spawnDaemon({
      deviceId: 'oneshot',
      http: { port },
      mqtt: { url: 'embedded', embedded: { port: await freePort() } },
      model: { path: modelDir, inferMaxBytes: MAX, intraOpThreads: 1 },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 5 } },
    });
    await d.waitForLog((l) => l.msg === 'running');
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await rm(modelDir, { recursive: true, force: true });
  });

  it('answers a PNG, a JPEG and a WebP with the live result payload (camera "infer")', async () => {
    const sample = await png('metal-2.png');
    const jpeg = await sharp(await png('plastic-1.png'))
      .jpeg({ quality: 90 })
      .toBuffer();
    const webp = await sharp(await png('cardboard-1.png'))
      .webp()
      .toBuffer();
    for (const [bytes, label, name] of [
      [sample, 'metal', 'metal-2.png'],
      [jpeg, 'plastic', 'p.jpg'],
      [webp, 'cardboard', 'c.webp'],
    ] as const) {
      const r = await post(port, bytes, { 'Content-Type': 'application/octet-stream' }, `?name=${name}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({
        v: 1,
        deviceId: 'oneshot',
        camera: 'infer',
        task: 'classify',
        label,
        model: { name: 'demo-recycling-colour', version: '1.0.0' },
        provider: 'cpu',
        frame: { width: 320, height: 240, name },
      });
      expect(r.body.top).toHaveLength(3);
    }
  });

  it('refuses a non-image (415), an empty body (400), a broken image (400) and an oversize body (413)', async () => {
    const text = await post(port, 'hello, this is not an image');
    expect(text).toEqual({
      status: 415,
      body: { error: 'not a JPEG, PNG or WebP image (first bytes: 68 65 6c 6c 6f 2c 20 74)', code: 'IMAGE_TYPE' },
    });

    const empty = await post(port, undefined);
    expect(empty).toEqual({ status: 400, body: { error: 'the image is empty (0 bytes)', code: 'IMAGE_EMPTY' } });

    const broken = await post(port, Buffer.concat([(await png('glass-1.png')).subarray(0, 100), Buffer.alloc(100)]));
    expect(broken.status).toBe(400);
    expect(broken.body.code).toBe('IMAGE_DECODE');
    expect(broken.body.error).toMatch(/^cannot decode the PNG image: /);

    const big = Buffer.alloc(MAX + 1, 0xff);
    big.set([0xff, 0xd8, 0xff]);
    const declared = await post(port, big);
    expect(declared).toEqual({
      status: 413,
      body: {
        error: `image too large: the limit is ${MAX} bytes (got Content-Length ${MAX + 1}); set model.inferMaxBytes`,
        code: 'IMAGE_TOO_LARGE',
      },
    });

    // Chunked, no Content-Length: cut off while streaming.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(100_000));
        c.close();
      },
    });
    const chunked = await fetch(`http://127.0.0.1:${port}/infer`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { code: string }).code).toBe('IMAGE_TOO_LARGE');

    // The daemon carries on: the next good image is answered.
    expect((await post(port, await png('trash-1.png'))).body.label).toBe('trash');
  });

  it('reports the provider chain in /status', async () => {
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as any;
    expect(status.model).toMatchObject({ name: 'demo-recycling-colour', provider: 'cpu', dir: modelDir });
    expect(status.model.providerAttempts.map((a: { provider: string; ok: boolean }) => [a.provider, a.ok])).toEqual([
      ['tensorrt', false],
      ['cuda', false],
      ['cpu', true],
    ]);
    expect(status.model.providerAttempts[0].error).toContain('libonnxruntime_providers_tensorrt.so is not installed');
  });

  it('SIGHUP reloads the package from disk; a broken one is refused and the old model keeps answering', async () => {
    const manifest = path.join(modelDir, 'manifest.yaml');
    const original = await readFile(manifest, 'utf8');
    await writeFile(manifest, original.replace('version: 1.0.0', 'version: 1.0.1'));
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'model swapped' && (l.model as { version: string }).version === '1.0.1');
    expect((await post(port, await png('glass-2.png'))).body).toMatchObject({ label: 'glass', model: { version: '1.0.1' } });

    await writeFile(manifest, original.replace('version: 1.0.0', 'version: 2.0.0').replace('width: 64', 'width: 65'));
    d.proc.kill('SIGHUP');
    const failed = await d.waitForLog((l) => l.msg === 'model reload failed; keeping the current model');
    expect(failed).toMatchObject({ code: 'MODEL_MISMATCH', keeping: { version: '1.0.1' } });
    expect(failed.err).toContain('input.width: manifest says 65');
    expect((await post(port, await png('paper-1.png'))).body).toMatchObject({ label: 'paper', model: { version: '1.0.1' } });
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as any;
    expect(status.model.lastReload).toMatchObject({ ok: false, error: { code: 'MODEL_MISMATCH' } });
  });
});

describe('edge-inferd infer / build-engine', () => {
  it('prints one result per image and reports the bad ones, exit 1', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'imgs-'));
    try {
      const red = drawFrame(512, 384, [
        { x: 100, y: 60, w: 120, h: 80, rgb: RED },
        { x: 300, y: 200, w: 50, h: 100, rgb: BLUE },
      ]);
      await sharp(red.data, { raw: { width: 512, height: 384, channels: 3 } })
        .png()
        .toFile(path.join(dir, 'boxes.png'));
      await writeFile(path.join(dir, 'notes.txt'), 'not an image');
      const r = await runCli([
        'infer',
        '--model',
        path.join(fixtures, 'detector-yolov8'),
        path.join(dir, 'boxes.png'),
        path.join(dir, 'notes.txt'),
      ]);
      expect(r.code).toBe(1);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        camera: 'infer',
        task: 'detect',
        label: 'red',
        frame: { name: 'boxes.png', width: 512, height: 384 },
      });
      expect(lines[0].detections.map((x: { label: string; box: unknown }) => [x.label, x.box])).toEqual([
        ['red', { x: 100, y: 60, w: 120, h: 80 }],
        ['blue', { x: 300, y: 200, w: 50, h: 100 }],
      ]);
      expect(r.stderr).toContain(
        `${path.join(dir, 'notes.txt')}: not a JPEG, PNG or WebP image (first bytes: 6e 6f 74 20 61 6e 20 69) (IMAGE_TYPE)`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('build-engine without the TensorRT provider says what is missing, exit 1', async () => {
    const r = await runCli(['build-engine', '--model', demoModelDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /edge-inferd build-engine: .*model\.onnx: no execution provider could load the model: tensorrt: .*libonnxruntime_providers_tensorrt\.so is not installed/,
    );
  });
});
