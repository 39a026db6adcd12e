import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { LiveReloadable } from '../component.js';
import type { Config } from '../config/schema.js';
import { DaemonError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { RefusalLog } from '../refusal-log.js';
import { HostCheck } from './host-check.js';
import { ConnectionGuard, DEFAULT_HTTP_LIMITS, type HttpLimits } from './limits.js';

export type { HttpLimits };

/** What the HTTP endpoints report; the app computes it, this file only serves it. */
export interface HealthReport {
  ok: boolean;
  reason?: string;
}
export interface ReadyReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}
export interface HealthSource {
  health(): HealthReport;
  ready(): ReadyReport;
  status(): unknown;
}

const MAX_URL = 2048;
/** The paths HealthServer answers itself (GET and HEAD). */
const BUILT_IN = ['/healthz', '/readyz', '/status'];

/**
 * An extra endpoint registered by another component (history, one-shot inference, metrics...).
 * It gets the parsed URL and writes the whole response itself.
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
export interface Route {
  method: 'GET' | 'POST';
  path: string;
  handler: RouteHandler;
  /** Served without the bearer token (only for content that holds no data, like the status page). */
  public?: boolean;
  /**
   * The token may also come as `?token=` (EventSource and <img> cannot send headers). The query is
   * never logged: handler errors log the path only.
   */
  tokenInQuery?: boolean;
}

export interface HealthServerOptions {
  host: string;
  port: number;
  source: HealthSource;
  log: Logger;
  /** When set, every request but public routes needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Connections in all and per client, and the time a request may take to arrive (`http.limits`). */
  limits?: HttpLimits;
  /** Host names served besides loopback and `host` (`http.allowedHosts`; see host-check.ts). */
  allowedHosts?: readonly string[];
  /** Origins whose pages may read the answers (`http.cors.origins`); none by default: no CORS headers at all. */
  corsOrigins?: readonly string[];
}

export class HealthServer implements LiveReloadable<string | undefined> {
  private server: Server | undefined;
  private readonly routes: Route[] = [];
  private opts: HealthServerOptions;
  /** One line per refused request, no stack (a flood is summarised, see RefusalLog). */
  readonly refusals: RefusalLog;
  private readonly limits: HttpLimits;
  private readonly hosts: HostCheck;

  constructor(opts: HealthServerOptions) {
    this.opts = opts;
    this.hosts = new HostCheck(opts.host, opts.allowedHosts);
    this.limits = opts.limits ?? DEFAULT_HTTP_LIMITS;
    this.refusals = new RefusalLog(opts.log);
  }

  readonly name = 'http';
  /** The token (read from tokenFile at load) is taken live; host and port need a restart. */
  readonly liveKeys = ['http.token', 'http.tokenFile'];

  slice(config: Config): string | undefined {
    return config.http.token;
  }

  apply(token: string | undefined): void {
    this.opts = { ...this.opts, token };
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.opts.port;
  }

  /** Where it listens now (the port the system picked for http.port 0); undefined while not listening. */
  get address(): { host: string; port: number } | undefined {
    return this.server && { host: this.opts.host, port: this.port };
  }

  /** Registers an endpoint; GET routes also answer HEAD. */
  addRoute(route: Route): void {
    this.routes.push(route);
  }

