import { describe, expect, it } from 'vitest';
import { CameraDecider, type PolicyConfig } from '../../src/decide/policy.js';
import { ChangeTracker, StabilityTracker } from '../../src/decide/stability.js';
import type { Decision, Observation } from '../../src/decide/types.js';
import { ManualClock } from '../helpers/clock.js';

/** Sequences whose right answers are worked out by hand in the comments. Frame i is captured at i*100 ms. */

const seq = (...items: [string, number][]): Observation[] => items.map(([label, score], i) => ({ label, score, atMs: i * 100 }));
const rule = (k: number, n: number, minScore: number) => ({ k, n, minScore });

function runStability(r: ReturnType<typeof rule>, obs: Observation[]): [number, Decision][] {
  const t = new StabilityTracker(r);
  return obs.flatMap((o, i) => t.push(o).map((d) => [i, d] as [number, Decision]));
}

describe('change', () => {
  it('A A B B B A: a change at frames 0, 2 and 5, each naming the run that ended', () => {
    const t = new ChangeTracker();
    const out = seq(['A', 0.9], ['A', 0.8], ['B', 0.7], ['B', 0.6], ['B', 0.9], ['A', 0.5]).map((o) => t.push(o));
    expect(out.map((d) => d !== undefined)).toEqual([true, false, true, false, false, true]);
    expect(out[0]).toEqual({ type: 'change', label: 'A', score: 0.9, atMs: 0, sinceMs: 0, frames: 1, previous: null });
    expect(out[2]).toEqual({
      type: 'change',
      label: 'B',
      score: 0.7,
      atMs: 200,
      sinceMs: 200,
      frames: 1,
      previous: { label: 'A', sinceMs: 0, frames: 2 },
    });
    expect(out[5]).toEqual({
      type: 'change',
      label: 'A',
      score: 0.5,
      atMs: 500,
      sinceMs: 500,
      frames: 1,
      previous: { label: 'B', sinceMs: 200, frames: 3 },
    });
  });
});

