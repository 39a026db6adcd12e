/**
 * The plain shapes a detector's outputs take on their way through decoding: a model output as
 * ORT hands it over, the outputs by role, and a box before NMS. Their own module so the decoders
 * (detect, anchors, keypoints) share them without importing each other.
 */

export interface OutputTensor {
  data: ArrayLike<number>;
  dims: readonly number[];
}

export interface Candidate {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  cls: number;
  /** The row/anchor it came from (its keypoints are read from there after NMS). */
  anchor?: number;
}

/** A detector's outputs by role, several heads already joined. */
export type DetectOutputs = {
  main?: OutputTensor;
  boxes?: OutputTensor;
  scores?: OutputTensor;
  keypoints?: OutputTensor;
  objectness?: OutputTensor;
};
