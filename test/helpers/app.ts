import { copyFileSync, cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { App, type AppDeps } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { demoModelDir, demoSamplesDir } from '../../src/paths.js';
import { freePort } from './ports.js';

/**
 * The real App in the test process, from a real config file: images camera on a folder the test
 * owns (so it can take the images away), the demo model, an embedded broker on a free port, HTTP on
 * a free port. Log lines are collected as parsed JSON.
 */
export interface TestApp {
  app: App;
  dir: string;
  imagesDir: string;
  configPath: string;
  base: string;
  logs: Record<string, any>[];
  /** Rewrites the config file (for reload tests) and returns a loader for it. */
  writeConfig(patch: (c: Record<string, any>) => void): () => Config;
  stop(): Promise<void>;
}

export function copySamples(dir: string, names: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const n of names) copyFileSync(join(demoSamplesDir, n), join(dir, n));
}

export function copyDemoModel(dir: string): string {
  cpSync(demoModelDir, dir, { recursive: true, filter: (src) => !src.includes('samples') });
  return dir;
}

export async function startTestApp(opts: {
  samples: string[];
  fps?: number;
  extra?: Record<string, any>;
  app?: AppDeps;
}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-inferd-app-'));
  const imagesDir = join(dir, 'images');
  copySamples(imagesDir, opts.samples);
  const raw: Record<string, any> = {
    deviceId: 'ops-test',
    cameras: { tray: { uri: `images://${imagesDir}`, fps: opts.fps ?? 10 } },
    mqtt: { url: 'embedded', embedded: { port: await freePort() } },
    http: { port: await freePort() },
    log: { format: 'json', level: 'info' },
    // Its own journal: test files run side by side, and the default path is one per user.
    journal: { path: join(dir, 'journal.sqlite') },
    ...opts.extra,
  };
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(raw));
  const logs: Record<string, any>[] = [];
  const log = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void logs.push(JSON.parse(s)) } });
  const config = loadConfig({ file: configPath, env: {} });
  const app = new App(config, log, { notify: () => false, ...opts.app });
  await app.start();
  return {
    app,
    dir,
    imagesDir,
    configPath,
    base: `http://127.0.0.1:${app.httpPort}`,
    logs,
    writeConfig(patch) {
      patch(raw);
      writeFileSync(configPath, stringify(raw));
      return () => loadConfig({ file: configPath, env: {} });
    },
    stop: () => app.stop(),
  };
}

/** The shared polling helper (test/helpers/wait.ts), still importable from here. */
export { waitUntil } from './wait.js';
