import { spawnSync } from 'node:child_process';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { VERSION } from '../../src/version.js';
import { CLI, type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { expectComplete, getJson, seqsByCamera } from '../helpers/results.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * A small fleet: three real daemons (demo model, an images:// camera at 10 fps) on one real
 * Mosquitto. `edge-inferd fleet` lists them from their retained statuses; a broker restart brings
 * all three back (jittered reconnects) and each drains its journal: every result arrives, in order.
 */

const IDS = ['kiosk-a', 'kiosk-b', 'kiosk-c'];
const config = (deviceId: string, url: string, httpPort: number) => ({
  deviceId,
  http: { port: httpPort },
  mqtt: { url, reconnectMinSec: 0.2, reconnectMaxSec: 0.5, statusIntervalSec: 1 },
  cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 10, publish: { events: false } } },
});

function fleet(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'fleet', ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('a fleet of three daemons on one broker', () => {
  let mosq: Mosquitto | undefined;
  let sub: Subscriber | undefined;
  const daemons: DaemonProcess[] = [];
  const httpPorts: number[] = [];
  beforeAll(async () => {
    mosq = await startMosquitto({ persistence: true, extraConf: 'max_queued_messages 100000' });
    if (!mosq) return;
    sub = await subscribe(mosq.url, ['edge-inferd/+/+/result'], {
      clientId: 'fleet-consumer',
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 600 },
    });
    for (const id of IDS) {
      httpPorts.push(await freePort());
      daemons.push(spawnDaemon(config(id, mosq.url, httpPorts[httpPorts.length - 1])));
    }
    await Promise.all(daemons.map((d) => d.waitForLog((l) => l.msg === 'running', 60_000)));
  }, 90_000);
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.kill('SIGKILL')));
    await sub?.close();
    await mosq?.stop();
  });

  it('a broker restart: all three reconnect and drain their journals; every result arrives, in order', { timeout: 90_000 }, async (ctx) => {
    if (!mosq || !sub) return ctx.skip();
    const results = (id: string) => sub!.messages.filter((m) => m.topic === `edge-inferd/${id}/tray/result`);
    await waitUntil(() => IDS.every((id) => results(id).length >= 5), 30_000, 'results of all three');
    await mosq.stop();
    // Down until each daemon has journaled a few dozen results (3 s at 10 fps), however slow the machine.
    for (const port of httpPorts) {
      await waitUntil(
        async () => ((await getJson(`http://127.0.0.1:${port}/status`)).body.journal.pending as number) >= 30,
        30_000,
        `30 results journaled offline by the daemon on port ${port}`,
      );
    }
    await mosq.start();
    await Promise.all(daemons.map((d) => d.waitForLog((l) => l.msg === 'journal drained', 30_000)));
    for (const d of daemons) expect((d.logs.find((l) => l.msg === 'journal drained')?.messages as number) ?? 0).toBeGreaterThan(5);
    // Every daemon's results, complete and in order, past the outage.
    for (const id of IDS) {
      const drained = daemons[IDS.indexOf(id)].logs.find((l) => l.msg === 'journal drained')!;
      await waitUntil(
        () => results(id).length > 0 && Math.max(...results(id).map((m) => m.json.seq)) > (drained.messages as number) + 5,
        20_000,
        `${id}: results after the drain`,
      );
      const seqs = seqsByCamera(results(id)).get('tray')!;
      expectComplete(seqs, Math.max(...seqs));
    }
  });

  it('edge-inferd fleet: a broker that cannot be reached is named, exit 1; an empty prefix says so', { timeout: 30_000 }, async (ctx) => {
    if (!mosq) return ctx.skip();
    const port = await freePort();
    const down = fleet(['--broker', `mqtt://127.0.0.1:${port}`]);
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(
      new RegExp(`^edge-inferd fleet: cannot read edge-inferd/\\+/status from mqtt://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
    );
    const none = fleet(['--broker', mosq.url, '--prefix', 'nobody-here']);
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout).toBe('no device status under nobody-here/+/status\n');
  });

  it('edge-inferd fleet lists every device from its retained status, as a table or JSON; a stray message is skipped', {
    timeout: 60_000,
  }, async (ctx) => {
    if (!mosq) return ctx.skip();
    // Something else retained under the prefix: named on stderr, not listed.
    const other = await mqtt.connectAsync(mosq.url);
    await other.publishAsync('edge-inferd/not-a-daemon/status', 'hello', { qos: 1, retain: true });
    await other.endAsync();

    const json = fleet(['--broker', mosq.url, '--json']);
    expect(json.status, json.stderr).toBe(0);
    expect(json.stderr).toContain('skipped edge-inferd/not-a-daemon/status: not JSON');
    const list = JSON.parse(json.stdout) as any[];
    expect(list.map((s) => s.deviceId)).toEqual(IDS);
    for (const s of list) {
      expect(s).toMatchObject({
        state: 'online',
        version: VERSION,
        provider: 'cpu',
        cameras: ['tray'],
        cameraState: { tray: 'streaming' },
        lastError: null,
      });
      expect(s.model.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(s.uptimeSec).toBeGreaterThanOrEqual(0);
      expect(s.journal.pending).toBeGreaterThanOrEqual(0);
    }
    // The status is refreshed every second (statusIntervalSec: 1): a later listing shows a later uptime.
    const first = list[0].tsMs as number;
    await waitUntil(
      () => {
        const again = JSON.parse(fleet(['--broker', mosq!.url, '--json']).stdout) as any[];
        return again[0].tsMs > first && again[0].uptimeSec >= list[0].uptimeSec;
      },
      15_000,
      'a refreshed status',
    );

    // One daemon stops cleanly: its row says so.
    await daemons[2].kill('SIGTERM');
    const table = fleet(['--broker', mosq.url]);
    expect(table.status, table.stderr).toBe(0);
    console.log(table.stdout);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^DEVICE\s+STATE\s+SEEN\s+VERSION\s+MODEL\s+SHA256\s+PROVIDER\s+UPTIME\s+PENDING\s+OLDEST\s+CAMERAS\s+LAST ERROR$/,
    );
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ['kiosk-a', 'online'],
      ['kiosk-b', 'online'],
      ['kiosk-c', 'stopped'],
    ]);
    expect(lines[1]).toContain(`${list[0].model.name} ${list[0].model.version}`);
    expect(lines[1]).toContain(list[0].model.sha256.slice(0, 12));
  });
});
