// End-to-end benchmark: the real daemon path (App from src/, as src/app.ts composes it) against a
// bare inference loop on the same model, threads and priority. For each model:
//   inference-only  a tight session.run loop in a worker thread (the limit)
//   pipeline 1 cam  test:// 640x480 RGB through the native GStreamer addon -> worker engine ->
//                   decide -> SQLite journal -> outbox -> a local Mosquitto the bench starts,
//                   source rate above the inference rate (so a fresh frame is always waiting)
//   latency 15 fps  the same at 15 fps: capture -> publish latency as a subscriber sees it
//   pipeline 2 cams two such cameras sharing the one model
//   preview         GET /preview.mjpeg: CPU per camera frame with 0, 1 and 3 viewers (bench-preview.ts)
//   camera rate     the built daemon in its own process at 15 and 30 fps, four cameras at 15 fps,
//                   the eyes pipeline at 15 fps: CPU per frame by thread (scripts/bench-camera-rate.ts)
// Results are timed by a separate mosquitto_sub process (receipt time - capturedAtMs), so the bench
// process's CPU is the daemon's own. Prints a table and writes bench-results/<timestamp>.json.
//
//   npm run bench [-- --seconds 10] [--threads 2] [model.onnx|package-dir ...]
//   npm run bench -- --soak 100000          RSS growth over that many frames after warm-up
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { App } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { demoModelDir } from '../src/paths.js';
import { loadModelPackage } from '../src/inference/package.js';
import { BENCH_MODELS, benchModelsDir, benchPackage } from './bench-models.js';
import { type Broker, startMosquitto, stopProc } from './bench-processes.js';
import { benchDecode, formatDecodeRows } from './bench-decode.js';
import { benchPipeline, formatPipelineRows, type PipelineBenchRow } from './bench-pipeline.js';
import { benchPreview, formatPreviewRows, type PreviewBenchRow } from './bench-preview.js';
import { benchCameraRate, formatCameraRate } from './bench-camera-rate.js';

/**
 * The daemon runs with a 4 MB V8 young generation (the launcher scripts/install.sh writes, `npm
 * start`): about 30 MB less resident memory. The bench measures it as deployed, so it re-runs
 * itself with the same flag when started without it (`npx tsx scripts/bench.ts` included).
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4'];
if (!DAEMON_NODE_FLAGS.every((f) => process.execArgv.includes(f) || (process.env.NODE_OPTIONS ?? '').includes(f))) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...DAEMON_NODE_FLAGS, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    nice: { type: 'string', default: '5' },
    spinning: { type: 'boolean', default: false },
    soak: { type: 'string' },
    models: { type: 'string' },
    'all-models': { type: 'boolean', default: false },
    /** Only the single-camera pipeline run (for profiling: node --cpu-prof --import tsx scripts/bench.ts --profile-run). */
    'profile-run': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench-results' },
  },
});
const SECONDS = Number(values.seconds);
const WARMUP_S = Number(values.warmup);
const THREADS = Number(values.threads);
const NICE = Number(values.nice);
const SPINNING = values.spinning;
const W = 640;
const H = 480;

/** Main-thread CPU ms per second with (almost) no frames: set by the idle run, subtracted from per-frame figures. */
let BASE_MAIN_MS_PER_S = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const rssMb = () => process.memoryUsage.rss() / 2 ** 20;

/** CPU ms per thread name (/proc/self/task/<tid>/comm): where the process's time goes. */
function threadCpu(): Map<string, number> {
  const tick = 1000 / 100; // USER_HZ
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(f[11]) + Number(f[12])) * tick;
      // Worker threads and ORT's pool are all "node": only the main thread can be told apart.
      const key = Number(tid) === process.pid ? 'main' : comm.replace(/\d+$/, '#');
      out.set(key, (out.get(key) ?? 0) + ms);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}
const diffThreads = (a: Map<string, number>, b: Map<string, number>) =>
  Object.fromEntries(
    [...b]
      .map(([k, v]) => [k, Math.round(v - (a.get(k) ?? 0))])
      .filter(([, v]) => (v as number) > 0)
      .sort((x, y) => (y[1] as number) - (x[1] as number)),
  );

interface Model {
  name: string;
  dir: string;
  onnx: string;
  input: { name: string; dims: number[]; dtype: string };
  cleanup?: string;
}

