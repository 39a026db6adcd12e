import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import si from 'systeminformation';
import { describe, expect, it } from 'vitest';
import { DeviceSampler, readThermal, sampleDevice, siCpuTemperature } from '../../src/health/device.js';
import { Metrics, type MetricsSource } from '../../src/health/metrics.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';
import { waitUntil } from '../helpers/wait.js';

/** A sysfs thermal class folder laid out as on a Jetson Orin (the hardware boundary, as files). */
function jetsonThermal(): string {
  const root = mkdtempSync(join(tmpdir(), 'thermal-'));
  const put = (dir: string, files: Record<string, string>) => {
    mkdirSync(join(root, dir), { recursive: true });
    for (const [f, v] of Object.entries(files)) writeFileSync(join(root, dir, f), `${v}\n`);
  };
  put('thermal_zone0', { type: 'cpu-thermal', temp: '48500' });
  put('thermal_zone1', { type: 'gpu-thermal', temp: '51250' });
  put('thermal_zone10', { type: 'tj-thermal', temp: '52000' });
  put('thermal_zone2', { type: 'soc0-thermal' }); // temp unreadable right now: left out
  put('cooling_device0', { type: 'pwm-fan', cur_state: '3', max_state: '10' });
  put('cooling_device1', { type: 'cpufreq-cpu0', cur_state: '0', max_state: '12' });
  return root;
}

function source(over: Partial<MetricsSource> = {}): MetricsSource {
  return {
    cameras: () => [],
    model: () => undefined,
    mqttConnected: () => false,
    journal: () => undefined,
    publishFailures: () => 0,
    healthy: () => true,
    device: () => undefined,
    ...over,
  };
}

describe('device sensors', () => {
  it('reads thermal zones in numeric order and cooling devices', async () => {
    const t = await readThermal(jetsonThermal());
    expect(t.temperatures).toEqual([
      { zone: 'thermal_zone0', type: 'cpu-thermal', celsius: 48.5 },
      { zone: 'thermal_zone1', type: 'gpu-thermal', celsius: 51.25 },
      { zone: 'thermal_zone10', type: 'tj-thermal', celsius: 52 },
    ]);
    expect(t.cooling).toEqual([
      { device: 'cooling_device0', type: 'pwm-fan', state: 3, maxState: 10 },
      { device: 'cooling_device1', type: 'cpufreq-cpu0', state: 0, maxState: 12 },
    ]);
  });

  it('a machine without thermal zones reports none from sysfs (and whatever systeminformation finds)', async () => {
    const r = await sampleDevice(join(tmpdir(), 'no-such-thermal-root'), Date.now, siCpuTemperature);
    expect(r.cooling).toEqual([]);
    // The fallback is this machine's own CPU sensor through systeminformation: one "cpu" reading
    // where it has one, none where it has none (a container, a VM).
    const cpu = await si.cpuTemperature();
    const hasCpu = typeof cpu.main === 'number' && Number.isFinite(cpu.main);
    expect(r.temperatures.map(({ zone, type }) => ({ zone, type }))).toEqual(hasCpu ? [{ zone: 'cpu', type: 'cpu' }] : []);
    for (const t of r.temperatures) expect(Number.isFinite(t.celsius)).toBe(true);
  });
});

