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
  });
});
