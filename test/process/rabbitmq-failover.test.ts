import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { CLI, spawnDaemon } from '../helpers/daemon.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { type RabbitCluster, startRabbitCluster } from '../helpers/rabbitmq.js';
import { expectComplete, seqsByCamera } from '../helpers/results.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * A broker that clusters: a two-node RabbitMQ cluster (MQTT plugin, 3.1.1, QoS 1) on loopback.
 * The daemon is given both nodes (mqtt.url as a list) and connects to node A; a QoS 1 subscriber
 * sits on node B. Node A is stopped: the daemon moves to node B and every result arrives, in
 * order per camera.
 */

describe('failover between the nodes of a RabbitMQ cluster', () => {
  let cluster: RabbitCluster | undefined;
  beforeAll(async () => {
    cluster = await startRabbitCluster(2);
  }, 180_000);
  afterAll(async () => cluster?.stop(), 60_000);

  it('node A stopped: the daemon moves to node B; every result reaches the subscriber on B, in order per camera', {
    timeout: 120_000,
  }, async (ctx) => {
    if (!cluster) return ctx.skip();
    const [a, b] = cluster.nodes;
    const sub: Subscriber = await subscribe(b.url, 'edge-inferd/rmq-kiosk/+/result', {
      clientId: 'rmq-consumer',
      clean: false,
      protocolVersion: 4,
    });
    const d = spawnDaemon({
      deviceId: 'rmq-kiosk',
      http: { enabled: false },
      // RabbitMQ 3.x keeps a persistent session's queue on the node it was made on: with that node
      // gone the session is unusable on the others, so a daemon that fails over runs clean sessions
      // (docs/integrations.md); its journal, not the broker, keeps what is not yet delivered.
      mqtt: { url: [a.url, b.url], protocolVersion: 4, persistentSession: false, reconnectMinSec: 0.2, reconnectMaxSec: 1 },
      cameras: {
        tray: { uri: `images://${demoSamplesDir}`, fps: 10, publish: { events: false } },
        door: { uri: `images://${demoSamplesDir}`, fps: 10, publish: { events: false } },
      },
    });
    try {
      await d.waitForLog((l) => l.msg === 'mqtt connected' && l.url === a.url, 60_000);
      await waitUntil(
        () => ['tray', 'door'].every((cam) => (seqsByCamera(sub.messages).get(cam)?.length ?? 0) >= 10),
        60_000,
        '10 results of each camera on node B',
      );

      await a.stop();
      await d.waitForLog((l) => l.msg === 'mqtt connected' && l.url === b.url, 30_000);
      const before = seqsByCamera(sub.messages);
      await waitUntil(
        () => ['tray', 'door'].every((cam) => (seqsByCamera(sub.messages).get(cam)?.length ?? 0) >= (before.get(cam)?.length ?? 0) + 10),
        30_000,
        '10 more results of each camera after the failover',
      );
      await d.kill('SIGTERM');

      // Everything the daemon made, from its journal; all of it must have reached the subscriber.
      const dump = spawnSync(
        process.execPath,
        [CLI, 'history', '--journal', join(d.dir, 'journal.sqlite'), '--json', '--limit', '100000'],
        { encoding: 'utf8' },
      );
      expect(dump.status, dump.stderr).toBe(0);
      const made = new Map<string, number>();
      for (const line of dump.stdout.trim().split('\n')) {
        const r = JSON.parse(line) as { camera: string; seq: number };
        made.set(r.camera, Math.max(made.get(r.camera) ?? 0, r.seq));
      }
      expect([...made.keys()].sort()).toEqual(['door', 'tray']);
      await waitUntil(
        () => [...made].every(([cam, max]) => new Set(seqsByCamera(sub.messages).get(cam)).size >= max),
        30_000,
        () => `every result on node B (${JSON.stringify([...made])})`,
      );
      for (const [cam, max] of made) expectComplete(seqsByCamera(sub.messages).get(cam), max);
      console.log(`rabbitmq failover: ${[...made].map(([c, m]) => `${c} 1..${m}`).join(', ')} all on node B, in order`);
    } finally {
      await d.kill('SIGKILL');
      await sub.close();
    }
  });
});
