// Generates the tray demo (models/demo-tray): an item detector for a recycling tray with several
// items on it, and a sequence of sample frames with their known answers. The material of each item
// is then told by the recycling demo classifier (models/demo) on the item's box crop: the
// pipeline of `edge-inferd run --demo tray`. Deterministic; test/unit/tray-demo-model.test.ts
// regenerates it and compares bytes (PNG samples: pixels).
//
//   npx tsx scripts/make-tray-demo.ts [outDir]     (default: <repo>/models/demo-tray)
//
// The synthetic world, designed with the models so that the answers are exact:
// - A 640x480 frame of flat tray colour with up to six items, each a flat rectangle of one
//   material's prototype colour (scripts/make-demo-model.ts), at even coordinates with even sizes,
//   never two of one material on a tray.
// - Item detector (input 320x320 letterbox, float32 NCHW RGB /255; output0 [1, 5, 6], YOLOv8
//   layout: cx, cy, w, h, item score): per material one anchor. A model pixel belongs to a material
//   when its squared RGB distance to the prototype is below ITEM_THRESHOLD (the prototypes are at
//   least 0.2 apart, the tray and the letterbox grey far from all); the anchor's box is the extent
//   of those pixels (colourBoxEdges, as the fixture detectors), its score ITEM_SCORE when any pixel
//   is there, else 0. The letterbox halves a 640x480 frame exactly, each model pixel the mean of a
//   2x2 block, so even edges stay sharp and the boxes come back exact in frame pixels.
// - The crop stage takes each box padded by PAD on every side and squared (`regions: box`, `pad`,
//   `square`); the generator checks that every crop's mean colour is nearest its item's prototype
//   by a clear margin, so the classifier's answer is the item's material.
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { LABELS, type Label, PROTOTYPES, rankPrototypes } from './make-demo-model.js';
import { colourBoxEdges } from './make-fixture-models.js';
import { type GeneratedFile, runGenerator, writeChanged } from './generated-files.js';
import { GraphBuilder, int, ints } from './onnx/builder.js';

export const FRAME_WIDTH = 640;
export const FRAME_HEIGHT = 480;
export const ITEM_INPUT_SIZE = 320;
export const ITEM_THRESHOLD = 0.05;
export const ITEM_SCORE = 0.9;
/** The crop stage's `pad` (fraction of the box on every side); the crop is also squared. */
export const PAD = 0.05;
/** Tray colour (RGB bytes, a violet mat): far from every prototype, so it is never an item. */
export const TRAY: readonly [number, number, number] = [166, 64, 242];
/** Letterbox padding (the daemon's default 114 grey): far from every prototype too. */
const LETTERBOX_GREY = 114;
/** A crop's mean colour must be nearer its item's prototype than any other by this much squared distance. */
const MIN_MARGIN = 0.05;
/** Frames each tray is shown, then empty frames before the next. */
export const FRAMES_PER_TRAY = 4;
export const EMPTY_FRAMES = 2;