async function resolveModels(): Promise<Model[]> {
  const out: Model[] = [];
  const add = async (dir: string, cleanup?: string) => {
    const pkg = await loadModelPackage(dir);
    const i = pkg.manifest.input;
    out.push({
      name: path.basename(realpathSync(pkg.modelPath)),
      dir,
      onnx: pkg.modelPath,
      input: { name: i.name, dims: i.layout === 'NCHW' ? [1, 3, i.height, i.width] : [1, i.height, i.width, 3], dtype: i.dtype },
      cleanup,
    });
  };
  if (positionals.length) {
    for (const p of positionals) {
      if (p.endsWith('.onnx')) {
        const m = BENCH_MODELS.find((b) => b.file === path.basename(p));
        if (!m) throw new Error(`${p}: only the bench models can be named as .onnx files (pass a model package folder otherwise)`);
        const d = await benchPackage(m, path.dirname(p));
        await add(d, d);
      } else await add(path.resolve(p));
    }
    return out;
  }
  const dir = values.models ?? benchModelsDir();
  if (!dir) {
    await add(demoModelDir);
    return out;
  }
  for (const m of BENCH_MODELS) {
    if (m.task === 'segment' && !values['all-models']) continue;
    const d = await benchPackage(m, dir);
    await add(d, d);
  }
  return out;
}

// ---------- inference-only: a bare session.run loop, as the engine runs it ----------

// In a child process, not a worker thread of the bench: memory ORT frees is not all given back to
// the system (glibc keeps freed heap), so a session loaded and released in this process would stay
// in the RSS the pipeline runs report. Its CPU comes from its own process.cpuUsage().
const BARE_WORKER = `
const parentPort = { postMessage: (m) => process.send(m), once: (e, f) => process.once(e, f) };
const workerData = JSON.parse(process.env.BARE_WORKER_DATA);
const os = require('node:os');
const ort = require(workerData.ort);
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
(async () => {
  const { onnx, input, threads, nice, seconds, warmupS, spinning } = workerData;
  try { if (nice > 0) os.setPriority(0, Math.min(19, os.getPriority(0) + nice)); } catch {}
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }) });
  const n = input.dims.reduce((a, b) => a * b, 1);
  const data = input.dtype === 'uint8' ? new Uint8Array(n).fill(114) : new Float32Array(n).fill(0.45);
  const x = new ort.Tensor(input.dtype, data, input.dims);
  const feeds = { [input.name]: x };
  let end = performance.now() + warmupS * 1000;
  while (performance.now() < end) await session.run(feeds);
  parentPort.postMessage({ type: 'start' });
  await new Promise((r) => parentPort.once('message', r));
  const cpu0 = cpuMs();
  const ms = [];
  const t0 = performance.now();
  end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const a = performance.now();
    await session.run(feeds);
    ms.push(performance.now() - a);
  }
  parentPort.postMessage({ type: 'done', ms, wallMs: performance.now() - t0, cpu: cpuMs() - cpu0 });
  await session.release();
})().catch((err) => parentPort.postMessage({ type: 'error', message: String(err && err.stack || err) }));
`;

interface BareResult {
  fps: number;
  p50: number;
  p99: number;
  cpuMsPerRun: number;
  runs: number;
}

async function bare(m: Model): Promise<BareResult> {
  const ortPath = path.join(process.cwd(), 'node_modules/onnxruntime-node');
  const workerData = {
    ort: ortPath,
    onnx: m.onnx,
    input: m.input,
    threads: THREADS,
    nice: NICE,
    seconds: SECONDS,
    warmupS: WARMUP_S,
    spinning: SPINNING,
  };
  const child = spawn(process.execPath, ['-e', BARE_WORKER], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BARE_WORKER_DATA: JSON.stringify(workerData) },
  });
  const r = await new Promise<{ ms: number[]; wallMs: number; cpu: number }>((resolve, reject) => {
    child.on('message', (msg: { type: string; ms?: number[]; wallMs?: number; cpu?: number; message?: string }) => {
      if (msg.type === 'start') child.send('go');
      else if (msg.type === 'done') resolve({ ms: msg.ms!, wallMs: msg.wallMs!, cpu: msg.cpu! });
      else if (msg.type === 'error') reject(new Error(msg.message));
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`inference-only loop exited with ${code}`)));
  });
  await stopProc(child);
  return {
    fps: (r.ms.length / r.wallMs) * 1000,
    p50: pct(r.ms, 50),
    p99: pct(r.ms, 99),
    cpuMsPerRun: r.cpu / r.ms.length,
    runs: r.ms.length,
  };
}

