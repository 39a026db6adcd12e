// The daemon at a real camera's rate: what a frame costs in CPU, per thread, when the camera (not
// the model) sets the pace. The built daemon (dist/, as a device runs it: `node
// --max-semi-space-size=4 dist/src/cli.js run`) runs in its own process with live `test://smpte`
// 640x480 cameras, QoS 1 results to a local Mosquitto, its defaults otherwise; the bench reads
// /proc/<pid>/task/*/{stat,comm} before and after a window and /status for the frames inferred.
// Threads are told apart by name: main, edge-infer (the inference worker), edge-ort (ORT's
// intra-op pool), edge-pull (the capture's pull thread), GStreamer's streaming threads (named by
// GStreamer), and the runtime's own (V8's GC and compiler threads, libuv's pool: "node").
// Latency is capture -> a separate mosquitto_sub's receipt.
//
//   npx tsx scripts/bench-camera-rate.ts [--seconds 15] [--warmup 8] [--no-build] [--out FILE.json]
//       the section npm run bench prints (it builds dist/ first unless --no-build); --only '30 fps' runs
//       the scenarios whose name contains that
//   npx tsx scripts/bench-camera-rate.ts --against OTHER/dist/src/cli.js [--reps 3] [--only '15 fps']
//       each scenario with this build and another (a worktree of the code before a change), interleaved
//   npx tsx scripts/bench-camera-rate.ts --python VENV [--reps 3] [--fps 30] [--daemon-threads 2]
//       the daemon and the Python loop of ../shared/baseline-python (same live source, model, ORT
//       threads with spinning off, broker), interleaved: daemon, Python, daemon, Python...;
//       --daemon-threads sets the daemon's model.intraOpThreads (the Python loop keeps 2)
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { demoConfig } from '../src/config/demo.js';
import { THREAD_NAMES } from '../src/inference/thread-name.js';
import { BENCH_MODELS, benchModelsDir, benchPackage } from './bench-models.js';
import { type Broker, freePort, startMosquitto, stopProc, waitPort } from './bench-processes.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'dist/src/cli.js');
const TICK_MS = 1000 / 100; // USER_HZ
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type ThreadGroup = 'main' | 'worker' | 'ortPool' | 'pull' | 'gstreamer' | 'runtime';
const THREAD_GROUPS: Record<ThreadGroup, string> = {
  main: 'main thread',
  worker: `inference worker (${THREAD_NAMES.worker})`,
  ortPool: `ORT intra-op pool (${THREAD_NAMES.ortPool})`,
  pull: `capture pull thread (${THREAD_NAMES.pull})`,
  gstreamer: 'GStreamer streaming threads',
  runtime: 'V8 / libuv threads ("node")',
};

function groupOf(pid: number, tid: number, comm: string): ThreadGroup {
  if (tid === pid) return 'main';
  if (comm === THREAD_NAMES.worker) return 'worker';
  if (comm === THREAD_NAMES.ortPool) return 'ortPool';
  if (comm === THREAD_NAMES.pull) return 'pull';
  // Node's own threads and anything else that inherited the interpreter's name (Python: ORT's pool, paho).
  if (comm === 'node' || comm.startsWith('python')) return 'runtime';
  return 'gstreamer';
}

/** CPU ms so far per thread group of a process. */
function threadCpu(pid: number): Record<ThreadGroup, number> {
  const out: Record<ThreadGroup, number> = { main: 0, worker: 0, ortPool: 0, pull: 0, gstreamer: 0, runtime: 0 };
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[groupOf(pid, Number(t), comm)] += (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

/** The whole process's CPU ms so far, threads that ended included. */
const processCpu = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
};
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const loadavg = () => os.loadavg().map((x) => r2(x));

export interface CameraRateRow {
  scenario: string;
  program: 'daemon' | 'python';
  cameras: number;
  fps: number;
  frames: number;
  wallS: number;
  resultsPerS: Record<string, number>;
  /** Whole process, all threads (ended ones too), per inferred frame. */
  cpuMsPerFrame: number;
  cpuMsPerFrameByThread: Record<ThreadGroup, number>;
  latencyP50: number;
  latencyP99: number;
  inferenceP50: number;
  /** Capture -> the payload built (its latencyMs.total): what comes before the journal, the publish and the broker. */
  builtP50: number;
  rssMb: number;
  loadavg: { start: number[]; end: number[] };
}

/** Results as a separate subscriber receives them: "<receipt unix time> <payload>" lines. */
function subscribe(port: number, topic: string, file: string): ChildProcess {
  const out = openSync(file, 'w');
  return spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-F', '%U %p', '-q', '0'], {
    stdio: ['ignore', out, 'inherit'],
  });
}

