import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTrayDemo } from '../../scripts/make-tray-demo.js';
import type { Frame } from '../../src/capture/frame.js';
import { demoConfig } from '../../src/config/demo.js';
import { aggregateSchema, pipelineSchema } from '../../src/config/pipeline.js';
import { PipelineAggregator, type TrackDecision } from '../../src/decide/aggregate.js';
import type { InferenceEngine } from '../../src/inference/engine.js';
import { loadEngine } from '../../src/inference/load.js';
import { PipelineRunner } from '../../src/inference/pipeline.js';
import type { DetectInference } from '../../src/inference/types.js';
import { trayDemoDir } from '../../src/paths.js';
import { trayAnswers } from '../helpers/demo-answers.js';

/**
 * Known answers on the tray demo: the generated trays through the demo's own pipeline config
 * (item detector, then the recycling classifier on each padded, squared box crop), checked
 * against answers.json: every item's box exact, every crop's material right; over the sequence
 * one assessment per item with its material, and its track cleared when the tray is emptied.
 */

const samples = join(trayDemoDir, 'samples');
const answers = trayAnswers();
const cfg = demoConfig('tray') as { pipelines: { tray: unknown }; cameras: { tray: { aggregate: unknown } } };
const stages = pipelineSchema.parse(cfg.pipelines.tray);
const engines: InferenceEngine[] = [];
let runner: PipelineRunner;

beforeAll(async () => {
  const cpu1 = { providers: ['cpu'] as ['cpu'], intraOpThreads: 1 };
  engines.push(...(await Promise.all(stages.map((s) => loadEngine(s.model, cpu1)))));
  const model = (e: InferenceEngine) => ({ info: e.info, infer: e.infer.bind(e), inferCrops: (f: Frame, r: never) => e.inferCrops!(f, r) });
  runner = new PipelineRunner({ name: 'tray', stages: () => stages, models: [model(engines[0]), model(engines[1])] });
}, 60_000);

afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

async function frameOf(file: string, seq: number): Promise<Frame> {
  const { data, info } = await sharp(join(samples, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    camera: 'tray',
    seq,
    width: info.width,
    height: info.height,
    stride: info.width * 3,
    format: 'RGB',
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    capturedAtMs: 1_700_000_000_000 + seq * 200,
    name: file,
  };
}

const best = (labels: string[], scores: number[] | undefined) => scores && labels[scores.indexOf(Math.max(...scores))];

describe('tray demo: items -> material', () => {
  it('the committed package is what scripts/make-tray-demo.ts generates', async () => {
    const dir = await mkdtemp(join(os.tmpdir(), 'tray-demo-'));
    try {
      await cp(trayDemoDir, dir, { recursive: true });
      const { written } = await makeTrayDemo(dir);
      expect(written, 'run npm run make-demo:tray').toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finds every item exactly where it was drawn and tells its material from the box crop', async () => {
    let items = 0;
    for (const [i, a] of answers.entries()) {
      const inf = (await runner.infer(await frameOf(a.file, i + 1))) as DetectInference;
      const p = inf.pipeline!;
      expect(p.objects.map((o) => o.box).sort((x, y) => x.x - y.x)).toEqual(a.items.map((it) => it.box).sort((x, y) => x.x - y.x));
      for (const it of a.items) {
        const o = p.objects.find((obj) => obj.box.x === it.box.x && obj.box.y === it.box.y)!;
        expect(o.label).toBe('item');
        expect(o.regions).toHaveLength(1);
        const r = o.regions[0];
        expect(r.name).toBe('box');
        expect(r.skipped).toBeUndefined();
        // Padded by 5 % on every side and squared around the box centre, clipped to the frame.
        const side = Math.max(it.box.w, it.box.h) * 1.1;
        expect(r.box!.w).toBeCloseTo(Math.min(side, 640), -0.5);
        expect(best(p.labels, r.scores), `${a.file} ${it.label}`).toBe(it.label);
        items++;
      }
    }
    expect(items).toBeGreaterThanOrEqual(30);
  });

  it('one assessment per item with its material; its track cleared once the tray is emptied', async () => {
    const agg = new PipelineAggregator(aggregateSchema.parse(cfg.cameras.tray.aggregate));
    const decisions: TrackDecision[] = [];
    for (const [i, a] of answers.entries()) {
      const f = await frameOf(a.file, i + 1);
      const inf = (await runner.infer(f)) as DetectInference;
      decisions.push(...agg.observe(inf.pipeline!, f.capturedAtMs));
    }
    const assessments = decisions.filter((d) => d.type === 'assessment');
    const trays = answers.filter((a, i) => a.items.length && !answers[i - 1]?.items.length);
    expect(assessments.map((d) => d.regions[0].label).sort()).toEqual(trays.flatMap((t) => t.items.map((it) => it.label)).sort());
    for (const d of assessments) {
      const it = answers.flatMap((a) => a.items).find((x) => x.box.x === d.box.x && x.box.y === d.box.y)!;
      expect(d.regions[0]).toMatchObject({ name: 'box', notDetected: false, label: it.label, frames: 3 });
    }
    const cleared = decisions.filter((d) => d.type === 'cleared');
    expect(cleared).toHaveLength(assessments.length);
    expect(cleared.every((d) => d.type === 'cleared' && d.assessed && d.reason === 'left')).toBe(true);
  });
});
