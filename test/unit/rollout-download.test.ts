import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonError } from '../../src/errors.js';
import { checkUrl, type DownloadOptions, download, redactUrl, sha256Of } from '../../src/rollout/download.js';
import { needTool } from '../helpers/tools.js';

/**
 * The package download against real HTTP(S) servers on loopback: resumes (Range, 206, a server
 * that ignores Range, 416), the size bound at and one byte over, redirects, failures, the idle
 * timeout, aborts, TLS verification, a disk that refuses writes (RLIMIT_FSIZE) and free space.
 */

const work = mkdtempSync(join(tmpdir(), 'rollout-download-'));
const BODY = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
const MB = 1024 * 1024;

/** What each request asked for: "<path> <range or ->". */
const seen: string[] = [];
/** Called when a request for /hold arrives (the test aborts then). */
let onHold: (() => void) | undefined;

function routes(req: http.IncomingMessage, res: http.ServerResponse, port: () => number): void {
  const url = new URL(req.url ?? '/', 'http://x');
  seen.push(`${url.pathname} ${req.headers.range ?? '-'}`);
  const p = url.pathname;
  if (p === '/pkg') {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    if (range && from >= BODY.length) return void res.writeHead(416).end();
    const rest = BODY.subarray(from);
    const partial = range ? { 'content-range': `bytes ${from}-${BODY.length - 1}/${BODY.length}` } : {};
    return void res.writeHead(range ? 206 : 200, { 'content-length': rest.length, ...partial }).end(rest);
  }
  if (p === '/empty') {
    if (req.headers.range) return void res.writeHead(416).end();
    return void res.writeHead(200, { 'content-length': 0 }).end();
  }
  if (p === '/endless') {
    // No length, no end: only the client closing ends it (a server still writing when refused).
    res.writeHead(Number(url.searchParams.get('status') ?? 200));
    const chunk = Buffer.alloc(65_536, 7);
    const write = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', write);
    };
    res.on('close', () => res.removeAllListeners('drain'));
    return write();
  }
  if (p === '/norange') return void res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
  if (p === '/chunked') return void res.writeHead(200).end(BODY.subarray(0, Number(url.searchParams.get('n'))));
  if (p === '/big') return void res.writeHead(200, { 'content-length': 3.5 * MB }).end(Buffer.alloc(3.5 * MB, 3));
  if (p.startsWith('/hop/')) {
    const n = Number(p.slice(5));
    return void res.writeHead(302, { location: n > 1 ? `/hop/${n - 1}` : '../pkg' }).end('moved');
  }
  if (p === '/to-ftp') return void res.writeHead(301, { location: 'ftp://127.0.0.1/pkg' }).end();
  if (p === '/to-nowhere') return void res.writeHead(302, { location: 'http://[::1' }).end();
  if (p === '/to-http') return void res.writeHead(302, { location: `http://127.0.0.1:${port()}/pkg` }).end();
  if (p === '/short') {
    res.writeHead(200, { 'content-length': 1000 });
    return void res.write(BODY.subarray(0, 500), () => res.destroy());
  }
  if (p === '/silent') {
    res.writeHead(200, { 'content-length': 10 });
    return void res.flushHeaders();
  }
  if (p === '/hold') {
    res.writeHead(200, { 'content-length': BODY.length });
    res.write(BODY.subarray(0, 1000));
    return onHold?.();
  }
  res.writeHead(404).end('not here');
}

let server: http.Server;
let port = 0;
/** Server-side sockets with their 'close' (the server never times them out: keepAliveTimeout 0). */
const sockets: Promise<void>[] = [];
/** Resolves when every connection opened since `from` (an index into sockets) is closed. */
const closedSince = (from: number) => Promise.all(sockets.slice(from));
let tls: https.Server | undefined;
let tlsPort = 0;
let ca = '';
let seq = 0;

const part = () => join(work, `${++seq}.part`);
const url = (path: string) => `http://127.0.0.1:${port}${path}`;
const opts = (path: string, more: Partial<DownloadOptions> = {}): DownloadOptions => ({
  url: url(path),
  file: part(),
  maxBytes: 10 * MB,
  idleTimeoutMs: 10_000,
  ...more,
});
const failure = (o: DownloadOptions) =>
  download(o).then(
    () => {
      throw new Error('the download did not fail');
    },
    (e: unknown) => e as DaemonError,
  );