  async start(): Promise<void> {
    if (this.server) return;
    const requestMs = this.limits.bodyTimeoutSec * 1000;
    // Node checks request and header deadlines on this interval: a body that never ends is cut off
    // within a second of its deadline (408), not up to 30 s late.
    const server = createServer(
      { requestTimeout: requestMs, headersTimeout: Math.min(10_000, requestMs), connectionsCheckingInterval: Math.min(1000, requestMs) },
      (req, res) => this.handle(req, res),
    );
    server.keepAliveTimeout = 5000;
    // Connections beyond the limits are answered 503 and closed at accept, before any parsing, so
    // one client cannot use up the file descriptors the cameras and the journal need.
    const guard = new ConnectionGuard(this.limits, (socket: Socket, reason: string) =>
      this.refusals.note(reason, { client: socket.remoteAddress }),
    );
    server.on('connection', (socket: Socket) => guard.admit(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // A deep accept queue: under a connection flood a probe's SYN that finds the queue full is
        // dropped and only retried after the kernel's 1 s timeout (Node's default is 511; the
        // kernel caps it at net.core.somaxconn).
        server.listen({ port: this.opts.port, host: this.opts.host, backlog: 4096 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? `port ${this.opts.port} on ${this.opts.host} is already in use`
          : `cannot listen on ${this.opts.host}:${this.opts.port}: ${String(err)}`;
      throw new DaemonError('HTTP_LISTEN', `http.port: ${why}; set http.port`, { cause: err });
    }
    this.server = server;
    this.opts.log.info({ url: `http://${this.opts.host}:${this.port}/` }, 'http listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // Before anything else, for every route whoever added it: a Host that does not name this
    // listener is a page on another origin (DNS rebinding), answered with the reason only.
    if (!this.hosts.allows(req.headers.host, this.port)) {
      this.refusals.note('Host not served', { client: req.socket.remoteAddress });
      res.shouldKeepAlive = false;
      send(res, 421, {
        error: 'the Host header must name this listener (127.0.0.1, localhost, [::1], http.host or http.allowedHosts, with its port)',
      });
      return;
    }
    const target = req.url ?? '/';
    if (target.length > MAX_URL) return send(res, 414, { error: 'URI too long' });
    // Origin-form only: "//name/..." would otherwise parse as a path on another host ("/").
    if (!target.startsWith('/')) {
      send(res, 400, { error: 'the request target must be a path' });
      return;
    }
    if (target.startsWith('//')) {
      send(res, 404, { error: 'not found' });
      return;
    }
    const url = new URL(`http://x${target}`);
    const path = url.pathname;
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (this.cors(req, res, path)) return;
    const route = this.routes.find((r) => r.path === path && r.method === method);
    if (!route?.public && !this.authorized(req, route?.tokenInQuery ? url : undefined)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="edge-inferd"');
      return send(res, 401, { error: 'a bearer token is required (Authorization: Bearer <http.token>)' });
    }
    if (route) {
      Promise.resolve(route.handler(req, res, url)).catch((err: unknown) => {
        this.opts.log.error({ err: errorMessage(err), code: errorCode(err), path }, 'http handler failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
      return;
    }
    const others = this.routes.filter((r) => r.path === path).map((r) => r.method);
    const builtIn = BUILT_IN.includes(path);
    if (others.length || (builtIn && method !== 'GET')) {
      // The path exists, with other methods: 405 naming them (GET routes also answer HEAD).
      const allowed = [...(builtIn ? ['GET'] : []), ...others].flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
      res.setHeader('Allow', [...new Set(allowed)].join(', '));
      return send(res, 405, { error: `method ${req.method} not allowed on ${path}` });
    }
    if (method !== 'GET') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, { error: `method ${req.method} not allowed on ${path}` });
    }
    const src = this.opts.source;
    try {
      switch (path) {
        case '/healthz': {
          const h = src.health();
          return send(res, h.ok ? 200 : 503, h);
        }
        case '/readyz': {
          const r = src.ready();
          return send(res, r.ok ? 200 : 503, r);
        }
        case '/status':
          return send(res, 200, src.status());
        default:
          return send(res, 404, { error: 'not found', endpoints: ['/healthz', '/readyz', '/status', ...this.routes.map((r) => r.path)] });
      }
    } catch (err) {
      this.opts.log.error({ err: errorMessage(err), code: errorCode(err), path }, 'http handler failed');
      return send(res, 500, { error: 'internal error' });
    }
  }

  /** `url`: the route takes `?token=` too. */
  private authorized(req: IncomingMessage, url?: URL): boolean {
    const token = this.opts.token;
    if (token === undefined) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const given = m?.[1] ?? url?.searchParams.get('token') ?? undefined;
    if (given === undefined) return false;
    // Hash both sides so the comparison takes the same time whatever the lengths.
    const digest = (s: string) => createHash('sha256').update(s).digest();
    return timingSafeEqual(digest(given), digest(token));
  }

  /**
   * CORS, only for the origins `http.cors.origins` lists: their requests get
   * Access-Control-Allow-Origin, and their preflights (OPTIONS) are answered here. Any other
   * origin gets no CORS header, so a browser keeps its page from reading the answer. Returns true
   * when it answered the request (a preflight).
   */
  private cors(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const origin = req.headers.origin;
    const allowed = this.opts.corsOrigins ?? [];
    if (!allowed.length) return false;
    res.setHeader('Vary', 'Origin');
    if (origin === undefined || !allowed.includes(origin)) return false;
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method !== 'OPTIONS') return false;
    const methods = [...new Set(this.routes.filter((r) => r.path === path).map((r) => r.method))];
    res.writeHead(204, {
      'Access-Control-Allow-Methods': [...(methods.length ? methods : ['GET']), 'HEAD'].join(', '),
      'Access-Control-Allow-Headers': 'Authorization, Last-Event-ID, Content-Type',
      'Access-Control-Max-Age': '600',
    });
    res.end();
    return true;
  }
}

export function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(code, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
