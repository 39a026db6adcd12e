import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resultsRoute } from '../../src/health/routes/results.js';
import { HealthServer } from '../../src/health/server.js';
import { Journal, type NewMessage } from '../../src/journal/journal.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';
import { fillDisk, tryMountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

/**
 * Issue 21 row 1 in the journal itself: a disk with no room to open it for writing (full, or
 * mounted read-only) gives a read-only journal that drains, not an error that stops the daemon;
 * opening for writing is retried on the injected clock. A real 4 MB tmpfs (root; skipped without
 * it outside CI, fails under CI=true).
 */

const msg = (i: number): NewMessage => ({
  topic: 'd/cam/result',
  payload: `{"seq":${i}}`,
  qos: 1,
  retain: false,
  camera: 'cam',
  kind: 'result',
  payloadSeq: i,
});

describe('a journal whose disk has no room', () => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-no-room-'));
  const mounted = tryMountTmpfs(dir, '4m');
  const path = join(dir, 'journal.sqlite');
  const fill = join(dir, 'fill');
  let journal: Journal | undefined;

  const open = () => {
    const clock = new ManualClock();
    const cap = captureLog();
    const j = new Journal({ path, maxRows: 1000, maxBytes: 1 << 20, retentionMs: 3_600_000, synchronous: 'normal', log: cap.log, clock });
    journal = j;
    return { j, clock, lines: cap.lines };
  };
  const loud = (lines: Record<string, any>[]) => lines.filter((l) => l.level >= 40);
  const fileState = () => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT seq, state FROM messages ORDER BY seq').all() as { seq: number; state: number }[];
    } finally {
      db.close();
    }
  };

  afterEach(() => {
    journal?.stop();
    journal = undefined;
    rmSync(fill, { force: true });
    for (const f of ['journal.sqlite', 'journal.sqlite-wal', 'journal.sqlite-shm', 'journal.sqlite.lock'])
      rmSync(join(dir, f), { force: true });
  });

  afterAll(() => {
    if (mounted) unmountTmpfs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!mounted)(
    'full: opens read-only, drains what it holds, refuses new messages, says it once, writes again once there is room',
    async () => {
      const first = open();
      first.j.start();
      first.j.append([msg(1), msg(2), msg(3)]);
      first.j.stop();
      fillDisk(fill);

      const { j, clock, lines } = open();
      j.start();
      expect(j.isOpen).toBe(true);
      expect(j.stats()).toMatchObject({
        mode: 'read-only',
        writable: false,
        pending: 3,
        lastWriteError: expect.stringMatching(/^the disk is full/),
      });
      expect(j.pendingAfter(0, 10).map((r) => r.payload)).toEqual(['{"seq":1}', '{"seq":2}', '{"seq":3}']);
      expect(j.lastPayloadSeq('cam', 'result')).toBe(3);
      // The broker acknowledged the first: kept for later, no longer pending for the outbox.
      j.writeTick([1], []);
      expect(j.pendingAfter(0, 10).map((r) => r.seq)).toEqual([2, 3]);
      expect(j.stats().pending).toBe(2);
      expect(() => j.writeTick([2], [msg(4)])).toThrow(expect.objectContaining({ code: 'JOURNAL_READ_ONLY' }));
      expect(j.pendingAfter(0, 10).map((r) => r.seq)).toEqual([3]);
      expect(loud(lines).map((l) => l.msg)).toEqual(['journal read-only: the disk has no room to write it']);

      // Still full: tried again, quietly.
      await clock.advance(5_000);
      await clock.advance(5_000);
      expect(j.stats().mode).toBe('read-only');
      expect(loud(lines)).toHaveLength(1);

      rmSync(fill);
      await clock.advance(5_000);
      expect(j.stats()).toMatchObject({ mode: 'read-write', writable: true, pending: 1 });
      expect(lines.some((l) => l.msg === 'journal open for writing again' && l.drainedWhileReadOnly === 2)).toBe(true);
      expect(fileState()).toEqual([
        { seq: 1, state: 1 },
        { seq: 2, state: 1 },
        { seq: 3, state: 0 },
      ]);
      expect(j.append([msg(4)]).rows.map((r) => r.seq)).toEqual([4]);
      expect(clock.pending).toBe(1); // the retention sweep only: no reopen timer left
    },
  );

  it.skipIf(!mounted)('full with no journal yet: unavailable (nothing to read), then created once there is room', async () => {
    fillDisk(fill);
    const { j, clock } = open();
    j.start();
    expect(j.stats()).toMatchObject({ mode: 'unavailable', writable: false, rows: 0, pending: 0 });
    expect(j.pendingAfter(0, 10)).toEqual([]);
    expect(j.rowsAfter(0, 10)).toEqual([]);
    expect(j.lastPayloadSeq('cam', 'result')).toBe(0);
    expect(() => j.append([msg(1)])).toThrow(expect.objectContaining({ code: 'JOURNAL_READ_ONLY' }));
    // GET /results says why it has nothing (503), not an internal error.
    const server = new HealthServer({
      host: '127.0.0.1',
      port: 0,
      log: captureLog().log,
      source: { health: () => ({ ok: true }), ready: () => ({ ok: true, checks: {} }), status: () => ({}) },
    });
    server.addRoute(resultsRoute(j, clock));
    await server.start();
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/results`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'JOURNAL_UNAVAILABLE', error: expect.stringMatching(/the disk is full/) });
    } finally {
      await server.stop();
    }
    rmSync(fill);
    await clock.advance(5_000);
    expect(j.stats().mode).toBe('read-write');
    expect(j.append([msg(1)]).rows.map((r) => r.seq)).toEqual([1]);
  });

  it.skipIf(!mounted)(
    "a file system mounted read-only: the daemon keeps running (nothing readable: SQLite's WAL needs its index), writes once it is writable",
    async () => {
      const first = open();
      first.j.start();
      first.j.append([msg(1)]);
      first.j.stop();
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      let remounted = false;
      try {
        const { j, clock, lines } = open();
        j.start();
        expect(j.stats()).toMatchObject({
          mode: 'unavailable',
          pending: 0,
          lastWriteError: expect.stringMatching(/^the file system is read-only/),
        });
        expect(j.pendingAfter(0, 10)).toEqual([]);
        expect(() => j.append([msg(2)])).toThrow(expect.objectContaining({ code: 'JOURNAL_READ_ONLY' }));
        execFileSync('mount', ['-o', 'remount,rw', dir]);
        remounted = true;
        await clock.advance(5_000);
        expect(j.stats()).toMatchObject({ mode: 'read-write', pending: 1 });
        expect(j.pendingAfter(0, 10).map((r) => r.seq)).toEqual([1]);
        expect(loud(lines).map((l) => l.msg)).toEqual([
          'journal unavailable: the disk has no room to write it, and what it holds cannot be read',
        ]);
      } finally {
        if (!remounted) execFileSync('mount', ['-o', 'remount,rw', dir]);
      }
    },
  );
});
