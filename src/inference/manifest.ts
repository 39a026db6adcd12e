import { z } from 'zod';

/** manifest.yaml of a model package: what the model expects and how to read its answer. */

/** How the frame is resampled to the model's input (docs/inputs.md says which library each one matches). */
const INTERPOLATIONS = ['bilinear', 'nearest', 'area', 'bilinear-antialias', 'bicubic-antialias'] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

const byte = z.int().min(0).max(255);
/** One value for every channel, or one per channel. */
const perChannel = (item: z.ZodNumber) => z.union([item.transform((v) => [v]), z.array(item).min(1).max(3)]);

export const inputSchema = z
  .strictObject({
    name: z.string().min(1),
    layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
    width: z.int().min(1).max(8192),
    height: z.int().min(1).max(8192),
    /** 3: colour (in `colour` order); 1: grey (BT.601 luma of the RGB pixel, as OpenCV and PIL convert). */
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    colour: z.enum(['RGB', 'BGR']).default('RGB'),
    dtype: z.enum(['float32', 'float16', 'uint8']).default('float32'),
    /** Applied first: x = pixel * scale; then (x - mean) / std per channel (one value: every channel). */
    scale: z
      .number()
      .positive()
      .default(1 / 255),
    mean: perChannel(z.number()).default([0]),
    std: perChannel(z.number().positive()).default([1]),
    resize: z.enum(['stretch', 'letterbox', 'center-crop']).default('stretch'),
    interpolation: z.enum(INTERPOLATIONS).default('bilinear'),
    /** The letterbox fill, in pixel values (0..255): one grey, or R, G, B. */
    pad: perChannel(byte).default([114]),
  })
  .superRefine((i, ctx) => {
    for (const key of ['mean', 'std', 'pad'] as const) {
      const n = i[key].length;
      if (n !== 1 && n !== i.channels)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          input: i[key],
          message: `has ${n} values; give one, or one per channel (channels: ${i.channels})`,
        });
    }
  });

export const classifySchema = z.strictObject({
  /**
   * One label per image: logits (softmax applied) or probabilities. Several labels at once
   * (multi-label): sigmoid (one logit per label, a sigmoid applied to each) or label-probabilities
   * (one independent probability per label, the sigmoid already in the model).
   */
  outputs: z.enum(['logits', 'probabilities', 'sigmoid', 'label-probabilities']).default('logits'),
  topK: z.int().min(1).max(100).default(5),
  /** Multi-label only: a label is on at or above its threshold; one for all, or one per label (every label named). */
  threshold: z.union([z.number().min(0).max(1), z.record(z.string().min(1), z.number().min(0).max(1))]).optional(),
});

export const regressSchema = z.strictObject({
  /**
   * value = output * scale + offset: one number for every value, or one per value (the labels'
   * order), e.g. scale: 100 for an age trained as age / 100.
   */
  scale: z.union([z.number(), z.array(z.number()).min(1)]).default(1),
  offset: z.union([z.number(), z.array(z.number()).min(1)]).default(0),
});

/** One output name, or several heads (one per stride) concatenated in the order given. */
const outputNames = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(16)]);

/**
 * The anchor grid of an anchor-based detector (BlazeFace, SSD, RetinaFace, SCRFD, YuNet): one
 * level per stride, each a feature map of ceil(input / stride) cells (or `featureMaps`), each cell
 * holding `perCell` anchors (or one per entry of `sizes`), in row-major cell order, levels in
 * order. Consecutive levels with the same stride share one feature map, their anchors interleaved
 * per cell (MediaPipe's SSD anchor generator: strides [8, 16, 16, 16] are two maps).
 */
