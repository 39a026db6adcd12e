import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { type Clock, sleepUnless, systemClock } from '../clock.js';
import { DaemonError, errorMessage } from '../errors.js';
import type { OutboxTransport, PublishOptions } from './outbox.js';
import { PacketSizeGuard } from './packet-guard.js';
import { type RandomSource, ReconnectScheduler } from './reconnect.js';

/**
 * The MQTT connection: birth/last will on the retained status topic, QoS-acknowledged publishes,
 * a stable client id with a persistent session, TLS, credentials, and reconnects forever with a
 * jittered backoff (reconnect.ts), trying the brokers of a list in turn. MQTT 5 unless told
 * otherwise; a broker that refuses 5 gets 3.1.1 on the next attempt.
 * mqtt.js keeps QoS >= 1 messages that were in flight at a disconnect and resends them first
 * after reconnecting; the outbox above keeps everything else.
 */

export interface MqttTlsOptions {
  /** File paths (PEM). */
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

export interface MqttOptions {
  /** One broker, or several tried in turn (failover): each attempt goes to the next one. */
  url: string | readonly string[];
  clientId: string;
  /** The protocol to try first. */
  protocolVersion: 4 | 5;
  /** Fall back to 3.1.1 when the broker refuses MQTT 5 (when the version was not set explicitly). */
  fallbackTo4: boolean;
  username?: string;
  password?: string;
  /** Read at start and again before every reconnect, so fixing the file fixes the connection. */
  passwordFile?: string;
  tls?: MqttTlsOptions;
  keepaliveSec: number;
  /** clean: false, and with MQTT 5 a session expiry. */
  persistentSession: boolean;
  sessionExpirySec: number;
  /** Retained status topic with the birth/will payloads. */
  statusTopic: string;
  birth: () => string;
  will: string;
  log: Logger;
  /**
   * The wait before each reconnect attempt is drawn uniformly in [0, min(reconnectMaxMs,
   * reconnectMinMs * 2^failures)] ("full jitter", reconnect.ts) on `clock`'s timers; mqtt.js's own
   * fixed reconnectPeriod is off.
   */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** The jitter's random numbers in [0, 1) (default Math.random). */
  random?: RandomSource;
  /** Wall time for lastErrorAtMs, timers for stop()'s time limits and the reconnect waits. */
  clock?: Clock;
  /**
   * MQTT 5: the largest packet we take, told to the broker at connect; a conforming broker drops
   * larger messages for us instead of sending them (we would hold each whole before refusing it).
   */
  maximumPacketSize?: number;
}

export interface MqttState {
  connected: boolean;
  /** The broker connected to (while reconnecting: the last one, or the first of the list), redacted. */
  url: string;
  clientId: string;
  /** The protocol in use (or being tried). */
  protocolVersion: 4 | 5;
  tls: boolean;
  /** Did the broker still have our session at the last connect. */
  sessionPresent?: boolean;
  receiveMaximum?: number;
  lastError?: string;
  /** Stable: MQTT_AUTH, MQTT_CLIENT_ID, MQTT_TLS, MQTT_UNREACHABLE, MQTT_CONNECTION_LOST, MQTT_PROTOCOL, MQTT_REFUSED, MQTT_ERROR. */
  lastErrorCode?: string;
  lastErrorAtMs?: number;
  connects: number;
  /** Connection attempts since the last success. */
  failedAttempts: number;
}

/** Receives the messages of one subscription. Must not throw (a throw is caught and logged). */
export type MessageHandler = (topic: string, payload: Buffer, meta: { retain: boolean; properties?: IPublishPacket['properties'] }) => void;

/** MQTT 5 CONNACK/PUBACK reason codes and MQTT 3.1.1 CONNACK return codes we explain. */
const V5_BAD_CREDENTIALS = 0x86;
const V5_NOT_AUTHORIZED = 0x87;
const V5_UNSUPPORTED_PROTOCOL = 0x84;
const V5_CLIENT_ID_INVALID = 0x85;
const V3_UNACCEPTABLE_PROTOCOL = 1;
const V3_CLIENT_ID_REJECTED = 2;
const V3_BAD_CREDENTIALS = 4;
const V3_NOT_AUTHORIZED = 5;

export class MqttConnection implements OutboxTransport {
  private client: MqttClient | undefined;
  private readonly opts: MqttOptions;
  private st: MqttState;
  private readonly subs = new Map<string, { qos: 0 | 1 | 2; handler: MessageHandler }>();
  private readonly connectListeners: (() => void)[] = [];
  private readonly disconnectListeners: (() => void)[] = [];
  private readonly clock: Clock;
  private readonly urls: readonly string[];
  private readonly reconnects: ReconnectScheduler;

