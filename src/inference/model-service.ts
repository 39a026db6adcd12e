import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Frame } from '../capture/frame.js';
import type { ScaleTarget } from '../capture/uri.js';
import type { Clock } from '../clock.js';
import type { LiveReloadable, ReloadRefusal } from '../component.js';
import type { ConfigChange } from '../config/reload.js';
import type { Config } from '../config/schema.js';
import { DaemonError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CropRequest, CropsInference } from './crop.js';
import type { EngineCachePlan } from './engine-cache.js';
import type { InferenceEngine, InferHooks } from './engine.js';
import { type EngineLoader, ModelHost, type ReloadResult } from './host.js';
import { loadEngine, logEngineEvent, sessionOptions } from './load.js';
import type { EngineEvent, ProviderAttempt } from './providers.js';
import type { Inference, ModelInfo } from './types.js';

export type ModelConfig = Config['model'];

export interface ModelStatus extends ModelInfo {
  dir: string;
  providerAttempts: ProviderAttempt[];
  engineCache: EngineCachePlan | null;
  lastReload: ReloadResult | null;
}

/** What the model service tells others: an engine (TensorRT) build started or ended, the model was swapped. */
export interface ModelListener {
  buildStarted(what: string): void;
  buildEnded(): void;
  swapped(info: ModelInfo): void;
}

/**
 * The model in use: the host that hot-swaps engines, the `model` config slice it loads with, and
 * engine-build tracking. It takes `model.*` live (except `inferMaxBytes`, read by the HTTP route at
 * start): a new engine loads beside the running one and takes over; if it fails the old one keeps
 * running and the reload reports why. A reload with no model key changed still swaps when the
 * package on disk is not the one running (`systemctl reload` after copying a new package over the
 * old one).
 */
export class ModelService implements LiveReloadable<ModelConfig> {
  readonly name = 'model';
  readonly liveKeys = [
    'model.path',
    'model.providers',
    'model.intraOpThreads',
    'model.interOpThreads',
    'model.intraOpSpinning',
    'model.workerNice',
    'model.gpuId',
    'model.cacheDir',
  ];
  private cfg: ModelConfig;
  private readonly host: ModelHost;
  private readonly log: Logger;
  private readonly listener: ModelListener;

  private readonly resolve: (configured: string) => string;
  /** False when no camera runs the one model (every camera runs a pipeline): nothing is loaded for it. */
  readonly inUse: boolean;

  /**
   * `resolve`: the package folder to use for the configured `model.path` (a model installed over
   * MQTT overrides it, see src/rollout/store.ts); default the configured path itself. `inUse`
   * false: the service loads nothing (see modelInUse), takes reloads as config only, and refuses
   * frames with MODEL_UNUSED.
   */
  constructor(opts: {
    config: ModelConfig;
    log: Logger;
    listener: ModelListener;
    clock?: Clock;
    resolve?: (configured: string) => string;
    inUse?: boolean;
  }) {
    this.cfg = opts.config;
    this.inUse = opts.inUse ?? true;
    this.resolve = opts.resolve ?? ((p) => p);
    this.log = opts.log;
    this.listener = opts.listener;
    // Reads this.cfg at each load, so a reload with new providers/threads uses them.
    const hostLoad: EngineLoader = (dir, hooks) =>
      loadEngine(dir, { ...sessionOptions(this.cfg), nice: this.cfg.workerNice, ...hooks, onEvent: (e) => this.onEngineEvent(e) });
    this.host = new ModelHost({ load: hostLoad, log: opts.log, clock: opts.clock });
  }

  /** Loads the configured package; throws if it cannot (there is nothing to fall back to). */
  async start(): Promise<void> {
    if (!this.inUse) return void this.log.info('model not loaded: every camera runs a pipeline');
    const dir = this.resolve(this.cfg.path);
    const engine = await this.host.start(dir);
    this.log.info({ model: engine.info, dir }, 'model loaded');
  }

