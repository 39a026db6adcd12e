import { type Clock, systemClock, type Timer } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { StallReport } from './stall.js';

/**
 * The daemon's side of Type=notify: READY, STATUS, WATCHDOG, EXTEND_TIMEOUT_USEC, RELOADING and
 * STOPPING. Watchdog pings go out only while the stall detector says the pipeline progresses or
 * waits on purpose; when it stalls the pings stop and systemd restarts the service.
 */

export interface NotifierOptions {
  /** Sends one notification; returns false when there is no notify socket. */
  send: (state: string) => boolean;
  /** The health verdict (a pure read), looked at on every tick. */
  check: () => StallReport;
  /** One human line for STATUS=. */
  statusLine: () => string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Tick period when there is no watchdog (STATUS updates, start-up extensions). */
  idleTickMs?: number;
  clock?: Clock;
}

/** The watchdog period systemd asked for, in µs, or undefined when it is off or meant for another PID. */
export function watchdogUsec(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec;
}

/** CLOCK_MONOTONIC in µs, what MONOTONIC_USEC= wants (libuv's hrtime reads CLOCK_MONOTONIC). */
export const monotonicUsec = (): bigint => process.hrtime.bigint() / 1000n;

export class SystemdNotifier {
  private readonly opts: NotifierOptions;
  readonly watchdogUsec: number | undefined;
  readonly tickMs: number;
  private timer: Timer | undefined;
  private readonly clock: Clock;
  private lastStatus = '';
  private stalledReason: string | undefined;
  private sendFailed = false;
  private stopping = false;
  /** Watchdog pings start with READY=1; before it, systemd's start timeout is what guards us. */
  private isReady = false;
  /** Pings sent, and ticks on which one was withheld (tests and /status). */
  readonly counts = { watchdog: 0, withheld: 0, extended: 0 };

  constructor(opts: NotifierOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.watchdogUsec = watchdogUsec(opts.env);
    const idle = opts.idleTickMs ?? 5000;
    this.tickMs = this.watchdogUsec ? Math.max(50, Math.min(idle, Math.floor(this.watchdogUsec / 2000))) : idle;
  }

  /** Starts ticking. Call it before the long start-up steps so a model build can extend the start timeout. */
  start(): void {
    if (this.timer) return;
    this.timer = this.clock.setInterval(() => this.tick(), this.tickMs);
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  ready(): void {
    this.isReady = true;
    this.lastStatus = this.opts.statusLine();
    this.notify(`READY=1\nSTATUS=${this.lastStatus}`);
    this.tick();
  }

  reloading(): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}\nSTATUS=reloading configuration`);
  }

  /** After a reload, successful or not: the daemon runs again (READY=1) with this status. */
  reloaded(status: string): void {
    this.lastStatus = status;
    this.notify(`READY=1\nSTATUS=${status}`);
  }

  stoppingNow(): void {
    this.stopping = true;
    this.notify('STOPPING=1\nSTATUS=stopping');
  }

  /** One watchdog decision; the timer calls it, tests may too. */
  tick(): void {
    if (this.stopping) return;
    let report: StallReport;
    try {
      report = this.opts.check();
    } catch (err) {
      this.opts.log.error({ err: errorMessage(err) }, 'stall check failed; withholding the watchdog ping');
      return;
    }
    const lines: string[] = [];
    if (report.ok) {
      if (this.stalledReason !== undefined) this.opts.log.info('pipeline progresses again; watchdog pings resume');
      this.stalledReason = undefined;
      if (this.watchdogUsec && this.isReady) lines.push('WATCHDOG=1');
      // A build during start-up or reload must not trip TimeoutStartSec; keep pushing the deadline
      // a few ticks ahead while it runs. A hung build stops being extended once the detector gives up on it.
      if (report.engineBuild) {
        lines.push(`EXTEND_TIMEOUT_USEC=${this.tickMs * 3 * 1000}`);
        this.counts.extended++;
      }
      const status = this.opts.statusLine();
      if (status !== this.lastStatus) lines.push(`STATUS=${status}`);
      this.lastStatus = status;
    } else {
      if (report.reason !== this.stalledReason) {
        this.opts.log.error(
          { reason: report.reason, watchdog: this.watchdogUsec !== undefined },
          'pipeline stalled; withholding watchdog pings',
        );
        lines.push(`STATUS=stalled: ${report.reason}`);
        this.lastStatus = `stalled: ${report.reason}`;
      }
      this.stalledReason = report.reason;
      this.counts.withheld++;
    }
    if (lines.length) {
      if (lines[0] === 'WATCHDOG=1') this.counts.watchdog++;
      this.notify(lines.join('\n'));
    }
  }

  private notify(state: string): void {
    try {
      this.opts.send(state);
      this.sendFailed = false;
    } catch (err) {
      // Once per failure streak: a missing socket would otherwise log every tick.
      if (!this.sendFailed) this.opts.log.warn({ err: errorMessage(err) }, 'sd_notify failed');
      this.sendFailed = true;
    }
  }
}
