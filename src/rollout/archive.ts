import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { createGunzip } from 'node:zlib';
import { DaemonError } from '../errors.js';

/**
 * A strict reader of the one archive format a model package travels in: a tar (ustar, GNU or pax
 * headers), optionally gzip-compressed (told by the bytes, not the name). Only regular files and
 * folders are accepted; a symlink, hard link, device or FIFO, an absolute path, a `..` step, a
 * name with a backslash or control character, too many entries or too many bytes unpacked refuse
 * the whole archive. Files are written below `dest` only, created new (never over an existing
 * file), so nothing outside the staging folder can be reached. Package files sit at the archive's
 * root, or all under one top-level folder (`tar czf pkg.tgz mymodel/`); `extractPackage` returns
 * the folder holding manifest.yaml.
 */

export interface ArchiveLimits {
  /** Bound on the sum of the unpacked file sizes (a gzip bomb stops here). */
  maxBytes: number;
  /** Bound on the number of entries. */
  maxEntries: number;
  /** Aborting stops the unpack between two reads (a DaemonError given as the reason is thrown). */
  signal?: AbortSignal;
}

export class ArchiveError extends DaemonError {
  constructor(message: string) {
    super('MODEL_ARCHIVE', message);
    this.name = 'ArchiveError';
  }
}

const BLOCK = 512;

/** Pulls exact byte counts out of a chunk stream. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    return this.buf.length >= n;
  }

  /** Exactly n bytes, or undefined at the end of the stream. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** n bytes in pieces as they arrive; throws if the stream ends first. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!this.buf.length && !(await this.fill(1))) throw new ArchiveError('the archive ends in the middle of a file');
      const take = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }
}

const cstr = (b: Buffer, start: number, len: number) => {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
};

function octal(b: Buffer, start: number, len: number, what: string): number {
  // GNU base-256 (high bit set) is for files over 8 GiB: never a model package.
  if (b[start] & 0x80) throw new ArchiveError(`${what}: base-256 numbers (files over 8 GiB) are not accepted`);
  const s = cstr(b, start, len).trim();
  if (!/^[0-7]*$/.test(s)) throw new ArchiveError(`${what}: "${s}" is not an octal number`);
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === octal(h, 148, 8, 'header checksum');
}

/** The entry's path as it will be written: relative, `/`-separated, no `.`/`..` steps, no odd characters. */
export function safeEntryPath(raw: string): string {
  const name = raw.replace(/\/+$/, '');
  if (!name) throw new ArchiveError(`entry "${raw}": empty name`);
  if (name.startsWith('/')) throw new ArchiveError(`entry "${raw}": absolute paths are not accepted`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\\\u0000-\u001f\u007f]/.test(name))
    throw new ArchiveError(`entry ${JSON.stringify(raw)}: backslashes and control characters are not accepted`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ArchiveError(`entry "${raw}": ".." is not accepted (it would leave the package folder)`);
  if (!parts.length) throw new ArchiveError(`entry "${raw}": empty name`);
  return parts.join('/');
}

