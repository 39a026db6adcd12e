import type { ScaleTarget } from '../capture/uri.js';
import type { Frame } from '../capture/frame.js';
import type { Clock } from '../clock.js';
import type { LiveReloadable, ReloadRefusal } from '../component.js';
import { type AggregateConfig, aggregateSchema, findsPeople, type PipelineConfig } from '../config/pipeline.js';
import type { ConfigChange } from '../config/reload.js';
import type { CameraConfig, Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CropRequest, CropsInference } from './crop.js';
import type { InferHooks } from './engine.js';
import type { ExplainMode } from './explain.js';
import { type ModelListener, ModelService, type ModelStatus } from './model-service.js';
import { PipelineRunner } from './pipeline.js';
import type { Inference, ModelInfo } from './types.js';
import { must } from '../errors.js';

/**
 * The models of the pipelines the enabled cameras run: one ModelService per stage (each its own
 * inference worker, loaded and hot-swapped on its own), and one PipelineRunner per camera. Live
 * on `pipelines.*`: a stage whose model folder changed, or whose package on disk changed, swaps
 * (the others keep running); thresholds, regions and quality apply from the next frame. Removing a
 * running pipeline, or adding or removing a stage, is refused (restart).
 */

type InferFn = (frame: Frame, hooks: InferHooks) => Promise<Inference>;

/**
 * A camera's pictures (health/redact.ts): `redact` (every detection, and everything a
 * person-finding model found, blacked out), `on` (as seen), `off` (none), or `auto` (the default:
 * what models with `privacy: person` found is blacked out, whichever model the camera runs now).
 */
export type SnapshotPrivacy = 'redact' | 'on' | 'off' | 'auto';

export interface StageStatus extends ModelStatus {
  pipeline: string;
  stage: string;
}

export class StageModels implements LiveReloadable<Record<string, PipelineConfig>> {
  readonly name = 'pipelines';
  readonly liveKeys = ['pipelines.*'];
  private pipelines: Record<string, PipelineConfig>;
  private readonly services = new Map<string, ModelService[]>();
  private readonly model: Config['model'];
  private readonly log: Logger;
  private readonly localWanted: (() => boolean) | undefined;

  /**
   * `localWanted`: whether a loopback client would be shown local copies now (PipelineRunnerOptions.localWanted).
   * `resolve`: the package folder to load for a stage's configured model (one installed over MQTT
   * overrides it, see src/rollout/stage-targets.ts); default the configured folder itself.
   */
  constructor(opts: {
    config: Config;
    log: Logger;
    listener: ModelListener;
    clock?: Clock;
    resolve?: (pipeline: string, stage: string, configured: string) => string;
    localWanted?: () => boolean;
  }) {
    const c = opts.config;
    this.localWanted = opts.localWanted;
    const resolve = opts.resolve;
    this.model = c.model;
    this.log = opts.log;
    const used = new Set(Object.values(c.cameras).flatMap((cam) => (cam.enabled && cam.pipeline ? [cam.pipeline] : [])));
    this.pipelines = Object.fromEntries(Object.entries(c.pipelines).filter(([name]) => used.has(name)));
    for (const [name, stages] of Object.entries(this.pipelines)) {
      const svcs = stages.map(
        (st) =>
          new ModelService({
            config: { ...c.model, path: st.model },
            log: opts.log.child({ pipeline: name, stage: st.name }),
            listener: opts.listener,
            clock: opts.clock,
            resolve: resolve && ((configured) => resolve(name, st.name, configured)),
          }),
      );
      this.services.set(name, svcs);
    }
  }

