import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, int } from '../../scripts/onnx/builder.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { PipelineRunner } from '../../src/inference/pipeline.js';
import type { DetectInference, RegressInference } from '../../src/inference/types.js';
import { resultPayload } from '../../src/publish/payload.js';
import { drawFrame, type Rgb } from '../helpers/draw.js';
import { eyeCentres, eyesStages, stageModel, writePipelineModels } from '../helpers/pipeline-models.js';
import { assertValid } from '../helpers/schemas.js';

/**
 * A landmark regressor's coordinates as points in frame pixels (regress.points), as the camera's
 * model and as a pipeline's crop stage. The generated "spot locator" answers the centroid of the
 * green in its 64x64 input (spot_x, spot_y, in input pixels) and the mean green; a green square
 * drawn at a known place must come back at that place in the frame, through the letterbox (the
 * camera's model) or through the eye crop and its stretch (the crop stage).
 */

const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };
const S = 64;
let dir: string;

/** [N, 3]: centroid x and y of the green channel (pixel centres at i + 0.5), and its mean x 255. */
function spotLocator(): Uint8Array {
  const g = new GraphBuilder('spot');
  const x = g.input('images', ['batch', 3, S, S]);
  const green = g.op('Slice', [x, g.int64Init('s0', [1], [1]), g.int64Init('s1', [1], [2]), g.int64Init('ax', [1], [1])]); // [N,1,S,S]
  const centres = Array.from({ length: S }, (_, i) => i + 0.5);
  const sum = (t: string) => g.op('ReduceSum', [t, g.int64Init(`axes_${t}`, [3], [1, 2, 3])], { keepdims: int(1) }); // [N,1,1,1]
  const total = sum(green);
  const cx = g.op('Div', [sum(g.op('Mul', [green, g.floatInit('xs', [1, 1, 1, S], centres)])), total]);
  const cy = g.op('Div', [sum(g.op('Mul', [green, g.floatInit('ys', [1, 1, S, 1], centres)])), total]);
  const mean = g.op('Mul', [total, g.floatInit('k', [], [255 / (S * S)])]);
  const all = g.op('Concat', [cx, cy, mean], { axis: int(1) }); // [N,3,1,1]
  g.op('Reshape', [all, g.int64Init('shape', [2], [-1, 3])], {}, 'values');
  g.output('values', ['batch', 3]);
  return g.build({ opset: 17 });
}

async function writeLocator(name: string, input: string, regress: string): Promise<string> {
  const out = path.join(dir, name);
  await mkdir(out, { recursive: true });
  const model = spotLocator();
  await writeFile(path.join(out, 'model.onnx'), model);
  const sha = createHash('sha256').update(model).digest('hex');
  await writeFile(
    path.join(out, 'manifest.yaml'),
    `name: spot\nversion: 1.0.0\ntask: regress\nsha256: ${sha}\ninput: { name: images, width: ${S}, height: ${S}, ${input} }\n` +
      `output: { name: values }\nlabels: [spot_x, spot_y, green]\nregress:\n${regress}`,
  );
  return out;
}

const engines: InferenceEngine[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'regress-points-'));
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await rm(dir, { recursive: true, force: true });
});
async function load(d: string): Promise<InferenceEngine> {
  const e = await loadEngine(d, cpu1);
  engines.push(e);
  return e;
}

