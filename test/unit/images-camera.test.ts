import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImagesCamera } from '../../src/capture/images.js';
import { ManualClock } from '../helpers/clock.js';

async function folder(colours: [number, number, number][]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'imgs-'));
  for (const [i, c] of colours.entries()) {
    await sharp({ create: { width: 6, height: 4, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } })
      .png()
      .toFile(join(dir, `img-${i}.png`));
  }
  return dir;
}

describe('images:// camera', () => {
  it('cycles through the files in name order at the configured rate; a late reader gets the newest, the rest count as dropped', async () => {
    const dir = await folder([
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ]);
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    const clock = new ManualClock();
    const cam = new ImagesCamera({ name: 'c', dir, fps: 10, clock });
    await cam.start();
    const f0 = await cam.read();
    expect([f0.name, f0.width, f0.height, f0.stride, f0.format, f0.seq]).toEqual(['img-0.png', 6, 4, 18, 'RGB', 0]);
    expect(Array.from(f0.data.slice(0, 3))).toEqual([255, 0, 0]);
    expect(f0.capturedAtMs).toBe(clock.now());
    // An early reader waits on the clock for frame 1, due at 100 ms, and gets it then.
    let got: string | undefined;
    const reading = cam.read().then((f) => (got = f.name));
    await clock.advance(99);
    expect(got).toBeUndefined();
    await clock.advance(1);
    await reading;
    expect(got).toBe('img-1.png');
    await clock.advance(350); // frames 2, 3 and 4 fell due; the reader gets 4 (= img-1 again), 2 and 3 were dropped
    const f4 = await cam.read();
    expect([f4.seq, f4.name]).toEqual([4, 'img-1.png']);
    expect(cam.status()).toMatchObject({ state: 'streaming', received: 5, dropped: 2, errors: 0 });
    await cam.stop();
    expect(cam.status().state).toBe('stopped');
    await expect(cam.read()).rejects.toMatchObject({ code: 'CAMERA_STOPPED' });
  });

  it('a read waiting for the next frame is released by stop(), and its timer cleared', async () => {
    const clock = new ManualClock();
    const cam = new ImagesCamera({ name: 'c', dir: await folder([[1, 2, 3]]), fps: 0.01, clock });
    await cam.start();
    await cam.read();
    const pending = cam.read();
    await clock.advance(0);
    expect(clock.pending).toBe(1);
    await cam.stop();
    await expect(pending).rejects.toMatchObject({ code: 'CAMERA_STOPPED' });
    expect(clock.pending).toBe(0);
  });

  it('a folder with no images, or no folder, is a clear error', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'imgs-empty-'));
    writeFileSync(join(empty, 'readme.txt'), 'x');
    await expect(new ImagesCamera({ name: 'tray', dir: empty, fps: 1 }).start()).rejects.toThrow(
      `camera tray: no images (.jpg .jpeg .png .webp .bmp .tif .tiff .gif) in ${empty}`,
    );
    await expect(new ImagesCamera({ name: 'tray', dir: join(empty, 'nope'), fps: 1 }).start()).rejects.toMatchObject({
      code: 'CAMERA_OPEN',
    });
  });

  it('an unreadable image is skipped and counted, not fatal', async () => {
    const dir = await folder([[9, 9, 9]]);
    writeFileSync(join(dir, 'broken.png'), 'not really a png');
    const clock = new ManualClock();
    const cam = new ImagesCamera({ name: 'c', dir, fps: 1, clock });
    await cam.start();
    const first = await cam.read(); // broken.png sorts first and fails; img-0 is next
    expect(first.name).toBe('img-0.png');
    expect(cam.status().errors).toBe(1);
    expect(cam.status().lastError).toMatchObject({ code: 'IMAGE_DECODE', atMs: clock.now() });
    await cam.stop();
  });
});
