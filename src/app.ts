import { createCamera } from './capture/index.js';
import { systemClock } from './clock.js';
import type { Frame } from './capture/frame.js';
import { frameToJpeg } from './capture/jpeg.js';
import { ConfigError } from './config/load.js';
import { type ConfigChange, describeChange, diffConfig, isLive, mergeLive } from './config/reload.js';
import type { Config } from './config/schema.js';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CameraDecider } from './decide/policy.js';
import type { Decision, StableState } from './decide/types.js';
import { DaemonError, errorMessage } from './errors.js';
import { DeviceSampler } from './health/device.js';
import { Metrics } from './health/metrics.js';
import { registerOpsRoutes } from './health/routes.js';
import { sdNotifyDetailed } from './health/sdnotify.js';
import { HealthServer, type HealthSource, type ReadyReport } from './health/server.js';
import { renderSnapshot } from './health/snapshot.js';
import { type StallReport, StallDetector } from './health/stall.js';
import { SystemdNotifier } from './health/systemd.js';
import { inferRoute } from './health/infer-route.js';
import { ModelHost, type ReloadResult } from './inference/host.js';
import { loadEngine, logEngineEvent, sessionOptions } from './inference/load.js';
import type { EngineEvent } from './inference/providers.js';
import type { InferenceEngine } from './inference/engine.js';
import { type Inference, NOTHING_LABEL, primaryOf } from './inference/types.js';
import { resultsRoute } from './journal/http.js';
import { Journal } from './journal/journal.js';
import type { Logger } from './log.js';
import { CameraLoop } from './loop.js';
import { EmbeddedBroker } from './publish/broker.js';
import { MqttConnection } from './publish/client.js';
import { CommandError, CommandHandler, type PauseResult, type Reloader } from './publish/commands.js';
import { HomeAssistantDiscovery } from './publish/homeassistant.js';
import { eventPayload, resultPayload, statusPayload } from './publish/payload.js';
import type { CameraStateName, SnapshotResult } from './publish/schemas.js';
import { StatsReporter } from './publish/stats.js';
import { Outbox } from './publish/outbox.js';
import { Topics } from './publish/topics.js';
import { VERSION } from './version.js';

/** What the process around the app provides. */
export interface AppDeps {
  /** The `reload` command's action (the same as SIGHUP); without it `reload` answers UNAVAILABLE. */
  reloader?: Reloader;
  /** Monotonic clock in ms for the publish policies; performance.now by default. */
  monotonicNow?: () => number;
  /** sd_notify; default: the native addon to $NOTIFY_SOCKET (a no-op without it). */
  notify?: (state: string) => boolean;
  /** Where WATCHDOG_USEC/WATCHDOG_PID are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** The outcome of the last SIGHUP reload, as /status and the log report it. */
export interface ReloadReport {
  atMs: number;
  ok: boolean;
  applied: string[];
  restartRequired: string[];
  errors: string[];
  /** The key paths behind `applied` and `restartRequired`. */
  appliedKeys: string[];
  restartRequiredKeys: string[];
}

/** sd_notify that says why it failed; no $NOTIFY_SOCKET is not a failure. */
function sendNotify(state: string): boolean {
  const r = sdNotifyDetailed(state);
  if (!r.sent && r.reason !== 'no-socket') throw new DaemonError('NOTIFY', r.message);
  return r.sent;
}

/** Snapshots keep a copy of each inferred frame while someone looked within this long. */
const SNAPSHOT_INTEREST_MS = 60_000;
const FRAME_COPIES = 4;

/**
 * The composition root: the only place that knows every component. Components start in dependency
 * order (http first so probes answer during start-up) and stop in reverse.
 */
export class App implements HealthSource {
  /** The config running now: after a reload, live keys are new and restart-required ones still old. */
  config: Config;
  private readonly log: Logger;
  private readonly topics: Topics;
  private broker: EmbeddedBroker | undefined;
  private mqtt: MqttConnection | undefined;
  private journal: Journal | undefined;
  private outbox: Outbox | undefined;
  private http: HealthServer | undefined;
  private model: ModelHost | undefined;
  /** Engine events (`engine-build-start`/`-end`...) for health/systemd, e.g. to extend start-up timeouts. */
  readonly engineEvents = new EventEmitter<{ event: [EngineEvent] }>();
  /** The model settings the loader uses; a reload changes them before it swaps. */
  private modelConfig!: Config['model'];
  private readonly loops = new Map<string, CameraLoop>();
  private readonly resultSeq = new Map<string, number>();
  private readonly eventSeq = new Map<string, number>();
  private readonly lastResult = new Map<string, unknown>();
  private readonly deciders = new Map<string, CameraDecider>();
  /** Per camera: the latest inferred frame and its inference (snapshot command, /snapshot.jpg). */
  private readonly latest = new Map<string, { frame: Frame; inf: Inference; atMs: number; jpeg?: Promise<Buffer> }>();
  /**
   * A capture source's frame is valid until its next read, and the loop reads the next one while
   * this one is inferred: while snapshots are wanted, each frame is copied as it is read, into a
   * small ring per camera (the frame inferred, the one waiting, the one shown, and one spare).
   */
  private readonly frameCopies = new Map<string, { bufs: Uint8Array[]; next: number }>();
  private snapshotWantedUntilMs = 0;
  private readonly deps: AppDeps;
  private stats: StatsReporter | undefined;
  private ha: HomeAssistantDiscovery | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Resolves when start() has finished: commands wait for it. */
  private readonly running: Promise<void>;
  private markRunning: () => void = () => undefined;
  private lastCameraState = '';
  private readonly startedAtMs = Date.now();
  private state: 'starting' | 'running' | 'stopping' | 'stopped' = 'stopped';
  private readonly detector: StallDetector;
  private readonly notifier: SystemdNotifier;
  private readonly metrics: Metrics;
  private readonly device: DeviceSampler;
  private stallTimer: NodeJS.Timeout | undefined;
  /** Set while an engine that may need a TensorRT build loads: the pipeline waits for it on purpose. */
  private engineBuild: { sinceMs: number; what: string } | undefined;
  private readonly inflight = new Set<Promise<Inference>>();
  private reloadChain: Promise<unknown> = Promise.resolve();
  private lastReload: ReloadReport | undefined;

