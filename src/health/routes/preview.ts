import type { SnapshotPrivacy } from '../../inference/stages.js';
import type { PreviewHub } from '../preview.js';
import { type Route, send } from '../server.js';
import { listParam, unknownParams } from './params.js';

const PARAMS = ['camera', 'fps', 'boxes', 'mirror', 'token'];

/**
 * GET /preview.mjpeg?camera=&fps=&boxes=&mirror=: the preview stream (src/health/preview.ts).
 * camera: one of the enabled cameras (default the first); fps: up to http.preview.maxFps (the
 * default; above it is capped); boxes=1 (default) draws the results, 0 not; mirror=1 flips it
 * left-right. `token` stands in for the Authorization header (an <img> sends none).
 */
export function previewRoute(hub: PreviewHub, cameras: () => string[], privacy: (camera: string) => SnapshotPrivacy): Route {
  return {
    method: 'GET',
    path: '/preview.mjpeg',
    tokenInQuery: true,
    handler: (req, res, url) => {
      const problems = unknownParams(url, PARAMS);
      const valid = cameras();
      const asked = listParam(url, 'camera');
      let code = 'BAD_PARAMETER';
      if (asked.length > 1) problems.push(`camera: give one camera (valid: ${valid.join(', ')})`);
      const camera = asked[0] ?? valid[0];
      if (camera === undefined) return send(res, 404, { error: 'no camera is enabled' });
      if (!valid.includes(camera)) {
        code = 'UNKNOWN_CAMERA';
        problems.push(`camera: no camera ${JSON.stringify(camera)} (valid: ${valid.join(', ')})`);
      }
      const fpsText = url.searchParams.get('fps');
      const fps = fpsText === null ? hub.maxFps : Number(fpsText);
      if (!(fps > 0) || !Number.isFinite(fps))
        problems.push(`fps: must be a number above 0, up to ${hub.maxFps} (got ${JSON.stringify(fpsText)})`);
      const flag = (name: string, dflt: boolean): boolean => {
        const v = url.searchParams.get(name);
        if (v === null) return dflt;
        if (v === '1' || v === 'true') return true;
        if (v === '0' || v === 'false') return false;
        problems.push(`${name}: must be 1 or 0 (got ${JSON.stringify(v)})`);
        return dflt;
      };
      const boxes = flag('boxes', true);
      const mirror = flag('mirror', false);
      if (problems.length) return send(res, 400, { error: problems.join('; '), code, problems, cameras: valid });
      if (privacy(camera) === 'off') {
        return send(res, 403, { error: `camera ${camera}: the preview is off (cameras.${camera}.privacy.preview)`, code: 'PREVIEW_OFF' });
      }
      if (hub.full) {
        hub.refused();
        res.setHeader('Retry-After', '1');
        return send(res, 503, { error: 'busy: too many preview streams are open (http.preview.maxClients)', code: 'BUSY' });
      }
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace', 'Cache-Control': 'no-store' });
        return void res.end();
      }
      hub.attach(res, { camera, fps: Math.min(fps, hub.maxFps), boxes, mirror });
    },
  };
}
