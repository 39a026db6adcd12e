// Generates the deterministic fixture models under test/fixtures/models/: a colour-box detector in
// YOLOv8, YOLOv5 and boxes+scores formats, a colour segmenter (scores and class-id outputs), a
// colour meter (task regress: the mean colour of the image's centre) and a colour tagger
// (multi-label classify, sigmoid: each colour on when it covers enough of the image).
// Their answers are computed from the image by real ONNX ops, so tests know the right answer for
// any picture they draw. test/unit/fixture-models.test.ts regenerates them and compares bytes.
//
//   npx tsx scripts/make-fixture-models.ts [outDir]     (default: <repo>/test/fixtures/models)
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGenerator, writeChanged } from './generated-files.js';
import { GraphBuilder, int, ints } from './onnx/builder.js';

type Rgb = readonly [number, number, number];

/** Detector classes: pure colours on a black background (each at squared distance 1 from black). */
export const DETECT_LABELS = ['red', 'green', 'blue'] as const;
export const DETECT_COLOURS: Record<(typeof DETECT_LABELS)[number], Rgb> = { red: [1, 0, 0], green: [0, 1, 0], blue: [0, 0, 1] };
/** Score of a present class: distinct per class so NMS order and class-agnostic NMS are predictable. */
export const DETECT_SCORES = [0.9, 0.8, 0.7] as const;
/** Each class also gets a decoy box, 4 px larger on each axis, at half the score: NMS must remove it. */
export const DECOY_GROW = 4;
export const DECOY_FACTOR = 0.5;
export const DETECT_SIZE = 256;
/**
 * A pixel belongs to a colour when its squared RGB distance to it is below 0.25: against black that
 * is "more than half that colour", so a bilinear edge pixel counts when it is mostly inside.
 */
export const DETECT_THRESHOLD = 0.25;

export const SEGMENT_LABELS = ['background', 'red', 'green', 'blue', 'yellow'] as const;
export const SEGMENT_COLOURS: Rgb[] = [
  [0, 0, 0],
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 1, 0],
];
export const SEGMENT_SIZE = 64;

const K = DETECT_LABELS.length;

/** The colour meter (regress) and the colour tagger (multi-label): dynamic batch, stretch to 64x64. */
export const METER_LABELS = ['red', 'green', 'blue'] as const;
export const METER_SIZE = 64;
/** The meter averages the central half of its input (rows and columns 16..47). */
export const METER_CENTRE = [16, 48] as const;
/** The manifest's regress.scale: values come out in bytes (0..255). */
export const METER_SCALE = 255;
export const TAG_LABELS = ['red', 'green', 'blue'] as const;
export const TAG_SIZE = 64;
/** A tag's logit: TAG_SLOPE * (share of the image's pixels in that colour - TAG_AT); on at share > TAG_AT with threshold 0.5. */
export const TAG_SLOPE = 10;
export const TAG_AT = 0.2;

/** d2[1,P,S,S]: squared RGB distance of every pixel of image [1,3,S,S] to each of P colours. */
function colourDistance(g: GraphBuilder, image: string, colours: readonly Rgb[], size: number): string {
  const P = colours.length;
  const x5 = g.op('Reshape', [image, g.int64Init('shape_1_1_3_s_s', [5], [1, 1, 3, size, size])]);
  const protos = g.floatInit('colours', [1, P, 3, 1, 1], colours.flat());
  const diff = g.op('Sub', [x5, protos]);
  const sq = g.op('Mul', [diff, diff]);
  return g.op('ReduceSum', [sq, g.int64Init('axis_2', [1], [2])], { keepdims: int(0) });
}

/**
 * One box per colour: the colour's mask (squared distance below `threshold`), and its first and
 * last column/row (ArgMax with and without select_last_index over the mask's column/row
 * profiles) as x1/x2/y1/y2, exact in model-input pixels; cx/cy its centre. Also used by the
 * pipeline tests' face detector.
 */
export function colourBoxEdges(g: GraphBuilder, image: string, colours: readonly Rgb[], size: number, threshold: number) {
  const d2 = colourDistance(g, image, colours, size);
  const mask = g.op('Cast', [g.op('Less', [d2, g.floatInit('threshold', [], [threshold])])], { to: int(1) }); // [1,K,S,S]
  const cols = g.op('ReduceMax', [mask], { axes: ints([2]), keepdims: int(0) }); // [1,K,S] by x
  const rows = g.op('ReduceMax', [mask], { axes: ints([3]), keepdims: int(0) }); // [1,K,S] by y
  const edge = (profile: string, last: boolean) =>
    g.op('Cast', [g.op('ArgMax', [profile], { axis: int(2), keepdims: int(0), select_last_index: int(last ? 1 : 0) })], { to: int(1) }); // [1,K]
  const one = g.floatInit('one', [], [1]);
  const half = g.floatInit('half', [], [0.5]);
  const x1 = edge(cols, false);
  const x2 = g.op('Add', [edge(cols, true), one]);
  const y1 = edge(rows, false);
  const y2 = g.op('Add', [edge(rows, true), one]);
  const cx = g.op('Mul', [g.op('Add', [x1, x2]), half]);
  const cy = g.op('Mul', [g.op('Add', [y1, y2]), half]);
  return { mask, cols, rows, one, x1, x2, y1, y2, cx, cy };
}

