import { z } from 'zod';

/** manifest.yaml of a model package: what the model expects and how to read its answer. */

export const inputSchema = z.strictObject({
  name: z.string().min(1),
  layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
  width: z.int().min(1).max(8192),
  height: z.int().min(1).max(8192),
  colour: z.enum(['RGB', 'BGR']).default('RGB'),
  dtype: z.enum(['float32', 'float16', 'uint8']).default('float32'),
  /** Applied first: x = pixel * scale; then (x - mean) / std per channel. */
  scale: z
    .number()
    .positive()
    .default(1 / 255),
  mean: z.tuple([z.number(), z.number(), z.number()]).default([0, 0, 0]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([1, 1, 1]),
  resize: z.enum(['stretch', 'letterbox', 'center-crop']).default('stretch'),
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
    output: z.strictObject({ name: z.string().min(1) }).optional(),
    labels: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).describe('inline list, or a file with one label per line'),
    classify: classifySchema.prefault({}),
    regress: regressSchema.prefault({}),
    detect: detectSchema.prefault({}),
    segment: segmentSchema.prefault({}),
    /**
     * person: the model finds people (faces, bodies): a camera running it redacts those boxes in
     * snapshots by default, and its crops never leave the device unless asked for.
     */
    privacy: z.enum(['none', 'person']).default('none'),
  })
  .superRefine((m, ctx) => {
    if (m.classify.threshold !== undefined && !MULTI_LABEL.has(m.classify.outputs))
      ctx.addIssue({
        code: 'custom',
        path: ['classify', 'threshold'],
        input: m.classify.threshold,
        message: `only for multi-label outputs (sigmoid, label-probabilities); classify.outputs is ${m.classify.outputs}`,
      });
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
export type InputSpec = Manifest['input'];
export type DetectSpec = Manifest['detect'];
export type SegmentSpec = Manifest['segment'];
export type Task = Manifest['task'];
export type ClassifySpec = Manifest['classify'];
export type RegressSpec = Manifest['regress'];
