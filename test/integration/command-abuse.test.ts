import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type Received, type Subscriber, subscribe } from '../helpers/mqtt.js';
import { waitUntil as waitFor } from '../helpers/wait.js';

/**
 * Commands under abuse (issue 13, rows 5, 7 and 10), against the real App on its embedded broker
 * (aedes, persistent session as by default): a command topic with an empty name, a flood of
 * snapshot requests, and a request with a thousand unknown keys.
 */

const dev = 'ops-test';
const base = `edge-inferd/${dev}`;

describe('command abuse on the embedded broker', () => {
  let t: TestApp;
  let sub: Subscriber;
  let pub: MqttClient;

  async function request(name: string, body: Record<string, unknown>): Promise<Received> {
    const id = randomUUID();
    await pub.publishAsync(`${base}/cmd/${name}`, JSON.stringify({ id, ...body }), { qos: 1 });
    return sub.waitFor((m) => m.topic === `${base}/cmd/${name}/response` && m.json?.requestId === id);
  }

  beforeAll(async () => {
    t = await startTestApp({ samples: ['glass-1.png', 'metal-1.png'], fps: 10 });
    const url = `mqtt://127.0.0.1:${t.app.config.mqtt.embedded.port}`;
    sub = await subscribe(url, `${base}/#`, { protocolVersion: 4, validate: false });
    pub = await mqtt.connectAsync(url, { protocolVersion: 4 });
    await sub.waitFor((m) => m.topic === `${base}/tray/result`);
  });
  afterAll(async () => {
    await pub?.endAsync();
    await sub?.close();
    await t?.stop();
  });

  it('row 5: a QoS 1 publish to cmd/ (no command name) does not make the broker drop the daemon', async () => {
    const connects = t.app.status().mqtt!.connects;
    await pub.publishAsync(`${base}/cmd/`, JSON.stringify({ id: 'empty-name' }), { qos: 1 });
    // A good command after it is answered, over the same connection.
    expect((await request('status', {})).json).toMatchObject({ ok: true });
    expect(t.logs.filter((l) => l.msg === 'mqtt disconnected; reconnecting')).toEqual([]);
    expect(t.app.status().mqtt).toMatchObject({ connected: true, connects });
    // Nothing was published for it (a response topic with an empty level).
    expect(sub.messages.filter((m) => m.topic.includes('/cmd//'))).toEqual([]);
  });

  it('row 10: a pause with 1,425 unknown keys gets a short answer (a few keys, then "and N more")', async () => {
    const body: Record<string, unknown> = {};
    for (let i = 0; i < 1425; i++) body[`k${i}`] = i;
    const r = await request('pause', body);
    expect(r.json).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(r.payload.length).toBeLessThan(4096);
    const problems: string[] = r.json.error.problems;
    expect(problems.length).toBeLessThanOrEqual(11);
    expect(problems[0]).toMatch(/^k0: unknown key/);
    expect(problems[problems.length - 1]).toMatch(/^and 14\d\d more$/);
    const line = t.logs.find((l) => l.msg === 'command failed' && l.requestId === r.json.requestId);
    expect(JSON.stringify(line).length).toBeLessThan(4096);
  });

  it('row 8: on the embedded broker (3.1.1, no packet size to announce) a 5 MB command closes its sender before it is whole; one slightly over the limit is still answered TOO_LARGE', async () => {
    const url = `mqtt://127.0.0.1:${t.app.config.mqtt.embedded.port}`;
    const over = await request('pause', { pad: 'x'.repeat(17_000) });
    expect(over.json).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    const bad = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    const closed = new Promise<void>((r) => bad.once('close', () => r()));
    bad.publish(
      `${base}/cmd/pause`,
      Buffer.concat([Buffer.from('{"id":"huge","pad":"'), Buffer.alloc(5_000_000, 0x78), Buffer.from('"}')]),
      { qos: 1 },
    );
    await closed;
    bad.end(true);
    const warned = await waitFor(() => t.logs.find((l) => l.msg === 'embedded broker closed a client: oversize message'));
    expect(warned.err).toMatch(/^a PUBLISH of 5000\d{3} bytes on edge-inferd\/ops-test\/cmd\/pause is over its limit of 20480 bytes$/);
    // The daemon never saw it, and kept its connection.
    expect((await request('status', {})).json).toMatchObject({ ok: true });
    expect(sub.messages.filter((m) => m.json?.requestId === 'huge')).toEqual([]);
    expect(t.logs.filter((l) => l.msg === 'mqtt disconnected; reconnecting')).toEqual([]);
  });

  it('row 7: 1,000 snapshot requests in a burst are all answered at once; a few get the JPEG, the rest BUSY', async () => {
    const tag = randomUUID();
    const n = 1000;
    for (let i = 0; i < n; i++) pub.publish(`${base}/cmd/snapshot`, JSON.stringify({ id: `${tag}-${i}` }), { qos: 0 });
    const mine = () => sub.messages.filter((m) => m.topic === `${base}/cmd/snapshot/response` && String(m.json?.requestId).startsWith(tag));
    await sub.waitFor(() => mine().length === n, 20_000).catch(() => undefined);
    const answers = mine();
    // QoS 0 may lose a request on the way in; every one that arrived is answered.
    expect(answers.length).toBeGreaterThan(n * 0.9);
    const ok = answers.filter((m) => m.json.ok);
    const busy = answers.filter((m) => !m.json.ok);
    expect(ok.length).toBeGreaterThan(0);
    expect(busy.length).toBeGreaterThan(answers.length / 2);
    expect(busy.length).toBe(answers.length - ok.length);
    for (const m of busy) expect(m.json.error.code).toBe('BUSY');
    // And the daemon carries on.
    expect((await request('snapshot', {})).json).toMatchObject({ ok: true });
  });
});
