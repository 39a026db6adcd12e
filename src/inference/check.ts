import { checkDetect } from './check-detect.js';
import type { IoMeta, ModelIo, OutputNames } from './model-io.js';
import { heads, type Manifest } from './manifest.js';

/**
 * The manifest against the model's own input/output metadata. Each difference is one line naming
 * the manifest field and both values, so a technician can fix the manifest (or pick the right
 * model) without reading the ONNX file.
 */

export type { IoMeta, ModelIo, OutputNames } from './model-io.js';

const fmt = (shape: ReadonlyArray<number | string> | undefined) => `[${(shape ?? []).join(',')}]`;
const names = (list: readonly IoMeta[]) => list.map((o) => o.name).join(', ');

export function checkModelIo(m: Manifest, labels: readonly string[], io: ModelIo): { problems: string[]; outputs: OutputNames } {
  const problems: string[] = [];
  checkInput(m, io, problems);
  const outputs: OutputNames = {};
  const L = labels.length;

  const find = (field: string, name: string | undefined): IoMeta | undefined => {
    if (name !== undefined) {
      const o = io.outputs.find((x) => x.name === name);
      if (!o) problems.push(`${field}: the model has no output "${name}" (model outputs: ${names(io.outputs)})`);
      return o;
    }
    // A feature map exposed for explanations (explain.featureMap) is not the answer.
    const rest = io.outputs.filter((o) => o.name !== m.explain.featureMap);
    if (rest.length === 1) return rest[0];
    problems.push(`${field}: the model has ${io.outputs.length} outputs (${names(io.outputs)}); name the one to read`);
    return undefined;
  };
  const floatOut = (field: string, o: IoMeta) => {
    if (o.type !== undefined && o.type !== 'float32')
      problems.push(`${field}: the model's output "${o.name}" is ${o.type}; expected float32 scores`);
  };
  const rank = (field: string, o: IoMeta, want: number, what: string): boolean => {
    if (!o.shape) return false;
    if (o.shape.length === want) return true;
    problems.push(
      `${field}: the model's output "${o.name}" has shape ${fmt(o.shape)} (rank ${o.shape.length}); ` +
        `${m.task}${m.task === 'detect' ? ` format ${m.detect.format}` : ''} expects ${what}`,
    );
    return false;
  };
  const dimIs = (o: IoMeta, i: number, want: number) => typeof o.shape?.[i] !== 'number' || o.shape?.[i] === want;

  // explain.featureMap, whatever the method (a manifest may declare it for later); its shape and the weights are
  // checked for method cam, where the model's bytes are (cam.ts).
  const fm = m.explain.featureMap;
  if (fm !== undefined && !io.outputs.some((o) => o.name === fm))
    problems.push(`explain.featureMap: the model has no output "${fm}" (model outputs: ${names(io.outputs)})`);

  if (m.task === 'classify' || m.task === 'regress') {
    const o = find('output.name', heads(m.output?.name)[0]);
    if (o) {
      outputs.main = [o.name];
      floatOut('output.name', o);
      const classes = o.shape?.[o.shape.length - 1];
      const what = m.task === 'regress' ? 'values' : 'classes';
      if (typeof classes === 'number' && classes !== L)
        problems.push(
          `labels: the manifest has ${L} labels, the model's output "${o.name}" has ${classes} ${what} (shape ${fmt(o.shape)})`,
        );
    }
    if (m.task === 'classify') checkThresholds(m, labels, problems);
    else checkRegress(m, labels, problems);
  } else if (m.task === 'detect') {
    checkDetect(m, L, io, problems, outputs);
  } else {
    const o = find('output.name', heads(m.output?.name)[0]);
    if (o) {
      outputs.main = [o.name];
      if (m.segment.output === 'scores') {
        floatOut('output.name', o);
        if (rank('output.name', o, 4, 'scores [1, classes, H, W] (segment.output: scores)') && !dimIs(o, 1, L)) {
          problems.push(
            `labels: the manifest has ${L} labels, the model's output "${o.name}" has ${o.shape?.[1]} classes (shape ${fmt(o.shape)})`,
          );
        }
      } else {
        rank('output.name', o, 3, 'class ids [1, H, W] (segment.output: classes)');
      }
    }
    if (m.segment.maskPng && L > 256)
      problems.push(`segment.maskPng: the mask PNG holds one byte per pixel, so at most 256 classes (the manifest has ${L})`);
  }
  return { problems, outputs };
}

