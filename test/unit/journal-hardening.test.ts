import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal, type JournalOptions, type NewMessage } from '../../src/journal/journal.js';
import { countRows } from '../../src/journal/store.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { StallDetector } from '../../src/health/stall.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';

/**
 * The journal on an unlucky day, on real files: a lock left beside it, a damaged file, a disk that
 * refuses writes. Rows 2, 3 and 4 of issue 13.
 */

const open: Journal[] = [];
afterEach(() => {
  for (const j of open.splice(0)) j.stop();
});

function tmpPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'journal-hard-')), 'journal.sqlite');
}

function journal(path = tmpPath(), over: Partial<JournalOptions> = {}) {
  const { log, lines } = captureLog();
  const j = new Journal({ path, maxRows: 100_000, maxBytes: 64 << 20, retentionMs: 3_600_000, synchronous: 'normal', log, ...over });
  return {
    j,
    lines,
    start: () => {
      j.start();
      open.push(j);
      return j;
    },
  };
}

const msg = (n: number): NewMessage => ({
  topic: 'edge-inferd/dev/a/result',
  payload: JSON.stringify({ id: `a-${n}`, camera: 'a', seq: n, label: 'glass', score: 0.5, pad: 'x'.repeat(200) }),
  qos: 1,
  retain: false,
  camera: 'a',
  kind: 'result',
  payloadSeq: n,
});

/** A journal file holding `n` pending messages, closed (checkpointed into the main file). */
function journalWith(n: number): string {
  const { j, start } = journal();
  start();
  j.append(Array.from({ length: n }, (_, i) => msg(i + 1)));
  j.stop();
  open.splice(open.indexOf(j), 1);
  return j.path;
}

const dist = (p: string) => pathToFileURL(resolve(import.meta.dirname, '../../dist/src', p)).href;

/** Another process that opens the journal (taking its lock) and waits; SIGKILL ends it. */
async function holder(path: string): Promise<{ kill(): Promise<void> }> {
  const script = `
    const { Journal } = await import(${JSON.stringify(dist('journal/journal.js'))});
    const { createLogger } = await import(${JSON.stringify(dist('log.js'))});
    new Journal({ path: ${JSON.stringify(path)}, maxRows: 1000, maxBytes: 1 << 24, retentionMs: 3600000, synchronous: 'normal', log: createLogger({ level: 'silent', format: 'json' }) }).start();
    process.stdout.write('holding\\n');
    setInterval(() => {}, 1000);
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    p.stdout.once('data', () => ok());
    p.once('exit', (code) => fail(new Error(`holder exited ${code}`)));
  });
  return {
    kill: () =>
      new Promise<void>((r) => {
        p.once('exit', () => r());
        p.kill('SIGKILL');
      }),
  };
}

describe('row 3: the journal lock is an OS lock that dies with its process', () => {
  it('a lock file naming a live, unrelated process (pid reuse after a reboot) does not block the start', () => {
    const path = tmpPath();
    const unrelated = spawn('sleep', ['30']);
    try {
      writeFileSync(`${path}.lock`, `${unrelated.pid}\n`);
      const { j, start } = journal(path);
      expect(() => start()).not.toThrow();
      expect(j.isOpen).toBe(true);
    } finally {
      unrelated.kill('SIGKILL');
    }
  });

  it('held by a live daemon process: refused; the moment that process is killed (SIGKILL): free', async () => {
    const path = tmpPath();
    const h = await holder(path);
    try {
      expect(() => journal(path).start()).toThrow(
        expect.objectContaining({ code: 'JOURNAL_LOCKED', message: expect.stringContaining(`${path} is in use by another process`) }),
      );
    } finally {
      await h.kill();
    }
    expect(journal(path).start().isOpen).toBe(true);
  });

  it('a second Journal on the same file in the same process is refused too, and free after stop()', () => {
    const path = tmpPath();
    const first = journal(path).start();
    expect(() => journal(path).start()).toThrow(expect.objectContaining({ code: 'JOURNAL_LOCKED' }));
    first.stop();
    expect(journal(path).start().isOpen).toBe(true);
  });
});

describe('row 4: a corrupt journal is moved aside and a fresh one started', () => {
  const damages: [string, (path: string) => void][] = [
    ['truncated', (p) => truncateSync(p, Math.floor(statSync(p).size / 3) + 100)],
    ['header overwritten', (p) => overwrite(p, 0, Buffer.alloc(100, 0x41))],
    ['random pages in the middle', (p) => overwrite(p, 4096 * 3, randomish(4096 * 4))],
    [
      'a folder at its path',
      (p) => {
        execFileSync('rm', ['-f', p]);
        mkdirSync(p);
        writeFileSync(join(p, 'x'), 'x');
      },
    ],
  ];
  it.each(damages)('%s', (_what, damage) => {
    const path = journalWith(300);
    damage(path);
    const { j, lines, start } = journal(path);
    start();
    const aside = readdirSync(dirname(path)).filter((f) => f.startsWith('journal.sqlite.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(/^journal\.sqlite\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
    const movedTo = join(dirname(path), aside[0]);
    const logged = lines.find((l) => l.level === 50 && l.movedTo === movedTo);
    expect(logged, JSON.stringify(lines)).toMatchObject({ path });
    expect(logged!.msg).toContain(`journal ${path} is corrupt`);
    expect(logged!.msg).toContain(movedTo);
    expect(j.stats()).toMatchObject({ rows: 0, pending: 0, corrupt: { movedAside: 1, lastMovedTo: movedTo } });
    // The fresh journal works.
    const { rows } = j.append([msg(1)]);
    expect(j.pendingAfter(0, 10).map((r) => r.seq)).toEqual([rows[0].seq]);
  });

  it('a healthy journal is not touched', () => {
    const path = journalWith(50);
    const { j, start } = journal(path);
    start();
    expect(j.stats()).toMatchObject({ pending: 50, corrupt: { movedAside: 0 } });
    expect(readdirSync(dirname(path)).some((f) => f.includes('corrupt'))).toBe(false);
  });
});

function overwrite(path: string, at: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

/** Deterministic noise (a fixed LCG): the same damage on every run. */
function randomish(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/**
 * This process may write no byte past `bytes` into any file (RLIMIT_FSIZE, as root or not: only
 * the soft limit is lowered): a disk that refuses writes, for real, without a mount. Node ignores
 * SIGXFSZ, so writes fail with EFBIG (SQLite: SQLITE_IOERR_WRITE; a full disk gives SQLITE_FULL).
 */
function limitFileSize(bytes: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${bytes}:`]);
}

