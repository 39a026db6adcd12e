import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNotifyAddon } from '../../src/health/sdnotify.js';
import { copySamples } from '../helpers/app.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { type NotifySocket, startNotifySocket } from '../helpers/notify.js';
import { freePort } from '../helpers/ports.js';
import { IN_CI } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The spawned daemon under a fake systemd: $NOTIFY_SOCKET is a real AF_UNIX datagram socket (the
 * abstract namespace), WATCHDOG_USEC asks for pings. READY, the ping cadence, RELOADING with
 * MONOTONIC_USEC then READY around SIGHUP, pings withheld once the camera stops delivering, STOPPING.
 */

const addon = loadNotifyAddon();
if (!addon.ok && !IN_CI) console.warn(`\n*** SKIPPING sd_notify process tests: ${addon.reason} ***\n`);

const WATCHDOG_USEC = 600_000; // the daemon pings every 300 ms

async function json(url: string): Promise<any> {
  return (await fetch(url)).json();
}

describe('systemd notify protocol', () => {
  let sock: NotifySocket | undefined;
  afterAll(async () => sock?.close());

  // Eight steps in sequence, each with its own wait and limit (up to 30 s for READY): the test's
  // limit is above their sum's usual share, so on a slow runner a step that does not come fails
  // with its own message (what it waited for, what it got) rather than a bare test timeout.
  it('READY, WATCHDOG cadence, RELOADING/READY on SIGHUP, no pings while stalled, STOPPING', { timeout: 90_000 }, async (ctx) => {
    if (!addon.ok && !IN_CI) return ctx.skip();
    sock = await startNotifySocket();
    if (!sock) return ctx.skip();
    const dir = mkdtempSync(join(tmpdir(), 'edge-inferd-notify-'));
    const images = join(dir, 'images');
    copySamples(images, ['cardboard-1.png', 'glass-1.png']);
    const httpPort = await freePort();
    const config: Record<string, any> = {
      deviceId: 'notify-1',
      cameras: { tray: { uri: `images://${images}`, fps: 10 } },
      mqtt: { url: 'embedded', embedded: { port: await freePort() } },
      http: { port: httpPort },
      health: { stallAfterSec: 2 },
      log: { format: 'json' },
    };
    const d = spawnDaemon(config, { env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: String(WATCHDOG_USEC) }, dir });
    const base = `http://127.0.0.1:${httpPort}`;
    try {
      const ready = await sock.waitFor((m) => m.fields.READY === '1', 30_000);
      expect(ready.fields.STATUS).toBe('running: 1/1 cameras streaming, demo-recycling-colour on cpu, mqtt connected');
      // No watchdog ping before READY (systemd's start timeout guards start-up).
      expect(sock.messages.slice(0, sock.messages.indexOf(ready)).filter((m) => m.fields.WATCHDOG)).toEqual([]);

      // Cadence: about every WATCHDOG_USEC/2. The median keeps one slow tick on a busy machine from failing it.
      const from = sock.messages.length;
      await waitUntil(
        () => sock!.messages.slice(from).filter((m) => m.fields.WATCHDOG === '1').length >= 6 || undefined,
        20_000,
        'six pings',
      );
      const pings = sock.messages
        .slice(from)
        .filter((m) => m.fields.WATCHDOG === '1')
        .map((m) => m.ms);
      const gaps = pings
        .slice(1)
        .map((t, i) => t - pings[i])
        .sort((a, b) => a - b);
      const median = gaps[Math.floor(gaps.length / 2)];
      expect(median).toBeGreaterThan(WATCHDOG_USEC / 1000 / 2 / 2);
      expect(median).toBeLessThan(WATCHDOG_USEC / 1000);
      expect((await json(`${base}/status`)).systemd).toMatchObject({ watchdogUsec: WATCHDOG_USEC });

      // SIGHUP with a live change and a restart-required one.
      config.log.level = 'debug';
      config.mqtt.prefix = 'moved';
      writeFileSync(d.configPath, stringify(config));
      let mark = sock.messages.length;
      d.proc.kill('SIGHUP');
      const reloading = await sock.waitFor((m) => m.fields.RELOADING === '1', 15_000, mark);
      // MONOTONIC_USEC is CLOCK_MONOTONIC, the clock the receiver stamps datagrams with.
      const mono = Number(reloading.fields.MONOTONIC_USEC) / 1000;
      expect(Math.abs(reloading.ms - mono)).toBeLessThan(5000);
      const after = await sock.waitFor((m) => m.fields.READY === '1', 15_000, sock.messages.indexOf(reloading) + 1);
      expect(after.ms).toBeGreaterThanOrEqual(reloading.ms);
      let status = await json(`${base}/status`);
      expect(status.reload).toMatchObject({
        ok: true,
        applied: ['log.level: "info" -> "debug"'],
        restartRequired: ['mqtt.prefix: "edge-inferd" -> "moved"'],
      });
      await d.waitForLog((l) => l.msg === 'reload: restart required for these changes (systemctl restart edge-inferd)');

      // SIGHUP with an invalid file: RELOADING, then READY again with a status that says so.
      writeFileSync(d.configPath, 'cameras: {tray: {uri: "images:///x", fsp: 2}}\n');
      mark = sock.messages.length;
      d.proc.kill('SIGHUP');
      await sock.waitFor((m) => m.fields.RELOADING === '1', 15_000, mark);
      const rejected = await sock.waitFor((m) => m.fields.READY === '1', 15_000, mark);
      expect(rejected.fields.STATUS).toBe('reload rejected (1 problem); running on the previous config');
      const problem = await d.waitForLog((l) => l.msg === 'reload rejected: invalid config');
      expect(problem.problem).toMatch(/^cameras\.tray\.fsp: unknown key \(valid keys: uri, fps, enabled\b/);
      status = await json(`${base}/status`);
      expect(status.reload).toMatchObject({ ok: false, restartRequired: ['mqtt.prefix: "edge-inferd" -> "moved"'] });
      expect(d.proc.exitCode).toBeNull();

      // The camera stops delivering: the pings stop, STATUS says why, /healthz agrees.
      rmSync(images, { recursive: true });
      const stalled = await sock.waitFor((m) => (m.fields.STATUS ?? '').startsWith('stalled:'), 20_000, sock.messages.length);
      expect(stalled.fields.STATUS).toMatch(/^stalled: camera tray: no result for [\d.]+ s \(limit 2\.0 s\)$/);
      expect(stalled.fields.WATCHDOG).toBeUndefined();
      const quietFrom = sock.messages.length;
      await new Promise((r) => setTimeout(r, (WATCHDOG_USEC / 1000) * 3));
      expect(sock.messages.slice(quietFrom).filter((m) => m.fields.WATCHDOG === '1')).toEqual([]);
      const h = await fetch(`${base}/healthz`);
      expect(h.status).toBe(503);
      expect((await d.waitForLog((l) => l.msg === 'pipeline stalled; withholding watchdog pings')).reason).toMatch(
        /^camera tray: no result/,
      );

      mark = sock.messages.length;
      expect(await d.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      const stopping = await sock.waitFor((m) => m.fields.STOPPING === '1', 5000, mark);
      expect(stopping.fields.STATUS).toBe('stopping');
    } finally {
      await d.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an invalid config or a token-less public bind exits 78 (EX_CONFIG) before READY', async () => {
    const d = spawnDaemon({ http: { host: '0.0.0.0', port: await freePort() } });
    const exit = await d.exited;
    expect(exit.code).toBe(78);
    expect(d.stderr()).toContain('http.token: required when http.host is not a loopback address (got http.host "0.0.0.0")');
  });
});
