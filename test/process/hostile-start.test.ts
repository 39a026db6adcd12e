import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GraphBuilder, int } from '../../scripts/onnx/builder.js';
import { demoModelDir, demoSamplesDir } from '../../src/paths.js';
import { spawnDaemon, runCli } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';

/** The real CLI and daemon against bad files and a stop at the worst moment: exit codes as the README says, no abort. */

const EX_CONFIG = 78;
const dir = mkdtempSync(join(tmpdir(), 'hostile-start-'));
let n = 0;

/** The CLI with a state directory of its own per run. */
const cliIn = (args: string[]) => runCli(args, { env: { STATE_DIRECTORY: mkdtempSync(join(dir, 'state-')) } });

const BOMB = [
  'a: &a [x, x, x, x, x, x, x, x, x]',
  ...['b', 'c', 'd', 'e', 'f'].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`),
].join('\n');

function modelCopy(): string {
  const pkg = join(dir, `pkg-${n++}`);
  cpSync(demoModelDir, pkg, { recursive: true, filter: (src) => !src.includes('samples') });
  return pkg;
}

/** The demo package with its model.onnx replaced (and the manifest's sha256 made to match, so ONNX Runtime is what refuses it). */
function brokenModel(bytes: Uint8Array): string {
  const pkg = modelCopy();
  writeFileSync(join(pkg, 'model.onnx'), bytes);
  const manifest = readFileSync(join(pkg, 'manifest.yaml'), 'utf8').replace(
    /^sha256: .*$/m,
    `sha256: ${createHash('sha256').update(bytes).digest('hex')}`,
  );
  writeFileSync(join(pkg, 'manifest.yaml'), manifest);
  return pkg;
}

describe('row 13: a YAML alias bomb, exit codes per the README', () => {
  const bombFile = join(dir, 'bomb.yaml');
  writeFileSync(bombFile, `deviceId: bomb\n${BOMB}\n`);

  it('check-config exits 1 naming the file and line', async () => {
    const r = await cliIn(['check-config', bombFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bombFile}:3: YAML: aliases expand past 100 nodes`);
  });

  it('run exits 78 (EX_CONFIG) naming the file and line', async () => {
    const r = await cliIn(['run', '--config', bombFile]);
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain(`${bombFile}:3: YAML: aliases expand past 100 nodes`);
  });

  it('a bomb in the manifest at SIGHUP: the reload fails with MODEL_MANIFEST and the daemon keeps its model', async () => {
    const pkg = modelCopy();
    const d = spawnDaemon({
      deviceId: 'bomb-hup',
      http: { enabled: false },
      mqtt: { url: 'embedded', embedded: { port: await freePort() } },
      model: { path: pkg, intraOpThreads: 1 },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 2 } },
    });
    try {
      await d.waitForLog((l) => l.msg === 'running');
      writeFileSync(join(pkg, 'manifest.yaml'), readFileSync(join(pkg, 'manifest.yaml'), 'utf8') + BOMB + '\n');
      d.proc.kill('SIGHUP');
      const failed = await d.waitForLog((l) => l.msg === 'model reload failed; keeping the current model');
      expect(failed.code).toBe('MODEL_MANIFEST');
      expect(String(failed.err)).toMatch(/manifest\.yaml:\d+: YAML: aliases expand past 100 nodes/);
    } finally {
      await d.kill('SIGKILL');
    }
  });
});

