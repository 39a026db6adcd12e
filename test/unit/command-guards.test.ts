import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../src/capture/frame.js';
import { SnapshotStore, MAX_ENCODES } from '../../src/health/snapshots.js';
import type { Inference } from '../../src/inference/types.js';
import { forwardable } from '../../src/publish/broker.js';
import { PublishSizeGuard } from '../../src/publish/packet-guard.js';
import { boundProblems, CommandError, CommandHandler, type CommandHandlers } from '../../src/publish/commands.js';
import { Topics } from '../../src/publish/topics.js';
import { ManualClock } from '../helpers/clock.js';
import { publishPacket } from '../helpers/mqtt-packets.js';
import { captureLog } from '../helpers/log.js';

/**
 * The guards every command goes through (issue 13, rows 5, 7, 10): the name is checked before
 * anything is published, commands at once are bounded, problems lists are bounded, snapshot
 * encodings are shared per frame and bounded.
 */

const topics = new Topics('edge-inferd', 'dev');

function handler(opts: { maxInFlight?: number; handlers?: Partial<CommandHandlers> } = {}) {
  const { log, lines } = captureLog('debug');
  const published: { topic: string; payload: any }[] = [];
  const h = new CommandHandler({
    topics,
    deviceId: 'dev',
    maxBytes: 16_384,
    maxInFlight: opts.maxInFlight,
    log,
    publish: async (topic, payload) => void published.push({ topic, payload: JSON.parse(payload) }),
    handlers: {
      snapshot: () => Promise.reject(new Error('unused')),
      reload: () => Promise.reject(new Error('unused')),
      pause: async () => ({ changed: [], paused: [] }),
      resume: async () => ({ changed: [], paused: [] }),
      status: () => ({ fine: true }),
      ...opts.handlers,
    },
  });
  return { h, lines, published };
}

describe('commands.maxBytes', () => {
  it('handles a payload of exactly maxBytes and refuses one a byte over (TOO_LARGE, answered with its id)', async () => {
    const { h, published } = handler();
    // JSON allows trailing whitespace: the same command padded to the exact size.
    const padded = (n: number) => Buffer.from('{"id":"x"}'.padEnd(n, ' '));
    await h.handle('edge-inferd/dev/cmd/status', padded(16_384));
    await h.handle('edge-inferd/dev/cmd/status', padded(16_385));
    expect(published.map((p) => [p.payload.ok, p.payload.error?.code, p.payload.requestId])).toEqual([
      [true, undefined, 'x'],
      [false, 'TOO_LARGE', 'x'],
    ]);
  });
});

describe('command names are checked before any publish', () => {
  it("cmd/ (empty), a wildcard, an over-long name or another device's topic: ignored with one warning, nothing published", async () => {
    const { h, lines, published } = handler();
    const body = Buffer.from('{"id":"x"}');
    for (const topic of [
      'edge-inferd/dev/cmd/',
      'edge-inferd/dev/cmd/model/',
      'edge-inferd/dev/cmd/+',
      `edge-inferd/dev/cmd/${'a'.repeat(65)}`,
      'edge-inferd/dev/cmd/a b',
      'edge-inferd/other/cmd/status',
    ]) {
      await h.handle(topic, body);
    }
    expect(published).toEqual([]);
    const warned = lines.filter((l) => l.msg === 'command ignored: not a command topic');
    expect(warned.map((l) => l.topic)).toEqual([
      'edge-inferd/dev/cmd/',
      'edge-inferd/dev/cmd/model/',
      'edge-inferd/dev/cmd/+',
      `edge-inferd/dev/cmd/${'a'.repeat(65)}`,
      'edge-inferd/dev/cmd/a b',
    ]);
    expect(lines.filter((l) => l.msg === "message outside this device's cmd/ topics ignored").map((l) => l.topic)).toEqual([
      'edge-inferd/other/cmd/status',
    ]);
    // A valid unknown name is still answered on its own response topic.
    await h.handle('edge-inferd/dev/cmd/selfdestruct', body);
    expect(published.map((p) => [p.topic, p.payload.error.code])).toEqual([
      ['edge-inferd/dev/cmd/selfdestruct/response', 'UNKNOWN_COMMAND'],
    ]);
  });
});

