#!/usr/bin/env node
// Capture benchmark: frames/s and CPU per frame for W×H RGB from videotestsrc through our addon,
// against gst-launch-1.0 with the same source into fakesink, plus event-loop lateness while
// capturing. CPU is process CPU (all threads: GStreamer's streaming thread, our pull thread, JS).
// Start-up cost (plugin loading, pipeline set-up) is removed by also running a 1-frame pipeline
// and taking the difference.
//
//   node scripts/bench-capture.mjs [--frames 1000] [--width 640] [--height 480] [--runs 3]
//
// Loads dist/src/capture/native.js when built (npm run build), else src/capture/native.ts when run
// with `node --import tsx scripts/bench-capture.mjs`, else the raw addon.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '1000' },
    width: { type: 'string', default: '640' },
    height: { type: 'string', default: '480' },
    runs: { type: 'string', default: '3' },
  },
});
const N = Number(values.frames);
const W = Number(values.width);
const H = Number(values.height);
const RUNS = Number(values.runs);
const caps = `video/x-raw,format=RGB,width=${W},height=${H}`;

async function loadCapture() {
  for (const [file, how] of [
    [join(root, 'dist', 'src', 'capture', 'native.js'), 'dist/src/capture/native.js'],
    [join(root, 'src', 'capture', 'native.ts'), 'src/capture/native.ts (tsx)'],
  ]) {
    if (!existsSync(file)) continue;
    try {
      const mod = await import(pathToFileURL(file).href);
      return { how, make: () => new mod.NativeCapture(), available: mod.captureAvailable() };
    } catch {
      // .ts without tsx: try the next
    }
  }
  const addon = join(root, 'native', 'build', 'Release', 'edge_capture.node');
  if (!existsSync(addon)) return { how: 'none', available: { ok: false, reason: `${addon} is not built` } };
  const raw = createRequire(import.meta.url)(addon);
  return {
    how: 'raw addon',
    available: { ok: true },
    make: () => {
      const c = new raw.Capture();
      return {
        open: (p, o = {}) => c.open(p, 'sink', o.copy ?? true, 100),
        read: () => c.read(),
        close: () => c.close(),
        stats: () => c.stats(),
      };
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
};

/** gst-launch-1.0 in bash; `times` prints the children's user and system CPU. */
function gstLaunch(frames) {
  const pipeline = `videotestsrc num-buffers=${frames} ! ${caps} ! fakesink`;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', `gst-launch-1.0 -q ${pipeline} >/dev/null || exit 1; times`], { encoding: 'utf8' });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`gst-launch-1.0 failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').at(-1); // "0m0.512s 0m0.080s" = children user, sys
  const secs = line.split(/\s+/).map((t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  });
  return { wallMs, cpuMs: (secs[0] + secs[1]) * 1000 };
}

/**
 * Opens a source of `frames` frames, reads until `endCode` (the source has ended), and measures
 * process CPU, wall time and the lateness of a 5 ms timer meanwhile.
 */
async function measure(frames, { open, read, endCode, close }) {
  const lateness = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lateness.push(Math.max(0, now - last - 5));
    last = now;
  }, 5);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await open(`videotestsrc num-buffers=${frames} ! ${caps} ! appsink name=sink sync=false`);
  let n = 0;
  for (;;) {
    try {
      await read();
      n++;
    } catch (err) {
      if (err.code !== endCode) throw err;
      break;
    }
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  clearInterval(timer);
  const dropped = await close();
  return { wallMs, cpuMs: (c.user + c.system) / 1000, read: n, dropped, lateness };
}

/** The addon through NativeCapture. */
function ours(make, frames, copy) {
  const cap = make();
  return measure(frames, {
    open: (pipeline) => cap.open(pipeline, { copy }),
    read: () => cap.read(),
    endCode: 'EOS',
    close: () => {
      const { dropped } = cap.stats();
      cap.close();
      return dropped;
    },
  });
}

/** A table row: per-frame figures from a run of N frames minus a run of 1 (start-up cost), median of RUNS. */
async function row(label, runOnce) {
  await runOnce(50); // warm up: plugin loading, JIT
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const big = await runOnce(N);
    const one = await runOnce(1);
    runs.push({
      cpu: (big.cpuMs - one.cpuMs) / (N - 1),
      wall: (big.wallMs - one.wallMs) / (N - 1),
      lagP99: pct(big.lateness, 99),
      read: big.read,
      dropped: big.dropped,
    });
  }
  const cpu = median(runs.map((r) => r.cpu));
  return [
    label,
    1000 / median(runs.map((r) => r.wall)),
    cpu,
    cpu - gCpu,
    median(runs.map((r) => r.lagP99)),
    median(runs.map((r) => r.read)),
    median(runs.map((r) => r.dropped)),
  ];
}

const cap = await loadCapture();
if (!cap.available.ok) {
  console.error(`capture unavailable: ${cap.available.reason}`);
  process.exit(1);
}
console.log(`bench: ${N} frames ${W}x${H} RGB from videotestsrc, ${RUNS} runs (median); wrapper: ${cap.how}; node ${process.version}`);

// gst-launch baseline
const g = [];
for (let i = 0; i < RUNS; i++) {
  const big = gstLaunch(N);
  const one = gstLaunch(1);
  g.push({ cpu: (big.cpuMs - one.cpuMs) / (N - 1), wall: (big.wallMs - one.wallMs) / (N - 1) });
}
const gCpu = median(g.map((x) => x.cpu));
const gWall = median(g.map((x) => x.wall));

const rows = [['gst-launch-1.0 → fakesink', 1000 / gWall, gCpu, 0, null, N, 0]];
for (const copy of [true, false]) {
  rows.push(await row(`addon → read() ${copy ? 'copy (default)' : 'zero-copy'}`, (frames) => ours(cap.make, frames, copy)));
}

// The same through GstCamera (src/capture/gst-camera.ts): what the daemon's frame loop calls.
const gstCameraFile = join(root, 'dist', 'src', 'capture', 'gst-camera.js');
if (existsSync(gstCameraFile)) {
  const { GstCamera } = await import(pathToFileURL(gstCameraFile).href);
  rows.push(
    await row('GstCamera.read() (daemon path)', (frames) => {
      let cam;
      return measure(frames, {
        open: (pipeline) => {
          const reconnect = { initialMs: 1000, maxMs: 30000, jitter: 0, stallMs: 10000 };
          cam = new GstCamera({ name: 'bench', pipeline, display: 'bench', onEos: 'stop', reconnect });
          return cam.start();
        },
        read: () => cam.read(),
        endCode: 'CAMERA_STOPPED',
        close: () => cam.status().dropped,
      });
    }),
  );
}

const header = ['pipeline', 'frames/s', 'CPU ms/frame', 'extra vs gst-launch', 'lag p99 (5 ms timer)', 'frames read', 'superseded'];
const fmt = (r) => [
  r[0],
  r[1].toFixed(0),
  r[2].toFixed(3),
  r[0].startsWith('gst') ? '—' : `${r[3] >= 0 ? '+' : ''}${r[3].toFixed(3)} ms`,
  r[4] === null ? '—' : `${r[4].toFixed(2)} ms`,
  String(r[5]),
  String(r[6]),
];
const table = [header, ...rows.map(fmt)];
const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
for (const [i, r] of table.entries()) {
  console.log(`| ${r.map((c, j) => c.padEnd(widths[j])).join(' | ')} |`);
  if (i === 0) console.log(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
}
console.log('target: extra CPU per frame ≤ 0.3 ms; event-loop lag p99 < 10 ms (DESIGN.md)');
