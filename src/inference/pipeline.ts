import sharp from 'sharp';
import type { Frame } from '../capture/frame.js';
import { packedRgb } from '../capture/pixels.js';
import type { PipelineConfig, StageConfig } from '../config/pipeline.js';
import { DaemonError, must } from '../errors.js';
import { type CropRequest, type CropResult, type CropsInference, cropView } from './crop.js';
import type { InferHooks } from './engine.js';
import type { ExplainMode } from './explain.js';
import { planRegions, unmirror } from './regions.js';
import type { DetectInference, Detection, Inference, ModelInfo, PipelineObject, RegionResult } from './types.js';

/**
 * One camera's pipeline: the detector on the whole frame, then the crop stage on the regions of
 * each detection (boxes or keypoint squares), taken from the same full-resolution frame. The
 * result is the detector's Inference with the objects and per-stage timings added; tracking and
 * aggregation over frames are the decide stage's.
 */

/** A stage's model as the runner uses it (a ModelService: hot-swappable). */
export interface StageModel {
  readonly info: ModelInfo | undefined;
  infer(frame: Frame, hooks?: InferHooks): Promise<Inference>;
  inferCrops(frame: Frame, request: CropRequest): Promise<CropsInference>;
}

export interface PipelineRunnerOptions {
  name: string;
  /** The stage settings, read at every frame (a reload may change thresholds and regions). */
  stages: () => PipelineConfig;
  models: readonly [StageModel, StageModel];
  /** The camera shows a mirror image: left/right keypoints are swapped back to the subject's. */
  mirror?: boolean;
  /** Attach each classified crop as PNG (privacy.includeCrops: true, or local: the sink keeps them on the device). */
  includeCrops?: boolean | 'local';
  /**
   * With includeCrops `local`: whether anyone on this device would be shown them now (a loopback
   * client of GET /events, the kiosk page), read at every frame. While nobody is, the frame is run
   * as without crops: no PNG encoded, no heatmap, no source kept for one. Default: always.
   */
  localWanted?: () => boolean;
  /**
   * every: each classified crop gets an occlusion heatmap (in the same worker call); assessment:
   * each classified region keeps a reference to its crop (RegionResult.source) so that the decide
   * stage can have an assessment explained. Only while crops are included: heatmaps go where crops go.
   */
  explain?: ExplainMode | (() => ExplainMode);
  /** Tests: force one session.run per crop. */
  batch?: CropRequest['batch'];
}

export class PipelineRunner {
  readonly name: string;
  private readonly opts: PipelineRunnerOptions;

  constructor(opts: PipelineRunnerOptions) {
    this.name = opts.name;
    this.opts = opts;
  }

