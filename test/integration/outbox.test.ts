import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Camera } from '../../src/capture/frame.js';
import { CameraChannel } from '../../src/channel/channel.js';
import { cameraSchema } from '../../src/config/schema.js';
import { DaemonError } from '../../src/errors.js';
import { Journal, type JournalOptions } from '../../src/journal/journal.js';
import { EmbeddedBroker } from '../../src/publish/broker.js';
import { MqttConnection, type MqttOptions } from '../../src/publish/client.js';
import { Outbox } from '../../src/publish/outbox.js';
import { JournalSink } from '../../src/publish/result-sink.js';
import { Topics } from '../../src/publish/topics.js';
import { ManualClock } from '../helpers/clock.js';
import { HandTransport } from '../helpers/hand-transport.js';
import { type V1Row, writeV1Journal } from '../helpers/journal-v1.js';
import { captureLog } from '../helpers/log.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { expectComplete, expectSameIdOnRepeat, seqsByCamera } from '../helpers/results.js';
import { waitUntil as until } from '../helpers/wait.js';

/** Journal + outbox + MQTT connection against a real Mosquitto (and the embedded aedes broker). */

interface Rig {
  journal: Journal;
  mqtt: MqttConnection;
  outbox: Outbox;
  lines: Record<string, any>[];
  stop(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A journal in a fresh temporary folder, with the daemon's defaults and a quiet log. */
function journalOptions(prefix: string): JournalOptions {
  return {
    path: join(mkdtempSync(join(tmpdir(), prefix)), 'journal.sqlite'),
    maxRows: 10_000,
    maxBytes: 64 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log: captureLog().log,
  };
}

/** `outboxClock` drives the outbox's timers (stop's grace); the connection keeps real time for the real broker. */
async function rig(
  url: string,
  over: Partial<MqttOptions> & { window?: number; maxRows?: number; journalPath?: string; outboxClock?: ManualClock } = {},
): Promise<Rig> {
  const { log, lines } = captureLog();
  const journal = new Journal({
    path: over.journalPath ?? join(mkdtempSync(join(tmpdir(), 'outbox-')), 'journal.sqlite'),
    maxRows: over.maxRows ?? 100_000,
    maxBytes: 64 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log,
  });
  journal.start();
  const mqtt = new MqttConnection({
    url,
    clientId: `outbox-test-${Math.random().toString(36).slice(2)}`,
    protocolVersion: 5,
    fallbackTo4: false,
    keepaliveSec: 30,
    persistentSession: true,
    sessionExpirySec: 60,
    statusTopic: 'test/dev/status',
    birth: () => '{"state":"online"}',
    will: '{"state":"offline"}',
    log,
    reconnectMinMs: 200,
    reconnectMaxMs: 500,
    ...over,
  });
  const outbox = new Outbox({ journal, transport: mqtt, window: over.window ?? 16, log, clock: over.outboxClock });
  outbox.start();
  await mqtt.start();
  const stop = async () => {
    await outbox.stop(500);
    await mqtt.stop();
    journal.stop();
  };
  cleanups.push(stop);
  return { journal, mqtt, outbox, lines, stop };
}

/** The connection's own events, not polling. */
const connected = (m: MqttConnection) => new Promise<void>((resolve) => (m.connected ? resolve() : m.onConnect(resolve)));
const disconnected = (m: MqttConnection) => new Promise<void>((resolve) => (m.connected ? m.onDisconnect(resolve) : resolve()));
/** The outbox journals what was enqueued on the next turn of the event loop. */
const journaled = () => new Promise<void>((resolve) => setImmediate(resolve));

const result = (camera: string, seq: number) => ({
  topic: `test/dev/${camera}/result`,
  payload: JSON.stringify({ id: `${camera}-${seq}`, camera, seq }),
  qos: 1 as const,
  camera,
  payloadSeq: seq,
});

describe('outbox against Mosquitto', () => {
  let mosq: Mosquitto | undefined;
  beforeAll(async () => {
    mosq = await startMosquitto({ persistence: true, extraConf: 'max_queued_messages 100000\nmax_inflight_messages 10' });
  });
  afterAll(async () => mosq?.stop());

  it('publishes everything in order per camera with several in flight, and marks it sent', async (ctx) => {
    if (!mosq) return ctx.skip();
    const sub = await subscribe(mosq.url, 'test/dev/+/result', { validate: false });
    cleanups.push(() => sub.close());
    const r = await rig(mosq.url);
    for (let i = 1; i <= 400; i++) {
      r.outbox.enqueue(result('a', i));
      if (i % 2 === 0) r.outbox.enqueue(result('b', i / 2));
    }
    await sub.waitFor(() => sub.messages.length >= 600, 20_000);
    const by = seqsByCamera(sub.messages);
    expectComplete(by.get('a'), 400);
    expectComplete(by.get('b'), 200);
    await until(() => r.journal.stats().pending === 0, 5000, 'journal pending 0');
    expect(r.outbox.stats()).toMatchObject({ published: 600, acknowledged: 600, inflight: 0, queued: 0 });
    expect(r.journal.history({ kind: 'result', limit: 1000 }).every((e) => e.state === 'sent')).toBe(true);
  });

  it('keeps what is produced while the broker is down and drains it, oldest first, when it returns', async (ctx) => {
    if (!mosq) return ctx.skip();
    const sub = await subscribe(mosq.url, 'test/dev/+/result', {
      validate: false,
      clientId: 'outbox-sub-1',
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 300 },
    });
    cleanups.push(() => sub.close());
    const r = await rig(mosq.url);
    let b = 0;
    for (let i = 1; i <= 50; i++) {
      r.outbox.enqueue(result('a', i));
      if (i % 3 === 0) r.outbox.enqueue(result('b', ++b));
    }
    await sub.waitFor(() => sub.messages.length >= 50 + b);
    await mosq.stop();
    await disconnected(r.mqtt);
    for (let i = 51; i <= 350; i++) {
      r.outbox.enqueue(result('a', i));
      if (i % 3 === 0) r.outbox.enqueue(result('b', ++b));
      if (i % 50 === 0) await new Promise((res) => setImmediate(res)); // the outbox journals each batch in its own transaction
    }
    await journaled();
    expect(r.journal.stats().pending).toBeGreaterThanOrEqual(300 + 100);
    await mosq.start();
    // Unique seqs: the broker itself may redeliver to this subscriber what it had in flight when it stopped.
    const unique = (cam: string) => new Set(seqsByCamera(sub.messages).get(cam)).size;
    await sub.waitFor(() => unique('a') >= 350 && unique('b') >= 116, 30_000);
    const by = seqsByCamera(sub.messages);
    expectComplete(by.get('a'), 350);
    expectComplete(by.get('b'), 116);
    expectSameIdOnRepeat(sub.messages);
    await until(() => r.journal.stats().pending === 0, 5000, 'journal drained');
    // clean: false + session expiry: the broker kept the publisher's session across its restart
    expect(r.mqtt.state()).toMatchObject({ connects: 2, sessionPresent: true });
    // the window (16 asked) is capped by the broker's receive maximum (max_inflight_messages 10)
    expect(r.mqtt.state().receiveMaximum).toBe(10);
    expect(r.outbox.stats().window).toBe(10);
    expect(r.lines.some((l) => l.msg === 'draining journaled messages')).toBe(true);
    expect(r.lines.find((l) => l.msg === 'journal drained')).toBeTruthy();
  });

  it('sets the MQTT 5 message expiry on messages that have one', async (ctx) => {
    if (!mosq) return ctx.skip();
    const got: { expiry?: number; topic: string }[] = [];
    const sub = await subscribe(mosq.url, 'test/dev/+/result', { validate: false, protocolVersion: 5 });
    sub.client.on('message', (topic, _p, packet) => got.push({ topic, expiry: packet.properties?.messageExpiryInterval }));
    cleanups.push(() => sub.close());
    const r = await rig(mosq.url);
    r.outbox.enqueue({ ...result('a', 1), expirySec: 120 });
    r.outbox.enqueue(result('b', 1));
    await sub.waitFor(() => sub.messages.length >= 2);
    const a = got.find((g) => g.topic.includes('/a/'))!;
    expect(a.expiry).toBeGreaterThan(100);
    expect(a.expiry).toBeLessThanOrEqual(120);
    expect(got.find((g) => g.topic.includes('/b/'))!.expiry).toBeUndefined();
  });

  it('past the journal bound while the broker is down, the oldest are evicted and the rest still arrive in order', async (ctx) => {
    if (!mosq) return ctx.skip();
    const sub = await subscribe(mosq.url, 'test/dev/+/result', {
      validate: false,
      clientId: 'outbox-sub-2',
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 300 },
    });
    cleanups.push(() => sub.close());
    const r = await rig(mosq.url, { maxRows: 100 });
    await connected(r.mqtt);
    await mosq.stop();
    await disconnected(r.mqtt);
    for (let i = 1; i <= 250; i++) r.outbox.enqueue(result('a', i));
    await journaled();
    expect(r.journal.stats().evicted.pending).toBe(150);
    await mosq.start();
    await sub.waitFor(() => new Set(seqsByCamera(sub.messages).get('a')).size >= 100, 20_000);
    // A marker after them: the outbox sends in journal order, so once it is in, an evicted message
    // resent by mistake would be in too.
    r.outbox.enqueue(result('marker', 1));
    await sub.waitFor((m) => m.json?.camera === 'marker', 10_000);
    const seqs = [...new Set(seqsByCamera(sub.messages).get('a'))];
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => 151 + i));
    const warn = r.lines.find((l) => l.level === 40 && String(l.msg).startsWith('journal full'));
    expect(warn).toMatchObject({ evictedPending: expect.any(Number) });
  });

  it('a journal file of the old schema (1) is upgraded at start: its pending messages drain in order, the seq counter goes on', async (ctx) => {
    if (!mosq) return ctx.skip();
    const journalPath = join(mkdtempSync(join(tmpdir(), 'outbox-v1-')), 'journal.sqlite');
    const fixture: V1Row[] = [];
    const old = (camera: string, seq: number, state: V1Row['state']): V1Row => {
      const { topic, payload } = result(camera, seq);
      return { camera, kind: 'result', topic, payload, state, createdMs: Date.now() };
    };
    let b = 0;
    for (let i = 1; i <= 30; i++) {
      fixture.push(old('a', i, i <= 10 ? 'sent' : 'pending'));
      if (i % 3 === 0) fixture.push(old('b', ++b, 'pending'));
    }
    writeV1Journal(journalPath, fixture);
    const sub = await subscribe(mosq.url, 'test/dev/+/result', { validate: false });
    cleanups.push(() => sub.close());

    const r = await rig(mosq.url, { journalPath });
    expect(r.lines.find((l) => l.msg === 'journal schema upgraded')).toMatchObject({ fromVersion: 1, backfilled: fixture.length });
    const pending = fixture.filter((f) => f.state === 'pending').length;
    await until(() => sub.messages.length >= pending, 20_000, 'old pending messages');
    await until(() => r.journal.stats().pending === 0, 5000, 'journal drained');
    const by = seqsByCamera(sub.messages);
    expectComplete(by.get('a'), 30, 11);
    expectComplete(by.get('b'), b);

    expect(r.journal.lastPayloadSeq('a', 'result')).toBe(30);
    expect(r.journal.lastPayloadSeq('b', 'result')).toBe(b);
    r.outbox.enqueue(result('a', r.journal.lastPayloadSeq('a', 'result') + 1));
    await sub.waitFor((m) => m.json?.camera === 'a' && m.json?.seq === 31);
    await until(() => r.journal.lastPayloadSeq('a', 'result') === 31, 5000, 'seq 31 journaled');
    expectComplete(seqsByCamera(sub.messages).get('a'), 31, 11);
  });
});

