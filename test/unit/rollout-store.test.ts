import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { CommandHandler } from '../../src/publish/commands.js';
import { Topics } from '../../src/publish/topics.js';
import { PackageStore } from '../../src/rollout/store.js';
import { openFilesUnder } from '../helpers/open-files.js';

/** The package store's bookkeeping (which model runs after a restart, what is kept) and the command topic check, on real files. */

function logs() {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    log: createLogger({ level: 'debug', format: 'json', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } }),
  };
}

function fakePackage(store: PackageStore, name: string): string {
  const dir = join(store.root, 'unpacked-' + name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.yaml'), `name: ${name}\nversion: "1"\nsha256: ${'a'.repeat(64)}\n`);
  return dir;
}

describe('PackageStore', () => {
  it('resolves model.path to the installed package across a restart, until the config moves on', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const { log, lines } = logs();
    const s1 = new PackageStore({ dir: root, keep: 2, log });
    expect(s1.effectivePath('/etc/model')).toBe('/etc/model');
    const dir = await s1.commit(fakePackage(s1, 'a'), 'a');
    await s1.activated('a', '/etc/model');
    // A new process reads state.json: the installed package wins over the same model.path...
    expect(new PackageStore({ dir: root, keep: 2, log }).effectivePath('/etc/model')).toBe(dir);
    // ...and an operator's new model.path wins over the package (which stays as a rollback target).
    const s2 = new PackageStore({ dir: root, keep: 2, log });
    expect(s2.effectivePath('/etc/other-model')).toBe('/etc/other-model');
    expect(lines.some((l) => String(l.msg).includes('the config wins'))).toBe(true);
    expect(s2.state).toMatchObject({ current: null, previous: ['a'] });
    expect(s2.rollbackTarget()).toBe('a');
    expect(new PackageStore({ dir: root, keep: 2, log }).effectivePath('/etc/model')).toBe('/etc/model');
  });

  it('keeps model.keep packages (the current one counted), and a rollback swaps current and previous', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const s = new PackageStore({ dir: root, keep: 2, log: logs().log });
    for (const n of ['a', 'b', 'c']) {
      await s.commit(fakePackage(s, n), n);
      await s.activated(n, '/m');
    }
    expect(readdirSync(s.packagesDir).sort()).toEqual(['b', 'c']);
    expect(s.state).toMatchObject({ current: 'c', previous: ['b'] });
    expect(s.rollbackTarget()).toBe('b');
    await s.rolledBack('b', '/m');
    expect(s.state).toMatchObject({ current: 'b', previous: ['c'] });
    expect(JSON.parse(readFileSync(join(root, 'state.json'), 'utf8'))).toMatchObject({ current: 'b', previous: ['c'], basePath: '/m' });
    expect((await s.list()).map((p) => [p.dir, p.role])).toEqual([
      ['b', 'current'],
      ['c', 'previous'],
    ]);
  });

  it('with model.keep: 3 after installing a, b and c, rolls back to b (the one before), not a', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const s = new PackageStore({ dir: root, keep: 3, log: logs().log });
    for (const n of ['a', 'b', 'c']) {
      await s.commit(fakePackage(s, n), n);
      await s.activated(n, '/m');
    }
    expect(readdirSync(s.packagesDir).sort()).toEqual(['a', 'b', 'c']);
    expect(s.state).toMatchObject({ current: 'c', previous: ['b', 'a'] });
    expect(s.rollbackTarget()).toBe('b');
    await s.rolledBack('b', '/m');
    // A restart reads the same: b runs, and the next rollback goes back to c (the one before b now).
    const again = new PackageStore({ dir: root, keep: 3, log: logs().log });
    expect(again.state).toMatchObject({ current: 'b', previous: ['c', 'a'] });
    expect(again.rollbackTarget()).toBe('c');
  });

  it('falls back to model.path when the installed package is gone or state.json is damaged', () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const { log, lines } = logs();
    writeFileSync(join(root, 'state.json'), JSON.stringify({ v: 1, current: 'gone', previous: [], staged: null, basePath: '/m' }));
    expect(new PackageStore({ dir: root, keep: 2, log }).effectivePath('/m')).toBe('/m');
    expect(lines.some((l) => l.msg === 'the installed model package is missing; using model.path')).toBe(true);
    writeFileSync(join(root, 'state.json'), '{"current": "../../etc"');
    expect(new PackageStore({ dir: root, keep: 2, log }).effectivePath('/m')).toBe('/m');
    writeFileSync(join(root, 'state.json'), JSON.stringify({ current: '../../etc', basePath: '/m' }));
    expect(new PackageStore({ dir: root, keep: 2, log }).state.current).toBe(null);
  });
});

