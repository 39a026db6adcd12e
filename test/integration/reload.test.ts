import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyDemoModel, startTestApp, type TestApp } from '../helpers/app.js';
import { waitUntil } from '../helpers/wait.js';

/** SIGHUP reload semantics on a running App: valid live changes, invalid configs, restart-required keys, model swap. */

describe('reload', () => {
  let t: TestApp;
  const inferred = () => t.app.status().cameras.tray?.inferred ?? 0;
  const moreResults = async (n = 2) => {
    const from = inferred();
    await waitUntil(() => inferred() >= from + n || undefined, 20_000, `${n} more results`);
  };

  beforeAll(async () => {
    t = await startTestApp({ samples: ['plastic-1.png'], fps: 10 });
    await moreResults(1);
  });
  afterAll(async () => t?.stop());

  it('applies live keys at once and reports restart-required ones in the log and /status', async () => {
    const load = t.writeConfig((c) => {
      c.log.level = 'debug';
      c.mqtt.topics = { result: { qos: 0 } };
      c.health = { stallAfterSec: 30 };
      c.mqtt.prefix = 'elsewhere';
      c.cameras.tray.fps = 5;
      c.cameras.tray.publish = { policy: 'change' };
    });
    const report = await t.app.reload(load);
    expect(report).toMatchObject({
      ok: true,
      applied: [
        'cameras.tray.publish.policy: "every" -> "change"',
        'health.stallAfterSec: 10 -> 30',
        'log.level: "info" -> "debug"',
        'mqtt.topics.result.qos: 1 -> 0',
      ],
      restartRequired: ['cameras.tray.fps: 10 -> 5', 'mqtt.prefix: "edge-inferd" -> "elsewhere"'],
      errors: [],
    });
    expect(t.app.config.log.level).toBe('debug');
    expect(t.app.config.mqtt.topics.result.qos).toBe(0);
    expect(t.app.config.mqtt.prefix).toBe('edge-inferd');
    expect(t.app.config.cameras.tray.fps).toBe(10);
    expect(t.app.health().cameras.tray.limitMs).toBe(30_000);
    // The new policy runs on a fresh decider: with one image the label never changes, so the first
    // result after the reload (a change from nothing) is the only one published, the rest held back.
    const decide = () => t.app.status().cameras.tray.decide;
    expect(decide().policy).toBe('change');
    await moreResults(3);
    const d = decide();
    expect(d.inferred).toBeGreaterThanOrEqual(3);
    expect(d.published).toBe(1);
    expect(d.heldBack).toBe(d.inferred - 1);
    // The new level took effect on the loggers the components already hold.
    await moreResults(1);
    const warn = t.logs.find((l) => l.msg?.startsWith('reload: restart required'));
    expect(warn).toMatchObject({ level: 40, keys: ['cameras.tray.fps', 'mqtt.prefix'] });
    expect(t.app.status().reload).toMatchObject({ ok: true, restartRequired: report.restartRequired });
  });

  it('an invalid config changes nothing, logs every problem, and keeps the pending restart list', async () => {
    const before = structuredClone(t.app.config);
    const load = t.writeConfig((c) => {
      c.log.level = 'loud';
      c.mqtt.inflght = 1;
      c.http.port = -1;
    });
    const report = await t.app.reload(load);
    expect(report.ok).toBe(false);
    expect(report.errors).toHaveLength(3);
    expect(report.errors.join('\n')).toMatch(/log\.level/);
    expect(report.errors.join('\n')).toMatch(/mqtt\.inflght: unknown key \(did you mean "inflight"\?\)/);
    expect(report.errors.join('\n')).toMatch(/http\.port: must be >= 0/);
    expect(report.restartRequired).toEqual(['cameras.tray.fps: 10 -> 5', 'mqtt.prefix: "edge-inferd" -> "elsewhere"']);
    const logged = t.logs.filter((l) => l.msg === 'reload rejected: invalid config').map((l) => l.problem);
    expect(logged.slice(-3)).toEqual(report.errors);
    expect(t.app.config).toEqual(before);
    await moreResults(2);
    expect(t.app.health().ok).toBe(true);
  });

  it('swaps the model live; a broken one is refused and the running one stays', async () => {
    const fresh = copyDemoModel(join(t.dir, 'model-v2'));
    const oldPath = t.app.config.model.path;
    let report = await t.app.reload(
      t.writeConfig((c) => {
        delete c.mqtt.inflght;
        c.log.level = 'info';
        c.http.port = t.app.httpPort;
        c.model = { path: fresh };
      }),
    );
    expect(report).toMatchObject({
      ok: true,
      errors: [],
      applied: ['log.level: "debug" -> "info"', `model.path: ${JSON.stringify(oldPath)} -> ${JSON.stringify(fresh)}`],
    });
    expect(t.app.status().model).toMatchObject({ dir: fresh, name: 'demo-recycling-colour' });
    expect(t.logs.some((l) => l.msg === 'model swapped')).toBe(true);
    await moreResults(2);
    expect(t.app.status().cameras.tray.lastResult).toMatchObject({ label: 'plastic' });

    const broken = copyDemoModel(join(t.dir, 'model-broken'));
    appendFileSync(join(broken, 'model.onnx'), Buffer.from([0]));
    report = await t.app.reload(t.writeConfig((c) => (c.model = { path: broken })));
    expect(report.ok).toBe(false);
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]).toMatch(/^model: .*sha256.*; keeping demo-recycling-colour$/);
    expect(t.app.status().model).toMatchObject({ dir: fresh });
    expect(t.app.config.model.path).toBe(fresh);
    await moreResults(2);
    // Asking again retries the model (the running config still has the old path).
    report = await t.app.reload(t.writeConfig(() => undefined));
    expect(report.errors).toHaveLength(1);
  });
});
