import { randomUUID } from 'node:crypto';
import type { Frame } from '../capture/frame.js';
import { systemClock } from '../clock.js';
import type { Decision, StableRule, StableState } from '../decide/types.js';
import type { PolicyName } from '../decide/policy.js';
import type { TrackDecision } from '../decide/aggregate.js';
import type { Heatmap } from '../inference/explain.js';
import type {
  Box,
  Classification,
  CropOutputs,
  Inference,
  Keypoint,
  ModelInfo,
  PipelineRun,
  RegionResult,
  RegressPoint,
} from '../inference/types.js';
import {
  type CommandResponse,
  type DetectResultPayload,
  type EventPayload,
  PAYLOAD_VERSION,
  type ResultPayload,
  type StatusPayload,
} from './schemas.js';

/** Builders of the versioned JSON payloads; their schemas (and types) are in schemas.ts. */
export { PAYLOAD_VERSION };
export type { ResultPayload, StatusPayload, EventPayload, CommandResponse };
export type { ClassifyResultPayload, DetectResultPayload, RegressResultPayload, SegmentResultPayload } from './schemas.js';

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** An assessment's crops (PNG) and heatmaps per region, from the frame that completed it. */
export interface AssessmentExtras {
  crops: Record<string, Uint8Array>;
  heatmaps: Record<string, Heatmap>;
}

/** Labels by index, as far as the top classes name them. */
function labelsAt(top: readonly { index: number; label: string }[]): string[] {
  const out: string[] = [];
  for (const t of top) out[t.index] = t.label;
  return out;
}

/** A heatmap as the payloads carry it: the explained class by name, the raw grid, the overlay PNG. */
function heatmapPart(h: Heatmap, labels: readonly string[]) {
  return {
    method: h.method,
    label: labels[h.target] ?? `class_${h.target}`,
    score: r3(clamp01(h.base)),
    rows: h.rows,
    cols: h.cols,
    values: h.values.map(r3),
    png: base64(h.png),
  };
}
const iso = (ms: number) => new Date(ms).toISOString();
const modelRef = (m: ModelInfo) => ({ name: m.name, version: m.version, sha256: m.sha256 });
/** Float32 scores can land a hair outside [0, 1] after a softmax; the contract says [0, 1]. */
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const r2 = (x: number) => Math.round(x * 100) / 100;
/** Regress values keep 6 significant digits: an age and a coordinate alike. */
const r6 = (x: number) => Number(x.toPrecision(6));

