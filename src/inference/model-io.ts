/** What a model says about its inputs and outputs, and the output names each postprocessing role reads. */

export interface IoMeta {
  name: string;
  /** Element type as ORT names it: float32, uint8, int64...; undefined for non-tensors. */
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

export interface ModelIo {
  inputs: readonly IoMeta[];
  outputs: readonly IoMeta[];
}

/** Output names the postprocessor reads, per role: one or several heads, joined in this order. */
export interface OutputNames {
  main?: string[];
  boxes?: string[];
  scores?: string[];
  keypoints?: string[];
  objectness?: string[];
}
