import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { formatIssues } from '../config/format.js';
import { parseYaml } from '../config/yaml-file.js';
import { DaemonError, errorMessage } from '../errors.js';
import { type Manifest, manifestSchema } from './manifest.js';

/** A model package on disk: a folder with manifest.yaml and the ONNX file it names. */
export interface ModelPackage {
  dir: string;
  manifest: Manifest;
  labels: string[];
  modelPath: string;
  /** `tfjs` when the model file is a TensorFlow.js model.json (graph or layers model), else ONNX. */
  format: 'onnx' | 'tfjs';
}

export class ModelError extends DaemonError {
  readonly problems: string[];
  constructor(code: string, where: string, problems: string[], options?: { cause?: unknown }) {
    super(code, `${where}: ${problems.length === 1 ? problems[0] : '\n  ' + problems.join('\n  ')}`, options);
    this.name = 'ModelError';
    this.problems = problems;
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The weight files a TF.js model.json names, in manifest order (relative to the model.json). */
export async function tfjsWeightFiles(modelJson: string): Promise<string[]> {
  const json = JSON.parse(await readFile(modelJson, 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  return (json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => join(dirname(modelJson), p)));
}

/**
 * The model's sha256: of the ONNX file; for a TF.js model, of model.json followed by its weight
 * files in manifest order, so new weights under an unchanged model.json are noticed too.
 */
export async function modelSha256(modelPath: string): Promise<string> {
  if (!modelPath.endsWith('.json')) return sha256File(modelPath);
  const hash = createHash('sha256');
  for (const file of [modelPath, ...(await tfjsWeightFiles(modelPath))]) {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Reads and checks a package: manifest schema, labels, and the ONNX file's sha256. */
export async function loadModelPackage(dirIn: string): Promise<ModelPackage> {
  const dir = resolve(dirIn);
  const manifestPath = join(dir, 'manifest.yaml');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw new ModelError('MODEL_MANIFEST', manifestPath, [`cannot read the model manifest: ${errorMessage(err)}`], { cause: err });
  }
  const yaml = parseYaml(text, manifestPath);
  if (!yaml.ok) throw new ModelError('MODEL_MANIFEST', manifestPath, yaml.problems);
  const raw = yaml.value;
  const parsed = manifestSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ModelError('MODEL_MANIFEST', manifestPath, formatIssues(manifestSchema, raw, parsed.error.issues));
  const manifest = parsed.data;

  const labels = Array.isArray(manifest.labels)
    ? manifest.labels
    : await readLabels(await insidePackage(dir, manifest.labels, 'labels', manifestPath), manifestPath);
  // Labels travel to terminals (history, fleet), web pages and topics: no control characters.
  const bad = labels.flatMap((l, i) => (CONTROL.test(l) ? [`labels[${i}]: ${JSON.stringify(l)} has a control character`] : []));
  if (bad.length) throw new ModelError('MODEL_MANIFEST', manifestPath, bad);
  const modelPath = await insidePackage(dir, manifest.model, 'model', manifestPath);
  try {
    const st = await stat(modelPath);
    if (!st.isFile()) throw new Error('not a file');
  } catch (err) {
    throw new ModelError('MODEL_FILE', manifestPath, [`model: cannot read ${modelPath}: ${errorMessage(err)}`], { cause: err });
  }
  if (modelPath.endsWith('.json')) {
    // A TF.js model.json names its weight files: they must be inside the package too.
    const weights = await tfjsWeightFiles(modelPath).catch(() => [] as string[]);
    for (const w of weights) await insidePackage(dir, relative(dir, w), 'model (a weights file of model.json)', manifestPath);
  }
  let actual: string;
  try {
    actual = await modelSha256(modelPath);
  } catch (err) {
    throw new ModelError('MODEL_FILE', manifestPath, [`model: cannot read ${modelPath} and its weights: ${errorMessage(err)}`], {
      cause: err,
    });
  }
  if (actual !== manifest.sha256) {
    throw new ModelError('MODEL_SHA256', manifestPath, [
      `sha256: ${manifest.model} does not match the manifest (manifest ${manifest.sha256}, file ${actual}); refusing to load it`,
    ]);
  }
  const format = modelPath.endsWith('.json') ? 'tfjs' : 'onnx';
  if (format === 'tfjs' && manifest.explain.method === 'cam')
    throw new ModelError('MODEL_MANIFEST', manifestPath, [
      "explain.method: cam reads the classifier's weights from an ONNX initializer; this model is TF.js (model.json): " +
        'use occlusion, or convert the model to ONNX (tf2onnx)',
    ]);
  return { dir, manifest, labels, modelPath, format };
}

/**
 * `rel` (a manifest path) joined to the package folder, refused unless it stays inside it once
 * `..` and symlinks are resolved: a package must not make the daemon read (and hash, and print
 * the hash of) files elsewhere. A path that does not exist is returned as it is, for the reader's
 * own "cannot read" error.
 */
async function insidePackage(dir: string, rel: string, key: string, manifestPath: string): Promise<string> {
  const path = resolve(dir, rel);
  const realDir = await realpath(dir);
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    real = path;
  }
  if (real !== realDir && real.startsWith(realDir + sep)) return path;
  throw new ModelError('MODEL_MANIFEST', manifestPath, [
    `${key}: ${JSON.stringify(rel)} resolves to ${real}, outside the package folder ${realDir}; a package's files must be inside its folder`,
  ]);
}

/** C0 and C1 controls, DEL, and bidirectional overrides (they reorder what a terminal shows). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

async function readLabels(file: string, manifestPath: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelError('MODEL_MANIFEST', manifestPath, [`labels: cannot read labels file ${file}: ${errorMessage(err)}`], { cause: err });
  }
  const labels = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (labels.length === 0) throw new ModelError('MODEL_MANIFEST', manifestPath, [`labels: ${file} has no labels`]);
  return labels;
}
