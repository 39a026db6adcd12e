import { type Clock, systemClock } from './clock.js';
import type { Logger } from './log.js';

/**
 * One warning line per refused request (HTTP, commands), without a stack. A flood must not flood the journal too:
 * past `burst` lines in a second per reason, lines are counted instead and the count rides on the
 * next line written for that reason (`suppressed`).
 */
export class RefusalLog {
  private readonly windows = new Map<string, { startMs: number; lines: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
    private readonly burst = 10,
    private readonly msg = 'http request refused',
  ) {}

  note(reason: string, fields: Record<string, unknown> = {}): void {
    const now = this.clock.monotonic();
    let w = this.windows.get(reason);
    if (!w || now - w.startMs >= 1000) {
      const suppressed = w?.suppressed ?? 0;
      w = { startMs: now, lines: 0, suppressed: 0 };
      this.windows.set(reason, w);
      if (suppressed) fields = { ...fields, suppressed };
    }
    if (w.lines >= this.burst) {
      w.suppressed++;
      return;
    }
    w.lines++;
    this.log.warn({ reason, ...fields }, this.msg);
  }
}
