import { type Clock, sleepUnless, systemClock, type Timer } from '../clock.js';
import { errorCode, errorMessage } from '../errors.js';
import type { Evicted, Journal, JournalRow, NewMessage } from '../journal/journal.js';
import type { Logger } from '../log.js';

/**
 * The publisher between the app and the MQTT connection. Every message is journaled first (one
 * SQLite transaction per event-loop tick), then published through a window of several in flight;
 * it is marked sent when the broker acknowledges it. Acknowledgements wait up to `ackWaitMs` for
 * the next new message and are recorded in its transaction: at a camera's rate that is one SQLite
 * transaction per frame instead of two. A crash in that wait only means those messages are
 * resent (QoS 1 is at-least-once anyway), with the same id. Messages leave in journal order, so a
 * camera's messages stay in order; after a reconnect or a restart the journal's pending messages
 * drain before anything newer. A resent message is the same bytes, so it keeps its `id`.
 */

export interface PublishOptions {
  qos: 0 | 1 | 2;
  retain: boolean;
  expirySec?: number;
}

/** What the outbox needs from the connection (MqttConnection implements it). */
export interface OutboxTransport {
  readonly connected: boolean;
  /** The broker's MQTT 5 receive maximum, when it gave one: a cap on the window. */
  readonly receiveMaximum: number | undefined;
  /** Resolves on PUBACK/PUBCOMP (QoS >= 1) or once written (QoS 0); rejects with code MQTT_PUBLISH_REFUSED when the broker refuses it. */
  publish(topic: string, payload: string, opts: PublishOptions): Promise<void>;
  onConnect(listener: () => void): void;
  /** Called when the connection drops (stop() stops waiting for acknowledgements then). */
  onDisconnect?(listener: () => void): void;
}

export interface OutboxMessage {
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain?: boolean;
  /** Ordering key; '' (default) for device-wide messages. */
  camera?: string;
  /** result, event, stats...: default the topic's last level. Used by the history queries. */
  kind?: string;
  expirySec?: number;
  /** The `seq` in the payload (results, events): journaled in its own column for Journal.lastPayloadSeq. */
  payloadSeq?: number;
  /**
   * privacy.includeCrops: local: the full payload (with crops and heatmaps) for loopback clients;
   * `payload` (journaled, published) is the one without them. Never written to the journal.
   */
  local?: string;
}

/** Told of the messages of each journal write, in journal order, with their local copies (OutboxMessage.local). */
export type JournaledListener = (rows: readonly { seq: number }[], local: readonly (string | undefined)[]) => void;
export type UnjournaledListener = (m: NewMessage, local: string | undefined) => void;

export interface OutboxStats {
  window: number;
  inflight: number;
  /** Pending messages in the journal not handed to the connection yet. */
  queued: number;
  published: number;
  acknowledged: number;
  rejected: number;
  /** QoS 0 messages not sent because the broker was unreachable (they are still in the history). */
  qos0Dropped: number;
  /** Writes to the journal that failed (the messages were then published unjournaled, or lost if offline). */
  journalFailures: number;
  lastJournalError?: string;
  /** Whether the last write of new messages to the journal succeeded (/readyz's journal check). */
  journalAccepting: boolean;
  /** QoS >= 1 messages lost: the journal could not take them and the broker did not acknowledge them. */
  lost: number;
}

/** Rows kept in memory ahead of the window; the rest wait in the journal. */
const PAGE = 1000;
/** How long acknowledgements wait for new messages to share their transaction (a 10 fps camera's frame interval). */
const ACK_WAIT_MS = 100;
/** Acknowledgements kept while the journal cannot write them: ten minutes of a 15 fps camera. */
const MAX_KEPT_ACKS = 10_000;

