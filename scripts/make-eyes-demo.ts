// Generates the eyes demo (models/demo-eyes): a face detector with two eye keypoints, an eye
// classifier that decides by iris colour, and a short sequence of sample frames with their known
// answers. Everything is deterministic; test/unit/eyes-demo-model.test.ts regenerates it and
// compares bytes (PNG samples: pixels).
//
//   npx tsx scripts/make-eyes-demo.ts [outDir]     (default: <repo>/models/demo-eyes)
//
// The synthetic world, designed together with the models so that the answers are exact:
//
// - Backdrop: flat grey 114, the letterbox padding colour, so padding is backdrop too.
// - A face is an axis-aligned rectangle of flat skin, `size` px wide and round(1.25 size) tall, at
//   integer (x, y); sizes 60..200 px on a 640x480 frame, >= 4 px inside the frame and >= 8 px apart
//   from other faces. Inside: two eyes (white sclera disc, coloured iris disc; no pupil) centred
//   at (x + 0.3 size, y + 0.42 h) and (x + 0.7 size, ...), and a mouth. The eye at the larger image
//   x is the subject's LEFT eye (a subject facing a non-mirrored camera). A covered eye is an
//   eyelid-coloured disc (a closed eye): no sclera, no iris.
// - The iris colour is the eye's class (cataract milky grey-blue, conjunctivitis red, healthy
//   brown, stye purple).
//
// Face detector (input 320x240 letterbox, float32 NCHW RGB /255; output0 [1, 11, 4800], YOLOv8-pose
// layout: cx, cy, w, h, face score, then x, y, visibility of left_eye and of right_eye):
// - A 640x480 frame letterboxed to 320x240 is scaled by exactly 0.5, and the bilinear resize then
//   averages each 2x2 block: a model pixel on a face edge holds the exact share of skin in it
//   (0.25, 0.5 or 1). The model measures that share: every pixel's colour is projected on the
//   backdrop->skin line (t = 0 backdrop, 1 skin); a colour far from that line (eyes, mouth) is
//   "inside a face". backdrop-ness B = 1 - t (0 for inside colours), and a pixel is inside a face
//   when B < 0.9.
// - Along each row, a run of inside pixels starts at a pixel whose left neighbour is outside; its
//   exact left edge is x + B(x) (sub-pixel, from the edge pixel's skin share). Runs end likewise
//   (right edge x + 1 - B(x)); columns give top and bottom edges. MaxPool over the edge positions
//   (encoded so that the nearest edge is the largest value) gives each anchor the nearest
//   face edge on each side within 80 px.
// - Anchors: one per 4x4 cell (80x60 = 4800), represented by the cell's pixel (4j+2, 4i+2). An
//   anchor scores 1 when that pixel is inside a face, the box its row and column give has its
//   centre in the cell (0.01 px tolerance: at most a few anchors per face, all with the same
//   box, which NMS collapses) and is 20..160 px (model) on each side; otherwise 0. Faces never
//   merge: the >= 8 px gap leaves >= 1 backdrop model pixel between them on every row and column.
// - Keypoints: the eye centres of the face template, computed from the box (exact like the box).
//   Visibility: the whiteness (sclera) of the two model pixels 0.0975 size left and right of the
//   eye centre (middle of the sclera ring), averaged: 1 for an open eye, 0 for a covered one.
// - Exact to float rounding whenever the letterbox scale is exactly 0.5 (640x480, 640x360 frames);
//   at other scales the resize samples rather than averages: within 1 px up to 1280x960, 2 px at
//   1920x1080.
//
// Eye classifier (input ['batch', 3, 32, 32] stretch, float32 NCHW RGB /255; output probs
// ['batch', 4]): every pixel of the central 6x6 region of the crop votes (softmax of -T * squared
// distance) for the nearest of seven prototype colours: the four iris classes and three others
// (skin, eyelid, sclera) whose votes are dropped; a vote counts only above 0.5 (a clear winner;
// edge blends between two colours do not vote). probs = iris votes / their sum (plus a tiny floor:
// a crop with no iris pixel, such as a closed eye, gives 0.25 each). The crop the
// pipeline takes (a square of side 0.35 x face width around the eye centre) has the iris (radius
// 0.065 x face width) over its central 37 %, so the central 6x6 of 32x32 is iris even with the
// keypoint 1 px off, at the smallest face. Only element-wise ops and per-item reductions (the iris
// votes are picked by a linear layer with one-hot rows, exact): a batch of N crops gives exactly the
// scores of N single runs. A second output, `features` ['batch', 7, 8, 8], holds the votes per 4x4
// cell of the crop: with the linear layer's weights it gives class activation maps (explain.method cam).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { type GeneratedFile, runGenerator, writeChanged } from './generated-files.js';
import { GraphBuilder, int, ints } from './onnx/builder.js';

