import { join } from 'node:path';
import { demoModelDir, eyesDemoDir, trayDemoDir } from '../paths.js';

/**
 * The built-in demos as config documents. `recycling` (the default, no config at all) is the
 * schema's defaults; `eyes` (`edge-inferd run --demo eyes`) is a face -> eye pipeline on generated
 * kiosk frames: one camera, its assessments on `<camera>/event`; `tray` is an item detector then
 * the recycling classifier (the default demo's model) on each item's box crop, on generated trays
 * with several items.
 */
export const DEMOS = ['recycling', 'eyes', 'tray'] as const;
export type DemoName = (typeof DEMOS)[number];

export function demoConfig(name: DemoName): Record<string, unknown> {
  if (name === 'recycling') return {};
  if (name === 'tray') return trayDemo();
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
      kiosk: { uri: `images://${join(eyesDemoDir, 'samples')}`, fps: 5, pipeline: 'eyes', aggregate: { window: 10, minFrames: 3 } },
    },
  };
}

function trayDemo(): Record<string, unknown> {
  return {
    pipelines: {
      tray: [
        { name: 'items', model: join(trayDemoDir, 'item'), minScore: 0.5, maxObjects: 6 },
        { name: 'material', from: 'items', model: demoModelDir, regions: 'box', pad: 0.05, square: true, quality: { minSidePx: 24 } },
      ],
    },
    cameras: {
      // Each tray stays 4 frames, then the tray is empty for 2: maxMissed 1 ends its tracks there.
      tray: {
        uri: `images://${join(trayDemoDir, 'samples')}`,
        fps: 5,
        pipeline: 'tray',
        aggregate: { window: 4, minFrames: 3, maxMissed: 1 },
      },
    },
  };
}
