import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The packages installed over MQTT and which one runs, under `model.rollout.dir` (default: a
 * `models/` folder beside the journal, i.e. in the state directory):
 *
 *   packages/<name>-<version>-<sha12>/   unpacked, verified packages (the last `model.keep`)
 *   staging/<sha256>/                     a download in progress (archive.part) and its unpacking
 *   state.json                            { current, previous[], staged, basePath }
 *
 * state.json is replaced atomically (write, fsync, rename), after the swap it records succeeded, so
 * a crash at any point leaves either the old or the new state, never a partial package: only
 * folders under packages/ are ever loaded, and one gets there only after its sha256, its manifest
 * and its self-check passed.
 *
 * Precedence: the installed `current` package overrides `model.path` while `model.path` is what it
 * was when the package was installed (`basePath`). An operator who edits `model.path` in the config
 * file takes over again: the override is dropped at the next start or reload. A rollback past the
 * oldest kept package returns to `model.path`.
 */

export interface StoreState {
  v: 1;
  /** The package folder name in use, or null: `model.path` from the config. */
  current: string | null;
  /** Packages active before, newest first (rollback targets). */
  previous: string[];
  /** Installed with `activate: false`: verified, kept, not running. */
  staged: string | null;
  /** `model.path` when `current` was installed. */
  basePath: string | null;
}

const EMPTY: StoreState = { v: 1, current: null, previous: [], staged: null, basePath: null };

export interface KeptPackage {
  dir: string;
  name: string;
  version: string;
  sha256: string;
  role: 'current' | 'previous' | 'staged';
}

export class PackageStore {
  readonly root: string;
  readonly packagesDir: string;
  readonly stagingDir: string;
  private readonly statePath: string;
  private readonly keep: number;
  private readonly log: Logger;
  private readonly freeBytes: (dir: string) => number;
  private st: StoreState;

  /** `freeBytes`: free bytes on the disk of a folder (tests: a disk of a given size); default statfs. */
  constructor(opts: { dir: string; keep: number; log: Logger; freeBytes?: (dir: string) => number }) {
    this.root = opts.dir;
    this.packagesDir = join(opts.dir, 'packages');
    this.stagingDir = join(opts.dir, 'staging');
    this.statePath = join(opts.dir, 'state.json');
    this.keep = opts.keep;
    this.log = opts.log;
    this.freeBytes = opts.freeBytes ?? statfsFree;
    // Read at construction (synchronously, once): the model service asks for its folder before anything starts.
    this.st = this.read();
  }

  get state(): StoreState {
    return { ...this.st, previous: [...this.st.previous] };
  }

  packageDir(name: string): string {
    return join(this.packagesDir, name);
  }

