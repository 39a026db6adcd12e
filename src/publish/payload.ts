import { randomUUID } from 'node:crypto';
import type { Frame } from '../capture/frame.js';
import type { Inference, ModelInfo } from '../inference/types.js';

/** Versioned JSON payloads. Bump PAYLOAD_VERSION on any incompatible change; schemas/ holds the JSON Schemas. */
export const PAYLOAD_VERSION = 1;

interface ResultBase {
  v: number;
  /** Unique per message, for consumer de-duplication. */
  id: string;
  deviceId: string;
  camera: string;
  /** Per-camera result counter, starting at 1 each run. */
  seq: number;
  ts: string;
  tsMs: number;
  capturedAt: string;
  capturedAtMs: number;
  model: { name: string; version: string; sha256: string };
  provider: string;
  frame: { seq: number; width: number; height: number; name?: string };
  latencyMs: { preprocess: number; inference: number; postprocess: number; total: number };
}

/** classify: the best class and the top-k. */
export interface ClassifyResultPayload extends ResultBase {
  task: 'classify';
  label: string;
  score: number;
  top: { label: string; score: number; index: number }[];
}

/** detect: boxes in source pixels, best first; label/score repeat the best box (absent when none). */
export interface DetectResultPayload extends ResultBase {
  task: 'detect';
  label?: string;
  score?: number;
  detections: { label: string; index: number; score: number; box: { x: number; y: number; w: number; h: number } }[];
}

/** segment: classes present by area, largest first; label/score repeat the largest (score = its fraction). */
export interface SegmentResultPayload extends ResultBase {
  task: 'segment';
  label?: string;
  score?: number;
  segments: { label: string; index: number; fraction: number }[];
  /** Class index per source pixel, greyscale PNG, base64; only when the manifest asks for it. */
  maskPng?: string;
}

export type ResultPayload = ClassifyResultPayload | DetectResultPayload | SegmentResultPayload;

export interface StatusPayload {
  v: number;
  state: 'online' | 'offline' | 'stopped';
  deviceId: string;
  ts: string;
  tsMs: number;
  version?: string;
  model?: { name: string; version: string; sha256: string };
  provider?: string;
  cameras?: string[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r2 = (x: number) => Math.round(x * 100) / 100;

export function resultPayload(args: {
  deviceId: string;
  seq: number;
  frame: Frame;
  inference: Inference;
  model: ModelInfo;
  nowMs: number;
}): ResultPayload {
  const { frame, inference: inf, model, nowMs } = args;
  const base: ResultBase = {
    v: PAYLOAD_VERSION,
    id: randomUUID(),
    deviceId: args.deviceId,
    camera: frame.camera,
    seq: args.seq,
    ts: new Date(nowMs).toISOString(),
    tsMs: nowMs,
    capturedAt: new Date(frame.capturedAtMs).toISOString(),
    capturedAtMs: frame.capturedAtMs,
    model: { name: model.name, version: model.version, sha256: model.sha256 },
    provider: model.provider,
    frame: { seq: frame.seq, width: frame.width, height: frame.height, ...(frame.name ? { name: frame.name } : {}) },
    latencyMs: {
      preprocess: r3(inf.latencyMs.preprocess),
      inference: r3(inf.latencyMs.inference),
      postprocess: r3(inf.latencyMs.postprocess),
      total: r3(Math.max(0, nowMs - frame.capturedAtMs)),
    },
  };
  switch (inf.task) {
    case 'classify': {
      const best = inf.top[0];
      return { ...base, task: 'classify', label: best.label, score: best.score, top: inf.top.map((t) => ({ label: t.label, score: t.score, index: t.index })) };
    }
    case 'detect': {
      const best = inf.detections[0];
      return {
        ...base,
        task: 'detect',
        ...(best ? { label: best.label, score: best.score } : {}),
        detections: inf.detections.map((d) => ({ label: d.label, index: d.index, score: d.score, box: { x: r2(d.box.x), y: r2(d.box.y), w: r2(d.box.w), h: r2(d.box.h) } })),
      };
    }
    case 'segment': {
      const best = inf.classes[0];
      return {
        ...base,
        task: 'segment',
        ...(best ? { label: best.label, score: best.fraction } : {}),
        segments: inf.classes.map((c) => ({ label: c.label, index: c.index, fraction: c.fraction })),
        ...(inf.maskPng ? { maskPng: Buffer.from(inf.maskPng.buffer, inf.maskPng.byteOffset, inf.maskPng.byteLength).toString('base64') } : {}),
      };
    }
  }
}

export function statusPayload(state: StatusPayload['state'], deviceId: string, extra: Omit<StatusPayload, 'v' | 'state' | 'deviceId' | 'ts' | 'tsMs'> = {}, nowMs = Date.now()): StatusPayload {
  return { v: PAYLOAD_VERSION, state, deviceId, ts: new Date(nowMs).toISOString(), tsMs: nowMs, ...extra };
}
