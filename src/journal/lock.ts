import { readFileSync, statSync, unlinkSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DaemonError, errorMessage } from '../errors.js';

/**
 * One daemon per journal file: two would both drain the same unsent messages. The journal itself
 * cannot carry the lock (readers such as `edge-inferd history` must stay possible), so a small
 * SQLite file beside it, `<journal>.lock`, is held by a connection in exclusive locking mode:
 * SQLite takes an fcntl (POSIX) write lock on it and keeps it until the connection closes. The
 * kernel drops that lock when the process ends, however it ends, so a killed daemon never leaves a
 * stale lock, and no pid is compared (a pid reused by another process after a reboot used to lock
 * the journal for as long as that process lived). SQLite also tracks its locks per file inside the
 * process, so a second Journal on the same path in one process is refused the same way.
 *
 * Why SQLite and not flock(2) in our addon: better-sqlite3 is already loaded, its locks are the
 * fcntl locks SQLite has used safely for decades, and no native code of ours is needed.
 */
export class JournalLock {
  private readonly lockPath: string;
  private readonly journalPath: string;
  private db: Database.Database | undefined;

  constructor(journalPath: string) {
    this.journalPath = journalPath;
    this.lockPath = `${journalPath}.lock`;
  }

  acquire(): void {
    if (this.db) return;
    dropLegacyPidFile(this.lockPath);
    let db: Database.Database;
    try {
      db = new Database(this.lockPath, { timeout: 0 });
    } catch (err) {
      throw new DaemonError('JOURNAL_OPEN', `journal.path: cannot create the lock file ${this.lockPath}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = MEMORY');
      // A write takes the exclusive lock; in exclusive locking mode it is kept until close().
      db.exec(`CREATE TABLE IF NOT EXISTS owner (pid INTEGER); DELETE FROM owner; INSERT INTO owner VALUES (${process.pid})`);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
        throw new DaemonError(
          'JOURNAL_LOCKED',
          `journal.path: ${this.journalPath} is in use by another process (another edge-inferd?); give each daemon its own journal.path`,
        );
      }
      throw new DaemonError('JOURNAL_OPEN', `journal.path: cannot lock ${this.lockPath}: ${errorMessage(err)}`, { cause: err });
    }
    this.db = db;
  }

  release(): void {
    const db = this.db;
    this.db = undefined;
    // Closing drops the lock; the file stays (removing it could race a daemon that opened it already).
    db?.close();
  }
}

/** Earlier versions kept a text file holding a pid at this path: it is replaced (the old daemon is gone after an upgrade). */
function dropLegacyPidFile(path: string): void {
  try {
    if (statSync(path).size > 32) return;
    if (/^\d+\s*$/.test(readFileSync(path, 'utf8'))) unlinkSync(path);
  } catch {
    // no file: nothing to replace
  }
}