/** The fields the bench reads from the daemon's and the Python loop's payloads. */
interface Payload {
  capturedAtMs: number;
  latencyMs?: { inference?: number; total?: number };
  timestamp: number;
  ms?: { infer?: number };
}

interface Received {
  atMs: number;
  capturedAtMs: number;
  inferenceMs: number;
  builtMs?: number;
}

function readReceived(file: string, parse: (p: Payload) => { capturedAtMs: number; inferenceMs: number; builtMs?: number }): Received[] {
  const out: Received[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    try {
      out.push({ atMs: Number(line.slice(0, sp)) * 1000, ...parse(JSON.parse(line.slice(sp + 1))) });
    } catch {
      // a partial last line
    }
  }
  return out;
}

interface Window {
  t0: number;
  t1: number;
  cpu: number;
  threads: Record<ThreadGroup, number>;
  rss: number;
  load: { start: number[]; end: number[] };
}

/** Waits out the warm-up, then measures one window of a running process. */
async function measure(pid: number, warmupS: number, seconds: number, before?: () => Promise<void>, after?: () => Promise<void>) {
  await sleep(warmupS * 1000);
  const start = loadavg();
  await before?.();
  const th0 = threadCpu(pid);
  const c0 = processCpu(pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const th1 = threadCpu(pid);
  const c1 = processCpu(pid);
  const t1 = Date.now();
  await after?.();
  const threads = Object.fromEntries(Object.entries(th1).map(([k, v]) => [k, v - th0[k as ThreadGroup]])) as Record<ThreadGroup, number>;
  return { t0, t1, cpu: c1 - c0, threads, rss: rssMb(pid), load: { start, end: loadavg() } } satisfies Window;
}

function row(
  scenario: string,
  program: CameraRateRow['program'],
  fps: number,
  w: Window,
  frames: Record<string, number>,
  got: Received[],
): CameraRateRow {
  const n = Object.values(frames).reduce((a, b) => a + b, 0);
  const wallS = (w.t1 - w.t0) / 1000;
  const inWindow = got.filter((g) => g.capturedAtMs >= w.t0 && g.capturedAtMs < w.t1);
  return {
    scenario,
    program,
    cameras: Object.keys(frames).length,
    fps,
    frames: n,
    wallS: r2(wallS),
    resultsPerS: Object.fromEntries(Object.entries(frames).map(([k, v]) => [k, r2(v / wallS)])),
    cpuMsPerFrame: r2(w.cpu / n),
    cpuMsPerFrameByThread: Object.fromEntries(Object.entries(w.threads).map(([k, v]) => [k, r2(v / n)])) as Record<ThreadGroup, number>,
    latencyP50: r2(
      pct(
        inWindow.map((g) => g.atMs - g.capturedAtMs),
        50,
      ),
    ),
    latencyP99: r2(
      pct(
        inWindow.map((g) => g.atMs - g.capturedAtMs),
        99,
      ),
    ),
    inferenceP50: r2(
      pct(
        inWindow.map((g) => g.inferenceMs),
        50,
      ),
    ),
    builtP50: r2(
      pct(
        inWindow.map((g) => g.builtMs ?? NaN).filter((x) => !Number.isNaN(x)),
        50,
      ),
    ),
    rssMb: Math.round(w.rss),
    loadavg: w.load,
  };
}

/** `npm run build` output, rebuilt when missing: the bench measures the daemon as a device runs it. */
function ensureBuilt(build = true): void {
  if (existsSync(CLI) && !build) return;
  const r = spawnSync(
    process.execPath,
    [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.build.json')],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) throw new Error('tsc -p tsconfig.build.json failed: the camera-rate bench runs the built daemon');
}

interface Scenario {
  name: string;
  fps: number;
  cameras: number;
  /** A model package, or the eyes demo's pipeline. */
  model: string | 'eyes';
  /** The model's ORT intra-op threads (default 2, as the Python loop's). */
  intraOpThreads?: number;
}

async function runDaemon(s: Scenario, work: string, broker: Broker, warmupS: number, seconds: number, cli = CLI): Promise<CameraRateRow> {
  const httpPort = await freePort();
  const names = Array.from({ length: s.cameras }, (_, i) => `cam${i + 1}`);
  const smpte = `test://smpte?width=640&height=480&fps=${s.fps}`;
  const base =
    s.model === 'eyes'
      ? (() => {
          const d = demoConfig('eyes') as { cameras: Record<string, Record<string, unknown>> };
          d.cameras.kiosk.fps = s.fps;
          names.splice(0, names.length, 'kiosk');
          return d;
        })()
      : {
          cameras: Object.fromEntries(names.map((n) => [n, { uri: smpte }])),
          model: { path: s.model, providers: ['cpu'], intraOpThreads: s.intraOpThreads ?? 2, interOpThreads: 1 },
        };
  const tag = s.name.replace(/\W+/g, '-');
  const config = {
    deviceId: 'camrate',
    ...base,
    mqtt: { url: broker.url, prefix: 'bench', protocolVersion: 5 },
    journal: { path: path.join(work, `journal-${tag}.sqlite`) },
    http: { port: httpPort },
    log: { level: 'warn', format: 'json' },
  };
  const configPath = path.join(work, `config-${tag}.yaml`);
  writeFileSync(configPath, stringify(config));
  const subFile = path.join(work, `results-${tag}.txt`);
  const sub = subscribe(broker.port, 'bench/camrate/+/result', subFile);
  // EDGE_INFERD_* variables are config overrides for the daemon: the bench's own (EDGE_INFERD_BENCH_MODELS) stay here.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGE_INFERD_')));
  const proc = spawn(process.execPath, ['--max-semi-space-size=4', cli, 'run', '--config', configPath], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  });
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code) => reject(new Error(`the daemon exited (${code}) during the run`))),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitPort(httpPort, 60_000), exited]);
    const inferred = async () => {
      const st = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as { cameras: Record<string, { inferred: number }> };
      return Object.fromEntries(names.map((n) => [n, st.cameras[n]?.inferred ?? 0]));
    };
    let f0: Record<string, number> = {};
    let f1: Record<string, number> = {};
    const w = await measure(
      proc.pid!,
      warmupS,
      seconds,
      async () => {
        f0 = await inferred();
      },
      async () => {
        f1 = await inferred();
      },
    );
    await sleep(300); // the last results reach the subscriber
    const frames = Object.fromEntries(names.map((n) => [n, f1[n] - f0[n]]));
    const got = readReceived(subFile, (p) => ({
      capturedAtMs: p.capturedAtMs,
      // A pipeline camera's inference is its stages' (latencyMs.inference is the detector's; the rest ride the same frame).
      inferenceMs: p.latencyMs?.inference ?? NaN,
      builtMs: p.latencyMs?.total,
    }));
    return row(s.name, 'daemon', s.fps, w, frames, got);
  } finally {
    await stopProc(proc);
    await stopProc(sub);
  }
}

