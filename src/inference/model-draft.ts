import { Document, isNode, isScalar, visit } from 'yaml';
import type { IoMeta, ModelIo } from './check.js';
import { pythonInts, pythonNames } from './onnx-meta.js';

/**
 * `model init`'s reasoning, without files: from what a model says about itself (its inputs and
 * outputs, ONNX metadata_props, a TF.js signature) to a draft manifest. A known family (an
 * Ultralytics export, MediaPipe BlazeFace) gets its detect section filled in; anything the model
 * cannot tell (labels, normalisation, the task of an unknown detector) is filled with a guess
 * marked `# DECIDE:` and listed, so nothing is silently assumed.
 */

export interface Draft {
  manifest: Record<string, unknown>;
  /** Dotted manifest paths whose value is a guess, with what to decide. */
  decide: { path: string; note: string }[];
  /** What was recognised, for the header and the report. */
  family: string;
}

const COCO_KEYPOINTS = [
  'nose',
  'left_eye',
  'right_eye',
  'left_ear',
  'right_ear',
  'left_shoulder',
  'right_shoulder',
  'left_elbow',
  'right_elbow',
  'left_wrist',
  'right_wrist',
  'left_hip',
  'right_hip',
  'left_knee',
  'right_knee',
  'left_ankle',
  'right_ankle',
];

const num = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : undefined);
const fmt = (s: IoMeta['shape']) => `[${(s ?? []).join(',')}]`;

function inputOf(io: ModelIo, imgsz: number[] | undefined, decide: Draft['decide']): Record<string, unknown> {
  const i = io.inputs[0];
  const s = i?.shape ?? [];
  const nhwc = s.length === 4 && (s[3] === 3 || s[3] === 1) && s[1] !== 3 && s[1] !== 1;
  let h = num(nhwc ? s[1] : s[2]) ?? imgsz?.[0];
  let w = num(nhwc ? s[2] : s[3]) ?? imgsz?.[1] ?? imgsz?.[0];
  if (h === undefined || w === undefined) {
    decide.push({ path: 'input.width', note: `the model's input ${fmt(s)} has no fixed size: the size it was trained at` });
    h ??= 640;
    w ??= 640;
  }
  return {
    name: i?.name ?? 'input',
    layout: nhwc ? 'NHWC' : 'NCHW',
    width: w,
    height: h,
    colour: 'RGB',
    dtype: i?.type === 'uint8' ? 'uint8' : 'float32',
    scale: 1 / 255,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    resize: 'letterbox',
  };
}

/** Two score heads [1,n,1] and two box heads [1,n,16] over 512 + 384 anchors on 128x128: BlazeFace (front). */
function blazeface(io: ModelIo): { scores: string[]; boxes: string[] } | undefined {
  const byRows = (k: number) =>
    io.outputs
      .filter((o) => o.shape && o.shape[o.shape.length - 1] === k)
      .sort((a, b) => Number(b.shape?.[b.shape.length - 2]) - Number(a.shape?.[a.shape.length - 2]));
  const scores = byRows(1);
  const boxes = byRows(16);
  const rows = (l: IoMeta[]) => l.map((o) => o.shape?.[o.shape.length - 2]).join(',');
  if (io.outputs.length !== 4 || rows(scores) !== '512,384' || rows(boxes) !== '512,384') return undefined;
  return { scores: scores.map((o) => o.name), boxes: boxes.map((o) => o.name) };
}

/**
 * A classifier that exposes its feature map: one [N, classes] output, one rank-4 output, and an
 * initializer [classes, C] or [C, classes] (C the feature map's channels in the input's layout):
 * what explain.method cam needs.
 */
function camDraft(
  io: ModelIo,
  inits: readonly { name: string; dims: number[]; type: string }[],
  layout: string,
): { main: IoMeta; featureMap: IoMeta; weights: string } | undefined {
  if (io.outputs.length !== 2) return undefined;
  const main = io.outputs.find((o) => o.shape?.length === 2);
  const featureMap = io.outputs.find((o) => o.shape?.length === 4);
  const L = num(main?.shape?.[1]);
  const C = num(featureMap?.shape?.[layout === 'NHWC' ? 3 : 1]);
  if (!main || !featureMap || L === undefined || C === undefined) return undefined;
  const fits = (dims: number[]) => {
    const d = dims.filter((x, i) => i < 2 || x !== 1);
    return d.length === 2 && ((d[0] === L && d[1] === C) || (d[0] === C && d[1] === L));
  };
  const w = inits.find((i) => i.type.startsWith('float') && fits(i.dims));
  return w && { main, featureMap, weights: w.name };
}

