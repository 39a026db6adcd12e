// First: ONNX Runtime telemetry off before anything can create an ORT session (src/ort-telemetry.ts).
import '../ort-telemetry.js';
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import type { Frame } from '../capture/frame.js';
import type { ProviderName } from '../config/schema.js';
import { Cam, planCam } from './cam.js';
import { checkModelIo, type ModelIo, type OutputNames } from './check.js';
import { classify, labelThresholds, probabilities, regress } from './classify.js';
import { CropClassifier, type CropRequest, type CropsInference, fixedBatch } from './crop.js';
import { type DetectOutputs, Detector, type OutputTensor } from './detect.js';
import { type Heatmap, Occlusion } from './explain.js';
import { HeadJoiner } from './heads.js';
import type { EngineCachePlan } from './engine-cache.js';
import type { InputSpec } from './manifest.js';
import { type ModelPackage, ModelError } from './package.js';
import { type Geometry, Preprocessor, type TensorData } from './preprocess.js';
import { createSession, type ProviderAttempt, type SessionOptions } from './providers.js';
import { Segmenter } from './segment.js';
import type { Inference, ModelInfo, TaskResult } from './types.js';
import { must } from '../errors.js';

/** Optional per-request callbacks. */
export interface InferHooks {
  /**
   * The engine has taken this frame: its pixels are copied and it is next or being inferred. The
   * frame loop reads the camera's next frame from then on (engines that do not call it: when the
   * result is in).
   */
  onStart?: () => void;
  /** Classifiers: add a heatmap of the best class (ClassifyInference.heatmap), by the manifest's explain.method. */
  explain?: boolean;
}

/** What every engine offers the frame loop, whether it runs here, in a worker, or on TF.js. */
export interface InferenceEngine {
  readonly info: ModelInfo;
  readonly attempts: readonly ProviderAttempt[];
  /** The TensorRT EP-context cache entry in use, if TensorRT was tried with a cache folder. */
  readonly engineCache?: EngineCachePlan;
  /** The model's input (capture scales frames to it). */
  readonly input?: InputSpec;
  infer(frame: Frame, hooks?: InferHooks): Promise<Inference>;
  /** A pipeline's second stage (classify models in an ONNX worker). */
  inferCrops?(frame: Frame, request: CropRequest): Promise<CropsInference>;
  /** Finishes what it accepted, then releases the model. Idempotent. */
  close(): Promise<void>;
}

export function sessionIo(session: ort.InferenceSession): ModelIo {
  const meta = (m: ort.InferenceSession.ValueMetadata) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape } : { name: m.name });
  return { inputs: session.inputMetadata.map(meta), outputs: session.outputMetadata.map(meta) };
}

/** The inputs and outputs an ONNX file declares, from a CPU session opened only to read them. */
export async function onnxIo(bytes: Uint8Array): Promise<ModelIo> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  try {
    return sessionIo(session);
  } finally {
    await session.release();
  }
}

/** A mid-grey frame of the model's input size: enough to make ORT allocate and tune everything once. */
export function warmupFrame(pkg: ModelPackage): Frame {
  const { width, height } = pkg.manifest.input;
  return {
    camera: 'warmup',
    seq: 0,
    width,
    height,
    stride: width * 3,
    format: 'RGB',
    data: new Uint8Array(width * height * 3).fill(114),
    capturedAtMs: Date.now(),
  };
}

/**
 * Per-task postprocessing shared by every engine (ORT here, TF.js in tfjs.ts): output tensors by
 * name plus the frame's geometry -> a plain Inference.
 */
export class Postprocessor {
  private readonly pkg: ModelPackage;
  private readonly names: OutputNames;
  private readonly detector?: Detector;
  private readonly segmenter?: Segmenter;
  private readonly thresholds: number[];
  private readonly joiners = { main: new HeadJoiner(), boxes: new HeadJoiner(), scores: new HeadJoiner(), keypoints: new HeadJoiner() };

  constructor(pkg: ModelPackage, names: OutputNames) {
    this.pkg = pkg;
    this.names = names;
    const m = pkg.manifest;
    this.thresholds = labelThresholds(m.classify, pkg.labels);
    if (m.task === 'detect') this.detector = new Detector(m.detect, pkg.labels.length);
    if (m.task === 'segment') this.segmenter = new Segmenter(m.segment);
  }

  /** The outputs to fetch from the model, in a fixed order. */
  get fetches(): string[] {
    const n = this.names;
    return [...(n.main ?? []), ...(n.boxes ?? []), ...(n.scores ?? []), ...(n.keypoints ?? [])];
  }

