import type { LiveReloadable } from '../component.js';
import type { Config } from '../config/schema.js';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import si from 'systeminformation';
import { type Clock, systemClock, type Timer } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Device temperature and throttling, sampled on a timer (never per scrape: reading sensors can
 * spawn programs and take tens of ms). Linux thermal zones come first: on a Jetson they are the
 * CPU/GPU/SoC sensors, and active cooling devices (fans, CPU/GPU frequency caps) mean throttling.
 * Where the kernel has no thermal zones, systeminformation's CPU temperature is the fallback.
 */

export interface Temperature {
  /** thermal_zoneN, or "cpu" from systeminformation. */
  zone: string;
  type: string;
  celsius: number;
}
export interface CoolingDevice {
  device: string;
  type: string;
  state: number;
  maxState: number;
}
export interface DeviceReading {
  temperatures: Temperature[];
  cooling: CoolingDevice[];
  sampledAtMs: number;
}

export const THERMAL_ROOT = '/sys/class/thermal';

async function readText(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return undefined; // a zone that cannot be read right now (sensor asleep) is just left out
  }
}

/** Reads thermal zones and cooling devices under `root` (the sysfs class folder). */
export async function readThermal(root = THERMAL_ROOT): Promise<Omit<DeviceReading, 'sampledAtMs'>> {
  let entries: string[];
  try {
    entries = (await readdir(root)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch {
    return { temperatures: [], cooling: [] };
  }
  const temperatures: Temperature[] = [];
  const cooling: CoolingDevice[] = [];
  for (const e of entries) {
    if (e.startsWith('thermal_zone')) {
      const [type, temp] = await Promise.all([readText(join(root, e, 'type')), readText(join(root, e, 'temp'))]);
      const milli = Number(temp);
      if (temp !== undefined && temp !== '' && Number.isFinite(milli))
        temperatures.push({ zone: e, type: type ?? e, celsius: milli / 1000 });
    } else if (e.startsWith('cooling_device')) {
      const [type, cur, max] = await Promise.all([
        readText(join(root, e, 'type')),
        readText(join(root, e, 'cur_state')),
        readText(join(root, e, 'max_state')),
      ]);
      const state = Number(cur);
      const maxState = Number(max);
      if (cur && max && Number.isFinite(state) && Number.isFinite(maxState)) cooling.push({ device: e, type: type ?? e, state, maxState });
    }
  }
  return { temperatures, cooling };
}

/** The CPU temperature through systeminformation (°C), or undefined when it finds none. It runs shell commands. */
export async function siCpuTemperature(): Promise<number | undefined> {
  const cpu = await si.cpuTemperature().catch(() => undefined);
  return cpu && typeof cpu.main === 'number' && Number.isFinite(cpu.main) ? cpu.main : undefined;
}

/**
 * `cpuTemperature`: the fallback asked when there are no thermal zones (e.g. siCpuTemperature);
 * none when absent (no default: "absent" must stay absent for the sampler that dropped it).
 */
export async function sampleDevice(
  root: string,
  now: () => number,
  cpuTemperature: (() => Promise<number | undefined>) | undefined,
): Promise<DeviceReading> {
  const t = await readThermal(root);
  if (t.temperatures.length === 0 && cpuTemperature) {
    const celsius = await cpuTemperature();
    if (celsius !== undefined) t.temperatures.push({ zone: 'cpu', type: 'cpu', celsius });
  }
  return { ...t, sampledAtMs: now() };
}

export class DeviceSampler implements LiveReloadable<number> {
  private timer: Timer | undefined;
  private current: DeviceReading | undefined;
  private opts: { intervalMs: number; root?: string; log: Logger };
  private readonly clock: Clock;
  private failing = false;
  /**
   * The fallback for machines without thermal zones. systeminformation answers it by running three
   * or four shell commands (one synchronously, on the main thread), each a fork of the whole
   * daemon: on a VM without sensors that cost about 1 s of main-thread CPU a minute for nothing.
   * Decided once: if the first sample finds no temperature this way, it is not asked again.
   */
  private cpuTemperature: (() => Promise<number | undefined>) | undefined;

  /** `clock`: the sampling interval and the readings' times. `cpuTemperature`: the fallback (default systeminformation's). */
  constructor(opts: { intervalMs: number; root?: string; log: Logger; clock?: Clock; cpuTemperature?: () => Promise<number | undefined> }) {
    const { clock, cpuTemperature, ...rest } = opts;
    this.opts = rest;
    this.clock = clock ?? systemClock;
    this.cpuTemperature = cpuTemperature ?? siCpuTemperature;
  }

  get latest(): DeviceReading | undefined {
    return this.current;
  }

  /** Takes one sample at once, then one per interval. */
  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = this.clock.setInterval(() => void this.sample(), this.opts.intervalMs);
    await this.sample();
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  readonly name = 'device';
  readonly liveKeys = ['health.deviceSampleSec'];

  slice(config: Config): number {
    return config.health.deviceSampleSec * 1000;
  }

  apply(intervalMs: number): void {
    this.setInterval(intervalMs);
  }

  /** Live reload of the period; a running sampler restarts its timer. */
  setInterval(intervalMs: number): void {
    if (intervalMs === this.opts.intervalMs) return;
    this.opts = { ...this.opts, intervalMs };
    if (!this.timer) return;
    this.stop();
    void this.start();
  }

  private async sample(): Promise<void> {
    try {
      const fallback = this.cpuTemperature;
      this.current = await sampleDevice(this.opts.root ?? THERMAL_ROOT, () => this.clock.now(), fallback);
      this.failing = false;
      if (fallback && this.current.temperatures.length === 0) {
        this.cpuTemperature = undefined;
        this.opts.log.debug('no thermal zones and no CPU temperature sensor: temperatures are not sampled');
      }
    } catch (err) {
      if (!this.failing) this.opts.log.warn({ err: errorMessage(err) }, 'device sensors could not be read');
      this.failing = true;
    }
  }
}
