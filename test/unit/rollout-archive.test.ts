import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { extractArchive, packageRoot } from '../../src/rollout/archive.js';
import { rawTar, tarEntry, tarFolder } from '../helpers/rollout.js';
import { openFilesUnder } from '../helpers/open-files.js';
import { needTool } from '../helpers/tools.js';

/** The strict tar reader against archives made by the system's tar, and against hostile ones written byte by byte. */

const limits = { maxBytes: 1 << 20, maxEntries: 100 };

function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'archive-'));
  const dest = join(dir, 'out');
  mkdirSync(dest);
  return { dir, dest };
}

/** One tar entry written byte by byte (ustar header, any type flag, the body padded to whole blocks). */
const END = Buffer.alloc(1024);

function extractBytes(bytes: Buffer, lim = limits) {
  const { dir, dest } = scratch();
  const file = join(dir, 'a.tgz');
  writeFileSync(file, bytes);
  return { dir, dest, run: () => extractArchive(file, dest, lim) };
}

describe('extractArchive', () => {
  it('unpacks what GNU tar made (gzip and plain, a ./ root, nested folders, a pax long name)', async () => {
    const tar = needTool('tar', 'tar');
    if (!tar) return;
    const { dir } = scratch();
    const src = join(dir, 'pkg');
    const long = 'x'.repeat(120) + '.png';
    mkdirSync(join(src, 'selftest', 'red'), { recursive: true });
    writeFileSync(join(src, 'manifest.yaml'), 'name: m\n');
    writeFileSync(join(src, 'selftest', 'red', long), Buffer.alloc(1500, 7));
    for (const gzip of [true, false]) {
      const out = join(dir, `pkg-${gzip}.tar`);
      tarFolder(src, out, gzip);
      const dest = join(dir, `out-${gzip}`);
      mkdirSync(dest);
      const entries = await extractArchive(out, dest, limits);
      expect(packageRoot(dest, entries)).toBe(dest);
      expect(readFileSync(join(dest, 'selftest', 'red', long))).toEqual(Buffer.alloc(1500, 7));
    }
    // pax format (what bsdtar and `tar --format=pax` write): long names in an 'x' header.
    const pax = join(dir, 'pax.tar');
    execFileSync(tar, ['--format=pax', '-cf', pax, '-C', dir, 'pkg']);
    const dest = join(dir, 'out-pax');
    mkdirSync(dest);
    const entries = await extractArchive(pax, dest, limits);
    // One top-level folder holding the package is accepted too.
    expect(packageRoot(dest, entries)).toBe(join(dest, 'pkg'));
    expect(existsSync(join(dest, 'pkg', 'selftest', 'red', long))).toBe(true);
  });

  it.each([
    ['a .. step', [{ name: '../evil.txt', body: Buffer.from('x') }], /"\.\.\/evil\.txt": "\.\." is not accepted/],
    ['a .. step inside', [{ name: 'pkg/../../evil.txt', body: Buffer.from('x') }], /"\.\." is not accepted/],
    ['an absolute path', [{ name: '/tmp/evil.txt', body: Buffer.from('x') }], /absolute paths are not accepted/],
    [
      'a symlink',
      [{ name: 'model.onnx', type: '2' as const, link: '/etc/passwd' }],
      /"model\.onnx": a symbolic link; only regular files and folders/,
    ],
    ['a backslash', [{ name: '..\\evil', body: Buffer.from('x') }], /backslashes/],
    [
      'a name given twice',
      [
        { name: 'a', body: Buffer.from('1') },
        { name: 'a', body: Buffer.from('2') },
      ],
      /names it twice/,
    ],
  ])('refuses %s, writing nothing outside', async (_what, entries, message) => {
    const { dir, run } = await extractBytes(rawTar(entries));
    await expect(run()).rejects.toThrow(message);
    expect(readdirSync(dir).sort()).toEqual(['a.tgz', 'out']);
  });

  it('stops a gzip bomb at the unpacked limit, and refuses too many entries', async () => {
    const big = await extractBytes(rawTar([{ name: 'zeros', body: Buffer.alloc(3 << 20) }]), { maxBytes: 1 << 20, maxEntries: 10 });
    expect(readFileSync(join(big.dir, 'a.tgz')).length).toBeLessThan(10_000);
    await expect(big.run()).rejects.toThrow(/unpacked size over the limit of 1048576 bytes \(at "zeros"\)/);
    const many = await extractBytes(rawTar(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, body: Buffer.from('x') }))), {
      maxBytes: 1 << 20,
      maxEntries: 10,
    });
    await expect(many.run()).rejects.toThrow(/more than 10 entries/);
  });

  it('refuses a truncated archive, a damaged header and something that is no tar', async () => {
    const whole = rawTar([{ name: 'manifest.yaml', body: Buffer.alloc(2000, 1) }], false);
    await expect((await extractBytes(whole.subarray(0, 1024))).run()).rejects.toThrow(/ends in the middle of a file/);
    const damaged = Buffer.from(whole);
    damaged[10] ^= 0xff;
    await expect((await extractBytes(damaged)).run()).rejects.toThrow(/header checksum mismatch/);
    await expect((await extractBytes(Buffer.from('<html>not found</html>'.padEnd(600, ' ')))).run()).rejects.toThrow(
      /header checksum mismatch|not an octal/,
    );
  });

  it('refuses as truncated an archive that ends cleanly after an entry but lacks the end-of-archive blocks', async () => {
    const entries = [{ name: 'manifest.yaml', body: Buffer.from('name: m\n') }];
    const plain = rawTar(entries, false);
    // The control: the whole archive unpacks.
    expect((await (await extractBytes(plain)).run()).map((e) => e.path)).toEqual(['manifest.yaml']);
    // Cut at an entry boundary (header + one padded block): every block read is whole, the two zero blocks are missing.
    const cut = plain.subarray(0, plain.length - 1024);
    expect(cut.length % 512).toBe(0);
    await expect((await extractBytes(cut)).run()).rejects.toThrow(/ends without its end-of-archive blocks \(truncated\?\)/);
    await expect((await extractBytes(gzipSync(cut))).run()).rejects.toThrow(/ends without its end-of-archive blocks/);
  });

  it('says so when no manifest.yaml is at the root or in the one top folder', async () => {
    const { dest, run } = await extractBytes(
      rawTar([
        { name: 'a/manifest.yaml', body: Buffer.from('x') },
        { name: 'b/x', body: Buffer.from('y') },
      ]),
    );
    const entries = await run();
    expect(() => packageRoot(dest, entries)).toThrow(/no manifest\.yaml at the archive root/);
  });

  it('reads an archive whose end blocks start exactly where a read of the file ends (64 KiB chunks)', async () => {
    // 512 (header) + 64512 (body) = 65024: the first end block is the last 512 bytes of the first 64 KiB read.
    const body = Buffer.alloc(64_512, 9);
    const tar = Buffer.concat([tarEntry('manifest.yaml', '0', body), END]);
    expect(tar.length).toBe(65_536 + 512);
    const { dest, run } = await extractBytes(tar);
    expect(await run()).toEqual([{ path: 'manifest.yaml', type: 'file', size: 64_512 }]);
    expect(readFileSync(join(dest, 'manifest.yaml'))).toEqual(body);
  });

  it('takes a long name (GNU L) or pax header up to 64 KiB and refuses one byte more', async () => {
    const name = (size: number) => Buffer.concat([Buffer.from('pkg/manifest.yaml'), Buffer.alloc(size - 17)]);
    const at = await extractBytes(
      Buffer.concat([tarEntry('././@LongLink', 'L', name(64 * 1024)), tarEntry('x', '0', Buffer.from('m')), END]),
    );
    expect(await at.run()).toEqual([{ path: 'pkg/manifest.yaml', type: 'file', size: 1 }]);
    const over = await extractBytes(
      Buffer.concat([tarEntry('././@LongLink', 'L', name(64 * 1024 + 1)), tarEntry('x', '0', Buffer.from('m')), END]),
    );
    await expect(over.run()).rejects.toThrow('a long-name header of 65537 bytes is over 64 KiB');
    const pax = await extractBytes(Buffer.concat([tarEntry('pax', 'x', Buffer.alloc(64 * 1024 + 1, 0x20)), END]));
    await expect(pax.run()).rejects.toThrow('a pax header of 65537 bytes is over 64 KiB');
  });

  it('applies a pax path to the next entry only, and refuses a pax record that runs past its header', async () => {
    const rec = (text: string) => `${text.length + 3 + String(text.length).length - 1} ${text}\n`;
    const record = rec('path=pkg/manifest.yaml');
    expect(Number(record.split(' ')[0])).toBe(record.length);
    const ok = await extractBytes(
      Buffer.concat([
        tarEntry('pax', 'x', Buffer.from(record)),
        tarEntry('short', '0', Buffer.from('a')),
        tarEntry('b', '0', Buffer.from('b')),
        END,
      ]),
    );
    expect((await ok.run()).map((e) => e.path)).toEqual(['pkg/manifest.yaml', 'b']);
    // The record says 40 bytes; the header holds 24.
    const long = await extractBytes(
      Buffer.concat([tarEntry('pax', 'x', Buffer.from('40 path=pkg/manifest.yaml\n')), tarEntry('a', '0', Buffer.from('a')), END]),
    );
    await expect(long.run()).rejects.toThrow('malformed pax header');
  });

  it('closes every file it writes (a daemon that installs packages for months must not leak descriptors)', async () => {
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `selftest/f${i}.png`, body: Buffer.from(`file ${i}`) }));
    const { dir, dest, run } = await extractBytes(rawTar(files));
    expect(await run()).toHaveLength(40);
    expect(openFilesUnder(dir)).toEqual([]);
    expect(readFileSync(join(dest, 'selftest', 'f39.png'), 'utf8')).toBe('file 39');
  });

  it('takes exactly maxBytes unpacked, counting metadata headers too, and not one byte more', async () => {
    const exact = await extractBytes(rawTar([{ name: 'model.onnx', body: Buffer.alloc(3000, 1) }]), { maxBytes: 3000, maxEntries: 10 });
    expect((await exact.run()).map((e) => e.size)).toEqual([3000]);
    const over = await extractBytes(rawTar([{ name: 'model.onnx', body: Buffer.alloc(3001, 1) }]), { maxBytes: 3000, maxEntries: 10 });
    await expect(over.run()).rejects.toThrow('unpacked size over the limit of 3000 bytes (at "model.onnx")');
    // A long-name header of 600 bytes and an empty file under that name: 600 in all.
    const name = Buffer.concat([Buffer.from('pkg/manifest.yaml'), Buffer.alloc(583)]);
    const meta = Buffer.concat([tarEntry('././@LongLink', 'L', name), tarEntry('x', '0', Buffer.alloc(0)), END]);
    expect(await (await extractBytes(meta, { maxBytes: 600, maxEntries: 10 })).run()).toEqual([
      { path: 'pkg/manifest.yaml', type: 'file', size: 0 },
    ]);
    await expect((await extractBytes(meta, { maxBytes: 599, maxEntries: 10 })).run()).rejects.toThrow(
      'unpacked size over the limit of 599 bytes (at entry 1)',
    );
  });

  it('refuses a file named "." (only a folder entry "./" is the root itself)', async () => {
    await expect((await extractBytes(rawTar([{ name: './', body: Buffer.from('x') }]))).run()).rejects.toThrow('entry "./": empty name');
    const root = await extractBytes(
      rawTar([
        { name: './', type: '5' },
        { name: './manifest.yaml', body: Buffer.from('m') },
      ]),
    );
    expect((await root.run()).map((e) => e.path)).toEqual(['manifest.yaml']);
  });

  it('closes the archive file when it refuses one part-way through', async () => {
    // 1 MiB that does not compress, then a damaged header: refused long before the end of the file.
    const tar = rawTar(
      [
        { name: 'noise.bin', body: randomBytes(1 << 20) },
        { name: 'b', body: Buffer.from('b') },
      ],
      false,
    );
    tar[512 + (1 << 20) + 10] ^= 0xff;
    const { dir, run } = await extractBytes(tar, { maxBytes: 4 << 20, maxEntries: 10 });
    await expect(run()).rejects.toThrow('entry 2: header checksum mismatch');
    // Closed by the time the refusal is known: a caller may delete or replace the file at once.
    expect(openFilesUnder(dir)).toEqual([]);
  });
});
