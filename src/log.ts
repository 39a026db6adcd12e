import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
const REDACT = ['password', '*.password', '*.*.password', 'token', '*.token', 'authorization', '*.authorization', 'passwordFile'];

export interface LogOptions {
  level: string;
  format: 'auto' | 'json' | 'pretty';
  /** Defaults to stdout (journald reads JSON lines from it). */
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && !opts.destination && process.stdout.isTTY === true);
  const base = { level: opts.level, base: undefined, redact: { paths: REDACT, censor: '***' } };
  if (usePretty)
    return pino(base, pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', destination: opts.destination as never }));
  return pino(base, opts.destination ?? pino.destination({ fd: 1, sync: false }));
}
