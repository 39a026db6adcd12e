import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions } from 'mqtt';
import { errorMessage } from '../errors.js';
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
        invalid.push(`${topic}: not JSON`);
        return;
      }
      const r = statusSchema.safeParse(parsed);
      if (!r.success) {
        invalid.push(
          `${topic}: not an edge-inferd status (${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')})`,
        );
        return;
      }
      byDevice.set(r.data.deviceId, { deviceId: r.data.deviceId, topic, status: r.data });
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

/** One row per device, columns padded; the last error is cut to keep a row on a terminal line. */
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
  const rows = devices.map(({ status: s }) => {
    const cams = s.cameraState ? Object.entries(s.cameraState) : [];
    const streaming = cams.filter(([, st]) => st === 'streaming').length;
    const err = s.lastError ? `${s.lastError.where}: ${s.lastError.code} ${s.lastError.message}` : '';
    return [
      s.deviceId,
      s.state,
      `${ago(nowMs - s.tsMs)} ago`,
      s.version ?? '-',
      s.model ? `${s.model.name} ${s.model.version}` : '-',
      s.model ? s.model.sha256.slice(0, 12) : '-',
      s.provider ?? '-',
      s.uptimeSec !== undefined ? ago(s.uptimeSec * 1000) : '-',
      s.journal ? String(s.journal.pending) : '-',
      s.journal?.oldestPendingAgeSec != null ? ago(s.journal.oldestPendingAgeSec * 1000) : '-',
      s.cameraState ? `${streaming}/${cams.length}` : '-',
      err.length > 60 ? `${err.slice(0, 59)}…` : err || '-',
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
