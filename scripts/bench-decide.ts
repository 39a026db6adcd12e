/**
 * Cost of the decide stage and of the payloads it leads to, per frame, on this machine:
 * `npx tsx scripts/bench-decide.ts`. Prints a table; nothing here is asserted.
 */
import type { Frame } from '../src/capture/frame.js';
import { frameToJpeg } from '../src/capture/jpeg.js';
import { CameraDecider, type PolicyName } from '../src/decide/policy.js';
import { eventPayload, resultPayload } from '../src/publish/payload.js';

const LABELS = ['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash'];
const model = { name: 'demo', version: '1.0.0', sha256: 'a'.repeat(64), task: 'classify' as const, provider: 'cpu' };

function time(fn: (i: number) => void, n: number): number {
  for (let i = 0; i < Math.min(n, 1000); i++) fn(i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return ((performance.now() - t0) * 1000) / n; // µs per call
}

const rows: [string, string][] = [];
for (const [policy, n] of [
  ['every', 5],
  ['change', 5],
  ['stable', 5],
  ['stable', 30],
  ['interval', 5],
] as [PolicyName, number][]) {
  const d = new CameraDecider({ policy, intervalSec: 1, stable: { k: Math.ceil(n * 0.6), n, minScore: 0.5 } });
  // labels in runs of 7 frames with a stray frame now and then: changes, stable and cleared all happen
  const us = time(
    (i) => d.observe({ label: i % 23 === 0 ? 'trash' : LABELS[Math.floor(i / 7) % 6], score: 0.6 + (i % 5) * 0.08, atMs: i * 33 }),
    200_000,
  );
  rows.push([`decide, policy ${policy}, window n=${n}`, `${us.toFixed(3)} µs/frame`]);
}

const frame = (w: number, h: number): Frame => ({
  camera: 'tray',
  seq: 1,
  width: w,
  height: h,
  stride: w * 3,
  format: 'RGB',
  data: new Uint8Array(w * h * 3).map((_, i) => (i * 7) & 255),
  capturedAtMs: Date.now(),
  name: 'x.png',
});
const inference = {
  task: 'classify' as const,
  model,
  top: LABELS.slice(0, 3).map((label, index) => ({ label, index, score: 0.3 })),
  latencyMs: { preprocess: 1, inference: 2, postprocess: 0.1 },
};
const f = frame(320, 240);
rows.push([
  'result payload + JSON.stringify',
  `${time(() => JSON.stringify(resultPayload({ deviceId: 'k', seq: 1, frame: f, inference, model, nowMs: Date.now() })), 50_000).toFixed(2)} µs`,
]);
rows.push([
  'event payload + JSON.stringify',
  `${time(() => JSON.stringify(eventPayload({ deviceId: 'k', camera: 'tray', seq: 1, decision: { type: 'stable', label: 'glass', score: 0.9, atMs: 1, sinceMs: 0, frames: 3 }, frame: f, model, rule: { k: 3, n: 5, minScore: 0.5 }, nowMs: Date.now() })), 50_000).toFixed(2)} µs`,
]);
for (const [w, h] of [
  [320, 240],
  [1920, 1080],
]) {
  const fr = frame(w, h);
  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < 10; i++) bytes = (await frameToJpeg(fr, { quality: 80 })).jpeg.length;
  rows.push([
    `snapshot JPEG ${w}x${h} q80`,
    `${((performance.now() - t0) / 10).toFixed(1)} ms, ${Math.round(bytes / 1024)} KiB (${Math.round((bytes * 4) / 3 / 1024)} KiB base64)`,
  ]);
}

const width = Math.max(...rows.map(([a]) => a.length));
console.log(`${'what'.padEnd(width)}  cost\n${'-'.repeat(width)}  ----`);
for (const [a, b] of rows) console.log(`${a.padEnd(width)}  ${b}`);
