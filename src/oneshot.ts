import { type FileHandle, open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { looksLikeVideo, VideoFile } from './capture/video-file.js';
import { TrackEvents } from './channel/tracks.js';
import { type AggregateConfig, aggregateSchema } from './config/pipeline.js';
import type { Config } from './config/schema.js';
import { errorCode, errorMessage, must } from './errors.js';
import { INFER_CAMERA } from './health/routes/infer.js';
import { Engine, type InferenceEngine } from './inference/engine.js';
import { PipelineRunner, type StageModel } from './inference/pipeline.js';
import { decodeImage } from './inference/image.js';
import { loadEngine, logEngineEvent, sessionOptions } from './inference/load.js';
import { loadModelPackage } from './inference/package.js';
import type { Logger } from './log.js';
import type { Frame } from './capture/frame.js';
import type { Inference, ModelInfo } from './inference/types.js';
import { resultPayload } from './publish/payload.js';

/**
 * The command-line one-shots: `edge-inferd infer IMAGE|VIDEO...` (the same engine and payload as
 * the live results, one JSON line per image or per inferred video frame, with a pipeline camera's
 * assessments on a video) and `edge-inferd build-engine` (build and cache the TensorRT engine
 * before the daemon's first start).
 */

export interface Out {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/** Exit code 0 when every image and video was inferred, 1 when any failed (each failure on stderr), 2 for usage. */
export async function inferImages(
  config: Config,
  files: readonly string[],
  log: Logger,
  out: Out,
  camera?: string,
  opts: { fps?: number } = {},
): Promise<number> {
  if (files.length === 0) {
    out.stderr('edge-inferd infer: name at least one image or video file\n');
    return 2;
  }
  const cam = camera === undefined ? undefined : config.cameras[camera];
  if (camera !== undefined && !cam) {
    out.stderr(`edge-inferd infer: no camera "${camera}" in ${config.source} (cameras: ${Object.keys(config.cameras).join(', ')})\n`);
    return 2;
  }
  const load = (dir: string) => loadEngine(dir, { ...sessionOptions(config.model), onEvent: (e) => logEngineEvent(log, e) });
  let engine: Pick<InferenceEngine, 'infer' | 'close'> & Partial<Pick<PipelineEngine, 'models'>>;
  try {
    engine = cam?.pipeline ? await pipelineEngine(config, must(camera, 'the camera'), load) : await load(config.model.path);
  } catch (err) {
    // A model that does not load is a failure (1), as the README's exit codes say; 2 is for usage.
    out.stderr(`edge-inferd infer: ${errorMessage(err)}${errorCode(err) ? ` (${errorCode(err)})` : ''}\n`);
    return 1;
  }
  let failed = 0;
  const print = (inf: Inference, frame: Frame, seq: number) =>
    out.stdout(
      `${JSON.stringify(resultPayload({ deviceId: config.deviceId, seq, frame, inference: inf, model: inf.model, nowMs: Date.now() }))}\n`,
    );
  try {
    for (const [i, file] of files.entries()) {
      try {
        if (await isVideo(file)) {
          const tracks = cam?.pipeline ? trackEvents(cam.pipeline, cam.aggregate, engine.models) : undefined;
          await inferVideo(file, engine, { fps: opts.fps, deviceId: config.deviceId, tracks, print, out });
          continue;
        }
        const frame = await decodeImage(await readFile(file), { camera: INFER_CAMERA, seq: i + 1, name: basename(file) });
        print(await engine.infer(frame), frame, i + 1);
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

/** Whether `file` is a video (by its first bytes or, for bare streams, its name); anything else is read as an image. */
async function isVideo(file: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch {
    return false; // the image path reports the unreadable file
  }
  try {
    const head = new Uint8Array(512);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return looksLikeVideo(head.subarray(0, bytesRead), file);
  } finally {
    await fh.close();
  }
}

/** A pipeline camera's decide step for a video: tracks over the video's frames, assessments as events. */
function trackEvents(pipeline: string, aggregate: AggregateConfig | undefined, models: PipelineEngine['models'] = {}): TrackEvents {
  return new TrackEvents({ name: pipeline, aggregate: aggregate ?? aggregateSchema.parse({}), models: () => models });
}

/**
 * One result line per inferred frame of a video (frame.timeMs: its time in the video); for a
 * pipeline camera, its `assessment` and `cleared` events after the result of the frame that
 * caused them (tracked over the inferred frames, as the live camera's would be).
 */
async function inferVideo(
  file: string,
  engine: Pick<InferenceEngine, 'infer'>,
  o: { fps?: number; deviceId: string; tracks?: TrackEvents; print: (inf: Inference, frame: Frame, seq: number) => void; out: Out },
): Promise<void> {
  const video = await VideoFile.open(file, { fps: o.fps, now: Date.now });
  let events = 0;
  try {
    for (let frame = await video.next(); frame; frame = await video.next()) {
      const inf = await engine.infer(frame);
      const decisions = o.tracks?.observe(frame, inf) ?? [];
      o.print(inf, frame, frame.seq);
      for (const decision of decisions) {
        const p = o.tracks?.payload({ deviceId: o.deviceId, camera: INFER_CAMERA, seq: ++events, decision, frame, nowMs: Date.now() });
        if (p) o.out.stdout(`${JSON.stringify(p)}\n`);
      }
    }
  } finally {
    video.close();
  }
}

interface PipelineEngine extends Pick<InferenceEngine, 'infer' | 'close'> {
  /** The stages' models (events name them). */
  models: { detector?: ModelInfo; crops?: ModelInfo };
}

/** A camera's whole pipeline as one engine: its stages loaded, the runner in front (no tracking: each image stands alone). */
async function pipelineEngine(config: Config, camera: string, load: (dir: string) => Promise<InferenceEngine>): Promise<PipelineEngine> {
  const cam = config.cameras[camera];
  const name = must(cam.pipeline, `cameras.${camera}.pipeline`);
  const stages = config.pipelines[name];
  const engines = await Promise.all(stages.map((st) => load(st.model)));
  const model = (e: InferenceEngine): StageModel => ({
    info: e.info,
    infer: (f, h) => e.infer(f, h),
    // Called on the engine: an unbound method loses its `this` (the worker engine's queue).
    inferCrops: (f, r) => must(e.inferCrops, `model ${e.info.name}'s crop inference`).call(e, f, r),
  });
  const runner = new PipelineRunner({
    name,
    stages: () => stages,
    models: [model(engines[0]), model(engines[1])],
    mirror: cam.mirror ?? false,
    includeCrops: cam.privacy?.includeCrops ?? false,
  });
  return {
    infer: (f) => runner.infer(f),
    close: async () => void (await Promise.all(engines.map((e) => e.close()))),
    models: { detector: engines[0].info, crops: engines[1].info },
  };
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
