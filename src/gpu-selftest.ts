// First: ONNX Runtime telemetry off before anything can create an ORT session (src/ort-telemetry.ts).
import './ort-telemetry.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { ProviderName } from './config/schema.js';
import { errorMessage } from './errors.js';
import type { Manifest } from './inference/manifest.js';
import { loadModelPackage, modelSha256 } from './inference/package.js';
import { createSession, type EngineEvent, type ModelIdentity, providerLibraryProblem, type SessionOptions } from './inference/providers.js';

/**
 * `edge-inferd probe --gpu-selftest`: does the GPU give the CPU's answers, and how long does it take
 * to get there? The model is loaded on the CPU (the reference), then on TensorRT (engine build
 * timed, then a second load that must come from the engine cache, timed too) and on CUDA; the same
 * N generated frames run on each, and every output element of a GPU provider must be within the
 * tolerance of the CPU's.
 *
 * Exit codes: 0 every installed GPU provider passed; 1 a provider failed (load, run, or outputs out
 * of tolerance), or this machine has an NVIDIA GPU but no GPU provider installed; 3 no NVIDIA GPU
 * on this machine (the CPU is still checked and reported).
 */

export const EXIT_NO_GPU = 3;

/** Per element: |gpu - cpu| <= atol + rtol * |cpu| (numpy's allclose). TensorRT may pick FP16 kernels' neighbours; FP32 stays far inside this. */
export const TOLERANCE = { atol: 1e-3, rtol: 1e-2 } as const;

export type Verdict = 'pass' | 'fail' | 'absent';

export interface ProviderReport {
  provider: ProviderName;
  verdict: Verdict;
  detail: string;
  /** First session creation, ms (for TensorRT: includes the engine build). */
  loadMs?: number;
  /** TensorRT: the engine build, ms, and whether its EP-context model was written to the cache. */
  engineBuildMs?: number;
  engineCached?: boolean;
  /** TensorRT: the second load, ms, and whether it came from the engine cache. */
  reloadMs?: number;
  cacheHit?: boolean;
  msPerFrame?: number;
  /** Largest |gpu - cpu| over every output element of every frame, and where it stays within TOLERANCE. */
  maxAbsDiff?: number;
  withinTolerance?: boolean;
}

export interface SelftestReport {
  model: { dir: string; name: string; version: string };
  frames: number;
  tolerance: typeof TOLERANCE;
  /** NVIDIA device nodes found (empty: no GPU). */
  gpuDevices: string[];
  providers: ProviderReport[];
  verdict: 'pass' | 'fail' | 'no-gpu';
  exitCode: number;
}

export interface SelftestOptions {
  modelDir: string;
  frames?: number;
  deviceId?: number;
  intraOpThreads?: number;
  /** Where TensorRT builds its engine; default a temporary folder, removed after (the daemon's cache is not touched). */
  cacheDir?: string;
  /** For tests: where device nodes are looked for, and which providers count as the GPU's. */
  devDir?: string;
  gpuProviders?: readonly ProviderName[];
}

const GPU_NODE = /^(nvidia\d+|nvidiactl|nvmap|nvhost-.*)$/;

/** NVIDIA device nodes: /dev/nvidia0 and nvidiactl on a PC, /dev/nvmap and nvhost-* on a Jetson. */
export function nvidiaDevices(devDir = '/dev'): string[] {
  try {
    return readdirSync(devDir)
      .filter((n) => GPU_NODE.test(n))
      .sort()
      .map((n) => join(devDir, n));
  } catch {
    return [];
  }
}

