/** MQTT's "remaining length" is 1 to 4 bytes of 7 bits each, low first: at most 268,435,455. */
const MAX_LENGTH_BYTES = 4;

/**
 * Decodes a remaining length one byte at a time, as the bytes stream in. `push` answers the
 * length once its last byte has come, undefined while more follow, and 'malformed' when a 4th
 * byte still says another follows (MQTT 3.1.1 2.2.3, MQTT 5 1.5.5).
 */
export class RemainingLength {
  private value = 0;
  private multiplier = 1;
  private bytes = 0;

  push(byte: number): number | 'malformed' | undefined {
    this.value += (byte & 0x7f) * this.multiplier;
    this.multiplier *= 128;
    this.bytes++;
    if (!(byte & 0x80)) {
      const length = this.value;
      this.reset();
      return length;
    }
    return this.bytes === MAX_LENGTH_BYTES ? 'malformed' : undefined;
  }

  reset(): void {
    this.value = 0;
    this.multiplier = 1;
    this.bytes = 0;
  }
}

/**
 * Reads the start of a packet's body once its header has passed: `bytes` is the next piece of
 * it, `last` true when that piece ends the packet. Answers why to refuse the packet, 'done' when
 * it has seen enough (the rest of the packet is skipped unread), or undefined to see more.
 */
type BodyReader = (bytes: Uint8Array, last: boolean) => string | 'done' | undefined;

/**
 * The one walk over MQTT packets as their bytes stream in: each fixed header (type, remaining
 * length) goes to `onHeader`, which refuses the packet (a reason), skips its body (undefined) or
 * reads its start (a BodyReader). Bodies are counted past, never kept. A malformed length turns the
 * watch off: the protocol parser behind (aedes', mqtt.js's) refuses it with its own error.
 */
class PacketWalk {
  private state: 'type' | 'length' | 'body' | 'off' = 'type';
  private type = 0;
  private readonly length = new RemainingLength();
  private remaining = 0;
  private reader: BodyReader | undefined;

  constructor(private readonly onHeader: (type: number, length: number) => string | BodyReader | undefined) {}

  /** Feeds the next bytes; returns why to close the connection, or undefined. */
  feed(chunk: Uint8Array): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'off':
          return undefined;
        case 'type':
          this.type = chunk[i++] >> 4;
          this.state = 'length';
          break;
        case 'length': {
          const length = this.length.push(chunk[i++]);
          if (length === undefined) break;
          if (length === 'malformed') {
            this.state = 'off';
            return undefined;
          }
          const next = this.onHeader(this.type, length);
          if (typeof next === 'string') return this.refuse(next);
          this.remaining = length;
          this.reader = next;
          this.state = length === 0 ? 'type' : 'body';
          break;
        }
        case 'body': {
          const n = Math.min(this.remaining, chunk.length - i);
          const bytes = chunk.subarray(i, i + n);
          i += n;
          this.remaining -= n;
          const read = this.reader?.(bytes, this.remaining === 0);
          if (read === 'done') this.reader = undefined;
          else if (read !== undefined) return this.refuse(read);
          if (this.remaining === 0) this.state = 'type';
          break;
        }
      }
    }
    return undefined;
  }

  private refuse(why: string): string {
    this.state = 'off';
    return why;
  }
}

const PUBLISH = 3;

/**
 * Watches the MQTT packets one client sends to the embedded broker, as they stream in, and says
 * when a PUBLISH is too large for its topic, from its fixed header and topic alone: the broker
 * then closes that client before the packet is whole, so an oversize command is never held in
 * memory. (MQTT 5's maximum packet size does this for external brokers; aedes speaks 3.1.1 only.)
 * Only the topic is ever buffered (at most 64 KiB); the payload is counted, not kept.
 */
export class PublishSizeGuard {
  private readonly walk = new PacketWalk((type, length) => (type === PUBLISH ? this.topicReader(length) : undefined));

  /** `limit(topic)`: the largest PUBLISH packet body allowed on that topic (Infinity: any). */
  constructor(private readonly limit: (topic: string) => number) {}

  /** Feeds the next bytes from the client; returns why to close it, or undefined. */
  feed(chunk: Uint8Array): string | undefined {
    return this.walk.feed(chunk);
  }

  /** Reads the topic at the start of a PUBLISH body of `size` bytes, then checks `size` against its limit. */
  private topicReader(size: number): BodyReader {
    const head: number[] = [];
    let topicLength = -1;
    const parts: Uint8Array[] = [];
    let got = 0;
    return (bytes, last) => {
      let at = 0;
      while (topicLength < 0 && at < bytes.length) {
        head.push(bytes[at++]);
        if (head.length === 2) topicLength = (head[0] << 8) | head[1];
      }
      if (topicLength >= 0) {
        const n = Math.min(topicLength - got, bytes.length - at);
        parts.push(bytes.subarray(at, at + n));
        got += n;
      }
      if (topicLength >= 0 && got === topicLength) return this.check(parts, size);
      // A topic cut short by the packet's end is checked as far as it goes.
      return last ? this.check(parts, size) : undefined;
    };
  }

  private check(parts: Uint8Array[], size: number): string | 'done' {
    const topic = Buffer.concat(parts).toString('utf8');
    const max = this.limit(topic);
    if (size <= max) return 'done';
    return `a PUBLISH of ${size} bytes on ${topic.length > 200 ? `${topic.slice(0, 200)}...` : topic} is over its limit of ${max} bytes`;
  }
}

/**
 * The client side: watches the bytes a broker sends, and says when a packet's fixed header
 * announces more than `max` bytes, before the packet is buffered (mqtt.js would hold it whole, and
 * a fake or broken broker ignores the MQTT 5 maximum packet size we announce). Nothing is kept.
 */
export class PacketSizeGuard {
  private readonly walk = new PacketWalk((type, length) =>
    length > this.max ? `the broker sent a packet (type ${type}) of ${length} bytes, over the limit of ${this.max}` : undefined,
  );

  constructor(private readonly max: number) {}

  /** Feeds the next bytes from the broker; returns why to close the connection, or undefined. */
  feed(chunk: Uint8Array): string | undefined {
    return this.walk.feed(chunk);
  }
}
