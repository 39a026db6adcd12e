import { describe, expect, it } from 'vitest';
import { boxIou, IouTracker } from '../../src/decide/tracker.js';

/** The IoU tracker: ids follow a subject that moves, a new subject gets a new id, unseen tracks end. */

describe('IoU tracker', () => {
  it('keeps the id while a subject moves 30 % of its size per frame, in any direction', () => {
    for (const [dx, dy] of [
      [0.3, 0],
      [0, 0.3],
      [0.3, 0.3],
      [-0.3, 0.3],
      [-0.3, -0.3],
    ]) {
      const t = new IouTracker({ iou: 0.2, maxMissed: 2 });
      let box = { x: 500, y: 500, w: 100, h: 140 };
      const ids = [];
      for (let i = 0; i < 10; i++) {
        ids.push(t.update([box]).ids[0]);
        box = { ...box, x: box.x + dx * box.w, y: box.y + dy * box.h };
      }
      expect(ids, `moving ${dx},${dy}`).toEqual(new Array(10).fill(1));
    }
  });

  it('gives a new subject a new id (never reused), and ends a track unseen for more than maxMissed frames', () => {
    const t = new IouTracker({ iou: 0.2, maxMissed: 2 });
    const a = { x: 0, y: 0, w: 100, h: 100 };
    const b = { x: 300, y: 0, w: 100, h: 100 };
    expect(t.update([a])).toEqual({ ids: [1], ended: [] });
    expect(t.update([b, a])).toEqual({ ids: [2, 1], ended: [] });
    expect(t.update([b]).ended).toEqual([]);
    expect(t.update([b]).ended).toEqual([]);
    const third = t.update([b]);
    expect(third.ids).toEqual([2]);
    expect(third.ended.map((x) => x.id)).toEqual([1]);
    // The subject comes back at its old place: a new track, a new id.
    expect(t.update([a, b]).ids).toEqual([3, 2]);
  });

  it('matches best overlap first when two subjects are close', () => {
    const t = new IouTracker({ iou: 0.1, maxMissed: 0 });
    t.update([
      { x: 0, y: 0, w: 100, h: 100 },
      { x: 60, y: 0, w: 100, h: 100 },
    ]);
    // Both move right by 30: the box at 90 overlaps track 2 (at 60) most, the one at 30 track 1.
    expect(
      t.update([
        { x: 90, y: 0, w: 100, h: 100 },
        { x: 30, y: 0, w: 100, h: 100 },
      ]).ids,
    ).toEqual([2, 1]);
    expect(boxIou({ x: 0, y: 0, w: 10, h: 10 }, { x: 5, y: 0, w: 10, h: 10 })).toBeCloseTo(50 / 150, 9);
    // Offset vertically: 10 x 4 overlap of two 10 x 10 boxes.
    expect(boxIou({ x: 0, y: 0, w: 10, h: 10 }, { x: 0, y: 6, w: 10, h: 10 })).toBeCloseTo(40 / 160, 9);
    expect(boxIou({ x: 0, y: 6, w: 10, h: 10 }, { x: 0, y: 0, w: 10, h: 10 })).toBeCloseTo(40 / 160, 9);
    // Less than a unit of overlap still counts (boxes in normalised coordinates are all under 1): 2 x 0.5 of two 2 x 2 boxes.
    expect(boxIou({ x: 0, y: 0, w: 2, h: 2 }, { x: 0, y: 1.5, w: 2, h: 2 })).toBeCloseTo(1 / 7, 9);
    expect(boxIou({ x: 0.1, y: 0.1, w: 0.4, h: 0.4 }, { x: 0.1, y: 0.1, w: 0.4, h: 0.4 })).toBeCloseTo(1, 9);
  });

  it('a track that overlaps two boxes equally goes to the first of them; the other box starts a new track', () => {
    const t = new IouTracker({ iou: 0.2, maxMissed: 2 });
    expect(t.update([{ x: 100, y: 0, w: 100, h: 100 }]).ids).toEqual([1]);
    // Both moved 40 px sideways from the track, one each way: the same IoU.
    expect(
      t.update([
        { x: 140, y: 0, w: 100, h: 100 },
        { x: 60, y: 0, w: 100, h: 100 },
      ]).ids,
    ).toEqual([1, 2]);
    // The same for a later track (the third): ties go to the first box whatever the track's place.
    const u = new IouTracker({ iou: 0.2, maxMissed: 2 });
    expect(u.update([0, 1000, 2000].map((x) => ({ x, y: 0, w: 100, h: 100 }))).ids).toEqual([1, 2, 3]);
    expect(u.update([2040, 1960].map((x) => ({ x, y: 0, w: 100, h: 100 }))).ids).toEqual([3, 4]);
    // and for boxes later in the frame's list: box 0 is elsewhere, boxes 1 and 2 tie on the one track: box 1 keeps it
    const v = new IouTracker({ iou: 0.2, maxMissed: 2 });
    expect(v.update([{ x: 100, y: 0, w: 100, h: 100 }]).ids).toEqual([1]);
    expect(v.update([1000, 140, 60].map((x) => ({ x, y: 0, w: 100, h: 100 }))).ids).toEqual([2, 1, 3]);
  });

  it('matches best overlap first: a box that overlaps two tracks goes to the one it overlaps most, unless a better pair took it', () => {
    const t = new IouTracker({ iou: 0.2, maxMissed: 2 });
    expect(t.update([0, 100].map((x) => ({ x, y: 0, w: 100, h: 100 }))).ids).toEqual([1, 2]);
    // b0 at 60: IoU 40/160 with track 1, 60/140 with track 2; b1 at -10: 90/110 with track 1.
    // Best first: b1 -> 1 (.82), b0 -> 2 (.43); the weak b0-1 pair (.25) comes last and is not used.
    expect(t.update([60, -10].map((x) => ({ x, y: 0, w: 100, h: 100 }))).ids).toEqual([2, 1]);
    expect(t.live.map((k) => [k.id, k.frames, k.missed])).toEqual([
      [1, 2, 0],
      [2, 2, 0],
    ]);
  });

  it('a new track has been seen in one frame; a track seen again counts the frames, and an unseen one its misses', () => {
    const t = new IouTracker({ iou: 0.5, maxMissed: 1 });
    t.update([{ x: 0, y: 0, w: 10, h: 10 }]);
    expect(t.live.map((k) => [k.id, k.frames, k.missed])).toEqual([[1, 1, 0]]);
    t.update([{ x: 50, y: 0, w: 10, h: 10 }]);
    expect(t.live.map((k) => [k.id, k.frames, k.missed])).toEqual([
      [1, 1, 1],
      [2, 1, 0],
    ]);
    const { ended } = t.update([{ x: 51, y: 0, w: 10, h: 10 }]);
    expect(ended.map((k) => [k.id, k.frames, k.missed])).toEqual([[1, 1, 2]]);
    expect(t.live.map((k) => [k.id, k.frames, k.missed])).toEqual([[2, 2, 0]]);
  });
});
