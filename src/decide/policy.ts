import { type Clock, systemClock } from '../clock.js';
import { ChangeTracker, StabilityTracker } from './stability.js';
import type { Decision, Observation, StableRule, StableState } from './types.js';

/**
 * Publish policies: which per-frame results go out on `<camera>/result`.
 * - every: each result;
 * - change: a result whose top-1 label differs from the previous frame's (the first one too);
 * - stable: the result of the frame on which a label becomes stable (once per stable episode);
 * - interval: at most one per `intervalSec`, measured on the clock's monotonic time.
 * A held-back result is still counted (inferred, heldBack, labels), and events are decided on
 * every frame whatever the policy.
 */
export type PolicyName = 'every' | 'change' | 'stable' | 'interval';

export interface PolicyConfig {
  policy: PolicyName;
  intervalSec: number;
  stable: StableRule;
}

export interface DecideOutcome {
  publish: boolean;
  /** In the order they happened: change, cleared, stable. */
  events: Decision[];
  /** The stable label after this frame, if any. */
  stable: StableState | undefined;
}

export interface DecideCounters {
  /** Results seen (published + heldBack). */
  inferred: number;
  published: number;
  heldBack: number;
  events: Record<Decision['type'], number>;
  /** Top-1 labels of every result seen, held back or not. */
  labels: Record<string, number>;
}

/** One camera's decide stage. */
export class CameraDecider {
  readonly config: PolicyConfig;
  private readonly clock: Clock;
  private readonly change = new ChangeTracker();
  private readonly stability: StabilityTracker;
  private lastPublishMs: number | undefined;
  private readonly c: DecideCounters = { inferred: 0, published: 0, heldBack: 0, events: { change: 0, stable: 0, cleared: 0 }, labels: {} };

  constructor(config: PolicyConfig, opts: { clock?: Clock } = {}) {
    this.config = config;
    this.clock = opts.clock ?? systemClock;
    this.stability = new StabilityTracker(config.stable);
  }

  observe(o: Observation): DecideOutcome {
    const changed = this.change.push(o);
    const events = changed ? [changed, ...this.stability.push(o)] : this.stability.push(o);
    const becameStable = events.some((e) => e.type === 'stable');
    const publish = this.shouldPublish(changed !== undefined, becameStable);
    this.c.inferred++;
    if (publish) this.c.published++;
    else this.c.heldBack++;
    this.c.labels[o.label] = (this.c.labels[o.label] ?? 0) + 1;
    this.count(events);
    return { publish, events, stable: this.stability.state };
  }

  /** Forgets history (a pause, a restart of the camera): the next frame is a `change` from nothing. */
  reset(atMs: number, reason: 'evidence' | 'paused'): Decision[] {
    this.change.reset();
    this.lastPublishMs = undefined;
    const events = this.stability.reset(atMs, reason);
    this.count(events);
    return events;
  }

  counters(): DecideCounters {
    return { ...this.c, events: { ...this.c.events }, labels: { ...this.c.labels } };
  }

  private count(events: Decision[]): void {
    for (const e of events) this.c.events[e.type]++;
  }

  private shouldPublish(changed: boolean, becameStable: boolean): boolean {
    switch (this.config.policy) {
      case 'every':
        return true;
      case 'change':
        return changed;
      case 'stable':
        return becameStable;
      case 'interval': {
        const now = this.clock.monotonic();
        const last = this.lastPublishMs;
        if (last !== undefined && now >= last && now - last < this.config.intervalSec * 1000) return false;
        this.lastPublishMs = now;
        return true;
      }
    }
  }
}
