import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { type DaemonProcess, spawnDaemon } from '../helpers/daemon.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/ports.js';
import { getJson } from '../helpers/results.js';
import { waitUntil } from '../helpers/wait.js';
import { needTool } from '../helpers/tools.js';
import { TestPki } from '../helpers/test-pki.js';

/** Credentials and TLS against a real Mosquitto; certificates are made here with openssl. */

const RIGHT = 'Right-Pa55-7d1f0c';
const WRONG = 'Wrong-Pa55-93ab2e';

function config(deviceId: string, httpPort: number, mqtt: Record<string, unknown>) {
  return {
    deviceId,
    http: { port: httpPort },
    log: { level: 'trace' }, // the most verbose the daemon gets: still no secret may show
    mqtt: { reconnectMaxSec: 1, ...mqtt },
    cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 10 } },
  };
}

type Pki = Record<'ca' | 'otherCa' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>;

/** Everything the daemon wrote, stdout and stderr. */
const allOutput = (d: DaemonProcess) => d.logs.map((l) => JSON.stringify(l)).join('\n') + d.stderr();

describe('credentials', () => {
  let mosq: Mosquitto | undefined;
  beforeAll(async () => {
    const passwd = needTool('mosquitto_passwd', 'mosquitto', ['/usr/bin/mosquitto_passwd']);
    if (!passwd) return;
    const dir = mkdtempSync(join(tmpdir(), 'mosq-auth-'));
    const pwFile = join(dir, 'passwd');
    execFileSync(passwd, ['-c', '-b', pwFile, 'kiosk', RIGHT]);
    const port = await freePort();
    mosq = await startMosquitto({ port, extraConf: `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${pwFile}` });
  });
  afterAll(async () => mosq?.stop());

  it('wrong password: a clear error in the log and /status, keeps retrying, connects once the password file is fixed; no secret logged', {
    timeout: 60_000,
  }, async (ctx) => {
    if (!mosq) return ctx.skip();
    const httpPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'edge-auth-'));
    const pwFile = join(dir, 'mqtt-password');
    writeFileSync(pwFile, `${WRONG}\n`, { mode: 0o600 });
    const d = spawnDaemon(config('auth-1', httpPort, { url: mosq.url, username: 'kiosk', passwordFile: pwFile }), { dir });
    try {
      const err = await d.waitForLog((l) => l.msg === 'mqtt error');
      const expected = `the broker refused user "kiosk" with client id "edge-inferd-auth-1" (not authorized): a wrong user name or password (check mqtt.username and mqtt.passwordFile (${pwFile})), or a client id the broker does not allow (set mqtt.clientId)`;
      expect(err).toMatchObject({ level: 50, code: 'MQTT_AUTH', err: expected });
      await d.waitForLog((l) => l.msg === 'running');
      await waitUntil(
        async () => ((await getJson(`http://127.0.0.1:${httpPort}/status`)).body.mqtt.failedAttempts as number) >= 3,
        20_000,
        'retries',
      );
      const st = (await getJson(`http://127.0.0.1:${httpPort}/status`)).body;
      expect(st.state).toBe('running');
      expect(st.mqtt).toMatchObject({ connected: false, lastErrorCode: 'MQTT_AUTH', lastError: expected });
      // Ready all the same (the journal takes the results), and the check says why MQTT is down.
      const ready = await getJson(`http://127.0.0.1:${httpPort}/readyz`);
      expect(ready.body.checks.mqtt.detail).toContain('not authorized');
      expect(ready.body.checks.mqtt.detail).toContain('the journal holds results');

      writeFileSync(pwFile, `${RIGHT}\n`);
      await d.waitForLog((l) => l.msg === 'mqtt connected', 20_000);
      const sub = await subscribe(mosq.url, 'edge-inferd/auth-1/tray/result', { username: 'kiosk', password: RIGHT });
      await sub.waitFor(() => true);
      await sub.close();
      expect((await getJson(`http://127.0.0.1:${httpPort}/status`)).body.mqtt).toMatchObject({ connected: true });
      await d.kill('SIGTERM');
      const out = allOutput(d);
      expect(out).not.toContain(WRONG);
      expect(out).not.toContain(RIGHT);
      expect(out).not.toContain(readFileSync(pwFile, 'utf8').trim());
    } finally {
      await d.kill('SIGKILL');
    }
  });

  it('the password from EDGE_INFERD_MQTT__PASSWORD connects and never shows in the output', { timeout: 30_000 }, async (ctx) => {
    if (!mosq) return ctx.skip();
    const httpPort = await freePort();
    const d = spawnDaemon(config('auth-2', httpPort, { url: mosq.url, username: 'kiosk' }), { env: { EDGE_INFERD_MQTT__PASSWORD: RIGHT } });
    try {
      await d.waitForLog((l) => l.msg === 'mqtt connected');
      await d.kill('SIGTERM');
      expect(allOutput(d)).not.toContain(RIGHT);
    } finally {
      await d.kill('SIGKILL');
    }
  });
});