// ---------------------------------------------------------------------------------------------
// The world: labels, colours, sizes.

export const FACE_LABELS = ['face'] as const;
/** Keypoint 0 is the subject's left eye (larger image x), keypoint 1 the right eye. */
export const KEYPOINTS = ['left_eye', 'right_eye'] as const;
export const EYE_LABELS = ['cataract', 'conjunctivitis', 'healthy', 'stye'] as const;
export type EyeLabel = (typeof EYE_LABELS)[number];

export type Rgb8 = readonly [number, number, number];

/** Iris colour of each class (RGB bytes): the classifier's prototypes. */
export const IRIS: Record<EyeLabel, Rgb8> = {
  cataract: [190, 200, 212], // milky grey-blue
  conjunctivitis: [200, 40, 50], // red
  healthy: [115, 70, 35], // brown
  stye: [130, 60, 150], // purple
};

/** Everything else that is drawn (RGB bytes). */
export const COLOURS = {
  backdrop: [114, 114, 114], // = the letterbox padding grey
  skin: [224, 172, 138],
  eyelid: [196, 140, 112], // a closed (covered) eye
  sclera: [246, 244, 236],
  mouth: [168, 64, 78],
} as const satisfies Record<string, Rgb8>;

export const FRAME_WIDTH = 640;
export const FRAME_HEIGHT = 480;
export const FACE_INPUT_WIDTH = 320;
export const FACE_INPUT_HEIGHT = 240;
export const EYE_INPUT_SIZE = 32;
export const MIN_FACE_SIZE = 60;
export const MAX_FACE_SIZE = 200;
/** Minimum gap between two faces' boxes, and from a face to the frame border, in frame pixels. */
export const FACE_GAP = 8;
export const FACE_BORDER = 4;
/** The crop side the demo pipeline uses, relative to the face box width (the default). */
export const EYE_CROP_SIZE = 0.35;
/** Sample frames per second for `run --demo eyes`. */
export const SAMPLE_FPS = 5;

// Face template, relative to the face box (x fractions of the width, y of the height).
const FACE_ASPECT = 1.25;
const EYE_X = [0.7, 0.3] as const; // left eye (subject's), right eye
const EYE_Y = 0.42;
const EYE_R = 0.13; // sclera radius / width
const IRIS_R = 0.065;
const VIS_DX = (IRIS_R + EYE_R) / 2; // visibility samples: middle of the sclera ring
const MOUTH = { x0: 0.35, x1: 0.65, y0: 0.74, y1: 0.79 } as const;

// Detector constants (model-input pixels).
const STRIDE = 4;
const REACH = 80; // how far an anchor looks for a face edge
const MIN_SIDE = 20;
const MAX_SIDE = 160;
const INSIDE_B = 0.9; // B below this: inside a face
const OFF_LINE = 8 / 255; // distance from the backdrop->skin line that marks an inside colour
const WHITE_FROM = 0.85; // min(R,G,B) above which a pixel is sclera (fully white at +0.05)

// Classifier constants.
const CENTRE = 6; // central region side, input pixels
const VOTE_T = 100;
const VOTE_FLOOR = 1e-6;
const IGNORED = ['skin', 'eyelid', 'sclera'] as const;

// ---------------------------------------------------------------------------------------------
// Frames.

export interface FaceSpec {
  /** Top-left corner of the face box, integer frame pixels. */
  x: number;
  y: number;
  /** Face box width, integer pixels, MIN_FACE_SIZE..MAX_FACE_SIZE; the height is round(1.25 size). */
  size: number;
  /** Class of the subject's left eye (at the larger image x) and right eye. */
  leftClass: EyeLabel;
  rightClass: EyeLabel;
  /** That eye is closed: no sclera or iris visible (the class is then unknowable). */
  covered?: 'left' | 'right';
  /** Who this is, for answers.json (the same subject keeps its number while it stays). Not drawn. */
  subject?: number;
}

export interface FrameSpec {
  faces: FaceSpec[];
}

export interface Point {
  x: number;
  y: number;
}
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The exact answers for a face, in frame pixels (box corners on pixel edges, eye centres). */
export function faceGeometry(f: Pick<FaceSpec, 'x' | 'y' | 'size'>): { box: Box; leftEye: Point; rightEye: Point } {
  const h = Math.round(f.size * FACE_ASPECT);
  const eye = (fx: number): Point => ({ x: f.x + fx * f.size, y: f.y + EYE_Y * h });
  return { box: { x: f.x, y: f.y, w: f.size, h }, leftEye: eye(EYE_X[0]), rightEye: eye(EYE_X[1]) };
}