describe('row 2: the journal never claims what it does not hold', () => {
  it('a failed write changes no counter, marks the journal not writable, and the next append that works re-reads the file', () => {
    const { j, lines, start } = journal();
    start();
    j.append(Array.from({ length: 20 }, (_, i) => msg(i + 1)));
    const file = () => {
      const db = new Database(j.path, { readonly: true });
      try {
        return countRows(db);
      } finally {
        db.close();
      }
    };
    const before = j.stats();
    expect(file()).toEqual({ rows: before.rows, bytes: before.bytes, pending: 20 });
    limitFileSize(1024);
    try {
      for (let k = 0; k < 5; k++) expect(() => j.append(Array.from({ length: 50 }, (_, i) => msg(100 + k * 50 + i)))).toThrow();
    } finally {
      limitFileSize('unlimited');
    }
    const failing = j.stats();
    expect(failing).toMatchObject({ rows: before.rows, bytes: before.bytes, pending: 20, writable: false, writeFailures: 5 });
    expect(failing.lastWriteError).toMatch(/disk I\/O error|database or disk is full/);
    expect(file()).toEqual({ rows: failing.rows, bytes: failing.bytes, pending: failing.pending });

    j.append([msg(500)]);
    expect(j.stats()).toMatchObject({ pending: 21, writable: true, writeFailures: 5 });
    expect(j.stats().lastWriteError).toBeUndefined();
    expect(file()).toEqual({ rows: j.stats().rows, bytes: j.stats().bytes, pending: 21 });
    expect(lines.find((l) => l.msg === 'journal writable again; counts re-read from the file')).toMatchObject({
      pending: 21,
      writeFailures: 5,
    });
  });
});

describe('readiness follows every journal write, not only appends', () => {
  const failing: [string, (j: Journal) => unknown][] = [
    ['marking messages sent', (j) => j.markSent(Array.from({ length: 20 }, (_, i) => i + 1))],
    ['the retention sweep', (j) => j.sweep()],
  ];
  for (const [what, write] of failing) {
    it(`/readyz is not ready when ${what} fails, even while the outbox still accepts`, async () => {
      const clock = new ManualClock();
      // Rows expire after 1 s; the periodic sweep would run only after an hour (the test runs it itself).
      const { j, start } = journal(tmpPath(), { clock, retentionMs: 1000, sweepEveryMs: 3_600_000 });
      start();
      j.append(Array.from({ length: 20 }, (_, i) => msg(i + 1)));
      if (what === 'the retention sweep') {
        // Sent rows past the retention: the sweep has something to delete.
        j.markSent(Array.from({ length: 20 }, (_, i) => i + 1));
        await clock.advance(2000);
      }
      const monitor = new HealthMonitor({
        detector: new StallDetector({ clock, stallAfterMs: 60_000, engineBuildLimitMs: 60_000 }),
        source: {
          model: { info: { name: 'm', version: '1', provider: 'cpu' } },
          cameras: [],
          // The outbox has only seen appends, which still work: it says it accepts.
          messaging: {
            state: () => ({ connected: true, url: 'mqtt://broker' }),
            outboxStats: () => ({ journalAccepting: true, queued: 0, inflight: 0 }),
          },
          journal: j,
        },
      });
      monitor.setPhase('running');
      expect(monitor.ready()).toMatchObject({ ok: true, checks: { journal: { ok: true } } });
      limitFileSize(1024);
      try {
        expect(() => write(j)).toThrow();
      } finally {
        limitFileSize('unlimited');
      }
      const r = monitor.ready();
      expect(r.ok).toBe(false);
      expect(r.checks.journal).toEqual({
        ok: false,
        detail: expect.stringMatching(/^not accepting results: (disk I\/O error|database or disk is full)/),
      });
    });
  }
});
