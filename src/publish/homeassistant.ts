import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MqttConnection } from './client.js';
import type { HaDiscoveryConfig } from './schemas.js';
import type { Topics } from './topics.js';

/**
 * Home Assistant MQTT discovery (homeassistant.enabled). Per camera, two retained configs under
 * <haPrefix>/<component>/<deviceId>/<object>/config:
 * - sensor `<camera>_label`: state = the label of each published result, with score, top-k, seq,
 *   capture time and the stable label as attributes;
 * - binary_sensor `<camera>_online` (connectivity): ON while the daemon is online and the camera
 *   is streaming and not paused, read from the retained status message.
 * Both are available while `status` says online. Configs are (re)published at every connect and
 * when Home Assistant announces itself (<haPrefix>/status = online). Configs of ours found
 * retained for a camera that is no longer configured are removed with an empty retained message.
 * Entity ids are left to Home Assistant (device name + entity name), which avoids the
 * object_id/default_entity_id churn between Home Assistant releases.
 */

export interface HaOptions {
  prefix: string;
  deviceId: string;
  topics: Topics;
  version: string;
  /** Model shown on the device card. */
  model: () => string;
  log: Logger;
}

export class HomeAssistantDiscovery {
  private readonly o: HaOptions;
  private cameras: string[] = [];
  private mqtt: MqttConnection | undefined;

  constructor(opts: HaOptions) {
    this.o = opts;
  }

  private get idPrefix(): string {
    return `edge-inferd_${this.o.deviceId}_`;
  }

  /** Every config this device should have retained, by topic. */
  configs(cameras = this.cameras): Map<string, HaDiscoveryConfig> {
    const { prefix, deviceId, topics, version } = this.o;
    const status = topics.status;
    const common = {
      availability: [
        {
          topic: status,
          value_template: "{{ 'online' if value_json.state == 'online' else 'offline' }}",
          payload_available: 'online' as const,
          payload_not_available: 'offline' as const,
        },
      ],
      device: {
        identifiers: [`edge-inferd_${deviceId}`],
        name: deviceId,
        manufacturer: 'edge-inferd',
        model: this.o.model(),
        sw_version: version,
      },
      origin: { name: 'edge-inferd' as const, sw_version: version },
      qos: 1 as const,
    };
    const out = new Map<string, HaDiscoveryConfig>();
    for (const cam of cameras) {
      out.set(`${prefix}/sensor/${deviceId}/${cam}_label/config`, {
        ...common,
        platform: 'sensor',
        name: `${cam} label`,
        unique_id: `${this.idPrefix}${cam}_label`,
        icon: 'mdi:eye',
        state_topic: topics.result(cam),
        value_template: '{{ value_json.label }}',
        json_attributes_topic: topics.result(cam),
        json_attributes_template:
          "{{ {'score': value_json.score, 'top': value_json.top, 'seq': value_json.seq, 'captured_at': " +
          "value_json.capturedAt, 'stable': value_json.stable} | tojson }}",
      });
      out.set(`${prefix}/binary_sensor/${deviceId}/${cam}_online/config`, {
        ...common,
        platform: 'binary_sensor',
        name: `${cam} online`,
        unique_id: `${this.idPrefix}${cam}_online`,
        device_class: 'connectivity',
        state_topic: status,
        value_template: `{{ 'ON' if value_json.state == 'online' and (value_json.cameraState or {}).get('${cam}') == 'streaming' else 'OFF' }}`,
        payload_on: 'ON',
        payload_off: 'OFF',
      });
    }
    return out;
  }

  /** Subscribes for clean-up and Home Assistant's birth, and publishes at every connect. */
  attach(mqtt: MqttConnection, cameras: string[]): void {
    this.mqtt = mqtt;
    this.cameras = [...cameras];
    const { prefix, deviceId } = this.o;
    mqtt.subscribe(`${prefix}/+/${deviceId}/+/config`, (topic, payload, meta) => this.onRetained(topic, payload, meta.retain));
    mqtt.subscribe(`${prefix}/status`, (_t, payload) => {
      if (payload.toString() === 'online') this.publishAll();
    });
    mqtt.onConnect(() => this.publishAll());
    if (mqtt.connected) this.publishAll();
  }

  /** The cameras changed (a reload): publish the new, remove the gone. */
  setCameras(cameras: string[]): void {
    const before = this.configs();
    this.cameras = [...cameras];
    const now = this.configs();
    for (const topic of before.keys()) if (!now.has(topic)) this.send(topic, '');
    this.publishAll();
  }

  private publishAll(): void {
    for (const [topic, cfg] of this.configs()) this.send(topic, JSON.stringify(cfg));
  }

  private onRetained(topic: string, payload: Buffer, retain: boolean): void {
    if (!retain || payload.length === 0 || this.configs().has(topic)) return;
    let uniqueId: unknown;
    try {
      uniqueId = (JSON.parse(payload.toString()) as { unique_id?: unknown }).unique_id;
    } catch {
      return;
    }
    if (typeof uniqueId !== 'string' || !uniqueId.startsWith(this.idPrefix)) return; // not ours
    this.o.log.info({ topic }, 'removing the Home Assistant config of a camera that is no longer configured');
    this.send(topic, '');
  }

  private send(topic: string, payload: string): void {
    this.mqtt?.publish(topic, payload, { qos: 1, retain: true }).catch((err: unknown) => {
      this.o.log.warn({ topic, err: errorMessage(err) }, 'home assistant discovery publish failed');
    });
  }
}
