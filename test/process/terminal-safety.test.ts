import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../src/journal/journal.js';
import { createLogger } from '../../src/log.js';
import { statusPayload } from '../../src/publish/payload.js';
import { CLI } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

/**
 * Issue 21 rows 7 and 11 at the terminal: `edge-inferd fleet` and `edge-inferd history`, run as a
 * technician runs them, print what others wrote (retained statuses, journaled labels) with every
 * control character shown as a visible escape and each field cut to a width: no escape sequence
 * (clear screen, hidden text, window title, OSC 52 clipboard) reaches the terminal. Fleet rows are
 * keyed by topic: a device claiming another's deviceId gets its own row, flagged.
 */

const HOSTILE = '\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[8mhidden\u202eevil';
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

describe('terminals are not hijacked by what devices and models say', () => {
  let mosq: Mosquitto | undefined;

  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => mosq?.stop());

  it('fleet: hostile retained statuses print escaped and cut; a payload claiming another deviceId is flagged, not merged', async (ctx) => {
    if (!mosq) return ctx.skip();
    const c = await mqtt.connectAsync(mosq.url);
    const status = (claims: string, extra: Parameters<typeof statusPayload>[2]) => JSON.stringify(statusPayload('online', claims, extra));
    await c.publishAsync(
      'edge-inferd/victim/status',
      status('victim', { version: '1.0.0', lastError: { where: 'camera tray', code: 'X', message: HOSTILE } }),
      { qos: 1, retain: true },
    );
    await c.publishAsync('edge-inferd/evil/status', status('victim', { version: `6.6.6${HOSTILE}${'x'.repeat(500)}` }), {
      qos: 1,
      retain: true,
    });
    await c.endAsync();
    const r = spawnSync(process.execPath, [CLI, 'fleet', '--broker', mosq.url], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(UNSAFE);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.find((l) => l.startsWith('victim '))).toContain('\\x1b[2J');
    const evil = lines.find((l) => l.startsWith('evil (SAYS victim)'));
    expect(evil).toBeDefined();
    expect(evil).toContain('6.6.6\\x1b[2J');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(400);
  });

  it('history: a journaled label with escapes prints escaped, the column cut to a width', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'history-escape-')), 'journal.sqlite');
    const j = new Journal({
      path,
      maxRows: 1000,
      maxBytes: 1 << 24,
      retentionMs: 3_600_000,
      synchronous: 'normal',
      log: createLogger({ level: 'silent', format: 'json' }),
    });
    j.start();
    const payload = JSON.stringify({ seq: 1, label: HOSTILE + 'y'.repeat(300), score: 0.9, id: 'r1' });
    j.append([{ topic: 'edge-inferd/k/tray/result', payload, qos: 1, retain: false, camera: 'tray', kind: 'result', payloadSeq: 1 }]);
    j.stop();
    const r = spawnSync(process.execPath, [CLI, 'history', '--journal', path], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(UNSAFE);
    expect(r.stdout).toContain('\\x1b]52;c;');
    expect(Math.max(...r.stdout.split('\n').map((l) => l.length))).toBeLessThan(250);
  });
});
