import mqtt, { type MqttClient } from 'mqtt';

/** A test subscriber that records every message it gets. */
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
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}

export async function subscribe(url: string, topics: string | string[], opts: mqtt.IClientOptions = {}): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, ...opts });
  const messages: Received[] = [];
  const waiters: { pred: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];
  client.on('message', (topic, payload, packet) => {
    const text = payload.toString();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const m: Received = { topic, payload: text, json, retain: packet.retain, atMs: Date.now() };
    messages.push(m);
    for (const w of [...waiters]) if (w.pred(m)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(m));
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    client,
    messages,
    waitFor(pred, timeoutMs = 15_000) {
      const hit = messages.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`message not seen in ${timeoutMs} ms; got ${messages.length}: ${messages.slice(-5).map((m) => `${m.topic} ${m.payload.slice(0, 120)}`).join(' | ')}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
      });
    },
    close: () => client.endAsync(true),
  };
}
