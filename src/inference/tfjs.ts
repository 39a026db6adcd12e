import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { Frame } from '../capture/frame.js';
import { errorMessage, must } from '../errors.js';
import { checkInput, checkModelIo, type IoMeta, type ModelIo } from './check.js';
import type { OutputTensor } from './detect.js';
import { probabilities } from './classify.js';
import { Postprocessor, warmupFrame, type InferHooks, type InferenceEngine } from './engine.js';
import { type Heatmap, Occlusion } from './explain.js';
import { type ModelPackage, ModelError, tfjsWeightFiles } from './package.js';
import { type Geometry, Preprocessor, type TensorData } from './preprocess.js';
import type { BackendName, ProviderAttempt } from './providers.js';
import type { Inference, ModelInfo } from './types.js';

/**
 * A second engine for TensorFlow.js graph and layers models (Keras models after
 * tensorflowjs_converter). Backends, each imported only when a TF.js model is loaded:
 * @tensorflow/tfjs-node-gpu if installed, else @tensorflow/tfjs-node (both download native
 * libraries at install time, so they are not dependencies of this package), else
 * @tensorflow/tfjs-core + converter + layers on the WASM backend (optional dependencies).
 * Model files are read from disk by a small IO handler: TF.js's own `file://` loading needs
 * tfjs-node, and fetch() cannot read files in Node.
 *
 * Only the parts of the TF.js API used here are typed, locally, so the daemon still builds when the
 * optional packages are left out (`npm install --omit=optional`).
 */

interface TfTensor {
  shape: number[];
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
interface TfInfo {
  name: string;
  shape?: (number | null)[];
  dtype?: string;
}
interface GraphModel {
  inputs: TfInfo[];
  outputNodes: string[];
  execute(inputs: Record<string, TfTensor>, outputs: string[]): TfTensor | TfTensor[];
  executeAsync(inputs: Record<string, TfTensor>, outputs: string[]): Promise<TfTensor | TfTensor[]>;
  dispose(): void;
}
interface LayersModel {
  inputs: TfInfo[];
  inputNames: string[];
  outputNames: string[];
  predict(x: TfTensor): TfTensor | TfTensor[];
  dispose(): void;
}
type IoHandler = { load: () => Promise<unknown> };
interface Tf {
  tensor(values: Float32Array | Int32Array, shape: number[], dtype: 'float32' | 'int32'): TfTensor;
  loadGraphModel(h: IoHandler): Promise<GraphModel>;
  loadLayersModel(h: IoHandler): Promise<LayersModel>;
  io: {
    getModelArtifactsForJSON(json: unknown, load: (m: unknown) => Promise<[unknown[], ArrayBuffer]>): Promise<unknown>;
    getWeightSpecs(m: unknown): unknown[];
  };
  getBackend(): string;
}

export type TfjsBackend = Exclude<BackendName, 'tensorrt' | 'cuda' | 'cpu'>;

const importAny = (name: string): Promise<Record<string, unknown>> => import(name) as Promise<Record<string, unknown>>;

let loaded: Promise<{ tf: Tf; backend: TfjsBackend; attempts: ProviderAttempt[] }> | undefined;

/** The TF.js runtime for this thread (a worker gets its own), chosen once. */
export function loadTf(): Promise<{ tf: Tf; backend: TfjsBackend; attempts: ProviderAttempt[] }> {
  loaded ??= (async () => {
    const attempts: ProviderAttempt[] = [];
    for (const backend of ['tfjs-node-gpu', 'tfjs-node'] as const) {
      const t0 = performance.now();
      try {
        const tf = (await importAny(`@tensorflow/${backend}`)) as unknown as Tf;
        attempts.push({ provider: backend, ok: true, ms: performance.now() - t0 });
        return { tf, backend, attempts };
      } catch (err) {
        const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
        attempts.push({
          provider: backend,
          ok: false,
          ms: performance.now() - t0,
          error: missing ? `@tensorflow/${backend} is not installed` : errorMessage(err).split('\n')[0],
        });
      }
    }
    const t0 = performance.now();
    try {
      const [core, converter, layers, wasm] = await Promise.all(
        ['tfjs-core', 'tfjs-converter', 'tfjs-layers', 'tfjs-backend-wasm'].map((p) => importAny(`@tensorflow/${p}`)),
      );
      // The .wasm files sit beside the backend's bundle; Node reads them from disk.
      const wasmFile = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
      (wasm.setWasmPaths as (p: string) => void)(dirname(wasmFile) + '/');
      const setBackend = core.setBackend as (b: string) => Promise<boolean>;
      if (!(await setBackend('wasm'))) throw new Error('the WASM backend failed to initialise');
      const tf = { ...core, loadGraphModel: converter.loadGraphModel, loadLayersModel: layers.loadLayersModel } as unknown as Tf;
      attempts.push({ provider: 'tfjs-wasm', ok: true, ms: performance.now() - t0 });
      return { tf, backend: 'tfjs-wasm' as const, attempts };
    } catch (err) {
      attempts.push({ provider: 'tfjs-wasm', ok: false, ms: performance.now() - t0, error: errorMessage(err).split('\n')[0] });
      const why = attempts.map((a) => `${a.provider}: ${a.error}`).join('; ');
      throw Object.assign(
        new Error(
          `no TensorFlow.js backend could be loaded (${why}); npm install @tensorflow/tfjs-core ` +
            `@tensorflow/tfjs-converter @tensorflow/tfjs-layers @tensorflow/tfjs-backend-wasm`,
        ),
        { code: 'TFJS_UNAVAILABLE' },
      );
    }
  })();
  loaded.catch(() => (loaded = undefined));
  return loaded;
}

/** model.json + its weight files from disk, as TF.js model artifacts. */
function fileHandler(tf: Tf, modelJson: string, json: unknown): IoHandler {
  return {
    load: () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const bufs = await Promise.all((await tfjsWeightFiles(modelJson)).map((f) => readFile(f)));
        const all = Buffer.concat(bufs);
        return [tf.io.getWeightSpecs(manifest), all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer];
      }),
  };
}

