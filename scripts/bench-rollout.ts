/**
 * The model rollout's byte path on this machine: a package archive of SIZE_MB (default 128) of
 * incompressible data, gzip'd tar, served by an HTTP server on loopback, downloaded to a staging
 * file (download.ts), hashed (sha256), unpacked by the strict tar reader (archive.ts). Prints MB/s
 * per step and the process's peak RSS growth (every step streams: it stays far below the archive).
 * `npx tsx scripts/bench-rollout.ts [SIZE_MB]`
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, createReadStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { extractArchive } from '../src/rollout/archive.js';
import { download, sha256Of } from '../src/rollout/download.js';

const sizeMb = Number(process.argv[2] ?? 128);
const dir = mkdtempSync(join(tmpdir(), 'bench-rollout-'));
const pkg = join(dir, 'pkg');
mkdirSync(pkg);
// 16 MB pieces of random bytes: gzip cannot shrink them, so the archive is as big as asked.
for (let i = 0; i < Math.ceil(sizeMb / 16); i++) writeFileSync(join(pkg, `weights-${i}.bin`), randomBytes(16 << 20));
writeFileSync(join(pkg, 'manifest.yaml'), 'name: bench\n');
const archive = join(dir, 'pkg.tgz');
execFileSync('tar', ['-czf', archive, '-C', pkg, '.']);
rmSync(pkg, { recursive: true });
const bytes = statSync(archive).size;
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-length': bytes });
  createReadStream(archive).pipe(res);
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg.tgz`;

const rss0 = process.memoryUsage().rss;
let peak = rss0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const mb = bytes / (1 << 20);
const time = async (what: string, f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  const s = (performance.now() - t0) / 1000;
  console.log(`${what.padEnd(10)} ${s.toFixed(2)} s  ${(mb / s).toFixed(0)} MB/s`);
};
console.log(`archive ${mb.toFixed(0)} MB (tar.gz of random data)`);
const part = join(dir, 'archive.part');
await time('download', () => download({ url, file: part, maxBytes: bytes, idleTimeoutMs: 30_000 }));
await time('sha256', () => sha256Of(part));
const out = join(dir, 'unpacked');
mkdirSync(out);
await time('unpack', () => extractArchive(part, out, { maxBytes: bytes * 2, maxEntries: 1000 }));
clearInterval(sampler);
console.log(`peak RSS growth ${((peak - rss0) / (1 << 20)).toFixed(0)} MB`);
server.close();
rmSync(dir, { recursive: true });
