import { createCamera } from './capture/index.js';
import type { Frame } from './capture/frame.js';
import { frameToJpeg } from './capture/jpeg.js';
import type { Config } from './config/schema.js';
import { CameraDecider } from './decide/policy.js';
import type { Decision, StableState } from './decide/types.js';
import { errorMessage } from './errors.js';
import { HealthServer, type HealthSource, type ReadyReport } from './health/server.js';
import { Engine } from './inference/engine.js';
import { loadModelPackage } from './inference/package.js';
import type { Inference } from './inference/types.js';
import type { Logger } from './log.js';
import { CameraLoop } from './loop.js';
import { EmbeddedBroker } from './publish/broker.js';
import { MqttConnection } from './publish/client.js';
import { CommandError, CommandHandler, type PauseResult, type Reloader } from './publish/commands.js';
import { HomeAssistantDiscovery } from './publish/homeassistant.js';
import { eventPayload, resultPayload, statusPayload } from './publish/payload.js';
import type { CameraStateName, SnapshotResult } from './publish/schemas.js';
import { StatsReporter } from './publish/stats.js';
import { Topics } from './publish/topics.js';
import { VERSION } from './version.js';

/** What the process around the app provides. */
export interface AppDeps {
  /** The `reload` command's action (the same as SIGHUP); without it `reload` answers UNAVAILABLE. */
  reloader?: Reloader;
  /** Monotonic clock in ms for the publish policies; performance.now by default. */
  monotonicNow?: () => number;
}

/** How often the frame kept for snapshots is refreshed. */
const SNAPSHOT_KEEP_MS = 1000;

/**
 * The composition root: the only place that knows every component. Components start in dependency
 * order (http first so probes answer during start-up) and stop in reverse.
 */
export class App implements HealthSource {
  readonly config: Config;
  private readonly log: Logger;
  private readonly topics: Topics;
  private broker: EmbeddedBroker | undefined;
  private mqtt: MqttConnection | undefined;
  private http: HealthServer | undefined;
  private engine: Engine | undefined;
  private readonly loops = new Map<string, CameraLoop>();
  private readonly resultSeq = new Map<string, number>();
  private readonly eventSeq = new Map<string, number>();
  private readonly lastResult = new Map<string, unknown>();
  private readonly deciders = new Map<string, CameraDecider>();
  /** A copy of a recent frame inferred per camera (at most SNAPSHOT_KEEP_MS old), for the snapshot command. */
  private readonly lastFrame = new Map<string, Frame>();
  private readonly deps: AppDeps;
  private stats: StatsReporter | undefined;
  private ha: HomeAssistantDiscovery | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Resolves when start() has finished: commands wait for it. */
  private readonly running: Promise<void>;
  private markRunning: () => void = () => undefined;
  private lastCameraState = '';
  private readonly startedAtMs = Date.now();
  private publishFailures = 0;
  private state: 'starting' | 'running' | 'stopping' | 'stopped' = 'stopped';

  constructor(config: Config, log: Logger, deps: AppDeps = {}) {
    this.config = config;
    this.log = log;
    this.deps = deps;
    this.topics = new Topics(config.mqtt.prefix, config.deviceId);
    this.running = new Promise((r) => (this.markRunning = r));
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

    if (c.http.enabled) {
      this.http = new HealthServer({ host: c.http.host, port: c.http.port, source: this, log: this.log.child({ component: 'http' }) });
      await this.http.start();
    }

    let url = c.mqtt.url;
    if (url === 'embedded') {
      this.broker = new EmbeddedBroker(c.mqtt.embedded);
      await this.broker.start();
      url = this.broker.url;
      this.log.info({ url }, 'embedded mqtt broker listening');
    }

    const pkg = await loadModelPackage(c.model.path);
    this.engine = await Engine.load(pkg, {
      providers: c.model.providers,
      intraOpThreads: c.model.intraOpThreads,
      interOpThreads: c.model.interOpThreads,
      onAttempt: (a) =>
        a.ok
          ? this.log.info({ provider: a.provider, ms: Math.round(a.ms) }, 'execution provider loaded')
          : this.log.warn({ provider: a.provider, reason: a.error }, 'execution provider unavailable, trying the next'),
    });
    this.log.info({ model: this.engine.info, dir: pkg.dir }, 'model loaded');

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
    this.listenForCommands(this.mqtt);
    await this.mqtt.start();

    for (const [name, camCfg] of Object.entries(c.cameras)) {
      if (!camCfg.enabled) continue;
      const camera = createCamera(name, camCfg, { log: this.log.child({ component: 'camera' }) });
      await camera.start();
      this.deciders.set(name, new CameraDecider(camCfg.publish, this.deps.monotonicNow ?? (() => performance.now())));
      const loop = new CameraLoop({
        camera,
        infer: (frame) => this.requireEngine().infer(frame),
        onResult: (frame, inf) => this.onInference(frame, inf),
        log: this.log.child({ component: 'loop', camera: name }),
      });
      this.loops.set(name, loop);
      loop.start();
    }
    this.startControl(this.mqtt);
    this.state = 'running';
    this.markRunning();
    this.log.info({ cameras: [...this.loops.keys()], provider: this.engine.provider }, 'running');
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('no model loaded');
    return this.engine;
  }

