import type { Frame } from '../capture/frame.js';
import type { AggregateConfig } from '../config/pipeline.js';
import { type AggregateCounters, PipelineAggregator, type TrackDecision } from '../decide/aggregate.js';
import type { CropRequest, CropsInference } from '../inference/crop.js';
import type { Heatmap } from '../inference/explain.js';
import type { Inference, ModelInfo, PipelineObject } from '../inference/types.js';
import { type AssessmentExtras, trackEventPayload } from '../publish/payload.js';
import type { EventPayload } from '../publish/schemas.js';

/** What a pipeline camera's channel knows of its pipeline. */
export interface ChannelPipeline {
  name: string;
  aggregate: AggregateConfig;
  /** The models of its two stages now (events name them). */
  models: () => { detector?: ModelInfo; crops?: ModelInfo };
  /** Set when assessments are explained (explain: assessment, with crops included): the crop stage, asked for heatmaps. */
  explain?: (frame: Frame, request: CropRequest) => Promise<CropsInference>;
}

/** An assessment's crops and heatmaps, taken from the frame that completed it. */
export interface PendingExtras {
  crops: Record<string, Uint8Array>;
  heatmaps: Record<string, Heatmap>;
  /** explain: assessment: the heatmaps being computed for it. */
  explaining?: Promise<Record<string, Heatmap>>;
}

/**
 * A pipeline camera's decide step beside the publish policy: the aggregator sets track ids on the
 * frame's objects (before its result is built) and turns tracks into `assessment` and `cleared`
 * events. An assessment takes the crops (and, explain: every, the heatmaps) of the frame that
 * completed it; with explain: assessment the crop stage is asked for one heatmap per region, of
 * the region's assessed label, on that frame's crop.
 */
export class TrackEvents {
  readonly pipeline: ChannelPipeline;
  private aggregator: PipelineAggregator;
  private readonly extras = new WeakMap<TrackDecision, PendingExtras>();

  constructor(pipeline: ChannelPipeline) {
    this.pipeline = pipeline;
    this.aggregator = new PipelineAggregator(pipeline.aggregate);
  }

  /** Track ids onto `inf`'s objects; the decisions this frame caused. */
  observe(frame: Frame, inf: Inference): TrackDecision[] {
    if (inf.task !== 'detect' || !inf.pipeline) return [];
    const decisions = this.aggregator.observe(inf.pipeline, frame.capturedAtMs);
    for (const d of decisions) {
      if (d.type !== 'assessment') continue;
      const obj = inf.pipeline.objects.find((o) => o.track === d.track);
      if (obj) this.extras.set(d, this.take(d, obj));
    }
    return decisions;
  }

  /** The assessment's crops and heatmaps (undefined: none), waiting for the ones being computed. */
  async extrasOf(d: TrackDecision): Promise<AssessmentExtras | undefined> {
    const x = this.extras.get(d);
    if (!x) return undefined;
    const asked = x.explaining !== undefined ? await x.explaining : {};
    return { crops: x.crops, heatmaps: { ...x.heatmaps, ...asked } };
  }

  /** What the assessment has without waiting (its crops, the heatmaps of explain: every). */
  extrasNow(d: TrackDecision): AssessmentExtras | undefined {
    const x = this.extras.get(d);
    return x && { crops: x.crops, heatmaps: x.heatmaps };
  }

  /** Whether the assessment waits for heatmaps being computed. */
  explaining(d: TrackDecision): boolean {
    return this.extras.get(d)?.explaining !== undefined;
  }

  private take(d: Extract<TrackDecision, { type: 'assessment' }>, obj: PipelineObject): PendingExtras {
    const crops: Record<string, Uint8Array> = {};
    const heatmaps: Record<string, Heatmap> = {};
    const ask: { name: string; source: NonNullable<PipelineObject['regions'][number]['source']>; target: number }[] = [];
    for (const r of d.regions) {
      const cur = obj.regions.find((x) => x.name === r.name);
      if (!cur) continue;
      if (cur.cropPng) crops[r.name] = cur.cropPng;
      const target = r.label === undefined ? -1 : d.labels.indexOf(r.label);
      if (cur.heatmap && cur.heatmap.target === target) heatmaps[r.name] = cur.heatmap;
      else if (this.pipeline.explain && cur.source && target >= 0) ask.push({ name: r.name, source: cur.source, target });
    }
    const explain = this.pipeline.explain;
    if (!explain || !ask.length) return { crops, heatmaps };
    // All regions of one object come from the same frame: one request, one batched run.
    const { frame, scale } = ask[0].source;
    const explaining = explain(frame, {
      rects: ask.map((a) => a.source.rect),
      scale,
      quality: { minSidePx: 0, minSharpness: 0 },
      explain: ask.map((a) => a.target),
    }).then((out) => Object.fromEntries(ask.flatMap((a, i) => (out.crops[i]?.heatmap ? [[a.name, out.crops[i].heatmap]] : []))));
    return { crops, heatmaps, explaining };
  }

  /** The camera was paused: every track ends. */
  reset(atMs: number): TrackDecision[] {
    return this.aggregator.reset(atMs);
  }

  counters(): AggregateCounters & { name: string } {
    return { name: this.pipeline.name, ...this.aggregator.counters() };
  }

  payload(args: {
    deviceId: string;
    camera: string;
    seq: number;
    decision: TrackDecision;
    frame?: Frame;
    nowMs: number;
    extras?: AssessmentExtras;
  }): EventPayload | undefined {
    const { detector, crops } = this.pipeline.models();
    if (!detector) return undefined;
    return trackEventPayload({ ...args, pipeline: this.pipeline.name, model: detector, stageModel: crops });
  }
}
