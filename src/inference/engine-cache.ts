import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Bookkeeping for TensorRT EP-context models. Building a TensorRT engine takes minutes on a Jetson;
 * ORT can dump the built engine wrapped in an `_ctx.onnx` model and load that later without a
 * build. One such model is kept per (model sha256, provider options, GPU, driver, TensorRT and ORT
 * versions): anything that would make the engine invalid changes the key and so the folder.
 */

export interface GpuInfo {
  name: string;
  driver: string;
  tensorrt: string;
}

const UNKNOWN = 'unknown';

/** `$CACHE_DIRECTORY` (systemd CacheDirectory=), else `$XDG_CACHE_HOME/edge-inferd`, else `~/.cache/edge-inferd`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const systemd = env.CACHE_DIRECTORY?.split(':')[0];
  if (systemd) return systemd;
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'edge-inferd');
}

function run(cmd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000, encoding: 'utf8' }, (err, stdout) => resolve(err ? undefined : stdout.trim()));
  });
}

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/local/cuda/lib64', '/usr/lib64', '/usr/local/lib'];

/** TensorRT's version from its library file name (libnvinfer.so.10.3.0), where one is installed. */
export function tensorrtVersion(dirs: readonly string[] = LIB_DIRS): string {
  for (const dir of dirs) {
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      continue;
    }
    const versions = files.map((f) => /^libnvinfer\.so\.(\d+\.\d+\.\d+)/.exec(f)?.[1]).filter((v): v is string => !!v);
    const newest = versions.sort().at(-1);
    if (newest !== undefined) return newest;
  }
  return UNKNOWN;
}

/** GPU name and driver from nvidia-smi (or the Jetson L4T release); 'unknown' where unreadable. */
export async function readGpuInfo(): Promise<GpuInfo> {
  const smi = await run('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader']);
  let [name, driver] =
    smi
      ?.split('\n')[0]
      .split(',')
      .map((s) => s.trim()) ?? [];
  if (!name && existsSync('/etc/nv_tegra_release')) {
    // Jetson: no nvidia-smi on older JetPacks; the L4T release pins the GPU driver.
    name = 'jetson';
    driver = readFileSync('/etc/nv_tegra_release', 'utf8').split('\n')[0].replace(/^#\s*/, '').trim();
  }
  return { name: name || UNKNOWN, driver: driver || UNKNOWN, tensorrt: tensorrtVersion() };
}

export function ortVersion(): string {
  try {
    return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return UNKNOWN;
  }
}

export interface CacheKeyParts {
  modelSha256: string;
  provider: 'tensorrt';
  providerOptions: Record<string, unknown>;
  gpu: GpuInfo;
  ort: string;
}

export interface EngineCachePlan {
  key: string;
  parts: CacheKeyParts;
  dir: string;
  /** The EP-context model ORT writes after a build and loads on later starts. */
  ctxPath: string;
  /** Written only after a successful build: a ctx model without it is a half-finished build. */
  metaPath: string;
  reuse: boolean;
  /** Why the cached model is not reused (absent when reuse is true). */
  reason?: string;
}

/** Stable JSON: sorted keys, so the key does not depend on property order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function cacheKey(parts: CacheKeyParts): string {
  return createHash('sha256').update(canonical(parts)).digest('hex').slice(0, 24);
}

export interface CacheMeta extends CacheKeyParts {
  key: string;
  model: string;
  builtAt: string;
  buildMs: number;
}

export function planEngineCache(cacheDir: string, modelName: string, parts: CacheKeyParts): EngineCachePlan {
  const key = cacheKey(parts);
  const safeName = modelName.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  const dir = join(cacheDir, 'tensorrt', `${safeName}-${parts.modelSha256.slice(0, 12)}-${key}`);
  const ctxPath = join(dir, 'model_ctx.onnx');
  const metaPath = join(dir, 'meta.json');
  const plan: EngineCachePlan = { key, parts, dir, ctxPath, metaPath, reuse: false };
  if (!existsSync(ctxPath)) return { ...plan, reason: 'no cached engine yet' };
  let meta: Partial<CacheMeta>;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Partial<CacheMeta>;
  } catch {
    return { ...plan, reason: 'the cached engine has no meta.json (an interrupted build)' };
  }
  if (meta.key !== key) return { ...plan, reason: `meta.json key ${String(meta.key)} does not match ${key}` };
  return { ...plan, reuse: true };
}

/** Session config entries that make the TensorRT provider dump (or not) the EP-context model. */
export function tensorrtExtra(plan: EngineCachePlan): Record<string, unknown> {
  return plan.reuse ? {} : { ep: { context_enable: '1', context_file_path: plan.ctxPath, context_embed_mode: '0' } };
}

export async function prepareBuild(plan: EngineCachePlan): Promise<void> {
  await rm(plan.dir, { recursive: true, force: true });
  await mkdir(plan.dir, { recursive: true });
}

export async function recordBuild(plan: EngineCachePlan, modelName: string, buildMs: number, now = new Date()): Promise<CacheMeta> {
  const meta: CacheMeta = { key: plan.key, model: modelName, builtAt: now.toISOString(), buildMs: Math.round(buildMs), ...plan.parts };
  await writeFile(plan.metaPath, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}

export async function discardCache(plan: EngineCachePlan): Promise<void> {
  await rm(plan.dir, { recursive: true, force: true });
}