export function resultPayload(args: {
  deviceId: string;
  seq: number;
  frame: Frame;
  inference: Inference;
  model: ModelInfo;
  nowMs: number;
  policy?: PolicyName;
  stable?: StableState;
}): ResultPayload {
  const { frame, inference: inf, model, nowMs, stable } = args;
  const base = {
    v: PAYLOAD_VERSION,
    id: randomUUID(),
    deviceId: args.deviceId,
    camera: frame.camera,
    seq: args.seq,
    ts: iso(nowMs),
    tsMs: nowMs,
    capturedAt: iso(frame.capturedAtMs),
    capturedAtMs: frame.capturedAtMs,
    model: modelRef(model),
    provider: model.provider,
    // The camera's own size: results are in its pixels even when capture scaled the frame for the model.
    frame: {
      seq: frame.seq,
      width: frame.sourceWidth ?? frame.width,
      height: frame.sourceHeight ?? frame.height,
      ...(frame.name ? { name: frame.name } : {}),
      ...(frame.timeMs !== undefined ? { timeMs: frame.timeMs } : {}),
    },
    latencyMs: {
      preprocess: r3(inf.latencyMs.preprocess),
      inference: r3(inf.latencyMs.inference),
      postprocess: r3(inf.latencyMs.postprocess),
      total: r3(Math.max(0, nowMs - frame.capturedAtMs)),
    },
    policy: args.policy ?? 'every',
    stable: stable
      ? {
          label: stable.label,
          score: clamp01(stable.score),
          frames: stable.frames,
          window: stable.window,
          since: iso(stable.becameMs),
          sinceMs: stable.becameMs,
        }
      : null,
  };
  switch (inf.task) {
    case 'classify': {
      const best = inf.on ? inf.on[0] : inf.top[0];
      const entry = (t: Classification) => ({ label: t.label, score: clamp01(t.score), index: t.index });
      return {
        ...base,
        task: 'classify',
        ...(best ? { label: best.label, score: clamp01(best.score) } : {}),
        top: inf.top.map(entry),
        ...(inf.on ? { on: inf.on.map(entry) } : {}),
        ...(inf.heatmap ? { heatmap: heatmapPart(inf.heatmap, labelsAt(inf.top)) } : {}),
      };
    }
    case 'regress':
      return {
        ...base,
        task: 'regress',
        values: Object.fromEntries(inf.values.map((x) => [x.name, r6(x.value)])),
        ...(inf.points ? { points: points2(inf.points) } : {}),
      };
    case 'detect': {
      const best = inf.detections[0];
      return {
        ...base,
        task: 'detect',
        ...(best ? { label: best.label, score: clamp01(best.score) } : {}),
        detections: inf.detections.map((d) => ({
          label: d.label,
          index: d.index,
          score: clamp01(d.score),
          box: box2(d.box),
          ...(d.keypoints ? { keypoints: keypoints2(d.keypoints) } : {}),
        })),
        ...(inf.pipeline ? pipelinePart(inf.pipeline) : {}),
      };
    }
    case 'segment': {
      const best = inf.classes[0];
      return {
        ...base,
        task: 'segment',
        ...(best ? { label: best.label, score: best.fraction } : {}),
        segments: inf.classes.map((c) => ({ label: c.label, index: c.index, fraction: c.fraction })),
        ...(inf.maskPng
          ? { maskPng: Buffer.from(inf.maskPng.buffer, inf.maskPng.byteOffset, inf.maskPng.byteLength).toString('base64') }
          : {}),
      };
    }
  }
}

const box2 = (b: Box) => ({ x: r2(b.x), y: r2(b.y), w: r2(b.w), h: r2(b.h) });
const points2 = (k: readonly RegressPoint[]) => k.map((p) => ({ name: p.name, x: r2(p.x), y: r2(p.y) }));
const keypoints2 = (k: readonly Keypoint[]) => k.map((p) => ({ name: p.name, x: r2(p.x), y: r2(p.y), score: r3(p.score) }));
const byLabel = (labels: readonly string[], scores: readonly number[]) =>
  Object.fromEntries(scores.map((x, i) => [labels[i] ?? `class_${i}`, r3(clamp01(x))]));

/** A pipeline frame's objects (with track ids once the decide stage has set them) and stage timings. */
/**
 * What a crop stage's numbers say, in payload form: classes: the best label, its score and every
 * score; multi-label: also the labels on (the best of them as label; none on: no label); regress:
 * the named values, no label.
 */
function readScores(labels: readonly string[], outputs: CropOutputs | undefined, scores: readonly number[]) {
  const name = (i: number) => labels[i] ?? `class_${i}`;
  if (outputs?.kind === 'values') return { values: Object.fromEntries(scores.map((x, i) => [labels[i] ?? `value_${i}`, r6(x)])) };
  let best = -1;
  for (let i = 0; i < scores.length; i++) if (best < 0 || scores[i] > scores[best]) best = i;
  if (outputs?.kind === 'multi-label') {
    const t = outputs.thresholds;
    const on = scores.flatMap((x, i) => (x >= t[i] ? [i] : [])).sort((a, b) => scores[b] - scores[a] || a - b);
    return {
      ...(on.length ? { label: name(on[0]), score: r3(clamp01(scores[on[0]])) } : {}),
      scores: byLabel(labels, scores),
      on: on.map(name),
    };
  }
  return best < 0 ? {} : { label: name(best), score: r3(clamp01(scores[best])), scores: byLabel(labels, scores) };
}

