import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METER_SCALE, TAG_AT, TAG_SLOPE } from '../../scripts/make-fixture-models.js';
import { Engine } from '../../src/inference/engine.js';
import { loadModelPackage, type ModelError } from '../../src/inference/package.js';
import { type ClassifyInference, primaryOf, type RegressInference } from '../../src/inference/types.js';
import { resultPayload } from '../../src/publish/payload.js';
import { drawFrame, type Rect } from '../helpers/draw.js';
import { assertValid } from '../helpers/schemas.js';

/**
 * The regress task and multi-label classification on the generated colour meter and colour
 * tagger (scripts/make-fixture-models.ts), through the real engine: the values and the labels on
 * are computed from the pixels we drew.
 */

const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };
let tmp: string;
const engines: Engine[] = [];
async function engine(dir: string): Promise<Engine> {
  const e = await Engine.load(await loadModelPackage(dir), cpu1);
  engines.push(e);
  return e;
}
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'model-tasks-'));
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await rm(tmp, { recursive: true, force: true });
});

/** A copy of a fixture package with its manifest edited (the model, hence its sha256, unchanged). */
async function variant(name: string, edit: (manifest: string) => string): Promise<string> {
  const dir = await mkdtemp(path.join(tmp, `${name}-`));
  await cp(path.join(fixtures, name), dir, { recursive: true });
  const file = path.join(dir, 'manifest.yaml');
  await writeFile(file, edit(await readFile(file, 'utf8')));
  return dir;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** The tagger's probability for a colour covering `share` of the image. */
const tagP = (share: number) => sigmoid(TAG_SLOPE * (share - TAG_AT));

describe('regress: the colour meter', () => {
  // A 128x128 frame stretched to 64x64 is scaled by exactly 1/2: every model pixel is the mean of a
  // 2x2 block, so blocks of one colour stay that colour and the centre's mean is exact.
  const centre = (left: Rect['rgb'], right: Rect['rgb']) =>
    drawFrame(128, 128, [
      { x: 32, y: 32, w: 32, h: 64, rgb: left },
      { x: 64, y: 32, w: 32, h: 64, rgb: right },
    ]);

  it("gives the mean colour of the image's centre, named by the labels and scaled by regress.scale", async () => {
    const e = await engine(path.join(fixtures, 'regressor'));
    const inf = (await e.infer(centre([200, 100, 50], [100, 20, 250]))) as RegressInference;
    expect(inf.task).toBe('regress');
    expect(inf.values.map((v) => v.name)).toEqual(['red', 'green', 'blue']);
    const want = [150, 60, 150];
    for (const [i, v] of inf.values.entries()) expect(v.value).toBeCloseTo(want[i], 3);
    expect(primaryOf(inf)).toBeUndefined();
    const payload = resultPayload({
      deviceId: 'dev',
      seq: 1,
      frame: centre([0, 0, 0], [0, 0, 0]),
      inference: inf,
      model: inf.model,
      nowMs: 1,
    });
    assertValid('result.schema.json', payload);
    expect(payload).toMatchObject({ task: 'regress', values: { red: 150, green: 60, blue: 150 } });
    expect(payload).not.toHaveProperty('label');
  });

  it('applies a scale and an offset per value', async () => {
    const dir = await variant('regressor', (m) =>
      m.replace(/regress:[\s\S]*$/, 'regress:\n  scale: [1, 100, 255]\n  offset: [0, -50, 0.5]\n'),
    );
    const e = await engine(dir);
    const inf = (await e.infer(centre([51, 102, 255], [51, 102, 255]))) as RegressInference;
    const raw = [51 / 255, 102 / 255, 1];
    const want = [raw[0], raw[1] * 100 - 50, raw[2] * 255 + 0.5];
    for (const [i, v] of inf.values.entries()) expect(v.value).toBeCloseTo(want[i], 4);
    expect(METER_SCALE).toBe(255); // the committed package's scale, used above
  });

  it('refuses a manifest whose values do not match the model, naming each problem', async () => {
    const dir = await variant('regressor', (m) =>
      m.replace('labels: [red, green, blue]', 'labels: [age, height]').replace(/regress:[\s\S]*$/, 'regress:\n  scale: [1, 2, 3]\n'),
    );
    const err = (await Engine.load(await loadModelPackage(dir), cpu1).then(
      () => undefined,
      (e: unknown) => e,
    )) as ModelError;
    expect(err.code).toBe('MODEL_MISMATCH');
    expect(err.problems).toEqual([
      'labels: the manifest has 2 labels, the model\'s output "values" has 3 values (shape [batch,3])',
      'regress.scale: 3 numbers for 2 values (age, height); give one per value, or one for all',
    ]);
  });
});

describe('multi-label classification: the colour tagger', () => {
  // A 64x64 frame goes to the 64x64 model unscaled: the shares are exact.
  const shares = (red: number, green: number, blue: number) =>
    drawFrame(64, 64, [
      { x: 0, y: 0, w: 64, h: Math.round(red * 64), rgb: [255, 0, 0] },
      { x: 0, y: Math.round(red * 64), w: 64, h: Math.round(green * 64), rgb: [0, 255, 0] },
      { x: 0, y: Math.round((red + green) * 64), w: 64, h: Math.round(blue * 64), rgb: [0, 0, 255] },
    ]);

  it('turns on every label at or above the threshold, with sigmoid probabilities', async () => {
    const e = await engine(path.join(fixtures, 'tagger'));
    const frame = shares(0.5, 0.125, 0.25);
    const inf = (await e.infer(frame)) as ClassifyInference;
    expect(inf.top.map((t) => [t.label, t.score])).toEqual([
      ['red', expect.closeTo(tagP(0.5), 5)],
      ['blue', expect.closeTo(tagP(0.25), 5)],
      ['green', expect.closeTo(tagP(0.125), 5)],
    ]);
    expect(inf.on?.map((t) => t.label)).toEqual(['red', 'blue']);
    expect(primaryOf(inf)?.label).toBe('red');
    const payload = resultPayload({ deviceId: 'dev', seq: 1, frame, inference: inf, model: inf.model, nowMs: 1 });
    assertValid('result.schema.json', payload);
    expect(payload).toMatchObject({ task: 'classify', label: 'red', on: [{ label: 'red' }, { label: 'blue' }] });
  });

  it('with nothing on: no label, primary "nothing", and the top scores still there', async () => {
    const e = await engine(path.join(fixtures, 'tagger'));
    const frame = shares(0.125, 0.125, 0.125);
    const inf = (await e.infer(frame)) as ClassifyInference;
    expect(inf.on).toEqual([]);
    expect(primaryOf(inf)).toBeUndefined();
    const payload = resultPayload({ deviceId: 'dev', seq: 1, frame, inference: inf, model: inf.model, nowMs: 1 });
    assertValid('result.schema.json', payload);
    expect(payload).not.toHaveProperty('label');
    expect(payload).toMatchObject({ on: [], top: [{ score: expect.closeTo(tagP(0.125), 3) }, {}, {}] });
  });

  it('takes a threshold per label', async () => {
    const dir = await variant('tagger', (m) => m.replace('threshold: 0.5', 'threshold: { red: 0.5, green: 0.3, blue: 0.9 }'));
    const e = await engine(dir);
    // green: share 0.125 -> p = 0.32 (on at 0.3); blue: share 0.25 -> p = 0.62 (off at 0.9).
    const inf = (await e.infer(shares(0.5, 0.125, 0.25))) as ClassifyInference;
    expect(tagP(0.125)).toBeGreaterThan(0.3);
    expect(tagP(0.25)).toBeLessThan(0.9);
    expect(inf.on?.map((t) => t.label)).toEqual(['red', 'green']);
  });

  it('label-probabilities reads the outputs as probabilities as they are', async () => {
    const dir = await variant('tagger', (m) =>
      m.replace('outputs: sigmoid', 'outputs: label-probabilities').replace('threshold: 0.5', 'threshold: 0.4'),
    );
    const e = await engine(dir);
    // The raw logits are the "probabilities" now: red 10 * (0.5 - 0.2) = 3 (>= 0.4: on), blue 0.5 (on), green -0.75.
    const inf = (await e.infer(shares(0.5, 0.125, 0.25))) as ClassifyInference;
    expect(inf.on?.map((t) => [t.label, t.score])).toEqual([
      ['red', expect.closeTo(3, 5)],
      ['blue', expect.closeTo(0.5, 5)],
    ]);
  });

  it('refuses thresholds that do not name the labels, and a threshold on a single-label model', async () => {
    const dir = await variant('tagger', (m) => m.replace('threshold: 0.5', 'threshold: { red: 0.5, purple: 0.3 }'));
    const err = (await Engine.load(await loadModelPackage(dir), cpu1).then(
      () => undefined,
      (e: unknown) => e,
    )) as ModelError;
    expect(err.code).toBe('MODEL_MISMATCH');
    expect(err.problems).toEqual([
      'classify.threshold.purple: not a label (labels: red, green, blue)',
      'classify.threshold: no threshold for green, blue; name every label, or give one number for all',
    ]);
    const single = await variant('tagger', (m) => m.replace('outputs: sigmoid', 'outputs: logits'));
    const err2 = (await loadModelPackage(single).then(
      () => undefined,
      (e: unknown) => e,
    )) as ModelError;
    expect(err2.code).toBe('MODEL_MANIFEST');
    expect(err2.problems.join('\n')).toContain(
      'classify.threshold: only for multi-label outputs (sigmoid, label-probabilities); classify.outputs is logits',
    );
  });
});
