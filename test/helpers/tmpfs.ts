import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * A small real filesystem that can be filled: a tmpfs mounted on `dir` (root only; the tests run
 * as root in CI). Outside CI without root it returns false and the caller skips; under CI=true it throws.
 */
export function tryMountTmpfs(dir: string, size = '16m'): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`CI: cannot mount a tmpfs for the full-disk test (run as root): ${String(err)}`);
    return false;
  }
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', ['-l', dir]);
}

/** Writes zeros into `file` until the disk says ENOSPC; returns the bytes written. */
export function fillDisk(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    // The last few KB: small writes until not even one byte fits.
    const small = Buffer.alloc(512);
    try {
      for (;;) n += writeSync(fd, small);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    }
  } finally {
    closeSync(fd);
  }
  return n;
}
