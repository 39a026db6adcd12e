// Memory and responsiveness under attack (issue 13, rows 6-9): the built daemon (dist/src/cli.js)
// runs a 1080p test:// camera on the demo model, publishing to a local Mosquitto (MQTT 5), while
// this process attacks it, one phase at a time and then all at once:
//   slow-bodies   thousands of POST /infer connections from 127.0.0.2-.9 that send headers and
//                 then a byte now and then (row 6)
//   snapshots     bursts of 1,000 cmd/snapshot at QoS 0 and 200 at QoS 1 (row 7)
//   big-commands  5 x 50 MB command payloads per second (row 8)
//   bad-images    100 parallel POST /infer of a 293-byte truncated JPEG that says 7000x7000, and
//                 of a real JPEG just under the pixel limit (row 9)
//   fake-broker   (issue 21 row 10) a second daemon connects to a fake broker that answers CONNACK
//                 and sends a PUBLISH announcing 200 MB, streaming its body: the daemon must close
//                 the connection from the header; its peak RSS and the bytes sent are reported
//   kiosk-streams 1,000 GET /events and 1,000 GET /preview.mjpeg clients from 127.0.0.11-.30, half
//                 of them never reading, reconnecting a second after each refusal (issue 20): the
//                 limits answer 503, memory stays bounded, the camera keeps its rate
// Throughout, a probe on 127.0.0.1 asks /healthz every 50 ms (latency, failures) and the daemon's
// RSS is read from /proc every 100 ms. Targets: RSS < 600 MB, /healthz p99 < 100 ms.
//
//   npm run bench:abuse [-- --seconds 10] [--connections 4000]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import mqtt from 'mqtt';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { MAX_PIXELS } from '../src/capture/decode-guards.js';
import { packageRoot } from '../src/paths.js';
import { freePort, startMosquitto, stopProc, waitPort } from './bench-processes.js';
import { remainingLength } from '../test/helpers/mqtt-packets.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '4000' },
    /**
     * Comma-separated phase names to run (idle, slow-bodies, snapshots, big-commands, bad-images, kiosk-streams,
     * kiosk-events, kiosk-preview, all); default every one.
     */
    phases: { type: 'string' },
    'infer-concurrent': { type: 'string', default: '1' },
    /** Extra node options for the daemon, space-separated (e.g. "--cpu-prof --cpu-prof-dir=prof": where its main thread's time goes). */
    'daemon-node-args': { type: 'string', default: '' },
  },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const RSS_TARGET_MB = 600;
const P99_TARGET_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN;

