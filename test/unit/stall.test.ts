import { describe, expect, it } from 'vitest';
import { StallDetector } from '../../src/health/stall.js';
import { ManualClock } from '../helpers/clock.js';

function setup(stallAfterMs = 10_000, engineBuildLimitMs = 60_000) {
  const clock = new ManualClock();
  const det = new StallDetector({ clock, stallAfterMs, engineBuildLimitMs });
  return { clock, det };
}

describe('StallDetector', () => {
  it('progresses while results arrive within max(10 s, 5 frame periods)', async () => {
    const { clock, det } = setup();
    det.watch('tray', 2, 'streaming');
    await clock.advance(9_000);
    expect(det.report()).toMatchObject({ ok: true, verdict: 'progressing' });
    det.progress('tray');
    await clock.advance(10_000);
    expect(det.report().verdict).toBe('progressing');
    await clock.advance(1);
    const r = det.report();
    expect(r).toMatchObject({ ok: false, verdict: 'stalled' });
    expect(r.reason).toBe('camera tray: no result for 10 s (limit 10 s)');
    expect(r.cameras.tray).toMatchObject({ verdict: 'stalled', idleMs: 10_001, limitMs: 10_000 });
  });

  it('is a pure read: asking often or never gives the same verdict', async () => {
    const a = setup();
    const b = setup();
    for (const { det } of [a, b]) det.watch('tray', 2, 'streaming');
    // a is asked every 100 ms (as a busy /healthz would be), b only at the end.
    for (let i = 0; i < 120; i++) {
      await a.clock.advance(100);
      a.det.report();
    }
    await b.clock.advance(12_000);
    expect(a.det.report()).toEqual(b.det.report());
    expect(a.det.report()).toMatchObject({ ok: false, cameras: { tray: { idleMs: 12_000 } } });
  });

  it('gives slow cameras five frame periods', async () => {
    const { clock, det } = setup();
    expect(det.limitFor(0.2)).toBe(25_000);
    expect(det.limitFor(30)).toBe(10_000);
    det.watch('tray', 0.2, 'streaming');
    det.progress('tray');
    await clock.advance(20_000);
    expect(det.report().ok).toBe(true);
    await clock.advance(5_001);
    expect(det.report().ok).toBe(false);
  });

  it('treats connecting and backoff as waiting on purpose, however long', async () => {
    const { clock, det } = setup();
    det.watch('tray', 2, 'backoff');
    det.watch('door', 2, 'connecting');
    await clock.advance(3_600_000);
    const r = det.report();
    expect(r).toMatchObject({ ok: true, verdict: 'waiting' });
    expect(r.reason).toBe('camera tray: reconnecting (backoff); camera door: connecting');
  });

  it('a paused camera waits on purpose; after resuming it gets a full period', async () => {
    const { clock, det } = setup();
    det.watch('tray', 2, 'streaming');
    det.progress('tray');
    det.state('tray', 'paused');
    await clock.advance(600_000);
    expect(det.report()).toMatchObject({ ok: true, verdict: 'waiting', reason: 'camera tray: paused' });
    det.state('tray', 'streaming');
    await clock.advance(10_000);
    expect(det.report().ok).toBe(true);
    await clock.advance(1);
    expect(det.report().ok).toBe(false);
  });

  it('restarts the clock when a camera comes back from backoff', async () => {
    const { clock, det } = setup();
    det.watch('tray', 2, 'streaming');
    det.progress('tray');
    await clock.advance(5_000);
    det.state('tray', 'backoff');
    await clock.advance(60_000);
    // Streaming again: the last result is 65 s old, but the camera has streamed only for 9 s.
    det.state('tray', 'streaming');
    await clock.advance(9_000);
    expect(det.report().ok).toBe(true);
    await clock.advance(1_001);
    expect(det.report().reason).toBe('camera tray: no result for 10 s (limit 10 s)');
  });

  it('a camera first watched late (after a long model build) gets a full period from then', async () => {
    const { clock, det } = setup();
    await clock.advance(20 * 60_000);
    det.watch('tray', 2, 'streaming');
    expect(det.report().ok).toBe(true);
    await clock.advance(10_000);
    expect(det.report().ok).toBe(true);
    await clock.advance(1);
    expect(det.report().ok).toBe(false);
  });

  it('a stopped camera that should stream is a stall; an unwatched one is forgotten', () => {
    const { det } = setup();
    det.watch('tray', 2, 'stopped');
    expect(det.report()).toMatchObject({ ok: false, reason: 'camera tray: stopped' });
    det.unwatch('tray');
    expect(det.report()).toEqual({ ok: true, verdict: 'progressing', cameras: {} });
  });

  it('waits during an engine build, and calls it stalled past its limit', async () => {
    const { clock, det } = setup(10_000, 60_000);
    det.watch('tray', 2, 'streaming');
    det.progress('tray');
    det.buildStarted('tensorrt');
    await clock.advance(30_000);
    let r = det.report();
    expect(r).toMatchObject({ ok: true, verdict: 'waiting', engineBuild: { runningMs: 30_000, limitMs: 60_000, what: 'tensorrt' } });
    expect(r.reason).toBe('engine build (tensorrt) running for 30 s; camera tray: no result for 30 s while the engine builds');
    // Exactly at the limit the build is still waited for; one ms past it, it is hung.
    await clock.advance(30_000);
    expect(det.report()).toMatchObject({ ok: true, verdict: 'waiting', engineBuild: { runningMs: 60_000 } });
    await clock.advance(1);
    r = det.report();
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('engine build (tensorrt) running for 60 s, over its limit of 60 s');
    det.buildEnded();
    expect(det.report().engineBuild).toBeUndefined();
  });

  it('one stalled camera makes the whole pipeline stalled; the reason names it', async () => {
    const { clock, det } = setup();
    det.watch('a', 2, 'streaming');
    det.watch('b', 2, 'streaming');
    det.watch('c', 2, 'backoff');
    await clock.advance(11_000);
    det.progress('a');
    const r = det.report();
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('camera b: no result for 11 s (limit 10 s)');
    expect(Object.fromEntries(Object.entries(r.cameras).map(([k, v]) => [k, v.verdict]))).toEqual({
      a: 'progressing',
      b: 'stalled',
      c: 'waiting',
    });
  });

  it('takes new limits live', async () => {
    const { clock, det } = setup();
    det.watch('tray', 2, 'streaming');
    det.progress('tray');
    await clock.advance(3_000);
    expect(det.report().ok).toBe(true);
    det.setLimits({ stallAfterMs: 2_000, engineBuildLimitMs: 60_000 });
    expect(det.report().ok).toBe(false);
  });
});
