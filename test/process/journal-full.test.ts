import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoSamplesDir } from '../../src/paths.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { getJson, journalFileCounts } from '../helpers/journal-file.js';
import { freePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Row 2 of issue 13 on the real daemon: the broker is down, results go to the journal, then the
 * disk refuses writes. The daemon's file size limit (RLIMIT_FSIZE, lowered with prlimit: no mount
 * needed, so it runs in CI) makes every journal write past the first KB fail with EFBIG, as a full
 * disk fails with ENOSPC. Then the limit is lifted, the broker comes up, and the backlog drains.
 */

describe('row 2: a journal that cannot be written', () => {
  it('counts each message lost at once, says why on /readyz, /status and /metrics, and on recovery re-reads the file and drains', async () => {
    const httpPort = await freePort();
    const brokerPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const d = spawnDaemon({
      deviceId: 'journal-full',
      http: { port: httpPort },
      mqtt: { url: `mqtt://127.0.0.1:${brokerPort}`, reconnectMaxSec: 1 },
      model: { intraOpThreads: 1 },
      cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 20 } },
    });
    const journalPath = join(d.dir, 'journal.sqlite');
    const limit = (v: string) => execFileSync('prlimit', ['--pid', String(d.proc.pid), `--fsize=${v}:`]);
    let broker: Awaited<ReturnType<typeof startMosquitto>>;
    try {
      await d.waitForLog((l) => l.msg === 'running', 30_000);
      await waitUntil(
        async () => (await getJson(`${base}/status`)).body.journal.pending >= 10,
        15_000,
        'results journaled while the broker is down',
      );

      limit('1024');
      await d.waitForLog((l) => l.msg === 'message lost: the journal cannot be written and the broker is unreachable');
      const ready = await getJson(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body.checks.journal).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/^not accepting results: .*(disk I\/O error|disk is full)/),
      });
      expect(ready.body.checks.mqtt.ok).toBe(false);
      const st = (await getJson(`${base}/status`)).body;
      // Never more than the file holds.
      const held = journalFileCounts(journalPath);
      expect({ rows: st.journal.rows, pending: st.journal.pending, bytes: st.journal.bytes }).toEqual(held);
      expect(st.journal).toMatchObject({
        writable: false,
        lastWriteError: expect.stringMatching(/disk I\/O error|disk is full/),
        evicted: { pending: 0 },
      });
      expect(st.mqtt.outbox.lost).toBeGreaterThan(0);
      expect(st.mqtt.outbox.queued).toBe(held.pending);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^edge_inferd_journal_writable 0$/m);
      expect(Number(/^edge_inferd_messages_lost_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);

      limit('unlimited');
      await d.waitForLog((l) => l.msg === 'journal writable again; counts re-read from the file');
      await waitUntil(async () => (await getJson(`${base}/readyz`)).body.checks.journal.ok, 10_000, 'journal ok again on /readyz');

      broker = await startMosquitto({ port: brokerPort });
      expect(broker, 'mosquitto is needed').toBeDefined();
      await d.waitForLog((l) => l.msg === 'journal drained', 30_000);
      const after = (await getJson(`${base}/status`)).body.journal;
      expect(after.writable).toBe(true);
      await waitUntil(() => journalFileCounts(journalPath).pending <= 2, 10_000, 'the file empties of pending messages');
    } finally {
      await d.kill('SIGKILL');
      await broker?.stop();
    }
  });

  it('row 4: a journal that is not a database: moved aside, said loudly, counted in /status, a fresh one taken; the daemon runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'journal-corrupt-'));
    const journalPath = join(dir, 'journal.sqlite');
    writeFileSync(journalPath, Buffer.alloc(64 * 1024, 0x5a));
    const httpPort = await freePort();
    const d = spawnDaemon(
      {
        deviceId: 'journal-corrupt',
        http: { port: httpPort },
        mqtt: { url: 'embedded', embedded: { port: await freePort() } },
        model: { intraOpThreads: 1 },
        journal: { path: journalPath },
        cameras: { tray: { uri: `images://${demoSamplesDir}`, fps: 5 } },
      },
      { dir },
    );
    try {
      const said = await d.waitForLog((l) => l.level === 50 && typeof l.movedTo === 'string', 30_000);
      const aside = readdirSync(dir).filter((f) => f.startsWith('journal.sqlite.corrupt-'));
      expect(aside).toHaveLength(1);
      expect(said).toMatchObject({ component: 'journal', path: journalPath, movedTo: join(dir, aside[0]) });
      await d.waitForLog((l) => l.msg === 'running', 30_000);
      const st = (await getJson(`http://127.0.0.1:${httpPort}/status`)).body;
      expect(st.journal.corrupt).toMatchObject({
        movedAside: 1,
        lastMovedTo: join(dir, aside[0]),
        lastError: expect.stringMatching(/not a database/),
      });
      await waitUntil(() => journalFileCounts(journalPath).rows > 0, 15_000, 'results in the fresh journal');
    } finally {
      await d.kill('SIGKILL');
    }
  });
});