// ---------- the daemon path ----------

/** A mosquitto_sub writing "<receipt unix time> <payload>" lines to a file: timing outside our process. */
function subscribe(port: number, file: string): ChildProcess {
  const out = openSync(file, 'w');
  return spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'bench/+/+/result', '-F', '%U %p', '-q', '0'], {
    stdio: ['ignore', out, 'inherit'],
  });
}

interface Sample {
  camera: string;
  latencyMs: number;
  inference: number;
  preprocess: number;
  postprocess: number;
  capturedAtMs: number;
}

function readSamples(file: string, fromMs: number, toMs: number): Sample[] {
  const out: Sample[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const at = Number(line.slice(0, sp)) * 1000;
    let p: { camera: string; capturedAtMs: number; latencyMs: { inference: number; preprocess: number; postprocess: number } };
    try {
      p = JSON.parse(line.slice(sp + 1));
    } catch {
      continue;
    }
    if (p.capturedAtMs < fromMs || p.capturedAtMs >= toMs) continue;
    out.push({
      camera: p.camera,
      latencyMs: at - p.capturedAtMs,
      inference: p.latencyMs.inference,
      preprocess: p.latencyMs.preprocess,
      postprocess: p.latencyMs.postprocess,
      capturedAtMs: p.capturedAtMs,
    });
  }
  return out;
}

interface PipelineResult {
  cameras: number;
  sourceFps: number;
  fps: number;
  perCameraFps: Record<string, number>;
  latencyP50: number;
  latencyP99: number;
  inferenceP50: number;
  inferenceP99: number;
  preprocessP50: number;
  postprocessP50: number;
  cpuMsPerFrame: number;
  /** Main thread + GStreamer threads per frame, plus the worker's preprocess and postprocess (mean). */
  outsideMsPerFrame: { total: number; main: number; capture: number; preprocess: number; postprocess: number };
  inferenceMsPerFrame: number;
  rssMb: number;
  loopLagP99: number;
  dropped: number;
  threads: Record<string, number>;
  frames: number;
  wallS: number;
}

async function runApp(
  m: Model,
  work: string,
  broker: Broker,
  cams: number,
  fps: number,
  tag: string,
): Promise<{ app: App; sub: ChildProcess; subFile: string; names: string[] }> {
  const names = Array.from({ length: cams }, (_, i) => `cam${i + 1}`);
  const raw = {
    deviceId: 'dev',
    cameras: Object.fromEntries(names.map((n) => [n, { uri: `test://smpte?width=${W}&height=${H}&fps=${fps}` }])),
    model: { path: m.dir, providers: ['cpu'], intraOpThreads: THREADS, interOpThreads: 1, workerNice: NICE, intraOpSpinning: SPINNING },
    mqtt: { url: broker.url, prefix: 'bench', protocolVersion: 5 },
    journal: { path: path.join(work, `journal-${tag}.sqlite`) },
    http: { enabled: false },
    commands: { enabled: false },
    stats: { intervalSec: 0 },
    log: { level: 'warn', format: 'json' },
  };
  const configPath = path.join(work, `config-${tag}.yaml`);
  writeFileSync(configPath, stringify(raw));
  const subFile = path.join(work, `results-${tag}.txt`);
  const sub = subscribe(broker.port, subFile);
  await sleep(300);
  const log = createLogger({ level: 'warn', format: 'json', destination: { write: (s: string) => void process.stderr.write(s) } });
  const app = new App(loadConfig({ file: configPath, env: {} }), log, { notify: () => false });
  await app.start();
  return { app, sub, subFile, names };
}

function inferredOf(app: App): Record<string, { inferred: number; dropped: number }> {
  const s = app.status();
  return Object.fromEntries(
    Object.entries(s.cameras).map(([n, c]) => [
      n,
      { inferred: (c as { inferred: number }).inferred, dropped: (c as { dropped: number }).dropped },
    ]),
  );
}

