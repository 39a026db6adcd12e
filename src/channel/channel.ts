import type { Camera, CameraStatus, Frame } from '../capture/frame.js';
import { createCamera } from '../capture/index.js';
import type { ScaleTarget } from '../capture/uri.js';
import type { Clock } from '../clock.js';
import type { LiveReloadable } from '../component.js';
import type { ConfigChange } from '../config/reload.js';
import type { CameraConfig, Config, PublishConfig } from '../config/schema.js';
import { CameraDecider, type DecideCounters } from '../decide/policy.js';
import type { Decision, StableState } from '../decide/types.js';
import type { InferHooks } from '../inference/engine.js';
import { type Inference, type ModelInfo, NOTHING_LABEL, primaryOf } from '../inference/types.js';
import type { Logger } from '../log.js';
import { CameraLoop, type LoopStats } from './loop.js';
import { type ChannelPipeline, TrackEvents } from './tracks.js';
import type { TrackDecision } from '../decide/aggregate.js';
import { type AssessmentExtras, eventPayload, resultPayload, withoutLocal } from '../publish/payload.js';
import { errorMessage } from '../errors.js';
import type { ResultSink } from '../publish/result-sink.js';
import type { CameraStateName, ResultPayload } from '../publish/schemas.js';

/** Who hears what a channel does (health, metrics, snapshots, the retained status). */
export interface ChannelListener {
  /** The channel's state as health sees it changed: a camera state, or paused / resumed. */
  state(camera: string, state: CameraStateName): void;
  /** A frame was inferred (before the decide stage). */
  inferred(frame: Frame, inf: Inference): void;
}

export interface ChannelDeps {
  deviceId: string;
  clock: Clock;
  log: Logger;
  infer: (frame: Frame, hooks: InferHooks) => Promise<Inference>;
  /** The model loaded now (events name it). */
  model: () => ModelInfo | undefined;
  sink: ResultSink;
  listener: ChannelListener;
  /** Runs on each frame as it is read, before the camera may reuse its memory (snapshot copies). */
  keep?: (frame: Frame) => Frame;
  /** Tests and benchmarks may pass a camera; otherwise it is made from the config. */
  camera?: Camera;
  /** What capture scales frames to (the model's input), asked at each camera open. */
  target?: () => ScaleTarget | undefined;
  /** Whether frames should carry their full-resolution twin now (snapshots being looked at, crops). */
  wantFull?: () => boolean;
  /** Set for a camera that runs a pipeline: tracks, per-region aggregation, assessment events. */
  pipeline?: ChannelPipeline;
}

export interface ChannelStatus extends CameraStatus, LoopStats {
  decide: { policy: PublishConfig['policy'] } & DecideCounters;
  lastResult: ResultPayload | null;
  pipeline?: ReturnType<TrackEvents['counters']>;
}

/**
 * One camera's path from frame to message: the capture source, the frame loop, the decide stage,
 * and the per-camera counters (seq goes on from the journal, so it never repeats across a
 * restart). It sends what the policy lets out to the result sink, and can be paused and resumed.
 * Its config slice is `cameras.<name>`; it takes `publish.*` live (a fresh decider: the
 * change/stable history starts afresh).
 */
export class CameraChannel implements LiveReloadable<PublishConfig> {
  readonly name: string;
  readonly liveKeys: readonly string[];
  readonly camera: Camera;
  private readonly deps: ChannelDeps;
  private readonly loop: CameraLoop;
  private publish: PublishConfig;
  private decider: CameraDecider;
  private readonly tracks: TrackEvents | undefined;
  private resultSeq = 0;
  private eventSeq = 0;
  private lastResult: ResultPayload | null = null;
  /** Track events waiting behind an assessment's heatmaps, and the chain they wait on. */
  private eventsWaiting = 0;
  private trackEvents: Promise<void> = Promise.resolve();
  /** privacy.includeCrops: local: crops and heatmaps go to loopback surfaces only (the sink keeps them off the journal). */
  private readonly localOnly: boolean;
  /** Set once started (and kept after a stop, so the final status shows the camera stopped). */
  private wasStarted = false;

  constructor(name: string, config: CameraConfig, deps: ChannelDeps) {
    this.name = name;
    this.liveKeys = [`cameras.${name}.publish.*`];
    this.deps = deps;
    this.publish = config.publish;
    this.decider = this.newDecider();
    this.tracks = deps.pipeline && new TrackEvents(deps.pipeline);
    this.localOnly = config.privacy?.includeCrops === 'local';
    this.camera =
      deps.camera ??
      createCamera(name, config, {
        log: deps.log.child({ component: 'camera' }),
        clock: deps.clock,
        target: deps.target,
        onState: () => this.deps.listener.state(this.name, this.state),
      });
    const camera = this.camera;
    const { keep, wantFull } = deps;
    this.loop = new CameraLoop({
      camera,
      infer: deps.infer,
      // Each frame read says whether the next ones should come with their full-resolution twin.
      keep: (f) => {
        camera.wantFull?.(wantFull?.() ?? false);
        return keep ? keep(f) : f;
      },
      onResult: (frame, inf) => this.onInference(frame, inf),
      log: deps.log.child({ component: 'loop', camera: name }),
      clock: deps.clock,
    });
  }

  async start(): Promise<void> {
    // Counters go on from the journal: seq never repeats for a camera, even across a crash.
    this.resultSeq = this.deps.sink.lastSeq(this.name, 'result');
    this.eventSeq = this.deps.sink.lastSeq(this.name, 'event');
    await this.camera.start();
    this.loop.start();
    this.wasStarted = true;
  }

  get started(): boolean {
    return this.wasStarted;
  }

