import Database from 'better-sqlite3';

/**
 * The journal's table and the queries a reader needs. Shared by the daemon's Journal (read-write)
 * and `edge-inferd history` (read-only, while the daemon runs: WAL lets readers and the one writer
 * work at the same time).
 */

export type Db = Database.Database;

/** 1: the messages table; 2: + payload_seq and its index (added to a version-1 file by migrateSchema). */
export const SCHEMA_VERSION = 2;
/** The oldest schema a reader (`edge-inferd history`) understands; it never migrates, the daemon does. */
export const MIN_READ_VERSION = 1;

/** state: 0 pending (not acknowledged yet), 1 sent (acknowledged, or QoS 0 handed over), 2 rejected by the broker. */
export const PENDING = 0;
export const SENT = 1;
export const REJECTED = 2;
export type DeliveryState = 'pending' | 'sent' | 'rejected';
const STATE_NAMES: DeliveryState[] = ['pending', 'sent', 'rejected'];

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS messages (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so a cursor over it is stable
  created_ms INTEGER NOT NULL,
  state      INTEGER NOT NULL,
  sent_ms    INTEGER,
  camera     TEXT NOT NULL,
  kind       TEXT NOT NULL,
  topic      TEXT NOT NULL,
  qos        INTEGER NOT NULL,
  retain     INTEGER NOT NULL,
  expiry_sec INTEGER,
  bytes      INTEGER NOT NULL,
  payload    TEXT NOT NULL,
  payload_seq INTEGER -- the payload's own seq (per camera and kind), given by the writer; NULL when it has none
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages(seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS messages_created ON messages(created_ms);
CREATE INDEX IF NOT EXISTS messages_camera ON messages(camera, created_ms);
CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/**
 * The highest seq ever removed from the journal (evicted at the bounds or expired), kept in
 * journal_meta so a reader resuming after a position (SSE's Last-Event-ID) knows, across restarts,
 * whether rows after it are gone. A file that predates the record starts it at its newest seq: what
 * was removed before cannot be known, so every earlier position counts as possibly incomplete.
 */
export const LOST_UP_TO_KEY = 'lost_up_to';
export const INIT_META_SQL = `INSERT OR IGNORE INTO journal_meta (key, value)
  SELECT '${LOST_UP_TO_KEY}', coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0)`;

/**
 * Brings a messages table up to the current schema; run inside the transaction that opens the
 * journal, after SCHEMA_SQL. A version-1 table gets its payload_seq column, filled once from each
 * payload's JSON `seq` (a positive integer; anything else stays NULL). Returns the number of rows
 * backfilled, or undefined when the table had the column already.
 */
export function migrateSchema(db: Db): number | undefined {
  const columns = db.prepare("SELECT name FROM pragma_table_info('messages')").all() as { name: string }[];
  let backfilled: number | undefined;
  if (!columns.some((c) => c.name === 'payload_seq')) {
    db.exec('ALTER TABLE messages ADD COLUMN payload_seq INTEGER');
    // CASE is evaluated lazily, so json_type never sees a payload that is not JSON.
    db.exec(`UPDATE messages SET payload_seq = CASE WHEN json_valid(payload) THEN
      CASE WHEN json_type(payload, '$.seq') = 'integer' AND json_extract(payload, '$.seq') BETWEEN 1 AND ${Number.MAX_SAFE_INTEGER}
        THEN json_extract(payload, '$.seq') END END`);
    backfilled = (db.prepare('SELECT count(*) AS n FROM messages WHERE payload_seq IS NOT NULL').get() as { n: number }).n;
  }
  // payload_seq is read once per camera at start, from the newest rows: an index on it would cost
  // every insert and delete on the hot path for nothing. (An early version-2 file may have one.)
  db.exec('DROP INDEX IF EXISTS messages_payload_seq');
  return backfilled;
}

export interface HistoryQuery {
  /** Message kind (the topic's last level): result, event... */
  kind?: string;
  camera?: string;
  sinceMs?: number;
  limit: number;
}

export interface HistoryEntry {
  seq: number;
  createdMs: number;
  state: DeliveryState;
  sentMs: number | null;
  camera: string;
  kind: string;
  topic: string;
  payload: string;
}

interface HistoryRow {
  seq: number;
  created_ms: number;
  state: number;
  sent_ms: number | null;
  camera: string;
  kind: string;
  topic: string;
  payload: string;
}

/** The newest `limit` messages matching, returned oldest first (like `tail`). */
export function queryHistory(db: Db, q: HistoryQuery): HistoryEntry[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const filter = (sql: string, value: string | number | undefined) => {
    if (value === undefined) return;
    where.push(sql);
    args.push(value);
  };
  filter('kind = ?', q.kind);
  filter('camera = ?', q.camera);
  filter('created_ms >= ?', q.sinceMs);
  const sql =
    'SELECT seq, created_ms, state, sent_ms, camera, kind, topic, payload FROM messages' +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY created_ms DESC, seq DESC LIMIT ?';
  const rows = db.prepare(sql).all(...args, q.limit) as HistoryRow[];
  return rows.reverse().map((r) => ({
    seq: r.seq,
    createdMs: r.created_ms,
    state: STATE_NAMES[r.state] ?? 'pending',
    sentMs: r.sent_ms,
    camera: r.camera,
    kind: r.kind,
    topic: r.topic,
    payload: r.payload,
  }));
}

export interface StoreCounts {
  rows: number;
  bytes: number;
  pending: number;
}

export function countRows(db: Db): StoreCounts {
  const all = db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM messages').get() as { n: number; b: number };
  const pending = db.prepare('SELECT count(*) AS n FROM messages WHERE state = 0').get() as { n: number };
  return { rows: all.n, bytes: all.b, pending: pending.n };
}

/**
 * Opens an existing journal read-only (for `edge-inferd history`); throws if it is missing or not a
 * journal. Never migrates: an older file is read as it is.
 */
export function openReadOnly(path: string): Db {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  // queryHistory reads only version-1 columns: a file the daemon has not upgraded yet reads the same.
  if (version < MIN_READ_VERSION || version > SCHEMA_VERSION) {
    db.close();
    throw new Error(`${path} is not an edge-inferd journal (schema version ${version}, expected ${MIN_READ_VERSION} to ${SCHEMA_VERSION})`);
  }
  return db;
}
