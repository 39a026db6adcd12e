import { describe, expect, it } from 'vitest';
import { fullJitterMs, ReconnectScheduler } from '../../src/publish/reconnect.js';
import { ManualClock } from '../helpers/clock.js';

/** A random source that returns the given numbers in turn (then the last one). */
const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[Math.min(i++, xs.length - 1)];
};

describe('full jitter', () => {
  it('draws each wait under a cap that doubles from the minimum up to the maximum', () => {
    // r = 0.5: half of each cap; caps 1000, 2000, 4000, 8000, then 10000 (the maximum) for good.
    expect([0, 1, 2, 3, 4, 5, 40].map((a) => fullJitterMs(a, 1000, 10_000, () => 0.5))).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000]);
    // The ends of the interval: 0 and just under the cap.
    expect(fullJitterMs(3, 1000, 10_000, () => 0)).toBe(0);
    expect(fullJitterMs(3, 1000, 10_000, () => 0.9999)).toBe(7999);
  });

  it('a random source out of [0, 1) (NaN, 1, negative) waits 0 rather than past the cap', () => {
    for (const r of [Number.NaN, 1, -0.5, 7]) expect(fullJitterMs(2, 1000, 10_000, () => r)).toBe(0);
  });

  it('spreads a fleet: 1000 draws of one attempt fill its interval evenly', () => {
    // A seeded linear congruential generator, so the figures are fixed.
    let x = 12345;
    const lcg = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 1000; i++) buckets[Math.floor(fullJitterMs(2, 250, 10_000, lcg) / 100)]++;
    // Cap 1000 ms: ten 100 ms buckets of ~100 each; none empty, none a spike.
    for (const b of buckets) {
      expect(b).toBeGreaterThan(60);
      expect(b).toBeLessThan(140);
    }
  });
});

describe('ReconnectScheduler on the manual clock', () => {
  it('arms one attempt at a time, grows the cap with each failure and starts again after a success', async () => {
    const clock = new ManualClock();
    const s = new ReconnectScheduler({ minMs: 1000, maxMs: 4000, clock, random: seq(0.5, 0.25, 0.75, 0.5, 0.9) });
    let attempts = 0;
    const attempt = () => attempts++;

    expect(s.schedule(attempt)).toBe(500); // cap 1000 * 0.5
    // A second report of the same failure (error, then close) does not arm another attempt.
    expect(s.schedule(attempt)).toBeUndefined();
    expect(clock.pending).toBe(1);
    await clock.advance(499);
    expect(attempts).toBe(0);
    await clock.advance(1);
    expect(attempts).toBe(1);
    expect(s.pending).toBe(false);

    expect(s.schedule(attempt)).toBe(500); // cap 2000 * 0.25
    await clock.advance(500);
    expect(s.schedule(attempt)).toBe(3000); // cap 4000 * 0.75
    await clock.advance(3000);
    expect(attempts).toBe(3);
    expect(s.attempts).toBe(3);

    s.connected();
    expect(s.schedule(attempt)).toBe(500); // back to cap 1000 * 0.5
    s.cancel();
    await clock.advance(10_000);
    expect(attempts).toBe(3);
    expect(clock.pending).toBe(0);
  });
});
