import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, realpath, stat, statfs } from 'node:fs/promises';
import { dirname, sep } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { DaemonError, errorMessage } from '../errors.js';

/**
 * Fetches a package archive to a staging file: http(s) or file URLs, TLS always verified (against
 * the system roots plus an optional CA file, never switched off), a size bound checked against the
 * announced length and again while bytes arrive, at most 3 redirects and never from https down to
 * http. A `.part` file left by an interrupted download is continued with a Range request when the
 * server honours it (206), else started again; whatever is on disk is only ever trusted after its
 * sha256 matches (checked by the caller over the whole file).
 *
 * The disk is never filled: before the first byte, the free space of the staging folder's disk must
 * hold the announced length (else maxBytes) and still leave `reserveBytes` (the journal's); while
 * bytes arrive the free space is looked at again, and a write that finds the disk full (ENOSPC)
 * ends the download with DOWNLOAD_NO_SPACE, which the caller never keeps for a resume. file://
 * URLs name only regular files below `fileRoot` (none: refused), with one error whatever the
 * reason, so a command cannot learn whether some path exists.
 */

export interface DownloadOptions {
  url: string;
  /** The staging file; bytes already in it are resumed from. */
  file: string;
  maxBytes: number;
  /** PEM text of an extra CA to trust (beside the system roots). */
  ca?: string;
  /** Gives up when no byte arrives for this long. */
  idleTimeoutMs: number;
  /** Aborting ends the download; a DaemonError given as the reason is what it fails with. */
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number | null) => void;
  /** Free space left on the staging folder's disk, always (model.rollout.reserveBytes). Default 0. */
  reserveBytes?: number;
  /** The only folder file:// URLs may name (model.rollout.fileRoot); undefined: file:// is refused. */
  fileRoot?: string;
  /** Free bytes on the disk of a folder (tests: a smaller disk). Default: statfs. */
  freeBytes?: (dir: string) => Promise<number>;
}

/** How often (bytes written) the free space is looked at again while downloading. */
const SPACE_CHECK_EVERY = 1024 * 1024;

export interface Downloaded {
  bytes: number;
  /** Bytes that were already on disk and continued from. */
  resumedFrom: number;
}

export class DownloadError extends DaemonError {
  constructor(
    code:
      | 'DOWNLOAD_FAILED'
      | 'DOWNLOAD_TOO_LARGE'
      | 'DOWNLOAD_TLS'
      | 'DOWNLOAD_URL'
      | 'DOWNLOAD_ABORTED'
      | 'DOWNLOAD_NO_SPACE'
      | 'DOWNLOAD_TIMEOUT'
      | 'DOWNLOAD_CANCELLED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'DownloadError';
  }
}

/** The URL without credentials or query (a presigned URL's token is a secret): what logs and topics show. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

export function checkUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DownloadError('DOWNLOAD_URL', `url: not a URL`);
  }
  if (!['http:', 'https:', 'file:'].includes(u.protocol))
    throw new DownloadError('DOWNLOAD_URL', `url: scheme ${u.protocol} not accepted (http, https or file)`);
  if (u.protocol === 'file:' && u.host) throw new DownloadError('DOWNLOAD_URL', 'url: a file URL names a local path (file:///...)');
  return u;
}

export async function download(o: DownloadOptions): Promise<Downloaded> {
  const u = checkUrl(o.url);
  if (u.protocol === 'file:') return await copyFile(fileURLToPath(u), o);
  return await fetchHttp(u, o, 0);
}

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Refuses (DOWNLOAD_NO_SPACE) when writing `more` bytes would leave less than the reserve free on
 * the disk of the staging file. `more` 0: only that the reserve is still there.
 */
