import type { LiveReloadable } from '../component.js';
import type { Config } from '../config/schema.js';
import type { Outbox } from './outbox.js';
import { withoutLocal } from './payload.js';
import type { Topics } from './topics.js';

export type MessageKind = 'result' | 'event';

/** Where a camera channel sends what it decided to publish (src/channel/ depends on this shape only). */
export interface ResultSink {
  /** `localOnly` (privacy.includeCrops: local): crops and heatmaps are kept off the journal and MQTT, for loopback clients only. */
  send(kind: MessageKind, camera: string, payload: { seq: number }, localOnly?: boolean): void;
  /** The highest seq journaled for a camera and kind: counters go on from it after a restart. */
  lastSeq(camera: string, kind: MessageKind): number;
  /** Journals what was sent so far and hands it to the connection now (not at the next tick). */
  flush(): void;
}

export interface SinkSlice {
  topics: Pick<Config['mqtt']['topics'], 'result' | 'event'>;
  resultExpirySec: number | undefined;
}

/**
 * Results and events go through the journal: written first, sent in order, marked sent on PUBACK
 * (the outbox). This decides the topic and its QoS/retain once per message from the slice it holds;
 * a reload of `mqtt.topics.result|event` replaces the slice.
 */
export class JournalSink implements ResultSink, LiveReloadable<SinkSlice> {
  readonly name = 'results';
  readonly liveKeys = ['mqtt.topics.result.*', 'mqtt.topics.event.*'];
  private cfg: SinkSlice;
  private readonly outbox: Outbox;
  private readonly topics: Topics;
  private readonly lastSeqOf: (camera: string, kind: MessageKind) => number;

  constructor(opts: { config: SinkSlice; outbox: Outbox; topics: Topics; lastSeq: (camera: string, kind: MessageKind) => number }) {
    this.cfg = opts.config;
    this.outbox = opts.outbox;
    this.topics = opts.topics;
    this.lastSeqOf = opts.lastSeq;
  }

  slice(config: Config): SinkSlice {
    return { topics: { result: config.mqtt.topics.result, event: config.mqtt.topics.event }, resultExpirySec: config.mqtt.resultExpirySec };
  }

  apply(slice: SinkSlice): void {
    this.cfg = slice;
  }

  send(kind: MessageKind, camera: string, payload: { seq: number }, localOnly = false): void {
    const t = this.cfg.topics[kind];
    const journaled = localOnly ? withoutLocal(payload) : payload;
    this.outbox.enqueue({
      topic: kind === 'result' ? this.topics.result(camera) : this.topics.event(camera),
      payload: JSON.stringify(journaled),
      ...(journaled !== payload ? { local: JSON.stringify(payload) } : {}),
      qos: t.qos,
      retain: t.retain,
      camera,
      kind,
      payloadSeq: payload.seq,
      ...(kind === 'result' && this.cfg.resultExpirySec !== undefined ? { expirySec: this.cfg.resultExpirySec } : {}),
    });
  }

  lastSeq(camera: string, kind: MessageKind): number {
    return this.lastSeqOf(camera, kind);
  }

  flush(): void {
    this.outbox.flush();
  }
}
