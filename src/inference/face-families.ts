import type { IoMeta, ModelIo } from './model-io.js';

/**
 * `model init`'s recognition of the anchor-based face detectors the zoos ship as several heads:
 * YuNet 2023 (OpenCV zoo: cls/obj/bbox/kps heads per stride, named so) and SCRFD (insightface:
 * score/box/keypoint heads for strides 8, 16, 32, names vary by export, so told by their shapes:
 * last dimension 1, 4, 10 and ceil(input / stride)^2 x 2 rows). What each needs beside the heads
 * (normalisation, resize, grid, encoding) is what its own reference code does; docs/models.md has
 * the worked manifests these drafts equal.
 */

export interface FaceFamily {
  family: string;
  input: Record<string, unknown>;
  /** The resize the reference code does: interpolation and letterbox fill. */
  resampling: { interpolation: string; pad: number };
  detect: Record<string, unknown>;
}

const FIVE = ['right_eye', 'left_eye', 'nose', 'mouth_right', 'mouth_left'];
const rowsOf = (o: IoMeta) => o.shape?.[o.shape.length - 2];
const lastOf = (o: IoMeta) => o.shape?.[o.shape.length - 1];

/** YuNet 2023: cls_<s>, obj_<s>, bbox_<s>, kps_<s> for the same strides. */
function yunet(io: ModelIo): FaceFamily | undefined {
  const by: Record<string, Map<number, string>> = { cls: new Map(), obj: new Map(), bbox: new Map(), kps: new Map() };
  for (const o of io.outputs) {
    const m = /^(cls|obj|bbox|kps)_(\d+)$/.exec(o.name);
    if (!m) return undefined;
    by[m[1]].set(Number(m[2]), o.name);
  }
  const strides = [...by.cls.keys()].sort((a, b) => a - b);
  const same = (m: Map<number, string>) => m.size === strides.length && strides.every((s) => m.has(s));
  if (strides.length === 0 || !same(by.obj) || !same(by.bbox) || !same(by.kps)) return undefined;
  const heads = (role: string) => strides.map((s) => by[role].get(s));
  return {
    family: `YuNet 2023 (strides ${strides.join(', ')})`,
    // OpenCV's FaceDetectorYN: raw BGR pixels, padded with zeros.
    input: { colour: 'BGR', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox' },
    resampling: { interpolation: 'bilinear', pad: 0 },
    detect: {
      format: 'anchors',
      scores: heads('cls'),
      objectness: heads('obj'),
      objectnessCombine: 'geometric-mean',
      boxes: heads('bbox'),
      keypointOutputs: heads('kps'),
      anchors: { strides, perCell: 1, offset: 0 },
      encoding: 'stride-exp',
      keypoints: FIVE,
      scoreThreshold: 0.9,
      iouThreshold: 0.3,
    },
  };
}

/** SCRFD: three heads each of scores [N, 1], boxes [N, 4] and (optionally) keypoints [N, 10], N = 2 anchors a cell of strides 8, 16, 32. */
function scrfd(io: ModelIo, width: number, height: number): FaceFamily | undefined {
  const group = (k: number) => io.outputs.filter((o) => lastOf(o) === k);
  const [scores, boxes, kps] = [group(1), group(4), group(10)];
  if (scores.length !== 3 || boxes.length !== 3 || !(kps.length === 3 || kps.length === 0)) return undefined;
  if (scores.length + boxes.length + kps.length !== io.outputs.length) return undefined;
  const want = [8, 16, 32].map((s) => Math.ceil(height / s) * Math.ceil(width / s) * 2);
  // By rows, largest map (stride 8) first; the export's order when the sizes are symbolic.
  const order = (l: IoMeta[]) => {
    const rows = l.map(rowsOf);
    if (rows.every((r) => typeof r === 'number')) {
      const sorted = [...l].sort((a, b) => Number(rowsOf(b)) - Number(rowsOf(a)));
      return sorted.every((o, i) => rowsOf(o) === want[i]) ? sorted.map((o) => o.name) : undefined;
    }
    return l.map((o) => o.name);
  };
  const [s, b, k] = [order(scores), order(boxes), order(kps)];
  if (!s || !b || !k) return undefined;
  return {
    family: `SCRFD (strides 8, 16, 32, 2 anchors a cell${k.length ? ', 5 keypoints' : ''})`,
    // insightface: blobFromImage(img, 1/128, mean 127.5, swapRB), aspect kept, padded with zeros, cv2.resize (bilinear).
    input: { colour: 'RGB', scale: 1, mean: [127.5, 127.5, 127.5], std: [128, 128, 128], resize: 'letterbox' },
    resampling: { interpolation: 'bilinear', pad: 0 },
    detect: {
      format: 'anchors',
      scores: s,
      boxes: b,
      ...(k.length ? { keypointOutputs: k, keypoints: FIVE } : {}),
      anchors: { strides: [8, 16, 32], perCell: 2, offset: 0 },
      encoding: 'distance',
      scoreThreshold: 0.5,
      iouThreshold: 0.4,
    },
  };
}

export function faceFamily(io: ModelIo, width: number, height: number): FaceFamily | undefined {
  return yunet(io) ?? scrfd(io, width, height);
}
