import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/inference/engine.js';
import { loadModelPackage } from '../../src/inference/package.js';
import { demoModelDir } from '../../src/paths.js';

/**
 * The manifest/model mismatch matrix: a real ORT session reads the model's own inputs and outputs,
 * and every difference from the manifest is one clear line naming the field and both values.
 */

const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

/** A copy of a package with its manifest edited (and optionally other model bytes, sha256 kept in step). */
async function variant(base: string, edit: (m: string) => string, model?: (bytes: Buffer) => Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pkg-'));
  made.push(dir);
  await cp(base, dir, { recursive: true });
  let manifest = await readFile(path.join(dir, 'manifest.yaml'), 'utf8');
  if (model) {
    const bytes = model(await readFile(path.join(dir, 'model.onnx')));
    await writeFile(path.join(dir, 'model.onnx'), bytes);
    manifest = manifest.replace(/sha256: [0-9a-f]{64}/, `sha256: ${createHash('sha256').update(bytes).digest('hex')}`);
  }
  await writeFile(path.join(dir, 'manifest.yaml'), edit(manifest));
  return dir;
}

async function loadError(dir: string): Promise<{ code: string; problems: string[]; message: string }> {
  let engine: Engine | undefined;
  try {
    engine = await Engine.load(await loadModelPackage(dir), { providers: ['cpu'], intraOpThreads: 1 });
  } catch (err) {
    return err as { code: string; problems: string[]; message: string };
  }
  await engine.close();
  throw new Error(`${dir} loaded without an error`);
}

const demo = demoModelDir;
const yolo = path.join(fixtures, 'detector-yolov8');
const boxes = path.join(fixtures, 'detector-boxes-scores');
const seg = path.join(fixtures, 'segmenter');

describe('manifest vs model: each mismatch is an error naming the field and both values', () => {
  const cases: [string, string, (m: string) => string, string[]][] = [
    ['input name', demo, (m) => m.replace('name: image', 'name: img'), ['input.name: the model has no input "img" (model inputs: image)']],
    [
      'input width',
      demo,
      (m) => m.replace('width: 64', 'width: 96'),
      ['input.width: manifest says 96, the model\'s input "image" has width 64 (shape [1,3,64,64], NCHW)'],
    ],
    [
      'input height',
      demo,
      (m) => m.replace('height: 64', 'height: 48'),
      ['input.height: manifest says 48, the model\'s input "image" has height 64 (shape [1,3,64,64], NCHW)'],
    ],
    [
      'wrong input layout',
      demo,
      (m) => m.replace('layout: NCHW', 'layout: NHWC'),
      ['input.layout: manifest says NHWC (3 channels at dim 3), the model\'s input "image" has shape [1,3,64,64] (it looks NCHW)'],
    ],
    [
      'input dtype',
      demo,
      (m) => m.replace('dtype: float32', 'dtype: uint8'),
      ['input.dtype: manifest says uint8, the model\'s input "image" is float32'],
    ],
    [
      'output name',
      demo,
      (m) => m.replace('name: probs', 'name: scores'),
      ['output.name: the model has no output "scores" (model outputs: probs)'],
    ],
    [
      'classify label count',
      demo,
      (m) => m.replace('labels: [cardboard, glass, metal, paper, plastic, trash]', 'labels: [cardboard, glass, metal, paper, plastic]'),
      ['labels: the manifest has 5 labels, the model\'s output "probs" has 6 classes (shape [1,6])'],
    ],
    [
      'two problems at once',
      demo,
      (m) => m.replace('width: 64', 'width: 32').replace('dtype: float32', 'dtype: uint8'),
      [
        'input.dtype: manifest says uint8, the model\'s input "image" is float32',
        'input.width: manifest says 32, the model\'s input "image" has width 64 (shape [1,3,64,64], NCHW)',
      ],
    ],
    [
      'yolov8 label count',
      yolo,
      (m) => m.replace('labels: labels.txt', 'labels: [red, green, blue, white]'),
      ['labels: 4 labels need 8 values per box in yolov8 format (4 box + classes), the model\'s output "output0" has 7 (shape [1,7,6])'],
    ],
    [
      'yolov5 format on a yolov8 output',
      yolo,
      (m) => m.replace('format: yolov8', 'format: yolov5'),
      [
        'labels: 3 labels need 8 values per box in yolov5 format (4 box + objectness + classes), the model\'s output "output0" has 6 (shape [1,7,6])',
      ],
    ],
    [
      'boxes-scores without output names',
      boxes,
      (m) => m.replace('  boxes: boxes\n', ''),
      ['detect.boxes: required when detect.format is boxes-scores (model outputs: boxes, scores)'],
    ],
    [
      'boxes-scores with a wrong output name',
      boxes,
      (m) => m.replace('  scores: scores\n', '  scores: confidences\n'),
      ['detect.scores: the model has no output "confidences" (model outputs: boxes, scores)'],
    ],
    [
      'segment class count',
      seg,
      (m) => m.replace('labels: [background, red, green, blue, yellow]', 'labels: [background, red, green, blue]'),
      ['labels: the manifest has 4 labels, the model\'s output "logits" has 5 classes (shape [1,5,64,64])'],
    ],
    [
      'segment class ids expected, scores given',
      seg,
      (m) => m.replace('output: scores', 'output: classes'),
      [
        'output.name: the model\'s output "logits" has shape [1,5,64,64] (rank 4); segment expects class ids [1, H, W] (segment.output: classes)',
      ],
    ],
  ];
  for (const [what, base, edit, problems] of cases) {
    it(what, async () => {
      const err = await loadError(await variant(base, edit));
      expect(err.code).toBe('MODEL_MISMATCH');
      expect(err.problems).toEqual(problems);
      expect(err.message).toContain('manifest.yaml');
    });
  }
});

