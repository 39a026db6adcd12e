import mqtt from 'mqtt';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker, websocketOriginAllowed } from '../../src/publish/broker.js';
import { freePort } from '../helpers/ports.js';

/** MQTT over WebSockets on the embedded broker, spoken by MQTT.js over ws:// (what a browser page uses). */

const brokers: EmbeddedBroker[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  for (const b of brokers.splice(0)) await b.stop();
});

async function broker(over: Partial<ConstructorParameters<typeof EmbeddedBroker>[0]> = {}, origins?: string[]): Promise<EmbeddedBroker> {
  const b = new EmbeddedBroker({
    host: '127.0.0.1',
    port: await freePort(),
    websocket: { host: '127.0.0.1', port: await freePort(), path: '/mqtt', origins },
    ...over,
  });
  await b.start();
  brokers.push(b);
  return b;
}

async function client(url: string, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
  clients.push(c);
  return c;
}

/** Connecting must fail: resolves with the error. */
function refused(url: string, opts: mqtt.IClientOptions = {}): Promise<Error> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
    c.once('connect', () => {
      c.end(true);
      reject(new Error('connected, but should have been refused'));
    });
    c.once('error', (err) => {
      c.end(true);
      resolve(err);
    });
    c.once('close', () => resolve(new Error('closed')));
  });
}

describe('embedded broker over WebSockets', () => {
  it('carries messages both ways between a ws:// client (MQTT.js) and a TCP client', async () => {
    const b = await broker();
    expect(b.websocketUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const ws = await client(b.websocketUrl!);
    const tcp = await client(b.url);
    await ws.subscribeAsync('edge-inferd/dev/+/result', { qos: 1 });
    await tcp.subscribeAsync('edge-inferd/dev/cmd/status', { qos: 1 });
    const got = new Promise<[string, string]>((r) => ws.once('message', (t, p) => r([t, p.toString()])));
    const back = new Promise<[string, string]>((r) => tcp.once('message', (t, p) => r([t, p.toString()])));
    await tcp.publishAsync('edge-inferd/dev/tray/result', '{"label":"glass"}', { qos: 1 });
    await ws.publishAsync('edge-inferd/dev/cmd/status', '{}', { qos: 1 });
    expect(await got).toEqual(['edge-inferd/dev/tray/result', '{"label":"glass"}']);
    expect(await back).toEqual(['edge-inferd/dev/cmd/status', '{}']);
  });

  it('asks the same login as the TCP listener: anonymous and wrong passwords are refused', async () => {
    const b = await broker({ credentials: { username: 'kiosk', password: () => 'right-password' } });
    expect(String(await refused(b.websocketUrl!))).toMatch(/Not authorized|Bad username or password/i);
    expect(String(await refused(b.websocketUrl!, { username: 'kiosk', password: 'wrong' }))).toMatch(
      /Not authorized|Bad username or password/i,
    );
    const ok = await client(b.websocketUrl!, { username: 'kiosk', password: 'right-password' });
    expect(ok.connected).toBe(true);
  });

  it('refuses pages of other origins (no CORS for WebSockets), takes the device own pages and the listed ones', async () => {
    const b = await broker({}, ['http://screen.example:8080']);
    const withOrigin = (origin: string): mqtt.IClientOptions => ({ wsOptions: { headers: { Origin: origin } } });
    // The upgrade itself is answered 401 (ws: a WebSocket client that shows the HTTP answer).
    const status = await new Promise<number>((resolve, reject) => {
      const sock = new WebSocket(b.websocketUrl!, 'mqtt', { origin: 'http://evil.example' });
      sock.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      sock.once('open', () => reject(new Error('opened')));
      sock.once('error', () => undefined);
    });
    expect(status).toBe(401);
    expect((await client(b.websocketUrl!, withOrigin('http://127.0.0.1:8321'))).connected).toBe(true);
    expect((await client(b.websocketUrl!, withOrigin('http://screen.example:8080'))).connected).toBe(true);
    expect(websocketOriginAllowed('http://localhost:3000')).toBe(true);
    expect(websocketOriginAllowed('http://localhost.evil.example')).toBe(false);
    expect(websocketOriginAllowed('null')).toBe(false);
  });

  it('answers plain HTTP on the WebSocket port with 426, and stops cleanly with ws clients connected', async () => {
    const b = await broker();
    const port = new URL(b.websocketUrl!).port;
    const r = await fetch(`http://127.0.0.1:${port}/mqtt`);
    expect(r.status).toBe(426);
    const ws = await client(b.websocketUrl!);
    const closed = new Promise<void>((res) => ws.once('close', () => res()));
    await b.stop();
    await closed;
  });
});