  async infer(frameIn: Frame, hooks: InferHooks = {}): Promise<Inference> {
    const [first, second] = this.opts.stages();
    // The crops are taken after the detector has answered, by which time the camera may have
    // reused its buffer for the next frame: this frame's pixels are kept for the crop stage.
    const frame: Frame = { ...frameIn, data: frameIn.data.slice() };
    // Crops come from the full-resolution twin when capture scaled the frame for the detector
    // (`full`, `sourceWidth`: set by a scaling capture), else from the frame itself.
    const scaled = frameIn as Frame & { full?: Frame; sourceWidth?: number };
    const source = scaled.full ? { ...scaled.full, data: scaled.full.data.slice() } : frame;
    const scale = source.width / (scaled.sourceWidth ?? frameIn.width);
    const det = await this.opts.models[0].infer(frame, hooks);
    if (det.task !== 'detect')
      throw new DaemonError(
        'STAGE_TASK',
        `pipeline ${this.name}: stage ${first.name} must be a detector (task detect); ${det.model.name} is ${det.task}`,
      );
    const detections = this.select(det.detections, first);
    const plans = detections.map((d) => planRegions(d, second));
    const rects = plans.flat().flatMap((p) => (p.rect ? [p.rect] : []));
    const include = this.included();
    // Read at every frame: a reload of the stage's explain applies from the next one.
    const mode = (typeof this.opts.explain === 'function' ? this.opts.explain() : this.opts.explain) ?? 'off';
    // POST /infer?explain=1 explains every crop whatever the camera's settings.
    const every = hooks.explain === true || (mode === 'every' && include !== false);
    const crops = rects.length
      ? await this.opts.models[1].inferCrops(source, {
          rects,
          scale,
          quality: second.quality,
          batch: this.opts.batch,
          ...(every ? { explain: true as const } : {}),
        })
      : undefined;
    const keepSource = mode === 'assessment' && include !== false;
    let k = 0;
    const objects: PipelineObject[] = [];
    for (const [i, d] of detections.entries()) {
      const regions: RegionResult[] = [];
      for (const p of plans[i]) {
        const c = p.rect ? crops?.crops[k++] : undefined;
        regions.push(c ? await this.region(p.name, c, source, scale, include, keepSource) : { name: p.name, notDetected: true });
      }
      objects.push({ ...d, regions });
    }
    const cropStage = this.opts.models[1].info;
    const skipped = crops?.crops.filter((c) => c.skipped).length ?? 0;
    const lat = crops?.latencyMs ?? { preprocess: 0, inference: 0, postprocess: 0 };
    const stages = [
      { name: first.name, model: det.model, latencyMs: det.latencyMs },
      ...(cropStage
        ? [
            {
              name: second.name,
              model: cropStage,
              latencyMs: lat,
              crops: rects.length,
              classified: rects.length - skipped,
              skipped,
              runs: crops?.runs ?? 0,
            },
          ]
        : []),
    ];
    const latencyMs = {
      preprocess: det.latencyMs.preprocess + lat.preprocess,
      inference: det.latencyMs.inference + lat.inference,
      postprocess: det.latencyMs.postprocess + lat.postprocess,
    };
    const out: DetectInference = {
      ...det,
      detections,
      latencyMs,
      pipeline: { name: this.name, labels: crops?.labels ?? [], ...(crops ? { outputs: crops.outputs } : {}), objects, stages },
    };
    return out;
  }

  private select(all: Detection[], stage: StageConfig): Detection[] {
    const min = stage.minScore;
    let dets = min === undefined ? all : all.filter((d) => d.score >= min);
    if (stage.maxObjects !== undefined) dets = dets.slice(0, stage.maxObjects);
    return this.opts.mirror ? dets.map((d) => (d.keypoints ? { ...d, keypoints: unmirror(d.keypoints) } : d)) : dets;
  }

  /** This frame's includeCrops: `local` counts as false while no one on the device would be shown them. */
  private included(): boolean | 'local' {
    const include = this.opts.includeCrops ?? false;
    return include === 'local' && this.opts.localWanted && !this.opts.localWanted() ? false : include;
  }

  private async region(
    name: string,
    c: CropResult,
    source: Frame,
    scale: number,
    include: boolean | 'local',
    keepSource: boolean,
  ): Promise<RegionResult> {
    const r: RegionResult = {
      name,
      box: c.box,
      sidePx: c.sidePx,
      sharpness: Math.round(c.sharpness * 10) / 10,
      ...(c.skipped ? { skipped: c.skipped } : {}),
      ...(c.scores ? { scores: c.scores } : {}),
      ...(c.points ? { points: this.opts.mirror ? unmirror(c.points) : c.points } : {}),
      ...(c.heatmap ? { heatmap: c.heatmap } : {}),
    };
    if (include && !c.skipped) r.cropPng = await cropPng(source, c, scale);
    // Not enumerable: it never travels (structured clone, JSON); the decide stage reads it on this thread.
    if (keepSource && !c.skipped) Object.defineProperty(r, 'source', { value: { frame: source, rect: c.box, scale }, enumerable: false });
    return r;
  }
}

/** The crop's pixels as PNG (privacy.includeCrops only). */
async function cropPng(frame: Frame, c: CropResult, scale: number): Promise<Uint8Array> {
  const { view } = must(cropView(frame, c.box, scale), 'the crop view');
  const { data, channels } = packedRgb(view);
  const png = await sharp(data, { raw: { width: view.width, height: view.height, channels } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