  constructor(config: Config, log: Logger, deps: AppDeps = {}) {
    this.config = config;
    this.log = log;
    this.deps = deps;
    this.topics = new Topics(config.mqtt.prefix, config.deviceId);
    this.running = new Promise((r) => (this.markRunning = r));
    this.detector = new StallDetector({ now: Date.now, stallAfterMs: config.health.stallAfterSec * 1000, engineBuildLimitMs: config.health.engineBuildTimeoutSec * 1000 });
    this.notifier = new SystemdNotifier({
      send: deps.notify ?? sendNotify,
      env: deps.env,
      check: () => this.health(),
      statusLine: () => this.statusLine(),
      log: log.child({ component: 'systemd' }),
    });
    this.device = new DeviceSampler({ intervalMs: config.health.deviceSampleSec * 1000, log: log.child({ component: 'device' }) });
    this.metrics = new Metrics({
      cameras: () => [...this.loops].map(([name, l]) => ({ name, status: l.camera.status(), inferred: l.stats.inferred, failures: l.stats.failures })),
      model: () => this.engine && { name: this.engine.info.name, version: this.engine.info.version, provider: this.engine.info.provider },
      mqttConnected: () => this.mqtt?.connected,
      journal: () => this.journalStats(),
      publishFailures: () => this.publishFailures,
      healthy: () => this.health().ok,
      device: () => this.device.latest,
    });
  }

  /** Messages the broker refused (MQTT 5 reason >= 0x80): kept in the journal, not resent. */
  private get publishFailures(): number {
    return this.journal?.stats().rejected ?? 0;
  }

  /** The journal's outbox figures for metrics and /readyz. */
  private journalStats(): { depth: number; evictions: number; accepting: boolean } | undefined {
    const j = this.journal?.stats();
    // The journal accepts while it runs: past its bound it evicts the oldest (counted), it never refuses.
    return j && { depth: j.pending, evictions: j.evicted.sent + j.evicted.pending, accepting: true };
  }

  /** Port the HTTP server actually listens on (config port 0 picks a free one). */
  get httpPort(): number | undefined {
    return this.http?.port;
  }