export const anchorsSchema = z.strictObject({
  strides: z.array(z.int().min(1).max(1024)).min(1).max(16),
  /** [rows, cols] per level; default ceil(height / stride), ceil(width / stride). */
  featureMaps: z
    .array(z.tuple([z.int().min(1).max(4096), z.int().min(1).max(4096)]))
    .min(1)
    .max(16)
    .optional(),
  /** Anchors per cell: one number for every level, or one per level. */
  perCell: z.union([z.int().min(1).max(64), z.array(z.int().min(1).max(64)).min(1).max(16)]).optional(),
  /**
   * Square anchor sides in input pixels, a list per level (RetinaFace's min_sizes). Without it the
   * anchors have a fixed size: the whole input (MediaPipe's fixed_anchor_size).
   */
  sizes: z
    .array(z.array(z.number().positive().max(16_384)).min(1).max(64))
    .min(1)
    .max(16)
    .optional(),
  /** Anchor centre within its cell: (col + offset) x stride. 0.5 for MediaPipe/SSD/RetinaFace, 0 for SCRFD. */
  offset: z.number().min(0).max(1).default(0.5),
});

export const detectSchema = z.strictObject({
  /**
   * yolov8: one output [1, 4+C, N] (cx, cy, w, h, then C class scores); yolov5: [1, N, 5+C]
   * (cx, cy, w, h, objectness, C class scores); boxes-scores: two outputs, boxes [1, N, 4] and
   * scores [1, N, C]; anchors: boxes [1, N, 4] and scores [1, N, C] relative to an anchor grid
   * (`anchors`, `encoding`).
   */
  format: z.enum(['yolov8', 'yolov5', 'boxes-scores', 'anchors']).default('yolov8'),
  /** boxes-scores and anchors: output names (or lists of heads) and box encoding. */
  boxes: outputNames.optional(),
  scores: outputNames.optional(),
  boxFormat: z.enum(['xyxy', 'cxcywh']).default('xyxy'),
  /** Box coordinates in [0,1] of the model input instead of input pixels. */
  normalized: z.boolean().default(false),
  scoreThreshold: z.number().min(0).max(1).default(0.25),
  iouThreshold: z.number().min(0).max(1).default(0.45),
  maxDetections: z.int().min(1).max(10_000).default(100),
  /** true: NMS only between boxes of the same class; false: any two boxes. */
  classAware: z.boolean().default(true),
  /**
   * K named keypoints, `keypointValues` numbers each: (x, y) or (x, y, visibility), in the box's
   * units (for anchors: the box centre's encoding). yolov8: rows after the class scores
   * ([1, 4 + C + K*v, N]); yolov5: after the class scores ([1, N, 5 + C + K*v]); boxes-scores and
   * anchors: `keypointOutputs` ([1, N, K*v]), or after the 4 box values in `boxes`.
   */
  keypoints: z.array(z.string().min(1)).min(1).max(64).optional(),
  /** 2: (x, y), the keypoint's score is the detection's; 3: (x, y, visibility). Default: 3 for yolov8, else 2. */
  keypointValues: z.union([z.literal(2), z.literal(3)]).optional(),
  keypointOutputs: outputNames.optional(),
  /** anchors: the grid, the box encoding and its variances (center-size). */
  anchors: anchorsSchema.optional(),
  /**
   * offsets: centre offset and size in input pixels (BlazeFace; with anchor `sizes`: in units of
   * input size / anchor size, MediaPipe's x_scale); center-size: SSD/RetinaFace (centre + d x
   * variance x anchor size, size = anchor x exp(d x variance)); distance: SCRFD/YuNet (distances
   * from the anchor centre to the left, top, right, bottom edges, times the stride).
   */
  encoding: z.enum(['offsets', 'center-size', 'distance']).optional(),
  variances: z.tuple([z.number().positive(), z.number().positive()]).default([0.1, 0.2]),
  /** The scores as the model gives them: probabilities, logits (sigmoid each), or softmax (over the columns). */
  scoreType: z.enum(['probabilities', 'logits', 'softmax']).default('probabilities'),
  /** The first score column is a background class (SSD/RetinaFace): skipped. */
  background: z.boolean().default(false),
});

