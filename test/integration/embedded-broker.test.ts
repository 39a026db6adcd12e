import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { EmbeddedBroker } from '../../src/publish/broker.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';

/** The embedded broker as the built-in demo config starts it: where it actually listens. */

/** Local addresses of the TCP sockets listening on `port`, as the kernel reports them (/proc/net/tcp and tcp6). */
function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 on this machine
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A: LISTEN
      const [addrHex, portHex] = f[1].split(':');
      if (parseInt(portHex, 16) !== port) continue;
      // The address is printed as 32-bit words in host (little-endian) byte order.
      const bytes: number[] = [];
      for (let i = 0; i < addrHex.length; i += 8) {
        const word = addrHex
          .slice(i, i + 8)
          .match(/../g)!
          .map((h) => parseInt(h, 16));
        bytes.push(...word.reverse());
      }
      if (!v6) out.push(bytes.join('.'));
      else {
        const groups = Array.from({ length: 8 }, (_, g) => ((bytes[2 * g] << 8) | bytes[2 * g + 1]).toString(16));
        out.push(new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1));
      }
    }
  }
  return out;
}

const isLoopback = (addr: string) => /^127\./.test(addr) || addr === '::1' || /^::ffff:(127\.|7f)/.test(addr);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('embedded broker with the default config', () => {
  it('listens on loopback only (127.0.0.1), never on every interface', async () => {
    const port = await freePort();
    // No config file at all: the built-in demo, only the port moved off 1883.
    const c = loadConfig({
      env: { EDGE_INFERD_MQTT__EMBEDDED__PORT: String(port) },
      defaultPath: join(tmpdir(), `no-such-config-${process.pid}.yaml`),
    });
    expect(c.mqtt.url).toBe('embedded');
    const broker = new EmbeddedBroker(c.mqtt.embedded);
    await broker.start();
    cleanups.push(() => broker.stop());

    const addrs = listeningAddresses(port);
    expect(addrs.length, `a listening socket on port ${port}`).toBeGreaterThan(0);
    expect(addrs.filter((a) => !isLoopback(a))).toEqual([]);
    expect(addrs).toContain('127.0.0.1');

    // and it is that broker: a client gets through on its url
    const sub = await subscribe(broker.url, 'x/#', { validate: false, protocolVersion: 4 });
    cleanups.push(() => sub.close());
  });
});