describe('regress.points: a landmark regressor answers in frame pixels', () => {
  it("the camera's model: a green square at (80..88, 20..28) of a 128x64 frame is found at its centre (84, 24) through the letterbox", async () => {
    const e = await load(await writeLocator('top', 'resize: letterbox, pad: 0', '  points: { spot: [spot_x, spot_y] }\n'));
    const frame = drawFrame(128, 64, [{ x: 80, y: 20, w: 8, h: 8, rgb: [0, 255, 0] }]);
    const inf = (await e.infer(frame)) as RegressInference;
    // In the 64x64 input the square is (40..44, 26..30): centroid (42, 28); back through scale 0.5 and the 16 px band: (84, 24).
    expect(inf.values[0].value).toBeCloseTo(42, 3);
    expect(inf.points).toEqual([{ name: 'spot', x: expect.closeTo(84, 3), y: expect.closeTo(24, 3) }]);
    const p = resultPayload({ deviceId: 'dev', seq: 1, frame, inference: inf, model: inf.model, nowMs: 0 });
    assertValid('result.schema.json', p);
    expect(p).toMatchObject({ task: 'regress', points: [{ name: 'spot', x: 84, y: 24 }] });
  }, 60_000);

  it('normalized: values as fractions of the input, scaled back by its size', async () => {
    // scale 1/64 makes the outputs fractions of the input; normalized: true multiplies them back.
    const e = await load(
      await writeLocator(
        'norm',
        'resize: stretch',
        '  scale: [0.015625, 0.015625, 1]\n  normalized: true\n  points: { spot: [spot_x, spot_y] }\n',
      ),
    );
    const frame = drawFrame(128, 128, [{ x: 30, y: 90, w: 10, h: 6, rgb: [0, 255, 0] }]);
    const inf = (await e.infer(frame)) as RegressInference;
    expect(inf.values[0].value).toBeCloseTo(35 / 128, 2);
    expect(inf.points?.[0].x).toBeCloseTo(35, 1);
    expect(inf.points?.[0].y).toBeCloseTo(93, 1);
  }, 60_000);

  it('a point naming a value the model does not have is refused at load', async () => {
    const d = await writeLocator('bad', 'resize: stretch', '  points: { spot: [spot_x, spot_z] }\n');
    await expect(loadEngine(d, cpu1)).rejects.toMatchObject({
      code: 'MODEL_MISMATCH',
      message: expect.stringContaining('regress.points.spot.1: "spot_z" is not one of the values (labels: spot_x, spot_y, green)'),
    });
  }, 60_000);

  it('a crop stage: each eye crop finds its green pupil, placed off-centre, at its place in the frame', async () => {
    const models = await writePipelineModels(dir);
    const face = await load(models.face);
    const spot = await load(await writeLocator('crop', 'resize: stretch', '  points: { pupil: [spot_x, spot_y] }\n'));
    const stages = eyesStages();
    const runner = new PipelineRunner({ name: 'eyes', stages: () => stages, models: [stageModel(face), stageModel(spot)] });
    // A locator whose point says a side, on a mirrored camera: named back to the subject's, like keypoints.
    const sided = await load(await writeLocator('crop-sided', 'resize: stretch', '  points: { left_corner: [spot_x, spot_y] }\n'));
    const mirrored = new PipelineRunner({
      name: 'eyes',
      stages: () => stages,
      models: [stageModel(face), stageModel(sided)],
      mirror: true,
    });
    // The face and eyes of pipeline-tasks.test.ts (red face, blue eye squares), with a 10 px green pupil
    // 8 px left of and above each eye's centre (left eye) or 6 px right and below (right eye).
    const FACE = { x: 200, y: 100, w: 240, h: 300 };
    const e = eyeCentres(FACE);
    const EYE = 48;
    const sq = (cx: number, cy: number, side: number, rgb: Rgb) => ({ x: cx - side / 2, y: cy - side / 2, w: side, h: side, rgb });
    const pupils = { left: { x: e.left.x - 8, y: e.left.y - 8 }, right: { x: e.right.x + 6, y: e.right.y + 6 } };
    const frame = drawFrame(
      640,
      480,
      [
        { ...FACE, rgb: [255, 0, 0] },
        sq(e.left.x, e.left.y, EYE, [0, 0, 255]),
        sq(e.right.x, e.right.y, EYE, [0, 0, 255]),
        sq(pupils.left.x, pupils.left.y, 10, [0, 255, 0]),
        sq(pupils.right.x, pupils.right.y, 10, [0, 255, 0]),
      ],
      [0, 0, 0],
      'kiosk',
    );
    const inf = (await runner.infer(frame)) as DetectInference;
    const regions = inf.pipeline?.objects[0]?.regions ?? [];
    for (const side of ['left', 'right'] as const) {
      const r = regions.find((x) => x.name === side);
      expect(r?.points, side).toHaveLength(1);
      // Through the crop's stretch to 64x64 and back: within a pixel of where the pupil was drawn.
      expect(Math.abs((r?.points?.[0].x ?? 0) - pupils[side].x), `${side} x`).toBeLessThan(1);
      expect(Math.abs((r?.points?.[0].y ?? 0) - pupils[side].y), `${side} y`).toBeLessThan(1);
    }
    const p = resultPayload({ deviceId: 'dev', seq: 1, frame, inference: inf, model: inf.model, nowMs: 0 });
    assertValid('result.schema.json', p);
    const left = p.task === 'detect' ? p.objects?.[0].regions.left : undefined;
    expect(left?.points?.[0]).toMatchObject({ name: 'pupil', x: expect.closeTo(pupils.left.x, 0), y: expect.closeTo(pupils.left.y, 0) });
    expect(left?.values).toHaveProperty('spot_x');

    const m = (await mirrored.infer(frame)) as DetectInference;
    expect(m.pipeline?.objects[0]?.regions.map((r) => r.points?.[0].name)).toEqual(['right_corner', 'right_corner']);

    // The same picture as a capture that scaled a 1280x960 camera to 640x480 for the detector (no
    // full-resolution twin): the crops come from the scaled frame, the points are in camera pixels.
    const scaled = (await runner.infer({ ...frame, sourceWidth: 1280, sourceHeight: 960 })) as DetectInference;
    for (const side of ['left', 'right'] as const) {
      const pt = scaled.pipeline?.objects[0]?.regions.find((x) => x.name === side)?.points?.[0];
      expect(Math.abs((pt?.x ?? 0) - 2 * pupils[side].x), `${side} x, scaled capture`).toBeLessThan(2);
      expect(Math.abs((pt?.y ?? 0) - 2 * pupils[side].y), `${side} y, scaled capture`).toBeLessThan(2);
    }
  }, 60_000);
});
