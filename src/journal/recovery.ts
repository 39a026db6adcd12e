import { existsSync, renameSync, statSync } from 'node:fs';

/**
 * A journal that SQLite cannot read (truncated, header overwritten, pages damaged, a folder at its
 * path) is moved aside, never deleted (what it holds may still be recovered by hand, e.g. with
 * `sqlite3 FILE .recover`), and the daemon starts with a fresh one: a restart loop under systemd
 * would lose every result from now on, which is worse than the ones in the damaged file.
 */

/** SQLite's codes for a file that is not a readable database. */
const CORRUPT_CODES = /^SQLITE_(CORRUPT|NOTADB)/;

export class JournalCorrupt extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalCorrupt';
  }
}

export function isCorruption(err: unknown): boolean {
  return err instanceof JournalCorrupt || CORRUPT_CODES.test(String((err as { code?: unknown } | null)?.code ?? ''));
}

/** Throws JournalCorrupt when something that is not a file sits at the journal's path. */
export function checkIsFile(path: string): void {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    return; // missing: a new journal is created
  }
  if (isDir) throw new JournalCorrupt(`${path} is a folder, not a journal file`);
}

/**
 * Renames the journal (and its -wal and -shm, which belong to it) to `<path>.corrupt-<time>`;
 * returns that name. The time is UTC, with no ':' so the name is valid everywhere.
 */
export function moveAside(path: string, nowMs: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, '-');
  let aside = `${path}.corrupt-${stamp}`;
  for (let k = 2; existsSync(aside); k++) aside = `${path}.corrupt-${stamp}-${k}`;
  renameSync(path, aside);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
  return aside;
}