  async start(): Promise<void> {
    if (this.state !== 'stopped') return;
    this.state = 'starting';
    const c = this.config;
    this.log.info({ config: c.source, deviceId: c.deviceId, version: VERSION }, 'starting');
    // Ticks from now on, so an engine build during start-up can extend systemd's start timeout.
    this.notifier.start();
    this.stallTimer = setInterval(() => this.health(), 1000);
    this.stallTimer.unref();

    if (c.http.enabled) {
      this.http = new HealthServer({ host: c.http.host, port: c.http.port, token: c.http.token, source: this, log: this.log.child({ component: 'http' }) });
      registerOpsRoutes(this.http, {
        metrics: this.metrics,
        cameras: () => [...this.loops.keys()],
        snapshot: (camera) => this.snapshotJpeg(camera),
      });
      await this.http.start();
    }
    await this.device.start();

    this.journal = new Journal({
      path: c.journal.path,
      maxRows: c.journal.maxRows,
      maxBytes: c.journal.maxBytes,
      retentionMs: c.journal.retentionHours * 3_600_000,
      synchronous: c.journal.synchronous,
      log: this.log.child({ component: 'journal' }),
    });
    this.journal.start();
    this.http?.addRoute(resultsRoute(this.journal));

    let url = c.mqtt.url;
    if (url === 'embedded') {
      this.broker = new EmbeddedBroker(c.mqtt.embedded);
      await this.broker.start();
      url = this.broker.url;
      this.log.info({ url }, 'embedded mqtt broker listening');
    }

    const modelLog = this.log.child({ component: 'model' });
    const onEvent = (e: EngineEvent) => {
      logEngineEvent(modelLog, e);
      // A TensorRT engine build can take minutes: health and systemd wait for it on purpose.
      if (e.type === 'engine-build-start') this.engineBuild = { sinceMs: Date.now(), what: `${e.provider}, ${e.model}` };
      else if (e.type === 'engine-build-end') this.engineBuild = undefined;
      this.engineEvents.emit('event', e);
    };
    // Reads this.modelConfig at each load, so a reload with new providers/threads uses them.
    this.modelConfig = c.model;
    this.model = new ModelHost({
      load: (dir, hooks) => loadEngine(dir, { ...sessionOptions(this.modelConfig), nice: this.modelConfig.workerNice, onEvent, ...hooks }),
      log: modelLog,
    });
    const engine = await this.model.start(c.model.path);
    this.log.info({ model: engine.info, dir: c.model.path }, 'model loaded');
    this.http?.addRoute(
      inferRoute({
        maxBytes: c.model.inferMaxBytes,
        infer: (frame) => this.requireModel().infer(frame),
        toPayload: (frame, inf) => resultPayload({ deviceId: c.deviceId, seq: frame.seq, frame, inference: inf, model: inf.model, nowMs: Date.now() }),
        log: this.log.child({ component: 'infer' }),
      }),
    );

    this.mqtt = new MqttConnection({
      url,
      clientId: c.mqtt.clientId ?? `edge-inferd-${c.deviceId}`,
      protocolVersion: c.mqtt.protocolVersion ?? (this.broker ? 4 : 5),
      fallbackTo4: c.mqtt.protocolVersion === undefined,
      username: c.mqtt.username,
      password: c.mqtt.password,
      passwordFile: c.mqtt.passwordFile,
      tls: c.mqtt.tls,
      keepaliveSec: c.mqtt.keepaliveSec,
      reconnectMaxMs: c.mqtt.reconnectMaxSec * 1000,
      persistentSession: c.mqtt.persistentSession,
      sessionExpirySec: c.mqtt.sessionExpirySec,
      statusTopic: this.topics.status,
      birth: () => JSON.stringify(this.statusMessage('online')),
      will: JSON.stringify(statusPayload('offline', c.deviceId)),
      log: this.log.child({ component: 'mqtt' }),
    });
    this.listenForCommands(this.mqtt);
    this.outbox = new Outbox({ journal: this.journal, transport: this.mqtt, window: c.mqtt.inflight, log: this.log.child({ component: 'outbox' }) });
    this.outbox.start();
    await this.mqtt.start();

    for (const [name, camCfg] of Object.entries(c.cameras)) {
      if (!camCfg.enabled) continue;
      const camera = createCamera(name, camCfg, { log: this.log.child({ component: 'camera' }) });
      await camera.start();
      this.deciders.set(name, this.newDecider(camCfg.publish));
      // Counters go on from the journal: seq never repeats for a camera, even across a crash.
      this.resultSeq.set(name, this.journal?.lastPayloadSeq(name, 'result') ?? 0);
      this.eventSeq.set(name, this.journal?.lastPayloadSeq(name, 'event') ?? 0);
      const loop = new CameraLoop({
        camera,
        infer: (frame, hooks) => this.requireModel().infer(frame, hooks),
        keep: (frame) => this.keepFrame(frame),
        onResult: (frame, inf) => this.onInference(frame, inf),
        log: this.log.child({ component: 'loop', camera: name }),
      });
      this.loops.set(name, loop);
      loop.start();
    }
    this.startControl(this.mqtt);
    this.state = 'running';
    this.markRunning();
    this.log.info({ cameras: [...this.loops.keys()], provider: engine.info.provider }, 'running');
    this.notifier.ready();
  }