async function pipeline(m: Model, work: string, broker: Broker, cams: number, fps: number, tag: string): Promise<PipelineResult> {
  const { app, sub, subFile, names } = await runApp(m, work, broker, cams, fps, tag);
  await sleep(WARMUP_S * 1000);
  // 5 ms: finer sampling wakes the loop so often that it shows in the CPU figures.
  const lag = monitorEventLoopDelay({ resolution: 5 });
  const c0 = inferredOf(app);
  const t0 = Date.now();
  const cpu0 = cpuMs();
  const th0 = threadCpu();
  lag.enable();
  await sleep(SECONDS * 1000);
  lag.disable();
  const cpu = cpuMs() - cpu0;
  const th1 = threadCpu();
  const t1 = Date.now();
  const c1 = inferredOf(app);
  const rss = rssMb();
  await app.stop();
  await sleep(500);
  await stopProc(sub);
  const wall = (t1 - t0) / 1000;
  const frames = names.reduce((a, n) => a + c1[n].inferred - c0[n].inferred, 0);
  // Frames captured in the window and published (the subscriber saw them).
  const samples = readSamples(subFile, t0, t1);
  const lat = samples.map((s) => s.latencyMs);
  const inf = samples.map((s) => s.inference);
  const threads = diffThreads(th0, th1);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  // Main-thread CPU per frame above the idle baseline (the baseline run itself reports it raw).
  const main = Math.max(0, (threads.main ?? 0) - BASE_MAIN_MS_PER_S * wall) / frames;
  // GStreamer's threads: the source's streaming thread and the addon's pull thread (anything not "node" or main).
  const capture =
    Object.entries(threads)
      .filter(([k]) => k !== 'main' && k !== 'node')
      .reduce((a, [, v]) => a + (v as number), 0) / frames;
  const pre = mean(samples.map((s) => s.preprocess));
  const post = mean(samples.map((s) => s.postprocess));
  return {
    cameras: cams,
    sourceFps: fps,
    fps: frames / wall,
    perCameraFps: Object.fromEntries(names.map((n) => [n, (c1[n].inferred - c0[n].inferred) / wall])),
    latencyP50: pct(lat, 50),
    latencyP99: pct(lat, 99),
    inferenceP50: pct(inf, 50),
    inferenceP99: pct(inf, 99),
    preprocessP50: pct(
      samples.map((s) => s.preprocess),
      50,
    ),
    postprocessP50: pct(
      samples.map((s) => s.postprocess),
      50,
    ),
    cpuMsPerFrame: cpu / frames,
    outsideMsPerFrame: { total: main + capture + pre + post, main, capture, preprocess: pre, postprocess: post },
    inferenceMsPerFrame: inf.reduce((a, b) => a + b, 0) / Math.max(1, inf.length),
    rssMb: rss,
    loopLagP99: lag.percentile(99) / 1e6,
    dropped: names.reduce((a, n) => a + c1[n].dropped - c0[n].dropped, 0),
    threads,
    frames,
    wallS: wall,
  };
}

async function soak(m: Model, work: string, broker: Broker, frames: number): Promise<Record<string, unknown>> {
  // Above the model's rate, but not so far that generating dropped frames takes a core.
  const fpsSrc = Math.min(1000, Math.ceil((await bare(m)).fps * 1.5));
  const { app, sub } = await runApp(m, work, broker, 1, fpsSrc, 'soak');
  await stopProc(sub); // not needed: the results pile up in the broker otherwise
  const warm = Math.min(5000, Math.floor(frames / 10));
  const count = () => Object.values(inferredOf(app)).reduce((a, c) => a + c.inferred, 0);
  const samples: { frames: number; rssMb: number; heapMb: number; atS: number }[] = [];
  const t0 = Date.now();
  while (count() < warm) await sleep(500);
  global.gc?.();
  const base = { frames: count(), rssMb: rssMb() };
  let next = 0;
  while (count() < warm + frames) {
    await sleep(1000);
    if (Date.now() >= next) {
      const s = { frames: count(), rssMb: rssMb(), heapMb: process.memoryUsage().heapUsed / 2 ** 20, atS: (Date.now() - t0) / 1000 };
      samples.push(s);
      console.error(`soak: ${s.frames} frames, rss ${s.rssMb.toFixed(1)} MB, heap ${s.heapMb.toFixed(1)} MB`);
      next = Date.now() + 10_000;
    }
  }
  const end = { frames: count(), rssMb: rssMb() };
  await app.stop();
  // Growth after warm-up: the mean of the last tenth of the samples against the baseline, so one GC does not decide it.
  const tail = samples.slice(-Math.max(1, Math.floor(samples.length / 10)));
  const tailRss = tail.reduce((a, s) => a + s.rssMb, 0) / tail.length;
  return {
    model: m.name,
    warmupFrames: warm,
    frames: end.frames - base.frames,
    baseRssMb: base.rssMb,
    endRssMb: end.rssMb,
    growthPct: ((tailRss - base.rssMb) / base.rssMb) * 100,
    maxRssMb: Math.max(...samples.map((s) => s.rssMb)),
    samples,
  };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function machine() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model;
  return { nproc: os.availableParallelism(), cpu, node: process.version, loadavg: os.loadavg().map((x) => Number(x.toFixed(2))) };
}

