// Benchmark of the delivery path: the SQLite journal's CPU cost per message, sustained
// journal-and-publish throughput at QoS 1 against a local Mosquitto, and the drain rate after an
// outage. Real parts only: better-sqlite3 on a temporary file, mqtt.js, a Mosquitto it starts.
//
//   npx tsx scripts/bench-journal.ts [--seconds 10] [--outage-sec 60] [--rate 500] [--window 64]
//                                    [--synchronous normal|full] [--subscriber]
//
// --rate is the production rate (messages/s) during the outage and the drain; --subscriber adds a
// QoS 1 consumer and reports what it received.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { Journal, type NewMessage } from '../src/journal/journal.js';
import { createLogger } from '../src/log.js';
import { MqttConnection } from '../src/publish/client.js';
import { Outbox } from '../src/publish/outbox.js';
import { type Broker, startMosquitto } from './bench-processes.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    'outage-sec': { type: 'string', default: '60' },
    rate: { type: 'string', default: '500' },
    window: { type: 'string', default: '64' },
    synchronous: { type: 'string', default: 'normal' },
    subscriber: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const OUTAGE_SEC = Number(values['outage-sec']);
const RATE = Number(values.rate);
const WINDOW = Number(values.window);
const SYNC = values.synchronous === 'full' ? 'full' : 'normal';
const log = createLogger({ level: 'warn', format: 'json' });
const dir = mkdtempSync(join(tmpdir(), 'bench-journal-'));

/** A result payload the size the daemon really publishes (~850 bytes). */
function payload(camera: string, seq: number): string {
  const now = Date.now();
  return JSON.stringify({
    v: 1,
    id: randomUUID(),
    deviceId: 'bench',
    camera,
    seq,
    ts: new Date(now).toISOString(),
    tsMs: now,
    capturedAt: new Date(now - 12).toISOString(),
    capturedAtMs: now - 12,
    model: { name: 'demo-recycling-colour', version: '1.0.0', sha256: '22ec69d1a088573fbdc758a235f0d3009af4597cf8f195176a4cd3ec4016cefe' },
    provider: 'cpu',
    task: 'classify',
    label: 'glass',
    score: 0.9812345,
    top: [
      { label: 'glass', score: 0.9812345, index: 1 },
      { label: 'plastic', score: 0.0123456, index: 4 },
      { label: 'metal', score: 0.0034567, index: 2 },
    ],
    frame: { seq, width: 320, height: 240, name: 'glass-01.png' },
    latencyMs: { preprocess: 0.412, inference: 0.733, postprocess: 0.021, total: 12.345 },
  });
}

const msg = (camera: string, seq: number): NewMessage => ({
  topic: `edge-inferd/bench/${camera}/result`,
  payload: payload(camera, seq),
  qos: 1,
  retain: false,
  camera,
  kind: 'result',
});

function openJournal(name: string, sync: 'normal' | 'full' = SYNC): Journal {
  const j = new Journal({
    path: join(dir, name),
    maxRows: 10_000_000,
    maxBytes: 8 * 1024 ** 3,
    retentionMs: 86_400_000,
    synchronous: sync,
    log,
  });
  j.start();
  return j;
}

/** CPU µs per message for append + mark-sent, messages written `batch` per transaction. */
function journalCost(batch: number, sync: 'normal' | 'full'): { usPerMsg: number; wallUsPerMsg: number } {
  const j = openJournal(`cost-${batch}-${sync}.sqlite`, sync);
  const total = batch === 1 ? (sync === 'full' ? 2000 : 20_000) : 50_000;
  // payloads are built before the clock starts: only the journal is measured
  const msgs = Array.from({ length: total }, (_, i) => msg(i % 2 ? 'a' : 'b', i));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < total; i += batch) {
    const { rows } = j.append(msgs.slice(i, i + batch));
    j.markSent(rows.map((r) => r.seq));
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = Number(process.hrtime.bigint() - t0) / 1000;
  j.stop();
  return { usPerMsg: (cpu.user + cpu.system) / total, wallUsPerMsg: wall / total };
}

// ---------------------------------------------------------------- a Mosquitto of our own
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Its sessions persist across the outage's stop and start; no queue limit (the outage's backlog).
const startBroker = (): Promise<Broker> => startMosquitto(dir, { persistence: true, maxQueued: 0 });

interface Rig {
  journal: Journal;
  conn: MqttConnection;
  outbox: Outbox;
  stop(): Promise<void>;
}

async function rig(url: string, name: string): Promise<Rig> {
  const journal = openJournal(`${name}.sqlite`);
  const conn = new MqttConnection({
    url,
    clientId: `bench-${name}`,
    protocolVersion: 5,
    fallbackTo4: false,
    keepaliveSec: 30,
    persistentSession: true,
    sessionExpirySec: 600,
    statusTopic: 'edge-inferd/bench/status',
    birth: () => '{"state":"online"}',
    will: '{"state":"offline"}',
    log,
    reconnectMinMs: 100,
    reconnectMaxMs: 200,
  });
  const outbox = new Outbox({ journal, transport: conn, window: WINDOW, log });
  outbox.start();
  await conn.start();
  return {
    journal,
    conn,
    outbox,
    stop: async () => {
      await outbox.stop(200);
      await conn.stop();
      journal.stop();
    },
  };
}

