import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { errorCode, errorMessage } from './errors.js';
import type { IoMeta, ModelIo } from './inference/check.js';
import { type InferenceEngine, onnxIo } from './inference/engine.js';
import { decodeImage } from './inference/image.js';
import { loadEngine } from './inference/load.js';
import { draftManifest, draftYaml } from './inference/model-draft.js';
import { onnxMetadata } from './inference/onnx-meta.js';
import { onnxInitializers } from './inference/onnx-weights.js';
import { ModelError, modelSha256, tfjsWeightFiles } from './inference/package.js';
import type { Out } from './oneshot.js';
import { resultPayload } from './publish/payload.js';

/**
 * `edge-inferd model init FILE|DIR [--name N] [--out DIR] [--sample IMAGE]`: a package from what
 * the model says about itself (inputs, outputs, ONNX metadata, TF.js signature), then loaded as
 * the daemon would load it, every problem printed `path: problem`, and run once on the sample.
 * Exit 0 when the package loads (and the sample ran), 1 when it does not, 2 for usage.
 */

export interface InitOptions {
  source: string;
  name?: string;
  out?: string;
  sample?: string;
}

const NAME_RE = /[^A-Za-z0-9_.-]+/g;

/** The model file inside FILE|DIR: an .onnx, or a TF.js model.json. */
async function findModel(source: string): Promise<string> {
  const st = await stat(source);
  if (!st.isDirectory()) return source;
  const files = (await readdir(source)).sort();
  const onnx = files.filter((f) => f.endsWith('.onnx'));
  if (onnx.length === 1) return join(source, onnx[0]);
  for (const f of files.filter((x) => x.endsWith('.json'))) {
    const json = JSON.parse(await readFile(join(source, f), 'utf8')) as { modelTopology?: unknown };
    if (json.modelTopology) return join(source, f);
  }
  throw new Error(
    `${source}: no model here (one .onnx file, or a TF.js model.json)${onnx.length > 1 ? `; several .onnx: ${onnx.join(', ')}` : ''}`,
  );
}

type TfSig = Record<string, { name?: string; dtype?: string; tensorShape?: { dim?: { size?: string }[] } }>;
interface TfJson {
  format?: string;
  signature?: { inputs?: TfSig; outputs?: TfSig };
  userDefinedMetadata?: { signature?: { inputs?: TfSig; outputs?: TfSig } };
  modelTopology?: {
    node?: { name: string; op: string }[];
    model_config?: { config?: { layers?: unknown[]; output_layers?: unknown[][] } };
  };
}

/** A TF.js model.json's own description of its inputs and outputs (the signature a converter writes). */
function tfjsIo(json: TfJson): ModelIo {
  const sig = json.signature ?? json.userDefinedMetadata?.signature;
  const dtype = (d?: string) => (d === 'DT_FLOAT' ? 'float32' : d === 'DT_INT32' ? 'int32' : undefined);
  const list = (s: TfSig | undefined): IoMeta[] =>
    Object.entries(s ?? {}).map(([key, v]) => ({
      // Graph models are fed by node name: "input:0" is fed as "input".
      name: (v.name ?? key).replace(/:0$/, ''),
      type: dtype(v.dtype),
      shape: v.tensorShape?.dim?.map((d) => (Number(d.size) > 0 ? Number(d.size) : 'N')),
    }));
  const inputs = list(sig?.inputs);
  const outputs = list(sig?.outputs).map((o, i) => ({ ...o, name: Object.values(sig?.outputs ?? {})[i].name ?? o.name }));
  return { inputs, outputs: outputs.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true })) };
}

export async function modelInit(opts: InitOptions, out: Out): Promise<number> {
  let modelPath: string;
  try {
    modelPath = await findModel(resolve(opts.source));
  } catch (err) {
    out.stderr(`edge-inferd model init: ${errorMessage(err)}\n`);
    return 2;
  }
  const tfjs = modelPath.endsWith('.json');
  const name = (opts.name ?? basename(modelPath).replace(/\.(onnx|json)$/, '')).replace(NAME_RE, '-');
  const dir = resolve(opts.out ?? name);
  let io: ModelIo;
  let meta: Record<string, string> = {};
  let inits: ReturnType<typeof onnxInitializers> = [];
  try {
    if (tfjs) io = tfjsIo(JSON.parse(await readFile(modelPath, 'utf8')) as TfJson);
    else {
      const bytes = await readFile(modelPath);
      meta = onnxMetadata(bytes);
      io = await onnxIo(bytes);
      inits = onnxInitializers(bytes);
    }
  } catch (err) {
    out.stderr(`edge-inferd model init: ${modelPath}: cannot read the model: ${errorMessage(err)}\n`);
    return 1;
  }

  // The package: the model file(s), then the manifest with the sha256 of what was copied.
  await mkdir(dir, { recursive: true });
  const modelFile = tfjs ? basename(modelPath) : 'model.onnx';
  await copyFile(modelPath, join(dir, modelFile));
  if (tfjs)
    for (const w of await tfjsWeightFiles(modelPath)) {
      const rel = relative(dirname(modelPath), w);
      await mkdir(dirname(join(dir, rel)), { recursive: true });
      await copyFile(w, join(dir, rel));
    }
  const draft = draftManifest(name, modelFile, io, meta, inits);
  draft.manifest.sha256 = await modelSha256(join(dir, modelFile));
  await writeFile(join(dir, 'manifest.yaml'), draftYaml(draft, basename(modelPath), io));
  out.stdout(`${join(dir, 'manifest.yaml')}: ${draft.family}\n`);
  for (const d of draft.decide) out.stdout(`  ${d.path}: DECIDE: ${d.note}\n`);

  // Loaded as the daemon loads it: every manifest/model difference one line.
  let engine: InferenceEngine;
  try {
    engine = await loadEngine(dir, { providers: ['cpu'], intraOpThreads: 1 });
  } catch (err) {
    // From the worker the error comes back as "<where>: <problem>" or "<where>: \n  <problem>...".
    const problems =
      err instanceof ModelError
        ? err.problems
        : errorMessage(err)
            .replace(/^[^\n]*?manifest\.yaml: /, '')
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean);
    out.stderr(
      `${join(dir, 'manifest.yaml')}: ${problems.length} problem${problems.length === 1 ? '' : 's'} (${errorCode(err) ?? 'ERROR'})\n`,
    );
    for (const p of problems) out.stderr(`  ${p}\n`);
    return 1;
  }
  try {
    if (opts.sample) {
      const frame = await decodeImage(await readFile(opts.sample), { camera: 'infer', seq: 1, name: basename(opts.sample) });
      const inf = await engine.infer(frame);
      out.stdout(
        JSON.stringify(resultPayload({ deviceId: 'model-init', seq: 1, frame, inference: inf, model: inf.model, nowMs: Date.now() })) +
          '\n',
      );
    }
  } catch (err) {
    out.stderr(`${opts.sample}: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    await engine.close();
  }
  return 0;
}