async function checkSpace(o: DownloadOptions, more: number): Promise<void> {
  const reserve = o.reserveBytes ?? 0;
  const free = await (o.freeBytes ?? statfsFree)(dirname(o.file));
  if (free - more >= reserve) return;
  throw new DownloadError(
    'DOWNLOAD_NO_SPACE',
    more > 0
      ? `the package needs ${more} more bytes; the disk of model.rollout.dir has ${free} free and keeps ` +
          `model.rollout.reserveBytes (${reserve}) for the journal`
      : `the disk of model.rollout.dir is down to ${free} free bytes, under model.rollout.reserveBytes (${reserve}) kept for the journal`,
  );
}

/** A write error: a full disk (or quota, or file size limit) is DOWNLOAD_NO_SPACE. */
function writeFailure(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG')
    return new DownloadError('DOWNLOAD_NO_SPACE', `the disk of model.rollout.dir is full (${code}); the download was removed`, {
      cause: err,
    });
  return err;
}

/** Appends chunks to the staging file, looking at the free space every SPACE_CHECK_EVERY bytes. */
class SpaceWatch {
  private sinceCheck = 0;
  constructor(private readonly o: DownloadOptions) {}
  async wrote(n: number): Promise<void> {
    this.sinceCheck += n;
    if (this.sinceCheck < SPACE_CHECK_EVERY) return;
    this.sinceCheck = 0;
    await checkSpace(this.o, 0);
  }
}

async function partSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** file:// only below fileRoot, and one answer for missing, unreadable, outside and not-a-file alike. */
async function rootedFile(path: string, o: DownloadOptions): Promise<{ real: string; size: number }> {
  const refused = new DownloadError(
    'DOWNLOAD_URL',
    o.fileRoot === undefined
      ? 'url: file:// URLs are not accepted (set model.rollout.fileRoot to a folder to allow files below it)'
      : 'url: not a readable regular file below model.rollout.fileRoot',
  );
  if (o.fileRoot === undefined) throw refused;
  try {
    const root = await realpath(o.fileRoot);
    const real = await realpath(path);
    if (!real.startsWith(root.endsWith(sep) ? root : root + sep)) throw refused;
    const st = await stat(real);
    if (!st.isFile()) throw refused;
    return { real, size: st.size };
  } catch {
    throw refused;
  }
}

async function copyFile(path: string, o: DownloadOptions): Promise<Downloaded> {
  const { real, size } = await rootedFile(path, o);
  if (size > o.maxBytes)
    throw new DownloadError('DOWNLOAD_TOO_LARGE', `the package is ${size} bytes, over model.rollout.maxBytes (${o.maxBytes})`);
  await checkSpace(o, size);
  const out = await open(o.file, 'w');
  const watch = new SpaceWatch(o);
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(real, { signal: o.signal })) {
      bytes += (chunk as Buffer).length;
      if (bytes > o.maxBytes)
        throw new DownloadError('DOWNLOAD_TOO_LARGE', `the package grew over model.rollout.maxBytes (${o.maxBytes}) while read`);
      await out.write(chunk as Buffer).catch((err: unknown) => Promise.reject(writeFailure(err)));
      await watch.wrote((chunk as Buffer).length);
      o.onProgress?.(bytes, size);
    }
  } catch (err) {
    throw wrap(err, o.signal);
  } finally {
    await out.close();
  }
  return { bytes, resumedFrom: 0 };
}

