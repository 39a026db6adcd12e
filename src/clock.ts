/**
 * The daemon's one clock: wall time, monotonic time and timers. `main` builds `systemClock` and
 * passes it down to every component; tests pass a manual clock (test/helpers/clock.ts) and move
 * time on themselves instead of sleeping.
 *
 * Wall time (`now`) is for what a human or another machine reads: payload timestamps, journal rows,
 * "last result at". Monotonic time (`monotonic`) is for measuring intervals (policies, stall
 * limits, backoff): it never jumps when NTP sets the wall clock on a device that booted without it.
 */
export interface Clock {
  /** Wall time, ms since the epoch. */
  now(): number;
  /** Monotonic time in ms from an arbitrary origin; only differences mean anything. */
  monotonic(): number;
  /** A one-off wait keeps the process alive, as Node's does (a camera waiting to reconnect). */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Periodic background work (stats, sweeps, sampling) never keeps the process alive on its own. */
  setInterval(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer | undefined): void;
  clearInterval(timer: Timer | undefined): void;
}

/** An opaque timer handle of a Clock. */
export interface Timer {
  readonly __timer: unique symbol;
}

type Native = ReturnType<typeof setTimeout>;
const toTimer = (t: Native): Timer => t as unknown as Timer;
const fromTimer = (t: Timer | undefined): Native | undefined => t as unknown as Native | undefined;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => toTimer(setTimeout(fn, ms)),
  setInterval: (fn, ms) => toTimer(setInterval(fn, ms).unref()),
  clearTimeout: (t) => clearTimeout(fromTimer(t)),
  clearInterval: (t) => clearInterval(fromTimer(t)),
};

/**
 * `clock.now()` minus CLOCK_MONOTONIC (the clock of `process.hrtime` and of the capture addon's
 * frame times), in ms, to within microseconds. Date.now() counts whole milliseconds, so a plain
 * difference is up to 1 ms short and every frame time converted with it up to 1 ms early: the
 * offset is read where the wall clock's millisecond turns over (about 1 ms spent once). A
 * turn-over seen across a preemption is only known to within the time the thread was away: it
 * spins on for a narrow one (a busy machine preempts it again and again: up to 50 turn-overs or
 * `spinMs`), else takes the narrowest seen. A clock that does not move within 2 ms (a test's)
 * gives the plain difference.
 */
export function wallMinusMonotonicMs(clock: Clock, spinMs = 200): number {
  const stillMs = 2;
  const ms = () => Number(process.hrtime.bigint()) / 1e6;
  // Each read of now() between two of the monotonic clock: a preemption next to it shows as a wide bracket.
  let prev = { before: ms(), now: clock.now() };
  const plain = prev.now - prev.before;
  const start = prev.before;
  let best: { offset: number; within: number } | undefined;
  let turns = 0;
  for (;;) {
    const before = ms();
    const now = clock.now();
    const after = ms();
    if (now !== prev.now) {
      // The millisecond turned over after the last read of now() and by this one: exactly `now` then.
      const within = after - prev.before;
      turns++;
      if (!best || within < best.within) best = { offset: now - (prev.before + after) / 2, within };
      if (within < 0.05) break;
    }
    prev = { before, now };
    // A clock that has not moved in 2 ms never will (a test's).
    if (best ? turns >= 50 || after - start > spinMs : after - start > stillMs) break;
  }
  return best ? best.offset : plain;
}

/** Resolves after `ms` on `clock`'s timers (so a manual clock decides when). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** Resolves after `ms`, or as soon as `other` settles, whichever is first; the timer is cleared. */
export async function sleepUnless(clock: Clock, ms: number, other: Promise<unknown>): Promise<void> {
  let timer: Timer | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, ms))),
      other.then(
        () => undefined,
        () => undefined,
      ),
    ]);
  } finally {
    clock.clearTimeout(timer);
  }
}
