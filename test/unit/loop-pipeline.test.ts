import { describe, expect, it } from 'vitest';
import type { Camera, CameraStatus, Frame } from '../../src/capture/frame.js';
import type { InferHooks } from '../../src/inference/engine.js';
import type { Inference } from '../../src/inference/types.js';
import { CameraLoop } from '../../src/loop.js';
import { captureLog } from '../helpers/log.js';

/**
 * The loop's pipelining contract, step by step with a scripted engine: the next frame is read when
 * the engine takes the current one (not when its result is in), no more than one frame waits
 * behind the one being inferred, and every result goes out with its own frame's pixels although
 * the camera reuses one buffer.
 */

/** A camera that reuses one buffer (like the native addon's copy mode) and counts reads; frame n's pixels are all n. */
class ReusingCamera implements Camera {
  readonly name = 'cam';
  reads = 0;
  private readonly buf = new Uint8Array(4);
  private stopped = false;
  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.stopped = true;
  }
  async read(): Promise<Frame> {
    if (this.stopped) throw Object.assign(new Error('stopped'), { code: 'CAMERA_STOPPED' });
    const seq = ++this.reads;
    this.buf.fill(seq % 256);
    return { camera: this.name, seq, width: 2, height: 2, stride: 2, format: 'GRAY8', data: this.buf, capturedAtMs: 0 };
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

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('CameraLoop pipelining', () => {
  it('reads frame N+1 once the engine takes frame N, keeps one frame waiting at most, and hands each result its own pixels', async () => {
    const camera = new ReusingCamera();
    const requests: Request[] = [];
    const results: { seq: number; pixel: number; label: string }[] = [];
    const loop = new CameraLoop({
      camera,
      log: captureLog().log,
      // Step by step: the next read comes when the engine takes a frame, not half-way through it.
      pace: false,
      // The copy App makes while snapshots are wanted: taken before the camera reuses its buffer.
      keep: (f) => ({ ...f, data: f.data.slice() }),
      infer: (frame, hooks) =>
        new Promise((resolve) => {
          requests.push({ frame, hooks, finish: () => resolve(inference(frame.seq)) });
        }),
      onResult: (frame, inf) => results.push({ seq: frame.seq, pixel: frame.data[0], label: inf.task === 'classify' ? inf.top[0].label : '' }),
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

  it('paced: reads the next frame half-way through an inference, from how long the last ones took', async () => {
    const camera = new ReusingCamera();
    const requests: Request[] = [];
    const loop = new CameraLoop({
      camera,
      log: captureLog().log,
      infer: (frame, hooks) => new Promise((resolve) => requests.push({ frame, hooks, finish: () => resolve(inference(frame.seq)) })),
      onResult: () => undefined,
    });
    loop.start();
    await tick();
    // Frame 1 takes ~1 s in the engine; no history yet, so frame 2 is read as soon as 1 is taken.
    requests[0].hooks.onStart?.();
    await tick();
    expect(camera.reads).toBe(2);
    await new Promise((r) => setTimeout(r, 1000));
    requests[0].finish();
    requests[1].hooks.onStart?.();
    const takenAt = Date.now();
    // Now an inference takes ~1 s: frame 3 is not read when 2 is taken, but about 0.5 s later:
    // half-way through frame 2's inference, well before it would end.
    await new Promise((r) => setTimeout(r, 100));
    expect(camera.reads).toBe(2);
    while (camera.reads < 3 && Date.now() - takenAt < 1000) await tick();
    const readAfterMs = Date.now() - takenAt;
    expect(camera.reads, `frame 3 read ${readAfterMs} ms after frame 2 was taken`).toBe(3);
    expect(readAfterMs).toBeGreaterThanOrEqual(400);
    expect(readAfterMs).toBeLessThan(1000);
    requests[1].finish();
    requests[2]?.finish();
    await loop.stop();
  });

  it('without an onStart from the engine, reads the next frame when the result is in', async () => {
    const camera = new ReusingCamera();
    const pending: (() => void)[] = [];
    const loop = new CameraLoop({
      camera,
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
