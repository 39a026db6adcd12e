import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Received, type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { assertValid } from '../helpers/schemas.js';

/** Every command against the real daemon over a real Mosquitto, the bad requests included. */

const dev = 'cmd-1';
const base = `edge-inferd/${dev}`;

describe('commands on cmd/<name>, answered on cmd/<name>/response', () => {
  let mosq: Mosquitto | undefined;
  let sub: Subscriber;
  let pub: MqttClient;
  let d: DaemonProcess;
  let config: Record<string, unknown>;

  /** Sends a request and waits for the response that carries its id (or the next response, without one). */
  async function send(name: string, body: Record<string, unknown> | string | Buffer, id?: string | number): Promise<Received> {
    const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const from = sub.messages.length;
    await pub.publishAsync(`${base}/cmd/${name}`, payload, { qos: 1 });
    return sub.waitFor(
      (m) => m.topic === `${base}/cmd/${name}/response` && (id === undefined ? sub.messages.indexOf(m) >= from : m.json?.requestId === id),
    );
  }
  async function request(name: string, args: Record<string, unknown> = {}): Promise<any> {
    const id = randomUUID();
    const body = { id, ...args };
    assertValid(`command-${name}.schema.json`, body, 'the request the test sends');
    return (await send(name, body, id)).json;
  }

  beforeAll(async () => {
    mosq = await startMosquitto();
    if (!mosq) return;
    pub = await mqtt.connectAsync(mosq.url, { protocolVersion: 5 });
    // A command left retained before the daemon starts must not run when it subscribes.
    await pub.publishAsync(`${base}/cmd/pause`, JSON.stringify({ id: 'retained-pause' }), { qos: 1, retain: true });
    sub = await subscribe(mosq.url, `${base}/#`);
    config = {
      deviceId: dev,
      http: { port: await freePort() },
      mqtt: { url: mosq.url },
      commands: { maxBytes: 1024 },
      cameras: {
        tray: { uri: `images://${demoSamplesDir}`, fps: 10, publish: { stable: { k: 2, n: 3, minScore: 0.5 } } },
        door: { uri: `images://${demoSamplesDir}`, fps: 2 },
      },
    };
    d = spawnDaemon(config);
    await sub.waitFor((m) => m.topic === `${base}/tray/result` && m.json.seq >= 3);
  });

  afterAll(async () => {
    await d?.kill('SIGKILL');
    await pub?.endAsync();
    try {
      await sub?.close(); // throws if any message broke its schema
    } finally {
      await mosq?.stop();
    }
  });

  it('status: the same JSON as GET /status; `{}` is a request without id; a retained command and the empty message clearing it are ignored', async (ctx) => {
    if (!mosq) return ctx.skip();
    const r = await request('status');
    expect(r).toMatchObject({
      command: 'status',
      ok: true,
      result: { deviceId: dev, state: 'running', cameras: { tray: { state: 'streaming', paused: false, decide: { policy: 'every' } } } },
    });
    const noId = await send('status', '{}');
    expect(noId.json).toMatchObject({ requestId: null, ok: true });
    // the retained pause was not run, and clearing it (an empty retained message, delivered live) runs nothing either
    expect(r.result.cameras.tray.paused).toBe(false);
    await pub.publishAsync(`${base}/cmd/pause`, '', { qos: 1, retain: true });
    expect((await request('status')).result.cameras).toMatchObject({ tray: { paused: false }, door: { paused: false } });
    expect(sub.messages.filter((m) => m.topic === `${base}/cmd/pause/response`)).toEqual([]);
  });

  it("snapshot: a JPEG of the latest frame, base64, whose colour is that frame's sample", async (ctx) => {
    if (!mosq) return ctx.skip();
    const r = await request('snapshot', { camera: 'tray', quality: 90 });
    expect(r).toMatchObject({
      ok: true,
      result: { camera: 'tray', contentType: 'image/jpeg', encoding: 'base64', width: 320, height: 240 },
    });
    const jpeg = Buffer.from(r.result.data, 'base64');
    expect(jpeg.length).toBe(r.result.bytes);
    expect(jpeg.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    const got = await sharp(jpeg).stats();
    const want = await sharp(join(demoSamplesDir, r.result.frame.name)).stats();
    for (let c = 0; c < 3; c++)
      expect(Math.abs(got.channels[c].mean - want.channels[c].mean), `channel ${c} of ${r.result.frame.name}`).toBeLessThan(4);

    const small = await request('snapshot', { camera: 'tray', maxWidth: 64 });
    expect(small.result).toMatchObject({ width: 64, height: 48 });
    const meta = await sharp(Buffer.from(small.result.data, 'base64')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 64, 48]);
  });

  it('snapshot errors: two cameras and none named, an unknown camera', async (ctx) => {
    if (!mosq) return ctx.skip();
    expect(await request('snapshot')).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', problems: ['camera: required with more than one camera (cameras: tray, door)'] },
    });
    expect(await request('snapshot', { camera: 'porch' })).toMatchObject({
      ok: false,
      error: { code: 'UNKNOWN_CAMERA', message: 'no camera "porch" (cameras: tray, door)' },
    });
  });

  it('pause stops the results of one camera (the other goes on), clears its stable label; resume brings them back with seq continuing', async (ctx) => {
    if (!mosq) return ctx.skip();
    const before = sub.messages.length;
    const p = await request('pause', { camera: 'tray' });
    expect(p).toMatchObject({ ok: true, result: { changed: ['tray'], paused: ['tray'] } });
    const pausedAt = sub.messages.length;
    // the stable label at the pause, if any: the last stable/cleared event for the camera says
    const lastDecision = sub.messages
      .slice(0, pausedAt)
      .filter((m) => m.topic === `${base}/tray/event` && m.json.type !== 'change' && m.json.reason !== 'paused')
      .at(-1)?.json;
    const lastSeq = Math.max(...sub.messages.filter((m) => m.topic === `${base}/tray/result`).map((m) => m.json.seq));
    // k=2 of 3 on pairs of samples: a label is stable most of the time; if so, it is cleared for the pause
    const status = await sub.waitFor(
      (m, i = sub.messages.indexOf(m)) => i >= pausedAt - 3 && m.topic === `${base}/status` && m.json.cameraState?.tray === 'paused',
    );
    expect(status.json.cameraState.door).toBe('streaming');
    // the other camera produces two more results meanwhile, the paused one none
    const doorSeq = Math.max(...sub.messages.filter((m) => m.topic === `${base}/door/result`).map((m) => m.json.seq));
    await sub.waitFor((m) => m.topic === `${base}/door/result` && m.json.seq >= doorSeq + 2);
    expect(sub.messages.slice(pausedAt).filter((m) => m.topic === `${base}/tray/result`)).toEqual([]);
    const st = await request('status');
    expect(st.result.cameras.tray.paused).toBe(true);
    expect(await request('pause', { camera: 'tray' })).toMatchObject({ ok: true, result: { changed: [], paused: ['tray'] } });

    // only the pause's own clearing: an ordinary (evidence) clear may race with the request
    const cleared = sub.messages
      .slice(before)
      .filter((m) => m.topic === `${base}/tray/event` && m.json.type === 'cleared' && m.json.reason === 'paused');
    if (lastDecision?.type === 'stable') {
      expect(cleared.map((m) => m.json)).toMatchObject([
        { reason: 'paused', label: lastDecision.label, frame: null, sinceMs: lastDecision.atMs },
      ]);
    } else {
      expect(cleared).toEqual([]);
    }

    expect(await request('resume', { camera: 'tray' })).toMatchObject({ ok: true, result: { changed: ['tray'], paused: [] } });
    const next = await sub.waitFor((m) => m.topic === `${base}/tray/result` && m.json.seq === lastSeq + 1);
    // after a pause the first frame is a change from nothing
    await sub.waitFor(
      (m) =>
        m.topic === `${base}/tray/event` &&
        m.json.type === 'change' &&
        m.json.frame?.seq === next.json.frame.seq &&
        m.json.previous === null,
    );
    await sub.waitFor(
      (m) => m.topic === `${base}/status` && m.json.cameraState?.tray === 'streaming' && sub.messages.indexOf(m) > pausedAt,
    );
  });

  it('pause and resume without a camera act on every camera', async (ctx) => {
    if (!mosq) return ctx.skip();
    expect(await request('pause')).toMatchObject({ ok: true, result: { changed: ['tray', 'door'], paused: ['tray', 'door'] } });
    expect(await request('resume')).toMatchObject({ ok: true, result: { changed: ['tray', 'door'], paused: [] } });
  });

  it('reload: an unchanged config is ok; an invalid one is rejected with every problem, the daemon carries on', async (ctx) => {
    if (!mosq) return ctx.skip();
    expect(await request('reload')).toMatchObject({ ok: true, result: { ok: true, changed: [], problems: [] } });
    writeFileSync(d.configPath, stringify({ ...config, http: { port: 70000 }, mqtt: { url: mosq.url, qos: 3 } }));
    const bad = await request('reload');
    expect(bad).toMatchObject({ ok: false, error: { code: 'RELOAD_REJECTED' } });
    expect(bad.error.problems).toEqual(expect.arrayContaining(['http.port: must be <= 65535 (got 70000)']));
    expect(bad.error.problems).toHaveLength(2);
    writeFileSync(d.configPath, stringify(config));
    const seq = Math.max(...sub.messages.filter((m) => m.topic === `${base}/tray/result`).map((m) => m.json.seq));
    await sub.waitFor((m) => m.topic === `${base}/tray/result` && m.json.seq > seq);
  });

  it('malformed JSON, an unknown command, an invalid and an oversize request each get an error response; the daemon carries on', async (ctx) => {
    if (!mosq) return ctx.skip();
    const notJson = await send('status', '{"id": "x",');
    expect(notJson.json).toMatchObject({ command: 'status', ok: false, requestId: null, error: { code: 'BAD_JSON' } });

    const unknown = await send('selfdestruct', { id: 'u1' }, 'u1');
    expect(unknown.json).toMatchObject({
      command: 'selfdestruct',
      ok: false,
      error: {
        code: 'UNKNOWN_COMMAND',
        message:
          'unknown command "selfdestruct" (commands: snapshot, reload, pause, resume, status, model/install, model/rollback, model/cancel)',
      },
    });

    const invalid = await send('pause', { id: 'i1', camera: 'tray', forever: true }, 'i1');
    expect(invalid.json).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', problems: ['forever: unknown key (valid keys: id, camera)'] },
    });
    const wrongType = await send('snapshot', { id: 'i2', camera: 'tray', quality: 'best' }, 'i2');
    expect(wrongType.json.error.problems).toEqual(['quality: expected number (got "best")']);

    const big = await send('status', JSON.stringify({ id: 'big-1', pad: 'x'.repeat(2000) }), 'big-1');
    expect(big.json).toMatchObject({
      ok: false,
      error: { code: 'TOO_LARGE', message: 'payload of 2023 bytes is over commands.maxBytes (1024)' },
    });
    const binary = await send('status', Buffer.alloc(5000, 0xff));
    expect(binary.json).toMatchObject({ ok: false, requestId: null, error: { code: 'TOO_LARGE' } });

    // still alive and answering
    expect(await request('status')).toMatchObject({ ok: true, result: { state: 'running' } });
    expect(d.proc.exitCode).toBeNull();
    expect(d.logs.filter((l) => l.msg === 'command failed').length).toBeGreaterThanOrEqual(6);
  });

  it('commands still work after the broker restarts and forgot every subscription', async (ctx) => {
    if (!mosq) return ctx.skip();
    const connects = () => d.logs.filter((l) => l.msg === 'mqtt connected').length;
    const before = connects();
    await mosq.stop(); // persistence false: the broker comes back empty
    await mosq.start();
    await d.waitForLog(() => connects() > before, 20_000);
    // The test's own clients reconnect on their own: the subscriber is subscribed again once a
    // message reaches it (the cameras publish results), and the publisher once it is connected.
    const mark = sub.messages.length;
    await sub.waitFor((m) => sub.messages.indexOf(m) >= mark, 20_000);
    if (!pub.connected) await new Promise((r) => pub.once('connect', r));
    const r = await request('status');
    expect(r).toMatchObject({ ok: true, result: { state: 'running', mqtt: { connects: before + 1 } } });
  });
});
