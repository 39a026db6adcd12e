import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySamples } from '../helpers/app.js';
import { bootContainer, type Container, ensureRootfs } from '../helpers/container.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { IN_CI, findTool } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The shipped unit under a real systemd: a Debian 12 container (systemd-nspawn, systemd 252 as
 * init) gets the daemon from scripts/install.sh, with this checkout bound in read-only and Node
 * bound from the host. The broker runs on the host (the container shares its network). Two test
 * settings go in a drop-in, to keep the test short: WatchdogSec=3s and RestartSec=1s. PID 1 logs at
 * debug level, so the notify messages it accepted and the state changes they caused are in its log.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const UNIT = 'edge-inferd.service';
/** Where the host's folders appear in the container (not under /tmp: the container mounts its own /tmp). */
const SRC = '/srv/edge-inferd-src';
const STAGE = '/srv/edge-inferd-stage';
const IMAGES = '/srv/images';
const SAMPLES = ['cardboard-1.png', 'glass-1.png', 'metal-1.png'];

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'must run as root (systemd-nspawn)';
  for (const [tool, pkg] of [
    ['debootstrap', 'debootstrap'],
    ['systemd-nspawn', 'systemd-container'],
    ['nsenter', 'util-linux'],
  ]) {
    if (!findTool(tool, [`/usr/sbin/${tool}`, `/usr/bin/${tool}`])) return `${tool} not found: apt-get install ${pkg}`;
  }
  return undefined;
}

const missing = missingPrerequisite();
if (missing && IN_CI) throw new Error(`systemd container test: ${missing} (CI=true: it must not skip)`);
if (missing) console.warn(`\n*** SKIPPING the systemd container test: ${missing} ***\n`);