export function draftManifest(
  name: string,
  modelFile: string,
  io: ModelIo,
  meta: Record<string, string>,
  initializers: readonly { name: string; dims: number[]; type: string }[] = [],
): Draft {
  const decide: Draft['decide'] = [];
  const imgsz = pythonInts(meta.imgsz);
  const input = inputOf(io, imgsz, decide);
  const m: Record<string, unknown> = { name, version: meta.version ?? '1.0.0', task: 'classify', model: modelFile, sha256: '', input };
  if (meta.description) m.description = meta.description;
  const names = meta.names ? pythonNames(meta.names) : undefined;
  const task = meta.task;
  const out0 = io.outputs[0];

  if (task && names) {
    m.labels = names;
    if (task === 'detect' || task === 'pose') {
      m.task = 'detect';
      const kpt = pythonInts(meta.kpt_shape);
      const detect: Record<string, unknown> = { format: 'yolov8', scoreThreshold: 0.25, iouThreshold: 0.45 };
      if (task === 'pose' && kpt) {
        const [K, V] = kpt;
        detect.keypoints = K === 17 ? COCO_KEYPOINTS : Array.from({ length: K }, (_, k) => `kp_${k}`);
        detect.keypointValues = V === 2 ? 2 : 3;
        if (K !== 17) decide.push({ path: 'detect.keypoints', note: `${K} keypoints: name them in the model's order` });
      }
      m.output = { name: out0?.name };
      m.detect = detect;
      if (names.some((n) => /person|face/i.test(n))) m.privacy = 'person';
      return { manifest: m, decide, family: `Ultralytics YOLO ${task} (${names.length} classes)` };
    }
    if (task === 'classify') {
      m.output = { name: out0?.name };
      m.classify = { outputs: 'probabilities', topK: Math.min(5, names.length) };
      (m.input as Record<string, unknown>).resize = 'center-crop';
      return { manifest: m, decide, family: `Ultralytics YOLO classify (${names.length} classes)` };
    }
    decide.push({ path: 'task', note: `Ultralytics task "${task}" has no reader here (detect, pose and classify do)` });
  }

  const bf = blazeface(io);
  if (bf && input.width === 128 && input.height === 128) {
    Object.assign(input, { scale: 1 / 127.5, mean: [1, 1, 1] });
    m.task = 'detect';
    m.labels = ['face'];
    m.privacy = 'person';
    m.detect = {
      format: 'anchors',
      boxes: bf.boxes,
      scores: bf.scores,
      scoreType: 'logits',
      anchors: { strides: [8, 16, 16, 16], perCell: 2, offset: 0.5 },
      encoding: 'offsets',
      keypoints: ['right_eye', 'left_eye', 'nose', 'mouth', 'right_ear', 'left_ear'],
      keypointValues: 2,
      scoreThreshold: 0.6,
      iouThreshold: 0.3,
      maxDetections: 10,
    };
    return { manifest: m, decide, family: 'MediaPipe BlazeFace (front, 896 anchors)' };
  }

  // Unknown: one [1, C] output reads as a classifier (with a feature-map output beside it and the
  // weights to match: a classifier CAM can explain); anything else needs the detect section decided.
  const cam = camDraft(io, initializers, String(input.layout));
  const main = cam?.main ?? (io.outputs.length === 1 ? out0 : undefined);
  const classes = main?.shape?.length === 2 ? num(main.shape[1]) : undefined;
  decide.push({ path: 'input.scale', note: 'the normalisation the model was trained with (scale, mean, std; docs/models.md#inputs)' });
  decide.push({ path: 'input.resize', note: 'stretch, letterbox or center-crop, as in training' });
  if (main && classes !== undefined) {
    m.output = { name: main.name };
    m.labels = names ?? Array.from({ length: classes }, (_, c) => `class_${c}`);
    m.classify = { outputs: 'logits', topK: Math.min(5, classes) };
    if (!names) decide.push({ path: 'labels', note: `the model has ${classes} classes and does not name them` });
    decide.push({ path: 'classify.outputs', note: 'logits or probabilities (does the model end in a softmax?)' });
    if (!cam)
      return { manifest: m, decide, family: `a classifier with ${classes} classes (guessed from its one output ${fmt(main.shape)})` };
    m.explain = { method: 'cam', featureMap: cam.featureMap.name, weights: cam.weights };
    decide.push({ path: 'explain.weights', note: 'the linear layer right after the pooling of featureMap (else method: occlusion)' });
    return {
      manifest: m,
      decide,
      family:
        `a classifier with ${classes} classes (guessed from its output ${main.name} ${fmt(main.shape)}), ` +
        `explained by class activation maps over ${cam.featureMap.name} ${fmt(cam.featureMap.shape)}`,
    };
  }
  m.task = 'detect';
  m.labels = names ?? ['object'];
  if (!names) decide.push({ path: 'labels', note: 'the classes, in the order of the score columns' });
  const seen = io.outputs.map((o) => `${o.name} ${fmt(o.shape)}`).join(', ');
  m.detect =
    io.outputs.length === 1 ? { format: 'yolov8' } : { format: 'boxes-scores', boxes: io.outputs[0].name, scores: io.outputs[1]?.name };
  decide.push({ path: 'detect.format', note: `the outputs are ${seen}: yolov8, yolov5, boxes-scores or anchors (docs/models.md)` });
  return { manifest: m, decide, family: 'unknown' };
}

/** The draft as YAML: a header naming the model's outputs, `# DECIDE:` beside each guess. */
export function draftYaml(d: Draft, source: string, io: ModelIo): string {
  const doc = new Document(d.manifest);
  // Lists of plain values on one line, as people write them ([0, 0, 0], [8, 16]).
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  for (const { path, note } of d.decide) {
    const node = doc.getIn(path.split('.'), true);
    if (isNode(node)) node.comment = ` DECIDE: ${note}`;
  }
  const io2 = (l: readonly IoMeta[]) => l.map((o) => `#   ${o.name} ${fmt(o.shape)}${o.type ? ` ${o.type}` : ''}`).join('\n');
  doc.commentBefore =
    ` Written by edge-inferd model init from ${source}: ${d.family}.\n` +
    ` Inputs:\n${io2(io.inputs).replace(/^#/gm, '')}\n Outputs:\n${io2(io.outputs).replace(/^#/gm, '')}` +
    (d.decide.length ? `\n Fields marked DECIDE are guesses: check them (docs/models.md).` : '');
  return doc.toString({ lineWidth: 0 });
}
