import { type EventHub, STREAM_TYPES, type StreamType } from '../events.js';
import { type Route, send } from '../server.js';
import { listParam, unknownParams } from './params.js';

/**
 * GET /events?camera=&type=: the SSE stream (src/health/events.ts). `camera` and `type` may be
 * repeated or comma-separated; `lastEventId` stands in for the Last-Event-ID header on a first
 * connection (a page that kept its position across a reload); `token` for the Authorization header
 * (EventSource sends no headers). Bad parameters are a 400 naming the valid values.
 */
export function eventsRoute(hub: EventHub, cameras: () => string[]): Route {
  return {
    method: 'GET',
    path: '/events',
    tokenInQuery: true,
    handler: (req, res, url) => {
      const problems = unknownParams(url, ['camera', 'type', 'lastEventId', 'token']);
      const valid = cameras();
      const wanted = listParam(url, 'camera');
      const badCameras = wanted.filter((c) => !valid.includes(c));
      if (badCameras.length)
        problems.push(`camera: no camera ${badCameras.map((c) => JSON.stringify(c)).join(', ')} (valid: ${valid.join(', ')})`);
      const types = listParam(url, 'type');
      const badTypes = types.filter((t) => !(STREAM_TYPES as readonly string[]).includes(t));
      if (badTypes.length)
        problems.push(`type: no type ${badTypes.map((t) => JSON.stringify(t)).join(', ')} (valid: ${STREAM_TYPES.join(', ')})`);
      if (problems.length) {
        const code = badCameras.length ? 'UNKNOWN_CAMERA' : badTypes.length ? 'UNKNOWN_TYPE' : 'BAD_PARAMETER';
        return send(res, 400, { error: problems.join('; '), code, problems, cameras: valid, types: STREAM_TYPES });
      }
      if (hub.full) {
        hub.refused();
        res.setHeader('Retry-After', '1');
        return send(res, 503, { error: 'busy: too many event streams are open (http.events.maxClients)', code: 'BUSY' });
      }
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
        return void res.end();
      }
      const header = req.headers['last-event-id'];
      hub.attach(res, {
        cameras: wanted.length ? new Set(wanted) : undefined,
        types: new Set<StreamType>(types.length ? (types as StreamType[]) : STREAM_TYPES),
        lastEventId: typeof header === 'string' ? header : (url.searchParams.get('lastEventId') ?? undefined),
      });
    },
  };
}
