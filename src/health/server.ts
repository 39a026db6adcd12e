import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DaemonError } from '../errors.js';
import type { Logger } from '../log.js';

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

export class HealthServer {
  private server: Server | undefined;
  private readonly opts: { host: string; port: number; source: HealthSource; log: Logger };

  constructor(opts: { host: string; port: number; source: HealthSource; log: Logger }) {
    this.opts = opts;
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.opts.port;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.opts.port, this.opts.host, () => (server.off('error', reject), resolve()));
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? `port ${this.opts.port} on ${this.opts.host} is already in use` : `cannot listen on ${this.opts.host}:${this.opts.port}: ${String(err)}`;
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
    if ((req.url ?? '').length > MAX_URL) return send(res, 414, { error: 'URI too long' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, { error: `method ${req.method} not allowed` });
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
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
          return send(res, 404, { error: 'not found', endpoints: ['/healthz', '/readyz', '/status'] });
      }
    } catch (err) {
      this.opts.log.error({ err, path }, 'http handler failed');
      return send(res, 500, { error: 'internal error' });
    }
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(code, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