  run(out: Record<string, OutputTensor>, geometry: Geometry): TaskResult {
    const r = this.task(out, geometry);
    if (this.pkg.manifest.privacy !== 'person') return r;
    // A model that finds people: every box it kept, before any camera-side limit; a model that
    // gives no boxes (classify, segment) cannot be redacted exactly, so its frames are hidden whole.
    if (r.task !== 'detect') return { ...r, privacy: { boxes: [], whole: true } };
    return { ...r, privacy: { boxes: r.detections.map((d) => ({ ...d.box })), whole: this.detector?.last.incomplete ?? true } };
  }

  private task(out: Record<string, OutputTensor>, geometry: Geometry): TaskResult {
    const { manifest: m, labels } = this.pkg;
    const main = this.names.main ? out[this.names.main[0]] : undefined;
    if (m.task === 'classify')
      return { task: 'classify', ...classify(must(main, 'the main output').data, labels, m.classify, this.thresholds) };
    if (m.task === 'regress') return { task: 'regress', values: regress(must(main, 'the main output').data, labels, m.regress) };
    if (m.task === 'detect') {
      // Several heads per role are joined in the manifest's order: yolov8 along its last (anchor) axis, the rest by rows.
      const join = (role: keyof DetectOutputs, axis: 'rows' | 'columns') => {
        const names = this.names[role];
        return names
          ? this.joiners[role].join(
              names.map((k) => out[k]),
              axis,
            )
          : undefined;
      };
      const outputs: DetectOutputs = {
        main: join('main', m.detect.format === 'yolov8' ? 'columns' : 'rows'),
        boxes: join('boxes', 'rows'),
        scores: join('scores', 'rows'),
        keypoints: join('keypoints', 'rows'),
      };
      const detector = must(this.detector, 'the detector');
      const detections = detector.run(outputs, labels, geometry, m.input.width, m.input.height);
      const { invalid, capped } = detector.last;
      return { task: 'detect', detections, ...(invalid + capped > 0 ? { overflow: { invalid, capped } } : {}) };
    }
    const seg = must(this.segmenter, 'the segmenter').run(must(main, 'the main output'), labels, geometry, m.input.width, m.input.height);
    return { task: 'segment', ...seg };
  }
}

/** One loaded ONNX model in this thread: manifest checked against ORT's own metadata, then frame -> Inference. */
export class Engine implements InferenceEngine {
  readonly pkg: ModelPackage;
  readonly provider: ProviderName;
  readonly attempts: ProviderAttempt[];
  readonly engineCache?: EngineCachePlan;
  private readonly session: ort.InferenceSession;
  private readonly pre: Preprocessor;
  private readonly post: Postprocessor;
  /** explain.method cam: the plan checked at load. */
  private readonly cam?: Cam;

  private constructor(
    pkg: ModelPackage,
    session: ort.InferenceSession,
    r: { provider: ProviderName; attempts: ProviderAttempt[]; engineCache?: EngineCachePlan },
    names: OutputNames,
    cam?: Cam,
  ) {
    this.pkg = pkg;
    this.session = session;
    this.provider = r.provider;
    this.attempts = r.attempts;
    this.engineCache = r.engineCache;
    this.pre = new Preprocessor(pkg.manifest.input);
    this.post = new Postprocessor(pkg, names);
    this.cam = cam;
  }

  static async load(pkg: ModelPackage, opts: SessionOptions): Promise<Engine> {
    const m = pkg.manifest;
    let r: Awaited<ReturnType<typeof createSession>>;
    try {
      r = await createSession({ path: pkg.modelPath, name: m.name, sha256: m.sha256 }, opts);
    } catch (err) {
      throw new ModelError('MODEL_LOAD', pkg.modelPath, [(err as Error).message.replace(`${pkg.modelPath}: `, '')], { cause: err });
    }
    const io = sessionIo(r.session);
    const { problems, outputs } = checkModelIo(m, pkg.labels, io);
    // Class activation maps: the feature-map output and the weights initializer, checked once, here.
    let cam: Cam | undefined;
    if (!problems.length && m.explain.method === 'cam') {
      const planned = planCam(m, pkg.labels.length, io, await readFile(pkg.modelPath));
      problems.push(...planned.problems);
      if (planned.plan) cam = new Cam(planned.plan, m.input);
    }
    if (problems.length) {
      await r.session.release();
      throw new ModelError('MODEL_MISMATCH', `${pkg.dir}/manifest.yaml`, problems);
    }
    return new Engine(pkg, r.session, r, outputs, cam);
  }

