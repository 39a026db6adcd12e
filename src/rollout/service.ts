import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import { DaemonError, errorCode, errorMessage } from '../errors.js';
import type { InferenceEngine } from '../inference/engine.js';
import type { ReloadResult } from '../inference/host.js';
import { loadModelPackage } from '../inference/package.js';
import { selfTest, type SelfTestReport } from '../inference/selftest.js';
import type { ModelInfo } from '../inference/types.js';
import type { Logger } from '../log.js';
import { CommandError, type ModelCommands } from '../publish/commands.js';
import { PAYLOAD_VERSION, type ModelStatePayload, type RolloutState } from '../publish/schemas.js';
import { extractArchive, packageRoot } from './archive.js';
import { checkUrl, DownloadError, download, redactUrl, sha256Of } from './download.js';
import { PackageStore } from './store.js';

export { PackageStore };

/**
 * Remote model rollout (cmd/model/install, cmd/model/rollback): download a package archive to the
 * staging folder, check its sha256, unpack it strictly, check its manifest (and that it names the
 * model the command named), load and warm it beside the running model, self-check it, then switch
 * (the model service's hot swap) and remember it (PackageStore). Any failure leaves the running
 * model in place and says why: in the command's response and on the retained
 * `<prefix>/<deviceId>/model/state`, which also carries the download's progress (as does /status).
 *
 * It sits above publish (it answers commands and publishes its state) and below health (the status
 * reporter reads it): its own folder, src/rollout/.
 */

type RolloutConfig = Config['model']['rollout'] & { keep: number };
type InstallArgs = Parameters<ModelCommands['install']>[0];
type RequestId = string | number | null;
type Fetched = Pick<RolloutState, 'bytes' | 'totalBytes' | 'resumedFrom'>;

/** What the rollout needs of the model service. */
export interface RolloutModel {
  readonly info: ModelInfo | undefined;
  readonly configuredPath: string;
  /** The package folder running now (a switch that cannot be remembered goes back to it). */
  readonly loadedPath: string | undefined;
  swap(dir: string, check: (engine: InferenceEngine) => Promise<unknown>): Promise<ReloadResult>;
  trial<T>(dir: string, check: (engine: InferenceEngine) => Promise<T>): Promise<T>;
}

export interface RolloutDeps {
  config: RolloutConfig;
  store: PackageStore;
  model: RolloutModel;
  deviceId: string;
  /** Publishes the retained model/state message (QoS 1). */
  publish: (payload: string) => Promise<void>;
  clock: Clock;
  log: Logger;
}

/**
 * Download failures whose part file is kept, so the same install sent again continues it. A full
 * disk (DOWNLOAD_NO_SPACE) never is: its part file is what fills the disk the journal needs.
 */
const RESUMABLE = new Set(['DOWNLOAD_FAILED', 'DOWNLOAD_ABORTED', 'DOWNLOAD_TIMEOUT']);

/** Marks a kept package with the full sha256 of the archive it came from (folder names carry 12 digits). */
const ARCHIVE_SHA = '.archive-sha256';

/** The least time between two progress messages on model/state while downloading. */
const PROGRESS_EVERY_MS = 1000;

export class RolloutService implements ModelCommands {
  readonly name = 'rollout';
  private readonly d: RolloutDeps;
  private st: Omit<RolloutState, 'current' | 'packages'>;
  private packages: RolloutState['packages'] = [];
  private busy: string | undefined;
  /** The install or rollback running now (settled: never rejects). */
  private job: Promise<unknown> = Promise.resolve();
  private abort = new AbortController();
  /** The download or unpack running now: cmd/model/cancel and the deadline abort it. */
  private transfer: AbortController | undefined;
  private lastProgressMs = 0;
  private running = false;

  constructor(deps: RolloutDeps) {
    this.d = deps;
    this.st = { phase: 'idle', request: null, changedAtMs: deps.clock.now() };
  }

  /** Finds a download a restart interrupted (never loaded: it is kept for a resume) and publishes the state. */
  async start(): Promise<void> {
    this.running = true;
    this.abort = new AbortController();
    const leftovers = await readdir(this.d.store.stagingDir).catch(() => [] as string[]);
    if (leftovers.length) {
      const meta = await readFile(join(this.d.store.stagingDir, leftovers[0], 'request.json'), 'utf8').then(
        (t) => JSON.parse(t) as RolloutState['request'],
        () => null,
      );
      this.set({
        phase: 'interrupted',
        request: meta,
        error: {
          code: 'INTERRUPTED',
          message:
            'this download did not finish (a restart or a lost connection); the running model stayed. Send the install again to resume it',
        },
      });
      this.d.log.warn(
        { staging: leftovers },
        'a model download was interrupted by a restart; it is kept for a resume and was not activated',
      );
    } else void this.publish(); // not awaited: a QoS 1 publish waits for a broker that may be down
  }

