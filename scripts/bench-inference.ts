// Inference overhead benchmark: for each model in ../shared/bench-models (random-weight speed
// fixtures), CPU provider, 1 and 2 intra-op threads:
//   bare    a tight session.run loop on one prepared input tensor (the inference-only limit)
//   engine  Engine.infer on a 640x480 RGB frame: preprocess + session.run + postprocess, this thread
//   worker  WorkerEngine.infer: the same in the inference worker, plus the frame copy and messages
//           (and the main thread's event-loop lag p99 meanwhile: the target is under 10 ms)
// Prints medians (ms) as a table. The three are measured in interleaved blocks of 10 runs.
//
//   npx tsx scripts/bench-inference.ts [--runs N] [--models DIR]
// First: ONNX Runtime telemetry off before anything can create an ORT session (src/ort-telemetry.ts).
import '../src/ort-telemetry.js';
import { rm } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import type { Frame } from '../src/capture/frame.js';
import { Engine } from '../src/inference/engine.js';
import { loadModelPackage } from '../src/inference/package.js';
import { WorkerEngine } from '../src/inference/worker-engine.js';
import { mulberry32 } from './make-demo-model.js';
import { BENCH_MODELS, benchModelsDir, benchPackage } from './bench-models.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '40' }, models: { type: 'string' } } });
const RUNS = Number(values.runs);
const WARMUP = 10;
const BLOCK = 10;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeLoop(fn: () => Promise<unknown>, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

function noiseFrame(): Frame {
  const rand = mulberry32(42);
  const data = new Uint8Array(640 * 480 * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  return { camera: 'bench', seq: 0, width: 640, height: 480, stride: 640 * 3, format: 'RGB', data, capturedAtMs: Date.now() };
}

async function main(): Promise<void> {
  const dir = values.models ?? benchModelsDir();
  if (!dir) throw new Error('bench models not found: pass --models DIR or set EDGE_INFERD_BENCH_MODELS');
  const frame = noiseFrame();
  const rows: string[][] = [];
  for (const m of BENCH_MODELS) {
    const pkgDir = await benchPackage(m, dir);
    const pkg = await loadModelPackage(pkgDir);
    for (const threads of [1, 2]) {
      const opts = { providers: ['cpu'] as const, intraOpThreads: threads, interOpThreads: 1 };
      const session = await ort.InferenceSession.create(pkg.modelPath, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
      });
      const input = new ort.Tensor('float32', new Float32Array(3 * m.size * m.size).fill(0.5), [1, 3, m.size, m.size]);
      const engine = await Engine.load(pkg, opts);
      const worker = await WorkerEngine.load(pkg, { ...opts, maxInFlight: 1 });
      const parts = { pre: [] as number[], inf: [] as number[], post: [] as number[] };
      const times = { bare: [] as number[], full: [] as number[], worker: [] as number[] };
      const variants: [keyof typeof times, () => Promise<unknown>][] = [
        ['bare', () => session.run({ images: input })],
        [
          'full',
          async () => {
            const r = await engine.infer(frame);
            parts.pre.push(r.latencyMs.preprocess);
            parts.inf.push(r.latencyMs.inference);
            parts.post.push(r.latencyMs.postprocess);
          },
        ],
        ['worker', () => worker.infer(frame)],
      ];
      // The main thread's lag while the worker infers, sampled only during the worker's blocks.
      const lag = monitorEventLoopDelay({ resolution: 1 });
      // Interleaved blocks, so a shared machine's load changes hit all three alike.
      for (const [, fn] of variants) for (let i = 0; i < WARMUP; i++) await fn();
      parts.pre.length = parts.inf.length = parts.post.length = 0;
      for (let round = 0; round < Math.ceil(RUNS / BLOCK); round++) {
        for (const [name, fn] of variants) {
          if (name === 'worker') lag.enable();
          times[name].push(...(await timeLoop(fn, BLOCK)));
          lag.disable();
        }
      }
      const [bare, full, viaWorker] = [median(times.bare), median(times.full), median(times.worker)];
      await session.release();
      await engine.close();
      await worker.close();

      const f = (x: number) => x.toFixed(2);
      rows.push([
        m.file,
        String(threads),
        f(bare),
        f(full),
        `${f(median(parts.pre))} / ${f(median(parts.inf))} / ${f(median(parts.post))}`,
        f(viaWorker),
        f(lag.percentile(99) / 1e6),
        `${f(((full - bare) / bare) * 100)}%`,
      ]);
      console.error(`done: ${m.file}, ${threads} thread(s)`);
    }
    await rm(pkgDir, { recursive: true, force: true });
  }
  const head = [
    'model',
    'threads',
    'bare run',
    'engine.infer',
    'pre / infer / post',
    'worker.infer',
    'main loop lag p99 (worker)',
    'engine vs bare',
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(
    `CPU provider, 640x480 RGB noise frame, median of ${Math.ceil(RUNS / BLOCK) * BLOCK} runs each (interleaved blocks of ${BLOCK}) after ${WARMUP} warm-up runs (ms)\n`,
  );
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
