import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { sha256, tarFolder, writePackage } from '../helpers/rollout.js';

/**
 * A restart in the middle of a download: the real daemon over a real Mosquitto fetches a package
 * from a real HTTP server that sends half of it and then goes quiet; the daemon is killed (SIGKILL:
 * a power cut, no clean-up), started again, and must come up on its old model, saying on the
 * retained model/state that the install was interrupted. The same install sent again continues
 * the download with a Range request and only then activates.
 */

const dev = 'kiosk-restart';
const base = `edge-inferd/${dev}`;

describe('a restart during a model download', () => {
  let mosq: Mosquitto | undefined;
  let sub: Subscriber;
  let pub: MqttClient;
  let server: http.Server;
  let d: DaemonProcess | undefined;
  let archive: Buffer;
  const ranges: (string | undefined)[] = [];
  const stalled: http.ServerResponse[] = [];

  beforeAll(async () => {
    mosq = await startMosquitto();
    if (!mosq) return;
    const work = mkdtempSync(join(tmpdir(), 'rollout-restart-'));
    const dir = await writePackage(join(work, 'pkg'), {
      name: 'tray-colours',
      version: '5.0.0',
      labels: ['v5-red', 'v5-green', 'v5-blue'],
      selftest: [{ label: 'v5-red', colour: 'red' }],
    });
    archive = tarFolder(dir, join(work, 'pkg.tgz'));
    server = http.createServer((req, res) => {
      ranges.push(req.headers.range);
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (!m) {
        // The first attempt: half the bytes, then nothing (the connection stays open).
        res.writeHead(200, { 'content-length': archive.length });
        res.write(archive.subarray(0, archive.length >> 1));
        stalled.push(res);
        return;
      }
      const from = Number(m[1]);
      res
        .writeHead(206, {
          'content-length': archive.length - from,
          'content-range': `bytes ${from}-${archive.length - 1}/${archive.length}`,
        })
        .end(archive.subarray(from));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    pub = await mqtt.connectAsync(mosq.url, { protocolVersion: 5 });
    sub = await subscribe(mosq.url, [`${base}/model/state`, `${base}/cmd/+/+/response`, `${base}/tray/result`]);
  });

  afterAll(async () => {
    await d?.kill();
    for (const r of stalled) r.destroy();
    server?.close();
    await sub?.close();
    await pub?.endAsync();
    await mosq?.stop();
  });

  it('never activates the partial package, and resumes it when asked again', async () => {
    if (!mosq) return;
    const config = {
      deviceId: dev,
      http: { port: await freePort() },
      mqtt: { url: mosq.url },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 5 } },
    };
    d = spawnDaemon(config);
    const stateDir = d.dir;
    const demo = (await sub.waitFor((m) => m.topic === `${base}/tray/result`)).json.model;
    const install = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg.tgz`,
      sha256: sha256(archive),
      name: 'tray-colours',
      version: '5.0.0',
    };
    await pub.publishAsync(`${base}/cmd/model/install`, JSON.stringify({ id: 'first', ...install }), { qos: 1 });
    const half = archive.length >> 1;
    await sub.waitFor((m) => m.topic === `${base}/model/state` && m.json.phase === 'downloading' && m.json.bytes === half);
    const part = join(stateDir, 'models', 'staging', install.sha256, 'archive.part');
    expect(readFileSync(part).length).toBe(half);

    expect((await d.kill('SIGKILL')).signal).toBe('SIGKILL');
    const from = sub.messages.length;
    d = spawnDaemon(config, { dir: stateDir });
    const interrupted = await sub.waitFor(
      (m) => sub.messages.indexOf(m) >= from && m.topic === `${base}/model/state` && m.json.phase === 'interrupted',
    );
    expect(interrupted.json).toMatchObject({
      request: { requestId: 'first', version: '5.0.0' },
      current: demo,
      error: { code: 'INTERRUPTED' },
    });
    // Up again on the model it had: results keep coming from it, and no package was kept.
    const after = await sub.waitFor((m) => sub.messages.indexOf(m) >= from && m.topic === `${base}/tray/result`);
    expect(after.json.model).toEqual(demo);
    expect(existsSync(join(stateDir, 'models', 'packages')) ? readdirSync(join(stateDir, 'models', 'packages')) : []).toEqual([]);
    expect(d.logs.some((l) => l.msg === 'model installed over MQTT and active')).toBe(false);

    await pub.publishAsync(`${base}/cmd/model/install`, JSON.stringify({ id: 'again', ...install }), { qos: 1 });
    const res = (await sub.waitFor((m) => m.topic === `${base}/cmd/model/install/response` && m.json.requestId === 'again', 30_000)).json;
    expect(res.ok, JSON.stringify(res)).toBe(true);
    expect(res.result).toMatchObject({
      phase: 'active',
      resumedFrom: half,
      bytes: archive.length,
      current: { name: 'tray-colours', version: '5.0.0' },
    });
    expect(ranges).toEqual([undefined, `bytes=${half}-`]);
    const v5 = await sub.waitFor((m) => m.topic === `${base}/tray/result` && m.json.model.version === '5.0.0');
    expect(v5.json.label).toMatch(/^v5-/);
    expect(existsSync(join(stateDir, 'models', 'staging', install.sha256))).toBe(false);
    await d.kill();
  }, 90_000);

  it('a stop (SIGTERM) during a download exits cleanly, answers the install, and keeps the part file', async () => {
    if (!mosq) return;
    const config = {
      deviceId: 'kiosk-term',
      http: { port: await freePort() },
      mqtt: { url: mosq.url },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 5 } },
    };
    const term = `edge-inferd/kiosk-term`;
    const s2 = await subscribe(mosq.url, [`${term}/model/state`, `${term}/cmd/+/+/response`]);
    try {
      d = spawnDaemon(config);
      await d.waitForLog((l) => l.msg === 'running');
      const install = {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg.tgz`,
        sha256: sha256(archive),
        name: 'tray-colours',
        version: '5.0.0',
      };
      await pub.publishAsync(`${term}/cmd/model/install`, JSON.stringify({ id: 'term', ...install }), { qos: 1 });
      await s2.waitFor((m) => m.topic === `${term}/model/state` && m.json.phase === 'downloading' && m.json.bytes === archive.length >> 1);
      expect(await d.kill('SIGTERM')).toEqual({ code: 0, signal: null });
      const res = (await s2.waitFor((m) => m.topic === `${term}/cmd/model/install/response`)).json;
      expect(res).toMatchObject({
        requestId: 'term',
        ok: false,
        error: { code: 'MODEL_REJECTED', message: expect.stringMatching(/^DOWNLOAD_ABORTED: /) },
      });
      expect(readFileSync(join(d.dir, 'models', 'staging', install.sha256, 'archive.part')).length).toBe(archive.length >> 1);
    } finally {
      await s2.close();
    }
  }, 60_000);
});
