import type { ServerResponse } from 'node:http';
import type { Clock, Timer } from '../clock.js';
import type { FeedRow } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { isLoopback } from '../publish/local-copies.js';

/**
 * GET /events (Server-Sent Events): results and events as they are journaled, the payloads exactly
 * as published. Each SSE `id` is the row's journal position, so a browser that reconnects with
 * `Last-Event-ID` gets what it missed from the journal, in order, nothing twice. A position the
 * journal can no longer vouch for (rows after it were evicted or expired, or it is not a position
 * of this journal at all) gets a `reset` event and the stream goes on from now.
 *
 * A client is "live" (fed as rows are journaled) or "catching up" (fed from the journal, a page at
 * a time, only while its socket takes data). A live client whose socket stops taking data goes
 * back to catching up from its position, so no client's buffer grows past about `bufferBytes`
 * and a slow one costs the journal writer nothing; one that takes nothing for a heartbeat interval
 * is dropped and counted (its browser reconnects and resumes from its Last-Event-ID).
 */

export const STREAM_TYPES = ['result', 'event', 'assessment'] as const;
export type StreamType = (typeof STREAM_TYPES)[number];

/** What the hub reads: the journal (src/journal/journal.ts) is one. */
export interface EventFeed {
  readonly isOpen: boolean;
  /** Highest seq assigned so far. */
  readonly lastSeq: number;
  /** Highest seq ever removed: a position before it may have missed rows. */
  readonly lostUpTo: number;
  /** Results and events after a position, in order. */
  rowsAfter(afterSeq: number, limit: number): FeedRow[];
  /** Told of every row as its write commits; returns the unsubscribe. */
  onAppend(fn: (rows: readonly FeedRow[]) => void): () => void;
}

export interface EventHubOptions {
  feed: EventFeed;
  clock: Clock;
  log: Logger;
  /** Streams at once; the next client gets 503 (`http.events.maxClients`). */
  maxClients: number;
  /** A heartbeat on every live stream this often; a client that took nothing for as long is dropped. */
  heartbeatMs: number;
  /** Bytes written to a client and not yet taken by its socket beyond which it is fed from the journal instead. */
  bufferBytes: number;
  /**
   * privacy.includeCrops: local: the full payload (crops, heatmaps) of a journaled message, sent
   * instead of the journaled one to clients on loopback (src/publish/local-copies.ts).
   */
  local?: { get(seq: number): string | undefined };
}

export interface EventStreamFilter {
  /** Undefined: every camera. */
  cameras?: ReadonlySet<string>;
  types: ReadonlySet<StreamType>;
  /** The position the client had (Last-Event-ID), as sent. */
  lastEventId?: string;
}

export interface EventHubStats {
  clients: number;
  /** Since start: streams opened, refused at the limit, dropped for not taking data, and reset. */
  accepted: number;
  refused: number;
  dropped: number;
  resets: number;
}

/** Rows read from the journal at a time while a client catches up. */
const PAGE = 64;
/** How soon a browser reconnects after the stream ends (the SSE `retry` field), ms. */
const RETRY_MS = 1000;
/** Longest Last-Event-ID echoed back in a reset event. */
const ECHO_MAX = 40;

interface Client {
  res: ServerResponse;
  filter: EventStreamFilter;
  /** The journal position up to which this client has been given (or has had filtered out) every row. */
  cursor: number;
  mode: 'waiting' | 'catchup' | 'live';
  /** Monotonic ms since the socket stopped taking data (catching up, waiting for 'drain'). */
  blockedSinceMs?: number;
  /** The client is on this machine: it gets local copies (privacy.includeCrops: local). */
  loopback: boolean;
}

/** The type of a journaled row on the stream: results, assessments, and the other events. */
export function streamTypeOf(row: Pick<FeedRow, 'kind' | 'payload'>): StreamType | undefined {
  if (row.kind === 'result') return 'result';
  if (row.kind !== 'event') return undefined;
  try {
    return (JSON.parse(row.payload) as { type?: unknown }).type === 'assessment' ? 'assessment' : 'event';
  } catch {
    return 'event';
  }
}

