// First: ONNX Runtime telemetry off before anything can create an ORT session (src/ort-telemetry.ts).
import '../ort-telemetry.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import type { ProviderName } from '../config/schema.js';
import { DaemonError, errorMessage } from '../errors.js';
import {
  discardCache,
  type EngineCachePlan,
  type GpuInfo,
  ortVersion,
  planEngineCache,
  prepareBuild,
  readGpuInfo,
  recordBuild,
  tensorrtExtra,
} from './engine-cache.js';

/**
 * The execution-provider chain. onnxruntime-node treats a provider whose libraries are missing as a
 * hard error, not a fallback, so we try one provider per session and move on, keeping each reason.
 * TensorRT sessions go through the EP-context cache (engine-cache.ts).
 */

export const AUTO_CHAIN: readonly ProviderName[] = ['tensorrt', 'cuda', 'cpu'];

/** ORT execution providers, and the TF.js backends (tfjs.ts) reported the same way. */
export type BackendName = ProviderName | 'tfjs-node-gpu' | 'tfjs-node' | 'tfjs-wasm';

export interface ProviderAttempt {
  provider: BackendName;
  ok: boolean;
  error?: string;
  ms: number;
}

/** What the engine reports while it loads; health/systemd code uses the build events to extend timeouts. */
export type EngineEvent =
  /** ONNX Runtime starts building a session (a synchronous call in the worker: seconds for a large model). */
  | { type: 'session-create-start'; provider: ProviderName }
  | { type: 'provider-attempt'; attempt: ProviderAttempt }
  | { type: 'engine-build-start'; provider: 'tensorrt'; model: string; key: string; ctxPath: string; reason: string }
  | {
      type: 'engine-build-end';
      provider: 'tensorrt';
      model: string;
      key: string;
      ctxPath: string;
      ok: boolean;
      ms: number;
      cached: boolean;
      error?: string;
    }
  | { type: 'engine-cache-hit'; provider: 'tensorrt'; model: string; key: string; ctxPath: string }
  | { type: 'engine-cache-invalid'; provider: 'tensorrt'; model: string; ctxPath: string; error: string };

export interface SessionResult {
  session: ort.InferenceSession;
  provider: ProviderName;
  attempts: ProviderAttempt[];
  /** The TensorRT cache entry used, when TensorRT was tried. */
  engineCache?: EngineCachePlan;
}

export interface SessionOptions {
  providers: 'auto' | readonly ProviderName[];
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Let ORT's intra-op threads spin-wait for work (ORT's default, true). */
  spinning?: boolean;
  /** GPU for TensorRT/CUDA (the only provider option onnxruntime-node passes through). */
  deviceId?: number;
  /** Where TensorRT EP-context models are kept; without it TensorRT builds its engine every start. */
  cacheDir?: string;
  onEvent?: (e: EngineEvent) => void;
}

/** Identifies the model for the TensorRT cache; needed only when TensorRT is in the chain. */
export interface ModelIdentity {
  path: string;
  name: string;
  sha256: string;
}

/**
 * onnxruntime-node loads GPU providers from shared libraries beside its binding; they are absent
 * unless its install script ran with ONNXRUNTIME_NODE_INSTALL=cuda12 (docs/gpu.md; on a Jetson,
 * built from source). Checking the file first gives a reason a technician can act on instead of
 * ORT's stderr noise.
 */
export function providerLibraryProblem(provider: ProviderName): string | undefined {
  if (provider === 'cpu') return undefined;
  let bindingDir: string;
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    bindingDir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined; // unknown layout: let ORT try and report
  }
  const lib = join(bindingDir, `libonnxruntime_providers_${provider}.so`);
  if (process.platform === 'linux' && !existsSync(lib)) {
    return (
      `${lib} is not installed (x86_64: ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js in ` +
      `node_modules/onnxruntime-node, see docs/gpu.md; Jetson: build onnxruntime-node from source with TensorRT)`
    );
  }
  return undefined;
}

export function chainOf(providers: SessionOptions['providers']): readonly ProviderName[] {
  return providers === 'auto' ? AUTO_CHAIN : providers;
}

function baseOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
    ...(opts.interOpThreads ? { interOpNumThreads: opts.interOpThreads } : {}),
    ...(opts.spinning === false ? { extra: NO_SPINNING } : {}),
  };
}

/** Session config entries: the intra-op pool sleeps between work items instead of spinning. */
const NO_SPINNING = { session: { intra_op: { allow_spinning: '0' } } };

