import type { Frame } from '../capture/frame.js';
import type { Heatmap } from './explain.js';

/** Plain data that leaves the inference stage (structured-cloneable: it crosses the worker boundary). */

export interface Classification {
  index: number;
  label: string;
  score: number;
}

/** A box in source-frame pixels: top-left corner, width, height. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A named point of a detection (YOLOv8-pose), source-frame pixels; score: the model's visibility/confidence. */
export interface Keypoint {
  name: string;
  x: number;
  y: number;
  score: number;
}

export interface Detection {
  index: number;
  label: string;
  score: number;
  box: Box;
  /** The manifest's detect.keypoints, in its order (yolov8-pose detectors only). */
  keypoints?: Keypoint[];
}

/** A regress model's point (regress.points): two of its values as a position, source-frame pixels. */
export interface RegressPoint {
  name: string;
  x: number;
  y: number;
}

/** One named value of a regress model (output * scale + offset). */
export interface RegressValue {
  index: number;
  name: string;
  value: number;
}

export interface SegmentClass {
  index: number;
  label: string;
  /** Share of the source image's pixels given this class (0..1); letterbox padding is not counted. */
  fraction: number;
}

export interface LatencyMs {
  preprocess: number;
  inference: number;
  postprocess: number;
}

export interface ModelRef {
  name: string;
  version: string;
  sha256: string;
}

export interface ModelInfo extends ModelRef {
  task: 'classify' | 'detect' | 'segment' | 'regress';
  provider: string;
}

/**
 * What a model that finds people (manifest `privacy: person`) found, for the pictures that leave
 * the device: every box its postprocessing kept, before any limit or filter a camera applies
 * after it (minScore, maxObjects). `whole`: some of what it found cannot be blacked out exactly
 * (a box that is not a finite rectangle inside the frame, boxes over the per-frame cap, a model
 * that gives no boxes at all): the whole frame is hidden instead.
 */
export interface PrivacyMarks {
  boxes: Box[];
  whole: boolean;
}

interface InferenceBase {
  /** The model that computed this result (a hot swap may change it between two frames). */
  model: ModelInfo;
  latencyMs: LatencyMs;
  /** Set when the model finds people (manifest privacy: person). */
  privacy?: PrivacyMarks;
}

/** Boxes a detector gave that were not published: not a drawable box, or over the per-frame caps. */
export interface DetectOverflow {
  /** Not a finite box of non-negative size (NaN, infinite, negative width or height). */
  invalid: number;
  /** Candidates past the cap before NMS, and detections past the cap per frame. */
  capped: number;
}

export interface ClassifyInference extends InferenceBase {
  task: 'classify';
  top: Classification[];
  /** Multi-label models only: every label at or above its threshold, best first (empty: none is on). */
  on?: Classification[];
  /** Where the model looked for the best class (asked for with InferHooks.explain). */
  heatmap?: Heatmap;
}

export interface RegressInference extends InferenceBase {
  task: 'regress';
  /** Every value, in the manifest's label order. */
  values: RegressValue[];
  /** regress.points: the values that are coordinates, as points in source-frame pixels. */
  points?: RegressPoint[];
}

/**
 * How a crop stage's numbers read: class probabilities summing to 1 (`classes`), one
 * probability per label each compared with its threshold (`multi-label`), or named values
 * (`values`, a regress model).
 */
export type CropOutputs = { kind: 'classes' } | { kind: 'multi-label'; thresholds: number[] } | { kind: 'values' };

/** One region of a detected object through a pipeline's second stage (an eye of a face, an item's box). */
export interface RegionResult {
  name: string;
  /** The keypoint it is centred on was not found (absent, or below the region's minScore). */
  notDetected?: true;
  /** The crop taken, clipped to the frame, source pixels. */
  box?: Box;
  /** Its shorter side in source pixels, and the variance of its Laplacian (the blur gate). */
  sidePx?: number;
  sharpness?: number;
  /** Not classified: too small or too blurred for the stage's quality gate. */
  skipped?: 'small' | 'blurred';
  /**
   * The crop stage's numbers in its label order (absent when not run): class probabilities, or a
   * regress stage's values (PipelineRun.outputs says which).
   */
  scores?: number[];
  /** A regress stage's regress.points, in source-frame pixels. */
  points?: RegressPoint[];
  /** The crop as PNG, only when the camera's privacy.includeCrops is set. */
  cropPng?: Uint8Array;
  /** Where the crop stage looked (explain: every). */
  heatmap?: Heatmap;
  /**
   * explain: assessment: the frame (the pipeline's own copy) and rectangle this crop came from, so
   * an assessment can be explained on it later. Not enumerable: never serialised.
   */
  readonly source?: { frame: Frame; rect: Box; scale: number };
}

/** A first-stage detection with its regions; `track` is given by the decide stage's tracker. */
export interface PipelineObject extends Detection {
  track?: number;
  regions: RegionResult[];
}

/** One stage's part of a pipeline frame. */
export interface StageRun {
  name: string;
  model: ModelInfo;
  latencyMs: LatencyMs;
  /** Second stage: crops taken, classified, skipped by the quality gate, session runs. */
  crops?: number;
  classified?: number;
  skipped?: number;
  runs?: number;
}

export interface PipelineRun {
  name: string;
  /** The second stage's labels (the order of RegionResult.scores). */
  labels: string[];
  /** How RegionResult.scores read (absent: classes). */
  outputs?: CropOutputs;
  objects: PipelineObject[];
  stages: StageRun[];
}

export interface DetectInference extends InferenceBase {
  task: 'detect';
  /** Best score first, after the score threshold and NMS. */
  detections: Detection[];
  /** Set when a camera's pipeline produced it: the objects with their regions, per stage timings. */
  pipeline?: PipelineRun;
  /** Set when some boxes were not published (counted per camera in /status). */
  overflow?: DetectOverflow;
}

export interface SegmentInference extends InferenceBase {
  task: 'segment';
  /** Classes present, largest fraction first. */
  classes: SegmentClass[];
  /** Class index per source pixel as a greyscale PNG, when the manifest asks for it. */
  maskPng?: Uint8Array;
}

export type Inference = ClassifyInference | DetectInference | SegmentInference | RegressInference;

/** The task-specific part of an Inference, as postprocessing produces it. */
export type TaskResult = Inference extends infer I ? (I extends Inference ? Omit<I, 'model' | 'latencyMs'> : never) : never;

/**
 * The one label that stands for an inference (what the publish policy and the snapshot banner
 * follow): the top class (multi-label: the best label that is on), the best box, or the largest
 * segment (its area fraction as the score). Undefined when a detector found nothing, no label of
 * a multi-label model is on, and for regress models (values, no label).
 */
export function primaryOf(inf: Inference): Classification | undefined {
  switch (inf.task) {
    case 'classify':
      return inf.on ? inf.on[0] : inf.top[0];
    case 'detect':
      return inf.detections[0] && { index: inf.detections[0].index, label: inf.detections[0].label, score: inf.detections[0].score };
    case 'segment':
      return inf.classes[0] && { index: inf.classes[0].index, label: inf.classes[0].label, score: inf.classes[0].fraction };
    case 'regress':
      return undefined;
  }
}

/** What the decide stage sees when a detector found nothing. */
export const NOTHING_LABEL = 'none';
