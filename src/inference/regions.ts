import type { StageConfig } from '../config/pipeline.js';
import type { Box, Detection, Keypoint } from './types.js';

/**
 * Where a pipeline's second stage crops a detection: the box itself (padded, optionally squared)
 * or a square around each named keypoint, sized relative to the box width. Coordinates stay in the
 * camera's full-resolution pixels; the crop code clips to the frame.
 */

export interface RegionPlan {
  name: string;
  /** Undefined: the keypoint is missing or not visible enough (the region is `notDetected`). */
  rect?: Box;
}

/** The region name of a `regions: box` stage. */
export const BOX_REGION = 'box';

export function planRegions(det: Detection, stage: Pick<StageConfig, 'regions' | 'pad' | 'square'>): RegionPlan[] {
  const b = det.box;
  if (stage.regions === 'box') {
    let w = b.w * (1 + 2 * stage.pad);
    let h = b.h * (1 + 2 * stage.pad);
    if (stage.square) w = h = Math.max(w, h);
    const cx = b.x + b.w / 2;
    const cy = b.y + b.h / 2;
    return [{ name: BOX_REGION, rect: { x: cx - w / 2, y: cy - h / 2, w, h } }];
  }
  return Object.entries(stage.regions).map(([name, r]) => {
    const kp = det.keypoints?.find((k) => k.name === r.keypoint);
    if (!kp || !(kp.score >= r.minScore)) return { name };
    const side = r.size * b.w;
    return { name, rect: { x: kp.x - side / 2, y: kp.y - side / 2, w: side, h: side } };
  });
}

/**
 * A mirrored camera (a selfie view) shows the subject's left on the image's left: a detector
 * trained on unmirrored images then names the subject's eyes the wrong way round. The keypoints
 * whose names say left or right are swapped back, so regions are always the subject's (and a
 * regress crop stage's points likewise).
 */
export function unmirror<P extends Pick<Keypoint, 'name'>>(keypoints: readonly P[]): P[] {
  const swap = (n: string) =>
    n.replace(
      /left|right|Left|Right|LEFT|RIGHT/g,
      (w) => ({ left: 'right', right: 'left', Left: 'Right', Right: 'Left', LEFT: 'RIGHT', RIGHT: 'LEFT' })[w] ?? w,
    );
  return keypoints.map((k) => ({ ...k, name: swap(k.name) }));
}
