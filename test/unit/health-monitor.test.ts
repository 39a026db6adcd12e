import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { HealthMonitor, type ReadinessSource } from '../../src/health/monitor.js';
import { StallDetector } from '../../src/health/stall.js';
import { ManualClock } from '../helpers/clock.js';

/**
 * The verdicts /healthz and /readyz give, from a real stall detector on a manual clock and the
 * plain state looks readiness takes (the model, cameras, messaging, the journal).
 */

type Journal = ReadinessSource['journal'];
type Outbox = ReturnType<ReadinessSource['messaging']['outboxStats']>;

function setup(opts: { outbox?: Outbox; journal?: Journal; connected?: boolean; lastError?: string } = {}) {
  const clock = new ManualClock();
  const detector = new StallDetector({ clock, stallAfterMs: 60_000, engineBuildLimitMs: 600_000 });
  const source: ReadinessSource = {
    model: { info: { name: 'm', version: '1', provider: 'cpu' } },
    cameras: [],
    messaging: {
      state: () => ({ connected: opts.connected ?? true, url: 'mqtt://broker', lastError: opts.lastError }),
      outboxStats: () => ('outbox' in opts ? opts.outbox : { journalAccepting: true, queued: 2, inflight: 1 }),
    },
    // 5 pending in the file: the 3 the outbox has not had acknowledged, and 2 acknowledged whose
    // acknowledgement is written with the next write (not counted as queued anywhere).
    journal:
      'journal' in opts && opts.journal
        ? opts.journal
        : { isOpen: true, stats: () => ({ mode: 'read-write' as const, pending: 5, writable: true }) },
  };
  const monitor = new HealthMonitor({ detector, source });
  return { clock, detector, source, monitor };
}

describe('HealthMonitor.health', () => {
  it('follows the phase: starting waits, running tells the detector, stopping and stopped are not healthy', () => {
    const { monitor, detector } = setup();
    expect(monitor.health()).toMatchObject({ ok: false, verdict: 'stalled', reason: 'stopped' });
    monitor.setPhase('starting');
    expect(monitor.health()).toMatchObject({ ok: true, verdict: 'waiting', reason: 'starting' });
    detector.watch('cam', 10, 'connecting');
    expect(monitor.health()).toMatchObject({ ok: true, verdict: 'waiting', reason: 'starting: camera cam: connecting' });
    monitor.setPhase('running');
    expect(monitor.health()).toMatchObject({ ok: true, verdict: 'waiting', reason: 'camera cam: connecting' });
    detector.state('cam', 'stopped');
    expect(monitor.health()).toMatchObject({ ok: false, verdict: 'stalled', reason: 'camera cam: stopped' });
    // A stall while starting says what stalled, not just "starting".
    monitor.setPhase('starting');
    expect(monitor.health()).toMatchObject({ ok: false, verdict: 'stalled', reason: 'camera cam: stopped' });
    monitor.setPhase('stopping');
    expect(monitor.health()).toMatchObject({ ok: false, verdict: 'stalled', reason: 'stopping' });
  });

  it('applies health.stallAfterSec and health.engineBuildTimeoutSec to the detector (seconds to ms)', async () => {
    const { monitor, detector, clock } = setup();
    monitor.setPhase('running');
    const health = configSchema.parse({}).health;
    monitor.apply({ ...health, stallAfterSec: 2, engineBuildTimeoutSec: 30 });
    detector.watch('cam', 100, 'streaming');
    // The limit is 2000 ms exactly: progressing at it, stalled one millisecond after.
    await clock.advance(2000);
    expect(monitor.health()).toMatchObject({ ok: true, verdict: 'progressing' });
    await clock.advance(1);
    expect(monitor.health()).toMatchObject({ ok: false, reason: 'camera cam: no result for 2.0 s (limit 2.0 s)' });
    detector.progress('cam');
    detector.buildStarted('tensorrt');
    await clock.advance(30_001);
    expect(monitor.health()).toMatchObject({ ok: false, reason: expect.stringContaining('over its limit of 30 s') });
  });
});

