import { z } from 'zod';

/** manifest.yaml of a model package: what the model expects and how to read its answer. */

export const inputSchema = z.strictObject({
  name: z.string().min(1),
  layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
  width: z.int().min(1).max(8192),
  height: z.int().min(1).max(8192),
  colour: z.enum(['RGB', 'BGR']).default('RGB'),
  dtype: z.enum(['float32', 'uint8']).default('float32'),
  /** Applied first: x = pixel * scale; then (x - mean) / std per channel. */
  scale: z.number().positive().default(1 / 255),
  mean: z.tuple([z.number(), z.number(), z.number()]).default([0, 0, 0]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([1, 1, 1]),
  resize: z.enum(['stretch', 'letterbox', 'center-crop']).default('stretch'),
});

export const classifySchema = z.strictObject({
  outputs: z.enum(['logits', 'probabilities']).default('logits'),
  topK: z.int().min(1).max(100).default(5),
});

export const manifestSchema = z.strictObject({
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
});

export type Manifest = z.output<typeof manifestSchema>;
export type InputSpec = Manifest['input'];