function fetchHttp(u: URL, o: DownloadOptions, redirects: number): Promise<Downloaded> {
  return new Promise<Downloaded>((resolve, reject) => {
    void partSize(o.file).then((have) => {
      const headers: Record<string, string> = { 'user-agent': 'edge-inferd', 'accept-encoding': 'identity' };
      if (have > 0) headers.range = `bytes=${have}-`;
      const secure = u.protocol === 'https:';
      // agent: false: a connection of its own per request. A kept-alive socket from the response
      // before (a redirect) may be closed by the server just as it is reused: "socket hang up".
      const opts: https.RequestOptions = { method: 'GET', headers, signal: o.signal, timeout: o.idleTimeoutMs, agent: false };
      if (secure) Object.assign(opts, { ca: o.ca ? [...rootCertificates, o.ca] : undefined, rejectUnauthorized: true });
      const req = (secure ? https : http).request(u, opts, (res) => {
        const status = res.statusCode ?? 0;
        const fail = (err: DownloadError) => {
          res.destroy();
          reject(err);
        };
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects >= 3) return reject(new DownloadError('DOWNLOAD_FAILED', 'more than 3 redirects'));
          let next: URL;
          try {
            next = new URL(res.headers.location, u);
          } catch {
            return reject(new DownloadError('DOWNLOAD_FAILED', 'a redirect to an invalid URL'));
          }
          if (secure && next.protocol !== 'https:')
            return reject(new DownloadError('DOWNLOAD_URL', `a redirect from https to ${next.protocol} is refused`));
          if (next.protocol !== 'http:' && next.protocol !== 'https:')
            return reject(new DownloadError('DOWNLOAD_URL', `a redirect to ${next.protocol} is refused`));
          return resolve(fetchHttp(next, o, redirects + 1));
        }
        if (status === 416 && have > 0) {
          // The part file is at least as long as the resource: start again.
          res.resume();
          return void open(o.file, 'w')
            .then((f) => f.close())
            .then(() => resolve(fetchHttp(u, o, redirects)), reject);
        }
        if (status !== 200 && status !== 206)
          return fail(new DownloadError('DOWNLOAD_FAILED', `the server answered HTTP ${status} for ${redactUrl(u.href)}`));
        const resumed = status === 206 ? have : 0;
        const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : null;
        const total = length !== null && Number.isFinite(length) ? resumed + length : null;
        if (total !== null && total > o.maxBytes)
          return fail(
            new DownloadError('DOWNLOAD_TOO_LARGE', `the package is ${total} bytes, over model.rollout.maxBytes (${o.maxBytes})`),
          );
        void (async () => {
          // Room for what is still to come (the announced length, else up to maxBytes) and the reserve.
          await checkSpace(o, (total ?? o.maxBytes) - resumed);
          const out = await open(o.file, resumed ? 'a' : 'w');
          const watch = new SpaceWatch(o);
          let bytes = resumed;
          try {
            for await (const chunk of res) {
              bytes += (chunk as Buffer).length;
              if (bytes > o.maxBytes)
                throw new DownloadError(
                  'DOWNLOAD_TOO_LARGE',
                  `the package grew over model.rollout.maxBytes (${o.maxBytes}) while downloading`,
                );
              await out.write(chunk as Buffer).catch((err: unknown) => Promise.reject(writeFailure(err)));
              await watch.wrote((chunk as Buffer).length);
              o.onProgress?.(bytes, total);
            }
            if (total !== null && bytes !== total)
              throw new DownloadError('DOWNLOAD_FAILED', `the connection closed after ${bytes} of ${total} bytes`);
            await out.sync().catch((err: unknown) => Promise.reject(writeFailure(err)));
          } finally {
            await out.close();
          }
          return { bytes, resumedFrom: resumed };
        })().then(resolve, (err: unknown) => {
          res.destroy();
          reject(wrap(err, o.signal));
        });
      });
      req.on('timeout', () =>
        req.destroy(new DownloadError('DOWNLOAD_FAILED', `no data for ${Math.round(o.idleTimeoutMs / 1000)} s from ${redactUrl(u.href)}`)),
      );
      req.on('error', (err) => reject(wrap(err, o.signal)));
      req.end();
    }, reject);
  });
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
]);

function wrap(err: unknown, signal?: AbortSignal): DaemonError {
  if (err instanceof DaemonError) return err;
  if (signal?.aborted) {
    if (signal.reason instanceof DaemonError) return signal.reason;
    return new DownloadError('DOWNLOAD_ABORTED', 'the download was stopped (the daemon is stopping)', { cause: err });
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (TLS_CODES.has(code))
    return new DownloadError('DOWNLOAD_TLS', `the server's certificate is not trusted (${code}); add its CA with model.rollout.caFile`, {
      cause: err,
    });
  return new DownloadError('DOWNLOAD_FAILED', `download failed: ${errorMessage(err)}`, { cause: err });
}

export async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
