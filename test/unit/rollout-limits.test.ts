import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractArchive } from '../../src/rollout/archive.js';
import { DownloadError, download } from '../../src/rollout/download.js';
import { tarHeader } from '../helpers/rollout.js';

/**
 * Issue 21 rows 1, 9 and 12 at the download and the archive: the free space is checked before
 * and while bytes arrive (a reserve is always left); folder entries' declared sizes count against
 * maxBytes and the unpack stops when asked; file:// names only files below fileRoot, and its
 * errors do not tell whether a path exists.
 */

const work = mkdtempSync(join(tmpdir(), 'rollout-limits-'));
const MB = 1024 * 1024;

/** A tar header block (ustar) with a declared size and type, no body. */
const header = (name: string, type: string, size: number) => tarHeader(name, type, size, { mode: '0000755' });

describe('archive sizes', () => {
  it('a folder entry declaring 2 GiB counts against maxBytes: refused at its header, nothing read through', async () => {
    const tar = Buffer.concat([header('big/', '5', 2 * 1024 * MB), Buffer.alloc(2 * MB), Buffer.alloc(1024)]);
    const file = join(work, 'folder-2g.tar');
    writeFileSync(file, tar);
    const dest = join(work, 'out-2g');
    mkdirSync(dest);
    await expect(extractArchive(file, dest, { maxBytes: 8 * MB, maxEntries: 100 })).rejects.toMatchObject({
      code: 'MODEL_ARCHIVE',
      message: 'unpacked size over the limit of 8388608 bytes (at "big/")',
    });
  });

  it('an unpack whose signal is aborted stops with the reason given', async () => {
    const tar = Buffer.concat([header('a.bin', '0', 4096), Buffer.alloc(4096), Buffer.alloc(1024)]);
    const file = join(work, 'small.tar');
    writeFileSync(file, tar);
    const dest = join(work, 'out-abort');
    mkdirSync(dest);
    const ac = new AbortController();
    ac.abort(new DownloadError('DOWNLOAD_CANCELLED', 'cancelled'));
    await expect(extractArchive(file, dest, { maxBytes: 8 * MB, maxEntries: 100, signal: ac.signal })).rejects.toMatchObject({
      code: 'DOWNLOAD_CANCELLED',
    });
    expect(existsSync(join(dest, 'a.bin'))).toBe(false);
  });
});

describe('file:// URLs', () => {
  const root = join(work, 'incoming');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'pkg.tgz'), 'package bytes');
  writeFileSync(join(work, 'secret'), 'not for you');
  symlinkSync(join(work, 'secret'), join(root, 'escape.tgz'));
  const base = { maxBytes: MB, idleTimeoutMs: 5000 };

  it('are refused when model.rollout.fileRoot is unset (the default)', async () => {
    await expect(download({ ...base, url: 'file:///etc/passwd', file: join(work, 'p1') })).rejects.toMatchObject({
      code: 'DOWNLOAD_URL',
      message: expect.stringContaining('model.rollout.fileRoot'),
    });
    expect(existsSync(join(work, 'p1'))).toBe(false);
  });

  it('copy a file below fileRoot; anything else gets one answer that does not tell whether it exists', async () => {
    const got = await download({ ...base, url: `file://${join(root, 'pkg.tgz')}`, file: join(work, 'p2'), fileRoot: root });
    expect([got.bytes, readFileSync(join(work, 'p2'), 'utf8')]).toEqual([13, 'package bytes']);
    const messages = new Set<string>();
    for (const path of [
      '/etc/shadow',
      '/etc/passwd',
      '/no/such/file',
      join(root, 'sub'),
      join(root, 'escape.tgz'),
      join(root, 'missing'),
    ]) {
      const err = await download({ ...base, url: `file://${path}`, file: join(work, 'p3'), fileRoot: root }).catch((e: unknown) => e);
      expect(err, path).toMatchObject({ code: 'DOWNLOAD_URL' });
      messages.add((err as Error).message);
    }
    expect([...messages]).toEqual(['url: not a readable regular file below model.rollout.fileRoot']);
    expect(existsSync(join(work, 'p3'))).toBe(false);
  });
});

describe('free space', () => {
  let server: http.Server;
  let port: number;
  const body = Buffer.alloc(3 * MB, 7);
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/chunked') {
        res.writeHead(200);
        res.end(body);
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it('before the first byte: the announced length must fit with the reserve left', async () => {
    const file = join(work, 'before.part');
    const err = await download({
      url: `http://127.0.0.1:${port}/sized`,
      file,
      maxBytes: 10 * MB,
      idleTimeoutMs: 5000,
      reserveBytes: 2 * MB,
      freeBytes: async () => 4 * MB,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'DOWNLOAD_NO_SPACE',
      message: `the package needs ${3 * MB} more bytes; the disk of model.rollout.dir has ${4 * MB} free and keeps model.rollout.reserveBytes (${2 * MB}) for the journal`,
    });
    expect(existsSync(file)).toBe(false);
  });

  it('without a length, maxBytes must fit; and while bytes arrive the reserve is watched', async () => {
    const unknown = await download({
      url: `http://127.0.0.1:${port}/chunked`,
      file: join(work, 'maxbytes.part'),
      maxBytes: 10 * MB,
      idleTimeoutMs: 5000,
      reserveBytes: MB,
      freeBytes: async () => 8 * MB,
    }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'DOWNLOAD_NO_SPACE' });
    // The disk fills while downloading (something else writes too): free space drops per look.
    let free = 20 * MB;
    const during = await download({
      url: `http://127.0.0.1:${port}/sized`,
      file: join(work, 'during.part'),
      maxBytes: 10 * MB,
      idleTimeoutMs: 5000,
      reserveBytes: MB,
      freeBytes: async () => (free = Math.max(0, free - 9 * MB)),
    }).catch((e: unknown) => e);
    expect(during).toMatchObject({ code: 'DOWNLOAD_NO_SPACE', message: expect.stringMatching(/is down to \d+ free bytes, under/) });
  });
});

describe('redirects', () => {
  /**
   * Issue 21 row 16: a server that says keep-alive, redirects, and closes that connection as the
   * next request arrives on it (the race a real server's idle close makes, made certain here). The
   * download must follow the redirect on a connection of its own, not report "socket hang up".
   */
  let server: http.Server;
  let port = 0;
  const body = Buffer.from('the package bytes');

  beforeAll(async () => {
    const served = new WeakSet<object>();
    server = http.createServer((req, res) => {
      const socket = req.socket;
      if (served.has(socket)) {
        // The second request on a kept-alive connection: this server closes it instead.
        socket.destroy();
        return;
      }
      served.add(socket);
      if (req.url === '/pkg.tgz') {
        res.writeHead(302, { location: '/real/pkg.tgz', connection: 'keep-alive', 'content-length': '0' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a redirect from a keep-alive server that closes the connection is followed on a new one', async () => {
    const file = join(work, 'redirected.part');
    const got = await download({ url: `http://127.0.0.1:${port}/pkg.tgz`, file, maxBytes: MB, idleTimeoutMs: 5000 });
    expect(got).toEqual({ bytes: body.length, resumedFrom: 0 });
    expect(readFileSync(file)).toEqual(body);
  });
});
