// Preprocessing cost per frame for the bench models' input contracts: the TypeScript reference and
// the native tensor writer (the daemon's path), from the camera's 640x480 RGB frame and from the
// frame GStreamer delivers when it scales to the model (what the daemon sees).
//   npx tsx scripts/bench-preprocess.ts
import type { Frame } from '../src/capture/frame.js';
import type { InputSpec } from '../src/inference/manifest.js';
import { geometryFor, Preprocessor } from '../src/inference/preprocess.js';
import { Tensorizer } from '../src/inference/tensorize.js';

const specs: [string, InputSpec][] = [
  [
    '640 letterbox /255',
    {
      name: 'images',
      width: 640,
      height: 640,
      layout: 'NCHW',
      colour: 'RGB',
      dtype: 'float32',
      resize: 'letterbox',
      scale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    } as InputSpec,
  ],
  [
    '224 stretch imagenet',
    {
      name: 'images',
      width: 224,
      height: 224,
      layout: 'NCHW',
      colour: 'RGB',
      dtype: 'float32',
      resize: 'stretch',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    } as InputSpec,
  ],
  [
    '256 stretch imagenet',
    {
      name: 'images',
      width: 256,
      height: 256,
      layout: 'NCHW',
      colour: 'RGB',
      dtype: 'float32',
      resize: 'stretch',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    } as InputSpec,
  ],
];

function frameOf(width: number, height: number): Frame {
  const stride = Math.ceil((width * 3) / 4) * 4;
  const data = new Uint8Array(stride * height);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  return { camera: 'b', seq: 0, width, height, stride, format: 'RGB', data, capturedAtMs: 0 };
}

function median(run: () => void): number {
  for (let i = 0; i < 50; i++) run();
  const ms: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    run();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b)[100];
}

console.log('ms per frame, median of 200   from 640x480: reference / native   from the scaled frame: reference / native');
for (const [name, spec] of specs) {
  const g = geometryFor(spec, 640, 480);
  const scaled =
    spec.resize === 'letterbox' ? frameOf(Math.round(640 * g.scaleX), Math.round(480 * g.scaleY)) : frameOf(spec.width, spec.height);
  const row: string[] = [];
  for (const frame of [frameOf(640, 480), scaled]) {
    const ref = new Preprocessor(spec);
    const t = new Tensorizer(spec);
    const slot = new ArrayBuffer(t.byteLength);
    row.push(
      `${median(() => ref.run(frame)).toFixed(3)} / ${median(() => t.write(frame, slot)).toFixed(3)} (${frame.width}x${frame.height})`,
    );
  }
  console.log(`${name.padEnd(22)} ${row.join('   ')}`);
}