/** TensorRT through the EP-context cache: load the cached engine, or build it and record it. */
async function tensorrtSession(
  model: ModelIdentity,
  opts: SessionOptions,
  gpu: GpuInfo,
): Promise<{ session: ort.InferenceSession; plan?: EngineCachePlan }> {
  const deviceId = opts.deviceId ?? 0;
  const ep = { name: 'tensorrt', deviceId };
  const create = (path: string, extra: Record<string, unknown>) =>
    ort.InferenceSession.create(path, {
      ...baseOptions(opts),
      executionProviders: [ep],
      ...(Object.keys(extra).length ? { extra: { ...baseOptions(opts).extra, ...extra } } : {}),
    });
  if (!opts.cacheDir) return { session: await create(model.path, {}) };

  let plan = planEngineCache(opts.cacheDir, model.name, {
    modelSha256: model.sha256,
    provider: 'tensorrt',
    providerOptions: { deviceId },
    gpu,
    ort: ortVersion(),
  });
  const base = { provider: 'tensorrt' as const, model: model.name, key: plan.key, ctxPath: plan.ctxPath };
  if (plan.reuse) {
    try {
      const session = await create(plan.ctxPath, {});
      opts.onEvent?.({ type: 'engine-cache-hit', ...base });
      return { session, plan };
    } catch (err) {
      opts.onEvent?.({
        type: 'engine-cache-invalid',
        provider: 'tensorrt',
        model: model.name,
        ctxPath: plan.ctxPath,
        error: errorMessage(err).split('\n')[0],
      });
      plan = { ...plan, reuse: false, reason: `the cached engine failed to load: ${errorMessage(err).split('\n')[0]}` };
    }
  }
  await prepareBuild(plan);
  opts.onEvent?.({ type: 'engine-build-start', ...base, reason: plan.reason ?? 'no cached engine' });
  const t0 = performance.now();
  try {
    const session = await create(model.path, tensorrtExtra(plan));
    const ms = performance.now() - t0;
    const cached = existsSync(plan.ctxPath);
    if (cached) await recordBuild(plan, model.name, ms);
    opts.onEvent?.({ type: 'engine-build-end', ...base, ok: true, ms, cached });
    return { session, plan };
  } catch (err) {
    await discardCache(plan);
    opts.onEvent?.({
      type: 'engine-build-end',
      ...base,
      ok: false,
      ms: performance.now() - t0,
      cached: false,
      error: errorMessage(err).split('\n')[0],
    });
    throw err;
  }
}

export async function createSession(model: ModelIdentity, opts: SessionOptions): Promise<SessionResult> {
  const attempts: ProviderAttempt[] = [];
  const notInstalled: ProviderName[] = [];
  const record = (a: ProviderAttempt) => {
    attempts.push(a);
    opts.onEvent?.({ type: 'provider-attempt', attempt: a });
  };
  for (const provider of chainOf(opts.providers)) {
    const t0 = performance.now();
    const missing = providerLibraryProblem(provider);
    if (missing) {
      notInstalled.push(provider);
      record({ provider, ok: false, error: missing, ms: 0 });
      continue;
    }
    opts.onEvent?.({ type: 'session-create-start', provider });
    try {
      let session: ort.InferenceSession;
      let engineCache: EngineCachePlan | undefined;
      if (provider === 'tensorrt') {
        ({ session, plan: engineCache } = await tensorrtSession(model, opts, await readGpuInfo()));
      } else {
        const ep = provider === 'cuda' ? { name: 'cuda', deviceId: opts.deviceId ?? 0 } : 'cpu';
        session = await ort.InferenceSession.create(model.path, { ...baseOptions(opts), executionProviders: [ep] });
      }
      record({ provider, ok: true, ms: performance.now() - t0 });
      return { session, provider, attempts, ...(engineCache ? { engineCache } : {}) };
    } catch (err) {
      record({ provider, ok: false, error: errorMessage(err).split('\n')[0], ms: performance.now() - t0 });
    }
  }
  // The cause worth reading first is what ONNX Runtime said of the model (a truncated or foreign
  // file fails the same way on every provider); providers that are merely not installed go last, short.
  const tried = attempts.filter((a) => !notInstalled.includes(a.provider as ProviderName));
  if (!tried.length) {
    throw new DaemonError(
      'MODEL_LOAD',
      `${model.path}: no execution provider could load the model: ${attempts.map((a) => `${a.provider}: ${a.error}`).join('; ')}`,
    );
  }
  const skipped = notInstalled.length ? ` (not installed, not tried: ${notInstalled.join(', ')})` : '';
  const causes = tried.map((a) => (tried.length > 1 ? `${a.provider}: ${a.error}` : a.error)).join('; ');
  throw new DaemonError('MODEL_LOAD', `${model.path}: ONNX Runtime cannot load the model: ${causes}${skipped}`);
}
