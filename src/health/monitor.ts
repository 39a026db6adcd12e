import type { LiveReloadable } from '../component.js';
import type { Config } from '../config/schema.js';
import type { JournalMode } from '../journal/journal.js';
import type { Phase } from '../lifecycle.js';
import type { HealthReport, ReadyReport } from './server.js';
import type { StallDetector, StallReport } from './stall.js';

/** The components readiness looks at; each read is a plain look at its state. */
export interface ReadinessSource {
  model: { readonly info: { name: string; version: string; provider: string } | undefined; readonly inUse?: boolean };
  /** Every enabled camera's channel. */
  cameras: readonly { readonly name: string; readonly started: boolean; readonly camera: { status(): { state: string } } }[];
  messaging: {
    state(): { connected: boolean; url: string; lastError?: string };
    /** queued + inflight: what waits for the broker (what /metrics reports as the journal depth). */
    outboxStats(): { journalAccepting: boolean; lastJournalError?: string; queued: number; inflight: number } | undefined;
  };
  journal: { readonly isOpen: boolean; stats(): { mode: JournalMode; pending: number; writable: boolean; lastWriteError?: string } };
}

/**
 * /healthz, /readyz, the watchdog and the `healthy` metric read their verdicts here. Nothing here
 * changes state: the stall detector is told what happens by the cameras and the engine, the
 * lifecycle tells the phase.
 */
export class HealthMonitor implements LiveReloadable<Config['health']> {
  readonly name = 'health';
  readonly liveKeys = ['health.stallAfterSec', 'health.engineBuildTimeoutSec'];
  private phase: Phase = 'stopped';
  private readonly detector: StallDetector;
  private readonly source: ReadinessSource;

  constructor(opts: { detector: StallDetector; source: ReadinessSource }) {
    this.detector = opts.detector;
    this.source = opts.source;
  }

  slice(config: Config): Config['health'] {
    return config.health;
  }

  apply(health: Config['health']): void {
    this.detector.setLimits({ stallAfterMs: health.stallAfterSec * 1000, engineBuildLimitMs: health.engineBuildTimeoutSec * 1000 });
  }

  setPhase(phase: Phase): void {
    this.phase = phase;
  }

  /**
   * The stall detector's verdict. A paused camera waits on purpose. Starting counts as waiting
   * (systemd's start timeout guards it); stopping and stopped are not healthy.
   */
  health(): StallReport & HealthReport {
    const report = this.detector.report();
    if (this.phase === 'running') return report;
    if (this.phase === 'starting' && report.ok)
      return { ...report, verdict: 'waiting', reason: report.reason ? `starting: ${report.reason}` : 'starting' };
    return { ...report, ok: false, verdict: 'stalled', reason: report.reason && this.phase === 'starting' ? report.reason : this.phase };
  }

  ready(): ReadyReport {
    const checks: ReadyReport['checks'] = {};
    const src = this.source;
    const info = src.model.info;
    checks.model = info
      ? { ok: true, detail: `${info.name} ${info.version} on ${info.provider}` }
      : src.model.inUse === false
        ? { ok: true, detail: 'not loaded: every camera runs a pipeline' }
        : { ok: false, detail: 'not loaded' };
    for (const cam of src.cameras) {
      const state = cam.started ? cam.camera.status().state : undefined;
      checks[`camera:${cam.name}`] = { ok: state === 'streaming', detail: state ?? 'not started' };
    }
    const mq = src.messaging.state();
    const outbox = src.messaging.outboxStats();
    const js = src.journal.isOpen ? src.journal.stats() : undefined;
    // Not accepting while its writes fail, whichever write failed last (an acknowledgement may fit where a result does not).
    const journal =
      js && outbox
        ? {
            accepting: outbox.journalAccepting && js.writable,
            // Not the journal's pending count: that keeps a message acknowledged since its last write.
            depth: outbox.queued + outbox.inflight,
            lastError: js.lastWriteError ?? outbox.lastJournalError,
          }
        : undefined;
    checks.journal = !journal
      ? { ok: false, detail: 'not open' }
      : js && js.mode !== 'read-write'
        ? {
            ok: false,
            detail:
              `${js.mode}: ${js.lastWriteError ?? 'no room to write it'}; results are published without being journaled while ` +
              'the broker is connected; opening it for writing is retried',
          }
        : journal.accepting
          ? { ok: true, detail: `accepting (${journal.depth} queued)` }
          : { ok: false, detail: `not accepting results: ${journal.lastError ?? 'the last write failed'}` };
    checks.mqtt = {
      ok: mq.connected,
      detail: mq.connected ? `connected to ${mq.url}` : `not connected to ${mq.url}${mq.lastError ? `: ${mq.lastError}` : ''}`,
    };
    // Results still go somewhere safe while the broker is away, if the journal takes them.
    if (!checks.mqtt.ok && journal?.accepting)
      checks.mqtt = { ok: true, detail: `${checks.mqtt.detail}; the journal holds results (${journal.depth} queued)` };
    return { ok: this.phase === 'running' && Object.values(checks).every((c) => c.ok), checks };
  }
}