  get input(): InputSpec {
    return this.pkg.manifest.input;
  }

  get info(): ModelInfo {
    const m = this.pkg.manifest;
    return { name: m.name, version: m.version, sha256: m.sha256, task: m.task, provider: this.provider };
  }

  /**
   * One inference at a time: the preprocessor writes into one reused input array, so a second
   * camera's frame must not be preprocessed while the first one's session.run() still reads it.
   */
  infer(frame: Frame, hooks: InferHooks = {}): Promise<Inference> {
    const run = this.queue.then(() => {
      hooks.onStart?.();
      return this.inferNow(frame, hooks.explain);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();
  private crops: CropClassifier | undefined;

  /** A pipeline's second stage: crops of `source` through this (classify or regress) model, queued like frames. */
  inferCrops(source: Frame, req: CropRequest): Promise<CropsInference> {
    const run = this.queue.then(() => {
      const task = this.pkg.manifest.task;
      if (task !== 'classify' && task !== 'regress')
        throw new ModelError('STAGE_TASK', this.pkg.dir, [`a crop stage needs a classify or regress model; this one is ${task}`]);
      this.crops ??= new CropClassifier(this.pkg, this.session, this.post.fetches[0], this.cam);
      return this.crops.run(source, req);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async inferNow(frame: Frame, explain = false): Promise<Inference> {
    const t0 = performance.now();
    const { data, geometry } = this.pre.run(frame);
    return await this.inferTensor(data, geometry, performance.now() - t0, explain);
  }

  /**
   * A tensor written elsewhere (the main thread's native tensor writer, into the worker's shared
   * slot) -> Inference: session.run, then postprocessing. `preprocessMs`: what writing it took.
   */
  async inferTensor(data: TensorData, geometry: Geometry, preprocessMs: number, explain = false): Promise<Inference> {
    const t1 = performance.now();
    // CAM: the feature map comes with the scores, in the same run.
    const cam = explain && this.pkg.manifest.task === 'classify' ? this.cam : undefined;
    const out = await this.runSession(data, this.inputDims, cam ? [cam.output] : []);
    const t2 = performance.now();
    const result = this.post.run(out, geometry);
    const t3 = performance.now();
    const heatmap =
      explain && result.task === 'classify'
        ? cam
          ? (await cam.explain([{ input: data, target: result.top[0].index, base: result.top[0].score }], [0], out[cam.output]))[0]
          : await this.explain(data, result.top[0].index, result.top[0].score)
        : undefined;
    return {
      ...result,
      ...(heatmap ? { heatmap } : {}),
      model: this.info,
      latencyMs: { preprocess: preprocessMs, inference: t2 - t1, postprocess: t3 - t2 },
    } as Inference;
  }

  private occlusion: Occlusion | undefined;

  /** An occlusion heatmap of class `target` on this (batch 1) input. */
  private async explain(data: TensorData, target: number, base: number): Promise<Heatmap> {
    const m = this.pkg.manifest;
    const main = this.post.fetches[0];
    this.occlusion ??= new Occlusion(m.input, fixedBatch(this.session, m.input.name));
    const probs = (raw: Float32Array) => Float32Array.from(probabilities(raw, m.classify.outputs));
    const [heatmap] = await this.occlusion.explain([{ input: data.slice(), target, base }], async (batch, n) => {
      const all = (await this.runSession(batch, [n, ...this.inputDims.slice(1)]))[main].data as Float32Array;
      const L = all.length / n;
      return Array.from({ length: n }, (_, i) => probs(all.slice(i * L, (i + 1) * L)));
    });
    return heatmap;
  }

  /** session.run on a prepared input tensor (the model's input size, dtype and layout): the outputs by name (and `extra` ones). */
  async runSession(
    data: TensorData,
    dims: readonly number[] = this.inputDims,
    extra: string[] = [],
  ): Promise<Record<string, OutputTensor>> {
    const input = new ort.Tensor(this.pkg.manifest.input.dtype, data, dims);
    const fetches = extra.length ? [...this.post.fetches, ...extra] : this.post.fetches;
    return (await this.session.run({ [this.pkg.manifest.input.name]: input }, fetches)) as Record<string, OutputTensor>;
  }

  /** The model input's dims, batch 1. */
  get inputDims(): number[] {
    return this.pre.dims;
  }

  /** Runs one synthetic frame so the first real frame does not pay for ORT's lazy set-up. */
  async warmup(): Promise<void> {
    await this.infer(warmupFrame(this.pkg));
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
