import { createCamera } from './capture/index.js';
import type { Frame } from './capture/frame.js';
import type { Config } from './config/schema.js';
import { EventEmitter } from 'node:events';
import { inferRoute } from './health/infer-route.js';
import { HealthServer, type HealthSource, type ReadyReport } from './health/server.js';
import { ModelHost, type ReloadResult } from './inference/host.js';
import { loadEngine, logEngineEvent, sessionOptions } from './inference/load.js';
import type { EngineEvent } from './inference/providers.js';
import type { Inference } from './inference/types.js';
import type { Logger } from './log.js';
import { CameraLoop } from './loop.js';
import { EmbeddedBroker } from './publish/broker.js';
import { MqttConnection } from './publish/client.js';
import { resultPayload, statusPayload } from './publish/payload.js';
import { Topics } from './publish/topics.js';
import { VERSION } from './version.js';

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
  private model: ModelHost | undefined;
  /** Engine events (`engine-build-start`/`-end`...) for health/systemd, e.g. to extend start-up timeouts. */
  readonly engineEvents = new EventEmitter<{ event: [EngineEvent] }>();
  private readonly loops = new Map<string, CameraLoop>();
  private readonly resultSeq = new Map<string, number>();
  private readonly lastResult = new Map<string, unknown>();
  private readonly startedAtMs = Date.now();
  private publishFailures = 0;
  private state: 'starting' | 'running' | 'stopping' | 'stopped' = 'stopped';

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    this.topics = new Topics(config.mqtt.prefix, config.deviceId);
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

    const modelLog = this.log.child({ component: 'model' });
    const onEvent = (e: EngineEvent) => (logEngineEvent(modelLog, e), this.engineEvents.emit('event', e));
    this.model = new ModelHost({ load: (dir, hooks) => loadEngine(dir, { ...sessionOptions(c.model), nice: c.model.workerNice, onEvent, ...hooks }), log: modelLog });
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
        infer: (frame) => this.requireModel().infer(frame),
        onResult: (frame, inf) => this.publishResult(frame, inf),
        log: this.log.child({ component: 'loop', camera: name }),
      });
      this.loops.set(name, loop);
      loop.start();
    }
    this.state = 'running';
    this.log.info({ cameras: [...this.loops.keys()], provider: engine.info.provider }, 'running');
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

  private publishResult(frame: Frame, inf: Inference): void {
    const mqtt = this.mqtt;
    if (!mqtt) return;
    const seq = (this.resultSeq.get(frame.camera) ?? 0) + 1;
    this.resultSeq.set(frame.camera, seq);
    const payload = resultPayload({ deviceId: this.config.deviceId, seq, frame, inference: inf, model: inf.model, nowMs: Date.now() });
    this.lastResult.set(frame.camera, payload);
    mqtt.publish(this.topics.result(frame.camera), JSON.stringify(payload), { qos: this.config.mqtt.qos }).catch((err: unknown) => {
      this.publishFailures++;
      this.log.warn({ camera: frame.camera, seq, err: String(err) }, 'result publish failed');
    });
  }

  private statusMessage(state: 'online' | 'stopped') {
    const info = this.model?.engine?.info;
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
    this.log.info('stopping');
    await Promise.all([...this.loops.values()].map((l) => l.stop().catch((err: unknown) => this.log.warn({ err: String(err) }, 'camera stop failed'))));
    this.loops.clear();
    await this.mqtt?.stop(JSON.stringify(this.statusMessage('stopped')));
    this.mqtt = undefined;
    await this.model?.stop().catch(() => undefined);
    this.model = undefined;
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
      const last = loop.stats.lastResultAtMs ?? this.startedAtMs;
      if (st.state === 'streaming' && now - last > limit) {
        return { ok: false, reason: `camera ${name}: no result for ${Math.round((now - last) / 1000)} s` };
      }
    }
    return { ok: true };
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
      model: this.model?.engine
        ? { ...this.model.engine.info, dir: this.model.dir, providerAttempts: this.model.engine.attempts, engineCache: this.model.engine.engineCache ?? null, lastReload: this.model.lastReload ?? null }
        : null,
      mqtt: this.mqtt ? { ...this.mqtt.state(), publishFailures: this.publishFailures } : null,
      cameras: Object.fromEntries(
        [...this.loops].map(([name, loop]) => [name, { ...loop.camera.status(), ...loop.stats, lastResult: this.lastResult.get(name) ?? null }]),
      ),
    };
  }
}