export class Outbox {
  private readonly journal: Journal;
  private readonly transport: OutboxTransport;
  private readonly log: Logger;
  private readonly window: number;
  private appends: NewMessage[] = [];
  /** The local copy of each message in `appends`, same index. */
  private appendsLocal: (string | undefined)[] = [];
  private readonly journaled: JournaledListener[] = [];
  private readonly unjournaledListeners: UnjournaledListener[] = [];
  /** The local copies of the messages being written now (told to `journaled` from the journal's append notice). */
  private writing: (string | undefined)[] | undefined;
  private acks: number[] = [];
  private scheduled = false;
  private readonly ackWaitMs: number;
  private readonly maxKeptAcks: number;
  /** Set while acknowledgements wait for new messages to share their transaction. */
  private ackTimer: Timer | undefined;
  /** Pending rows, in seq order, not yet handed to the connection. */
  private queue: JournalRow[] = [];
  /** Highest seq ever put in `queue`. */
  private loadedTo = 0;
  /** Highest seq handed to the connection: pending ones up to it are in flight (or acknowledged, not yet recorded). */
  private handedUpTo = 0;
  /** Pending rows with seq > loadedTo may be in the journal. */
  private backlog = true;
  private inflight = 0;
  private started = false;
  private stopped = false;
  private journalAccepting = true;
  private lossLog = { atMono: -Infinity, unlogged: 0 };
  /** A backlog draining after a reconnect or a journal recovery: done once nothing up to `upTo` is pending. */
  private drain: { startedMono: number; pending: number; upTo: number } | undefined;
  /** Set while stop() waits for the queue and the window to empty (or the connection to drop). */
  private idleWaiters: (() => void)[] = [];
  private readonly clock: Clock;
  private readonly st = {
    published: 0,
    acknowledged: 0,
    rejected: 0,
    qos0Dropped: 0,
    journalFailures: 0,
    lost: 0,
    lastJournalError: undefined as string | undefined,
  };

  /**
   * `ackWaitMs`: see the class comment (0: acknowledgements are recorded on the next turn of the
   * event loop). `maxKeptAcks`: acknowledgements kept for the next write while the journal cannot
   * record them (past it the oldest are let go: those messages are resent at the next start).
   */
  constructor(opts: {
    journal: Journal;
    transport: OutboxTransport;
    log: Logger;
    window: number;
    clock?: Clock;
    ackWaitMs?: number;
    maxKeptAcks?: number;
  }) {
    this.journal = opts.journal;
    this.transport = opts.transport;
    this.log = opts.log;
    this.window = opts.window;
    this.clock = opts.clock ?? systemClock;
    this.ackWaitMs = opts.ackWaitMs ?? ACK_WAIT_MS;
    this.maxKeptAcks = opts.maxKeptAcks ?? MAX_KEPT_ACKS;
    this.transport.onConnect(() => this.onConnect());
    this.transport.onDisconnect?.(() => this.checkIdle());
    // Subscribed before any reader of the journal (GET /events starts later): the local copies of a
    // write are kept before a reader is told of its rows.
    this.journal.onAppend((rows) => {
      const locals = this.writing;
      if (locals) for (const l of this.journaled) l(rows, locals);
    });
  }

  /** The journal must be open. Starts draining what it holds as soon as the connection is up. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    // Whatever was handed over before a stop and not acknowledged is pending in the journal again.
    this.queue = [];
    this.loadedTo = 0;
    this.handedUpTo = 0;
    this.backlog = true;
    if (this.transport.connected) this.onConnect();
  }

  /** Listens to every journal write of new messages with their local copies, before the journal's other readers hear of it. */
  onJournaled(listener: JournaledListener): void {
    this.journaled.push(listener);
  }

  /**
   * Listens to new messages the journal could not take (published unjournaled, or lost offline),
   * with their local copies: a reader of the journal (GET /events) would never see them.
   */
  onUnjournaled(listener: UnjournaledListener): void {
    this.unjournaledListeners.push(listener);
  }

  /** Journals the message (this tick) and publishes it when its turn comes. Never throws. */
  enqueue(m: OutboxMessage): void {
    this.appendsLocal.push(m.local);
    this.appends.push({
      topic: m.topic,
      payload: m.payload,
      qos: m.qos,
      retain: m.retain ?? false,
      camera: m.camera ?? '',
      kind: m.kind ?? m.topic.slice(m.topic.lastIndexOf('/') + 1),
      ...(m.expirySec !== undefined ? { expirySec: m.expirySec } : {}),
      ...(m.payloadSeq !== undefined ? { payloadSeq: m.payloadSeq } : {}),
    });
    this.schedule();
  }

