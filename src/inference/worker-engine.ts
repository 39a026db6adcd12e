// First: ONNX Runtime telemetry off before anything can create an ORT session (src/ort-telemetry.ts).
import '../ort-telemetry.js';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Frame } from '../capture/frame.js';
import { DaemonError } from '../errors.js';
import type { InferenceEngine, InferHooks } from './engine.js';
import type { CropRequest, CropsInference } from './crop.js';
import type { EngineCachePlan } from './engine-cache.js';
import type { ModelPackage } from './package.js';
import type { EngineEvent, ProviderAttempt, SessionOptions } from './providers.js';
import type { Inference, ModelInfo } from './types.js';
import type { FromWorker, ToWorker, WireError } from './worker-protocol.js';

/**
 * The main thread's side of an inference worker. infer(frame) copies the frame's pixels once into a
 * SharedArrayBuffer slot (no structured clone of big buffers, and the camera keeps its own buffer)
 * and resolves with the worker's small result object.
 *
 * Scheduling is ours, not the worker's: requests wait in one queue per camera and are posted
 * round-robin, at most `maxInFlight` at a time. Two in flight keep the worker busy while a result
 * travels back and the main thread handles it. A request's onStart hook fires when the worker
 * turns to it (posted to an idle worker, or the request before it came back): the frame loop takes
 * the camera's next frame then, so the frame waiting behind the one being inferred is never older
 * than that inference.
 */

export interface WorkerEngineOptions extends Omit<SessionOptions, 'onEvent'> {
  onEvent?: (e: EngineEvent) => void;
  maxInFlight?: number;
  /** How much lower than the main thread the worker and ORT's threads run (Linux nice steps; default 5, 0 = same). */
  nice?: number;
  /** The worker died without being asked to (the pending requests have been rejected). */
  onCrash?: (err: Error) => void;
}

interface Job {
  frame: Frame;
  /** Set for a pipeline's crop stage. */
  crops?: CropRequest;
  resolve: (result: Inference | CropsInference) => void;
  reject: (err: Error) => void;
  onStart?: () => void;
  slot?: number;
}

/** Spawns worker.ts: from dist/ it is plain JS; from the .ts sources (tests, tsx scripts) it is loaded through tsx. */
function spawnWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker.js', here));
  const tsx = pathToFileURL(createRequire(here).resolve('tsx/esm/api')).href.replace(/\.cjs$/, '.mjs');
  const entry = new URL('./worker.ts', here).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, { eval: true });
}

export function fromWire(e: WireError): DaemonError {
  const err = new DaemonError(e.code ?? 'INFERENCE_FAILED', e.message);
  if (e.problems) Object.assign(err, { problems: e.problems });
  return err;
}

/** Reused SharedArrayBuffers, one per frame in flight, grown when a bigger frame arrives. */
class FrameSlots {
  private readonly bufs: SharedArrayBuffer[] = [];
  private readonly busy: boolean[] = [];

  acquire(bytes: number): number {
    let i = this.busy.findIndex((b, k) => !b && this.bufs[k].byteLength >= bytes);
    if (i < 0) i = this.busy.indexOf(false);
    if (i < 0) {
      i = this.bufs.length;
      this.bufs.push(new SharedArrayBuffer(bytes));
      this.busy.push(false);
    } else if (this.bufs[i].byteLength < bytes) {
      this.bufs[i] = new SharedArrayBuffer(bytes);
    }
    this.busy[i] = true;
    return i;
  }

  buffer(i: number): SharedArrayBuffer {
    return this.bufs[i];
  }

  release(i: number): void {
    this.busy[i] = false;
  }
}

export class WorkerEngine implements InferenceEngine {
  readonly info: ModelInfo;
  readonly attempts: readonly ProviderAttempt[];
  readonly engineCache?: EngineCachePlan;
  readonly warmupMs: number;
  private readonly worker: Worker;
  private readonly opts: WorkerEngineOptions;
  private readonly maxInFlight: number;
  private readonly queues = new Map<string, Job[]>();
  private rr: string[] = [];
  private lastServed: string | undefined;
  private readonly inFlight = new Map<number, Job>();
  private readonly slots = new FrameSlots();
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private dead: Error | undefined;
  private drained: (() => void) | undefined;

