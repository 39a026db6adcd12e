import { createCamera } from './capture/index.js';
import type { Frame } from './capture/frame.js';
import { ConfigError } from './config/load.js';
import { type ConfigChange, describeChange, diffConfig, isLive, mergeLive } from './config/reload.js';
import type { Config } from './config/schema.js';
import { DaemonError, errorMessage } from './errors.js';
import { DeviceSampler } from './health/device.js';
import { Metrics } from './health/metrics.js';
import { registerOpsRoutes } from './health/routes.js';
import { sdNotifyDetailed } from './health/sdnotify.js';
import { HealthServer, type HealthSource, type ReadyReport } from './health/server.js';
import { renderSnapshot } from './health/snapshot.js';
import { type StallReport, StallDetector } from './health/stall.js';
import { SystemdNotifier } from './health/systemd.js';
import { Engine } from './inference/engine.js';
import { loadModelPackage } from './inference/package.js';
import { AUTO_CHAIN, providerLibraryProblem } from './inference/providers.js';
import type { Inference } from './inference/types.js';
import type { Logger } from './log.js';
import { CameraLoop } from './loop.js';
import { EmbeddedBroker } from './publish/broker.js';
import { MqttConnection } from './publish/client.js';
import { type ResultPayload, resultPayload, statusPayload } from './publish/payload.js';
import { Topics } from './publish/topics.js';
import { VERSION } from './version.js';

/** sd_notify that says why it failed; no $NOTIFY_SOCKET is not a failure. */
function sendNotify(state: string): boolean {
  const r = sdNotifyDetailed(state);
  if (!r.sent && r.reason !== 'no-socket') throw new DaemonError('NOTIFY', r.message);
  return r.sent;
}