interface DetectorParts {
  /** [1,4,2K] cx, cy, w, h (K real anchors, then K decoys). */
  cxcywh: string;
  /** [1,4,2K] x1, y1, x2, y2. */
  xyxy: string;
  /** [1,1,2K] per-anchor score (class weight * presence; decoys at half). */
  objectness: string;
  /** [1,K,2K] one-hot class of each anchor. */
  onehot: string;
  /** [1,K,2K] per-class scores (objectness * one-hot). */
  scores: string;
}

/**
 * One box per colour class, from the image: the colour mask's first and last column/row (ArgMax with
 * and without select_last_index over the mask's column/row profiles) give x1/x2/y1/y2; the class
 * is present when the mask has any pixel. Exact in model-input pixels.
 */
function detectorParts(g: GraphBuilder, image: string): DetectorParts {
  const S = DETECT_SIZE;
  const { cols, x1, x2, y1, y2, cx, cy } = colourBoxEdges(
    g,
    image,
    DETECT_LABELS.map((l) => DETECT_COLOURS[l]),
    S,
    DETECT_THRESHOLD,
  );
  const w = g.op('Sub', [x2, x1]);
  const h = g.op('Sub', [y2, y1]);
  const present = g.op('ReduceMax', [cols], { axes: ints([2]), keepdims: int(0) }); // [1,K]
  const obj = g.op('Mul', [present, g.floatInit('class_scores', [1, K], DETECT_SCORES)]); // [1,K]

  const axis1 = g.int64Init('axis_1', [1], [1]);
  const rowsOf = (parts: string[]) =>
    g.op(
      'Concat',
      parts.map((p) => g.op('Unsqueeze', [p, axis1])),
      { axis: int(1) },
    ); // [1,n,K]
  const grow = g.floatInit('decoy_grow', [], [DECOY_GROW]);
  const halfGrow = g.floatInit('decoy_half_grow', [], [DECOY_GROW / 2]);
  const both = (real: string, decoy: string) => g.op('Concat', [real, decoy], { axis: int(2) }); // [1,n,2K]
  const cxcywh = both(rowsOf([cx, cy, w, h]), rowsOf([cx, cy, g.op('Add', [w, grow]), g.op('Add', [h, grow])]));
  const xyxy = both(
    rowsOf([x1, y1, x2, y2]),
    rowsOf([g.op('Sub', [x1, halfGrow]), g.op('Sub', [y1, halfGrow]), g.op('Add', [x2, halfGrow]), g.op('Add', [y2, halfGrow])]),
  );
  const objRow = g.op('Unsqueeze', [obj, axis1]); // [1,1,K]
  const objectness = both(objRow, g.op('Mul', [objRow, g.floatInit('decoy_factor', [], [DECOY_FACTOR])]));
  const eye = Array.from({ length: K * K }, (_, i) => (Math.floor(i / K) === i % K ? 1 : 0));
  const onehot = g.floatInit(
    'onehot',
    [1, K, 2 * K],
    Array.from({ length: K * 2 * K }, (_, i) => eye[Math.floor(i / (2 * K)) * K + ((i % (2 * K)) % K)]),
  );
  const scores = g.op('Mul', [objectness, onehot]);
  return { cxcywh, xyxy, objectness, onehot, scores };
}

const detectorDoc = (fmt: string) =>
  `Fixture: one box per colour class (red, green, blue on black), computed from the image; ${fmt}. ` +
  `Anchors 0..2 are the real boxes (score ${DETECT_SCORES.join('/')} when present), anchors 3..5 decoys ${DECOY_GROW} px larger at half the score.`;

