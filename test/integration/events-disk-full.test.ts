import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SseClient } from '../helpers/sse.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fillDisk, tryMountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The kiosk screen while the disk is full: the journal cannot take new results, which the outbox
 * then publishes unjournaled. GET /events reads the journal, so without more it would go quiet
 * and the person at the kiosk would see nothing. Those results reach live streams without an
 * `id` (a reconnect resumes from the last journaled row); once there is room again, ids go on.
 * A real App on a real 8 MB tmpfs (root; skipped without it outside CI, fails under CI=true).
 */

describe('GET /events while the journal has no room', () => {
  let t: TestApp;
  let mountDir: string;
  let mounted = false;
  const fill = () => join(mountDir, 'fill');

  beforeAll(async () => {
    mountDir = mkdtempSync(join(tmpdir(), 'events-disk-full-'));
    mounted = tryMountTmpfs(mountDir, '8m');
    if (!mounted) return;
    t = await startTestApp({ samples: ['paper-1.png'], fps: 20, extra: { journal: { path: join(mountDir, 'journal.sqlite') } } });
  });
  afterAll(async () => {
    await t?.stop();
    if (mounted) unmountTmpfs(mountDir);
    rmSync(mountDir, { recursive: true, force: true });
  });

  it('results still reach the page, without ids; ids go on once there is room', async (ctx) => {
    if (!mounted) return ctx.skip();
    const outbox = () => t.app.status().mqtt?.outbox;
    const sse = await SseClient.open(t.app.httpPort ?? 0, '/events?type=result');
    try {
      await sse.until((c) => c.messages.some((e) => e.id !== undefined));
      fillDisk(fill());
      await waitUntil(() => outbox()?.journalAccepting === false, 15_000, 'a journal write to fail');
      const seenAtFailure = sse.messages.length;
      await sse.until((c) => c.messages.slice(seenAtFailure).filter((e) => e.id === undefined).length >= 3);

      rmSync(fill());
      await waitUntil(() => outbox()?.journalAccepting === true, 15_000, 'the journal to take messages again');
      const seenAtRecovery = sse.messages.length;
      await sse.until((c) => c.messages.slice(seenAtRecovery).some((e) => e.id !== undefined));

      // Every result the camera made is on the page, in order, none twice: payload seqs run on.
      const seqs = sse.messages.map((e) => (JSON.parse(e.data) as { seq: number }).seq);
      expect(seqs.slice(1).every((s, i) => s === seqs[i] + 1)).toBe(true);
      const ids = sse.messages.filter((e) => e.id !== undefined).map((e) => Number(e.id));
      expect(ids.slice(1).every((id, i) => id > ids[i])).toBe(true);
    } finally {
      sse.close();
    }
  });
});
