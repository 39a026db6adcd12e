import type { Clock, Timer } from '../clock.js';
import type { LiveReloadable } from '../component.js';
import type { Config } from '../config/schema.js';
import type { DecideCounters } from '../decide/policy.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import type { MqttConnection } from './client.js';
import { CommandError, CommandHandler, type CommandHandlers, type PauseResult } from './commands.js';
import type { Inference } from '../inference/types.js';
import { HomeAssistantDiscovery, valuesOf } from './homeassistant.js';
import type { CameraStateName, SnapshotResult, StatusPayload } from './schemas.js';
import { StatsReporter } from './stats.js';
import type { Topics } from './topics.js';

/** What commands and stats need of a camera (a camera channel, seen from here). */
export interface ControlledCamera {
  readonly name: string;
  readonly paused: boolean;
  readonly state: CameraStateName;
  pause(): Promise<boolean>;
  resume(): boolean;
  counters(): DecideCounters;
  status(): { failures: number; dropped: number };
}

export interface ControlSlice {
  deviceId: string;
  commands: Config['commands'];
  homeassistant: Config['homeassistant'];
  stats: Config['stats'];
  statsTopic: Config['mqtt']['topics']['stats'];
}

export interface ControlDeps {
  config: ControlSlice;
  mqtt: MqttConnection;
  topics: Topics;
  cameras: readonly ControlledCamera[];
  clock: Clock;
  log: Logger;
  /** Resolves once the daemon runs: a command the broker kept for us waits for its camera. */
  ready: Promise<void>;
  snapshot(camera: string, quality: number, maxWidth: number | undefined): Promise<SnapshotResult>;
  reload: CommandHandlers['reload'];
  /** cmd/model/* (the model rollout); absent: those commands answer UNAVAILABLE. */
  model?: CommandHandlers['model'];
  status(): unknown;
  /** The retained status message, as published at birth. */
  statusMessage(): StatusPayload;
  /** The model shown on the Home Assistant device card. */
  modelName(): string;
  publishFailures(): number;
}

/**
 * The device's MQTT side beyond results: commands on `cmd/<name>` (subscribed before the first
 * connect, so a command the broker kept is not missed; run once the cameras are up), Home
 * Assistant discovery, the periodic stats message, and the retained status republished when a
 * camera's state changes. It takes `mqtt.topics.stats.*` live.
 */
export class MqttControl implements LiveReloadable<ControlSlice['statsTopic']> {
  readonly name = 'control';
  readonly liveKeys = ['mqtt.topics.stats.*'];
  private readonly d: ControlDeps;
  private statsTopic: ControlSlice['statsTopic'];
  private stats: StatsReporter | undefined;
  private timer: Timer | undefined;
  private lastStates = '';
  private running = false;
  private readonly startedAtMs: number;
  private ha: HomeAssistantDiscovery | undefined;

  constructor(deps: ControlDeps) {
    this.d = deps;
    this.statsTopic = deps.config.statsTopic;
    this.startedAtMs = deps.clock.now();
    const c = deps.config;
    if (c.commands.enabled) {
      const commands = new CommandHandler({
        topics: deps.topics,
        deviceId: c.deviceId,
        maxBytes: c.commands.maxBytes,
        publish: (topic, payload) => deps.mqtt.publish(topic, payload, { qos: 1, retain: false }),
        log: deps.log.child({ component: 'commands' }),
        ready: deps.ready,
        clock: deps.clock,
        handlers: {
          snapshot: (a) => deps.snapshot(this.one(a.camera), a.quality, a.maxWidth),
          reload: () => deps.reload(),
          pause: (camera) => this.setPaused(camera, true),
          resume: (camera) => this.setPaused(camera, false),
          status: () => deps.status(),
          model: deps.model,
        },
      });
      // Registered now, subscribed at every connect: the first connect already has it.
      deps.mqtt.subscribe(deps.topics.commandFilter, commands.onMessage, { qos: 1 });
      // Also without a rollout: a model command then gets UNAVAILABLE rather than silence.
      deps.mqtt.subscribe(deps.topics.modelCommandFilter, commands.onMessage, { qos: 1 });
    }
  }