  constructor(opts: MqttOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.urls = typeof opts.url === 'string' ? [opts.url] : opts.url;
    if (this.urls.length === 0) throw new DaemonError('MQTT_URL', 'mqtt.url: the list of brokers is empty');
    this.reconnects = new ReconnectScheduler({
      minMs: opts.reconnectMinMs ?? 1000,
      maxMs: opts.reconnectMaxMs ?? 15_000,
      clock: this.clock,
      random: opts.random,
    });
    this.st = {
      connected: false,
      url: redactUrl(this.urls[0]),
      clientId: opts.clientId,
      protocolVersion: opts.protocolVersion,
      tls: isTlsUrl(this.urls[0]),
      connects: 0,
      failedAttempts: 0,
    };
  }

  /** Called after every (re)connect, after the birth message and the subscriptions. */
  onConnect(listener: () => void): void {
    this.connectListeners.push(listener);
  }

  /** Called when an established connection drops. */
  onDisconnect(listener: () => void): void {
    this.disconnectListeners.push(listener);
  }

  /** Starts connecting. Resolves at the first connect, or on the first failure (reconnects carry on). */
  async start(): Promise<void> {
    if (this.client) return;
    const o = this.opts;
    const options: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveSec,
      // Reconnects are ours (scheduleReconnect): jittered, on the injected clock.
      reconnectPeriod: 0,
      ...(this.urls.length > 1 ? { servers: this.urls.map(serverOf) } : {}),
      connectTimeout: 10_000,
      clean: !o.persistentSession,
      ...(o.protocolVersion === 5 ? { properties: this.v5ConnectProperties() } : {}),
      username: o.username,
      password: o.passwordFile ? readPasswordFile(o.passwordFile) : o.password,
      will: { topic: o.statusTopic, payload: Buffer.from(o.will), qos: 1, retain: true },
      ...(o.tls ? readTls(o.tls) : {}),
    };
    if (o.tls && !o.tls.rejectUnauthorized) {
      o.log.warn(
        { url: this.st.url },
        'mqtt.tls.rejectUnauthorized is false: the broker certificate is NOT verified, so anyone on the ' +
          'network path can pose as the broker; set it to true and give mqtt.tls.ca',
      );
    }
    // Connected by hand, so the stream can be watched before mqtt.js parses (and buffers) it.
    const client = mqtt.connect(this.urls[0], { ...options, manualConnect: true });
    this.guardIncoming(client);
    client.connect();
    this.client = client;
    client.on('connect', (connack) => {
      this.reconnects.connected();
      this.st.url = this.currentUrl(client);
      this.st.connected = true;
      this.st.connects++;
      this.st.failedAttempts = 0;
      this.st.lastError = undefined;
      this.st.lastErrorCode = undefined;
      this.st.sessionPresent = connack.sessionPresent;
      this.st.receiveMaximum = connack.properties?.receiveMaximum;
      o.log.info(
        {
          url: this.st.url,
          clientId: o.clientId,
          protocolVersion: this.st.protocolVersion,
          sessionPresent: connack.sessionPresent,
          tls: this.st.tls,
        },
        'mqtt connected',
      );
      client.publish(o.statusTopic, o.birth(), { qos: 1, retain: true });
      this.afterConnect(client);
    });
    client.on('reconnect', () => {
      this.st.failedAttempts++;
      if (o.passwordFile) {
        try {
          client.options.password = readPasswordFile(o.passwordFile);
        } catch (err) {
          this.recordError(errorMessage(err), 'MQTT_PASSWORD_FILE');
        }
      }
    });
    client.on('close', () => {
      const was = this.st.connected;
      if (was && this.client) o.log.warn({ url: this.st.url }, 'mqtt disconnected; reconnecting');
      this.st.connected = false;
      if (was) this.notify(this.disconnectListeners, 'mqtt disconnect listener failed');
      // Every lost connection and every failed attempt ends here (a refused CONNACK, a timeout and a
      // dropped keepalive close the socket too).
      if (this.client === client) this.scheduleReconnect(client);
    });
    client.on('error', (err) => this.onError(client, err));
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet));
    await new Promise<void>((resolve) => {
      const done = () => {
        client.off('connect', done);
        client.off('error', done);
        client.off('close', done);
        resolve();
      };
      client.once('connect', done);
      client.once('error', done);
      client.once('close', done);
    });
  }

  /**
   * Every connection's incoming bytes pass a PacketSizeGuard first (maximumPacketSize, when set):
   * a packet announced over it closes the connection from its header, before mqtt.js buffers it.
   */
  private guardIncoming(client: MqttClient): void {
    const max = this.opts.maximumPacketSize;
    if (max === undefined) return;
    // mqtt.js keeps its stream builder private; it is the one place every connection's stream is made.
    const inner = client as unknown as { streamBuilder: (c: MqttClient) => Duplex };
    const build = inner.streamBuilder;
    inner.streamBuilder = (c) => {
      const stream = build(c);
      const guard = new PacketSizeGuard(max);
      const watch = (chunk: Buffer) => {
        const why = guard.feed(chunk);
        if (!why) return;
        stream.off('data', watch);
        this.opts.log.warn({ url: this.st.url }, `mqtt: ${why}; connection closed`);
        this.recordError(why, 'MQTT_PACKET_TOO_LARGE');
        stream.destroy();
      };
      stream.on('data', watch);
      return stream;
    };
  }

  private scheduleReconnect(client: MqttClient): void {
    const waitMs = this.reconnects.schedule(() => {
      if (this.client !== client) return;
      // The same stores: QoS >= 1 messages in flight at the loss are resent first.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    });
    if (waitMs !== undefined) this.opts.log.debug({ waitMs, attempt: this.reconnects.attempts }, 'mqtt reconnect scheduled');
  }

  /** The broker of the list that mqtt.js is on (it moves to the next one at every attempt). */
  private currentUrl(client: MqttClient): string {
    if (this.urls.length === 1) return this.st.url;
    const { host, port } = client.options;
    const hit = this.urls.find((u) => {
      const s = serverOf(u);
      return s.host === host && s.port === port;
    });
    return redactUrl(hit ?? this.urls[0]);
  }

  private v5ConnectProperties(): IClientOptions['properties'] {
    const max = this.opts.maximumPacketSize;
    return {
      ...(this.opts.persistentSession ? { sessionExpiryInterval: this.opts.sessionExpirySec } : {}),
      ...(max !== undefined ? { maximumPacketSize: max } : {}),
    };
  }

  private onError(client: MqttClient, err: Error & { code?: string | number }): void {
    const o = this.opts;
    const code = err.code;
    const v = this.st.protocolVersion;
    if (
      typeof code === 'number' &&
      ((v === 5 && code === V5_UNSUPPORTED_PROTOCOL) || code === V3_UNACCEPTABLE_PROTOCOL) &&
      v === 5 &&
      o.fallbackTo4
    ) {
      o.log.warn({ url: this.st.url }, 'the broker refused MQTT 5; using MQTT 3.1.1 (set mqtt.protocolVersion: 4 to skip this)');
      this.st.protocolVersion = 4;
      client.options.protocolVersion = 4;
      delete client.options.properties;
      return;
    }
    const [errCode, message] = explain(err, o, v);
    this.recordError(message, errCode);
  }

  private recordError(message: string, code: string): void {
    if (message !== this.st.lastError) this.opts.log.error({ url: this.st.url, code, err: message }, 'mqtt error');
    this.st.lastError = message;
    this.st.lastErrorCode = code;
    this.st.lastErrorAtMs = this.clock.now();
  }

  get connected(): boolean {
    return this.st.connected;
  }

  get receiveMaximum(): number | undefined {
    return this.st.connected ? this.st.receiveMaximum : undefined;
  }

  state(): MqttState {
    return { ...this.st };
  }

  /**
   * Resolves when the broker has acknowledged it (QoS >= 1) or it was written (QoS 0). A broker's
   * refusal (MQTT 5 reason code >= 0x80) rejects with code MQTT_PUBLISH_REFUSED.
   */
  publish(topic: string, payload: string, opts: PublishOptions): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new DaemonError('MQTT_STOPPED', 'mqtt connection is not started'));
    const po: IClientPublishOptions = { qos: opts.qos, retain: opts.retain };
    if (opts.expirySec !== undefined && this.st.protocolVersion === 5) po.properties = { messageExpiryInterval: opts.expirySec };
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, po, (err) => {
        if (!err) return resolve();
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number' && code >= 0x80) {
          reject(
            new DaemonError(
              'MQTT_PUBLISH_REFUSED',
              `broker refused the message on ${topic}: ${err.message} (reason code 0x${code.toString(16)})`,
              { cause: err },
            ),
          );
        } else reject(new DaemonError('MQTT_PUBLISH_FAILED', `publish on ${topic} failed: ${err.message}`, { cause: err }));
      });
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

  private afterConnect(client: MqttClient): void {
    for (const [filter, s] of this.subs) this.sendSubscribe(client, filter, s.qos);
    this.notify(this.connectListeners, 'mqtt connect listener failed');
  }

  private notify(listeners: (() => void)[], failed: string): void {
    for (const l of listeners) {
      try {
        l();
      } catch (err) {
        this.opts.log.error({ err: errorMessage(err) }, failed);
      }
    }
  }

  private sendSubscribe(client: MqttClient, filter: string, qos: 0 | 1 | 2): void {
    client.subscribe(filter, { qos }, (err, granted) => {
      const refused = granted?.find((g) => g.qos > 2);
      if (err || refused)
        this.opts.log.error({ filter, err: err ? errorMessage(err) : `broker refused (reason ${refused?.qos})` }, 'mqtt subscribe failed');
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
    this.reconnects.cancel();
    if (finalStatus !== undefined && this.st.connected) {
      await sleepUnless(
        this.clock,
        timeoutMs,
        new Promise<void>((resolve) => client.publish(this.opts.statusTopic, finalStatus, { qos: 1, retain: true }, () => resolve())),
      );
    }
    await sleepUnless(this.clock, timeoutMs, new Promise<void>((resolve) => client.end(false, {}, () => resolve())));
    if (!client.disconnected) client.end(true);
    this.st.connected = false;
  }
}

/** A stable code and a message that says what to fix, for the log and /status. Never includes a secret. */
function explain(err: Error & { code?: string | number }, o: MqttOptions, v: 4 | 5): [string, string] {
  const code = err.code;
  const who = o.username !== undefined ? `user "${o.username}"` : 'an anonymous client';
  const pw = o.passwordFile ? `mqtt.passwordFile (${o.passwordFile})` : 'mqtt.password / EDGE_INFERD_MQTT__PASSWORD';
  if (typeof code === 'number') {
    if ((v === 5 && code === V5_BAD_CREDENTIALS) || (v === 4 && code === V3_BAD_CREDENTIALS)) {
      return ['MQTT_AUTH', `the broker refused the credentials of ${who} (bad user name or password); check mqtt.username and ${pw}`];
    }
    if ((v === 5 && code === V5_NOT_AUTHORIZED) || (v === 4 && code === V3_NOT_AUTHORIZED)) {
      // Mosquitto answers a wrong password with this too, and a client id its clientid_prefixes refuse.
      const creds =
        o.username !== undefined
          ? `a wrong user name or password (check mqtt.username and ${pw})`
          : 'a broker that wants a user name (set mqtt.username and mqtt.passwordFile)';
      return [
        'MQTT_AUTH',
        `the broker refused ${who} with client id "${o.clientId}" (not authorized): ${creds}, or a client id ` +
          `the broker does not allow (set mqtt.clientId)`,
      ];
    }
    if ((v === 5 && code === V5_CLIENT_ID_INVALID) || (v === 4 && code === V3_CLIENT_ID_REJECTED)) {
      return ['MQTT_CLIENT_ID', `the broker rejected the client id "${o.clientId}"; set mqtt.clientId to one it allows`];
    }
    if (code === V3_UNACCEPTABLE_PROTOCOL || code === V5_UNSUPPORTED_PROTOCOL) {
      return ['MQTT_PROTOCOL', `the broker refused MQTT ${v === 5 ? '5' : '3.1.1'}; set mqtt.protocolVersion to ${v === 5 ? 4 : 5}`];
    }
    return ['MQTT_REFUSED', `the broker refused the connection: ${err.message}`];
  }
  if (typeof code === 'string') {
    if (TLS_TRUST_CODES.has(code)) {
      return [
        'MQTT_TLS',
        `TLS: the broker certificate is not trusted (${code}: ${err.message}); give the CA that signed it in mqtt.tls.ca`,
      ];
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return [
        'MQTT_TLS',
        `TLS: the broker certificate is not for this host (${err.message}); connect with the name in the certificate or fix the certificate`,
      ];
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
      return ['MQTT_TLS', `TLS: the broker certificate is not valid now (${code})`];
    if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) return ['MQTT_TLS', `TLS: ${err.message} (${code})`];
    if (
      code === 'ECONNREFUSED' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH' ||
      code === 'ENOTFOUND' ||
      code === 'ETIMEDOUT' ||
      code === 'EAI_AGAIN'
    ) {
      return ['MQTT_UNREACHABLE', `cannot reach the broker: ${err.message}`];
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') return ['MQTT_CONNECTION_LOST', `the connection to the broker was lost (${code})`];
  }
  // mqtt.js gives a lost keepalive no code, only this message.
  if (err.message === 'Keepalive timeout') {
    return [
      'MQTT_CONNECTION_LOST',
      `the connection to the broker was lost: no answer from the broker within the keepalive (${o.keepaliveSec} s x 1.5)`,
    ];
  }
  return ['MQTT_ERROR', err.message];
}

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

const DEFAULT_PORTS: Record<string, number> = { mqtt: 1883, tcp: 1883, mqtts: 8883, tls: 8883, ws: 80, wss: 443 };

/** One broker of a failover list, as mqtt.js's `servers` takes it. */
type Server = NonNullable<IClientOptions['servers']>[number];
function serverOf(url: string): Server & { port: number } {
  const u = new URL(url);
  const scheme = u.protocol.replace(/:$/, '');
  const protocol = (scheme === 'tcp' ? 'mqtt' : scheme === 'tls' ? 'mqtts' : scheme) as Server['protocol'];
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : (DEFAULT_PORTS[scheme] ?? 1883), protocol };
}

function isTlsUrl(url: string): boolean {
  return /^(mqtts|wss|tls):/.test(url);
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

function readTls(t: MqttTlsOptions): Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  const read = (key: 'ca' | 'cert' | 'key', file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new DaemonError('MQTT_TLS_FILE', `mqtt.tls.${key}: cannot read ${file}: ${errorMessage(err)}`, { cause: err });
    }
  };
  return { ca: read('ca', t.ca), cert: read('cert', t.cert), key: read('key', t.key), rejectUnauthorized: t.rejectUnauthorized };
}

/** URLs may carry user:password; never log that. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, cred: string) => `//${cred.includes(':') ? cred.split(':')[0] + ':***' : cred}@`);
}
