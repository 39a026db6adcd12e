import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { sha256, tarFolder, writePackage } from '../helpers/rollout.js';

/**
 * Issue 21 rows 5, 6 and 13 in a running App over its embedded broker:
 * - a server trickling a byte now and then no longer holds an install for ever: the download's
 *   deadline (model.rollout.timeoutSec) ends it, and cmd/model/cancel ends one at once, removing
 *   its part file; the next install is not BUSY;
 * - an install whose sha256 shares only its first 12 hex digits with a kept package is not taken
 *   for it: it is downloaded and checked against the whole digest;
 * - when state.json cannot be written after a switch, the switch is undone: the model that ran
 *   before runs again, and the command says so.
 */

const dev = 'kiosk-h';
const base = `edge-inferd/${dev}`;
const labels = (v: string): [string, string, string] => [`${v}-red`, `${v}-green`, `${v}-blue`];

describe('rollout hardening', () => {
  let t: TestApp;
  let sub: Subscriber;
  let pub: MqttClient;
  let server: http.Server;
  let origin: string;
  const files = new Map<string, Buffer>();
  const trickles: http.ServerResponse[] = [];
  let work: string;
  let seq = 0;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'rollout-hardening-'));
    server = http.createServer((req, res) => {
      if (req.url === '/trickle.tgz') {
        // One byte now and then: never idle for idleTimeoutSec, never done.
        res.writeHead(200, { 'content-length': '100000' });
        const timer = setInterval(() => res.write('x'), 200);
        res.on('close', () => clearInterval(timer));
        trickles.push(res);
        return;
      }
      const body = files.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({
      samples: ['cardboard-1.png'],
      fps: 10,
      extra: { deviceId: dev, model: { rollout: { timeoutSec: 4, idleTimeoutSec: 60 } } },
    });
    const url = `mqtt://127.0.0.1:${t.app.config.mqtt.embedded.port}`;
    sub = await subscribe(url, [`${base}/cmd/+/+/response`, `${base}/model/state`, `${base}/+/result`]);
    pub = await mqtt.connectAsync(url);
  }, 60_000);

  afterAll(async () => {
    for (const r of trickles) r.destroy();
    server?.close();
    await t?.stop();
    await sub?.close();
    await pub?.endAsync();
  });

  const send = async (name: string, args: Record<string, unknown> = {}) => {
    const id = `h${++seq}`;
    await pub.publishAsync(`${base}/cmd/model/${name}`, JSON.stringify({ id, ...args }), { qos: 1 });
    return id;
  };
  const answer = async (name: string, id: string, timeoutMs = 30_000) =>
    (await sub.waitFor((m) => m.topic === `${base}/cmd/model/${name}/response` && m.json?.requestId === id, timeoutMs)).json;
  const command = async (name: string, args: Record<string, unknown> = {}) => answer(name, await send(name, args));
  const offer = (path: string, archive: Buffer, name: string, version: string) => {
    files.set(path, archive);
    return { url: `${origin}${path}`, sha256: sha256(archive), name, version };
  };
  const pkg = async (v: string) => {
    const dir = await writePackage(join(work, v), { name: 'tray-colours', version: `${v}.0.0`, labels: labels(`v${v}`) });
    return offer(`/v${v}.tgz`, tarFolder(dir, join(work, `v${v}.tgz`)), 'tray-colours', `${v}.0.0`);
  };
  const staging = () => readdirSync(join(t.dir, 'models', 'staging'));
  const trickle = { url: '', sha256: 'c'.repeat(64), name: 'slow', version: '1' };

  it('row 6: a trickling server is cut off at model.rollout.timeoutSec; the part file stays for a resume; nothing is BUSY after', async () => {
    const res = await command('install', { ...trickle, url: `${origin}/trickle.tgz` });
    // Cut off by the whole-download deadline (4 s), not the idle one (60 s): the trickle never idles that long.
    expect(res).toMatchObject({
      ok: false,
      error: {
        code: 'MODEL_REJECTED',
        message: expect.stringMatching(/^DOWNLOAD_TIMEOUT: the download did not finish within model\.rollout\.timeoutSec \(4 s\)/),
      },
    });
    expect(staging()).toEqual(['c'.repeat(64)]);
  });

  it('row 6: cmd/model/cancel ends the download at once and removes its part file; with nothing running it says so', async () => {
    const id = await send('install', { ...trickle, url: `${origin}/trickle.tgz` });
    await sub.waitFor((m) => m.topic === `${base}/model/state` && m.json.phase === 'downloading' && m.json.request?.requestId === id);
    const cancel = await command('cancel');
    expect(cancel).toMatchObject({ ok: true, command: 'model/cancel' });
    const res = await answer('install', id);
    expect(res).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^DOWNLOAD_CANCELLED: /) } });
    expect(staging()).toEqual([]);
    expect(await command('cancel')).toMatchObject({ ok: false, error: { code: 'NOTHING_TO_CANCEL' } });
  });

  it('row 13: a sha256 sharing only 12 hex digits with a kept package is downloaded and checked in full', async () => {
    const v2 = await pkg('2');
    expect(await command('install', v2)).toMatchObject({ ok: true, result: { phase: 'active' } });
    const other = `${v2.sha256.slice(0, 12)}${v2.sha256.slice(12).replace(/./g, (c) => (c === '0' ? '1' : '0'))}`;
    expect(other).not.toBe(v2.sha256);
    const res = await command('install', { ...v2, sha256: other });
    expect(res).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^MODEL_SHA256: /) } });
  });

  it("row 16: a refused package is described with paths inside it, not the device's staging folder", async () => {
    const dir = await writePackage(join(work, 'bad'), {
      name: 'tray-colours',
      version: '9.0.0',
      labels: labels('v9'),
      manifest: (text) => text.replace('task: classify', 'task: juggle'),
    });
    const res = await command('install', offer('/bad.tgz', tarFolder(dir, join(work, 'bad.tgz')), 'tray-colours', '9.0.0'));
    expect(res).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^MODEL_MANIFEST: package\/manifest\.yaml: task/) } });
    expect(JSON.stringify(res)).not.toContain(t.dir);
  });

  it('row 5: state.json that cannot be written undoes the switch: the model that ran before runs again', async () => {
    const v3 = await pkg('3');
    // A folder where state.json goes: the atomic rename over it fails.
    const state = join(t.dir, 'models', 'state.json');
    rmSync(state, { force: true });
    mkdirSync(join(state, 'blocker'), { recursive: true });
    writeFileSync(join(state, 'blocker', 'x'), 'x');
    try {
      const res = await command('install', v3);
      expect(res).toMatchObject({
        ok: false,
        error: {
          message: expect.stringMatching(/^ROLLOUT_STATE: cannot write the rollout state .*; the model that ran before runs again$/),
        },
      });
      expect(t.app.status().model).toMatchObject({ name: 'tray-colours', version: '2.0.0' });
      const from = sub.messages.length;
      const next = await sub.waitFor((m) => sub.messages.indexOf(m) >= from && m.topic === `${base}/tray/result`);
      expect(next.json.model.version).toBe('2.0.0');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
