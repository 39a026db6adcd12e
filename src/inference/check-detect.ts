import { describeGrid, gridLevels } from './anchors.js';
import type { IoMeta, ModelIo, OutputNames } from './model-io.js';
import { heads, keypointValues, type Manifest } from './manifest.js';

/**
 * The detect section against the model's outputs: each role's heads (one output, or several
 * concatenated), values per box / per class / per keypoint, and for anchor-based detectors the
 * grid's anchor count against the rows the heads hold, head by head. One line per mismatch.
 */

const fmt = (shape: ReadonlyArray<number | string> | undefined) => `[${(shape ?? []).join(',')}]`;
const list = (io: readonly IoMeta[]) => io.map((o) => o.name).join(', ');
const num = (d: number | string | undefined): number | undefined => (typeof d === 'number' ? d : undefined);

export function checkDetect(m: Manifest, L: number, io: ModelIo, problems: string[], outputs: OutputNames): void {
  const d = m.detect;
  const K = d.keypoints?.length ?? 0;
  const V = keypointValues(d);

  const find = (field: string, names: readonly string[]): IoMeta[] | undefined => {
    if (names.length === 0) {
      if (io.outputs.length === 1) return [io.outputs[0]];
      problems.push(`${field}: the model has ${io.outputs.length} outputs (${list(io.outputs)}); name the one to read`);
      return undefined;
    }
    const found: IoMeta[] = [];
    for (const name of names) {
      const o = io.outputs.find((x) => x.name === name);
      if (!o) problems.push(`${field}: the model has no output "${name}" (model outputs: ${list(io.outputs)})`);
      else found.push(o);
    }
    return found.length === names.length ? found : undefined;
  };
  const floats = (field: string, os: readonly IoMeta[]) => {
    for (const o of os)
      if (o.type !== undefined && o.type !== 'float32')
        problems.push(`${field}: the model's output "${o.name}" is ${o.type}; expected float32 scores`);
  };

  if (d.format === 'yolov8' || d.format === 'yolov5') {
    const os = find('output.name', heads(m.output?.name));
    if (!os) return;
    outputs.main = os.map((o) => o.name);
    floats('output.name', os);
    const v8 = d.format === 'yolov8';
    const per = (v8 ? 4 : 5) + L + V * K;
    const axis = v8 ? 1 : 2;
    for (const o of os) {
      if (!o.shape) continue;
      if (o.shape.length !== 3) {
        const what = v8 ? `[1, 4+classes${K ? `+${V}*keypoints` : ''}, anchors]` : `[1, anchors, 5+classes${K ? `+${V}*keypoints` : ''}]`;
        problems.push(
          `output.name: the model's output "${o.name}" has shape ${fmt(o.shape)} (rank ${o.shape.length}); detect format ${d.format} expects ${what}`,
        );
        continue;
      }
      const have = num(o.shape[axis]);
      if (have === undefined || have === per) continue;
      const other = v8 ? o.shape[2] : o.shape[1];
      const hint = other === per ? ' (it looks transposed: check detect.format)' : '';
      const kp = K ? ` + ${V} x ${K} keypoints` : '';
      const what = v8 ? `4 box + classes${kp}` : `4 box + objectness + classes${kp}`;
      problems.push(
        `${K ? 'detect.keypoints' : 'labels'}: ${L} labels${K ? ` and ${K} keypoints` : ''} need ${per} values per box ` +
          `in ${d.format} format (${what}), the model's output "${o.name}" has ${have} (shape ${fmt(o.shape)})${hint}`,
      );
    }
    return;
  }

  // boxes-scores and anchors: boxes, scores (and keypoints) as rows [1, N, values] or [N, values].
  const kpInBoxes = K > 0 && !d.keypointOutputs;
  const roles = [
    ['boxes', 4 + (kpInBoxes ? V * K : 0)],
    ['scores', L + (d.background ? 1 : 0)],
    ...(K > 0 && d.keypointOutputs ? [['keypointOutputs', V * K] as const] : []),
    ...(d.objectness ? [['objectness', 1] as const] : []),
  ] as const;
  const rows: Record<string, { name: string; n: number | undefined }[]> = {};
  for (const [key, want] of roles) {
    const names = heads(d[key]);
    if (names.length === 0) {
      problems.push(`detect.${key}: required when detect.format is ${d.format} (model outputs: ${list(io.outputs)})`);
      continue;
    }
    const os = find(`detect.${key}`, names);
    if (!os) continue;
    floats(`detect.${key}`, os);
    if (key === 'keypointOutputs') outputs.keypoints = [...names];
    else outputs[key] = [...names];
    rows[key] = [];
    for (const o of os) {
      if (!o.shape) {
        rows[key].push({ name: o.name, n: undefined });
        continue;
      }
      if (o.shape.length !== 3 && o.shape.length !== 2) {
        const what = { boxes: '[1, N, 4]', scores: '[1, N, classes]', keypointOutputs: '[1, N, keypoint values]', objectness: '[1, N, 1]' }[
          key
        ];
        problems.push(
          `detect.${key}: the model's output "${o.name}" has shape ${fmt(o.shape)} (rank ${o.shape.length}); ` +
            `detect format ${d.format} expects ${what}`,
        );
        continue;
      }
      const n = num(o.shape[o.shape.length - 2]);
      rows[key].push({ name: o.name, n });
      const have = num(o.shape[o.shape.length - 1]);
      if (have === undefined || have === want) continue;
      if (key === 'scores')
        problems.push(
          `labels: the manifest has ${L} labels${d.background ? ' (+ 1 background column)' : ''}, ` +
            `the model's output "${o.name}" has ${have} classes (shape ${fmt(o.shape)})`,
        );
      else if (key === 'boxes' && !kpInBoxes && have > 4 && d.format === 'anchors') {
        // Extra values after the box (BlazeFace's keypoints) are allowed unread when no keypoints are asked for.
      } else if (key === 'boxes' && kpInBoxes)
        problems.push(
          `detect.keypoints: ${K} keypoints x ${V} values need ${want} values per box in "${o.name}" (4 box + ${V * K}), ` +
            `it has ${have} (shape ${fmt(o.shape)})`,
        );
      else if (key === 'boxes')
        problems.push(`detect.boxes: the model's output "${o.name}" has ${have} values per box (shape ${fmt(o.shape)}); expected 4`);
      else if (key === 'objectness')
        problems.push(
          `detect.objectness: the model's output "${o.name}" has ${have} values per anchor (shape ${fmt(o.shape)}); expected 1`,
        );
      else
        problems.push(
          `detect.keypoints: ${K} keypoints x ${V} values need ${want} values per anchor, ` +
            `the model's output "${o.name}" has ${have} (shape ${fmt(o.shape)})`,
        );
    }
  }
  if (d.format === 'anchors' && d.anchors) {
    const levels = gridLevels(d.anchors, m.input.width, m.input.height);
    const total = levels.reduce((s, l) => s + l.count, 0);
    for (const [key, hs] of Object.entries(rows)) {
      if (hs.some((h) => h.n === undefined)) continue; // symbolic sizes: the decoder checks each frame
      const sum = hs.reduce((s, h) => s + (h.n ?? 0), 0);
      const perLevel = hs.length === levels.length && hs.some((h, i) => h.n !== levels[i].count);
      if (sum === total && !perLevel) continue;
      const parts = hs.map((h) => h.n).join(' + ');
      problems.push(
        `detect.anchors: expected ${total} anchors from the grid (${describeGrid(levels)} = ${levels.map((l) => l.count).join(' + ')}), ` +
          `the heads of detect.${key} have ${hs.length > 1 ? `${parts} = ${sum}` : sum} (${hs.map((h) => h.name).join(', ')})`,
      );
    }
  } else if (rows.boxes && rows.scores) {
    const nb = rows.boxes.reduce((s, h) => s + (h.n ?? Number.NaN), 0);
    const ns = rows.scores.reduce((s, h) => s + (h.n ?? Number.NaN), 0);
    if (Number.isFinite(nb) && Number.isFinite(ns) && nb !== ns)
      problems.push(`detect.scores: the boxes heads have ${nb} rows, the scores heads ${ns}; they must match row for row`);
  }
}
