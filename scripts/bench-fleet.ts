// Fleet benchmark: K real daemons (dist/src/cli.js, the demo model, one images:// camera each) on
// one local Mosquitto, the daemons connecting through a counting TCP proxy (every connection
// attempt is timed). Measures
//   steady      results/s and bytes/s through the broker, mean result size (a QoS 0 subscriber
//               on the broker itself counts them)
//   outage      the broker stopped for --outage seconds and started again: how each daemon comes
//               back (first connect after the restart), how its journal drains ("journal drained"
//               log: messages, ms), and the connection attempts per 100 ms from the stop to the
//               last reconnect (busiest 100 ms vs the mean: the reconnect spread)
// Uses the daemons' default reconnect settings (jittered, 1 s .. 15 s) unless told otherwise.
// Dev-only: it reuses the test helpers (Mosquitto, proxy, daemon process). Needs `npm run build`.
//
//   npm run bench:fleet [-- --daemons 10] [--fps 5] [--seconds 20] [--outage 30]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { demoSamplesDir } from '../src/paths.js';
import { CLI, type DaemonProcess, spawnDaemon } from '../test/helpers/daemon.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { spread, startTcpProxy } from '../test/helpers/tcp-proxy.js';

const { values } = parseArgs({
  options: {
    daemons: { type: 'string', default: '10' },
    fps: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '20' },
    outage: { type: 'string', default: '30' },
    'reconnect-min': { type: 'string', default: '1' },
    'reconnect-max': { type: 'string', default: '15' },
    out: { type: 'string', default: 'bench-results' },
  },
});
const K = Number(values.daemons);
const FPS = Number(values.fps);
const SECONDS = Number(values.seconds);
const OUTAGE_S = Number(values.outage);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

if (!existsSync(CLI)) throw new Error(`${CLI} not found: run npm run build first`);
const mosq = await startMosquitto({ extraConf: 'max_queued_messages 1000000' });
if (!mosq) throw new Error('mosquitto not found (apt-get install mosquitto)');
const proxy = await startTcpProxy(mosq.port);
const daemons: DaemonProcess[] = [];
const ids = Array.from({ length: K }, (_, i) => `fleet-${String(i + 1).padStart(2, '0')}`);

// The broker's output as a consumer sees it: every result, QoS 0, on the broker's own port.
let count = 0;
let bytes = 0;
const sub = await mqtt.connectAsync(mosq.url, { reconnectPeriod: 100, clientId: 'bench-fleet-consumer' });
sub.on('message', (_t, payload) => {
  count++;
  bytes += payload.length;
});
sub.on('connect', () => void sub.subscribe('edge-inferd/+/+/result', { qos: 0 }));
await sub.subscribeAsync('edge-inferd/+/+/result', { qos: 0 });

