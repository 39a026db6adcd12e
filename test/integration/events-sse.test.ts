import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventHub } from '../../src/health/events.js';
import { eventsRoute } from '../../src/health/routes/events.js';
import { Journal, type NewMessage } from '../../src/journal/journal.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLog } from '../helpers/log.js';
import { writeV1Journal } from '../helpers/journal-v1.js';
import { SseClient } from '../helpers/sse.js';
import { waitUntil } from '../helpers/wait.js';
import type { HealthServer } from '../../src/health/server.js';
import { loopbackServer } from '../helpers/health-server.js';

/** GET /events on a real HTTP server over a real SQLite journal: live, replay, reset, filters, heartbeats, slow clients. */

const HEARTBEAT_MS = 15_000;
const CAMERAS = ['tray', 'door'];

interface Rig {
  journal: Journal;
  hub: EventHub;
  server: HealthServer;
  clock: ManualClock;
  port: number;
  path: string;
  lines: ReturnType<typeof captureLog>['lines'];
}

const cleanup: (() => Promise<void> | void)[] = [];
const clients: SseClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function rig(
  over: { path?: string; maxRows?: number; maxClients?: number; bufferBytes?: number; token?: string; start?: boolean } = {},
): Promise<Rig> {
  const { log, lines } = captureLog();
  const clock = new ManualClock();
  const path = over.path ?? join(mkdtempSync(join(tmpdir(), 'sse-')), 'journal.sqlite');
  const journal = new Journal({
    path,
    maxRows: over.maxRows ?? 100_000,
    maxBytes: 64 << 20,
    retentionMs: 3_600_000,
    synchronous: 'normal',
    log,
    clock,
  });
  const hub = new EventHub({
    feed: journal,
    clock,
    log,
    maxClients: over.maxClients ?? 8,
    heartbeatMs: HEARTBEAT_MS,
    bufferBytes: over.bufferBytes ?? 64 * 1024,
  });
  const server = loopbackServer({
    log,
    token: over.token,
  });
  server.addRoute(eventsRoute(hub, () => CAMERAS));
  await server.start();
  if (over.start !== false) {
    journal.start();
    hub.start();
  }
  cleanup.push(
    () => server.stop(),
    () => journal.stop(),
    () => hub.stop(),
  );
  return { journal, hub, server, clock, port: server.port, path, lines };
}

let n = 0;
const result = (camera: string, extra = ''): NewMessage => {
  n++;
  return {
    topic: `edge-inferd/dev/${camera}/result`,
    payload: JSON.stringify({ camera, seq: n, label: 'glass', score: 0.9, pad: extra }),
    qos: 1,
    retain: false,
    camera,
    kind: 'result',
    payloadSeq: n,
  };
};
const event = (camera: string, type: 'change' | 'assessment'): NewMessage => {
  n++;
  return {
    topic: `edge-inferd/dev/${camera}/event`,
    payload: JSON.stringify({ camera, seq: n, type }),
    qos: 1,
    retain: false,
    camera,
    kind: 'event',
    payloadSeq: n,
  };
};
const stats: NewMessage = { topic: 'edge-inferd/dev/stats', payload: '{"uptime":1}', qos: 0, retain: false, camera: '', kind: 'stats' };

async function open(r: Rig, query = '', headers: Record<string, string> = {}): Promise<SseClient> {
  const c = await SseClient.open(r.port, `/events${query}`, headers);
  clients.push(c);
  return c;
}

