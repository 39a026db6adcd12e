/**
 * Watches the MQTT packets one client sends to the embedded broker, as they stream in, and says
 * when a PUBLISH is too large for its topic, from its fixed header and topic alone: the broker
 * then closes that client before the packet is whole, so an oversize command is never held in
 * memory. (MQTT 5's maximum packet size does this for external brokers; aedes speaks 3.1.1 only.)
 * Only the topic is ever buffered (at most 64 KiB); the payload is counted, not kept.
 */
export class PublishSizeGuard {
  private state: 'type' | 'length' | 'topicLength' | 'topic' | 'skip' | 'off' = 'type';
  private type = 0;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private topicLength = 0;
  private topic: number[] = [];
  private half: number | undefined;

  /** `limit(topic)`: the largest PUBLISH packet body allowed on that topic (Infinity: any). */
  constructor(private readonly limit: (topic: string) => number) {}

  /** Feeds the next bytes from the client; returns why to close it, or undefined. */
  feed(chunk: Uint8Array): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'off':
          return undefined;
        case 'skip': {
          const n = Math.min(this.remaining, chunk.length - i);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'type';
          break;
        }
        case 'type':
          this.type = chunk[i++] >> 4;
          this.remaining = 0;
          this.multiplier = 1;
          this.lengthBytes = 0;
          this.state = 'length';
          break;
        case 'length': {
          const b = chunk[i++];
          this.remaining += (b & 0x7f) * this.multiplier;
          this.multiplier *= 128;
          if (++this.lengthBytes > 4) {
            this.state = 'off'; // malformed: aedes' own parser refuses it
            return undefined;
          }
          if (b & 0x80) break;
          if (this.remaining === 0) this.state = 'type';
          else if (this.type === 3) {
            this.state = 'topicLength';
            this.half = undefined;
          } else this.state = 'skip';
          break;
        }
        case 'topicLength': {
          const b = chunk[i++];
          this.remaining--;
          if (this.half === undefined) {
            this.half = b;
            break;
          }
          this.topicLength = (this.half << 8) | b;
          this.topic = [];
          this.state = 'topic';
          if (this.topicLength === 0) {
            const why = this.check('');
            if (why) return why;
            this.state = this.remaining === 0 ? 'type' : 'skip';
          }
          break;
        }
        case 'topic': {
          const n = Math.min(this.topicLength - this.topic.length, chunk.length - i, this.remaining);
          for (let k = 0; k < n; k++) this.topic.push(chunk[i + k]);
          i += n;
          this.remaining -= n;
          if (this.topic.length === this.topicLength || this.remaining === 0) {
            const why = this.check(Buffer.from(this.topic).toString('utf8'));
            if (why) return why;
            this.state = this.remaining === 0 ? 'type' : 'skip';
          }
          break;
        }
      }
    }
    return undefined;
  }

  private check(topic: string): string | undefined {
    const size = this.remaining + 2 + this.topicLength;
    const max = this.limit(topic);
    if (size <= max) return undefined;
    this.state = 'off';
    return `a PUBLISH of ${size} bytes on ${topic.length > 200 ? `${topic.slice(0, 200)}...` : topic} is over its limit of ${max} bytes`;
  }
}

/**
 * The client side: watches the bytes a broker sends, and says when a packet's fixed header
 * announces more than `max` bytes, before the packet is buffered (mqtt.js would hold it whole, and
 * a fake or broken broker ignores the MQTT 5 maximum packet size we announce). Nothing is kept.
 */
export class PacketSizeGuard {
  private state: 'type' | 'length' | 'skip' | 'off' = 'type';
  private type = 0;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;

  constructor(private readonly max: number) {}

  /** Feeds the next bytes from the broker; returns why to close the connection, or undefined. */
  feed(chunk: Uint8Array): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'off':
          return undefined;
        case 'skip': {
          const n = Math.min(this.remaining, chunk.length - i);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'type';
          break;
        }
        case 'type':
          this.type = chunk[i++] >> 4;
          this.remaining = 0;
          this.multiplier = 1;
          this.lengthBytes = 0;
          this.state = 'length';
          break;
        case 'length': {
          const b = chunk[i++];
          this.remaining += (b & 0x7f) * this.multiplier;
          this.multiplier *= 128;
          if (++this.lengthBytes > 4) {
            this.state = 'off'; // malformed: mqtt.js's parser refuses it
            return undefined;
          }
          if (b & 0x80) break;
          if (this.remaining > this.max) {
            this.state = 'off';
            return `the broker sent a packet (type ${this.type}) of ${this.remaining} bytes, over the limit of ${this.max}`;
          }
          this.state = this.remaining === 0 ? 'type' : 'skip';
          break;
        }
      }
    }
    return undefined;
  }
}
