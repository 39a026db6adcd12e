import type { CameraState } from '../capture/frame.js';
import type { Clock } from '../clock.js';

/**
 * Decides whether the pipeline makes progress. /healthz, the systemd watchdog and the `healthy`
 * metric all read this one detector's report, so they can never disagree; reading it changes
 * nothing, so the verdict does not depend on how often anybody asks.
 *
 * The detector is told what happens (a camera changed state, a result came, an engine build started
 * or ended) and stamps each with the injected clock's monotonic time. A camera makes progress when
 * it produced a result within max(stallAfterMs, 5 frame periods). Waiting on purpose is not a stall:
 * a camera in `connecting`/`backoff`, a camera paused by a command, or an engine build that is
 * running (up to its own time limit). A camera's clock starts again whenever its state changes, so
 * a camera that has just come back from backoff gets a full period before it counts as stalled.
 */

/** A camera's state as the detector sees it: `paused` is a loop paused by the pause command. */
export type ProgressState = CameraState | 'paused';

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
  clock: Clock;
  /** The floor of a camera's limit (default 10 s). */
  stallAfterMs: number;
  /** An engine build longer than this counts as hung (default 30 min). */
  engineBuildLimitMs: number;
}

interface Watched {
  state: ProgressState;
  /** Frames per second asked for; the limit grows for slow cameras. */
  fps: number;
  /** Monotonic ms: when it entered its state, and its last result. */
  sinceMs: number;
  lastResultMs?: number;
}

export class StallDetector {
  private opts: StallDetectorOptions;
  private readonly cameras = new Map<string, Watched>();
  private build: { sinceMs: number; what: string } | undefined;

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

  /** Starts watching a camera: a camera seen for the first time (just started) gets a full period. */
  watch(name: string, fps: number, state: ProgressState): void {
    this.cameras.set(name, { state, fps, sinceMs: this.opts.clock.monotonic() });
  }

  unwatch(name: string): void {
    this.cameras.delete(name);
  }

  /** A camera's state changed (or it was paused / resumed): its clock starts again. */
  state(name: string, state: ProgressState): void {
    const cam = this.cameras.get(name);
    if (!cam || cam.state === state) return;
    cam.state = state;
    cam.sinceMs = this.opts.clock.monotonic();
  }

  /** A camera produced a result. */
  progress(name: string): void {
    const cam = this.cameras.get(name);
    if (cam) cam.lastResultMs = this.opts.clock.monotonic();
  }

  /** An engine (TensorRT) build started: the pipeline waits for it on purpose, up to its limit. */
  buildStarted(what: string): void {
    this.build = { sinceMs: this.opts.clock.monotonic(), what };
  }

  buildEnded(): void {
    this.build = undefined;
  }

  /** The verdict now. A pure read: asking changes nothing. */
  report(): StallReport {
    const now = this.opts.clock.monotonic();
    const cameras: Record<string, CameraVerdict> = {};
    for (const [name, cam] of this.cameras) {
      const from = Math.max(cam.lastResultMs ?? -Infinity, cam.sinceMs);
      cameras[name] = this.judge(cam.state, Math.max(0, now - from), this.limitFor(cam.fps), this.build !== undefined);
    }

    let build: StallReport['engineBuild'];
    let buildVerdict: Verdict | undefined;
    if (this.build) {
      const runningMs = Math.max(0, now - this.build.sinceMs);
      build = { runningMs, limitMs: this.opts.engineBuildLimitMs, what: this.build.what };
      buildVerdict = runningMs > this.opts.engineBuildLimitMs ? 'stalled' : 'waiting';
    }

    const stalled = Object.entries(cameras).filter(([, v]) => v.verdict === 'stalled');
    const waiting = Object.entries(cameras).filter(([, v]) => v.verdict === 'waiting');
    const reasons: string[] = [];
    if (buildVerdict === 'stalled' && build)
      reasons.push(`engine build (${build.what}) running for ${sec(build.runningMs)}, over its limit of ${sec(build.limitMs)}`);
    for (const [name, v] of stalled) reasons.push(`camera ${name}: ${v.reason}`);
    let verdict: Verdict = 'progressing';
    if (reasons.length) verdict = 'stalled';
    else {
      if (buildVerdict === 'waiting' && build) reasons.push(`engine build (${build.what}) running for ${sec(build.runningMs)}`);
      for (const [name, v] of waiting) if (v.reason) reasons.push(`camera ${name}: ${v.reason}`);
      if (reasons.length) verdict = 'waiting';
    }
    return {
      ok: verdict !== 'stalled',
      verdict,
      ...(reasons.length ? { reason: reasons.join('; ') } : {}),
      cameras,
      ...(build ? { engineBuild: build } : {}),
    };
  }

  private judge(state: ProgressState, idleMs: number, limitMs: number, building: boolean): CameraVerdict {
    const base = { state, idleMs, limitMs };
    if (state === 'connecting' || state === 'backoff' || state === 'paused') {
      const reason = state === 'backoff' ? 'reconnecting (backoff)' : state;
      return { ...base, verdict: 'waiting', reason };
    }
    if (state === 'stopped') return { ...base, verdict: 'stalled', reason: 'stopped' };
    if (idleMs <= limitMs) return { ...base, verdict: 'progressing' };
    // Frames wait for the engine while it is rebuilt; that is on purpose.
    if (building) return { ...base, verdict: 'waiting', reason: `no result for ${sec(idleMs)} while the engine builds` };
    return { ...base, verdict: 'stalled', reason: `no result for ${sec(idleMs)} (limit ${sec(limitMs)})` };
  }
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
