import ort from 'onnxruntime-node';
import type { Frame } from '../capture/frame.js';
import type { ProviderName } from '../config/schema.js';
import { classify } from './classify.js';
import { type ModelPackage, ModelError } from './package.js';
import { Preprocessor } from './preprocess.js';
import { createSession, type ProviderAttempt, type SessionOptions } from './providers.js';
import type { Inference, ModelInfo } from './types.js';

/** One loaded model: checks the manifest against ORT's own metadata, then frame -> Inference. */
export class Engine {
  readonly pkg: ModelPackage;
  readonly provider: ProviderName;
  readonly attempts: ProviderAttempt[];
  private readonly session: ort.InferenceSession;
  private readonly pre: Preprocessor;
  private readonly outputName: string;

  private constructor(pkg: ModelPackage, session: ort.InferenceSession, provider: ProviderName, attempts: ProviderAttempt[]) {
    this.pkg = pkg;
    this.session = session;
    this.provider = provider;
    this.attempts = attempts;
    this.pre = new Preprocessor(pkg.manifest.input);
    this.outputName = pkg.manifest.output?.name ?? session.outputNames[0];
  }

  static async load(pkg: ModelPackage, opts: SessionOptions): Promise<Engine> {
    const { session, provider, attempts } = await createSession(pkg.modelPath, opts);
    const problems = checkAgainstSession(pkg, session);
    if (problems.length) {
      await session.release();
      throw new ModelError('MODEL_MISMATCH', `${pkg.dir}/manifest.yaml`, problems);
    }
    return new Engine(pkg, session, provider, attempts);
  }

  get info(): ModelInfo {
    const m = this.pkg.manifest;
    return { name: m.name, version: m.version, sha256: m.sha256, task: m.task, provider: this.provider };
  }

  /**
   * One inference at a time: the preprocessor writes into one reused input array, so a second
   * camera's frame must not be preprocessed while the first one's session.run() still reads it.
   */
  infer(frame: Frame): Promise<Inference> {
    const run = this.queue.then(() => this.inferNow(frame));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();

  private async inferNow(frame: Frame): Promise<Inference> {
    const t0 = performance.now();
    const { data, dims } = this.pre.run(frame);
    const input = new ort.Tensor(data instanceof Float32Array ? 'float32' : 'uint8', data, dims);
    const t1 = performance.now();
    const out = await this.session.run({ [this.pkg.manifest.input.name]: input });
    const t2 = performance.now();
    const top = classify(out[this.outputName].data as Float32Array, this.pkg.labels, this.pkg.manifest.classify);
    const t3 = performance.now();
    return { task: 'classify', top, latencyMs: { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 } };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Every difference between what the manifest says and what the ONNX file declares. */
export function checkAgainstSession(pkg: ModelPackage, session: ort.InferenceSession): string[] {
  const m = pkg.manifest;
  const problems: string[] = [];
  const inputs = session.inputMetadata;
  const input = inputs.find((i) => i.name === m.input.name);
  if (!input) {
    problems.push(`input.name: the model has no input "${m.input.name}" (model inputs: ${session.inputNames.join(', ')})`);
  } else if (input.isTensor) {
    const want = m.input.layout === 'NCHW' ? [1, 3, m.input.height, m.input.width] : [1, m.input.height, m.input.width, 3];
    const names = m.input.layout === 'NCHW' ? ['batch', 'channels', 'height', 'width'] : ['batch', 'height', 'width', 'channels'];
    if (input.shape.length !== 4) {
      problems.push(`input: the model's input "${input.name}" has rank ${input.shape.length} (shape [${input.shape.join(',')}]); expected a 4-D image tensor`);
    } else {
      input.shape.forEach((d, i) => {
        if (typeof d === 'number' && d !== want[i]) {
          const key = names[i] === 'width' ? 'input.width' : names[i] === 'height' ? 'input.height' : names[i] === 'channels' ? 'input.layout' : 'input';
          problems.push(`${key}: manifest gives ${names[i]} ${want[i]} (${m.input.layout}), the model's input "${input.name}" has ${d} (shape [${input.shape.join(',')}])`);
        }
      });
    }
    if (input.type !== m.input.dtype) problems.push(`input.dtype: manifest says ${m.input.dtype}, the model's input is ${input.type}`);
  }
  const outName = m.output?.name;
  if (outName && !session.outputNames.includes(outName)) {
    problems.push(`output.name: the model has no output "${outName}" (model outputs: ${session.outputNames.join(', ')})`);
  }
  if (m.task === 'classify') {
    const out = session.outputMetadata.find((o) => o.name === (outName ?? session.outputNames[0]));
    if (out?.isTensor) {
      const classes = out.shape[out.shape.length - 1];
      if (typeof classes === 'number' && classes !== pkg.labels.length) {
        problems.push(`labels: the manifest has ${pkg.labels.length} labels, the model's output "${out.name}" has ${classes} classes`);
      }
    }
  }
  if (m.task !== 'classify') problems.push(`task: "${m.task}" is not supported yet by this build (supported: classify)`);
  return problems;
}