describe('a message the broker refuses', () => {
  it('is marked rejected, logged, not resent, and does not hold up the messages after it', async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'mosq-acl-'));
    const acl = join(dir, 'acl');
    writeFileSync(acl, 'topic readwrite test/dev/a/#\ntopic readwrite test/dev/status\n');
    const port = await freePort();
    const mosq = await startMosquitto({ port, extraConf: `listener ${port} 127.0.0.1\nallow_anonymous true\nacl_file ${acl}` });
    if (!mosq) return ctx.skip();
    cleanups.push(() => mosq.stop());
    const sub = await subscribe(mosq.url, 'test/dev/#', { validate: false });
    cleanups.push(() => sub.close());
    const r = await rig(mosq.url);
    r.outbox.enqueue(result('a', 1));
    r.outbox.enqueue(result('b', 1)); // not allowed by the ACL: MQTT 5 PUBACK 0x87
    r.outbox.enqueue(result('a', 2));
    await sub.waitFor((m) => m.json?.camera === 'a' && m.json?.seq === 2);
    await until(() => r.journal.stats().pending === 0, 5000, 'all settled');
    expect(r.outbox.stats()).toMatchObject({ rejected: 1, acknowledged: 2 });
    expect(r.journal.history({ limit: 10 }).map((e) => `${e.camera}:${e.state}`)).toEqual(['a:sent', 'b:rejected', 'a:sent']);
    const err = r.lines.find((l) => l.msg === 'broker refused a message; kept in the history as rejected');
    expect(err).toMatchObject({
      topic: 'test/dev/b/result',
      err: 'broker refused the message on test/dev/b/result: Publish error: Not authorized (reason code 0x87)',
    });
    expect(sub.messages.some((m) => m.topic === 'test/dev/b/result')).toBe(false);
  });
});

