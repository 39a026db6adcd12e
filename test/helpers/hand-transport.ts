import type { OutboxTransport, PublishOptions } from '../../src/publish/outbox.js';

/** One publish handed to a HandTransport, settled by the test. */
export interface HandCall {
  topic: string;
  payload: string;
  opts: PublishOptions;
  /** The payload's `seq`, when it is JSON with one. */
  seq: number;
  /** The broker acknowledges it; returns once the outbox has seen the acknowledgement. */
  ack(): Promise<void>;
  /** The publish fails (a refusal when the error's code is MQTT_PUBLISH_REFUSED); returns once the outbox has seen it. */
  fail(err: Error): Promise<void>;
}

/**
 * A transport whose publishes stay in flight until the test settles them one by one, counting how
 * many are in flight at once. The outbox attaches its handlers when publish() returns, so by the
 * time ack()/fail() return, the outbox has reacted (it registered first). `connect()` and
 * `disconnect()` tell the outbox's listeners, as MqttConnection does.
 */
export class HandTransport implements OutboxTransport {
  connected = true;
  receiveMaximum: number | undefined;
  readonly calls: HandCall[] = [];
  inflight = 0;
  maxInflight = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  private readonly connectListeners: (() => void)[] = [];
  private readonly disconnectListeners: (() => void)[] = [];

  constructor(receiveMaximum?: number) {
    this.receiveMaximum = receiveMaximum;
  }

  publish(topic: string, payload: string, opts: PublishOptions): Promise<void> {
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    const done = () => void this.inflight--;
    promise.then(done, done);
    let seq = Number.NaN;
    try {
      seq = (JSON.parse(payload) as { seq: number }).seq;
    } catch {
      // not JSON: no seq
    }
    this.calls.push({
      topic,
      payload,
      opts,
      seq,
      ack: async () => {
        settle.resolve();
        await promise;
      },
      fail: async (err) => {
        settle.reject(err);
        await promise.catch(() => undefined);
      },
    });
    for (const w of this.waiters.filter((x) => this.calls.length >= x.n)) w.resolve();
    this.waiters = this.waiters.filter((x) => this.calls.length < x.n);
    return promise;
  }

  onConnect(listener: () => void): void {
    this.connectListeners.push(listener);
  }

  onDisconnect(listener: () => void): void {
    this.disconnectListeners.push(listener);
  }

  connect(): void {
    this.connected = true;
    for (const l of this.connectListeners) l();
  }

  disconnect(): void {
    this.connected = false;
    for (const l of this.disconnectListeners) l();
  }

  /** The i-th publish (0-based), once the outbox has made it. */
  async call(i: number): Promise<HandCall> {
    if (this.calls.length <= i) await new Promise<void>((resolve) => this.waiters.push({ n: i + 1, resolve }));
    return this.calls[i];
  }
}
