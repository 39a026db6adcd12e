import { App } from './app.js';
import { systemClock } from './clock.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { DemoName } from './config/demo.js';
import type { Reloader } from './publish/commands.js';
import { errorCode, errorMessage } from './errors.js';
import { createLogger } from './log.js';

/** Exit codes: 0 clean stop, 1 failure, 78 (EX_CONFIG) bad config, which systemd should not restart on. */
export const EXIT_CONFIG = 78;

export interface RunOptions {
  configFile?: string;
  /** Without a config file: the built-in demo to run (`run --demo eyes`). */
  demo?: DemoName;
  /** Graceful stop budget before the process exits anyway. */
  stopTimeoutMs?: number;
}

/** Runs the daemon until SIGTERM/SIGINT (a second one forces the exit); SIGHUP reloads the config. */
export async function runDaemon(opts: RunOptions): Promise<void> {
  let config;
  try {
    config = loadConfig({ file: opts.configFile, demo: opts.demo });
  } catch (err) {
    process.stderr.write(`edge-inferd: ${errorMessage(err)}\n`);
    process.exit(err instanceof ConfigError ? EXIT_CONFIG : 1);
  }
  const log = createLogger(config.log);
  const load = () => loadConfig({ file: opts.configFile, demo: opts.demo });
  const clock = systemClock;
  const app: App = new App(config, log, { clock, reloader: commandReloader(() => app, load) });
  const stopTimeoutMs = opts.stopTimeoutMs ?? 4500;

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      log.flush();
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'signal received, stopping');
    clock.setTimeout(() => {
      log.error({ ms: stopTimeoutMs }, 'graceful stop took too long; exiting');
      log.flush();
      process.exit(1);
    }, stopTimeoutMs);
    app.stop().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'stop failed');
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // systemctl reload: re-read the same file (and environment) the daemon started with.
  process.on('SIGHUP', () => {
    if (stopping) return;
    log.info({ signal: 'SIGHUP' }, 'signal received, reloading');
    app.reload(load).catch((err: unknown) => log.error({ err: errorMessage(err) }, 'reload failed'));
  });

  try {
    await app.start();
  } catch (err) {
    log.fatal({ code: errorCode(err), err: errorMessage(err) }, 'start failed');
    await app.stop().catch(() => undefined);
    log.flush();
    process.exit(err instanceof ConfigError || errorCode(err) === 'CONFIG_INVALID' ? EXIT_CONFIG : 1);
  }
}

/**
 * The `reload` command does what SIGHUP does. Its outcome: rejected (ok false) with every problem,
 * or applied, listing the keys applied live; keys that wait for a restart are listed as problems
 * of an accepted reload, so the caller learns of them too.
 */
function commandReloader(app: () => App, load: () => Config): Reloader {
  return {
    async reload() {
      const r = await app().reload(load);
      const restart = r.restartRequiredKeys.map((k) => `${k}: changed; takes effect after a restart (systemctl restart edge-inferd)`);
      return { ok: r.ok, changed: r.appliedKeys, problems: r.ok ? restart : [...r.errors, ...restart] };
    },
  };
}
