import { App } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { errorCode, errorMessage } from './errors.js';
import { createLogger } from './log.js';

/** Exit codes: 0 clean stop, 1 failure, 78 (EX_CONFIG) bad config, which systemd should not restart on. */
export const EXIT_CONFIG = 78;

export interface RunOptions {
  configFile?: string;
  /** Graceful stop budget before the process exits anyway. */
  stopTimeoutMs?: number;
}

/** Runs the daemon until SIGTERM/SIGINT; a second signal forces the exit. */
export async function runDaemon(opts: RunOptions): Promise<void> {
  let config;
  try {
    config = loadConfig({ file: opts.configFile });
  } catch (err) {
    process.stderr.write(`edge-inferd: ${errorMessage(err)}\n`);
    process.exit(err instanceof ConfigError ? EXIT_CONFIG : 1);
  }
  const log = createLogger(config.log);
  const app = new App(config, log);
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
    const timer = setTimeout(() => {
      log.error({ ms: stopTimeoutMs }, 'graceful stop took too long; exiting');
      log.flush();
      process.exit(1);
    }, stopTimeoutMs);
    timer.unref();
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
  // Model hot swap: reload the package from disk (a changed model.onnx/manifest.yaml), keep the old one on failure.
  process.on('SIGHUP', () => {
    if (!stopping) void app.reloadModel();
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
