import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IRIS } from '../../scripts/make-eyes-demo.js';
import { demoConfig } from '../../src/config/demo.js';
import { App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { eyesDemoDir } from '../../src/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { sha256, solidPng, tarFolder } from '../helpers/rollout.js';

/**
 * cmd/model/install and cmd/model/rollback aimed at a pipeline stage (`stage: "eyes/eye"`) on the
 * real App running the eyes demo pipeline: the same download, sha256, manifest and self-check as
 * for `model`, the stage's own model swapped (the face stage and `model` untouched), its state on
 * model/state/eyes/eye, kept over a restart, rolled back on its own. The eye packages are the demo's
 * eye classifier with renamed labels, so whose answer a crop got is known; self-check images are
 * solid iris colours, which it classifies as their class.
 */

const EYE = join(eyesDemoDir, 'eye-condition');
const LABELS = ['cataract', 'conjunctivitis', 'healthy', 'stye'] as const;

let t: TestApp;
let sub: Subscriber;
let pub: MqttClient;
let work: string;
let base: string;
let seq = 0;

/** The demo eye classifier as package `version`, its labels prefixed; self-check images filed under `selftest(label)`. */
async function eyePackage(version: string, opts: { labels?: string[]; selftest?: boolean } = {}) {
  const dir = join(work, version);
  cpSync(EYE, dir, { recursive: true });
  const labels = opts.labels ?? LABELS.map((l) => `${version}-${l}`);
  const m = readFileSync(join(dir, 'manifest.yaml'), 'utf8')
    .replace('name: demo-eyes-condition', 'name: eye-condition')
    .replace('version: 1.0.0', `version: ${version}`)
    .replace(`labels: [${LABELS.join(', ')}]`, `labels: [${labels.join(', ')}]`);
  writeFileSync(join(dir, 'manifest.yaml'), m);
  if (opts.selftest !== false) {
    for (const [i, l] of LABELS.entries()) {
      // Filed under the label the package should give that iris colour.
      mkdirSync(join(dir, 'selftest', `${version}-${l}`), { recursive: true });
      writeFileSync(join(dir, 'selftest', `${version}-${l}`, `${i}.png`), await solidPng([...IRIS[l]], 32));
    }
  }
  const archive = tarFolder(dir, join(work, `${version}.tgz`));
  return { url: `file://${join(work, `${version}.tgz`)}`, sha256: sha256(archive), name: 'eye-condition', version };
}

async function command(name: 'install' | 'rollback', args: Record<string, unknown> = {}) {
  const id = `s${++seq}`;
  await pub.publishAsync(`${base}/cmd/model/${name}`, JSON.stringify({ id, ...args }), { qos: 1 });
  return (await sub.waitFor((m) => m.topic === `${base}/cmd/model/${name}/response` && m.json?.requestId === id, 60_000)).json;
}

const stageVersions = (app: App) => app.status().stages!.map((s) => `${s.stage} ${s.name} ${s.version}`);

async function eyeLabels(): Promise<string[]> {
  const frames = join(eyesDemoDir, 'samples');
  const answers = JSON.parse(readFileSync(join(frames, 'answers.json'), 'utf8')) as { frames: { file: string }[] };
  const res = await fetch(`${t.base}/infer?camera=kiosk`, { method: 'POST', body: readFileSync(join(frames, answers.frames[0].file)) });
  const body = (await res.json()) as { objects: { regions: Record<string, { label?: string }> }[] };
  return body.objects.flatMap((o) => Object.values(o.regions).flatMap((r) => (r.label ? [r.label] : [])));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'rollout-stage-'));
  const eyes = demoConfig('eyes') as { pipelines: Record<string, unknown>; cameras: Record<string, unknown> };
  t = await startTestApp({
    samples: ['plastic-1.png'],
    extra: {
      deviceId: 'kiosk-s',
      pipelines: eyes.pipelines,
      cameras: eyes.cameras,
      // The packages are file:// archives in the test's folder: allowed only below fileRoot.
      model: { rollout: { fileRoot: work } },
    },
  });
  const url = `mqtt://127.0.0.1:${t.app.config.mqtt.embedded.port}`;
  base = 'edge-inferd/kiosk-s';
  sub = await subscribe(url, [`${base}/cmd/+/+/response`, `${base}/model/state/#`]);
  pub = await mqtt.connectAsync(url);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await sub?.close();
  await pub?.endAsync();
});