  async start(): Promise<void> {
    await Promise.all([...this.services.values()].flat().map((s) => s.start()));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.services.values()].flat().map((s) => s.stop()));
  }

  private readonly infers = new Map<string, InferFn>();

  /** A camera's frame -> Inference: its pipeline's runner, or `single` (the one model) without a pipeline. Kept for inferOf. */
  inferFor(camera: string, cam: Pick<CameraConfig, 'pipeline' | 'mirror' | 'privacy' | 'explain'>, single: InferFn): InferFn {
    const name = cam.pipeline;
    const include = cam.privacy?.includeCrops ?? false;
    // Heatmaps go where crops go: a one-model camera explains every result only while it includes crops.
    // With `local`, only while someone on the device would see them (localWanted, read per frame).
    const wanted = include === 'local' ? this.localWanted : undefined;
    let fn: InferFn =
      cam.explain === 'every' && include !== false
        ? (frame, hooks) => single(frame, wanted && !wanted() ? hooks : { ...hooks, explain: true })
        : single;
    if (name !== undefined) {
      const [first, second] = must(this.services.get(name), `pipeline ${name}'s models`);
      const runner = new PipelineRunner({
        name,
        stages: () => this.pipelines[name],
        models: [first, second],
        mirror: cam.mirror ?? false,
        includeCrops: include,
        ...(this.localWanted ? { localWanted: this.localWanted } : {}),
        explain: () => this.explainMode(cam),
      });
      fn = (frame, hooks) => runner.infer(frame, hooks);
    }
    this.infers.set(camera, fn);
    return fn;
  }

  /** What inferFor gave this camera (POST /infer?camera=). */
  inferOf(camera: string): InferFn | undefined {
    return this.infers.get(camera);
  }

  /**
   * A camera's infer function (inferFor), what capture scales its frames to (its first stage's
   * input, else `singleTarget`: the one model's) and, for a pipeline camera, what its channel needs
   * to track and assess.
   */
  forCamera(
    camera: string,
    cam: CameraConfig,
    single: InferFn,
    singleTarget: () => ScaleTarget | undefined,
  ): { infer: InferFn; pipeline: ReturnType<StageModels['pipelineOf']>; target: () => ScaleTarget | undefined } {
    const first = cam.pipeline === undefined ? undefined : this.services.get(cam.pipeline)?.[0];
    return {
      infer: this.inferFor(camera, cam, single),
      pipeline: this.pipelineOf(cam),
      target: first ? () => first.scaleTarget : singleTarget,
    };
  }

  /** A pipeline camera's explain mode: its own, else its crop stage's. */
  private explainMode(cam: Pick<CameraConfig, 'pipeline' | 'explain'>): ExplainMode {
    return cam.explain ?? (cam.pipeline ? this.pipelines[cam.pipeline]?.[1]?.explain : undefined) ?? 'off';
  }

  /** What a pipeline camera's channel needs to track and assess (undefined for a one-model camera). */
  pipelineOf(cam: Pick<CameraConfig, 'pipeline' | 'aggregate' | 'explain' | 'privacy'>):
    | {
        name: string;
        aggregate: AggregateConfig;
        models: () => { detector?: ModelInfo; crops?: ModelInfo };
        explain?: (frame: Frame, request: CropRequest) => Promise<CropsInference>;
      }
    | undefined {
    const name = cam.pipeline;
    if (name === undefined) return undefined;
    const second = this.services.get(name)?.[1];
    // Regions keep their source only while the runner explains at assessment (read per frame): the hook can always be there.
    const explains = (cam.privacy?.includeCrops ?? false) !== false;
    return {
      name,
      aggregate: cam.aggregate ?? aggregateSchema.parse({}),
      models: () => this.models(name),
      ...(explains && second ? { explain: (frame: Frame, request: CropRequest) => second.inferCrops(frame, request) } : {}),
    };
  }

  /** The models of a pipeline's stages now. */
  models(name: string): { detector?: ModelInfo; crops?: ModelInfo } {
    const [first, second] = this.services.get(name) ?? [];
    return { detector: first?.info, crops: second?.info };
  }

  /**
   * snapshots: the camera's choice, else redact when a stage of its pipeline finds people (manifest
   * privacy: person), else auto: each inference says whether its model finds people, so a
   * one-model camera (whose model a rollout may change) is covered too.
   */
  snapshotPrivacy(cam: Pick<CameraConfig, 'pipeline' | 'privacy'>): SnapshotPrivacy {
    if (cam.privacy?.snapshots) return cam.privacy.snapshots;
    const stages = cam.pipeline ? this.pipelines[cam.pipeline] : undefined;
    return stages?.some((st) => findsPeople(st)) ? 'redact' : 'auto';
  }

  /**
   * preview: the camera's choice, else as snapshots, but never `on` for a camera whose pipeline finds
   * people (`on` must be asked for, and is refused unless HTTP is on loopback: src/config/load.ts).
   */
  previewPrivacy(cam: Pick<CameraConfig, 'pipeline' | 'privacy'>): SnapshotPrivacy {
    if (cam.privacy?.preview) return cam.privacy.preview;
    const snap = this.snapshotPrivacy(cam);
    const stages = cam.pipeline ? this.pipelines[cam.pipeline] : undefined;
    return snap === 'on' && stages?.some((st) => findsPeople(st)) ? 'redact' : snap;
  }

  /** Every running stage's model service, as "<pipeline>/<stage>", with what it does: the detector (first) or crops. */
  stageServices(): { key: string; service: ModelService; role: 'detector' | 'crops' }[] {
    return Object.entries(this.pipelines).flatMap(([name, stages]) => {
      const svcs = this.services.get(name) ?? [];
      return stages.map((st, i) => ({ key: `${name}/${st.name}`, service: svcs[i], role: i === 0 ? 'detector' : 'crops' }) as const);
    });
  }

  status(): StageStatus[] {
    return Object.entries(this.pipelines).flatMap(([name, stages]) =>
      stages.flatMap((st, i) => {
        const s = must(this.services.get(name), `pipeline ${name}'s models`)[i].status();
        return s ? [{ pipeline: name, stage: st.name, ...s }] : [];
      }),
    );
  }

  slice(config: Config): Record<string, PipelineConfig> {
    return config.pipelines;
  }

  async apply(next: Record<string, PipelineConfig>, changes: ConfigChange[]): Promise<ReloadRefusal | undefined> {
    const refused: ConfigChange[] = [];
    const errors: string[] = [];
    for (const ch of changes) {
      const name = ch.path.split('.')[1];
      const before = this.pipelines[name];
      const after = next[name];
      // A pipeline no enabled camera runs has nothing loaded: its change takes effect with the camera's (a restart).
      if (!before) continue;
      if (!after || before.length !== after.length || before.some((st, i) => st.name !== after[i].name)) {
        refused.push(ch);
        errors.push(`${ch.path}: adding or removing a pipeline or stage needs a restart`);
      }
    }
    for (const [name, stages] of Object.entries(this.pipelines)) {
      const after = next[name];
      if (!after || refused.some((ch) => ch.path === `pipelines.${name}`)) continue;
      const svcs = must(this.services.get(name), `pipeline ${name}'s models`);
      for (const [i, st] of after.entries()) {
        const moved = st.model !== stages[i].model;
        const r = await svcs[i].apply(
          { ...this.model, path: st.model },
          moved ? [{ path: `pipelines.${name}[${i}].model`, from: stages[i].model, to: st.model }] : [],
        );
        if (r) {
          refused.push(...changes.filter((ch) => ch.path === `pipelines.${name}`));
          errors.push(r.error);
        }
      }
      if (!refused.some((ch) => ch.path === `pipelines.${name}`)) this.pipelines[name] = after;
    }
    if (!errors.length) return undefined;
    this.log.error({ errors }, 'reload: pipeline changes refused');
    return { refused, error: errors.join('; ') };
  }
}