  private newDecider(publish: Config['cameras'][string]['publish']): CameraDecider {
    return new CameraDecider(publish, this.deps.monotonicNow ? { clock: { ...systemClock, monotonic: this.deps.monotonicNow } } : {});
  }

  private get engine(): InferenceEngine | undefined {
    return this.model?.engine;
  }

  private requireModel(): ModelHost {
    if (!this.model) throw new Error('no model loaded');
    return this.model;
  }

  /** Hot swap: load `dir` (default: the current package again), warm it up, switch; on failure keep the old one. */
  async reloadModel(dir?: string): Promise<ReloadResult> {
    const result = await this.requireModel().reload(dir);
    if (result.ok) this.mqtt?.publish(this.topics.status, JSON.stringify(this.statusMessage('online')), { qos: 1, retain: true }).catch(() => undefined);
    return result;
  }

  /**
   * Model swap on reload: the new engine loads next to the running one, takes over, and the old
   * one closes once the inferences in flight on it are done. If the new one fails to load, the old
   * one keeps running. (One method, so a warm-up-then-swap can replace its body.)
   */
  async swapModel(model: Config['model']): Promise<void> {
    const previous = this.modelConfig;
    this.modelConfig = model;
    const r = await this.reloadModel(model.path);
    if (!r.ok) {
      this.modelConfig = previous;
      throw new DaemonError(r.error?.code ?? 'MODEL_RELOAD', r.error?.message ?? 'model reload failed');
    }
  }

