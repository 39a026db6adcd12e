import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
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
  /**
   * MQTT over WebSockets too (`mqtt.embedded.websocket`), on the same broker: the same logins and
   * rules. `origins`: web page origins allowed besides pages of this device (`http.cors.origins`).
   */
  websocket?: { host: string; port: number; path: string; origins?: readonly string[] };
}

/** A browser's page on the device itself: its Origin names a loopback host. */
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/**
 * Which WebSocket upgrades are taken: clients that send no Origin (programs, not browsers), pages
 * served from this device, and the origins listed. Any other web page (one the kiosk browser
 * happens to show, or a name rebound to 127.0.0.1) is refused: WebSockets have no CORS of their own.
 */
export function websocketOriginAllowed(origin: string | undefined, listed: readonly string[] = []): boolean {
  return origin === undefined || LOOPBACK_ORIGIN.test(origin) || listed.includes(origin);
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
  private wsServer: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
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

  /** ws://host:port/path of the WebSocket listener, when there is one. */
  get websocketUrl(): string | undefined {
    const ws = this.opts.websocket;
    if (!ws) return undefined;
    const port = (this.wsServer?.address() as { port: number } | null)?.port ?? ws.port;
    return `ws://${ws.host.includes(':') ? `[${ws.host}]` : ws.host}:${port}${ws.path}`;
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
    /** The same guard and the same broker for both listeners. */
    const take = (stream: Duplex, client: string | undefined, req?: IncomingMessage) => {
      if (publishLimit) {
        // Sees each chunk as aedes reads it ('readable' keeps the flow), before aedes parses it.
        const guard = new PublishSizeGuard(publishLimit);
        const watch = (chunk: Buffer) => {
          const why = guard.feed(chunk);
          if (!why) return;
          stream.off('data', watch);
          refused?.(why, client);
          stream.destroy();
        };
        stream.on('data', watch);
      }
      broker.handle(stream, req);
    };
    const server = createServer((socket) => take(socket, socket.remoteAddress));
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
    if (this.opts.websocket) await this.listenWebSocket(this.opts.websocket, take);
  }

  private async listenWebSocket(
    ws: NonNullable<EmbeddedBrokerOptions['websocket']>,
    take: (stream: Duplex, client: string | undefined, req?: IncomingMessage) => void,
  ): Promise<void> {
    const http = createHttpServer((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
      res.end(`MQTT over WebSockets: connect to ${ws.path}\n`);
    });
    const wss = new WebSocketServer({
      server: http,
      path: ws.path,
      // MQTT.js asks for the "mqtt" subprotocol (older clients "mqttv3.1"); a plain WebSocket is taken too.
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      maxPayload: 16 * 1024 * 1024,
      verifyClient: (info: { origin?: string; req: IncomingMessage }) =>
        websocketOriginAllowed(info.req.headers.origin === undefined ? undefined : info.origin, ws.origins),
    });
    wss.on('connection', (socket, req) => {
      const stream = createWebSocketStream(socket);
      // A client that goes away mid-frame is its own business; aedes sees the stream close.
      stream.on('error', () => stream.destroy());
      take(stream, req.socket.remoteAddress, req);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(ws.port, ws.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await this.stop();
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? `port ${ws.port} on ${ws.host} is already in use`
          : `cannot listen on ${ws.host}:${ws.port}: ${String(err)}`;
      throw new DaemonError('BROKER_LISTEN', `mqtt.embedded.websocket.port: ${why}; set mqtt.embedded.websocket.port`, { cause: err });
    }
    this.wsServer = http;
    this.wss = wss;
  }

  async stop(): Promise<void> {
    const { broker, server, wsServer, wss } = this;
    this.broker = undefined;
    this.server = undefined;
    this.wsServer = undefined;
    this.wss = undefined;
    for (const c of wss?.clients ?? []) c.terminate();
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    if (server) await new Promise<void>((r) => server.close(() => r()));
    if (wsServer) {
      wsServer.closeAllConnections();
      await new Promise<void>((r) => wsServer.close(() => r()));
    }
  }
}
