import type { Frame } from '../capture/frame.js';
import type { AggregateConfig } from '../config/pipeline.js';
import { type AggregateCounters, PipelineAggregator, type TrackDecision } from '../decide/aggregate.js';
import type { Inference, ModelInfo } from '../inference/types.js';
import { trackEventPayload } from '../publish/payload.js';
import type { EventPayload } from '../publish/schemas.js';

/** What a pipeline camera's channel knows of its pipeline. */
export interface ChannelPipeline {
  name: string;
  aggregate: AggregateConfig;
  /** The models of its two stages now (events name them). */
  models: () => { detector?: ModelInfo; crops?: ModelInfo };
}

/**
 * A pipeline camera's decide step beside the publish policy: the aggregator sets track ids on the
 * frame's objects (before its result is built) and turns tracks into `assessment` and `cleared`
 * events.
 */
export class TrackEvents {
  readonly pipeline: ChannelPipeline;
  private aggregator: PipelineAggregator;

  constructor(pipeline: ChannelPipeline) {
    this.pipeline = pipeline;
    this.aggregator = new PipelineAggregator(pipeline.aggregate);
  }

  /** Track ids onto `inf`'s objects; the decisions this frame caused. */
  observe(frame: Frame, inf: Inference): TrackDecision[] {
    if (inf.task !== 'detect' || !inf.pipeline) return [];
    return this.aggregator.observe(inf.pipeline, frame.capturedAtMs);
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
  }): EventPayload | undefined {
    const { detector, crops } = this.pipeline.models();
    if (!detector) return undefined;
    return trackEventPayload({ ...args, pipeline: this.pipeline.name, model: detector, stageModel: crops });
  }
}