beforeAll(async () => {
  server = http.createServer((req, res) => routes(req, res, () => port));
  // A response the client leaves unread would hold its connection open for good: the tests see it.
  server.keepAliveTimeout = 0;
  server.on('connection', (s) => sockets.push(new Promise<void>((r) => s.once('close', () => r()))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  const openssl = needTool('openssl', 'openssl');
  if (!openssl) return;
  const dir = mkdtempSync(join(tmpdir(), 'download-pki-'));
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
  tls = https.createServer({ cert: ca, key: readFileSync(join(dir, 'key.pem')) }, (req, res) => routes(req, res, () => port));
  await new Promise<void>((r) => tls?.listen(0, '127.0.0.1', r));
  tlsPort = (tls.address() as AddressInfo).port;
});

afterAll(() => {
  server.close();
  tls?.close();
});

describe('URLs', () => {
  it('redactUrl keeps scheme, host and path: no credentials, no query', () => {
    expect(redactUrl('https://user:secret@example.com:8443/a/pkg.tgz?X-Amz-Signature=abc')).toBe('https://example.com:8443/a/pkg.tgz?…');
    expect(redactUrl('http://example.com/pkg.tgz')).toBe('http://example.com/pkg.tgz');
    expect(redactUrl('not a url')).toBe('(invalid URL)');
  });

  it('checkUrl takes http, https and local file URLs only', () => {
    expect(checkUrl('https://example.com/p.tgz').host).toBe('example.com');
    expect(checkUrl('file:///srv/p.tgz').pathname).toBe('/srv/p.tgz');
    expect(() => checkUrl('nope')).toThrow('url: not a URL');
    expect(() => checkUrl('ftp://example.com/p.tgz')).toThrow('url: scheme ftp: not accepted (http, https or file)');
    expect(() => checkUrl('file://server/share/p.tgz')).toThrow('url: a file URL names a local path (file:///...)');
  });
});

describe('HTTP download', () => {
  it('fetches the whole package, reporting progress against the announced length', async () => {
    const progress: [number, number | null][] = [];
    const o = opts('/pkg', { onProgress: (b, t) => progress.push([b, t]) });
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
    expect(progress.at(-1)).toEqual([BODY.length, BODY.length]);
    expect(progress.every(([b, t], i) => t === BODY.length && b > (progress[i - 1]?.[0] ?? 0))).toBe(true);
    expect(await sha256Of(o.file)).toBe(createHash('sha256').update(BODY).digest('hex'));
  });

  it('continues a part file with a Range request (206): the bytes on disk are kept', async () => {
    const o = opts('/pkg');
    writeFileSync(o.file, BODY.subarray(0, 30_000));
    seen.length = 0;
    const progress: number[] = [];
    expect(await download({ ...o, onProgress: (b) => progress.push(b) })).toEqual({ bytes: BODY.length, resumedFrom: 30_000 });
    expect(seen).toEqual(['/pkg bytes=30000-']);
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
    expect(progress[0]).toBeGreaterThan(30_000);
  });

  it('an empty part file is no resume: no Range header', async () => {
    const o = opts('/pkg');
    writeFileSync(o.file, '');
    seen.length = 0;
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(seen).toEqual(['/pkg -']);
  });

  it('starts again when the server ignores the Range (200): the old bytes are replaced, not appended to', async () => {
    const o = opts('/norange');
    writeFileSync(o.file, Buffer.alloc(30_000, 0xee));
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
  });

  it('starts again after a 416 (the part file is as long as the package or longer)', async () => {
    const o = opts('/pkg');
    writeFileSync(o.file, Buffer.concat([BODY, Buffer.from('extra')]));
    seen.length = 0;
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(seen).toEqual([`/pkg bytes=${BODY.length + 5}-`, '/pkg -']);
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
  });

  it('takes a package of exactly maxBytes; one byte less of bound refuses it before the first byte (announced) or while it arrives', async () => {
    expect((await download(opts('/pkg', { maxBytes: BODY.length }))).bytes).toBe(BODY.length);
    const announced = opts('/pkg', { maxBytes: BODY.length - 1 });
    expect(await failure(announced)).toMatchObject({
      code: 'DOWNLOAD_TOO_LARGE',
      message: `the package is ${BODY.length} bytes, over model.rollout.maxBytes (${BODY.length - 1})`,
    });
    expect(existsSync(announced.file)).toBe(false);
    expect((await download(opts('/chunked?n=5000', { maxBytes: 5000 }))).bytes).toBe(5000);
    expect(await failure(opts('/chunked?n=5001', { maxBytes: 5000 }))).toMatchObject({
      code: 'DOWNLOAD_TOO_LARGE',
      message: 'the package grew over model.rollout.maxBytes (5000) while downloading',
    });
    // A resumed download counts the bytes on disk too.
    const resumed = opts('/pkg', { maxBytes: BODY.length - 1 });
    writeFileSync(resumed.file, BODY.subarray(0, 1000));
    expect(await failure(resumed)).toMatchObject({ code: 'DOWNLOAD_TOO_LARGE' });
  });

  it('follows up to 3 redirects (relative ones too), not a 4th, and never to another scheme', async () => {
    const o = opts('/hop/3');
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
    expect(await failure(opts('/hop/4'))).toMatchObject({ code: 'DOWNLOAD_FAILED', message: 'more than 3 redirects' });
    expect(await failure(opts('/to-ftp'))).toMatchObject({ code: 'DOWNLOAD_URL', message: 'a redirect to ftp: is refused' });
    expect(await failure(opts('/to-nowhere'))).toMatchObject({ code: 'DOWNLOAD_FAILED', message: 'a redirect to an invalid URL' });
  });

  it('an HTTP error names the status and the URL without its query', async () => {
    expect(await failure(opts('/missing?token=secret'))).toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: `the server answered HTTP 404 for http://127.0.0.1:${port}/missing?…`,
    });
  });

  it('leaves no connection open behind a refusal, a redirect or a 416', async () => {
    const from = sockets.length;
    await failure(opts('/missing'));
    await failure(opts('/pkg', { maxBytes: 10 }));
    await failure(opts('/pkg', { reserveBytes: 1, freeBytes: async () => 0 }));
    await download(opts('/hop/1'));
    const o = opts('/pkg');
    writeFileSync(o.file, Buffer.alloc(BODY.length + 1));
    await download(o);
    expect(sockets.length - from).toBe(7);
    await closedSince(from);
  });

  it('closes the connection of a refused response whose server is still sending', async () => {
    // The idle timeout (which would close them too) is far beyond the test's own.
    const from = sockets.length;
    expect(await failure(opts('/endless?status=500', { idleTimeoutMs: 120_000 }))).toMatchObject({
      message: expect.stringContaining('HTTP 500'),
    });
    expect(await failure(opts('/endless', { idleTimeoutMs: 120_000, reserveBytes: 1, freeBytes: async () => 0 }))).toMatchObject({
      code: 'DOWNLOAD_NO_SPACE',
    });
    expect(await failure(opts('/endless', { idleTimeoutMs: 120_000, maxBytes: 100_000 }))).toMatchObject({ code: 'DOWNLOAD_TOO_LARGE' });
    await closedSince(from);
  });

  it('an empty package after a 416 (a part file of one byte) is fetched again, not refused', async () => {
    const o = opts('/empty');
    writeFileSync(o.file, 'x');
    expect(await download(o)).toEqual({ bytes: 0, resumedFrom: 0 });
    expect(readFileSync(o.file).length).toBe(0);
  });

  it('a connection that closes early fails (the part file stays for a resume)', async () => {
    const o = opts('/short');
    const err = await failure(o);
    expect(err).toBeInstanceOf(DaemonError);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(existsSync(o.file)).toBe(true);
  });

  it('gives up when no byte comes for idleTimeoutMs', async () => {
    expect(await failure(opts('/silent', { idleTimeoutMs: 600 }))).toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: `no data for 1 s from http://127.0.0.1:${port}/silent`,
    });
  });

  it('an abort ends it with the reason given, or DOWNLOAD_ABORTED', async () => {
    for (const reason of [new DaemonError('DOWNLOAD_CANCELLED', 'cancelled by the test'), undefined]) {
      const ac = new AbortController();
      onHold = () => ac.abort(reason);
      const err = await failure(opts('/hold', { signal: ac.signal }));
      expect(err.code).toBe(reason ? 'DOWNLOAD_CANCELLED' : 'DOWNLOAD_ABORTED');
      if (!reason) expect(err.message).toBe('the download was stopped (the daemon is stopping)');
    }
    onHold = undefined;
  });

  it('a full disk (ENOSPC: /dev/full) is DOWNLOAD_NO_SPACE', async () => {
    expect(await failure(opts('/pkg', { file: '/dev/full' }))).toMatchObject({
      code: 'DOWNLOAD_NO_SPACE',
      message: 'the disk of model.rollout.dir is full (ENOSPC); the download was removed',
    });
  });

  it('a disk that refuses writes (file size limit: EFBIG) is DOWNLOAD_NO_SPACE', async () => {
    const prlimit = needTool('prlimit', 'util-linux');
    if (!prlimit) return;
    const o = opts('/pkg');
    execFileSync(prlimit, ['--pid', String(process.pid), '--fsize=50000:']);
    let err: DaemonError;
    try {
      err = await failure(o);
    } finally {
      execFileSync(prlimit, ['--pid', String(process.pid), '--fsize=unlimited:']);
    }
    expect(err).toMatchObject({
      code: 'DOWNLOAD_NO_SPACE',
      message: 'the disk of model.rollout.dir is full (EFBIG); the download was removed',
    });
  });
});

