import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type CaptureError, captureAvailable, NativeCapture } from '../../src/capture/native.js';
import { IN_CI } from '../helpers/tools.js';

/**
 * The capture addon's lossless mode (a video file decoded for `edge-inferd infer`): a slow reader
 * gets every frame, in order, none dropped, then EOS; the source waits for the reader. The
 * default mode's "latest frame wins" is test/integration/native-capture.test.ts's.
 */

const available = captureAvailable();
if (!available.ok && IN_CI) throw new Error(`capture addon unavailable in CI: ${available.reason}`);

describe.skipIf(!available.ok)('native capture, lossless', () => {
  it('a slow reader gets every frame in order and nothing is dropped; then EOS', async () => {
    const cap = new NativeCapture();
    const frames = 40;
    cap.open(
      `videotestsrc is-live=false num-buffers=${frames} ! video/x-raw,format=RGB,width=64,height=48,framerate=30/1 ! appsink name=sink sync=false`,
      { lossless: true },
    );
    const seqs: number[] = [];
    const pts: number[] = [];
    let end: unknown;
    for (;;) {
      try {
        const f = await cap.read();
        seqs.push(f.seq);
        pts.push(f.ptsNs ?? -1);
        await sleep(10); // slower than the source: the default mode would drop here
      } catch (err) {
        end = err;
        break;
      }
    }
    const s = cap.stats();
    cap.close();
    expect((end as CaptureError).code).toBe('EOS');
    expect(seqs).toEqual(Array.from({ length: frames }, (_, i) => i + 1));
    // videotestsrc stamps frame i at i/30 s: the frames' times in the stream.
    for (const [i, p] of pts.entries()) expect(Math.abs(p - (i * 1e9) / 30)).toBeLessThan(1e3);
    expect(s).toMatchObject({ received: frames, delivered: frames, dropped: 0 });
  });

  it('close() while the source waits for the reader returns promptly', async () => {
    const cap = new NativeCapture();
    cap.open('videotestsrc is-live=false ! video/x-raw,format=RGB,width=64,height=48 ! appsink name=sink sync=false', { lossless: true });
    await cap.read();
    await sleep(50); // the pull thread now waits for a read that does not come
    const t0 = performance.now();
    cap.close();
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('refuses a non-boolean lossless before anything reaches C++', () => {
    expect(() => new NativeCapture().open('videotestsrc ! appsink name=sink', { lossless: 'yes' as never })).toThrow(
      'options.lossless: expected a boolean',
    );
  });
});
