import Database from 'better-sqlite3';

/**
 * A journal file in the schema of version 1 (before payload_seq), written with SQLite directly:
 * the fixture of the old format that the current Journal must open and upgrade. The statements are
 * copied from that version of src/journal/store.ts and must not follow later changes to it.
 */

const V1_SCHEMA_SQL = `
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
  payload    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages(seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS messages_created ON messages(created_ms);
CREATE INDEX IF NOT EXISTS messages_camera ON messages(camera, created_ms);
`;

export interface V1Row {
  camera: string;
  kind: string;
  topic: string;
  payload: string;
  state: 'pending' | 'sent';
  createdMs: number;
  qos?: 0 | 1 | 2;
}

/** Writes a version-1 journal (WAL, user_version 1) holding `rows` in order; returns their journal seqs. */
export function writeV1Journal(path: string, rows: readonly V1Row[]): number[] {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(V1_SCHEMA_SQL);
    db.pragma('user_version = 1');
    const insert = db.prepare(
      'INSERT INTO messages (created_ms, state, sent_ms, camera, kind, topic, qos, retain, expiry_sec, bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)',
    );
    const seqs: number[] = [];
    db.transaction(() => {
      for (const r of rows) {
        const bytes = Buffer.byteLength(r.payload) + Buffer.byteLength(r.topic) + 48;
        const sent = r.state === 'sent';
        const info = insert.run(
          r.createdMs,
          sent ? 1 : 0,
          sent ? r.createdMs : null,
          r.camera,
          r.kind,
          r.topic,
          r.qos ?? 1,
          bytes,
          r.payload,
        );
        seqs.push(Number(info.lastInsertRowid));
      }
    })();
    return seqs;
  } finally {
    db.close();
  }
}
