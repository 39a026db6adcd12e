import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { demoModelDir, demoSamplesDir } from '../../src/paths.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';

/**
 * A model package whose labels file is a named pipe: loading the package blocks on it until the
 * test writes the labels, so "a slow model load" lasts exactly as long as the test wants.
 */
function slowModel(): { dir: string; release: () => Promise<void> } {
  const dir = join(mkdtempSync(join(tmpdir(), 'slow-model-')), 'model');
  cpSync(demoModelDir, dir, { recursive: true, filter: (src) => !src.includes('samples') });
  const manifestPath = join(dir, 'manifest.yaml');
  const manifest = parse(readFileSync(manifestPath, 'utf8')) as { labels: string[] };
  const labels = manifest.labels;
  writeFileSync(manifestPath, stringify({ ...manifest, labels: 'labels.txt' }));
  execFileSync('mkfifo', [join(dir, 'labels.txt')]);
  return { dir, release: () => writeFile(join(dir, 'labels.txt'), labels.join('\n') + '\n') };
}

describe('lifecycle of the real daemon', () => {
  it('SIGTERM while the model loads: the load finishes, nothing after it starts, exit 0', async () => {
    const model = slowModel();
    const mqttPort = await freePort();
    const d = spawnDaemon({
      deviceId: 'term-during-start',
      http: { port: await freePort() },
      mqtt: { url: 'embedded', embedded: { port: mqttPort } },
      model: { path: model.dir },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 10 } },
    });
    try {
      // The broker is the component before the model: from here on the model is loading.
      await d.waitForLog((l) => l.msg === 'embedded mqtt broker listening');
      d.proc.kill('SIGTERM');
      await d.waitForLog((l) => l.msg === 'stopping');
      expect(d.logs.some((l) => l.msg === 'model loaded')).toBe(false);
      await model.release();
      const exit = await d.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      const msgs = d.logs.map((l) => l.msg);
      // The load that was under way completes, then start() goes no further and everything stops.
      expect(msgs.indexOf('model loaded')).toBeGreaterThan(msgs.indexOf('stopping'));
      expect(d.logs.find((l) => l.msg === 'stop requested during start: not starting the rest')).toMatchObject({ next: 'pipelines' }); // the component after the model
      expect(msgs).not.toContain('running');
      expect(msgs).not.toContain('mqtt connected');
      expect(msgs.at(-1)).toBe('stopped');
      expect(d.stderr()).toBe('');
    } finally {
      await d.kill('SIGKILL');
    }
  });
});
