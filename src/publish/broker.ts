import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { DaemonError } from '../errors.js';
import { PublishSizeGuard } from './packet-guard.js';

/**
 * The embedded broker (aedes): the zero-config default, so the demo runs with nothing installed.
 * It speaks MQTT 3.1.1 only (aedes has no MQTT 5, so no maximum packet size either); production
 * points mqtt.url at Mosquitto or a cluster.
 */

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** When set, every client must connect with this user name and password (the daemon does). */
  credentials?: { username: string; password: () => string };
  /** The largest PUBLISH packet taken on a topic (Infinity: any); a client sending a larger one is closed before it is whole. */
  publishLimit?: (topic: string) => number;
  /** Told when a client was closed for an oversize PUBLISH. */
  refused?: (why: string, client: string | undefined) => void;
}

/**
 * aedes delivers a message live by one topic matcher (where `+` matches an empty level, as MQTT
 * says) but records a persistent session's queued QoS 1/2 messages by another (where it does not).
 * A message on `a/b/` to a `a/b/+` subscriber with a persistent session is then sent but was never
 * queued, and aedes closes that subscriber's connection ("no such packet"): one publish to
 * `<prefix>/<id>/cmd/` dropped the daemon itself. Such a message is not forwarded to persistent
 * sessions at QoS > 0 at all.
 */
export function forwardable(topic: string, qos: number, clean: boolean): boolean {
  return clean || qos === 0 || !topic.split('/').includes('');
}

export class EmbeddedBroker {
  private broker: Aedes | undefined;
  private server: Server | undefined;
  readonly host: string;
  readonly port: number;
  private readonly credentials: EmbeddedBrokerOptions['credentials'];
  private readonly opts: EmbeddedBrokerOptions;

  constructor(opts: EmbeddedBrokerOptions) {
    this.host = opts.host;
    this.port = opts.port;
    this.credentials = opts.credentials;
    this.opts = opts;
  }

  get url(): string {
    return `mqtt://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Whether clients must authenticate. */
  get authenticated(): boolean {
    return this.credentials !== undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const broker = await Aedes.createBroker();
    broker.authorizeForward = (client, packet) => (forwardable(packet.topic, packet.qos, client.clean) ? packet : null);
    const creds = this.credentials;
    if (creds) {
      const digest = (b: Buffer | string) => createHash('sha256').update(b).digest();
      broker.authenticate = (_client, username, password, done) => {
        // Hashed, so the comparison takes the same time whatever was sent.
        const ok = username === creds.username && password !== undefined && timingSafeEqual(digest(password), digest(creds.password()));
        if (ok) return done(null, true);
        done(Object.assign(new Error('bad user name or password'), { returnCode: 4 }), false);
      };
    }
    const { publishLimit, refused } = this.opts;
    const server = createServer((socket) => {
      if (publishLimit) {
        // Sees each chunk as aedes reads it ('readable' keeps the flow), before aedes parses it.
        const guard = new PublishSizeGuard(publishLimit);
        const watch = (chunk: Buffer) => {
          const why = guard.feed(chunk);
          if (!why) return;
          socket.off('data', watch);
          refused?.(why, socket.remoteAddress);
          socket.destroy();
        };
        socket.on('data', watch);
      }
      broker.handle(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((r) => broker.close(() => r()));
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? `port ${this.port} on ${this.host} is already in use (another MQTT broker?); set mqtt.embedded.port, or point mqtt.url at that broker`
          : code === 'EACCES'
            ? `no permission to listen on ${this.host}:${this.port}`
            : `cannot listen on ${this.host}:${this.port}: ${String(err)}`;
      throw new DaemonError('BROKER_LISTEN', `mqtt.embedded.port: ${why}`, { cause: err });
    }
    this.broker = broker;
    this.server = server;
  }

  async stop(): Promise<void> {
    const { broker, server } = this;
    this.broker = undefined;
    this.server = undefined;
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