  /** Home Assistant discovery and the stats timer, once the cameras run. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const { config: c, mqtt, clock } = this.d;
    if (c.homeassistant.enabled) {
      this.ha ??= new HomeAssistantDiscovery({
        prefix: c.homeassistant.prefix,
        deviceId: c.deviceId,
        topics: this.d.topics,
        version: VERSION,
        model: () => this.d.modelName(),
        log: this.d.log.child({ component: 'homeassistant' }),
      });
      this.ha.attach(
        mqtt,
        this.d.cameras.map((cam) => cam.name),
      );
    }
    if (c.stats.intervalSec > 0) {
      this.stats = new StatsReporter({ deviceId: c.deviceId, intervalSec: c.stats.intervalSec });
      this.timer = clock.setInterval(() => this.publishStats(), c.stats.intervalSec * 1000);
    }
    // The birth went out before the cameras started: say how they are now.
    this.lastStates = '';
    this.cameraStateChanged();
  }

  stop(): void {
    this.running = false;
    this.d.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  slice(config: Config): ControlSlice['statsTopic'] {
    return config.mqtt.topics.stats;
  }

  apply(statsTopic: ControlSlice['statsTopic']): void {
    this.statsTopic = statsTopic;
  }

  /** A camera's inference: Home Assistant learns the named values it carries (regress models). */
  observed(camera: string, inf: Inference): void {
    this.ha?.observe(camera, valuesOf(inf));
  }

  /** A result's processing time, for the stats message. */
  recordLatency(camera: string, ms: number): void {
    this.stats?.recordLatency(camera, ms);
  }

  /** A camera changed state: republish the retained status (the birth covers reconnects). */
  cameraStateChanged(): void {
    const now = this.states();
    if (now === this.lastStates || !this.running || !this.d.mqtt.connected) return;
    this.lastStates = now;
    this.publishStatus();
  }

  /** The retained status again (a camera changed, the model was swapped). */
  publishStatus(): void {
    if (!this.running) return;
    this.d.mqtt.publish(this.d.topics.status, JSON.stringify(this.d.statusMessage()), { qos: 1, retain: true }).catch(() => undefined);
  }

  private states(): string {
    return JSON.stringify(this.d.cameras.map((cam) => [cam.name, cam.state]));
  }

  private publishStats(): void {
    if (!this.stats) return;
    const cameras = Object.fromEntries(
      this.d.cameras.map((cam) => {
        const st = cam.status();
        return [cam.name, { state: cam.state, counters: cam.counters(), failures: st.failures, dropped: st.dropped }];
      }),
    );
    const mq = this.d.mqtt.state();
    const payload = this.stats.build(
      {
        cameras,
        mqtt: { connected: mq.connected, connects: mq.connects, publishFailures: this.d.publishFailures() },
        startedAtMs: this.startedAtMs,
      },
      this.d.clock.now(),
    );
    this.d.mqtt.publish(this.d.topics.stats, JSON.stringify(payload), this.statsTopic).catch(() => undefined);
  }

  private pick(camera: string | undefined): ControlledCamera[] {
    const all = this.d.cameras;
    if (camera === undefined) return [...all];
    const found = all.find((c) => c.name === camera);
    if (!found) throw new CommandError('UNKNOWN_CAMERA', `no camera "${camera}" (cameras: ${all.map((c) => c.name).join(', ')})`);
    return [found];
  }

  /** The one camera a snapshot is of: named, or the only one. */
  private one(camera: string | undefined): string {
    const names = this.pick(camera).map((c) => c.name);
    if (names.length !== 1)
      throw new CommandError('BAD_REQUEST', `camera: name one of ${names.join(', ')}`, [
        `camera: required with more than one camera (cameras: ${names.join(', ')})`,
      ]);
    return names[0];
  }

  /** Pause waits for the inference in flight (nothing is published for the camera after the answer). */
  private async setPaused(camera: string | undefined, paused: boolean): Promise<PauseResult> {
    const changed: string[] = [];
    for (const cam of this.pick(camera)) if (await (paused ? cam.pause() : cam.resume())) changed.push(cam.name);
    if (changed.length) this.d.log.info({ cameras: changed }, paused ? 'paused' : 'resumed');
    this.cameraStateChanged();
    return { changed, paused: this.d.cameras.filter((c) => c.paused).map((c) => c.name) };
  }
}