describe('commands at once are bounded', () => {
  it('past maxInFlight a request is answered BUSY with its id, and the slots free up once answered', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { h, published } = handler({ maxInFlight: 2, handlers: { status: () => gate.then(() => ({ fine: true })) } });
    const running = [
      h.handle('edge-inferd/dev/cmd/status', Buffer.from('{"id":"a"}')),
      h.handle('edge-inferd/dev/cmd/status', Buffer.from('{"id":"b"}')),
    ];
    await h.handle('edge-inferd/dev/cmd/status', Buffer.from('{"id":"c"}'));
    expect(published).toEqual([
      expect.objectContaining({
        payload: expect.objectContaining({ requestId: 'c', ok: false, error: expect.objectContaining({ code: 'BUSY' }) }),
      }),
    ]);
    release();
    await Promise.all(running);
    await h.handle('edge-inferd/dev/cmd/status', Buffer.from('{"id":"d"}'));
    expect(published.map((p) => [p.payload.requestId, p.payload.ok])).toEqual([
      ['c', false],
      ['a', true],
      ['b', true],
      ['d', true],
    ]);
  });
});

describe('commands queued for the persistent session while the daemon was down', () => {
  it('100 requests before start-up: 8 wait for it, the rest are answered BUSY at once; the 8 run once it is up', async () => {
    let up!: () => void;
    const ready = new Promise<void>((r) => (up = r));
    const { log } = captureLog('info');
    const published: any[] = [];
    const h = new CommandHandler({
      topics,
      deviceId: 'dev',
      maxBytes: 16_384,
      log,
      ready,
      publish: async (_t, payload) => void published.push(JSON.parse(payload)),
      handlers: {
        snapshot: () => Promise.reject(new Error('unused')),
        reload: () => Promise.reject(new Error('unused')),
        pause: async () => ({ changed: [], paused: [] }),
        resume: async () => ({ changed: [], paused: [] }),
        status: () => ({ fine: true }),
      },
    });
    const all = Array.from({ length: 100 }, (_, i) => h.handle('edge-inferd/dev/cmd/status', Buffer.from(JSON.stringify({ id: i }))));
    await Promise.all(all.slice(8));
    expect(published).toHaveLength(92);
    expect(published.every((p) => p.ok === false && p.error.code === 'BUSY')).toBe(true);
    up();
    await Promise.all(all);
    expect(published.slice(92).map((p) => [p.requestId, p.ok])).toEqual(Array.from({ length: 8 }, (_, i) => [i, true]));
  });
});

describe('problems are bounded', () => {
  it('lists the first ten, then "and N more", each cut to 200 characters', () => {
    const many = Array.from({ length: 25 }, (_, i) => `k${i}: unknown key`);
    expect(boundProblems(many)).toEqual([...many.slice(0, 10), 'and 15 more']);
    expect(boundProblems(['x'.repeat(500)])[0]).toHaveLength(200);
    expect(boundProblems(['a', 'b'])).toEqual(['a', 'b']);
  });

  it("a handler's own long problem list (a rejected reload) is bounded as well", async () => {
    const problems = Array.from({ length: 300 }, (_, i) => `cameras.c${i}.uri: bad`);
    const { h, published } = handler({ handlers: { reload: async () => ({ ok: false, problems }) as never } });
    await h.handle('edge-inferd/dev/cmd/reload', Buffer.from('{"id":1}'));
    expect(published[0].payload.error.problems).toHaveLength(11);
    expect(JSON.stringify(published[0].payload).length).toBeLessThan(2048);
  });
});