  async stop(): Promise<void> {
    await this.host.stop().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'model stop failed'));
  }

  get info(): ModelInfo | undefined {
    return this.host.engine?.info;
  }

  /** What capture scales frames to: the loaded model's input size, resize mode and interpolation. */
  get scaleTarget(): ScaleTarget | undefined {
    const i = this.host.engine?.input;
    return i && { width: i.width, height: i.height, resize: i.resize, interpolation: i.interpolation };
  }

  infer(frame: Frame, hooks?: InferHooks): Promise<Inference> {
    if (!this.inUse && !this.info) return Promise.reject(unused());
    return this.host.infer(frame, hooks);
  }

  inferCrops(frame: Frame, request: CropRequest): Promise<CropsInference> {
    return this.host.inferCrops(frame, request);
  }

  /** For /status: the model in use, where it came from, how its provider was chosen, the last swap. */
  status(): ModelStatus | null {
    const engine = this.host.engine;
    if (!engine) return null;
    return {
      ...engine.info,
      dir: this.host.dir ?? this.cfg.path,
      providerAttempts: [...engine.attempts],
      engineCache: engine.engineCache ?? null,
      lastReload: this.host.lastReload ?? null,
    };
  }

  slice(config: Config): ModelConfig {
    return config.model;
  }

  async apply(next: ModelConfig, changes: ConfigChange[]): Promise<ReloadRefusal | undefined> {
    if (!this.inUse && !this.info) {
      this.cfg = next; // nothing loaded: the new slice is what a later load would use
      return undefined;
    }
    const dir = this.resolve(next.path);
    const packageChanged = !changes.length && (await packageDiffers(dir, this.info));
    if (packageChanged) this.log.info({ dir }, 'reload: the model package on disk changed');
    if (!changes.length && !packageChanged) return undefined;
    const previous = this.cfg;
    this.cfg = next;
    const r = await this.swap(dir);
    if (r.ok) return undefined;
    this.cfg = previous;
    this.log.error({ err: r.error?.message }, 'reload: the new model failed to load; keeping the running one');
    return {
      refused: changes,
      error: `model: ${r.error?.message ?? 'model reload failed'}; keeping ${this.info?.name ?? 'the previous model'}`,
    };
  }

  /** The package folder running now (undefined before the first load). */
  get loadedPath(): string | undefined {
    return this.host.dir;
  }

  /** The configured `model.path` (what a rollback to the operator's model returns to). */
  get configuredPath(): string {
    return this.cfg.path;
  }

  /**
   * Hot swap: load `dir` (default: the current package again), warm it up, run `check` on it (a
   * rollout's self-check), switch; on any failure keep the old one.
   */
  async swap(dir?: string, check?: (engine: InferenceEngine) => Promise<unknown>): Promise<ReloadResult> {
    const r = await this.host.reload(dir, check);
    if (r.ok && r.model) this.listener.swapped(r.model);
    return r;
  }

  /** Loads `dir` beside the running model, runs `check`, unloads it: a package verified without switching to it. */
  trial<T>(dir: string, check: (engine: InferenceEngine) => Promise<T>): Promise<T> {
    return this.host.trial(dir, check);
  }

  private onEngineEvent(e: EngineEvent): void {
    logEngineEvent(this.log, e);
    // A TensorRT engine build can take minutes: health and systemd wait for it on purpose.
    if (e.type === 'engine-build-start') this.listener.buildStarted(`${e.provider}, ${e.model}`);
    else if (e.type === 'engine-build-end') this.listener.buildEnded();
  }
}

/** Whether some enabled camera runs the one model (`model`), not a pipeline: else it need not be loaded. */
export function modelInUse(cameras: Config['cameras']): boolean {
  return Object.values(cameras).some((cam) => cam.enabled && cam.pipeline === undefined);
}

function unused(): DaemonError {
  return new DaemonError(
    'MODEL_UNUSED',
    'the one model (model.path) is not loaded: every camera runs a pipeline; name a camera (?camera=)',
  );
}

/** Whether the package at `dir` is not the one running (its manifest names another sha256 or version, or cannot be read). */
export async function packageDiffers(dir: string, running: ModelInfo | undefined): Promise<boolean> {
  if (!running) return true;
  try {
    const m = parseYaml(await readFile(join(dir, 'manifest.yaml'), 'utf8')) as { sha256?: unknown; version?: unknown } | null;
    return m?.sha256 !== running.sha256 || String(m?.version) !== running.version;
  } catch {
    return true; // let the reload try, fail and say why
  }
}