  /** Acknowledgements are recorded with the next new messages, or alone once they have waited ackWaitMs. */
  private scheduleAcks(): void {
    if (this.scheduled || this.ackTimer) return; // a write is coming anyway
    if (this.ackWaitMs <= 0) {
      this.schedule();
      return;
    }
    this.ackTimer = this.clock.setTimeout(() => {
      this.ackTimer = undefined;
      this.flush();
    }, this.ackWaitMs);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /**
   * Writes what this tick collected, acknowledgements and new messages, in one transaction, and
   * fills the window.
   */
  flush(): void {
    if (this.ackTimer) {
      this.clock.clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
    if (this.acks.length || this.appends.length) {
      const acks = this.acks;
      const msgs = this.appends;
      const locals = this.appendsLocal;
      this.acks = [];
      this.appends = [];
      this.appendsLocal = [];
      let written: { rows: JournalRow[]; evicted: Evicted } | undefined;
      let recovered = false;
      this.writing = locals;
      try {
        written = this.journal.writeTick(acks, msgs, this.handedUpTo);
        if (msgs.length) {
          recovered = !this.journalAccepting;
          this.journalAccepting = true;
        }
      } catch (err) {
        // The transaction rolled back: its acknowledgements go with the next write (marking a row
        // sent twice changes nothing). Any let go past the bound stay pending in the file and are
        // resent after a restart, with the same id.
        this.acks = acks.slice(-this.maxKeptAcks);
        this.journalFailed(err, msgs.length ? 'writing messages' : 'marking messages sent');
        if (msgs.length) this.journalAccepting = false;
        msgs.forEach((m, i) => {
          for (const l of this.unjournaledListeners) l(m, locals[i]);
          this.sendUnjournaled(m);
        });
      }
      this.writing = undefined;
      if (written && msgs.length) this.accept(written.rows, written.evicted);
      // After accept(): recovering reads the journal's backlog, which must not hand these rows over a second time.
      if (recovered) this.journalRecovered();
    }
    this.pump();
    this.checkDrained();
  }

  private accept(rows: JournalRow[], evicted: Evicted): void {
    for (const r of rows) {
      if (r.qos === 0) {
        this.sendQos0(r);
        continue;
      }
      if (!this.backlog && this.queue.length < PAGE) {
        this.queue.push(r);
        this.loadedTo = r.seq;
      } else {
        this.backlog = true;
      }
    }
    if (evicted.pendingUpTo) {
      // the journal kept everything up to handedUpTo (some of it may be back in the queue)
      this.queue = this.queue.filter((q) => q.seq <= this.handedUpTo || q.seq > evicted.pendingUpTo);
    }
  }

  private refill(): void {
    if (!this.backlog) return;
    const want = PAGE - this.queue.length;
    if (want <= 0) return;
    let rows: JournalRow[];
    try {
      rows = this.journal.pendingAfter(this.loadedTo, want);
    } catch (err) {
      this.journalFailed(err, 'reading pending messages');
      return;
    }
    for (const r of rows) this.queue.push(r);
    if (rows.length) this.loadedTo = rows[rows.length - 1].seq;
    if (rows.length < want) this.backlog = false;
  }

  private get effectiveWindow(): number {
    return Math.max(1, Math.min(this.window, this.transport.receiveMaximum ?? Infinity));
  }

  private pump(): void {
    this.fill();
    this.checkIdle();
  }

  private fill(): void {
    if (this.stopped || !this.started || !this.transport.connected) return;
    const window = this.effectiveWindow;
    while (this.inflight < window) {
      if (!this.queue.length) this.refill();
      const row = this.queue.shift();
      if (!row) break;
      this.send(row);
    }
    if (this.queue.length < PAGE / 2) this.refill();
  }

  /** Nothing left to wait for in stop(): the queue and the window are empty, or the connection is down. */
  private get idle(): boolean {
    return !this.transport.connected || (this.inflight === 0 && this.queue.length === 0);
  }

  private checkIdle(): void {
    if (!this.idleWaiters.length || !this.idle) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private send(row: JournalRow): void {
    this.inflight++;
    if (row.seq > this.handedUpTo) this.handedUpTo = row.seq;
    this.st.published++;
    this.transport.publish(row.topic, row.payload, { qos: row.qos, retain: row.retain, expirySec: row.expirySec }).then(
      () => {
        this.inflight--;
        this.st.acknowledged++;
        if (this.stopped) return this.lateAck(row.seq);
        this.acks.push(row.seq);
        this.scheduleAcks();
        this.pump();
      },
      (err: unknown) => {
        this.inflight--;
        if (errorCode(err) === 'MQTT_PUBLISH_REFUSED') {
          // A refusal is final (not authorised, too large...): resending would block the queue forever.
          this.st.rejected++;
          this.log.error(
            { topic: row.topic, camera: row.camera, seq: row.seq, err: errorMessage(err) },
            'broker refused a message; kept in the history as rejected',
          );
          try {
            this.journal.markRejected(row.seq);
          } catch (e) {
            this.journalFailed(e, 'marking a message rejected');
          }
        } else if (!this.stopped) {
          // Not handed over: back to its place in the order.
          const at = this.queue.findIndex((q) => q.seq > row.seq);
          this.queue.splice(at < 0 ? this.queue.length : at, 0, row);
        }
        this.schedule();
      },
    );
  }

  /** An acknowledgement after stop(): record it if the journal is still open, else it is resent next start. */
  private lateAck(seq: number): void {
    try {
      this.journal.markSent([seq]);
    } catch {
      // journal closed: the message is resent at the next start, with the same id
    }
  }

  private sendQos0(m: NewMessage): void {
    if (!this.transport.connected || this.stopped) {
      this.st.qos0Dropped++;
      return;
    }
    this.st.published++;
    this.transport.publish(m.topic, m.payload, { qos: 0, retain: m.retain, expirySec: m.expirySec }).catch(() => this.st.qos0Dropped++);
  }

  /** The journal failed: publish anyway when connected (mqtt.js holds QoS >= 1 until acknowledged), else the message is lost. */
  private sendUnjournaled(m: NewMessage): void {
    if (m.qos === 0) return this.sendQos0(m);
    if (!this.transport.connected) return this.lose(m.topic, 'message lost: the journal cannot be written and the broker is unreachable');
    this.st.published++;
    this.transport.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, expirySec: m.expirySec }).then(
      () => this.st.acknowledged++,
      (err: unknown) => this.lose(m.topic, `unjournaled message not delivered: lost (${errorMessage(err)})`),
    );
  }

  /**
   * Counts a lost message at once (/status, metrics); the error line is said at the first loss and
   * then at most every 10 s with the count since, not once per message at camera rates.
   */
  private lose(topic: string, msg: string): void {
    this.st.lost++;
    this.lossLog.unlogged++;
    const now = this.clock.monotonic();
    if (now - this.lossLog.atMono < 10_000) return;
    this.log.error({ topic, lostSinceLastLine: this.lossLog.unlogged, lost: this.st.lost }, msg);
    this.lossLog = { atMono: now, unlogged: 0 };
  }

  private journalFailed(err: unknown, doing: string): void {
    this.st.journalFailures++;
    const msg = `journal: ${doing} failed: ${errorMessage(err)}`;
    if (msg !== this.st.lastJournalError) this.log.error({ code: errorCode(err), path: this.journal.path }, msg);
    this.st.lastJournalError = msg;
  }

  /**
   * The journal takes messages again: what it holds pending (its counts re-read from the file) is
   * read from the file again and drains as after a reconnect.
   */
  private journalRecovered(): void {
    this.backlog = true;
    this.log.info({ pending: this.journal.stats().pending, lost: this.st.lost }, 'journal accepting messages again');
    if (this.transport.connected) this.onConnect();
  }

  private onConnect(): void {
    if (this.stopped || !this.started) return;
    const pending = this.journal.stats().pending;
    if (pending > 0 && !this.drain) {
      this.drain = { startedMono: this.clock.monotonic(), pending, upTo: this.journal.lastSeq };
      this.log.info({ pending }, 'draining journaled messages');
    }
    this.pump();
  }

  private checkDrained(): void {
    if (!this.drain) return;
    // The backlog, not the whole journal: at a camera's rate acknowledgements are written together
    // with the next new message, so the journal always holds one pending row and never reads 0.
    const oldest = this.journal.pendingAfter(0, 1)[0];
    if (oldest && oldest.seq <= this.drain.upTo) return;
    const ms = Math.round(this.clock.monotonic() - this.drain.startedMono);
    this.log.info({ messages: this.drain.pending, ms }, 'journal drained');
    this.drain = undefined;
  }

  /**
   * Stops taking new work: writes what was enqueued, gives the broker up to `graceMs` (on the
   * clock) to acknowledge what is queued or in flight, and records those acknowledgements. It
   * returns as soon as the last one is in or the connection drops. Whatever is not acknowledged
   * stays pending in the journal for the next start. Idempotent.
   */
  async stop(graceMs = 1000): Promise<void> {
    if (!this.started || this.stopped) return;
    this.flush();
    if (!this.idle) {
      let resolve = () => {};
      const idle = new Promise<void>((r) => {
        resolve = r;
      });
      this.idleWaiters.push(resolve);
      await sleepUnless(this.clock, graceMs, idle);
      this.idleWaiters = this.idleWaiters.filter((w) => w !== resolve);
    }
    this.stopped = true;
    this.started = false;
    this.flush();
  }

  stats(): OutboxStats {
    const { lastJournalError, ...counts } = this.st;
    return {
      window: this.effectiveWindow,
      inflight: this.inflight,
      // Acknowledged messages whose acknowledgement waits to be recorded are still pending in the file.
      queued: Math.max(0, this.journal.stats().pending - this.inflight - this.acks.length),
      ...counts,
      ...(lastJournalError ? { lastJournalError } : {}),
      journalAccepting: this.journalAccepting,
    };
  }
}
