import type { Candidate } from './outputs.js';

/**
 * The bounds every detector output passes through, whatever its format: a broken or hostile model
 * may give NaN or negative boxes, or a flood of them. A box that is not a finite rectangle is never
 * published (it would break the result's schema and could not be blacked out); at most
 * MAX_CANDIDATES boxes (the best scores) go into NMS, whose cost grows with candidates times kept
 * boxes, and at most MAX_DETECTIONS leave per frame, whatever the manifest's maxDetections says.
 * What is dropped is counted, never hidden.
 */

/** Boxes considered by NMS per frame (best scores first); the rest are counted as capped. */
export const MAX_CANDIDATES = 4096;
/** Detections published per frame (the manifest's maxDetections may ask for fewer). */
export const MAX_DETECTIONS = 300;

/** A box that can be drawn: finite corners and score, non-negative width and height. */
export function drawable(c: Pick<Candidate, 'x1' | 'y1' | 'x2' | 'y2' | 'score'>): boolean {
  return (
    Number.isFinite(c.x1) &&
    Number.isFinite(c.y1) &&
    Number.isFinite(c.x2) &&
    Number.isFinite(c.y2) &&
    !Number.isNaN(c.score) &&
    c.x2 >= c.x1 &&
    c.y2 >= c.y1
  );
}

export interface Screened {
  candidates: Candidate[];
  invalid: number;
  capped: number;
}

/** Drops the boxes that cannot be drawn, then keeps the `cap` best scores (ties: the earlier ones). */
export function screen(all: Candidate[], cap = MAX_CANDIDATES): Screened {
  const ok = all.filter(drawable);
  const invalid = all.length - ok.length;
  if (ok.length <= cap) return { candidates: ok, invalid, capped: 0 };
  // The cap-th best score, by a typed-array sort (no comparator calls), then one pass in order.
  const scores = Float64Array.from(ok, (c) => c.score).sort();
  const bar = scores[scores.length - cap];
  let above = 0;
  for (const c of ok) if (c.score > bar) above++;
  let ties = cap - above;
  const candidates: Candidate[] = [];
  for (const c of ok) {
    if (c.score > bar) candidates.push(c);
    else if (c.score === bar && ties > 0) {
      candidates.push(c);
      ties--;
    }
  }
  return { candidates, invalid, capped: ok.length - candidates.length };
}