function pipelinePart(p: PipelineRun): Pick<DetectResultPayload, 'objects' | 'pipeline'> {
  const region = (r: RegionResult) => {
    return [
      r.name,
      {
        ...(r.notDetected ? { notDetected: true as const } : {}),
        ...(r.box ? { box: box2(r.box), sidePx: r.sidePx, sharpness: r.sharpness } : {}),
        ...(r.skipped ? { skipped: r.skipped } : {}),
        ...(r.scores ? readScores(p.labels, p.outputs, r.scores) : {}),
        ...(r.points ? { points: points2(r.points) } : {}),
        ...(r.cropPng ? { crop: base64(r.cropPng) } : {}),
        ...(r.heatmap ? { heatmap: heatmapPart(r.heatmap, p.labels) } : {}),
      },
    ];
  };
  return {
    objects: p.objects.map((o) => ({
      ...(o.track ? { track: o.track } : {}),
      label: o.label,
      index: o.index,
      score: clamp01(o.score),
      box: box2(o.box),
      ...(o.keypoints ? { keypoints: keypoints2(o.keypoints) } : {}),
      regions: Object.fromEntries(o.regions.map(region)),
    })),
    pipeline: {
      name: p.name,
      stages: p.stages.map((st) => ({
        name: st.name,
        model: modelRef(st.model),
        latencyMs: {
          preprocess: r3(st.latencyMs.preprocess),
          inference: r3(st.latencyMs.inference),
          postprocess: r3(st.latencyMs.postprocess),
        },
        ...(st.crops !== undefined ? { crops: st.crops, classified: st.classified, skipped: st.skipped, runs: st.runs } : {}),
      })),
    },
  };
}

/** What every event on <camera>/event starts with: the message envelope and the episode's times. */
function eventEnvelope(
  a: { deviceId: string; camera: string; seq: number; nowMs: number },
  d: { label: string; atMs: number; sinceMs: number; frames: number },
) {
  return {
    v: PAYLOAD_VERSION,
    id: randomUUID(),
    deviceId: a.deviceId,
    camera: a.camera,
    seq: a.seq,
    ts: iso(a.nowMs),
    tsMs: a.nowMs,
    label: d.label,
    at: iso(d.atMs),
    atMs: d.atMs,
    since: iso(d.sinceMs),
    sinceMs: d.sinceMs,
    frames: d.frames,
  };
}

/** `assessment` and the track's `cleared` on <camera>/event (pipeline cameras). */
export function trackEventPayload(args: {
  deviceId: string;
  camera: string;
  seq: number;
  pipeline: string;
  decision: TrackDecision;
  frame?: Pick<Frame, 'seq' | 'name' | 'timeMs'>;
  model: ModelInfo;
  stageModel?: ModelInfo;
  nowMs: number;
  /** The assessment's crops and heatmaps (privacy.includeCrops). */
  extras?: AssessmentExtras;
}): EventPayload {
  const d = args.decision;
  const x = args.extras;
  const base = { ...eventEnvelope(args, d), pipeline: args.pipeline, track: d.track, model: modelRef(args.model) };
  if (d.type === 'cleared') return { ...base, type: 'cleared', reason: d.reason, assessed: d.assessed };
  const regions = Object.fromEntries(
    d.regions.map((r) => [
      r.name,
      {
        notDetected: r.notDetected,
        ...(r.scores ? readScores(d.labels, d.outputs, r.scores) : {}),
        frames: r.frames,
        seen: r.seen,
        skipped: { ...r.skipped },
        ...(x?.crops[r.name] ? { crop: base64(x.crops[r.name]) } : {}),
        ...(x?.heatmaps[r.name] ? { heatmap: heatmapPart(x.heatmaps[r.name], d.labels) } : {}),
      },
    ]),
  );
  const f = args.frame;
  const frame = f
    ? { seq: f.seq, ...(f.name ? { name: f.name } : {}), ...(f.timeMs !== undefined ? { timeMs: f.timeMs } : {}) }
    : { seq: 0 };
  return {
    ...base,
    type: 'assessment',
    score: clamp01(d.score),
    frame,
    box: box2(d.box),
    stageModel: modelRef(args.stageModel ?? args.model),
    regions,
  };
}

