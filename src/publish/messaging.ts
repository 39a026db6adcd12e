import { readFileSync } from 'node:fs';
import type { Clock } from '../clock.js';
import type { Component } from '../component.js';
import type { Config } from '../config/schema.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { EmbeddedBroker } from './broker.js';
import { MqttConnection, type MqttState } from './client.js';
import { Outbox, type OutboxStats } from './outbox.js';
import { statusPayload } from './payload.js';
import { JournalSink } from './result-sink.js';
import { StatusRefresher } from './status-refresh.js';
import type { StatusPayload } from './schemas.js';
import type { Topics } from './topics.js';

/** Room in the MQTT 5 maximum packet size beyond commands.maxBytes: fixed header, topic, properties. */
const PACKET_HEADROOM = 4096;

/**
 * The way out to the broker, built from the `mqtt` config slice: the embedded broker when
 * `mqtt.url` is "embedded", the connection (birth and last will on the retained status topic), the
 * outbox that drains the journal in order, and the result sink the camera channels write to.
 * Its components start broker -> connection -> outbox and stop in reverse; the connection's last
 * message on a clean stop is the `stopped` status.
 */
export class Messaging {
  readonly broker: EmbeddedBroker | undefined;
  readonly mqtt: MqttConnection;
  readonly outbox: Outbox;
  readonly sink: JournalSink;
  private readonly journal: Journal;

  constructor(opts: {
    config: Config['mqtt'];
    deviceId: string;
    topics: Topics;
    journal: Journal;
    status: (state: 'online' | 'stopped') => StatusPayload;
    /** The largest command payload taken (`commands.maxBytes`): sets the MQTT 5 maximum packet size. */
    commandMaxBytes?: number;
    /** Web page origins the embedded broker's WebSocket listener takes besides the device's own (`http.cors.origins`). */
    websocketOrigins?: readonly string[];
    clock: Clock;
    log: Logger;
  }) {
    const { config: m, deviceId, topics, journal, log } = opts;
    this.journal = journal;
    // The embedded broker asks its clients for the daemon's own credentials, when it has some.
    const { password: secret, passwordFile } = m;
    const password =
      secret !== undefined ? () => secret : passwordFile ? () => readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '') : undefined;
    const credentials = m.username !== undefined && password ? { username: m.username, password } : undefined;
    const brokerLog = log.child({ component: 'broker' });
    // Commands to this device are bounded on the embedded broker as MQTT 5 bounds them elsewhere.
    const commandTopics = topics.command('');
    const maxCommand = opts.commandMaxBytes !== undefined ? opts.commandMaxBytes + PACKET_HEADROOM : undefined;
    this.broker =
      m.url === 'embedded'
        ? new EmbeddedBroker({
            host: m.embedded.host,
            port: m.embedded.port,
            websocket: m.embedded.websocket && { ...m.embedded.websocket, origins: opts.websocketOrigins },
            credentials,
            publishLimit:
              maxCommand === undefined
                ? undefined
                : (topic) => (topic.startsWith(commandTopics) && !topic.endsWith('/response') ? maxCommand : Infinity),
            refused: (why, client) => brokerLog.warn({ client, err: why }, 'embedded broker closed a client: oversize message'),
          })
        : undefined;
    this.mqtt = new MqttConnection({
      url: this.broker?.url ?? m.url,
      clientId: m.clientId ?? `edge-inferd-${deviceId}`,
      protocolVersion: m.protocolVersion ?? (this.broker ? 4 : 5),
      fallbackTo4: m.protocolVersion === undefined,
      username: m.username,
      password: m.password,
      passwordFile: m.passwordFile,
      tls: m.tls,
      keepaliveSec: m.keepaliveSec,
      reconnectMinMs: m.reconnectMinSec * 1000,
      reconnectMaxMs: m.reconnectMaxSec * 1000,
      persistentSession: m.persistentSession,
      sessionExpirySec: m.sessionExpirySec,
      // The command payload, the topic (a few hundred bytes at most) and MQTT 5 properties.
      maximumPacketSize: opts.commandMaxBytes !== undefined ? opts.commandMaxBytes + PACKET_HEADROOM : undefined,
      statusTopic: topics.status,
      birth: () => JSON.stringify(opts.status('online')),
      will: JSON.stringify(statusPayload('offline', deviceId, {}, opts.clock.now())),
      log: log.child({ component: 'mqtt' }),
      clock: opts.clock,
    });
    this.outbox = new Outbox({
      journal,
      transport: this.mqtt,
      window: m.inflight,
      log: log.child({ component: 'outbox' }),
      clock: opts.clock,
    });
    this.sink = new JournalSink({
      config: { topics: m.topics, resultExpirySec: m.resultExpirySec },
      outbox: this.outbox,
      topics,
      lastSeq: (cam, kind) => journal.lastPayloadSeq(cam, kind),
    });
    const { broker, mqtt, outbox } = this;
    const stopped = () => JSON.stringify(opts.status('stopped'));
    this.brokerComponents = broker
      ? [
          {
            name: 'broker',
            start: async () => {
              await broker.start();
              brokerLog.info(
                { url: broker.url, websocket: broker.websocketUrl, authenticated: broker.authenticated },
                'embedded mqtt broker listening',
              );
              // Loopback only (the config refuses anything else without credentials), but any local process may still send commands.
              if (!broker.authenticated) brokerLog.warn({ url: broker.url }, 'the embedded mqtt broker accepts anonymous clients');
            },
            stop: () => broker.stop(),
          },
        ]
      : [];
    const refresh = new StatusRefresher({
      intervalMs: m.statusIntervalSec * 1000,
      topic: topics.status,
      message: () => JSON.stringify(opts.status('online')),
      transport: mqtt,
      clock: opts.clock,
    });
    this.connectionComponents = [
      { name: 'mqtt', start: () => mqtt.start(), stop: () => mqtt.stop(stopped()) },
      { name: 'outbox', start: () => outbox.start(), stop: () => outbox.stop() },
      refresh,
    ];
  }

  /** The embedded broker, if any: started early, so a taken port fails the start at once. */
  readonly brokerComponents: readonly Component[];
  /** The connection, then the outbox that drains the journal through it, then the status refresh. */
  readonly connectionComponents: readonly Component[];

  state(): MqttState {
    return this.mqtt.state();
  }

  /** Undefined while the journal is closed. */
  outboxStats(): OutboxStats | undefined {
    return this.journal.isOpen ? this.outbox.stats() : undefined;
  }

  /** Messages the broker refused (MQTT 5 reason >= 0x80): kept in the journal, not resent. */
  publishFailures(): number {
    return this.journal.isOpen ? this.journal.stats().rejected : 0;
  }
}
