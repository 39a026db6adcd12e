import { describe, expect, it } from 'vitest';
import type { LiveReloadable } from '../../src/component.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { ReloadController } from '../../src/reload.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';

const base = (): Config => loadConfig({ env: {}, defaultPath: '/nonexistent/config.yaml' });

type ResultSlice = { qos: number; expirySec: number | undefined };

/** A component that takes the result topic's QoS live; its slice also holds resultExpirySec, which is not live. */
function resultTopic(refuse?: string) {
  const seen: { slice: ResultSlice; changes: string[] }[] = [];
  const c: LiveReloadable<ResultSlice> = {
    name: 'results',
    liveKeys: ['mqtt.topics.result.*'],
    slice: (config) => ({ qos: config.mqtt.topics.result.qos, expirySec: config.mqtt.resultExpirySec }),
    apply: (slice, changes) => {
      seen.push({ slice, changes: changes.map((ch) => ch.path) });
      return refuse ? { refused: changes, error: refuse } : undefined;
    },
  };
  return { c, seen };
}

function controller(components: LiveReloadable[], running = base()) {
  const { log, lines } = captureLog();
  const hooks = { begun: 0, ended: [] as (string | undefined)[] };
  const ctl = new ReloadController({
    config: running,
    components,
    clock: new ManualClock(),
    log,
    hooks: { running: () => true, begin: () => void hooks.begun++, end: (s) => void hooks.ended.push(s) },
  });
  return { ctl, lines, hooks };
}

describe('ReloadController', () => {
  it('gives a component its live changes; a key of its slice that is not live keeps its running value and is reported', async () => {
    const { c, seen } = resultTopic();
    const running = base();
    const { ctl } = controller([c], running);
    const next = structuredClone(running);
    next.mqtt.topics.result.qos = 0;
    next.mqtt.resultExpirySec = 60;
    const report = await ctl.reload(() => next);
    expect(seen).toEqual([{ slice: { qos: 0, expirySec: running.mqtt.resultExpirySec }, changes: ['mqtt.topics.result.qos'] }]);
    expect(report).toMatchObject({ ok: true, appliedKeys: ['mqtt.topics.result.qos'], restartRequiredKeys: ['mqtt.resultExpirySec'] });
    expect(ctl.config.mqtt.topics.result.qos).toBe(0);
    expect(ctl.config.mqtt.resultExpirySec).toBe(running.mqtt.resultExpirySec);
  });

  it('a key no component declares needs a restart, by construction', async () => {
    const { ctl } = controller([]);
    const next = base();
    next.mqtt.topics.result.qos = 0;
    next.log.level = 'debug';
    const report = await ctl.reload(() => next);
    expect(report.appliedKeys).toEqual([]);
    expect(report.restartRequiredKeys.sort()).toEqual(['log.level', 'mqtt.topics.result.qos']);
    expect(ctl.isLive('mqtt.topics.result.qos')).toBe(false);
  });

  it('changes a component refuses are not applied, and its reason is the reload error', async () => {
    const { c } = resultTopic('results: broker said no');
    const running = base();
    const { ctl } = controller([c], running);
    const next = structuredClone(running);
    next.mqtt.topics.result.qos = 0;
    const report = await ctl.reload(() => next);
    expect(report).toMatchObject({ ok: false, appliedKeys: [], errors: ['results: broker said no'] });
    expect(ctl.config.mqtt.topics.result.qos).toBe(running.mqtt.topics.result.qos);
  });

  it('an invalid config changes nothing: every problem is reported and logged', async () => {
    const { c, seen } = resultTopic();
    const { ctl, lines, hooks } = controller([c]);
    const before = structuredClone(ctl.config);
    const report = await ctl.reload(() => {
      throw new ConfigError('/etc/x.yaml', ['http.port: too big', 'mqtt.urll: unknown key']);
    });
    expect(report).toMatchObject({ ok: false, errors: ['http.port: too big', 'mqtt.urll: unknown key'] });
    expect(seen).toEqual([]);
    expect(ctl.config).toEqual(before);
    expect(lines.filter((l) => l.msg === 'reload rejected: invalid config').map((l) => l.problem)).toEqual([
      'http.port: too big',
      'mqtt.urll: unknown key',
    ]);
    expect(hooks).toEqual({ begun: 1, ended: ['reload rejected (2 problems); running on the previous config'] });
  });
});
