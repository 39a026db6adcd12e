import type { AggregateConfig } from '../config/pipeline.js';
import type { Box, CropOutputs, PipelineRun } from '../inference/types.js';
import { IouTracker } from './tracker.js';
import { must } from '../errors.js';

/**
 * The decide stage of a pipeline camera: the tracker gives each detected object an id across
 * frames, and per track and region the crop stage's class scores are kept over the last `window`
 * frames the track was seen in. Crops the quality gate skipped count as skipped, never as
 * evidence. Once every region has `minFrames` good frames, or the track has been seen `window`
 * frames, the track gets its one `assessment`: per region the mean scores and the best label, or
 * `notDetected` when the region had too few good frames. A track that ends is `cleared`.
 * Multi-label and regress crop stages are averaged the same way: a multi-label region's labels
 * are on when their mean probability reaches their threshold; a regress region has mean values
 * and no label.
 */

export interface RegionAssessment {
  name: string;
  notDetected: boolean;
  /** The best class (multi-label: the best label that is on; regress: none). */
  label?: string;
  score?: number;
  /** Mean probability per label, or mean value (regress), in the stage's label order; absent when not detected. */
  scores?: number[];
  /** Multi-label: the labels whose mean reaches their threshold, best first. */
  on?: string[];
  /** Good frames averaged. */
  frames: number;
  /** Frames of the window in which the region was found (its keypoint visible). */
  seen: number;
  skipped: { small: number; blurred: number };
}

export type TrackDecision =
  | {
      type: 'assessment';
      track: number;
      label: string;
      score: number;
      atMs: number;
      sinceMs: number;
      frames: number;
      box: Box;
      labels: string[];
      /** How the regions' scores read (absent: classes). */
      outputs?: CropOutputs;
      regions: RegionAssessment[];
    }
  | {
      type: 'cleared';
      track: number;
      label: string;
      atMs: number;
      sinceMs: number;
      frames: number;
      assessed: boolean;
      reason: 'left' | 'paused';
    };

export interface AggregateCounters {
  tracks: number;
  /** Tracks held now (subjects in view or just gone): the aggregation's memory follows it, not the uptime. */
  active: number;
  assessments: number;
  cleared: number;
  crops: number;
  qualitySkipped: { small: number; blurred: number };
}

interface Entry {
  scores?: number[];
  skipped?: 'small' | 'blurred';
  notDetected?: true;
}

interface TrackState {
  id: number;
  label: string;
  sinceMs: number;
  lastMs: number;
  frames: number;
  scoreSum: number;
  assessed: boolean;
  regions: Map<string, Entry[]>;
}

export class PipelineAggregator {
  private readonly cfg: AggregateConfig;
  private readonly tracker: IouTracker;
  private readonly states = new Map<number, TrackState>();
  private readonly c: Omit<AggregateCounters, 'active'> = {
    tracks: 0,
    assessments: 0,
    cleared: 0,
    crops: 0,
    qualitySkipped: { small: 0, blurred: 0 },
  };

  constructor(cfg: AggregateConfig) {
    this.cfg = cfg;
    this.tracker = new IouTracker({ iou: cfg.iou, maxMissed: cfg.maxMissed });
  }

  /** Sets each object's track id (in place) and returns the decisions this frame caused. */
  observe(run: PipelineRun, atMs: number): TrackDecision[] {
    const { ids, ended } = this.tracker.update(run.objects.map((o) => o.box));
    const out: TrackDecision[] = [];
    for (const t of ended) out.push(this.clear(t.id, atMs, 'left'));
    for (const [i, obj] of run.objects.entries()) {
      obj.track = ids[i];
      let st = this.states.get(ids[i]);
      if (!st) {
        st = { id: ids[i], label: obj.label, sinceMs: atMs, lastMs: atMs, frames: 0, scoreSum: 0, assessed: false, regions: new Map() };
        this.states.set(st.id, st);
        this.c.tracks++;
      }
      st.frames++;
      st.scoreSum += obj.score;
      st.lastMs = atMs;
      for (const r of obj.regions) {
        const entry: Entry = r.notDetected ? { notDetected: true } : r.skipped ? { skipped: r.skipped } : { scores: r.scores };
        if (!r.notDetected) this.c.crops++;
        if (r.skipped) this.c.qualitySkipped[r.skipped]++;
        const list = st.regions.get(r.name) ?? [];
        list.push(entry);
        if (list.length > this.cfg.window) list.shift();
        st.regions.set(r.name, list);
      }
      if (st.assessed) continue;
      const regions = [...st.regions.entries()].map(([name, list]) => this.assess(name, list, run.labels, run.outputs));
      if (regions.every((r) => !r.notDetected) || st.frames >= this.cfg.window) {
        st.assessed = true;
        this.c.assessments++;
        out.push({
          type: 'assessment',
          track: st.id,
          label: st.label,
          score: st.scoreSum / st.frames,
          atMs,
          sinceMs: st.sinceMs,
          frames: st.frames,
          box: obj.box,
          labels: run.labels,
          ...(run.outputs ? { outputs: run.outputs } : {}),
          regions,
        });
      }
    }
    return out;
  }

  /** Ends every track (the camera was paused). */
  reset(atMs: number): TrackDecision[] {
    return this.tracker.clear().map((t) => this.clear(t.id, atMs, 'paused'));
  }

  counters(): AggregateCounters {
    return { ...this.c, active: this.states.size, qualitySkipped: { ...this.c.qualitySkipped } };
  }

  private clear(id: number, atMs: number, reason: 'left' | 'paused'): TrackDecision {
    const st = must(this.states.get(id), `track ${id}'s state`);
    this.states.delete(id);
    this.c.cleared++;
    return {
      type: 'cleared',
      track: id,
      label: st.label,
      atMs: reason === 'left' ? st.lastMs : atMs,
      sinceMs: st.sinceMs,
      frames: st.frames,
      assessed: st.assessed,
      reason,
    };
  }

  private assess(name: string, list: readonly Entry[], labels: readonly string[], outputs?: CropOutputs): RegionAssessment {
    const good = list.flatMap((e) => (e.scores ? [e.scores] : []));
    const skipped = {
      small: list.filter((e) => e.skipped === 'small').length,
      blurred: list.filter((e) => e.skipped === 'blurred').length,
    };
    const seen = list.filter((e) => !e.notDetected).length;
    if (good.length < this.cfg.minFrames) return { name, notDetected: true, frames: good.length, seen, skipped };
    const L = good[0].length;
    const mean = new Array<number>(L).fill(0);
    for (const scores of good) for (let i = 0; i < L; i++) mean[i] += scores[i] / good.length;
    const common = { name, notDetected: false, scores: mean, frames: good.length, seen, skipped };
    if (outputs?.kind === 'values') return common;
    if (outputs?.kind === 'multi-label') {
      const on = mean.flatMap((x, i) => (x >= outputs.thresholds[i] ? [i] : [])).sort((a, b) => mean[b] - mean[a] || a - b);
      const first = on.length ? { label: labels[on[0]] ?? `class_${on[0]}`, score: mean[on[0]] } : {};
      return { ...common, ...first, on: on.map((i) => labels[i] ?? `class_${i}`) };
    }
    let best = 0;
    for (let i = 1; i < L; i++) if (mean[i] > mean[best]) best = i;
    return {
      name,
      notDetected: false,
      label: labels[best] ?? `class_${best}`,
      score: mean[best],
      scores: mean,
      frames: good.length,
      seen,
      skipped,
    };
  }
}
