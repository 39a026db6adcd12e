import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

/** The real daemon, spawned from the built bin, end to end: demo images -> ONNX -> MQTT -> health. */

const samples = readdirSync(demoSamplesDir).filter((f) => f.endsWith('.png'));
const expectedLabel = (name: string) => name.split('-')[0];

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
}

function demoConfig(deviceId: string, httpPort: number, mqtt: Record<string, unknown>) {
  return { deviceId, http: { port: httpPort }, mqtt, cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 25 } } };
}

describe('daemon against a real Mosquitto', () => {
  let mosq: Mosquitto | undefined;
  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => mosq?.stop());

  it('publishes birth, the right label for every sample, turns ready, and `stopped` on SIGTERM', async (ctx) => {
    if (!mosq) return ctx.skip();
    const httpPort = await freePort();
    const sub = await subscribe(mosq.url, 'edge-inferd/e2e-1/#');
    const t0 = Date.now();
    const d = spawnDaemon(demoConfig('e2e-1', httpPort, { url: mosq.url }));
    try {
      const birth = await sub.waitFor((m) => m.topic === 'edge-inferd/e2e-1/status' && m.json?.state === 'online');
      expect(birth.json).toMatchObject({
        v: 1,
        deviceId: 'e2e-1',
        model: { name: 'demo-recycling-colour' },
        provider: 'cpu',
        cameras: ['tray'],
      });

      const seen = new Map<string, string>();
      await sub.waitFor((m) => {
        if (m.topic === 'edge-inferd/e2e-1/tray/result') seen.set(m.json.frame.name, m.json.label);
        return samples.every((s) => seen.has(s));
      }, 20_000);
      const first = sub.messages.find((m) => m.topic.endsWith('/result'))!;
      console.log(`first result ${first.atMs - t0} ms after spawn`);
      for (const s of samples) expect(seen.get(s), s).toBe(expectedLabel(s));

      const results = sub.messages.filter((m) => m.topic.endsWith('/result')).map((m) => m.json);
      expect(results.map((r) => r.seq)).toEqual(results.map((_, i) => i + 1));
      expect(new Set(results.map((r) => r.id)).size).toBe(results.length);
      expect(results[0]).toMatchObject({
        v: 1,
        camera: 'tray',
        deviceId: 'e2e-1',
        task: 'classify',
        model: { name: 'demo-recycling-colour', version: '1.0.0' },
      });
      expect(results[0].top).toHaveLength(3);
      expect(results[0].score).toBe(results[0].top[0].score);

      const ready = await waitUntil(
        async () => {
          const r = await getJson(`http://127.0.0.1:${httpPort}/readyz`);
          return r.status === 200 ? r : undefined;
        },
        10_000,
        '/readyz 200',
      );
      expect(ready.body.checks).toMatchObject({ model: { ok: true }, 'camera:tray': { ok: true }, mqtt: { ok: true } });
      const health = await getJson(`http://127.0.0.1:${httpPort}/healthz`);
      expect(health.status).toBe(200);
      const status = await getJson(`http://127.0.0.1:${httpPort}/status`);
      expect(status.body).toMatchObject({
        deviceId: 'e2e-1',
        state: 'running',
        model: { provider: 'cpu' },
        cameras: { tray: { state: 'streaming' } },
      });

      const exit = await d.kill('SIGTERM');
      // Exit code 0, not the signal: the graceful stop ended within the daemon's own stop deadline
      // (4.5 s on its clock, under systemd's TimeoutStopSec), which would otherwise have killed it.
      expect(exit).toEqual({ code: 0, signal: null });
      expect(d.logs.find((l) => l.msg === 'graceful stop took too long; exiting')).toBeUndefined();
      const stopped = await sub.waitFor((m) => m.topic === 'edge-inferd/e2e-1/status' && m.json?.state === 'stopped');
      expect(stopped.json.deviceId).toBe('e2e-1');
    } finally {
      await d.kill('SIGKILL');
      await sub.close();
    }
  });

  it('the broker publishes the last will `offline` after SIGKILL', async (ctx) => {
    if (!mosq) return ctx.skip();
    const d = spawnDaemon(demoConfig('e2e-2', await freePort(), { url: mosq.url }));
    const sub = await subscribe(mosq.url, 'edge-inferd/e2e-2/status');
    try {
      await sub.waitFor((m) => m.json?.state === 'online');
      await d.kill('SIGKILL');
      const will = await sub.waitFor((m) => m.json?.state === 'offline');
      expect(will.json).toMatchObject({ v: 1, deviceId: 'e2e-2' });
      // and it is retained: a new subscriber sees it
      const late = await subscribe(mosq.url, 'edge-inferd/e2e-2/status');
      const retained = await late.waitFor(() => true);
      expect(retained.retain).toBe(true);
      expect(retained.json.state).toBe('offline');
      await late.close();
    } finally {
      await d.kill('SIGKILL');
      await sub.close();
    }
  });

  it('a broker that is down at start: the daemon keeps running, journals, and connects when it comes', async (ctx) => {
    if (!mosq) return ctx.skip();
    const port = await freePort();
    const httpPort = await freePort();
    const d = spawnDaemon(demoConfig('e2e-3', httpPort, { url: `mqtt://127.0.0.1:${port}` }));
    let late: Mosquitto | undefined;
    try {
      await d.waitForLog((l) => l.msg === 'running');
      // Not connected, but ready: results go to the journal and drain when the broker comes.
      const r = await getJson(`http://127.0.0.1:${httpPort}/readyz`);
      expect(r.body.checks.mqtt.detail).toMatch(/^not connected to .*; the journal holds results \(\d+ queued\)$/);
      expect((await getJson(`http://127.0.0.1:${httpPort}/status`)).body.mqtt.connected).toBe(false);
      late = await startMosquitto({ port });
      await d.waitForLog((l) => l.msg === 'mqtt connected', 15_000);
      await waitUntil(async () => (await getJson(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, 10_000, '/readyz 200');
    } finally {
      await d.kill('SIGKILL');
      await late?.stop();
    }
  });
});

describe('daemon with the embedded broker', () => {
  it('runs the demo end to end and says `stopped` before closing its broker', async () => {
    const mqttPort = await freePort();
    const httpPort = await freePort();
    const d = spawnDaemon(demoConfig('e2e-emb', httpPort, { url: 'embedded', embedded: { port: mqttPort } }));
    try {
      await d.waitForLog((l) => l.msg === 'embedded mqtt broker listening');
      const sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, 'edge-inferd/e2e-emb/#', { protocolVersion: 4 });
      const birth = await sub.waitFor((m) => m.topic === 'edge-inferd/e2e-emb/status' && m.json?.state === 'online');
      expect(birth.json.model.name).toBe('demo-recycling-colour');
      const seen = new Map<string, string>();
      await sub.waitFor((m) => {
        if (m.topic.endsWith('/tray/result')) seen.set(m.json.frame.name, m.json.label);
        return samples.every((s) => seen.has(s));
      }, 20_000);
      for (const s of samples) expect(seen.get(s), s).toBe(expectedLabel(s));
      await waitUntil(async () => (await getJson(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, 10_000, '/readyz 200');
      const exit = await d.kill('SIGTERM');
      expect(exit.code).toBe(0);
      await sub.waitFor((m) => m.topic === 'edge-inferd/e2e-emb/status' && m.json?.state === 'stopped', 3000);
      await sub.close();
    } finally {
      await d.kill('SIGKILL');
    }
  });

  it('a taken broker port is a clear error naming the config key, exit 1', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as { port: number }).port;
    const d = spawnDaemon(demoConfig('e2e-busy', await freePort(), { url: 'embedded', embedded: { port } }));
    const exit = await d.exited;
    blocker.close();
    expect(exit.code).toBe(1);
    const fatal = d.logs.find((l) => l.msg === 'start failed');
    expect(fatal?.err).toBe(
      `mqtt.embedded.port: port ${port} on 127.0.0.1 is already in use (another MQTT broker?); set mqtt.embedded.port, or point mqtt.url at that broker`,
    );
  });

  it('an invalid config file exits 78 with every problem on stderr', async () => {
    const d = spawnDaemon({ http: { port: 'x' }, mqtt: { urll: 'y' } });
    const exit = await d.exited;
    expect(exit.code).toBe(78);
    expect(d.stderr()).toContain('http.port: expected number (got "x")');
    expect(d.stderr()).toContain('mqtt.urll: unknown key (did you mean "url"?)');
  });
});