/** Throws, naming the face and the problem, when a spec breaks the rules the detector relies on. */
export function checkFrameSpec(spec: FrameSpec, width = FRAME_WIDTH, height = FRAME_HEIGHT): void {
  const boxes = spec.faces.map((f, i) => {
    const where = `face ${i}`;
    for (const k of ['x', 'y', 'size'] as const) {
      if (!Number.isInteger(f[k])) throw new Error(`${where}: ${k} must be an integer (got ${f[k]})`);
    }
    if (f.size < MIN_FACE_SIZE || f.size > MAX_FACE_SIZE) {
      throw new Error(`${where}: size ${f.size} is outside ${MIN_FACE_SIZE}..${MAX_FACE_SIZE}`);
    }
    for (const c of [f.leftClass, f.rightClass]) {
      if (!(EYE_LABELS as readonly string[]).includes(c)) throw new Error(`${where}: unknown eye class ${c}`);
    }
    const { box } = faceGeometry(f);
    if (box.x < FACE_BORDER || box.y < FACE_BORDER || box.x + box.w > width - FACE_BORDER || box.y + box.h > height - FACE_BORDER) {
      throw new Error(`${where}: box ${JSON.stringify(box)} must stay ${FACE_BORDER} px inside the ${width}x${height} frame`);
    }
    return box;
  });
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      const apart =
        a.x + a.w + FACE_GAP <= b.x || b.x + b.w + FACE_GAP <= a.x || a.y + a.h + FACE_GAP <= b.y || b.y + b.h + FACE_GAP <= a.y;
      if (!apart) throw new Error(`faces ${i} and ${j} must be at least ${FACE_GAP} px apart`);
    }
  }
}

function fillRect(rgb: Uint8Array, width: number, x0: number, y0: number, x1: number, y1: number, c: Rgb8): void {
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * width + x) * 3;
      rgb[o] = c[0];
      rgb[o + 1] = c[1];
      rgb[o + 2] = c[2];
    }
  }
}

/** A disc: every pixel whose centre is within r of (cx, cy). */
function fillDisc(rgb: Uint8Array, width: number, cx: number, cy: number, r: number, c: Rgb8): void {
  for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
    for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) {
      if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) fillRect(rgb, width, x, y, x + 1, y + 1, c);
    }
  }
}

/** Draws one face into an RGB8 frame buffer (rows of width * 3 bytes). Does not check the spec. */
export function drawFace(rgb: Uint8Array, width: number, face: FaceSpec): void {
  const { box, leftEye, rightEye } = faceGeometry(face);
  const s = face.size;
  fillRect(rgb, width, box.x, box.y, box.x + box.w, box.y + box.h, COLOURS.skin);
  const eyes = [
    { at: leftEye, cls: face.leftClass, covered: face.covered === 'left' },
    { at: rightEye, cls: face.rightClass, covered: face.covered === 'right' },
  ];
  for (const e of eyes) {
    if (e.covered) {
      fillDisc(rgb, width, e.at.x, e.at.y, EYE_R * s, COLOURS.eyelid);
      continue;
    }
    fillDisc(rgb, width, e.at.x, e.at.y, EYE_R * s, COLOURS.sclera);
    fillDisc(rgb, width, e.at.x, e.at.y, IRIS_R * s, IRIS[e.cls]);
  }
  const mx = (f: number): number => box.x + Math.round(f * box.w);
  const my = (f: number): number => box.y + Math.round(f * box.h);
  fillRect(rgb, width, mx(MOUTH.x0), my(MOUTH.y0), mx(MOUTH.x1), my(MOUTH.y1), COLOURS.mouth);
}

/** A 640x480 RGB8 frame (backdrop and faces), after checking the spec. */
export function renderFrame(spec: FrameSpec): Uint8Array {
  checkFrameSpec(spec);
  const rgb = new Uint8Array(FRAME_WIDTH * FRAME_HEIGHT * 3);
  fillRect(rgb, FRAME_WIDTH, 0, 0, FRAME_WIDTH, FRAME_HEIGHT, COLOURS.backdrop);
  for (const f of spec.faces) drawFace(rgb, FRAME_WIDTH, f);
  return rgb;
}

// ---------------------------------------------------------------------------------------------
// The colour maths both models use (also used here to check the palette).

const unit = (c: Rgb8): [number, number, number] => [c[0] / 255, c[1] / 255, c[2] / 255];
const BACKDROP = unit(COLOURS.backdrop);
const SKIN_DIR = unit(COLOURS.skin).map((v, i) => v - BACKDROP[i]);
const SKIN_DIR2 = SKIN_DIR.reduce((a, v) => a + v * v, 0);