describe('stable: k of the last n frames with mean score >= minScore', () => {
  it('k=3 n=5: A becomes stable at frame 3, B replaces it at frame 5, and B is cleared at frame 7', () => {
    // 0 A.9  1 A.8  2 B.7  3 A.7 -> window A,A,B,A: A has 3, mean .8          => stable A (since 0, 3 frames)
    // 4 B.9 -> A,A,B,A,B: A still 3                                             => nothing
    // 5 B.9 -> A,B,A,B,B: A has 2 (mean .75): cleared A (stable at 300, frames 3 and 4 = 2)
    //          B has 3, mean (.7+.9+.9)/3, oldest at frame 2                   => stable B (since 200)
    // 6 C.99 -> B,A,B,B,C: B 3                                                  => nothing
    // 7 C.99 -> A,B,B,C,C: B 2 (mean .9): cleared B; C has 2 < 3              => nothing more
    const out = runStability(
      rule(3, 5, 0.6),
      seq(['A', 0.9], ['A', 0.8], ['B', 0.7], ['A', 0.7], ['B', 0.9], ['B', 0.9], ['C', 0.99], ['C', 0.99]),
    );
    expect(out.map(([i, d]) => [i, d.type, d.label])).toEqual([
      [3, 'stable', 'A'],
      [5, 'cleared', 'A'],
      [5, 'stable', 'B'],
      [7, 'cleared', 'B'],
    ]);
    const [[, stableA], [, clearedA], [, stableB], [, clearedB]] = out;
    expect(stableA).toMatchObject({ atMs: 300, sinceMs: 0, frames: 3 });
    expect(stableA.score).toBeCloseTo(0.8, 12);
    expect(clearedA).toMatchObject({ atMs: 500, sinceMs: 300, frames: 2, reason: 'evidence' });
    expect(clearedA.score).toBeCloseTo(0.75, 12);
    expect(stableB).toMatchObject({ atMs: 500, sinceMs: 200, frames: 3 });
    expect(stableB.score).toBeCloseTo(2.5 / 3, 12);
    expect(clearedB).toMatchObject({ atMs: 700, sinceMs: 500, frames: 2, reason: 'evidence' });
    expect(clearedB.score).toBeCloseTo(0.9, 12);
  });

  it('the mean score must reach minScore: three A at .5 never qualify, a fourth at .9 lifts the mean of the last three to .633', () => {
    const out = runStability(rule(2, 3, 0.6), seq(['A', 0.5], ['A', 0.5], ['A', 0.5], ['A', 0.9]));
    expect(out.map(([i, d]) => [i, d.type])).toEqual([[3, 'stable']]);
    expect(out[0][1].score).toBeCloseTo(1.9 / 3, 12);
  });

  it('a mean exactly at minScore counts (0.6 three times sums to 1.7999999999999998)', () => {
    expect(runStability(rule(3, 3, 0.6), seq(['A', 0.6], ['A', 0.6], ['A', 0.6])).map(([i, d]) => [i, d.type])).toEqual([[2, 'stable']]);
  });

  it('the incumbent stays while it holds, even when another label qualifies with a higher mean (k <= n/2)', () => {
    // k=2 n=4: A.7 B.9 A.7 -> A stable at 2; B.9 -> A 2 and B 2 both qualify: A stays
    expect(
      runStability(rule(2, 4, 0.5), seq(['A', 0.7], ['B', 0.9], ['A', 0.7], ['B', 0.9])).map(([i, d]) => [i, d.type, d.label]),
    ).toEqual([[2, 'stable', 'A']]);
  });

  it('when the incumbent clears and two labels qualify on the same frame, more frames wins, then the higher mean', () => {
    // k=2 n=5: A.9 A.9 -> stable A at 1; B.7 C.8 B.7 -> window A,A,B,C,B keeps A; C.8 -> A,B,C,B,C: A has 1,
    // B and C have 2 each, C's mean .8 beats B's .7
    const out = runStability(rule(2, 5, 0.5), seq(['A', 0.9], ['A', 0.9], ['B', 0.7], ['C', 0.8], ['B', 0.7], ['C', 0.8]));
    expect(out.map(([i, d]) => [i, d.type, d.label])).toEqual([
      [1, 'stable', 'A'],
      [5, 'cleared', 'A'],
      [5, 'stable', 'C'],
    ]);
  });

  it('two labels tied on frames: the higher mean wins even when the other sorts first; tied on the mean too, the first by name', () => {
    // k=2 n=5: X.9 X.9 -> X stable at 1; then two labels alternate, and at frame 5 the window X,?,?,?,? holds X once: cleared.
    const labelsAt5 = (a: [string, number], b: [string, number]) =>
      runStability(rule(2, 5, 0.5), seq(['X', 0.9], ['X', 0.9], a, b, a, b))
        .filter(([, d]) => d.type === 'stable')
        .map(([i, d]) => [i, d.label]);
    // B (mean .9) before A (mean .7) in the window: B
    expect(labelsAt5(['B', 0.9], ['A', 0.7])).toEqual([
      [1, 'X'],
      [5, 'B'],
    ]);
    // A and B both mean .8, A first in the window: A; B first: A all the same
    expect(labelsAt5(['A', 0.8], ['B', 0.8])).toEqual([
      [1, 'X'],
      [5, 'A'],
    ]);
    expect(labelsAt5(['B', 0.8], ['A', 0.8])).toEqual([
      [1, 'X'],
      [5, 'A'],
    ]);
  });

  it('k=1 n=1 follows the top-1 label whose score reaches minScore', () => {
    const out = runStability(rule(1, 1, 0.5), seq(['A', 0.6], ['A', 0.4], ['B', 0.9]));
    expect(out.map(([i, d]) => [i, d.type, d.label])).toEqual([
      [0, 'stable', 'A'],
      [1, 'cleared', 'A'],
      [2, 'stable', 'B'],
    ]);
  });

  it('rejects k > n', () => {
    expect(() => new StabilityTracker(rule(4, 3, 0))).toThrow('stable rule needs 1 <= k <= n (got k=4, n=3)');
  });
});

const policy = (p: Partial<PolicyConfig>): PolicyConfig => ({ policy: 'every', intervalSec: 1, stable: rule(3, 5, 0.6), ...p });
const eventsSeq = seq(['A', 0.9], ['A', 0.8], ['B', 0.7], ['A', 0.7], ['B', 0.9], ['B', 0.9], ['C', 0.99], ['C', 0.99]);

