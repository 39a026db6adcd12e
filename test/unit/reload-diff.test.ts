import { describe, expect, it } from 'vitest';
import { describeChange, diffConfig, isLive, mergeLive } from '../../src/config/reload.js';
import type { Config } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';

const base = (): Config => loadConfig({ env: {}, defaultPath: '/nonexistent/config.yaml' });

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
    for (const p of ['log.level', 'mqtt.topics.result.qos', 'http.token', 'health.stallAfterSec', 'model.path', 'model.providers', 'cameras.tray.publish.policy', 'cameras.tray.publish.stable.k']) expect(isLive(p), p).toBe(true);
    for (const p of ['http.port', 'http.host', 'mqtt.url', 'mqtt.prefix', 'deviceId', 'cameras.door', 'cameras.demo.uri', 'cameras.demo.fps', 'cameras.publish', 'cameras.tray.publish', 'log.format', 'healthy', 'health', 'stats.intervalSec', 'commands.maxBytes']) expect(isLive(p), p).toBe(false);
  });

  it('keeps restart-required keys at their running values, so the next diff still reports them', () => {
    const running = base();
    const next = structuredClone(running);
    next.log.level = 'warn';
    next.http.port = 9999;
    const changes = diffConfig(running, next);
    const merged = mergeLive(running, changes.filter((c) => isLive(c.path)));
    expect(merged.log.level).toBe('warn');
    expect(merged.http.port).toBe(running.http.port);
    expect(diffConfig(merged, next).map((c) => c.path)).toEqual(['http.port']);
    // A removed key is removed.
    next.model.intraOpThreads = 2;
    const m2 = mergeLive(merged, diffConfig(merged, next).filter((c) => isLive(c.path)));
    expect(m2.model.intraOpThreads).toBe(2);
    const back = structuredClone(next);
    delete back.model.intraOpThreads;
    expect(mergeLive(m2, diffConfig(m2, back).filter((c) => isLive(c.path))).model).not.toHaveProperty('intraOpThreads');
  });

  it('never shows secret values', () => {
    expect(describeChange({ path: 'mqtt.password', from: 'old-secret', to: 'new-secret' })).toBe('mqtt.password (changed)');
    expect(describeChange({ path: 'http.token', from: undefined, to: 'x'.repeat(20) })).toBe('http.token (changed)');
    expect(describeChange({ path: 'log.level', from: 'info', to: 'debug' })).toBe('log.level: "info" -> "debug"');
    expect(describeChange({ path: 'cameras.door', from: undefined, to: { uri: 'rtsp://x' } })).toBe('cameras.door: (unset) -> {"uri":"rtsp://x"}');
  });
});