const sseFrame = (row: FeedRow, type: StreamType, payload = row.payload): string => `id: ${row.seq}\nevent: ${type}\ndata: ${payload}\n\n`;

export class EventHub {
  private readonly opts: EventHubOptions;
  private readonly clients = new Set<Client>();
  private started = false;
  private unsubscribe: (() => void) | undefined;
  private heartbeat: Timer | undefined;
  private readonly counts = { accepted: 0, refused: 0, dropped: 0, resets: 0 };

  constructor(opts: EventHubOptions) {
    this.opts = opts;
  }

  readonly name = 'events';

  /** After the journal opened: streams opened during start-up begin now. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.unsubscribe = this.opts.feed.onAppend((rows) => this.appended(rows));
    for (const c of this.clients) if (c.mode === 'waiting') this.begin(c);
  }

  /** Before the journal closes: every stream ends (browsers reconnect and resume). Idempotent. */
  stop(): void {
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const c of [...this.clients]) c.res.end();
    this.clients.clear();
    this.armHeartbeat();
  }

  stats(): EventHubStats {
    return { clients: this.clients.size, ...this.counts };
  }

  /** Streams that carry `camera`'s messages now: those filtered to it and those of every camera. */
  following(camera: string): number {
    let n = 0;
    for (const c of this.clients) if (c.filter.cameras?.has(camera) ?? true) n++;
    return n;
  }

  /** The most bytes any one client has waiting for its socket (the bound this hub keeps). */
  bufferedBytes(): number {
    let max = 0;
    for (const c of this.clients) max = Math.max(max, c.res.writableLength);
    return max;
  }

  /** Whether one more stream would be refused. */
  get full(): boolean {
    return this.clients.size >= this.opts.maxClients;
  }

  /** Counts a stream refused at the limit (the route answered 503). */
  refused(): void {
    this.counts.refused++;
  }

  /** Takes over the response: headers, then the stream until the client or the hub ends it. */
  attach(res: ServerResponse, filter: EventStreamFilter): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.socket?.setNoDelay(true);
    res.write(`retry: ${RETRY_MS}\n\n`);
    const c: Client = { res, filter, cursor: 0, mode: 'waiting', loopback: isLoopback(res.socket?.remoteAddress) };
    this.clients.add(c);
    this.counts.accepted++;
    res.on('close', () => {
      this.clients.delete(c);
      this.armHeartbeat();
    });
    this.armHeartbeat();
    if (this.started) this.begin(c);
  }

  /** Where a new stream starts: after its Last-Event-ID when the journal still holds what followed it, else now. */
  private begin(c: Client): void {
    const { feed } = this.opts;
    const given = c.filter.lastEventId;
    if (given === undefined || given === '') {
      c.cursor = feed.lastSeq;
      c.mode = 'live';
      return;
    }
    const pos = /^\d{1,15}$/.test(given) ? Number(given) : undefined;
    const wrong = pos === undefined ? 'invalid' : pos > feed.lastSeq ? 'unknown' : feed.lostUpTo > pos ? 'expired' : undefined;
    if (wrong || pos === undefined) {
      this.reset(c, wrong ?? 'invalid');
      return;
    }
    c.cursor = pos;
    c.mode = 'catchup';
    this.pump(c);
  }

  /**
   * `reason`: invalid (not a position), unknown (beyond this journal: another device's, or a journal
   * started afresh), expired (rows after it were evicted or are past the retention).
   */
  private reset(c: Client, reason: 'invalid' | 'unknown' | 'expired'): void {
    const from = this.opts.feed.lastSeq;
    const given = c.filter.lastEventId ?? '';
    const data = { reason, lastEventId: given.length > ECHO_MAX ? `${given.slice(0, ECHO_MAX)}...` : given, from };
    this.counts.resets++;
    c.cursor = from;
    c.mode = 'live';
    c.blockedSinceMs = undefined;
    c.res.write(`id: ${from}\nevent: reset\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private matches(c: Client, row: FeedRow, type: StreamType | undefined): type is StreamType {
    return type !== undefined && c.filter.types.has(type) && (c.filter.cameras?.has(row.camera) ?? true);
  }

  /** Feeds a catching-up client from the journal while its socket takes data; live once it has everything. */
  private pump(c: Client): void {
    const { feed, bufferBytes } = this.opts;
    while (c.mode === 'catchup' && this.clients.has(c)) {
      if (feed.lostUpTo > c.cursor) {
        this.reset(c, 'expired');
        return;
      }
      const rows = c.res.writableLength >= bufferBytes ? [] : feed.rowsAfter(c.cursor, PAGE);
      for (const row of rows) {
        if (c.res.writableLength >= bufferBytes) break;
        const type = streamTypeOf(row);
        c.cursor = row.seq;
        if (this.matches(c, row, type)) c.res.write(this.frameFor(c, row, type));
      }
      if (c.res.writableLength >= bufferBytes) {
        this.block(c);
        return;
      }
      // Reads and appends share this thread: nothing can be journaled between the last page and here.
      if (rows.length < PAGE) c.mode = 'live';
    }
  }

  /** A row for this client: the local copy (crops, heatmaps) when it is on loopback and one is kept. */
  private frameFor(c: Client, row: FeedRow, type: StreamType): string {
    const local = c.loopback ? this.opts.local?.get(row.seq) : undefined;
    return sseFrame(row, type, local);
  }

  private block(c: Client): void {
    c.mode = 'catchup';
    if (c.blockedSinceMs !== undefined) return;
    c.blockedSinceMs = this.opts.clock.monotonic();
    c.res.once('drain', () => {
      c.blockedSinceMs = undefined;
      this.pump(c);
    });
  }

  private appended(rows: readonly FeedRow[]): void {
    if (!this.clients.size) return;
    const types = new Map<FeedRow, StreamType | undefined>();
    const frames = new Map<FeedRow, string>();
    for (const c of this.clients) {
      if (c.mode !== 'live') continue;
      for (const row of rows) {
        if (row.seq <= c.cursor) continue;
        // A socket that stopped taking data: this row and the ones after wait in the journal instead.
        if (c.res.writableLength >= this.opts.bufferBytes) {
          this.block(c);
          break;
        }
        if (!types.has(row)) types.set(row, streamTypeOf(row));
        const type = types.get(row);
        c.cursor = row.seq;
        if (!this.matches(c, row, type)) continue;
        const local = c.loopback ? this.opts.local?.get(row.seq) : undefined;
        let frame = local === undefined ? frames.get(row) : sseFrame(row, type, local);
        if (frame === undefined) {
          frame = sseFrame(row, type);
          frames.set(row, frame);
        }
        c.res.write(frame);
      }
    }
  }

  /** One timer for all streams, only while there are some. */
  private armHeartbeat(): void {
    const { clock, heartbeatMs } = this.opts;
    if (this.clients.size && !this.heartbeat) this.heartbeat = clock.setInterval(() => this.beat(), heartbeatMs);
    else if (!this.clients.size && this.heartbeat) {
      clock.clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  private beat(): void {
    const { clock, heartbeatMs, log } = this.opts;
    const now = clock.monotonic();
    const time = new Date(clock.now()).toISOString();
    for (const c of [...this.clients]) {
      if (c.blockedSinceMs !== undefined) {
        if (now - c.blockedSinceMs < heartbeatMs) continue;
        this.counts.dropped++;
        log.info(
          { position: c.cursor, buffered: c.res.writableLength },
          'events: dropped a client that took no data for a heartbeat interval',
        );
        this.clients.delete(c);
        c.res.destroy();
        continue;
      }
      // The id moves a filtered client's Last-Event-ID past rows it did not want, so a reconnect resumes from here.
      if (c.mode === 'live') c.res.write(`id: ${c.cursor}\nevent: heartbeat\ndata: {"time":"${time}"}\n\n`);
    }
    this.armHeartbeat();
  }
}
