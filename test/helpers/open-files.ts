import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The files under `dir` this process holds open. Asserting on these rather than on the count of
 * every descriptor keeps a test from failing when the test runner opens one of its own meanwhile.
 */
export function openFilesUnder(dir: string): string[] {
  const held: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(join('/proc/self/fd', fd));
    } catch {
      continue; // closed between the listing and the read
    }
    if (target === dir || target.startsWith(`${dir}/`)) held.push(target);
  }
  return held;
}
