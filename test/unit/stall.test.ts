import { describe, expect, it } from 'vitest';
import { type CameraProgress, StallDetector } from '../../src/health/stall.js';

function setup(stallAfterMs = 10_000, engineBuildLimitMs = 60_000) {
  let t = 1_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const det = new StallDetector({ now: clock.now, stallAfterMs, engineBuildLimitMs });
  return { clock, det };
}

const cam = (over: Partial<CameraProgress> = {}): CameraProgress => ({ name: 'tray', state: 'streaming', fps: 2, ...over });

describe('StallDetector', () => {
  it('progresses while results arrive within max(10 s, 5 frame periods)', () => {
    const { clock, det } = setup();
    clock.advance(9_000);
    expect(det.check({ cameras: [cam()] })).toMatchObject({ ok: true, verdict: 'progressing' });
    const last = clock.advance(0);
    clock.advance(10_000);
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).verdict).toBe('progressing');
    clock.advance(1);
    const r = det.check({ cameras: [cam({ lastResultAtMs: last })] });
    expect(r).toMatchObject({ ok: false, verdict: 'stalled' });
    expect(r.reason).toBe('camera tray: no result for 10 s (limit 10 s)');
    expect(r.cameras.tray).toMatchObject({ verdict: 'stalled', idleMs: 10_001, limitMs: 10_000 });
  });

  it('gives slow cameras five frame periods', () => {
    const { clock, det } = setup();
    expect(det.limitFor(0.2)).toBe(25_000);
    expect(det.limitFor(30)).toBe(10_000);
    const last = clock.advance(0);
    det.check({ cameras: [cam({ fps: 0.2, lastResultAtMs: last })] });
    clock.advance(20_000);
    expect(det.check({ cameras: [cam({ fps: 0.2, lastResultAtMs: last })] }).ok).toBe(true);
    clock.advance(5_001);
    expect(det.check({ cameras: [cam({ fps: 0.2, lastResultAtMs: last })] }).ok).toBe(false);
  });

  it('treats connecting and backoff as waiting on purpose, however long', () => {
    const { clock, det } = setup();
    clock.advance(3_600_000);
    const r = det.check({ cameras: [cam({ state: 'backoff' }), cam({ name: 'door', state: 'connecting' })] });
    expect(r).toMatchObject({ ok: true, verdict: 'waiting' });
    expect(r.reason).toBe('camera tray: reconnecting (backoff); camera door: connecting');
  });

  it('a paused camera waits on purpose; after resuming it gets a full period', () => {
    const { clock, det } = setup();
    const last = clock.advance(0);
    det.check({ cameras: [cam({ lastResultAtMs: last })] });
    clock.advance(600_000);
    expect(det.check({ cameras: [cam({ state: 'paused', lastResultAtMs: last })] })).toMatchObject({ ok: true, verdict: 'waiting', reason: 'camera tray: paused' });
    det.check({ cameras: [cam({ lastResultAtMs: last })] });
    clock.advance(10_000);
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).ok).toBe(true);
    clock.advance(1);
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).ok).toBe(false);
  });

  it('restarts the clock when a camera comes back from backoff', () => {
    const { clock, det } = setup();
    const last = clock.advance(0);
    det.check({ cameras: [cam({ lastResultAtMs: last })] });
    clock.advance(5_000);
    det.check({ cameras: [cam({ state: 'backoff', lastResultAtMs: last })] });
    clock.advance(60_000);
    // Streaming again: the last result is 65 s old, but the camera has streamed only for 9 s.
    det.check({ cameras: [cam({ lastResultAtMs: last })] });
    clock.advance(9_000);
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).ok).toBe(true);
    clock.advance(1_001);
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).reason).toBe('camera tray: no result for 10 s (limit 10 s)');
  });

  it('a camera first seen late (after a long model build) gets a full period from then', () => {
    const { clock, det } = setup();
    clock.advance(20 * 60_000);
    expect(det.check({ cameras: [cam()] }).ok).toBe(true);
    clock.advance(10_000);
    expect(det.check({ cameras: [cam()] }).ok).toBe(true);
    clock.advance(1);
    expect(det.check({ cameras: [cam()] }).ok).toBe(false);
  });

  it('a stopped camera that should stream is a stall', () => {
    const { det } = setup();
    expect(det.check({ cameras: [cam({ state: 'stopped' })] })).toMatchObject({ ok: false, reason: 'camera tray: stopped' });
  });

  it('waits during an engine build, and calls it stalled past its limit', () => {
    const { clock, det } = setup(10_000, 60_000);
    const last = clock.advance(0);
    const build = { sinceMs: last, what: 'tensorrt' };
    det.check({ cameras: [cam({ lastResultAtMs: last })], engineBuild: build });
    clock.advance(30_000);
    let r = det.check({ cameras: [cam({ lastResultAtMs: last })], engineBuild: build });
    expect(r).toMatchObject({ ok: true, verdict: 'waiting', engineBuild: { runningMs: 30_000, limitMs: 60_000, what: 'tensorrt' } });
    expect(r.reason).toBe('engine build (tensorrt) running for 30 s; camera tray: no result for 30 s while the engine builds');
    clock.advance(30_001);
    r = det.check({ cameras: [cam({ lastResultAtMs: last })], engineBuild: build });
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('engine build (tensorrt) running for 60 s, over its limit of 60 s');
  });

  it('one stalled camera makes the whole pipeline stalled; the reason names it', () => {
    const { clock, det } = setup();
    const t0 = clock.advance(0);
    det.check({ cameras: [cam({ name: 'a' }), cam({ name: 'b' }), cam({ name: 'c', state: 'backoff' })] });
    clock.advance(11_000);
    const r = det.check({ cameras: [cam({ name: 'a', lastResultAtMs: clock.now() }), cam({ name: 'b', lastResultAtMs: t0 }), cam({ name: 'c', state: 'backoff' })] });
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('camera b: no result for 11 s (limit 10 s)');
    expect(Object.fromEntries(Object.entries(r.cameras).map(([k, v]) => [k, v.verdict]))).toEqual({ a: 'progressing', b: 'stalled', c: 'waiting' });
  });

  it('takes new limits live', () => {
    const { clock, det } = setup();
    const last = clock.advance(0);
    det.check({ cameras: [cam({ lastResultAtMs: last })] });
    clock.advance(3_000);
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).ok).toBe(true);
    det.setLimits({ stallAfterMs: 2_000, engineBuildLimitMs: 60_000 });
    expect(det.check({ cameras: [cam({ lastResultAtMs: last })] }).ok).toBe(false);
  });
});