  /** Stops taking frames and waits for the inference in flight: nothing is published after it. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.trackEvents;
  }

  slice(config: Config): PublishConfig {
    return config.cameras[this.name]?.publish ?? this.publish;
  }

  apply(publish: PublishConfig, changes: ConfigChange[]): void {
    if (!changes.length) return;
    this.publish = publish;
    this.decider = this.newDecider();
  }

  get paused(): boolean {
    return this.loop.paused;
  }

  /** The state the retained status and health show: the camera's, or `paused`. */
  get state(): CameraStateName {
    const st = this.camera.status().state;
    return this.loop.paused && st !== 'stopped' ? 'paused' : st;
  }

  /** Pause waits for the inference in flight, then clears a stable label (event `cleared`, reason `paused`). */
  async pause(): Promise<boolean> {
    if (this.loop.paused) return false;
    await this.loop.pause();
    this.deps.listener.state(this.name, this.state);
    for (const e of this.decider.reset(this.deps.clock.now(), 'paused')) if (!this.tracks) this.sendEvent(e);
    for (const d of this.tracks?.reset(this.deps.clock.now()) ?? []) this.sendTrackEvent(d);
    await this.trackEvents;
    // What came before the pause goes to the connection before the caller answers anyone.
    this.deps.sink.flush();
    return true;
  }

  resume(): boolean {
    if (!this.loop.paused) return false;
    this.loop.resume();
    this.deps.listener.state(this.name, this.state);
    return true;
  }

  status(): ChannelStatus {
    const pipeline = this.tracks?.counters();
    return {
      ...this.camera.status(),
      ...this.loop.stats,
      decide: { policy: this.publish.policy, ...this.counters() },
      lastResult: this.lastResult,
      ...(pipeline ? { pipeline } : {}),
    };
  }

  /** The decide counters; a pipeline camera's events are its tracks' (its label events are not sent): cleared counts tracks cleared. */
  counters(): DecideCounters {
    const c = this.decider.counters();
    return this.tracks ? { ...c, events: { change: 0, stable: 0, cleared: this.tracks.counters().cleared } } : c;
  }

  private newDecider(): CameraDecider {
    return new CameraDecider(this.publish, { clock: this.deps.clock });
  }

  /** Every inference goes through the decide stage: the policy lets the result out or holds it back; events go out regardless. */
  private onInference(frame: Frame, inf: Inference): void {
    const tracked = this.tracks?.observe(frame, inf) ?? [];
    this.deps.listener.inferred(frame, inf);
    const best = primaryOf(inf) ?? { label: NOTHING_LABEL, score: 1 };
    const d = this.decider.observe({ label: best.label, score: best.score, atMs: frame.capturedAtMs });
    if (d.publish) this.sendResult(frame, inf, d.stable);
    // A pipeline camera's events are about its tracks; the top label's change/stable/cleared would only say "face" or "none".
    if (!this.tracks) for (const e of d.events) this.sendEvent(e, frame);
    for (const t of tracked) this.sendTrackEvent(t, frame);
    // Journaled and handed to the connection now, in the turn that produced them, not at the next
    // one: at a camera's rate nothing else would share the transaction, and waiting adds latency.
    if (d.publish || d.events.length || tracked.length) this.deps.sink.flush();
  }

  /**
   * Track events leave in the order they were decided. An assessment waiting for its heatmaps
   * (explain: assessment) holds back the events after it until they are in; without one waiting,
   * an event goes at once.
   */
  private sendTrackEvent(decision: TrackDecision, frame?: Frame): void {
    const tracks = this.tracks;
    if (!this.publish.events || !tracks) return;
    if (!this.eventsWaiting && !tracks.explaining(decision)) {
      // No heatmap to wait for: its crops (if any) are at hand already.
      this.emitTrackEvent(decision, frame, tracks.extrasNow(decision));
      return;
    }
    this.eventsWaiting++;
    const extras = tracks.extrasOf(decision).catch((err: unknown) => {
      this.deps.log.warn({ err: errorMessage(err), track: decision.track }, 'assessment sent without heatmaps: explaining failed');
      return undefined;
    });
    this.trackEvents = this.trackEvents
      .then(async () => this.emitTrackEvent(decision, frame, await extras))
      .finally(() => this.eventsWaiting--);
  }

  private emitTrackEvent(decision: TrackDecision, frame: Frame | undefined, extras: AssessmentExtras | undefined): void {
    if (!this.tracks) return;
    const payload = this.tracks.payload({
      deviceId: this.deps.deviceId,
      camera: this.name,
      seq: this.eventSeq + 1,
      decision,
      frame,
      nowMs: this.deps.clock.now(),
      extras,
    });
    if (!payload) return;
    this.eventSeq++;
    this.deps.sink.send('event', this.name, payload, this.localOnly);
  }

  private sendResult(frame: Frame, inf: Inference, stable: StableState | undefined): void {
    // The model that computed it, which after a hot swap may not be the one loaded now.
    const payload = resultPayload({
      deviceId: this.deps.deviceId,
      seq: ++this.resultSeq,
      frame,
      inference: inf,
      model: inf.model,
      nowMs: this.deps.clock.now(),
      policy: this.publish.policy,
      stable,
    });
    this.lastResult = this.localOnly ? withoutLocal(payload) : payload;
    this.deps.sink.send('result', this.name, payload, this.localOnly);
  }

  private sendEvent(decision: Decision, frame?: Frame): void {
    const model = this.deps.model();
    if (!model || !this.publish.events) return;
    const payload = eventPayload({
      deviceId: this.deps.deviceId,
      camera: this.name,
      seq: ++this.eventSeq,
      decision,
      frame,
      model,
      rule: this.publish.stable,
      nowMs: this.deps.clock.now(),
    });
    this.deps.sink.send('event', this.name, payload);
  }
}
