import { describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { describeChange, diffConfig, matchesKey, mergeLive } from '../../src/config/reload.js';
import type { Config } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';

const base = (): Config => loadConfig({ env: {}, defaultPath: '/nonexistent/config.yaml' });

/** The live keys are what the App's components declare: built (not started) on the demo config plus a camera `tray`. */
function liveKeys(): (path: string) => boolean {
  const config = base();
  config.cameras.tray = structuredClone(config.cameras.demo);
  const app = new App(config, createLogger({ level: 'silent', format: 'json', destination: { write: () => undefined } }), {
    notify: () => false,
  });
  return (path) => app.isLive(path);
}
const isLive = liveKeys();

describe('config reload diff', () => {
  it('lists leaf changes by key path, ignoring where the config came from', () => {
    const a = base();
    const b = structuredClone(a);
    b.source = '/etc/edge-inferd/config.yaml';
    expect(diffConfig(a, b)).toEqual([]);
    b.log.level = 'debug';
    b.cameras.door = { ...structuredClone(b.cameras.demo), uri: 'rtsp://cam/door' };
    b.cameras.demo.fps = 5;
    b.model.providers = ['cuda', 'cpu'];
    expect(diffConfig(a, b).map((c) => c.path)).toEqual(['cameras.demo.fps', 'cameras.door', 'log.level', 'model.providers']);
  });

  it('classifies live keys and restart-required ones', () => {
    const live = [
      'log.level',
      'mqtt.topics.result.qos',
      'mqtt.topics.event.retain',
      'mqtt.topics.stats.qos',
      'http.token',
      'http.tokenFile',
      'health.stallAfterSec',
      'health.engineBuildTimeoutSec',
      'health.deviceSampleSec',
    ];
    live.push(
      'model.path',
      'model.providers',
      'model.intraOpThreads',
      'model.cacheDir',
      'cameras.tray.publish.policy',
      'cameras.tray.publish.stable.k',
      'cameras.demo.publish.events',
    );
    for (const p of live) expect(isLive(p), p).toBe(true);
    const restart = [
      'http.port',
      'http.host',
      'mqtt.url',
      'mqtt.prefix',
      'mqtt.topics.other.qos',
      'deviceId',
      'cameras.door',
      'cameras.door.publish.policy',
      'cameras.demo.uri',
      'cameras.demo.fps',
    ];
    restart.push(
      'cameras.publish',
      'cameras.tray.publish',
      'log.format',
      'healthy',
      'health',
      'health.other',
      'stats.intervalSec',
      'commands.maxBytes',
      'model.inferMaxBytes',
    );
    for (const p of restart) expect(isLive(p), p).toBe(false);
  });

  it('matches key patterns: `*` is one key, a trailing `*` any keys below', () => {
    expect(matchesKey('cameras.*.publish.*', 'cameras.tray.publish.stable.k')).toBe(true);
    expect(matchesKey('cameras.*.publish.*', 'cameras.tray.publish')).toBe(false);
    expect(matchesKey('cameras.*.fps', 'cameras.tray.fps')).toBe(true);
    expect(matchesKey('cameras.*.fps', 'cameras.tray.fps.x')).toBe(false);
    expect(matchesKey('log.level', 'log.levels')).toBe(false);
  });

  it('keeps restart-required keys at their running values, so the next diff still reports them', () => {
    const running = base();
    const next = structuredClone(running);
    next.log.level = 'warn';
    next.http.port = 9999;
    const changes = diffConfig(running, next);
    const merged = mergeLive(
      running,
      changes.filter((c) => isLive(c.path)),
    );
    expect(merged.log.level).toBe('warn');
    expect(merged.http.port).toBe(running.http.port);
    expect(diffConfig(merged, next).map((c) => c.path)).toEqual(['http.port']);
    // A removed key is removed.
    next.model.intraOpThreads = 2;
    const m2 = mergeLive(
      merged,
      diffConfig(merged, next).filter((c) => isLive(c.path)),
    );
    expect(m2.model.intraOpThreads).toBe(2);
    const back = structuredClone(next);
    delete back.model.intraOpThreads;
    expect(
      mergeLive(
        m2,
        diffConfig(m2, back).filter((c) => isLive(c.path)),
      ).model,
    ).not.toHaveProperty('intraOpThreads');
  });

  it('never shows secret values', () => {
    expect(describeChange({ path: 'mqtt.password', from: 'old-secret', to: 'new-secret' })).toBe('mqtt.password (changed)');
    expect(describeChange({ path: 'http.token', from: undefined, to: 'x'.repeat(20) })).toBe('http.token (changed)');
    expect(describeChange({ path: 'log.level', from: 'info', to: 'debug' })).toBe('log.level: "info" -> "debug"');
    expect(describeChange({ path: 'cameras.door', from: undefined, to: { uri: 'rtsp://x' } })).toBe(
      'cameras.door: (unset) -> {"uri":"rtsp://x"}',
    );
  });
});
