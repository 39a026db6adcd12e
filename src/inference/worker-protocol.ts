import type { Frame } from '../capture/frame.js';
import type { CropRequest, CropsInference } from './crop.js';
import type { EngineCachePlan } from './engine-cache.js';
import type { ModelPackage } from './package.js';
import type { Geometry } from './preprocess.js';
import type { EngineEvent, ProviderAttempt, SessionOptions } from './providers.js';
import type { Inference, ModelInfo } from './types.js';

/** Messages between WorkerEngine (main thread) and worker.ts. Everything here is structured-cloneable. */

/** A frame without its pixels: those travel in a shared slot (`buf`, first `byteLength` bytes). */
export type FrameMeta = Omit<Frame, 'data'> & { byteLength: number };

export type ToWorker =
  | { type: 'load'; pkg: ModelPackage; options: Omit<SessionOptions, 'onEvent'>; nice: number }
  | { type: 'infer'; id: number; frame: FrameMeta; buf: SharedArrayBuffer }
  /**
   * The model's input tensor, already written into `buf` by the main thread (src/inference/tensorize.ts).
   * `buf` is transferred, not shared (ORT takes no SharedArrayBuffer), and comes back with the answer.
   */
  | { type: 'infer-tensor'; id: number; geometry: Geometry; preprocessMs: number; buf: ArrayBuffer }
  /** A pipeline's second stage: crops of this frame through the (classify or regress) model. */
  | { type: 'crops'; id: number; frame: FrameMeta; buf: SharedArrayBuffer; request: CropRequest }
  | { type: 'close' };

export interface WireError {
  code?: string;
  message: string;
  problems?: string[];
}

export type FromWorker =
  | { type: 'event'; event: EngineEvent }
  | { type: 'loaded'; info: ModelInfo; attempts: ProviderAttempt[]; engineCache?: EngineCachePlan; warmupMs: number }
  | { type: 'load-failed'; error: WireError }
  | { type: 'result'; id: number; inference: Inference | CropsInference; buf?: ArrayBuffer }
  | { type: 'failed'; id: number; error: WireError; buf?: ArrayBuffer }
  | { type: 'closed' };
