import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareOutputs, EXIT_NO_GPU, gpuSelftest, nvidiaDevices } from '../../src/inference/gpu-selftest.js';
import { demoModelDir } from '../../src/paths.js';
import { CLI } from '../helpers/daemon.js';

/**
 * `edge-inferd probe --gpu-selftest`. This machine has no GPU: the command's "no GPU" verdict and
 * the CPU reference are checked for real; the comparison path (a second provider against the CPU
 * reference, frame by frame) runs with the CPU standing in as the provider under test, on a /dev
 * laid out by the test. TensorRT's build-then-cache-hit step needs a GPU and is not run here.
 */

const dir = mkdtempSync(join(tmpdir(), 'selftest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeDev(nodes: string[]): string {
  const dev = mkdtempSync(join(dir, 'dev-'));
  for (const n of nodes) writeFileSync(join(dev, n), '');
  return dev;
}

describe('GPU self-test', () => {
  it('without a GPU: says so, checks the CPU, and exits 3', () => {
    const hasGpu = nvidiaDevices().length > 0;
    const json = spawnSync(process.execPath, [CLI, 'probe', '--gpu-selftest', '--json', '--frames', '3'], { encoding: 'utf8' });
    const r = JSON.parse(json.stdout);
    if (hasGpu) {
      // A machine with a GPU gets a pass or a fail, never "no GPU".
      expect([0, 1]).toContain(json.status);
      expect(r.verdict).not.toBe('no-gpu');
      return;
    }
    expect(json.status, json.stderr).toBe(EXIT_NO_GPU);
    expect(r).toMatchObject({
      model: { dir: demoModelDir, name: 'demo-recycling-colour' },
      frames: 3,
      tolerance: { atol: 1e-3, rtol: 1e-2 },
      gpuDevices: [],
      verdict: 'no-gpu',
      exitCode: 3,
    });
    expect(r.providers.map((p: { provider: string; verdict: string }) => [p.provider, p.verdict])).toEqual([
      ['cpu', 'pass'],
      ['tensorrt', 'absent'],
      ['cuda', 'absent'],
    ]);
    expect(r.providers[0].msPerFrame).toBeGreaterThan(0);
    expect(r.providers[1].detail).toMatch(/^no NVIDIA GPU on this machine \(no \/dev\/nvidia\*, \/dev\/nvmap or \/dev\/nvhost-\*\)/);

    const text = spawnSync(process.execPath, [CLI, 'probe', '--gpu-selftest', '--model', demoModelDir, '--frames', '2'], {
      encoding: 'utf8',
    });
    expect(text.status).toBe(EXIT_NO_GPU);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `GPU self-test: demo-recycling-colour 1.0.0 (${demoModelDir}), 2 frames, tolerance |gpu - cpu| <= 0.001 + 0.01 * |cpu|`,
    );
    expect(lines[1]).toMatch(/^ {2}PASS {3}cpu: loaded in \d+ ms, \d+\.\d\d ms\/frame \(the reference\)$/);
    expect(lines[2]).toMatch(/^ {2}ABSENT tensorrt: no NVIDIA GPU/);
    expect(lines[3]).toMatch(/^ {2}ABSENT cuda: no NVIDIA GPU/);
    expect(lines[4]).toBe('verdict: no GPU on this machine; the CPU provider was checked (exit 3)');
  });

  it('compares a provider with the CPU reference frame by frame (the CPU standing in for the GPU)', async () => {
    const r = await gpuSelftest({ modelDir: demoModelDir, frames: 4, devDir: fakeDev(['nvidia0', 'nvidiactl']), gpuProviders: ['cpu'] });
    expect(r.gpuDevices).toHaveLength(2);
    expect(r.providers).toHaveLength(2);
    // The same provider on the same frames gives the same numbers: difference 0, within tolerance.
    expect(r.providers[1]).toMatchObject({ provider: 'cpu', verdict: 'pass', maxAbsDiff: 0, withinTolerance: true });
    expect(r.providers[1].detail).toMatch(/^loaded in \d+ ms, \d+\.\d\d ms\/frame, max \|diff\| vs CPU 0\.0e\+0 within tolerance$/);
    expect(r).toMatchObject({ verdict: 'pass', exitCode: 0 });
  });

  it('a GPU with no GPU provider installed is a failure (exit 1), naming the missing library', async () => {
    const r = await gpuSelftest({ modelDir: demoModelDir, frames: 1, devDir: fakeDev(['nvidia0']) });
    expect(r.providers.slice(1).map((p) => [p.provider, p.verdict])).toEqual([
      ['tensorrt', 'absent'],
      ['cuda', 'absent'],
    ]);
    expect(r.providers[1].detail).toMatch(
      /libonnxruntime_providers_tensorrt\.so is not installed \(x86_64: ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install\.js/,
    );
    expect(r).toMatchObject({ verdict: 'fail', exitCode: 1 });
  });

  it('the tolerance: |gpu - cpu| <= 1e-3 + 1e-2 * |cpu| for every element; NaN and a length change fail', () => {
    expect(compareOutputs([1, 100, 0], [1.0005, 100.9, -0.0009])).toEqual({ maxAbsDiff: expect.closeTo(0.9, 9), within: true });
    expect(compareOutputs([0, 100], [0.0011, 100])).toEqual({ maxAbsDiff: expect.closeTo(0.0011, 9), within: false });
    expect(compareOutputs([100], [101.002]).within).toBe(false);
    expect(compareOutputs([1, 2], [1, NaN]).within).toBe(false);
    expect(compareOutputs([1, 2], [1])).toEqual({ maxAbsDiff: Infinity, within: false });
  });

  it('--frames must be a whole number in range', () => {
    const r = spawnSync(process.execPath, [CLI, 'probe', '--gpu-selftest', '--frames', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('edge-inferd probe: --frames must be a whole number from 1 to 10000 (got "0")\n');
  });
});