/** RSS and its high-water mark of a process, in MB. */
function memOf(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/**
 * The /healthz prober runs in its own thread, so the attack's work in this process does not
 * delay it: GET /healthz every 50 ms on a fresh connection (as a prober would), latency in ms,
 * -1 for a failure. Started and stopped per phase.
 */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const { request } = require('node:http');
let stop = false;
parentPort.on('message', () => (stop = true));
const out = [];
(async () => {
  while (!stop) {
    const t0 = performance.now();
    out.push(await new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: workerData.port, path: '/healthz', agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - t0 : -1));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(-1));
      req.end();
    }));
    await new Promise((r) => setTimeout(r, 50));
  }
  parentPort.postMessage(out);
})();
`;

function startProber(port: number): () => Promise<number[]> {
  const w = new Worker(PROBER, { eval: true, workerData: { port } });
  return () =>
    new Promise((resolve) => {
      w.once('message', (xs: number[]) => {
        void w.terminate();
        resolve(xs);
      });
      w.postMessage('stop');
    });
}

const CONTROL_SERVER = `require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.argv[1]), '127.0.0.1')`;

/** GET a path from this thread; the body, or '' on failure. */
function getText(port: number, p: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: p, agent: false, timeout: 10_000 }, (res) => {
      let t = '';
      res.on('data', (d: Buffer) => (t += d.toString()));
      res.on('end', () => resolve(t));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(''));
    req.end();
  });
}

/** The daemon's own event-loop lag (prom-client resets it at every scrape): p99 and max in ms. */
async function loopLag(port: number): Promise<{ p99: number; max: number }> {
  const text = await getText(port, '/metrics');
  const v = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p99: v('nodejs_eventloop_lag_p99_seconds'), max: v('nodejs_eventloop_lag_max_seconds') };
}

/** One GET /healthz from this thread (for the start-up wait). */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 0 : undefined));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

interface PhaseResult {
  phase: string;
  peakRssMb: number;
  p50: number;
  p99: number;
  maxMs: number;
  probes: number;
  failed: number;
  lagP99: number;
  lagMax: number;
  /** The bare control server's p99 in the same phase (the machine's share). */
  controlP99: number;
  note: string;
}

/**
 * fake-broker: a daemon of its own against a broker that sends one 200 MB PUBLISH. Before issue
 * 21, mqtt.js buffered the whole packet before refusing it (RSS 189 -> 568 MB, not given back).
 */
async function fakeBrokerCase(cli: string): Promise<string> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-fake-broker-'));
  const TOTAL = 200 * 1024 * 1024;
  let sent = 0;
  let closedAfter = -1;
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('close', () => (closedAfter = sent));
    socket.once('data', (connect) => {
      const v5 = connect.includes(Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05]));
      socket.write(v5 ? Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]) : Buffer.from([0x20, 0x02, 0x00, 0x00]));
      // Once the daemon is up and idle: then the PUBLISH.
      setTimeout(() => {
        const topic = Buffer.from('edge-inferd/fake/cmd/status');
        socket.write(
          Buffer.concat([Buffer.from([0x30]), remainingLength(TOTAL), Buffer.from([0, topic.length]), topic, Buffer.from(v5 ? [0] : [])]),
        );
        const chunk = Buffer.alloc(1024 * 1024, 0x78);
        const pump = () => {
          while (!socket.destroyed && sent < TOTAL) {
            sent += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        pump();
      }, 3000);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const httpPort = await freePort();
  const config = {
    deviceId: 'fake',
    cameras: { cam: { uri: 'test://smpte', width: 640, height: 480, fps: 5 } },
    mqtt: { url: `mqtt://127.0.0.1:${port}`, reconnectMinSec: 30, reconnectMaxSec: 30 },
    http: { port: httpPort },
    log: { level: 'warn', format: 'json' },
    journal: { path: path.join(work, 'journal.sqlite') },
  };
  writeFileSync(path.join(work, 'config.yaml'), stringify(config));
  const daemon = spawn(process.execPath, [cli, 'run', '--config', path.join(work, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '' },
  });
  daemon.stdout?.resume();
  daemon.stderr?.resume();
  await waitPort(httpPort, 60_000);
  const before = memOf(daemon.pid ?? 0).rss;
  for (let i = 0; i < 100 && closedAfter < 0; i++) await sleep(100);
  await sleep(3000 + 2000);
  const after = memOf(daemon.pid ?? 0);
  await stopProc(daemon);
  server.close();
  rmSync(work, { recursive: true, force: true });
  const f = (x: number) => x.toFixed(1);
  return (
    `fake-broker: a 200 MB PUBLISH; the daemon closed the connection after ${closedAfter < 0 ? 'never' : `${f(closedAfter / 1048576)} MB`} ` +
    `had been sent; RSS ${f(before)} MB before, ${f(after.rss)} MB after, peak (VmHWM) ${f(after.hwm)} MB`
  );
}