/** Backdrop-ness of a colour in [0,1] units, as the detector computes it (float64 here). */
export function backdropness(c: readonly number[]): number {
  const d = c.map((v, i) => v - BACKDROP[i]);
  const t = d.reduce((a, v, i) => a + v * SKIN_DIR[i], 0) / SKIN_DIR2;
  const off = d.reduce((a, v, i) => a + (v - t * SKIN_DIR[i]) ** 2, 0);
  return off > OFF_LINE * OFF_LINE ? 0 : Math.min(1, Math.max(0, 1 - t));
}

/**
 * Every 2x2 average of colours drawn inside a face must count as inside, with margin; otherwise a
 * face's row would break into two runs. The sclera ring is >= 3.9 px wide, so a 2x2 block holds at
 * most two colours that touch.
 */
function assertInsideColours(): void {
  const touching: Array<[Rgb8, Rgb8]> = [
    [COLOURS.skin, COLOURS.skin],
    [COLOURS.skin, COLOURS.eyelid],
    [COLOURS.skin, COLOURS.sclera],
    [COLOURS.skin, COLOURS.mouth],
    ...EYE_LABELS.map((l): [Rgb8, Rgb8] => [COLOURS.sclera, IRIS[l]]),
  ];
  for (const [a, b] of touching) {
    for (let k = 0; k <= 4; k++) {
      const mean = [0, 1, 2].map((i) => (a[i] * k + b[i] * (4 - k)) / 4 / 255);
      if (backdropness(mean) > INSIDE_B - 0.2) throw new Error(`a blend of face colours ${a} and ${b} (${k}/4) looks like backdrop`);
    }
  }
}

/** Prototype order of the classifier: the four classes, then the colours whose votes are dropped. */
const PROTOTYPES: Rgb8[] = [...EYE_LABELS.map((l) => IRIS[l]), ...IGNORED.map((k) => COLOURS[k])];

