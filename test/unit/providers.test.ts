import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cacheKey,
  type CacheKeyParts,
  defaultCacheDir,
  planEngineCache,
  prepareBuild,
  readGpuInfo,
  recordBuild,
  tensorrtExtra,
  tensorrtVersion,
} from '../../src/inference/engine-cache.js';
import { loadModelPackage } from '../../src/inference/package.js';
import { createSession, type EngineEvent, providerLibraryProblem } from '../../src/inference/providers.js';
import { demoModelDir } from '../../src/paths.js';

/**
 * The provider chain and the TensorRT cache bookkeeping. This machine has no GPU and no GPU
 * provider libraries, so the chain must fall back to the CPU and say why for each step; the cache
 * decisions (keys, paths, reuse) are plain code and are tested here in full.
 */

const tmp: string[] = [];
afterAll(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'trt-cache-'));
  tmp.push(d);
  return d;
};

describe('provider chain', () => {
  it.each([
    ['[tensorrt, cuda, cpu]', ['tensorrt', 'cuda', 'cpu'] as const],
    ['auto', 'auto' as const],
  ])('%s falls back to cpu here and reports why for each', async (_, providers) => {
    const pkg = await loadModelPackage(demoModelDir);
    const events: EngineEvent[] = [];
    const cacheDir = await tempDir();
    const r = await createSession(
      { path: pkg.modelPath, name: pkg.manifest.name, sha256: pkg.manifest.sha256 },
      { providers, cacheDir, onEvent: (e) => events.push(e) },
    );
    try {
      expect(r.provider).toBe('cpu');
      expect(r.attempts.map((a) => [a.provider, a.ok])).toEqual([
        ['tensorrt', false],
        ['cuda', false],
        ['cpu', true],
      ]);
      expect(r.attempts[0].error).toMatch(
        /libonnxruntime_providers_tensorrt\.so is not installed \(x86_64: ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install\.js in node_modules\/onnxruntime-node, see docs\/gpu\.md; Jetson: build onnxruntime-node from source with TensorRT\)$/,
      );
      expect(r.attempts[1].error).toMatch(/libonnxruntime_providers_cuda\.so is not installed/);
      // Providers that are not installed are never tried: only cpu gets a session build.
      expect(events.map((e) => e.type)).toEqual(['provider-attempt', 'provider-attempt', 'session-create-start', 'provider-attempt']);
      // TensorRT never got as far as an engine build, so the cache folder stays empty.
      expect(existsSync(path.join(cacheDir, 'tensorrt'))).toBe(false);
    } finally {
      await r.session.release();
    }
  });

  it('a chain without a usable provider is one error listing every reason', async () => {
    const pkg = await loadModelPackage(demoModelDir);
    const err = await createSession(
      { path: pkg.modelPath, name: 'demo', sha256: pkg.manifest.sha256 },
      { providers: ['tensorrt', 'cuda'] },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MODEL_LOAD' });
    expect((err as Error).message).toMatch(
      /no execution provider could load the model: tensorrt: .*libonnxruntime_providers_tensorrt\.so is not installed.*; cuda: .*libonnxruntime_providers_cuda\.so is not installed/,
    );
  });

  it('cpu has no library to check', () => {
    expect(providerLibraryProblem('cpu')).toBeUndefined();
  });
});

describe('TensorRT EP-context cache bookkeeping', () => {
  const parts: CacheKeyParts = {
    modelSha256: 'a'.repeat(64),
    provider: 'tensorrt',
    providerOptions: { deviceId: 0 },
    gpu: { name: 'Orin', driver: '36.4.0', tensorrt: '10.3.0' },
    ort: '1.30.0',
  };

  it('the key is stable and changes with the model, provider options, GPU, driver, TensorRT and ORT versions', () => {
    expect(cacheKey(parts)).toBe(cacheKey({ ...parts, providerOptions: { deviceId: 0 } }));
    expect(cacheKey(parts)).toMatch(/^[0-9a-f]{24}$/);
    const variants: CacheKeyParts[] = [
      { ...parts, modelSha256: 'b'.repeat(64) },
      { ...parts, providerOptions: { deviceId: 1 } },
      { ...parts, gpu: { ...parts.gpu, name: 'Xavier' } },
      { ...parts, gpu: { ...parts.gpu, driver: '35.5.0' } },
      { ...parts, gpu: { ...parts.gpu, tensorrt: '8.6.2' } },
      { ...parts, ort: '1.31.0' },
    ];
    const keys = new Set([cacheKey(parts), ...variants.map(cacheKey)]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it('builds first, reuses after a recorded build, rebuilds after an interrupted one', async () => {
    const cacheDir = await tempDir();
    const first = planEngineCache(cacheDir, 'my model/v1', parts);
    expect(first).toMatchObject({ reuse: false, reason: 'no cached engine yet' });
    expect(first.dir).toBe(path.join(cacheDir, 'tensorrt', `my_model_v1-${'a'.repeat(12)}-${first.key}`));
    expect(first.ctxPath).toBe(path.join(first.dir, 'model_ctx.onnx'));
    // Building: the session options ask TensorRT to dump the EP-context model, engine file beside it.
    expect(tensorrtExtra(first)).toEqual({ ep: { context_enable: '1', context_file_path: first.ctxPath, context_embed_mode: '0' } });

    await prepareBuild(first);
    await writeFile(first.ctxPath, 'ctx model written by ORT');
    // The process died before the build was recorded: the ctx model is not trusted.
    expect(planEngineCache(cacheDir, 'my model/v1', parts)).toMatchObject({
      reuse: false,
      reason: 'the cached engine has no meta.json (an interrupted build)',
    });

    const meta = await recordBuild(first, 'my model/v1', 61_234.5, new Date('2026-01-02T03:04:05Z'));
    expect(JSON.parse(await readFile(first.metaPath, 'utf8'))).toEqual({
      ...meta,
      key: first.key,
      buildMs: 61_235,
      builtAt: '2026-01-02T03:04:05.000Z',
      ...parts,
    });
    const second = planEngineCache(cacheDir, 'my model/v1', parts);
    expect(second).toMatchObject({ reuse: true, ctxPath: first.ctxPath });
    expect(second.reason).toBeUndefined();
    expect(tensorrtExtra(second)).toEqual({});

    // Another GPU driver: another key, another folder; the first entry stays for the old driver.
    const other = planEngineCache(cacheDir, 'my model/v1', { ...parts, gpu: { ...parts.gpu, driver: '36.5.0' } });
    expect(other).toMatchObject({ reuse: false });
    expect(other.dir).not.toBe(first.dir);

    // A meta.json from another key (copied folders, hand edits) is not trusted either.
    await writeFile(first.metaPath, JSON.stringify({ ...meta, key: 'f'.repeat(24) }));
    expect(planEngineCache(cacheDir, 'my model/v1', parts)).toMatchObject({
      reuse: false,
      reason: `meta.json key ${'f'.repeat(24)} does not match ${first.key}`,
    });

    // A rebuild starts from an empty folder.
    await prepareBuild(first);
    expect(existsSync(first.ctxPath)).toBe(false);
    expect(existsSync(first.dir)).toBe(true);
  });

  it('the cache folder defaults to systemd CacheDirectory=, then XDG, then ~/.cache', () => {
    expect(defaultCacheDir({ CACHE_DIRECTORY: '/var/cache/edge-inferd:/var/cache/other' }, '/home/k')).toBe('/var/cache/edge-inferd');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x/cache' }, '/home/k')).toBe('/x/cache/edge-inferd');
    expect(defaultCacheDir({}, '/home/k')).toBe('/home/k/.cache/edge-inferd');
  });

  it('reads the TensorRT version from the library name, and says unknown where nothing is readable', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'lib'));
    for (const f of ['libnvinfer.so', 'libnvinfer.so.10', 'libnvinfer.so.10.3.0', 'libnvinfer_plugin.so.10.3.0'])
      await writeFile(path.join(dir, 'lib', f), '');
    expect(tensorrtVersion([path.join(dir, 'missing'), path.join(dir, 'lib')])).toBe('10.3.0');
    expect(tensorrtVersion([path.join(dir, 'missing')])).toBe('unknown');
    const gpu = await readGpuInfo();
    expect(Object.keys(gpu).sort()).toEqual(['driver', 'name', 'tensorrt']);
    for (const v of Object.values(gpu)) expect(v).toMatch(/\S/);
  });
});
