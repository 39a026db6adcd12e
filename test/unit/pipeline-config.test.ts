import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { eyesDemoDir } from '../../src/paths.js';

/** Pipelines in the config: every problem at once, with its path; the eyes demo config is valid. */

const face = join(eyesDemoDir, 'face');
const eye = join(eyesDemoDir, 'eye-condition');

function problems(config: Record<string, unknown>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-cfg-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, stringify(config));
  try {
    loadConfig({ file: path, env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const eyeStage = { name: 'eye', from: 'face', model: eye, regions: { left: { keypoint: 'left_eye' }, right: { keypoint: 'right_eye' } } };

describe('pipelines config', () => {
  it('accepts a face -> eye pipeline and resolves stage models against the config folder', () => {
    expect(
      problems({
        pipelines: { eyes: [{ name: 'face', model: face }, eyeStage] },
        cameras: { kiosk: { uri: 'test://ball', pipeline: 'eyes' } },
      }),
    ).toEqual([]);
  });

  it('reports a missing from, keypoint, model and pipeline, a wrong first stage and a wrong crop stage, all at once with their paths', () => {
    const p = problems({
      pipelines: {
        eyes: [
          { name: 'face', model: face },
          { ...eyeStage, regions: { left: { keypoint: 'left_eye' }, mid: { keypoint: 'nose' } } },
        ],
        lost: [
          { name: 'face', model: '/nowhere/face' },
          { name: 'eye', from: 'head', model: eye },
        ],
        inverted: [
          { name: 'eye', model: eye, from: 'face' },
          { name: 'face', model: face },
        ],
      },
      cameras: { kiosk: { uri: 'test://ball', pipeline: 'eyez' } },
    });
    expect(p).toEqual([
      'pipelines.eyes[1].regions.mid.keypoint: stage "face" has no keypoint "nose" (its manifest names left_eye, right_eye)',
      'pipelines.lost[0].model: no model package at /nowhere/face (manifest.yaml not found)',
      'pipelines.lost[1].from: no earlier stage "head" in pipeline lost (stages before it: face)',
      'pipelines.inverted[0].from: the first stage sees the whole frame; remove from (got "face")',
      `pipelines.inverted[0].model: the first stage must be a detector (task detect); ${eye} is classify`,
      `pipelines.inverted[1].model: a crop stage must be a classify or regress model; ${face} is detect`,
      'pipelines.inverted[1].from: required: the stage whose detections this stage crops (eye)',
      'cameras.kiosk.pipeline: no pipeline "eyez" (pipelines: eyes, lost, inverted)',
    ]);
  });

  it('a pipeline has exactly two stages; shapes are checked by the schema with their paths', () => {
    const p = problems({
      pipelines: {
        one: [{ name: 'face', model: face }],
        bad: [
          { name: 'face', model: face, maxObjects: 0 },
          { ...eyeStage, regions: 'boxes' },
        ],
      },
    });
    expect(p.map((x) => x.split(':')[0])).toEqual(['pipelines.one', 'pipelines.bad[0].maxObjects', 'pipelines.bad[1].regions']);
  });

  it('the eyes demo config is valid and runs the pipeline on the kiosk camera', () => {
    const c = loadConfig({ demo: 'eyes', env: {} });
    expect(c.source).toBe('built-in eyes demo');
    expect(c.cameras.kiosk.pipeline).toBe('eyes');
    expect(c.pipelines.eyes.map((s) => s.model)).toEqual([face, eye]);
  });
});
