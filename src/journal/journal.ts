import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, systemClock, type Timer } from '../clock.js';
import { DaemonError, errorCode, errorMessage, must } from '../errors.js';
import type { Logger } from '../log.js';
import { JournalLock } from './lock.js';
import { type NoRoom, noRoomReason, openForReading } from './no-room.js';
import { checkIsFile, isCorruption, JournalCorrupt, moveAside } from './recovery.js';
import {
  countRows,
  type Db,
  INIT_META_SQL,
  LOST_UP_TO_KEY,
  type HistoryEntry,
  type HistoryQuery,
  migrateSchema,
  PENDING,
  queryHistory,
  REJECTED,
  SCHEMA_SQL,
  SCHEMA_VERSION,
  SENT,
} from './store.js';

/**
 * The durable journal (SQLite, WAL): every message is written here before it is published, and
 * marked sent when the broker acknowledges it. It is bounded by rows and bytes; past the bound the
 * oldest messages go first, sent ones before pending ones, and every eviction is counted and
 * logged. Sent messages older than the retention are deleted; pending ones only ever leave by
 * acknowledgement or by eviction. The same rows are the device's history.
 */

export interface NewMessage {
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Ordering key: messages of one camera are published in journal order. '' for device-wide ones. */
  camera: string;
  /** What it is (result, event, stats...): the topic's last level unless told. */
  kind: string;
  /** MQTT 5 message expiry. */
  expirySec?: number;
  /**
   * The `seq` the payload carries (results and events count per camera and kind), stored in its own
   * column so lastPayloadSeq never parses payloads. Omitted (or not a positive integer): none.
   */
  payloadSeq?: number;
}

export interface JournalRow extends NewMessage {
  seq: number;
  createdMs: number;
}

/** A journaled message as a reader after a position sees it (`Journal.rowsAfter`, `Journal.onAppend`). */
export interface FeedRow {
  seq: number;
  createdMs: number;
  camera: string;
  kind: string;
  payload: string;
}

export interface Evicted {
  sent: number;
  pending: number;
  /** The highest seq of a pending message evicted (0 if none): the outbox forgets those above what is in flight. */
  pendingUpTo: number;
}

export interface JournalOptions {
  path: string;
  maxRows: number;
  maxBytes: number;
  retentionMs: number;
  synchronous: 'normal' | 'full';
  log: Logger;
  /** Wall time for the rows and the retention, the timer for the sweep. */
  clock?: Clock;
  /** How often the retention sweep runs. */
  sweepEveryMs?: number;
  /** While the disk has no room (mode read-only or unavailable): how often opening for writing is tried again. */
  reopenEveryMs?: number;
}

/**
 * read-write: normal. read-only: the disk had no room to open the journal for writing; what it
 * holds is read (and drained), new messages are not journaled. unavailable: not even that (no
 * file yet, or no room for its lock). Both end by themselves once opening for writing works.
 */
export type JournalMode = 'read-write' | 'read-only' | 'unavailable';

export interface JournalStats {
  path: string;
  mode: JournalMode;
  synchronous: 'normal' | 'full';
  rows: number;
  bytes: number;
  /** Messages not yet acknowledged by the broker. */
  pending: number;
  maxRows: number;
  maxBytes: number;
  retentionHours: number;
  /** Since start: oldest messages removed to stay within the bounds. */
  evicted: { sent: number; pending: number };
  /** Since start: sent messages removed for being older than the retention. */
  expired: number;
  rejected: number;
  lastEvictionAtMs?: number;
  /** False while writes fail (from the first failure to the next append that succeeds). */
  writable: boolean;
  /** Since start: writes that failed (each rolled back whole: the counters above are the file's). */
  writeFailures: number;
  lastWriteError?: string;
  lastWriteErrorAtMs?: number;
  /** Unreadable journals moved aside at start, the last one's new name and what was wrong with it. */
  corrupt: { movedAside: number; lastMovedTo?: string; lastError?: string };
}

/** Per-row bookkeeping overhead counted in `bytes` besides topic and payload. */
const ROW_OVERHEAD = 48;
const EVICT_CHUNK = 512;
const LOG_EVERY_MS = 10_000;
const NO_EVICTION: Evicted = Object.freeze({ sent: 0, pending: 0, pendingUpTo: 0 });
const REOPEN_EVERY_MS = 5_000;
const NO_ROOM_WORDS = { full: 'the disk is full', 'read-only': 'the file system is read-only', error: 'it cannot be opened for writing' };

