import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';

/**
 * Consumers scaling out with MQTT 5 shared subscriptions: two workers in one share group split
 * the results between them; together they get every one, none twice.
 */

describe('shared subscriptions ($share/<group>/...)', () => {
  let mosq: Mosquitto | undefined;
  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => mosq?.stop());

  it('two consumers in one group each get a share of the results; together all of them, no duplicates', async (ctx) => {
    if (!mosq) return ctx.skip();
    const dev = 'share-1';
    const filter = `$share/workers/edge-inferd/${dev}/+/result`;
    const a = await subscribe(mosq.url, filter, { protocolVersion: 5, clientId: 'worker-a' });
    const b = await subscribe(mosq.url, filter, { protocolVersion: 5, clientId: 'worker-b' });
    // an ordinary subscriber sees every result: the reference the two workers must add up to
    const watch = await subscribe(mosq.url, [`edge-inferd/${dev}/status`, `edge-inferd/${dev}/+/result`]);
    const d = spawnDaemon({
      deviceId: dev,
      http: { port: await freePort() },
      mqtt: { url: mosq.url },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 20 } },
    });
    try {
      const total = () => a.messages.length + b.messages.length;
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (total() >= 60) {
            clearInterval(t);
            resolve();
          } else if (d.proc.exitCode !== null) {
            clearInterval(t);
            reject(new Error(`daemon exited: ${d.stderr()}`));
          }
        }, 50);
      });
      expect(await d.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      await watch.waitFor((m) => m.json?.state === 'stopped');
      const published = watch.messages.filter((m) => m.topic.endsWith('/result')).length;
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (total() < published) return;
          clearInterval(t);
          resolve();
        }, 20);
      });
      const seqA = a.messages.map((m) => m.json.seq as number);
      const seqB = b.messages.map((m) => m.json.seq as number);
      const all = [...seqA, ...seqB].sort((x, y) => x - y);
      console.log(`shared subscription: worker-a ${seqA.length}, worker-b ${seqB.length} of ${all.length} results`);
      expect(all).toEqual(all.map((_, i) => i + 1)); // every seq from 1, none twice
      expect(all.length).toBe(published);
      expect(seqA.length).toBeGreaterThanOrEqual(all.length / 10);
      expect(seqB.length).toBeGreaterThanOrEqual(all.length / 10);
      // each worker sees its share in order
      for (const s of [seqA, seqB]) expect(s).toEqual([...s].sort((x, y) => x - y));
    } finally {
      await d.kill('SIGKILL');
      await Promise.all([a.close(), b.close(), watch.close()]);
    }
  });
});
