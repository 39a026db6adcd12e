import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runHistory } from '../../src/journal/history-cli.js';
import { Journal, type JournalOptions, type NewMessage } from '../../src/journal/journal.js';
import { parseHistoryQuery, parseSince } from '../../src/journal/query.js';
import { openReadOnly, queryHistory, SCHEMA_VERSION } from '../../src/journal/store.js';
import { ManualClock } from '../helpers/clock.js';
import { type V1Row, writeV1Journal } from '../helpers/journal-v1.js';
import { captureLog } from '../helpers/log.js';

/** The journal on a real SQLite file: order, mark-sent, eviction, retention, reopen after a crash. */

const open: Journal[] = [];
afterEach(() => {
  for (const j of open.splice(0)) j.stop();
});

function tmpPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'journal-test-')), 'sub', 'journal.sqlite');
}

function journal(over: Partial<JournalOptions> = {}) {
  const { log, lines } = captureLog();
  const j = new Journal({
    path: tmpPath(),
    maxRows: 100_000,
    maxBytes: 64 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log,
    ...over,
  });
  j.start();
  open.push(j);
  return { j, lines };
}

const msg = (camera: string, n: number, over: Partial<NewMessage> = {}): NewMessage => ({
  topic: `edge-inferd/dev/${camera}/result`,
  payload: JSON.stringify({ id: `${camera}-${n}`, camera, seq: n, label: 'glass', score: 0.5 }),
  qos: 1,
  retain: false,
  camera,
  kind: 'result',
  payloadSeq: n,
  ...over,
});

const seqOf = (payload: string) => (JSON.parse(payload) as { seq: number }).seq;

