// The two-stage row of `npm run bench`: the eyes demo's pipeline (face detector -> eye classifier
// on keypoint crops, batched) with one and with two subjects in a 640x480 frame. The real runner
// and inference workers (one per stage), frames back to back, one at a time, with the tracker and
// aggregation on the main thread; no capture, journal or MQTT (the single-model rows measure
// those). CPU per frame is the whole process's (main thread and both workers).
//
//   npx tsx scripts/bench-pipeline.ts [--seconds 10] [--threads 1]
import { parseArgs } from 'node:util';
import { demoConfig } from '../src/config/demo.js';
import { aggregateSchema, pipelineSchema } from '../src/config/pipeline.js';
import { PipelineAggregator } from '../src/decide/aggregate.js';
import type { InferenceEngine } from '../src/inference/engine.js';
import { loadEngine } from '../src/inference/load.js';
import { PipelineRunner } from '../src/inference/pipeline.js';
import type { DetectInference } from '../src/inference/types.js';
import { type FaceSpec, FRAME_HEIGHT, FRAME_WIDTH, renderFrame } from './make-eyes-demo.js';

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

export async function benchPipeline(opts: { seconds: number; warmupS?: number; threads: number }): Promise<PipelineBenchRow[]> {
  const stages = pipelineSchema.parse((demoConfig('eyes') as { pipelines: { eyes: unknown } }).pipelines.eyes);
  const engines: InferenceEngine[] = await Promise.all(
    stages.map((s) => loadEngine(s.model, { providers: ['cpu'], intraOpThreads: opts.threads })),
  );
  try {
    const m = (e: InferenceEngine) => ({ info: e.info, infer: e.infer.bind(e), inferCrops: e.inferCrops!.bind(e) });
    const runner = new PipelineRunner({ name: 'eyes', stages: () => stages, models: [m(engines[0]), m(engines[1])] });
    const rows: PipelineBenchRow[] = [];
    for (const n of [1, 2]) {
      const data = renderFrame({ faces: SUBJECTS.slice(0, n) });
      const agg = new PipelineAggregator(aggregateSchema.parse({}));
      const frame = (seq: number) => ({
        camera: 'bench',
        seq,
        width: FRAME_WIDTH,
        height: FRAME_HEIGHT,
        stride: FRAME_WIDTH * 3,
        format: 'RGB' as const,
        data,
        capturedAtMs: Date.now(),
      });
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, threads: { type: 'string', default: '1' } } });
  const rows = await benchPipeline({ seconds: Number(values.seconds), threads: Number(values.threads) });
  console.log(formatPipelineRows(rows));
}