const shapeOf = (s: (number | null)[] | undefined) => s?.map((d) => (d === null || d < 0 ? 'N' : d));
/** TF.js has no uint8 tensors: a uint8 model input is int32 there. */
const typeOf = (t: string | undefined) => (t === 'int32' ? 'uint8' : t);

export class TfjsEngine implements InferenceEngine {
  readonly info: ModelInfo;
  readonly attempts: readonly ProviderAttempt[];
  private readonly pkg: ModelPackage;
  private readonly tf: Tf;
  private readonly graph?: GraphModel;
  private readonly layers?: LayersModel;
  private readonly pre: Preprocessor;
  private post!: Postprocessor;
  private outputNames: string[];
  /**
   * Graph models without control flow run with execute(); executeAsync() on them warns on the
   * console at every call (a log line per frame). Decided at the first run: a model that needs
   * executeAsync makes execute() throw.
   */
  private sync = true;

  private constructor(
    pkg: ModelPackage,
    tf: Tf,
    backend: TfjsBackend,
    attempts: ProviderAttempt[],
    model: { graph?: GraphModel; layers?: LayersModel },
  ) {
    this.pkg = pkg;
    this.tf = tf;
    this.attempts = attempts;
    this.graph = model.graph;
    this.layers = model.layers;
    this.pre = new Preprocessor(pkg.manifest.input);
    this.outputNames = model.graph ? model.graph.outputNodes : must(model.layers, 'the layers model').outputNames;
    const m = pkg.manifest;
    this.info = { name: m.name, version: m.version, sha256: m.sha256, task: m.task, provider: backend };
  }

  static async load(pkg: ModelPackage): Promise<TfjsEngine> {
    const { tf, backend, attempts } = await loadTf().catch((err: unknown) => {
      throw new ModelError('MODEL_LOAD', pkg.modelPath, [errorMessage(err)], { cause: err });
    });
    let engine: TfjsEngine;
    try {
      const json = JSON.parse(await readFile(pkg.modelPath, 'utf8')) as { format?: string; modelTopology?: { node?: unknown } };
      const isGraph = json.format === 'graph-model' || (json.format === undefined && Array.isArray(json.modelTopology?.node));
      const handler = fileHandler(tf, pkg.modelPath, json);
      const model = isGraph ? { graph: await tf.loadGraphModel(handler) } : { layers: await tf.loadLayersModel(handler) };
      engine = new TfjsEngine(pkg, tf, backend, attempts, model);
    } catch (err) {
      throw new ModelError('MODEL_LOAD', pkg.modelPath, [`TensorFlow.js cannot load the model: ${errorMessage(err).split('\n')[0]}`], {
        cause: err,
      });
    }
    // Graph models rarely declare output shapes: check the input, run once, check what comes out.
    const inputProblems: string[] = [];
    checkInput(pkg.manifest, { inputs: engine.inputInfo() }, inputProblems);
    if (inputProblems.length) {
      await engine.close();
      throw new ModelError('MODEL_MISMATCH', `${pkg.dir}/manifest.yaml`, inputProblems);
    }
    const io = await engine.observeIo().catch(async (err: unknown) => {
      await engine.close();
      throw new ModelError(
        'MODEL_MISMATCH',
        `${pkg.dir}/manifest.yaml`,
        [`input: the model does not run on a ${engine.pre.dims.join('x')} input: ${errorMessage(err).split('\n')[0]}`],
        { cause: err },
      );
    });
    const { problems, outputs } = checkModelIo(pkg.manifest, pkg.labels, io);
    if (problems.length) {
      await engine.close();
      throw new ModelError('MODEL_MISMATCH', `${pkg.dir}/manifest.yaml`, problems);
    }
    engine.post = new Postprocessor(pkg, outputs);
    return engine;
  }

