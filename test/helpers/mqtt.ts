import mqtt, { type MqttClient } from 'mqtt';
import { schemaErrors, schemaForTopic } from './schemas.js';

/**
 * A test subscriber that records every message it gets, and checks each one of the daemon's
 * messages against its shipped JSON Schema (by topic, see schemaForTopic): an invalid message
 * fails every waitFor from then on, and close().
 */
export interface Received {
  topic: string;
  payload: string;
  json: any;
  retain: boolean;
  atMs: number;
}

export interface Subscriber {
  client: MqttClient;
  messages: Received[];
  /** Messages that did not match their schema. */
  invalid: string[];
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}

export interface SubscribeOptions extends mqtt.IClientOptions {
  /** Schema checks (default on); `haPrefix` names the Home Assistant discovery prefix. */
  validate?: boolean;
  haPrefix?: string;
}

export async function subscribe(url: string, topics: string | string[], opts: SubscribeOptions = {}): Promise<Subscriber> {
  const { validate = true, haPrefix, ...clientOpts } = opts;
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, ...clientOpts });
  const messages: Received[] = [];
  const invalid: string[] = [];
  const waiters: { pred: (m: Received) => boolean; resolve: (m: Received) => void; reject: (e: Error) => void }[] = [];
  client.on('message', (topic, payload, packet) => {
    const text = payload.toString();
    const schema = validate ? schemaForTopic(topic, text, haPrefix) : undefined;
    if (schema) {
      let errors: string[];
      try {
        errors = schemaErrors(schema, JSON.parse(text));
      } catch (err) {
        errors = [`not JSON: ${String(err)}`];
      }
      if (errors.length) {
        invalid.push(`${topic} does not match schemas/${schema}: ${errors.join('; ')}; payload ${text.slice(0, 1000)}`);
        for (const w of waiters.splice(0)) w.reject(new Error(invalid[invalid.length - 1]));
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const m: Received = { topic, payload: text, json, retain: packet.retain, atMs: Date.now() };
    messages.push(m);
    for (const w of [...waiters])
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    client,
    messages,
    invalid,
    waitFor(pred, timeoutMs = 15_000) {
      if (invalid.length) return Promise.reject(new Error(invalid[0]));
      const hit = messages.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(
              new Error(
                `message not seen in ${timeoutMs} ms; got ${messages.length}: ${messages
                  .slice(-5)
                  .map((m) => `${m.topic} ${m.payload.slice(0, 120)}`)
                  .join(' | ')}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
          reject: (e) => {
            clearTimeout(t);
            reject(e);
          },
        });
      });
    },
    async close() {
      await client.endAsync(true);
      if (invalid.length) throw new Error(`${invalid.length} message(s) did not match their schema:\n${invalid.join('\n')}`);
    },
  };
}
