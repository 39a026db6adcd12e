import { describe, expect, it } from 'vitest';
import { systemClock, wallMinusMonotonicMs } from '../../src/clock.js';
import { ManualClock } from '../helpers/clock.js';

/**
 * Frame times come from CLOCK_MONOTONIC and are turned into wall time with one offset
 * (src/capture/gst-camera.ts): Date.now() counts whole milliseconds, so a plain difference would
 * put every frame up to 1 ms early, by a different amount in each run (latency read 0-1 ms long).
 */
describe('wallMinusMonotonicMs', () => {
  it('gives the same offset to within 0.2 ms each time (a plain Date.now() difference spreads over about 1 ms)', () => {
    const offsets = Array.from({ length: 20 }, () => wallMinusMonotonicMs(systemClock));
    expect(Math.max(...offsets) - Math.min(...offsets)).toBeLessThan(0.2);
    // and it is the offset: wall time now, from the monotonic clock, lies within the whole
    // milliseconds Date.now() read either side of it (bracketed, so a preemption cannot fail it)
    const offset = wallMinusMonotonicMs(systemClock);
    const before = Date.now();
    const wall = offset + Number(process.hrtime.bigint()) / 1e6;
    const after = Date.now();
    expect(wall).toBeGreaterThanOrEqual(before - 0.2);
    expect(wall).toBeLessThan(after + 1.2);
  });

  it('falls back to the plain difference, after 2 ms, for a clock that does not move', () => {
    const clock = new ManualClock();
    const t0 = process.hrtime.bigint();
    const offset = wallMinusMonotonicMs(clock);
    const spentMs = Number(process.hrtime.bigint() - t0) / 1e6;
    // Well under the 200 ms it would spin for a clock that moves (a preempted test process may lose tens of ms).
    expect(spentMs).toBeLessThan(150);
    expect(Math.abs(offset + Number(t0) / 1e6 - clock.now())).toBeLessThan(50);
  });
});