async function main(): Promise<void> {
  const models = await resolveModels();
  const work = mkdtempSync(path.join(os.tmpdir(), 'edge-inferd-bench-'));
  const broker = await startMosquitto(work);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync(values.out, { recursive: true });
  const results: Record<string, unknown> = {
    machine: machine(),
    settings: {
      seconds: SECONDS,
      warmupS: WARMUP_S,
      threads: THREADS,
      nice: NICE,
      spinning: SPINNING,
      source: `test://smpte ${W}x${H} RGB`,
      broker: 'mosquitto (local, started by the bench)',
      nodeFlags: DAEMON_NODE_FLAGS,
    },
  };
  try {
    if (values.soak) {
      const m = models[0];
      console.error(`soak: ${m.name}, ${values.soak} frames after warm-up`);
      results.soak = await soak(m, work, broker, Number(values.soak));
      const s = results.soak as { frames: number; baseRssMb: number; endRssMb: number; growthPct: number; maxRssMb: number };
      console.log(
        `soak ${m.name}: ${s.frames} frames, RSS ${f1(s.baseRssMb)} MB after warm-up -> ${f1(s.endRssMb)} MB (max ${f1(s.maxRssMb)}), growth ${f2(s.growthPct)}%`,
      );
    } else {
      const per: Record<string, unknown>[] = [];
      // The main thread's CPU that does not depend on frames (timers, MQTT keep-alive, the device
      // sampler): a 1 fps camera for the window; per-frame main-thread figures subtract it.
      console.error(`${models[0].name}: idle baseline, 1 camera at 1 fps`);
      const idle = await pipeline(models[0], work, broker, 1, 1, 'idle');
      BASE_MAIN_MS_PER_S = (idle.threads.main ?? 0) / idle.wallS;
      results.idleBaseline = { mainCpuMsPerS: BASE_MAIN_MS_PER_S, frames: idle.frames, wallS: idle.wallS };
      for (const m of models) {
        if (values['profile-run']) {
          const one = await pipeline(m, work, broker, 1, 1000, `${m.name}-profile`);
          console.log(m.name, JSON.stringify({ fps: one.fps, outside: one.outsideMsPerFrame, threads: one.threads }));
          continue;
        }
        console.error(`${m.name}: inference-only`);
        // Measured before and after the single-camera run and averaged: the machine's load drifts.
        const b0 = await bare(m);
        // "Unthrottled": a source well above what the model can take, so a fresh frame always waits.
        const fast = Math.min(1000, Math.ceil(b0.fps * 1.5));
        console.error(`${m.name}: pipeline, 1 camera at ${fast} fps`);
        const one = await pipeline(m, work, broker, 1, fast, `${m.name}-1`);
        console.error(`${m.name}: inference-only again`);
        const b1 = await bare(m);
        const b: BareResult = {
          fps: (b0.fps + b1.fps) / 2,
          p50: (b0.p50 + b1.p50) / 2,
          p99: Math.max(b0.p99, b1.p99),
          cpuMsPerRun: (b0.cpuMsPerRun + b1.cpuMsPerRun) / 2,
          runs: b0.runs + b1.runs,
        };
        console.error(`${m.name}: pipeline, 1 camera at 15 fps`);
        const slow = await pipeline(m, work, broker, 1, 15, `${m.name}-15`);
        console.error(`${m.name}: pipeline, 2 cameras at ${fast} fps each`);
        const two = await pipeline(m, work, broker, 2, fast, `${m.name}-2`);
        per.push({
          model: m.name,
          inferenceOnly: b,
          inferenceOnlyRuns: [b0, b1],
          single: one,
          at15fps: slow,
          twoCameras: two,
          cpuMsOutsideInference: { single: one.cpuMsPerFrame - b.cpuMsPerRun, two: two.cpuMsPerFrame - b.cpuMsPerRun },
        });
      }
      results.models = per;
      printTable(per);
      // The two-stage pipeline row (scripts/bench-pipeline.ts).
      console.error('eyes demo: two-stage pipeline, 1 and 2 subjects');
      results.twoStage = await benchPipeline({ seconds: SECONDS, warmupS: WARMUP_S, threads: THREADS });
      console.log('\n' + formatPipelineRows(results.twoStage as PipelineBenchRow[]));
      // Anchor decoding + NMS as the worker does it after session.run (scripts/bench-decode.ts).
      const decode = benchDecode();
      results.anchorDecode = decode;
      console.log(`\n${formatDecodeRows(decode)}`);
      // GET /preview.mjpeg: CPU per camera frame with 0, 1 and 3 viewers (scripts/bench-preview.ts).
      console.error('preview: 0, 1 and 3 viewers');
      results.preview = await benchPreview({ frames: Math.max(50, SECONDS * 20) });
      console.log('\n' + formatPreviewRows(results.preview as PreviewBenchRow[]));
      // At a camera's rate (scripts/bench-camera-rate.ts): the built daemon in its own process, CPU per frame by thread.
      const cameraRate = await benchCameraRate({ seconds: SECONDS, warmupS: Math.max(WARMUP_S, 5), modelsDir: values.models });
      results.cameraRate = cameraRate;
      console.log(`\nAt a camera's rate (CPU ms per inferred frame, by thread; load avg ${machine().loadavg.join(' ')})\n`);
      console.log(formatCameraRate(cameraRate.rows));
    }
  } finally {
    const file = path.join(values.out, `${stamp}.json`);
    writeFileSync(file, JSON.stringify(results, null, 2));
    console.error(`wrote ${file}`);
    await broker.stop();
    for (const m of models) if (m.cleanup) rmSync(m.cleanup, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

function printTable(per: Record<string, any>[]): void {
  const mc = machine();
  console.log(
    `\n${mc.nproc} cores, ${mc.cpu}, Node ${mc.node}, CPU provider, ${THREADS} intra-op threads (spinning ${SPINNING ? 'on' : 'off'}), worker nice ${NICE}; main-thread idle baseline ${f1(BASE_MAIN_MS_PER_S)} ms/s subtracted; ${SECONDS} s windows after ${WARMUP_S} s warm-up; load avg ${mc.loadavg.join(' ')}\n`,
  );
  const rows = per.map((r) => {
    const b = r.inferenceOnly as BareResult;
    const one = r.single as PipelineResult;
    const slow = r.at15fps as PipelineResult;
    const two = r.twoCameras as PipelineResult;
    const cams = Object.values(two.perCameraFps).map(f1).join(' / ');
    return [
      r.model,
      `${f1(b.fps)} (p99 ${f1(b.p99)} ms)`,
      `${f1(one.fps)} (${((one.fps / b.fps) * 100).toFixed(0)}%)`,
      `${f2(one.preprocessP50)} / ${f2(one.postprocessP50)}`,
      `${f2(one.outsideMsPerFrame.total)} (${f2(one.outsideMsPerFrame.main)} + ${f2(one.outsideMsPerFrame.capture)} + ${f2(one.outsideMsPerFrame.preprocess)} + ${f2(one.outsideMsPerFrame.postprocess)})`,
      `${f1(slow.latencyP50)} / ${f1(slow.latencyP99)} vs ${f1(slow.inferenceP99)}`,
      `${f1(one.loopLagP99)}`,
      `${f1(one.rssMb)}`,
      `${cams} (half: ${f1(one.fps / 2)})`,
      `${f1(two.fps)} (${((two.fps / b.fps) * 100).toFixed(0)}%)`,
    ];
  });
  console.log(
    table(
      [
        'model',
        'inference-only fps',
        'pipeline fps (ratio)',
        'pre / post p50 ms',
        'CPU ms/frame outside inference (main + capture + pre + post)',
        '15 fps: latency p50 / p99 vs inference p99 (ms)',
        'loop lag p99 ms',
        'RSS MB',
        '2 cams: fps each',
        '2 cams total (ratio)',
      ],
      rows,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
