import type { ExplainItem, Heatmap } from './explain.js';
import { overlayPng } from './explain.js';
import type { Manifest, InputSpec } from './manifest.js';
import type { IoMeta, ModelIo } from './model-io.js';
import { onnxInitializers } from './onnx-weights.js';
import { halfToFloat } from './preprocess.js';

/**
 * Class activation maps (Zhou et al. 2016) for a classifier that ends in global average pooling
 * and a linear layer: the map of class k is sum_c w[k, c] * F[c, y, x] over the feature map F the
 * model pools, so it costs one pass (the feature map is fetched with the scores) and a few
 * multiply-adds per cell. The manifest names the feature-map output and the initializer holding the
 * linear layer's weights (`explain`); both are checked once, at load.
 */

export interface CamPlan {
  featureMap: string;
  layout: 'NCHW' | 'NHWC';
  /** Class-major: weights[k * channels + c]. */
  weights: Float32Array;
  classes: number;
  channels: number;
}

const fmt = (shape: ReadonlyArray<number | string> | undefined) => `[${(shape ?? []).join(',')}]`;

/**
 * The manifest's `explain` (method cam) against the model: the feature-map output (from the
 * session's metadata) and the weights initializer (from the ONNX file's bytes). Each problem is one
 * `explain.<key>: ...` line.
 */
export function planCam(m: Manifest, labels: number, io: ModelIo, model: Uint8Array): { problems: string[]; plan?: CamPlan } {
  const x = m.explain;
  const problems: string[] = [];
  if (x.method !== 'cam' || x.featureMap === undefined || x.weights === undefined) return { problems };
  const layout = x.layout ?? m.input.layout;
  const out = io.outputs.find((o) => o.name === x.featureMap);
  if (!out)
    problems.push(
      `explain.featureMap: the model has no output "${x.featureMap}" (model outputs: ${io.outputs.map((o) => o.name).join(', ')})`,
    );
  else featureProblems(out, problems);

  let inits: ReturnType<typeof onnxInitializers>;
  try {
    inits = onnxInitializers(model, (name) => name === x.weights);
  } catch (err) {
    problems.push(`explain.weights: cannot read the initializers of ${m.model}: ${(err as Error).message}`);
    return { problems };
  }
  const w = inits.find((i) => i.name === x.weights);
  if (!w) {
    // The likely ones: a float matrix with a dimension of the labels' count.
    const near = inits.filter((i) => i.dims.length >= 2 && i.dims.includes(labels) && i.type.startsWith('float'));
    const hint = near.length
      ? `; initializers with a dimension of ${labels} (the labels): ${near
          .slice(0, 8)
          .map((i) => `${i.name} ${fmt(i.dims)}`)
          .join(', ')}`
      : '';
    problems.push(`explain.weights: ${m.model} has no initializer "${x.weights}"${hint}`);
    return { problems };
  }
  if (!w.values) {
    problems.push(`explain.weights: initializer "${w.name}" cannot be used: ${w.why}`);
    return { problems };
  }
  // A 1x1 convolution's [classes, C, 1, 1] is a matrix too.
  const dims = w.dims.filter((d, i) => i < 2 || d !== 1);
  if (dims.length !== 2 || (dims[0] !== labels && dims[1] !== labels)) {
    problems.push(
      `explain.weights: initializer "${w.name}" has shape ${fmt(w.dims)}; expected [classes, channels] or ` +
        `[channels, classes] with ${labels} classes (the labels)`,
    );
    return { problems };
  }
  let order = x.weightsLayout;
  if (!order) {
    if (dims[0] === labels && dims[1] === labels) {
      problems.push(
        `explain.weightsLayout: initializer "${w.name}" is ${fmt(w.dims)}, as many channels as classes; ` +
          "say which dimension is the classes' (classes-channels: PyTorch Linear; channels-classes: Keras Dense)",
      );
      return { problems };
    }
    order = dims[0] === labels ? 'classes-channels' : 'channels-classes';
  } else if ((order === 'classes-channels' ? dims[0] : dims[1]) !== labels) {
    problems.push(`explain.weightsLayout: ${order}, but initializer "${w.name}" ${fmt(w.dims)} has no ${labels} (the labels) there`);
    return { problems };
  }
  const channels = order === 'classes-channels' ? dims[1] : dims[0];
  const shape = out?.shape;
  if (shape?.length === 4) {
    const c = layout === 'NCHW' ? shape[1] : shape[3];
    const other = layout === 'NCHW' ? shape[3] : shape[1];
    if (typeof c === 'number' && c !== channels)
      problems.push(
        `explain.layout: ${layout}${x.layout ? '' : ' (input.layout)'} reads ${c} channels from "${out?.name}" ${fmt(shape)}, ` +
          `the weights "${w.name}" ${fmt(w.dims)} have ${channels}` +
          (other === channels ? `; it looks ${layout === 'NCHW' ? 'NHWC' : 'NCHW'}` : ''),
      );
  }
  if (problems.length) return { problems };
  const weights = new Float32Array(labels * channels);
  for (let k = 0; k < labels; k++)
    for (let c = 0; c < channels; c++)
      weights[k * channels + c] = order === 'classes-channels' ? w.values[k * channels + c] : w.values[c * labels + k];
  return { problems, plan: { featureMap: out?.name ?? x.featureMap, layout, weights, classes: labels, channels } };
}

