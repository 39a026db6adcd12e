import type { Frame } from './capture/frame.js';
import { CameraChannel } from './channel/channel.js';
import { type Clock, systemClock } from './clock.js';
import type { Component, LiveReloadable } from './component.js';
import type { Config } from './config/schema.js';
import { DeviceSampler } from './health/device.js';
import { EventHub } from './health/events.js';
import { PreviewHub } from './health/preview.js';
import { Metrics } from './health/metrics.js';
import { HealthMonitor } from './health/monitor.js';
import { createHttpServer } from './health/http.js';
import { sendNotify } from './health/sdnotify.js';
import type { HealthServer } from './health/server.js';
import { SnapshotStore } from './health/snapshots.js';
import { StallDetector } from './health/stall.js';
import { StatusReporter } from './health/status.js';
import { SystemdNotifier } from './health/systemd.js';
import { ModelService, modelInUse } from './inference/model-service.js';
import { StageModels } from './inference/stages.js';
import type { Inference } from './inference/types.js';
import { Journal } from './journal/journal.js';
import { Lifecycle } from './lifecycle.js';
import type { Logger } from './log.js';
import { CommandError, type Reloader } from './publish/commands.js';
import { MqttControl } from './publish/control.js';
import type { LocalCopies } from './publish/local-copies.js';
import { Messaging } from './publish/messaging.js';
import { resultPayload } from './publish/payload.js';
import type { ResultSink } from './publish/result-sink.js';
import type { CameraStateName, DaemonStatus } from './publish/schemas.js';
import { Topics } from './publish/topics.js';
import { type ReloadReport, ReloadController } from './reload.js';
import { PackageStore, RolloutService } from './rollout/service.js';
import { RolloutTargets } from './rollout/stage-targets.js';
import { VERSION } from './version.js';
import { must } from './errors.js';

export type { ReloadReport };

/** What the process around the app provides. */
export interface AppDeps {
  /** The one clock (wall, monotonic, timers); systemClock by default. */
  clock?: Clock;
  /** The `reload` command's action (the same as SIGHUP); without it `reload` answers UNAVAILABLE. */
  reloader?: Reloader;
  /** sd_notify; default: the native addon to $NOTIFY_SOCKET (a no-op without it). */
  notify?: (state: string) => boolean;
  /** Where WATCHDOG_USEC/WATCHDOG_PID are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Names an object with start/stop as a Component. */
const part = (name: string, o: { start(): unknown; stop(): unknown }): Component => ({
  name,
  start: async () => void (await o.start()),
  stop: async () => void (await o.stop()),
});

/**
 * The composition root: builds every component with its config slice and the one clock, starts them
 * in dependency order (HTTP first, so probes answer during start-up; the cameras once the model
 * and the broker connection are up) and stops them in reverse. Nothing else happens here.
 */
export class App {
  private readonly lifecycle: Lifecycle;
  private readonly reloads: ReloadController;
  private readonly http: HealthServer | undefined;
  private readonly messaging: Messaging;
  private readonly monitor: HealthMonitor;
  private readonly statusReporter: StatusReporter;

