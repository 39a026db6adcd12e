import { createCamera } from './capture/index.js';
import type { Frame } from './capture/frame.js';
import type { Config } from './config/schema.js';
import { HealthServer, type HealthSource, type ReadyReport } from './health/server.js';
import { Engine } from './inference/engine.js';
import { loadModelPackage } from './inference/package.js';
import type { Inference } from './inference/types.js';
import { resultsRoute } from './journal/http.js';
import { Journal } from './journal/journal.js';
import type { Logger } from './log.js';
import { CameraLoop } from './loop.js';
import { EmbeddedBroker } from './publish/broker.js';
import { MqttConnection } from './publish/client.js';
import { Outbox } from './publish/outbox.js';
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
  private journal: Journal | undefined;
  private outbox: Outbox | undefined;
  private http: HealthServer | undefined;
  private engine: Engine | undefined;
  private readonly loops = new Map<string, CameraLoop>();
  private readonly resultSeq = new Map<string, number>();
  private readonly lastResult = new Map<string, unknown>();
  private readonly startedAtMs = Date.now();
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
    this.outbox = new Outbox({ journal: this.journal, transport: this.mqtt, window: c.mqtt.inflight, log: this.log.child({ component: 'outbox' }) });
    this.outbox.start();
    await this.mqtt.start();

    for (const [name, camCfg] of Object.entries(c.cameras)) {
      if (!camCfg.enabled) continue;
      const camera = createCamera(name, camCfg);
      await camera.start();
      const loop = new CameraLoop({
        camera,
        infer: (frame) => this.requireEngine().infer(frame),
        onResult: (frame, inf) => this.publishResult(frame, inf),
        log: this.log.child({ component: 'loop', camera: name }),
      });
      this.loops.set(name, loop);
      loop.start();
    }
    this.state = 'running';
    this.log.info({ cameras: [...this.loops.keys()], provider: this.engine.provider }, 'running');
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('no model loaded');
    return this.engine;
  }

  private publishResult(frame: Frame, inf: Inference): void {
    const outbox = this.outbox;
    const engine = this.engine;
    if (!outbox || !engine) return;
    const seq = (this.resultSeq.get(frame.camera) ?? 0) + 1;
    this.resultSeq.set(frame.camera, seq);
    const payload = resultPayload({ deviceId: this.config.deviceId, seq, frame, inference: inf, model: engine.info, nowMs: Date.now() });
    this.lastResult.set(frame.camera, payload);
    const policy = this.config.mqtt.topics.result;
    outbox.enqueue({
      topic: this.topics.result(frame.camera),
      payload: JSON.stringify(payload),
      qos: policy.qos,
      retain: policy.retain,
      camera: frame.camera,
      kind: 'result',
      expirySec: this.config.mqtt.resultExpirySec,
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
    this.log.info('stopping');
    await Promise.all([...this.loops.values()].map((l) => l.stop().catch((err: unknown) => this.log.warn({ err: String(err) }, 'camera stop failed'))));
    this.loops.clear();
    await this.outbox?.stop();
    this.outbox = undefined;
    await this.mqtt?.stop(JSON.stringify(this.statusMessage('stopped')));
    this.mqtt = undefined;
    this.journal?.stop();
    this.journal = undefined;
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
      const last = loop.stats.lastResultAtMs ?? this.startedAtMs;
      if (st.state === 'streaming' && now - last > limit) {
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
      mqtt: this.mqtt ? { ...this.mqtt.state(), outbox: this.outbox?.stats() ?? null } : null,
      journal: this.journal?.stats() ?? null,
      cameras: Object.fromEntries(
        [...this.loops].map(([name, loop]) => [name, { ...loop.camera.status(), ...loop.stats, lastResult: this.lastResult.get(name) ?? null }]),
      ),
    };
  }
}
