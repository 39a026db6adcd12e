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
  outputs: z.enum(['logits', 'probabilities']).default('logits'),
  topK: z.int().min(1).max(100).default(5),
});

export const detectSchema = z.strictObject({
  /**
   * yolov8: one output [1, 4+C, N] (cx, cy, w, h, then C class scores); yolov5: [1, N, 5+C]
   * (cx, cy, w, h, objectness, C class scores); boxes-scores: two outputs, boxes [1, N, 4] and
   * scores [1, N, C].
   */
  format: z.enum(['yolov8', 'yolov5', 'boxes-scores']).default('yolov8'),
  /** boxes-scores only: output names and box encoding. */
  boxes: z.string().min(1).optional(),
  scores: z.string().min(1).optional(),
  boxFormat: z.enum(['xyxy', 'cxcywh']).default('xyxy'),
  /** Box coordinates in [0,1] of the model input instead of input pixels. */
  normalized: z.boolean().default(false),
  scoreThreshold: z.number().min(0).max(1).default(0.25),
  iouThreshold: z.number().min(0).max(1).default(0.45),
  maxDetections: z.int().min(1).max(10_000).default(100),
  /** true: NMS only between boxes of the same class; false: any two boxes. */
  classAware: z.boolean().default(true),
  /**
   * yolov8 only (YOLOv8-pose layout): K named keypoints after the class scores, the output being
   * [1, 4 + C + 3K, N] with x, y, visibility per keypoint, in the same units as the box.
   */
  keypoints: z.array(z.string().min(1)).min(1).max(64).optional(),
});

export const segmentSchema = z.strictObject({
  /** scores: [1, C, H, W] logits or probabilities (argmax per pixel); classes: [1, H, W] class ids. */
  output: z.enum(['scores', 'classes']).default('scores'),
  /** Also return the class-index mask (one byte per source pixel) as a greyscale PNG. */
  maskPng: z.boolean().default(false),
});

export const manifestSchema = z
  .strictObject({
    name: z.string().min(1),
    version: z.string().min(1),
    description: z.string().optional(),
    task: z.enum(['classify', 'detect', 'segment']),
    model: z.string().min(1).default('model.onnx'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    input: inputSchema,
    output: z.strictObject({ name: z.string().min(1) }).optional(),
    labels: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).describe('inline list, or a file with one label per line'),
    classify: classifySchema.prefault({}),
    detect: detectSchema.prefault({}),
    segment: segmentSchema.prefault({}),
    /**
     * person: the model finds people (faces, bodies): a camera running it redacts those boxes in
     * snapshots by default, and its crops never leave the device unless asked for.
     */
    privacy: z.enum(['none', 'person']).default('none'),
  })
  .superRefine((m, ctx) => {
    const k = m.detect.keypoints;
    if (k && m.detect.format !== 'yolov8')
      ctx.addIssue({
        code: 'custom',
        path: ['detect', 'keypoints'],
        input: k,
        message: `keypoints are read from the yolov8 (pose) layout only; detect.format is ${m.detect.format}`,
      });
    if (k && new Set(k).size !== k.length)
      ctx.addIssue({ code: 'custom', path: ['detect', 'keypoints'], input: k, message: 'keypoint names must be unique' });
  });

export type Manifest = z.output<typeof manifestSchema>;
type ParsedInput = Manifest['input'];
/** The input section; the keys added later may be left out by code that builds one by hand (their defaults apply). */
export type InputSpec = Omit<ParsedInput, 'channels' | 'interpolation' | 'pad' | 'mean' | 'std'> &
  Partial<Pick<ParsedInput, 'channels' | 'interpolation' | 'pad'>> & { mean: readonly number[]; std: readonly number[] };
export type DetectSpec = Manifest['detect'];
export type SegmentSpec = Manifest['segment'];
export type Task = Manifest['task'];