async function counter(url: string, id: string): Promise<{ count: () => number; close: () => Promise<void> }> {
  const c = await mqtt.connectAsync(url, {
    clientId: id,
    clean: false,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 600 },
    reconnectPeriod: 100,
  });
  let n = 0;
  c.on('message', () => n++);
  await c.subscribeAsync('edge-inferd/bench/+/result', { qos: 1 });
  return { count: () => n, close: () => c.endAsync(true) };
}

/** Closed loop: keep up to `ahead` messages pending, as fast as the journal and broker acknowledge. */
async function sustained(b: Broker): Promise<{ rate: number; acked: number; window: number; received?: number }> {
  const url = `mqtt://127.0.0.1:${b.port}`;
  const sub = values.subscriber ? await counter(url, 'bench-sub-1') : undefined;
  const r = await rig(url, 'sustained');
  let seq = 0;
  const ahead = 4 * WINDOW + 500;
  const run = async (ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const room = ahead - r.journal.stats().pending;
      for (let i = 0; i < Math.min(room, 200); i++) r.outbox.enqueue(msg(seq % 2 ? 'a' : 'b', ++seq));
      await new Promise((res) => setImmediate(res));
    }
  };
  await run(1000); // warm-up
  const a0 = r.outbox.stats().acknowledged;
  const s0 = sub?.count() ?? 0;
  const t0 = performance.now();
  await run(SECONDS * 1000);
  const secs = (performance.now() - t0) / 1000;
  const acked = r.outbox.stats().acknowledged - a0;
  const window = r.outbox.stats().window;
  const received = sub ? (sub.count() - s0) / secs : undefined;
  await r.stop();
  await sub?.close();
  return { rate: acked / secs, acked, window, received };
}

/** Produce at RATE while the broker is down for OUTAGE_SEC, then measure how fast the backlog drains (production continues). */
async function outage(b: Broker): Promise<{ backlog: number; drainSec: number; drainRate: number; fileMB: number }> {
  const url = `mqtt://127.0.0.1:${b.port}`;
  const r = await rig(url, 'outage');
  let seq = 0;
  let producing = true;
  const producer = (async () => {
    const t0 = performance.now();
    let sent = 0;
    while (producing) {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
      for (; sent < due; sent++) r.outbox.enqueue(msg(seq % 2 ? 'a' : 'b', ++seq));
      await sleep(5);
    }
  })();
  await sleep(1000);
  await b.stop();
  process.stdout.write(`broker down for ${OUTAGE_SEC} s, producing ${RATE} msg/s ...\n`);
  await sleep(OUTAGE_SEC * 1000);
  const backlog = r.journal.stats().pending;
  const fileMB = statSync(join(dir, 'outage.sqlite')).size / 1e6;
  const t0 = performance.now();
  await b.start();
  while (r.journal.stats().pending > RATE * 0.05 + WINDOW) await sleep(5);
  const drainSec = (performance.now() - t0) / 1000;
  producing = false;
  await producer;
  await r.stop();
  return { backlog, drainSec, drainRate: backlog / drainSec, fileMB };
}

async function main(): Promise<void> {
  const rows: [string, string][] = [];
  process.stdout.write('journal cost ...\n');
  for (const [batch, sync] of [
    [1, 'normal'],
    [100, 'normal'],
    [1, 'full'],
    [100, 'full'],
  ] as const) {
    const c = journalCost(batch, sync);
    rows.push([
      `journal append+mark-sent, ${batch}/transaction, synchronous=${sync}`,
      `${c.usPerMsg.toFixed(1)} µs CPU/msg (${c.wallUsPerMsg.toFixed(1)} µs wall)`,
    ]);
  }
  const b = await startBroker();
  try {
    process.stdout.write(`sustained journal-and-publish for ${SECONDS} s ...\n`);
    const s = await sustained(b);
    rows.push([`sustained journal+publish, QoS 1, window ${s.window}`, `${Math.round(s.rate)} msg/s (${s.acked} acknowledged)`]);
    if (s.received !== undefined) rows.push(['  received by a QoS 1 subscriber', `${Math.round(s.received)} msg/s`]);
    const o = await outage(b);
    rows.push([`backlog after a ${OUTAGE_SEC} s outage at ${RATE} msg/s`, `${o.backlog} msgs (journal file ${o.fileMB.toFixed(1)} MB)`]);
    rows.push([
      'drain after the outage (production continuing)',
      `${o.drainSec.toFixed(1)} s = ${Math.round(o.drainRate)} msg/s of backlog`,
    ]);
  } finally {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`\n${'measure'.padEnd(w)}  result\n${'-'.repeat(w)}  ${'-'.repeat(40)}\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  process.stdout.write(`\nnode ${process.version}, synchronous=${SYNC} for the MQTT runs, window ${WINDOW}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench-journal: ${String(err)}\n`);
    process.exit(1);
  },
);
