import { describe, expect, it } from 'vitest';
import type { Camera, CameraStatus, Frame } from '../../src/capture/frame.js';
import type { InferHooks } from '../../src/inference/engine.js';
import type { Inference } from '../../src/inference/types.js';
import { sleep } from '../../src/clock.js';
import { CameraLoop } from '../../src/channel/loop.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';

/**
 * The loop's pipelining contract, step by step with a scripted engine: the next frame is read when
 * the engine takes the current one (not when its result is in), no more than one frame waits
 * behind the one being inferred, and every result goes out with its own frame's pixels although
 * the camera reuses one buffer. Time is a ManualClock: nothing here sleeps.
 */

/** A camera that reuses one buffer (like the native addon's copy mode) and counts reads; frame n's pixels are all n. */
class ReusingCamera implements Camera {
  readonly name = 'cam';
  reads = 0;
  private readonly buf = new Uint8Array(4);
  private stopped = false;
  async start(): Promise<void> {}
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
  read(): Promise<Frame> {
    if (this.stopped) return Promise.reject(Object.assign(new Error('stopped'), { code: 'CAMERA_STOPPED' }));
    const seq = ++this.reads;
    this.buf.fill(seq % 256);
    return Promise.resolve({ camera: this.name, seq, width: 2, height: 2, stride: 2, format: 'GRAY8', data: this.buf, capturedAtMs: 0 });
  }
  status(): CameraStatus {
    return { name: this.name, uri: 'test://', state: 'streaming', received: this.reads, dropped: 0, errors: 0 };
  }
}

interface Request {
  frame: Frame;
  hooks: InferHooks;
  finish: () => void;
}

const inference = (seq: number): Inference => ({
  task: 'classify',
  top: [{ index: 0, label: `frame ${seq}`, score: 1 }],
  model: { name: 'm', version: '1', sha256: 'x', task: 'classify', provider: 'cpu' },
  latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
});

/** Lets the loop run as far as it can without time passing. */
const settle = (clock: ManualClock) => clock.advance(0);

describe('CameraLoop pipelining', () => {
  it('reads frame N+1 once the engine takes frame N, keeps one frame waiting at most, and hands each result its own pixels', async () => {
    const camera = new ReusingCamera();
    const clock = new ManualClock();
    const tick = () => settle(clock);
    const requests: Request[] = [];
    const results: { seq: number; pixel: number; label: string }[] = [];
    const loop = new CameraLoop({
      camera,
      clock,
      log: captureLog().log,
      // Step by step: the next read comes when the engine takes a frame, not half-way through it.
      pace: false,
      // The copy App makes while snapshots are wanted: taken before the camera reuses its buffer.
      keep: (f) => ({ ...f, data: f.data.slice() }),
      infer: (frame, hooks) =>
        new Promise((resolve) => {
          requests.push({ frame, hooks, finish: () => resolve(inference(frame.seq)) });
        }),
      onResult: (frame, inf) =>
        results.push({ seq: frame.seq, pixel: frame.data[0], label: inf.task === 'classify' ? inf.top[0].label : '' }),
    });
    loop.start();
    await tick();
    // Frame 1 submitted; the engine has not taken it yet: no second read.
    expect(requests.map((r) => r.frame.seq)).toEqual([1]);
    expect(camera.reads).toBe(1);

    requests[0].hooks.onStart?.();
    await tick();
    // Taken: frame 2 is read and submitted while 1 is inferred, and then the loop waits again.
    expect(requests.map((r) => r.frame.seq)).toEqual([1, 2]);
    expect(camera.reads).toBe(2);
    await tick();
    expect(camera.reads).toBe(2);

    requests[0].finish();
    await tick();
    expect(results).toEqual([{ seq: 1, pixel: 1, label: 'frame 1' }]);
    // Frame 2 has not been taken yet, so frame 3 is not read although 1 is done.
    expect(camera.reads).toBe(2);

    requests[1].hooks.onStart?.();
    await tick();
    expect(camera.reads).toBe(3);
    requests[1].finish();
    await tick();
    expect(results.map((r) => [r.seq, r.pixel])).toEqual([
      [1, 1],
      [2, 2],
    ]);

    // pause() waits for both the frame being inferred and the one waiting.
    requests[2].hooks.onStart?.();
    await tick();
    expect(requests.map((r) => r.frame.seq)).toEqual([1, 2, 3, 4]);
    let paused = false;
    const pausing = loop.pause().then(() => (paused = true));
    await tick();
    expect(paused).toBe(false);
    requests[2].finish();
    await tick();
    expect(paused).toBe(false);
    requests[3].finish();
    await pausing;
    expect(results.map((r) => [r.seq, r.pixel])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    await loop.stop();
  });

  it('paced: reads the next frame half-way through the inference before it, from how long the last ones took', async () => {
    // An engine like the worker: one inference at a time, each INFER_MS of clock time; it takes a
    // frame (onStart) when the one before it is done, and the loop reads the next frame then.
    const INFER_MS = 120;
    const clock = new ManualClock();
    const camera = new ReusingCamera();
    const readAt: number[] = [];
    const read = camera.read.bind(camera);
    camera.read = () => {
      readAt.push(clock.monotonic());
      return read();
    };
    let engine: Promise<unknown> = Promise.resolve();
    const loop = new CameraLoop({
      camera,
      clock,
      log: captureLog().log,
      infer: (frame, hooks) => {
        const run = engine.then(async () => {
          hooks.onStart?.();
          await sleep(clock, INFER_MS);
          return inference(frame.seq);
        });
        engine = run;
        return run;
      },
      onResult: () => undefined,
    });
    loop.start();
    await settle(clock);
    // Frame 1 is taken at 0; with no history yet, frame 2 is read as soon as that.
    expect(readAt).toEqual([0, 0]);
    // Frame 2 is taken when 1 is done, at INFER_MS; an inference is known to take INFER_MS now, so
    // frame 3 is read half an inference later (less the loop's 1 ms of slack), not at once...
    await clock.advance(INFER_MS + INFER_MS / 2 - 2);
    expect(readAt).toEqual([0, 0]);
    await clock.advance(2);
    expect(readAt).toEqual([0, 0, 1.5 * INFER_MS - 1]);
    // ...and so on for every frame after it: each waits half an inference, never a whole one.
    await clock.advance(3 * INFER_MS);
    // Frame k (k >= 3) is taken when frame k-1 is done, at (k-1)·INFER_MS, and read half an inference before that.
    expect(readAt).toEqual([0, 0, ...[3, 4, 5, 6].map((k) => (k - 1.5) * INFER_MS - 1)]);
    expect(loop.stats.inferred).toBe(4);
    const stopping = loop.stop();
    await clock.advance(2 * INFER_MS);
    await stopping;
  });

  it('without an onStart from the engine, reads the next frame when the result is in', async () => {
    const camera = new ReusingCamera();
    const clock = new ManualClock();
    const tick = () => settle(clock);
    const pending: (() => void)[] = [];
    const loop = new CameraLoop({
      camera,
      clock,
      log: captureLog().log,
      infer: (frame) => new Promise((resolve) => pending.push(() => resolve(inference(frame.seq)))),
      onResult: () => undefined,
    });
    loop.start();
    await tick();
    expect(camera.reads).toBe(1);
    pending[0]();
    await tick();
    expect(camera.reads).toBe(2);
    expect(loop.stats.inferred).toBe(1);
    pending[1]();
    await loop.stop();
  });
});
