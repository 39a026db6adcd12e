import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import type { ProviderName } from '../config/schema.js';
import { errorMessage } from '../errors.js';

/**
 * The execution-provider chain. onnxruntime-node treats a provider whose libraries are missing as a
 * hard error, not a fallback, so we try one provider per session and move on, keeping each reason.
 */

export const AUTO_CHAIN: readonly ProviderName[] = ['tensorrt', 'cuda', 'cpu'];

export interface ProviderAttempt {
  provider: ProviderName;
  ok: boolean;
  error?: string;
  ms: number;
}

export interface SessionResult {
  session: ort.InferenceSession;
  provider: ProviderName;
  attempts: ProviderAttempt[];
}

export interface SessionOptions {
  providers: 'auto' | readonly ProviderName[];
  intraOpThreads?: number;
  interOpThreads?: number;
  onAttempt?: (a: ProviderAttempt) => void;
}

/**
 * onnxruntime-node loads GPU providers from shared libraries beside its binding; they are absent
 * unless installed with ONNXRUNTIME_NODE_INSTALL=cuda12 (or built from source on Jetson). Checking
 * the file first gives a reason a technician can act on instead of ORT's stderr noise.
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
    return `${lib} is not installed (x86_64: ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci; Jetson: build onnxruntime-node from source with TensorRT)`;
  }
  return undefined;
}

export async function createSession(modelPath: string, opts: SessionOptions): Promise<SessionResult> {
  const chain = opts.providers === 'auto' ? AUTO_CHAIN : opts.providers;
  const attempts: ProviderAttempt[] = [];
  for (const provider of chain) {
    const t0 = performance.now();
    const missing = providerLibraryProblem(provider);
    if (missing) {
      const a = { provider, ok: false, error: missing, ms: 0 };
      attempts.push(a);
      opts.onAttempt?.(a);
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(modelPath, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
        ...(opts.interOpThreads ? { interOpNumThreads: opts.interOpThreads } : {}),
      });
      const a = { provider, ok: true, ms: performance.now() - t0 };
      attempts.push(a);
      opts.onAttempt?.(a);
      return { session, provider, attempts };
    } catch (err) {
      const a = { provider, ok: false, error: errorMessage(err).split('\n')[0], ms: performance.now() - t0 };
      attempts.push(a);
      opts.onAttempt?.(a);
    }
  }
  const err = new Error(
    `no execution provider could load ${modelPath}: ${attempts.map((a) => `${a.provider}: ${a.error}`).join('; ')}`,
  ) as Error & { code: string; attempts: ProviderAttempt[] };
  err.code = 'MODEL_PROVIDERS';
  err.attempts = attempts;
  throw err;
}