  private constructor(worker: Worker, loaded: Extract<FromWorker, { type: 'loaded' }>, opts: WorkerEngineOptions) {
    this.worker = worker;
    this.opts = opts;
    this.info = loaded.info;
    this.attempts = loaded.attempts;
    this.engineCache = loaded.engineCache;
    this.warmupMs = loaded.warmupMs;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 2);
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.fail(new DaemonError('ENGINE_CRASHED', `inference worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new DaemonError('ENGINE_CRASHED', `inference worker exited unexpectedly (code ${code})`));
    });
  }

  /** Starts a worker, loads and warms up the model there; rejects (and stops the worker) if any step fails. */
  static async load(pkg: ModelPackage, opts: WorkerEngineOptions = { providers: 'auto' }): Promise<WorkerEngine> {
    const worker = spawnWorker();
    const { onEvent, onCrash: _onCrash, maxInFlight: _m, nice = 5, ...options } = opts;
    const loaded = await new Promise<Extract<FromWorker, { type: 'loaded' }>>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'event') onEvent?.(m.event);
        else if (m.type === 'loaded') done(() => resolve(m));
        else if (m.type === 'load-failed') done(() => reject(fromWire(m.error)));
      };
      const onError = (err: Error) => done(() => reject(new DaemonError('ENGINE_CRASHED', `inference worker failed while loading ${pkg.dir}: ${err.message}`, { cause: err })));
      const onExit = (code: number) => done(() => reject(new DaemonError('ENGINE_CRASHED', `inference worker exited (code ${code}) while loading ${pkg.dir}`)));
      const done = (fn: () => void) => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        fn();
      };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      worker.postMessage({ type: 'load', pkg, options, nice } satisfies ToWorker);
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    const engine = new WorkerEngine(worker, loaded, opts);
    if (onEvent) worker.on('message', (m: FromWorker) => m.type === 'event' && onEvent(m.event));
    return engine;
  }

  /** Requests queued or in the worker. */
  get pending(): number {
    let n = this.inFlight.size;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  infer(frame: Frame, hooks: InferHooks = {}): Promise<Inference> {
    return this.enqueue<Inference>(frame, hooks);
  }

  /** A pipeline's second stage: the crops of `frame` through this model, queued with the camera's frames. */
  inferCrops(frame: Frame, request: CropRequest): Promise<CropsInference> {
    return this.enqueue<CropsInference>(frame, {}, request);
  }

  /** The worker answers an `infer` with an Inference and a `crops` with a CropsInference. */
  private enqueue<T extends Inference | CropsInference>(frame: Frame, hooks: InferHooks, crops?: CropRequest): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new DaemonError('ENGINE_CLOSED', `model ${this.info.name} ${this.info.version} is unloading`));
    return new Promise<T>((resolve, reject) => {
      let q = this.queues.get(frame.camera);
      if (!q) {
        q = [];
        this.queues.set(frame.camera, q);
        this.rr.push(frame.camera);
      }
      q.push({ frame, crops, resolve: resolve as (result: Inference | CropsInference) => void, reject, onStart: hooks.onStart });
      this.pump();
    });
  }

  /** Round-robin over the cameras with waiting frames, starting after the one served last. */
  private nextJob(): Job | undefined {
    const start = this.lastServed === undefined ? 0 : this.rr.indexOf(this.lastServed) + 1;
    for (let k = 0; k < this.rr.length; k++) {
      const camera = this.rr[(start + k) % this.rr.length];
      const job = this.queues.get(camera)!.shift();
      if (job) {
        this.lastServed = camera;
        return job;
      }
    }
    return undefined;
  }

  private pump(): void {
    while (this.inFlight.size < this.maxInFlight) {
      const job = this.nextJob();
      if (!job) break;
      const { data, ...meta } = job.frame;
      const slot = this.slots.acquire(data.byteLength);
      const buf = this.slots.buffer(slot);
      new Uint8Array(buf, 0, data.byteLength).set(data);
      job.slot = slot;
      const id = this.nextId++;
      this.inFlight.set(id, job);
      const wire = { ...meta, byteLength: data.byteLength };
      this.worker.postMessage((job.crops ? { type: 'crops', id, frame: wire, buf, request: job.crops } : { type: 'infer', id, frame: wire, buf }) satisfies ToWorker);
      if (this.inFlight.size === 1) this.started(job);
    }
    if (this.pending === 0) this.drained?.();
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'result' && m.type !== 'failed') return;
    const job = this.inFlight.get(m.id);
    if (!job) return;
    this.inFlight.delete(m.id);
    this.slots.release(job.slot!);
    // The worker handles requests in order: the oldest one left is the one it turns to now.
    const next = this.inFlight.values().next();
    if (!next.done) this.started(next.value);
    if (m.type === 'result') job.resolve(m.inference);
    else job.reject(fromWire(m.error));
    this.pump();
  }

  private started(job: Job): void {
    const fn = job.onStart;
    job.onStart = undefined;
    fn?.();
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    const jobs = [...this.inFlight.values(), ...[...this.queues.values()].flat()];
    this.inFlight.clear();
    this.queues.clear();
    this.rr = [];
    for (const j of jobs) j.reject(err);
    this.drained?.();
    this.opts.onCrash?.(err);
  }

  /** Lets every accepted request finish, then unloads the model and ends the worker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.pending > 0 && !this.dead) await new Promise<void>((r) => (this.drained = r));
      if (this.dead) {
        await this.worker.terminate();
        return;
      }
      const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
      this.worker.postMessage({ type: 'close' } satisfies ToWorker);
      const timer = setTimeout(() => void this.worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    })();
    return this.closing;
  }
}
