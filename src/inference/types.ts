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
  task: 'classify' | 'detect' | 'segment';
  provider: string;
}

interface InferenceBase {
  /** The model that computed this result (a hot swap may change it between two frames). */
  model: ModelInfo;
  latencyMs: LatencyMs;
}

export interface ClassifyInference extends InferenceBase {
  task: 'classify';
  top: Classification[];
}

export interface DetectInference extends InferenceBase {
  task: 'detect';
  /** Best score first, after the score threshold and NMS. */
  detections: Detection[];
}

export interface SegmentInference extends InferenceBase {
  task: 'segment';
  /** Classes present, largest fraction first. */
  classes: SegmentClass[];
  /** Class index per source pixel as a greyscale PNG, when the manifest asks for it. */
  maskPng?: Uint8Array;
}

export type Inference = ClassifyInference | DetectInference | SegmentInference;

/** The task-specific part of an Inference, as postprocessing produces it. */
export type TaskResult = Inference extends infer I ? (I extends Inference ? Omit<I, 'model' | 'latencyMs'> : never) : never;

/**
 * The one label that stands for an inference (what the publish policy and the snapshot banner
 * follow): the top class, the best box, or the largest segment (its area fraction as the score).
 * Undefined when a detector found nothing.
 */
export function primaryOf(inf: Inference): Classification | undefined {
  switch (inf.task) {
    case 'classify':
      return inf.top[0];
    case 'detect':
      return inf.detections[0] && { index: inf.detections[0].index, label: inf.detections[0].label, score: inf.detections[0].score };
    case 'segment':
      return inf.classes[0] && { index: inf.classes[0].index, label: inf.classes[0].label, score: inf.classes[0].fraction };
  }
}

/** What the decide stage sees when a detector found nothing. */
export const NOTHING_LABEL = 'none';
