import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { MqttConnection } from '../../src/publish/client.js';
import { startTestApp } from '../helpers/app.js';
import { captureLog } from '../helpers/log.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { needTool } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * MQTT under abuse (issue 13, rows 8, 11 and 16): oversize commands against a real Mosquitto (MQTT
 * 5), the embedded broker off loopback, a broker that stops answering, a client id the broker
 * does not allow.
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const PASSWORD = 'Embedded-Pa55-4e1a';

describe('row 8: the maximum packet size', () => {
  it('the daemon advertises commands.maxBytes (plus room for the topic) as its MQTT 5 maximum packet size: a 1 MB command never reaches it', async (ctx) => {
    const mosq = await startMosquitto();
    if (!mosq) return ctx.skip();
    cleanups.push(() => mosq.stop());
    const t = await startTestApp({
      samples: ['glass-1.png'],
      extra: { deviceId: 'big', mqtt: { url: mosq.url }, commands: { maxBytes: 1024 } },
    });
    cleanups.push(() => t.stop());
    const sub = await subscribe(mosq.url, 'edge-inferd/big/cmd/#', { protocolVersion: 5, validate: false });
    cleanups.push(() => sub.close());
    const pub = await mqtt.connectAsync(mosq.url, { protocolVersion: 5 });
    cleanups.push(() => pub.endAsync());
    await waitUntil(() => t.app.status().mqtt?.connected, 10_000, 'daemon connected');
    // Slightly over the limit: still answered TOO_LARGE (it fits the packet size).
    await pub.publishAsync('edge-inferd/big/cmd/pause', JSON.stringify({ id: 'small-over', pad: 'x'.repeat(1500) }), { qos: 1 });
    await sub.waitFor((m) => m.topic.endsWith('/response') && m.json?.requestId === 'small-over');
    // 1 MB: the broker must not send it to the daemon at all.
    await pub.publishAsync('edge-inferd/big/cmd/pause', JSON.stringify({ id: 'huge', pad: 'x'.repeat(1_000_000) }), { qos: 1 });
    const id = randomUUID();
    await pub.publishAsync('edge-inferd/big/cmd/status', JSON.stringify({ id }), { qos: 1 });
    await sub.waitFor((m) => m.json?.requestId === id);
    expect(sub.messages.filter((m) => m.json?.requestId === 'huge')).toEqual([]);
    expect(t.app.status().mqtt).toMatchObject({ connected: true, connects: 1 });
  });
});

describe('row 11: the embedded broker off loopback', () => {
  const base = { deviceId: 'emb', cameras: { c: { uri: 'test://ball' } } };
  function load(mqttConf: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), 'emb-conf-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, JSON.stringify({ ...base, mqtt: mqttConf }));
    return () => loadConfig({ file, env: {} });
  }

  it('is refused at config load without credentials, naming the key and the fix', () => {
    const err = (() => {
      try {
        load({ embedded: { host: '0.0.0.0' } })();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'mqtt.embedded.host: listening beyond loopback (got "0.0.0.0") needs authentication; set mqtt.username and mqtt.passwordFile (clients of the embedded broker must then log in with them), or listen on 127.0.0.1',
    ]);
    // Loopback stays anonymous; with credentials any address is accepted.
    expect(load({ embedded: { host: '127.0.0.1' } })().mqtt.embedded.host).toBe('127.0.0.1');
    const dir = mkdtempSync(join(tmpdir(), 'emb-pw-'));
    writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`);
    expect(load({ embedded: { host: '0.0.0.0' }, username: 'kiosk', passwordFile: join(dir, 'pw') })().mqtt.embedded.host).toBe('0.0.0.0');
  });

  it('with credentials the daemon logs in to its own broker and an anonymous client is refused; no anonymous warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emb-pw-'));
    writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`);
    const port = await freePort();
    const t = await startTestApp({
      samples: ['glass-1.png'],
      extra: { mqtt: { url: 'embedded', embedded: { host: '0.0.0.0', port }, username: 'kiosk', passwordFile: join(dir, 'pw') } },
    });
    cleanups.push(() => t.stop());
    await waitUntil(() => t.app.status().mqtt?.connected, 10_000, 'daemon connected to its broker');
    const anon = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0 }).then(
      (c) => {
        c.end(true);
        return 'connected';
      },
      (e: Error) => e.message,
    );
    expect(anon).toMatch(/Bad username or password|Not authorized/);
    const ok = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      username: 'kiosk',
      password: PASSWORD,
    });
    await ok.endAsync();
    expect(t.logs.filter((l) => l.msg?.includes('anonymous'))).toEqual([]);
  });

  it('anonymous on loopback: a warning at every start', async () => {
    const t = await startTestApp({ samples: ['glass-1.png'] });
    cleanups.push(() => t.stop());
    const warned = t.logs.filter((l) => l.msg === 'the embedded mqtt broker accepts anonymous clients');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, url: expect.stringMatching(/^mqtt:\/\/127\.0\.0\.1:\d+$/) });
  });
});

