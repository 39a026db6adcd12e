import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { needTool } from './tools.js';

/**
 * A real systemd notify socket: test/fixtures/notify-socket.py binds an AF_UNIX datagram socket
 * (Node has none) and prints each datagram with its CLOCK_MONOTONIC receive time.
 */
export interface NotifyMessage {
  /** CLOCK_MONOTONIC ms when the datagram arrived. */
  ms: number;
  msg: string;
  fields: Record<string, string>;
}

export interface NotifySocket {
  /** The value for $NOTIFY_SOCKET. */
  path: string;
  messages: NotifyMessage[];
  waitFor(pred: (m: NotifyMessage) => boolean, timeoutMs?: number, after?: number): Promise<NotifyMessage>;
  close(): Promise<void>;
}

const SCRIPT = resolve(import.meta.dirname, '../fixtures/notify-socket.py');

/** `path` defaults to a fresh name in the abstract namespace. */
export async function startNotifySocket(path = `@edge-inferd-test-${randomBytes(6).toString('hex')}`): Promise<NotifySocket | undefined> {
  const python = needTool('python3', 'python3');
  if (!python) return undefined;
  const proc: ChildProcess = spawn(python, [SCRIPT, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: NotifyMessage[] = [];
  const waiters: { pred: (m: NotifyMessage) => boolean; resolve: (m: NotifyMessage) => void }[] = [];
  let buf = '';
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((res, rej) => {
    proc.once('exit', (code) => rej(new Error(`notify-socket.py exited (${code}): ${err}`)));
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, nl)) as { ready?: string; ms: number; msg: string };
        buf = buf.slice(nl + 1);
        if (line.ready) {
          res();
          continue;
        }
        const fields = Object.fromEntries(
          line.msg
            .split('\n')
            .filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        );
        const m = { ms: line.ms, msg: line.msg, fields };
        messages.push(m);
        for (const w of [...waiters])
          if (w.pred(m)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(m);
          }
      }
    });
  });
  await ready;
  return {
    path,
    messages,
    waitFor(pred, timeoutMs = 15_000, after = 0) {
      const hit = messages.slice(after).find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const t = setTimeout(
          () => rej(new Error(`notification not seen in ${timeoutMs} ms; got:\n${messages.map((m) => JSON.stringify(m.msg)).join('\n')}`)),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(t);
            res(m);
          },
        });
      });
    },
    close: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
