// The two-stage row of `npm run bench`: the eyes demo's pipeline (face detector -> eye classifier
// on keypoint crops, batched) with one and with two subjects in a 640x480 frame. The real runner
// and inference workers (one per stage), frames back to back, one at a time, with the tracker and
// aggregation on the main thread; no capture, journal or MQTT (the single-model rows measure
// those). CPU per frame is the whole process's (main thread and both workers).
//
//   npx tsx scripts/bench-pipeline.ts [--seconds 10] [--threads 1]
//
// Also the explanation rows: frames with explain off / every side by side, and one assessment's
// explain call (both eyes) by occlusion (2 x 64 masked crops in one batched run) and by class
// activation maps (the eye model's manifest with explain.method: cam: the feature map comes with
// the scores, no further run).
import { parseArgs } from 'node:util';
import type { Frame } from '../src/capture/frame.js';
import { demoConfig } from '../src/config/demo.js';
import { aggregateSchema, pipelineSchema } from '../src/config/pipeline.js';
import { PipelineAggregator } from '../src/decide/aggregate.js';
import type { InferenceEngine } from '../src/inference/engine.js';
import { loadEngine } from '../src/inference/load.js';
import { loadModelPackage } from '../src/inference/package.js';
import { WorkerEngine } from '../src/inference/worker-engine.js';
import { PipelineRunner } from '../src/inference/pipeline.js';
import type { DetectInference } from '../src/inference/types.js';
import { cameraFrame, type FaceSpec, renderFrame } from './make-eyes-demo.js';

export interface PipelineBenchRow {
  subjects: number;
  frames: number;
  fps: number;
  cpuMsPerFrame: number;
  /** Median per stage, ms (pre + inference + post in its worker). */
  stageP50Ms: Record<string, number>;
  cropsPerFrame: number;
}

