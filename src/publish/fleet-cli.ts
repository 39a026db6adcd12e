import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions } from 'mqtt';
import { errorMessage } from '../errors.js';
import { termSafe } from '../terminal-text.js';
import { topicMatches } from './client.js';
import { type StatusPayload, statusSchema } from './schemas.js';

/**
 * `edge-inferd fleet`: every device's retained status (`<prefix>/+/status`) from one broker, as a
 * table or JSON. Retained messages come right after the SUBACK; the listing ends once none has
 * arrived for `quietMs` (or at `maxWaitMs`), so it works on a broker with thousands of devices
 * without knowing their number.
 */

export interface FleetOptions {
  broker: string;
  prefix: string;
  json: boolean;
  username?: string;
  password?: string;
  passwordFile?: string;
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  quietMs?: number;
  maxWaitMs?: number;
  /** For "age" columns; default Date.now(). */
  nowMs?: number;
}

export interface FleetDevice {
  /** The device the topic names (`<prefix>/<deviceId>/status`): what the row is keyed by. */
  deviceId: string;
  topic: string;
  status: StatusPayload;
}

/** Reads the retained statuses; a payload that is not a valid status is reported in `invalid`. */
export async function readFleet(o: FleetOptions): Promise<{ devices: FleetDevice[]; invalid: string[] }> {
  const filter = `${o.prefix}/+/status`;
  const options: IClientOptions = {
    clientId: `edge-inferd-fleet-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    username: o.username,
    password: o.passwordFile ? readFileSync(o.passwordFile, 'utf8').replace(/\r?\n$/, '') : o.password,
    ...(o.tls
      ? {
          ca: o.tls.ca ? readFileSync(o.tls.ca) : undefined,
          cert: o.tls.cert ? readFileSync(o.tls.cert) : undefined,
          key: o.tls.key ? readFileSync(o.tls.key) : undefined,
          rejectUnauthorized: o.tls.rejectUnauthorized,
        }
      : {}),
  };
  const client = await mqtt.connectAsync(o.broker, options, false);
  const byDevice = new Map<string, FleetDevice>();
  const invalid: string[] = [];
  try {
    let last = Date.now();
    client.on('message', (topic, payload, packet) => {
      last = Date.now();
      if (!packet.retain || !topicMatches(filter, topic) || payload.length === 0) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(payload.toString());
      } catch {
        invalid.push(`${termSafe(topic, 120)}: not JSON`);
        return;
      }
      const r = statusSchema.safeParse(parsed);
      if (!r.success) {
        invalid.push(
          `${termSafe(topic, 120)}: not an edge-inferd status (${termSafe(
            r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
            200,
          )})`,
        );
        return;
      }
      // Keyed by the topic (a broker ACL lets each device write its own topic only), never by
      // what the payload claims: a device cannot overwrite another's row from its own topic.
      const fromTopic = topic.slice(o.prefix.length + 1, -'/status'.length);
      byDevice.set(fromTopic, { deviceId: fromTopic, topic, status: r.data });
    });
    await client.subscribeAsync(filter, { qos: 1 });
    last = Date.now();
    const quiet = o.quietMs ?? 500;
    const end = Date.now() + (o.maxWaitMs ?? 5000);
    while (Date.now() - last < quiet && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  } finally {
    await client.endAsync();
  }
  return { devices: [...byDevice.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId)), invalid };
}

const ago = (ms: number) =>
  ms < 0
    ? '0s'
    : ms < 60_000
      ? `${Math.round(ms / 1000)}s`
      : ms < 3_600_000
        ? `${Math.round(ms / 60_000)}m`
        : ms < 86_400_000
          ? `${(ms / 3_600_000).toFixed(1)}h`
          : `${(ms / 86_400_000).toFixed(1)}d`;

/**
 * One row per device (per status topic), columns padded. Every field from the message is made safe
 * for the terminal and cut to a width; a payload whose deviceId is not its topic's is flagged.
 */
export function fleetTable(devices: FleetDevice[], nowMs: number): string {
  const head = [
    'DEVICE',
    'STATE',
    'SEEN',
    'VERSION',
    'MODEL',
    'SHA256',
    'PROVIDER',
    'UPTIME',
    'PENDING',
    'OLDEST',
    'CAMERAS',
    'LAST ERROR',
  ];
  const rows = devices.map(({ deviceId, status: s }) => {
    const cams = s.cameraState ? Object.entries(s.cameraState) : [];
    const streaming = cams.filter(([, st]) => st === 'streaming').length;
    const err = s.lastError ? `${s.lastError.where}: ${s.lastError.code} ${s.lastError.message}` : '';
    const device = s.deviceId === deviceId ? deviceId : `${deviceId} (SAYS ${s.deviceId})`;
    return [
      termSafe(device, 48),
      termSafe(s.state, 12),
      `${ago(nowMs - s.tsMs)} ago`,
      termSafe(s.version ?? '-', 16),
      termSafe(s.model ? `${s.model.name} ${s.model.version}` : '-', 40),
      termSafe(s.model ? s.model.sha256.slice(0, 12) : '-', 12),
      termSafe(s.provider ?? '-', 12),
      s.uptimeSec !== undefined ? ago(s.uptimeSec * 1000) : '-',
      s.journal ? String(s.journal.pending) : '-',
      s.journal?.oldestPendingAgeSec != null ? ago(s.journal.oldestPendingAgeSec * 1000) : '-',
      s.cameraState ? `${streaming}/${cams.length}` : '-',
      termSafe(err || '-', 60),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

export async function runFleet(o: FleetOptions, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let fleet: Awaited<ReturnType<typeof readFleet>>;
  try {
    fleet = await readFleet(o);
  } catch (e) {
    err(`edge-inferd fleet: cannot read ${o.prefix}/+/status from ${o.broker.replace(/\/\/([^@/]*)@/, '//***@')}: ${errorMessage(e)}\n`);
    return 1;
  }
  for (const i of fleet.invalid) err(`edge-inferd fleet: skipped ${i}\n`);
  if (o.json)
    out(
      JSON.stringify(
        fleet.devices.map((d) => d.status),
        null,
        2,
      ) + '\n',
    );
  else if (fleet.devices.length === 0) out(`no device status under ${o.prefix}/+/status\n`);
  else out(fleetTable(fleet.devices, o.nowMs ?? Date.now()));
  return 0;
}
