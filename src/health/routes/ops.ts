import { errorCode, errorMessage } from '../../errors.js';
import { NAME_RE } from '../../config/schema.js';
import type { Metrics } from '../metrics.js';
import { STATUS_PAGE } from '../page.js';
import { type HealthServer, send } from '../server.js';

/** The operations endpoints beyond /healthz, /readyz and /status: the page, /metrics, /snapshot.jpg. */
export interface OpsRoutesSource {
  metrics: Metrics;
  /** Enabled camera names, in config order. */
  cameras(): string[];
  /** The latest annotated JPEG of a camera, or undefined before its first result. */
  snapshot(camera: string): Promise<Buffer | undefined>;
}

export function registerOpsRoutes(server: HealthServer, src: OpsRoutesSource): void {
  server.addRoute({
    method: 'GET',
    path: '/',
    public: true,
    handler: (_req, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        // Everything the page needs is inline; it talks only to this origin.
        'Content-Security-Policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob:; connect-src 'self'",
        'X-Content-Type-Options': 'nosniff',
        'Content-Length': Buffer.byteLength(STATUS_PAGE),
      });
      res.end(res.req.method === 'HEAD' ? undefined : STATUS_PAGE);
    },
  });

  server.addRoute({
    method: 'GET',
    path: '/metrics',
    handler: async (_req, res) => {
      const text = await src.metrics.text();
      res.writeHead(200, {
        'Content-Type': src.metrics.contentType,
        'Cache-Control': 'no-store',
        'Content-Length': Buffer.byteLength(text),
      });
      res.end(res.req.method === 'HEAD' ? undefined : text);
    },
  });

  server.addRoute({
    method: 'GET',
    path: '/snapshot.jpg',
    handler: async (_req, res, url) => {
      const cameras = src.cameras();
      const asked = url.searchParams.getAll('camera');
      if (asked.length > 1) return send(res, 400, { error: 'give one camera= parameter' });
      const name = asked[0] ?? cameras[0];
      // The name only ever selects from the configured cameras; it never reaches a path.
      if (name === undefined) return send(res, 404, { error: 'no camera is enabled' });
      if (!NAME_RE.test(name)) return send(res, 400, { error: 'camera: must be a camera name (letters, digits, "_" or "-")', cameras });
      if (!cameras.includes(name)) return send(res, 404, { error: `no enabled camera "${name}"`, cameras });
      let jpeg: Buffer | undefined;
      try {
        jpeg = await src.snapshot(name);
      } catch (err) {
        if (errorCode(err) === 'SNAPSHOTS_OFF') return send(res, 403, { error: errorMessage(err), code: 'SNAPSHOTS_OFF' });
        throw err;
      }
      if (!jpeg) return send(res, 503, { error: `camera ${name} has no result yet` });
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Cache-Control': 'no-store', 'Content-Length': jpeg.length });
      res.end(res.req.method === 'HEAD' ? undefined : jpeg);
    },
  });
}
