import { randomUUID } from 'node:crypto';
import type { Frame } from '../capture/frame.js';
import type { Inference, ModelInfo } from '../inference/types.js';

/** Versioned JSON payloads. Bump PAYLOAD_VERSION on any incompatible change; schemas/ holds the JSON Schemas. */
export const PAYLOAD_VERSION = 1;

export interface ResultPayload {
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
  task: string;
  label: string;
  score: number;
  top: { label: string; score: number; index: number }[];
  frame: { seq: number; width: number; height: number; name?: string };
  latencyMs: { preprocess: number; inference: number; postprocess: number; total: number };
}

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

export function resultPayload(args: {
  deviceId: string;
  seq: number;
  frame: Frame;
  inference: Inference;
  model: ModelInfo;
  nowMs: number;
}): ResultPayload {
  const { frame, inference: inf, model, nowMs } = args;
  const best = inf.top[0];
  return {
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
    task: inf.task,
    label: best.label,
    score: best.score,
    top: inf.top.map((t) => ({ label: t.label, score: t.score, index: t.index })),
    frame: { seq: frame.seq, width: frame.width, height: frame.height, ...(frame.name ? { name: frame.name } : {}) },
    latencyMs: {
      preprocess: r3(inf.latencyMs.preprocess),
      inference: r3(inf.latencyMs.inference),
      postprocess: r3(inf.latencyMs.postprocess),
      total: r3(Math.max(0, nowMs - frame.capturedAtMs)),
    },
  };
}

export function statusPayload(state: StatusPayload['state'], deviceId: string, extra: Omit<StatusPayload, 'v' | 'state' | 'deviceId' | 'ts' | 'tsMs'> = {}, nowMs = Date.now()): StatusPayload {
  return { v: PAYLOAD_VERSION, state, deviceId, ts: new Date(nowMs).toISOString(), tsMs: nowMs, ...extra };
}