  /** Stops a download at once; waits for the command to be answered (a load in progress finishes first). */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.job;
  }

  /** For /status. */
  status(): RolloutState {
    return { ...this.st, current: this.current(), packages: this.packages };
  }

  async install(a: InstallArgs, requestId: RequestId): Promise<RolloutState> {
    const request: NonNullable<RolloutState['request']> = {
      requestId,
      command: 'model/install',
      url: redactUrl(a.url),
      sha256: a.sha256,
      name: a.name,
      version: a.version,
      activate: a.activate,
    };
    try {
      checkUrl(a.url);
    } catch (err) {
      throw new CommandError('BAD_REQUEST', errorMessage(err), [errorMessage(err)]);
    }
    return await this.exclusive(request, async () => {
      const c = this.d.config;
      const store = this.d.store;
      const folder = PackageStore.folderName(a.name, a.version, a.sha256);
      const dir = store.packageDir(folder);
      // Kept already (staged, or an earlier one installed again): nothing to download. The folder
      // name carries 12 hex digits; the whole digest must match the archive it was made from.
      const kept = existsSync(join(dir, 'manifest.yaml')) && (await archiveSha(dir)) === a.sha256;
      const fetched = kept ? {} : await this.fetch(a, request, folder);
      const pkg = await loadModelPackage(dir);
      let report: SelfTestReport | undefined;
      const check = async (engine: InferenceEngine) => {
        this.set({ phase: 'selftest', request, ...fetched });
        report = await selfTest(engine, dir, {
          frames: c.selftestFrames,
          width: pkg.manifest.input.width,
          height: pkg.manifest.input.height,
        });
      };
      this.set({ phase: 'loading', request, ...fetched });
      if (!a.activate) {
        await this.trial(dir, check, folder, kept);
        await store.staged(folder);
        return { phase: 'staged', request, ...fetched, ...(report ? { selftest: report } : {}) };
      }
      const before = this.d.model.loadedPath;
      const r = await this.d.model.swap(dir, check);
      if (!r.ok) {
        if (!kept) await rm(dir, { recursive: true, force: true });
        throw Object.assign(new DaemonError(r.error?.code ?? 'MODEL_LOAD', r.error?.message ?? 'the package did not load'), {
          problems: r.error?.problems,
        });
      }
      await this.remember(() => store.activated(folder, this.d.model.configuredPath), before);
      this.d.log.info({ model: r.model, selftest: report }, 'model installed over MQTT and active');
      return { phase: 'active', request, ...fetched, ...(report ? { selftest: report } : {}) };
    });
  }

  /** Download (resumable), sha256, strict unpacking, manifest: a verified package under packages/, or nothing left behind. */
  private async fetch(a: InstallArgs, request: NonNullable<RolloutState['request']>, folder: string): Promise<Fetched> {
    const c = this.d.config;
    const store = this.d.store;
    const staging = join(store.stagingDir, a.sha256);
    // Other installs' leftovers go; this one's part file is resumed.
    for (const other of await readdir(store.stagingDir).catch(() => [] as string[]))
      if (other !== a.sha256) await rm(join(store.stagingDir, other), { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, 'request.json'), JSON.stringify(request));
    const part = join(staging, 'archive.part');
    this.set({ phase: 'downloading', request, bytes: 0, totalBytes: null });
    // One controller for this transfer: the daemon stopping, cmd/model/cancel and the deadline.
    const transfer = new AbortController();
    const onStop = () => transfer.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const deadline = this.d.clock.setTimeout(
      () =>
        transfer.abort(
          new DownloadError('DOWNLOAD_TIMEOUT', `the download did not finish within model.rollout.timeoutSec (${c.timeoutSec} s)`),
        ),
      c.timeoutSec * 1000,
    );
    this.transfer = transfer;
    const got = await download({
      url: a.url,
      file: part,
      maxBytes: c.maxBytes,
      ca: c.caFile ? await readFile(c.caFile, 'utf8') : undefined,
      idleTimeoutMs: c.idleTimeoutSec * 1000,
      signal: transfer.signal,
      reserveBytes: c.reserveBytes,
      fileRoot: c.fileRoot,
      onProgress: (bytes, total) => this.progress(bytes, total),
    })
      .catch(async (err: unknown) => {
        // A dropped connection, a stop or the deadline keeps the part file for a resume; a refusal,
        // a full disk or a cancel does not.
        if (!RESUMABLE.has(errorCode(err) ?? '') || a.url.startsWith('file:')) await rm(staging, { recursive: true, force: true });
        this.transfer = undefined;
        this.abort.signal.removeEventListener('abort', onStop);
        throw err;
      })
      .finally(() => this.d.clock.clearTimeout(deadline));
    const fetched = { bytes: got.bytes, totalBytes: got.bytes, resumedFrom: got.resumedFrom };
    this.set({ phase: 'verifying', request, ...fetched });
    try {
      const actual = await sha256Of(part);
      if (actual !== a.sha256) {
        // The actual hash stays in the local log: echoed, it would be an oracle on any file a file:// URL can name.
        this.d.log.warn({ expected: a.sha256, actual, bytes: got.bytes }, 'downloaded archive has another sha256');
        throw new DaemonError(
          'MODEL_SHA256',
          `the sha256 of the downloaded archive (${got.bytes} bytes) is not the command's ${a.sha256}; nothing was installed`,
        );
      }
      const unpacked = join(staging, 'unpacked');
      await rm(unpacked, { recursive: true, force: true });
      await mkdir(unpacked);
      const root = packageRoot(
        unpacked,
        await extractArchive(part, unpacked, { maxBytes: c.maxBytes, maxEntries: 1000, signal: transfer.signal }),
      );
      const pkg = await loadModelPackage(root);
      if (pkg.manifest.name !== a.name || pkg.manifest.version !== a.version) {
        throw new DaemonError(
          'MODEL_MANIFEST',
          `the manifest names ${pkg.manifest.name} ${pkg.manifest.version}, the command ${a.name} ${a.version}`,
        );
      }
      await writeFile(join(root, ARCHIVE_SHA), `${a.sha256}\n`);
      await store.commit(root, folder);
    } finally {
      // Verified and moved, or refused: either way the staging folder has served.
      this.transfer = undefined;
      this.abort.signal.removeEventListener('abort', onStop);
      await rm(staging, { recursive: true, force: true });
    }
    return fetched;
  }

  async rollback(requestId: RequestId): Promise<RolloutState> {
    const request: NonNullable<RolloutState['request']> = { requestId, command: 'model/rollback' };
    return await this.exclusive(request, async () => {
      const store = this.d.store;
      const target = store.rollbackTarget();
      if (target === undefined)
        throw new DaemonError('NOTHING_TO_ROLL_BACK', 'no earlier model to roll back to: nothing was installed over MQTT');
      const dir = target === null ? this.d.model.configuredPath : store.packageDir(target);
      const before = this.d.model.loadedPath;
      this.set({ phase: 'loading', request });
      const c = this.d.config;
      const pkg = await loadModelPackage(dir);
      const r = await this.d.model.swap(dir, (engine) =>
        selfTest(engine, dir, { frames: c.selftestFrames, width: pkg.manifest.input.width, height: pkg.manifest.input.height }),
      );
      if (!r.ok) throw new DaemonError(r.error?.code ?? 'MODEL_LOAD', r.error?.message ?? 'the package did not load');
      await this.remember(() => store.rolledBack(target, this.d.model.configuredPath), before);
      this.d.log.info({ model: r.model, to: target ?? 'model.path' }, 'model rolled back');
      return { phase: 'rolledback', request };
    });
  }

  /**
   * Writes state.json after a switch; if it cannot be written, the switch is undone (the model that
   * ran before is loaded again) so what runs is what a restart would run, and the command fails.
   */
  private async remember(write: () => Promise<void>, before: string | undefined): Promise<void> {
    try {
      await write();
    } catch (err) {
      const back = before === undefined ? undefined : await this.d.model.swap(before, async () => undefined);
      const undone = back?.ok === true;
      this.d.log.error({ err: errorMessage(err), undone }, 'cannot write the model rollout state; the switch is undone');
      throw new DaemonError(
        'ROLLOUT_STATE',
        `cannot write the rollout state (${errorMessage(err)}); ` +
          (undone ? 'the model that ran before runs again' : 'the switch could not be undone'),
        { cause: err },
      );
    }
  }

  /** Whether a download or unpack runs now (cmd/model/cancel can stop it). */
  get downloading(): boolean {
    return this.transfer !== undefined;
  }

  /** cmd/model/cancel: stops the download or unpack of the install running now (its part file is removed). */
  cancel(requestId: RequestId): RolloutState {
    const t = this.transfer;
    if (!t) {
      const what = this.busy
        ? `${this.busy} is past its download (loading or self-checking): it cannot be cancelled`
        : 'no install is running';
      throw new CommandError('NOTHING_TO_CANCEL', what);
    }
    this.d.log.info({ requestId, install: this.busy }, 'model install cancelled');
    t.abort(
      new DownloadError('DOWNLOAD_CANCELLED', `the install was cancelled (cmd/model/cancel${requestId !== null ? ` ${requestId}` : ''})`),
    );
    return this.status();
  }

  /** activate: false: load beside, self-check, unload; the running model is untouched. */
  private async trial(dir: string, check: (e: InferenceEngine) => Promise<unknown>, folder: string, kept: boolean): Promise<void> {
    await this.d.model.trial(dir, check).catch(async (err: unknown) => {
      if (!kept) await rm(this.d.store.packageDir(folder), { recursive: true, force: true });
      throw err;
    });
  }

  /** One install or rollback at a time; the outcome goes to model/state and the response. */
  private async exclusive(
    request: NonNullable<RolloutState['request']>,
    run: () => Promise<Omit<RolloutState, 'current' | 'packages' | 'changedAtMs'>>,
  ): Promise<RolloutState> {
    if (!this.running) throw new CommandError('UNAVAILABLE', 'the daemon is not running');
    if (this.busy) throw new CommandError('BUSY', `another model command is running (${this.busy})`);
    this.busy = `${request.command}${request.requestId !== null ? ` ${request.requestId}` : ''}`;
    const job = this.settle(request, run);
    this.job = job.catch(() => undefined);
    return await job;
  }

  private async settle(
    request: NonNullable<RolloutState['request']>,
    run: () => Promise<Omit<RolloutState, 'current' | 'packages' | 'changedAtMs'>>,
  ): Promise<RolloutState> {
    try {
      const done = await run();
      this.packages = await this.d.store.list();
      this.set(done);
      return this.status();
    } catch (err) {
      if (err instanceof CommandError) throw err;
      // Paths inside the staging folder are the package's own: shown relative to it, not as the device's absolute paths.
      const local = (text: string) =>
        text
          .split(`${this.d.store.stagingDir}/`)
          .join('')
          .replace(/\b[0-9a-f]{64}\/unpacked\/?/g, 'package/');
      const problems = (err as { problems?: string[] }).problems?.map(local);
      const error = { code: errorCode(err) ?? 'FAILED', message: local(errorMessage(err)), ...(problems?.length ? { problems } : {}) };
      this.d.log.error(
        { command: request.command, requestId: request.requestId, code: error.code, err: error.message, keeping: this.d.model.info },
        'model rollout failed; the running model stays',
      );
      this.set({ phase: 'failed', request, error });
      throw new CommandError('MODEL_REJECTED', `${error.code}: ${error.message}`, problems);
    } finally {
      this.busy = undefined;
    }
  }

  private progress(bytes: number, total: number | null): void {
    const first = !this.st.bytes;
    this.st = { ...this.st, bytes, totalBytes: total };
    const now = this.d.clock.monotonic();
    // The first bytes at once (the download is under way), then at most once a second.
    if (!first && now - this.lastProgressMs < PROGRESS_EVERY_MS) return;
    this.lastProgressMs = now;
    void this.publish();
  }

  private set(next: Omit<RolloutState, 'current' | 'packages' | 'changedAtMs'>): void {
    this.st = { ...next, changedAtMs: this.d.clock.now() };
    this.lastProgressMs = this.d.clock.monotonic();
    void this.publish();
  }

  private current(): RolloutState['current'] {
    const i = this.d.model.info;
    return i ? { name: i.name, version: i.version, sha256: i.sha256 } : null;
  }

  private async publish(): Promise<void> {
    this.packages = await this.d.store.list();
    const nowMs = this.d.clock.now();
    const payload: ModelStatePayload = {
      v: PAYLOAD_VERSION,
      id: randomUUID(),
      deviceId: this.d.deviceId,
      ts: new Date(nowMs).toISOString(),
      tsMs: nowMs,
      ...this.status(),
    };
    await this.d
      .publish(JSON.stringify(payload))
      .catch((err: unknown) => this.d.log.debug({ err: errorMessage(err) }, 'model/state publish failed (sent again at the next change)'));
  }
}

/** The archive sha256 a kept package was made from (undefined: unknown, e.g. kept by an older version). */
function archiveSha(dir: string): Promise<string | undefined> {
  return readFile(join(dir, ARCHIVE_SHA), 'utf8').then(
    (t) => t.trim(),
    () => undefined,
  );
}
