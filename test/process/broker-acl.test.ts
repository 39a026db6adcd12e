import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir, packageRoot } from '../../src/paths.js';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { needTool } from '../helpers/tools.js';

/**
 * The broker ACL the README gives for a fleet (username = deviceId), on a real Mosquitto with a
 * password file, and the real daemon as kiosk B: kiosk A's credentials can neither command B (the
 * model commands included) nor read B's results, nor publish as B; the operators' account can.
 * The ACL is read from the documentation, so what users copy is what was tested.
 */

/** The ACL as docs/rollout.md gives it (the ```conf block with `pattern` lines), which must be the README's too, comments aside. */
function documentedAcl(file: string): string {
  const blocks = [...readFileSync(join(packageRoot, file), 'utf8').matchAll(/```conf\n([\s\S]*?)```/g)].map((m) => m[1]);
  const acl = blocks.find((b) => /^pattern /m.test(b));
  if (!acl) throw new Error(`${file}: no \`\`\`conf block with pattern lines`);
  return acl;
}
const rules = (acl: string) => acl.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
const FLEET_ACL = documentedAcl('docs/rollout.md');

const PASSWORDS = { 'kiosk-a': 'pw-a', 'kiosk-b': 'pw-b', 'fleet-ops': 'pw-ops' };

describe('the fleet ACL on a real Mosquitto', () => {
  let mosq: Mosquitto | undefined;
  let d: DaemonProcess | undefined;
  let ops: Subscriber;
  let a: MqttClient;
  const seenByA: string[] = [];

  beforeAll(async () => {
    const passwd = needTool('mosquitto_passwd', 'mosquitto', ['/usr/bin/mosquitto_passwd']);
    if (!passwd) return;
    const dir = mkdtempSync(join(tmpdir(), 'acl-'));
    const pwFile = join(dir, 'passwd');
    for (const [user, pw] of Object.entries(PASSWORDS))
      execFileSync(passwd, [...(user === 'kiosk-a' ? ['-c'] : []), '-b', pwFile, user, pw]);
    writeFileSync(join(dir, 'acl'), FLEET_ACL);
    writeFileSync(join(dir, 'b.pw'), PASSWORDS['kiosk-b']);
    const port = await freePort();
    mosq = await startMosquitto({
      port,
      extraConf: `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${pwFile}\nacl_file ${join(dir, 'acl')}`,
    });
    if (!mosq) return;
    ops = await subscribe(mosq.url, 'edge-inferd/kiosk-b/#', {
      username: 'fleet-ops',
      password: PASSWORDS['fleet-ops'],
      protocolVersion: 5,
    });
    d = spawnDaemon({
      deviceId: 'kiosk-b',
      http: { port: await freePort() },
      mqtt: { url: mosq.url, username: 'kiosk-b', passwordFile: join(dir, 'b.pw') },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 10 } },
    });
    a = await mqtt.connectAsync(mosq.url, { username: 'kiosk-a', password: PASSWORDS['kiosk-a'], protocolVersion: 5 });
    a.on('message', (topic) => seenByA.push(topic));
    await a.subscribeAsync(['edge-inferd/kiosk-b/#', 'edge-inferd/+/tray/result'], { qos: 1 });
  }, 60_000);

  afterAll(async () => {
    await d?.kill();
    await a?.endAsync();
    await ops?.close();
    await mosq?.stop();
  });

  it('is the ACL the README shows', () => {
    expect(rules(documentedAcl('README.md'))).toEqual(rules(FLEET_ACL));
    expect(rules(FLEET_ACL)).toContain('pattern write edge-inferd/%u/#');
  });

  it('kiosk A can neither command kiosk B nor read its results; the operators can', async () => {
    if (!mosq || !d) return;
    // B works: the operators see its results and the retained model/state.
    await ops.waitFor((m) => m.topic === 'edge-inferd/kiosk-b/tray/result' && m.json.seq >= 3);
    await ops.waitFor((m) => m.topic === 'edge-inferd/kiosk-b/model/state');
    // A tries: commands on B's topics (the model commands too) and a forged result as B.
    const tries = [
      [
        'cmd/model/install',
        { id: 'from-a-install', url: 'http://127.0.0.1:1/x.tgz', sha256: 'ab'.repeat(32), name: 'x', version: '1.0.0' },
      ],
      ['cmd/model/rollback', { id: 'from-a-rollback' }],
      ['cmd/pause', { id: 'from-a-pause' }],
      ['tray/result', { forged: 'by-a' }],
    ] as const;
    for (const [topic, body] of tries)
      await a.publishAsync(`edge-inferd/kiosk-b/${topic}`, JSON.stringify(body), { qos: 1 }).catch(() => undefined);
    // The operators' command, sent after A's, is answered: B would have answered A's before it.
    await ops.client.publishAsync('edge-inferd/kiosk-b/cmd/status', JSON.stringify({ id: 'from-ops' }), { qos: 1 });
    const res = await ops.waitFor((m) => m.topic === 'edge-inferd/kiosk-b/cmd/status/response' && m.json.requestId === 'from-ops');
    expect(res.json.ok).toBe(true);
    const from = ops.messages.length;
    await ops.waitFor((m) => ops.messages.indexOf(m) >= from && m.topic === 'edge-inferd/kiosk-b/tray/result');
    expect(ops.messages.filter((m) => /from-a|by-a/.test(m.payload)).map((m) => m.topic)).toEqual([]);
    expect(d.logs.filter((l) => typeof l.command === 'string').map((l) => l.requestId)).toEqual(['from-ops']);
    // A, subscribed to all of B's topics since before B's first result, got none of them.
    expect(seenByA).toEqual([]);
  });
});