  /** Every inference goes through the camera's decide stage: the policy lets the result out or holds it back; events go out regardless. */
  private onInference(frame: Frame, inf: Inference): void {
    const decider = this.deciders.get(frame.camera);
    if (!decider) return;
    this.keepForSnapshot(frame);
    this.stats?.recordLatency(frame.camera, inf.latencyMs.preprocess + inf.latencyMs.inference + inf.latencyMs.postprocess);
    const best = inf.top[0];
    const d = decider.observe({ label: best.label, score: best.score, atMs: frame.capturedAtMs });
    if (d.publish) this.publishResult(frame, inf, d.stable);
    for (const e of d.events) this.publishEvent(frame.camera, e, frame);
  }

  /**
   * Keeps a copy of the latest inferred frame per camera, at most one per SNAPSHOT_KEEP_MS: a
   * GStreamer camera reuses its frame buffer (Frame.data), and copying every frame would allocate
   * a full frame each time.
   */
  private keepForSnapshot(frame: Frame): void {
    const kept = this.lastFrame.get(frame.camera);
    if (kept && frame.capturedAtMs - kept.capturedAtMs < SNAPSHOT_KEEP_MS && frame.capturedAtMs >= kept.capturedAtMs) return;
    this.lastFrame.set(frame.camera, { ...frame, data: frame.data.slice() });
  }

  private publishResult(frame: Frame, inf: Inference, stable: StableState | undefined): void {
    const engine = this.engine;
    if (!this.mqtt || !engine) return;
    const seq = (this.resultSeq.get(frame.camera) ?? 0) + 1;
    this.resultSeq.set(frame.camera, seq);
    const policy = this.config.cameras[frame.camera].publish.policy;
    const payload = resultPayload({ deviceId: this.config.deviceId, seq, frame, inference: inf, model: engine.info, nowMs: Date.now(), policy, stable });
    this.lastResult.set(frame.camera, payload);
    this.send(this.topics.result(frame.camera), payload, { camera: frame.camera, seq });
  }

  private publishEvent(camera: string, decision: Decision, frame?: Frame): void {
    const engine = this.engine;
    const cfg = this.config.cameras[camera].publish;
    if (!this.mqtt || !engine || !cfg.events) return;
    const seq = (this.eventSeq.get(camera) ?? 0) + 1;
    this.eventSeq.set(camera, seq);
    const payload = eventPayload({ deviceId: this.config.deviceId, camera, seq, decision, frame, model: engine.info, rule: cfg.stable, nowMs: Date.now() });
    this.send(this.topics.event(camera), payload, { camera, event: decision.type, seq });
  }

  /** Results and events: QoS mqtt.qos, not retained. */
  private send(topic: string, payload: object, ctx: Record<string, unknown>): void {
    this.mqtt?.publish(topic, JSON.stringify(payload), { qos: this.config.mqtt.qos }).catch((err: unknown) => {
      this.publishFailures++;
      this.log.warn({ ...ctx, topic, err: String(err) }, 'publish failed');
    });
  }

  private statusMessage(state: 'online' | 'stopped') {
    const info = this.engine?.info;
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
        publish: (topic, payload) => mqtt.publish(topic, payload, { qos: 1 }),
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
    this.mqtt.publish(this.topics.stats, JSON.stringify(payload), { qos: 0 }).catch(() => undefined);
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
    const frame = this.lastFrame.get(names[0]);
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
    this.log.info('stopping');
    for (const t of this.timers.splice(0)) clearInterval(t);
    await Promise.all([...this.loops.values()].map((l) => l.stop().catch((err: unknown) => this.log.warn({ err: String(err) }, 'camera stop failed'))));
    const finalStatus = JSON.stringify(this.statusMessage('stopped'));
    this.loops.clear();
    await this.mqtt?.stop(finalStatus);
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

  health() {
    if (this.state !== 'running') return { ok: this.state === 'starting', reason: this.state };
    const now = Date.now();
    for (const [name, loop] of this.loops) {
      const st = loop.camera.status();
      const fps = this.config.cameras[name].fps ?? 2;
      const limit = Math.max(10_000, 5000 / fps);
      const last = Math.max(loop.stats.lastResultAtMs ?? this.startedAtMs, loop.stats.resumedAtMs ?? 0);
      if (st.state === 'streaming' && !loop.paused && now - last > limit) {
        return { ok: false, reason: `camera ${name}: no result for ${Math.round((now - last) / 1000)} s` };
      }
    }
    return { ok: true };
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
    checks.mqtt = { ok: mq?.connected === true, detail: mq ? (mq.connected ? `connected to ${mq.url}` : `not connected to ${mq.url}${mq.lastError ? `: ${mq.lastError}` : ''}`) : 'not started' };
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
        [...this.loops].map(([name, loop]) => [
          name,
          { ...loop.camera.status(), ...loop.stats, decide: { policy: this.config.cameras[name].publish.policy, ...this.deciders.get(name)?.counters() }, lastResult: this.lastResult.get(name) ?? null },
        ]),
      ),
    };
  }
}