describe('TLS', () => {
  let mosq: Mosquitto | undefined;
  let pki: Pki;
  beforeAll(async () => {
    const openssl = needTool('openssl', 'openssl');
    if (!openssl || !needTool('mosquitto', 'mosquitto', ['/usr/sbin/mosquitto'])) return;
    pki = makePki(openssl);
    const port = await freePort();
    mosq = await startMosquitto({
      port,
      extraConf: [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        `cafile ${pki.ca}`,
        `certfile ${pki.serverCert}`,
        `keyfile ${pki.serverKey}`,
        'require_certificate true',
      ].join('\n'),
    });
  });
  afterAll(async () => mosq?.stop());

  const url = () => `mqtts://127.0.0.1:${mosq!.port}`;

  it('with the CA and a client certificate: connects and publishes', { timeout: 30_000 }, async (ctx) => {
    if (!mosq) return ctx.skip();
    const httpPort = await freePort();
    const d = spawnDaemon(config('tls-1', httpPort, { url: url(), tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }));
    try {
      const connected = await d.waitForLog((l) => l.msg === 'mqtt connected');
      expect(connected.tls).toBe(true);
      const sub = await subscribe(url(), 'edge-inferd/tls-1/tray/result', {
        ca: readFileSync(pki.ca),
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
      });
      const m = await sub.waitFor(() => true);
      expect(m.json).toMatchObject({ deviceId: 'tls-1', camera: 'tray' });
      await sub.close();
      expect(d.logs.some((l) => String(l.msg).includes('rejectUnauthorized'))).toBe(false);
    } finally {
      await d.kill('SIGKILL');
    }
  });

  it('a broker certificate from another CA is rejected with a clear error, in the log and /status', { timeout: 30_000 }, async (ctx) => {
    if (!mosq) return ctx.skip();
    const httpPort = await freePort();
    const d = spawnDaemon(config('tls-2', httpPort, { url: url(), tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey } }));
    try {
      const err = await d.waitForLog((l) => l.msg === 'mqtt error');
      expect(err.code).toBe('MQTT_TLS');
      expect(err.err).toMatch(
        /^TLS: the broker certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY): .*\); give the CA that signed it in mqtt\.tls\.ca$/,
      );
      await d.waitForLog((l) => l.msg === 'running');
      const st = (await getJson(`http://127.0.0.1:${httpPort}/status`)).body;
      expect(st.mqtt).toMatchObject({ connected: false, tls: true, lastErrorCode: 'MQTT_TLS' });
      expect(d.logs.some((l) => l.msg === 'mqtt connected')).toBe(false);
    } finally {
      await d.kill('SIGKILL');
    }
  });

  it('verification turned off explicitly: connects even to an untrusted broker, with a warning at every start', {
    timeout: 30_000,
  }, async (ctx) => {
    if (!mosq) return ctx.skip();
    const cfg = config('tls-3', await freePort(), {
      url: url(),
      tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey, rejectUnauthorized: false },
    });
    for (let run = 0; run < 2; run++) {
      const d = spawnDaemon(cfg);
      try {
        const warn = await d.waitForLog((l) => String(l.msg).startsWith('mqtt.tls.rejectUnauthorized is false'));
        expect(warn.level).toBe(40);
        expect(warn.msg).toContain('the broker certificate is NOT verified');
        await d.waitForLog((l) => l.msg === 'mqtt connected');
      } finally {
        await d.kill('SIGKILL');
      }
    }
  });
});

function makePki(openssl: string): Pki {
  const pki = new TestPki(openssl);
  const ca = pki.selfSigned('ca', 'edge-inferd test CA');
  const otherCa = pki.selfSigned('other-ca', 'some other CA');
  const server = pki.issue(ca, 'server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const client = pki.issue(ca, 'client', 'kiosk-7', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: ca.crt,
    otherCa: otherCa.crt,
    serverCert: server.crt,
    serverKey: server.key,
    clientCert: client.crt,
    clientKey: client.key,
  };
}
