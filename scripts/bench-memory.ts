// Where the daemon's memory goes: the one-camera pipeline of `npm run bench` (test://smpte 640x480
// at a fixed rate -> model -> journal -> a local Mosquitto), then the process's resident memory
// split by mapping (/proc/self/smaps): V8 heaps, ONNX Runtime (its library and the allocations made
// while inferring), GStreamer, SQLite, Node itself. Run it from dist/ for the figure a device sees
// (the worker then loads plain JS, not TypeScript through tsx):
//
//   npm run build && node dist/scripts/bench-memory.js [--seconds 20] [--fps 100] [model.onnx|package-dir]
//   npx tsx scripts/bench-memory.ts ...      (from the sources: tsx's loader adds to both heaps)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { stringify } from 'yaml';
import { App } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { BENCH_MODELS, benchModelsDir, benchPackage } from './bench-models.js';
import { startMosquitto } from './bench-processes.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string', default: '20' },
    fps: { type: 'string', default: '100' },
    threads: { type: 'string', default: '2' },
  },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident kB per mapping group, from /proc/self/smaps. */
export function residentByMapping(): Map<string, number> {
  const out = new Map<string, number>();
  let group = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      group = classify(head[1]);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out.set(group, (out.get(group) ?? 0) + Number(rss[1]));
  }
  return out;
}

function classify(name: string): string {
  if (name === '') return 'anonymous (V8 heaps, malloc arenas of every thread: ORT tensors, GStreamer buffers, SQLite cache)';
  if (name === '[heap]') return "[heap] (the main thread's malloc)";
  if (/onnxruntime/.test(name)) return 'ONNX Runtime libraries (code, data)';
  if (/gst|glib|gobject|orc/.test(name)) return 'GStreamer / GLib libraries';
  if (/better_sqlite3|sqlite/.test(name)) return 'SQLite (better-sqlite3 addon)';
  if (/vips|sharp/.test(name)) return 'sharp / libvips';
  if (/\/node$|\/nodejs?$/.test(name) || /libnode/.test(name)) return 'node binary';
  if (/\.so/.test(name) || /\.node$/.test(name)) return 'other shared libraries and addons';
  if (/\[stack/.test(name)) return 'stacks';
  return `other (${name.replace(/^.*\//, '')})`;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'edge-inferd-mem-'));
  const arg = positionals[0];
  let modelDir: string;
  if (arg && !arg.endsWith('.onnx')) modelDir = path.resolve(arg);
  else {
    const file = arg ? path.basename(arg) : 'mobilenet_v2-224.onnx';
    const m = BENCH_MODELS.find((b) => b.file === file);
    const dir = arg ? path.dirname(arg) : benchModelsDir();
    if (!m || !dir) throw new Error(`${file}: not a bench model (or no bench models folder)`);
    modelDir = await benchPackage(m, dir);
  }
  const broker = await startMosquitto(work);
  const before = process.memoryUsage.rss();
  const raw = {
    deviceId: 'dev',
    cameras: { cam1: { uri: `test://smpte?width=640&height=480&fps=${values.fps}` } },
    model: { path: modelDir, providers: ['cpu'], intraOpThreads: Number(values.threads), interOpThreads: 1 },
    mqtt: { url: broker.url, prefix: 'bench', protocolVersion: 5 },
    journal: { path: path.join(work, 'journal.sqlite') },
    http: { enabled: false },
    commands: { enabled: false },
    stats: { intervalSec: 0 },
    log: { level: 'warn', format: 'json' },
  };
  const configPath = path.join(work, 'config.yaml');
  writeFileSync(configPath, stringify(raw));
  const log = createLogger({ level: 'warn', format: 'json', destination: { write: (s: string) => void process.stderr.write(s) } });
  const app = new App(loadConfig({ file: configPath, env: {} }), log, { notify: () => false });
  await app.start();
  const samples: number[] = [];
  const end = Date.now() + Number(values.seconds) * 1000;
  while (Date.now() < end) {
    await sleep(1000);
    samples.push(process.memoryUsage.rss());
  }
  const groups = residentByMapping();
  const mu = process.memoryUsage();
  const heap = getHeapStatistics();
  const inferred = Object.values(app.status().cameras).reduce((a, c) => a + ((c as { inferred?: number }).inferred ?? 0), 0);
  await app.stop();
  await broker.stop();
  rmSync(work, { recursive: true, force: true });
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(
    `RSS ${mb(samples.at(-1)!)} MB after ${values.seconds} s, ${inferred} frames (max ${mb(Math.max(...samples))} MB; ${mb(before)} MB before the daemon started)`,
  );
  console.log(
    `main thread V8: heap used ${mb(mu.heapUsed)} MB of ${mb(mu.heapTotal)} MB (V8's own limit ${mb(heap.heap_size_limit)} MB); external ${mb(mu.external)} MB, ArrayBuffers ${mb(mu.arrayBuffers)} MB`,
  );
  console.log('resident by mapping (MB):');
  for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`  ${(v / 1024).toFixed(1).padStart(6)}  ${k}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
