import { describe, expect, it } from 'vitest';
import { checkModelIo } from '../../src/inference/check.js';
import { manifestSchema } from '../../src/inference/manifest.js';

/** The manifest's pipeline fields: detector keypoints (yolov8-pose layout) and the privacy mark. */

const base = {
  name: 'face',
  version: '1',
  task: 'detect',
  sha256: 'a'.repeat(64),
  input: { name: 'image', width: 64, height: 64, resize: 'letterbox' },
  labels: ['face'],
};

describe('manifest keypoints and privacy', () => {
  it('reads keypoint names and privacy: person; privacy defaults to none', () => {
    const m = manifestSchema.parse({ ...base, detect: { format: 'yolov8', keypoints: ['left_eye', 'right_eye'] }, privacy: 'person' });
    expect(m.detect.keypoints).toEqual(['left_eye', 'right_eye']);
    expect(m.privacy).toBe('person');
    expect(manifestSchema.parse(base).privacy).toBe('none');
  });

  it('refuses duplicate keypoint names, a keypoint output in the yolo layouts, and an unknown privacy', () => {
    const issues = (raw: object) => manifestSchema.safeParse(raw).error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    const kp = issues({ ...base, detect: { format: 'yolov5', keypoints: ['a', 'a'], keypointOutputs: 'kps' } });
    expect(kp).toEqual([
      'detect.keypoints: keypoint names must be unique',
      'detect.keypointOutputs: yolov5 keeps its keypoints in its one output; keypointOutputs is for boxes-scores and anchors',
    ]);
    expect(issues({ ...base, privacy: 'faces' }).map((i) => i.split(':')[0])).toEqual(['privacy']);
  });

  it('expects 4 + classes + 3 x keypoints values per anchor', () => {
    const m = manifestSchema.parse({ ...base, detect: { format: 'yolov8', keypoints: ['left_eye', 'right_eye'] } });
    const io = (c: number) => ({
      inputs: [{ name: 'image', type: 'float32', shape: [1, 3, 64, 64] }],
      outputs: [{ name: 'out', type: 'float32', shape: [1, c, 100] }],
    });
    expect(checkModelIo(m, ['face'], io(4 + 1 + 6)).problems).toEqual([]);
    expect(checkModelIo(m, ['face'], io(5)).problems).toEqual([
      'detect.keypoints: 1 labels and 2 keypoints need 11 values per box in yolov8 format (4 box + classes + 3 x 2 keypoints), the model\'s output "out" has 5 (shape [1,5,100])',
    ]);
  });
});