  constructor(config: Config, log: Logger, deps: AppDeps = {}) {
    const c = config;
    const clock = deps.clock ?? systemClock;
    const child = (component: string) => log.child({ component });
    const topics = new Topics(c.mqtt.prefix, c.deviceId);
    let markRunning!: () => void;
    const running = new Promise<void>((r) => (markRunning = r));

    // Health inputs: stall detection, the frames snapshots are taken from, device sampling.
    const detector = new StallDetector({
      clock,
      stallAfterMs: c.health.stallAfterSec * 1000,
      engineBuildLimitMs: c.health.engineBuildTimeoutSec * 1000,
    });
    const previewPrivacy = (cam: string) => stages.previewPrivacy(c.cameras[cam]);
    const preview = new PreviewHub({
      clock,
      log: child('preview'),
      maxFps: c.http.preview.maxFps,
      maxClients: c.http.preview.maxClients,
      quality: c.http.preview.quality,
      privacy: previewPrivacy,
    });
    // While someone watches the preview, the cameras keep copies of their frames as they do for snapshots.
    const snapshots = new SnapshotStore({
      clock,
      privacy: (cam) => stages.snapshotPrivacy(c.cameras[cam]),
      alsoWanted: () => preview.watching,
    });
    const device = new DeviceSampler({ intervalMs: c.health.deviceSampleSec * 1000, log: child('device'), clock });
    // Results: journaled first, then published.
    const journal = new Journal({
      path: c.journal.path,
      maxRows: c.journal.maxRows,
      maxBytes: c.journal.maxBytes,
      retentionMs: c.journal.retentionHours * 3_600_000,
      synchronous: c.journal.synchronous,
      log: child('journal'),
      clock,
    });
    // GET /events reads the journal: told of each row as it is written, it reads back what a client missed.
    const events = new EventHub({
      feed: journal,
      clock,
      log: child('events'),
      maxClients: c.http.events.maxClients,
      heartbeatMs: c.http.events.heartbeatSec * 1000,
      bufferBytes: c.http.events.bufferBytes,
      // privacy.includeCrops: local: loopback clients get the payloads with crops and heatmaps.
      local: { get: (seq) => messaging.localCopies.get(seq) },
    });
    const messaging = new Messaging({
      config: c.mqtt,
      deviceId: c.deviceId,
      topics,
      journal,
      status: (state) => status.message(state),
      commandMaxBytes: c.commands.enabled ? c.commands.maxBytes : undefined,
      websocketOrigins: c.http.cors.origins,
      clock,
      log,
    });
    this.messaging = messaging;
    // Models: the configured one (or the installed package), its rollout, and the pipelines' stage models.
    const buildEvents = {
      buildStarted: (what: string) => detector.buildStarted(what),
      buildEnded: () => detector.buildEnded(),
      swapped: () => control.publishStatus(),
    };
    const store = c.model.rollout.enabled
      ? new PackageStore({ dir: c.model.rollout.dir, keep: c.model.keep, log: child('rollout') })
      : undefined;
    const model = new ModelService({
      config: c.model,
      log: child('model'),
      listener: buildEvents,
      clock,
      resolve: store && ((p) => store.effectivePath(p)),
      inUse: modelInUse(c.cameras),
    });
    const rollout =
      store &&
      new RolloutService({
        config: { ...c.model.rollout, keep: c.model.keep },
        store,
        model,
        deviceId: c.deviceId,
        publish: (p) => messaging.mqtt.publish(topics.modelState, p, { qos: 1, retain: true }),
        clock,
        log: child('rollout'),
      });
    // cmd/model/* with `stage`: a pipeline stage's model (its own store and retained state).
    const targets =
      rollout &&
      new RolloutTargets({
        model: rollout,
        config: { ...c.model.rollout, keep: c.model.keep },
        deviceId: c.deviceId,
        clock,
        log: child('rollout'),
        publishStage: (key, p) => messaging.mqtt.publish(`${topics.modelState}/${key}`, p, { qos: 1, retain: true }),
      });
    const stages = new StageModels({ config: c, log: child('pipelines'), listener: buildEvents, clock, resolve: targets?.resolveStage });
    targets?.bindStages(stages);
    // Cameras: one channel each.
    const channels = cameraChannels(c, {
      clock,
      log,
      stages,
      model,
      sink: messaging.sink,
      snapshots,
      // What each inference feeds besides the result: stall detection, snapshots, metrics, stats.
      inferred: (frame, inf) => {
        detector.progress(frame.camera);
        snapshots.record(frame, inf);
        preview.record(frame, inf);
        metrics.observe(
          frame.camera,
          { ...inf.latencyMs, total: Math.max(0, clock.now() - frame.capturedAtMs) },
          inf.task === 'detect' ? inf.pipeline : undefined,
        );
        control.recordLatency(frame.camera, inf.latencyMs.preprocess + inf.latencyMs.inference + inf.latencyMs.postprocess);
      },
      state: (camera, st) => {
        detector.state(camera, st);
        control.cameraStateChanged();
      },
    });
    for (const ch of channels) detector.watch(ch.name, c.cameras[ch.name].fps ?? 0, 'connecting');
    // What the outside sees: systemd, health verdicts, /metrics, MQTT commands and status, HTTP.
    const notifier = new SystemdNotifier({
      send: deps.notify ?? sendNotify,
      env: deps.env,
      check: () => monitor.health(),
      statusLine: () => status.line(),
      log: child('systemd'),
      clock,
    });
    const monitor = new HealthMonitor({ detector, source: { model, cameras: channels, messaging, journal } });
    const metrics = new Metrics({
      cameras: () => channels.filter((ch) => ch.started).map((ch) => ({ ...ch.status(), status: ch.camera.status() })),
      model: () => model.info,
      mqttConnected: () => messaging.mqtt.connected,
      journal: () => journalGauges(journal, messaging),
      publishFailures: () => messaging.publishFailures(),
      healthy: () => monitor.health().ok,
      device: () => device.latest,
      streams: () => ({ events: events.stats(), preview: preview.stats() }),
    });
    const control: MqttControl = new MqttControl({
      config: {
        deviceId: c.deviceId,
        commands: c.commands,
        homeassistant: c.homeassistant,
        stats: c.stats,
        statsTopic: c.mqtt.topics.stats,
      },
      mqtt: messaging.mqtt,
      topics,
      cameras: channels,
      clock,
      log,
      ready: running,
      snapshot: (camera, quality, maxWidth) => snapshots.command(camera, quality, maxWidth),
      reload: async () => {
        if (!deps.reloader) throw new CommandError('UNAVAILABLE', 'reload is not available in this process');
        return await deps.reloader.reload();
      },
      status: () => status.status(),
      model: targets,
      statusMessage: () => status.message('online'),
      modelName: () => (model.info ? `${model.info.name} ${model.info.version}` : 'edge-inferd'),
      publishFailures: () => messaging.publishFailures(),
    });
    const started = () => channels.filter((ch) => ch.started).map((ch) => ch.name);
    const toPayload = (frame: Frame, inf: Inference) =>
      resultPayload({ deviceId: c.deviceId, seq: frame.seq, frame, inference: inf, model: inf.model, nowMs: clock.now() });
    const source = { health: () => monitor.health(), ready: () => monitor.ready(), status: () => status.status() };
    const http = c.http.enabled
      ? createHttpServer({
          config: c.http,
          inferMaxBytes: c.model.inferMaxBytes,
          source,
          metrics,
          cameras: started,
          snapshot: (cam) => snapshots.annotated(cam),
          journal,
          events: { hub: events, cameras: () => channels.map((ch) => ch.name) },
          preview: { hub: preview, cameras: () => channels.map((ch) => ch.name), privacy: previewPrivacy },
          infer: (f, cam, explain) =>
            cam ? must(stages.inferOf(cam), `camera ${cam}'s pipeline`)(f, { explain }) : model.infer(f, { explain }),
          toPayload,
          clock,
          log,
        })
      : undefined;

    // Reload (SIGHUP, the reload command) and the start/stop order.
    const logLevel: LiveReloadable<Config['log']['level']> = {
      name: 'log',
      liveKeys: ['log.level'],
      slice: (n) => n.log.level,
      apply: (level) => {
        log.level = level;
      },
    };
    const reloads = new ReloadController({
      config,
      components: [logLevel, ...(http ? [http] : []), monitor, device, model, stages, messaging.sink, control, ...channels],
      hooks: {
        running: () => lifecycle.phase === 'running',
        begin: () => notifier.reloading(),
        end: (line) => notifier.reloaded(line ?? status.line()),
      },
      clock,
      log,
    });
    const lifecycle = new Lifecycle({
      log,
      // The notifier ticks from the start, so an engine build during start-up can extend systemd's start timeout.
      components: [
        part('systemd', notifier),
        ...(http ? [part('http', http)] : []),
        part('preview', { start: () => undefined, stop: () => preview.stop() }),
        part('device', device),
        // Before the journal: a disk filled by an unfinished download gets its space back first.
        ...(store ? [part('rollout staging', { start: () => store.reclaim(c.model.rollout.reserveBytes), stop: () => undefined })] : []),
        part('journal', journal),
        part('events', events),
        ...messaging.brokerComponents,
        model,
        part('pipelines', stages),
        ...messaging.connectionComponents,
        ...channels,
        control,
        ...(targets ? [part('rollout', targets)] : []),
      ],
      onPhase: (phase) => {
        monitor.setPhase(phase);
        if (phase === 'starting') log.info({ config: c.source, deviceId: c.deviceId, version: VERSION }, 'starting');
        if (phase === 'stopping') {
          notifier.stoppingNow();
          log.info('stopping');
        }
        if (phase === 'stopped') log.info('stopped');
        if (phase !== 'running') return;
        markRunning();
        log.info({ cameras: channels.map((ch) => ch.name), provider: model.info?.provider, http: http?.address }, 'running');
        notifier.ready();
      },
    });
    // The status report reads every part (lazily, so it is built last).
    const status: StatusReporter = new StatusReporter({
      deviceId: c.deviceId,
      clock,
      sources: {
        lifecycle,
        reloads,
        model,
        stages,
        messaging,
        journal,
        cameras: channels,
        health: () => monitor.health(),
        systemd: notifier,
        rollout,
        stageRollouts: targets,
        http: {
          get address() {
            return http?.address;
          },
        },
        ...(http ? { streams: { events, preview } } : {}),
      },
    });
    this.monitor = monitor;
    this.statusReporter = status;
    this.http = http;
    this.reloads = reloads;
    this.lifecycle = lifecycle;
  }