describe('rollout to a pipeline stage', () => {
  it('installs a package on stage eyes/eye: checked, self-checked, swapped alone, its state on model/state/eyes/eye', async () => {
    expect(stageVersions(t.app)).toEqual(['face demo-eyes-face 1.0.0', 'eye demo-eyes-condition 1.0.0']);
    expect((await eyeLabels()).every((l) => (LABELS as readonly string[]).includes(l))).toBe(true);
    const res = await command('install', { ...(await eyePackage('2.0.0')), stage: 'eyes/eye' });
    expect(res.ok, JSON.stringify(res)).toBe(true);
    expect(res.result).toMatchObject({
      phase: 'active',
      current: { name: 'eye-condition', version: '2.0.0' },
      selftest: { mode: 'images', checked: 4 },
    });
    expect(stageVersions(t.app)).toEqual(['face demo-eyes-face 1.0.0', 'eye eye-condition 2.0.0']);
    const labels = await eyeLabels();
    expect(labels.length).toBeGreaterThan(0);
    expect(labels.every((l) => l.startsWith('2.0.0-'))).toBe(true);
    await sub.waitFor((m) => m.topic === `${base}/model/state/eyes/eye` && m.json.phase === 'active');
    expect(t.app.status().stageRollouts?.['eyes/eye']).toMatchObject({ phase: 'active', current: { version: '2.0.0' } });
  });

  it('refuses a package whose self-check fails, one of the wrong kind for the stage, and a stage that does not run', async () => {
    // Labels in another order: the self-check images get the wrong answers.
    const swapped = await eyePackage('2.0.1', { labels: ['2.0.1-stye', '2.0.1-healthy', '2.0.1-conjunctivitis', '2.0.1-cataract'] });
    const bad = await command('install', { ...swapped, stage: 'eyes/eye' });
    expect(bad.ok).toBe(false);
    expect(bad.error.code).toBe('MODEL_REJECTED');
    // The face detector is no crop classifier.
    const faceDir = join(work, 'face');
    cpSync(join(eyesDemoDir, 'face'), faceDir, { recursive: true });
    const faceTar = tarFolder(faceDir, join(work, 'face.tgz'));
    const wrongKind = await command('install', {
      url: `file://${join(work, 'face.tgz')}`,
      sha256: sha256(faceTar),
      name: 'demo-eyes-face',
      version: '1.0.0',
      stage: 'eyes/eye',
    });
    expect(wrongKind.ok).toBe(false);
    expect(wrongKind.error.message).toMatch(
      /STAGE_MODEL: stage eyes\/eye classifies crops: its model must be an ONNX classify model \(this one: detect\)/,
    );
    const unknown = await command('install', { ...(await eyePackage('2.0.2')), stage: 'eyes/iris' });
    expect(unknown.ok).toBe(false);
    expect(unknown.error).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'stage: no running pipeline stage "eyes/iris" (running: eyes/face, eyes/eye)',
    });
    expect(stageVersions(t.app)).toEqual(['face demo-eyes-face 1.0.0', 'eye eye-condition 2.0.0']);
  });

  it('the installed stage model survives a restart; a rollback on the stage returns to the configured one', async () => {
    await t.stop();
    const logs: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void logs.push(JSON.parse(s)) } });
    const app = new App(loadConfig({ file: t.configPath, env: {} }), log, { notify: () => false });
    await app.start();
    t = { ...t, app, base: `http://127.0.0.1:${app.httpPort}`, stop: () => app.stop() };
    expect(stageVersions(app)).toEqual(['face demo-eyes-face 1.0.0', 'eye eye-condition 2.0.0']);
    await sub.close();
    const url = `mqtt://127.0.0.1:${app.config.mqtt.embedded.port}`;
    sub = await subscribe(url, [`${base}/cmd/+/+/response`, `${base}/model/state/#`]);
    await pub.endAsync();
    pub = await mqtt.connectAsync(url);
    const res = await command('rollback', { stage: 'eyes/eye' });
    expect(res.ok, JSON.stringify(res)).toBe(true);
    expect(res.result).toMatchObject({ phase: 'rolledback', current: { name: 'demo-eyes-condition', version: '1.0.0' } });
    expect(stageVersions(app)).toEqual(['face demo-eyes-face 1.0.0', 'eye demo-eyes-condition 1.0.0']);
  });
});