export const segmentSchema = z.strictObject({
  /** scores: [1, C, H, W] logits or probabilities (argmax per pixel); classes: [1, H, W] class ids. */
  output: z.enum(['scores', 'classes']).default('scores'),
  /** Also return the class-index mask (one byte per source pixel) as a greyscale PNG. */
  maskPng: z.boolean().default(false),
});

/**
 * How a classifier's answers are explained (when the config asks: `explain`). occlusion: any model
 * (64 masked copies per explained input); cam: class activation maps, one pass, for a model that
 * ends in global average pooling and a linear classifier and exposes the map it pools as an output.
 */
export const explainSchema = z.strictObject({
  method: z.enum(['occlusion', 'cam']).default('occlusion'),
  /** cam: the output holding the feature map the classifier pools, [N, C, h, w] or [N, h, w, C]. */
  featureMap: z.string().min(1).optional(),
  /** Its layout; default: input.layout. */
  layout: z.enum(['NCHW', 'NHWC']).optional(),
  /**
   * cam: the initializer in the ONNX file holding the classifier's weights: [classes, C] (PyTorch
   * Linear, Gemm transB=1; a 1x1 conv [classes, C, 1, 1]) or [C, classes] (Keras Dense, MatMul).
   */
  weights: z.string().min(1).optional(),
  /** Which dimension of `weights` is the classes' when it is square (classes = channels); otherwise read from the shape. */
  weightsLayout: z.enum(['classes-channels', 'channels-classes']).optional(),
});

/** classify.outputs that make a multi-label classifier (each label on or off by itself). */
export const MULTI_LABEL: ReadonlySet<string> = new Set(['sigmoid', 'label-probabilities']);

