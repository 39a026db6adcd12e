import type { ChannelStatus } from '../channel/channel.js';
import type { Clock } from '../clock.js';
import type { ModelStatus } from '../inference/model-service.js';
import type { StageStatus } from '../inference/stages.js';
import type { JournalStats } from '../journal/journal.js';
import type { Phase } from '../lifecycle.js';
import type { MqttState } from '../publish/client.js';
import type { OutboxStats } from '../publish/outbox.js';
import { statusPayload } from '../publish/payload.js';
import type { CameraStateName, DaemonStatus, RolloutState, StatusPayload } from '../publish/schemas.js';
import type { ReloadReport } from '../reload.js';
import { VERSION } from '../version.js';
import type { EventHubStats } from './events.js';
import type { PreviewStats } from './preview.js';
import type { StallReport } from './stall.js';

/** The components the status reads; each read is a plain look at its state. */
export interface StatusSources {
  lifecycle: { readonly phase: Phase };
  reloads: { readonly config: { source: string }; readonly last: ReloadReport | undefined };
  model: { status(): ModelStatus | null };
  /** Pipeline stage models, when some camera runs a pipeline. */
  stages?: { status(): StageStatus[] };
  messaging: { state(): MqttState; outboxStats(): OutboxStats | undefined };
  journal: { readonly isOpen: boolean; stats(): JournalStats; oldestPendingMs(): number | undefined };
  /** Every enabled camera's channel; only started ones have a state worth showing. */
  cameras: readonly { readonly name: string; readonly started: boolean; readonly state: CameraStateName; status(): ChannelStatus }[];
  health(): StallReport;
  systemd: { readonly watchdogUsec: number | undefined; readonly counts: { watchdog: number; withheld: number; extended: number } };
  /** The model rollout (cmd/model/*), when enabled. */
  rollout?: { status(): RolloutState };
  /** The model rollout to pipeline stages, by "<pipeline>/<stage>". */
  stageRollouts?: { stageStatus(): Record<string, RolloutState> };
  /** The HTTP endpoint, when enabled. */
  http?: { readonly address: { host: string; port: number } | undefined };
  /** The kiosk's live streams (GET /events, GET /preview.mjpeg), when HTTP is enabled. */
  streams?: {
    events: { stats(): EventHubStats; following(camera: string): number };
    preview: { stats(): PreviewStats; cameraStats(camera: string): { viewers: number; dropped: number } };
  };
}

/**
 * What the daemon says about itself, from one place: GET /status and the `status` command (the
 * document of schemas/daemon-status.schema.json), the retained MQTT status (birth, `stopped`, and
 * republished on camera state changes: schemas/status.schema.json, from the same reads), and the
 * one-line STATUS= that systemd shows.
 */
export class StatusReporter {
  private readonly deviceId: string;
  private readonly clock: Clock;
  private readonly src: StatusSources;
  /** Monotonic: uptime does not follow the wall clock when NTP or the RTC steps it. */
  private readonly startedAtMono: number;

  constructor(opts: { deviceId: string; clock: Clock; sources: StatusSources }) {
    this.deviceId = opts.deviceId;
    this.clock = opts.clock;
    this.src = opts.sources;
    this.startedAtMono = opts.clock.monotonic();
  }

  status(): DaemonStatus {
    const s = this.src;
    const model = s.model.status();
    const cache = model?.engineCache;
    return {
      v: 1,
      deviceId: this.deviceId,
      version: VERSION,
      state: s.lifecycle.phase,
      uptimeSec: this.uptimeSec(),
      config: s.reloads.config.source,
      model: model && { ...model, engineCache: cache ? { ...cache, parts: { ...cache.parts, gpu: { ...cache.parts.gpu } } } : null },
      ...(s.stages?.status().length ? { stages: s.stages.status() } : {}),
      mqtt: { ...s.messaging.state(), outbox: s.messaging.outboxStats() ?? null },
      journal: s.journal.isOpen ? s.journal.stats() : null,
      cameras: Object.fromEntries(this.started().map((c) => [c.name, c.status()])),
      health: s.health(),
      reload: s.reloads.last ?? null,
      systemd: { watchdogUsec: s.systemd.watchdogUsec ?? null, ...s.systemd.counts },
      rollout: s.rollout?.status() ?? null,
      ...(s.stageRollouts && Object.keys(s.stageRollouts.stageStatus()).length ? { stageRollouts: s.stageRollouts.stageStatus() } : {}),
      http: s.http?.address ?? null,
      streams: this.streams(),
    };
  }

