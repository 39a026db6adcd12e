import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The config of multi-stage pipelines: `pipelines.<name>` is a list of stages (a detector, then a
 * model on crops of what it found), and a camera runs one with `pipeline: <name>`, aggregating the
 * crop scores per tracked object with `aggregate`. Checked at load: every stage's model folder and
 * manifest, `from` naming an earlier stage, and each region's keypoint being one the detector's
 * manifest names.
 */

const STAGE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export const regionSchema = z.strictObject({
  keypoint: z.string().min(1).describe("a keypoint of the `from` stage's detector (its manifest's detect.keypoints)"),
  size: z
    .number()
    .positive()
    .max(4)
    .default(0.35)
    .describe('side of the square crop centred on the keypoint, relative to the detected box width'),
  minScore: z.number().min(0).max(1).default(0.5).describe("the keypoint's visibility below which the region counts as not detected"),
});

export const qualitySchema = z.strictObject({
  minSidePx: z
    .int()
    .min(1)
    .max(8192)
    .default(24)
    .describe('a crop whose shorter side (in full-resolution frame pixels) is below this is skipped'),
  minSharpness: z
    .number()
    .min(0)
    .default(0)
    .describe('a crop whose variance of the Laplacian (grey 0..255) is below this is skipped as blurred; 0: no blur gate'),
});

/**
 * Explanations (heatmaps, by the model manifest's explain.method: occlusion or cam) of a classifier's
 * answers; they travel only where crops do (privacy.includeCrops).
 */
export const explainSchema = z.enum(['off', 'assessment', 'every']);

export const stageSchema = z.strictObject({
  name: z.string().regex(STAGE_RE, 'must be 1-64 letters, digits, "_" or "-"'),
  model: z.string().min(1).describe('model package folder (manifest.yaml + model.onnx)'),
  from: z.string().min(1).optional().describe('the earlier stage whose detections this stage crops; absent for the first stage'),
  minScore: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe("detector stage: detections below this are dropped (default: the manifest's scoreThreshold)"),
  maxObjects: z.int().min(1).max(100).optional().describe('detector stage: keep at most this many detections, best first'),
  regions: z
    .union([z.literal('box'), z.record(z.string().regex(STAGE_RE, 'region names must be 1-64 letters, digits, "_" or "-"'), regionSchema)])
    .default('box')
    .describe('"box": one crop per detected box; or named regions around keypoints, e.g. left: { keypoint: left_eye, size: 0.35 }'),
  pad: z.number().min(0).max(2).default(0).describe('regions: box: the crop grows by this fraction of the box on every side'),
  square: z.boolean().default(false).describe("regions: box: widen the crop's shorter side to a square"),
  quality: qualitySchema.prefault({}),
  explain: explainSchema
    .default('off')
    .describe(
      "crop stage: heatmaps of where the model looked (how: its manifest's explain.method): off | " +
        'assessment (one per region of each assessment) | every (every crop)',
    ),
});

export const pipelineSchema = z.array(stageSchema).min(2).max(2, 'a pipeline has two stages: a detector, then a model on its crops');

export const aggregateSchema = z.strictObject({
  window: z.int().min(1).max(1000).default(15).describe('frames of a tracked object averaged per region'),
  minFrames: z.int().min(1).max(1000).default(5).describe('good frames (passed the quality gate) a region needs before the assessment'),
  method: z.enum(['mean']).default('mean').describe('how the window is combined: mean of the class scores'),
  iou: z
    .number()
    .min(0.01)
    .max(1)
    .default(0.2)
    .describe('the tracker: a detection continues a track when their boxes overlap at least this much (IoU)'),
  maxMissed: z.int().min(0).max(1000).default(5).describe('frames a track may go unseen before it is dropped (`cleared`)'),
});

export const privacySchema = z.strictObject({
  snapshots: z
    .enum(['redact', 'on', 'off'])
    .optional()
    .describe(
      'redact: every detection and every box of a person-finding model blacked out; on: as seen; off: no snapshots. ' +
        'Default: the boxes of person-finding models blacked out (every detection too when a pipeline stage finds people)',
    ),
  preview: z
    .enum(['redact', 'on', 'off'])
    .optional()
    .describe(
      'GET /preview.mjpeg: redact (boxes of person-finding stages blacked out), on (as seen: only with HTTP on loopback), ' +
        'or off. Default: as snapshots, never on for a camera whose stage finds people',
    ),
  includeCrops: z
    .union([z.boolean(), z.literal('local')], { error: 'must be true, false or "local"' })
    .default(false)
    .describe(
      'put the crops and heatmaps (PNG, base64) in results and assessments: true: everywhere (MQTT too); ' +
        'local: only to loopback surfaces (GET /events to a local client, the kiosk page), never into the journal or MQTT; false: nowhere',
    ),
});

