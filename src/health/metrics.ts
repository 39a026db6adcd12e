import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CameraStatus } from '../capture/frame.js';
import type { PipelineRun } from '../inference/types.js';
import type { DeviceReading } from './device.js';

/**
 * Prometheus metrics. One Registry per App (never prom-client's global one), so several daemons in
 * one test process do not share counters. Values the components already count (camera frames,
 * loop results) are read at scrape time through `MetricsSource`; latencies are observed as
 * results arrive.
 */

export interface CameraCounts {
  name: string;
  status: CameraStatus;
  inferred: number;
  failures: number;
}

export interface MetricsSource {
  cameras(): CameraCounts[];
  model(): { name: string; version: string; provider: string } | undefined;
  mqttConnected(): boolean | undefined;
  /** The journal's outbox depth, evictions, write health and losses so far; undefined while there is no journal. */
  journal():
    | { depth: number; evictions: number; writable: boolean; writeFailures: number; lost: number; corruptMovedAside: number }
    | undefined;
  publishFailures(): number;
  /** 1 while the stall detector says the pipeline progresses or waits on purpose. */
  healthy(): boolean;
  device(): DeviceReading | undefined;
  /** The kiosk's streams (GET /events, GET /preview.mjpeg): open now, and since start refused at the limit and dropped. */
  streams?(): Record<'events' | 'preview', { clients: number; refused: number; dropped: number }>;
}

export type Stage = 'preprocess' | 'inference' | 'postprocess' | 'total';

const P = 'edge_inferd_';

/** A counter whose value another component owns: set from it at scrape time. */
function mirroredCounter(registry: Registry, name: string, help: string, values: () => [Record<string, string>, number][]): void {
  new Counter({
    name,
    help,
    labelNames: ['camera'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of values()) this.inc(labels, v);
    },
  });
}

