import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_AT, TAG_SLOPE } from '../../scripts/make-fixture-models.js';
import { runCli } from '../helpers/daemon.js';
import { drawFrame } from '../helpers/draw.js';
import { assertValid } from '../helpers/schemas.js';

/**
 * `edge-inferd infer` on a regress model and a multi-label classifier (the generated colour meter
 * and colour tagger): one schema-valid result line per image, with the values and the labels on
 * that the pixels we drew make.
 */

const fixtures = fileURLToPath(new URL('../fixtures/models/', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'infer-tasks-'));
  // 64x64, the models' input size: nothing is resampled. Top half red, then a quarter blue, an eighth green.
  const f = drawFrame(64, 64, [
    { x: 0, y: 0, w: 64, h: 32, rgb: [255, 0, 0] },
    { x: 0, y: 32, w: 64, h: 16, rgb: [0, 0, 255] },
    { x: 0, y: 48, w: 64, h: 8, rgb: [0, 255, 0] },
  ]);
  await sharp(f.data, { raw: { width: 64, height: 64, channels: 3 } })
    .png()
    .toFile(path.join(dir, 'bands.png'));
  const g = drawFrame(64, 64, [], [30, 60, 90]);
  await sharp(g.data, { raw: { width: 64, height: 64, channels: 3 } })
    .png()
    .toFile(path.join(dir, 'flat.png'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown> & { values?: Record<string, number>; top: { label: string }[] });

describe('edge-inferd infer on regress and multi-label models', () => {
  it('regress: the named values of each image', async () => {
    const r = await runCli(['infer', '--model', path.join(fixtures, 'regressor'), path.join(dir, 'flat.png'), path.join(dir, 'bands.png')]);
    expect(r.code, r.stderr).toBe(0);
    const [flat, bands] = lines(r.stdout);
    for (const l of [flat, bands]) assertValid('result.schema.json', l);
    expect(flat).toMatchObject({ task: 'regress', frame: { name: 'flat.png' } });
    expect(flat.values).toEqual({ red: expect.closeTo(30, 3), green: expect.closeTo(60, 3), blue: expect.closeTo(90, 3) });
    // The meter's centre (rows 16..47) is 16 rows red and 16 rows blue.
    expect(bands.values).toEqual({ red: expect.closeTo(127.5, 3), green: expect.closeTo(0, 3), blue: expect.closeTo(127.5, 3) });
  });

  it('multi-label: every label on, best first', async () => {
    const r = await runCli(['infer', '--model', path.join(fixtures, 'tagger'), path.join(dir, 'bands.png')]);
    expect(r.code, r.stderr).toBe(0);
    const [l] = lines(r.stdout);
    assertValid('result.schema.json', l);
    const p = (share: number) => 1 / (1 + Math.exp(-TAG_SLOPE * (share - TAG_AT)));
    expect(l).toMatchObject({
      task: 'classify',
      label: 'red',
      on: [
        { label: 'red', score: expect.closeTo(p(0.5), 4) },
        { label: 'blue', score: expect.closeTo(p(0.25), 4) },
      ],
    });
    expect(l.top.map((t: { label: string }) => t.label)).toEqual(['red', 'blue', 'green']);
  });
});