describe('snapshot encodings', () => {
  const frame = (seq: number): Frame => ({
    camera: 'c',
    seq,
    width: 64,
    height: 48,
    stride: 192,
    format: 'RGB',
    data: new Uint8Array(64 * 48 * 3).fill(seq * 20),
    capturedAtMs: 1000 + seq,
  });
  const inf = {} as Inference;

  it('requests for the same frame share one encoding; a new frame gets a new one', async () => {
    const store = new SnapshotStore({ clock: new ManualClock() });
    store.record(frame(1), inf);
    const all = await Promise.all(Array.from({ length: 50 }, () => store.command('c', 80, undefined)));
    expect(store.encodes).toBe(1);
    expect(new Set(all.map((r) => r.data)).size).toBe(1);
    // Later requests before the next frame get the same result too.
    expect((await store.command('c', 80, undefined)).frame.seq).toBe(1);
    expect(store.encodes).toBe(1);
    store.record(frame(2), inf);
    const next = await store.command('c', 80, undefined);
    expect(store.encodes).toBe(2);
    const { data } = await sharp(Buffer.from(next.data, 'base64')).raw().toBuffer({ resolveWithObject: true });
    expect(Math.abs(data[0] - 40)).toBeLessThanOrEqual(3);
  });

  it(`at most ${MAX_ENCODES} different encodings at once; one more is BUSY`, async () => {
    const store = new SnapshotStore({ clock: new ManualClock() });
    store.record(frame(1), inf);
    const running = Array.from({ length: MAX_ENCODES }, (_, i) => store.command('c', 50 + i, undefined));
    const busy = await store.command('c', 99, undefined).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(CommandError);
    expect((busy as CommandError).code).toBe('BUSY');
    await Promise.all(running);
    await expect(store.command('c', 99, undefined)).resolves.toMatchObject({ frame: { seq: 1 } });
  });
});

describe('the embedded broker forwards nothing that would make aedes drop a persistent session', () => {
  it('an empty topic level at QoS > 0 is held back from persistent sessions only', () => {
    expect(forwardable('p/d/cmd/', 1, false)).toBe(false);
    expect(forwardable('/p/d/cmd/x', 2, false)).toBe(false);
    expect(forwardable('p/d/cmd/', 0, false)).toBe(true);
    expect(forwardable('p/d/cmd/', 1, true)).toBe(true);
    expect(forwardable('p/d/cmd/status', 1, false)).toBe(true);
  });
});

describe("the embedded broker's publish size guard", () => {
  const pingreq = Buffer.from([0xc0, 0x00]);
  const limit = (topic: string) => (topic.startsWith('p/d/cmd/') ? 1000 : Infinity);

  /** Feeds the stream in chunks of `size` bytes; the reason it stopped at, with the byte offset. */
  function run(stream: Buffer, size: number): { why?: string; at: number } {
    const g = new PublishSizeGuard(limit);
    for (let at = 0; at < stream.length; at += size) {
      const why = g.feed(stream.subarray(at, at + size));
      if (why) return { why, at };
    }
    return { at: stream.length };
  }

  it('passes a PUBLISH exactly at the limit and refuses one a byte over', () => {
    // Topic length (2) + topic (13) + packet id (2) + payload: the packet body the limit counts.
    const at = publishPacket('p/d/cmd/pause', Buffer.alloc(1000 - 17));
    const over = publishPacket('p/d/cmd/pause', Buffer.alloc(1001 - 17));
    expect(at.length - 3).toBe(1000); // fixed header: type byte + 2 length bytes
    for (const size of [1, 16, at.length]) expect(run(at, size), `chunks of ${size}`).toEqual({ at: at.length });
    expect(run(over, 64).why).toBe('a PUBLISH of 1001 bytes on p/d/cmd/pause is over its limit of 1000 bytes');
  });

  it('passes small publishes and other packets, in any chunking; stops at the header of an oversize one', () => {
    const small = publishPacket('p/d/cmd/pause', Buffer.alloc(900));
    const big = publishPacket('p/d/cmd/pause', Buffer.alloc(2_000_000));
    const other = publishPacket('p/d/tray/result', Buffer.alloc(30_000));
    const ok = Buffer.concat([pingreq, small, other, pingreq, small]);
    for (const size of [1, 2, 3, 7, 64, 4096, ok.length]) expect(run(ok, size), `chunks of ${size}`).toEqual({ at: ok.length });
    const stream = Buffer.concat([small, other, big, small]);
    for (const size of [1, 5, 1024, 65_536]) {
      const r = run(stream, size);
      expect(r.why).toBe(`a PUBLISH of ${big.length - 4} bytes on p/d/cmd/pause is over its limit of 1000 bytes`);
      // Decided within the chunk that completes the topic: the payload is never waited for.
      expect(r.at).toBeLessThan(small.length + other.length + 4 + 2 + 13 + size);
    }
  });
});
