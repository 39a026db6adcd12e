import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Config } from './config/schema.js';
import { errorCode, errorMessage, must } from './errors.js';
import { INFER_CAMERA } from './health/routes/infer.js';
import { Engine, type InferenceEngine } from './inference/engine.js';
import { PipelineRunner, type StageModel } from './inference/pipeline.js';
import { decodeImage } from './inference/image.js';
import { loadEngine, logEngineEvent, sessionOptions } from './inference/load.js';
import { loadModelPackage } from './inference/package.js';
import type { Logger } from './log.js';
import { resultPayload } from './publish/payload.js';

/**
 * The command-line one-shots: `edge-inferd infer IMAGE...` (the same engine and payload as the
 * live results, one JSON line per image) and `edge-inferd build-engine` (build and cache the
 * TensorRT engine before the daemon's first start).
 */

export interface Out {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/** Exit code 0 when every image was inferred, 1 when any failed (each failure on stderr). */
export async function inferImages(config: Config, files: readonly string[], log: Logger, out: Out, camera?: string): Promise<number> {
  if (files.length === 0) {
    out.stderr('edge-inferd infer: name at least one image file\n');
    return 2;
  }
  const cam = camera === undefined ? undefined : config.cameras[camera];
  if (camera !== undefined && !cam) {
    out.stderr(`edge-inferd infer: no camera "${camera}" in ${config.source} (cameras: ${Object.keys(config.cameras).join(', ')})\n`);
    return 2;
  }
  const load = (dir: string) => loadEngine(dir, { ...sessionOptions(config.model), onEvent: (e) => logEngineEvent(log, e) });
  let engine: Pick<InferenceEngine, 'infer' | 'close'>;
  try {
    engine = cam?.pipeline ? await pipelineEngine(config, must(camera, 'the camera'), load) : await load(config.model.path);
  } catch (err) {
    // A model that does not load is a failure (1), as the README's exit codes say; 2 is for usage.
    out.stderr(`edge-inferd infer: ${errorMessage(err)}${errorCode(err) ? ` (${errorCode(err)})` : ''}\n`);
    return 1;
  }
  let failed = 0;
  try {
    for (const [i, file] of files.entries()) {
      try {
        const frame = await decodeImage(await readFile(file), { camera: INFER_CAMERA, seq: i + 1, name: basename(file) });
        const inf = await engine.infer(frame);
        out.stdout(
          JSON.stringify(
            resultPayload({ deviceId: config.deviceId, seq: i + 1, frame, inference: inf, model: inf.model, nowMs: Date.now() }),
          ) + '\n',
        );
      } catch (err) {
        failed++;
        out.stderr(`${file}: ${errorMessage(err)}${errorCode(err) ? ` (${errorCode(err)})` : ''}\n`);
      }
    }
  } finally {
    await engine.close();
  }
  return failed ? 1 : 0;
}

/** A camera's whole pipeline as one engine: its stages loaded, the runner in front (no tracking: each image stands alone). */
async function pipelineEngine(
  config: Config,
  camera: string,
  load: (dir: string) => Promise<InferenceEngine>,
): Promise<Pick<InferenceEngine, 'infer' | 'close'>> {
  const cam = config.cameras[camera];
  const name = must(cam.pipeline, `cameras.${camera}.pipeline`);
  const stages = config.pipelines[name];
  const engines = await Promise.all(stages.map((st) => load(st.model)));
  const model = (e: InferenceEngine): StageModel => ({
    info: e.info,
    infer: (f, h) => e.infer(f, h),
    // Called on the engine: inferCrops is a method.
    inferCrops: (f, r) => must(e.inferCrops, `model ${e.info.name}'s crop inference`).call(e, f, r),
  });
  const runner = new PipelineRunner({
    name,
    stages: () => stages,
    models: [model(engines[0]), model(engines[1])],
    mirror: cam.mirror ?? false,
    includeCrops: cam.privacy?.includeCrops ?? false,
  });
  return { infer: (f) => runner.infer(f), close: async () => void (await Promise.all(engines.map((e) => e.close()))) };
}

/** Loads the model with TensorRT only, so its engine is built (or found) in the cache folder. */
export async function buildEngine(config: Config, log: Logger, out: Out): Promise<number> {
  const pkg = await loadModelPackage(config.model.path);
  const opts = {
    ...sessionOptions(config.model),
    providers: ['tensorrt'] as const,
    onEvent: (e: Parameters<typeof logEngineEvent>[1]) => logEngineEvent(log, e),
  };
  let engine: Engine;
  try {
    engine = await Engine.load(pkg, opts);
  } catch (err) {
    out.stderr(`edge-inferd build-engine: ${errorMessage(err)}\n`);
    return 1;
  }
  const cache = engine.engineCache;
  await engine.close();
  out.stdout(
    JSON.stringify(
      {
        model: engine.info,
        cacheDir: opts.cacheDir,
        ctxPath: cache?.ctxPath,
        key: cache?.key,
        reused: cache?.reuse ?? false,
        keyParts: cache?.parts,
      },
      null,
      2,
    ) + '\n',
  );
  return 0;
}
