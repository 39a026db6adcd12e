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
import { Tensorizer } from './tensorize.js';
import type { EngineEvent, ProviderAttempt, SessionOptions } from './providers.js';
import type { Inference, ModelInfo } from './types.js';
import type { FromWorker, ToWorker, WireError } from './worker-protocol.js';

/**
 * The main thread's side of an inference worker. infer(frame) writes the model's input tensor with
 * the native tensor writer (tensorize.ts: no per-pixel JS, no copy of the frame; the camera keeps
 * its own buffer) straight into a buffer that is transferred to the worker and back, so the worker
 * only runs the session and postprocesses; it resolves with the worker's small result object.
 * TF.js models get the frame's pixels copied into a SharedArrayBuffer slot instead and preprocess
 * in the worker.
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
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, {
    eval: true,
  });
}

export function fromWire(e: WireError): DaemonError {
  const err = new DaemonError(e.code ?? 'INFERENCE_FAILED', e.message);
  if (e.problems) Object.assign(err, { problems: e.problems });
  return err;
}

/**
 * Input tensors' buffers: transferred to the worker with each request and back with its answer
 * (zero-copy both ways), so a few buffers serve every frame.
 */
class TensorBuffers {
  private readonly free: ArrayBuffer[] = [];
  constructor(private readonly bytes: number) {}

  acquire(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(this.bytes);
  }

  release(buf: ArrayBuffer | undefined): void {
    if (buf && buf.byteLength === this.bytes && this.free.length < 4) this.free.push(buf);
  }
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
  readonly input: ModelPackage['manifest']['input'];
  private readonly worker: Worker;
  private readonly opts: WorkerEngineOptions;
  private readonly maxInFlight: number;
  private readonly queues = new Map<string, Job[]>();
  private rr: string[] = [];
  private lastServed: string | undefined;
  private readonly inFlight = new Map<number, Job>();
  private readonly slots = new FrameSlots();
  /** ONNX models: the main thread writes their input tensors. */
  private readonly tensorizer: Tensorizer | undefined;
  private readonly tensors: TensorBuffers | undefined;
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private dead: Error | undefined;
  private drained: (() => void) | undefined;

  private constructor(worker: Worker, loaded: Extract<FromWorker, { type: 'loaded' }>, opts: WorkerEngineOptions, pkg: ModelPackage) {
    this.worker = worker;
    this.tensorizer = pkg.format === 'onnx' ? new Tensorizer(pkg.manifest.input) : undefined;
    this.tensors = this.tensorizer && new TensorBuffers(this.tensorizer.byteLength);
    this.input = pkg.manifest.input;
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
      const onError = (err: Error) =>
        done(() =>
          reject(new DaemonError('ENGINE_CRASHED', `inference worker failed while loading ${pkg.dir}: ${err.message}`, { cause: err })),
        );
      const onExit = (code: number) =>
        done(() => reject(new DaemonError('ENGINE_CRASHED', `inference worker exited (code ${code}) while loading ${pkg.dir}`)));
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
    const engine = new WorkerEngine(worker, loaded, opts, pkg);
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
    if (this.closing !== undefined)
      return Promise.reject(new DaemonError('ENGINE_CLOSED', `model ${this.info.name} ${this.info.version} is unloading`));
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
      const job = this.queues.get(camera)?.shift();
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
      const id = this.nextId++;
      let msg: ToWorker;
      try {
        msg = this.prepare(job, id);
      } catch (err) {
        // A frame the writer refuses (sizes that do not add up) fails alone; the next one goes on.
        if (job.slot !== undefined) this.slots.release(job.slot);
        job.reject(err as Error);
        continue;
      }
      this.inFlight.set(id, job);
      this.worker.postMessage(msg, msg.type === 'infer-tensor' ? [msg.buf] : []);
      if (this.inFlight.size === 1) this.started(job);
    }
    if (this.pending === 0) this.drained?.();
  }

  /**
   * Puts the job's input into a slot: the model's tensor (ONNX frames), or the frame's pixels (TF.js
   * frames, and a crop stage's source frame, which the worker cuts and resizes itself).
   */
  private prepare(job: Job, id: number): ToWorker {
    const t = this.tensorizer;
    if (t && this.tensors && !job.crops) {
      const buf = this.tensors.acquire();
      const t0 = performance.now();
      const geometry = t.write(job.frame, buf);
      return { type: 'infer-tensor', id, geometry, preprocessMs: performance.now() - t0, buf };
    }
    const { data, full: _full, ...meta } = job.frame;
    const slot = this.slots.acquire(data.byteLength);
    job.slot = slot;
    const buf = this.slots.buffer(slot);
    new Uint8Array(buf, 0, data.byteLength).set(data);
    const wire = { ...meta, byteLength: data.byteLength };
    return job.crops ? { type: 'crops', id, frame: wire, buf, request: job.crops } : { type: 'infer', id, frame: wire, buf };
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'result' && m.type !== 'failed') return;
    const job = this.inFlight.get(m.id);
    if (!job) return;
    this.inFlight.delete(m.id);
    if (job.slot !== undefined) this.slots.release(job.slot);
    this.tensors?.release(m.buf);
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
