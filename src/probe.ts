import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import si from 'systeminformation';
import { captureAvailable, scalerElement } from './capture/native.js';
import { ConfigError, loadConfig } from './config/load.js';
import { errorMessage } from './errors.js';
import { termSafeLines } from './terminal-text.js';
import { readThermal } from './health/device.js';
import { AUTO_CHAIN, providerLibraryProblem } from './inference/providers.js';

/**
 * `edge-inferd probe`: what this machine offers the daemon, for a technician installing it.
 * GStreamer and its camera elements, the cameras plugged in, ONNX Runtime's execution providers,
 * GPU, memory and temperatures, and whether the config is valid.
 */

export interface ProbeReport {
  gstreamer: { capture: boolean; detail: string; version?: string; elements: Record<string, boolean>; scaler?: 'videoscale' | 'nvvidconv' };
  cameras: { byId: { path: string; device: string }[]; video: string[] };
  onnxruntime: { version?: string; providers: { provider: string; available: boolean; detail?: string }[] };
  gpu: { controllers: { vendor: string; model: string; vramMb?: number }[]; jetson?: string; nvidiaDevices: string[] };
  memory: { totalMb: number; availableMb: number };
  temperatures: { type: string; celsius: number }[];
  config: { ok: boolean; source?: string; summary?: string; problems?: string[] };
}

export interface ProbeOptions {
  configFile?: string;
  /** For tests: where cameras are listed. */
  v4lByIdDir?: string;
  devDir?: string;
}

/** Camera-related GStreamer elements: where they are missing, that kind of camera cannot work. */
const ELEMENTS = [
  'v4l2src',
  'nvarguscamerasrc',
  'rtspsrc',
  'filesrc',
  'jpegdec',
  'avdec_h264',
  'nvv4l2decoder',
  'videoconvert',
  'videoscale',
  'nvvidconv',
  'appsink',
];

const run = promisify(execFile);