describe('broken packages', () => {
  it('sha256 mismatch refuses the model', async () => {
    const dir = await variant(demo, (m) => m.replace(/sha256: [0-9a-f]{64}/, `sha256: ${'ab'.repeat(32)}`));
    const err = await loadError(dir);
    expect(err.code).toBe('MODEL_SHA256');
    expect(err.problems[0]).toMatch(
      /^sha256: model\.onnx does not match the manifest \(manifest (ab)+, file 22ec69d1[0-9a-f]+\); refusing to load it$/,
    );
  });

  it('a truncated model file (with a matching sha256) is a load error naming the file', async () => {
    const dir = await variant(
      demo,
      (m) => m,
      (b) => b.subarray(0, Math.floor(b.length / 2)),
    );
    const err = await loadError(dir);
    expect(err.code).toBe('MODEL_LOAD');
    expect(err.message).toContain(path.join(dir, 'model.onnx'));
    // ONNX Runtime's own reason first; the providers that are not installed only named after it.
    expect(err.message).toMatch(/ONNX Runtime cannot load the model: .*(Protobuf parsing failed|parse)/i);
  });

  it('a missing model file, a missing labels file and a bad task are manifest errors', async () => {
    const noModel = await variant(demo, (m) => m.replace('model: model.onnx', 'model: other.onnx'));
    expect(await loadError(noModel)).toMatchObject({ code: 'MODEL_FILE' });
    expect((await loadError(noModel)).problems[0]).toMatch(/^model: cannot read .*other\.onnx: ENOENT/);

    const noLabels = await variant(yolo, (m) => m.replace('labels: labels.txt', 'labels: names.txt'));
    const e2 = await loadError(noLabels);
    expect(e2.code).toBe('MODEL_MANIFEST');
    expect(e2.problems[0]).toMatch(/^labels: cannot read labels file .*names\.txt: ENOENT/);

    const badTask = await variant(demo, (m) => m.replace('task: classify', 'task: track'));
    const e3 = await loadError(badTask);
    expect(e3.code).toBe('MODEL_MANIFEST');
    expect(e3.problems).toEqual(['task: must be one of "classify", "detect", "segment", "regress" (got "track")']);
  });
});
