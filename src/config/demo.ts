import { join } from 'node:path';
import { eyesDemoDir } from '../paths.js';

/**
 * The built-in demos as config documents. `recycling` (the default, no config at all) is the
 * schema's defaults; `eyes` (`edge-inferd run --demo eyes`) is a face -> eye pipeline on generated
 * kiosk frames: one camera, its assessments on `<camera>/event`, explained on the kiosk page (/kiosk/).
 */
export const DEMOS = ['recycling', 'eyes'] as const;
export type DemoName = (typeof DEMOS)[number];

export function demoConfig(name: DemoName): Record<string, unknown> {
  if (name === 'recycling') return {};
  return {
    pipelines: {
      eyes: [
        { name: 'face', model: join(eyesDemoDir, 'face'), minScore: 0.6, maxObjects: 3 },
        {
          name: 'eye',
          from: 'face',
          model: join(eyesDemoDir, 'eye-condition'),
          regions: { left: { keypoint: 'left_eye', size: 0.35 }, right: { keypoint: 'right_eye', size: 0.35 } },
          quality: { minSidePx: 16, minSharpness: 40 },
        },
      ],
    },
    cameras: {
      kiosk: {
        uri: `images://${join(eyesDemoDir, 'samples')}`,
        fps: 5,
        pipeline: 'eyes',
        aggregate: { window: 10, minFrames: 3 },
        // The kiosk page shows each eye's heatmap; crops and heatmaps stay on this device (loopback /events only).
        explain: 'assessment',
        privacy: { includeCrops: 'local' },
      },
    },
    // The example kiosk page at http://127.0.0.1:8321/kiosk/.
    http: { kiosk: true },
  };
}
