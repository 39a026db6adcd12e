import type { AnchorDecoder } from './anchors.js';
import type { DetectOutputs, OutputTensor } from './detect.js';
import { type DetectSpec, keypointValues } from './manifest.js';

/**
 * The keypoints of one kept detection, for every detect format, in model-input pixels: where the
 * manifest says they are (yolov8 rows after the class scores, yolov5 values after the class
 * scores, boxes-scores/anchors a keypoint output or the values after the box), as (x, y) or
 * (x, y, visibility). Without a visibility value a keypoint's score is the detection's.
 */

interface KeypointSource {
  spec: DetectSpec;
  classes: number;
  inputW: number;
  inputH: number;
  anchors?: AnchorDecoder;
}

/** An output the format reads (checkModelIo made sure the model has it). */
function need(t: OutputTensor | undefined, role: string): OutputTensor {
  if (!t) throw new Error(`detect: the ${role} output is missing`);
  return t;
}

export function readKeypoints(
  src: KeypointSource,
  outputs: DetectOutputs,
  n: number,
  score: number,
): { x: number; y: number; score: number }[] {
  const { spec } = src;
  const K = spec.keypoints?.length ?? 0;
  const V = keypointValues(spec);
  const sx = spec.normalized ? src.inputW : 1;
  const sy = spec.normalized ? src.inputH : 1;
  const pts: { x: number; y: number; score: number }[] = [];
  if (spec.format === 'yolov8') {
    // Anchor-major columns: value j of keypoint k is row (4 + C + V k + j).
    const { data, dims } = need(outputs.main, 'main');
    const N = dims[2];
    const first = 4 + src.classes;
    for (let k = 0; k < K; k++) {
      const row = (first + V * k) * N;
      pts.push({ x: data[row + n] * sx, y: data[row + N + n] * sy, score: V === 3 ? data[row + 2 * N + n] : score });
    }
    return pts;
  }
  let data: ArrayLike<number>;
  let o: number;
  if (spec.format === 'yolov5') {
    const main = need(outputs.main, 'main');
    data = main.data;
    o = n * main.dims[2] + 5 + src.classes;
  } else if (outputs.keypoints) {
    data = outputs.keypoints.data;
    o = n * outputs.keypoints.dims[outputs.keypoints.dims.length - 1];
  } else {
    const boxes = need(outputs.boxes, 'boxes');
    data = boxes.data;
    o = n * boxes.dims[boxes.dims.length - 1] + 4;
  }
  for (let k = 0; k < K; k++) {
    const at = o + V * k;
    const [x, y] = src.anchors ? src.anchors.keypoint(n, data, at) : [data[at] * sx, data[at + 1] * sy];
    pts.push({ x, y, score: V === 3 ? data[at + 2] : score });
  }
  return pts;
}