interface RawRow {
  seq: number;
  created_ms: number;
  camera: string;
  kind: string;
  topic: string;
  qos: 0 | 1 | 2;
  retain: number;
  expiry_sec: number | null;
  payload: string;
  payload_seq: number | null;
}

type Statements = ReturnType<Journal['prepare']>;

export class Journal {
  private readonly opts: JournalOptions;
  private readonly clock: Clock;
  private readonly lock: JournalLock;
  private db: Db | undefined;
  private stmts: Statements | undefined;
  /** Undefined between stop() and start(). */
  private mode: JournalMode | undefined;
  private sweepTimer: Timer | undefined;
  private reopenTimer: Timer | undefined;
  /** Why the journal is not read-write (the disk's state, or the error of the last attempt), while it is not. */
  private noRoom: NoRoom | { kind: 'error'; text: string } | undefined;
  /**
   * Acknowledgements received while read-only (the drained messages): kept here, left out of what
   * pendingAfter returns, and written when the journal opens for writing again.
   */
  private readonly deferredAcks = new Set<number>();
  private rows = 0;
  private bytes = 0;
  private pending = 0;
  private readonly evicted = { sent: 0, pending: 0 };
  private expired = 0;
  private rejected = 0;
  private lastEvictionAtMs: number | undefined;
  /** Evictions not yet logged (the log is rate-limited, the counters are not). */
  private unlogged = { sent: 0, pending: 0, sinceMs: 0 };
  /** Monotonic. */
  private loggedAtMs = -Infinity;
  /** Trimming sent history at the bound is the steady state once full: said once at info, then at debug. */
  private trimAnnounced = false;
  /** Journals found unreadable at start and moved aside (recovery.ts). */
  private corrupt: { movedAside: number; lastMovedTo?: string; lastError?: string } = { movedAside: 0 };
  /**
   * Set when a write fails (disk full, I/O error, a read-only or immutable file) and cleared by the
   * next append that succeeds: new messages are then in the file again. /readyz reads it.
   */
  private writeError: { message: string; code?: string; sinceMs: number } | undefined;
  private writeFailures = 0;
  /** The highest seq ever assigned, and the highest ever removed (journal_meta, see LOST_UP_TO_KEY). */
  private maxSeq = 0;
  private lost = 0;
  /** Told of every row written, after its transaction commits (the SSE hub, src/health/events.ts). */
  private readonly appendListeners = new Set<(rows: readonly FeedRow[]) => void>();

  constructor(opts: JournalOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.lock = new JournalLock(opts.path);
  }

  get path(): string {
    return this.opts.path;
  }

  /** Between start() and stop(), in whatever mode. */
  get isOpen(): boolean {
    return this.mode !== undefined;
  }

  /**
   * Opens (creating the folder and file), takes the lock, counts what is there. A journal SQLite
   * cannot read is moved aside and a fresh one started (recovery.ts). A disk with no room to open
   * it for writing (full, read-only) does not stop the start: the journal runs read-only and tries
   * again every `reopenEveryMs` (no-room.ts). Idempotent.
   */
  start(): void {
    if (this.mode) return;
    try {
      this.openReadWrite();
    } catch (err) {
      const why = noRoomReason(err, dirname(this.opts.path));
      if (!why) throw err;
      this.openDegraded(why, err);
    }
  }

