import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StatusReporter, type StatusSources } from '../../src/health/status.js';
import { Journal } from '../../src/journal/journal.js';
import { statusSchema } from '../../src/publish/schemas.js';
import { VERSION } from '../../src/version.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';

/**
 * The retained status a fleet view reads: uptime from the injected clock, the journal's depth and
 * the age of its oldest pending message from a real journal file, and the newest error a camera
 * (or the journal) reports.
 */

const journals: Journal[] = [];
afterEach(() => {
  for (const j of journals.splice(0)) j.stop();
});

function rig(cameraErrors: Record<string, { code: string; message: string; atMs: number } | undefined>, journalError?: string) {
  const clock = new ManualClock();
  const journal = new Journal({
    path: join(mkdtempSync(join(tmpdir(), 'status-')), 'journal.sqlite'),
    maxRows: 1000,
    maxBytes: 1 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log: captureLog().log,
    clock,
  });
  journal.start();
  journals.push(journal);
  const cameras = Object.entries(cameraErrors).map(([name, lastError]) => ({
    name,
    started: true,
    state: 'streaming' as const,
    status: () => ({ lastError }) as ReturnType<StatusSources['cameras'][number]['status']>,
  }));
  const sources = {
    lifecycle: { phase: 'running' },
    reloads: { config: { source: 'test' }, last: undefined },
    model: { status: () => ({ name: 'demo', version: '1.0.0', sha256: 'a'.repeat(64), provider: 'cpu' }) },
    messaging: { state: () => ({ connected: true }), outboxStats: () => (journalError ? { lastJournalError: journalError } : {}) },
    journal,
    cameras,
    health: () => ({ ok: true }),
    systemd: { watchdogUsec: undefined, counts: { watchdog: 0, withheld: 0, extended: 0 } },
  } as unknown as StatusSources;
  return { clock, journal, status: new StatusReporter({ deviceId: 'kiosk-1', clock, sources }) };
}

const result = (seq: number) => ({
  topic: `p/kiosk-1/tray/result`,
  payload: `{"seq":${seq}}`,
  qos: 1 as const,
  retain: false,
  camera: 'tray',
  kind: 'result',
  payloadSeq: seq,
});

describe('the retained status message', () => {
  it('uptime, journal depth and the age of the oldest message the broker has not acknowledged', async () => {
    const { clock, journal, status } = rig({ tray: undefined });
    let m = status.message('online');
    expect(m).toMatchObject({
      version: VERSION,
      model: { name: 'demo', version: '1.0.0' },
      provider: 'cpu',
      uptimeSec: 0,
      journal: { pending: 0, oldestPendingAgeSec: null },
      lastError: null,
    });

    await clock.advance(5000);
    const [first] = journal.append([result(1)]).rows;
    await clock.advance(2500);
    journal.append([result(2), result(3)]);
    await clock.advance(1000);
    m = status.message('online');
    // Journaled 3.5 s ago: the oldest of the three pending.
    expect(m).toMatchObject({ uptimeSec: 9, journal: { pending: 3, oldestPendingAgeSec: 3.5 } });

    journal.markSent([first.seq]);
    m = status.message('online');
    // Now the oldest pending is the second, journaled 1 s ago.
    expect(m.journal).toEqual({ pending: 2, oldestPendingAgeSec: 1 });
    expect(statusSchema.safeParse(m).success).toBe(true);
  });

  it('the last error is the newest a camera reports, else the journal write failure', () => {
    const { status } = rig({
      tray: { code: 'CAMERA_EOS', message: 'end of stream', atMs: 2000 },
      door: { code: 'CAMERA_OPEN', message: 'no such device', atMs: 5000 },
      hall: undefined,
    });
    expect(status.message('online').lastError).toEqual({
      where: 'camera door',
      code: 'CAMERA_OPEN',
      message: 'no such device',
      atMs: 5000,
    });

    const journalOnly = rig({ tray: undefined }, 'journal: appending failed: SQLITE_FULL').status;
    expect(journalOnly.message('online').lastError).toEqual({
      where: 'journal',
      code: 'JOURNAL_WRITE',
      message: 'journal: appending failed: SQLITE_FULL',
    });
  });
});
