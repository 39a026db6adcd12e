import { createServer, type Server, type Socket, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { ConnectionGuard, DEFAULT_HTTP_LIMITS } from '../../src/health/limits.js';

/**
 * ConnectionGuard on a real TCP server on loopback, clients coming from several loopback addresses
 * (127.0.0.2, 127.0.0.3, ...: "the LAN"; 127.0.0.1: the device itself). An admitted connection is
 * greeted with "welcome"; a refused one gets the 503 and is closed.
 */

interface Harness {
  server: Server;
  port: number;
  refusals: string[];
  /** Server-side sockets, in the order they came. */
  accepted: Socket[];
  /** Per server-side socket: its 'close' (after the guard's own close handler, which was added first). */
  closes: Map<Socket, Promise<void>>;
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function harness(limits: { connections: number; perClient: number }): Promise<Harness> {
  const refusals: string[] = [];
  const accepted: Socket[] = [];
  const closes = new Map<Socket, Promise<void>>();
  const refusedSockets = new Set<Socket>();
  const guard = new ConnectionGuard(limits, (socket, reason) => {
    refusedSockets.add(socket);
    refusals.push(`${socket.remoteAddress} ${reason}`);
  });
  const server = createServer((socket) => {
    accepted.push(socket);
    guard.admit(socket);
    closes.set(socket, new Promise<void>((r) => socket.once('close', () => r())));
    if (!refusedSockets.has(socket)) socket.write('welcome\n');
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, refusals, accepted, closes };
}

/** Connects from `from` and resolves with the client socket and the first thing the server said. */
function client(h: Harness, from: string, allowHalfOpen = false): Promise<{ socket: Socket; said: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: h.port, host: '127.0.0.1', localAddress: from, allowHalfOpen });
    let text = '';
    socket.on('data', (d) => {
      text += d.toString();
      if (text.startsWith('welcome\n')) resolve({ socket, said: 'welcome' });
    });
    socket.on('end', () => resolve({ socket, said: text }));
    socket.on('error', reject);
  });
}

describe('ConnectionGuard', () => {
  it('the defaults a server gets without limits are the configuration defaults (http.limits)', () => {
    expect(DEFAULT_HTTP_LIMITS).toEqual(configSchema.parse({}).http.limits);
  });

  it('refuses one connection over perClient with a 503 BUSY and closes it; other clients are not counted against it', async () => {
    const h = await harness({ connections: 100, perClient: 2 });
    const a1 = await client(h, '127.0.0.2');
    const a2 = await client(h, '127.0.0.2');
    const b1 = await client(h, '127.0.0.3');
    expect([a1.said, a2.said, b1.said]).toEqual(['welcome', 'welcome', 'welcome']);
    const a3 = await client(h, '127.0.0.2');
    expect(a3.said).toBe(
      'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 1\r\n' +
        'Content-Length: 47\r\n\r\n{"error":"too many connections","code":"BUSY"}\n',
    );
    expect(h.refusals).toEqual(['127.0.0.2 too many connections from this client']);
    // One of its connections closes: the client may open one again.
    a1.socket.destroy();
    await h.closes.get(h.accepted[0]);
    const a4 = await client(h, '127.0.0.2');
    expect(a4.said).toBe('welcome');
    // Two open again (a2 and a4): the next one is refused, as the third was.
    expect((await client(h, '127.0.0.2')).said).toMatch(/^HTTP\/1\.1 503/);
    for (const c of [a2, b1, a4]) c.socket.destroy();
  });

  it('refuses the LAN beyond `connections` in all, while the device itself (127.0.0.1) still gets in up to perClient', async () => {
    const h = await harness({ connections: 3, perClient: 2 });
    const open = [await client(h, '127.0.0.2'), await client(h, '127.0.0.2'), await client(h, '127.0.0.3')];
    expect(open.map((c) => c.said)).toEqual(['welcome', 'welcome', 'welcome']);
    expect((await client(h, '127.0.0.4')).said).toMatch(/^HTTP\/1\.1 503/);
    expect(h.refusals).toEqual(['127.0.0.4 too many connections']);
    const local = [await client(h, '127.0.0.1'), await client(h, '127.0.0.1')];
    expect(local.map((c) => c.said)).toEqual(['welcome', 'welcome']);
    expect((await client(h, '127.0.0.1')).said).toMatch(/^HTTP\/1\.1 503/);
    expect(h.refusals.at(-1)).toBe('127.0.0.1 too many connections from this client');
    // The device's own connections count in the total too; the refused ones do not. With those closed
    // and one LAN connection closing, exactly one more gets in.
    for (const c of local) c.socket.destroy();
    await Promise.all(h.accepted.slice(4, 6).map((s) => h.closes.get(s)));
    expect((await client(h, '127.0.0.5')).said).toMatch(/^HTTP\/1\.1 503/);
    open[2].socket.destroy();
    await h.closes.get(h.accepted[2]);
    expect((await client(h, '127.0.0.5')).said).toBe('welcome');
    expect((await client(h, '127.0.0.6')).said).toMatch(/^HTTP\/1\.1 503/);
    for (const c of [...open, ...local]) c.socket.destroy();
  });

  it("a refused connection is closed on the server's side even when the client keeps its own side open", async () => {
    const h = await harness({ connections: 100, perClient: 1 });
    const first = await client(h, '127.0.0.2');
    const refused = await client(h, '127.0.0.2', true);
    expect(refused.said).toMatch(/^HTTP\/1\.1 503/);
    // The client has not ended its side; the server's socket (its file descriptor) is gone all the same.
    expect(refused.socket.writable).toBe(true);
    await h.closes.get(h.accepted[1]);
    expect(h.accepted[1].destroyed).toBe(true);
    // An error on a socket being refused (a reset by the client) is not ours to report: it is handled, not thrown.
    expect(() => h.accepted[1].emit('error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).not.toThrow();
    first.socket.destroy();
    refused.socket.destroy();
  });
});