describe('GET /events', () => {
  it('streams results and events as they are journaled, each id its journal position, stats left out', async () => {
    const r = await rig();
    const c = await open(r);
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const { rows } = r.journal.append([result('tray'), stats, event('tray', 'change'), event('door', 'assessment')]);
    await c.until((x) => x.messages.length === 3);
    expect(c.messages).toEqual([
      { id: String(rows[0].seq), event: 'result', data: rows[0].payload },
      { id: String(rows[2].seq), event: 'event', data: rows[2].payload },
      { id: String(rows[3].seq), event: 'assessment', data: rows[3].payload },
    ]);
  });

  it('filters by camera and type (repeated or comma-separated)', async () => {
    const r = await rig();
    const a = await open(r, '?camera=door&type=assessment');
    const b = await open(r, '?type=result,event');
    const d = await open(r, '?camera=tray&camera=door&type=result');
    const { rows } = r.journal.append([
      result('tray'),
      event('door', 'assessment'),
      event('tray', 'assessment'),
      event('door', 'change'),
      result('door'),
    ]);
    await b.until((x) => x.messages.length === 3);
    await d.until((x) => x.messages.length === 2);
    await a.until((x) => x.messages.length === 1);
    expect(a.messages.map((e) => e.id)).toEqual([String(rows[1].seq)]);
    expect(b.messages.map((e) => e.id)).toEqual([rows[0], rows[3], rows[4]].map((x) => String(x.seq)));
    expect(d.messages.map((e) => e.id)).toEqual([rows[0], rows[4]].map((x) => String(x.seq)));
  });

  it('answers 400 naming the valid cameras and types, and the unknown parameter', async () => {
    const r = await rig();
    const bad = await open(r, '?camera=tray,kitchen');
    expect(bad.status).toBe(400);
    await bad.closed();
    const body = JSON.parse(bad.body);
    expect(body.code).toBe('UNKNOWN_CAMERA');
    expect(body.error).toBe('camera: no camera "kitchen" (valid: tray, door)');
    const type = await open(r, '?type=results');
    await type.closed();
    expect(type.status).toBe(400);
    expect(JSON.parse(type.body)).toMatchObject({
      code: 'UNKNOWN_TYPE',
      error: 'type: no type "results" (valid: result, event, assessment)',
    });
    const param = await open(r, '?cam=tray');
    await param.closed();
    expect(JSON.parse(param.body).error).toBe('cam: unknown parameter (valid: camera, type, lastEventId, token)');
  });

  it('replays from Last-Event-ID what the client missed, in order, nothing twice, then goes on live', async () => {
    const r = await rig();
    const first = await open(r, '?type=result');
    r.journal.append([result('tray'), result('door'), event('tray', 'change')]);
    await first.until((x) => x.messages.length === 2);
    const last = first.messages[1].id!;
    first.close();
    // Missed while away: more than a page of rows, other types among them.
    const missed: NewMessage[] = [];
    for (let i = 0; i < 150; i++) missed.push(i % 3 ? result(i % 2 ? 'tray' : 'door') : event('tray', 'change'));
    const { rows } = r.journal.append(missed);
    const again = await open(r, '?type=result', { 'Last-Event-ID': last });
    const { rows: after } = r.journal.append([result('door')]);
    const want = [...rows.filter((x) => x.kind === 'result'), ...after].map((x) => String(x.seq));
    await again.until((x) => x.messages.length === want.length);
    expect(again.messages.map((e) => e.id)).toEqual(want);
    expect(again.messages.every((e) => e.event === 'result')).toBe(true);
  });

  it('lastEventId in the query does what the header does (a page that kept its position across a reload)', async () => {
    const r = await rig();
    const { rows } = r.journal.append([result('tray'), result('tray'), result('tray')]);
    const c = await open(r, `?lastEventId=${rows[0].seq}`);
    await c.until((x) => x.messages.length === 2);
    expect(c.messages.map((e) => Number(e.id))).toEqual([rows[1].seq, rows[2].seq]);
  });

  it('gives a garbage or unknown Last-Event-ID a reset event, then goes on from now', async () => {
    const r = await rig();
    r.journal.append([result('tray'), result('tray')]);
    const now = r.journal.lastSeq;
    const garbage = await open(r, '', { 'Last-Event-ID': 'x'.repeat(200) });
    const beyond = await open(r, '', { 'Last-Event-ID': String(now + 1000) });
    await garbage.until((x) => x.messages.length === 1);
    await beyond.until((x) => x.messages.length === 1);
    expect(garbage.messages[0]).toEqual({
      id: String(now),
      event: 'reset',
      data: JSON.stringify({ reason: 'invalid', lastEventId: `${'x'.repeat(40)}...`, from: now }),
    });
    expect(JSON.parse(beyond.messages[0].data)).toEqual({ reason: 'unknown', lastEventId: String(now + 1000), from: now });
    const { rows } = r.journal.append([result('door')]);
    await garbage.until((x) => x.messages.length === 2);
    expect(garbage.messages[1].id).toBe(String(rows[0].seq));
    expect(r.hub.stats().resets).toBe(2);
  });

  it('resets a client whose position is past what the journal still holds, also after a restart', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sse-')), 'journal.sqlite');
    const r = await rig({ path, maxRows: 100 });
    const { rows } = r.journal.append([result('tray'), result('tray')]);
    // Sent rows are evicted first: mark these so the bound takes them.
    r.journal.markSent(rows.map((x) => x.seq));
    const more: NewMessage[] = [];
    for (let i = 0; i < 120; i++) more.push(result('tray'));
    r.journal.append(more);
    expect(r.journal.lostUpTo).toBeGreaterThan(rows[0].seq);
    const c = await open(r, '', { 'Last-Event-ID': String(rows[0].seq) });
    await c.until((x) => x.messages.length === 1);
    expect(JSON.parse(c.messages[0].data)).toMatchObject({ reason: 'expired', from: r.journal.lastSeq });
    // The record of what was removed survives the daemon.
    const lost = r.journal.lostUpTo;
    c.close();
    r.hub.stop();
    r.journal.stop();
    const again = new Journal({
      path,
      maxRows: 100,
      maxBytes: 64 << 20,
      retentionMs: 3_600_000,
      synchronous: 'normal',
      log: captureLog().log,
    });
    again.start();
    cleanup.push(() => again.stop());
    expect(again.lostUpTo).toBe(lost);
  });

  it('counts every position of a journal written before journal_meta existed as possibly incomplete (one reset, then resumable)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sse-')), 'journal.sqlite');
    const old = (i: number) => ({
      camera: 'tray',
      kind: 'result',
      topic: 'edge-inferd/dev/tray/result',
      payload: JSON.stringify({ seq: i }),
      state: 'sent' as const,
      createdMs: Date.UTC(2026, 0, 1) + i,
      qos: 1 as const,
    });
    const seqs = writeV1Journal(path, [old(1), old(2), old(3)]);
    const r = await rig({ path });
    expect(r.journal.lostUpTo).toBe(seqs[2]);
    const c = await open(r, '', { 'Last-Event-ID': String(seqs[1]) });
    await c.until((x) => x.messages.length === 1);
    expect(JSON.parse(c.messages[0].data)).toMatchObject({ reason: 'expired', from: seqs[2] });
    // From the newest position on, nothing is missing any more.
    const { rows } = r.journal.append([result('tray')]);
    const d = await open(r, '', { 'Last-Event-ID': String(seqs[2]) });
    await d.until((x) => x.messages.length === 1);
    expect(d.messages[0].id).toBe(String(rows[0].seq));
  });

  it('holds streams opened before the journal is open and begins them when it is', async () => {
    const r = await rig({ start: false });
    const c = await open(r, '?lastEventId=0');
    expect(c.status).toBe(200);
    r.journal.start();
    r.journal.append([result('tray')]);
    r.hub.start();
    await c.until((x) => x.messages.length === 1);
    expect(c.messages[0].event).toBe('result');
  });

  it('sends a heartbeat on the injected clock carrying the position reached', async () => {
    const r = await rig();
    const c = await open(r, '?camera=door');
    r.journal.append([result('tray'), result('tray')]);
    await r.clock.advance(HEARTBEAT_MS);
    await c.until((x) => x.events.length === 1);
    expect(c.events[0].event).toBe('heartbeat');
    expect(c.events[0].id).toBe(String(r.journal.lastSeq));
    expect(JSON.parse(c.events[0].data)).toEqual({ time: new Date(r.clock.now()).toISOString() });
  });

  it('wants local copies while a loopback client listens, and for 10 s after the last one left', async () => {
    const r = await rig();
    expect(r.hub.wantsLocal()).toBe(false);
    const c = await open(r);
    await waitUntil(() => r.hub.stats().clients === 1);
    expect(r.hub.wantsLocal()).toBe(true);
    c.close();
    await waitUntil(() => r.hub.stats().clients === 0);
    // A kiosk page's EventSource that lost its stream comes back within the grace and finds them.
    await r.clock.advance(9_999);
    expect(r.hub.wantsLocal()).toBe(true);
    await r.clock.advance(1);
    expect(r.hub.wantsLocal()).toBe(false);
  });

  it('refuses streams past maxClients with 503', async () => {
    const r = await rig({ maxClients: 2 });
    await open(r);
    await open(r);
    const third = await open(r);
    await third.closed();
    expect(third.status).toBe(503);
    expect(JSON.parse(third.body).code).toBe('BUSY');
    expect(r.hub.stats()).toMatchObject({ clients: 2, refused: 1 });
  });

  it('needs the token when one is set: as a bearer header or ?token=', async () => {
    const token = 'sixteen-chars-token-x';
    const r = await rig({ token });
    const none = await open(r);
    await none.closed();
    expect(none.status).toBe(401);
    const wrong = await open(r, '?token=nope-nope-nope-nope');
    await wrong.closed();
    expect(wrong.status).toBe(401);
    expect((await open(r, `?token=${token}`)).status).toBe(200);
    expect((await open(r, '', { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect(JSON.stringify(r.lines)).not.toContain(token);
  });

  it('paces a slow client from the journal and drops one that takes nothing, never holding more than its bound', async () => {
    const bufferBytes = 64 * 1024;
    const r = await rig({ bufferBytes });
    const healthy = await open(r, '?type=result');
    // A client that sends its request and never reads a byte.
    const stalled = connect(r.port, '127.0.0.1');
    stalled.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${r.port}\r\n\r\n`);
    stalled.pause();
    cleanup.push(() => void stalled.destroy());
    // The stalled client's request is parsed when its stream is registered: wait for the count, an event we cannot be told of.
    await waitUntil(() => r.hub.stats().clients === 2);
    const pad = 'x'.repeat(16 * 1024);
    const seqs: number[] = [];
    // ~32 MB: more than the kernel's socket buffers hold, so the stalled client's own buffer is what fills.
    for (let batch = 0; batch < 20; batch++) {
      const msgs: NewMessage[] = [];
      for (let i = 0; i < 100; i++) msgs.push(result('tray', pad));
      seqs.push(...r.journal.append(msgs).rows.map((x) => x.seq));
      expect(r.hub.bufferedBytes()).toBeLessThan(bufferBytes + 20 * 1024);
      await new Promise((res) => setImmediate(res));
    }
    await healthy.until((x) => x.messages.length === seqs.length);
    expect(healthy.messages.map((e) => Number(e.id))).toEqual(seqs);
    expect(r.hub.stats().dropped).toBe(0);
    const gone = new Promise((res) => stalled.once('close', res));
    await r.clock.advance(HEARTBEAT_MS);
    expect(r.hub.stats()).toMatchObject({ dropped: 1, clients: 1 });
    stalled.resume();
    await gone;
    expect(r.lines.some((l) => l.msg?.includes('dropped a client'))).toBe(true);
  }, 60_000);
});

describe('CORS on the HTTP endpoint', () => {
  async function server(corsOrigins?: string[]) {
    const { log } = captureLog();
    const s = loopbackServer({
      log,
      corsOrigins,
    });
    await s.start();
    cleanup.push(() => s.stop());
    return `http://127.0.0.1:${s.port}`;
  }

  it('sends no CORS header at all unless http.cors.origins lists the origin', async () => {
    const none = await server();
    const r = await fetch(`${none}/healthz`, { headers: { Origin: 'http://kiosk.example' } });
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${none}/healthz`, { method: 'OPTIONS', headers: { Origin: 'http://kiosk.example' } });
    expect(pre.status).toBe(405);
    const listed = await server(['http://kiosk.example']);
    const other = await fetch(`${listed}/healthz`, { headers: { Origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const ok = await fetch(`${listed}/healthz`, { headers: { Origin: 'http://kiosk.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://kiosk.example');
    const preflight = await fetch(`${listed}/healthz`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://kiosk.example', 'Access-Control-Request-Headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
  });
});
