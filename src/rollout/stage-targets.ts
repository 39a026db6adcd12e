import { join } from 'node:path';
import { DaemonError } from '../errors.js';
import type { InferenceEngine } from '../inference/engine.js';
import type { ModelService } from '../inference/model-service.js';
import type { Logger } from '../log.js';
import { type Args, CommandError, type ModelCommands } from '../publish/commands.js';
import type { RolloutState } from '../publish/schemas.js';
import { type RolloutDeps, type RolloutModel, RolloutService } from './service.js';
import { PackageStore } from './store.js';

/**
 * Which model a cmd/model/install or cmd/model/rollback is for: `model` (no `stage` argument: the
 * model rollout as it was), or a pipeline stage's (`stage: "eyes/eye"`). Each stage has a
 * RolloutService of its own over its own PackageStore (`<model.rollout.dir>/stages/<pipeline>.<stage>/`),
 * so the download, sha256, manifest, self-check, swap, keep and rollback are the very same code;
 * its state is retained on `model/state/<pipeline>/<stage>`. On top, a stage's package must fit
 * the stage: a detector for the first stage, an ONNX classifier for a crop stage. An installed
 * stage package is loaded at the next start while the stage's configured folder stays the same.
 */

type InstallArgs = Args<'model/install'>;
type RequestId = string | number | null;

export interface StageLookup {
  stageServices(): { key: string; service: ModelService; role: 'detector' | 'crops' }[];
}

export class RolloutTargets implements ModelCommands {
  readonly name = 'rollout';
  private readonly model: RolloutService;
  private readonly deps: Omit<RolloutDeps, 'store' | 'model' | 'publish' | 'log'> & {
    log: Logger;
    /** Publishes a stage's retained state (QoS 1) on model/state/<key>. */
    publishStage: (key: string, payload: string) => Promise<void>;
  };
  private readonly stores = new Map<string, PackageStore>();
  private readonly stages = new Map<string, RolloutService>();

  constructor(opts: { model: RolloutService } & RolloutTargets['deps']) {
    const { model, ...deps } = opts;
    this.model = model;
    this.deps = deps;
  }

  /** For StageModels: the folder to load for a stage's configured model. */
  readonly resolveStage = (pipeline: string, stage: string, configured: string): string =>
    this.store(`${pipeline}/${stage}`).effectivePath(configured);

  /** The running stages become targets (call once, after the stage models are built). */
  bindStages(lookup: StageLookup): void {
    for (const { key, service, role } of lookup.stageServices()) {
      this.stages.set(
        key,
        new RolloutService({
          ...this.deps,
          store: this.store(key),
          model: fitting(service, key, role),
          publish: (payload) => this.deps.publishStage(key, payload),
          log: this.deps.log.child({ stage: key }),
        }),
      );
    }
  }

  async start(): Promise<void> {
    await this.model.start();
    for (const s of this.stages.values()) await s.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.model.stop(), ...[...this.stages.values()].map((s) => s.stop())]);
  }

  install(a: InstallArgs, requestId: RequestId): Promise<RolloutState> {
    return this.target(a.stage).install(a, requestId);
  }

  rollback(requestId: RequestId, a?: Args<'model/rollback'>): Promise<RolloutState> {
    return this.target(a?.stage).rollback(requestId);
  }

  /** cmd/model/cancel: the download running now, whichever target (the model or a stage) runs it. */
  cancel(requestId: RequestId): RolloutState {
    for (const s of [this.model, ...this.stages.values()]) if (s.downloading) return s.cancel(requestId);
    return this.model.cancel(requestId);
  }

  /** For /status: each stage's rollout state by "<pipeline>/<stage>". */
  stageStatus(): Record<string, RolloutState> {
    return Object.fromEntries([...this.stages].map(([key, s]) => [key, s.status()]));
  }

  private target(stage: string | undefined): RolloutService {
    if (stage === undefined) return this.model;
    const s = this.stages.get(stage);
    if (!s) {
      const running = [...this.stages.keys()].join(', ') || 'none';
      const message = `stage: no running pipeline stage "${stage}" (running: ${running})`;
      throw new CommandError('BAD_REQUEST', message, [message]);
    }
    return s;
  }

  private store(key: string): PackageStore {
    let s = this.stores.get(key);
    if (!s) {
      const dir = join(this.deps.config.dir, 'stages', key.replace('/', '.'));
      s = new PackageStore({ dir, keep: this.deps.config.keep, log: this.deps.log.child({ stage: key }) });
      this.stores.set(key, s);
    }
    return s;
  }
}

/** The stage's model service, refusing (before it takes over) a package that cannot do the stage's job. */
function fitting(service: ModelService, key: string, role: 'detector' | 'crops'): RolloutModel {
  const fits = (engine: InferenceEngine) => {
    const task = engine.info.task;
    if (role === 'detector' && task !== 'detect')
      throw new DaemonError('STAGE_MODEL', `stage ${key} finds objects: its model must be a detect model (this one: ${task})`);
    if (role === 'crops' && (task !== 'classify' || !engine.inferCrops))
      throw new DaemonError('STAGE_MODEL', `stage ${key} classifies crops: its model must be an ONNX classify model (this one: ${task})`);
  };
  // Async, so a refusal rejects like a failed self-check (the host then closes the new engine).
  const checked =
    <T>(check: (e: InferenceEngine) => Promise<T>) =>
    async (e: InferenceEngine): Promise<T> => {
      fits(e);
      return await check(e);
    };
  return {
    get info() {
      return service.info;
    },
    get configuredPath() {
      return service.configuredPath;
    },
    get loadedPath() {
      return service.loadedPath;
    },
    swap: (dir, check) => service.swap(dir, checked(check)),
    trial: (dir, check) => service.trial(dir, checked(check)),
  };
}
