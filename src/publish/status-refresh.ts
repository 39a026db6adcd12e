import type { Clock, Timer } from '../clock.js';
import type { Component } from '../component.js';
import type { OutboxTransport } from './outbox.js';

/**
 * Republishes the retained status every `intervalMs` while connected, so a fleet view (`edge-inferd
 * fleet`, a dashboard on `+/status`) sees uptime, journal depth and the last error of every device
 * as of at most one interval ago, not as of its last connect. 0 turns it off (the status is then
 * published on connect, on camera state changes and on model swaps only).
 */
export class StatusRefresher implements Component {
  readonly name = 'status-refresh';
  private timer: Timer | undefined;

  constructor(
    private readonly opts: {
      intervalMs: number;
      topic: string;
      message: () => string;
      transport: Pick<OutboxTransport, 'connected' | 'publish'>;
      clock: Clock;
    },
  ) {}

  start(): void {
    if (this.opts.intervalMs <= 0 || this.timer) return;
    this.timer = this.opts.clock.setInterval(() => this.refresh(), this.opts.intervalMs);
  }

  private refresh(): void {
    const o = this.opts;
    if (!o.transport.connected) return;
    // Best effort: a status lost to a drop is replaced by the birth message at the reconnect.
    o.transport.publish(o.topic, o.message(), { qos: 1, retain: true }).catch(() => undefined);
  }

  stop(): void {
    this.opts.clock.clearInterval(this.timer);
    this.timer = undefined;
  }
}
