import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { DaemonError } from '../errors.js';

/**
 * One daemon per journal file: two would both drain the same unsent messages. SQLite's own locks
 * cannot say that (readers such as `edge-inferd history` must stay possible), so a `<file>.lock`
 * holds the owner's pid. A lock left by a killed daemon names a dead pid and is taken over.
 */
export class JournalLock {
  private readonly lockPath: string;
  private held = false;

  constructor(journalPath: string) {
    this.lockPath = `${journalPath}.lock`;
  }

  acquire(): void {
    if (this.held) return;
    try {
      writeFileSync(this.lockPath, `${process.pid}\n`, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(readFileSync(this.lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new DaemonError(
          'JOURNAL_LOCKED',
          `journal.path: ${this.lockPath.slice(0, -5)} is in use by process ${owner} (another edge-inferd?); give each daemon its own journal.path`,
        );
      }
      writeFileSync(this.lockPath, `${process.pid}\n`);
    }
    this.held = true;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if (Number.parseInt(readFileSync(this.lockPath, 'utf8'), 10) === process.pid) unlinkSync(this.lockPath);
    } catch {
      // already gone: nothing to release
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