const SUBJECTS: FaceSpec[] = [
  { x: 80, y: 120, size: 160, leftClass: 'healthy', rightClass: 'stye' },
  { x: 380, y: 140, size: 150, leftClass: 'cataract', rightClass: 'conjunctivitis' },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** A rendered eyes-demo frame as the camera would hand it over. */
const benchFrame = (data: Uint8Array, seq: number): Frame => cameraFrame(data, { camera: 'bench', seq, capturedAtMs: Date.now() });

/**
 * The eyes demo's stages and their engines (face detector, eye classifier), plus the same eye
 * model with its manifest's explain.method switched to cam (its featureMap and weights are declared).
 */
async function eyesEngines(threads: number) {
  const stages = pipelineSchema.parse((demoConfig('eyes') as { pipelines: { eyes: unknown } }).pipelines.eyes);
  const engines: InferenceEngine[] = await Promise.all(
    stages.map((s) => loadEngine(s.model, { providers: ['cpu'], intraOpThreads: threads })),
  );
  const eye = await loadModelPackage(stages[1].model);
  const camPkg = { ...eye, manifest: { ...eye.manifest, explain: { ...eye.manifest.explain, method: 'cam' as const } } };
  engines.push(await WorkerEngine.load(camPkg, { providers: ['cpu'], intraOpThreads: threads }));
  return { stages, engines };
}

export async function benchPipeline(opts: { seconds: number; warmupS?: number; threads: number }): Promise<PipelineBenchRow[]> {
  const { stages, engines } = await eyesEngines(opts.threads);
  try {
    const m = (e: InferenceEngine) => ({ info: e.info, infer: e.infer.bind(e), inferCrops: e.inferCrops!.bind(e) });
    const runner = new PipelineRunner({ name: 'eyes', stages: () => stages, models: [m(engines[0]), m(engines[1])] });
    const rows: PipelineBenchRow[] = [];
    for (const n of [1, 2]) {
      const data = renderFrame({ faces: SUBJECTS.slice(0, n) });
      const agg = new PipelineAggregator(aggregateSchema.parse({}));
      const frame = (seq: number) => benchFrame(data, seq);
      let seq = 0;
      const once = async () => {
        const inf = (await runner.infer(frame(++seq))) as DetectInference;
        agg.observe(inf.pipeline!, Date.now());
        return inf.pipeline!;
      };
      const warmUntil = performance.now() + (opts.warmupS ?? 2) * 1000;
      while (performance.now() < warmUntil) await once();
      const stageMs: Record<string, number[]> = {};
      let crops = 0;
      let frames = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      while (performance.now() - t0 < opts.seconds * 1000) {
        const p = await once();
        frames++;
        crops += p.stages[1]?.crops ?? 0;
        for (const st of p.stages) {
          const list = stageMs[st.name] ?? [];
          list.push(st.latencyMs.preprocess + st.latencyMs.inference + st.latencyMs.postprocess);
          stageMs[st.name] = list;
        }
      }
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      rows.push({
        subjects: n,
        frames,
        fps: (frames * 1000) / wallMs,
        cpuMsPerFrame: (cpu.user + cpu.system) / 1000 / frames,
        stageP50Ms: Object.fromEntries(Object.entries(stageMs).map(([k, v]) => [k, median(v)])),
        cropsPerFrame: crops / frames,
      });
    }
    return rows;
  } finally {
    await Promise.all(engines.map((e) => e.close()));
  }
}

export function formatPipelineRows(rows: PipelineBenchRow[]): string {
  const lines = ['two-stage (eyes demo: face -> 2 eye crops per subject, batched), 640x480, frames back to back:'];
  for (const r of rows) {
    const st = Object.entries(r.stageP50Ms)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ');
    lines.push(
      `  ${r.subjects} subject${r.subjects === 1 ? ' ' : 's'}: ${r.fps.toFixed(1)} frames/s, CPU ${r.cpuMsPerFrame.toFixed(2)} ms/frame, ${r.cropsPerFrame.toFixed(1)} crops/frame, stage p50 ms: ${st}`,
    );
  }
  return lines.join('\n');
}

export interface ExplainBenchRow {
  /** off | every: the pipeline's frames with no heatmaps or a heatmap per crop; assessment: the one explain call an assessment makes. */
  mode: 'off' | 'every' | 'assessment';
  count: number;
  /** Frames (off, every) or assessments (assessment) per second, back to back. */
  perSecond: number;
  /** Whole-process CPU per frame or per assessment, ms. */
  cpuMs: number;
  /** Median wall time per frame or assessment, ms. */
  p50Ms: number;
  /** Session runs of the crop stage per explanation call (1: the 2 x 64 masked crops in one batch; 0: CAM, none added). */
  runs?: number;
  /** every, assessment: how the heatmaps were made (the eye model's explain.method). */
  method?: 'occlusion' | 'cam';
}

/**
 * The cost of explanations on the eyes demo (one subject, two eyes): frames with explain off and
 * every side by side, and an assessment's explain call alone (both eyes, each for its label: 2 x 64
 * masked crops through the eye classifier).
 */
export async function benchExplain(opts: { seconds: number; warmupS?: number; threads: number }): Promise<ExplainBenchRow[]> {
  const { stages, engines } = await eyesEngines(opts.threads);
  try {
    const m = (e: InferenceEngine) => ({ info: e.info, infer: e.infer.bind(e), inferCrops: e.inferCrops!.bind(e) });
    const data = renderFrame({ faces: SUBJECTS.slice(0, 1) });
    const frame = (seq: number) => benchFrame(data, seq);
    const measure = async (once: () => Promise<number | undefined>): Promise<Omit<ExplainBenchRow, 'mode'>> => {
      const warmUntil = performance.now() + (opts.warmupS ?? 2) * 1000;
      while (performance.now() < warmUntil) await once();
      const wall: number[] = [];
      let runs: number | undefined;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      while (performance.now() - t0 < opts.seconds * 1000) {
        const t = performance.now();
        runs = await once();
        wall.push(performance.now() - t);
      }
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      return {
        count: wall.length,
        perSecond: (wall.length * 1000) / ms,
        cpuMs: (cpu.user + cpu.system) / 1000 / wall.length,
        p50Ms: median(wall),
        ...(runs !== undefined ? { runs } : {}),
      };
    };
    const rows: ExplainBenchRow[] = [];
    let seq = 0;
    for (const mode of ['off', 'every'] as const) {
      const runner = new PipelineRunner({
        name: 'eyes',
        stages: () => stages,
        models: [m(engines[0]), m(engines[1])],
        includeCrops: 'local',
        explain: mode,
      });
      rows.push({
        mode,
        ...(await measure(async () => void (await runner.infer(frame(++seq))))),
        ...(mode === 'every' ? { method: 'occlusion' as const } : {}),
      });
    }
    // One assessment: the frame's two eye crops, each explained for its label.
    const runner = new PipelineRunner({
      name: 'eyes',
      stages: () => stages,
      models: [m(engines[0]), m(engines[1])],
      includeCrops: 'local',
      explain: 'assessment',
    });
    const inf = (await runner.infer(frame(++seq))) as DetectInference;
    const regions = inf.pipeline!.objects[0].regions.filter((r) => r.source && r.scores);
    const src = regions[0].source!;
    const targets = regions.map((r) => r.scores!.indexOf(Math.max(...r.scores!)));
    const rects = regions.map((r) => r.source!.rect);
    for (const [method, engine] of [
      ['occlusion', engines[1]],
      ['cam', engines[2]],
    ] as const) {
      rows.push({
        mode: 'assessment',
        ...(await measure(async () => {
          const out = await engine.inferCrops!(src.frame, {
            rects,
            scale: src.scale,
            quality: { minSidePx: 0, minSharpness: 0 },
            explain: targets,
          });
          if (out.crops.length !== 2 || out.crops.some((c) => c.heatmap?.method !== method))
            throw new Error(`the ${method} assessment did not explain both eyes by ${method}`);
          return out.explain?.runs;
        })),
        method,
      });
    }
    return rows;
  } finally {
    await Promise.all(engines.map((e) => e.close()));
  }
}

export function formatExplainRows(rows: ExplainBenchRow[]): string {
  const lines = ['explanations (eyes demo, 1 subject, 8x8 per eye: occlusion, or cam from the feature map, CPU):'];
  for (const r of rows) {
    const what = r.mode === 'assessment' ? `per assessment (2 eyes explained, ${r.method})` : `frames, explain ${r.mode}`;
    lines.push(
      `  ${what}: ${r.perSecond.toFixed(1)}/s, CPU ${r.cpuMs.toFixed(2)} ms, p50 ${r.p50Ms.toFixed(2)} ms${r.runs !== undefined ? `, ${r.runs} session.run` : ''}`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, threads: { type: 'string', default: '1' } } });
  const rows = await benchPipeline({ seconds: Number(values.seconds), threads: Number(values.threads) });
  console.log(formatPipelineRows(rows));
  console.log(formatExplainRows(await benchExplain({ seconds: Number(values.seconds), threads: Number(values.threads) })));
}
