import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MqttConnection } from './client.js';
import type { Inference } from '../inference/types.js';
import type { HaDiscoveryConfig } from './schemas.js';
import type { Topics } from './topics.js';

/**
 * Home Assistant MQTT discovery (homeassistant.enabled). Per camera, two retained configs under
 * <haPrefix>/<component>/<deviceId>/<object>/config:
 * - sensor `<camera>_label`: state = the label of each published result, with score, top-k, seq,
 *   capture time and the stable label as attributes;
 * - binary_sensor `<camera>_online` (connectivity): ON while the daemon is online and the camera
 *   is streaming and not paused, read from the retained status message.
 * - sensor `<camera>_value_<name>` per named value of a regress model (`<camera>_value_<region>_<name>`
 *   for a pipeline's regress crop stage, read from the first object's region): state = the value
 *   (ids that would not be unique get a hash of the camera and name after them: see valueSensors).
 *   The names are learned from the camera's results (observe), so a model swap that renames them
 *   replaces the sensors; until a camera's first result, the value sensors kept on the broker from
 *   an earlier run are left as they are (no removal and re-adding at each restart).
 * All are available while `status` says online. Configs are (re)published at every connect and
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

/** A value a camera's results carry: a regress model's (no region) or a regress crop stage's region's. */
export interface HaValue {
  region?: string;
  name: string;
}

/** The values in one inference (undefined: this frame cannot tell, e.g. a pipeline frame with nobody in it). */
export function valuesOf(inf: Inference): HaValue[] | undefined {
  if (inf.task === 'regress') return inf.values.map((v) => ({ name: v.name }));
  const p = inf.task === 'detect' ? inf.pipeline : undefined;
  if (p?.outputs?.kind !== 'values') return [];
  const regions = p.objects[0]?.regions;
  if (!regions) return undefined;
  return regions.flatMap((r) => p.labels.map((name) => ({ region: r.name, name })));
}

/** Object ids allow letters, digits, _ and -. */
const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '_');
/**
 * Every camera's value sensors with their object ids, `<camera>_value_<slug of the name>`, and 8
 * hex characters of a hash of the camera and name after it where that id is not unique: two names
 * that make one slug ("depth (mm)", "depth [mm]"), or camera names that hold `_value_` (camera
 * "door" value "x_label" and camera "door_value_x"'s label sensor). They would share a config
 * topic and unique_id, and Home Assistant would show only one of them.
 */
function valueSensors(
  cameras: readonly string[],
  values: ReadonlyMap<string, readonly HaValue[]>,
): { cam: string; v: HaValue; id: string }[] {
  const taken = new Set(cameras.flatMap((c) => [`${c}_label`, `${c}_online`]));
  const all = cameras.flatMap((cam) =>
    (values.get(cam) ?? []).map((v) => ({ cam, v, id: `${cam}_value_${slug(v.region ? `${v.region}_${v.name}` : v.name)}` })),
  );
  const uses = new Map<string, number>();
  for (const { id } of all) uses.set(id, (uses.get(id) ?? 0) + 1);
  return all.map((s) => {
    if (!taken.has(s.id) && (uses.get(s.id) ?? 0) < 2) return s;
    const hash = createHash('sha256')
      .update(JSON.stringify([s.cam, s.v.region ?? '', s.v.name]))
      .digest('hex');
    return { ...s, id: `${s.id}_${hash.slice(0, 8)}` };
  });
}
/** A Jinja string literal (JSON's double-quoted form reads the same). */
const lit = (s: string) => JSON.stringify(s);

export class HomeAssistantDiscovery {
  private readonly o: HaOptions;
  private cameras: string[] = [];
  private mqtt: MqttConnection | undefined;
  /** Per camera, the values its results carry (learned from them). */
  private readonly values = new Map<string, HaValue[]>();
  /** Per camera not yet heard from: value sensor configs of ours found retained (kept until it is). */
  private readonly spared = new Map<string, Set<string>>();

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
    const sensors = valueSensors(cameras, this.values);
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
      for (const { v, id } of sensors.filter((x) => x.cam === cam)) {
        const read = v.region
          ? `((((value_json.get('objects') or [{}])[0].get('regions') or {}).get(${lit(v.region)}) or {}).get('values') or {})`
          : "(value_json.get('values') or {})";
        out.set(`${prefix}/sensor/${deviceId}/${id}/config`, {
          ...common,
          platform: 'sensor',
          name: `${cam} ${v.region ? `${v.region} ` : ''}${v.name}`,
          unique_id: `${this.idPrefix}${id}`,
          icon: 'mdi:chart-line',
          state_topic: topics.result(cam),
          // None when the result has no such value (nobody in view): Home Assistant shows unknown.
          value_template: `{{ ${read}.get(${lit(v.name)}) }}`,
          state_class: 'measurement',
        });
      }
    }
    return out;
  }

  /**
   * A camera's result: when the values it carries differ from the ones known (the first result, a
   * model swap), their sensors are published and those of values gone removed.
   */
  observe(camera: string, values: readonly HaValue[] | undefined): void {
    if (values === undefined || !this.cameras.includes(camera)) return;
    const key = (l: readonly HaValue[]) => JSON.stringify(l.map((v) => [v.region ?? '', v.name]));
    if (this.values.has(camera) && key(this.values.get(camera) ?? []) === key(values)) return;
    const before = new Set([...this.configs().keys(), ...(this.spared.get(camera) ?? [])]);
    this.spared.delete(camera);
    this.values.set(camera, [...values]);
    const now = this.configs();
    for (const topic of before) if (!now.has(topic)) this.send(topic, '');
    for (const [topic, cfg] of now) if (topic.includes(`/${camera}_value_`)) this.send(topic, JSON.stringify(cfg));
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
    // A value sensor of a camera that has not answered yet: its values are not known until it does.
    const cam = this.cameras.find((c) => uniqueId.startsWith(`${this.idPrefix}${c}_value_`) && !this.values.has(c));
    if (cam !== undefined) {
      this.spared.set(cam, (this.spared.get(cam) ?? new Set()).add(topic));
      return;
    }
    this.o.log.info({ topic }, 'removing the Home Assistant config of a camera that is no longer configured');
    this.send(topic, '');
  }

  private send(topic: string, payload: string): void {
    this.mqtt?.publish(topic, payload, { qos: 1, retain: true }).catch((err: unknown) => {
      this.o.log.warn({ topic, err: errorMessage(err) }, 'home assistant discovery publish failed');
    });
  }
}
