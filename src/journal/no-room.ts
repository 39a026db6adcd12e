import { accessSync, constants, statfsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { errorCode } from '../errors.js';
import { type Db, SCHEMA_VERSION } from './store.js';

/**
 * A journal that cannot be opened for writing because its disk has no room (full, over quota, or
 * mounted read-only) must not stop the daemon: under systemd's Restart=on-failure that is a crash
 * loop in which nothing at all is published. The journal then runs read-only (journal.ts) and
 * tries again on a timer; these are the two things it needs from the file system.
 */

/** Below this much free space an I/O error while opening is taken for a full disk (SQLite needs its WAL index and a few pages). */
const NEARLY_FULL_BYTES = 1024 * 1024;

const FULL_CODES = /^(ENOSPC|EDQUOT|SQLITE_FULL)/;
const READ_ONLY_CODES = /^(EROFS|SQLITE_READONLY)/;
/** What SQLite reports when it cannot grow the WAL index or a file (a full tmpfs says SQLITE_IOERR_SHMSIZE). */
const IO_CODES = /^(SQLITE_IOERR|SQLITE_CANTOPEN)/;

/** The codes along an error's cause chain (a DaemonError wraps the SQLite or fs error). */
function codes(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const c = errorCode(e);
    if (c) out.push(c);
  }
  return out;
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function readOnlyFs(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return false;
  } catch (err) {
    return errorCode(err) === 'EROFS';
  }
}

/** Why the journal's disk has no room: `kind` stays the same while the disk's state does, `text` says it now. */
export interface NoRoom {
  kind: 'full' | 'read-only';
  text: string;
}

/**
 * Why the journal's disk has no room for it ("the disk is full (12 KB free)", "the file system is
 * read-only"), or undefined when the error is something else (corruption, permissions, a lock held
 * by another daemon): those still stop the start, as before.
 */
export function noRoomReason(err: unknown, dir: string): NoRoom | undefined {
  const cs = codes(err);
  const free = freeBytes(dir);
  const full: NoRoom = { kind: 'full', text: `the disk is full${free !== undefined ? ` (${Math.round(free / 1024)} KB free)` : ''}` };
  if (cs.some((c) => READ_ONLY_CODES.test(c)) || (cs.some((c) => IO_CODES.test(c)) && readOnlyFs(dir))) {
    return { kind: 'read-only', text: 'the file system is read-only' };
  }
  if (cs.some((c) => FULL_CODES.test(c))) return full;
  if (cs.some((c) => IO_CODES.test(c)) && free !== undefined && free < NEARLY_FULL_BYTES) return full;
  return undefined;
}

/**
 * Opens an existing journal for reading on a disk with no room. SQLite's WAL index (the -shm file)
 * cannot be created or grown there, but a connection in exclusive locking mode (set before its
 * first read) keeps that index in memory instead, so it reads the file and a WAL left by a crash.
 * It also keeps `edge-inferd history` out while it is open: the journal holds it only until the
 * disk has room again. Throws when the file is missing or has another schema version.
 */
export function openForReading(path: string): Db {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version !== SCHEMA_VERSION) throw new Error(`${path} has schema version ${version}, read-only mode reads ${SCHEMA_VERSION}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