describe('row 15: a model.onnx that is not a model', () => {
  it.each([
    ['truncated', () => readFileSync(join(demoModelDir, 'model.onnx')).subarray(0, 100)],
    ['empty', () => new Uint8Array(0)],
    ['random', () => randomBytes(4096)],
  ])('%s: infer exits 1, and the first thing said is ONNX Runtime refusing the model', async (_what, bytes) => {
    const pkg = brokenModel(bytes());
    const r = await cliIn(['infer', '--model', pkg, join(demoSamplesDir, readdirFirst())]);
    expect(r.code).toBe(1);
    const first = r.stderr.split('\n')[0];
    expect(first).toMatch(new RegExp(`^edge-inferd infer: ${pkg}/model\\.onnx: ONNX Runtime cannot load the model: `));
    // The cause, not the providers that are merely absent, comes first; those are named at the end, short.
    const cause = first.slice(first.indexOf('cannot load the model: '));
    expect(cause.indexOf('not installed')).toSatisfy((i: number) => i < 0 || i > cause.indexOf('cannot load the model: ') + 30);
    expect(cause).not.toMatch(/^cannot load the model: (tensorrt|cuda)/);
    expect(first.length).toBeLessThan(600);
  });

  it('a model.path that does not exist: run exits 78', async () => {
    const cfg = join(dir, 'nomodel.yaml');
    writeFileSync(cfg, stringify({ deviceId: 'nomodel', http: { enabled: false }, model: { path: join(dir, 'no-such-model') } }));
    const r = await cliIn(['run', '--config', cfg]);
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain(`model.path: cannot read ${join(dir, 'no-such-model')}: no such folder`);
  });
});

function readdirFirst(): string {
  return 'cardboard-1.png';
}

/**
 * A model ONNX Runtime takes a second or more to build a session for (thousands of small nodes go
 * through every graph optimisation), while the file stays small.
 */
function slowSessionModel(nodes: number): string {
  const g = new GraphBuilder('slow_session');
  let x = g.op('Flatten', [g.input('images', [1, 3, 8, 8])], { axis: int(1) });
  for (let i = 0; i < nodes; i++)
    x = g.op(i % 2 ? 'Mul' : 'Add', [x, g.floatInit(`w${i}`, [1, 192], new Float32Array(192).fill(i % 2 ? 1 : 0.001))]);
  g.op('Gemm', [x, g.floatInit('fc', [6, 192], new Float32Array(6 * 192).fill(0.01))], { transB: int(1) }, 'logits');
  g.output('logits', [1, 6]);
  const bytes = g.build();
  const pkg = join(dir, `slow-${n++}`);
  cpSync(demoModelDir, pkg, { recursive: true, filter: (src) => !src.includes('samples') });
  writeFileSync(join(pkg, 'model.onnx'), bytes);
  const manifest = readFileSync(join(pkg, 'manifest.yaml'), 'utf8')
    .replace(/^sha256: .*$/m, `sha256: ${createHash('sha256').update(bytes).digest('hex')}`)
    .replace(/^input:\n( {2}.*\n)+/m, 'input: {name: images, width: 8, height: 8}\n')
    .replace(/^output:\n( {2}.*\n)+/m, 'output: {name: logits}\n');
  writeFileSync(join(pkg, 'manifest.yaml'), manifest);
  return pkg;
}

describe('row 1: stopping while ONNX Runtime builds the session', () => {
  it('SIGTERM, then a second signal while the session is being created: the process ends by the signal, never an abort', async () => {
    const pkg = slowSessionModel(12_000);
    const d = spawnDaemon({
      deviceId: 'term-in-session',
      log: { level: 'debug' },
      http: { enabled: false },
      mqtt: { url: 'embedded', embedded: { port: await freePort() } },
      model: { path: pkg, intraOpThreads: 1 },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 2 } },
    });
    try {
      // Logged by the worker just before the synchronous CPU session creation starts (without the
      // GPU libraries, as in CI, the cuda provider is refused just before it too).
      const cpuNext = (l: Record<string, unknown>) =>
        (l.msg === 'creating the ONNX Runtime session' && l.provider === 'cpu') ||
        (l.msg === 'execution provider unavailable, trying the next' && l.provider === 'cuda');
      await d.waitForLog(cpuNext, 30_000);
      d.proc.kill('SIGTERM');
      await d.waitForLog((l) => l.msg === 'stopping');
      d.proc.kill('SIGINT');
      const exit = await d.exited;
      // The session was still being built: the second signal came before it was done.
      expect(d.logs.map((l) => l.msg)).not.toContain('execution provider loaded');
      expect(d.stderr()).not.toContain('terminate called');
      expect(exit).toEqual({ code: null, signal: 'SIGINT' });
    } finally {
      await d.kill('SIGKILL');
    }
  });
});
