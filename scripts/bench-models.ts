// Model packages for the random-weight speed fixtures in ../shared/bench-models (see their README):
// the ONNX files carry no manifest, so these describe them (input contract, output format,
// placeholder labels) and assemble a package folder holding each file (a hard link where the
// filesystem allows, else a copy: a package's files must be inside its folder, symlinks resolved).
import { constants, existsSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File } from '../src/inference/package.js';
import { manifest } from './make-fixture-models.js';

export interface BenchModel {
  file: string;
  task: 'classify' | 'detect' | 'segment';
  size: number;
  classes: number;
  /** Manifest lines after `labels:` (task section, normalisation). */
  manifestTail: string;
  output: string;
}

const IMAGENET = 'mean: [0.485, 0.456, 0.406]\n  std: [0.229, 0.224, 0.225]';

export const BENCH_MODELS: BenchModel[] = [
  {
    file: 'mobilenet_v2-224.onnx',
    task: 'classify',
    size: 224,
    classes: 1000,
    output: 'logits',
    manifestTail: `classify:\n  outputs: logits\n  topK: 5\n`,
  },
  {
    file: 'yolo-format-640.onnx',
    task: 'detect',
    size: 640,
    classes: 80,
    output: 'output0',
    manifestTail: `detect:\n  format: yolov8\n  scoreThreshold: 0.25\n  iouThreshold: 0.45\n  maxDetections: 100\n  classAware: true\n`,
  },
  {
    file: 'seg-lraspp-256.onnx',
    task: 'segment',
    size: 256,
    classes: 21,
    output: 'logits',
    manifestTail: `segment:\n  output: scores\n  maskPng: false\n`,
  },
];

/** Where the bench models are: $EDGE_INFERD_BENCH_MODELS, else ../shared/bench-models beside the repository. */
export function benchModelsDir(): string | undefined {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  for (const dir of [process.env.EDGE_INFERD_BENCH_MODELS, path.resolve(repo, '../shared/bench-models'), '/work/shared/bench-models']) {
    if (dir && existsSync(path.join(dir, BENCH_MODELS[0].file))) return dir;
  }
  return undefined;
}

/** A package folder for one bench model (the ONNX file, linked or copied in, + manifest with its sha256). */
export async function benchPackage(m: BenchModel, modelsDir: string, into?: string): Promise<string> {
  const onnx = path.join(modelsDir, m.file);
  const dir = into ?? (await mkdtemp(path.join(os.tmpdir(), `bench-${m.task}-`)));
  await mkdir(dir, { recursive: true });
  const dest = path.join(dir, 'model.onnx');
  if (!existsSync(dest)) await link(onnx, dest).catch(() => copyFile(onnx, dest, constants.COPYFILE_FICLONE));
  const labels = Array.from({ length: m.classes }, (_, i) => `class_${i}`).join('\n') + '\n';
  await writeFile(path.join(dir, 'labels.txt'), labels);
  await writeFile(
    path.join(dir, 'manifest.yaml'),
    manifest({
      name: `bench-${path.basename(m.file, '.onnx')}`,
      version: '0.0.0',
      task: m.task,
      sha: await sha256File(onnx),
      size: m.size,
      resize: m.task === 'detect' ? 'letterbox' : 'stretch',
      normalise: m.task === 'detect' ? undefined : `  ${IMAGENET}\n`,
      output: m.output,
      labels: 'labels.txt',
      extra: m.manifestTail,
      description: 'random-weight speed fixture (outputs mean nothing)',
    }),
  );
  return dir;
}
