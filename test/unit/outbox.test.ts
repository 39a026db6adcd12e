import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonError } from '../../src/errors.js';
import { Journal, type JournalOptions } from '../../src/journal/journal.js';
import { Outbox, type OutboxMessage } from '../../src/publish/outbox.js';
import { ManualClock } from '../helpers/clock.js';
import { HandTransport } from '../helpers/hand-transport.js';
import { captureLog } from '../helpers/log.js';

/**
 * The outbox's own decisions, without a broker: a transport the test settles by hand, a real
 * journal file, the injected clock. test/integration/outbox.test.ts runs it against Mosquitto.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real journal whose writes can be made to fail, as a full disk would (SQLite rolls the transaction back). */
class FaultyJournal extends Journal {
  failing = false;
  override writeTick(acks: readonly number[], msgs: Parameters<Journal['writeTick']>[1], inFlightUpTo?: number) {
    if (this.failing) throw new DaemonError('SQLITE_FULL', 'database or disk is full');
    return super.writeTick(acks, msgs, inFlightUpTo);
  }
  override markRejected(seq: number): void {
    if (this.failing) throw new DaemonError('SQLITE_FULL', 'database or disk is full');
    super.markRejected(seq);
  }
}

/** A journal in a fresh temporary folder, with room for everything a test writes. */
function journalOptions(log: JournalOptions['log']): JournalOptions {
  return {
    path: join(mkdtempSync(join(tmpdir(), 'outbox-unit-')), 'journal.sqlite'),
    maxRows: 10_000,
    maxBytes: 64 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log,
  };
}

function setup(
  o: {
    window?: number;
    receiveMaximum?: number;
    connected?: boolean;
    journal?: Partial<JournalOptions>;
    ackWaitMs?: number;
    maxKeptAcks?: number;
  } = {},
) {
  const { log, lines } = captureLog();
  const clock = new ManualClock();
  const journal = new FaultyJournal({ ...journalOptions(log), ...o.journal });
  journal.start();
  const t = new HandTransport(o.receiveMaximum);
  t.connected = o.connected ?? true;
  const outbox = new Outbox({
    journal,
    transport: t,
    window: o.window ?? 4,
    log,
    clock,
    ackWaitMs: o.ackWaitMs ?? 0,
    maxKeptAcks: o.maxKeptAcks,
  });
  cleanups.push(async () => {
    t.connected = false;
    await outbox.stop(0);
    journal.stop();
  });
  return { journal, t, outbox, clock, lines };
}

const msg = (camera: string, seq: number, more: Partial<OutboxMessage> = {}): OutboxMessage => ({
  topic: `dev/${camera}/result`,
  payload: JSON.stringify({ camera, seq }),
  qos: 1,
  camera,
  payloadSeq: seq,
  ...more,
});

/** The outbox journals what was enqueued on the next turn of the event loop. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const states = (j: Journal) => j.history({ limit: 100 }).map((e) => `${e.camera}:${JSON.parse(e.payload).seq}:${e.state}`);

/** Acknowledges `n` calls in the order they reach the transport, from call `from`; returns their payload seqs. */
async function ackInTurn(t: HandTransport, from: number, n: number): Promise<number[]> {
  const sent: number[] = [];
  for (let i = from; sent.length < n; i++) {
    const c = await t.call(i);
    sent.push(c.seq);
    await c.ack();
  }
  return sent;
}