export interface Item {
  label: Label;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The trays of the sample sequence: two, three and four items. */
export const TRAYS: readonly (readonly Item[])[] = [
  [
    { label: 'cardboard', x: 80, y: 120, w: 180, h: 170 },
    { label: 'plastic', x: 380, y: 160, w: 160, h: 160 },
  ],
  [
    { label: 'glass', x: 50, y: 90, w: 170, h: 180 },
    { label: 'metal', x: 250, y: 220, w: 150, h: 150 },
    { label: 'paper', x: 450, y: 80, w: 150, h: 150 },
  ],
  [
    { label: 'trash', x: 60, y: 270, w: 150, h: 150 },
    { label: 'paper', x: 80, y: 40, w: 160, h: 170 },
    { label: 'cardboard', x: 460, y: 250, w: 140, h: 140 },
    { label: 'plastic', x: 300, y: 120, w: 130, h: 120 },
  ],
];

const rgb8 = (label: Label) => PROTOTYPES[label].map((c) => Math.round(c * 255)) as [number, number, number];

export function buildItemDetector(): Uint8Array {
  const S = ITEM_INPUT_SIZE;
  const g = new GraphBuilder('demo_tray_items');
  const image = g.input('images', [1, 3, S, S], 'float32', 'RGB, NCHW, [0,1]');
  const protos = LABELS.map((l) => rgb8(l).map((c) => c / 255) as unknown as readonly [number, number, number]);
  const { cols, x1, x2, y1, y2, cx, cy } = colourBoxEdges(g, image, protos, S, ITEM_THRESHOLD);
  const present = g.op('ReduceMax', [cols], { axes: ints([2]), keepdims: int(0) }); // [1,K]
  const score = g.op('Mul', [present, g.floatInit('score', [], [ITEM_SCORE])]);
  const axis1 = g.int64Init('axis1', [1], [1]);
  const row = (v: string) => g.op('Unsqueeze', [v, axis1]); // [1,1,K]
  const w = g.op('Sub', [x2, x1]);
  const h = g.op('Sub', [y2, y1]);
  g.op('Concat', [cx, cy, w, h, score].map(row), { axis: int(1) }, 'output0');
  g.output('output0', [1, 5, LABELS.length]);
  return g.build({ doc: 'Tray demo: one item box per material colour on the tray (YOLOv8 layout, one class).' });
}

export function itemManifest(sha256: string): string {
  return `name: demo-tray-items
version: 1.0.0
task: detect
model: model.onnx
sha256: ${sha256}
description: Built-in tray demo. One box per item on a recycling tray (models/demo tells the material). By scripts/make-tray-demo.ts.
input:
  name: images
  layout: NCHW
  width: ${ITEM_INPUT_SIZE}
  height: ${ITEM_INPUT_SIZE}
  colour: RGB
  dtype: float32
  scale: ${1 / 255}
  resize: letterbox
output:
  name: output0
labels: [item]
detect:
  format: yolov8
  scoreThreshold: 0.5
  iouThreshold: 0.45
  maxDetections: 10
`;
}

export function renderTray(items: readonly Item[]): Uint8Array {
  const W = FRAME_WIDTH;
  const out = new Uint8Array(W * FRAME_HEIGHT * 3);
  for (let i = 0; i < W * FRAME_HEIGHT; i++) out.set(TRAY, i * 3);
  for (const it of items) {
    const c = rgb8(it.label);
    for (let y = it.y; y < it.y + it.h; y++) for (let x = it.x; x < it.x + it.w; x++) out.set(c, (y * W + x) * 3);
  }
  return out;
}

/** The crop the pipeline takes of an item's box: padded by PAD, squared, clipped to the frame. */
export function cropOf(it: Item): { x: number; y: number; w: number; h: number } {
  const side = Math.max(it.w, it.h) * (1 + 2 * PAD);
  const cx = it.x + it.w / 2;
  const cy = it.y + it.h / 2;
  const x0 = Math.max(0, Math.round(cx - side / 2));
  const y0 = Math.max(0, Math.round(cy - side / 2));
  const x1 = Math.min(FRAME_WIDTH, Math.round(cx + side / 2));
  const y1 = Math.min(FRAME_HEIGHT, Math.round(cy + side / 2));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

const sqDist = (a: readonly number[], b: readonly number[]) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

/** Fails loudly when the world breaks a rule the answers rely on. */
export function checkTray(items: readonly Item[], pixels: Uint8Array, what: string): void {
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.label)) throw new Error(`${what}: two ${it.label} items (the detector finds one per material)`);
    seen.add(it.label);
    if ([it.x, it.y, it.w, it.h].some((v) => v % 2)) throw new Error(`${what}: ${it.label} is not on even coordinates`);
    if (it.x < 0 || it.y < 0 || it.x + it.w > FRAME_WIDTH || it.y + it.h > FRAME_HEIGHT)
      throw new Error(`${what}: ${it.label} leaves the frame`);
    const c = cropOf(it);
    const sum = [0, 0, 0];
    for (let y = c.y; y < c.y + c.h; y++)
      for (let x = c.x; x < c.x + c.w; x++) for (let k = 0; k < 3; k++) sum[k] += pixels[(y * FRAME_WIDTH + x) * 3 + k];
    const mean = sum.map((s) => s / (c.w * c.h) / 255) as unknown as readonly [number, number, number];
    const [first, second] = rankPrototypes(mean);
    if (first.label !== it.label || second.d2 - first.d2 < MIN_MARGIN)
      throw new Error(
        `${what}: the crop of ${it.label} is nearest ${first.label} (${first.d2.toFixed(3)}), then ${second.label} (${second.d2.toFixed(3)})`,
      );
  }
  // The tray by a wide margin; the letterbox grey (flat, never blended with an item) beyond the threshold.
  for (const [name, colour, factor] of [
    ['tray', TRAY, 4],
    ['letterbox grey', [LETTERBOX_GREY, LETTERBOX_GREY, LETTERBOX_GREY], 1.2],
  ] as const) {
    for (const l of LABELS)
      if (
        sqDist(
          colour.map((v) => v / 255),
          rgb8(l).map((v) => v / 255),
        ) <
        factor * ITEM_THRESHOLD
      )
        throw new Error(`${name} colour is too near ${l}`);
  }
}

export interface SampleFrame {
  file: string;
  items: readonly Item[];
}

/** The sample sequence: each tray for FRAMES_PER_TRAY frames, then EMPTY_FRAMES empty trays. */
export function sampleSequence(): SampleFrame[] {
  const frames: SampleFrame[] = [];
  const add = (items: readonly Item[]) => frames.push({ file: `frame-${String(frames.length).padStart(3, '0')}.png`, items });
  for (const tray of TRAYS) {
    for (let i = 0; i < FRAMES_PER_TRAY; i++) add(tray);
    for (let i = 0; i < EMPTY_FRAMES; i++) add([]);
  }
  return frames;
}

export async function makeTrayDemo(outDir: string): Promise<{ files: string[]; written: string[] }> {
  const outputs: GeneratedFile[] = [];
  const text = (s: string) => new TextEncoder().encode(s);
  const model = buildItemDetector();
  outputs.push({ rel: 'item/model.onnx', bytes: model });
  outputs.push({ rel: 'item/manifest.yaml', bytes: text(itemManifest(createHash('sha256').update(model).digest('hex'))) });
  const frames = sampleSequence();
  for (const f of frames) {
    const pixels = renderTray(f.items);
    checkTray(f.items, pixels, f.file);
    const png = await sharp(pixels, { raw: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    outputs.push({ rel: `samples/${f.file}`, bytes: png, pixels, width: FRAME_WIDTH, height: FRAME_HEIGHT });
  }
  const answers = {
    description:
      'Known answers for the tray demo samples (frame pixels; box x, y = top-left corner). Generated by scripts/make-tray-demo.ts.',
    frames: frames.map((f) => ({
      file: f.file,
      items: f.items.map((it) => ({ label: it.label, box: { x: it.x, y: it.y, w: it.w, h: it.h } })),
    })),
  };
  outputs.push({ rel: 'samples/answers.json', bytes: text(`${JSON.stringify(answers, null, 1)}\n`) });
  const written = await writeChanged(outDir, outputs);
  return { files: outputs.map((o) => o.rel), written };
}

runGenerator(import.meta.url, path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'models', 'demo-tray'), makeTrayDemo);