const BASELINE = ['../shared/baseline-python', '/work/shared/baseline-python'].map((p) => path.resolve(REPO, p)).find((p) => existsSync(p));

async function runPython(venv: string, onnx: string, fps: number, work: string, broker: Broker, warmupS: number, seconds: number) {
  if (!BASELINE) throw new Error('../shared/baseline-python not found');
  const subFile = path.join(work, `python-${Date.now()}.txt`);
  const sub = subscribe(broker.port, 'baseline/python_loop/result', subFile);
  const gst = `videotestsrc is-live=true pattern=smpte ! video/x-raw,width=640,height=480,framerate=${fps}/1 ! videoconvert ! video/x-raw,format=BGR ! appsink`;
  const args = [
    path.join(BASELINE, 'python_loop.py'),
    ...['--source', 'gst', '--gst-pipeline', gst, '--engine', 'ort', '--onnx', onnx, '--threads', '2', '--ort-spin', '0'],
    ...[
      '--mqtt',
      `127.0.0.1:${broker.port}`,
      '--qos',
      '1',
      '--frames',
      String(Math.ceil(fps * (warmupS + seconds + 30))),
      '--warmup',
      '10',
    ],
  ];
  const proc = spawn(path.join(venv, 'bin/python'), args, { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    const w = await measure(proc.pid!, warmupS, seconds);
    await sleep(300);
    // Its payload's timestamp is taken when capture returns the frame; it says the inference in ms.infer.
    const got = readReceived(subFile, (p) => ({ capturedAtMs: p.timestamp * 1000, inferenceMs: p.ms?.infer ?? NaN }));
    const frames = got.filter((g) => g.capturedAtMs >= w.t0 && g.capturedAtMs < w.t1).length;
    return row(`Python loop, 1 camera at ${fps} fps`, 'python', fps, w, { cam: frames }, got);
  } finally {
    await stopProc(proc);
    await stopProc(sub);
  }
}

export interface CameraRateOptions {
  seconds?: number;
  warmupS?: number;
  /** A mobilenet_v2-224 package; made from ../shared/bench-models when absent (else the demo model). */
  modelsDir?: string;
  log?: (s: string) => void;
  /** Run `tsc -p tsconfig.build.json` first (default); false: use dist/ as it is when it exists. */
  build?: boolean;
  /** Only the scenarios whose name contains this. */
  only?: string;
  /** Another build's dist/src/cli.js: each scenario runs it and this one in turn, `reps` times (before/after a change). */
  against?: string;
  reps?: number;
}

/** A bench model package in `work`: mobilenet_v2-224 when the bench models are there, else the demo model. */
async function mobilenet(work: string, modelsDir?: string): Promise<{ dir: string; onnx: string; name: string }> {
  const dir = modelsDir ?? benchModelsDir();
  if (!dir) {
    const demo = path.join(REPO, 'models/demo');
    return { dir: demo, onnx: path.join(demo, 'model.onnx'), name: 'demo' };
  }
  const m = BENCH_MODELS[0];
  const pkg = await benchPackage(m, dir, path.join(work, 'mobilenet'));
  return { dir: pkg, onnx: path.join(dir, m.file), name: path.basename(m.file, '.onnx') };
}

/** The camera-rate section of `npm run bench`: one camera at 15 and 30 fps, four at 15 fps on one model, the eyes pipeline at 15 fps. */
export async function benchCameraRate(opts: CameraRateOptions = {}): Promise<{ model: string; rows: CameraRateRow[] }> {
  const seconds = opts.seconds ?? 15;
  const warmupS = opts.warmupS ?? 8;
  const log = opts.log ?? ((s: string) => console.error(s));
  ensureBuilt(opts.build);
  const work = mkdtempSync(path.join(os.tmpdir(), 'edge-inferd-camrate-'));
  const broker = await startMosquitto(work);
  try {
    const m = await mobilenet(work, opts.modelsDir);
    const scenarios: Scenario[] = [
      { name: `${m.name}, 1 camera at 15 fps`, fps: 15, cameras: 1, model: m.dir },
      { name: `${m.name}, 1 camera at 30 fps`, fps: 30, cameras: 1, model: m.dir },
      { name: `${m.name}, 4 cameras at 15 fps, one model`, fps: 15, cameras: 4, model: m.dir },
      { name: 'eyes pipeline (face -> eyes), 1 camera at 15 fps', fps: 15, cameras: 1, model: 'eyes' },
    ];
    const rows: CameraRateRow[] = [];
    for (const s of scenarios.filter((x) => !opts.only || x.name.includes(opts.only))) {
      if (!opts.against) {
        log(`camera rate: ${s.name}`);
        rows.push(await runDaemon(s, work, broker, warmupS, seconds));
        continue;
      }
      for (let rep = 1; rep <= (opts.reps ?? 1); rep++) {
        log(`camera rate: ${s.name}, rep ${rep}: this build, then ${opts.against}`);
        rows.push(await runDaemon(s, work, broker, warmupS, seconds));
        const other = await runDaemon({ ...s, name: `${s.name} (against)` }, work, broker, warmupS, seconds, opts.against);
        rows.push(other);
      }
    }
    return { model: m.name, rows };
  } finally {
    await broker.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Daemon and Python loop interleaved at one camera rate (the same live source, model, threads and broker). */
async function benchAgainstPython(
  opts: CameraRateOptions & { venv: string; reps: number; fps: number; daemonThreads: number },
): Promise<CameraRateRow[]> {
  const seconds = opts.seconds ?? 15;
  const warmupS = opts.warmupS ?? 8;
  const log = opts.log ?? ((s: string) => console.error(s));
  ensureBuilt(opts.build);
  const work = mkdtempSync(path.join(os.tmpdir(), 'edge-inferd-camrate-py-'));
  const broker = await startMosquitto(work);
  try {
    const m = await mobilenet(work, opts.modelsDir);
    const rows: CameraRateRow[] = [];
    for (let rep = 1; rep <= opts.reps; rep++) {
      log(`rep ${rep}: daemon at ${opts.fps} fps`);
      rows.push(
        await runDaemon(
          {
            name: `daemon, 1 camera at ${opts.fps} fps${opts.daemonThreads === 2 ? '' : `, ${opts.daemonThreads} intra-op threads`}`,
            fps: opts.fps,
            cameras: 1,
            model: m.dir,
            intraOpThreads: opts.daemonThreads,
          },
          work,
          broker,
          warmupS,
          seconds,
        ),
      );
      log(`rep ${rep}: Python loop at ${opts.fps} fps`);
      rows.push(await runPython(opts.venv, m.onnx, opts.fps, work, broker, warmupS, seconds));
    }
    return rows;
  } finally {
    await broker.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

/** The per-thread table (markdown). */
export function formatCameraRate(rows: CameraRateRow[]): string {
  const groups = Object.keys(THREAD_GROUPS) as ThreadGroup[];
  const head = [
    'run',
    'results/s per camera',
    'CPU ms/frame',
    ...groups.map((g) => THREAD_GROUPS[g]),
    'latency p50 / p99 ms',
    'inference p50 ms',
    'capture → payload p50 ms',
    'RSS MB',
    'load avg',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    Object.values(r.resultsPerS)
      .map((x) => x.toFixed(1))
      .join(' / '),
    f2(r.cpuMsPerFrame),
    ...groups.map((g) => f2(r.cpuMsPerFrameByThread[g])),
    `${f2(r.latencyP50)} / ${f2(r.latencyP99)}`,
    f2(r.inferenceP50),
    f2(r.builtP50),
    String(r.rssMb),
    r.loadavg.start[0].toFixed(1),
  ]);
  return [head, head.map(() => '---'), ...lines].map((l) => `| ${l.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '15' },
      warmup: { type: 'string', default: '8' },
      python: { type: 'string' },
      reps: { type: 'string', default: '3' },
      fps: { type: 'string', default: '30' },
      'daemon-threads': { type: 'string', default: '2' },
      models: { type: 'string' },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      only: { type: 'string' },
      against: { type: 'string' },
    },
  });
  const common = {
    seconds: Number(values.seconds),
    warmupS: Number(values.warmup),
    modelsDir: values.models,
    build: !values['no-build'],
    only: values.only,
    ...(values.against ? { against: path.resolve(values.against), reps: Number(values.reps) } : {}),
  };
  const result: { againstPython?: CameraRateRow[]; cameraRate?: { model: string; rows: CameraRateRow[] } } = values.python
    ? {
        againstPython: await benchAgainstPython({
          ...common,
          venv: values.python,
          reps: Number(values.reps),
          fps: Number(values.fps),
          daemonThreads: Number(values['daemon-threads']),
        }),
      }
    : { cameraRate: await benchCameraRate(common) };
  const rows = result.againstPython ?? result.cameraRate?.rows ?? [];
  console.log(formatCameraRate(rows));
  if (result.againstPython) {
    for (let i = 0; i + 1 < rows.length; i += 2) {
      console.log(`rep ${i / 2 + 1}: daemon / Python CPU per frame = ${(rows[i].cpuMsPerFrame / rows[i + 1].cpuMsPerFrame).toFixed(2)}`);
    }
  }
  if (values.out)
    writeFileSync(values.out, JSON.stringify({ machine: { nproc: os.availableParallelism(), loadavg: loadavg() }, ...result }, null, 2));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
