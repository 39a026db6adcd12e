// The preview row of `npm run bench`: what GET /preview.mjpeg costs per camera frame with 0, 1 and
// 3 viewers. The real PreviewHub behind the real HTTP server; each viewer is a separate curl
// process reading the stream (so the bench process's CPU is the daemon side only: redaction copy,
// RGB copy, the JPEG encoding in sharp's threads, the writes). 640x480 RGB frames with a detected
// box (redacted and outlined, the default); every frame is due (the clock steps 1/maxFps per frame).
//
//   npx tsx scripts/bench-preview.ts [--frames 200]
import { type ChildProcess, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { Frame } from '../src/capture/frame.js';
import { type Clock, systemClock } from '../src/clock.js';
import { createLogger } from '../src/log.js';
import { PreviewHub } from '../src/health/preview.js';
import { previewRoute } from '../src/health/routes/preview.js';
import { HealthServer } from '../src/health/server.js';
import type { Inference } from '../src/inference/types.js';

export interface PreviewBenchRow {
  viewers: number;
  frames: number;
  /** Whole-process CPU per camera frame, ms (main thread and sharp's threads). */
  cpuMsPerFrame: number;
  /** JPEG encodings per frame (1 with any number of viewers sharing a way of drawing, 0 with none). */
  encodesPerFrame: number;
  /** Frames each viewer received. */
  receivedPerViewer: number;
}

const W = 640;
const H = 480;
const FPS = 10;

function testFrame(seq: number): Frame {
  const data = new Uint8Array(W * H * 3);
  // A gradient with a moving bar: the encoder has real content to compress.
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3;
      data[i] = x & 255;
      data[i + 1] = y & 255;
      data[i + 2] = Math.abs(x - ((seq * 8) % W)) < 20 ? 255 : 64;
    }
  return { camera: 'cam', seq, width: W, height: H, stride: W * 3, format: 'RGB', data, capturedAtMs: Date.now() };
}

const inf = {
  task: 'detect',
  detections: [{ index: 0, label: 'face', score: 0.9, box: { x: 200, y: 120, w: 160, h: 200 } }],
  model: { name: 'bench', version: '1', sha256: '0'.repeat(64), task: 'detect', provider: 'cpu' },
  latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
} as Inference;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export async function benchPreview(opts: { frames: number }): Promise<PreviewBenchRow[]> {
  let t = 0;
  const clock: Clock = { ...systemClock, now: () => Date.now(), monotonic: () => t };
  const log = createLogger({ level: 'warn', format: 'json', destination: { write: (s: string) => void process.stderr.write(s) } });
  const hub = new PreviewHub({ clock, log, maxFps: FPS, maxClients: 8, quality: 70, privacy: () => 'redact' });
  const server = new HealthServer({
    host: '127.0.0.1',
    port: 0,
    log,
    source: { health: () => ({ ok: true }), ready: () => ({ ok: true, checks: {} }), status: () => ({}) },
  });
  server.addRoute(
    previewRoute(
      hub,
      () => ['cam'],
      () => 'redact',
    ),
  );
  await server.start();
  const frames = Array.from({ length: 8 }, (_, i) => testFrame(i));
  const rows: PreviewBenchRow[] = [];
  try {
    for (const viewers of [0, 1, 3]) {
      const curls: ChildProcess[] = [];
      const received: number[] = [];
      for (let v = 0; v < viewers; v++) {
        const c = spawn('curl', ['-sN', `http://127.0.0.1:${server.port}/preview.mjpeg?camera=cam`], {
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        const i = received.push(0) - 1;
        c.stdout?.on('data', (d: Buffer) => (received[i] += d.toString('latin1').split('--edge-inferd-frame').length - 1));
        curls.push(c);
      }
      while (hub.stats().clients < viewers) await new Promise((r) => setTimeout(r, 10));
      const run = async (n: number) => {
        for (let f = 0; f < n; f++) {
          t += 1000 / FPS;
          hub.record(frames[f % frames.length], inf);
          await hub.idle();
          // Gives the writes their turn, as the time between camera frames does.
          await new Promise((r) => setImmediate(r));
        }
      };
      await run(20); // warm-up
      const e0 = hub.stats().encodes;
      const c0 = cpuMs();
      await run(opts.frames);
      const cpu = cpuMs() - c0;
      rows.push({
        viewers,
        frames: opts.frames,
        cpuMsPerFrame: cpu / opts.frames,
        encodesPerFrame: (hub.stats().encodes - e0) / opts.frames,
        receivedPerViewer: viewers ? Math.min(...received) : 0,
      });
      for (const c of curls) c.kill();
      while (hub.stats().clients > 0) await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await server.stop();
  }
  return rows;
}

export function formatPreviewRows(rows: PreviewBenchRow[]): string {
  const lines = ['preview (640x480, redacted + boxes, 10 fps)  viewers | CPU ms/frame | encodings/frame | frames received per viewer'];
  for (const r of rows)
    lines.push(`  ${r.viewers} | ${r.cpuMsPerFrame.toFixed(2)} | ${r.encodesPerFrame.toFixed(2)} | ${r.receivedPerViewer}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { frames: { type: 'string', default: '200' } } });
  benchPreview({ frames: Number(values.frames) })
    .then((rows) => {
      console.log(formatPreviewRows(rows));
      console.log(JSON.stringify(rows));
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