function assertPrototypesSeparated(): void {
  for (let a = 0; a < PROTOTYPES.length; a++) {
    for (let b = a + 1; b < PROTOTYPES.length; b++) {
      const d2 = [0, 1, 2].reduce((s, k) => s + ((PROTOTYPES[a][k] - PROTOTYPES[b][k]) / 255) ** 2, 0);
      // VOTE_T * d2 >= 2: a pure pixel gives its own prototype most of its vote.
      if (VOTE_T * d2 < 2) throw new Error(`classifier prototypes ${a} and ${b} are too close (d2 ${d2.toFixed(4)})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Models.

export function buildFaceOnnx(): Uint8Array {
  const W = FACE_INPUT_WIDTH;
  const H = FACE_INPUT_HEIGHT;
  const AW = W / STRIDE;
  const AH = H / STRIDE;
  const N = AW * AH;
  const g = new GraphBuilder('demo_eyes_face');
  const image = g.input('image', [1, 3, H, W], 'float32', 'RGB, NCHW, values in [0,1] (pixel / 255), letterboxed');
  const f = (name: string, dims: number[], data: number[]): string => g.floatInit(name, dims, data);
  const i64 = (name: string, data: number[]): string => g.int64Init(name, [data.length], data);
  const scalar = (name: string, v: number): string => f(name, [], [v]);
  let names = 0;
  const uniq = (prefix: string): string => `${prefix}_${names++}`;
  const axis1 = i64('axis_channel', [1]);
  const bool = (x: string): string => g.op('Cast', [x], { to: int(1) }); // -> float32

  // Backdrop-ness B: projection on the backdrop->skin line, or 0 far from it.
  const d = g.op('Sub', [image, f('backdrop', [1, 3, 1, 1], BACKDROP)]);
  const dir = f('skin_dir', [1, 3, 1, 1], SKIN_DIR);
  const t = g.op('Div', [g.op('ReduceSum', [g.op('Mul', [d, dir]), axis1], { keepdims: int(1) }), scalar('skin_dir2', SKIN_DIR2)]);
  const resid = g.op('Sub', [d, g.op('Mul', [t, dir])]);
  const off = g.op('ReduceSum', [g.op('Mul', [resid, resid]), axis1], { keepdims: int(1) });
  const zero = scalar('zero', 0);
  const one = scalar('one', 1);
  const lineB = g.op('Clip', [g.op('Sub', [one, t]), zero, one]);
  const B = g.op('Where', [g.op('Greater', [off, scalar('off_line2', OFF_LINE * OFF_LINE)]), zero, lineB]);
  const I = bool(g.op('Less', [B, scalar('inside_b', INSIDE_B)])); // [1,1,H,W]

  // Neighbours, with outside-the-image counted as backdrop.
  const slice = (x: string, starts: number[], ends: number[], axes: number[], steps?: number[]): string =>
    g.op('Slice', [
      x,
      i64(uniq('starts'), starts),
      i64(uniq('ends'), ends),
      i64(uniq('axes'), axes),
      ...(steps ? [i64(uniq('steps'), steps)] : []),
    ]);
  const pad = (x: string, pads: number[]): string => g.op('Pad', [x, i64(uniq('pads'), pads), zero]);
  const prevX = slice(pad(I, [0, 0, 0, 1, 0, 0, 0, 0]), [0], [W], [3]);
  const nextX = slice(pad(I, [0, 0, 0, 0, 0, 0, 0, 1]), [1], [W + 1], [3]);
  const prevY = slice(pad(I, [0, 0, 1, 0, 0, 0, 0, 0]), [0], [H], [2]);
  const nextY = slice(pad(I, [0, 0, 0, 0, 0, 0, 1, 0]), [1], [H + 1], [2]);
  const notI = (x: string): string => g.op('Sub', [one, x]);
  const startX = g.op('Mul', [I, notI(prevX)]);
  const endX = g.op('Mul', [I, notI(nextX)]);
  const startY = g.op('Mul', [I, notI(prevY)]);
  const endY = g.op('Mul', [I, notI(nextY)]);
  const xs = f(
    'x_coord',
    [1, 1, 1, W],
    Array.from({ length: W }, (_, i) => i),
  );
  const ys = f(
    'y_coord',
    [1, 1, H, 1],
    Array.from({ length: H }, (_, i) => i),
  );
  const BIG = 1000;
  const big = scalar('big', BIG);
  // Edge positions, encoded so that the nearest edge is the largest value in a window:
  // a start's edge + 1 (nearest to the left = largest), BIG - an end's edge (nearest to the right).
  const leftVal = g.op('Mul', [startX, g.op('Add', [g.op('Add', [xs, B]), one])]);
  const topVal = g.op('Mul', [startY, g.op('Add', [g.op('Add', [ys, B]), one])]);
  const rightVal = g.op('Mul', [endX, g.op('Sub', [big, g.op('Sub', [g.op('Add', [xs, one]), B])])]);
  const bottomVal = g.op('Mul', [endY, g.op('Sub', [big, g.op('Sub', [g.op('Add', [ys, one]), B])])]);
  const c = STRIDE / 2;
  const rowsOfAnchors = (x: string): string => slice(x, [c], [H], [2], [STRIDE]); // [1,1,AH,W]
  const colsOfAnchors = (x: string): string => slice(x, [c], [W], [3], [STRIDE]); // [1,1,H,AW]
  const pool = (x: string, kernel: number[], pads: number[], strides: number[]): string =>
    g.op('MaxPool', [x], { kernel_shape: ints(kernel), pads: ints(pads), strides: ints(strides) });
  // Window [p - REACH, p] or [p, p + REACH] around each anchor pixel p = STRIDE * j + c.
  const left = g.op('Sub', [pool(rowsOfAnchors(leftVal), [1, REACH + 1], [0, REACH - c, 0, 0], [1, STRIDE]), one]);
  const right = g.op('Sub', [big, pool(slice(rowsOfAnchors(rightVal), [c], [W], [3]), [1, REACH + 1], [0, 0, 0, REACH], [1, STRIDE])]);
  const top = g.op('Sub', [pool(colsOfAnchors(topVal), [REACH + 1, 1], [REACH - c, 0, 0, 0], [STRIDE, 1]), one]);
  const bottom = g.op('Sub', [big, pool(slice(colsOfAnchors(bottomVal), [c], [H], [2]), [REACH + 1, 1], [0, 0, REACH, 0], [STRIDE, 1])]);

  const half = scalar('half', 0.5);
  const w = g.op('Sub', [right, left]);
  const h = g.op('Sub', [bottom, top]);
  const cx = g.op('Mul', [g.op('Add', [left, right]), half]);
  const cy = g.op('Mul', [g.op('Add', [top, bottom]), half]);
  const tol = 0.01;
  const cellX0 = f(
    'cell_x0',
    [1, 1, 1, AW],
    Array.from({ length: AW }, (_, j) => STRIDE * j - tol),
  );
  const cellX1 = f(
    'cell_x1',
    [1, 1, 1, AW],
    Array.from({ length: AW }, (_, j) => STRIDE * (j + 1) + tol),
  );
  const cellY0 = f(
    'cell_y0',
    [1, 1, AH, 1],
    Array.from({ length: AH }, (_, i) => STRIDE * i - tol),
  );
  const cellY1 = f(
    'cell_y1',
    [1, 1, AH, 1],
    Array.from({ length: AH }, (_, i) => STRIDE * (i + 1) + tol),
  );
  const anchorInside = slice(I, [c, c], [H, W], [2, 3], [STRIDE, STRIDE]);
  const minSide = scalar('min_side', MIN_SIDE);
  const maxSide = scalar('max_side', MAX_SIDE);
  const checks = [
    g.op('GreaterOrEqual', [cx, cellX0]),
    g.op('Less', [cx, cellX1]),
    g.op('GreaterOrEqual', [cy, cellY0]),
    g.op('Less', [cy, cellY1]),
    g.op('GreaterOrEqual', [w, minSide]),
    g.op('LessOrEqual', [w, maxSide]),
    g.op('GreaterOrEqual', [h, minSide]),
    g.op('LessOrEqual', [h, maxSide]),
  ];
  const score = checks.reduce((acc, chk) => g.op('Mul', [acc, bool(chk)]), anchorInside);

  // Keypoints from the face template; visibility from the sclera beside each eye centre.
  const white = g.op('Clip', [
    g.op('Mul', [
      g.op('Sub', [g.op('ReduceMin', [image], { axes: ints([1]), keepdims: int(1) }), scalar('white_from', WHITE_FROM)]),
      scalar('white_gain', 20),
    ]),
    zero,
    one,
  ]);
  const whiteFlat = g.op('Reshape', [white, i64('flat', [H * W])]);
  const ky = g.op('Add', [top, g.op('Mul', [h, scalar('eye_y', EYE_Y)])]);
  const row = g.op('Clip', [g.op('Floor', [ky]), zero, scalar('last_row', H - 1)]);
  const sample = (x: string): string => {
    const col = g.op('Clip', [g.op('Floor', [x]), zero, scalar(uniq('last_col'), W - 1)]);
    const index = g.op('Cast', [g.op('Add', [g.op('Mul', [row, scalar(uniq('width'), W)]), col])], { to: int(7) });
    return g.op('Gather', [whiteFlat, index], { axis: int(0) });
  };
  const keypoint = (fx: number): string[] => {
    const kx = g.op('Add', [left, g.op('Mul', [w, scalar(`eye_x_${fx}`, fx)])]);
    const dx = g.op('Mul', [w, scalar(`vis_dx_${fx}`, VIS_DX)]);
    const vis = g.op('Mul', [g.op('Add', [sample(g.op('Sub', [kx, dx])), sample(g.op('Add', [kx, dx]))]), half]);
    return [kx, ky, vis];
  };
  const rows = [cx, cy, w, h, score, ...keypoint(EYE_X[0]), ...keypoint(EYE_X[1])];
  const all = g.op('Concat', rows, { axis: int(1) }); // [1, 11, AH, AW]
  g.op('Reshape', [all, i64('out_shape', [1, rows.length, N])], {}, 'output0');
  g.output(
    'output0',
    [1, rows.length, N],
    'float32',
    'YOLOv8-pose: cx, cy, w, h, face, then x, y, visibility of left_eye, right_eye; model-input pixels',
  );
  return g.build({
    doc: 'Demo: face detector with two eye keypoints for synthetic faces (see scripts/make-eyes-demo.ts).',
    metadata: {
      task: 'detect',
      labels: JSON.stringify(FACE_LABELS),
      keypoints: JSON.stringify(KEYPOINTS),
      input: `image: float32 [1,3,${H},${W}] NCHW RGB, values in [0,1], letterbox`,
      output: `output0: float32 [1,${rows.length},${N}] YOLOv8-pose layout`,
    },
  });
}

export function buildEyeOnnx(): Uint8Array {
  const S = EYE_INPUT_SIZE;
  const K = PROTOTYPES.length;
  const C = EYE_LABELS.length;
  const g = new GraphBuilder('demo_eyes_condition');
  const image = g.input('image', ['batch', 3, S, S], 'float32', 'RGB, NCHW, values in [0,1] (pixel / 255)');
  const i64 = (name: string, data: number[]): string => g.int64Init(name, [data.length], data);
  const lo = (S - CENTRE) / 2;
  const centre = g.op('Slice', [
    image,
    i64('centre_starts', [lo, lo]),
    i64('centre_ends', [lo + CENTRE, lo + CENTRE]),
    i64('centre_axes', [2, 3]),
  ]);
  const x = g.op('Unsqueeze', [centre, i64('proto_axis', [1])]); // [N,1,3,c,c]
  const protos = g.floatInit('prototypes', [1, K, 3, 1, 1], PROTOTYPES.flatMap(unit));
  const diff = g.op('Sub', [x, protos]);
  const d2 = g.op('ReduceSum', [g.op('Mul', [diff, diff]), i64('rgb_axis', [2])], { keepdims: int(0) }); // [N,K,c,c]
  const soft = g.op('Softmax', [g.op('Mul', [d2, g.floatInit('minus_t', [], [-VOTE_T])])], { axis: int(1) });
  const votes = g.op('Relu', [g.op('Sub', [soft, g.floatInit('clear_vote', [], [0.5])])]);
  const perClass = g.op('ReduceSum', [votes, i64('pixel_axes', [2, 3])], { keepdims: int(0) }); // [N,K]
  // The iris classes' votes, through a linear layer (one-hot rows: exact) whose weights explain.weights names for CAM.
  const weights = Array.from({ length: C * K }, (_, i) => (i % K === Math.floor(i / K) ? 1 : 0));
  const iris = g.op('Gemm', [perClass, g.floatInit('condition_weights', [C, K], weights)], { transB: int(1) }); // [N,C]
  // The feature map for class activation maps: the votes averaged over 4x4 cells of the crop, [N,K,8,8]. The
  // centre (pixels 13..18) fills 3x3 of each of the central four cells: the mean of those 9 votes x 9/16, padded
  // with empty cells (pooling first: ORT refuses a Pad fused into a pool wider than its kernel).
  if (lo !== 13 || CENTRE !== 6 || S !== 32) throw new Error('the feature map assumes a 6x6 centre at 13..18 of a 32x32 crop');
  const pooled = g.op('AveragePool', [votes], { kernel_shape: ints([3, 3]), strides: ints([3, 3]) }); // [N,K,2,2]
  const cells = g.op('Mul', [pooled, g.floatInit('cell_share', [], [9 / 16])]);
  g.op('Pad', [cells, i64('cell_pads', [0, 0, 3, 3, 0, 0, 3, 3])], {}, 'features');
  const floored = g.op('Add', [iris, g.floatInit('floor', [], [VOTE_FLOOR])]);
  const total = g.op('ReduceSum', [floored, i64('class_axis', [1])], { keepdims: int(1) });
  g.op('Div', [floored, total], {}, 'probs');
  g.output('probs', ['batch', C], 'float32', `probabilities in label order: ${EYE_LABELS.join(', ')}`);
  g.output('features', ['batch', K, 8, 8], 'float32', 'per-prototype votes averaged over 4x4 cells of the crop (explain.featureMap)');
  return g.build({
    doc: 'Demo: eye condition by iris colour (votes of the central pixels for the nearest prototype).',
    metadata: {
      task: 'classify',
      labels: JSON.stringify(EYE_LABELS),
      input: `image: float32 [batch,3,${S},${S}] NCHW RGB, values in [0,1] (pixel / 255)`,
      output: `probs: float32 [batch,${C}] probabilities in label order`,
    },
  });
}

export function faceManifestYaml(sha256: string): string {
  return `name: demo-eyes-face
version: 1.0.0
task: detect
model: model.onnx
sha256: ${sha256}
description: Built-in demo. Finds the synthetic faces of the eyes demo (flat skin on a grey backdrop) and their two eye centres. Generated by scripts/make-eyes-demo.ts.
privacy: person
input:
  name: image
  layout: NCHW
  width: ${FACE_INPUT_WIDTH}
  height: ${FACE_INPUT_HEIGHT}
  colour: RGB
  dtype: float32
  scale: ${1 / 255}
  mean: [0, 0, 0]
  std: [1, 1, 1]
  resize: letterbox
output:
  name: output0
labels: [${FACE_LABELS.join(', ')}]
detect:
  format: yolov8
  keypoints: [${KEYPOINTS.join(', ')}]   # the subject's left and right eye
  scoreThreshold: 0.5
  iouThreshold: 0.45
  maxDetections: 10
`;
}

export function eyeManifestYaml(sha256: string): string {
  return `name: demo-eyes-condition
version: 1.0.0
task: classify
model: model.onnx
sha256: ${sha256}
description: Built-in demo. Classifies an eye crop by its iris colour (nearest of four prototype colours). Generated by scripts/make-eyes-demo.ts.
input:
  name: image
  layout: NCHW
  width: ${EYE_INPUT_SIZE}
  height: ${EYE_INPUT_SIZE}
  colour: RGB
  dtype: float32
  scale: ${1 / 255}
  mean: [0, 0, 0]
  std: [1, 1, 1]
  resize: stretch
output:
  name: probs
labels: [${EYE_LABELS.join(', ')}]
classify:
  outputs: probabilities
  topK: ${EYE_LABELS.length}
explain:
  method: occlusion   # cam: one pass, from the feature map and weights below (docs/explanations.md)
  featureMap: features
  weights: condition_weights
`;
}

// ---------------------------------------------------------------------------------------------
// The sample sequence.

/** A small deterministic sway: integer offsets in -amp..amp, period 8 frames. */
const sway = (n: number, amp: number, phase = 0): number => ([0, 1, 2, 1, 0, -1, -2, -1][(n + phase) % 8] * amp) / 2;

/**
 * The sample frames, in playback order (SAMPLE_FPS): one subject for 20 frames, swaying a few
 * pixels per frame; 3 empty frames; two subjects (one with a closed eye) for 20 frames; 3 empty
 * frames; three subjects for 10 frames; 2 empty frames.
 */
export function sampleSequence(): FrameSpec[] {
  const frames: FrameSpec[] = [];
  const empty = (k: number): void => {
    for (let i = 0; i < k; i++) frames.push({ faces: [] });
  };
  for (let n = 0; n < 20; n++) {
    frames.push({
      faces: [
        {
          x: 240 + sway(n, 6),
          y: 110 + sway(n, 4, 2),
          size: 160 + Math.round(sway(n, 2)),
          leftClass: 'cataract',
          rightClass: 'healthy',
          subject: 1,
        },
      ],
    });
  }
  empty(3);
  for (let n = 0; n < 20; n++) {
    frames.push({
      faces: [
        { x: 90 + sway(n, 4), y: 130 + sway(n, 2, 4), size: 150, leftClass: 'healthy', rightClass: 'conjunctivitis', subject: 2 },
        {
          x: 400 + sway(n, 4, 3),
          y: 160 + sway(n, 4, 1),
          size: 110,
          leftClass: 'stye',
          rightClass: 'healthy',
          covered: 'right',
          subject: 3,
        },
      ],
    });
  }
  empty(3);
  for (let n = 0; n < 10; n++) {
    frames.push({
      faces: [
        { x: 40 + sway(n, 2), y: 150, size: 120, leftClass: 'conjunctivitis', rightClass: 'stye', subject: 4 },
        { x: 250, y: 200 + sway(n, 2), size: 90, leftClass: 'healthy', rightClass: 'healthy', subject: 5 },
        { x: 420 + sway(n, 2, 5), y: 120, size: 180, leftClass: 'cataract', rightClass: 'stye', subject: 6 },
      ],
    });
  }
  empty(2);
  return frames;
}

export const sampleName = (n: number): string => `frame-${String(n).padStart(3, '0')}.png`;

/** answers.json: per frame, each face's subject number, box, eye centres and classes (frame pixels). */
export function sampleAnswers(frames: FrameSpec[]): unknown {
  return {
    description:
      'Known answers for the eyes demo samples (frame pixels; box x, y = top-left corner). Generated by scripts/make-eyes-demo.ts.',
    fps: SAMPLE_FPS,
    width: FRAME_WIDTH,
    height: FRAME_HEIGHT,
    keypoints: [...KEYPOINTS],
    frames: frames.map((spec, n) => ({
      file: sampleName(n),
      faces: spec.faces.map((f) => {
        const { box, leftEye, rightEye } = faceGeometry(f);
        const r = (v: number): number => Math.round(v * 1e6) / 1e6;
        return {
          subject: f.subject,
          box,
          leftEye: { x: r(leftEye.x), y: r(leftEye.y), class: f.leftClass, covered: f.covered === 'left' },
          rightEye: { x: r(rightEye.x), y: r(rightEye.y), class: f.rightClass, covered: f.covered === 'right' },
        };
      }),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Writing the package.

export async function makeEyesDemo(outDir: string): Promise<{ files: string[]; written: string[] }> {
  assertInsideColours();
  assertPrototypesSeparated();
  const outputs: GeneratedFile[] = [];
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const face = buildFaceOnnx();
  const eye = buildEyeOnnx();
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  outputs.push({ rel: 'face/model.onnx', bytes: face });
  outputs.push({ rel: 'face/manifest.yaml', bytes: text(faceManifestYaml(sha(face))) });
  outputs.push({ rel: 'eye-condition/model.onnx', bytes: eye });
  outputs.push({ rel: 'eye-condition/manifest.yaml', bytes: text(eyeManifestYaml(sha(eye))) });
  const frames = sampleSequence();
  for (const [n, spec] of frames.entries()) {
    const pixels = renderFrame(spec);
    const png = await sharp(pixels, { raw: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    outputs.push({ rel: `samples/${sampleName(n)}`, bytes: png, pixels, width: FRAME_WIDTH, height: FRAME_HEIGHT });
  }
  outputs.push({ rel: 'samples/answers.json', bytes: text(`${JSON.stringify(sampleAnswers(frames), null, 1)}\n`) });

  const written = await writeChanged(outDir, outputs);
  return { files: outputs.map((o) => o.rel), written };
}

runGenerator(import.meta.url, path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'models', 'demo-eyes'), makeEyesDemo);