describe('stop()', () => {
  it('returns when the broker has acknowledged what was in flight, not after a time; a broker that answers nothing gets graceMs on the clock', async (ctx) => {
    const mosq = await startMosquitto();
    if (!mosq) return ctx.skip();
    cleanups.push(() => mosq.stop());
    // The clock never moves in the first half: stop() can only return on the acknowledgements.
    const clock = new ManualClock();
    const r = await rig(mosq.url, { outboxClock: clock });
    for (let i = 1; i <= 200; i++) r.outbox.enqueue(result('a', i));
    await r.outbox.stop(60_000);
    expect(r.journal.stats().pending).toBe(0);
    expect(r.outbox.stats()).toMatchObject({ published: 200, acknowledged: 200, inflight: 0 });

    // A broker that is connected but paused (SIGSTOP) acknowledges nothing: stop() waits graceMs of the clock, no more.
    const clock2 = new ManualClock();
    const r2 = await rig(mosq.url, { outboxClock: clock2 });
    const pid = mosq.pid()!;
    process.kill(pid, 'SIGSTOP');
    cleanups.push(async () => void process.kill(pid, 'SIGCONT'));
    for (let i = 1; i <= 5; i++) r2.outbox.enqueue(result('b', i));
    let stopped = false;
    const stopping = r2.outbox.stop(500).then(() => (stopped = true));
    await clock2.advance(499);
    expect(stopped).toBe(false);
    expect(r2.outbox.stats().inflight).toBe(5);
    await clock2.advance(1);
    await stopping;
    expect(r2.journal.stats().pending).toBe(5); // left for the next start
    process.kill(pid, 'SIGCONT');
  });
});