function featureProblems(o: IoMeta, problems: string[]): void {
  if (o.type !== undefined && o.type !== 'float32' && o.type !== 'float16')
    problems.push(`explain.featureMap: the model's output "${o.name}" is ${o.type}; a feature map is float32 or float16`);
  if (o.shape && o.shape.length !== 4)
    problems.push(
      `explain.featureMap: the model's output "${o.name}" has shape ${fmt(o.shape)} (rank ${o.shape.length}); ` +
        'a feature map is [N, C, h, w] (NCHW) or [N, h, w, C] (NHWC)',
    );
}

/** A feature-map output as ORT gives it (float16 as its bits). */
export interface FeatureTensor {
  data: ArrayLike<number>;
  dims: readonly number[];
  type?: string;
}

export class Cam {
  private readonly plan: CamPlan;
  private readonly spec: InputSpec;

  constructor(plan: CamPlan, spec: InputSpec) {
    this.plan = plan;
    this.spec = spec;
  }

  get output(): string {
    return this.plan.featureMap;
  }

  /**
   * One heatmap per item, from the feature maps of the run that classified them: `at[i]` is item
   * i's index in that run's batch. Values: the class's map over the feature grid, divided by its
   * largest magnitude (1 where the evidence for the class was strongest; negative: against it).
   */
  explain(items: readonly ExplainItem[], at: readonly number[], features: FeatureTensor): Promise<Heatmap[]> {
    const { layout, channels: C, weights } = this.plan;
    const d = features.dims;
    if (d.length !== 4) throw new Error(`explain.featureMap: "${this.plan.featureMap}" came back with dims [${d.join(',')}], not rank 4`);
    const [rows, cols, c] = layout === 'NCHW' ? [d[2], d[3], d[1]] : [d[1], d[2], d[3]];
    if (c !== C) throw new Error(`explain.featureMap: "${this.plan.featureMap}" came back with ${c} channels, the weights have ${C}`);
    const cells = rows * cols;
    const per = C * cells;
    const half = features.type === 'float16';
    const f = (i: number) => (half ? halfToFloat(features.data[i]) : features.data[i]);
    return Promise.all(
      items.map(async (it, i) => {
        const base = at[i] * per;
        const w = it.target * C;
        const map = new Float64Array(cells);
        for (let p = 0; p < cells; p++) {
          let s = 0;
          for (let ch = 0; ch < C; ch++) s += weights[w + ch] * f(base + (layout === 'NCHW' ? ch * cells + p : p * C + ch));
          map[p] = s;
        }
        let max = 0;
        for (const v of map) max = Math.max(max, Math.abs(v));
        const values = Array.from(map, (v) => (max > 0 ? Math.round((v / max) * 1e4) / 1e4 : 0));
        const heat = { method: 'cam' as const, rows, cols, target: it.target, base: it.base, values };
        return { ...heat, png: await overlayPng(it.input, this.spec, heat) };
      }),
    );
  }
}