describe('PackageStore bookkeeping', () => {
  const fresh = (keep = 3) => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const l = logs();
    return { root, ...l, s: new PackageStore({ dir: root, keep, log: l.log }) };
  };
  const onDisk = (root: string) => JSON.parse(readFileSync(join(root, 'state.json'), 'utf8')) as Record<string, unknown>;

  it('starts empty (format 1) without a word when there is no state.json; a damaged one is logged', () => {
    const { s, lines, root } = fresh();
    expect(s.state).toEqual({ v: 1, current: null, previous: [], staged: null, basePath: null });
    expect(lines).toEqual([]);
    writeFileSync(join(root, 'state.json'), '{"current": ');
    const l = logs();
    expect(new PackageStore({ dir: root, keep: 3, log: l.log }).state).toEqual(s.state);
    expect(l.lines.map((x) => x.msg)).toEqual(['cannot read the model rollout state; using model.path']);
  });

  it('the config taking over is written to state.json at once (a crash before any other write keeps it)', async () => {
    const { s, root } = fresh();
    await s.commit(fakePackage(s, 'a'), 'a');
    await s.activated('a', '/m');
    expect(s.effectivePath('/other')).toBe('/other');
    expect(onDisk(root)).toEqual({ v: 1, current: null, previous: ['a'], staged: null, basePath: null });
  });

  it('activating with the configured model running keeps the earlier packages in order, without the one activated', async () => {
    const { s, root } = fresh();
    for (const n of ['a', 'b', 'c']) {
      await s.commit(fakePackage(s, n), n);
      await s.activated(n, '/m');
    }
    s.effectivePath('/other'); // the operator's model runs: c joins the rollback targets
    expect(s.state).toMatchObject({ current: null, previous: ['c', 'b', 'a'] });
    await s.activated('b', '/other');
    expect(s.state).toMatchObject({ current: 'b', previous: ['c', 'a'], basePath: '/other' });
    expect(onDisk(root)).toMatchObject({ current: 'b', previous: ['c', 'a'] });
  });

  it('activating the package that runs already (installed again) changes nothing in the rollback order', async () => {
    const { s } = fresh();
    for (const n of ['a', 'b', 'b']) {
      await s.commit(fakePackage(s, n), n);
      await s.activated(n, '/m');
    }
    expect(s.state).toMatchObject({ current: 'b', previous: ['a'] });
    expect(s.rollbackTarget()).toBe('a');
  });

  it('packages pruned beyond model.keep leave state.json too', async () => {
    const { s, root } = fresh(2);
    for (const n of ['a', 'b', 'c']) {
      await s.commit(fakePackage(s, n), n);
      await s.activated(n, '/m');
    }
    expect(onDisk(root)).toMatchObject({ current: 'c', previous: ['b'] });
    expect(new PackageStore({ dir: root, keep: 2, log: logs().log }).state).toEqual({
      v: 1,
      current: 'c',
      previous: ['b'],
      staged: null,
      basePath: '/m',
    });
  });

  it('closes state.json after each write (no descriptor left behind, however often it is written)', async () => {
    const { s, root } = fresh();
    await s.commit(fakePackage(s, 'a'), 'a');
    for (let i = 0; i < 10; i++) {
      await s.activated('a', '/m'); // the async write
      s.effectivePath('/other'); // the synchronous one (the config takes over)
      expect(openFilesUnder(root)).toEqual([]);
    }
  });

  it('a commit replaces a leftover folder of the same name, whatever is in it', async () => {
    const { s } = fresh();
    const old = join(s.packagesDir, 'a', 'selftest', 'red');
    mkdirSync(old, { recursive: true });
    writeFileSync(join(old, 'stale.png'), 'old');
    const dir = await s.commit(fakePackage(s, 'a'), 'a');
    expect(readdirSync(dir).sort()).toEqual(['manifest.yaml']);
  });

  it('a staged package is remembered across a restart and kept beside the current one, whatever model.keep says', async () => {
    const { s, root } = fresh(1);
    for (const n of ['a', 'b']) {
      await s.commit(fakePackage(s, n), n);
      await s.activated(n, '/m');
    }
    await s.commit(fakePackage(s, 'x'), 'x');
    await s.staged('x');
    expect(readdirSync(s.packagesDir).sort()).toEqual(['b', 'x']);
    expect(new PackageStore({ dir: root, keep: 1, log: logs().log }).state).toMatchObject({ current: 'b', staged: 'x' });
  });

  it('state.json is written even when the folder was removed under it (made again)', async () => {
    const { s, root } = fresh();
    await s.commit(fakePackage(s, 'a'), 'a');
    await s.activated('a', '/m');
    const again = new PackageStore({ dir: root, keep: 3, log: logs().log });
    rmSync(root, { recursive: true });
    expect(again.effectivePath('/other')).toBe('/other');
    expect(onDisk(root)).toMatchObject({ current: null, previous: ['a'] });
    rmSync(root, { recursive: true });
    await again.staged('a');
    expect(onDisk(root)).toMatchObject({ staged: 'a' });
  });

  it('reclaim keeps the downloads with exactly the reserve free, and removes them one byte under it', () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    let free = 1000;
    const asked: string[] = [];
    const s = new PackageStore({
      dir: root,
      keep: 2,
      log: logs().log,
      freeBytes: (dir) => {
        asked.push(dir);
        return free;
      },
    });
    mkdirSync(join(s.stagingDir, 'f'.repeat(64)), { recursive: true });
    s.reclaim(1000);
    expect(readdirSync(s.stagingDir)).toEqual(['f'.repeat(64)]);
    free = 999;
    s.reclaim(1000);
    expect(readdirSync(root)).not.toContain('staging');
    expect(asked).toEqual([root, root]);
    // A folder not made yet: its parent's disk.
    const none = (dir: string) => {
      asked.push(dir);
      return 0;
    };
    const later = new PackageStore({ dir: join(root, 'later'), keep: 2, log: logs().log, freeBytes: none });
    later.reclaim(1);
    expect(asked.at(-1)).toBe(join(root, 'later', '..'));
  });

  it('reclaim removes unfinished downloads only when the disk is under the reserve', () => {
    const { s, lines } = fresh();
    mkdirSync(join(s.stagingDir, 'f'.repeat(64)), { recursive: true });
    writeFileSync(join(s.stagingDir, 'f'.repeat(64), 'archive.part'), 'half');
    s.reclaim(0);
    expect(readdirSync(s.stagingDir)).toEqual(['f'.repeat(64)]);
    expect(lines).toEqual([]);
    s.reclaim(Number.MAX_SAFE_INTEGER);
    expect(readdirSync(s.root)).not.toContain('staging');
    expect(lines.map((l) => [l.msg, l.removed])).toEqual([
      ['the disk is nearly full: unfinished model downloads were removed so the journal can open', ['f'.repeat(64)]],
    ]);
  });
});

