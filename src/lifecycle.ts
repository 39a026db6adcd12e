import type { Component } from './component.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';

export type Phase = 'stopped' | 'starting' | 'running' | 'stopping';

/**
 * Starts components in order and stops the ones that started in reverse. A stop() that arrives
 * while start() runs (SIGTERM during a model load or an engine build) lets the component that is
 * starting finish its step, starts nothing more, and stops what is up: start() then returns
 * without going on.
 */
export class Lifecycle {
  private current: Phase = 'stopped';
  private readonly components: readonly Component[];
  private readonly log: Logger;
  private readonly onPhase: (phase: Phase) => void;
  private started: Component[] = [];
  private starting: Promise<void> | undefined;
  private stopRequested = false;

  constructor(opts: { components: readonly Component[]; log: Logger; onPhase?: (phase: Phase) => void }) {
    this.components = opts.components;
    this.log = opts.log;
    this.onPhase = opts.onPhase ?? (() => undefined);
  }

  get phase(): Phase {
    return this.current;
  }

  /** Resolves once every component runs, or once a stop() during start has taken over. */
  async start(): Promise<void> {
    if (this.current !== 'stopped') return;
    this.stopRequested = false;
    this.setPhase('starting');
    this.starting = this.startAll();
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
    if (this.stopRequested) return;
    this.setPhase('running');
  }

  private async startAll(): Promise<void> {
    for (const c of this.components) {
      if (this.stopRequested) {
        this.log.info({ next: c.name }, 'stop requested during start: not starting the rest');
        return;
      }
      await c.start();
      this.started.push(c);
    }
  }

  async stop(): Promise<void> {
    if (this.current === 'stopped' || this.current === 'stopping') return;
    this.stopRequested = true;
    this.setPhase('stopping');
    // The component starting now (a model load cannot be interrupted) finishes first.
    await this.starting?.catch(() => undefined);
    for (const c of this.started.splice(0).reverse()) {
      try {
        await c.stop();
      } catch (err) {
        this.log.warn({ component: c.name, err: errorMessage(err) }, 'stop failed');
      }
    }
    this.setPhase('stopped');
  }

  private setPhase(phase: Phase): void {
    this.current = phase;
    this.onPhase(phase);
  }
}