async function main(): Promise<void> {
  const cli = path.join(packageRoot, 'dist/src/cli.js');
  if (!existsSync(cli)) throw new Error('dist/src/cli.js is missing: npm run build first');
  if (values.phases === 'fake-broker') {
    console.log(await fakeBrokerCase(cli));
    return;
  }
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-abuse-'));
  const broker = await startMosquitto(work);
  // The control: a bare Node HTTP server in a process of its own, probed like the daemon in every
  // phase. It shares the machine, not the attack: when its p99 is as high, the time is the machine's.
  const controlPort = await freePort();
  const control = spawn(process.execPath, ['-e', CONTROL_SERVER, String(controlPort)], { stdio: 'ignore' });
  await waitPort(controlPort, 30_000);
  const mqttUrl = broker.url;

  const httpPort = await freePort();
  const deviceId = 'abuse';
  const config = {
    deviceId,
    cameras: { cam: { uri: 'test://smpte', width: 1920, height: 1080, fps: 15 } },
    mqtt: { url: mqttUrl },
    http: { port: httpPort, limits: { inferConcurrent: Number(values['infer-concurrent']) } },
    log: { level: 'warn', format: 'json' },
    journal: { path: path.join(work, 'journal.sqlite') },
    stats: { intervalSec: 0 },
  };
  writeFileSync(path.join(work, 'config.yaml'), stringify(config));
  let logLines = 0;
  const nodeArgs = (values['daemon-node-args'] ?? '').split(' ').filter(Boolean);
  const daemon = spawn(process.execPath, [...nodeArgs, cli, 'run', '--config', path.join(work, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '' },
  });
  daemon.stdout!.on('data', (d: Buffer) => (logLines += d.toString().split('\n').length - 1));
  daemon.stderr!.on('data', () => undefined);
  const pid = daemon.pid!;
  await waitPort(httpPort, 60_000);
  for (let i = 0; i < 300 && (await probe(httpPort)) === undefined; i++) await sleep(200);

  const base = `edge-inferd/${deviceId}`;
  const pub = await mqtt.connectAsync(mqttUrl, { protocolVersion: 5 });
  // Someone has to read the responses, or the broker queues them; count them as they come.
  const sub = await mqtt.connectAsync(mqttUrl, { protocolVersion: 5 });
  const answers = { ok: 0, busy: 0, other: 0 };
  sub.on('message', (_t, p) => {
    const j = JSON.parse(p.toString()) as { ok: boolean; error?: { code: string } };
    if (j.ok) answers.ok++;
    else if (j.error?.code === 'BUSY') answers.busy++;
    else answers.other++;
  });
  await sub.subscribeAsync(`${base}/cmd/+/response`, { qos: 0 });

  const truncated = await (async () => {
    const whole = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#808080' } })
      .jpeg({ quality: 50 })
      .toBuffer();
    return Buffer.concat([whole.subarray(0, 291), Buffer.from([0xff, 0xd9])]);
  })();
  // A square just under the pixel limit: the largest image the daemon will decode.
  const side = Math.floor(Math.sqrt(MAX_PIXELS));
  const bigJpeg = await sharp({ create: { width: side, height: side, channels: 3, background: '#4080c0' } })
    .jpeg({ quality: 85 })
    .toBuffer();
  const bigCommand = Buffer.alloc(50 * 1024 * 1024, 0x20);
  bigCommand.write('{"id":"big","pad":"');
  bigCommand.write('"}', bigCommand.length - 2);

  // --- attacks: each returns a stop function ---
  const slowBodies = () => {
    const open = new Set<Socket>();
    let stopped = false;
    let opened = 0;
    const one = (i: number) => {
      if (stopped) return;
      const s = connect({ host: '127.0.0.1', port: httpPort, localAddress: `127.0.0.${2 + (i % 8)}` });
      opened++;
      open.add(s);
      s.on('connect', () =>
        s.write(
          `POST /infer HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n\xff\xd8\xff`,
        ),
      );
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      // Refused or timed out: come back a second later, as a retrying client would.
      s.on('close', () => {
        open.delete(s);
        setTimeout(() => one(i), 1000);
      });
    };
    for (let i = 0; i < CONNECTIONS; i++) one(i);
    const drip = setInterval(() => {
      for (const s of open) if (s.writable) s.write('x');
    }, 1000);
    return {
      stop: () => {
        stopped = true;
        clearInterval(drip);
        for (const s of open) s.destroy();
      },
      note: () => `${opened} connections opened`,
    };
  };

  const snapshots = () => {
    let bursts = 0;
    const burst = () => {
      bursts++;
      for (let i = 0; i < 1000; i++) pub.publish(`${base}/cmd/snapshot`, JSON.stringify({ id: `s${bursts}-${i}` }), { qos: 0 });
      for (let i = 0; i < 200; i++) pub.publish(`${base}/cmd/snapshot`, JSON.stringify({ id: `q${bursts}-${i}` }), { qos: 1 });
    };
    burst();
    const t = setInterval(burst, 1000);
    return {
      stop: () => clearInterval(t),
      note: () => `${bursts * 1200} requests sent; answered ${answers.ok} ok, ${answers.busy} BUSY, ${answers.other} other`,
    };
  };

  const bigCommands = () => {
    let sent = 0;
    const t = setInterval(() => {
      for (let i = 0; i < 5; i++) {
        sent++;
        pub.publish(`${base}/cmd/pause`, bigCommand, { qos: 1 });
      }
    }, 1000);
    return { stop: () => clearInterval(t), note: () => `${sent} x 50 MB sent` };
  };

  const badImages = () => {
    let stopped = false;
    const codes: Record<string, number> = {};
    const worker = async (body: Buffer) => {
      while (!stopped) {
        const status = await new Promise<number>((resolve) => {
          const req = request(
            {
              host: '127.0.0.1',
              port: httpPort,
              path: '/infer',
              method: 'POST',
              agent: false,
              localAddress: '127.0.0.10',
              headers: { 'Content-Length': body.length },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', () => resolve(0));
          req.end(body);
        });
        codes[status] = (codes[status] ?? 0) + 1;
        if (status === 0 || status === 503) await sleep(20);
      }
    };
    for (let i = 0; i < 100; i++) void worker(i % 2 ? truncated : bigJpeg);
    return {
      stop: () => {
        stopped = true;
      },
      note: () =>
        Object.entries(codes)
          .map(([k, v]) => `${v} x ${k === '0' ? 'refused' : k}`)
          .join(', '),
    };
  };

  const inferred = () =>
    new Promise<number>((resolve) => {
      request({ host: '127.0.0.1', port: httpPort, path: '/status', agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve((JSON.parse(body) as { cameras: Record<string, { inferred?: number }> }).cameras.cam?.inferred ?? 0));
      })
        .on('error', () => resolve(NaN))
        .end();
    });

  const kioskStreams = (paths = ['/preview.mjpeg?camera=cam', '/events']) => {
    let stopped = false;
    const codes: Record<string, number> = {};
    const open = new Set<Socket>();
    const startedAt = Date.now();
    let before = NaN;
    void inferred().then((n) => {
      before = n;
    });
    const one = (i: number) => {
      if (stopped) return;
      const path = paths[i % paths.length];
      const s = connect({ host: '127.0.0.1', port: httpPort, localAddress: `127.0.0.${11 + (i % 20)}` });
      open.add(s);
      let counted = false;
      s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\n\r\n`));
      s.on('error', () => undefined);
      s.once('data', (d: Buffer) => {
        counted = true;
        const code = /^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1] ?? '?';
        const key = `${path.split('?')[0].slice(1)} ${code}`;
        codes[key] = (codes[key] ?? 0) + 1;
        // Half the clients stop reading once the stream has begun: they must cost the daemon a bounded buffer, then be dropped.
        if (i % 4 < 2) s.pause();
      });
      s.on('close', () => {
        open.delete(s);
        if (!counted) codes.closed = (codes.closed ?? 0) + 1;
        setTimeout(() => one(i), 1000);
      });
    };
    for (let i = 0; i < 2000; i++) one(i);
    let after = NaN;
    let afterAt = startedAt;
    const counter = setInterval(
      () =>
        void inferred().then((n) => {
          after = n;
          afterAt = Date.now();
        }),
      1000,
    );
    return {
      stop: () => {
        stopped = true;
        clearInterval(counter);
        for (const s of open) s.destroy();
      },
      note: () => {
        const fps = (after - before) / ((afterAt - startedAt) / 1000);
        return `${Object.entries(codes)
          .map(([k, v]) => `${v} x ${k}`)
          .join(', ')}; camera ${Number.isFinite(fps) ? fps.toFixed(1) : '?'} fps inferred meanwhile`;
      },
    };
  };

  const runPhase = async (phase: string, attacks: (() => { stop(): void; note(): string })[]): Promise<PhaseResult> => {
    await loopLag(httpPort); // resets the daemon's lag histogram
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, memOf(pid).rss)), 100);
    const stopProber = startProber(httpPort);
    const stopControl = startProber(controlPort);
    const running = attacks.map((a) => a());
    await sleep(SECONDS * 1000);
    const all = await stopProber();
    const controlLat = (await stopControl()).filter((x) => x >= 0);
    const lat = all.filter((x) => x >= 0);
    const failed = all.length - lat.length;
    const note = running.map((r) => r.note()).join('; ');
    for (const r of running) r.stop();
    const lag = await loopLag(httpPort);
    clearInterval(sampler);
    peak = Math.max(peak, memOf(pid).rss);
    // Let it settle before the next phase.
    await sleep(2000);
    return {
      phase,
      peakRssMb: peak,
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      maxMs: Math.max(...lat),
      probes: lat.length + failed,
      failed,
      lagP99: lag.p99,
      lagMax: lag.max,
      controlP99: pct(controlLat, 99),
      note,
    };
  };

  const results: PhaseResult[] = [];
  try {
    const want = values.phases?.split(',');
    const phases: [string, string, (() => { stop(): void; note(): string })[]][] = [
      ['idle', 'idle', []],
      ['slow-bodies', 'slow-bodies (row 6)', [slowBodies]],
      ['snapshots', 'snapshots (row 7)', [snapshots]],
      ['big-commands', 'big-commands (row 8)', [bigCommands]],
      ['bad-images', 'bad-images (row 9)', [badImages]],
      ['kiosk-streams', 'kiosk-streams (issue 20)', [() => kioskStreams()]],
      // The two halves of kiosk-streams on their own (2,000 clients each): which one costs what.
      ['kiosk-events', 'kiosk-streams, /events only', [() => kioskStreams(['/events'])]],
      ['kiosk-preview', 'kiosk-streams, /preview.mjpeg only', [() => kioskStreams(['/preview.mjpeg?camera=cam'])]],
      ['all', 'all at once', [slowBodies, snapshots, bigCommands, badImages]],
    ];
    for (const [key, label, attacks] of phases) if (!want || want.includes(key)) results.push(await runPhase(label, attacks));
  } finally {
    const hwm = memOf(pid).hwm;
    const status = await new Promise<string>((resolve) => {
      request({ host: '127.0.0.1', port: httpPort, path: '/status', agent: false }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d.toString()));
        res.on('end', () => resolve(t));
      })
        .on('error', () => resolve('{}'))
        .end();
    });
    const cam = (
      JSON.parse(status || '{}') as { cameras?: Record<string, { state: string; inferred: number; errors: number; lastError?: unknown }> }
    ).cameras;
    await pub.endAsync(true);
    await sub.endAsync(true);
    await stopProc(daemon);
    await stopProc(control);
    await broker.stop();
    rmSync(work, { recursive: true, force: true });

    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    console.log(
      `\nbench:abuse: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, node ${process.version}; ${SECONDS} s per phase; 1080p test:// camera at 15 fps, demo model, Mosquitto (MQTT 5)\n`,
    );
    console.log(
      '| phase | peak RSS MB | /healthz p50 / p99 / max ms | probes failed | daemon loop lag p99 / max ms | control p99 ms | what the attack did |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results)
      console.log(
        `| ${r.phase} | ${f(r.peakRssMb)} | ${f(r.p50)} / ${f(r.p99)} / ${f(r.maxMs)} | ${r.failed} of ${r.probes} | ` +
          `${f(r.lagP99)} / ${f(r.lagMax)} | ${f(r.controlP99)} | ${r.note || '-'} |`,
      );
    const worstRss = Math.max(hwm, ...results.map((r) => r.peakRssMb));
    const worstP99 = Math.max(...results.map((r) => r.p99));
    console.log(`\npeak RSS (VmHWM) ${f(hwm)} MB (target < ${RSS_TARGET_MB}): ${worstRss < RSS_TARGET_MB ? 'holds' : 'MISSED'}`);
    console.log(`worst /healthz p99 ${f(worstP99)} ms (target < ${P99_TARGET_MS}): ${worstP99 < P99_TARGET_MS ? 'holds' : 'MISSED'}`);
    const c = cam?.cam;
    if (!values.phases || values.phases.split(',').includes('fake-broker')) console.log(await fakeBrokerCase(cli));
    console.log(
      `camera at the end: ${c ? `${c.state}, ${c.inferred} inferred, ${c.errors} errors, lastError ${c.lastError ? JSON.stringify(c.lastError) : 'none'}` : '?'}; daemon log lines: ${logLines}; machine load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
  }
}

await main();