  /** The folder to load for the configured `model.path`: the installed package while the config did not move on. */
  effectivePath(configured: string): string {
    const cur = this.st.current;
    if (!cur) return configured;
    if (this.st.basePath !== configured) {
      this.log.warn(
        { installed: cur, configured },
        'model.path changed in the config since the model was installed over MQTT; the config wins',
      );
      this.st = { ...this.st, current: null, previous: [cur, ...this.st.previous.filter((p) => p !== cur)], basePath: null };
      // Synchronously: the model service is about to load the configured package.
      try {
        this.writeSync();
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'cannot write the model rollout state');
      }
      return configured;
    }
    const dir = this.packageDir(cur);
    if (existsSync(join(dir, 'manifest.yaml'))) return dir;
    this.log.error({ installed: cur, configured }, 'the installed model package is missing; using model.path');
    return configured;
  }

  /**
   * Run before the journal opens: on a disk with less than `reserveBytes` free, unfinished downloads
   * (staging/, kept for a resume) are removed, so a download that filled the disk (an older
   * version, or a power cut at the wrong moment) cannot keep the journal from opening and the
   * daemon from starting: no crash loop under Restart=on-failure.
   */
  reclaim(reserveBytes: number): void {
    let free: number;
    try {
      free = this.freeBytes(existsSync(this.root) ? this.root : join(this.root, '..'));
    } catch {
      return;
    }
    if (free >= reserveBytes) return;
    let leftovers: string[];
    try {
      leftovers = readdirSync(this.stagingDir);
    } catch {
      return;
    }
    if (!leftovers.length) return;
    try {
      rmSync(this.stagingDir, { recursive: true, force: true });
      this.log.warn(
        { free, reserveBytes, removed: leftovers },
        'the disk is nearly full: unfinished model downloads were removed so the journal can open',
      );
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'the disk is nearly full and the unfinished model downloads cannot be removed');
    }
  }

  /** The folder name a verified package is kept under. */
  static folderName(name: string, version: string, sha256: string): string {
    const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64);
    return `${safe(name)}-${safe(version)}-${sha256.slice(0, 12)}`;
  }

  /** Moves an unpacked, verified package under packages/ (replacing a leftover of the same name). */
  async commit(unpacked: string, name: string): Promise<string> {
    const dest = this.packageDir(name);
    mkdirSync(this.packagesDir, { recursive: true });
    await rm(dest, { recursive: true, force: true });
    await rename(unpacked, dest);
    return dest;
  }

  /** `name` now runs (over `basePath` from the config). */
  async activated(name: string, basePath: string): Promise<void> {
    const prev = this.st.current;
    this.st = {
      v: 1,
      current: name,
      previous:
        prev && prev !== name
          ? [prev, ...this.st.previous.filter((p) => p !== name && p !== prev)]
          : this.st.previous.filter((p) => p !== name),
      staged: this.st.staged === name ? null : this.st.staged,
      basePath,
    };
    await this.write();
    await this.prune();
  }

  /** `name` is verified and kept, not running. */
  async staged(name: string): Promise<void> {
    this.st = { ...this.st, staged: name };
    await this.write();
    await this.prune();
  }

  /** The rollback target: the package active before, or null for the configured `model.path`; undefined when there is none. */
  rollbackTarget(): string | null | undefined {
    if (this.st.previous.length) return this.st.previous[0];
    return this.st.current ? null : undefined;
  }

  /** After a rollback to `target` (null: the configured model) succeeded. */
  async rolledBack(target: string | null, basePath: string): Promise<void> {
    const cur = this.st.current;
    const rest = this.st.previous.filter((p) => p !== target);
    this.st = {
      ...this.st,
      current: target,
      previous: cur ? [cur, ...rest.filter((p) => p !== cur)] : rest,
      basePath: target ? basePath : null,
    };
    await this.write();
    await this.prune();
  }

  /** Kept packages with what their manifests say. */
  async list(): Promise<KeptPackage[]> {
    const roles: [string, KeptPackage['role']][] = [
      ...(this.st.current ? [[this.st.current, 'current'] as [string, KeptPackage['role']]] : []),
      ...this.st.previous.map((p) => [p, 'previous'] as [string, KeptPackage['role']]),
      ...(this.st.staged ? [[this.st.staged, 'staged'] as [string, KeptPackage['role']]] : []),
    ];
    const out: KeptPackage[] = [];
    for (const [dir, role] of roles) {
      try {
        const m = parseYaml(await readFile(join(this.packageDir(dir), 'manifest.yaml'), 'utf8')) as {
          name?: unknown;
          version?: unknown;
          sha256?: unknown;
        };
        out.push({ dir, name: String(m.name), version: String(m.version), sha256: String(m.sha256), role });
      } catch {
        // a package removed by hand: not listed
      }
    }
    return out;
  }

  /** Removes packages beyond the `keep` newest (the current one and the staged one always stay). */
  private async prune(): Promise<void> {
    const keepSet = new Set<string>();
    if (this.st.current) keepSet.add(this.st.current);
    for (const p of this.st.previous) if (keepSet.size < this.keep) keepSet.add(p);
    const dropped = this.st.previous.filter((p) => !keepSet.has(p));
    if (dropped.length) {
      this.st = { ...this.st, previous: this.st.previous.filter((p) => keepSet.has(p)) };
      await this.write();
    }
    if (this.st.staged) keepSet.add(this.st.staged);
    const present = await readdir(this.packagesDir).catch(() => [] as string[]);
    for (const p of present) {
      if (keepSet.has(p)) continue;
      await rm(this.packageDir(p), { recursive: true, force: true });
      this.log.info({ package: p }, 'model package removed (beyond model.keep)');
    }
  }

  private read(): StoreState {
    try {
      const raw = JSON.parse(readFileSync(this.statePath, 'utf8')) as Partial<StoreState>;
      const str = (x: unknown) => (typeof x === 'string' && /^[A-Za-z0-9._-]+$/.test(x) ? x : null);
      return {
        v: 1,
        current: str(raw.current),
        previous: Array.isArray(raw.previous) ? raw.previous.map(str).filter((x): x is string => !!x) : [],
        staged: str(raw.staged),
        basePath: typeof raw.basePath === 'string' ? raw.basePath : null,
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.error({ path: this.statePath, err: errorMessage(err) }, 'cannot read the model rollout state; using model.path');
      return { ...EMPTY, previous: [] };
    }
  }

  private writeSync(): void {
    mkdirSync(this.root, { recursive: true });
    const tmp = `${this.statePath}.tmp`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, JSON.stringify(this.st, null, 2) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.statePath);
  }

  private async write(): Promise<void> {
    mkdirSync(this.root, { recursive: true });
    const tmp = `${this.statePath}.tmp`;
    const f = await open(tmp, 'w', 0o644);
    try {
      await f.writeFile(JSON.stringify(this.st, null, 2) + '\n');
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, this.statePath);
  }
}

function statfsFree(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
