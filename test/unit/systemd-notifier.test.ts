import { describe, expect, it } from 'vitest';
import type { StallReport } from '../../src/health/stall.js';
import { SystemdNotifier, watchdogUsec } from '../../src/health/systemd.js';
import { createLogger } from '../../src/log.js';

/** The notifier's decisions tick by tick; the datagrams themselves are tested on a real socket in test/process. */

function setup(env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '2000000' }) {
  const sent: string[] = [];
  const logs: Record<string, any>[] = [];
  let report: StallReport = { ok: true, verdict: 'progressing', cameras: {} };
  let status = 'running: 1/1 cameras streaming';
  const n = new SystemdNotifier({
    send: (s) => {
      sent.push(s);
      return true;
    },
    check: () => report,
    statusLine: () => status,
    env,
    log: createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void logs.push(JSON.parse(s)) } }),
  });
  return { n, sent, logs, set: (r: StallReport) => (report = r), setStatus: (s: string) => (status = s) };
}

describe('SystemdNotifier', () => {
  it('reads WATCHDOG_USEC, honours WATCHDOG_PID, pings at half the period', () => {
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000' })).toBe(30_000_000);
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) })).toBe(30_000_000);
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' })).toBeUndefined();
    expect(watchdogUsec({ WATCHDOG_USEC: 'soon' })).toBeUndefined();
    expect(watchdogUsec({})).toBeUndefined();
    expect(setup().n.tickMs).toBe(1000);
    expect(setup({ WATCHDOG_USEC: '30000000' }).n.tickMs).toBe(5000);
  });

  it('pings only after READY and only while not stalled; says why it stopped, once', () => {
    const { n, sent, logs, set } = setup();
    n.tick();
    expect(sent).toEqual(['STATUS=running: 1/1 cameras streaming']); // a status, no ping before READY
    sent.length = 0;
    n.ready();
    expect(sent).toEqual(['READY=1\nSTATUS=running: 1/1 cameras streaming', 'WATCHDOG=1']);
    sent.length = 0;
    set({ ok: false, verdict: 'stalled', reason: 'camera tray: no result for 11 s (limit 10 s)', cameras: {} });
    n.tick();
    n.tick();
    expect(sent).toEqual(['STATUS=stalled: camera tray: no result for 11 s (limit 10 s)']);
    expect(logs.filter((l) => l.msg === 'pipeline stalled; withholding watchdog pings')).toHaveLength(1);
    expect(n.counts.withheld).toBe(2);
    set({ ok: true, verdict: 'progressing', cameras: {} });
    n.tick();
    expect(sent.at(-1)).toBe('WATCHDOG=1\nSTATUS=running: 1/1 cameras streaming');
    expect(logs.some((l) => l.msg === 'pipeline progresses again; watchdog pings resume')).toBe(true);
  });

  it('extends the start timeout while an engine builds, also before READY', () => {
    const { n, sent, set, setStatus } = setup();
    setStatus('starting: 0/0 cameras streaming, no model');
    set({
      ok: true,
      verdict: 'waiting',
      reason: 'engine build (tensorrt, demo) running for 5.0 s',
      cameras: {},
      engineBuild: { runningMs: 5000, limitMs: 1_800_000, what: 'tensorrt, demo' },
    });
    n.tick();
    expect(sent).toEqual([`EXTEND_TIMEOUT_USEC=${n.tickMs * 3 * 1000}\nSTATUS=starting: 0/0 cameras streaming, no model`]);
  });

  it('RELOADING carries CLOCK_MONOTONIC; STOPPING ends the pings', () => {
    const { n, sent } = setup();
    n.ready();
    sent.length = 0;
    const before = process.hrtime.bigint() / 1000n;
    n.reloading();
    const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=reloading configuration$/.exec(sent[0]);
    expect(m).not.toBeNull();
    expect(BigInt(m![1]) >= before).toBe(true);
    n.reloaded('running again');
    expect(sent[1]).toBe('READY=1\nSTATUS=running again');
    n.stoppingNow();
    n.tick();
    expect(sent.slice(2)).toEqual(['STOPPING=1\nSTATUS=stopping']);
  });

  it('a failing socket is logged once per failure streak, and the daemon carries on', () => {
    const logs: Record<string, any>[] = [];
    let fail = true;
    const n = new SystemdNotifier({
      send: () => {
        if (fail) throw new Error('sd_notify to @x failed: Connection refused (ECONNREFUSED)');
        return true;
      },
      check: () => ({ ok: true, verdict: 'progressing', cameras: {} }),
      statusLine: () => 's',
      env: { WATCHDOG_USEC: '1000000' },
      log: createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void logs.push(JSON.parse(s)) } }),
    });
    n.ready();
    n.tick();
    n.tick();
    expect(logs.filter((l) => l.msg === 'sd_notify failed')).toHaveLength(1);
    fail = false;
    n.tick();
    fail = true;
    n.tick();
    expect(logs.filter((l) => l.msg === 'sd_notify failed')).toHaveLength(2);
  });
});