describe('protocol fallback', () => {
  it('a broker that refuses MQTT 5 (the embedded aedes) gets 3.1.1, and publishing works', async () => {
    const port = await freePort();
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port });
    await broker.start();
    cleanups.push(() => broker.stop());
    let sub: Subscriber | undefined;
    const r = await rig(broker.url, { fallbackTo4: true, reconnectMinMs: 100 });
    await connected(r.mqtt);
    expect(r.mqtt.state().protocolVersion).toBe(4);
    expect(r.lines.find((l) => String(l.msg).startsWith('the broker refused MQTT 5'))).toBeTruthy();
    sub = await subscribe(broker.url, 'test/dev/+/result', { validate: false, protocolVersion: 4 });
    cleanups.push(() => sub!.close());
    r.outbox.enqueue({ ...result('a', 1), expirySec: 60 }); // no expiry property on 3.1.1: must not break
    await sub.waitFor((m) => m.json?.seq === 1);
  });

  it('without the fallback, the refusal is a clear error', async () => {
    const port = await freePort();
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port });
    await broker.start();
    cleanups.push(() => broker.stop());
    const r = await rig(broker.url, { fallbackTo4: false });
    await until(() => r.mqtt.state().lastErrorCode === 'MQTT_PROTOCOL', 10_000, 'protocol error');
    expect(r.mqtt.state().lastError).toBe('the broker refused MQTT 5; set mqtt.protocolVersion to 4');
    expect(r.mqtt.connected).toBe(false);
  });
});

