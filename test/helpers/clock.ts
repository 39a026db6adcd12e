import type { Clock, Timer } from '../../src/clock.js';

interface Pending {
  id: number;
  at: number;
  every?: number;
  fn: () => void;
}

/**
 * A clock that moves only when the test says so. `advance(ms)` fires every timer due within `ms`,
 * in time order, and lets the promises they settle run between two timers, so code that awaits a
 * sleep and then sets the next one is followed step by step.
 *
 * Wall time starts at `startMs` (a fixed date by default, so timestamps are predictable) and
 * monotonic time at 0; both move together.
 */
export class ManualClock implements Clock {
  private mono = 0;
  private readonly wallStart: number;
  private seq = 0;
  private readonly timers = new Map<number, Pending>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.wallStart = startMs;
  }

  now(): number {
    return this.wallStart + this.mono;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(timer: Timer | undefined): void {
    if (timer !== undefined) this.timers.delete(timer as unknown as number);
  }

  clearInterval(timer: Timer | undefined): void {
    this.clearTimeout(timer);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** When the next timer is due (monotonic ms), or undefined when none waits. */
  get nextAt(): number | undefined {
    let at: number | undefined;
    for (const t of this.timers.values()) if (at === undefined || t.at < at) at = t.at;
    return at;
  }

  /** Moves time on by `ms`, firing each timer due on the way at its own time. */
  async advance(ms: number): Promise<void> {
    const end = this.mono + ms;
    await flush();
    for (;;) {
      const next = this.due(end);
      if (!next) break;
      this.mono = Math.max(this.mono, next.at);
      if (next.every !== undefined) next.at += next.every;
      else this.timers.delete(next.id);
      next.fn();
      await flush();
    }
    this.mono = end;
    await flush();
  }

  /** Moves time to the next timer and fires it (and any due at the same instant). */
  async next(): Promise<void> {
    const at = this.nextAt;
    if (at === undefined) throw new Error('ManualClock.next(): no timer is pending');
    await this.advance(at - this.mono);
  }

  private due(end: number): Pending | undefined {
    let best: Pending | undefined;
    for (const t of this.timers.values()) if (t.at <= end && (!best || t.at < best.at || (t.at === best.at && t.id < best.id))) best = t;
    return best;
  }

  private add(fn: () => void, ms: number, every?: number): Timer {
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.mono + Math.max(0, ms), every, fn });
    return id as unknown as Timer;
  }
}

/** Lets pending promise callbacks (and the ones they queue) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