async function gstreamer(): Promise<ProbeReport['gstreamer']> {
  const cap = captureAvailable();
  const elements: Record<string, boolean> = {};
  let version: string | undefined;
  try {
    version = (await run('gst-inspect-1.0', ['--version'], { timeout: 10_000 })).stdout.split('\n')[1]?.replace(/^GStreamer\s+/, '');
    const found = await Promise.all(
      ELEMENTS.map((e) =>
        run('gst-inspect-1.0', ['--exists', e], { timeout: 10_000 }).then(
          () => true,
          () => false,
        ),
      ),
    );
    for (const [i, e] of ELEMENTS.entries()) elements[e] = found[i];
  } catch {
    // gst-inspect-1.0 (gstreamer1.0-tools) is not installed: the element list stays empty.
  }
  // Which element scales frames to the model's input (nvvidconv: a Jetson's VIC hardware).
  return {
    capture: cap.ok,
    detail: cap.ok ? 'the capture addon loads and GStreamer initialises' : cap.reason,
    ...(version ? { version } : {}),
    elements,
    ...(cap.ok ? { scaler: scalerElement() } : {}),
  };
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function cameras(opts: ProbeOptions): ProbeReport['cameras'] {
  const byIdDir = opts.v4lByIdDir ?? '/dev/v4l/by-id';
  const devDir = opts.devDir ?? '/dev';
  const byId = listDir(byIdDir).map((name) => {
    const path = join(byIdDir, name);
    let device = path;
    try {
      device = resolve(byIdDir, readlinkSync(path));
    } catch {
      // not a link: report it as it is
    }
    return { path, device };
  });
  return {
    byId,
    video: listDir(devDir)
      .filter((n) => /^video\d+$/.test(n))
      .map((n) => join(devDir, n)),
  };
}

function onnxruntime(): ProbeReport['onnxruntime'] {
  let version: string | undefined;
  try {
    version = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    version = undefined;
  }
  const providers = AUTO_CHAIN.map((provider) => {
    const problem = providerLibraryProblem(provider);
    return { provider, available: problem === undefined, ...(problem ? { detail: problem } : {}) };
  });
  return { ...(version ? { version } : {}), providers };
}

async function gpu(opts: ProbeOptions): Promise<ProbeReport['gpu']> {
  const g = await si.graphics().catch(() => ({ controllers: [] as si.Systeminformation.GraphicsControllerData[] }));
  const controllers = g.controllers.map((c) => ({ vendor: c.vendor, model: c.model, ...(c.vram ? { vramMb: c.vram } : {}) }));
  const tegra = existsSync('/etc/nv_tegra_release')
    ? readFileSync('/etc/nv_tegra_release', 'utf8').split('\n')[0].replace(/^#\s*/, '')
    : undefined;
  const devDir = opts.devDir ?? '/dev';
  const nvidiaDevices = listDir(devDir)
    .filter((n) => /^(nvidia\d+|nvidiactl|nvidia-uvm|nvmap|nvhost-.*)$/.test(n))
    .map((n) => join(devDir, n));
  return { controllers, ...(tegra ? { jetson: tegra } : {}), nvidiaDevices };
}

function config(file: string | undefined): ProbeReport['config'] {
  try {
    const c = loadConfig({ file });
    return {
      ok: true,
      source: c.source,
      summary:
        `device ${c.deviceId}, cameras: ${Object.keys(c.cameras).join(', ')}, model: ${c.model.path}, mqtt: ` +
        `${c.mqtt.url}, http: ${c.http.host}:${c.http.port}`,
    };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, source: err.file, problems: err.problems };
    return { ok: false, problems: [errorMessage(err)] };
  }
}

export async function probe(opts: ProbeOptions = {}): Promise<ProbeReport> {
  const [gst, g, mem, thermal] = await Promise.all([gstreamer(), gpu(opts), si.mem(), readThermal()]);
  let temperatures = thermal.temperatures.map((t) => ({ type: t.type, celsius: t.celsius }));
  if (!temperatures.length) {
    const cpu = await si.cpuTemperature().catch(() => undefined);
    if (typeof cpu?.main === 'number') temperatures = [{ type: 'cpu', celsius: cpu.main }];
  }
  return {
    gstreamer: gst,
    cameras: cameras(opts),
    onnxruntime: onnxruntime(),
    gpu: g,
    memory: { totalMb: Math.round(mem.total / 2 ** 20), availableMb: Math.round(mem.available / 2 ** 20) },
    temperatures,
    config: config(opts.configFile),
  };
}

/** The report as a technician reads it. */
export function formatProbe(r: ProbeReport): string {
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'NO  ');
  const lines: string[] = [];
  lines.push('GStreamer');
  lines.push(
    `  ${mark(r.gstreamer.capture)}capture: ${r.gstreamer.detail}${r.gstreamer.version ? ` (GStreamer ${r.gstreamer.version})` : ''}`,
  );
  const els = Object.entries(r.gstreamer.elements);
  if (els.length) lines.push(`      elements: ${els.map(([e, ok]) => `${e} ${ok ? 'yes' : 'no'}`).join(', ')}`);
  if (r.gstreamer.scaler) lines.push(`      frames are scaled to the model by: ${r.gstreamer.scaler}`);
  else lines.push('      elements: unknown (gst-inspect-1.0 is not installed: apt-get install gstreamer1.0-tools)');
  lines.push('Cameras');
  if (!r.cameras.byId.length && !r.cameras.video.length) lines.push('  NO  no camera found under /dev/v4l/by-id or /dev/video*');
  for (const c of r.cameras.byId) lines.push(`  ok  v4l2://${c.path}  (${c.device})`);
  if (r.cameras.video.length) lines.push(`      devices: ${r.cameras.video.join(', ')}`);
  lines.push(`ONNX Runtime${r.onnxruntime.version ? ` ${r.onnxruntime.version}` : ''}`);
  for (const p of r.onnxruntime.providers) lines.push(`  ${mark(p.available)}${p.provider}${p.detail ? `: ${p.detail}` : ''}`);
  lines.push('GPU');
  if (r.gpu.jetson) lines.push(`      Jetson: ${r.gpu.jetson}`);
  for (const c of r.gpu.controllers) lines.push(`      ${c.vendor} ${c.model}${c.vramMb ? ` (${c.vramMb} MB)` : ''}`);
  lines.push(`      NVIDIA device nodes: ${r.gpu.nvidiaDevices.length ? r.gpu.nvidiaDevices.join(', ') : 'none'}`);
  lines.push('Memory and temperature');
  lines.push(`      ${r.memory.availableMb} MB available of ${r.memory.totalMb} MB`);
  const temperatures = r.temperatures.map((t) => `${t.type} ${t.celsius.toFixed(1)} °C`).join(', ');
  lines.push(`      ${temperatures || 'no temperature sensors readable'}`);
  lines.push(`Config${r.config.source ? ` (${r.config.source})` : ''}`);
  if (r.config.ok) lines.push(`  ok  ${r.config.summary}`);
  for (const p of r.config.problems ?? []) lines.push(`  NO  ${p}`);
  // Device names, GPU models and sensor types come from hardware and drivers: safe for the terminal.
  return `${termSafeLines(lines.join('\n'))}\n`;
}
