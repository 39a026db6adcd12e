/** Plain data of the decide stage: per-frame observations in, decisions (events) out. */

/** What the decide stage needs from one inference. */
export interface Observation {
  label: string;
  score: number;
  /** Capture time of the frame, epoch ms (events report it; policies never compare it). */
  atMs: number;
}

export type EventType = 'change' | 'stable' | 'cleared';

/** One run of the same top-1 label on consecutive frames. */
export interface Run {
  label: string;
  sinceMs: number;
  frames: number;
}

/**
 * A decision. `sinceMs`/`frames` describe the state the event is about:
 * - change: the new run (since = this frame, frames = 1); `previous` is the run that ended (null at the first frame);
 * - stable: the label's evidence in the window (since = its oldest frame there, frames = how many there);
 * - cleared: the stable episode that ended (since = when it became stable, frames = frames it stayed stable).
 */
export interface Decision {
  type: EventType;
  label: string;
  score: number;
  atMs: number;
  sinceMs: number;
  frames: number;
  previous?: Run | null;
  /** cleared only: `evidence` (the rule stopped holding) or `paused` (the camera was paused). */
  reason?: 'evidence' | 'paused';
}

/** The label that currently meets the stable rule, after a frame. */
export interface StableState {
  label: string;
  /** Mean score of the label's frames in the window. */
  score: number;
  /** The label's frames in the window. */
  frames: number;
  window: number;
  /** When it became stable (capture time of that frame). */
  becameMs: number;
}

export interface StableRule {
  /** Frames, out of the last `n`, that must carry the label. */
  k: number;
  n: number;
  /** The mean score of those frames must reach this. */
  minScore: number;
}