describe('HealthMonitor.ready', () => {
  it('is ready only while running with every check ok, and says what each check saw', () => {
    const { monitor, source } = setup();
    expect(monitor.ready().ok).toBe(false); // stopped
    monitor.setPhase('running');
    expect(monitor.ready()).toEqual({
      ok: true,
      checks: {
        model: { ok: true, detail: 'm 1 on cpu' },
        journal: { ok: true, detail: 'accepting (3 queued)' },
        mqtt: { ok: true, detail: 'connected to mqtt://broker' },
      },
    });
    source.model = { info: undefined };
    expect(monitor.ready()).toMatchObject({ ok: false, checks: { model: { ok: false, detail: 'not loaded' } } });
    source.model = { info: undefined, inUse: false };
    expect(monitor.ready()).toMatchObject({
      ok: true,
      checks: { model: { ok: true, detail: 'not loaded: every camera runs a pipeline' } },
    });
  });

  it('a camera is ready only while streaming; one not started says so', () => {
    const { monitor, source } = setup();
    monitor.setPhase('running');
    let state = 'streaming';
    source.cameras = [
      { name: 'a', started: true, camera: { status: () => ({ state }) } },
      { name: 'b', started: false, camera: { status: () => ({ state: 'streaming' }) } },
    ];
    expect(monitor.ready().checks).toMatchObject({
      'camera:a': { ok: true, detail: 'streaming' },
      'camera:b': { ok: false, detail: 'not started' },
    });
    state = 'backoff';
    expect(monitor.ready().checks['camera:a']).toEqual({ ok: false, detail: 'backoff' });
    source.cameras = [{ name: 'a', started: true, camera: { status: () => ({ state: 'streaming' }) } }];
    expect(monitor.ready().ok).toBe(true);
  });

  it('the journal: not open, no outbox, a failed write (its own error first, else the outbox one, else a default)', () => {
    const closed = setup({ journal: { isOpen: false, stats: () => ({ mode: 'read-write' as const, pending: 0, writable: true }) } });
    closed.monitor.setPhase('running');
    expect(closed.monitor.ready()).toMatchObject({ ok: false, checks: { journal: { ok: false, detail: 'not open' } } });
    // Open, but the outbox is not there (yet): nothing accepts results.
    const noOutbox = setup({ outbox: undefined });
    noOutbox.monitor.setPhase('running');
    expect(noOutbox.monitor.ready()).toMatchObject({ ok: false, checks: { journal: { ok: false, detail: 'not open' } } });

    const stats: ReturnType<Journal['stats']> = { mode: 'read-write', pending: 5, writable: false, lastWriteError: 'disk I/O error' };
    const outbox: NonNullable<Outbox> = { journalAccepting: true, lastJournalError: 'database or disk is full', queued: 4, inflight: 1 };
    const s = setup({ outbox, journal: { isOpen: true, stats: () => stats } });
    s.monitor.setPhase('running');
    expect(s.monitor.ready()).toMatchObject({
      ok: false,
      checks: { journal: { ok: false, detail: 'not accepting results: disk I/O error' } },
    });
    stats.lastWriteError = undefined;
    expect(s.monitor.ready().checks.journal.detail).toBe('not accepting results: database or disk is full');
    outbox.lastJournalError = undefined;
    expect(s.monitor.ready().checks.journal.detail).toBe('not accepting results: the last write failed');
    // The journal writes, the outbox's last append failed: not accepting either.
    stats.writable = true;
    outbox.journalAccepting = false;
    expect(s.monitor.ready().checks.journal.ok).toBe(false);
    outbox.journalAccepting = true;
    expect(s.monitor.ready()).toMatchObject({ ok: true, checks: { journal: { ok: true, detail: 'accepting (5 queued)' } } });
  });

  it('a broker away is fine while the journal takes the results, not when it does not', () => {
    const s = setup({ connected: false, lastError: 'ECONNREFUSED' });
    s.monitor.setPhase('running');
    expect(s.monitor.ready()).toMatchObject({
      ok: true,
      checks: { mqtt: { ok: true, detail: 'not connected to mqtt://broker: ECONNREFUSED; the journal holds results (3 queued)' } },
    });
    const quiet = setup({ connected: false });
    quiet.monitor.setPhase('running');
    expect(quiet.monitor.ready().checks.mqtt.detail).toBe('not connected to mqtt://broker; the journal holds results (3 queued)');
    const full = setup({ connected: false, outbox: { journalAccepting: false, queued: 3, inflight: 0 } });
    full.monitor.setPhase('running');
    expect(full.monitor.ready()).toMatchObject({ ok: false, checks: { mqtt: { ok: false, detail: 'not connected to mqtt://broker' } } });
  });
});