describe('free space', () => {
  it('exactly the announced length plus the reserve free is enough', async () => {
    const o = opts('/pkg', { reserveBytes: 1000, freeBytes: async () => BODY.length + 1000 });
    expect((await download(o)).bytes).toBe(BODY.length);
    expect(await failure(opts('/pkg', { reserveBytes: 1000, freeBytes: async () => BODY.length + 999 }))).toMatchObject({
      code: 'DOWNLOAD_NO_SPACE',
    });
  });

  it('says how many bytes are still to come, down to one', async () => {
    expect(await failure(opts('/chunked?n=1', { maxBytes: 1, reserveBytes: 10, freeBytes: async () => 10 }))).toMatchObject({
      code: 'DOWNLOAD_NO_SPACE',
      message:
        'the package needs 1 more bytes; the disk of model.rollout.dir has 10 free and keeps model.rollout.reserveBytes (10) for the journal',
    });
  });

  it('is looked at before the first byte and again after each MiB written (3.5 MiB: three more looks)', async () => {
    const looks: string[] = [];
    const freeBytes = (dir: string) => {
      looks.push(dir);
      return Promise.resolve(100 * MB);
    };
    const o = opts('/big', { freeBytes });
    expect((await download(o)).bytes).toBe(3.5 * MB);
    expect(looks).toEqual([work, work, work, work]);
  });
});