/** `systemctl show` properties as an object. */
async function show(c: Container, ...props: string[]): Promise<Record<string, string>> {
  const out = await c.sh(`systemctl show ${UNIT} ${props.map((p) => `-p ${p}`).join(' ')}`);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** PID 1's log lines about the unit since `cursor` (journalctl --cursor), oldest first. */
async function pid1Log(c: Container, since?: string): Promise<string[]> {
  const out = await c.sh(`journalctl _PID=1 -o cat --no-pager ${since ? `--after-cursor='${since}'` : ''} | grep -F '${UNIT}' || true`);
  return out.split('\n').filter(Boolean);
}

async function cursor(c: Container): Promise<string> {
  const out = await c.sh(`journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'`);
  return out.trim();
}

describe.skipIf(missing !== undefined)('the unit under a real systemd (systemd-nspawn)', () => {
  let mosq: Mosquitto;
  let c: Container;
  let host: string;
  let httpPort: number;
  const config: Record<string, any> = {};
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const t0 = Date.now();
    const rootfs = await ensureRootfs();
    timings.rootfsMs = Date.now() - t0;
    mosq = (await startMosquitto())!;
    httpPort = await freePort();
    host = mkdtempSync(join(tmpdir(), 'edge-inferd-nspawn-'));
    // A source tree of links into the bound checkout: install.sh copies the links (cp -a), not 400 MB.
    const stage = join(host, 'stage');
    mkdirSync(stage);
    for (const part of ['dist', 'node_modules', 'models', 'schemas', 'systemd', 'scripts', 'docs', 'package.json', 'README.md', 'native'])
      symlinkSync(join(SRC, part), join(stage, part));
    copySamples(join(host, 'images'), SAMPLES);
    const binds: [string, string, 'ro' | 'rw'][] = [
      [ROOT, SRC, 'ro'],
      [stage, STAGE, 'ro'],
      [join(host, 'images'), IMAGES, 'ro'],
      [realpathSync(process.execPath), realpathSync(process.execPath), 'ro'],
    ];
    // node_modules may be a link out of the checkout (a worktree sharing one): bind its target where the link points.
    const modules = realpathSync(join(ROOT, 'node_modules'));
    if (relative(ROOT, modules).startsWith('..')) binds.push([modules, modules, 'ro']);
    const t1 = Date.now();
    c = await bootContainer(rootfs.dir, binds);
    timings.bootMs = Date.now() - t1;
    await c.sh('systemd-analyze log-level debug');
    // The argus socket stands in for nvargus-daemon's (a file: the bind mount is the same for a socket).
    await c.sh('echo argus > /tmp/argus_socket && echo other > /tmp/not-bound');

    const t2 = Date.now();
    const install = await c.exec(['bash', `${SRC}/scripts/install.sh`, '--source', STAGE], 120_000);
    expect(install.code, install.out + install.err).toBe(0);
    timings.installMs = Date.now() - t2;
    Object.assign(config, {
      deviceId: 'nspawn-1',
      cameras: { tray: { uri: `images://${IMAGES}`, fps: 5 } },
      mqtt: { url: mosq.url },
      http: { port: httpPort },
      health: { stallAfterSec: 2 },
    });
    await c.sh(`cat > /etc/edge-inferd/config.yaml <<'EOF'\n${stringify(config)}EOF`);
    await c.sh(
      `mkdir -p /etc/systemd/system/${UNIT}.d && printf '[Service]\\nWatchdogSec=3s\\nRestartSec=1s\\n' > /etc/systemd/system/${UNIT}.d/50-test.conf && systemctl daemon-reload`,
    );
  }, 20 * 60_000);

  afterAll(async () => {
    console.log(`systemd container: ${JSON.stringify(timings)}`);
    await c?.stop();
    await mosq?.stop();
    if (host) rmSync(host, { recursive: true, force: true });
  }, 60_000);

  it('Type=notify: active only after READY=1, with the daemon STATUS', async () => {
    const from = await cursor(c);
    await c.sh(`systemctl start ${UNIT}`, 120_000);
    const s = await show(c, 'ActiveState', 'SubState', 'StatusText', 'MainPID', 'NRestarts');
    expect(s).toMatchObject({
      ActiveState: 'active',
      SubState: 'running',
      StatusText: 'running: 1/1 cameras streaming, demo-recycling-colour on cpu, mqtt connected',
      NRestarts: '0',
    });
    const log = await pid1Log(c, from);
    const ready = log.findIndex((l) => /Got notification message from PID \d+ \(READY=1/.test(l));
    const running = log.findIndex((l) => /Changed start -> running/.test(l));
    expect(ready, log.join('\n')).toBeGreaterThanOrEqual(0);
    expect(running, log.join('\n')).toBeGreaterThan(ready);
    // No notification before READY turned the unit active: it was `start` all along until then.
    expect(log.slice(0, ready).filter((l) => /Changed start -> /.test(l))).toEqual([]);
  });

  it('journald holds the JSON log lines', async () => {
    // What the daemon wrote to stdout (PID 1 logs a few lines of its own for the unit too, while forking it).
    const out = await c.sh(`journalctl _SYSTEMD_UNIT=${UNIT} _TRANSPORT=stdout -o cat --no-pager`);
    const lines = out.split('\n').filter(Boolean);
    const parsed = lines.map((l) => JSON.parse(l) as { level: number; msg: string; time: number });
    expect(parsed.map((l) => l.msg)).toContain('running');
    // ONNX Runtime's telemetry would keep its device id in the service user's home, /var/lib/edge-inferd.
    expect(await c.sh('find /var/lib/edge-inferd /root -name .onnxruntime')).toBe('');
    for (const l of parsed) expect(l).toMatchObject({ level: expect.any(Number), msg: expect.any(String), time: expect.any(Number) });
  });

  it('the hardening is in force: writes only to its state and cache folders; CSI socket bound into the private /tmp', async () => {
    const { MainPID: pid } = await show(c, 'MainPID');
    const status = await c.sh(`cat /proc/${pid}/status`);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    // A shell in the daemon's mount namespace, as its user: what can it write?
    const tryWrite = async (dir: string) =>
      (
        await c.exec([
          'nsenter',
          '-t',
          pid,
          '-m',
          '--',
          'setpriv',
          '--reuid=edge-inferd',
          '--regid=edge-inferd',
          '--init-groups',
          'sh',
          '-c',
          `echo x > '${dir}/.write-probe' && rm '${dir}/.write-probe'`,
        ])
      ).code === 0;
    for (const dir of ['/var/lib/edge-inferd', '/var/cache/edge-inferd', '/tmp']) expect(await tryWrite(dir), dir).toBe(true);
    // (/dev/shm stays writable: PrivateDevices is off for the cameras and the GPU, and Argus uses shared memory.)
    for (const dir of ['/etc/edge-inferd', '/opt/edge-inferd', '/usr/local/bin', '/var/lib', '/etc', '/srv', '/root', '/home'])
      expect(await tryWrite(dir), dir).toBe(false);
    // ProtectKernelTunables, ProtectControlGroups: read-only /proc/sys and cgroup tree in its namespace.
    const mounts = await c.exec(['nsenter', '-t', pid, '-m', '--', 'findmnt', '-n', '-o', 'TARGET,OPTIONS', '/proc/sys']);
    expect(mounts.out).toMatch(/^\/proc\/sys\s+ro,/m);
    // PrivateTmp: the host's /tmp files are hidden, except the one bound in for nvarguscamerasrc.
    const seen = await c.exec(['nsenter', '-t', pid, '-m', '--', 'sh', '-c', 'cat /tmp/argus_socket; ls /tmp']);
    expect(seen.out.split('\n')[0]).toBe('argus');
    expect(seen.out).not.toContain('not-bound');
  });

  it('systemctl reload applies a live key: RELOADING=1, then READY=1', async () => {
    config.log = { level: 'debug' };
    await c.sh(`cat > /etc/edge-inferd/config.yaml <<'EOF'\n${stringify(config)}EOF`);
    const from = await cursor(c);
    await c.sh(`systemctl reload ${UNIT}`, 60_000);
    const status = await waitUntil(
      async () => {
        const r = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as any;
        return r.reload?.applied?.length ? r : undefined;
      },
      20_000,
      '/status reload',
    );
    expect(status.reload).toMatchObject({ ok: true, applied: ['log.level: "info" -> "debug"'] });
    // PID 1 must see RELOADING=1, then READY=1, and leave the reload state after that READY. (With
    // systemd 252, ExecReload only sends SIGHUP: when `kill` exits before the daemon's RELOADING=1
    // arrives, the unit is briefly `running`, then `reload` again by the notification, until READY.)
    const order = (l: string[]) => {
      const reloading = l.findIndex((x) => /Got notification message from PID \d+ \(RELOADING=1/.test(x));
      const ready = reloading < 0 ? -1 : l.findIndex((x, i) => i > reloading && /Got notification message from PID \d+ \(READY=1/.test(x));
      const running = ready < 0 ? -1 : l.findIndex((x, i) => i > ready && /Changed reload -> running/.test(x));
      return { reloading, ready, running };
    };
    const log = await waitUntil(
      async () => {
        const l = await pid1Log(c, from);
        return order(l).running > 0 ? l : undefined;
      },
      20_000,
      "RELOADING=1, READY=1, then reload -> running in PID 1's log",
    );
    const { reloading, ready, running } = order(log);
    expect(reloading).toBeGreaterThanOrEqual(0);
    expect(ready).toBeGreaterThan(reloading);
    expect(running).toBeGreaterThan(ready);
    expect((await show(c, 'ActiveState')).ActiveState).toBe('active');
  });

  it('a camera that stops delivering: watchdog timeout, systemd restarts the service', async () => {
    const before = await show(c, 'MainPID', 'NRestarts');
    const from = await cursor(c);
    for (const f of readdirSync(join(host, 'images'))) rmSync(join(host, 'images', f));
    const log = await waitUntil(
      async () => {
        const l = await pid1Log(c, from);
        return l.some((x) => /Watchdog timeout/.test(x)) ? l : undefined;
      },
      30_000,
      "a watchdog timeout in PID 1's log",
    );
    expect(log.join('\n')).toMatch(/edge-inferd\.service: Watchdog timeout \(limit 3s\)!/);
    copySamples(join(host, 'images'), SAMPLES);
    const after = await waitUntil(
      async () => {
        const s = await show(c, 'ActiveState', 'SubState', 'NRestarts', 'MainPID');
        return s.ActiveState === 'active' && Number(s.NRestarts) > Number(before.NRestarts) ? s : undefined;
      },
      60_000,
      'active again with NRestarts up',
    );
    expect(after.MainPID).not.toBe(before.MainPID);
  });

  it('systemctl stop publishes `stopped` to the broker outside the container', async () => {
    const sub = await subscribe(mosq.url, 'edge-inferd/nspawn-1/status');
    try {
      await sub.waitFor((m) => m.json?.state === 'online', 15_000);
      await c.sh(`systemctl stop ${UNIT}`, 60_000);
      const stopped = await sub.waitFor((m) => m.json?.state === 'stopped', 15_000);
      expect(stopped.json).toMatchObject({ deviceId: 'nspawn-1', state: 'stopped' });
      expect(await show(c, 'ActiveState', 'Result')).toEqual({ ActiveState: 'inactive', Result: 'success' });
    } finally {
      await sub.close();
    }
  });

  it('an invalid config exits 78 and is not restarted', async () => {
    await c.sh(`echo 'cameras: {tray: {uri: "images:///x", fsp: 2}}' > /etc/edge-inferd/config.yaml`);
    const r = await c.exec(['systemctl', 'start', UNIT], 60_000);
    expect(r.code).not.toBe(0);
    // A failure systemd would restart shows SubState=auto-restart; RestartPreventExitStatus=78 makes it final.
    expect(await show(c, 'ActiveState', 'SubState', 'Result', 'ExecMainStatus')).toEqual({
      ActiveState: 'failed',
      SubState: 'failed',
      Result: 'exit-code',
      ExecMainStatus: '78',
    });
    const out = await c.sh(`journalctl _SYSTEMD_UNIT=${UNIT} -o cat --no-pager | tail -n 5`);
    expect(out).toContain('cameras.tray.fsp: unknown key');
  });

  it('what PID 1 could not apply inside this container is reported; MemoryMax where the memory controller exists', async () => {
    const log = await pid1Log(c);
    const problems = [...new Set(log.filter((l) => /Failed to (parse|set|install|apply)|not supported|prohibited|ignoring/i.test(l)))];
    const memory = await c.exec([
      'sh',
      '-c',
      `cat /sys/fs/cgroup/system.slice/${UNIT}/memory.max /sys/fs/cgroup/memory/system.slice/${UNIT}/memory.limit_in_bytes 2>/dev/null`,
    ]);
    console.log(
      `PID 1 on the unit inside the container:\n${problems.join('\n')}\nmemory limit in the service's cgroup: ${memory.out.trim() || 'none (no memory controller delegated to the container: MemoryMax does not take effect here)'}`,
    );
    if (memory.out.trim()) expect(memory.out.trim()).toBe(String(2 * 2 ** 30));
    expect((await show(c, 'MemoryMax')).MemoryMax).toBe(String(2 * 2 ** 30));
  });
});
