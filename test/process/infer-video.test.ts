import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { demoConfig } from '../../src/config/demo.js';
import { trayDemoDir } from '../../src/paths.js';
import { runCli } from '../helpers/daemon.js';
import { pngSequenceVideo } from '../helpers/gst-media.js';
import { assertValid } from '../helpers/schemas.js';
import { type ItemAnswer as Item, trayAnswers } from '../helpers/demo-answers.js';

/**
 * `edge-inferd infer VIDEO` on recordings made at test time from the tray demo's sample frames
 * (gst-launch-1.0: an MJPEG AVI and a lossless Matroska file, 5 frames a second): one result per
 * inferred frame with its time in the video, the boxes and materials of answers.json, and for the
 * tray pipeline camera one assessment per item and its track cleared when the tray is emptied.
 */

const FPS = 5;
const answers = trayAnswers();
let dir: string;
let avi: string | undefined;
let mkv: string | undefined;
let config: string;

type Json = Record<string, any>;
const parse = (stdout: string): Json[] =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Json);

beforeAll(async () => {
  const samples = path.join(trayDemoDir, 'samples');
  dir = await mkdtemp(path.join(os.tmpdir(), 'infer-video-'));
  avi = pngSequenceVideo(samples, path.join(dir, 'tray.avi'), { fps: FPS, codec: 'mjpeg' });
  mkv = pngSequenceVideo(samples, path.join(dir, 'tray.mkv'), { fps: FPS, codec: 'raw' });
  config = path.join(dir, 'config.yaml');
  await writeFile(config, stringify({ ...demoConfig('tray'), deviceId: 'video-test' }));
}, 60_000);
afterAll(async () => rm(dir, { recursive: true, force: true }));

const near = (a: Item['box'], b: Item['box'], px: number) =>
  Math.abs(a.x - b.x) <= px && Math.abs(a.y - b.y) <= px && Math.abs(a.w - b.w) <= px && Math.abs(a.h - b.h) <= px;

describe('edge-inferd infer on a video file', () => {
  it('--fps 2.5 on an MJPEG recording: every other frame, its time in the video, the boxes drawn there', async () => {
    if (!avi) return;
    const r = await runCli(['infer', '--model', path.join(trayDemoDir, 'item'), avi, '--fps', '2.5']);
    expect(r.code, r.stderr).toBe(0);
    const lines = parse(r.stdout);
    // 18 frames at 5 fps, kept one in two: frames 0, 2, ... 16 at 0, 400, ... 3200 ms.
    const kept = answers.filter((_, i) => i % 2 === 0);
    expect(lines.map((l) => l.frame.timeMs)).toEqual(kept.map((_, k) => k * 400));
    for (const [k, l] of lines.entries()) {
      assertValid('result.schema.json', l);
      expect(l).toMatchObject({ camera: 'infer', task: 'detect', frame: { seq: k + 1, name: 'tray.avi', width: 640, height: 480 } });
      const want = kept[k].items;
      expect(l.detections, `${kept[k].file}`).toHaveLength(want.length);
      // JPEG rounds the item edges a little.
      for (const it of want)
        expect(
          l.detections.some((d: Item) => near(d.box, it.box, 2)),
          `${kept[k].file} ${it.label}`,
        ).toBe(true);
    }
  });

  it("a pipeline camera: each frame's items with their material, an assessment per item and its track cleared", async () => {
    if (!mkv) return;
    const r = await runCli(['infer', '--config', config, '--camera', 'tray', mkv]);
    expect(r.code, r.stderr).toBe(0);
    const lines = parse(r.stdout);
    const results = lines.filter((l) => l.task);
    const events = lines.filter((l) => l.type);
    expect(results.map((l) => l.frame.timeMs)).toEqual(answers.map((_, i) => (i * 1000) / FPS));
    for (const [i, l] of results.entries()) {
      assertValid('result.schema.json', l);
      expect(l.objects).toHaveLength(answers[i].items.length);
      for (const it of answers[i].items) {
        const o = l.objects.find((x: Item) => near(x.box, it.box, 0));
        expect(o?.regions.box.label, `${answers[i].file} ${it.label}`).toBe(it.label);
      }
    }
    for (const e of events) assertValid('event.schema.json', e);
    // Each tray: its items assessed on its third frame (aggregate minFrames 3), cleared on the second empty frame.
    const assessments = events.filter((e) => e.type === 'assessment');
    const trays = answers.flatMap((a, i) => (a.items.length && !answers[i - 1]?.items.length ? [i] : []));
    expect(assessments).toHaveLength(trays.reduce((n, i) => n + answers[i].items.length, 0));
    for (const first of trays) {
      for (const it of answers[first].items) {
        const a = assessments.find((e) => near(e.box, it.box, 0));
        expect(a, it.label).toMatchObject({ camera: 'infer', pipeline: 'tray', frame: { timeMs: ((first + 2) * 1000) / FPS } });
        expect(a?.regions.box).toMatchObject({ notDetected: false, label: it.label, frames: 3 });
        const cleared = events.find((e) => e.type === 'cleared' && e.track === a?.track);
        expect(cleared).toMatchObject({ reason: 'left', assessed: true });
      }
    }
    // Events come right after the result of the frame that caused them.
    const firstAssessment = lines.findIndex((l) => l.type === 'assessment');
    expect(lines[firstAssessment - 1].frame.seq).toBe(lines[firstAssessment].frame.seq);
  });

  it('a file GStreamer cannot decode is reported with its name, exit 1; a bad --fps is a usage error', async () => {
    const bad = path.join(dir, 'broken.mp4');
    await writeFile(bad, 'not a video at all');
    const r = await runCli(['infer', '--model', path.join(trayDemoDir, 'item'), bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^${bad}: GStreamer cannot decode it: Could not determine type of stream.+\\(STREAM_ERROR\\)\\n$`));
    const usage = await runCli(['infer', '--model', path.join(trayDemoDir, 'item'), bad, '--fps', '0']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--fps must be a number of frames per second of video, above 0 and at most 1000 (got "0")');
  });
});