describe('row 16: connection errors say what happened', () => {
  it('a broker that stops answering (keepalive lost) is MQTT_CONNECTION_LOST, not MQTT_ERROR', { timeout: 30_000 }, async (ctx) => {
    const mosq = await startMosquitto();
    if (!mosq) return ctx.skip();
    cleanups.push(() => mosq.stop());
    const { log } = captureLog('info');
    const c = new MqttConnection({
      url: mosq.url,
      clientId: 'ka-test',
      protocolVersion: 5,
      fallbackTo4: false,
      keepaliveSec: 1,
      persistentSession: false,
      sessionExpirySec: 0,
      statusTopic: 'ka/status',
      birth: () => 'online',
      will: 'offline',
      log,
    });
    await c.start();
    cleanups.push(() => c.stop());
    expect(c.connected).toBe(true);
    const pid = mosq.pid()!;
    process.kill(pid, 'SIGSTOP');
    cleanups.push(() => process.kill(pid, 'SIGCONT'));
    await waitUntil(() => c.state().lastErrorCode, 15_000, 'an error after the keepalive');
    // The error comes just before the close: connected may still read true here.
    expect(c.state().lastErrorCode).toBe('MQTT_CONNECTION_LOST');
    expect(c.state().lastError).toMatch(/no answer from the broker within the keepalive/);
  });

  it('a client id the broker does not allow: the hint names mqtt.clientId, not only the password', { timeout: 30_000 }, async (ctx) => {
    const passwd = needTool('mosquitto_passwd', 'mosquitto', ['/usr/bin/mosquitto_passwd']);
    if (!passwd) return ctx.skip();
    const dir = mkdtempSync(join(tmpdir(), 'mosq-cid-'));
    execFileSync(passwd, ['-c', '-b', join(dir, 'passwd'), 'kiosk', PASSWORD]);
    writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`);
    const port = await freePort();
    const mosq = await startMosquitto({
      port,
      extraConf: `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${join(dir, 'passwd')}\nclientid_prefixes kiosk-`,
    });
    if (!mosq) return ctx.skip();
    cleanups.push(() => mosq.stop());
    const { log } = captureLog('info');
    const c = new MqttConnection({
      url: mosq.url,
      clientId: 'edge-inferd-dev',
      username: 'kiosk',
      passwordFile: join(dir, 'pw'),
      protocolVersion: 5,
      fallbackTo4: false,
      keepaliveSec: 30,
      persistentSession: false,
      sessionExpirySec: 0,
      statusTopic: 'x/status',
      birth: () => 'online',
      will: 'offline',
      log,
    });
    await c.start();
    cleanups.push(() => c.stop());
    await waitUntil(() => c.state().lastErrorCode, 10_000, 'the refusal');
    const st = c.state();
    expect(st.lastErrorCode).toBe('MQTT_AUTH');
    expect(st.lastError).toContain('client id "edge-inferd-dev"');
    expect(st.lastError).toContain('mqtt.clientId');
  });
});
