import { randomUUID } from 'node:crypto';
import type { Frame } from '../capture/frame.js';
import { systemClock } from '../clock.js';
import type { Decision, StableRule, StableState } from '../decide/types.js';
import type { PolicyName } from '../decide/policy.js';
import type { Inference, ModelInfo } from '../inference/types.js';
import { type CommandResponse, type EventPayload, PAYLOAD_VERSION, type ResultPayload, type StatusPayload } from './schemas.js';

/** Builders of the versioned JSON payloads; their schemas (and types) are in schemas.ts. */
export { PAYLOAD_VERSION };
export type { ResultPayload, StatusPayload, EventPayload, CommandResponse };
export type { ClassifyResultPayload, DetectResultPayload, SegmentResultPayload } from './schemas.js';

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const iso = (ms: number) => new Date(ms).toISOString();
const modelRef = (m: ModelInfo) => ({ name: m.name, version: m.version, sha256: m.sha256 });
/** Float32 scores can land a hair outside [0, 1] after a softmax; the contract says [0, 1]. */
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const r2 = (x: number) => Math.round(x * 100) / 100;

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
    frame: { seq: frame.seq, width: frame.sourceWidth ?? frame.width, height: frame.sourceHeight ?? frame.height, ...(frame.name ? { name: frame.name } : {}) },
    latencyMs: {
      preprocess: r3(inf.latencyMs.preprocess),
      inference: r3(inf.latencyMs.inference),
      postprocess: r3(inf.latencyMs.postprocess),
      total: r3(Math.max(0, nowMs - frame.capturedAtMs)),
    },
    policy: args.policy ?? 'every',
    stable: stable ? { label: stable.label, score: clamp01(stable.score), frames: stable.frames, window: stable.window, since: iso(stable.becameMs), sinceMs: stable.becameMs } : null,
  };
  switch (inf.task) {
    case 'classify': {
      const best = inf.top[0];
      return { ...base, task: 'classify', label: best.label, score: clamp01(best.score), top: inf.top.map((t) => ({ label: t.label, score: clamp01(t.score), index: t.index })) };
    }
    case 'detect': {
      const best = inf.detections[0];
      return {
        ...base,
        task: 'detect',
        ...(best ? { label: best.label, score: clamp01(best.score) } : {}),
        detections: inf.detections.map((d) => ({ label: d.label, index: d.index, score: clamp01(d.score), box: { x: r2(d.box.x), y: r2(d.box.y), w: r2(d.box.w), h: r2(d.box.h) } })),
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
    v: PAYLOAD_VERSION,
    id: randomUUID(),
    deviceId: args.deviceId,
    camera: args.camera,
    seq: args.seq,
    ts: iso(args.nowMs),
    tsMs: args.nowMs,
    label: d.label,
    score: clamp01(d.score),
    at: iso(d.atMs),
    atMs: d.atMs,
    since: iso(d.sinceMs),
    sinceMs: d.sinceMs,
    frames: d.frames,
    frame: args.frame ? { seq: args.frame.seq, ...(args.frame.name ? { name: args.frame.name } : {}) } : null,
    model: modelRef(args.model),
  };
  const rule = { k: args.rule.k, n: args.rule.n, minScore: args.rule.minScore };
  switch (d.type) {
    case 'change': {
      const p = d.previous;
      return { ...base, type: 'change', previous: p ? { label: p.label, since: iso(p.sinceMs), sinceMs: p.sinceMs, frames: p.frames } : null };
    }
    case 'stable':
      return { ...base, type: 'stable', rule };
    case 'cleared':
      return { ...base, type: 'cleared', rule, reason: d.reason ?? 'evidence' };
  }
}

export function statusPayload(state: StatusPayload['state'], deviceId: string, extra: Omit<StatusPayload, 'v' | 'id' | 'state' | 'deviceId' | 'ts' | 'tsMs'> = {}, nowMs = systemClock.now()): StatusPayload {
  return { v: PAYLOAD_VERSION, id: randomUUID(), state, deviceId, ts: iso(nowMs), tsMs: nowMs, ...extra };
}

type ResponseBody = { command: string; ok: true; result: unknown } | { command: string; ok: false; error: { code: string; message: string; problems?: string[] } };

/** A command response; `body` is checked against the response schema by the tests, not here. */
export function commandResponse(deviceId: string, requestId: string | number | null, body: ResponseBody, nowMs = systemClock.now()): CommandResponse {
  return { v: PAYLOAD_VERSION, id: randomUUID(), requestId, deviceId, ts: iso(nowMs), tsMs: nowMs, ...body } as CommandResponse;
}
