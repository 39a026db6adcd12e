import type { Clock, Timer } from '../../src/clock.js';

interface Pending {
  id: number;
  at: number;
  /** The delay it was set with. */
  ms: number;
  every?: number;
  fn: () => void;
}

/** A timer as `waitForTimer` reports it: the delay it was set with and when it is due (monotonic ms). */
export interface TimerInfo {
  ms: number;
  at: number;
  repeating: boolean;
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
  private watchers: { pred: (t: TimerInfo) => boolean; resolve: (t: TimerInfo) => void }[] = [];

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

  /**
   * Resolves with the first timer matching `pred` that is pending now or set from now on: the event
   * a test waits for when the code under test reacts to real I/O by arming a timer (a backoff
   * after a failed open, say), so the test neither sleeps nor polls.
   */
  waitForTimer(pred: (t: TimerInfo) => boolean = () => true): Promise<TimerInfo> {
    for (const t of [...this.timers.values()].sort((a, b) => a.at - b.at || a.id - b.id)) {
      const info = infoOf(t);
      if (pred(info)) return Promise.resolve(info);
    }
    return new Promise((resolve) => this.watchers.push({ pred, resolve }));
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
    const t: Pending = { id, at: this.mono + Math.max(0, ms), ms, every, fn };
    this.timers.set(id, t);
    if (this.watchers.length) {
      const info = infoOf(t);
      const hit = this.watchers.filter((w) => w.pred(info));
      this.watchers = this.watchers.filter((w) => !hit.includes(w));
      for (const w of hit) w.resolve(info);
    }
    return id as unknown as Timer;
  }
}

function infoOf(t: Pending): TimerInfo {
  return { ms: t.ms, at: t.at, repeating: t.every !== undefined };
}

/** Lets pending promise callbacks (and the ones they queue) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
