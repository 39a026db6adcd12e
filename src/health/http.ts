import type { Frame } from '../capture/frame.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { Inference } from '../inference/types.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { EventHub } from './events.js';
import { eventsRoute } from './routes/events.js';
import type { PreviewHub } from './preview.js';
import { previewRoute } from './routes/preview.js';
import type { SnapshotPrivacy } from '../inference/stages.js';
import { inferRoute } from './routes/infer.js';
import { kioskRoutes } from './routes/kiosk.js';
import type { Metrics } from './metrics.js';
import { registerOpsRoutes } from './routes/ops.js';
import { resultsRoute } from './routes/results.js';
import { type HealthSource, HealthServer } from './server.js';

/**
 * The local HTTP endpoint from the `http` config slice: /healthz, /readyz and /status from `source`,
 * and every other route (the status page, /metrics, /snapshot.jpg, /results, POST /infer).
 */
export function createHttpServer(opts: {
  config: Config['http'];
  inferMaxBytes: number;
  source: HealthSource;
  metrics: Metrics;
  /** Cameras with a snapshot to show. */
  cameras: () => string[];
  snapshot: (camera: string) => Promise<Buffer | undefined>;
  journal: Journal;
  /** GET /events: the hub, and the cameras its ?camera= may name (every enabled camera, started or not). */
  events?: { hub: EventHub; cameras: () => string[] };
  /** GET /preview.mjpeg: the hub, the cameras it may show, and each one's preview mode. */
  preview?: { hub: PreviewHub; cameras: () => string[]; privacy: (camera: string) => SnapshotPrivacy };
  infer: (frame: Frame, camera: string | undefined, explain: boolean) => Promise<Inference>;
  toPayload: (frame: Frame, inf: Inference) => unknown;
  clock: Clock;
  log: Logger;
}): HealthServer {
  const { config: h, log } = opts;
  const http = new HealthServer({
    host: h.host,
    port: h.port,
    token: h.token,
    limits: h.limits,
    allowedHosts: h.allowedHosts,
    corsOrigins: h.cors.origins,
    source: opts.source,
    log: log.child({ component: 'http' }),
  });
  registerOpsRoutes(http, { metrics: opts.metrics, cameras: opts.cameras, snapshot: opts.snapshot });
  http.addRoute(resultsRoute(opts.journal, opts.clock));
  if (opts.events) http.addRoute(eventsRoute(opts.events.hub, opts.events.cameras));
  if (opts.preview) http.addRoute(previewRoute(opts.preview.hub, opts.preview.cameras, opts.preview.privacy));
  if (h.kiosk) for (const r of kioskRoutes()) http.addRoute(r);
  http.addRoute(
    inferRoute({
      maxBytes: opts.inferMaxBytes,
      maxConcurrent: h.limits.inferConcurrent,
      refused: (reason, fields) => http.refusals.note(reason, fields),
      infer: opts.infer,
      cameras: opts.cameras,
      toPayload: opts.toPayload,
      clock: opts.clock,
      log: log.child({ component: 'infer' }),
    }),
  );
  return http;
}
