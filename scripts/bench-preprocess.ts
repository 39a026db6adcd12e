// Preprocessing cost per frame (640x480 RGB source) for the bench models' input contracts.
//   npx tsx scripts/bench-preprocess.ts
import type { Frame } from '../src/capture/frame.js';
import type { InputSpec } from '../src/inference/manifest.js';
import { Preprocessor } from '../src/inference/preprocess.js';

const specs: [string, InputSpec][] = [
  ['640 letterbox /255', { name: 'images', width: 640, height: 640, layout: 'NCHW', colour: 'RGB', dtype: 'float32', resize: 'letterbox', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] } as InputSpec],
  ['224 stretch imagenet', { name: 'images', width: 224, height: 224, layout: 'NCHW', colour: 'RGB', dtype: 'float32', resize: 'stretch', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as InputSpec],
  ['256 stretch imagenet', { name: 'images', width: 256, height: 256, layout: 'NCHW', colour: 'RGB', dtype: 'float32', resize: 'stretch', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as InputSpec],
];
const data = new Uint8Array(640 * 480 * 3);
for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
const frame: Frame = { camera: 'b', seq: 0, width: 640, height: 480, stride: 640 * 3, format: 'RGB', data, capturedAtMs: 0 };
for (const [name, spec] of specs) {
  const p = new Preprocessor(spec);
  for (let i = 0; i < 50; i++) p.run(frame);
  const ms: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    p.run(frame);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  console.log(`${name.padEnd(22)} median ${ms[100].toFixed(3)} ms  p10 ${ms[20].toFixed(3)} ms`);
}
