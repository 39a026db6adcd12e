import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { DaemonError, errorMessage } from '../errors.js';

/**
 * The MQTT connection: birth/last will on the retained status topic, QoS-acknowledged publishes,
 * reconnects forever. mqtt.js keeps QoS>=1 messages published while offline in its outgoing store
 * and sends them after reconnecting.
 */

export interface MqttOptions {
  url: string;
  clientId: string;
  protocolVersion: 4 | 5;
  username?: string;
  password?: string;
  passwordFile?: string;
  keepaliveSec: number;
  /** Retained status topic with the birth/will payloads. */
  statusTopic: string;
  birth: () => string;
  will: string;
  log: Logger;
  reconnectMs?: number;
}

export interface MqttState {
  connected: boolean;
  url: string;
  protocolVersion: 4 | 5;
  lastError?: string;
  connects: number;
}

/** Receives the messages of one subscription. Must not throw (a throw is caught and logged). */
export type MessageHandler = (topic: string, payload: Buffer, meta: { retain: boolean; properties?: IPublishPacket['properties'] }) => void;

export class MqttConnection {
  private client: MqttClient | undefined;
  private readonly opts: MqttOptions;
  private st: MqttState;
  private readonly subs = new Map<string, { qos: 0 | 1 | 2; handler: MessageHandler }>();
  private readonly connectListeners: (() => void)[] = [];

  constructor(opts: MqttOptions) {
    this.opts = opts;
    this.st = { connected: false, url: redactUrl(opts.url), protocolVersion: opts.protocolVersion, connects: 0 };
  }

  /** Starts connecting. Resolves at the first connect, or on the first failure (reconnects carry on). */
  async start(): Promise<void> {
    if (this.client) return;
    const o = this.opts;
    const password = o.passwordFile ? readPasswordFile(o.passwordFile) : o.password;
    const options: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveSec,
      reconnectPeriod: o.reconnectMs ?? 1000,
      connectTimeout: 10_000,
      clean: true,
      username: o.username,
      password,
      will: { topic: o.statusTopic, payload: Buffer.from(o.will), qos: 1, retain: true },
    };
    const client = mqtt.connect(o.url, options);
    this.client = client;
    client.on('connect', () => {
      this.st.connected = true;
      this.st.connects++;
      this.st.lastError = undefined;
      o.log.info({ url: this.st.url, protocolVersion: o.protocolVersion }, 'mqtt connected');
      client.publish(o.statusTopic, o.birth(), { qos: 1, retain: true });
    });
    client.on('close', () => {
      if (this.st.connected && this.client) o.log.warn({ url: this.st.url }, 'mqtt disconnected; reconnecting');
      this.st.connected = false;
    });
    client.on('error', (err) => {
      const msg = errorMessage(err);
      if (msg !== this.st.lastError) o.log.error({ url: this.st.url, err: msg }, 'mqtt error');
      this.st.lastError = msg;
    });
    client.on('connect', () => this.afterConnect(client));
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet));
    await new Promise<void>((resolve) => {
      const done = () => {
        client.off('connect', done);
        client.off('error', done);
        client.off('offline', done);
        resolve();
      };
      client.once('connect', done);
      client.once('error', done);
      client.once('offline', done);
    });
  }

  get connected(): boolean {
    return this.st.connected;
  }

  state(): MqttState {
    return { ...this.st };
  }

  /** Resolves when the broker has acknowledged it (QoS>=1) or it was written (QoS 0). */
  publish(topic: string, payload: string, opts: { qos: 0 | 1 | 2; retain?: boolean }): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new DaemonError('MQTT_STOPPED', 'mqtt connection is not started'));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: opts.qos, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Subscribes now if connected, and again after every (re)connect, whatever the session state:
   * a SUBSCRIBE the broker already has is harmless, a lost one would be silent.
   */
  subscribe(filter: string, handler: MessageHandler, opts: { qos?: 0 | 1 | 2 } = {}): void {
    this.subs.set(filter, { qos: opts.qos ?? 1, handler });
    const client = this.client;
    if (client && this.st.connected) this.sendSubscribe(client, filter, opts.qos ?? 1);
  }

  /** Called after every (re)connect, after the birth message and the subscriptions. */
  onConnect(listener: () => void): void {
    this.connectListeners.push(listener);
  }

  private afterConnect(client: MqttClient): void {
    for (const [filter, s] of this.subs) this.sendSubscribe(client, filter, s.qos);
    for (const l of this.connectListeners) {
      try {
        l();
      } catch (err) {
        this.opts.log.error({ err: errorMessage(err) }, 'mqtt connect listener failed');
      }
    }
  }

  private sendSubscribe(client: MqttClient, filter: string, qos: 0 | 1 | 2): void {
    client.subscribe(filter, { qos }, (err, granted) => {
      const refused = granted?.find((g) => g.qos > 2);
      if (err || refused) this.opts.log.error({ filter, err: err ? errorMessage(err) : `broker refused (reason ${refused?.qos})` }, 'mqtt subscribe failed');
    });
  }

  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    for (const [filter, s] of this.subs) {
      if (!topicMatches(filter, topic)) continue;
      try {
        s.handler(topic, payload, { retain: packet.retain, properties: packet.properties });
      } catch (err) {
        this.opts.log.error({ topic, err: errorMessage(err) }, 'mqtt message handler failed');
      }
    }
  }

  /** Publishes the final retained status (e.g. `stopped`), then disconnects cleanly so no will is sent. */
  async stop(finalStatus?: string, timeoutMs = 2000): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    if (finalStatus !== undefined && this.st.connected) {
      await withTimeout(
        new Promise<void>((resolve) => client.publish(this.opts.statusTopic, finalStatus, { qos: 1, retain: true }, () => resolve())),
        timeoutMs,
      );
    }
    await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), timeoutMs).catch(() => undefined);
    if (!client.disconnected) client.end(true);
    this.st.connected = false;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => { setTimeout(() => r(undefined), ms).unref(); })]);
}

function readPasswordFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new DaemonError('MQTT_PASSWORD_FILE', `mqtt.passwordFile: cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** MQTT topic filter matching (`+`, `#`; a `$share/<group>/` prefix is the filter after it). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = (filter.startsWith('$share/') ? filter.split('/').slice(2).join('/') : filter).split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** URLs may carry user:password; never log that. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, cred: string) => `//${cred.includes(':') ? cred.split(':')[0] + ':***' : cred}@`);
}
