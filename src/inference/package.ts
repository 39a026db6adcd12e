import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { formatIssues } from '../config/format.js';
import { DaemonError, errorMessage } from '../errors.js';
import { type Manifest, manifestSchema } from './manifest.js';

/** A model package on disk: a folder with manifest.yaml and the ONNX file it names. */
export interface ModelPackage {
  dir: string;
  manifest: Manifest;
  labels: string[];
  modelPath: string;
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
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new ModelError('MODEL_MANIFEST', manifestPath, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  const raw = doc.toJS() as unknown;
  const parsed = manifestSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ModelError('MODEL_MANIFEST', manifestPath, formatIssues(manifestSchema, raw, parsed.error.issues));
  const manifest = parsed.data;

  const labels = Array.isArray(manifest.labels) ? manifest.labels : await readLabels(join(dir, manifest.labels), manifestPath);
  const modelPath = join(dir, manifest.model);
  try {
    const st = await stat(modelPath);
    if (!st.isFile()) throw new Error('not a file');
  } catch (err) {
    throw new ModelError('MODEL_FILE', manifestPath, [`model: cannot read ${modelPath}: ${errorMessage(err)}`], { cause: err });
  }
  const actual = await sha256File(modelPath);
  if (actual !== manifest.sha256) {
    throw new ModelError('MODEL_SHA256', manifestPath, [
      `sha256: ${manifest.model} does not match the manifest (manifest ${manifest.sha256}, file ${actual}); refusing to load it`,
    ]);
  }
  return { dir, manifest, labels, modelPath };
}

async function readLabels(file: string, manifestPath: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelError('MODEL_MANIFEST', manifestPath, [`labels: cannot read labels file ${file}: ${errorMessage(err)}`], { cause: err });
  }
  const labels = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (labels.length === 0) throw new ModelError('MODEL_MANIFEST', manifestPath, [`labels: ${file} has no labels`]);
  return labels;
}
