import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { InferenceEngine } from './engine.js';
import { defaultCacheDir } from './engine-cache.js';
import { loadModelPackage } from './package.js';
import type { EngineEvent, SessionOptions } from './providers.js';
import { WorkerEngine } from './worker-engine.js';

/** Session options from the config's model section. */
export function sessionOptions(model: Config['model'], env: NodeJS.ProcessEnv = process.env): Omit<SessionOptions, 'onEvent'> {
  return {
    providers: model.providers,
    intraOpThreads: model.intraOpThreads,
    interOpThreads: model.interOpThreads,
    spinning: model.intraOpSpinning,
    deviceId: model.gpuId,
    cacheDir: model.cacheDir ?? defaultCacheDir(env),
  };
}

/** Reads and checks the package at `dir`, then loads it into a new inference worker (warmed up). */
export async function loadEngine(
  dir: string,
  opts: Omit<SessionOptions, 'onEvent'> & { onEvent?: (e: EngineEvent) => void; onCrash?: (err: Error) => void; nice?: number },
): Promise<InferenceEngine> {
  const pkg = await loadModelPackage(dir);
  return WorkerEngine.load(pkg, opts);
}

/** One log line per engine event: provider fallbacks as warnings, engine builds with their duration. */
export function logEngineEvent(log: Logger, e: EngineEvent): void {
  switch (e.type) {
    case 'session-create-start':
      log.debug({ provider: e.provider }, 'creating the ONNX Runtime session');
      return;
    case 'provider-attempt': {
      const a = e.attempt;
      if (a.ok) log.info({ provider: a.provider, ms: Math.round(a.ms) }, 'execution provider loaded');
      else log.warn({ provider: a.provider, reason: a.error }, 'execution provider unavailable, trying the next');
      return;
    }
    case 'engine-build-start':
      log.warn(
        { model: e.model, ctxPath: e.ctxPath, key: e.key, reason: e.reason },
        'building the TensorRT engine (this can take minutes)',
      );
      return;
    case 'engine-build-end':
      if (e.ok) log.info({ model: e.model, ctxPath: e.ctxPath, ms: Math.round(e.ms), cached: e.cached }, 'TensorRT engine built');
      else log.error({ model: e.model, ms: Math.round(e.ms), err: e.error }, 'TensorRT engine build failed');
      return;
    case 'engine-cache-hit':
      log.info({ model: e.model, ctxPath: e.ctxPath }, 'TensorRT engine loaded from the cache');
      return;
    case 'engine-cache-invalid':
      log.warn({ model: e.model, ctxPath: e.ctxPath, err: e.error }, 'cached TensorRT engine unusable; rebuilding');
      return;
  }
}
