import Database from 'better-sqlite3';
import { countRows } from '../../src/journal/store.js';

/**
 * A daemon's journal read from the outside, as a technician's sqlite3 would (read-only, its own
 * connection): what the file holds whatever the daemon says about it.
 */
function read<T>(path: string, f: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return f(db);
  } finally {
    db.close();
  }
}

/** Rows, pending rows and the rest, as the journal counts them. */
export const journalFileCounts = (path: string) => read(path, countRows);

/** The payloads of the results not yet marked sent, in order. */
export const pendingPayloads = (path: string): string[] =>
  read(path, (db) =>
    (db.prepare("SELECT payload FROM messages WHERE state = 0 AND kind = 'result' ORDER BY seq").all() as { payload: string }[]).map(
      (r) => r.payload,
    ),
  );

/** GET `url` as JSON: its status and body. */
export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
}
