import type { Clock, Timer } from '../clock.js';

/** A source of uniform numbers in [0, 1): Math.random in the daemon, a fixed sequence in tests. */
export type RandomSource = () => number;

/**
 * The wait before reconnect attempt `attempt` (0 for the first after a loss), in ms: "full jitter",
 * uniform in [0, min(maxMs, minMs * 2^attempt)]. The cap doubles as in a plain exponential
 * backoff, but each device draws its own point under it, so a fleet that lost its broker at the
 * same instant does not come back in step (a plain backoff sends every kiosk at 1 s, 3 s, 7 s ...
 * after the loss, all in the same few milliseconds).
 */
export function fullJitterMs(attempt: number, minMs: number, maxMs: number, random: RandomSource): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  const r = random();
  return Math.floor(cap * (r >= 0 && r < 1 ? r : 0));
}

/**
 * Schedules the reconnect attempts of one connection on the injected clock: one attempt armed at a
 * time, the wait drawn by fullJitterMs from the failures since the last success. mqtt.js's own
 * fixed reconnectPeriod is off (0); the connection calls `schedule` when it loses the broker or an
 * attempt fails, and `connected` when an attempt succeeds.
 */
export class ReconnectScheduler {
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private timer: Timer | undefined;
  private attempt = 0;

  constructor(opts: { minMs: number; maxMs: number; clock: Clock; random?: RandomSource }) {
    this.minMs = Math.max(0, opts.minMs);
    this.maxMs = Math.max(this.minMs, opts.maxMs);
    this.clock = opts.clock;
    this.random = opts.random ?? Math.random;
  }

  /** Whether an attempt is armed. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** Attempts scheduled since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /**
   * Arms the next attempt and returns its wait in ms; an attempt already armed stays as it is
   * (a failure reports itself twice: as an error and as a closed socket) and undefined is returned.
   */
  schedule(attempt: () => void): number | undefined {
    if (this.timer !== undefined) return undefined;
    const waitMs = fullJitterMs(this.attempt, this.minMs, this.maxMs, this.random);
    this.attempt++;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      attempt();
    }, waitMs);
    return waitMs;
  }

  /** An attempt succeeded: the next loss starts again from the smallest cap. */
  connected(): void {
    this.attempt = 0;
  }

  /** Stops the armed attempt (the connection is closing). */
  cancel(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
