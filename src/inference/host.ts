import type { Frame } from '../capture/frame.js';
import { type Clock, systemClock } from '../clock.js';
import { DaemonError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CropRequest, CropsInference } from './crop.js';
import type { InferenceEngine, InferHooks } from './engine.js';
import type { Inference, ModelInfo } from './types.js';

/**
 * Holds the model in use and swaps it without stopping the frame loops: reload() loads and warms up
 * the new package beside the old one, then switches; the old engine finishes what it accepted and
 * unloads. On any failure the old model keeps running and the error is kept for /status. Every
 * Inference names the model that computed it, so a result is never attributed to the wrong one.
 */

export type EngineLoader = (dir: string, hooks: { onCrash: (err: Error) => void }) => Promise<InferenceEngine>;

export interface ReloadResult {
  ok: boolean;
  dir: string;
  atMs: number;
  ms: number;
  model?: ModelInfo;
  previous?: ModelInfo;
  error?: { code: string; message: string; problems?: string[] };
}

export class ModelHost {
  private readonly loadEngine: EngineLoader;
  private readonly log: Logger;
  private readonly clock: Clock;
  private current: { engine: InferenceEngine; dir: string } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  lastReload: ReloadResult | undefined;

  /** `clock`: wall time of a reload (atMs) and its duration (monotonic). */
  constructor(opts: { load: EngineLoader; log: Logger; clock?: Clock }) {
    this.loadEngine = opts.load;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
  }

  get engine(): InferenceEngine | undefined {
    return this.current?.engine;
  }

  get dir(): string | undefined {
    return this.current?.dir;
  }

  /** Loads the first model; throws if it cannot (there is nothing to fall back to). */
  async start(dir: string): Promise<InferenceEngine> {
    if (this.current) return this.current.engine;
    this.stopped = false;
    const engine = await this.load(dir);
    this.current = { engine, dir };
    return engine;
  }

  infer(frame: Frame, hooks?: InferHooks): Promise<Inference> {
    if (!this.current) return Promise.reject(new DaemonError('MODEL_NOT_LOADED', 'no model loaded'));
    return this.current.engine.infer(frame, hooks);
  }

  inferCrops(frame: Frame, request: CropRequest): Promise<CropsInference> {
    const engine = this.current?.engine;
    if (!engine) return Promise.reject(new DaemonError('MODEL_NOT_LOADED', 'no model loaded'));
    if (!engine.inferCrops)
      return Promise.reject(
        new DaemonError('STAGE_UNSUPPORTED', `model ${engine.info.name} cannot run as a crop stage (ONNX classify or regress models only)`),
      );
    return engine.inferCrops(frame, request);
  }

  private load(dir: string): Promise<InferenceEngine> {
    let engine: InferenceEngine | undefined;
    const onCrash = (err: Error) => {
      if (this.stopped || !engine || this.current?.engine !== engine) return;
      this.log.error({ err: err.message, dir }, 'inference engine crashed; reloading the model');
      void this.reload(dir);
    };
    return this.loadEngine(dir, { onCrash }).then((e) => (engine = e));
  }

  /**
   * Loads `dir` (default: the current package again), warms it up, swaps. Never throws; reloads run
   * one at a time. `check` runs on the new engine before it takes over (a rollout's self-check): if
   * it throws, the new engine is closed and the old one keeps running.
   */
  reload(dir?: string, check?: (engine: InferenceEngine) => Promise<unknown>): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      const target = dir ?? this.current?.dir;
      const t0 = this.clock.monotonic();
      const previous = this.current?.engine.info;
      const atMs = this.clock.now();
      if (!target) return { ok: false, dir: '', atMs, ms: 0, error: { code: 'MODEL_NOT_LOADED', message: 'no model to reload' } };
      let result: ReloadResult;
      try {
        if (this.stopped) throw new DaemonError('MODEL_STOPPED', 'the model host is stopped');
        const next = await this.load(target);
        if (check)
          await check(next).catch(async (err: unknown) => {
            await next.close().catch(() => undefined);
            throw err;
          });
        if (this.stopped) {
          await next.close();
          throw new DaemonError('MODEL_STOPPED', 'the model host stopped during the reload');
        }
        const old = this.current?.engine;
        this.current = { engine: next, dir: target };
        result = { ok: true, dir: target, atMs, ms: this.clock.monotonic() - t0, model: next.info, previous };
        this.log.info({ model: next.info, previous, dir: target, ms: Math.round(result.ms) }, 'model swapped');
        // The old engine finishes the frames it accepted, then unloads; the swap does not wait for it.
        if (old) this.retire(old);
      } catch (err) {
        const problems = (err as { problems?: string[] }).problems;
        result = {
          ok: false,
          dir: target,
          atMs,
          ms: this.clock.monotonic() - t0,
          previous,
          error: { code: errorCode(err) ?? 'MODEL_LOAD', message: errorMessage(err), ...(problems ? { problems } : {}) },
        };
        this.log.error(
          { dir: target, code: result.error?.code, err: result.error?.message, keeping: previous },
          'model reload failed; keeping the current model',
        );
      }
      this.lastReload = result;
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p;
    return p;
  }

  /** Loads `dir` beside the running model, runs `check` on it, unloads it; nothing is swapped. Queued with reloads. */
  trial<T>(dir: string, check: (engine: InferenceEngine) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.stopped) throw new DaemonError('MODEL_STOPPED', 'the model host is stopped');
      const engine = await this.loadEngine(dir, { onCrash: () => undefined });
      try {
        return await check(engine);
      } finally {
        await engine.close().catch(() => undefined);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Engines swapped out and still finishing their frames: stop() waits for them too. */
  private readonly retiring = new Set<Promise<void>>();

  private retire(old: InferenceEngine): void {
    const closing = old
      .close()
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'closing the previous model failed'))
      .finally(() => this.retiring.delete(closing));
    this.retiring.add(closing);
  }

  /**
   * Stops after the reload under way and closes every engine, the retiring ones included: the
   * process must not exit while a worker is still inside ONNX Runtime (see main.ts, dieBy).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.catch(() => undefined);
    const cur = this.current;
    this.current = undefined;
    await Promise.all([cur?.engine.close(), ...this.retiring]);
  }
}
