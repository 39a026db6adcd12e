import type { CameraState } from '../capture/frame.js';

/**
 * Decides whether the pipeline makes progress. /healthz and the systemd watchdog both ask this one
 * detector, so they can never disagree.
 *
 * A camera makes progress when it produced a result within max(stallAfterMs, 5 frame periods).
 * Waiting on purpose is not a stall: a camera in `connecting`/`backoff`, a camera paused by a
 * command, or an engine build that is running (up to its own time limit). The clock starts again whenever a camera's state changes, so
 * a camera that has just come back from backoff gets a full period before it counts as stalled.
 */

/** A camera's state as the detector sees it: `paused` is a loop paused by the pause command. */
export type ProgressState = CameraState | 'paused';

export interface CameraProgress {
  name: string;
  state: ProgressState;
  /** Frames per second asked for; the limit grows for slow cameras. */
  fps: number;
  lastResultAtMs?: number;
}

export interface StallInput {
  cameras: CameraProgress[];
  /** Set while an engine (TensorRT) build runs: the pipeline waits for it on purpose. */
  engineBuild?: { sinceMs: number; what: string };
}

export type Verdict = 'progressing' | 'waiting' | 'stalled';

export interface CameraVerdict {
  verdict: Verdict;
  state: ProgressState;
  /** ms since the last result (or since the camera entered its current state, if later). */
  idleMs: number;
  limitMs: number;
  reason?: string;
}

export interface StallReport {
  /** false only when something is stalled. */
  ok: boolean;
  verdict: Verdict;
  /** One line for a human: why it is stalled or waiting; absent when everything progresses. */
  reason?: string;
  cameras: Record<string, CameraVerdict>;
  engineBuild?: { runningMs: number; limitMs: number; what: string };
}

export interface StallDetectorOptions {
  now: () => number;
  /** The floor of a camera's limit (default 10 s). */
  stallAfterMs: number;
  /** An engine build longer than this counts as hung (default 30 min). */
  engineBuildLimitMs: number;
}

export class StallDetector {
  private opts: StallDetectorOptions;
  /** Per camera: the state seen last and when it was first seen. */
  private readonly seen = new Map<string, { state: ProgressState; sinceMs: number }>();

  constructor(opts: StallDetectorOptions) {
    this.opts = opts;
  }

  /** Live reload of the thresholds. */
  setLimits(limits: Pick<StallDetectorOptions, 'stallAfterMs' | 'engineBuildLimitMs'>): void {
    this.opts = { ...this.opts, ...limits };
  }

  limitFor(fps: number): number {
    return Math.max(this.opts.stallAfterMs, fps > 0 ? 5000 / fps : 0);
  }

  /** Evaluate now. Call it often (a 1 s timer) so state changes are seen when they happen. */
  check(input: StallInput): StallReport {
    const now = this.opts.now();
    const cameras: Record<string, CameraVerdict> = {};
    const live = new Set<string>();
    for (const cam of input.cameras) {
      live.add(cam.name);
      let seen = this.seen.get(cam.name);
      if (!seen || seen.state !== cam.state) {
        // A camera seen for the first time (just started) gets a full period too.
        seen = { state: cam.state, sinceMs: now };
        this.seen.set(cam.name, seen);
      }
      const from = Math.max(cam.lastResultAtMs ?? -Infinity, seen.sinceMs);
      const idleMs = Math.max(0, now - from);
      const limitMs = this.limitFor(cam.fps);
      cameras[cam.name] = this.judge(cam, idleMs, limitMs, input.engineBuild !== undefined);
    }
    for (const name of [...this.seen.keys()]) if (!live.has(name)) this.seen.delete(name);

    let build: StallReport['engineBuild'];
    let buildVerdict: Verdict | undefined;
    if (input.engineBuild) {
      const runningMs = Math.max(0, now - input.engineBuild.sinceMs);
      build = { runningMs, limitMs: this.opts.engineBuildLimitMs, what: input.engineBuild.what };
      buildVerdict = runningMs > this.opts.engineBuildLimitMs ? 'stalled' : 'waiting';
    }

    const stalled = Object.entries(cameras).filter(([, v]) => v.verdict === 'stalled');
    const waiting = Object.entries(cameras).filter(([, v]) => v.verdict === 'waiting');
    const reasons: string[] = [];
    if (buildVerdict === 'stalled' && build) reasons.push(`engine build (${build.what}) running for ${sec(build.runningMs)}, over its limit of ${sec(build.limitMs)}`);
    for (const [name, v] of stalled) reasons.push(`camera ${name}: ${v.reason}`);
    let verdict: Verdict = 'progressing';
    if (reasons.length) verdict = 'stalled';
    else {
      if (buildVerdict === 'waiting' && build) reasons.push(`engine build (${build.what}) running for ${sec(build.runningMs)}`);
      for (const [name, v] of waiting) if (v.reason) reasons.push(`camera ${name}: ${v.reason}`);
      if (reasons.length) verdict = 'waiting';
    }
    return { ok: verdict !== 'stalled', verdict, ...(reasons.length ? { reason: reasons.join('; ') } : {}), cameras, ...(build ? { engineBuild: build } : {}) };
  }

  private judge(cam: CameraProgress, idleMs: number, limitMs: number, building: boolean): CameraVerdict {
    const base = { state: cam.state, idleMs, limitMs };
    if (cam.state === 'connecting' || cam.state === 'backoff' || cam.state === 'paused') {
      const reason = cam.state === 'backoff' ? 'reconnecting (backoff)' : cam.state;
      return { ...base, verdict: 'waiting', reason };
    }
    if (cam.state === 'stopped') return { ...base, verdict: 'stalled', reason: 'stopped' };
    if (idleMs <= limitMs) return { ...base, verdict: 'progressing' };
    // Frames wait for the engine while it is rebuilt; that is on purpose.
    if (building) return { ...base, verdict: 'waiting', reason: `no result for ${sec(idleMs)} while the engine builds` };
    return { ...base, verdict: 'stalled', reason: `no result for ${sec(idleMs)} (limit ${sec(limitMs)})` };
  }
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
