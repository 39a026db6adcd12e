import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { needTool } from './tools.js';

/**
 * The fake V4L2 device (test/fixtures/fake-v4l2): an LD_PRELOAD library built with the system C
 * compiler on first use (and again when the source is newer). Pass it to a child process as
 * `LD_PRELOAD` with the FAKE_V4L2_* variables documented at the top of fake-v4l2.c.
 */
const DIR = resolve(import.meta.dirname, '../fixtures/fake-v4l2');
const SRC = resolve(DIR, 'fake-v4l2.c');
export const FAKE_V4L2_LIB = resolve(DIR, 'build/libfake-v4l2.so');

/** Path of the built library, or undefined (after a loud warning) when there is no C compiler; throws in CI. */
export function fakeV4l2(): string | undefined {
  if (!needTool('cc', 'gcc libc6-dev')) return undefined;
  if (!existsSync(FAKE_V4L2_LIB) || statSync(FAKE_V4L2_LIB).mtimeMs < statSync(SRC).mtimeMs) {
    execFileSync('sh', [resolve(DIR, 'build.sh'), FAKE_V4L2_LIB], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return FAKE_V4L2_LIB;
}
