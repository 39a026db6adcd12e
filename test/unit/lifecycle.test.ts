import { describe, expect, it } from 'vitest';
import type { Component } from '../../src/component.js';
import { Lifecycle, type Phase } from '../../src/lifecycle.js';
import { captureLog } from '../helpers/log.js';

/** Components that record what happens to them; `gate` holds a start until the test opens it. */
function parts(names: string[], gated?: string) {
  const events: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reached!: () => void;
  const atGate = new Promise<void>((r) => (reached = r));
  const components: Component[] = names.map((name) => ({
    name,
    start: async () => {
      events.push(`start ${name}`);
      if (name === gated) {
        reached();
        await gate;
      }
      events.push(`up ${name}`);
    },
    stop: () => void events.push(`stop ${name}`),
  }));
  return { events, components, open, atGate };
}

function lifecycle(components: Component[]) {
  const phases: Phase[] = [];
  const { log, lines } = captureLog();
  return { lc: new Lifecycle({ components, log, onPhase: (p) => phases.push(p) }), phases, lines };
}

describe('Lifecycle', () => {
  it('starts in order, stops in reverse; start and stop are idempotent', async () => {
    const { events, components } = parts(['http', 'journal', 'model', 'mqtt']);
    const { lc, phases } = lifecycle(components);
    await lc.start();
    await lc.start();
    expect(lc.phase).toBe('running');
    await lc.stop();
    await lc.stop();
    expect(events).toEqual([
      'start http',
      'up http',
      'start journal',
      'up journal',
      'start model',
      'up model',
      'start mqtt',
      'up mqtt',
      'stop mqtt',
      'stop model',
      'stop journal',
      'stop http',
    ]);
    expect(phases).toEqual(['starting', 'running', 'stopping', 'stopped']);
  });

  it('a stop during start: the component starting finishes, nothing after it starts, the started ones stop in reverse', async () => {
    const { events, components, open, atGate } = parts(['http', 'journal', 'model', 'mqtt', 'cameras'], 'model');
    const { lc, phases, lines } = lifecycle(components);
    const starting = lc.start();
    await atGate;
    expect(events).toEqual(['start http', 'up http', 'start journal', 'up journal', 'start model']);
    const stopping = lc.stop();
    expect(lc.phase).toBe('stopping');
    open();
    await starting;
    await stopping;
    expect(events).toEqual([
      'start http',
      'up http',
      'start journal',
      'up journal',
      'start model',
      'up model',
      'stop model',
      'stop journal',
      'stop http',
    ]);
    expect(phases).toEqual(['starting', 'stopping', 'stopped']);
    expect(lines.find((l) => l.msg === 'stop requested during start: not starting the rest')).toMatchObject({ next: 'mqtt' });
  });

  it('a component that fails to start: start rejects, and stop() stops only what started', async () => {
    const { events, components } = parts(['http', 'journal']);
    const broken: Component = {
      name: 'broker',
      start: () => Promise.reject(new Error('port taken')),
      stop: () => void events.push('stop broker'),
    };
    const { lc } = lifecycle([...components, broken]);
    await expect(lc.start()).rejects.toThrow('port taken');
    await lc.stop();
    expect(events).toEqual(['start http', 'up http', 'start journal', 'up journal', 'stop journal', 'stop http']);
    expect(lc.phase).toBe('stopped');
  });

  it('a stop that fails is logged and the rest still stop', async () => {
    const { events, components } = parts(['http', 'journal']);
    const bad: Component = { name: 'mqtt', start: () => undefined, stop: () => Promise.reject(new Error('socket gone')) };
    const { lc, lines } = lifecycle([...components, bad]);
    await lc.start();
    await lc.stop();
    expect(events.slice(-2)).toEqual(['stop journal', 'stop http']);
    expect(lines.find((l) => l.msg === 'stop failed')).toMatchObject({ component: 'mqtt', err: 'socket gone' });
  });
});
