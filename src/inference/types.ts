/** Plain data that leaves the inference stage. */

export interface Classification {
  index: number;
  label: string;
  score: number;
}

export interface LatencyMs {
  preprocess: number;
  inference: number;
  postprocess: number;
}

export interface Inference {
  task: 'classify';
  top: Classification[];
  latencyMs: LatencyMs;
}

export interface ModelInfo {
  name: string;
  version: string;
  sha256: string;
  task: string;
  provider: string;
}
