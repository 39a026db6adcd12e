import { statSync } from 'node:fs';
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
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ file: opts.configFile, demo: opts.demo });
  } catch (err) {
    process.stderr.write(`edge-inferd: ${errorMessage(err)}\n`);
    process.exit(err instanceof ConfigError ? EXIT_CONFIG : 1);
  }
  // A model folder that is not there is a config error (EX_CONFIG: systemd does not restart for
  // ever); checked here, not in loadConfig, so `history` and `probe` still work with it.
  const modelProblem = missingFolder(config.model.path);
  if (modelProblem) {
    process.stderr.write(`edge-inferd: invalid config (${config.source}):\n  model.path: ${modelProblem}\n`);
    process.exit(EXIT_CONFIG);
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
      return dieBy(signal, log);
    }
    stopping = true;
    log.info({ signal }, 'signal received, stopping');
    clock.setTimeout(() => {
      log.error({ ms: stopTimeoutMs }, 'graceful stop took too long; exiting');
      dieBy(signal, log);
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

function missingFolder(dir: string): string | undefined {
  try {
    return statSync(dir).isDirectory() ? undefined : `${dir} is not a folder (a model package is a folder with manifest.yaml)`;
  } catch (err) {
    return `cannot read ${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : errorMessage(err)}`;
  }
}

/**
 * Ends the process at once by the signal's default action, as if it had no handler (exit status
 * "killed by SIGTERM", which systemd counts as a stop). Not process.exit(): that tears down the
 * inference worker's V8 isolate while the worker may be inside a synchronous ONNX Runtime call
 * (creating a session takes seconds for a large model, minutes for a TensorRT build, and a run can
 * be in flight); when that call returns, onnxruntime-node throws a Napi::Error that nothing can
 * catch and the process aborts (SIGABRT, a core dump). A signal's default action ends every thread
 * where it stands; the journal (SQLite WAL) is safe at any such point.
 */
function dieBy(signal: NodeJS.Signals, log: { flush(): void }): void {
  log.flush();
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
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