  /** Per endpoint (since start), and per started camera: the streams carrying it now, its preview viewers dropped. */
  private streams(): DaemonStatus['streams'] {
    const st = this.src.streams;
    if (!st) return null;
    const cameras = this.started().map((c) => {
      const p = st.preview.cameraStats(c.name);
      return [c.name, { events: st.events.following(c.name), preview: p.viewers, previewDropped: p.dropped }] as const;
    });
    return { events: st.events.stats(), preview: st.preview.stats(), cameras: Object.fromEntries(cameras) };
  }

  /**
   * The retained status message: online (birth, on changes, and every mqtt.statusIntervalSec) or
   * stopped (clean exit). What a fleet view needs of each device: `edge-inferd fleet` reads it.
   */
  message(state: 'online' | 'stopped'): StatusPayload {
    const info = this.src.model.status();
    const cameras = this.started();
    const now = this.clock.now();
    return statusPayload(
      state,
      this.deviceId,
      {
        version: VERSION,
        ...(info ? { model: { name: info.name, version: info.version, sha256: info.sha256 }, provider: info.provider } : {}),
        cameras: this.src.cameras.map((c) => c.name),
        cameraState: Object.fromEntries(cameras.map((c) => [c.name, c.state])),
        uptimeSec: this.uptimeSec(),
        ...(this.src.journal.isOpen ? { journal: this.journalDepth(now) } : {}),
        lastError: this.lastError(),
      },
      now,
    );
  }

  private uptimeSec(): number {
    return Math.max(0, Math.round((this.clock.monotonic() - this.startedAtMono) / 1000));
  }

  private journalDepth(now: number): NonNullable<StatusPayload['journal']> {
    const j = this.src.journal;
    const oldest = j.oldestPendingMs();
    return {
      pending: j.stats().pending,
      oldestPendingAgeSec: oldest === undefined ? null : Math.max(0, Math.round((now - oldest) / 100) / 10),
    };
  }

  /** The newest error a started camera reports, else the journal's write failure, else null. */
  private lastError(): StatusPayload['lastError'] {
    let newest: NonNullable<StatusPayload['lastError']> | null = null;
    for (const c of this.started()) {
      const e = c.status().lastError;
      if (e && (!newest || e.atMs > (newest.atMs ?? 0)))
        newest = { where: `camera ${c.name}`, code: e.code, message: e.message, atMs: e.atMs };
    }
    const journalError = this.src.messaging.outboxStats()?.lastJournalError;
    return newest ?? (journalError ? { where: 'journal', code: 'JOURNAL_WRITE', message: journalError } : null);
  }

  private started() {
    return this.src.cameras.filter((c) => c.started);
  }

  /** systemd's STATUS= line. */
  line(): string {
    const s = this.src;
    const cams = this.started();
    const streaming = cams.filter((c) => c.state === 'streaming').length;
    const info = s.model.status();
    const phase = s.lifecycle.phase;
    const reason = phase === 'running' ? s.health().reason : undefined;
    const model = info ? `${info.name} on ${info.provider}` : 'no model';
    const mqtt = s.messaging.state().connected ? 'mqtt connected' : 'mqtt not connected';
    return `${phase}: ${streaming}/${cams.length} cameras streaming, ${model}, ${mqtt}${reason ? `; ${reason}` : ''}`;
  }
}
