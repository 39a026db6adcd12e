import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureAvailable } from '../../src/capture/native.js';
import { formatProbe, probe } from '../../src/probe.js';
import { CLI } from '../helpers/daemon.js';

/** `edge-inferd probe`: the real machine's answers, plus cameras from a /dev laid out by the test. */

const dir = mkdtempSync(join(tmpdir(), 'probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('edge-inferd probe', () => {
  it('lists cameras by id, NVIDIA device nodes, providers, memory and the config verdict', async () => {
    const dev = join(dir, 'dev');
    const byId = join(dev, 'v4l', 'by-id');
    mkdirSync(byId, { recursive: true });
    for (const n of ['video0', 'video1', 'nvidia0', 'nvidiactl', 'null']) writeFileSync(join(dev, n), '');
    symlinkSync('../../video0', join(byId, 'usb-Logitech_C920_1234-video-index0'));
    const r = await probe({ v4lByIdDir: byId, devDir: dev, configFile: join(dir, 'missing.yaml') });
    expect(r.cameras).toEqual({
      byId: [{ path: join(byId, 'usb-Logitech_C920_1234-video-index0'), device: join(dev, 'video0') }],
      video: [join(dev, 'video0'), join(dev, 'video1')],
    });
    expect(r.gpu.nvidiaDevices).toEqual([join(dev, 'nvidia0'), join(dev, 'nvidiactl')]);
    expect(r.onnxruntime.providers.map((p) => p.provider)).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(r.onnxruntime.providers.find((p) => p.provider === 'cpu')).toEqual({ provider: 'cpu', available: true });
    expect(r.gstreamer.capture).toBe(captureAvailable().ok);
    expect(r.memory.totalMb).toBeGreaterThan(0);
    expect(r.config).toEqual({
      ok: false,
      source: join(dir, 'missing.yaml'),
      problems: [`${join(dir, 'missing.yaml')}: cannot read config: file not found`],
    });
    const text = formatProbe(r);
    expect(text).toContain(`  ok  v4l2://${join(byId, 'usb-Logitech_C920_1234-video-index0')}  (${join(dev, 'video0')})`);
    expect(text).toContain('  ok  cpu\n');
    expect(text).toContain(`  NO  ${join(dir, 'missing.yaml')}: cannot read config: file not found`);
  });

  it('the command prints JSON with --json, and exits 1 on an invalid config', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'deviceId: kiosk-7\n');
    const ok = spawnSync(process.execPath, [CLI, 'probe', '--json', '--config', good], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect(report.config).toMatchObject({ ok: true, source: good });
    expect(report.config.summary).toMatch(/^device kiosk-7, cameras: demo, /);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'http:\n  host: 0.0.0.0\n');
    const no = spawnSync(process.execPath, [CLI, 'probe', bad], { encoding: 'utf8' });
    expect(no.status).toBe(1);
    expect(no.stdout).toMatch(/^GStreamer\n/);
    expect(no.stdout).toContain('  NO  http.token: required when http.host is not a loopback address');
  });
});
