import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractArchive, packageRoot } from '../../src/rollout/archive.js';
import { rawTar, tarFolder } from '../helpers/rollout.js';
import { needTool } from '../helpers/tools.js';

/** The strict tar reader against archives made by the system's tar, and against hostile ones written byte by byte. */

const limits = { maxBytes: 1 << 20, maxEntries: 100 };

function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'archive-'));
  const dest = join(dir, 'out');
  mkdirSync(dest);
  return { dir, dest };
}

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
});