describe('publish policies', () => {
  it('every: all 8 published', () => {
    const d = new CameraDecider(policy({ policy: 'every' }), { clock: new ManualClock() });
    expect(eventsSeq.map((o) => d.observe(o).publish)).toEqual([true, true, true, true, true, true, true, true]);
  });

  it('change: the frames whose label differs from the previous frame (0, 2, 3, 4, 6); the rest counted as held back', () => {
    const d = new CameraDecider(policy({ policy: 'change' }), { clock: new ManualClock() });
    expect(eventsSeq.map((o) => d.observe(o).publish)).toEqual([true, false, true, true, true, false, true, false]);
    expect(d.counters()).toEqual({
      inferred: 8,
      published: 5,
      heldBack: 3,
      events: { change: 5, stable: 2, cleared: 2 },
      labels: { A: 3, B: 3, C: 2 },
    });
  });

  it('stable: the frames on which a label becomes stable (3 and 5)', () => {
    const d = new CameraDecider(policy({ policy: 'stable' }), { clock: new ManualClock() });
    const out = eventsSeq.map((o) => d.observe(o));
    expect(out.map((r) => r.publish)).toEqual([false, false, false, true, false, true, false, false]);
    expect(out[4].stable).toMatchObject({ label: 'A', frames: 3, window: 5, becameMs: 300 });
    expect(out[7].stable).toBeUndefined();
    // events come in the order change, cleared, stable
    expect(out[5].events.map((e) => `${e.type} ${e.label}`)).toEqual(['cleared A', 'stable B']);
    expect(out[6].events.map((e) => `${e.type} ${e.label}`)).toEqual(['change C']);
  });

  it("interval: at most one per intervalSec on the clock's monotonic time", async () => {
    // published at 0; 400 and 999 are within 1 s of it; 1000 is not (published); 1500 is within;
    // 2100 (published); 2500 and 3099 within; 3100 published, and a second frame at the same instant is not
    const times = [0, 400, 999, 1000, 1500, 2100, 2500, 3099, 3100, 3100];
    const clock = new ManualClock();
    const d = new CameraDecider(policy({ policy: 'interval', intervalSec: 1 }), { clock });
    const out: boolean[] = [];
    for (const t of times) {
      await clock.advance(t - clock.monotonic());
      out.push(d.observe({ label: 'A', score: 1, atMs: clock.now() }).publish);
    }
    expect(out).toEqual([true, false, false, true, false, true, false, false, true, false]);
    expect(d.counters()).toMatchObject({ inferred: 10, published: 4, heldBack: 6, labels: { A: 10 } });
  });

  it('a pause clears a stable label (reason paused), and the next frame is a change from nothing', () => {
    const d = new CameraDecider(policy({ policy: 'change', stable: rule(2, 2, 0.5) }), { clock: new ManualClock() });
    d.observe({ label: 'A', score: 0.9, atMs: 0 });
    d.observe({ label: 'A', score: 0.9, atMs: 100 });
    expect(d.reset(150, 'paused')).toEqual([
      { type: 'cleared', label: 'A', score: 0.9, atMs: 150, sinceMs: 100, frames: 1, reason: 'paused' },
    ]);
    expect(d.reset(160, 'paused')).toEqual([]);
    const after = d.observe({ label: 'A', score: 0.9, atMs: 200 });
    expect(after.publish).toBe(true);
    expect(after.events).toEqual([{ type: 'change', label: 'A', score: 0.9, atMs: 200, sinceMs: 200, frames: 1, previous: null }]);
    expect(d.counters().events).toEqual({ change: 2, stable: 1, cleared: 1 });
  });
});

describe('stable: the mean of the label frames, not the best one', () => {
  it('k=2 n=3 minScore .6: A .2 then A .9 is no event (mean .55 < .6, though .9 alone would pass)', () => {
    const frames = seq(['A', 0.2], ['A', 0.9]);
    const r = rule(2, 3, 0.6);
    const mean = frames.reduce((s, o) => s + o.score, 0) / frames.length;
    expect(mean).toBeLessThan(r.minScore);
    expect(Math.max(...frames.map((o) => o.score))).toBeGreaterThanOrEqual(r.minScore);
    expect(runStability(r, frames)).toEqual([]);
    // one more A .9 brings the mean of the three to 2/3: now stable, with that mean as its score
    const out = runStability(r, seq(['A', 0.2], ['A', 0.9], ['A', 0.9]));
    expect(out.map(([i, d]) => [i, d.type, d.label])).toEqual([[2, 'stable', 'A']]);
    expect(out[0][1].score).toBeCloseTo((0.2 + 0.9 + 0.9) / 3, 12);
  });
});

describe('a repeat of the label counts whatever its score', () => {
  it('change: A .9, A .3, A .1, B .8 is one run of A (3 frames), then B', () => {
    const t = new ChangeTracker();
    const frames = seq(['A', 0.9], ['A', 0.3], ['A', 0.1], ['B', 0.8]);
    const out = frames.map((o) => t.push(o));
    expect(out.map((d) => d?.label)).toEqual(['A', undefined, undefined, 'B']);
    expect(out[3]?.previous).toEqual({ label: 'A', sinceMs: frames[0].atMs, frames: 3 });
  });

  it('stable: k=3 n=3 minScore .4: A .9, A .3, A .45 is three frames of A (mean .55), so A is stable at the third', () => {
    const frames = seq(['A', 0.9], ['A', 0.3], ['A', 0.45]);
    const out = runStability(rule(3, 3, 0.4), frames);
    expect(out.map(([i, d]) => [i, d.type, d.label, d.frames])).toEqual([[2, 'stable', 'A', 3]]);
    expect(out[0][1].score).toBeCloseTo((0.9 + 0.3 + 0.45) / 3, 12);
  });
});