export interface AppOptions {
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
}

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
  private http: HealthServer | undefined;
  private engine: Engine | undefined;
  private readonly loops = new Map<string, CameraLoop>();
  private readonly resultSeq = new Map<string, number>();
  private readonly lastResult = new Map<string, unknown>();
  private readonly startedAtMs = Date.now();
  private publishFailures = 0;
  private state: 'starting' | 'running' | 'stopping' | 'stopped' = 'stopped';
  private readonly detector: StallDetector;
  private readonly notifier: SystemdNotifier;
  private readonly metrics: Metrics;
  private readonly device: DeviceSampler;
  private stallTimer: NodeJS.Timeout | undefined;
  /** Per camera: the frame behind the latest result, and its rendered snapshot once asked for. */
  private readonly latest = new Map<string, { frame: Frame; payload: ResultPayload; jpeg?: Promise<Buffer> }>();
  /** Set while an engine that may need a TensorRT build loads: the pipeline waits for it on purpose. */
  private engineBuild: { sinceMs: number; what: string } | undefined;
  private readonly inflight = new Set<Promise<Inference>>();
  private reloadChain: Promise<unknown> = Promise.resolve();
  private lastReload: ReloadReport | undefined;

  constructor(config: Config, log: Logger, opts: AppOptions = {}) {
    this.config = config;
    this.log = log;
    this.topics = new Topics(config.mqtt.prefix, config.deviceId);
    this.detector = new StallDetector({ now: Date.now, stallAfterMs: config.health.stallAfterSec * 1000, engineBuildLimitMs: config.health.engineBuildTimeoutSec * 1000 });
    this.notifier = new SystemdNotifier({
      send: opts.notify ?? sendNotify,
      env: opts.env,
      check: () => this.health(),
      statusLine: () => this.statusLine(),
      log: log.child({ component: 'systemd' }),
    });
    this.device = new DeviceSampler({ intervalMs: config.health.deviceSampleSec * 1000, log: log.child({ component: 'device' }) });
    this.metrics = new Metrics({
      cameras: () => [...this.loops].map(([name, l]) => ({ name, status: l.camera.status(), inferred: l.stats.inferred, failures: l.stats.failures })),
      model: () => this.engine && { name: this.engine.info.name, version: this.engine.info.version, provider: this.engine.provider },
      mqttConnected: () => this.mqtt?.connected,
      journal: () => this.journalStats(),
      publishFailures: () => this.publishFailures,
      healthy: () => this.health().ok,
      device: () => this.device.latest,
    });
  }

  /** The journal's outbox figures; undefined until the journal is wired in. */
  private journalStats(): { depth: number; evictions: number; accepting: boolean } | undefined {
    return undefined;
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
        snapshot: (camera) => this.snapshot(camera),
      });
      await this.http.start();
    }
    await this.device.start();

    let url = c.mqtt.url;
    if (url === 'embedded') {
      this.broker = new EmbeddedBroker(c.mqtt.embedded);
      await this.broker.start();
      url = this.broker.url;
      this.log.info({ url }, 'embedded mqtt broker listening');
    }

    this.engine = await this.loadEngine(c.model);

    this.mqtt = new MqttConnection({
      url,
      clientId: c.mqtt.clientId ?? `edge-inferd-${c.deviceId}`,
      protocolVersion: c.mqtt.protocolVersion ?? (this.broker ? 4 : 5),
      username: c.mqtt.username,
      password: c.mqtt.password,
      passwordFile: c.mqtt.passwordFile,
      keepaliveSec: c.mqtt.keepaliveSec,
      statusTopic: this.topics.status,
      birth: () => JSON.stringify(this.statusMessage('online')),
      will: JSON.stringify(statusPayload('offline', c.deviceId)),
      log: this.log.child({ component: 'mqtt' }),
    });
    await this.mqtt.start();

    for (const [name, camCfg] of Object.entries(c.cameras)) {
      if (!camCfg.enabled) continue;
      const camera = createCamera(name, camCfg);
      await camera.start();
      const loop = new CameraLoop({
        camera,
        infer: (frame) => this.infer(frame),
        onResult: (frame, inf) => this.publishResult(frame, inf),
        log: this.log.child({ component: 'loop', camera: name }),
      });
      this.loops.set(name, loop);
      loop.start();
    }
    this.state = 'running';
    this.log.info({ cameras: [...this.loops.keys()], provider: this.engine.provider }, 'running');
    this.notifier.ready();
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('no model loaded');
    return this.engine;
  }

  private async loadEngine(model: Config['model']): Promise<Engine> {
    const pkg = await loadModelPackage(model.path);
    const chain = model.providers === 'auto' ? AUTO_CHAIN : model.providers;
    // Without an engine cache TensorRT builds one first, which can take minutes on a Jetson.
    if (chain.includes('tensorrt') && providerLibraryProblem('tensorrt') === undefined) {
      this.engineBuild = { sinceMs: Date.now(), what: `tensorrt, ${pkg.manifest.name}` };
    }
    try {
      const engine = await Engine.load(pkg, {
        providers: model.providers,
        intraOpThreads: model.intraOpThreads,
        interOpThreads: model.interOpThreads,
        onAttempt: (a) =>
          a.ok
            ? this.log.info({ provider: a.provider, ms: Math.round(a.ms) }, 'execution provider loaded')
            : this.log.warn({ provider: a.provider, reason: a.error }, 'execution provider unavailable, trying the next'),
      });
      this.log.info({ model: engine.info, dir: pkg.dir }, 'model loaded');
      return engine;
    } finally {
      this.engineBuild = undefined;
    }
  }

  private infer(frame: Frame): Promise<Inference> {
    const p = this.requireEngine().infer(frame);
    this.inflight.add(p);
    p.then(
      () => this.inflight.delete(p),
      () => this.inflight.delete(p),
    );
    return p;
  }

  /**
   * Model swap on reload: the new engine loads next to the running one, takes over, and the old
   * one closes once the inferences in flight on it are done. If the new one fails to load, the old
   * one keeps running. (One method, so a warm-up-then-swap can replace its body.)
   */
  async swapModel(model: Config['model']): Promise<void> {
    const next = await this.loadEngine(model);
    const old = this.engine;
    this.engine = next;
    await Promise.allSettled([...this.inflight]);
    await old?.close().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'closing the previous model failed'));
    this.log.info({ model: next.info, previous: old?.info }, 'model swapped');
    this.mqtt?.publish(this.topics.status, JSON.stringify(this.statusMessage('online')), { qos: 1, retain: true }).catch(() => undefined);
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
      return { atMs, ok: false, applied: [], restartRequired: [], errors: [`not running (${this.state})`] };
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
      const pending = this.lastReload?.restartRequired ?? [];
      this.lastReload = { atMs, ok: false, applied: [], restartRequired: pending, errors };
      this.notifier.reloaded(`reload rejected (${errors.length} problem${errors.length === 1 ? '' : 's'}); running on the previous config`);
      return this.lastReload;
    }
    const changes = diffConfig(this.config, next);
    let applied = changes.filter((ch) => isLive(ch.path));
    const restart = changes.filter((ch) => !isLive(ch.path));
    const errors: string[] = [];
    if (applied.some((ch) => ch.path.startsWith('model.'))) {
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
    const report: ReloadReport = { atMs, ok: errors.length === 0, applied: applied.map(describeChange), restartRequired: restart.map(describeChange), errors };
    this.lastReload = report;
    if (applied.length) this.log.info({ changes: report.applied }, 'reload applied');
    if (restart.length) this.log.warn({ keys: restart.map((ch) => ch.path), changes: report.restartRequired }, 'reload: restart required for these changes (systemctl restart edge-inferd)');
    if (!changes.length) this.log.info('reload: no changes');
    this.notifier.reloaded(this.statusLine());
    return report;
  }

  private applyLive(applied: ConfigChange[]): void {
    const c = this.config;
    for (const ch of applied) {
      if (ch.path === 'log.level') this.log.level = c.log.level;
      else if (ch.path.startsWith('http.token')) this.http?.setToken(c.http.token);
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
    const model = this.engine ? `${this.engine.info.name} on ${this.engine.provider}` : 'no model';
    const mqtt = this.mqtt?.connected ? 'mqtt connected' : 'mqtt not connected';
    const h = this.state === 'running' ? this.health() : undefined;
    return `${this.state}: ${streaming}/${cams.length} cameras streaming, ${model}, ${mqtt}${h?.reason ? `; ${h.reason}` : ''}`;
  }

  /** The latest frame of a camera with its result drawn on it; rendered once per result. */
  private snapshot(camera: string): Promise<Buffer | undefined> {
    const entry = this.latest.get(camera);
    if (!entry) return Promise.resolve(undefined);
    if (!entry.jpeg) {
      const p = entry.payload;
      const best = p.top[0];
      entry.jpeg = renderSnapshot(entry.frame, {
        label: p.label,
        score: p.score,
        index: best?.index ?? 0,
        caption: `${camera} #${p.seq} ${p.ts}`,
      });
    }
    return entry.jpeg;
  }

  private publishResult(frame: Frame, inf: Inference): void {
    const mqtt = this.mqtt;
    const engine = this.engine;
    if (!mqtt || !engine) return;
    const seq = (this.resultSeq.get(frame.camera) ?? 0) + 1;
    this.resultSeq.set(frame.camera, seq);
    const payload = resultPayload({ deviceId: this.config.deviceId, seq, frame, inference: inf, model: engine.info, nowMs: Date.now() });
    this.lastResult.set(frame.camera, payload);
    this.latest.set(frame.camera, { frame, payload });
    this.metrics.observe(frame.camera, { ...inf.latencyMs, total: payload.latencyMs.total });
    mqtt.publish(this.topics.result(frame.camera), JSON.stringify(payload), { qos: this.config.mqtt.qos }).catch((err: unknown) => {
      this.publishFailures++;
      this.log.warn({ camera: frame.camera, seq, err: String(err) }, 'result publish failed');
    });
  }

  private statusMessage(state: 'online' | 'stopped') {
    const info = this.engine?.info;
    return statusPayload(state, this.config.deviceId, {
      version: VERSION,
      ...(info ? { model: { name: info.name, version: info.version, sha256: info.sha256 }, provider: info.provider } : {}),
      cameras: Object.keys(this.config.cameras).filter((n) => this.config.cameras[n].enabled),
    });
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
    await Promise.all([...this.loops.values()].map((l) => l.stop().catch((err: unknown) => this.log.warn({ err: String(err) }, 'camera stop failed'))));
    this.loops.clear();
    await this.mqtt?.stop(JSON.stringify(this.statusMessage('stopped')));
    this.mqtt = undefined;
    await this.engine?.close().catch(() => undefined);
    this.engine = undefined;
    await this.broker?.stop();
    this.broker = undefined;
    await this.http?.stop();
    this.http = undefined;
    this.state = 'stopped';
    this.log.info('stopped');
  }

  /**
   * /healthz and the systemd watchdog: the stall detector's verdict. Starting counts as waiting on
   * purpose (the start timeout guards it); stopping and stopped are not healthy.
   */
  health(): StallReport {
    const report = this.detector.check({
      cameras: [...this.loops].map(([name, loop]) => ({ name, state: loop.camera.status().state, fps: this.config.cameras[name]?.fps ?? 0, lastResultAtMs: loop.stats.lastResultAtMs })),
      engineBuild: this.engineBuild,
    });
    if (this.state === 'running') return report;
    if (this.state === 'starting' && report.ok) return { ...report, verdict: 'waiting', reason: report.reason ? `starting: ${report.reason}` : 'starting' };
    return { ...report, ok: false, verdict: 'stalled', reason: report.reason && this.state === 'starting' ? report.reason : this.state };
  }

  ready(): ReadyReport {
    const checks: ReadyReport['checks'] = {};
    checks.model = this.engine ? { ok: true, detail: `${this.engine.info.name} ${this.engine.info.version} on ${this.engine.provider}` } : { ok: false, detail: 'not loaded' };
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
      model: this.engine ? { ...this.engine.info, dir: this.engine.pkg.dir, providerAttempts: this.engine.attempts } : null,
      mqtt: this.mqtt ? { ...this.mqtt.state(), publishFailures: this.publishFailures } : null,
      cameras: Object.fromEntries(
        [...this.loops].map(([name, loop]) => [name, { ...loop.camera.status(), ...loop.stats, lastResult: this.lastResult.get(name) ?? null }]),
      ),
      health: this.health(),
      reload: this.lastReload ?? null,
      systemd: { watchdogUsec: this.notifier.watchdogUsec ?? null, ...this.notifier.counts },
    };
  }
}
