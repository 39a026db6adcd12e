import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './wait.js';

/**
 * A Debian 12 container booted with systemd as its init (systemd-nspawn), for tests of the unit
 * under a real systemd. The root file system comes from debootstrap (Debian's own packages, about a
 * minute) and is cached, keyed by what it was made from; each boot runs on a tmpfs overlay
 * (--volatile=overlay), so the cached tree is never changed and every boot starts clean.
 * The container shares the host's network (no --private-network): a broker or an HTTP port on the
 * host's loopback is the container's loopback too.
 */

const SUITE = 'bookworm';
const PACKAGES = ['systemd', 'dbus', 'systemd-sysv'];

/** Where rootfs trees are kept: $EDGE_INFERD_TEST_CACHE, else ~/.cache/edge-inferd-test. */
export function rootfsCacheDir(): string {
  return process.env.EDGE_INFERD_TEST_CACHE || join(homedir(), '.cache', 'edge-inferd-test');
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 2 ** 20, encoding: 'utf8' }, (err, out, errOut) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: errOut }),
    );
  });
}

/** The cached rootfs for SUITE + PACKAGES, made with debootstrap when absent (built aside, then renamed in). */
export async function ensureRootfs(): Promise<{ dir: string; builtMs?: number }> {
  const key = createHash('sha256')
    .update(`debootstrap --variant=minbase --include=${PACKAGES.join(',')} ${SUITE}`)
    .digest('hex')
    .slice(0, 16);
  const dir = join(rootfsCacheDir(), `rootfs-${SUITE}-${key}`);
  if (existsSync(join(dir, '.complete'))) return { dir };
  mkdirSync(rootfsCacheDir(), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const t0 = Date.now();
  const r = await run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, tmp], 15 * 60_000);
  if (r.code !== 0) throw new Error(`debootstrap failed (${r.code}):\n${r.out.slice(-4000)}\n${r.err.slice(-4000)}`);
  await run('sh', ['-c', `touch '${tmp}/.complete'`], 5000);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { dir, builtMs: Date.now() - t0 };
}

export interface Container {
  /** The container's init (systemd), as seen from the host. */
  initPid: number;
  /** Runs a command inside the container (its mount, pid, ipc, uts and network namespaces). */
  exec(cmd: string[], timeoutMs?: number): Promise<{ code: number; out: string; err: string }>;
  /** exec, failing with the output unless it exits 0; returns stdout. */
  sh(script: string, timeoutMs?: number): Promise<string>;
  /** The console output so far (systemd's boot and shutdown messages). */
  console(): string;
  /** systemctl poweroff, then waits for systemd-nspawn to exit (SIGKILL after a timeout). */
  stop(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  try {
    const tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return tasks.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The first descendant of `pid` named systemd (nspawn forks once or twice before exec'ing init). */
function findInit(pid: number): number | undefined {
  for (const c of childrenOf(pid)) {
    try {
      if (readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'systemd') return c;
    } catch {
      continue;
    }
    const deeper = findInit(c);
    if (deeper) return deeper;
  }
  return undefined;
}

/** Boots `rootfs` with systemd; `binds` are [host path, container path, 'ro' | 'rw'] (not under /tmp: the container mounts its own). */
export async function bootContainer(rootfs: string, binds: [string, string, 'ro' | 'rw'][], timeoutMs = 60_000): Promise<Container> {
  const args = ['--register=no', '--keep-unit', '-q', '--volatile=overlay', '--console=passive', '-b', '-D', rootfs];
  for (const [from, to, mode] of binds) args.push(`--bind${mode === 'ro' ? '-ro' : ''}=${from}:${to}`);
  const proc: ChildProcess = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const initPid = await waitUntil(
    () => {
      if (gone) throw new Error(`systemd-nspawn exited:\n${out}`);
      return findInit(proc.pid!);
    },
    timeoutMs,
    () => `the container's systemd to start; console:\n${out}`,
  );
  const exec: Container['exec'] = (cmd, t = 60_000) =>
    run('nsenter', ['-t', String(initPid), '-m', '-u', '-i', '-n', '-p', '--', ...cmd], t);
  const c: Container = {
    initPid,
    exec,
    async sh(script, t) {
      const r = await exec(['sh', '-c', script], t);
      if (r.code !== 0) throw new Error(`in the container: ${script}\nexit ${r.code}\n${r.out}\n${r.err}`);
      return r.out;
    },
    console: () => out,
    async stop() {
      if (gone) return;
      await exec(['systemctl', 'poweroff'], 10_000);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
  // PID 1 answers systemctl once its private bus socket exists; it is up when is-system-running
  // says running (or degraded: a unit of the minimal image failed).
  await waitUntil(
    async () => (await exec(['test', '-S', '/run/systemd/private'])).code === 0,
    timeoutMs,
    () => `the container's /run/systemd/private; console:\n${out}`,
    100,
  );
  const state = await exec(['systemctl', 'is-system-running', '--wait'], timeoutMs);
  if (!/^(running|degraded)\s*$/.test(state.out)) {
    await c.stop();
    throw new Error(`the container did not boot: ${state.out}${state.err}\n${out}`);
  }
  return c;
}
