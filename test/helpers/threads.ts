import { readdirSync, readFileSync } from 'node:fs';

/**
 * This process's threads as /proc lists them: id, name (comm) and the fields of its stat line
 * after the name. A thread that ends between the listing and the read is left out: threads of
 * GStreamer's and libvips' pools come and go at any time, and reading one that just ended is
 * ENOENT, not a failure of the test.
 */
export function threads(): { id: string; name: string; stat: string[] }[] {
  const out: { id: string; name: string; stat: string[] }[] = [];
  for (const id of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim();
      const line = readFileSync(`/proc/self/task/${id}/stat`, 'utf8');
      out.push({ id, name, stat: line.slice(line.lastIndexOf(')') + 2).split(' ') });
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/** How many of this process's threads have this name. */
export const threadsNamed = (name: string) => threads().filter((t) => t.name === name).length;