  private openReadWrite(): void {
    const { path } = this.opts;
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new DaemonError('JOURNAL_OPEN', `journal.path: cannot create the folder of ${path}: ${errorMessage(err)}`, { cause: err });
    }
    this.lock.acquire();
    let db: Db;
    try {
      try {
        db = this.openFile();
      } catch (err) {
        if (!isCorruption(err)) throw err;
        this.moveCorruptAside(err);
        db = this.openFile();
      }
    } catch (err) {
      this.lock.release();
      if (err instanceof DaemonError) throw err;
      throw new DaemonError('JOURNAL_OPEN', `journal.path: cannot open ${path} as an SQLite journal: ${errorMessage(err)}`, { cause: err });
    }
    this.db = db;
    this.stmts = this.prepare(db);
    this.mode = 'read-write';
    this.recount();
    this.writeError = undefined;
    // Logged, not thrown: a disk that let the file open but takes no more writes is the runtime case (writable: false).
    this.sweepLogged();
    this.sweepTimer = this.clock.setInterval(() => this.sweepLogged(), this.opts.sweepEveryMs ?? 60_000);
    this.opts.log.info({ path, rows: this.rows, pending: this.pending, synchronous: this.opts.synchronous }, 'journal open');
  }

  /**
   * No room to open for writing: read what the file holds if possible (the outbox drains it), say
   * so once, and try opening for writing again on the clock.
   */
  private openDegraded(why: NoRoom, cause: unknown): void {
    this.noRoom = why;
    this.openForReading();
    const code = errorCode(cause);
    this.writeError = { message: `${why.text}: ${errorMessage(cause)}`, ...(code ? { code } : {}), sinceMs: this.clock.now() };
    const everyMs = this.opts.reopenEveryMs ?? REOPEN_EVERY_MS;
    this.reopenTimer = this.clock.setInterval(() => this.tryReopen(), everyMs);
    this.opts.log.error(
      {
        path: this.opts.path,
        mode: this.mode,
        reason: why.text,
        err: errorMessage(cause),
        pending: this.pending,
        retryEverySec: everyMs / 1000,
      },
      this.mode === 'read-only'
        ? 'journal read-only: the disk has no room to write it'
        : 'journal unavailable: the disk has no room to write it, and what it holds cannot be read',
    );
  }

  /**
   * The read-only connection, or none (mode unavailable) when the file cannot be read. Our lock
   * file may have no room either (or not exist yet): the exclusive SQLite lock the reading
   * connection holds on the journal itself keeps a second daemon out meanwhile (it gets BUSY).
   */
  private openForReading(): void {
    try {
      try {
        this.lock.acquire();
      } catch (err) {
        if (!noRoomReason(err, dirname(this.opts.path))) throw err;
      }
      const db = openForReading(this.opts.path);
      this.db = db;
      this.stmts = this.prepare(db);
      this.mode = 'read-only';
      this.recount();
      this.pending = Math.max(0, this.pending - this.deferredAcks.size);
    } catch (err) {
      this.closeDb();
      this.lock.release();
      this.mode = 'unavailable';
      this.rows = 0;
      this.bytes = 0;
      this.pending = 0;
      this.opts.log.debug({ path: this.opts.path, err: errorMessage(err) }, 'journal cannot be read either');
    }
  }

  private closeDb(): void {
    const db = this.db;
    this.db = undefined;
    this.stmts = undefined;
    db?.close();
  }

  /**
   * The reading connection holds the file exclusively: it is closed for the attempt and taken
   * again if the disk still has no room. On success the acknowledgements of the drained messages
   * are written.
   */
  private tryReopen(): void {
    const sinceMs = this.writeError?.sinceMs ?? this.clock.now();
    this.closeDb();
    this.lock.release();
    try {
      this.openReadWrite();
    } catch (err) {
      const why = noRoomReason(err, dirname(this.opts.path)) ?? { kind: 'error' as const, text: errorMessage(err) };
      // Said when the reason changes (the disk went read-only, another error), not at every attempt.
      if (why.kind !== this.noRoom?.kind || (why.kind === 'error' && why.text !== this.noRoom.text))
        this.opts.log.warn({ path: this.opts.path, err: errorMessage(err) }, `journal still not writable: ${why.text}`);
      this.noRoom = why;
      if (this.writeError) this.writeError.message = `${why.text}: ${errorMessage(err)}`;
      this.openForReading();
      return;
    }
    this.clock.clearInterval(this.reopenTimer);
    this.reopenTimer = undefined;
    const failedForMs = this.clock.now() - sinceMs;
    const acks = [...this.deferredAcks];
    this.deferredAcks.clear();
    try {
      this.markSent(acks);
    } catch (err) {
      // Not written: those messages are resent at the next start (at least once, with the same id).
      this.opts.log.error({ path: this.opts.path, err: errorMessage(err) }, 'journal: recording the drained messages as sent failed');
    }
    this.noRoom = undefined;
    this.opts.log.info(
      { path: this.opts.path, rows: this.rows, pending: this.pending, failedForMs, drainedWhileReadOnly: acks.length },
      'journal open for writing again',
    );
  }

  /** Opens the file, checks it is a readable journal (quick_check), brings its schema up to date. */
  private openFile(): Db {
    const { path } = this.opts;
    checkIsFile(path);
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('busy_timeout = 5000');
      // Keep the WAL file from staying large after a burst (bytes; it is truncated to this at checkpoints).
      db.pragma('journal_size_limit = 16777216');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new DaemonError(
          'JOURNAL_VERSION',
          `journal.path: ${path} was written by a newer edge-inferd (schema ${version}, this one reads ${SCHEMA_VERSION})`,
        );
      }
      // Damaged pages in the middle of the file show only when read: look at every page once now.
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') throw new JournalCorrupt(`quick_check: ${check}`);
      // Schema, upgrade of an older file and the new version number: all or nothing.
      const backfilled = db.transaction(() => {
        db.exec(SCHEMA_SQL);
        db.exec(INIT_META_SQL);
        const n = migrateSchema(db);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
        return n;
      })();
      if (backfilled !== undefined && version > 0) {
        this.opts.log.info({ path, fromVersion: version, toVersion: SCHEMA_VERSION, backfilled }, 'journal schema upgraded');
      }
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private moveCorruptAside(err: unknown): void {
    const { path } = this.opts;
    const why = errorMessage(err);
    let aside: string;
    try {
      aside = moveAside(path, this.clock.now());
    } catch (e) {
      throw new DaemonError(
        'JOURNAL_CORRUPT',
        `journal.path: ${path} is not a readable journal (${why}) and cannot be moved aside: ${errorMessage(e)}`,
        { cause: err },
      );
    }
    this.corrupt = { movedAside: this.corrupt.movedAside + 1, lastMovedTo: aside, lastError: why };
    this.opts.log.error(
      { path, movedTo: aside, err: why },
      `journal ${path} is corrupt (${why}): moved aside to ${aside}; starting with a fresh journal. Unsent ` +
        `messages in it are not published; try: sqlite3 ${aside} .recover`,
    );
  }

  /** Closes the file and releases the lock. Idempotent. */
  stop(): void {
    this.clock.clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.clock.clearInterval(this.reopenTimer);
    this.reopenTimer = undefined;
    this.flushEvictionLog(true);
    this.closeDb();
    this.lock.release();
    this.mode = undefined;
    // Acknowledgements never written: those messages are resent at the next start, with the same id.
    this.deferredAcks.clear();
  }

  private prepare(db: Db) {
    const stmts = {
      insert: db.prepare(
        'INSERT INTO messages (created_ms, state, camera, kind, topic, qos, retain, expiry_sec, bytes, payload, payload_seq) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      markSent: db.prepare('UPDATE messages SET state = 1, sent_ms = ? WHERE seq = ? AND state = 0'),
      markRejected: db.prepare(`UPDATE messages SET state = ${REJECTED}, sent_ms = ? WHERE seq = ? AND state = 0`),
      pendingAfter: db.prepare(
        'SELECT seq, created_ms, camera, kind, topic, qos, retain, expiry_sec, payload, payload_seq FROM messages ' +
          'WHERE state = 0 AND seq > ? ORDER BY seq LIMIT ?',
      ),
      oldestDone: db.prepare(`SELECT seq, bytes FROM messages WHERE state != 0 ORDER BY seq LIMIT ${EVICT_CHUNK}`),
      oldestPending: db.prepare(`SELECT seq, bytes FROM messages WHERE state = 0 AND seq > ? ORDER BY seq LIMIT ${EVICT_CHUNK}`),
      deleteDoneUpTo: db.prepare('DELETE FROM messages WHERE state != 0 AND seq <= ?'),
      deletePendingUpTo: db.prepare('DELETE FROM messages WHERE state = 0 AND seq > ? AND seq <= ?'),
      expiredCount: db.prepare(
        'SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b, coalesce(max(seq), 0) AS m FROM messages WHERE state != 0 AND created_ms < ?',
      ),
      deleteExpired: db.prepare('DELETE FROM messages WHERE state != 0 AND created_ms < ?'),
      // The pending index (seq WHERE state = 0) finds it at once.
      oldestPendingMs: db.prepare('SELECT created_ms AS ms FROM messages WHERE state = 0 ORDER BY seq LIMIT 1'),
      // The newest row of the camera and kind that has one: payload seqs only grow per camera and
      // kind, so that is the highest. Walks back from the newest row; runs once per camera at start.
      maxSeq: db.prepare("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0) AS s"),
      lostUpTo: db.prepare(`SELECT value AS s FROM journal_meta WHERE key = '${LOST_UP_TO_KEY}'`),
      setLostUpTo: db.prepare(`UPDATE journal_meta SET value = ? WHERE key = '${LOST_UP_TO_KEY}' AND value < ?`),
      rowsAfter: db.prepare(
        'SELECT seq, created_ms, camera, kind, payload FROM messages WHERE seq > ? AND kind IN (?, ?) ORDER BY seq LIMIT ?',
      ),
      lastPayloadSeq: db.prepare(
        'SELECT payload_seq AS s FROM messages WHERE camera = ? AND kind = ? AND payload_seq IS NOT NULL ORDER BY seq DESC LIMIT 1',
      ),
    };
    // One transaction function for every tick (a frame's result and the acknowledgements before it).
    const writeTick = db.transaction((acks: readonly number[], msgs: readonly NewMessage[], inFlightUpTo: number, createdMs: number) =>
      this.writeTickBody(stmts, acks, msgs, inFlightUpTo, createdMs),
    );
    return { ...stmts, writeTick };
  }

  private get s(): Statements {
    if (!this.stmts) throw new DaemonError('JOURNAL_CLOSED', 'the journal is not open');
    return this.stmts;
  }

  /**
   * Writes messages in one transaction and returns them with their seq. QoS 0 messages are stored
   * as sent already (history only: nothing waits for their acknowledgement). Evicts past the bounds;
   * pending messages up to `inFlightUpTo` (handed to the broker, acknowledgement not recorded yet)
   * are not evicted: they are most likely delivered already, and counting them lost would be wrong.
   */
  append(msgs: readonly NewMessage[], inFlightUpTo = 0): { rows: JournalRow[]; evicted: Evicted } {
    return this.writeTick([], msgs, inFlightUpTo);
  }

  /**
   * One event-loop tick's writes in one transaction: acknowledgements (marked sent) and new
   * messages (appended, as append() says). All or nothing: if it throws, neither happened (and the
   * counters are the file's again, see write()).
   */
  writeTick(acks: readonly number[], msgs: readonly NewMessage[], inFlightUpTo = 0): { rows: JournalRow[]; evicted: Evicted } {
    if (this.mode === 'read-only' || this.mode === 'unavailable') return this.degradedTick(acks, msgs);
    const tx = this.s.writeTick;
    const out = this.write(() => tx(acks, msgs, inFlightUpTo, this.clock.now()), msgs.length > 0);
    if (out.rows.length) this.notifyAppended(out.rows);
    return out;
  }

  /**
   * writeTick while the disk has no room: acknowledgements are kept for later (the drained messages
   * are not read again), new messages are refused (the outbox publishes them unjournaled while connected).
   */
  private degradedTick(acks: readonly number[], msgs: readonly NewMessage[]): { rows: JournalRow[]; evicted: Evicted } {
    for (const seq of acks) {
      if (this.deferredAcks.has(seq)) continue;
      this.deferredAcks.add(seq);
      this.pending = Math.max(0, this.pending - 1);
    }
    if (!msgs.length) return { rows: [], evicted: NO_EVICTION };
    this.writeFailures++;
    throw new DaemonError(
      'JOURNAL_READ_ONLY',
      // The same words every time (no free-space figure): the outbox logs a journal error once per distinct message.
      `journal.path: ${this.opts.path} is ${this.mode}: ${NO_ROOM_WORDS[this.noRoom?.kind ?? 'full']}`,
    );
  }

  /** The body of writeTick, made a transaction once at open (better-sqlite3 builds a wrapper per transaction() call). */
  private writeTickBody(
    s: Pick<Statements, 'insert' | 'markSent'>,
    acks: readonly number[],
    msgs: readonly NewMessage[],
    inFlightUpTo: number,
    createdMs: number,
  ): { rows: JournalRow[]; evicted: Evicted } {
    const rows: JournalRow[] = [];
    let evicted: Evicted = NO_EVICTION;
    for (const seq of acks) this.pending -= s.markSent.run(createdMs, seq).changes;
    for (const m of msgs) {
      const bytes = Buffer.byteLength(m.payload) + Buffer.byteLength(m.topic) + ROW_OVERHEAD;
      const state = m.qos === 0 ? SENT : PENDING;
      const payloadSeq = m.payloadSeq !== undefined && Number.isSafeInteger(m.payloadSeq) && m.payloadSeq > 0 ? m.payloadSeq : null;
      const r = s.insert.run(
        createdMs,
        state,
        m.camera,
        m.kind,
        m.topic,
        m.qos,
        m.retain ? 1 : 0,
        m.expirySec ?? null,
        bytes,
        m.payload,
        payloadSeq,
      );
      rows.push({ ...m, seq: Number(r.lastInsertRowid), createdMs });
      this.maxSeq = Number(r.lastInsertRowid);
      this.rows++;
      this.bytes += bytes;
      if (state === PENDING) this.pending++;
    }
    if (this.rows > this.opts.maxRows || this.bytes > this.opts.maxBytes) evicted = this.evict(inFlightUpTo);
    return { rows, evicted };
  }

  private notifyAppended(rows: readonly JournalRow[]): void {
    for (const fn of this.appendListeners) {
      try {
        fn(rows);
      } catch (err) {
        // A reader's failure is its own: the rows are journaled and will be published all the same.
        this.opts.log.error({ err: errorMessage(err) }, 'journal append listener failed');
      }
    }
  }

  /**
   * Calls `fn` with the rows of every write, in seq order, once its transaction has committed (so
   * `rowsAfter` already returns them). Returns the function that unsubscribes.
   */
  onAppend(fn: (rows: readonly FeedRow[]) => void): () => void {
    this.appendListeners.add(fn);
    return () => this.appendListeners.delete(fn);
  }

  /** The highest seq assigned so far (0 for a new journal): the position a reader starting now resumes after. */
  get lastSeq(): number {
    return this.maxSeq;
  }

  /**
   * The highest seq ever removed (evicted at the bounds or expired past the retention), across
   * restarts: a reader positioned before it may have missed rows.
   */
  get lostUpTo(): number {
    return this.lost;
  }

  /** Results and events journaled after `afterSeq`, in seq order, at most `limit`. */
  rowsAfter(afterSeq: number, limit: number): FeedRow[] {
    if (this.mode === 'unavailable') return [];
    return (this.s.rowsAfter.all(afterSeq, 'result', 'event', limit) as RawRow[]).map((r) => ({
      seq: r.seq,
      createdMs: r.created_ms,
      camera: r.camera,
      kind: r.kind,
      payload: r.payload,
    }));
  }

  /** Records that rows up to `seq` may be gone (inside the transaction that removes them). */
  private markLost(seq: number): void {
    if (seq <= this.lost) return;
    this.s.setLostUpTo.run(seq, seq);
    this.lost = seq;
  }

  /** Marks acknowledged messages sent, in one transaction. Already evicted or marked ones are skipped. */
  markSent(seqs: readonly number[]): void {
    if (seqs.length) this.writeTick(seqs, []);
  }

  /** A message the broker refused (MQTT 5 reason code >= 0x80): kept as history, never resent. */
  markRejected(seq: number): void {
    this.write(() => {
      const n = this.s.markRejected.run(this.clock.now(), seq).changes;
      this.pending -= n;
      this.rejected += n;
    }, false);
  }

  /** When the oldest message still waiting for the broker was journaled (epoch ms), or undefined when none waits. */
  oldestPendingMs(): number | undefined {
    if (this.pending === 0) return undefined;
    if (this.deferredAcks.size) return this.pendingAfter(0, 1)[0]?.createdMs;
    return (this.s.oldestPendingMs.get() as { ms: number } | undefined)?.ms;
  }

  /** Pending messages after `afterSeq`, in journal order. */
  pendingAfter(afterSeq: number, limit: number): JournalRow[] {
    if (this.mode === 'unavailable') return [];
    // Acknowledged while read-only: pending in the file, not any more for the outbox.
    const deferred = this.deferredAcks;
    const raw = this.s.pendingAfter.all(afterSeq, limit + deferred.size) as RawRow[];
    const rows = deferred.size ? raw.filter((r) => !deferred.has(r.seq)).slice(0, limit) : raw;
    return rows.map((r) => ({
      seq: r.seq,
      createdMs: r.created_ms,
      camera: r.camera,
      kind: r.kind,
      topic: r.topic,
      qos: r.qos,
      retain: r.retain === 1,
      ...(r.expiry_sec !== null ? { expirySec: r.expiry_sec } : {}),
      payload: r.payload,
      ...(r.payload_seq !== null ? { payloadSeq: r.payload_seq } : {}),
    }));
  }

  /**
   * The payload `seq` of the newest journaled message of this camera and kind that has one (the
   * highest, as they only grow; 0 if none), so a restarted daemon
   * continues the per-camera counter instead of reusing numbers that drained messages from before
   * the crash still carry. Read from the payload_seq column (given by the writer, see NewMessage).
   */
  lastPayloadSeq(camera: string, kind: string): number {
    if (this.mode === 'unavailable') return 0;
    const row = this.s.lastPayloadSeq.get(camera, kind) as { s: number } | undefined;
    return row?.s ?? 0;
  }

  history(q: HistoryQuery): HistoryEntry[] {
    if (this.mode === 'unavailable')
      throw new DaemonError('JOURNAL_UNAVAILABLE', `the journal cannot be read until its disk has room: ${this.noRoom?.text ?? 'no room'}`);
    if (!this.db) throw new DaemonError('JOURNAL_CLOSED', 'the journal is not open');
    return queryHistory(this.db, q);
  }

  /** Oldest first: sent/rejected messages (history), then pending ones (loss, logged as a warning). */
  private evict(inFlightUpTo: number): Evicted {
    const s = this.s;
    const out: Evicted = { sent: 0, pending: 0, pendingUpTo: 0 };
    const doneRows = this.rows - this.pending;
    if (doneRows > 0) {
      out.sent = this.evictFrom(s.oldestDone, s.deleteDoneUpTo, []);
    }
    if (this.rows > this.opts.maxRows || this.bytes > this.opts.maxBytes) {
      const before = this.pending;
      out.pendingUpTo = this.evictFrom(s.oldestPending, s.deletePendingUpTo, [inFlightUpTo], true);
      out.pending = before - this.pending;
    }
    if (out.sent || out.pending) {
      this.evicted.sent += out.sent;
      this.evicted.pending += out.pending;
      this.lastEvictionAtMs = this.clock.now();
      if (!this.unlogged.sent && !this.unlogged.pending) this.unlogged.sinceMs = this.lastEvictionAtMs;
      this.unlogged.sent += out.sent;
      this.unlogged.pending += out.pending;
      this.flushEvictionLog(false);
    }
    return out;
  }

  /**
   * Deletes the oldest rows a select returns until the bounds hold. Returns the number deleted, or
   * (pending) the highest seq deleted.
   */
  private evictFrom(select: Database.Statement, del: Database.Statement, args: number[], returnUpTo = false): number {
    let deleted = 0;
    let upTo = 0;
    while (this.rows > this.opts.maxRows || this.bytes > this.opts.maxBytes) {
      const candidates = select.all(...args) as { seq: number; bytes: number }[];
      if (!candidates.length) break;
      let needRows = this.rows - this.opts.maxRows;
      let needBytes = this.bytes - this.opts.maxBytes;
      let last = 0;
      let n = 0;
      let b = 0;
      for (const c of candidates) {
        last = c.seq;
        n++;
        b += c.bytes;
        needRows--;
        needBytes -= c.bytes;
        if (needRows <= 0 && needBytes <= 0) break;
      }
      del.run(...args, last);
      this.markLost(last);
      this.rows -= n;
      this.bytes -= b;
      if (returnUpTo) this.pending -= n;
      deleted += n;
      upTo = last;
    }
    return returnUpTo ? upTo : deleted;
  }

  private flushEvictionLog(force: boolean): void {
    const u = this.unlogged;
    if (!u.sent && !u.pending) return;
    const now = this.clock.monotonic();
    if (!force && now - this.loggedAtMs < LOG_EVERY_MS) return;
    this.loggedAtMs = now;
    const fields = {
      path: this.opts.path,
      evictedPending: u.pending,
      evictedSent: u.sent,
      sinceMs: u.sinceMs,
      maxRows: this.opts.maxRows,
      maxBytes: this.opts.maxBytes,
      totalEvicted: { ...this.evicted },
    };
    if (u.pending)
      this.opts.log.warn(
        fields,
        `journal full: dropped the ${u.pending} oldest unsent message(s); raise journal.maxBytes/maxRows or fix the broker connection`,
      );
    else if (!this.trimAnnounced)
      this.opts.log.info(fields, 'journal bound reached: from now on the oldest sent messages leave the history as new ones come');
    else this.opts.log.debug(fields, 'journal history trimmed');
    if (!u.pending) this.trimAnnounced = true;
    this.unlogged = { sent: 0, pending: 0, sinceMs: 0 };
  }

  /** Deletes sent messages older than the retention. Returns how many went. */
  sweep(): number {
    const s = this.s;
    const cutoff = this.clock.now() - this.opts.retentionMs;
    const n = this.write(
      () =>
        must(this.db, 'the journal database').transaction(() => {
          const c = s.expiredCount.get(cutoff) as { n: number; b: number; m: number };
          if (c.n) {
            s.deleteExpired.run(cutoff);
            this.markLost(c.m);
            this.rows -= c.n;
            this.bytes -= c.b;
          }
          return c.n;
        })(),
      false,
    );
    this.expired += n;
    // Evictions since the last rate-limited log line still get logged even when traffic stops.
    this.flushEvictionLog(false);
    return n;
  }

  private sweepLogged(): void {
    try {
      const n = this.sweep();
      if (n) this.opts.log.debug({ deleted: n }, 'journal retention sweep');
    } catch (err) {
      this.opts.log.error({ err: errorMessage(err) }, 'journal retention sweep failed');
    }
  }

  stats(): JournalStats {
    return {
      path: this.opts.path,
      mode: this.mode ?? 'unavailable',
      synchronous: this.opts.synchronous,
      rows: this.rows,
      bytes: this.bytes,
      pending: this.pending,
      maxRows: this.opts.maxRows,
      maxBytes: this.opts.maxBytes,
      retentionHours: this.opts.retentionMs / 3_600_000,
      evicted: { ...this.evicted },
      expired: this.expired,
      rejected: this.rejected,
      ...(this.lastEvictionAtMs !== undefined ? { lastEvictionAtMs: this.lastEvictionAtMs } : {}),
      writable: this.writeError === undefined,
      writeFailures: this.writeFailures,
      ...(this.writeError ? { lastWriteError: this.writeError.message, lastWriteErrorAtMs: this.writeError.sinceMs } : {}),
      corrupt: { ...this.corrupt },
    };
  }

  private recount(): void {
    const c = countRows(must(this.db, 'the journal database'));
    this.rows = c.rows;
    this.bytes = c.bytes;
    this.pending = c.pending;
    this.maxSeq = (this.s.maxSeq.get() as { s: number }).s;
    this.lost = (this.s.lostUpTo.get() as { s: number } | undefined)?.s ?? 0;
  }

  /**
   * Runs one write transaction. If it fails, SQLite has rolled it back whole, so the counters go
   * back to what they were before it (they must never claim rows the file does not hold) and the
   * journal is marked not writable. An append that succeeds after failures ends that: the counters
   * are re-read from the file.
   */
  private write<T>(fn: () => T, isAppend: boolean): T {
    const before = {
      rows: this.rows,
      bytes: this.bytes,
      pending: this.pending,
      evicted: { ...this.evicted },
      rejected: this.rejected,
      expired: this.expired,
      lastEvictionAtMs: this.lastEvictionAtMs,
      unlogged: { ...this.unlogged },
      lost: this.lost,
      maxSeq: this.maxSeq,
    };
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.rows = before.rows;
      this.bytes = before.bytes;
      this.pending = before.pending;
      this.rejected = before.rejected;
      this.expired = before.expired;
      this.lastEvictionAtMs = before.lastEvictionAtMs;
      this.evicted.sent = before.evicted.sent;
      this.evicted.pending = before.evicted.pending;
      this.unlogged = before.unlogged;
      this.lost = before.lost;
      this.maxSeq = before.maxSeq;
      this.writeFailures++;
      const code = (err as { code?: unknown }).code;
      this.writeError ??= { message: errorMessage(err), ...(typeof code === 'string' ? { code } : {}), sinceMs: this.clock.now() };
      throw err;
    }
    if (isAppend && this.writeError) {
      const failedForMs = this.clock.now() - this.writeError.sinceMs;
      this.writeError = undefined;
      this.recount();
      this.opts.log.info(
        { path: this.opts.path, rows: this.rows, pending: this.pending, failedForMs, writeFailures: this.writeFailures },
        'journal writable again; counts re-read from the file',
      );
    }
    return out;
  }
}