describe('device sampler', () => {
  /** A CPU temperature fallback that counts how often it is asked (systeminformation's runs shell commands each time). */
  const counting = (celsius: number | undefined) => {
    const f = Object.assign(
      () => {
        f.calls++;
        return Promise.resolve(celsius);
      },
      { calls: 0 },
    );
    return f;
  };
  const noZones = () => join(tmpdir(), 'no-such-thermal-root');
  /**
   * Moves the clock `n` intervals, one at a time, waiting after each for its sample: a sample
   * reads real files, which the clock's turns of the event loop do not wait for (a busy machine
   * left the last one unfinished). A sample is stamped when done, so it is in once its time is now.
   */
  const intervals = async (clock: ManualClock, sampler: DeviceSampler, n: number) => {
    for (let i = 0; i < n; i++) {
      await clock.advance(15_000);
      await waitUntil(() => sampler.latest?.sampledAtMs === clock.now(), 5_000, `the sample at ${clock.monotonic()} ms`);
    }
  };

  it('sampleDevice without a fallback asks none', async () => {
    expect(await sampleDevice(noZones(), () => 7, undefined)).toEqual({ temperatures: [], cooling: [], sampledAtMs: 7 });
  });

  it('without thermal zones, a fallback that finds no temperature is asked once, not at every sample', async () => {
    const clock = new ManualClock();
    const fallback = counting(undefined);
    const sampler = new DeviceSampler({ intervalMs: 15_000, root: noZones(), log: captureLog().log, clock, cpuTemperature: fallback });
    await sampler.start();
    await intervals(clock, sampler, 4);
    sampler.stop();
    expect(fallback.calls).toBe(1);
    expect(sampler.latest?.temperatures).toEqual([]);
    expect(sampler.latest?.sampledAtMs).toBe(clock.now());
  });

  it('a fallback that finds a temperature is asked at every sample', async () => {
    const clock = new ManualClock();
    const fallback = counting(47.5);
    const sampler = new DeviceSampler({ intervalMs: 15_000, root: noZones(), log: captureLog().log, clock, cpuTemperature: fallback });
    await sampler.start();
    await intervals(clock, sampler, 4);
    sampler.stop();
    expect(fallback.calls).toBe(5);
    expect(sampler.latest?.temperatures).toEqual([{ zone: 'cpu', type: 'cpu', celsius: 47.5 }]);
  });

  it('with thermal zones the fallback is never asked', async () => {
    const clock = new ManualClock();
    const fallback = counting(99);
    const sampler = new DeviceSampler({
      intervalMs: 15_000,
      root: jetsonThermal(),
      log: captureLog().log,
      clock,
      cpuTemperature: fallback,
    });
    await sampler.start();
    await intervals(clock, sampler, 2);
    sampler.stop();
    expect(fallback.calls).toBe(0);
    expect(sampler.latest?.temperatures.map((t) => t.zone)).toEqual(['thermal_zone0', 'thermal_zone1', 'thermal_zone10']);
  });
});

describe('metrics', () => {
  it('exports temperatures and throttling from the sampled reading', async () => {
    const reading = { ...(await readThermal(jetsonThermal())), sampledAtMs: 0 };
    const m = new Metrics(source({ device: () => reading }));
    const text = await m.text();
    expect(text).toContain('edge_inferd_device_temperature_celsius{zone="thermal_zone1",type="gpu-thermal"} 51.25');
    expect(text).toContain('edge_inferd_device_cooling_state_ratio{device="cooling_device0",type="pwm-fan"} 0.3');
    expect(text).toContain('edge_inferd_device_cooling_state_ratio{device="cooling_device1",type="cpufreq-cpu0"} 0');
  });

  it('mirrors counters owned by components, and two registries do not share anything', async () => {
    const status = { name: 'a', uri: 'images:///x', state: 'streaming' as const, received: 10, dropped: 4, errors: 1 };
    const m1 = new Metrics(
      source({
        cameras: () => [{ name: 'a', status, inferred: 6, failures: 0 }],
        model: () => ({ name: 'demo', version: '1', provider: 'cuda' }),
        mqttConnected: () => true,
        journal: () => ({ depth: 7, evictions: 2, writable: true, writeFailures: 0, lost: 0, corruptMovedAside: 0 }),
      }),
    );
    const m2 = new Metrics(source());
    m1.observe('a', { preprocess: 2, inference: 30, postprocess: 1, total: 40 });
    const t1 = await m1.text();
    expect(t1).toContain('edge_inferd_frames_captured_total{camera="a"} 10');
    expect(t1).toContain('edge_inferd_frames_dropped_total{camera="a"} 4');
    expect(t1).toContain('edge_inferd_frames_inferred_total{camera="a"} 6');
    expect(t1).toContain('edge_inferd_provider_info{provider="cuda",model="demo",version="1"} 1');
    expect(t1).toContain('edge_inferd_mqtt_connected 1');
    expect(t1).toContain('edge_inferd_journal_depth 7');
    expect(t1).toContain('edge_inferd_journal_evictions_total 2');
    expect(t1).toContain('edge_inferd_stage_latency_seconds_bucket{le="0.05",camera="a",stage="inference"} 1');
    expect(t1).toContain('edge_inferd_stage_latency_seconds_bucket{le="0.025",camera="a",stage="inference"} 0');
    // Counts move with the source, as the owner counts on.
    status.received = 12;
    expect(await m1.text()).toContain('edge_inferd_frames_captured_total{camera="a"} 12');
    const t2 = await m2.text();
    expect(t2).not.toContain('camera="a"');
    expect(t2).toContain('edge_inferd_mqtt_connected 0');
  });
});
