import type { Decision, Observation, Run, StableRule, StableState } from './types.js';
import { must } from '../errors.js';

/**
 * Top-1 label runs: a `change` decision whenever the label differs from the previous frame's
 * (including the first frame after a start or a reset, with `previous: null`).
 */
export class ChangeTracker {
  private run: Run | undefined;

  push(o: Observation): Decision | undefined {
    const run = this.run;
    if (run && run.label === o.label) {
      run.frames++;
      return undefined;
    }
    this.run = { label: o.label, sinceMs: o.atMs, frames: 1 };
    return { type: 'change', label: o.label, score: o.score, atMs: o.atMs, sinceMs: o.atMs, frames: 1, previous: run ? { ...run } : null };
  }

  reset(): void {
    this.run = undefined;
  }
}

/**
 * The eye-screening average: a label is stable when it is the top-1 label of at least k of the
 * last n frames and the mean score of those frames is >= minScore. The stable label stays until
 * the rule stops holding for it (an incumbent is not displaced by a second label that also
 * qualifies, which only k <= n/2 allows); then `cleared`, and on the same frame another label may
 * become `stable`. Among several new candidates the one with more frames wins, then the higher
 * mean, then the label's name, so the outcome never depends on Map order.
 */
export class StabilityTracker {
  private readonly rule: StableRule;
  private readonly window: Observation[] = [];
  private current: (StableState & { stableFrames: number }) | undefined;

  constructor(rule: StableRule) {
    if (!(rule.k >= 1 && rule.k <= rule.n)) throw new RangeError(`stable rule needs 1 <= k <= n (got k=${rule.k}, n=${rule.n})`);
    this.rule = rule;
  }

  get state(): StableState | undefined {
    if (!this.current) return undefined;
    const { stableFrames: _, ...s } = this.current;
    return s;
  }

  /** Adds a frame; returns `cleared` and/or `stable` decisions, in that order. */
  push(o: Observation): Decision[] {
    this.window.push(o);
    if (this.window.length > this.rule.n) this.window.shift();
    const tally = this.tally();
    const out: Decision[] = [];
    const cur = this.current;
    if (cur) {
      const t = tally.get(cur.label);
      if (t && this.holds(t)) {
        cur.score = t.sum / t.count;
        cur.frames = t.count;
        cur.window = this.window.length;
        cur.stableFrames++;
        return out;
      }
      out.push(this.clearedDecision(o.atMs, 'evidence', t));
      this.current = undefined;
    }
    let best: { label: string; count: number; mean: number; firstMs: number } | undefined;
    for (const [label, t] of tally) {
      if (!this.holds(t)) continue;
      const mean = t.sum / t.count;
      if (!best || t.count > best.count || (t.count === best.count && (mean > best.mean || (mean === best.mean && label < best.label)))) {
        best = { label, count: t.count, mean, firstMs: t.firstMs };
      }
    }
    if (best) {
      this.current = {
        label: best.label,
        score: best.mean,
        frames: best.count,
        window: this.window.length,
        becameMs: o.atMs,
        stableFrames: 1,
      };
      out.push({ type: 'stable', label: best.label, score: best.mean, atMs: o.atMs, sinceMs: best.firstMs, frames: best.count });
    }
    return out;
  }

  /** Forgets the window; returns `cleared` (reason given) if a label was stable. */
  reset(atMs: number, reason: 'evidence' | 'paused'): Decision[] {
    const out = this.current ? [this.clearedDecision(atMs, reason, this.tally().get(this.current.label))] : [];
    this.current = undefined;
    this.window.length = 0;
    return out;
  }

  private clearedDecision(atMs: number, reason: 'evidence' | 'paused', t: { count: number; sum: number } | undefined): Decision {
    const cur = must(this.current, 'the current decision');
    return {
      type: 'cleared',
      label: cur.label,
      score: t ? t.sum / t.count : 0,
      atMs,
      sinceMs: cur.becameMs,
      frames: cur.stableFrames,
      reason,
    };
  }

  private holds(t: { count: number; sum: number }): boolean {
    // A tiny tolerance so that a mean of exactly minScore, summed in floating point, still counts.
    return t.count >= this.rule.k && t.sum / t.count >= this.rule.minScore - 1e-12;
  }

  private tally(): Map<string, { count: number; sum: number; firstMs: number }> {
    const m = new Map<string, { count: number; sum: number; firstMs: number }>();
    for (const o of this.window) {
      const t = m.get(o.label);
      if (t) {
        t.count++;
        t.sum += o.score;
      } else m.set(o.label, { count: 1, sum: o.score, firstMs: o.atMs });
    }
    return m;
  }
}