export function buildDetector(format: 'yolov8' | 'yolov5' | 'boxes-scores'): Uint8Array {
  const S = DETECT_SIZE;
  const N = 2 * K;
  const g = new GraphBuilder(`fixture_detector_${format.replace('-', '_')}`);
  const image = g.input('images', [1, 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const p = detectorParts(g, image);
  if (format === 'yolov8') {
    g.op('Concat', [p.cxcywh, p.scores], { axis: int(1) }, 'output0');
    g.output('output0', [1, 4 + K, N]);
  } else if (format === 'yolov5') {
    const rows = g.op('Concat', [p.cxcywh, p.objectness, p.onehot], { axis: int(1) }); // [1,5+K,N]
    g.op('Transpose', [rows], { perm: ints([0, 2, 1]) }, 'output0');
    g.output('output0', [1, N, 5 + K]);
  } else {
    g.op('Transpose', [p.xyxy], { perm: ints([0, 2, 1]) }, 'boxes');
    g.op('Transpose', [p.scores], { perm: ints([0, 2, 1]) }, 'scores');
    g.output('boxes', [1, N, 4], 'float32', 'x1, y1, x2, y2 in input pixels');
    g.output('scores', [1, N, K]);
  }
  return g.build({ doc: detectorDoc(format) });
}

/** Per-pixel nearest colour: logits = -10 * squared distance to each class colour. */
export function buildSegmenter(output: 'scores' | 'classes'): Uint8Array {
  const S = SEGMENT_SIZE;
  const C = SEGMENT_LABELS.length;
  const g = new GraphBuilder(`fixture_segmenter_${output}`);
  const image = g.input('images', [1, 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const d2 = colourDistance(g, image, SEGMENT_COLOURS, S);
  if (output === 'scores') {
    g.op('Mul', [d2, g.floatInit('minus_ten', [], [-10])], {}, 'logits');
    g.output('logits', [1, C, S, S]);
  } else {
    g.op('ArgMin', [d2], { axis: int(1), keepdims: int(0) }, 'classes');
    g.output('classes', [1, S, S], 'int64');
  }
  return g.build({ doc: `Fixture: per-pixel nearest of ${SEGMENT_LABELS.join(', ')} (${output}).` });
}

/** The colour meter: values [N,3] = the mean R, G, B (0..1) of the input's central half. */
export function buildMeter(): Uint8Array {
  const g = new GraphBuilder('fixture_colour_meter');
  const image = g.input('images', ['batch', 3, METER_SIZE, METER_SIZE], 'float32', 'RGB, NCHW, [0,1]');
  const [a, b] = METER_CENTRE;
  const centre = g.op('Slice', [
    image,
    g.int64Init('starts', [2], [a, a]),
    g.int64Init('ends', [2], [b, b]),
    g.int64Init('axes', [2], [2, 3]),
  ]);
  g.op('ReduceMean', [centre], { axes: ints([2, 3]), keepdims: int(0) }, 'values');
  g.output('values', ['batch', 3]);
  return g.build({ doc: 'Fixture (regress): the mean R, G, B of the central half of the input, 0..1.' });
}

/**
 * The colour tagger: per colour (red, green, blue) the share f of input pixels within squared RGB
 * distance DETECT_THRESHOLD of it; logits [N,3] = TAG_SLOPE * (f - TAG_AT), read with a sigmoid.
 */
export function buildTagger(): Uint8Array {
  const S = TAG_SIZE;
  const g = new GraphBuilder('fixture_colour_tagger');
  const image = g.input('images', ['batch', 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const x5 = g.op('Unsqueeze', [image, g.int64Init('axis_1', [1], [1])]); // [N,1,3,S,S]
  const protos = g.floatInit(
    'colours',
    [1, TAG_LABELS.length, 3, 1, 1],
    TAG_LABELS.flatMap((l) => DETECT_COLOURS[l]),
  );
  const diff = g.op('Sub', [x5, protos]);
  const d2 = g.op('ReduceSum', [g.op('Mul', [diff, diff]), g.int64Init('axis_2', [1], [2])], { keepdims: int(0) }); // [N,3,S,S]
  const mask = g.op('Cast', [g.op('Less', [d2, g.floatInit('threshold', [], [DETECT_THRESHOLD])])], { to: int(1) });
  const share = g.op('ReduceMean', [mask], { axes: ints([2, 3]), keepdims: int(0) }); // [N,3]
  g.op('Mul', [g.op('Sub', [share, g.floatInit('at', [], [TAG_AT])]), g.floatInit('slope', [], [TAG_SLOPE])], {}, 'logits');
  g.output('logits', ['batch', TAG_LABELS.length]);
  return g.build({ doc: `Fixture (multi-label): logit = ${TAG_SLOPE} * (share of each colour - ${TAG_AT}), for a sigmoid.` });
}

/** A package manifest for an NCHW RGB float model with input `images` (fixtures and bench models). */
export function manifest(fields: {
  name: string;
  version?: string;
  task: string;
  sha: string;
  size: number;
  resize: string;
  /** Extra input lines, e.g. mean/std. */
  normalise?: string;
  output?: string;
  labels: string;
  extra: string;
  description: string;
}): string {
  return `name: ${fields.name}
version: ${fields.version ?? '1.0.0'}
task: ${fields.task}
model: model.onnx
sha256: ${fields.sha}
description: ${fields.description}
input:
  name: images
  layout: NCHW
  width: ${fields.size}
  height: ${fields.size}
  colour: RGB
  dtype: float32
  scale: ${1 / 255}
${fields.normalise ?? ''}  resize: ${fields.resize}
${fields.output ? `output:\n  name: ${fields.output}\n` : ''}labels: ${fields.labels}
${fields.extra}`;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every fixture file: relative path -> bytes. */
export function fixtureFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (s: string) => new TextEncoder().encode(s);
  const detectLabels = `[${DETECT_LABELS.join(', ')}]`;
  for (const format of ['yolov8', 'yolov5', 'boxes-scores'] as const) {
    const dir = `detector-${format}`;
    const model = buildDetector(format);
    files.set(`${dir}/model.onnx`, model);
    const two = format === 'boxes-scores';
    const detectKeys = two ? `  boxes: boxes\n  scores: scores\n  boxFormat: xyxy\n` : '';
    // The yolov8 package reads its labels from a file, the others inline: both forms stay tested.
    const labels = format === 'yolov8' ? 'labels.txt' : detectLabels;
    if (format === 'yolov8') files.set(`${dir}/labels.txt`, text(DETECT_LABELS.join('\n') + '\n'));
    files.set(
      `${dir}/manifest.yaml`,
      text(
        manifest({
          name: `fixture-detector-${format}`,
          task: 'detect',
          sha: sha256(model),
          size: DETECT_SIZE,
          resize: 'letterbox',
          output: two ? undefined : 'output0',
          labels,
          description: `Colour-box detector (red, green, blue on black), ${format} output. Generated by scripts/make-fixture-models.ts.`,
          extra: `detect:\n  format: ${format}\n${detectKeys}  scoreThreshold: 0.25\n  iouThreshold: 0.45\n  maxDetections: 10\n  classAware: true\n`,
        }),
      ),
    );
  }
  for (const output of ['scores', 'classes'] as const) {
    const dir = output === 'scores' ? 'segmenter' : 'segmenter-classes';
    const model = buildSegmenter(output);
    files.set(`${dir}/model.onnx`, model);
    files.set(
      `${dir}/manifest.yaml`,
      text(
        manifest({
          name: `fixture-${dir}`,
          task: 'segment',
          sha: sha256(model),
          size: SEGMENT_SIZE,
          resize: 'letterbox',
          output: output === 'scores' ? 'logits' : 'classes',
          labels: `[${SEGMENT_LABELS.join(', ')}]`,
          description: `Per-pixel nearest colour segmenter (${SEGMENT_LABELS.join(', ')}), ${output} output. Generated by scripts/make-fixture-models.ts.`,
          extra: `segment:\n  output: ${output}\n  maskPng: ${output === 'scores'}\n`,
        }),
      ),
    );
  }
  const meter = buildMeter();
  files.set('regressor/model.onnx', meter);
  files.set(
    'regressor/manifest.yaml',
    text(
      manifest({
        name: 'fixture-colour-meter',
        task: 'regress',
        sha: sha256(meter),
        size: METER_SIZE,
        resize: 'stretch',
        output: 'values',
        labels: `[${METER_LABELS.join(', ')}]`,
        description: 'Mean colour of the central half of the image, in bytes (task regress). Generated by scripts/make-fixture-models.ts.',
        extra: `regress:\n  scale: ${METER_SCALE}\n  offset: 0\n`,
      }),
    ),
  );
  const tagger = buildTagger();
  files.set('tagger/model.onnx', tagger);
  files.set(
    'tagger/manifest.yaml',
    text(
      manifest({
        name: 'fixture-colour-tagger',
        task: 'classify',
        sha: sha256(tagger),
        size: TAG_SIZE,
        resize: 'stretch',
        output: 'logits',
        labels: `[${TAG_LABELS.join(', ')}]`,
        description: `Colours covering more than ${TAG_AT * 100} % of the image (multi-label, sigmoid). Generated by scripts/make-fixture-models.ts.`,
        extra: 'classify:\n  outputs: sigmoid\n  topK: 3\n  threshold: 0.5\n',
      }),
    ),
  );
  return files;
}

export async function makeFixtureModels(outDir: string): Promise<{ files: string[]; written: string[] }> {
  const files = fixtureFiles();
  const written = await writeChanged(
    outDir,
    [...files].map(([rel, bytes]) => ({ rel, bytes })),
  );
  return { files: [...files.keys()], written };
}

runGenerator(
  import.meta.url,
  path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'models'),
  makeFixtureModels,
);
