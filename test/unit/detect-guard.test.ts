import { describe, expect, it } from 'vitest';
import { MAX_CANDIDATES, MAX_DETECTIONS, screen } from '../../src/inference/detect-guard.js';
import { Detector } from '../../src/inference/detect.js';
import { Postprocessor } from '../../src/inference/engine.js';
import { manifestSchema } from '../../src/inference/manifest.js';
import type { ModelPackage } from '../../src/inference/package.js';
import { geometryFor } from '../../src/inference/preprocess.js';
import type { DetectInference } from '../../src/inference/types.js';

/**
 * Issue 21 rows 4 and 14: a broken or hostile detector (NaN, infinite or negative boxes, or a
 * flood of them) gets bounded work per frame, never publishes a box that is not a finite rectangle,
 * and tells privacy that the frame must be hidden whole.
 */

const g = geometryFor({ width: 100, height: 100, resize: 'stretch' }, 100, 100);

function pkg(privacy: 'none' | 'person', maxDetections = 100): ModelPackage {
  const manifest = manifestSchema.parse({
    name: 'hostile',
    version: '1',
    task: 'detect',
    sha256: 'a'.repeat(64),
    input: { name: 'images', width: 100, height: 100 },
    labels: ['face'],
    detect: { format: 'boxes-scores', boxes: 'b', scores: 's', maxDetections, classAware: false },
    privacy,
  });
  return { dir: '/nowhere', manifest, labels: ['face'], modelPath: '/nowhere/model.onnx', format: 'onnx' };
}

/** boxes-scores outputs (xyxy, input pixels) for the given boxes and scores. */
function outputs(boxes: number[][], scores: number[]) {
  return {
    b: { data: Float32Array.from(boxes.flat()), dims: [1, boxes.length, 4] },
    s: { data: Float32Array.from(scores), dims: [1, scores.length, 1] },
  };
}

describe('detector bounds', () => {
  it('a NaN box, an infinite one and a negative-size one are not published, and counted', () => {
    const post = new Postprocessor(pkg('none'), { boxes: ['b'], scores: ['s'] });
    const r = post.run(
      outputs(
        [
          [10, 10, 30, 30],
          [50, 50, Number.NaN, 70],
          [0, 0, Number.POSITIVE_INFINITY, 10],
          [80, 80, 60, 90],
        ],
        [0.6, 0.99, 0.98, 0.97],
      ),
      g,
    ) as DetectInference;
    expect(r.detections.map((d) => d.box)).toEqual([{ x: 10, y: 10, w: 20, h: 20 }]);
    expect(JSON.stringify(r.detections)).not.toContain('null');
    expect(r.overflow).toEqual({ invalid: 3, capped: 0 });
    expect(r.privacy).toBeUndefined();
  });

  it('privacy: person: every box kept is marked, and a box that cannot be drawn hides the whole frame', () => {
    const post = new Postprocessor(pkg('person'), { boxes: ['b'], scores: ['s'] });
    const good = post.run(
      outputs(
        [
          [10, 10, 30, 30],
          [60, 60, 80, 90],
        ],
        [0.9, 0.8],
      ),
      g,
    );
    expect(good.privacy).toEqual({
      boxes: [
        { x: 10, y: 10, w: 20, h: 20 },
        { x: 60, y: 60, w: 20, h: 30 },
      ],
      whole: false,
    });
    const bad = post.run(
      outputs(
        [
          [10, 10, 30, 30],
          [50, 50, 40, 70],
        ],
        [0.9, 0.99],
      ),
      g,
    );
    expect(bad.privacy?.whole).toBe(true);
    // Wholly outside the frame: clipped to nothing, so it cannot be drawn where it is either.
    const outside = post.run(outputs([[150, 150, 170, 170]], [0.9]), g);
    expect(outside.privacy?.whole).toBe(true);
  });

  it('privacy: person with more faces than maxDetections: the frame is hidden whole', () => {
    const post = new Postprocessor(pkg('person', 2), { boxes: ['b'], scores: ['s'] });
    const r = post.run(
      outputs(
        [
          [0, 0, 10, 10],
          [20, 20, 30, 30],
          [40, 40, 50, 50],
        ],
        [0.9, 0.8, 0.7],
      ),
      g,
    ) as DetectInference;
    expect(r.detections).toHaveLength(2);
    expect(r.privacy?.whole).toBe(true);
    expect(r.overflow).toEqual({ invalid: 0, capped: 1 });
  });

  it('100k boxes with maxDetections 10000: at most MAX_CANDIDATES go into NMS, MAX_DETECTIONS come out, the rest counted', () => {
    const n = 100_000;
    // Disjoint 1x1 boxes on a 0.1 grid (no two overlap), scores all different.
    const boxes = Array.from({ length: n }, (_, i) => {
      const x = (i % 316) * 0.3;
      const y = Math.floor(i / 316) * 0.3;
      return [x, y, x + 0.2, y + 0.2];
    });
    const scores = Array.from({ length: n }, (_, i) => 0.3 + (0.6 * i) / n);
    const post = new Postprocessor(pkg('none', 10_000), { boxes: ['b'], scores: ['s'] });
    const out = outputs(boxes, scores);
    const r = post.run(out, g) as DetectInference;
    expect(r.detections).toHaveLength(MAX_DETECTIONS);
    // The best scores are kept.
    expect(r.detections[0].score).toBeCloseTo(scores[n - 1], 5);
    // NMS saw MAX_CANDIDATES of them (the rest capped before it) and stopped at MAX_DETECTIONS:
    // its work is bounded by those two numbers, not by what the model sends.
    expect(r.overflow).toEqual({ invalid: 0, capped: n - MAX_DETECTIONS });
  });

  it('screen keeps the cap best scores in their order, ties by position', () => {
    const c = (score: number, i: number) => ({ x1: i, y1: 0, x2: i + 1, y2: 1, score, cls: 0 });
    const all = [c(0.5, 0), c(0.9, 1), c(0.5, 2), c(0.7, 3), c(0.5, 4)];
    const s = screen(all, 3);
    expect(s.candidates.map((x) => x.x1)).toEqual([0, 1, 3]);
    expect(s.capped).toBe(2);
    expect(MAX_CANDIDATES).toBeGreaterThan(MAX_DETECTIONS);
  });

  it('Detector.last says whether what it found is complete', () => {
    const d = new Detector(pkg('none').manifest.detect, 1);
    d.run({ boxes: { data: [1, 1, 2, 2], dims: [1, 1, 4] }, scores: { data: [0.9], dims: [1, 1, 1] } }, ['face'], g, 100, 100);
    expect(d.last).toEqual({ invalid: 0, capped: 0, incomplete: false });
  });
});
