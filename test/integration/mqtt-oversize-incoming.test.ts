import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../src/publish/client.js';
import { captureLog } from '../helpers/log.js';
import { remainingLength } from '../helpers/mqtt-packets.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Issue 21 row 10, the client side: a fake broker accepts the connection and then sends a PUBLISH
 * whose header announces 200 MB, streaming its body. The daemon's connection refuses it from the
 * header (its maximum packet size) and closes, having read a few chunks: the packet is never
 * buffered whole. (The broker side, the embedded broker, is test/integration/command-abuse.test.ts.)
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('an oversized packet from the broker', () => {
  it('is refused from its fixed header: the connection closes after a few MB of a 200 MB PUBLISH', { timeout: 30_000 }, async () => {
    const sent: number[] = [];
    const closed: Promise<void>[] = [];
    const server = createServer((socket: Socket) => {
      let bytes = 0;
      closed.push(new Promise((r) => socket.once('close', () => r())));
      socket.on('error', () => undefined);
      socket.once('data', (connect) => {
        // The CONNECT's protocol level: 5 gets a v5 CONNACK (no properties), else a 3.1.1 one.
        const v5 = connect.includes(Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05]));
        socket.write(v5 ? Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]) : Buffer.from([0x20, 0x02, 0x00, 0x00]));
        const topic = Buffer.from('edge-inferd/x/cmd/status');
        const total = 200 * 1024 * 1024;
        socket.write(
          Buffer.concat([
            Buffer.from([0x30]),
            remainingLength(total),
            Buffer.from([0, topic.length]),
            topic,
            ...(v5 ? [Buffer.from([0])] : []),
          ]),
        );
        const chunk = Buffer.alloc(256 * 1024, 0x78);
        const pump = () => {
          while (!socket.destroyed && bytes < total) {
            bytes += chunk.length;
            sent.push(bytes);
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        pump();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(() => r(undefined))));
    const { log, lines } = captureLog('info');
    const c = new MqttConnection({
      url: `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`,
      clientId: 'oversize-test',
      protocolVersion: 5,
      fallbackTo4: false,
      keepaliveSec: 30,
      persistentSession: false,
      sessionExpirySec: 0,
      statusTopic: 'edge-inferd/x/status',
      birth: () => 'online',
      will: 'offline',
      maximumPacketSize: 20_480,
      reconnectMinMs: 60_000,
      reconnectMaxMs: 60_000,
      log,
    });
    const before = process.memoryUsage().rss;
    await c.start();
    cleanups.push(() => c.stop());
    const why = `the broker sent a packet (type 3) of ${200 * 1024 * 1024} bytes, over the limit of 20480`;
    await waitUntil(() => lines.find((l) => l.msg === `mqtt: ${why}; connection closed`), 15_000, 'the refusal');
    await closed[0];
    expect(lines.some((l) => l.code === 'MQTT_PACKET_TOO_LARGE' && l.err === why)).toBe(true);
    // Closed while the body was still coming: far less than 200 MB went out, and none of it was kept.
    expect(sent[sent.length - 1]).toBeLessThan(64 * 1024 * 1024);
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
  });
});