/** Deterministic pseudo-random bytes (mulberry32), so every provider and every run sees the same frames. */
function pixels(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** Frame `i` as the model's input tensor, normalised as the manifest says (what preprocessing would feed it). */
export function frameTensor(input: Manifest['input'], i: number): ort.Tensor {
  const { width: w, height: h, layout, channels: C } = input;
  const shape = layout === 'NCHW' ? [1, C, h, w] : [1, h, w, C];
  const px = pixels(C * w * h, 0x5eed + i);
  if (input.dtype === 'uint8') return new ort.Tensor('uint8', px, shape);
  const data = new Float32Array(px.length);
  for (let k = 0; k < px.length; k++) {
    const c = layout === 'NCHW' ? Math.floor(k / (w * h)) : k % C;
    // One mean/std value stands for every channel.
    data[k] = (px[k] * input.scale - (input.mean[c] ?? input.mean[0])) / (input.std[c] ?? input.std[0]);
  }
  return new ort.Tensor('float32', data, shape);
}

/** Largest |got - want| over both arrays, and whether every element is within atol + rtol*|want|. */
export function compareOutputs(
  want: ArrayLike<number>,
  got: ArrayLike<number>,
  tol: { atol: number; rtol: number } = TOLERANCE,
): { maxAbsDiff: number; within: boolean } {
  if (want.length !== got.length) return { maxAbsDiff: Infinity, within: false };
  let maxAbsDiff = 0;
  let within = true;
  for (let k = 0; k < want.length; k++) {
    const d = Math.abs(got[k] - want[k]);
    if (!(d <= tol.atol + tol.rtol * Math.abs(want[k]))) within = false; // NaN fails too
    if (!(d <= maxAbsDiff)) maxAbsDiff = d;
  }
  return { maxAbsDiff, within };
}

type Outputs = Record<string, Float64Array>;

/** Runs the frames; returns each frame's outputs (as numbers) and the mean time per frame. */
async function runFrames(
  session: ort.InferenceSession,
  input: Manifest['input'],
  frames: number,
): Promise<{ outputs: Outputs[]; msPerFrame: number }> {
  const outputs: Outputs[] = [];
  let total = 0;
  for (let i = 0; i < frames; i++) {
    const feeds = { [input.name]: frameTensor(input, i) };
    const t0 = performance.now();
    const r = await session.run(feeds);
    total += performance.now() - t0;
    const o: Outputs = {};
    for (const [name, t] of Object.entries(r)) o[name] = Float64Array.from(t.data as ArrayLike<number>, Number);
    outputs.push(o);
  }
  return { outputs, msPerFrame: total / frames };
}

function compareRuns(cpu: Outputs[], gpu: Outputs[]): { maxAbsDiff: number; within: boolean } {
  let maxAbsDiff = 0;
  let within = true;
  cpu.forEach((frame, i) => {
    for (const [name, want] of Object.entries(frame)) {
      const got = gpu[i]?.[name];
      const r = got ? compareOutputs(want, got) : { maxAbsDiff: Infinity, within: false };
      maxAbsDiff = Math.max(maxAbsDiff, r.maxAbsDiff);
      within &&= r.within;
    }
  });
  return { maxAbsDiff, within };
}

const firstLine = (err: unknown) => errorMessage(err).split('\n')[0];
const ms = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);

export async function gpuSelftest(opts: SelftestOptions): Promise<SelftestReport> {
  const frames = opts.frames ?? 20;
  const pkg = await loadModelPackage(opts.modelDir);
  const model = { dir: pkg.dir, name: pkg.manifest.name, version: pkg.manifest.version };
  if (pkg.format !== 'onnx') throw new Error(`${pkg.modelPath}: the GPU self-test runs ONNX models (this package is TensorFlow.js)`);
  const identity: ModelIdentity = { path: pkg.modelPath, name: pkg.manifest.name, sha256: await modelSha256(pkg.modelPath) };
  const base: Omit<SessionOptions, 'providers'> = { deviceId: opts.deviceId, intraOpThreads: opts.intraOpThreads };
  const gpuDevices = nvidiaDevices(opts.devDir);
  const reports: ProviderReport[] = [];

  // The reference: the CPU provider, in the package itself.
  let reference: Outputs[] | undefined;
  try {
    const t0 = performance.now();
    const { session } = await createSession(identity, { ...base, providers: ['cpu'] });
    const loadMs = performance.now() - t0;
    const run = await runFrames(session, pkg.manifest.input, frames);
    await session.release();
    reference = run.outputs;
    reports.push({
      provider: 'cpu',
      verdict: 'pass',
      detail: `loaded in ${ms(loadMs)}, ${run.msPerFrame.toFixed(2)} ms/frame (the reference)`,
      loadMs,
      msPerFrame: run.msPerFrame,
    });
  } catch (err) {
    reports.push({ provider: 'cpu', verdict: 'fail', detail: firstLine(err) });
  }

  for (const provider of opts.gpuProviders ?? (['tensorrt', 'cuda'] as const)) {
    const missing = provider === 'cpu' ? undefined : providerLibraryProblem(provider);
    if (!gpuDevices.length) {
      reports.push({
        provider,
        verdict: 'absent',
        detail: `no NVIDIA GPU on this machine (no /dev/nvidia*, /dev/nvmap or /dev/nvhost-*)${missing ? `; and ${missing}` : ''}`,
      });
      continue;
    }
    if (missing) {
      reports.push({ provider, verdict: 'absent', detail: missing });
      continue;
    }
    reports.push(await checkProvider(provider, identity, base, pkg.manifest.input, frames, reference, opts.cacheDir));
  }

  // reports[0] is the CPU reference; the rest are the GPU providers.
  let verdict: SelftestReport['verdict'];
  if (!gpuDevices.length) verdict = reports[0].verdict === 'fail' ? 'fail' : 'no-gpu';
  else verdict = reports.some((r) => r.verdict === 'fail') || !reports.slice(1).some((r) => r.verdict === 'pass') ? 'fail' : 'pass';
  return {
    model,
    frames,
    tolerance: TOLERANCE,
    gpuDevices,
    providers: reports,
    verdict,
    exitCode: verdict === 'pass' ? 0 : verdict === 'no-gpu' ? EXIT_NO_GPU : 1,
  };
}