  /** The config running now: after a reload, live keys are new and restart-required ones still old. */
  get config(): Config {
    return this.reloads.config;
  }

  /** Port the HTTP server actually listens on (config port 0 picks a free one). */
  /** privacy.includeCrops: local: the full payloads kept for loopback clients, by journal position (GET /events reads them). */
  get localCopies(): LocalCopies {
    return this.messaging.localCopies;
  }

  get httpPort(): number | undefined {
    return this.http?.port;
  }

  start(): Promise<void> {
    return this.lifecycle.start();
  }

  /** Graceful stop: cameras first, the inference in flight finishes, `stopped` is published, the broker closes. */
  stop(): Promise<void> {
    return this.lifecycle.stop();
  }

  /** SIGHUP and the reload command. */
  reload(load: () => Config): Promise<ReloadReport> {
    return this.reloads.reload(load);
  }

  /** Whether a config key is applied live (some component declares it). */
  isLive(path: string): boolean {
    return this.reloads.isLive(path);
  }

  health() {
    return this.monitor.health();
  }

  ready() {
    return this.monitor.ready();
  }

  status(): DaemonStatus {
    return this.statusReporter.status();
  }
}

interface ChannelParts {
  clock: Clock;
  log: Logger;
  stages: StageModels;
  model: ModelService;
  sink: ResultSink;
  snapshots: SnapshotStore;
  inferred: (frame: Frame, inf: Inference) => void;
  state: (camera: string, state: CameraStateName) => void;
}

/** One channel per enabled camera: its inference (the model, or its pipeline's stages), its sink and listeners. */
function cameraChannels(c: Config, p: ChannelParts): CameraChannel[] {
  return Object.entries(c.cameras)
    .filter(([, cam]) => cam.enabled)
    .map(([name, cam]) => {
      const { infer, pipeline, target } = p.stages.forCamera(
        name,
        cam,
        (frame, hooks) => p.model.infer(frame, hooks),
        () => p.model.scaleTarget,
      );
      return new CameraChannel(name, cam, {
        deviceId: c.deviceId,
        clock: p.clock,
        log: p.log,
        infer,
        model: () => pipeline?.models().detector ?? p.model.info,
        sink: p.sink,
        keep: (f) => p.snapshots.keep(f),
        listener: { state: p.state, inferred: p.inferred },
        pipeline,
        target,
        wantFull: () => pipeline !== undefined || p.snapshots.wanted,
      });
    });
}

/** The journal's gauges for /metrics; undefined while it is closed. */
function journalGauges(journal: Journal, messaging: Messaging) {
  if (!journal.isOpen) return undefined;
  const j = journal.stats();
  const outbox = messaging.outboxStats();
  return {
    // Not yet acknowledged: an acknowledgement waiting to be written with the next message is not depth.
    depth: outbox ? outbox.queued + outbox.inflight : j.pending,
    evictions: j.evicted.sent + j.evicted.pending,
    writable: j.writable,
    writeFailures: j.writeFailures,
    lost: outbox?.lost ?? 0,
    corruptMovedAside: j.corrupt.movedAside,
  };
}
