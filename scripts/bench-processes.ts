// The processes the benchmarks start beside the daemon: a Mosquitto on a free loopback port, and a
// clean stop for any child. One copy for bench.ts, bench-memory.ts, bench-abuse.ts and bench-journal.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import path from 'node:path';

export interface Broker {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Starts it again after a stop: the same port and config (the end of an outage). */
  start(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = createConnection(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

export async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
}

/**
 * A Mosquitto on a free loopback port, its config in `dir`; queues deep enough for an outage unless
 * `maxQueued` says otherwise; `persistence` keeps its sessions in `dir` across a stop and start.
 */
export async function startMosquitto(dir: string, opts: { persistence?: boolean; maxQueued?: number } = {}): Promise<Broker> {
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      ...(opts.persistence ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
      process.getuid?.() === 0 ? 'user root' : '',
      `max_queued_messages ${opts.maxQueued ?? 100000}`,
    ]
      .filter(Boolean)
      .join('\n') + '\n',
  );
  const bin = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find(existsSync);
  if (!bin) throw new Error('mosquitto not found (apt-get install mosquitto)');
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(bin, ['-c', conf], { stdio: 'ignore' });
    await waitPort(port, 5000);
  };
  await start();
  return { url: `mqtt://127.0.0.1:${port}`, port, start, stop: async () => proc && stopProc(proc) };
}