async function checkProvider(
  provider: ProviderName,
  identity: ModelIdentity,
  base: Omit<SessionOptions, 'providers'>,
  input: Manifest['input'],
  frames: number,
  reference: Outputs[] | undefined,
  cacheDirOpt: string | undefined,
): Promise<ProviderReport> {
  const cacheDir = cacheDirOpt ?? mkdtempSync(join(tmpdir(), 'edge-inferd-selftest-'));
  const events: EngineEvent[] = [];
  const r: ProviderReport = { provider, verdict: 'fail', detail: '' };
  const parts: string[] = [];
  try {
    const opts: SessionOptions = { ...base, providers: [provider], cacheDir, onEvent: (e) => events.push(e) };
    let t0 = performance.now();
    let { session } = await createSession(identity, opts);
    r.loadMs = performance.now() - t0;
    const built = events.find((e) => e.type === 'engine-build-end');
    if (built?.type === 'engine-build-end') {
      r.engineBuildMs = built.ms;
      r.engineCached = built.cached;
      parts.push(`engine built in ${ms(built.ms)}${built.cached ? '' : ' (NOT written to the cache: every start rebuilds it)'}`);
    } else {
      parts.push(`loaded in ${ms(r.loadMs)}`);
    }
    if (provider === 'tensorrt') {
      // The reload must find the engine just built: the daemon's next start depends on it.
      await session.release();
      events.length = 0;
      t0 = performance.now();
      ({ session } = await createSession(identity, opts));
      r.reloadMs = performance.now() - t0;
      r.cacheHit = events.some((e) => e.type === 'engine-cache-hit');
      parts.push(
        r.cacheHit ? `reloaded from the engine cache in ${ms(r.reloadMs)}` : `reload did NOT hit the engine cache (${ms(r.reloadMs)})`,
      );
    }
    const run = await runFrames(session, input, frames);
    await session.release();
    r.msPerFrame = run.msPerFrame;
    parts.push(`${run.msPerFrame.toFixed(2)} ms/frame`);
    if (reference) {
      const cmp = compareRuns(reference, run.outputs);
      r.maxAbsDiff = cmp.maxAbsDiff;
      r.withinTolerance = cmp.within;
      parts.push(`max |diff| vs CPU ${cmp.maxAbsDiff.toExponential(1)} ${cmp.within ? 'within' : 'OUTSIDE'} tolerance`);
    } else {
      parts.push('no CPU reference to compare with');
    }
    const ok = r.withinTolerance === true && (provider !== 'tensorrt' || (r.cacheHit === true && r.engineCached === true));
    r.verdict = ok ? 'pass' : 'fail';
    r.detail = parts.join(', ');
  } catch (err) {
    r.detail = [...parts, firstLine(err)].join(', ');
  } finally {
    if (!cacheDirOpt) rmSync(cacheDir, { recursive: true, force: true });
  }
  return r;
}

/** One verdict line per provider, then the overall verdict with its exit code. */
export function formatSelftest(r: SelftestReport): string {
  const tag: Record<Verdict, string> = { pass: 'PASS  ', fail: 'FAIL  ', absent: 'ABSENT' };
  const lines = [
    `GPU self-test: ${r.model.name} ${r.model.version} (${r.model.dir}), ${r.frames} frames, tolerance ` +
      `|gpu - cpu| <= ${r.tolerance.atol} + ${r.tolerance.rtol} * |cpu|`,
    ...r.providers.map((p) => `  ${tag[p.verdict]} ${p.provider}: ${p.detail}`),
    r.verdict === 'pass'
      ? 'verdict: pass (exit 0)'
      : r.verdict === 'no-gpu'
        ? `verdict: no GPU on this machine; the CPU provider was checked (exit ${EXIT_NO_GPU})`
        : 'verdict: FAIL (exit 1)',
  ];
  return lines.join('\n') + '\n';
}