describe("commands come only from the device's own topic", () => {
  it("ignores a model command on another device's cmd/ topic, and answers its own", async () => {
    const { log, lines } = logs();
    const published: string[] = [];
    const installs: unknown[] = [];
    const h = new CommandHandler({
      topics: new Topics('edge-inferd', 'kiosk-a'),
      deviceId: 'kiosk-a',
      maxBytes: 4096,
      publish: async (topic) => void published.push(topic),
      log,
      handlers: {
        snapshot: () => Promise.reject(new Error('unused')),
        reload: () => Promise.reject(new Error('unused')),
        pause: () => Promise.reject(new Error('unused')),
        resume: () => Promise.reject(new Error('unused')),
        status: () => ({}),
        model: {
          install: (a) => {
            installs.push(a);
            return Promise.resolve({ phase: 'active', request: null, current: null, packages: [], changedAtMs: 0 });
          },
          rollback: () => Promise.reject(new Error('unused')),
          cancel: () => {
            throw new Error('unused');
          },
        },
      },
    });
    const body = Buffer.from(JSON.stringify({ id: 1, url: 'file:///x.tgz', sha256: 'a'.repeat(64), name: 'm', version: '1' }));
    await h.handle('edge-inferd/kiosk-b/cmd/model/install', body);
    await h.handle('edge-inferd/kiosk-a-evil/cmd/model/install', body);
    expect(installs).toEqual([]);
    expect(published).toEqual([]);
    expect(lines.filter((l) => l.msg === "message outside this device's cmd/ topics ignored").length).toBe(2);
    await h.handle('edge-inferd/kiosk-a/cmd/model/install', body);
    expect(installs).toHaveLength(1);
    expect(published).toEqual(['edge-inferd/kiosk-a/cmd/model/install/response']);
  });
});