/** A per-label threshold map names every label and nothing else. */
function checkThresholds(m: Manifest, labels: readonly string[], problems: string[]): void {
  const t = m.classify.threshold;
  if (t === undefined || typeof t === 'number') return;
  for (const k of Object.keys(t))
    if (!labels.includes(k)) problems.push(`classify.threshold.${k}: not a label (labels: ${labels.join(', ')})`);
  const missing = labels.filter((l) => !(l in t));
  if (missing.length)
    problems.push(`classify.threshold: no threshold for ${missing.join(', ')}; name every label, or give one number for all`);
}

/** Per-value scale/offset lists have one number per value. */
function checkRegress(m: Manifest, labels: readonly string[], problems: string[]): void {
  for (const key of ['scale', 'offset'] as const) {
    const v = m.regress[key];
    if (Array.isArray(v) && v.length !== labels.length)
      problems.push(
        `regress.${key}: ${v.length} numbers for ${labels.length} values (${labels.join(', ')}); give one per value, or one for all`,
      );
  }
}

export function checkInput(m: Manifest, io: Pick<ModelIo, 'inputs'>, problems: string[]): void {
  const spec = m.input;
  const input = io.inputs.find((i) => i.name === spec.name);
  if (!input) {
    problems.push(`input.name: the model has no input "${spec.name}" (model inputs: ${names(io.inputs)})`);
    return;
  }
  if (io.inputs.length > 1)
    problems.push(`input: the model has ${io.inputs.length} inputs (${names(io.inputs)}); only single-input image models are supported`);
  if (input.type !== undefined && input.type !== spec.dtype)
    problems.push(`input.dtype: manifest says ${spec.dtype}, the model's input "${input.name}" is ${input.type}`);
  const shape = input.shape;
  if (!shape) return;
  if (shape.length !== 4) {
    problems.push(`input: the model's input "${input.name}" has rank ${shape.length} (shape ${fmt(shape)}); expected a 4-D image tensor`);
    return;
  }
  const nchw = spec.layout === 'NCHW';
  const [b, c, h, w] = nchw ? [shape[0], shape[1], shape[2], shape[3]] : [shape[0], shape[3], shape[1], shape[2]];
  if (typeof b === 'number' && b !== 1)
    problems.push(`input: the model's input "${input.name}" has batch size ${b} (shape ${fmt(shape)}); only batch 1 is supported`);
  const C = spec.channels;
  if (typeof c === 'number' && c !== C) {
    const other = nchw ? shape[3] : shape[1];
    // The channel count is elsewhere: the layout is wrong. A 1 or 3 where the layout puts channels: the count is.
    const where = `the model's input "${input.name}" has shape ${fmt(shape)}`;
    const layout = `input.layout: manifest says ${spec.layout} (${C} channels at dim ${nchw ? 1 : 3}), ${where}`;
    if (other === C) problems.push(`${layout} (it looks ${nchw ? 'NHWC' : 'NCHW'})`);
    else if (c === 1 || c === 3)
      problems.push(
        `input.channels: manifest says ${C}, the model's input "${input.name}" has ${c} ` +
          `(shape ${fmt(shape)}, ${spec.layout}); set input.channels: ${c}`,
      );
    else problems.push(layout);
    return; // width/height would be read from the wrong dims
  }
  if (typeof w === 'number' && w !== spec.width)
    problems.push(
      `input.width: manifest says ${spec.width}, the model's input "${input.name}" has width ${w} (shape ${fmt(shape)}, ${spec.layout})`,
    );
  if (typeof h === 'number' && h !== spec.height)
    problems.push(
      `input.height: manifest says ${spec.height}, the model's input "${input.name}" has height ${h} (shape ${fmt(shape)}, ${spec.layout})`,
    );
}
