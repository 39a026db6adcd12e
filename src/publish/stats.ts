import { randomUUID } from 'node:crypto';
import type { DecideCounters } from '../decide/policy.js';
import { type CameraStateName, PAYLOAD_VERSION, type StatsPayload } from './schemas.js';

/** What the app knows about a camera when a stats message is due. */
export interface CameraSample {
  state: CameraStateName;
  counters: DecideCounters;
  failures: number;
  dropped: number;
}

/**
 * The periodic stats message: totals since start (results published and held back, events,
 * labels) plus per-period rates (inferences per second, latency) measured between two messages.
 */
export class StatsReporter {
  private seq = 0;
  private readonly deviceId: string;
  private readonly intervalSec: number;
  private readonly prev = new Map<string, { inferred: number; atMs: number }>();
  private readonly latency = new Map<string, { n: number; sum: number; max: number }>();

  constructor(opts: { deviceId: string; intervalSec: number }) {
    this.deviceId = opts.deviceId;
    this.intervalSec = opts.intervalSec;
  }

  /** Pipeline latency (preprocess + inference + postprocess) of one result. */
  recordLatency(camera: string, ms: number): void {
    const l = this.latency.get(camera);
    if (l) {
      l.n++;
      l.sum += ms;
      l.max = Math.max(l.max, ms);
    } else this.latency.set(camera, { n: 1, sum: ms, max: ms });
  }

  build(input: { cameras: Record<string, CameraSample>; mqtt: StatsPayload['mqtt']; startedAtMs: number }, nowMs: number): StatsPayload {
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    const cameras: StatsPayload['cameras'] = {};
    for (const [name, c] of Object.entries(input.cameras)) {
      const prev = this.prev.get(name) ?? { inferred: 0, atMs: input.startedAtMs };
      const sec = (nowMs - prev.atMs) / 1000;
      const lat = this.latency.get(name);
      cameras[name] = {
        state: c.state,
        ...c.counters,
        failures: c.failures,
        dropped: c.dropped,
        fps: sec > 0 ? r3(Math.max(0, c.counters.inferred - prev.inferred) / sec) : 0,
        latencyMs: lat ? { mean: r3(lat.sum / lat.n), max: r3(lat.max) } : null,
      };
      this.prev.set(name, { inferred: c.counters.inferred, atMs: nowMs });
    }
    this.latency.clear();
    return {
      v: PAYLOAD_VERSION,
      id: randomUUID(),
      seq: ++this.seq,
      deviceId: this.deviceId,
      ts: new Date(nowMs).toISOString(),
      tsMs: nowMs,
      intervalSec: this.intervalSec,
      uptimeSec: Math.max(0, Math.round((nowMs - input.startedAtMs) / 1000)),
      cameras,
      mqtt: input.mqtt,
    };
  }
}
