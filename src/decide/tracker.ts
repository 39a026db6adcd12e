import type { Box } from '../inference/types.js';

/**
 * A simple IoU tracker: each frame's boxes are matched to the live tracks greedily, best overlap
 * first; a box that overlaps no track by at least `iou` starts a new track (a new id, never
 * reused), and a track unseen for more than `maxMissed` frames ends.
 */

export interface Track {
  id: number;
  box: Box;
  /** Frames it was seen in. */
  frames: number;
  /** Consecutive frames it has not been seen. */
  missed: number;
}

export function boxIou(a: Box, b: Box): number {
  const iw = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const ih = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}

export class IouTracker {
  private readonly iou: number;
  private readonly maxMissed: number;
  private tracks: Track[] = [];
  private nextId = 1;

  constructor(opts: { iou: number; maxMissed: number }) {
    this.iou = opts.iou;
    this.maxMissed = opts.maxMissed;
  }

  get live(): readonly Track[] {
    return this.tracks;
  }

  /** Ids for this frame's boxes (in their order), and the tracks that ended with it. */
  update(boxes: readonly Box[]): { ids: number[]; ended: Track[] } {
    const pairs: [number, number, number][] = [];
    for (const [t, track] of this.tracks.entries()) {
      for (const [b, box] of boxes.entries()) {
        const o = boxIou(track.box, box);
        if (o >= this.iou) pairs.push([o, t, b]);
      }
    }
    pairs.sort((p, q) => q[0] - p[0] || p[1] - q[1] || p[2] - q[2]);
    const ids = new Array<number>(boxes.length).fill(0);
    const seen = new Set<number>();
    for (const [, t, b] of pairs) {
      if (seen.has(t) || ids[b]) continue;
      const track = this.tracks[t];
      seen.add(t);
      ids[b] = track.id;
      track.box = boxes[b];
      track.frames++;
      track.missed = 0;
    }
    const ended: Track[] = [];
    this.tracks = this.tracks.filter((track, t) => {
      if (seen.has(t)) return true;
      track.missed++;
      if (track.missed <= this.maxMissed) return true;
      ended.push(track);
      return false;
    });
    for (const [b, box] of boxes.entries()) {
      if (ids[b]) continue;
      const track = { id: this.nextId++, box, frames: 1, missed: 0 };
      this.tracks.push(track);
      ids[b] = track.id;
    }
    return { ids, ended };
  }

  /** Ends every track (a pause, a reload of the aggregation). */
  clear(): Track[] {
    const all = this.tracks;
    this.tracks = [];
    return all;
  }
}