export const manifestSchema = z
  .strictObject({
    name: z.string().min(1),
    version: z.string().min(1),
    description: z.string().optional(),
    /** regress: named continuous values (the labels name them, in output order), e.g. an age or five traits. */
    task: z.enum(['classify', 'detect', 'segment', 'regress']),
    model: z.string().min(1).default('model.onnx'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    input: inputSchema,
    output: z.strictObject({ name: outputNames }).optional(),
    labels: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).describe('inline list, or a file with one label per line'),
    classify: classifySchema.prefault({}),
    regress: regressSchema.prefault({}),
    detect: detectSchema.prefault({}),
    segment: segmentSchema.prefault({}),
    explain: explainSchema.prefault({}),
    /**
     * person: the model finds people (faces, bodies): a camera running it redacts those boxes in
     * snapshots by default, and its crops never leave the device unless asked for.
     */
    privacy: z.enum(['none', 'person']).default('none'),
  })
  .superRefine((m, ctx) => {
    const d = m.detect;
    const issue = (path: PropertyKey[], input: unknown, message: string) => ctx.addIssue({ code: 'custom', path, input, message });
    const k = d.keypoints;
    if (m.classify.threshold !== undefined && !MULTI_LABEL.has(m.classify.outputs))
      issue(
        ['classify', 'threshold'],
        m.classify.threshold,
        `only for multi-label outputs (sigmoid, label-probabilities); classify.outputs is ${m.classify.outputs}`,
      );
    const x = m.explain;
    if (x.method === 'cam') {
      if (m.task !== 'classify') issue(['explain', 'method'], 'cam', `class activation maps explain a classifier; task is ${m.task}`);
      for (const key of ['featureMap', 'weights'] as const)
        if (x[key] === undefined)
          issue(
            ['explain', key],
            undefined,
            `required when explain.method is cam (${key === 'featureMap' ? 'an output name' : 'an initializer name'})`,
          );
    }
    if (k && new Set(k).size !== k.length) issue(['detect', 'keypoints'], k, 'keypoint names must be unique');
    if (Array.isArray(m.output?.name) && (m.task !== 'detect' || d.format === 'boxes-scores' || d.format === 'anchors'))
      issue(
        ['output', 'name'],
        m.output.name,
        'several heads are read only by detect formats yolov8 and yolov5 (others: detect.boxes / scores)',
      );
    if (m.task !== 'detect') return;
    if (d.keypointOutputs && (d.format === 'yolov8' || d.format === 'yolov5'))
      issue(
        ['detect', 'keypointOutputs'],
        d.keypointOutputs,
        `${d.format} keeps its keypoints in its one output; keypointOutputs is for boxes-scores and anchors`,
      );
    if (d.keypointOutputs && !k) issue(['detect', 'keypointOutputs'], d.keypointOutputs, 'name the keypoints too (detect.keypoints)');
    if (d.format === 'anchors') {
      if (!d.anchors) issue(['detect', 'anchors'], undefined, 'required when detect.format is anchors: strides, perCell or sizes, offset');
      if (!d.encoding) issue(['detect', 'encoding'], undefined, 'required when detect.format is anchors: offsets, center-size or distance');
      if (d.normalized) issue(['detect', 'normalized'], true, 'anchors decode to input pixels; normalized is for decoded boxes');
      const a = d.anchors;
      if (a) {
        const L = a.strides.length;
        if (a.perCell === undefined && !a.sizes) issue(['detect', 'anchors', 'perCell'], undefined, 'give perCell or sizes');
        if (Array.isArray(a.perCell) && a.perCell.length !== L)
          issue(['detect', 'anchors', 'perCell'], a.perCell, `one per level: ${L} strides, ${a.perCell.length} counts`);
        if (a.sizes && a.sizes.length !== L)
          issue(['detect', 'anchors', 'sizes'], a.sizes, `one list per level: ${L} strides, ${a.sizes.length} lists`);
        if (a.sizes && a.perCell !== undefined)
          a.sizes.forEach((s, i) => {
            const n = Array.isArray(a.perCell) ? a.perCell[i] : a.perCell;
            if (n !== s.length) issue(['detect', 'anchors', 'sizes', i], s, `${s.length} sizes, but perCell says ${n} anchors per cell`);
          });
        if (a.featureMaps && a.featureMaps.length !== L)
          issue(
            ['detect', 'anchors', 'featureMaps'],
            a.featureMaps,
            `one [rows, cols] per level: ${L} strides, ${a.featureMaps.length} maps`,
          );
        if (d.encoding === 'center-size' && !a.sizes)
          issue(['detect', 'anchors', 'sizes'], undefined, 'center-size boxes are relative to anchor sizes: give sizes per level');
      }
    } else {
      for (const key of ['anchors', 'encoding'] as const)
        if (d[key] !== undefined) issue(['detect', key], d[key], `only for detect.format anchors (it is ${d.format})`);
      if (d.scoreType !== 'probabilities')
        issue(['detect', 'scoreType'], d.scoreType, `only for detect.format anchors (it is ${d.format})`);
      if (d.background) issue(['detect', 'background'], true, `only for detect.format anchors (it is ${d.format})`);
    }
  });

/** Values per keypoint: 2 (x, y) or 3 (x, y, visibility); yolov8 (pose) defaults to 3. */
export function keypointValues(d: DetectSpec): 2 | 3 {
  return d.keypointValues ?? (d.format === 'yolov8' ? 3 : 2);
}

/** An output-name field as a list of heads. */
export function heads(names: string | readonly string[] | undefined): readonly string[] {
  return names === undefined ? [] : typeof names === 'string' ? [names] : names;
}

export type Manifest = z.output<typeof manifestSchema>;
type ParsedInput = Manifest['input'];
/** The input section; the keys added later may be left out by code that builds one by hand (their defaults apply). */
export type InputSpec = Omit<ParsedInput, 'channels' | 'interpolation' | 'pad' | 'mean' | 'std'> &
  Partial<Pick<ParsedInput, 'channels' | 'interpolation' | 'pad'>> & { mean: readonly number[]; std: readonly number[] };
export type DetectSpec = Manifest['detect'];
export type AnchorSpec = z.output<typeof anchorsSchema>;
export type SegmentSpec = Manifest['segment'];
export type Task = Manifest['task'];
export type ClassifySpec = Manifest['classify'];
export type RegressSpec = Manifest['regress'];
export type ExplainSpec = Manifest['explain'];