  /**
   * SIGHUP: re-read the config with `load`; if it is invalid keep running on the current one and
   * log every problem; otherwise apply the live keys and report the rest as "restart required".
   * Reloads run one at a time, in order.
   */
  reload(load: () => Config): Promise<ReloadReport> {
    const run = this.reloadChain.then(() => this.doReload(load));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  private async doReload(load: () => Config): Promise<ReloadReport> {
    const atMs = Date.now();
    if (this.state !== 'running') {
      this.log.warn({ state: this.state }, 'reload ignored: the daemon is not running');
      return { atMs, ok: false, applied: [], restartRequired: [], errors: [`not running (${this.state})`], appliedKeys: [], restartRequiredKeys: [] };
    }
    this.notifier.reloading();
    this.log.info({ config: this.config.source }, 'reloading configuration');
    let next: Config;
    try {
      next = load();
    } catch (err) {
      const errors = err instanceof ConfigError ? err.problems : [errorMessage(err)];
      for (const problem of errors) this.log.error({ problem }, 'reload rejected: invalid config');
      this.log.error({ problems: errors.length }, 'reload rejected; still running on the previous config');
      const last = this.lastReload;
      this.lastReload = { atMs, ok: false, applied: [], restartRequired: last?.restartRequired ?? [], errors, appliedKeys: [], restartRequiredKeys: last?.restartRequiredKeys ?? [] };
      this.notifier.reloaded(`reload rejected (${errors.length} problem${errors.length === 1 ? '' : 's'}); running on the previous config`);
      return this.lastReload;
    }
    const changes = diffConfig(this.config, next);
    let applied = changes.filter((ch) => isLive(ch.path));
    const restart = changes.filter((ch) => !isLive(ch.path));
    const errors: string[] = [];
    // `systemctl reload` after copying a new package over the old one: same path, new files.
    const packageChanged = !applied.some((ch) => ch.path.startsWith('model.')) && (await this.modelPackageChanged(next.model.path));
    if (packageChanged) this.log.info({ dir: next.model.path }, 'reload: the model package on disk changed');
    if (packageChanged || applied.some((ch) => ch.path.startsWith('model.'))) {
      try {
        await this.swapModel(next.model);
      } catch (err) {
        errors.push(`model: ${errorMessage(err)}; keeping ${this.engine?.info.name ?? 'the previous model'}`);
        this.log.error({ err: errorMessage(err) }, 'reload: the new model failed to load; keeping the running one');
        applied = applied.filter((ch) => !ch.path.startsWith('model.'));
      }
    }
    this.config = { ...mergeLive(this.config, applied), source: next.source };
    this.applyLive(applied);
    const report: ReloadReport = {
      atMs,
      ok: errors.length === 0,
      applied: applied.map(describeChange),
      restartRequired: restart.map(describeChange),
      errors,
      appliedKeys: applied.map((ch) => ch.path),
      restartRequiredKeys: restart.map((ch) => ch.path),
    };
    this.lastReload = report;
    if (applied.length) this.log.info({ changes: report.applied }, 'reload applied');
    if (restart.length) this.log.warn({ keys: restart.map((ch) => ch.path), changes: report.restartRequired }, 'reload: restart required for these changes (systemctl restart edge-inferd)');
    if (!changes.length) this.log.info('reload: no changes');
    this.notifier.reloaded(this.statusLine());
    return report;
  }

  /** Whether the package at `dir` is not the one running (its manifest names another sha256 or version, or cannot be read). */
  private async modelPackageChanged(dir: string): Promise<boolean> {
    const info = this.engine?.info;
    if (!info) return true;
    try {
      const text = await readFile(join(dir, 'manifest.yaml'), 'utf8');
      const m = parseYaml(text) as { sha256?: unknown; version?: unknown } | null;
      return m?.sha256 !== info.sha256 || String(m?.version) !== info.version;
    } catch {
      return true; // let the reload try, fail and say why
    }
  }

  private applyLive(applied: ConfigChange[]): void {
    const c = this.config;
    for (const ch of applied) {
      if (ch.path === 'log.level') this.log.level = c.log.level;
      else if (ch.path.startsWith('http.token')) this.http?.setToken(c.http.token);
    }
    // A new publish policy takes a fresh decider: its change/stable history starts again.
    for (const name of new Set(applied.filter((ch) => /^cameras\.[^.]+\.publish\./.test(ch.path)).map((ch) => ch.path.split('.')[1]))) {
      if (this.deciders.has(name)) this.deciders.set(name, this.newDecider(c.cameras[name].publish));
    }
    if (applied.some((ch) => ch.path.startsWith('health.'))) {
      this.detector.setLimits({ stallAfterMs: c.health.stallAfterSec * 1000, engineBuildLimitMs: c.health.engineBuildTimeoutSec * 1000 });
      this.device.setInterval(c.health.deviceSampleSec * 1000);
    }
    // mqtt.qos is read on every publish.
  }

  private statusLine(): string {
    const cams = [...this.loops.values()];
    const streaming = cams.filter((l) => l.camera.status().state === 'streaming').length;
    const model = this.engine ? `${this.engine.info.name} on ${this.engine.info.provider}` : 'no model';
    const mqtt = this.mqtt?.connected ? 'mqtt connected' : 'mqtt not connected';
    const h = this.state === 'running' ? this.health() : undefined;
    return `${this.state}: ${streaming}/${cams.length} cameras streaming, ${model}, ${mqtt}${h?.reason ? `; ${h.reason}` : ''}`;
  }

  /**
   * The frame to keep for snapshots: while someone asked for one lately, a copy (the source may
   * reuse the buffer at its next read); otherwise the frame as it is, which costs nothing.
   */
  private keepFrame(frame: Frame): Frame {
    if (Date.now() > this.snapshotWantedUntilMs) return frame;
    let ring = this.frameCopies.get(frame.camera);
    if (!ring) this.frameCopies.set(frame.camera, (ring = { bufs: [], next: 0 }));
    const i = ring.next;
    ring.next = (i + 1) % FRAME_COPIES;
    let copy = ring.bufs[i];
    if (copy?.byteLength !== frame.data.byteLength) copy = ring.bufs[i] = new Uint8Array(frame.data.byteLength);
    copy.set(frame.data);
    return { ...frame, data: copy };
  }

  /** The latest frame of a camera with its result drawn on it; rendered once per result. */
  private snapshotJpeg(camera: string): Promise<Buffer | undefined> {
    this.snapshotWantedUntilMs = Date.now() + SNAPSHOT_INTEREST_MS;
    const entry = this.latest.get(camera);
    if (!entry) return Promise.resolve(undefined);
    if (!entry.jpeg) {
      const best = primaryOf(entry.inf);
      const inf = entry.inf;
      // renderSnapshot reads the pixels synchronously, so the kept copy may be reused afterwards.
      entry.jpeg = renderSnapshot(entry.frame, {
        label: best?.label,
        score: best?.score,
        index: best?.index ?? 0,
        boxes: inf.task === 'detect' ? inf.detections.map((d) => ({ x: d.box.x, y: d.box.y, width: d.box.w, height: d.box.h, label: d.label, score: d.score, index: d.index })) : undefined,
        caption: `${camera} #${entry.frame.seq} ${new Date(entry.atMs).toISOString()}`,
      });
    }
    return entry.jpeg;
  }


  /** Every inference goes through the camera's decide stage: the policy lets the result out or holds it back; events go out regardless. */
  private onInference(frame: Frame, inf: Inference): void {
    const decider = this.deciders.get(frame.camera);
    if (!decider) return;
    this.latest.set(frame.camera, { frame, inf, atMs: Date.now() });
    this.metrics.observe(frame.camera, { ...inf.latencyMs, total: Math.max(0, Date.now() - frame.capturedAtMs) });
    this.stats?.recordLatency(frame.camera, inf.latencyMs.preprocess + inf.latencyMs.inference + inf.latencyMs.postprocess);
    const best = primaryOf(inf) ?? { label: NOTHING_LABEL, score: 1 };
    const d = decider.observe({ label: best.label, score: best.score, atMs: frame.capturedAtMs });
    if (d.publish) this.publishResult(frame, inf, d.stable);
    for (const e of d.events) this.publishEvent(frame.camera, e, frame);
  }

  private publishResult(frame: Frame, inf: Inference, stable: StableState | undefined): void {
    if (!this.mqtt) return;
    const seq = (this.resultSeq.get(frame.camera) ?? 0) + 1;
    this.resultSeq.set(frame.camera, seq);
    const policy = this.config.cameras[frame.camera].publish.policy;
    // The model that computed it, which after a hot swap may not be the one loaded now.
    const payload = resultPayload({ deviceId: this.config.deviceId, seq, frame, inference: inf, model: inf.model, nowMs: Date.now(), policy, stable });
    this.lastResult.set(frame.camera, payload);
    this.send('result', frame.camera, this.topics.result(frame.camera), payload);
  }

  private publishEvent(camera: string, decision: Decision, frame?: Frame): void {
    const engine = this.engine;
    const cfg = this.config.cameras[camera].publish;
    if (!this.mqtt || !engine || !cfg.events) return;
    const seq = (this.eventSeq.get(camera) ?? 0) + 1;
    this.eventSeq.set(camera, seq);
    const payload = eventPayload({ deviceId: this.config.deviceId, camera, seq, decision, frame, model: engine.info, rule: cfg.stable, nowMs: Date.now() });
    this.send('event', camera, this.topics.event(camera), payload);
  }

  /** Results and events go through the journal: written first, sent in order, marked sent on PUBACK. */
  private send(kind: 'result' | 'event', camera: string, topic: string, payload: object): void {
    const outbox = this.outbox;
    if (!outbox) return;
    const t = this.config.mqtt.topics[kind];
    outbox.enqueue({
      topic,
      payload: JSON.stringify(payload),
      qos: t.qos,
      retain: t.retain,
      camera,
      kind,
      ...(kind === 'result' ? { expirySec: this.config.mqtt.resultExpirySec } : {}),
    });
  }

  private statusMessage(state: 'online' | 'stopped') {
    const info = this.model?.engine?.info;
    return statusPayload(state, this.config.deviceId, {
      version: VERSION,
      ...(info ? { model: { name: info.name, version: info.version, sha256: info.sha256 }, provider: info.provider } : {}),
      cameras: Object.keys(this.config.cameras).filter((n) => this.config.cameras[n].enabled),
      cameraState: this.cameraStates(),
    });
  }

  private cameraStates(): Record<string, CameraStateName> {
    return Object.fromEntries(
      [...this.loops].map(([name, loop]) => {
        const st = loop.camera.status().state;
        return [name, loop.paused && st !== 'stopped' ? 'paused' : st];
      }),
    );
  }

  /**
   * Subscribed before the first connect, so a command the broker kept for us is not missed; it
   * runs once the cameras are up (a queued `pause tray` finds its camera).
   */
  private listenForCommands(mqtt: MqttConnection): void {
    const c = this.config;
    if (c.commands.enabled) {
      const commands = new CommandHandler({
        topics: this.topics,
        deviceId: c.deviceId,
        maxBytes: c.commands.maxBytes,
        publish: (topic, payload) => mqtt.publish(topic, payload, { qos: 1, retain: false }),
        log: this.log.child({ component: 'commands' }),
        ready: this.running,
        handlers: {
          snapshot: (a) => this.snapshot(a.camera, a.quality, a.maxWidth),
          reload: async () => {
            if (!this.deps.reloader) throw new CommandError('UNAVAILABLE', 'reload is not available in this process');
            return this.deps.reloader.reload();
          },
          pause: (camera) => this.setPaused(camera, true),
          resume: (camera) => this.setPaused(camera, false),
          status: () => this.status(),
        },
      });
      mqtt.subscribe(this.topics.commandFilter, commands.onMessage, { qos: 1 });
    }
  }

  /** Home Assistant discovery, the stats timer and status updates on camera state changes. */
  private startControl(mqtt: MqttConnection): void {
    const c = this.config;
    if (c.homeassistant.enabled) {
      this.ha = new HomeAssistantDiscovery({
        prefix: c.homeassistant.prefix,
        deviceId: c.deviceId,
        topics: this.topics,
        version: VERSION,
        model: () => (this.engine ? `${this.engine.info.name} ${this.engine.info.version}` : 'edge-inferd'),
        log: this.log.child({ component: 'homeassistant' }),
      });
      this.ha.attach(mqtt, Object.keys(c.cameras).filter((n) => c.cameras[n].enabled));
    }
    if (c.stats.intervalSec > 0) {
      this.stats = new StatsReporter({ deviceId: c.deviceId, intervalSec: c.stats.intervalSec });
      this.timers.push(setInterval(() => this.publishStats(), c.stats.intervalSec * 1000).unref());
    }
    this.timers.push(setInterval(() => this.refreshStatus(), 1000).unref());
  }

  private publishStats(): void {
    if (!this.stats || !this.mqtt) return;
    const states = this.cameraStates();
    const cameras = Object.fromEntries(
      [...this.loops].map(([name, loop]) => [name, { state: states[name], counters: this.deciders.get(name)!.counters(), failures: loop.stats.failures, dropped: loop.camera.status().dropped }]),
    );
    const mq = this.mqtt.state();
    const payload = this.stats.build({ cameras, mqtt: { connected: mq.connected, connects: mq.connects, publishFailures: this.publishFailures }, startedAtMs: this.startedAtMs }, Date.now());
    this.mqtt.publish(this.topics.stats, JSON.stringify(payload), this.config.mqtt.topics.stats).catch(() => undefined);
  }

  /** Republishes the retained status when a camera's state changed (the birth covers reconnects). */
  private refreshStatus(): void {
    const now = JSON.stringify(this.cameraStates());
    if (now === this.lastCameraState || !this.mqtt?.connected || this.state !== 'running') return;
    this.lastCameraState = now;
    this.mqtt.publish(this.topics.status, JSON.stringify(this.statusMessage('online')), { qos: 1, retain: true }).catch(() => undefined);
  }

  private pick(camera: string | undefined): string[] {
    if (camera === undefined) return [...this.loops.keys()];
    if (!this.loops.has(camera)) throw new CommandError('UNKNOWN_CAMERA', `no camera "${camera}" (cameras: ${[...this.loops.keys()].join(', ')})`);
    return [camera];
  }

  private async snapshot(camera: string | undefined, quality: number, maxWidth: number | undefined): Promise<SnapshotResult> {
    const names = this.pick(camera);
    if (names.length !== 1) throw new CommandError('BAD_REQUEST', `camera: name one of ${names.join(', ')}`, [`camera: required with more than one camera (cameras: ${names.join(', ')})`]);
    const frame = this.latest.get(names[0])?.frame;
    if (!frame) throw new CommandError('NO_FRAME', `camera ${names[0]} has no frame yet`);
    const { jpeg, width, height } = await frameToJpeg(frame, { quality, maxWidth }).catch((err: unknown) => {
      throw new CommandError('FAILED', `camera ${names[0]}: JPEG encoding failed: ${errorMessage(err)}`);
    });
    return {
      camera: names[0],
      contentType: 'image/jpeg',
      encoding: 'base64',
      data: jpeg.toString('base64'),
      bytes: jpeg.length,
      width,
      height,
      frame: { seq: frame.seq, capturedAt: new Date(frame.capturedAtMs).toISOString(), capturedAtMs: frame.capturedAtMs, ...(frame.name ? { name: frame.name } : {}) },
    };
  }

  /** Pause waits for the inference in flight, then clears a stable label (event `cleared`, reason `paused`). */
  private async setPaused(camera: string | undefined, paused: boolean): Promise<PauseResult> {
    const changed: string[] = [];
    for (const name of this.pick(camera)) {
      const loop = this.loops.get(name)!;
      if (loop.paused === paused) continue;
      changed.push(name);
      if (!paused) {
        loop.resume();
        continue;
      }
      await loop.pause();
      for (const e of this.deciders.get(name)!.reset(Date.now(), 'paused')) this.publishEvent(name, e);
    }
    if (changed.length) this.log.info({ cameras: changed }, paused ? 'paused' : 'resumed');
    this.refreshStatus();
    return { changed, paused: [...this.loops].filter(([, l]) => l.paused).map(([n]) => n) };
  }

  /** Graceful stop: cameras first, let the inference in flight finish, publish `stopped`, close the broker. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.notifier.stoppingNow();
    this.notifier.stop();
    clearInterval(this.stallTimer);
    this.device.stop();
    this.log.info('stopping');
    for (const t of this.timers.splice(0)) clearInterval(t);
    await Promise.all([...this.loops.values()].map((l) => l.stop().catch((err: unknown) => this.log.warn({ err: String(err) }, 'camera stop failed'))));
    const finalStatus = JSON.stringify(this.statusMessage('stopped'));
    this.loops.clear();
    await this.outbox?.stop();
    this.outbox = undefined;
    await this.mqtt?.stop(finalStatus);
    this.mqtt = undefined;
    this.journal?.stop();
    this.journal = undefined;
    await this.model?.stop().catch(() => undefined);
    this.model = undefined;
    await this.broker?.stop();
    this.broker = undefined;
    await this.http?.stop();
    this.http = undefined;
    this.state = 'stopped';
    this.log.info('stopped');
  }

  /**
   * /healthz and the systemd watchdog: the stall detector's verdict. A paused camera waits on
   * purpose. Starting counts as waiting (systemd's start timeout guards it); stopping and stopped
   * are not healthy.
   */
  health(): StallReport {
    const report = this.detector.check({
      cameras: [...this.loops].map(([name, loop]) => ({
        name,
        state: loop.paused ? ('paused' as const) : loop.camera.status().state,
        fps: this.config.cameras[name]?.fps ?? 0,
        lastResultAtMs: loop.stats.lastResultAtMs,
      })),
      engineBuild: this.engineBuild,
    });
    if (this.state === 'running') return report;
    if (this.state === 'starting' && report.ok) return { ...report, verdict: 'waiting', reason: report.reason ? `starting: ${report.reason}` : 'starting' };
    return { ...report, ok: false, verdict: 'stalled', reason: report.reason && this.state === 'starting' ? report.reason : this.state };
  }

  ready(): ReadyReport {
    const checks: ReadyReport['checks'] = {};
    const info = this.model?.engine?.info;
    checks.model = info ? { ok: true, detail: `${info.name} ${info.version} on ${info.provider}` } : { ok: false, detail: 'not loaded' };
    for (const [name, camCfg] of Object.entries(this.config.cameras)) {
      if (!camCfg.enabled) continue;
      const st = this.loops.get(name)?.camera.status();
      checks[`camera:${name}`] = { ok: st?.state === 'streaming', detail: st?.state ?? 'not started' };
    }
    const mq = this.mqtt?.state();
    const journal = this.journalStats();
    checks.mqtt = { ok: mq?.connected === true, detail: mq ? (mq.connected ? `connected to ${mq.url}` : `not connected to ${mq.url}${mq.lastError ? `: ${mq.lastError}` : ''}`) : 'not started' };
    // Results still go somewhere safe while the broker is away, if the journal takes them.
    if (!checks.mqtt.ok && journal?.accepting) checks.mqtt = { ok: true, detail: `${checks.mqtt.detail}; the journal holds results (${journal.depth} queued)` };
    return { ok: this.state === 'running' && Object.values(checks).every((c) => c.ok), checks };
  }

  status() {
    return {
      v: 1,
      deviceId: this.config.deviceId,
      version: VERSION,
      state: this.state,
      uptimeSec: Math.round((Date.now() - this.startedAtMs) / 1000),
      config: this.config.source,
      model: this.model?.engine
        ? { ...this.model.engine.info, dir: this.model.dir, providerAttempts: this.model.engine.attempts, engineCache: this.model.engine.engineCache ?? null, lastReload: this.model.lastReload ?? null }
        : null,
      mqtt: this.mqtt ? { ...this.mqtt.state(), outbox: this.outbox?.stats() ?? null } : null,
      journal: this.journal?.stats() ?? null,
      cameras: Object.fromEntries(
        [...this.loops].map(([name, loop]) => [
          name,
          { ...loop.camera.status(), ...loop.stats, decide: { policy: this.config.cameras[name].publish.policy, ...this.deciders.get(name)?.counters() }, lastResult: this.lastResult.get(name) ?? null },
        ]),
      ),
      health: this.health(),
      reload: this.lastReload ?? null,
      systemd: { watchdogUsec: this.notifier.watchdogUsec ?? null, ...this.notifier.counts },
    };
  }
}