  private inputInfo(): IoMeta[] {
    if (this.graph) return this.graph.inputs.map((i) => ({ name: i.name, type: typeOf(i.dtype), shape: shapeOf(i.shape) }));
    const l = must(this.layers, 'the layers model');
    return l.inputNames.map((name, k) => ({ name, type: typeOf(l.inputs[k].dtype), shape: shapeOf(l.inputs[k].shape) }));
  }

  private async observeIo(): Promise<ModelIo> {
    const inputs = this.inputInfo();
    const out = await this.run(warmupFrame(this.pkg), this.outputNames);
    return {
      inputs,
      outputs: Object.entries(out.tensors).map(([name, t]) => ({
        name,
        type: t.data instanceof Float32Array ? 'float32' : 'int32',
        shape: t.dims,
      })),
    };
  }

  private async run(
    frame: Frame,
    fetches: string[],
  ): Promise<{ tensors: Record<string, OutputTensor>; geometry: Geometry; t1: number; data: TensorData }> {
    const { data, dims, geometry } = this.pre.run(frame);
    const t1 = performance.now();
    return { tensors: await this.runTensor(data, dims, fetches), geometry, t1, data };
  }

  /** The model on a prepared input (any batch size the model takes): the outputs by name. */
  private async runTensor(data: TensorData, dims: readonly number[], fetches: string[]): Promise<Record<string, OutputTensor>> {
    const shape = [...dims];
    const x = data instanceof Float32Array ? this.tf.tensor(data, shape, 'float32') : this.tf.tensor(Int32Array.from(data), shape, 'int32');
    let outs: TfTensor[] = [];
    try {
      const inputName = this.pkg.manifest.input.name;
      const r = this.graph ? await this.execute(this.graph, { [inputName]: x }, fetches) : must(this.layers, 'the layers model').predict(x);
      outs = Array.isArray(r) ? r : [r];
      const tensors: Record<string, OutputTensor> = {};
      // Graph models answer in the order asked; layers models in their output order.
      const names = this.graph ? fetches : this.outputNames;
      for (const [k, t] of outs.entries()) tensors[names[k]] = { data: await t.data(), dims: t.shape };
      return tensors;
    } finally {
      x.dispose();
      for (const t of outs) t.dispose();
    }
  }

  private execute(g: GraphModel, inputs: Record<string, TfTensor>, fetches: string[]): Promise<TfTensor | TfTensor[]> {
    if (this.sync) {
      try {
        return Promise.resolve(g.execute(inputs, fetches));
      } catch {
        this.sync = false;
      }
    }
    return g.executeAsync(inputs, fetches);
  }

  async infer(frame: Frame, hooks: InferHooks = {}): Promise<Inference> {
    const t0 = performance.now();
    const { tensors, geometry, t1, data } = await this.run(frame, this.graph ? this.post.fetches : this.outputNames);
    const t2 = performance.now();
    const result = this.post.run(tensors, geometry);
    const t3 = performance.now();
    const heatmap =
      hooks.explain && result.task === 'classify' ? await this.explain(data.slice(), result.top[0].index, result.top[0].score) : undefined;
    return {
      ...result,
      ...(heatmap ? { heatmap } : {}),
      model: this.info,
      latencyMs: { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 },
    } as Inference;
  }

  private occlusion: Occlusion | undefined;

  /** An occlusion heatmap of class `target` (explain.method cam is refused for TF.js at load): as the ONNX engine's. */
  private async explain(input: TensorData, target: number, base: number): Promise<Heatmap> {
    const m = this.pkg.manifest;
    const main = this.post.fetches[0];
    if (!this.occlusion) {
      const batch = this.inputInfo().find((i) => i.name === m.input.name)?.shape?.[0];
      this.occlusion = new Occlusion(m.input, typeof batch === 'number' && batch > 0 ? batch : undefined);
    }
    const [heatmap] = await this.occlusion.explain([{ input, target, base }], async (data, n) => {
      const out = await this.runTensor(data, [n, ...this.pre.dims.slice(1)], this.graph ? [main] : this.outputNames);
      const all = Float32Array.from(out[main].data);
      const L = all.length / n;
      return Array.from({ length: n }, (_, i) => Float32Array.from(probabilities(all.subarray(i * L, (i + 1) * L), m.classify.outputs)));
    });
    return heatmap;
  }

  async warmup(): Promise<void> {
    await this.infer(warmupFrame(this.pkg));
  }

  close(): Promise<void> {
    (this.graph ?? this.layers)?.dispose();
    return Promise.resolve();
  }
}
