import { describe, expect, it } from 'vitest';
import { StatusReporter, type StatusSources } from '../../src/health/status.js';
import { ManualClock } from '../helpers/clock.js';

/** Issue 21 row 15: uptimeSec counts on the monotonic clock; the wall clock stepping back an hour (NTP, RTC) does not reset it. */

/** A ManualClock whose wall clock can be stepped, as NTP does, while the monotonic clock goes on. */
class SteppingClock extends ManualClock {
  step = 0;
  override now(): number {
    return super.now() + this.step;
  }
}

describe('uptime', () => {
  it('keeps counting when the wall clock steps back an hour', async () => {
    const clock = new SteppingClock();
    const sources = {
      lifecycle: { phase: 'running' },
      reloads: { config: { source: 'test' }, last: undefined },
      model: { status: () => null },
      messaging: { state: () => ({ connected: true }), outboxStats: () => undefined },
      journal: { isOpen: false, stats: () => ({}), oldestPendingMs: () => undefined },
      cameras: [],
      health: () => ({ ok: true }),
      systemd: { watchdogUsec: undefined, counts: { watchdog: 0, withheld: 0, extended: 0 } },
    } as unknown as StatusSources;
    const status = new StatusReporter({ deviceId: 'kiosk-1', clock, sources });
    await clock.advance(90_000);
    clock.step = -3_600_000;
    await clock.advance(10_000);
    expect(status.status().uptimeSec).toBe(100);
    expect(status.message('online').uptimeSec).toBe(100);
  });
});