function handJournal(path = join(mkdtempSync(join(tmpdir(), 'outbox-hand-')), 'journal.sqlite')): Journal {
  const journal = new Journal({
    path,
    maxRows: 10_000,
    maxBytes: 64 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log: captureLog().log,
  });
  journal.start();
  return journal;
}

function handOutbox(journal: Journal, transport: HandTransport, window: number): Outbox {
  const outbox = new Outbox({ journal, transport, window, log: captureLog().log });
  outbox.start();
  cleanups.push(async () => {
    transport.connected = false; // stop() gives up on what is in flight at once
    await outbox.stop(0);
  });
  return outbox;
}

describe('outbox window and order (a hand-settled transport and a real journal)', () => {
  const ten = Array.from({ length: 10 }, (_, i) => i + 1);

  it('a publish that fails (not a refusal) keeps its place: window 2, 1 and 2 fail, then everything arrives as 1..5', async () => {
    const journal = handJournal();
    cleanups.push(async () => journal.stop());
    const t = new HandTransport();
    const outbox = handOutbox(journal, t, 2);
    const sent = [1, 2, 3, 4, 5];
    for (const i of sent) outbox.enqueue(result('a', i));
    const first = [await t.call(0), await t.call(1)];
    expect(first.map((c) => c.seq)).toEqual(sent.slice(0, 2));
    for (const c of first) await c.fail(new DaemonError('MQTT_PUBLISH_FAILED', `publish on ${c.topic} failed: connection lost`));
    // From now on every publish succeeds; record the order the broker receives them in.
    const delivered: number[] = [];
    for (let i = first.length; delivered.length < sent.length; i++) {
      const c = await t.call(i);
      await c.ack();
      delivered.push(c.seq);
    }
    expect(delivered).toEqual(sent);
    outbox.flush();
    expect(journal.stats().pending).toBe(0);
    expect(journal.history({ limit: 10 }).map((e) => e.state)).toEqual(sent.map(() => 'sent'));
  });

  it('never more than the receive maximum in flight: 4 of 10 published while none is acknowledged, a 5th once one is', async () => {
    const journal = handJournal();
    cleanups.push(async () => journal.stop());
    const receiveMaximum = 4;
    const t = new HandTransport(receiveMaximum);
    const outbox = handOutbox(journal, t, 16);
    for (const i of ten) outbox.enqueue(result('a', i));
    await t.call(receiveMaximum - 1);
    outbox.flush(); // whatever the outbox would still hand over, it does now
    expect(t.calls.map((c) => c.seq)).toEqual(ten.slice(0, receiveMaximum));
    await t.calls[0].ack();
    outbox.flush();
    expect(t.calls.map((c) => c.seq)).toEqual(ten.slice(0, receiveMaximum + 1));
    expect(t.inflight).toBe(receiveMaximum);
  });

  it('the window is capped by the broker receive maximum: window 16, receive maximum 3, at most 3 in flight through a drain of 10', async () => {
    const journal = handJournal();
    cleanups.push(async () => journal.stop());
    const receiveMaximum = 3;
    const t = new HandTransport(receiveMaximum);
    const outbox = handOutbox(journal, t, 16);
    for (const i of ten) outbox.enqueue(result('a', i));
    await t.call(receiveMaximum - 1);
    outbox.flush();
    expect(t.calls).toHaveLength(receiveMaximum);
    // Acknowledge in order, letting the outbox refill after each: the in-flight count never passes the broker's limit.
    for (let i = 0; i < ten.length; i++) {
      await (await t.call(i)).ack();
      outbox.flush();
      expect(t.inflight, `after ack ${i + 1}`).toBeLessThanOrEqual(receiveMaximum);
    }
    expect(t.calls.map((c) => c.seq)).toEqual(ten);
    expect(t.maxInflight).toBe(receiveMaximum);
    expect(journal.stats().pending).toBe(0);
  });

  it('a message is marked sent on the acknowledgement, not at hand-over: unacknowledged it stays pending and is resent after a restart', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'outbox-hand-')), 'journal.sqlite');
    const journal = handJournal(path);
    cleanups.push(async () => journal.stop());
    const t1 = new HandTransport();
    const first = handOutbox(journal, t1, 4);
    const m = result('a', 1);
    first.enqueue(m);
    const handed = await t1.call(0);
    expect(handed.payload).toBe(m.payload);
    first.flush(); // records whatever acknowledgements the outbox has collected: none
    expect(journal.stats().pending).toBe(1);
    expect(journal.history({ limit: 10 }).map((e) => e.state)).toEqual(['pending']);

    // The process stops before the broker acknowledges it; the next start (journal reopened) publishes it again, same bytes.
    t1.connected = false;
    await first.stop(0);
    journal.stop();
    const reopened = handJournal(path);
    cleanups.push(async () => reopened.stop());
    const t2 = new HandTransport();
    const second = handOutbox(reopened, t2, 4);
    const resent = await t2.call(0);
    expect([resent.topic, resent.payload]).toEqual([m.topic, m.payload]);
    second.flush();
    expect(reopened.stats().pending).toBe(1);

    await resent.ack();
    second.flush();
    expect(reopened.stats().pending).toBe(0);
    expect(reopened.history({ limit: 10 }).map((e) => e.state)).toEqual(['sent']);
  });
});

