import type { LiveReloadable } from './component.js';
import type { Clock } from './clock.js';
import { ConfigError } from './config/load.js';
import { type ConfigChange, describeChange, diffConfig, matchesKey, mergeLive } from './config/reload.js';
import type { Config } from './config/schema.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';

/** The outcome of the last reload, as /status and the log report it. */
export interface ReloadReport {
  atMs: number;
  ok: boolean;
  applied: string[];
  restartRequired: string[];
  errors: string[];
  /** The key paths behind `applied` and `restartRequired`. */
  appliedKeys: string[];
  restartRequiredKeys: string[];
}

export interface ReloadHooks {
  /** Whether a reload may run now (the daemon is running). */
  running(): boolean;
  /** Before the new config is read (systemd RELOADING=1). */
  begin(): void;
  /** After it, applied or rejected (systemd READY=1 with a status line). */
  end(status: string | undefined): void;
}

/**
 * SIGHUP and the reload command: re-read the config; if it is invalid keep running on the current
 * one and log every problem; otherwise give each component the changed keys it declared live,
 * with its new slice, and report every other changed key as "restart required". Reloads run one at
 * a time, in order.
 */
export class ReloadController {
  private running: Config;
  private readonly components: readonly LiveReloadable[];
  private readonly hooks: ReloadHooks;
  private readonly clock: Clock;
  private readonly log: Logger;
  private chain: Promise<unknown> = Promise.resolve();
  last: ReloadReport | undefined;

  constructor(opts: { config: Config; components: readonly LiveReloadable[]; hooks: ReloadHooks; clock: Clock; log: Logger }) {
    this.running = opts.config;
    this.components = opts.components;
    this.hooks = opts.hooks;
    this.clock = opts.clock;
    this.log = opts.log;
  }

  /** The config running now: after a reload, live keys are new and restart-required ones still old. */
  get config(): Config {
    return this.running;
  }

  reload(load: () => Config): Promise<ReloadReport> {
    const run = this.chain.then(() => this.run(load));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Whether some component applies this key live. */
  isLive(path: string): boolean {
    return this.components.some((c) => owns(c, path));
  }

  private async run(load: () => Config): Promise<ReloadReport> {
    const atMs = this.clock.now();
    if (!this.hooks.running()) {
      this.log.warn('reload ignored: the daemon is not running');
      return { atMs, ok: false, applied: [], restartRequired: [], errors: ['not running'], appliedKeys: [], restartRequiredKeys: [] };
    }
    this.hooks.begin();
    this.log.info({ config: this.running.source }, 'reloading configuration');
    let next: Config;
    try {
      next = load();
    } catch (err) {
      const errors = err instanceof ConfigError ? err.problems : [errorMessage(err)];
      for (const problem of errors) this.log.error({ problem }, 'reload rejected: invalid config');
      this.log.error({ problems: errors.length }, 'reload rejected; still running on the previous config');
      const last = this.last;
      this.last = {
        atMs,
        ok: false,
        applied: [],
        restartRequired: last?.restartRequired ?? [],
        errors,
        appliedKeys: [],
        restartRequiredKeys: last?.restartRequiredKeys ?? [],
      };
      this.hooks.end(`reload rejected (${errors.length} problem${errors.length === 1 ? '' : 's'}); running on the previous config`);
      return this.last;
    }
    const changes = diffConfig(this.running, next);
    const restart = changes.filter((ch) => !this.isLive(ch.path));
    // Each component sees the running config with only the live changes in it: a key in its
    // slice that waits for a restart keeps its running value.
    const candidate = {
      ...mergeLive(
        this.running,
        changes.filter((ch) => this.isLive(ch.path)),
      ),
      source: next.source,
    };
    const refused = new Set<ConfigChange>();
    const errors: string[] = [];
    for (const c of this.components) {
      const refusal = await c.apply(
        c.slice(candidate),
        changes.filter((ch) => owns(c, ch.path)),
      );
      if (!refusal) continue;
      errors.push(refusal.error);
      for (const ch of refusal.refused) refused.add(ch);
    }
    const applied = changes.filter((ch) => this.isLive(ch.path) && !refused.has(ch));
    this.running = { ...mergeLive(this.running, applied), source: next.source };
    const report: ReloadReport = {
      atMs,
      ok: errors.length === 0,
      applied: applied.map(describeChange),
      restartRequired: restart.map(describeChange),
      errors,
      appliedKeys: applied.map((ch) => ch.path),
      restartRequiredKeys: restart.map((ch) => ch.path),
    };
    this.last = report;
    if (applied.length) this.log.info({ changes: report.applied }, 'reload applied');
    if (restart.length)
      this.log.warn(
        { keys: report.restartRequiredKeys, changes: report.restartRequired },
        'reload: restart required for these changes (systemctl restart edge-inferd)',
      );
    if (!changes.length) this.log.info('reload: no changes');
    this.hooks.end(undefined);
    return report;
  }
}

const owns = (c: LiveReloadable, path: string): boolean => c.liveKeys.some((pattern) => matchesKey(pattern, path));