describe('outbox: what it hands to the transport', () => {
  it('passes retain, expiry and QoS as given, retain false and no expiry by default, and journals camera and kind defaults', async () => {
    const { journal, t, outbox } = setup();
    outbox.start();
    outbox.enqueue(msg('a', 1, { retain: true, expirySec: 30 }));
    outbox.enqueue({ topic: 'dev/status', payload: '{"seq":7}', qos: 1 });
    const [first, second] = [await t.call(0), await t.call(1)];
    expect(first.opts).toEqual({ qos: 1, retain: true, expirySec: 30 });
    expect(second.opts).toEqual({ qos: 1, retain: false, expirySec: undefined });
    const h = journal.history({ limit: 10 });
    expect(h.map((e) => [e.camera, e.kind])).toEqual([
      ['a', 'result'],
      ['', 'status'],
    ]);
    expect(journal.lastPayloadSeq('a', 'result')).toBe(1);
    expect(journal.lastPayloadSeq('', 'status')).toBe(0); // no payloadSeq given: none journaled
  });

  it('QoS 0 goes out at once, outside the window, and is only history; offline or failed it is counted dropped', async () => {
    const { journal, t, outbox } = setup({ window: 1 });
    outbox.start();
    outbox.enqueue(msg('a', 1)); // fills the window of 1
    outbox.enqueue(msg('a', 2, { qos: 0 }));
    await tick();
    // QoS 0 is handed over as it is journaled, before the window is filled
    expect(t.calls.map((c) => [c.seq, c.opts.qos])).toEqual([
      [2, 0],
      [1, 1],
    ]);
    expect(journal.stats().pending).toBe(1);
    await t.calls[0].fail(new Error('connection lost'));
    expect(outbox.stats()).toMatchObject({ published: 2, qos0Dropped: 1 });
    t.disconnect();
    outbox.enqueue(msg('a', 3, { qos: 0 }));
    await tick();
    expect(t.calls).toHaveLength(2);
    expect(outbox.stats()).toMatchObject({ published: 2, qos0Dropped: 2 });
    expect(states(journal)).toEqual(['a:1:pending', 'a:2:sent', 'a:3:sent']);
  });

  it('the window is at least 1, and the smaller of its size and the broker receive maximum', () => {
    expect(setup({ window: 0 }).outbox.stats().window).toBe(1);
    expect(setup({ window: 8, receiveMaximum: 3 }).outbox.stats().window).toBe(3);
    expect(setup({ window: 2, receiveMaximum: 3 }).outbox.stats().window).toBe(2);
  });

  it('tells journaled listeners of each write with the local copies, in order, before the transport has them', async () => {
    const { t, outbox } = setup();
    const heard: [number[], (string | undefined)[]][] = [];
    outbox.onJournaled((rows, local) => heard.push([rows.map((r) => r.seq), [...local]]));
    outbox.start();
    outbox.enqueue(msg('a', 1, { local: 'full-1' }));
    outbox.enqueue(msg('a', 2));
    await tick();
    outbox.enqueue(msg('a', 3, { local: 'full-3' }));
    await tick();
    expect(heard).toEqual([
      [
        [1, 2],
        ['full-1', undefined],
      ],
      [[3], ['full-3']],
    ]);
    expect(t.calls.map((c) => c.payload.includes('full'))).toEqual([false, false, false]);
  });
});