const report: Record<string, unknown> = {
  daemons: K,
  fps: FPS,
  outageSec: OUTAGE_S,
  reconnect: { minSec: Number(values['reconnect-min']), maxSec: Number(values['reconnect-max']) },
};
try {
  const t0 = Date.now();
  for (const id of ids) {
    daemons.push(
      spawnDaemon({
        deviceId: id,
        http: { enabled: false },
        mqtt: { url: proxy.url, reconnectMinSec: Number(values['reconnect-min']), reconnectMaxSec: Number(values['reconnect-max']) },
        journal: { maxRows: 1_000_000, maxBytes: 1 << 30 },
        cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: FPS, publish: { events: false } } },
      }),
    );
  }
  await Promise.all(daemons.map((d) => d.waitForLog((l) => l.msg === 'running', 180_000)));
  console.log(`${K} daemons running after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await sleep(3000);

  // Steady state.
  const c0 = count;
  const b0 = bytes;
  const s0 = Date.now();
  await sleep(SECONDS * 1000);
  const secs = (Date.now() - s0) / 1000;
  const steady = {
    messagesPerSec: Math.round(((count - c0) / secs) * 10) / 10,
    bytesPerSec: Math.round((bytes - b0) / secs),
    meanResultBytes: Math.round((bytes - b0) / Math.max(1, count - c0)),
  };
  report.steady = steady;
  console.log(
    `steady: ${steady.messagesPerSec} results/s through the broker (${K} x ${FPS} fps), ${(steady.bytesPerSec / 1024).toFixed(1)} KiB/s, ${steady.meanResultBytes} B per result`,
  );

  // Outage.
  const logMark = daemons.map((d) => d.logs.length);
  const stopAt = performance.now();
  const stopWall = Date.now();
  await mosq.stop();
  await sleep(OUTAGE_S * 1000);
  const upWall = Date.now();
  await mosq.start();
  const drained = await Promise.all(
    daemons.map((d, i) => d.waitForLog((l) => l.msg === 'journal drained' && d.logs.indexOf(l) >= logMark[i], 300_000)),
  );
  const lastDrainWall = Math.max(...drained.map((l) => l.time as number));
  const connects = daemons.map((d, i) => d.logs.find((l, j) => j >= logMark[i] && l.msg === 'mqtt connected')!.time as number);
  const lastConnect = performance.now() - (Date.now() - Math.max(...connects));
  const attempts = spread(proxy.arrivals, stopAt, lastConnect);
  const perSecond = spread(proxy.arrivals, stopAt, lastConnect, 1000);
  const backAfter = connects.map((t) => (t - upWall) / 1000);
  const drainMs = drained.map((l) => l.ms as number);
  const drainMsgs = drained.map((l) => l.messages as number);
  const outage = {
    journaledPerDaemon: { min: Math.min(...drainMsgs), max: Math.max(...drainMsgs) },
    journaledTotal: drainMsgs.reduce((a, b) => a + b, 0),
    reconnectAfterRestartSec: { min: Math.min(...backAfter), median: q(backAfter, 0.5), max: Math.max(...backAfter) },
    drainMs: { min: Math.min(...drainMs), median: q(drainMs, 0.5), max: Math.max(...drainMs) },
    allDrainedAfterRestartSec: Math.round((lastDrainWall - upWall) / 100) / 10,
    drainRatePerDaemon: Math.round(
      q(
        drainMsgs.map((m, i) => (m / Math.max(1, drainMs[i])) * 1000),
        0.5,
      ),
    ),
    attemptsPer100ms: {
      attempts: attempts.attempts,
      windowSec: Math.round((lastConnect - stopAt) / 100) / 10,
      busiest: attempts.busiest,
      mean: attempts.mean,
      ratio: attempts.ratio,
      busiestAny100ms: attempts.sliding,
    },
    attemptsPerSecond: { busiest: perSecond.busiest, mean: perSecond.mean, ratio: perSecond.ratio },
    outageWallSec: Math.round((upWall - stopWall) / 100) / 10,
  };
  report.outage = outage;
  console.log(
    `outage ${OUTAGE_S} s: ${outage.journaledTotal} results journaled (${outage.journaledPerDaemon.min}-${outage.journaledPerDaemon.max} per daemon); ` +
      `back after the restart in ${outage.reconnectAfterRestartSec.min.toFixed(2)}-${outage.reconnectAfterRestartSec.max.toFixed(2)} s (median ${outage.reconnectAfterRestartSec.median.toFixed(2)}); ` +
      `drain ${outage.drainMs.min}-${outage.drainMs.max} ms per daemon (median ${outage.drainRatePerDaemon} msg/s); all drained ${outage.allDrainedAfterRestartSec} s after the restart`,
  );
  console.log(
    `connection attempts from the stop to the last reconnect: ${attempts.attempts} in ${outage.attemptsPer100ms.windowSec} s; busiest 100 ms ${attempts.busiest} (any 100 ms: ${attempts.sliding}), mean ${attempts.mean}, ratio ${attempts.ratio}; busiest second ${perSecond.busiest}, mean ${perSecond.mean}, ratio ${perSecond.ratio}; ` +
      `after the restart the daemons came back at ${backAfter
        .map((b) => b.toFixed(1))
        .sort((x, y) => Number(x) - Number(y))
        .join(', ')} s`,
  );
  mkdirSync(values.out, { recursive: true });
  const file = path.join(values.out, `fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${file}`);
} finally {
  await Promise.all(daemons.map((d) => d.kill('SIGTERM')));
  await sub.endAsync(true);
  await proxy.close();
  await mosq.stop();
}
