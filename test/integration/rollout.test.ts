import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type Subscriber, subscribe } from '../helpers/mqtt.js';
import { rawTar, sha256, tarFolder, writePackage } from '../helpers/rollout.js';
import { needTool } from '../helpers/tools.js';
import { TestPki } from '../helpers/test-pki.js';

/**
 * cmd/model/install and cmd/model/rollback on the real App (embedded broker, images camera, demo
 * model), packages served by a real HTTPS server on loopback with a certificate from a CA made
 * here (trusted through model.rollout.caFile), another server whose certificate nobody trusts, and
 * file:// URLs. The packages are "dominant channel" classifiers with their own labels, so whose
 * result a message is, and what its label must be, is known.
 */

const SAMPLE = 'plastic-1.png';
const MAX = 200_000;

let t: TestApp;
let sub: Subscriber;
let pub: MqttClient;
let trusted: https.Server;
let untrusted: https.Server;
let base: string;
let work: string;
const files = new Map<string, Buffer>();
/** The Range requests the servers answered ("<path> bytes=N-"). */
const ranges: string[] = [];
let seq = 0;

/** The sample's dominant channel (0 red, 1 green, 2 blue): the class every package here gives it. */
let sampleClass: number;

function certs(openssl: string) {
  const pki = new TestPki(openssl, 'rollout-pki-');
  const ca = pki.selfSigned('ca', 'model store test CA');
  const server = pki.issue(ca, 'server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const self = pki.selfSigned('self', '127.0.0.1', 'IP:127.0.0.1');
  return {
    ca: ca.crt,
    cert: readFileSync(server.crt),
    key: readFileSync(server.key),
    selfCert: readFileSync(self.crt),
    selfKey: readFileSync(self.key),
  };
}

function serve(server: https.Server) {
  server.on('request', (req, res) => {
    const path = req.url ?? '';
    if (path === '/endless.tgz') {
      // No Content-Length: the bound must hold while bytes arrive.
      res.writeHead(200, { 'content-type': 'application/gzip' });
      const chunk = Buffer.alloc(16_384, 1);
      const write = () => {
        while (res.write(chunk));
        res.once('drain', write);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      return write();
    }
    if (path === '/announced.tgz') return res.writeHead(200, { 'content-length': String(MAX * 2) }).end();
    if (path === '/downgrade.tgz') return res.writeHead(302, { location: 'http://127.0.0.1:9/v2.tgz' }).end();
    const body = files.get(path);
    if (!body) return res.writeHead(404).end();
    // Resumes as a file server does: `Range: bytes=N-` gets the rest (206).
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) ranges.push(`${path} ${req.headers.range}`);
    const from = range ? Number(range[1]) : 0;
    if (from >= body.length && range) return res.writeHead(416).end();
    const rest = body.subarray(from);
    const partial = range ? { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` } : {};
    res.writeHead(range ? 206 : 200, { 'content-length': rest.length, ...partial }).end(rest);
  });
}

async function listen(server: https.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Publishes an install/rollback and resolves with its response. */
async function command(name: 'install' | 'rollback', args: Record<string, unknown> = {}) {
  const id = `r${++seq}`;
  await pub.publishAsync(`${base}/cmd/model/${name}`, JSON.stringify({ id, ...args }), { qos: 1 });
  const m = await sub.waitFor((m) => m.topic === `${base}/cmd/model/${name}/response` && m.json?.requestId === id, 30_000);
  return m.json;
}

/** Serves an archive and returns the install arguments for it. */
function offer(
  path: string,
  archive: Buffer,
  name: string,
  version: string,
  origin = `https://127.0.0.1:${(trusted.address() as AddressInfo).port}`,
) {
  files.set(path, archive);
  return { url: `${origin}${path}`, sha256: sha256(archive), name, version };
}

const labels = (v: string): [string, string, string] => [`${v}-red`, `${v}-green`, `${v}-blue`];

/** The next result computed by model `version`. */
function nextResultOf(version: string) {
  const from = sub.messages.length;
  return sub.waitFor(
    (m) => sub.messages.indexOf(m) >= from && m.topic.endsWith('/tray/result') && m.json.model.version === version,
    20_000,
  );
}

async function runningVersion(): Promise<string> {
  const st = (await (await fetch(`${t.base}/status`)).json()) as { model: { version: string } };
  return st.model.version;
}

beforeAll(async () => {
  const openssl = needTool('openssl', 'openssl');
  if (!openssl) return;
  const pki = certs(openssl);
  const { data, info } = await sharp(join(demoSamplesDir, SAMPLE)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const sums = [0, 0, 0];
  for (let i = 0; i < data.length; i += info.channels) for (let c = 0; c < 3; c++) sums[c] += data[i + c];
  sampleClass = sums.indexOf(Math.max(...sums));
  work = mkdtempSync(join(tmpdir(), 'rollout-pkgs-'));
  trusted = https.createServer({ cert: pki.cert, key: pki.key });
  untrusted = https.createServer({ cert: pki.selfCert, key: pki.selfKey });
  serve(trusted);
  serve(untrusted);
  await listen(trusted);
  await listen(untrusted);
  t = await startTestApp({
    samples: [SAMPLE],
    fps: 10,
    extra: { deviceId: 'kiosk-r', model: { keep: 2, rollout: { maxBytes: MAX, caFile: pki.ca, fileRoot: work } } },
  });
  const url = `mqtt://127.0.0.1:${t.app.config.mqtt.embedded.port}`;
  base = `edge-inferd/kiosk-r`;
  sub = await subscribe(url, [`${base}/cmd/+/+/response`, `${base}/model/state`, `${base}/+/result`]);
  pub = await mqtt.connectAsync(url);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await sub?.close();
  await pub?.endAsync();
  trusted?.close();
  untrusted?.close();
});

describe('remote model rollout', () => {
  it('installs a package over verified HTTPS, self-checks it and switches: results carry its labels and version', async () => {
    if (!t) return;
    const before = await nextResultOf(await runningVersion());
    expect(before.json.label).not.toMatch(/^v2-/);
    const dir = await writePackage(join(work, 'v2'), {
      name: 'tray-colours',
      version: '2.0.0',
      labels: labels('v2'),
      selftest: [
        { label: 'v2-red', colour: 'red' },
        { label: 'v2-blue', colour: 'blue' },
      ],
    });
    const args = offer('/v2.tgz', tarFolder(dir, join(work, 'v2.tgz')), 'tray-colours', '2.0.0');
    const res = await command('install', args);
    expect(res.ok, JSON.stringify(res)).toBe(true);
    expect(res.result).toMatchObject({
      phase: 'active',
      current: { name: 'tray-colours', version: '2.0.0' },
      selftest: { mode: 'images', checked: 2 },
    });
    const after = await nextResultOf('2.0.0');
    expect(after.json.label).toBe(labels('v2')[sampleClass]);
    // Progress and outcome on the retained model/state, and in /status.
    await sub.waitFor(
      (m) => m.topic === `${base}/model/state` && m.json.phase === 'downloading' && m.json.request.requestId === res.requestId,
    );
    const state = await sub.waitFor(
      (m) => m.topic === `${base}/model/state` && m.json.phase === 'active' && m.json.request.requestId === res.requestId,
    );
    expect(state.json.bytes).toBe(files.get('/v2.tgz')!.length);
    expect(state.json.packages.map((p: { version: string; role: string }) => [p.version, p.role])).toEqual([['2.0.0', 'current']]);
    const st = (await (await fetch(`${t.base}/status`)).json()) as { rollout: { phase: string }; model: { dir: string } };
    expect(st.rollout.phase).toBe('active');
    expect(st.model.dir).toBe(join(t.dir, 'models', 'packages', 'tray-colours-2.0.0-' + args.sha256.slice(0, 12)));
  });

  it.each([
    [
      'a wrong sha256',
      async () => ({
        ...offer(
          '/v9.tgz',
          tarFolder(await writePackage(join(work, 'v9'), { name: 'm', version: '9.9.9', labels: labels('v9') }), join(work, 'v9.tgz')),
          'm',
          '9.9.9',
        ),
        sha256: 'ab'.repeat(32),
      }),
      /MODEL_SHA256: the sha256 of the downloaded archive \(\d+ bytes\) is not the command's (ab){32}; nothing was installed/,
    ],
    [
      'a manifest with an unknown task',
      async () =>
        offer(
          '/task.tgz',
          tarFolder(
            await writePackage(join(work, 'task'), {
              name: 'm',
              version: '0.0.1',
              labels: labels('x'),
              manifest: (s) => s.replace('task: classify', 'task: dance'),
            }),
            join(work, 'task.tgz'),
          ),
          'm',
          '0.0.1',
        ),
      /MODEL_MANIFEST: .*manifest\.yaml: task: /,
    ],
    [
      'a model file that is not the one the manifest names',
      async () =>
        offer(
          '/sha.tgz',
          tarFolder(
            await writePackage(join(work, 'sha'), {
              name: 'm',
              version: '0.0.1',
              labels: labels('x'),
              manifest: (s) => s.replace(/sha256: \w+/, `sha256: ${'f'.repeat(64)}`),
            }),
            join(work, 'sha.tgz'),
          ),
          'm',
          '0.0.1',
        ),
      /MODEL_SHA256: .*does not match the manifest/,
    ],
    [
      'a manifest naming another model than the command',
      async () =>
        offer(
          '/other.tgz',
          tarFolder(await writePackage(join(work, 'other'), { name: 'm', version: '0.0.1', labels: labels('x') }), join(work, 'other.tgz')),
          'm',
          '0.0.2',
        ),
      /MODEL_MANIFEST: the manifest names m 0\.0\.1, the command m 0\.0\.2/,
    ],
    [
      'a path that leaves the package folder',
      async () =>
        offer(
          '/evil.tgz',
          rawTar([
            { name: 'manifest.yaml', body: Buffer.from('x') },
            { name: '../../../evil.txt', body: Buffer.from('owned') },
          ]),
          'm',
          '0.0.1',
        ),
      /MODEL_ARCHIVE: entry "\.\.\/\.\.\/\.\.\/evil\.txt": "\.\." is not accepted/,
    ],
    [
      'a symlink',
      async () => offer('/link.tgz', rawTar([{ name: 'model.onnx', type: '2', link: '/etc/passwd' }]), 'm', '0.0.1'),
      /MODEL_ARCHIVE: entry "model\.onnx": a symbolic link/,
    ],
    [
      'an archive announced over model.rollout.maxBytes',
      async () => ({
        url: `https://127.0.0.1:${(trusted.address() as AddressInfo).port}/announced.tgz`,
        sha256: 'ab'.repeat(32),
        name: 'm',
        version: '0.0.1',
      }),
      /DOWNLOAD_TOO_LARGE: the package is 400000 bytes, over model\.rollout\.maxBytes \(200000\)/,
    ],
    [
      'an archive that grows over model.rollout.maxBytes',
      async () => ({
        url: `https://127.0.0.1:${(trusted.address() as AddressInfo).port}/endless.tgz`,
        sha256: 'ab'.repeat(32),
        name: 'm',
        version: '0.0.1',
      }),
      /DOWNLOAD_TOO_LARGE: the package grew over model\.rollout\.maxBytes \(200000\)/,
    ],
    [
      'a redirect from https to http',
      async () => ({
        url: `https://127.0.0.1:${(trusted.address() as AddressInfo).port}/downgrade.tgz`,
        sha256: 'ab'.repeat(32),
        name: 'm',
        version: '0.0.1',
      }),
      /DOWNLOAD_URL: a redirect from https to http: is refused/,
    ],
    [
      'a self-check that fails (labels swapped)',
      async () =>
        offer(
          '/swapped.tgz',
          tarFolder(
            await writePackage(join(work, 'swapped'), {
              name: 'm',
              version: '0.0.1',
              labels: ['green', 'red', 'blue'],
              selftest: [{ label: 'red', colour: 'red' }],
            }),
            join(work, 'swapped.tgz'),
          ),
          'm',
          '0.0.1',
        ),
      /MODEL_SELFTEST: self-check failed: selftest\/red\/red\.png: expected "red", the model answered "green"/,
    ],
    [
      'an HTTPS server whose certificate is not trusted',
      async () =>
        offer(
          '/tls.tgz',
          tarFolder(await writePackage(join(work, 'tls'), { name: 'm', version: '0.0.1', labels: labels('x') }), join(work, 'tls.tgz')),
          'm',
          '0.0.1',
          `https://127.0.0.1:${(untrusted.address() as AddressInfo).port}`,
        ),
      /DOWNLOAD_TLS: the server's certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
    ],
  ])('refuses %s, keeps the running model and says why', async (_what, make, why) => {
    if (!t) return;
    const res = await command('install', await make());
    expect(res.ok).toBe(false);
    expect(res.error.code).toBe('MODEL_REJECTED');
    expect(res.error.message).toMatch(why);
    const state = await sub.waitFor(
      (m) => m.topic === `${base}/model/state` && m.json.request?.requestId === res.requestId && m.json.phase === 'failed',
    );
    expect(`${state.json.error.code}: ${state.json.error.message}`).toMatch(why);
    expect(state.json.current.version).toBe('2.0.0');
    await nextResultOf('2.0.0');
    expect(existsSync(join(t.dir, '..', 'evil.txt'))).toBe(false);
    expect(readdirSync(join(t.dir, 'models', 'packages'))).toEqual([expect.stringMatching(/^tray-colours-2\.0\.0-/)]);
    // A refused package leaves nothing behind to resume.
    expect(readdirSync(join(t.dir, 'models', 'staging'))).toEqual([]);
  });

  it('refuses a download resumed after a restart whose bytes on disk differ (sha256), and never activates it', async () => {
    if (!t) return;
    const archive = tarFolder(
      await writePackage(join(work, 'resume'), { name: 'm', version: '0.0.3', labels: labels('r') }),
      join(work, 'resume.tgz'),
    );
    const args = offer('/resume.tgz', archive, 'm', '0.0.3');
    // What an interrupted download leaves for a resume, but with one byte changed on disk since.
    const staging = join(t.dir, 'models', 'staging', args.sha256);
    mkdirSync(staging, { recursive: true });
    const part = Buffer.from(archive.subarray(0, Math.floor(archive.length / 2)));
    part[100] ^= 0xff;
    writeFileSync(join(staging, 'archive.part'), part);
    const res = await command('install', args);
    expect(ranges).toContain(`/resume.tgz bytes=${part.length}-`); // it did resume
    expect(res.ok).toBe(false);
    expect(res.error).toMatchObject({ code: 'MODEL_REJECTED' });
    expect(res.error.message).toMatch(
      new RegExp(`MODEL_SHA256: the sha256 of the downloaded archive \\(${archive.length} bytes\\) is not the command's ${args.sha256}`),
    );
    expect(await runningVersion()).toBe('2.0.0');
    await nextResultOf('2.0.0');
    expect(readdirSync(join(t.dir, 'models', 'packages'))).toEqual([expect.stringMatching(/^tray-colours-2\.0\.0-/)]);
    // The damaged part file is gone: the next try downloads afresh.
    expect(readdirSync(join(t.dir, 'models', 'staging'))).toEqual([]);
  });

  it('keeps model.keep packages, rolls back to the previous one, and answers one model command at a time', async () => {
    if (!t) return;
    // v3 from a file:// URL, a plain tar, without selftest/ (3 frames must infer).
    const v3 = join(work, 'v3.tar');
    tarFolder(await writePackage(join(work, 'v3'), { name: 'tray-colours', version: '3.0.0', labels: labels('v3') }), v3, false);
    const r3 = await command('install', { url: `file://${v3}`, sha256: sha256(readFileSync(v3)), name: 'tray-colours', version: '3.0.0' });
    expect(r3.result).toMatchObject({ phase: 'active', selftest: { mode: 'frames', checked: 3 } });
    expect((await nextResultOf('3.0.0')).json.label).toBe(labels('v3')[sampleClass]);
    const v4 = join(work, 'v4.tgz');
    tarFolder(await writePackage(join(work, 'v4'), { name: 'tray-colours', version: '4.0.0', labels: labels('v4') }), v4);
    // A second command while one runs is refused, not queued.
    const id = 'busy-probe';
    const installing = command('install', {
      url: `file://${v4}`,
      sha256: sha256(readFileSync(v4)),
      name: 'tray-colours',
      version: '4.0.0',
    });
    await sub.waitFor((m) => m.topic === `${base}/model/state` && m.json.request?.version === '4.0.0');
    await pub.publishAsync(`${base}/cmd/model/rollback`, JSON.stringify({ id }), { qos: 1 });
    const busy = (await sub.waitFor((m) => m.json?.requestId === id)).json;
    expect(busy.error?.code ?? 'none').toBe('BUSY');
    expect((await installing).result.phase).toBe('active');
    expect((await nextResultOf('4.0.0')).json.label).toBe(labels('v4')[sampleClass]);
    // keep: 2 -> v4 (current) and v3 (previous); v2 was removed.
    expect(readdirSync(join(t.dir, 'models', 'packages')).sort()).toEqual([
      expect.stringMatching(/^tray-colours-3\.0\.0-/),
      expect.stringMatching(/^tray-colours-4\.0\.0-/),
    ]);
    const back = await command('rollback');
    expect(back.result).toMatchObject({ phase: 'rolledback', current: { version: '3.0.0' } });
    expect((await nextResultOf('3.0.0')).json.label).toBe(labels('v3')[sampleClass]);
    const state = JSON.parse(readFileSync(join(t.dir, 'models', 'state.json'), 'utf8')) as { current: string; previous: string[] };
    expect(state.current).toMatch(/^tray-colours-3\.0\.0-/);
    expect(state.previous).toEqual([expect.stringMatching(/^tray-colours-4\.0\.0-/)]);
  });

  it('activate: false verifies and keeps a package without switching; activating it later downloads nothing', async () => {
    if (!t) return;
    const v6 = tarFolder(
      await writePackage(join(work, 'v6'), {
        name: 'tray-colours',
        version: '6.0.0',
        labels: labels('v6'),
        selftest: [{ label: 'v6-green', colour: 'green' }],
      }),
      join(work, 'v6.tgz'),
    );
    const args = offer('/v6.tgz', v6, 'tray-colours', '6.0.0');
    const staged = await command('install', { ...args, activate: false });
    expect(staged.result).toMatchObject({
      phase: 'staged',
      current: { version: '3.0.0' },
      selftest: { mode: 'images', checked: 1 },
      bytes: v6.length,
    });
    expect(staged.result.packages.map((p: { version: string; role: string }) => [p.version, p.role])).toEqual([
      ['3.0.0', 'current'],
      ['4.0.0', 'previous'],
      ['6.0.0', 'staged'],
    ]);
    await nextResultOf('3.0.0');
    files.delete('/v6.tgz');
    const active = await command('install', args);
    expect(active.result).toMatchObject({ phase: 'active', current: { version: '6.0.0' } });
    expect(active.result.bytes).toBeUndefined();
    expect((await nextResultOf('6.0.0')).json.label).toBe(labels('v6')[sampleClass]);
  });
});
