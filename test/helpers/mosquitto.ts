import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { needTool } from './tools.js';
import { waitUntil } from './wait.js';

/** A real Mosquitto on a free loopback port, started by the test. */
export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  /** Stops it (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop()); does nothing while it runs. */
  start(): Promise<void>;
  log(): string;
  /** The running broker's process id (to pause it with SIGSTOP: connected, but answering nothing). */
  pid(): number | undefined;
}

export const mosquittoPath = (): string | undefined => needTool('mosquitto', 'mosquitto', ['/usr/sbin/mosquitto']);

/**
 * `extraConf` lines are appended to the generated mosquitto.conf (listener options, TLS, auth).
 * `persistence`: sessions and queued messages survive stop()/start() (saved at SIGTERM), as on a
 * production broker, so a persistent-session subscriber misses nothing across a broker restart.
 */
export async function startMosquitto(
  opts: { extraConf?: string; port?: number; persistence?: boolean } = {},
): Promise<Mosquitto | undefined> {
  const bin = mosquittoPath();
  if (!bin) return undefined;
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'mosq-'));
  const conf = join(dir, 'mosquitto.conf');
  const hasListener = /^listener /m.test(opts.extraConf ?? '');
  const lines = [
    hasListener ? '' : `listener ${port} 127.0.0.1`,
    hasListener ? '' : 'allow_anonymous true',
    opts.persistence ? `persistence true\npersistence_location ${dir}/` : 'persistence false',
    // As root, mosquitto drops to its own user and could then neither save its database nor read key files in our 0700 folder.
    process.getuid?.() === 0 ? 'user root' : '',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    opts.extraConf ?? '',
  ];
  writeFileSync(conf, lines.filter(Boolean).join('\n') + '\n');
  let proc: ChildProcess | undefined;
  let output = '';
  const start = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) return; // already running
    proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitForPort(port, 5000, () => (proc?.exitCode !== null ? `mosquitto exited: ${output}` : undefined));
  };
  await start();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    start,
    log: () => output,
    pid: () => (proc && proc.exitCode === null && proc.signalCode === null ? proc.pid : undefined),
    stop: async () => {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      await new Promise<void>((r) => {
        p.once('exit', () => r());
        p.kill('SIGTERM');
      });
    },
  };
}

export async function waitForPort(port: number, timeoutMs: number, failed?: () => string | undefined): Promise<void> {
  await waitUntil(
    () => {
      const why = failed?.();
      if (why) throw new Error(why);
      return new Promise<boolean>((resolve) => {
        const s = createConnection({ port, host: '127.0.0.1' });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    },
    timeoutMs,
    `something listening on 127.0.0.1:${port}`,
    50,
  );
}