describe('file:// URLs', () => {
  it('copy a package of exactly maxBytes, with progress; one byte more is refused', async () => {
    const src = join(work, 'pkg.tgz');
    writeFileSync(src, BODY);
    const progress: [number, number | null][] = [];
    const o = {
      ...opts('/'),
      url: `file://${src}`,
      fileRoot: work,
      maxBytes: BODY.length,
      onProgress: (b: number, t: number | null) => void progress.push([b, t]),
    };
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
    expect(progress.at(-1)).toEqual([BODY.length, BODY.length]);
    expect(await failure({ ...o, file: part(), maxBytes: BODY.length - 1 })).toMatchObject({
      code: 'DOWNLOAD_TOO_LARGE',
      message: `the package is ${BODY.length} bytes, over model.rollout.maxBytes (${BODY.length - 1})`,
    });
  });
});

describe('HTTPS', () => {
  it('verifies the certificate: untrusted is DOWNLOAD_TLS, trusted through `ca` works, and https never redirects to http', async () => {
    if (!tls) return;
    const at = (path: string) => `https://127.0.0.1:${tlsPort}${path}`;
    expect(await failure(opts('/', { url: at('/pkg') }))).toMatchObject({
      code: 'DOWNLOAD_TLS',
      message: "the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT); add its CA with model.rollout.caFile",
    });
    const o = opts('/', { url: at('/pkg'), ca });
    expect(await download(o)).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(readFileSync(o.file).equals(BODY)).toBe(true);
    expect(await failure(opts('/', { url: at('/to-http'), ca }))).toMatchObject({
      code: 'DOWNLOAD_URL',
      message: 'a redirect from https to http: is refused',
    });
  });
});
