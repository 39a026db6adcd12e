import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Frame } from '../../capture/frame.js';
import { type Clock, systemClock } from '../../clock.js';
import { errorCode, errorMessage } from '../../errors.js';
import { decodeImage } from '../../inference/image.js';
import type { Inference } from '../../inference/types.js';
import type { Logger } from '../../log.js';
import { type Route, send } from '../server.js';

/**
 * `POST /infer`: the request body is one image (JPEG, PNG or WebP, recognised by its bytes); the
 * answer is the same result payload the cameras publish, for camera `infer`. Bodies over
 * `maxBytes` get 413 without being buffered; an empty body 400; anything but an image 415.
 */

export interface InferRouteOptions {
  maxBytes: number;
  /** `camera`: run that camera's way (its pipeline, if it has one); undefined: the one model. */
  infer: (frame: Frame, camera?: string) => Promise<Inference>;
  /** Cameras `?camera=` may name. */
  cameras?: () => string[];
  toPayload: (frame: Frame, inf: Inference) => unknown;
  log: Logger;
  /** Wall time stamped on the uploaded image as its capture time. */
  clock?: Clock;
  /** Requests at once, body upload included; the next one gets 503 BUSY (`http.limits.inferConcurrent`). */
  maxConcurrent?: number;
  /** Where a refused or abandoned request is noted (one line, no stack). */
  refused?: (reason: string, fields: Record<string, unknown>) => void;
}

export const INFER_CAMERA = 'infer';

const STATUS: Record<string, number> = { IMAGE_EMPTY: 400, IMAGE_DECODE: 400, IMAGE_TYPE: 415 };

function tooLarge(res: ServerResponse, max: number, got: string): void {
  res.setHeader('Connection', 'close');
  send(res, 413, { error: `image too large: the limit is ${max} bytes (got ${got}); set model.inferMaxBytes`, code: 'IMAGE_TOO_LARGE' });
}

/**
 * Reads the body up to `max` bytes; undefined (after answering 413) when it is longer, or when the
 * client went away (or the server cut it off at the request timeout) before its end.
 */
function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    tooLarge(res, max, `Content-Length ${declared}`);
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        tooLarge(res, max, `more than ${max} bytes`);
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => over || resolve(Buffer.concat(chunks)));
    // A body cut short (the client left, or the request timeout closed the socket) is nobody's fault here.
    req.on('close', () => {
      if (req.complete) return;
      chunks.length = 0;
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

export function inferRoute(opts: InferRouteOptions): Route {
  let seq = 0;
  let active = 0;
  const max = opts.maxConcurrent ?? Infinity;
  return {
    method: 'POST',
    path: '/infer',
    handler: async (req, res, url) => {
      // Counted from the first byte of the body: slow uploads hold a slot too, so at most `max`
      // images are buffered and decoded at once, whatever the number of clients.
      if (active >= max) {
        opts.refused?.('BUSY', { path: '/infer', client: req.socket.remoteAddress });
        res.setHeader('Retry-After', '1');
        res.setHeader('Connection', 'close');
        send(res, 503, { error: `busy: ${max} images are being inferred; try again`, code: 'BUSY' });
        // The body is not read at all: the connection closes once the answer is out.
        res.once('finish', () => req.socket.destroy());
        return;
      }
      active++;
      try {
        await serve(req, res, url);
      } finally {
        active--;
      }
    },
  };

  async function serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const camera = url.searchParams.get('camera') ?? undefined;
    const cameras = opts.cameras?.() ?? [];
    if (camera !== undefined && !cameras.includes(camera)) {
      req.resume();
      return send(res, 404, { error: `no enabled camera "${camera}"`, code: 'UNKNOWN_CAMERA', cameras });
    }
    const body = await readBody(req, res, opts.maxBytes);
    if (!body) {
      if (!res.headersSent && !req.complete) opts.refused?.('body not received', { path: '/infer', client: req.socket?.remoteAddress });
      return;
    }
    const atMs = (opts.clock ?? systemClock).now();
    let frame: Frame;
    try {
      frame = await decodeImage(body, { camera: INFER_CAMERA, seq: ++seq, name: url.searchParams.get('name') ?? undefined, nowMs: atMs });
    } catch (err) {
      const code = errorCode(err) ?? 'IMAGE_DECODE';
      return send(res, STATUS[code] ?? 400, { error: errorMessage(err), code });
    }
    try {
      const inf = await opts.infer(frame, camera);
      send(res, 200, opts.toPayload(frame, inf));
    } catch (err) {
      opts.log.warn({ err: errorMessage(err) }, 'one-shot inference failed');
      const code = errorCode(err) ?? 'INFERENCE_FAILED';
      // MODEL_UNUSED: the request named no camera where only pipelines run; nothing is failing.
      send(res, code === 'MODEL_UNUSED' ? 409 : 503, { error: `inference failed: ${errorMessage(err)}`, code });
    }
  }
}
