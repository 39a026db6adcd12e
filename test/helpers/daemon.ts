import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

/** Spawns the real, built daemon (dist/src/cli.js) as a child process with a temporary config. */

export const CLI = resolve(import.meta.dirname, '../../dist/src/cli.js');

export interface DaemonProcess {
  proc: ChildProcess;
  dir: string;
  configPath: string;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  stderr(): string;
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends the signal and resolves with the exit code/signal. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnDaemon(
  config: Record<string, unknown> | undefined,
  opts: { env?: NodeJS.ProcessEnv; args?: string[]; dir?: string } = {},
): DaemonProcess {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'edge-inferd-'));
  const configPath = join(dir, 'config.yaml');
  if (config) writeFileSync(configPath, stringify(config));
  const args = [CLI, ...(opts.args ?? ['run', ...(config ? ['--config', configPath] : [])])];
  const proc = spawn(process.execPath, args, {
    cwd: dir,
    // Each daemon gets its own journal (systemd's StateDirectory variable) unless the test says otherwise.
    env: { ...process.env, STATE_DIRECTORY: dir, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        obj = { raw: line };
      }
      logs.push(obj);
      for (const w of [...waiters])
        if (w.pred(obj)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(obj);
        }
    }
  });
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': resolves once the output is read to the end, so tests see every log line.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('close', (code, signal) => r({ code, signal })),
  );
  return {
    proc,
    dir,
    configPath,
    logs,
    stderr: () => err,
    exited,
    waitForLog(pred, timeoutMs = 15_000) {
      const hit = logs.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(
              new Error(`log line not seen in ${timeoutMs} ms; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${err}`),
            ),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
        void exited.then(() => {
          clearTimeout(t);
          reject(new Error(`daemon exited before the log line; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${err}`));
        });
      });
    },
    kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI once (`edge-inferd ARGS`) and resolves when it has exited and its output is
 * read to the end ('close', not 'exit'). Asynchronous on purpose: spawnSync would stop this
 * process's event loop for the whole run, and with it any App, server or client the test runs.
 */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
