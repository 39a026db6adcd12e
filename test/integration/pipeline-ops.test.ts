import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfig } from '../../src/config/demo.js';
import { eyesDemoDir } from '../../src/paths.js';
import { startTestApp, type TestApp, waitUntil } from '../helpers/app.js';
import { runCli } from '../helpers/daemon.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { assertValid } from '../helpers/schemas.js';
import { eyesAnswers } from '../helpers/demo-answers.js';

/**
 * A pipeline camera in a running App: POST /infer?camera= and `edge-inferd infer --camera` run the
 * whole pipeline and agree; crops only with includeCrops; snapshots off; a reload swaps one stage
 * and applies thresholds live.
 */

const samples = join(eyesDemoDir, 'samples');
const answers = eyesAnswers();
const threeFaces = answers.find((f) => f.faces.length === 3)!;

describe('pipeline camera operations', () => {
  let t: TestApp;
  let eyeDir: string;
  const pipeline = () => (demoConfig('eyes') as { pipelines: { eyes: Record<string, any>[] } }).pipelines.eyes;

  beforeAll(async () => {
    const stages = pipeline();
    const dir = mkdtempSync(join(tmpdir(), 'pipeline-ops-'));
    // The eye stage from a copy we can change on disk.
    eyeDir = join(dir, 'eye-condition');
    cpSync(stages[1].model, eyeDir, { recursive: true });
    mkdirSync(join(dir, 'frames'), { recursive: true });
    cpSync(join(samples, threeFaces.file), join(dir, 'frames', threeFaces.file));
    t = await startTestApp({
      samples: ['plastic-1.png'],
      fps: 5,
      extra: {
        // Port 0: a free port, which the daemon reports (the `running` line, /status).
        http: { port: 0 },
        pipelines: { eyes: [stages[0], { ...stages[1], model: eyeDir }] },
        cameras: {
          kiosk: { uri: `images://${join(dir, 'frames')}`, fps: 5, pipeline: 'eyes' },
          open: { uri: `images://${join(dir, 'frames')}`, fps: 5, pipeline: 'eyes', privacy: { snapshots: 'off', includeCrops: true } },
        },
      },
    });
  }, 60_000);
  afterAll(async () => t?.stop());

  const post = async (query: string) => {
    const res = await fetch(`${t.base}/infer${query}`, { method: 'POST', body: readFileSync(join(samples, threeFaces.file)) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const summary = (objects: Record<string, any>[]) =>
    objects
      .map((o) => [Math.round(o.box.x), Math.round(o.box.y), o.regions.left.label ?? 'ND', o.regions.right.label ?? 'ND'])
      .sort((a, b) => (a[0] as number) - (b[0] as number));
  const expected = threeFaces.faces
    .map((f) => [f.box.x, f.box.y, f.leftEye.covered ? 'ND' : f.leftEye.class, f.rightEye.covered ? 'ND' : f.rightEye.class])
    .sort((a, b) => (a[0] as number) - (b[0] as number));

  it('POST /infer?camera= runs the pipeline; infer --camera prints the same objects', async () => {
    const http = await post('?camera=kiosk');
    expect(http.status).toBe(200);
    expect(http.body.camera).toBe('infer');
    expect(summary(http.body.objects)).toEqual(expected);
    expect(http.body.objects.every((o: any) => o.regions.left.crop === undefined)).toBe(true);
    expect((await post('?camera=nope')).status).toBe(404);
    // No camera runs the one model, so it is not loaded: naming no camera is a clear refusal.
    expect(await post('')).toMatchObject({ status: 409, body: { code: 'MODEL_UNUSED' } });

    // Run without blocking: the App under test shares this process's event loop, and a loop
    // frozen past the server's 5 s keepAliveTimeout had fetch reuse a socket the server was closing.
    const cli = await runCli(['infer', '--config', t.configPath, '--camera', 'kiosk', join(samples, threeFaces.file)], {
      env: { EDGE_INFERD_CONFIG: '' },
    });
    expect(cli.code, cli.stderr).toBe(0);
    const line = JSON.parse(cli.stdout) as Record<string, any>;
    expect(line.objects).toEqual(http.body.objects);
  });

  it('loads only the stage models when every camera runs a pipeline; http.port 0 reports the port it got', async () => {
    const loaded = t.logs.filter((l) => l.msg === 'model loaded').map((l) => l.stage ?? 'model');
    expect(loaded.sort()).toEqual(['eye', 'face']);
    const port = Number(new URL(t.base).port);
    expect(port).toBeGreaterThan(0);
    expect(t.logs.find((l) => l.msg === 'running')).toMatchObject({ http: { host: '127.0.0.1', port } });
    const status = (await (await fetch(`${t.base}/status`)).json()) as Record<string, any>;
    expect(status).toMatchObject({ model: null, http: { host: '127.0.0.1', port } });
    const ready = await fetch(`${t.base}/readyz`);
    const checks = ((await ready.json()) as { checks: Record<string, { ok: boolean; detail: string }> }).checks;
    expect(checks.model).toEqual({ ok: true, detail: 'not loaded: every camera runs a pipeline' });
  });

  it('includeCrops puts each classified crop in the result; snapshots off refuses snapshots', async () => {
    const r = await post('?camera=open');
    const withCrop = r.body.objects.flatMap((o: any) => Object.values(o.regions)).filter((x: any) => x.label);
    expect(withCrop.length).toBeGreaterThan(0);
    for (const region of withCrop as { crop: string; box: { w: number; h: number } }[]) {
      const meta = await sharp(Buffer.from(region.crop, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', Math.round(region.box.w), Math.round(region.box.h)]);
    }
    await waitUntil(() => (t.app.status().cameras.open?.inferred ?? 0) > 0 || undefined, 20_000, 'a result on camera open');
    const snap = await fetch(`${t.base}/snapshot.jpg?camera=open`);
    expect(snap.status).toBe(403);
    expect(((await snap.json()) as { code: string }).code).toBe('SNAPSHOTS_OFF');
  });

  it('/status (schema-valid) shows the stage models and the pipeline counters; /metrics the per-stage latency, crops and skips', async () => {
    await waitUntil(() => (t.app.status().cameras.kiosk?.pipeline?.assessments ?? 0) > 0 || undefined, 20_000, 'an assessment on kiosk');
    const status = (await (await fetch(`${t.base}/status`)).json()) as Record<string, any>;
    assertValid('daemon-status.schema.json', status);
    expect(status.cameras.kiosk.pipeline).toMatchObject({
      name: 'eyes',
      tracks: 3,
      assessments: 3,
      qualitySkipped: { small: 0, blurred: 0 },
    });
    expect(status.cameras.kiosk.lastResult.objects.map((o: { track: number }) => o.track).sort()).toEqual([1, 2, 3]);
    const metrics = await (await fetch(`${t.base}/metrics`)).text();
    expect(metrics).toMatch(/edge_inferd_pipeline_stage_seconds_count\{camera="kiosk",pipeline_stage="eye"\} [1-9]/);
    // Five crops a frame: three faces, one covered eye.
    const crops = threeFaces.faces.length * 2 - threeFaces.faces.filter((f) => f.leftEye.covered || f.rightEye.covered).length;
    const count = Number(/edge_inferd_pipeline_crops_per_frame_count\{camera="kiosk"\} (\d+)/.exec(metrics)![1]);
    const sum = Number(/edge_inferd_pipeline_crops_per_frame_sum\{camera="kiosk"\} (\d+)/.exec(metrics)![1]);
    expect(sum).toBe(count * crops);
  });

  it('a reload swaps only the stage whose package changed, and applies thresholds live', async () => {
    const before = t.app.status().stages!;
    expect(before.map((s) => [s.pipeline, s.stage, s.version])).toEqual([
      ['eyes', 'face', '1.0.0'],
      ['eyes', 'eye', '1.0.0'],
    ]);
    const manifest = join(eyeDir, 'manifest.yaml');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('version: 1.0.0', 'version: 1.0.1'));
    const load = t.writeConfig((c) => (c.pipelines.eyes[1].quality = { minSidePx: 1000, minSharpness: 40 }));
    const report = await t.app.reload(load);
    expect(report).toMatchObject({ ok: true, appliedKeys: ['pipelines.eyes'], restartRequired: [] });
    const after = t.app.status().stages!;
    expect(after.map((s) => s.version)).toEqual(['1.0.0', '1.0.1']);
    expect(after[0].lastReload).toBeNull();
    expect(after[1].lastReload).toMatchObject({ ok: true, model: { version: '1.0.1' }, previous: { version: '1.0.0' } });
    // Every crop is now too small.
    const r = await post('?camera=kiosk');
    const regions = r.body.objects.flatMap((o: any) => Object.values(o.regions)) as { skipped?: string; notDetected?: boolean }[];
    expect(regions.filter((x) => !x.notDetected).every((x) => x.skipped === 'small')).toBe(true);
    // A renamed stage is a new pipeline shape: refused, the running one stays.
    const renamed = await t.app.reload(t.writeConfig((c) => (c.pipelines.eyes[1].name = 'iris')));
    expect(renamed.ok).toBe(false);
    expect(renamed.errors).toEqual(['pipelines.eyes: adding or removing a pipeline or stage needs a restart']);
    expect(t.app.status().stages!.map((s) => s.stage)).toEqual(['face', 'eye']);
  });
});

describe('a mirrored pipeline camera through the whole daemon', () => {
  let t: TestApp;
  let sub: Subscriber;
  let width: number;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pipeline-mirror-'));
    mkdirSync(join(dir, 'frames'));
    // What a selfie camera delivers: the scene flipped left to right (each subject's left eye on the image's left).
    await sharp(join(samples, threeFaces.file))
      .flop()
      .toFile(join(dir, 'frames', threeFaces.file));
    width = (await sharp(join(samples, threeFaces.file)).metadata()).width ?? 0;
    t = await startTestApp({
      samples: ['plastic-1.png'],
      fps: 5,
      extra: {
        pipelines: { eyes: (demoConfig('eyes') as { pipelines: { eyes: Record<string, any>[] } }).pipelines.eyes },
        cameras: { selfie: { uri: `images://${join(dir, 'frames')}`, fps: 5, pipeline: 'eyes', mirror: true } },
      },
    });
    sub = await subscribe(`mqtt://127.0.0.1:${t.app.config.mqtt.embedded.port}`, ['edge-inferd/ops-test/selfie/result']);
  }, 60_000);
  afterAll(async () => {
    await sub?.close();
    await t?.stop();
  });

  it("publishes each subject's own left and right eye (mirror: true)", async () => {
    const m = await sub.waitFor((r) => r.json?.objects?.length === threeFaces.faces.length, 30_000);
    for (const f of threeFaces.faces) {
      // The subject's box, flipped back into the unmirrored picture's coordinates.
      const o = (m.json.objects as Record<string, any>[]).find(
        (obj) => Math.abs(width - obj.box.x - obj.box.w - f.box.x) <= 2 && Math.abs(obj.box.y - f.box.y) <= 2,
      );
      expect(o, `subject ${f.subject}`).toBeDefined();
      expect([o?.regions.left.label ?? 'ND', o?.regions.right.label ?? 'ND'], `subject ${f.subject}: left, right`).toEqual([
        f.leftEye.covered ? 'ND' : f.leftEye.class,
        f.rightEye.covered ? 'ND' : f.rightEye.class,
      ]);
    }
  });
});
