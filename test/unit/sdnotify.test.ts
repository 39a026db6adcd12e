// sd_notify through the edge_notify addon, received by a real AF_UNIX datagram socket. Node has no
// AF_UNIX datagram API, so a tiny python3 helper binds the socket and prints what it receives.
// In CI (CI=true) nothing is skipped; elsewhere the socket tests skip loudly without the addon.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNotifyAddon, sdNotify, sdNotifyDetailed } from '../../src/health/sdnotify.js';
import { IN_CI } from '../helpers/tools.js';

const addon = loadNotifyAddon();
if (!addon.ok && !IN_CI) console.warn(`\n*** sd_notify socket tests SKIPPED (not CI): ${addon.reason}\n`);
// In CI (IN_CI) these run whatever the machine has, so a missing addon or GStreamer fails them.
const run = addon.ok || IN_CI;

// Binds argv[1] ('@name' = abstract namespace), says READY, then prints each datagram as JSON.
const RECEIVER = `
import json, socket, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print('LISTENING', flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

interface Receiver {
  next(): Promise<string>;
  stop(): void;
}

const receivers: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const r of receivers.splice(0)) r.kill();
});

async function receiver(address: string): Promise<Receiver> {
  const child = spawn('python3', ['-c', RECEIVER, address]);
  receivers.push(child);
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else lines.push(line);
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      const timer = setTimeout(() => reject(new Error(`no datagram within 5 s; receiver stderr: ${stderr}`)), 5000);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  expect(await nextLine()).toBe('LISTENING');
  return { next: async () => JSON.parse(await nextLine()) as string, stop: () => child.kill() };
}

describe('sdNotify without a socket', () => {
  it('is a no-op returning false when NOTIFY_SOCKET is unset or empty', () => {
    expect(sdNotify('READY=1', {})).toBe(false);
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: '' })).toBe(false);
    expect(sdNotifyDetailed('READY=1', {})).toMatchObject({ sent: false, reason: 'no-socket' });
  });

  it('returns false for socket addresses it cannot use', () => {
    expect(sdNotifyDetailed('READY=1', { NOTIFY_SOCKET: 'vsock:2:1234' })).toMatchObject({ sent: false, reason: 'unsupported-socket' });
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: '/' + 'x'.repeat(200) })).toBe(false);
  });

  it('rejects an empty state as a programming error', () => {
    expect(() => sdNotify('', {})).toThrow(TypeError);
  });
});

describe.skipIf(!run)('sdNotify to a real AF_UNIX datagram socket', () => {
  it('the notify addon is built (must hold in CI)', () => {
    expect(addon.ok, addon.ok ? '' : addon.reason).toBe(true);
  });

  it('sends READY=1 to a filesystem socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-notify-'));
    try {
      const path = join(dir, 'notify.sock');
      const r = await receiver(path);
      expect(sdNotify('READY=1', { NOTIFY_SOCKET: path })).toBe(true);
      expect(await r.next()).toBe('READY=1');
      expect(sdNotify('STATUS=capturing 30 fps\nWATCHDOG=1', { NOTIFY_SOCKET: path })).toBe(true);
      expect(await r.next()).toBe('STATUS=capturing 30 fps\nWATCHDOG=1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sends READY=1 to an abstract '@' socket", async () => {
    const name = `@edge-inferd-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const r = await receiver(name);
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: name })).toBe(true);
    expect(await r.next()).toBe('READY=1');
  });

  it('uses process.env by default', async () => {
    const name = `@edge-inferd-test-env-${process.pid}`;
    const r = await receiver(name);
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = name;
    try {
      expect(sdNotify('WATCHDOG=1')).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
    expect(await r.next()).toBe('WATCHDOG=1');
  });

  it('returns false with the errno when nobody listens', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-notify-'));
    try {
      const res = sdNotifyDetailed('READY=1', { NOTIFY_SOCKET: join(dir, 'nobody.sock') });
      expect(res).toMatchObject({ sent: false, reason: 'send-failed', errno: 'ENOENT' });
      expect(sdNotify('READY=1', { NOTIFY_SOCKET: '@edge-inferd-nobody-listens' })).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