describe('outbox: refusals, failures and reconnects', () => {
  it('a refused message is marked rejected and logged, not resent; a failed one goes back to its place', async () => {
    const { journal, t, outbox, lines } = setup({ window: 3 });
    outbox.start();
    for (const i of [1, 2, 3]) outbox.enqueue(msg('a', i));
    await t.call(2);
    await t.calls[1].fail(new DaemonError('MQTT_PUBLISH_REFUSED', 'not authorised'));
    await t.calls[0].fail(new DaemonError('MQTT_PUBLISH_FAILED', 'connection lost'));
    const resent = await t.call(3);
    expect(resent.seq).toBe(1);
    await resent.ack();
    await t.calls[2].ack();
    await tick();
    expect(t.calls.map((c) => c.seq)).toEqual([1, 2, 3, 1]);
    expect(states(journal)).toEqual(['a:1:sent', 'a:2:rejected', 'a:3:sent']);
    expect(outbox.stats()).toMatchObject({ published: 4, acknowledged: 2, rejected: 1, inflight: 0, queued: 0 });
    expect(lines.filter((l) => l.msg === 'broker refused a message; kept in the history as rejected')).toEqual([
      expect.objectContaining({ topic: 'dev/a/result', camera: 'a', seq: 2, err: 'not authorised', level: 50 }),
    ]);
  });

  it('after a reconnect, what was in flight and what came offline drain in journal order, logged with the count and the time', async () => {
    const { journal, t, outbox, clock, lines } = setup({ window: 2 });
    outbox.start();
    for (const i of [1, 2, 3]) outbox.enqueue(msg('a', i));
    await t.call(1);
    t.disconnect();
    for (const c of t.calls) await c.fail(new DaemonError('MQTT_PUBLISH_FAILED', 'connection lost'));
    outbox.enqueue(msg('a', 4));
    await tick();
    expect(t.calls).toHaveLength(2); // nothing handed over while offline
    expect(outbox.stats()).toMatchObject({ queued: 4, inflight: 0 });
    await clock.advance(1234);
    t.connect();
    expect(lines.find((l) => l.msg === 'draining journaled messages')).toMatchObject({ pending: 4 });
    const order: number[] = [];
    for (let i = 2; order.length < 4; i++) {
      const c = await t.call(i);
      order.push(c.seq);
      await clock.advance(10);
      await c.ack();
    }
    await tick();
    expect(order).toEqual([1, 2, 3, 4]);
    expect(journal.stats().pending).toBe(0);
    expect(lines.filter((l) => l.msg === 'journal drained')).toEqual([expect.objectContaining({ messages: 4, ms: 40 })]);
  });

  it('a reconnect with nothing pending logs no drain; with one pending message it does', async () => {
    const { t, outbox, lines } = setup();
    outbox.start();
    const drainLines = () => lines.filter((l) => l.msg === 'draining journaled messages' || l.msg === 'journal drained');
    t.disconnect();
    t.connect();
    await tick();
    expect(drainLines()).toEqual([]);
    t.disconnect();
    outbox.enqueue(msg('a', 1));
    await tick();
    t.connect();
    const first = await t.call(0);
    // a new message while the old one is in flight: the backlog is not drained yet
    outbox.enqueue(msg('a', 2));
    await t.call(1);
    expect(drainLines().map((l) => l.msg)).toEqual(['draining journaled messages']);
    await first.ack();
    await tick();
    expect(drainLines().map((l) => [l.msg, l.pending ?? l.messages])).toEqual([
      ['draining journaled messages', 1],
      ['journal drained', 1],
    ]);
  });

  it('a connection made before start() drains nothing until start()', async () => {
    const { journal, t, outbox, lines } = setup();
    journal.append([1, 2].map((i) => ({ ...msg('a', i), retain: false, camera: 'a', kind: 'result' })));
    t.disconnect();
    t.connect(); // the connection comes up first (messaging starts it before the outbox)
    expect(lines.filter((l) => l.msg === 'draining journaled messages')).toEqual([]);
    expect(t.calls).toHaveLength(0);
    outbox.start();
    expect(lines.filter((l) => l.msg === 'draining journaled messages')).toEqual([expect.objectContaining({ pending: 2 })]);
    expect((await t.call(1)).seq).toBe(2);
  });

  it('keeps at most 1000 rows in memory: of 1500 journaled at once, the rest are read back once under half a page is left', async () => {
    const { log } = captureLog();
    const reads: [number, number][] = [];
    const journal = new (class extends Journal {
      override pendingAfter(afterSeq: number, limit: number) {
        reads.push([afterSeq, limit]);
        return super.pendingAfter(afterSeq, limit);
      }
    })(journalOptions(log));
    journal.start();
    const t = new HandTransport();
    const outbox = new Outbox({ journal, transport: t, window: 100, log, clock: new ManualClock(), ackWaitMs: 0 });
    cleanups.push(async () => {
      t.connected = false;
      await outbox.stop(0);
      journal.stop();
    });
    outbox.start();
    expect(reads).toEqual([[0, 1000]]); // an empty journal: nothing to read back
    reads.length = 0;
    for (let i = 1; i <= 1500; i++) outbox.enqueue(msg('a', i));
    await t.call(99);
    // 1000 taken from the write, 100 of them handed over: 900 left, over half a page, nothing read back yet
    expect(reads).toEqual([]);
    // each acknowledgement hands over one more; at 499 left (under half a page) the page is filled up from the journal
    for (let i = 0; i < 401; i++) await (await t.call(i)).ack();
    expect(reads.filter(([after]) => after > 0)).toEqual([[1000, 501]]);
    for (let i = 401; i < 1500; i++) await (await t.call(i)).ack();
    expect(t.calls.map((c) => c.seq)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
  });

  it('start() hands over what the journal holds from before; a second start() changes nothing', async () => {
    const { journal, t, outbox } = setup();
    journal.append([1, 2].map((i) => ({ ...msg('a', i), retain: false, camera: 'a', kind: 'result' })));
    outbox.enqueue(msg('a', 3)); // before start: journaled, not handed over
    await tick();
    expect(t.calls).toHaveLength(0);
    outbox.start();
    await t.call(2);
    outbox.start();
    await tick();
    expect(t.calls.map((c) => c.seq)).toEqual([1, 2, 3]);
  });
});

describe('outbox: the journal bound while offline', () => {
  it('messages evicted from the journal while queued are not published after the reconnect', async () => {
    const { journal, t, outbox } = setup({ journal: { maxRows: 3 } });
    outbox.start(); // connected: the journal is read (empty), new messages go straight to the queue
    t.disconnect();
    for (const i of [1, 2, 3, 4, 5]) {
      outbox.enqueue(msg('a', i));
      await tick(); // one write each: the fourth and fifth evict the oldest pending message
    }
    expect(journal.stats().evicted.pending).toBe(2);
    t.connect();
    const sent = await ackInTurn(t, 0, 3);
    await tick();
    expect(sent).toEqual([3, 4, 5]);
    expect(t.calls).toHaveLength(3);
  });
});

describe('outbox: the journal bound while offline, with a message handed over before', () => {
  it('a message whose publish failed stays queued through the eviction (the journal keeps what was handed over) and goes first', async () => {
    const { journal, t, outbox } = setup({ window: 1, journal: { maxRows: 3 } });
    outbox.start();
    outbox.enqueue(msg('a', 1));
    const first = await t.call(0);
    t.disconnect();
    await first.fail(new DaemonError('MQTT_PUBLISH_FAILED', 'connection lost')); // back in the queue
    for (const i of [2, 3, 4, 5]) {
      outbox.enqueue(msg('a', i));
      await tick(); // the fourth and fifth writes evict 2 and 3, never 1 (handed over)
    }
    expect(journal.stats().evicted.pending).toBe(2);
    t.connect();
    const sent = await ackInTurn(t, 1, 3);
    await tick();
    expect(sent).toEqual([1, 4, 5]);
    expect(journal.stats().pending).toBe(0);
  });
});

describe('outbox: when the journal cannot be written', () => {
  it('publishes unjournaled while connected; offline QoS >= 1 is lost, counted at once and logged at most every 10 s', async () => {
    const { journal, t, outbox, clock, lines } = setup();
    outbox.start();
    journal.failing = true;
    outbox.enqueue(msg('a', 1));
    await tick();
    expect(t.calls.map((c) => c.seq)).toEqual([1]);
    expect(outbox.stats()).toMatchObject({ journalAccepting: false, journalFailures: 1, lost: 0 });
    expect(outbox.stats().lastJournalError).toBe('journal: writing messages failed: database or disk is full');
    await t.calls[0].ack();
    expect(outbox.stats()).toMatchObject({ acknowledged: 1, inflight: 0 });

    t.disconnect();
    const lostLines = () => lines.filter((l) => String(l.msg).startsWith('message lost'));
    for (const i of [2, 3]) {
      outbox.enqueue(msg('a', i));
      await tick();
    }
    expect(outbox.stats().lost).toBe(2);
    expect(lostLines()).toEqual([expect.objectContaining({ lostSinceLastLine: 1, lost: 1, topic: 'dev/a/result' })]);
    await clock.advance(9_999);
    outbox.enqueue(msg('a', 4));
    await tick();
    expect(lostLines()).toHaveLength(1);
    await clock.advance(1);
    outbox.enqueue(msg('a', 5));
    await tick();
    expect(outbox.stats().lost).toBe(4);
    expect(lostLines().at(-1)).toMatchObject({ lostSinceLastLine: 3, lost: 4 });
    // the same error is logged once, not once per write
    expect(lines.filter((l) => String(l.msg).startsWith('journal: writing messages failed'))).toHaveLength(1);
    expect(outbox.stats().journalFailures).toBe(5);
  });

  it('the message whose write ends a journal failure is handed over once', async () => {
    const { journal, t, outbox } = setup();
    outbox.start();
    journal.failing = true;
    outbox.enqueue(msg('a', 1));
    await tick();
    journal.failing = false;
    outbox.enqueue(msg('a', 2));
    await tick();
    expect(outbox.stats().journalAccepting).toBe(true);
    await (await t.call(1)).ack();
    await tick();
    expect(t.calls.map((c) => c.seq)).toEqual([1, 2]);
    expect(outbox.stats()).toMatchObject({ published: 2, inflight: 0 });
  });

  it('an unjournaled message the broker does not acknowledge is lost', async () => {
    const { journal, t, outbox, lines } = setup();
    outbox.start();
    journal.failing = true;
    outbox.enqueue(msg('a', 1));
    await (await t.call(0)).fail(new Error('connection lost'));
    expect(outbox.stats()).toMatchObject({ lost: 1, acknowledged: 0 });
    expect(lines.find((l) => String(l.msg).startsWith('unjournaled message not delivered'))?.msg).toBe(
      'unjournaled message not delivered: lost (connection lost)',
    );
  });

  it('failing to mark messages sent keeps the outbox accepting; the acknowledgements are written once the journal takes writes again', async () => {
    const { journal, t, outbox, lines } = setup({ window: 1 });
    outbox.start();
    outbox.enqueue(msg('a', 1));
    outbox.enqueue(msg('a', 2));
    const first = await t.call(0);
    journal.failing = true;
    await first.ack();
    await tick();
    expect(outbox.stats()).toMatchObject({ journalAccepting: true, journalFailures: 1 });
    expect(outbox.stats().lastJournalError).toBe('journal: marking messages sent failed: database or disk is full');
    // A message now is not journaled: the journal stops accepting.
    outbox.enqueue(msg('a', 3));
    await tick();
    expect(outbox.stats().journalAccepting).toBe(false);
    journal.failing = false;
    outbox.enqueue(msg('a', 4));
    await tick();
    expect(outbox.stats().journalAccepting).toBe(true);
    // 1's kept acknowledgement went with 4's write: 2 and 4 are pending
    expect(lines.find((l) => l.msg === 'journal accepting messages again')).toMatchObject({ pending: 2 });
    // 2 and 4 go out (3 went unjournaled); 1's acknowledgement, which could not be recorded, was
    // kept and is written with the next write: nothing is resent at the next start.
    const sent = await ackInTurn(t, 1, 3);
    await tick();
    expect(sent).toEqual([2, 3, 4]);
    expect(states(journal)).toEqual(['a:1:sent', 'a:2:sent', 'a:4:sent']);
    // the drain the recovery started ends (it waited for 1 for ever when its acknowledgement was dropped)
    expect(lines.filter((l) => l.msg === 'journal drained')).toHaveLength(1);
    // each handed over once: 4, journaled by the write that ended the failure, is not read back as backlog too
    expect(t.calls.map((c) => c.seq)).toEqual([1, 2, 3, 4]);
    await outbox.stop(0);
    outbox.start();
    await tick();
    expect(t.calls).toHaveLength(4);
    expect(journal.stats().pending).toBe(0);
  });

  it('acknowledgements that could not be written are kept up to a bound; past it the oldest stay pending, to be resent', async () => {
    const { journal, t, outbox } = setup({ window: 1, maxKeptAcks: 2 });
    outbox.start();
    for (let i = 1; i <= 3; i++) outbox.enqueue(msg('a', i));
    await tick();
    journal.failing = true;
    for (let i = 0; i < 3; i++) await (await t.call(i)).ack();
    await tick();
    expect(outbox.stats().journalFailures).toBeGreaterThanOrEqual(1);
    journal.failing = false;
    outbox.enqueue(msg('a', 4));
    await (await t.call(3)).ack();
    await tick();
    expect(states(journal)).toEqual(['a:1:pending', 'a:2:sent', 'a:3:sent', 'a:4:sent']);
  });

  it('failing to mark a message rejected is logged as a journal failure', async () => {
    const { journal, t, outbox } = setup();
    outbox.start();
    outbox.enqueue(msg('a', 1));
    const c = await t.call(0);
    journal.failing = true;
    await c.fail(new DaemonError('MQTT_PUBLISH_REFUSED', 'too large'));
    expect(outbox.stats()).toMatchObject({ rejected: 1, journalFailures: 1 });
    expect(outbox.stats().lastJournalError).toBe('journal: marking a message rejected failed: database or disk is full');
  });
});

describe('outbox: stop()', () => {
  it('an acknowledgement after stop() is recorded when the journal is open; a stopped outbox hands nothing over', async () => {
    const { journal, t, outbox } = setup();
    outbox.start();
    outbox.enqueue(msg('a', 1));
    const c = await t.call(0);
    t.connected = false; // stop() does not wait for it
    await outbox.stop(1000);
    t.connected = true;
    await c.ack();
    expect(states(journal)).toEqual(['a:1:sent']);
    outbox.enqueue(msg('a', 2));
    await tick();
    t.connect();
    await tick();
    expect(t.calls).toHaveLength(1);
    expect(journal.stats().pending).toBe(1);
    outbox.start();
    expect((await t.call(1)).seq).toBe(2);
  });

  it('an acknowledgement after stop() with the journal closed is dropped quietly (the message is resent next start)', async () => {
    const { journal, t, outbox } = setup();
    outbox.start();
    outbox.enqueue(msg('a', 1));
    const c = await t.call(0);
    t.connected = false;
    await outbox.stop(0);
    journal.stop();
    await c.ack();
    journal.start();
    expect(journal.stats().pending).toBe(1);
  });

  it('a failed publish after stop() is not queued again', async () => {
    const { t, outbox } = setup();
    outbox.start();
    outbox.enqueue(msg('a', 1));
    const c = await t.call(0);
    t.connected = false;
    await outbox.stop(0);
    await c.fail(new Error('connection lost'));
    t.connect();
    await tick();
    expect(t.calls).toHaveLength(1);
    expect(outbox.stats().queued).toBe(1);
  });

  it('an acknowledgement with no message after it is recorded once it has waited ackWaitMs on the clock', async () => {
    const { journal, t, outbox, clock } = setup({ ackWaitMs: 100 });
    outbox.start();
    outbox.enqueue(msg('a', 1));
    await (await t.call(0)).ack();
    await clock.advance(99);
    expect(journal.stats().pending).toBe(1);
    await clock.advance(1);
    expect(journal.stats().pending).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('returns when the last message in flight is acknowledged, without the clock moving, and records it at once', async () => {
    // acknowledgements wait 100 ms for company: stop() records this one itself
    const { journal, t, outbox, clock } = setup({ ackWaitMs: 100 });
    outbox.start();
    outbox.enqueue(msg('a', 1));
    const c = await t.call(0);
    const stopping = outbox.stop(60_000);
    await c.ack();
    await stopping;
    expect(clock.monotonic()).toBe(0);
    expect(journal.stats().pending).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('waits on the clock for what is in flight, and returns when the connection drops', async () => {
    const { t, outbox, clock } = setup();
    outbox.start();
    outbox.enqueue(msg('a', 1));
    await t.call(0);
    let done = false;
    const stopping = outbox.stop(5000).then(() => (done = true));
    await clock.advance(4999);
    expect(done).toBe(false);
    t.disconnect();
    await stopping;
    expect(clock.pending).toBe(0);
  });
});