export type StageConfig = z.output<typeof stageSchema>;
export type PipelineConfig = z.output<typeof pipelineSchema>;
export type AggregateConfig = z.output<typeof aggregateSchema>;
export type PrivacyConfig = z.output<typeof privacySchema>;

/** What the pipeline check reads of a stage's manifest. */
interface ManifestFacts {
  task?: string;
  keypoints?: string[];
  privacy?: string;
}

function readManifest(dir: string): ManifestFacts | string {
  const file = join(dir, 'manifest.yaml');
  if (!existsSync(file)) return `no model package at ${dir} (manifest.yaml not found)`;
  try {
    const m = parseYaml(readFileSync(file, 'utf8')) as { task?: unknown; detect?: { keypoints?: unknown }; privacy?: unknown } | null;
    const kp = m?.detect?.keypoints;
    return {
      task: typeof m?.task === 'string' ? m.task : undefined,
      keypoints: Array.isArray(kp) ? kp.map(String) : undefined,
      privacy: typeof m?.privacy === 'string' ? m.privacy : undefined,
    };
  } catch (err) {
    return `${file}: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Resolves stage model paths against the config folder; returns every problem as `path: problem`. */
export function checkPipelines(
  pipelines: Record<string, PipelineConfig>,
  cameras: Record<string, { pipeline?: string; explain?: string }>,
  baseDir: string,
): string[] {
  const problems: string[] = [];
  for (const [name, stages] of Object.entries(pipelines)) {
    const seen = new Map<string, ManifestFacts | undefined>();
    stages.forEach((st, i) => {
      const at = `pipelines.${name}[${i}]`;
      st.model = resolve(baseDir, st.model);
      const facts = readManifest(st.model);
      if (typeof facts === 'string') problems.push(`${at}.model: ${facts}`);
      if (seen.has(st.name)) problems.push(`${at}.name: "${st.name}" is used by an earlier stage of this pipeline`);
      if (i === 0 && st.from !== undefined)
        problems.push(`${at}.from: the first stage sees the whole frame; remove from (got ${JSON.stringify(st.from)})`);
      if (i === 0 && typeof facts !== 'string' && facts.task !== undefined && facts.task !== 'detect')
        problems.push(`${at}.model: the first stage must be a detector (task detect); ${st.model} is ${facts.task}`);
      if (i > 0 && typeof facts !== 'string' && facts.task !== undefined && facts.task !== 'classify' && facts.task !== 'regress')
        problems.push(`${at}.model: a crop stage must be a classify or regress model; ${st.model} is ${facts.task}`);
      if (i > 0) {
        if (st.from === undefined)
          problems.push(`${at}.from: required: the stage whose detections this stage crops (${[...seen.keys()].join(', ')})`);
        else if (!seen.has(st.from))
          problems.push(
            `${at}.from: no earlier stage "${st.from}" in pipeline ${name} (stages before it: ${[...seen.keys()].join(', ') || 'none'})`,
          );
        else if (st.regions !== 'box') {
          const src = seen.get(st.from);
          const have = src?.keypoints ?? [];
          for (const [region, r] of Object.entries(st.regions)) {
            if (src && !have.includes(r.keypoint)) {
              problems.push(
                `${at}.regions.${region}.keypoint: stage "${st.from}" has no keypoint "${r.keypoint}" (its manifest ` +
                  `names ${have.length ? have.join(', ') : 'no keypoints'})`,
              );
            }
          }
        }
      }
      seen.set(st.name, typeof facts === 'string' ? undefined : facts);
    });
  }
  for (const [cam, c] of Object.entries(cameras)) {
    if (c.explain === 'assessment' && c.pipeline === undefined)
      problems.push(`cameras.${cam}.explain: "assessment" needs a pipeline (assessments are a pipeline's); use every or off`);
    if (c.pipeline !== undefined && !(c.pipeline in pipelines)) {
      const known = Object.keys(pipelines);
      problems.push(
        `cameras.${cam}.pipeline: no pipeline "${c.pipeline}" (${known.length ? `pipelines: ${known.join(', ')}` : 'no pipelines are configured'})`,
      );
    }
  }
  return problems;
}

/** Whether a stage's manifest says it finds people (privacy: person). */
export function findsPeople(stage: Pick<StageConfig, 'model'>): boolean {
  const facts = readManifest(stage.model);
  return typeof facts !== 'string' && facts.privacy === 'person';
}