describe('journal', () => {
  it('creates its folder, uses WAL, and returns pending messages in order per camera', () => {
    const { j } = journal();
    expect(existsSync(j.path)).toBe(true);
    const msgs: NewMessage[] = [];
    for (let i = 1; i <= 20; i++) msgs.push(msg(i % 3 === 0 ? 'b' : 'a', i));
    const { rows } = j.append(msgs);
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((x, y) => x - y));
    const pending = j.pendingAfter(0, 1000);
    expect(pending.map((r) => seqOf(r.payload))).toEqual(msgs.map((_, i) => i + 1));
    for (const cam of ['a', 'b']) {
      const s = pending.filter((r) => r.camera === cam).map((r) => seqOf(r.payload));
      expect(s).toEqual([...s].sort((x, y) => x - y));
    }
    // paging by cursor
    expect(j.pendingAfter(rows[9].seq, 5).map((r) => r.seq)).toEqual(rows.slice(10, 15).map((r) => r.seq));
    expect(j.stats()).toMatchObject({ rows: 20, pending: 20 });
    const ro = openReadOnly(j.path);
    expect(ro.pragma('journal_mode', { simple: true })).toBe('wal');
    ro.close();
  });

  it('keeps topic, qos, retain, expiry and payload exactly', () => {
    const { j } = journal();
    const m = msg('a', 1, { qos: 2, retain: true, expirySec: 30, payload: '{"id":"x","text":"ünïcödé ✓"}' });
    j.append([m]);
    const [row] = j.pendingAfter(0, 10);
    expect(row).toMatchObject({ topic: m.topic, qos: 2, retain: true, expirySec: 30, payload: m.payload, camera: 'a', kind: 'result' });
  });

  it('mark-sent removes messages from the pending set, and QoS 0 is history only', () => {
    const { j } = journal();
    const { rows } = j.append([msg('a', 1), msg('a', 2), msg('a', 3), msg('a', 4, { qos: 0 })]);
    expect(j.stats().pending).toBe(3);
    j.markSent([rows[0].seq, rows[2].seq, rows[0].seq]);
    expect(j.stats().pending).toBe(1);
    expect(j.pendingAfter(0, 10).map((r) => seqOf(r.payload))).toEqual([2]);
    j.markRejected(rows[1].seq);
    expect(j.stats()).toMatchObject({ pending: 0, rejected: 1, rows: 4 });
    const h = j.history({ limit: 10 });
    expect(h.map((e) => e.state)).toEqual(['sent', 'rejected', 'sent', 'sent']);
  });

  it("a tick's acknowledgements and new messages go in one transaction: all or nothing", () => {
    const { j } = journal();
    const { rows } = j.append([msg('a', 1), msg('a', 2)]);
    const w = j.writeTick([rows[0].seq], [msg('a', 3)]);
    expect(w.rows.map((r) => seqOf(r.payload))).toEqual([3]);
    expect(j.stats()).toMatchObject({ pending: 2, rows: 3 });
    // A message SQLite cannot bind fails the write: the acknowledgement in it is not recorded either.
    expect(() => j.writeTick([rows[1].seq], [msg('a', 4), { ...msg('a', 5), payload: {} as unknown as string }])).toThrow();
    expect(j.stats()).toMatchObject({ pending: 2, rows: 3 });
    expect(j.pendingAfter(0, 10).map((r) => seqOf(r.payload))).toEqual([2, 3]);
  });

  it('past maxRows evicts the oldest sent messages first, then the oldest pending, counts and logs it', () => {
    const { j, lines } = journal({ maxRows: 100 });
    const first = j.append(Array.from({ length: 60 }, (_, i) => msg('a', i + 1))).rows;
    j.markSent(first.slice(0, 30).map((r) => r.seq)); // 1..30 sent, 31..60 pending
    const e1 = j.append(Array.from({ length: 50 }, (_, i) => msg('a', i + 61))).evicted; // 110 rows: 10 over
    expect(e1).toEqual({ sent: 10, pending: 0, pendingUpTo: 0 });
    expect(j.history({ limit: 1000 }).map((e) => seqOf(e.payload))[0]).toBe(11);
    const e2 = j.append(Array.from({ length: 40 }, (_, i) => msg('a', i + 111))).evicted; // 20 sent left, then 20 pending
    expect(e2.sent).toBe(20);
    expect(e2.pending).toBe(20);
    expect(e2.pendingUpTo).toBe(first[49].seq); // 31..50 evicted
    expect(j.pendingAfter(0, 1000).map((r) => seqOf(r.payload))).toEqual(Array.from({ length: 100 }, (_, i) => i + 51));
    expect(j.stats()).toMatchObject({ rows: 100, pending: 100, evicted: { sent: 30, pending: 20 } });
    const info = lines.find((l) => l.msg.startsWith('journal bound reached'));
    expect(info).toMatchObject({ level: 30, evictedSent: 10, evictedPending: 0 });
    // the pending eviction came within the log's rate limit; it is logged at the latest when the journal closes
    j.stop();
    const warn = lines.find((l) => l.level === 40);
    expect(warn).toMatchObject({ evictedPending: 20, evictedSent: 20 });
    expect(warn!.msg).toContain('dropped the 20 oldest unsent message(s)');
  });

  it('never evicts pending messages that are in flight (handed to the broker, not yet acknowledged)', () => {
    const { j } = journal({ maxRows: 100 });
    const first = j.append(Array.from({ length: 100 }, (_, i) => msg('a', i + 1))).rows;
    const e = j.append(
      Array.from({ length: 10 }, (_, i) => msg('a', i + 101)),
      first[4].seq,
    ).evicted; // 1..5 in flight
    expect(e).toEqual({ sent: 0, pending: 10, pendingUpTo: first[14].seq });
    const kept = j.pendingAfter(0, 1000).map((r) => seqOf(r.payload));
    expect(kept).toEqual([1, 2, 3, 4, 5, ...Array.from({ length: 95 }, (_, i) => i + 16)]);
  });

  it('past maxBytes evicts the oldest until the bytes fit', () => {
    const { j } = journal({ maxBytes: 65_536 });
    const big = (n: number) => msg('a', n, { payload: JSON.stringify({ seq: n, pad: 'x'.repeat(1000) }) });
    for (let n = 1; n <= 100; n++) j.append([big(n)]);
    const st = j.stats();
    expect(st.bytes).toBeLessThanOrEqual(65_536);
    expect(st.rows).toBeGreaterThan(55);
    const kept = j.pendingAfter(0, 1000).map((r) => seqOf(r.payload));
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 101 - kept.length + i));
    expect(st.evicted.pending).toBe(100 - kept.length);
  });

  it('retention: the sweep, on the clock, deletes sent messages older than it, never pending ones', async () => {
    const clock = new ManualClock(1_000_000);
    const { j } = journal({ retentionMs: 60_000, sweepEveryMs: 10_000, clock });
    const old = j.append([msg('a', 1), msg('a', 2)]).rows; // at 0 s
    j.markSent([old[0].seq]);
    await clock.advance(30_000);
    j.append([msg('a', 3, { qos: 0 })]); // at 30 s, sent at once (QoS 0)
    // 1 is more than 60 s old from 60 s on: the sweep every 10 s takes it at 70 s, not before
    await clock.advance(39_999);
    expect(j.stats()).toMatchObject({ rows: 3, expired: 0 });
    await clock.advance(1);
    expect(j.history({ limit: 10 }).map((e) => seqOf(e.payload))).toEqual([2, 3]);
    expect(j.stats()).toMatchObject({ rows: 2, pending: 1, expired: 1 });
    // 3 goes at the sweep at 100 s; 2 is pending and stays
    await clock.advance(30_000);
    expect(j.history({ limit: 10 }).map((e) => seqOf(e.payload))).toEqual([2]);
    expect(j.stats()).toMatchObject({ rows: 1, pending: 1, expired: 2 });
    // stop() clears the sweep timer
    j.stop();
    expect(clock.pending).toBe(0);
  });

  it('answers history queries: newest `limit`, oldest first, by kind, camera and time', async () => {
    const clock = new ManualClock(5_000_000);
    const { j } = journal({ clock });
    for (let i = 1; i <= 10; i++) {
      j.append([msg(i % 2 ? 'a' : 'b', i), msg('a', 100 + i, { kind: 'event', topic: 'edge-inferd/dev/a/event' })]);
      await clock.advance(1000);
    }
    const seqs = (q: Parameters<Journal['history']>[0]) => j.history(q).map((e) => seqOf(e.payload));
    expect(seqs({ kind: 'result', limit: 3 })).toEqual([8, 9, 10]);
    expect(seqs({ kind: 'result', camera: 'a', limit: 100 })).toEqual([1, 3, 5, 7, 9]);
    expect(seqs({ kind: 'result', sinceMs: 5_000_000 + 7000, limit: 100 })).toEqual([8, 9, 10]);
    expect(seqs({ kind: 'event', limit: 2 })).toEqual([109, 110]);
  });

  it('a reader opened read-only sees what the writer committed, while the writer has it open', () => {
    const { j } = journal();
    j.append([msg('a', 1), msg('b', 2)]);
    const ro = openReadOnly(j.path);
    try {
      expect(queryHistory(ro, { kind: 'result', limit: 10 }).map((e) => e.camera)).toEqual(['a', 'b']);
      j.append([msg('a', 3)]);
      expect(queryHistory(ro, { kind: 'result', limit: 10 })).toHaveLength(3);
    } finally {
      ro.close();
    }
  });

  it('refuses a second daemon on the same file', () => {
    const { j } = journal();
    const { log } = captureLog();
    const other = new Journal({ path: j.path, maxRows: 100, maxBytes: 1 << 20, retentionMs: 1, synchronous: 'normal', log });
    expect(() => other.start()).toThrow(
      expect.objectContaining({ code: 'JOURNAL_LOCKED', message: expect.stringContaining(`${j.path} is in use by another process`) }),
    );
  });

  it('after a crash (SIGKILL mid-run) reopens with every message it had, pending ones in order', () => {
    const path = tmpPath();
    const dist = (p: string) => pathToFileURL(resolve(import.meta.dirname, '../../dist/src', p)).href;
    const script = `
      const { Journal } = await import(${JSON.stringify(dist('journal/journal.js'))});
      const { createLogger } = await import(${JSON.stringify(dist('log.js'))});
      const j = new Journal({ path: ${JSON.stringify(path)}, maxRows: 1000, maxBytes: 1 << 24, retentionMs: 3600000, synchronous: 'normal', log: createLogger({ level: 'silent', format: 'json' }) });
      j.start();
      const msgs = Array.from({ length: 10 }, (_, i) => ({ topic: 't/a/result', payload: JSON.stringify({ seq: i + 1 }), qos: 1, retain: false, camera: 'a', kind: 'result' }));
      const { rows } = j.append(msgs);
      j.markSent(rows.slice(0, 4).map((r) => r.seq));
      process.kill(process.pid, 'SIGKILL');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    // The lock (an fcntl lock on <path>.lock) died with the process: nothing stale to take over.

    const { log, lines } = captureLog();
    const j = new Journal({ path, maxRows: 1000, maxBytes: 1 << 24, retentionMs: 3_600_000, synchronous: 'normal', log });
    j.start();
    open.push(j);
    expect(j.stats()).toMatchObject({ rows: 10, pending: 6 });
    expect(j.pendingAfter(0, 100).map((x) => seqOf(x.payload))).toEqual([5, 6, 7, 8, 9, 10]);
    expect(lines.find((l) => l.msg === 'journal open')).toMatchObject({ rows: 10, pending: 6 });
    // new messages get higher seqs than everything before the crash
    const { rows } = j.append([msg('a', 11)]);
    expect(rows[0].seq).toBeGreaterThan(10);
  });
});

describe('journal: payload seq column', () => {
  it('lastPayloadSeq is the highest payload seq stored per camera and kind, read from its column (not the payload), with no index to maintain', () => {
    const { j } = journal();
    const msgs: NewMessage[] = [];
    for (let i = 1; i <= 7; i++) msgs.push(msg('a', i));
    for (let i = 1; i <= 3; i++) msgs.push(msg('b', i));
    for (let i = 1; i <= 4; i++) msgs.push(msg('a', i, { kind: 'event', topic: 'edge-inferd/dev/a/event' }));
    // The column, never the payload: a payload claiming another seq does not count.
    msgs.push(msg('b', 4, { payload: JSON.stringify({ camera: 'b', seq: 1000 }) }));
    // No seq, or one that is not a positive integer: stored as none.
    msgs.push(msg('', 0, { kind: 'stats', topic: 'edge-inferd/dev/stats', payloadSeq: undefined }));
    msgs.push(msg('c', 0, { payloadSeq: -3 }), msg('c', 0, { payloadSeq: 1.5 }));
    j.append(msgs.slice(0, 5));
    j.append(msgs.slice(5));

    const expected = new Map<string, number>();
    for (const m of msgs) {
      const k = `${m.camera}/${m.kind}`;
      const v = m.payloadSeq !== undefined && Number.isSafeInteger(m.payloadSeq) && m.payloadSeq > 0 ? m.payloadSeq : 0;
      expected.set(k, Math.max(expected.get(k) ?? 0, v));
    }
    const answers = () => new Map([...expected.keys()].map((k) => [k, j.lastPayloadSeq(k.split('/')[0], k.split('/')[1])]));
    expect(answers()).toEqual(expected);
    expect(expected.get('b/result')).toBe(4);
    expect(j.lastPayloadSeq('nobody', 'result')).toBe(0);
    // pending rows carry it back to the outbox
    expect(
      j
        .pendingAfter(0, 100)
        .filter((r) => r.camera === 'a' && r.kind === 'result')
        .map((r) => r.payloadSeq),
    ).toEqual([1, 2, 3, 4, 5, 6, 7]);

    // Rows after the last one with a seq (a stats message, another camera) do not hide it.
    j.append([
      msg('', 0, { kind: 'stats', topic: 'edge-inferd/dev/stats', payloadSeq: undefined }),
      msg('b', 0, { payloadSeq: undefined }),
    ]);
    expect(answers()).toEqual(expected);

    // Inserts keep no index on payload_seq: it is read once per camera at start.
    const ro = openReadOnly(j.path);
    try {
      const indexes = ro.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%payload_seq%'").all();
      expect(indexes).toEqual([]);
    } finally {
      ro.close();
    }
  });

  it('opens a version-1 journal file: adds the column, fills it from the payloads once, pending rows still drain in order', () => {
    const path = tmpPath();
    mkdirSync(dirname(path), { recursive: true });
    const t0 = 7_000_000;
    const fixture: V1Row[] = [];
    const result = (camera: string, seq: number, state: V1Row['state']): V1Row => ({
      camera,
      kind: 'result',
      topic: `edge-inferd/dev/${camera}/result`,
      payload: JSON.stringify({ id: `${camera}-${seq}`, camera, seq, label: 'glass', score: 0.5 }),
      state,
      createdMs: t0 + fixture.length,
    });
    for (let i = 1; i <= 6; i++) fixture.push(result('a', i, i <= 3 ? 'sent' : 'pending'));
    for (let i = 1; i <= 2; i++) fixture.push(result('b', i, 'pending'));
    for (let i = 1; i <= 2; i++) {
      fixture.push({
        camera: 'a',
        kind: 'event',
        topic: 'edge-inferd/dev/a/event',
        payload: JSON.stringify({ camera: 'a', seq: i }),
        state: 'sent',
        createdMs: t0 + fixture.length,
      });
    }
    fixture.push({
      camera: '',
      kind: 'stats',
      topic: 'edge-inferd/dev/stats',
      payload: '{"uptime":5}',
      state: 'sent',
      createdMs: t0 + fixture.length,
      qos: 0,
    });
    fixture.push({ ...result('c', 0, 'pending'), payload: 'not json' });
    fixture.push({ ...result('c', 0, 'pending'), payload: '{"seq":"7"}' });
    fixture.push({ ...result('c', 0, 'pending'), payload: '{"seq":2.5}' });
    const journalSeqs = writeV1Journal(path, fixture);

    // What the payloads say, computed here the way the old journal read them.
    const payloadSeq = (r: V1Row): number | undefined => {
      try {
        const v = (JSON.parse(r.payload) as { seq?: unknown }).seq;
        return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
      } catch {
        return undefined;
      }
    };
    const lastSeq = (camera: string, kind: string) =>
      Math.max(0, ...fixture.filter((r) => r.camera === camera && r.kind === kind).map((r) => payloadSeq(r) ?? 0));
    const pendingRows = fixture.map((r, i) => ({ r, seq: journalSeqs[i] })).filter(({ r }) => r.state === 'pending');
    const history = () => {
      const out: string[] = [];
      const errs: string[] = [];
      const code = runHistory(
        { journalPath: path, json: true },
        (x) => out.push(x),
        (x) => errs.push(x),
        t0 + 60_000,
      );
      return { code, lines: out.join('').split('\n').filter(Boolean), errs };
    };
    const resultPayloads = fixture.filter((r) => r.kind === 'result').map((r) => r.payload);

    // `edge-inferd history` reads the old file as it is (read-only, no upgrade).
    expect(history()).toEqual({ code: 0, lines: resultPayloads, errs: [] });

    const { log, lines } = captureLog();
    const opts = {
      path,
      maxRows: 1000,
      maxBytes: 1 << 24,
      retentionMs: 3_600_000_000,
      synchronous: 'normal' as const,
      log,
      clock: new ManualClock(t0 + 60_000),
    };
    let j = new Journal(opts);
    j.start();
    open.push(j);
    expect(lines.filter((l) => l.msg === 'journal schema upgraded')).toEqual([
      expect.objectContaining({
        fromVersion: 1,
        toVersion: SCHEMA_VERSION,
        backfilled: fixture.filter((r) => payloadSeq(r) !== undefined).length,
      }),
    ]);
    for (const [camera, kind] of [
      ['a', 'result'],
      ['b', 'result'],
      ['a', 'event'],
      ['c', 'result'],
      ['', 'stats'],
    ]) {
      expect(j.lastPayloadSeq(camera, kind), `${camera}/${kind}`).toBe(lastSeq(camera, kind));
    }
    expect(lastSeq('a', 'result')).toBe(6);
    expect(j.stats()).toMatchObject({ rows: fixture.length, pending: pendingRows.length });

    // The pending rows come out as they were written, in journal order, now with their payload seq.
    const pending = j.pendingAfter(0, 100);
    expect(pending.map((p) => ({ seq: p.seq, payload: p.payload, payloadSeq: p.payloadSeq }))).toEqual(
      pendingRows.map(({ r, seq }) => ({ seq, payload: r.payload, payloadSeq: payloadSeq(r) })),
    );
    j.markSent(pending.map((p) => p.seq));
    expect(j.stats().pending).toBe(0);
    expect(j.pendingAfter(0, 100)).toEqual([]);

    // New messages go on from there; the upgrade happened once.
    j.append([msg('a', 7)]);
    expect(j.lastPayloadSeq('a', 'result')).toBe(7);
    j.stop();
    j = new Journal(opts);
    j.start();
    open.push(j);
    expect(lines.filter((l) => l.msg === 'journal schema upgraded')).toHaveLength(1);
    expect(j.lastPayloadSeq('a', 'result')).toBe(7);
    const ro = openReadOnly(path);
    expect(ro.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    ro.close();
    expect(history()).toEqual({ code: 0, lines: [...resultPayloads, msg('a', 7).payload], errs: [] });
  });
});

describe('journal file versions', () => {
  const userVersion = (path: string) => {
    const ro = openReadOnly(path);
    try {
      return ro.pragma('user_version', { simple: true });
    } finally {
      ro.close();
    }
  };
  const setUserVersion = (path: string, v: number) => {
    const db = new Database(path);
    db.pragma(`user_version = ${v}`);
    db.close();
  };

  it('a new journal is schema 2 (messages with payload_seq); the index an early version 2 had is dropped at start', () => {
    const { j } = journal();
    const path = j.path;
    j.stop();
    // Schema 2 is what this daemon writes; a change of the number is a change of the file format.
    expect(userVersion(path)).toBe(2);
    expect(SCHEMA_VERSION).toBe(2);
    const db = new Database(path);
    db.exec('CREATE INDEX messages_payload_seq ON messages(camera, kind, payload_seq)');
    db.close();
    journal({ path }).j.stop(); // opened by this daemon again
    const ro = openReadOnly(path);
    const indexes = ro
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' ORDER BY name")
      .all()
      .map((r) => (r as { name: string }).name);
    ro.close();
    expect(indexes).toEqual(['messages_camera', 'messages_created', 'messages_pending']);
  });

  it('history reads versions 1 and 2 and refuses a newer file or a database that is not a journal, naming the versions', () => {
    const { j } = journal();
    j.append([msg('a', 1)]);
    const path = j.path;
    j.stop();
    setUserVersion(path, 1);
    expect(userVersion(path)).toBe(1);
    setUserVersion(path, 3);
    expect(() => openReadOnly(path)).toThrow(`${path} is not an edge-inferd journal (schema version 3, expected 1 to 2)`);
    setUserVersion(path, 0);
    expect(() => openReadOnly(path)).toThrow('(schema version 0, expected 1 to 2)');
    // and the daemon refuses to open a file from a newer edge-inferd rather than write over it
    setUserVersion(path, 3);
    expect(() => journal({ path })).toThrow(`journal.path: ${path} was written by a newer edge-inferd (schema 3, this one reads 2)`);
  });
});

describe('journal: what it records beside the messages', () => {
  it('lostUpTo: the highest seq ever removed, raised by each eviction and kept across a restart; when the last eviction was', async () => {
    const clock = new ManualClock();
    const { j, lines } = journal({ maxRows: 3, clock });
    const fullLines = () => lines.filter((l) => String(l.msg).startsWith('journal full'));
    expect(j.lostUpTo).toBe(0);
    const first = j.append([1, 2, 3].map((n) => msg('a', n))).rows;
    expect(j.stats()).not.toHaveProperty('lastEvictionAtMs');
    await clock.advance(5000);
    j.append([msg('a', 4)]);
    expect(j.lostUpTo).toBe(first[0].seq);
    expect(j.stats().lastEvictionAtMs).toBe(clock.now());
    expect(fullLines()).toHaveLength(1);
    j.append([msg('a', 5), msg('a', 6)]);
    expect(j.lostUpTo).toBe(first[2].seq);
    // within 10 s of the last line: counted, not logged yet
    expect(fullLines()).toHaveLength(1);
    await clock.advance(10_000);
    j.append([msg('a', 7)]);
    expect(fullLines().map((l) => l.evictedPending)).toEqual([1, 3]);
    const path = j.path;
    j.stop();
    const again = journal({ path, maxRows: 3, clock }).j;
    expect(again.lostUpTo).toBe(first[2].seq + 1);
  });

  it('lostUpTo is raised by the retention sweep too', async () => {
    const clock = new ManualClock();
    const { j } = journal({ retentionMs: 1000, clock });
    const rows = j.append([1, 2, 3].map((n) => msg('a', n))).rows;
    j.markSent(rows.slice(0, 2).map((r) => r.seq));
    await clock.advance(2000);
    expect(j.sweep()).toBe(2);
    expect(j.lostUpTo).toBe(rows[1].seq);
  });

  it('opens the file with the synchronous level asked for (FULL: every commit reaches the disk)', () => {
    const level = (synchronous: 'full' | 'normal') => {
      const { j } = journal({ synchronous });
      // The connection's own setting: nothing else shows it.
      return (j as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });
    };
    expect(level('full')).toBe(2);
    expect(level('normal')).toBe(1);
  });

  it("history reads the file read-only and waits for the writer's locks; looking up pending messages uses the partial index of pending rows", () => {
    const { j } = journal();
    j.append([msg('a', 1)]);
    const ro = openReadOnly(j.path);
    try {
      expect(() => ro.exec('DELETE FROM messages')).toThrow(/readonly/);
      // a lock the daemon holds (a checkpoint) is waited for, up to 5 s, rather than failing the command at once
      expect(ro.pragma('busy_timeout', { simple: true })).toBe(5000);
      // The journal's pending lookup (Journal.pendingAfter): on a journal of 100k sent rows, a scan would read them all.
      const plan = ro
        .prepare(
          'EXPLAIN QUERY PLAN SELECT seq, created_ms, camera, kind, topic, qos, retain, expiry_sec, payload, payload_seq ' +
            'FROM messages WHERE state = 0 AND seq > ? ORDER BY seq LIMIT ?',
        )
        .all(0, 10)
        .map((r) => (r as { detail: string }).detail);
      expect(plan.join('; ')).toContain('USING INDEX messages_pending');
    } finally {
      ro.close();
    }
  });
});

describe('journal bounds at their edges', () => {
  it('holds exactly maxRows pending messages, and one more evicts the oldest', () => {
    const { j } = journal({ maxRows: 5 });
    j.append([1, 2, 3, 4, 5].map((n) => msg('a', n)));
    expect(j.stats()).toMatchObject({ rows: 5, pending: 5, evicted: { sent: 0, pending: 0 } });
    j.append([msg('a', 6)]);
    expect(j.stats()).toMatchObject({ rows: 5, pending: 5, evicted: { sent: 0, pending: 1 } });
    expect(j.pendingAfter(0, 10).map((r) => seqOf(r.payload))).toEqual([2, 3, 4, 5, 6]);
  });

  it('counts a row as its payload and topic plus 48 bytes: maxBytes of five rows holds exactly five, and one more evicts the oldest', () => {
    // Payloads of one length (seq 1..6 are one digit): every row the same size.
    const row = Buffer.byteLength(msg('a', 1).payload) + Buffer.byteLength(msg('a', 1).topic) + 48;
    const { j } = journal({ maxBytes: 5 * row });
    j.append([1, 2, 3, 4, 5].map((n) => msg('a', n)));
    expect(j.stats()).toMatchObject({ rows: 5, bytes: 5 * row, evicted: { pending: 0 } });
    j.append([msg('a', 6)]);
    expect(j.stats()).toMatchObject({ rows: 5, bytes: 5 * row, evicted: { pending: 1 } });
    expect(j.pendingAfter(0, 10).map((r) => seqOf(r.payload))).toEqual([2, 3, 4, 5, 6]);
  });

  it('opened after the retention has passed, it deletes the old sent messages at once (not at the first periodic sweep)', () => {
    const clock = new ManualClock();
    const path = tmpPath();
    const first = journal({ path, clock, retentionMs: 1000, sweepEveryMs: 3_600_000 }).j;
    first.append([msg('a', 1), msg('a', 2), msg('a', 3)]);
    first.markSent([1, 2]);
    first.stop();
    const later = journal({ path, clock: new ManualClock(clock.now() + 5000), retentionMs: 1000, sweepEveryMs: 3_600_000 }).j;
    expect(later.stats()).toMatchObject({ rows: 1, pending: 1 });
  });
});

describe('history query parameters', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  it('accepts ISO times and durations', () => {
    expect(parseSince('2024-05-01T08:00:00Z', now)).toBe(Date.parse('2024-05-01T08:00:00Z'));
    expect(parseSince('15m', now)).toBe(now - 15 * 60_000);
    expect(parseSince('2h', now)).toBe(now - 2 * 3_600_000);
    expect(parseSince('1.5d', now)).toBe(now - 1.5 * 86_400_000);
    expect(parseHistoryQuery({ camera: 'tray', since: '30s', limit: '5' }, now)).toEqual({
      query: { camera: 'tray', sinceMs: now - 30_000, limit: 5 },
      capped: false,
    });
    expect(parseHistoryQuery({}, now)).toEqual({ query: { limit: 100 }, capped: false });
    expect(parseHistoryQuery({ limit: '5000' }, now)).toEqual({ query: { limit: 1000 }, capped: true });
  });
  it('takes a time with a zone offset, and the limits at their bounds (1 and the cap)', () => {
    expect(parseSince('2024-05-01T10:00:00+02:00', now)).toBe(Date.parse('2024-05-01T08:00:00Z'));
    expect(parseSince('2024-05-01T03:30:00-0430', now)).toBe(Date.parse('2024-05-01T08:00:00Z'));
    expect(parseHistoryQuery({ limit: '1' }, now)).toEqual({ query: { limit: 1 }, capped: false });
    expect(parseHistoryQuery({ limit: '1000' }, now)).toEqual({ query: { limit: 1000 }, capped: false });
    expect(parseHistoryQuery({ limit: '1001' }, now)).toEqual({ query: { limit: 1000 }, capped: true });
    expect(parseHistoryQuery({ limit: '0' }, now)).toEqual({ problems: ['limit: must be a whole number >= 1 (got "0")'] });
  });
  it('reports every bad parameter', () => {
    expect(parseHistoryQuery({ camera: 'a/b', since: 'yesterday', limit: '-3' }, now)).toEqual({
      problems: [
        'camera: must be a camera name (letters, digits, "_" or "-") (got "a/b")',
        'since: expected an ISO 8601 time (2024-05-01T08:00:00Z) or a duration back from now (30s, 15m, 2h, 7d) (got "yesterday")',
        'limit: must be a whole number >= 1 (got "-3")',
      ],
    });
    expect(parseHistoryQuery({ limit: '1e3' }, now)).toEqual({ problems: ['limit: must be a whole number >= 1 (got "1e3")'] });
    expect(parseHistoryQuery({ since: '2024-13-45T99:00:00Z' }, now)).toMatchObject({
      problems: [expect.stringContaining('since: expected an ISO 8601 time')],
    });
  });
});