export class Metrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<'camera' | 'stage'>;
  private readonly stageLatency: Histogram<'camera' | 'pipeline_stage'>;
  private readonly cropsPerFrame: Histogram<'camera'>;
  private readonly qualitySkipped: Counter<'camera' | 'reason'>;

  constructor(source: MetricsSource) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 10 });

    const perCamera = (pick: (c: CameraCounts) => number) => () =>
      source.cameras().map((c): [Record<string, string>, number] => [{ camera: c.name }, pick(c)]);
    mirroredCounter(
      r,
      `${P}frames_captured_total`,
      'Frames the camera source produced',
      perCamera((c) => c.status.received),
    );
    mirroredCounter(
      r,
      `${P}frames_dropped_total`,
      'Frames replaced by a newer one before inference took them (latest frame wins)',
      perCamera((c) => c.status.dropped),
    );
    mirroredCounter(
      r,
      `${P}frames_inferred_total`,
      'Frames that went through the model',
      perCamera((c) => c.inferred),
    );
    mirroredCounter(
      r,
      `${P}inference_failures_total`,
      'Frames on which inference failed',
      perCamera((c) => c.failures),
    );
    mirroredCounter(
      r,
      `${P}camera_errors_total`,
      'Camera errors (unreadable frames, disconnects)',
      perCamera((c) => c.status.errors),
    );

    new Gauge({
      name: `${P}camera_streaming`,
      help: '1 while the camera delivers frames, 0 while it connects, backs off or is stopped',
      labelNames: ['camera', 'state'],
      registers: [r],
      collect() {
        this.reset();
        for (const c of source.cameras()) this.set({ camera: c.name, state: c.status.state }, c.status.state === 'streaming' ? 1 : 0);
      },
    });

    this.latency = new Histogram({
      name: `${P}stage_latency_seconds`,
      help: 'Time per pipeline stage; total is capture to the decision on the result',
      labelNames: ['camera', 'stage'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [r],
    });

    this.stageLatency = new Histogram({
      name: `${P}pipeline_stage_seconds`,
      help: 'Pipeline cameras: preprocess + inference + postprocess per pipeline stage and frame',
      labelNames: ['camera', 'pipeline_stage'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.cropsPerFrame = new Histogram({
      name: `${P}pipeline_crops_per_frame`,
      help: 'Pipeline cameras: regions cropped per frame',
      labelNames: ['camera'],
      buckets: [0, 1, 2, 3, 4, 6, 8, 16],
      registers: [r],
    });
    this.qualitySkipped = new Counter({
      name: `${P}pipeline_quality_skipped_total`,
      help: 'Pipeline cameras: crops the quality gate skipped (small, blurred)',
      labelNames: ['camera', 'reason'],
      registers: [r],
    });

    new Gauge({
      name: `${P}provider_info`,
      help: 'The execution provider and model in use (value 1)',
      labelNames: ['provider', 'model', 'version'],
      registers: [r],
      collect() {
        this.reset();
        const m = source.model();
        if (m) this.set({ provider: m.provider, model: m.name, version: m.version }, 1);
      },
    });

    new Gauge({
      name: `${P}mqtt_connected`,
      help: '1 while connected to the MQTT broker',
      registers: [r],
      collect() {
        this.set(source.mqttConnected() ? 1 : 0);
      },
    });
    new Counter({
      name: `${P}publish_failures_total`,
      help: 'Result publishes that failed',
      registers: [r],
      collect() {
        this.reset();
        this.inc(source.publishFailures());
      },
    });
    new Gauge({
      name: `${P}journal_depth`,
      help: 'Messages in the journal outbox not yet acknowledged by the broker (0 without a journal)',
      registers: [r],
      collect() {
        this.set(source.journal()?.depth ?? 0);
      },
    });
    new Counter({
      name: `${P}journal_evictions_total`,
      help: 'Unsent messages evicted from the journal past its size bound',
      registers: [r],
      collect() {
        this.reset();
        this.inc(source.journal()?.evictions ?? 0);
      },
    });
    new Gauge({
      name: `${P}journal_writable`,
      help: '0 while journal writes fail (disk full, I/O error; /status journal.lastWriteError says why), else 1',
      registers: [r],
      collect() {
        this.set(source.journal()?.writable === false ? 0 : 1);
      },
    });
    new Counter({
      name: `${P}journal_write_failures_total`,
      help: 'Journal writes that failed (each rolled back whole)',
      registers: [r],
      collect() {
        this.reset();
        this.inc(source.journal()?.writeFailures ?? 0);
      },
    });
    new Counter({
      name: `${P}messages_lost_total`,
      help: 'QoS >= 1 messages neither journaled nor acknowledged by the broker',
      registers: [r],
      collect() {
        this.reset();
        this.inc(source.journal()?.lost ?? 0);
      },
    });
    new Counter({
      name: `${P}journal_corrupt_moved_aside_total`,
      help: 'Unreadable journal files moved aside at start (<path>.corrupt-<time>)',
      registers: [r],
      collect() {
        this.reset();
        this.inc(source.journal()?.corruptMovedAside ?? 0);
      },
    });
    new Gauge({
      name: `${P}healthy`,
      help: '1 while the pipeline makes progress or waits on purpose (what /healthz and the watchdog use)',
      registers: [r],
      collect() {
        this.set(source.healthy() ? 1 : 0);
      },
    });

    new Gauge({
      name: `${P}device_temperature_celsius`,
      help: 'Device temperature per sensor (Linux thermal zones; systeminformation as fallback)',
      labelNames: ['zone', 'type'],
      registers: [r],
      collect() {
        this.reset();
        for (const t of source.device()?.temperatures ?? []) this.set({ zone: t.zone, type: t.type }, t.celsius);
      },
    });
    new Gauge({
      name: `${P}device_cooling_state_ratio`,
      help: 'Cooling device state / max state: above 0 a fan runs or a CPU/GPU clock is capped (throttling)',
      labelNames: ['device', 'type'],
      registers: [r],
      collect() {
        this.reset();
        for (const c of source.device()?.cooling ?? [])
          this.set({ device: c.device, type: c.type }, c.maxState > 0 ? c.state / c.maxState : 0);
      },
    });
    const streams = (pick: (s: { clients: number; refused: number; dropped: number }) => number) =>
      Object.entries(source.streams?.() ?? {}).map(([endpoint, s]) => [endpoint, pick(s)] as const);
    new Gauge({
      name: `${P}http_streams`,
      help: 'Open kiosk streams per endpoint (events: GET /events, preview: GET /preview.mjpeg)',
      labelNames: ['endpoint'],
      registers: [r],
      collect() {
        this.reset();
        for (const [endpoint, v] of streams((s) => s.clients)) this.set({ endpoint }, v);
      },
    });
    new Counter({
      name: `${P}http_streams_refused_total`,
      help: 'Kiosk streams refused (503) because the endpoint had its maxClients open',
      labelNames: ['endpoint'],
      registers: [r],
      collect() {
        this.reset();
        for (const [endpoint, v] of streams((s) => s.refused)) this.inc({ endpoint }, v);
      },
    });
    new Counter({
      name: `${P}http_streams_dropped_total`,
      help: 'Kiosk streams closed by the daemon because the client stopped taking data',
      labelNames: ['endpoint'],
      registers: [r],
      collect() {
        this.reset();
        for (const [endpoint, v] of streams((s) => s.dropped)) this.inc({ endpoint }, v);
      },
    });
  }

  /** A frame's latencies; for a pipeline camera also each stage's, its crops and the crops the quality gate skipped. */
  observe(camera: string, ms: Record<Stage, number>, pipeline?: PipelineRun): void {
    for (const stage of Object.keys(ms) as Stage[]) this.latency.observe({ camera, stage }, ms[stage] / 1000);
    if (pipeline) this.observePipeline(camera, pipeline);
  }

  private observePipeline(camera: string, p: PipelineRun): void {
    for (const st of p.stages)
      this.stageLatency.observe(
        { camera, pipeline_stage: st.name },
        (st.latencyMs.preprocess + st.latencyMs.inference + st.latencyMs.postprocess) / 1000,
      );
    this.cropsPerFrame.observe({ camera }, p.stages[1]?.crops ?? 0);
    for (const o of p.objects) for (const r of o.regions) if (r.skipped) this.qualitySkipped.inc({ camera, reason: r.skipped });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
