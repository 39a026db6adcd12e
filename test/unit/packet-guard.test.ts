import { describe, expect, it } from 'vitest';
import { PacketSizeGuard, PublishSizeGuard, RemainingLength } from '../../src/publish/packet-guard.js';
import { publishPacket, remainingLength } from '../helpers/mqtt-packets.js';

/**
 * The MQTT fixed-header reader both packet guards share: the remaining length at the boundaries
 * where it takes one more byte, its 4-byte maximum, a 5th byte refused, and packets that end
 * early keeping the walk in step with the stream.
 */

const MAX = 268_435_455; // 0xff 0xff 0xff 0x7f

/** Every byte of `bytes` through one decoder: what each push answered. */
function decode(bytes: number[]): (number | string | undefined)[] {
  const r = new RemainingLength();
  return bytes.map((b) => r.push(b));
}

describe('RemainingLength', () => {
  it.each([
    [0, 1],
    [127, 1],
    [128, 2],
    [16_383, 2],
    [16_384, 3],
    [2_097_151, 3],
    [2_097_152, 4],
    [MAX, 4],
  ])('%i takes %i byte(s) and decodes back to itself', (n, bytes) => {
    const enc = [...remainingLength(n)];
    expect(enc).toHaveLength(bytes);
    expect(decode(enc)).toEqual([...Array(bytes - 1).fill(undefined), n]);
  });

  it('is malformed when a 4th byte says another follows (a 5th length byte is never read as one)', () => {
    expect(decode([0xff, 0xff, 0xff, 0xff])).toEqual([undefined, undefined, undefined, 'malformed']);
    expect(decode([0x80, 0x80, 0x80, 0x80])).toEqual([undefined, undefined, undefined, 'malformed']);
  });

  it('starts afresh after each length', () => {
    expect(decode([0x80, 0x01, 0x05, 0xff, 0x7f])).toEqual([undefined, 128, 5, undefined, 16_383]);
  });
});

/** Feeds `stream` to a guard `size` bytes at a time; the reason it stopped at, with the chunk's offset. */
function run(guard: { feed(b: Uint8Array): string | undefined }, stream: Buffer, size: number): { why?: string; at: number } {
  for (let at = 0; at < stream.length; at += size) {
    const why = guard.feed(stream.subarray(at, at + size));
    if (why) return { why, at };
  }
  return { at: stream.length };
}

const header = (type: number, length: number) => Buffer.concat([Buffer.from([type << 4]), remainingLength(length)]);

describe('PacketSizeGuard at the remaining-length boundaries', () => {
  it.each([127, 16_383])('a limit of %i: a packet of exactly that passes, one byte more is refused', (max) => {
    const at = Buffer.concat([header(3, max), Buffer.alloc(max), header(12, 0)]);
    for (const size of [1, 3, at.length]) expect(run(new PacketSizeGuard(max), at, size), `chunks of ${size}`).toEqual({ at: at.length });
    const over = header(3, max + 1);
    expect(run(new PacketSizeGuard(max), over, 1).why).toBe(
      `the broker sent a packet (type 3) of ${max + 1} bytes, over the limit of ${max}`,
    );
  });

  it("the 4-byte maximum: read whole, refused under a smaller limit, passed under MQTT's own", () => {
    expect(run(new PacketSizeGuard(MAX - 1), header(3, MAX), 1).why).toBe(
      `the broker sent a packet (type 3) of ${MAX} bytes, over the limit of ${MAX - 1}`,
    );
    expect(run(new PacketSizeGuard(MAX), header(3, MAX), 1)).toEqual({ at: 5 });
  });

  it('a 5th length byte is not read as a length: the guard stops and leaves the malformed packet to the protocol parser', () => {
    const g = new PacketSizeGuard(10);
    // Read as a 5-byte varint this would be 34 GB, far over the limit; it is malformed, not oversize.
    expect(g.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toBeUndefined();
    expect(g.feed(header(3, 1000))).toBeUndefined();
  });

  it('after a packet with a body, the next header is read from the right byte', () => {
    // A PUBLISH of 200 bytes whose body is full of bytes that would read as an oversize header.
    const stream = Buffer.concat([header(3, 200), Buffer.alloc(200, 0xff), header(13, 0), header(3, 201)]);
    for (const size of [1, 7, 256, stream.length]) {
      expect(run(new PacketSizeGuard(200), stream, size).why, `chunks of ${size}`).toBe(
        'the broker sent a packet (type 3) of 201 bytes, over the limit of 200',
      );
    }
  });
});

describe('PublishSizeGuard at the remaining-length boundaries', () => {
  const on = (max: number) => (topic: string) => (topic === 'p/d/cmd/x' ? max : Infinity);
  // Body: topic length (2) + topic (9) + packet id (2) + payload.
  const publish = (body: number) => publishPacket('p/d/cmd/x', Buffer.alloc(body - 13));

  it.each([127, 16_383])('a limit of %i: a PUBLISH of exactly that passes, one byte more (one more length byte) is refused', (max) => {
    const at = publish(max);
    const over = publish(max + 1);
    expect(over.length - at.length).toBe(2); // a byte of body and a byte of length
    for (const size of [1, 5, at.length])
      expect(run(new PublishSizeGuard(on(max)), at, size), `chunks of ${size}`).toEqual({ at: at.length });
    for (const size of [1, 5, over.length]) {
      expect(run(new PublishSizeGuard(on(max)), over, size).why, `chunks of ${size}`).toBe(
        `a PUBLISH of ${max + 1} bytes on p/d/cmd/x is over its limit of ${max} bytes`,
      );
    }
  });

  it('a PUBLISH whose body ends inside its topic length does not put the walk out of step', () => {
    // One byte of body (half a topic length), then an oversize PUBLISH the guard must still read from its header.
    const stream = Buffer.concat([Buffer.from([0x30, 0x01, 0x00]), publish(101)]);
    for (const size of [1, 2, stream.length]) {
      expect(run(new PublishSizeGuard(on(100)), stream, size).why, `chunks of ${size}`).toBe(
        'a PUBLISH of 101 bytes on p/d/cmd/x is over its limit of 100 bytes',
      );
    }
  });

  it('an empty topic is checked as the empty topic', () => {
    const stream = Buffer.concat([Buffer.from([0x30, 0x05, 0x00, 0x00]), Buffer.from('abc')]);
    expect(run(new PublishSizeGuard((t) => (t === '' ? 4 : Infinity)), stream, 1).why).toBe(
      'a PUBLISH of 5 bytes on  is over its limit of 4 bytes',
    );
  });
});
