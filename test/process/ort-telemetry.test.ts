import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { CLI, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';

/**
 * ONNX Runtime 1.29+ keeps a device id and an event queue for Microsoft's collector under
 * ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ from the first session of a process, unless
 * ORT_DISABLE_TELEMETRY is set. Every way edge-inferd loads a model, run with a fresh HOME and an
 * environment without the variable, must leave no trace of it; the operator's opt-in brings it back.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'ort-home-'));
  dirs.push(home);
  return home;
}

/**
 * ORT 1.30 keeps its telemetry off by itself on a CI machine: it looks for these variables (the
 * strings are in libonnxruntime.so). A device has none of them, so neither does the daemon here.
 */
const CI_VARS = [
  'CI',
  'TF_BUILD',
  'GITHUB_ACTIONS',
  'GITLAB_CI',
  'CIRCLECI',
  'TRAVIS',
  'JENKINS_URL',
  'CODEBUILD_BUILD_ID',
  'BUILDKITE',
  'TEAMCITY_VERSION',
  'APPVEYOR',
  'BITBUCKET_BUILD_NUMBER',
];

/**
 * The environment of a device's new user: this HOME, no XDG cache folder, no CI marker, no
 * telemetry variable. Unset as `undefined` (spawn leaves those out), so that spawnDaemon's own
 * merge with process.env cannot bring them back.
 */
function cleanEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const unset = Object.fromEntries([...CI_VARS, 'XDG_CACHE_HOME', 'ORT_DISABLE_TELEMETRY'].map((v) => [v, undefined]));
  return { ...process.env, ...unset, HOME: home, ...extra };
}

/** Every path under `dir` (relative), to show what was written when the assertion fails. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

const onnxruntimeFolders = (home: string) => tree(home).filter((p) => p.split('/').includes('.onnxruntime'));
const sample = join(demoSamplesDir, readdirSync(demoSamplesDir).find((f) => f.endsWith('.png'))!);

describe('ONNX Runtime telemetry', () => {
  let mosq: Mosquitto | undefined;
  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => mosq?.stop());

  it('the daemon classifies frames in its inference worker and leaves no .onnxruntime folder in HOME', async (ctx) => {
    if (!mosq) return ctx.skip();
    const home = freshHome();
    const sub = await subscribe(mosq.url, 'edge-inferd/telemetry-1/#');
    const d = spawnDaemon(
      {
        deviceId: 'telemetry-1',
        http: { port: await freePort() },
        mqtt: { url: mosq.url },
        cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 25 } },
      },
      { env: cleanEnv(home) },
    );
    try {
      const results = () => sub.messages.filter((m) => m.topic === 'edge-inferd/telemetry-1/tray/result').length;
      await sub.waitFor(() => results() >= 3, 20_000);
      expect(await d.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    } finally {
      await d.kill('SIGKILL');
      await sub.close();
    }
    expect(onnxruntimeFolders(home), tree(home).join('\n')).toEqual([]);
  });

  it('nor do the one-shot commands (infer, build-engine, probe)', () => {
    const home = freshHome();
    const infer = spawnSync(process.execPath, [CLI, 'infer', sample], { encoding: 'utf8', env: cleanEnv(home) });
    expect(infer.status, infer.stderr).toBe(0);
    expect(JSON.parse(infer.stdout.split('\n')[0])).toMatchObject({ label: expect.any(String) });
    // No TensorRT here: build-engine fails, after ORT has been initialised to find that out.
    spawnSync(process.execPath, [CLI, 'build-engine'], { encoding: 'utf8', env: cleanEnv(home) });
    const probe = spawnSync(process.execPath, [CLI, 'probe', '--json'], { encoding: 'utf8', env: cleanEnv(home) });
    expect(probe.stdout).toContain('"onnxruntime"');
    expect(onnxruntimeFolders(home), tree(home).join('\n')).toEqual([]);
  });

  it('ORT_DISABLE_TELEMETRY=0 is the opt-in: ORT then keeps its device id in HOME', () => {
    const home = freshHome();
    const infer = spawnSync(process.execPath, [CLI, 'infer', sample], {
      encoding: 'utf8',
      env: cleanEnv(home, { ORT_DISABLE_TELEMETRY: '0' }),
    });
    expect(infer.status, infer.stderr).toBe(0);
    expect(tree(home)).toContain('.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid');
  });
});