/** pax extended header records ("<len> key=value\n"): only `path` and `size` matter here. */
function paxRecords(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < b.length && b[i] !== 0) {
    const sp = b.indexOf(0x20, i);
    const len = parseInt(b.subarray(i, sp).toString('ascii'), 10);
    if (sp < 0 || !Number.isSafeInteger(len) || len <= 0 || i + len > b.length) throw new ArchiveError('malformed pax header');
    const rec = b.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

export interface ExtractedEntry {
  path: string;
  type: 'file' | 'dir';
  size: number;
}

/** Unpacks `archive` (tar or tar.gz) into `dest` (which must exist and be empty), within `limits`. */
export async function extractArchive(archive: string, dest: string, limits: ArchiveLimits): Promise<ExtractedEntry[]> {
  const head = Buffer.alloc(2);
  const fh = await open(archive, 'r');
  try {
    await fh.read(head, 0, 2, 0);
  } finally {
    await fh.close();
  }
  const raw = createReadStream(archive);
  // Settled once the descriptor is closed: the unpack answers only then, so a caller can delete or
  // replace the archive at once (and a refused one does not hold a descriptor for a while).
  const closed = new Promise<void>((resolve) => raw.once('close', resolve));
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const stream = gz ? raw.pipe(createGunzip()) : raw;
  if (gz) raw.on('error', (err) => stream.destroy(err));
  const reader = new ByteReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  const entries: ExtractedEntry[] = [];
  let total = 0;
  let longName: string | undefined;
  let pax: Record<string, string> = {};
  try {
    for (;;) {
      stopped(limits.signal);
      const h = await reader.read(BLOCK);
      if (!h) throw new ArchiveError('the archive ends without its end-of-archive blocks (truncated?)');
      if (h.every((x) => x === 0)) break; // end of archive
      if (!checksumOk(h)) throw new ArchiveError(`entry ${entries.length + 1}: header checksum mismatch (not a tar archive, or damaged)`);
      const type = String.fromCharCode(h[156] || 0x30);
      let size = octal(h, 124, 12, 'entry size');
      if (pax.size !== undefined) size = Number(pax.size);
      if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveError('entry size out of range');
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      // Every entry's declared size counts, whatever its type: a folder or a header "of 2 GiB" is
      // read through too (gzip makes that cheap to send), so it is refused at its header.
      const over = (at: string) => new ArchiveError(`unpacked size over the limit of ${limits.maxBytes} bytes (at ${at})`);
      total += size;
      // Metadata entries: read whole (small), then apply to the next header.
      if (type === 'L' || type === 'x' || type === 'g') {
        if (total > limits.maxBytes) throw over(`entry ${entries.length + 1}`);
        if (size > 64 * 1024) throw new ArchiveError(`a ${type === 'L' ? 'long-name' : 'pax'} header of ${size} bytes is over 64 KiB`);
        const body = (await reader.read(padded)) ?? Buffer.alloc(0);
        if (body.length < padded) throw new ArchiveError('the archive ends in the middle of a header');
        if (type === 'L') longName = cstr(body, 0, size);
        else if (type === 'x') pax = paxRecords(body.subarray(0, size));
        continue; // 'g' (global pax) carries nothing we use
      }
      const ustar = h.subarray(257, 262).toString('ascii') === 'ustar';
      const prefix = ustar ? cstr(h, 345, 155) : '';
      const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
      longName = undefined;
      pax = {};
      if (total > limits.maxBytes) throw over(JSON.stringify(rawName.slice(0, 100)));
      // `tar -C dir .` starts with a "./" folder entry: the root itself, nothing to make.
      if (type === '5' && /^(\.\/?)+$/.test(rawName)) {
        if (padded) for await (const _ of reader.pieces(padded));
        continue;
      }
      const path = safeEntryPath(rawName);
      if (entries.length >= limits.maxEntries) throw new ArchiveError(`more than ${limits.maxEntries} entries`);
      if (type === '5') {
        await mkdir(join(dest, path), { recursive: true });
        entries.push({ path, type: 'dir', size: 0 });
        if (padded) for await (const _ of reader.pieces(padded));
        continue;
      }
      if (type !== '0' && type !== '7') {
        const what =
          { '1': 'a hard link', '2': 'a symbolic link', '3': 'a character device', '4': 'a block device', '6': 'a FIFO' }[type] ??
          `an entry of type "${type}"`;
        throw new ArchiveError(`entry "${path}": ${what}; only regular files and folders are accepted`);
      }
      const file = join(dest, path);
      await mkdir(join(dest, posix.dirname(path)), { recursive: true });
      // 'wx': a name given twice (or a folder and a file of one name) refuses the archive.
      const out = await open(file, 'wx', 0o644).catch((err: NodeJS.ErrnoException) => {
        throw new ArchiveError(
          `entry "${path}": cannot create it (${err.code === 'EEXIST' ? 'the archive names it twice' : (err.code ?? err.message)})`,
        );
      });
      try {
        for await (const piece of reader.pieces(size)) {
          stopped(limits.signal);
          await out.write(piece);
        }
      } finally {
        await out.close();
      }
      if (padded > size) for await (const _ of reader.pieces(padded - size));
      entries.push({ path, type: 'file', size });
    }
  } catch (err) {
    await release();
    if (err instanceof DaemonError) throw err;
    throw new ArchiveError(`cannot read the archive: ${(err as Error).message}`);
  }
  await release();
  return entries;

  async function release(): Promise<void> {
    stream.destroy();
    raw.destroy(); // destroying the gunzip side does not reach the file
    await closed;
  }
}

function stopped(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  throw signal.reason instanceof DaemonError ? signal.reason : new ArchiveError('the unpack was stopped');
}

/** The folder of an unpacked package: `dest` if manifest.yaml is at the root, else the one top-level folder holding it. */
export function packageRoot(dest: string, entries: ExtractedEntry[]): string {
  const files = entries.filter((e) => e.type === 'file').map((e) => e.path);
  if (files.includes('manifest.yaml')) return dest;
  const tops = new Set(entries.map((e) => e.path.split('/')[0]));
  if (tops.size === 1) {
    const [top] = tops;
    if (files.includes(`${top}/manifest.yaml`)) return join(dest, top);
  }
  throw new ArchiveError('no manifest.yaml at the archive root (or in its one top-level folder)');
}