export function eventPayload(args: {
  deviceId: string;
  camera: string;
  seq: number;
  decision: Decision;
  /** The frame that caused it; undefined for a pause. */
  frame?: Pick<Frame, 'seq' | 'name'>;
  model: ModelInfo;
  rule: StableRule;
  nowMs: number;
}): EventPayload {
  const d = args.decision;
  const base = {
    ...eventEnvelope(args, d),
    score: clamp01(d.score),
    frame: args.frame ? { seq: args.frame.seq, ...(args.frame.name ? { name: args.frame.name } : {}) } : null,
    model: modelRef(args.model),
  };
  const rule = { k: args.rule.k, n: args.rule.n, minScore: args.rule.minScore };
  switch (d.type) {
    case 'change': {
      const p = d.previous;
      return {
        ...base,
        type: 'change',
        previous: p ? { label: p.label, since: iso(p.sinceMs), sinceMs: p.sinceMs, frames: p.frames } : null,
      };
    }
    case 'stable':
      return { ...base, type: 'stable', rule };
    case 'cleared':
      return { ...base, type: 'cleared', rule, reason: d.reason ?? 'evidence' };
  }
}

export function statusPayload(
  state: StatusPayload['state'],
  deviceId: string,
  extra: Omit<StatusPayload, 'v' | 'id' | 'state' | 'deviceId' | 'ts' | 'tsMs'> = {},
  nowMs = systemClock.now(),
): StatusPayload {
  return { v: PAYLOAD_VERSION, id: randomUUID(), state, deviceId, ts: iso(nowMs), tsMs: nowMs, ...extra };
}

type ResponseBody =
  | { command: string; ok: true; result: unknown }
  | { command: string; ok: false; error: { code: string; message: string; problems?: string[] } };

/** A command response; `body` is checked against the response schema by the tests, not here. */
export function commandResponse(
  deviceId: string,
  requestId: string | number | null,
  body: ResponseBody,
  nowMs = systemClock.now(),
): CommandResponse {
  return { v: PAYLOAD_VERSION, id: randomUUID(), requestId, deviceId, ts: iso(nowMs), tsMs: nowMs, ...body } as CommandResponse;
}

type Regions = Record<string, Record<string, unknown>>;

/** The regions without their crop and heatmap; the same object when none had any. */
function stripRegions(regions: Regions): Regions {
  if (!Object.values(regions).some((r) => 'crop' in r || 'heatmap' in r)) return regions;
  return Object.fromEntries(Object.entries(regions).map(([k, { crop: _c, heatmap: _h, ...rest }]) => [k, rest]));
}

/**
 * A payload without what privacy.includeCrops: local keeps on the device (crops and heatmaps of a
 * result's objects, of an assessment's regions, of a classification): a copy, or the same object
 * when it had none.
 */
export function withoutLocal<T extends object>(payload: T): T {
  const p = payload as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  if ('heatmap' in p) {
    const { heatmap: _h, ...rest } = p;
    out = rest;
  }
  if (p.regions && typeof p.regions === 'object') {
    const r = stripRegions(p.regions as Regions);
    if (r !== p.regions) out = { ...(out ?? p), regions: r };
  }
  if (Array.isArray(p.objects)) {
    const objs = (p.objects as { regions: Regions }[]).map((o) => {
      const r = stripRegions(o.regions);
      return r === o.regions ? o : { ...o, regions: r };
    });
    if (objs.some((o, i) => o !== (p.objects as unknown[])[i])) out = { ...(out ?? p), objects: objs };
  }
  return (out ?? payload) as T;
}