/** A real journal that records what each write transaction held: [acknowledgements, new messages]. */
class CountingJournal extends Journal {
  readonly ticks: [number, number][] = [];
  override writeTick(acks: readonly number[], msgs: Parameters<Journal['writeTick']>[1], inFlightUpTo?: number) {
    this.ticks.push([acks.length, msgs.length]);
    return super.writeTick(acks, msgs, inFlightUpTo);
  }
}

describe('acknowledgements ride with the next new message (one transaction per frame at camera rates)', () => {
  function setup(ackWaitMs = 100) {
    const journal = new CountingJournal(journalOptions('outbox-acks-'));
    journal.start();
    cleanups.push(async () => journal.stop());
    const clock = new ManualClock();
    const t = new HandTransport();
    const outbox = new Outbox({ journal, transport: t, window: 4, log: captureLog().log, clock, ackWaitMs });
    outbox.start();
    cleanups.push(async () => {
      t.connected = false;
      await outbox.stop(0);
    });
    return { journal, clock, t, outbox };
  }

  it('an acknowledgement is recorded in the transaction of the next message, or alone once it has waited ackWaitMs', async () => {
    const { journal, clock, t, outbox } = setup(100);
    outbox.enqueue(result('a', 1));
    await (await t.call(0)).ack();
    // Acknowledged, not recorded yet: no transaction of its own, and not counted as queued.
    expect(journal.ticks).toEqual([[0, 1]]);
    expect(journal.stats().pending).toBe(1);
    expect(outbox.stats()).toMatchObject({ queued: 0, inflight: 0, acknowledged: 1 });
    await clock.advance(99);
    expect(journal.ticks).toEqual([[0, 1]]);
    // The next frame's message comes: one transaction marks 1 sent and journals 2.
    outbox.enqueue(result('a', 2));
    const second = await t.call(1);
    expect(journal.ticks).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect(journal.history({ limit: 10 }).map((e) => [JSON.parse(e.payload).seq, e.state])).toEqual([
      [1, 'sent'],
      [2, 'pending'],
    ]);
    expect(clock.pending).toBe(0); // the wait ended with that write
    // Nothing new comes: the acknowledgement is recorded alone after ackWaitMs on the clock.
    await second.ack();
    await clock.advance(99);
    expect(journal.stats().pending).toBe(1);
    await clock.advance(1);
    expect(journal.ticks.at(-1)).toEqual([1, 0]);
    expect(journal.stats().pending).toBe(0);
  });

  it('stop() records acknowledgements still waiting, at once', async () => {
    const { journal, clock, t, outbox } = setup(100);
    outbox.enqueue(result('a', 1));
    await (await t.call(0)).ack();
    expect(journal.stats().pending).toBe(1);
    await outbox.stop(0);
    expect(journal.stats().pending).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('ackWaitMs 0 records acknowledgements on the next turn of the event loop, without a timer', async () => {
    const { journal, clock, t, outbox } = setup(0);
    outbox.enqueue(result('a', 1));
    await (await t.call(0)).ack();
    expect(clock.pending).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(journal.ticks).toEqual([
      [0, 1],
      [1, 0],
    ]);
    expect(journal.stats().pending).toBe(0);
  });
});

describe("a camera's result leaves in the turn that produced it", () => {
  it('is journaled and handed to the connection before anything the same turn scheduled runs (no wait for the next tick)', async () => {
    const journal = new Journal(journalOptions('outbox-turn-'));
    journal.start();
    const t = new HandTransport();
    const clock = new ManualClock();
    const outbox = new Outbox({ journal, transport: t, window: 4, log: captureLog().log, clock });
    outbox.start();
    const sink = new JournalSink({
      config: { topics: { result: { qos: 1, retain: false }, event: { qos: 1, retain: false } }, resultExpirySec: undefined },
      outbox,
      topics: new Topics('test', 'dev'),
      lastSeq: () => 0,
    });
    // One frame, then nothing more until stopped (a camera whose next frame has not come).
    let reads = 0;
    let stopRead: (() => void) | undefined;
    const camera: Camera = {
      name: 'cam',
      start: async () => undefined,
      stop: async () => stopRead?.(),
      read: () =>
        ++reads === 1
          ? Promise.resolve({
              camera: 'cam',
              seq: 1,
              width: 2,
              height: 2,
              stride: 2,
              format: 'GRAY8',
              data: new Uint8Array(4),
              capturedAtMs: 0,
            })
          : new Promise<never>((_, reject) => {
              stopRead = () => reject(Object.assign(new Error('stopped'), { code: 'CAMERA_STOPPED' }));
            }),
      status: () => ({ name: 'cam', uri: 'test://', state: 'streaming', received: reads, dropped: 0, errors: 0 }),
    };
    const model = { name: 'm', version: '1', sha256: 'x', task: 'classify' as const, provider: 'cpu' as const };
    // What the journal and the connection had when the first callback scheduled after the result's turn ran.
    const seen: { journaled: number; published: number }[] = [];
    const channel = new CameraChannel('cam', cameraSchema.parse({ uri: 'test://smpte' }), {
      deviceId: 'dev',
      clock,
      log: captureLog().log,
      infer: async () => ({
        task: 'classify',
        top: [{ index: 0, label: 'a', score: 1 }],
        model,
        latencyMs: { preprocess: 0, inference: 0, postprocess: 0 },
      }),
      model: () => model,
      sink,
      camera,
      listener: {
        state: () => undefined,
        inferred: () => setImmediate(() => seen.push({ journaled: journal.lastSeq, published: t.calls.length })),
      },
    });
    cleanups.push(async () => {
      await channel.stop();
      t.connected = false;
      await outbox.stop(0);
      journal.stop();
    });
    await channel.start();
    await until(() => seen.length === 1, 5000, 'the first result');
    // The result (and its change event) are in the journal and handed over already.
    expect(seen[0].journaled).toBeGreaterThanOrEqual(1);
    expect(seen[0].published).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(t.calls[0].payload)).toMatchObject({ camera: 'cam', seq: 1 });
  });
});
